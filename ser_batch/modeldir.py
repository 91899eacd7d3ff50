"""Save and load a model directory: ``model.keras`` plus JSON, validated on load, never unpickled.

    model.keras    Keras v3 file, loaded in safe mode (no Lambda layers, no custom objects)
    config.json    classes, feature settings, augmentation, model, protocol + split, data fingerprints, versions
    scaler.json    per-(frame, coeff) mean and scale fitted on training rows only; a normalised model's norm_prior
    metrics.json   evaluation on the test speakers (written by train/evaluate)
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass, fields
from importlib.metadata import version
from pathlib import Path
from typing import Any

import numpy as np

from ser_batch.encoder import CREDIT as ENCODER_CREDIT
from ser_batch.errors import ModelDirError
from ser_batch.features import FeatureSettings
from ser_batch.labels import EMOTIONS
from ser_batch.measures import apply_temperature
from ser_batch.shards import write_json_atomic
from ser_batch.windows import frames_inside, past_end

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
    """Standardisation fitted on training rows: (x - mean) / scale, per (frame, coeff). A normalised model's
    ``prior``: the moments (3, coeffs) added to every group's before its statistics (``features.mean_std``)."""

    mean: np.ndarray
    scale: np.ndarray
    prior: np.ndarray | None = None

    def transform(self, x: np.ndarray) -> np.ndarray:
        """Standardised ``x``; frames left out (NaN, ``windows.past_end``) become exactly 0, which a model reading
        ``inside`` frames masks (``models._linear``)."""
        z = ((x - self.mean) / self.scale).astype(np.float32, copy=False)
        return np.nan_to_num(z, copy=False, nan=0.0)  # in place: no second array on the scoring path

    def to_dict(self) -> dict[str, Any]:
        d = {"shape": list(self.mean.shape), "mean": self.mean.ravel().tolist(), "scale": self.scale.ravel().tolist()}
        return d if self.prior is None else {**d, "norm_prior": self.prior.tolist()}

    @classmethod
    def from_dict(cls, d: dict[str, Any], where: str = "scaler.json") -> Scaler:
        try:
            shape = tuple(int(v) for v in d["shape"])
            mean = np.asarray(d["mean"], np.float32).reshape(shape)
            scale = np.asarray(d["scale"], np.float32).reshape(shape)
            prior = None if d.get("norm_prior") is None else np.asarray(d["norm_prior"], np.float64).reshape(3, shape[-1])
        except (KeyError, TypeError, ValueError) as exc:
            raise ModelDirError(f"{where} is malformed ({exc}); the model directory is damaged") from exc
        if not (np.isfinite(mean).all() and np.isfinite(scale).all() and (scale > 0).all()):
            raise ModelDirError(f"{where} holds non-finite or non-positive values; the model directory is damaged")
        if prior is not None and not (np.isfinite(prior).all() and (prior[0] > 0).all() and (prior[2] >= 0).all()):
            raise ModelDirError(f"{where}: norm_prior holds non-finite or negative moments; the model directory is damaged")
        return cls(mean, scale, prior)


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
    def speaker_norm(self) -> bool:
        """Whether features must be z-scored per speaker (with that speaker's own statistics) before the scaler."""
        return self.config["model"].get("speaker_norm") is True

    @property
    def frames(self) -> str:
        """Which of a window's frames the model reads (``windows.FRAMES``): ``inside`` leaves those past the
        recording's end out."""
        return str(self.config["model"].get("frames", "all"))

    def leave_out_padding(self, x: np.ndarray, pad_s: np.ndarray) -> np.ndarray:
        """Shard windows (n, frames, coeffs) as this model reads them, in place: for a model reading the frames
        ``inside``, each window's frames past its recording's end (from its ``pad_s``) are NaN, as in training and
        ``score``. Returns ``x``."""
        if self.frames == "inside":
            past_end(x, frames_inside(self.features.duration_s, np.asarray(pad_s), self.features.frame_s))
        return x

    @property
    def norm_by(self) -> str:
        """Whose statistics a normalised model takes: each speaker's, or each corpus's (when scoring: the job's)."""
        return str(self.config["model"].get("norm_by", "speaker"))

    @property
    def name(self) -> str:
        return str(self.config["name"])

    @property
    def version(self) -> str:
        return str(self.config.get("model_version", self.config["versions"].get("ser-batch", "?")))

    def predict_proba(self, x: np.ndarray, batch_size: int = 256) -> np.ndarray:
        """Class probabilities (rows, classes) for raw (rows, frames, coeffs) features, temperature applied."""
        if len(x) == 0:
            return np.zeros((0, len(self.classes)), np.float32)
        z = self.scaler.transform(x)
        p = np.concatenate([np.asarray(_infer(self.model)(z[i : i + batch_size])) for i in range(0, len(z), batch_size)])
        return apply_temperature(p.astype(np.float64), self.temperature).astype(np.float32)

    def check_features(self, other: FeatureSettings, where: str) -> None:
        """Refuse data made with other feature settings, naming each difference."""
        mine = self.features.to_dict()
        theirs = other.to_dict()
        diff = [f"{k}: model {mine.get(k)!r}, {where} {theirs.get(k)!r}" for k in sorted(set(mine) | set(theirs)) if mine.get(k) != theirs.get(k)]
        if diff:
            raise ModelDirError(f"model {self.path} was trained on other features than {where}: " + "; ".join(diff))


