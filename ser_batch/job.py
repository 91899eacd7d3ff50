"""Versioned job specs (TOML in jobs/): extract then train, so a shipped model is reproduced by one command."""

from __future__ import annotations

import os
import tomllib
from collections.abc import Callable
from dataclasses import dataclass, fields
from pathlib import Path
from typing import Any

from ser_batch.augment import AugmentSettings
from ser_batch.errors import ConfigError
from ser_batch.features import FeatureSettings
from ser_batch.train import TrainSettings
from ser_batch.windows import TRAIN_HOP_S


@dataclass(frozen=True)
class ExtractSpec:
    corpora: tuple[str, ...]
    out: str
    features: str = "seed"
    features_version: int | None = None  # pin an older version this code still computes (features.WhisperBase.LAYERS); default the current
    normalize: str = "none"
    augment: bool = True
    seed: int = 0
    shifts: int = 0
    window_hop: float = TRAIN_HOP_S  # frame-grid feature sets: a training window every this many seconds


@dataclass(frozen=True)
class TrainSpec:
    out: str
    protocol: str = "holdout"
    fold: int = 1
    model: str = "frames"
    epochs: int = 20
    batch_size: int = 64
    learning_rate: float = 1e-3
    val_speakers: int = 2
    seed: int = 0
    patience: int = 5
    label_smoothing: float = 0.0
    l2: float = 1e-3  # the linear model's L2 penalty (TrainSettings)
    frames: str = "all"  # all | inside: the linear model's means without the frames past a recording's end (TrainSettings)
    mixup: float = 0.0
    specaugment: bool = False
    speaker_norm: bool = False
    norm_by: str = "speaker"  # with speaker_norm: speaker or corpus (TrainSettings)
    norm_prior_s: float = 10.0  # with speaker_norm: seconds of speech the training groups' statistics count for (TrainSettings)
    label_mask: bool = True  # several corpora: each teaches only its own labels (train module docstring)
    corpus_balance: str = "equal"  # each corpus's share of the loss: equal, sqrt or none
    calibration: str = "none"  # none, or cv with the temperature a cross-validation chose (TrainSettings)
    temperature: float = 1.0


@dataclass(frozen=True)
class JobSpec:
    name: str
    version: str
    extracts: tuple[ExtractSpec, ...]  # one [extract] table, or several [[extract]] (e.g. a corpus with and one without augmentation)
    train: TrainSpec
    card: str = ""  # Markdown added to the model card (e.g. the cross-validation table that chose the configuration)


def _build(cls: type, data: dict[str, Any], where: str) -> Any:
    known = {f.name for f in fields(cls)}
    unknown = set(data) - known
    if unknown:
        raise ConfigError(f"{where}: unknown keys {sorted(unknown)}; known: {sorted(known)}")
    try:
        return cls(**data)
    except TypeError as exc:
        raise ConfigError(f"{where}: {exc}") from exc


def load_spec(path: str | os.PathLike[str]) -> JobSpec:
    """Parse and check a job spec."""
    p = Path(path)
    try:
        data = tomllib.loads(p.read_text())
    except (OSError, tomllib.TOMLDecodeError) as exc:
        raise ConfigError(f"cannot read job spec {p}: {exc}") from exc
    for key in ("name", "version", "extract", "train"):
        if key not in data:
            raise ConfigError(f"{p} lacks [{key}]")
    unknown = set(data) - {"name", "version", "extract", "train", "card"}
    if unknown:
        raise ConfigError(f"{p}: unknown keys {sorted(unknown)}; known: card, extract, name, train, version")
    tables = data["extract"] if isinstance(data["extract"], list) else [data["extract"]]
    extracts = tuple(_build(ExtractSpec, {**t, "corpora": tuple(t.get("corpora", ()))}, f"{p} [extract] {i + 1}") for i, t in enumerate(tables))
    if len({e.out for e in extracts}) < len(extracts):
        raise ConfigError(f"{p}: two [[extract]] tables write the same out folder; give each its own")
    if len({e.features for e in extracts}) > 1:
        raise ConfigError(f"{p}: the [[extract]] tables name different feature sets; a model trains on one")
    return JobSpec(str(data["name"]), str(data["version"]), extracts, _build(TrainSpec, dict(data["train"]), f"{p} [train]"), str(data.get("card", "")))


def run_job(
    path: str | os.PathLike[str],
    scheduler: str | None = None,
    workers: int | None = None,
    progress: bool = True,
    echo: Callable[[str], None] | None = None,
) -> dict[str, Any]:
    """Run a job spec: extract (resumable) then train; the model dir records the spec's name and version."""
    from ser_batch.extract import WindowSettings, extract
    from ser_batch.train import train

    spec = load_spec(path)
    root = Path(path).resolve().parent.parent  # paths in a spec are relative to the repository root
    tr = spec.train
    outs = [str(root / ex.out) for ex in spec.extracts]
    for ex, ex_out in zip(spec.extracts, outs):
        extract(
            [root / c for c in ex.corpora], ex_out, feature_settings=FeatureSettings.preset(ex.features, normalize=ex.normalize, version=ex.features_version),
            augment_settings=AugmentSettings(seed=ex.seed, shifts=ex.shifts) if ex.augment else None,
            window_settings=WindowSettings(hop_s=ex.window_hop), scheduler=scheduler, workers=workers, progress=progress, echo=echo,
        )  # fmt: skip
    settings = TrainSettings(
        model=tr.model, epochs=tr.epochs, batch_size=tr.batch_size, learning_rate=tr.learning_rate,
        n_val_speakers=tr.val_speakers, seed=tr.seed, patience=tr.patience, label_smoothing=tr.label_smoothing,
        mixup=tr.mixup, specaugment=tr.specaugment, speaker_norm=tr.speaker_norm, norm_by=tr.norm_by, norm_prior_s=tr.norm_prior_s, label_mask=tr.label_mask,
        corpus_balance=tr.corpus_balance, calibration=tr.calibration, temperature=tr.temperature, l2=tr.l2, frames=tr.frames,
    )  # fmt: skip
    return train(
        outs, str(root / tr.out), protocol=tr.protocol, fold=tr.fold, settings=settings, scheduler=scheduler, workers=workers,
        echo=echo, name=spec.name, model_version=spec.version, job=str(path), card=spec.card,
    )  # fmt: skip
