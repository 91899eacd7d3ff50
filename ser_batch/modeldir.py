"""Save and load a model directory: ``model.keras`` plus JSON, validated on load, never unpickled.

    model.keras    Keras v3 file, loaded in safe mode (no Lambda layers, no custom objects)
    config.json    classes, feature settings, augmentation, model, protocol + split, data fingerprints, versions
    scaler.json    per-(frame, coeff) mean and scale fitted on training rows only
    metrics.json   evaluation on the test speakers (written by train/evaluate)
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from importlib.metadata import version
from pathlib import Path
from typing import Any

import numpy as np

from ser_batch.errors import ModelDirError
from ser_batch.features import FeatureSettings
from ser_batch.labels import EMOTIONS
from ser_batch.shards import write_json_atomic

FORMAT = "ser-batch-model"
FORMAT_VERSION = 1
REQUIRED = ("model.keras", "config.json", "scaler.json")
CONFIG_FIELDS: dict[str, type | tuple[type, ...]] = {
    "format": str,
    "format_version": int,
    "name": str,
    "classes": list,
    "features": dict,
    "model": dict,
    "protocol": str,
    "split": dict,
    "temperature": (int, float),
    "versions": dict,
}


@dataclass(frozen=True)
class Scaler:
    """Standardisation fitted on training rows: (x - mean) / scale, per (frame, coeff)."""

    mean: np.ndarray
    scale: np.ndarray

    def transform(self, x: np.ndarray) -> np.ndarray:
        return ((x - self.mean) / self.scale).astype(np.float32, copy=False)

    def to_dict(self) -> dict[str, Any]:
        return {"shape": list(self.mean.shape), "mean": self.mean.ravel().tolist(), "scale": self.scale.ravel().tolist()}

    @classmethod
    def from_dict(cls, d: dict[str, Any], where: str = "scaler.json") -> Scaler:
        try:
            shape = tuple(int(v) for v in d["shape"])
            mean = np.asarray(d["mean"], np.float32).reshape(shape)
            scale = np.asarray(d["scale"], np.float32).reshape(shape)
        except (KeyError, TypeError, ValueError) as exc:
            raise ModelDirError(f"{where} is malformed ({exc}); the model directory is damaged") from exc
        if not (np.isfinite(mean).all() and np.isfinite(scale).all() and (scale > 0).all()):
            raise ModelDirError(f"{where} holds non-finite or non-positive values; the model directory is damaged")
        return cls(mean, scale)


@dataclass(frozen=True)
class ModelDir:
    """A loaded model directory."""

    path: Path
    model: Any  # keras.Model
    config: dict[str, Any]
    scaler: Scaler

    @property
    def classes(self) -> list[str]:
        return list(self.config["classes"])

    @property
    def features(self) -> FeatureSettings:
        return FeatureSettings.from_dict(self.config["features"])

    @property
    def temperature(self) -> float:
        return float(self.config.get("temperature", 1.0))

    @property
    def name(self) -> str:
        return str(self.config["name"])

    @property
    def version(self) -> str:
        return str(self.config.get("model_version", self.config["versions"].get("ser-batch", "?")))

    def predict_proba(self, x: np.ndarray, batch_size: int = 256) -> np.ndarray:
        """Class probabilities (rows, classes) for raw (rows, frames, coeffs) features."""
        if len(x) == 0:
            return np.zeros((0, len(self.classes)), np.float32)
        logits_in = self.scaler.transform(x)
        p = np.asarray(self.model.predict(logits_in, batch_size=batch_size, verbose=0), np.float64)
        if self.temperature != 1.0:
            logp = np.log(np.clip(p, 1e-12, 1.0)) / self.temperature
            p = np.exp(logp - logp.max(axis=1, keepdims=True))
            p /= p.sum(axis=1, keepdims=True)
        return p.astype(np.float32)

    def check_features(self, other: FeatureSettings, where: str) -> None:
        """Refuse data made with other feature settings, naming each difference."""
        mine = self.features.to_dict()
        theirs = other.to_dict()
        diff = [f"{k}: model {mine.get(k)!r}, {where} {theirs.get(k)!r}" for k in sorted(set(mine) | set(theirs)) if mine.get(k) != theirs.get(k)]
        if diff:
            raise ModelDirError(f"model {self.path} was trained on other features than {where}: " + "; ".join(diff))


def versions() -> dict[str, str]:
    """Versions of the packages that shape a model's numbers."""
    out = {}
    for pkg in ("ser-batch", "tensorflow", "keras", "librosa", "numpy", "scikit-learn"):
        try:
            out[pkg] = version(pkg)
        except Exception:
            out[pkg] = "?"
    return out