_INFER: dict[int, Any] = {}


def _infer(model: Any) -> Any:
    """A compiled inference call per model: Keras' predict() sets up a data pipeline on every call, which costs
    more than the model itself on the few hundred windows a scoring batch holds."""
    fn = _INFER.get(id(model))
    if fn is None:
        import tensorflow as tf

        @tf.autograph.experimental.do_not_convert
        def call(x: Any) -> Any:
            return model(x, training=False)

        fn = _INFER[id(model)] = tf.function(call, reduce_retracing=True)
    return fn


DEFAULT_MODEL_NAME = "ser-default"


def default_model() -> Path:
    """The shipped model: $SER_BATCH_MODEL, else models/ser-default of this checkout."""
    env = os.environ.get("SER_BATCH_MODEL")
    if env:
        return Path(env)
    return Path(__file__).resolve().parents[1] / "models" / DEFAULT_MODEL_NAME


def versions() -> dict[str, str]:
    """Versions of the packages that shape a model's numbers."""
    out = {}
    for pkg in ("ser-batch", "tensorflow", "keras", "librosa", "numpy", "scikit-learn", "ctranslate2"):
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
    _inference_copy(model).save(tmp)
    os.replace(tmp, out / "model.keras")
    write_json_atomic(full, out / "config.json")
    return out


def _inference_copy(model: Any) -> Any:
    """The model without optimizer state (a third of the size): model dirs are for inference and evaluation."""
    import keras

    copy = keras.models.clone_model(model)
    copy.set_weights(model.get_weights())
    return copy


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


def read_prior(path: str | os.PathLike[str]) -> np.ndarray | None:
    """A normalised model's ``norm_prior`` moments from scaler.json (cheap; no TensorFlow), or None."""
    where = Path(path) / "scaler.json"
    try:
        return Scaler.from_dict(json.loads(where.read_text()), str(where)).prior
    except (OSError, ValueError) as exc:
        raise ModelDirError(f"{where} could not be read ({exc}); the model directory is damaged") from exc


def _validate_config(config: dict[str, Any], where: Path) -> None:
    if not isinstance(config, dict):
        raise ModelDirError(f"{where} holds a JSON {type(config).__name__}, not an object; the model directory is damaged")
    for key, typ in CONFIG_FIELDS.items():
        if key not in config:
            raise ModelDirError(f"{where} lacks the field {key!r}; the model directory is damaged or too old")
        if not isinstance(config[key], typ) or isinstance(config[key], bool):  # JSON true is no number
            raise ModelDirError(f"{where}: field {key!r} has the wrong type")
    if config["format"] != FORMAT or config["format_version"] != FORMAT_VERSION:
        raise ModelDirError(f"{where} is not a ser-batch model of format version {FORMAT_VERSION}")
    bad = [c for c in config["classes"] if c not in EMOTIONS]
    if bad or not config["classes"]:
        raise ModelDirError(f"{where}: classes {bad or '[]'} are not among {EMOTIONS}")
    if len(set(config["classes"])) != len(config["classes"]):
        raise ModelDirError(f"{where}: classes {config['classes']} name a class twice")
    try:
        fs = FeatureSettings.from_dict(config["features"])
    except Exception as exc:
        raise ModelDirError(f"{where}: feature settings are invalid ({exc})") from exc
    for f in fields(FeatureSettings):  # numbers must be numbers: a string rate would only fail later, on a worker
        value, want = getattr(fs, f.name), type(f.default)
        number = isinstance(value, (int, float)) and not isinstance(value, bool)
        if not (number if want is float else number and isinstance(value, int) if want is int else isinstance(value, want)):
            raise ModelDirError(f"{where}: feature setting {f.name!r} has the wrong type ({value!r})")
    if not isinstance(config["model"].get("speaker_norm", False), bool):
        raise ModelDirError(f"{where}: model setting speaker_norm must be true or false")
    if config["model"].get("frames", "all") not in ("all", "inside"):
        raise ModelDirError(f"{where}: model setting frames must be 'all' or 'inside'")
    if config["model"].get("norm_by", "speaker") not in ("speaker", "corpus"):
        raise ModelDirError(f"{where}: model setting norm_by must be 'speaker' or 'corpus'")
    if not 0.05 <= float(config["temperature"]) <= 20:
        raise ModelDirError(f"{where}: temperature {config['temperature']} is out of range")


