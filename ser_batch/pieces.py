"""Pieces of recordings: the unit of scoring work, and the frames of a piece on the encoder's block grid.

A recording's window starts (``windows.starts``) are split into pieces of about ``chunk_s`` seconds; each piece is
scored by one task, so a long recording spreads over the workers and a worker holds at most one piece of audio.
For a frame-grid feature set (``whisper_base``) a piece reads a little audio around its windows so that its
silence decisions, and so the blocks it encodes, are those of the whole recording: every block of speech is
encoded by the one piece that owns it (plus, at a piece boundary, the piece whose last windows reach into it).
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from ser_batch import features, windows
from ser_batch.features import WHISPER_BLOCK_S, FeatureSettings


@dataclass(frozen=True)
class Piece:
    """A stretch of one recording: windows starting in [first_start_s, last_start_s]."""

    path: str
    chunk: int
    first_start_s: float
    last_start_s: float
    duration_s: float
    next_start_s: float = math.inf  # the next piece's first window start; inf for the last piece


def plan_pieces(path: str, duration_s: float, window_s: float, hop_s: float, chunk_s: float) -> list[Piece]:
    """Split a recording's window starts into pieces of about ``chunk_s`` seconds."""
    starts = windows.starts(duration_s, window_s, hop_s)
    per_chunk = max(1, int(chunk_s // hop_s))
    firsts = list(range(0, len(starts), per_chunk))
    return [
        Piece(path, i, float(starts[j]), float(starts[min(j + per_chunk, len(starts)) - 1]), duration_s,
              float(starts[firsts[i + 1]]) if i + 1 < len(firsts) else math.inf)
        for i, j in enumerate(firsts)
    ]  # fmt: skip


@dataclass(frozen=True)
class PieceFrames:
    """A piece's windows over its frame sequence: which are speech, where they start in ``frames``."""

    starts: np.ndarray  # (windows,) seconds
    speech: np.ndarray  # (windows,) bool
    first: np.ndarray  # (speech windows,) frame index in ``frames`` of each speech window's start
    frames: np.ndarray  # (n_frames, coeffs) float32; NaN in blocks no speech window reads
    moments: np.ndarray  # (3, coeffs): this piece's part of its speaker's statistics (its own speech blocks)
    end: int  # index in ``frames`` of the first frame past the recording's end (its zero padding)


def tail_s(duration_s: float, last_start_s: float, window_s: float) -> float:
    """How far a recording is read, zero-padded: its last window, and a window past its last block, so that the
    gate decides each of its blocks from every window that touches it (the same in extract and in any piece)."""
    return max(last_start_s + window_s, math.ceil(duration_s / WHISPER_BLOCK_S - 1e-9) * WHISPER_BLOCK_S + window_s)


Reader = Callable[[float, float], np.ndarray]
"""``read(start_s, stop_s)``: the recording's mono samples at the working rate in [start_s, stop_s) (less at its end)."""


def piece_frames(fs: FeatureSettings, read: Reader, piece: Piece, hop_s: float, silence_db: float, device: str = "cpu") -> PieceFrames:
    """Gate, encode and place the windows of ``piece`` (a frame-grid feature set, e.g. ``whisper_base``).

    The piece reads from one window before its first start (rounded down to the block grid) to a block and a
    window past its last, so that the silence gate sees every window that touches the blocks it owns: the blocks
    encoded, and its part of the speaker's statistics, are the same however the recording is cut into pieces.
    """
    sr, w, f = fs.sample_rate, fs.duration_s, fs.frame_s
    step = windows.frame_steps(hop_s, f)
    origin = max(0.0, math.floor((piece.first_start_s - w) / WHISPER_BLOCK_S + 1e-9) * WHISPER_BLOCK_S)
    end = piece.next_start_s + WHISPER_BLOCK_S + w if math.isfinite(piece.next_start_s) else tail_s(piece.duration_s, piece.last_start_s, w)
    y = read(origin, end)
    need = int(round((end - origin) * sr))
    if y.size < need:
        y = np.pad(y, (0, need - y.size))
    g = features.gate(y, sr, fs, silence_db)
    n_windows = int(round((piece.last_start_s - piece.first_start_s) / hop_s)) + 1
    first_frame = windows.frame_steps(piece.first_start_s - origin, f, "a piece's start")
    idx = first_frame + step * np.arange(n_windows)
    speech = g.speech[idx]
    starts_mask = np.zeros(len(g.speech), bool)
    starts_mask[idx[speech]] = True
    per_block = len(g.energy_db) // len(g.speech_blocks)
    read_blocks = windows.covered(starts_mask, fs.n_frames, len(g.energy_db)).reshape(-1, per_block).any(axis=1)
    block_s = origin + WHISPER_BLOCK_S * np.arange(len(g.speech_blocks))
    own = (block_s >= piece.first_start_s - 1e-6) & (block_s < min(piece.next_start_s, piece.duration_s) - 1e-6)
    frames = features.encode_blocks(y, sr, fs, g, read_blocks | (own & g.speech_blocks), device)
    starts = piece.first_start_s + hop_s * np.arange(n_windows)
    inside = origin + f * np.arange(len(g.energy_db)) < piece.duration_s - 1e-9  # not the padding past the end
    stats = np.repeat(own & g.speech_blocks & ~g.quiet_blocks, per_block) & inside
    return PieceFrames(starts, speech, idx[speech], frames, features.speech_moments(frames, stats), int(inside.sum()))