def save(path: str | os.PathLike[str], model: Any, config: dict[str, Any], scaler: Scaler) -> Path:
    """Write a model directory (model.keras last-but-one, config.json last: a dir with a config is whole)."""
    out = Path(path)
    out.mkdir(parents=True, exist_ok=True)
    full = {"format": FORMAT, "format_version": FORMAT_VERSION, "temperature": 1.0, "versions": versions(), **config}
    _validate_config(full, out / "config.json")
    write_json_atomic(scaler.to_dict(), out / "scaler.json")
    tmp = out / ".tmp-model.keras"
    model.save(tmp)
    os.replace(tmp, out / "model.keras")
    write_json_atomic(full, out / "config.json")
    return out


def read_config(path: str | os.PathLike[str]) -> dict[str, Any]:
    """Read and validate config.json only (cheap; no TensorFlow)."""
    d = Path(path)
    missing = [f for f in REQUIRED if not (d / f).is_file()]
    if missing:
        raise ModelDirError(f"{d} is not a complete model directory: missing {', '.join(missing)}")
    try:
        config = json.loads((d / "config.json").read_text())
    except (OSError, ValueError) as exc:
        raise ModelDirError(f"{d / 'config.json'} is not valid JSON ({exc})") from exc
    _validate_config(config, d / "config.json")
    return config


def load(path: str | os.PathLike[str]) -> ModelDir:
    """Load a model directory safely: JSON validated, Keras in safe mode, no custom objects, no pickle."""
    d = Path(path)
    config = read_config(d)
    try:
        scaler = Scaler.from_dict(json.loads((d / "scaler.json").read_text()), str(d / "scaler.json"))
    except ValueError as exc:
        raise ModelDirError(f"{d / 'scaler.json'} is not valid JSON ({exc})") from exc
    import keras

    try:
        model = keras.saving.load_model(d / "model.keras", compile=False, safe_mode=True)
    except Exception as exc:
        raise ModelDirError(f"{d / 'model.keras'} could not be loaded safely ({str(exc).splitlines()[0][:200]}); the file is damaged or not a plain ser-batch model") from exc
    fs = FeatureSettings.from_dict(config["features"])
    want = (None, fs.n_frames, fs.n_coeffs)
    if tuple(model.input_shape) != want or model.output_shape[-1] != len(config["classes"]):
        raise ModelDirError(
            f"{d}: model.keras takes {model.input_shape} -> {model.output_shape}, config.json says {want} -> {len(config['classes'])} classes"
        )
    if scaler.mean.shape != fs.shape:
        raise ModelDirError(f"{d}: scaler.json has shape {scaler.mean.shape}, the features {fs.shape}")
    return ModelDir(d, model, config, scaler)


def _validate_config(config: dict[str, Any], where: Path) -> None:
    if not isinstance(config, dict):
        raise ModelDirError(f"{where} holds a JSON {type(config).__name__}, not an object; the model directory is damaged")
    for key, typ in CONFIG_FIELDS.items():
        if key not in config:
            raise ModelDirError(f"{where} lacks the field {key!r}; the model directory is damaged or too old")
        if not isinstance(config[key], typ):
            raise ModelDirError(f"{where}: field {key!r} has the wrong type")
    if config["format"] != FORMAT or config["format_version"] != FORMAT_VERSION:
        raise ModelDirError(f"{where} is not a ser-batch model of format version {FORMAT_VERSION}")
    bad = [c for c in config["classes"] if c not in EMOTIONS]
    if bad or not config["classes"]:
        raise ModelDirError(f"{where}: classes {bad or '[]'} are not among {EMOTIONS}")
    try:
        FeatureSettings.from_dict(config["features"])
    except Exception as exc:
        raise ModelDirError(f"{where}: feature settings are invalid ({exc})") from exc
    if not 0.05 <= float(config["temperature"]) <= 20:
        raise ModelDirError(f"{where}: temperature {config['temperature']} is out of range")