CREDITS: dict[str, str] = {
    "ravdess": "RAVDESS — Livingstone SR, Russo FA (2018) The Ryerson Audio-Visual Database of Emotional Speech and "
    "Song (RAVDESS). PLoS ONE 13(5): e0196391. https://doi.org/10.1371/journal.pone.0196391 — CC BY-NC-SA 4.0",
    "tess": "TESS — Pichora-Fuller MK, Dupuis K (2020) Toronto emotional speech set (TESS), "
    "https://doi.org/10.5683/SP2/E8H2MF — CC BY-NC-ND 4.0",
    "cremad": "CREMA-D — Cao H et al. (2014) CREMA-D: Crowd-sourced Emotional Multimodal Actors Dataset. "
    "IEEE Trans. Affective Computing 5(4) — Open Database License",
    "savee": "SAVEE — Haq S, Jackson PJB (2010) Multimodal emotion recognition. In Machine Audition, IGI Global",
    "emodb": "EmoDB — Burkhardt F et al. (2005) A database of German emotional speech. Interspeech 2005",
    "ased": "ASED (Amharic) — Retta EA et al., A new Amharic speech emotion dataset and classification benchmark, "
    "ACM TALLIP — no licence stated: research use",
    "nemo": "nEMO (Polish) — Christop I (2024) nEMO: Dataset of Emotional Speech in Polish. LREC-COLING 2024 — CC BY-NC-SA 4.0",
    "urdu": "URDU — Latif S, Qayyum A, Usman M, Qadir J (2018) Cross lingual speech emotion recognition: Urdu vs. "
    "Western languages. FIT 2018 — research purposes only",
    "turevdb": "TurEV-DB (Turkish) — Canpolat SF, Ormanoğlu Z, Zeyrek D (2020) Turkish Emotion Voice Database "
    "(TurEV-DB). SLTU/CCURL 2020 — CC BY-NC-ND 4.0",
    "emotiontts_kor": "emotiontts open DB (Korean, public sample) — KAIST / Selvas AI (2017-2018) — research use only, "
    "no commercial use",
}


