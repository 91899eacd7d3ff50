"""A loaded model on audio: windows -> probabilities, for ``score`` tasks and ``predict`` alike.

Two kinds of feature set, one window grid (``windows``): a frame-grid set (``whisper_base``) is gated and encoded
once per piece of a recording (``pieces.piece_frames``) and each window is a slice of its frames (``classify``);
a per-window set (``seed``, ``logmel*``) computes each window's features from its own samples (``score_stream``).
A window whose loud frames stay below ``silence_db`` is silent and left out of every verdict.
"""

from __future__ import annotations

import math
import os
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import asdict, dataclass
from functools import lru_cache
from pathlib import Path
from typing import Any

import numpy as np

from ser_batch import audio, features, windows
from ser_batch.errors import AudioError, ConfigError
from ser_batch.pieces import PieceFrames, Reader

Norm = tuple[np.ndarray, np.ndarray]
"""A speaker's mean and standard deviation per feature coefficient, for models trained with speaker_norm."""


@dataclass(frozen=True)
class ScoreSettings:
    """How recordings are windowed and judged, and how a score job cuts them into tasks."""

    hop_s: float = windows.SCORE_HOP_S
    silence_db: float = windows.SILENCE_DB
    chunk_s: float = 600.0  # a longer recording is split into chunks of this length, scored by separate tasks
    task_s: float = 900.0  # audio seconds per task
    max_duration_s: float = 48 * 3600.0  # longer files are refused as oversized
    batch_windows: int = 256

    def __post_init__(self) -> None:
        if self.hop_s <= 0 or self.chunk_s <= 0 or self.task_s <= 0:
            raise ConfigError("hop, chunk and task lengths must be > 0 seconds")

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def load_model(path: str):  # type: ignore[no-untyped-def]
    """One loaded model per worker process; a model directory rewritten in place is loaded again."""
    try:
        stamp = os.stat(Path(path) / "model.keras").st_mtime_ns
    except OSError:
        stamp = 0
    return _load_model_at(path, stamp)


@lru_cache(maxsize=2)
def _load_model_at(path: str, _stamp: int):  # type: ignore[no-untyped-def]
    from ser_batch import modeldir

    return modeldir.load(path)


def check_length(duration_s: float, path: str, settings: ScoreSettings) -> None:
    """Refuse a recording longer than ``settings.max_duration_s`` as oversized."""
    if duration_s > settings.max_duration_s:
        raise AudioError(f"{path} is oversized: {duration_s / 3600:.1f} h > {settings.max_duration_s / 3600:.1f} h limit (--max-hours)")


def last_start(duration_s: float, window_s: float, hop_s: float) -> float:
    """The last window start of ``windows.starts``: the windows scoring uses, no extra padded tail ones."""
    s = windows.starts(duration_s, window_s, hop_s)
    return float(s[-1]) if len(s) else 0.0


# ---------------------------------------------------------------- reading audio


def file_reader(path: str, sr: int) -> Reader:
    """Read [start_s, stop_s) of an audio file at ``sr``, streamed in blocks; AudioError on NaN/Inf samples."""

    def read(start_s: float, stop_s: float) -> np.ndarray:
        parts = list(audio.stream(path, sr, block_s=60.0, start_s=start_s, stop_s=stop_s))
        return _finite(np.concatenate(parts) if parts else np.zeros(0, np.float32))

    return read


def signal_reader(y: np.ndarray, sr: int) -> Reader:
    """Read [start_s, stop_s) of a signal already in memory."""
    return lambda start_s, stop_s: _finite(y[int(round(start_s * sr)) : int(round(stop_s * sr))])


def _finite(y: np.ndarray) -> np.ndarray:
    if not np.isfinite(y).all():
        raise AudioError("contains NaN or Inf samples; re-export it as PCM")
    return y


# ---------------------------------------------------------------- frame-grid feature sets


def classify(md: Any, pf: PieceFrames, norm: Norm | None, batch: int) -> np.ndarray:
    """Probabilities (windows, classes) of a piece's speech windows, NaN for its silent ones; the features are
    standardised with the speaker's ``norm`` for a speaker-normalised model. A model that reads the frames
    ``inside`` the recording gets those past its end as NaN (``windows.past_end``), as training does."""
    _need_norm(md, norm)
    proba = np.full((len(pf.starts), len(md.classes)), np.nan, np.float32)
    rows = np.flatnonzero(pf.speech)
    for i in range(0, len(rows), batch):
        x = windows.cut(pf.frames, pf.first[i : i + batch], md.features.n_frames)
        if md.frames == "inside":
            windows.past_end(x, pf.end - pf.first[i : i + batch])
        if norm is not None:
            x = (x - norm[0]) / norm[1]
        proba[rows[i : i + batch]] = md.predict_proba(x)
    return proba


