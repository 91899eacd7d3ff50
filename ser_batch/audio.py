"""Decoding, downmixing and resampling to the working rate; reading one window or streaming blocks.

Everything downstream sees mono float32 at an explicit sample rate: resampling happens here (soxr, HQ) and
nowhere else, so feature code never resamples silently.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from dataclasses import dataclass

import numpy as np
import soundfile as sf
import soxr

from ser_batch.errors import AudioError

WORKING_SR = 16_000
"""The one working sample rate (Hz): speech carries its emotion below 8 kHz, and the shipped corpora are 16 kHz."""

SILENCE_PEAK = 1e-4
"""A signal whose absolute peak stays below this (about -80 dBFS) counts as silent."""


@dataclass(frozen=True)
class AudioInfo:
    """What the file header says: native rate, channels, length."""

    sample_rate: int
    channels: int
    frames: int
    format: str

    @property
    def duration_s(self) -> float:
        return self.frames / self.sample_rate if self.sample_rate else 0.0


def probe(path: str | os.PathLike[str]) -> AudioInfo:
    """Read the header of ``path``; raise AudioError with the reason when it is not readable audio."""
    p = os.fspath(path)
    try:
        size = os.path.getsize(p)
    except OSError as exc:
        raise AudioError(f"cannot open {p}: {exc.strerror or exc}") from exc
    if size == 0:
        raise AudioError(f"{p} is empty (0 bytes)")
    try:
        info = sf.info(_native(p))
    except Exception as exc:  # libsndfile raises LibsndfileError/RuntimeError/TypeError for non-audio
        raise AudioError(f"{p} is not readable audio ({_short(exc)}); convert it to wav/flac/ogg") from exc
    if info.frames <= 0 or info.samplerate <= 0:
        raise AudioError(f"{p} holds no samples")
    return AudioInfo(int(info.samplerate), int(info.channels), int(info.frames), str(info.format))


def to_mono(block: np.ndarray) -> np.ndarray:
    """Average channels: (frames, channels) or (frames,) -> (frames,) float32."""
    if block.ndim == 2:
        block = block.mean(axis=1)
    return np.ascontiguousarray(block, dtype=np.float32)


def resample(y: np.ndarray, sr_in: int, sr_out: int) -> np.ndarray:
    """Resample mono float32 with soxr (HQ); identity when the rates agree."""
    if sr_in == sr_out:
        return y
    return soxr.resample(y, sr_in, sr_out, quality="HQ").astype(np.float32, copy=False)


def check_signal(y: np.ndarray, path: str, min_samples: int = 1) -> None:
    """Reject signals no feature can describe honestly: too short, non-finite, or silent."""
    if y.size < min_samples:
        raise AudioError(f"{path} is too short: {y.size} samples, at least {min_samples} needed")
    if not np.isfinite(y).all():
        raise AudioError(f"{path} contains NaN or Inf samples; re-export it as PCM")
    if float(np.max(np.abs(y))) < SILENCE_PEAK:
        raise AudioError(f"{path} is silent (all samples below -80 dBFS)")


@dataclass(frozen=True)
class Window:
    """A fixed-length excerpt at the working rate, with how much of it is zero padding."""

    samples: np.ndarray
    sample_rate: int
    start_s: float
    pad_s: float
    info: AudioInfo


def read_window(
    path: str | os.PathLike[str],
    sr: int,
    offset_s: float,
    duration_s: float,
    min_samples: int = 1,
) -> Window:
    """Read ``duration_s`` seconds from ``offset_s`` (decoding only that stretch), mono at ``sr``.

    Audio shorter than the window is zero-padded at the end and the padding is recorded; audio shorter than the
    offset is read from its start instead, so short clips still yield a window.
    """
    p = os.fspath(path)
    info = probe(p)
    total_s = info.duration_s
    start_s = offset_s if total_s > offset_s else 0.0
    start = int(round(start_s * info.sample_rate))
    if start and (info.frames - start) * sr < min_samples * info.sample_rate:
        # Less than min_samples left after the offset: read from the start too, or a clip a little longer than
        # the offset would be refused as too short while a shorter one yields a window.
        start_s, start = 0.0, 0
    stop = min(info.frames, start + int(np.ceil(duration_s * info.sample_rate)))
    try:
        block, _ = sf.read(_native(p), start=start, stop=stop, dtype="float32", always_2d=True)
    except Exception as exc:
        raise AudioError(f"{p} could not be decoded ({_short(exc)}); the file may be truncated") from exc
    y = resample(to_mono(block), info.sample_rate, sr)
    check_signal(y, p, min_samples)
    n = int(round(duration_s * sr))
    pad = max(0, n - y.size)
    y = np.pad(y[:n], (0, pad))
    return Window(y, sr, start_s, pad / sr, info)


def stream(
    path: str | os.PathLike[str], sr: int, block_s: float = 60.0, start_s: float = 0.0, stop_s: float | None = None
) -> Iterator[np.ndarray]:
    """Yield consecutive mono blocks at ``sr`` between ``start_s`` and ``stop_s``, never the whole file at once.

    Blocks are resampled independently; soxr's HQ filter is short, so block edges cost nothing audible for
    emotion features.
    """
    p = os.fspath(path)
    info = probe(p)
    first = int(round(start_s * info.sample_rate))
    last = info.frames if stop_s is None else min(info.frames, int(round(stop_s * info.sample_rate)))
    step = max(1, int(block_s * info.sample_rate))
    try:
        with sf.SoundFile(_native(p)) as f:
            f.seek(first)
            pos = first
            while pos < last:
                block = f.read(min(step, last - pos), dtype="float32", always_2d=True)
                if block.shape[0] == 0:
                    break
                pos += block.shape[0]
                yield resample(to_mono(block), info.sample_rate, sr)
    except AudioError:
        raise
    except Exception as exc:
        raise AudioError(f"{p} could not be decoded ({_short(exc)}); the file may be truncated") from exc


def _native(path: str) -> str | bytes:
    """The path for soundfile, which encodes str paths strictly: a non-UTF-8 file name (held as surrogate escapes)
    goes as the OS's bytes, or a readable file would be reported as unreadable."""
    try:
        path.encode("utf-8")
        return path
    except UnicodeEncodeError:
        return os.fsencode(path)


def _short(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return text[0][:200] if text else type(exc).__name__
