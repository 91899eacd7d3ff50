"""The seed's augmentations (noise, pitch shift, time stretch), deterministic from (seed, recording, kind).

Augmented copies are training material only: every row carries its kind and parameter so that splits can keep
them out of validation and test.
"""

from __future__ import annotations

import hashlib
from dataclasses import asdict, dataclass

import librosa
import numpy as np

from ser_batch.errors import ConfigError

KINDS: tuple[str, ...] = ("noise", "pitch", "stretch")


@dataclass(frozen=True)
class AugmentSettings:
    """Which augmentations to make and how strong (the seed's values by default)."""

    kinds: tuple[str, ...] = KINDS
    seed: int = 0
    noise_max: float = 0.035  # noise amplitude ~ U(0, noise_max) x peak, as in the seed
    pitch_steps: float = 0.7  # semitones
    stretch_rate: float = 0.8  # < 1 slows down

    def __post_init__(self) -> None:
        unknown = set(self.kinds) - set(KINDS)
        if unknown:
            raise ConfigError(f"unknown augmentation kinds {sorted(unknown)}; known: {', '.join(KINDS)}")
        if self.stretch_rate <= 0:
            raise ConfigError("stretch_rate must be > 0")

    def to_dict(self) -> dict[str, object]:
        d = asdict(self)
        d["kinds"] = list(self.kinds)
        return d

    @classmethod
    def from_dict(cls, data: dict[str, object]) -> AugmentSettings:
        d = dict(data)
        d["kinds"] = tuple(d.get("kinds", KINDS))  # type: ignore[arg-type]
        return cls(**d)  # type: ignore[arg-type]


def rng_for(seed: int, recording_id: str, kind: str) -> np.random.Generator:
    """A generator that depends only on (seed, recording, kind): reruns and reorderings give the same copies."""
    digest = hashlib.sha256(f"{seed}:{recording_id}:{kind}".encode()).digest()
    return np.random.default_rng(int.from_bytes(digest[:8], "little"))


def augment(
    y: np.ndarray, sr: int, kind: str, settings: AugmentSettings, recording_id: str
) -> tuple[np.ndarray, float]:
    """One augmented copy of ``y`` (same length) and its parameter (noise amplitude, semitones, or rate)."""
    n = y.size
    if kind == "noise":
        rng = rng_for(settings.seed, recording_id, kind)
        amp = float(settings.noise_max * rng.uniform() * np.max(np.abs(y)))
        return (y + amp * rng.standard_normal(n)).astype(np.float32), amp
    if kind == "pitch":
        out = librosa.effects.pitch_shift(y, sr=sr, n_steps=settings.pitch_steps)
        return _fit(out, n), settings.pitch_steps
    if kind == "stretch":
        rate = settings.stretch_rate
        # Stretch only the input that lands inside the window (plus a margin for the STFT edge): the same
        # samples as stretch-then-crop up to edge effects past the crop, for a fraction of the work.
        need = min(n, int(np.ceil(n * rate)) + 2048)
        out = librosa.effects.time_stretch(y[:need], rate=rate)
        return _fit(out, n), rate
    raise ConfigError(f"unknown augmentation {kind!r}; known: {', '.join(KINDS)}")


def _fit(y: np.ndarray, n: int) -> np.ndarray:
    """Crop or zero-pad to exactly ``n`` samples."""
    y = y[:n]
    return np.pad(y, (0, n - y.size)).astype(np.float32, copy=False)