def _need_norm(md: Any, norm: Norm | None) -> None:
    if norm is None and md.speaker_norm:
        raise ConfigError(f"model {md.path} was trained on speaker-normalised features and needs its speaker's statistics")


# ---------------------------------------------------------------- per-window feature sets


def iter_windows(blocks: Iterable[np.ndarray], sr: int, window_s: float, hop_s: float, first_start_s: float = 0.0, last_start_s: float = math.inf) -> Iterator[tuple[float, np.ndarray]]:
    """(start_s, window) from a stream of blocks that begins at ``first_start_s``; windows start every ``hop_s``
    up to ``last_start_s`` (``windows.starts``), and the last ones are zero-padded when the stream ends."""
    win, buf, buf_start = int(round(window_s * sr)), np.zeros(0, np.float32), first_start_s
    k = 0
    start = first_start_s
    for block in blocks:
        buf = np.concatenate([buf, block])
        while start <= last_start_s + 1e-9:
            lo = int(round((start - buf_start) * sr))
            if lo + win > buf.size:
                break
            yield start, buf[lo : lo + win]
            k += 1
            start = first_start_s + k * hop_s
        drop = max(0, min(int(round((start - buf_start) * sr)), buf.size))
        buf, buf_start = buf[drop:], buf_start + drop / sr
    while start <= last_start_s + 1e-9:
        lo = int(round((start - buf_start) * sr))
        if lo >= buf.size:
            break
        w = buf[lo : lo + win]
        yield start, np.pad(w, (0, win - w.size))
        k += 1
        start = first_start_s + k * hop_s


def silent(feats: np.ndarray, coefficients: Sequence[str], silence_db: float) -> np.ndarray:
    """Per window: is the 95th percentile of frame RMS below ``silence_db`` dBFS? (feats: windows, frames, coeffs)

    Reads the ``rms`` coefficient (seed features) or ``energy_db``, the frame RMS in dB (logmel features)."""
    coeffs = list(coefficients)
    if "rms" not in coeffs and "energy_db" in coeffs:
        return np.percentile(feats[:, :, coeffs.index("energy_db")], 95, axis=1) < silence_db
    rms = feats[:, :, coeffs.index("rms")]
    loud = np.percentile(rms, 95, axis=1)
    return 20 * np.log10(np.maximum(loud, 1e-10)) < silence_db


def window_features(md: Any, blocks: Iterable[np.ndarray], settings: ScoreSettings, first_start_s: float = 0.0, last_start_s: float = math.inf) -> Iterator[tuple[np.ndarray, np.ndarray, np.ndarray]]:
    """(starts, features, silent) per batch of windows of the model's length from a stream of blocks."""
    fs = md.features
    starts: list[float] = []
    wins: list[np.ndarray] = []

    def batch() -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        feats = features.compute(np.stack(wins), fs.sample_rate, fs)
        return np.array(starts), feats, silent(feats, fs.coefficients, settings.silence_db)

    for start, w in iter_windows(blocks, fs.sample_rate, fs.duration_s, settings.hop_s, first_start_s, last_start_s):
        if not np.isfinite(w).all():
            raise AudioError("contains NaN or Inf samples; re-export it as PCM")
        starts.append(start)
        wins.append(w)
        if len(wins) == settings.batch_windows:
            yield batch()
            starts, wins = [], []
    if wins:
        yield batch()


def score_stream(md: Any, blocks: Iterable[np.ndarray], settings: ScoreSettings, first_start_s: float = 0.0, last_start_s: float = math.inf, norm: Norm | None = None) -> Iterator[tuple[np.ndarray, np.ndarray, np.ndarray]]:
    """(starts, proba, silent) per batch of windows; features standardised with the speaker's ``norm`` if given."""
    for starts, feats, sil in window_features(md, blocks, settings, first_start_s, last_start_s):
        if norm is not None:
            feats = (feats - norm[0]) / norm[1]
        else:
            _need_norm(md, norm)
        yield starts, md.predict_proba(feats), sil


def speech_moments(md: Any, blocks: Iterable[np.ndarray], settings: ScoreSettings, first_start_s: float = 0.0, last_start_s: float = math.inf) -> np.ndarray:
    """Moments (``features.moments``) of the frames of the speech windows in a stream (the windows scoring uses,
    never extra padded tail ones): its part of its speaker's norm (feature sets read per window; frame-grid ones
    take theirs from ``pieces.piece_frames``)."""
    total = np.zeros((3, md.features.n_coeffs))
    for _starts, feats, sil in window_features(md, blocks, settings, first_start_s, last_start_s):
        if (~sil).any():
            total += features.moments(feats[~sil])
    return total
