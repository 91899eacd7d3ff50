"""Signal processing shared by the feature sets and the encoder's front end: pure functions with explicit rates,
bit for bit librosa's where named, without numba (see ``yin``) and with filter banks built once per process."""

from __future__ import annotations

import functools

import librosa
import numpy as np


def log_mel_db(y: np.ndarray, sr: int, n_fft: int, hop: int, n_mels: int, fmax: float | None = None) -> np.ndarray:
    """Log-mel power in dB (..., n_mels, frames), clipped 80 dB below each window's own maximum.

    Exactly librosa.feature.melspectrogram, with its filter bank built once per process instead of per call.
    librosa.power_to_db's top_db clips at the maximum of the whole input; clipping per window keeps a window's
    features independent of the loudest window stacked beside it.
    """
    power = np.abs(stft(y, n_fft, hop)) ** 2
    mel = np.einsum("...ft,mf->...mt", power, _mel_basis(sr, n_fft, n_mels, fmax), optimize=True)
    db = 10.0 * np.log10(np.maximum(mel, 1e-10))
    return np.maximum(db, db.max(axis=(-2, -1), keepdims=True) - 80.0)


def stft(y: np.ndarray, n_fft: int, hop: int) -> np.ndarray:
    """Bit for bit librosa.stft(y, n_fft=n_fft, hop_length=hop) — Hann window, centred, zero-padded — (..., bins,
    frames) complex64, at a third less cost: frames are windowed and transformed along their contiguous axis, a few
    MB at a time (as librosa does), so a batch of many windows never needs float64 copies of all of them."""
    import scipy.fft  # here, not at import: it costs 1.4 s that no CLI start should pay
    flat = y.reshape(-1, y.shape[-1])
    padded = np.pad(flat, [(0, 0), (n_fft // 2, n_fft // 2)])
    frames = np.lib.stride_tricks.sliding_window_view(padded, n_fft, axis=-1)[:, ::hop, :]  # (rows, frames, n_fft)
    out = np.empty((len(flat), frames.shape[1], n_fft // 2 + 1), np.complex64)
    step = max(1, STFT_BLOCK_BYTES // (frames.shape[1] * n_fft * 8))
    for i in range(0, len(flat), step):  # float64 maths, as librosa's; stored as complex64
        out[i : i + step] = scipy.fft.rfft(frames[i : i + step] * _hann(n_fft), axis=-1)
    return np.swapaxes(out, -1, -2).reshape(*y.shape[:-1], n_fft // 2 + 1, frames.shape[1])


STFT_BLOCK_BYTES = 8 * 2**20


@functools.lru_cache(maxsize=8)
def _hann(n_fft: int) -> np.ndarray:
    return librosa.filters.get_window("hann", n_fft, fftbins=True)


@functools.lru_cache(maxsize=8)
def _mel_basis(sr: int, n_fft: int, n_mels: int, fmax: float | None) -> np.ndarray:
    return librosa.filters.mel(sr=sr, n_fft=n_fft, n_mels=n_mels, fmax=fmax)


def zero_crossing_rate(y: np.ndarray, frame: int, hop: int) -> np.ndarray:
    """Exactly librosa.feature.zero_crossing_rate (centred, edge-padded, |y| <= 1e-10 counts as zero), (..., 1, frames).

    Counts sign changes once over the signal and sums them per frame with a cumulative sum, instead of framing
    the signal (each sample is in frame / hop frames) and comparing within every frame.
    """
    pad = [(0, 0)] * (y.ndim - 1) + [(frame // 2, frame // 2)]
    padded = np.pad(y, pad, mode="edge")
    sign = np.signbit(np.where(np.abs(padded) <= 1e-10, 0, padded))
    changed = np.cumsum(sign[..., 1:] != sign[..., :-1], axis=-1, dtype=np.int32)  # int32: 10x faster than bool's
    changes = np.concatenate([np.zeros((*y.shape[:-1], 1), np.int32), changed], axis=-1)
    starts = np.arange(1 + (padded.shape[-1] - frame) // hop) * hop
    count = changes[..., starts + frame - 1] - changes[..., starts]
    return (count / frame)[..., None, :]


def yin(y: np.ndarray, sr: int, fmin: float, fmax: float, frame_length: int, hop_length: int) -> np.ndarray:
    """F0 in Hz per centred, zero-padded frame (..., frames): librosa.yin's algorithm and numbers, in NumPy/SciPy.

    Why not librosa.yin: it calls numba gufuncs cached on disk, and when several fresh processes (Dask workers)
    compile them at once the cache can be left inconsistent, after which every call segfaults (numba issue
    #10128). Nothing in ser-batch calls numba-compiled code.
    """
    import scipy.fft  # here, not at import: it costs 1.4 s that no CLI start should pay
    if not 0 < fmin < fmax <= sr / 2:
        raise ValueError(f"yin needs 0 < fmin < fmax <= sr / 2, got fmin={fmin}, fmax={fmax}, sr={sr}")
    half = frame_length // 2
    padded = np.pad(y, [(0, 0)] * (y.ndim - 1) + [(half, half)])
    frames = np.lib.stride_tricks.sliding_window_view(padded, frame_length, axis=-1)[..., ::hop_length, :]
    min_period = int(np.floor(sr / fmax))
    max_period = min(int(np.ceil(sr / fmin)), frame_length - 1)
    # difference function d(k) = 2 (r(0) - r(k)) - sum_{m<k} y(m)^2, r the autocorrelation (via the FFT)
    n_fft = scipy.fft.next_fast_len(2 * frame_length - 1, real=True)
    spec = scipy.fft.rfft(frames, n=n_fft, axis=-1)
    acf = scipy.fft.irfft(spec.real**2 + spec.imag**2, n=n_fft, axis=-1)[..., : max_period + 1]
    energy = np.cumsum(np.square(frames[..., :max_period]), axis=-1)
    energy[..., 0] = 0  # as librosa: it sets d(0) = 0 in the array that holds these sums before reading them
    diff = 2 * (acf[..., :1] - acf[..., 1:]) - energy  # d(1) .. d(max_period)
    # cumulative mean normalised difference d'(k) for k in [min_period, max_period]
    mean = np.cumsum(diff, axis=-1) / np.arange(1, max_period + 1)
    den = mean[..., min_period - 1 :]
    cmnd = diff[..., min_period - 1 :] / (den + np.finfo(den.dtype).tiny)  # min_period >= 1 as fmax <= sr / 2
    # parabolic refinement of each interior lag, 0 where the vertex is more than a lag away
    left, mid, right = cmnd[..., :-2], cmnd[..., 1:-1], cmnd[..., 2:]
    a, b = right + left - 2 * mid, (right - left) / 2
    inner = np.abs(b) < np.abs(a)
    shift = np.zeros_like(cmnd)
    shift[..., 1:-1] = np.where(inner, -b / np.where(inner, a, 1), 0)
    # the first trough below 0.1, else the global minimum
    trough = np.zeros(cmnd.shape, bool)
    trough[..., 1:-1] = (mid < left) & (mid <= right)
    trough[..., 0] = cmnd[..., 0] < cmnd[..., 1]
    trough[..., -1] = cmnd[..., -1] < cmnd[..., -2]
    below = trough & (cmnd < 0.1)
    lag = np.where(below.any(axis=-1), np.argmax(below, axis=-1), np.argmin(cmnd, axis=-1))
    period = min_period + lag + np.take_along_axis(shift, lag[..., None], axis=-1)[..., 0]
    return sr / period