def write_model_card(path: str | os.PathLike[str], corpora: list[str], extra: str = "") -> Path:
    """README.md of a model directory: data and credit, protocol, figures on unseen speakers, known limits."""
    d = Path(path)
    config = read_config(d)
    metrics = json.loads((d / "metrics.json").read_text()) if (d / "metrics.json").is_file() else None
    fs = config["features"]
    lines = [
        f"# {config['name']} (version {config.get('model_version', '?')})",
        "",
        f"Speech emotion recognition model made by ser-batch {config['versions'].get('ser-batch', '?')}"
        + (f" with the job spec `{config['job']}`" if config.get("job") else "")
        + f". Classes: {', '.join(config['classes'])}.",
        "",
        "## Data and credit",
        "",
        *(f"- {CREDITS.get(c, c)}" for c in corpora),
        *([f"- {ENCODER_CREDIT}"] if fs["name"] == "whisper_base" else []),
        "",
        "The corpora carry non-commercial licences (NC); this model inherits them: **non-commercial use only**.",
        "",
        "## How it was made",
        "",
        f"- Features: `{fs['name']}` v{fs['version']}, {fs['duration_s']} s windows from {fs['offset_s']} s at "
        f"{fs['sample_rate']} Hz, frame {fs['frame_length']} / hop {fs['hop_length']}.",
        f"- Model: `{config['model'].get('model', '?')}`; training settings: `{json.dumps(config['model'], sort_keys=True)}`.",
        f"- Augmentation (training rows only): `{json.dumps(config.get('augment'), sort_keys=True)}`.",
        f"- Protocol: {config.get('protocol_note', config['protocol'])}",
        {
            "none": "- Calibration: none; the probabilities are the model's own.",
            "cv": f"- Calibration: temperature {config.get('temperature', 1.0):.3f}, chosen beforehand on the out-of-fold "
            "predictions of this configuration's speaker cross-validation (every window's probabilities scaled).",
        }.get(config["model"].get("calibration"), f"- Temperature (calibration, fitted on validation speakers): {config.get('temperature', 1.0):.3f}."),
        "",
    ]
    prior_s = float(config["model"].get("norm_prior_s") or 0.0)
    whose = "training corpora's" if config["model"].get("norm_by") == "corpus" else "training speakers'"
    shrunk = (f" Every group's statistics are shrunk toward the {whose} typical statistics, worth {prior_s:g} s of speech, so a lone recording or a small job is judged against "
              "them (`predict` does so).") if prior_s > 0 else ""
    if config["model"].get("speaker_norm") is True and config["model"].get("norm_by") == "corpus":
        lines += [
            "**Corpus-normalised.** Features are z-scored with each corpus's own statistics before the model, in "
            "training, and when scoring with the statistics of the whole job (`ser-batch score --speakers job`, the "
            "default for this model; a CSV path,speaker groups recordings otherwise). Score an archive of many "
            "recordings whose emotions are mixed; a job of mostly one emotion normalises part of that away." + shrunk,
            "",
        ]
    elif config["model"].get("speaker_norm") is True:
        lines += [
            "**Speaker-normalised.** Features are z-scored with each speaker's own statistics before the model, in "
            "training and when scoring: `ser-batch score` gathers them per speaker first (`--speakers layout | "
            "recording | FILE.csv`). Give it several recordings of each speaker"
            + ("." if shrunk else "; with one short clip the statistics are that clip's own and the figures below do not apply.")
            + " The test speakers' statistics came from their own unlabelled recordings, as `score` does." + shrunk,
            "",
        ]
    if metrics:
        lines += [
            "## Figures on unseen speakers",
            "",
            f"{metrics['n']} test recordings. UAR {metrics['uar']:.3f}, accuracy {metrics['accuracy']:.3f}, "
            f"macro F1 {metrics['macro_f1']:.3f}, weighted F1 {metrics['weighted_f1']:.3f}"
            + (f", expected calibration error {metrics['ece']:.3f}" if "ece" in metrics else "")
            + (f" ({metrics['ece_uncalibrated']:.3f} before temperature scaling)" if "ece_uncalibrated" in metrics else "")
            + "."
            + (f" Each test recording judged alone (its own statistics shrunk toward the prior, as `predict` does): UAR "
               f"{metrics['uar_alone']:.3f}." if "uar_alone" in metrics else ""),
            "",
            "| class | recall | precision | F1 | support |",
            "|---|---|---|---|---|",
            *(
                f"| {c} | {v['recall']:.3f} | {v['precision']:.3f} | {v['f1']:.3f} | {v['support']} |"
                for c, v in metrics["per_class"].items()
            ),
            "",
            "Confusion matrix: `confusion.png`; full report: `report.md`.",
            "",
        ]
    if extra:
        lines += [extra, ""]
    lines += [
        "## Known limits",
        "",
        "- Acted emotion, read sentences, studio recordings, North American English, adult actors: real calls "
        "(spontaneous, noisy, narrow-band, other languages and ages) will score lower, likely much lower; "
        "trained on RAVDESS, the seed's features are at chance on other corpora."
        if set(corpora) <= {"ravdess", "tess"} else
        "- Mostly acted emotion in studio recordings (URDU alone is natural TV speech), in the languages of the corpora "
        "above: on a corpus never trained on, 4-class UAR was 0.29-0.53 (leave one corpus out, README); real calls "
        "(spontaneous, noisy, narrow-band) will likely score lower.",
        "- Eight categories only; mixed and subtle emotions are forced into one of them.",
        "- Figures come from a handful of test speakers and carry a spread of several points between speaker folds.",
        "- Not for decisions about people (hiring, credit, policing, health) — emotion recognition from voice is "
        "unreliable across speakers and cultures.",
        "",
    ]
    (d / "README.md").write_text("\n".join(lines))
    return d / "README.md"
