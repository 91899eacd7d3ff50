"""Feature sets: named, versioned, frozen settings and one pure ``compute(y, sr, settings)`` each.

Every feature set returns a (frames x coefficients) float32 matrix, so models can treat time as time; the
seed's flat vector is ``matrix.reshape(-1)``.

Feature sets
- ``seed`` (v1): the origin project's features, per frame: zero-crossing rate, RMS energy, 20 MFCCs.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import asdict, dataclass, fields

import librosa
import numpy as np

from ser_batch.audio import WORKING_SR
from ser_batch.errors import ConfigError

FEATURE_SETS: dict[str, int] = {"seed": 1}
"""Known feature set names and their current version; bump the version whenever outputs change."""


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

    def __post_init__(self) -> None:
        if self.name not in FEATURE_SETS:
            raise ConfigError(f"unknown feature set {self.name!r}; known: {', '.join(FEATURE_SETS)}")
        if self.duration_s <= 0 or self.offset_s < 0:
            raise ConfigError("window duration must be > 0 and offset >= 0 seconds")
        if self.hop_length <= 0 or self.frame_length < self.hop_length:
            raise ConfigError("need 0 < hop_length <= frame_length")

    @property
    def n_samples(self) -> int:
        return int(round(self.duration_s * self.sample_rate))

    @property
    def n_frames(self) -> int:
        return 1 + self.n_samples // self.hop_length

    @property
    def coefficients(self) -> tuple[str, ...]:
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

    def fingerprint(self) -> str:
        """Short stable hash of the settings, for naming and comparing."""
        return hashlib.sha256(json.dumps(self.to_dict(), sort_keys=True).encode()).hexdigest()[:12]


def compute(y: np.ndarray, sr: int, settings: FeatureSettings) -> np.ndarray:
    """Features of one window ``y`` (mono, ``settings.n_samples`` long) at rate ``sr``: (frames, coeffs) float32.

    Also takes a stack of windows (n, samples) and then returns (n, frames, coeffs).
    """
    if sr != settings.sample_rate:
        raise ConfigError(f"features expect {settings.sample_rate} Hz audio, got {sr} Hz; resample in audio.py")
    if y.shape[-1] == 0 or (y.ndim == 2 and y.shape[0] == 0):
        return np.zeros((*y.shape[:-1], *settings.shape), np.float32)
    frame, hop = settings.frame_length, settings.hop_length
    zcr = librosa.feature.zero_crossing_rate(y, frame_length=frame, hop_length=hop)
    rms = librosa.feature.rms(y=y, frame_length=frame, hop_length=hop)
    mel = librosa.feature.melspectrogram(y=y, sr=sr, n_fft=frame, hop_length=hop, power=2.0)
    # librosa.power_to_db's top_db clips at the maximum of the whole input; clipping per window instead keeps a
    # window's features independent of the loudest window stacked beside it.
    db = 10.0 * np.log10(np.maximum(mel, 1e-10))
    db = np.maximum(db, db.max(axis=(-2, -1), keepdims=True) - 80.0)
    mfcc = librosa.feature.mfcc(S=db, n_mfcc=settings.n_mfcc)
    out = np.concatenate([zcr, rms, mfcc], axis=-2)  # (..., coeffs, frames)
    return np.ascontiguousarray(np.swapaxes(out, -1, -2), dtype=np.float32)
