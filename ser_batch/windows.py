"""The one window cutter: where windows of a recording start, which of them hold speech, and their frames.

``extract`` (training windows), ``train``/``evaluate`` (through the shards) and ``score`` all cut windows here,
in the manner of audinterface's ``Feature(win_dur, hop_dur)``: windows of ``window_s`` every ``hop_s`` from the
start of the recording, the last one zero-padded past the end. Feature sets that describe a recording as a
sequence of frames (``whisper_base``: one frame per 100 ms) cut a window as a slice of that sequence, so every
window over a stretch of audio shares that stretch's frames; such windows start on the frame grid.

Silence is decided on frame energy alone, before anything expensive runs: a window is speech when the 95th
percentile of its frames' energy (dB re full scale) reaches ``silence_db``.
"""

from __future__ import annotations

import math

import numpy as np

from ser_batch.errors import ConfigError

SILENCE_DB = -60.0
"""The default gate: the quietest RAVDESS recording peaks at -56.5 dBFS (95th percentile of frame RMS)."""

TRAIN_HOP_S = 0.5
"""Hop between the training windows ``extract`` cuts from each recording of a frame-grid feature set."""

SCORE_HOP_S = 0.5
"""``score``'s default hop: with the frame grid a smaller hop costs pooling, not encoding (see the README for the
accuracy that chose it)."""


def starts(duration_s: float, window_s: float, hop_s: float) -> np.ndarray:
    """Start times (s) covering [0, duration): every ``hop_s``; the last window may run past the end (zero-padded)."""
    if duration_s <= 0:
        return np.zeros(0)
    n = 1 if duration_s <= window_s else math.ceil((duration_s - window_s) / hop_s - 1e-9) + 1
    return np.arange(n) * hop_s


def frame_steps(seconds: float, frame_s: float, what: str = "--hop") -> int:
    """``seconds`` as a whole number of frames of ``frame_s``; ConfigError when it is not one."""
    n = round(seconds / frame_s)
    if n < 0 or abs(n * frame_s - seconds) > 1e-6:
        raise ConfigError(f"{what} {seconds:g} s is not a multiple of this model's {frame_s:g} s frames; use e.g. {max(1, n) * frame_s:g}")
    return int(n)


def speech_starts(energy_db: np.ndarray, window_frames: int, silence_db: float) -> np.ndarray:
    """Per possible window start (every frame): is it speech? (frames - window_frames + 1,) bool.

    ``energy_db`` is the frame energy of the whole stretch, padding included.
    """
    if energy_db.size < window_frames:
        return np.zeros(0, bool)
    view = np.lib.stride_tricks.sliding_window_view(energy_db, window_frames)
    return np.percentile(view, 95, axis=-1) >= silence_db


def covered(window_starts: np.ndarray, window_frames: int, n_frames: int) -> np.ndarray:
    """Frames inside at least one window starting at a True of ``window_starts``: (n_frames,) bool."""
    hits = np.zeros(n_frames + 1, np.int32)
    idx = np.flatnonzero(window_starts)
    np.add.at(hits, idx, 1)
    np.add.at(hits, np.minimum(idx + window_frames, n_frames), -1)
    return np.cumsum(hits[:n_frames]) > 0


def cut(frames: np.ndarray, first: np.ndarray, window_frames: int) -> np.ndarray:
    """Windows (n, window_frames, coeffs) of ``frames`` (n_frames, coeffs) starting at frame indices ``first``."""
    if len(first) == 0:
        return np.zeros((0, window_frames, frames.shape[-1]), frames.dtype)
    return frames[np.asarray(first)[:, None] + np.arange(window_frames)]


FRAMES = ("all", "inside")
"""Which of a window's frames a model reads: ``all`` (the zero padding past a recording's end too) or ``inside``
(only the frames that start before the recording's end; the others are NaN, `past_end`)."""


def frames_inside(window_s: float, pad_s: np.ndarray, frame_s: float) -> np.ndarray:
    """How many leading frames of each window start before its recording's end, from the window's zero padding past
    that end (``pad_s``, as extract records it): at least 1. A frame at ``start + k * frame_s`` is inside when it
    starts before the end, the definition ``pieces.piece_frames`` uses for a speaker's statistics."""
    n = np.ceil((window_s - np.asarray(pad_s, np.float64)) / frame_s - 1e-4).astype(np.int64)  # pad_s is float32
    return np.clip(n, 1, round(window_s / frame_s))


def past_end(x: np.ndarray, inside: np.ndarray) -> np.ndarray:
    """Windows (n, frames, coeffs) with each window's frames from ``inside[i]`` on set to NaN, in place: the frames
    past its recording's end, which a model reading ``inside`` frames leaves out. Returns ``x``."""
    x[np.arange(x.shape[1])[None, :] >= np.asarray(inside)[:, None]] = np.nan
    return x
