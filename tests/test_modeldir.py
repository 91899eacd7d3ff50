"""Tests of ser_batch.modeldir: save/load round trip, and every kind of damaged or unsafe model directory refused."""

from __future__ import annotations

import json
import re
import shutil
from pathlib import Path

import numpy as np
import pytest

from ser_batch import modeldir
from ser_batch.errors import ModelDirError
from ser_batch.features import FeatureSettings
from ser_batch.modeldir import CONFIG_FIELDS, REQUIRED, ModelDir, Scaler
from ser_batch.splits import Split

PACKAGE = Path(__file__).resolve().parents[1] / "ser_batch"
FS = FeatureSettings()
CLASSES = ["neutral", "happy", "angry"]


def _config() -> dict[str, object]:
    split = Split("holdout", 1, ("ravdess:2", "ravdess:3"), ("ravdess:4",), ("ravdess:1",))
    return {
        "name": "tiny",
        "classes": CLASSES,
        "features": FS.to_dict(),
        "model": {"model": "frames", "epochs": 0},
        "protocol": "holdout",
        "split": split.to_dict(),
    }


def _scaler(seed: int = 0) -> Scaler:
    rng = np.random.default_rng(seed)
    return Scaler(rng.normal(size=FS.shape).astype(np.float32), rng.uniform(0.5, 2.0, FS.shape).astype(np.float32))


@pytest.fixture(scope="module")
def saved(tmp_path_factory: pytest.TempPathFactory):  # type: ignore[no-untyped-def]
    """An untrained tiny model saved once: (directory, the in-memory model, its scaler)."""
    from ser_batch import models

    model = models.build("frames", FS.n_frames, FS.n_coeffs, len(CLASSES))
    scaler = _scaler()
    path = modeldir.save(tmp_path_factory.mktemp("modeldir") / "tiny", model, _config(), scaler)
    return path, model, scaler


@pytest.fixture
def copy(saved, tmp_path: Path) -> Path:  # type: ignore[no-untyped-def]
    """A fresh copy of the saved model directory, free to damage."""
    return Path(shutil.copytree(saved[0], tmp_path / "copy"))


def _edit_json(path: Path, fn) -> None:  # type: ignore[no-untyped-def]
    d = json.loads(path.read_text())
    fn(d)
    path.write_text(json.dumps(d))


def test_save_writes_plain_files(saved) -> None:  # type: ignore[no-untyped-def]
    path = saved[0]
    assert {p.name for p in path.iterdir()} == set(REQUIRED)  # no temporaries left behind
    config = json.loads((path / "config.json").read_text())
    assert config["format"] == modeldir.FORMAT and config["format_version"] == modeldir.FORMAT_VERSION
    assert {"tensorflow", "keras", "numpy"} <= set(config["versions"])
    assert config["temperature"] == 1.0


def test_round_trip_gives_identical_predictions(saved) -> None:  # type: ignore[no-untyped-def]
    path, model, scaler = saved
    md = modeldir.load(path)
    assert md.classes == CLASSES
    assert md.features == FS
    assert md.name == "tiny"
    assert md.config["split"] == _config()["split"]
    np.testing.assert_array_equal(md.scaler.mean, scaler.mean)
    np.testing.assert_array_equal(md.scaler.scale, scaler.scale)
    x = np.random.default_rng(1).normal(size=(5, *FS.shape)).astype(np.float32)
    want = model.predict(scaler.transform(x), verbose=0)
    got = md.predict_proba(x)
    assert got.shape == (5, 3)
    np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(got.sum(axis=1), 1.0, atol=1e-5)
    assert md.predict_proba(x[:0]).shape == (0, 3)


@pytest.mark.parametrize("missing", REQUIRED)
def test_missing_file_is_named(copy: Path, missing: str) -> None:
    (copy / missing).unlink()
    with pytest.raises(ModelDirError, match=re.escape(missing)):
        modeldir.load(copy)


def test_not_a_directory(tmp_path: Path) -> None:
    with pytest.raises(ModelDirError, match="model.keras"):
        modeldir.load(tmp_path / "nowhere")


@pytest.mark.parametrize("text", ["{not json", "", '{"format": "ser-batch-model",'])
def test_malformed_config_json(copy: Path, text: str) -> None:
    (copy / "config.json").write_text(text)
    with pytest.raises(ModelDirError, match="not valid JSON"):
        modeldir.read_config(copy)


@pytest.mark.parametrize("text", ["null", "42", '"a string"', "[]"])
def test_config_that_is_no_object(copy: Path, text: str) -> None:
    (copy / "config.json").write_text(text)
    with pytest.raises(ModelDirError, match="config.json"):
        modeldir.read_config(copy)


@pytest.mark.parametrize("field", list(CONFIG_FIELDS))
def test_config_missing_field_is_named(copy: Path, field: str) -> None:
    _edit_json(copy / "config.json", lambda d: d.pop(field))
    with pytest.raises(ModelDirError, match=f"lacks the field '{field}'"):
        modeldir.read_config(copy)


@pytest.mark.parametrize(
    "field, value, message",
    [
        ("classes", ["neutral", "bored"], "bored"),
        ("classes", [], "classes"),
        ("classes", "neutral", "wrong type"),
        ("format", "something-else", "format version"),
        ("format_version", 99, "format version"),
        ("temperature", 0.0, "temperature"),
        ("temperature", "hot", "wrong type"),
        ("features", {"n_mfcc": 20, "colour": "blue"}, "feature settings"),
        ("features", {"name": "wav2vec"}, "feature settings"),
    ],
)
def test_config_bad_values(copy: Path, field: str, value: object, message: str) -> None:
    _edit_json(copy / "config.json", lambda d: d.__setitem__(field, value))
    with pytest.raises(ModelDirError, match=message):
        modeldir.read_config(copy)


def _scaler_dict(**change: object) -> dict[str, object]:
    d = _scaler().to_dict()
    d.update(change)
    return d


@pytest.mark.parametrize(
    "scaler, message",
    [
        (_scaler_dict(scale=[0.0] * (FS.n_frames * FS.n_coeffs)), "non-positive"),
        (_scaler_dict(scale=[-1.0] * (FS.n_frames * FS.n_coeffs)), "non-positive"),
        (_scaler_dict(mean=[float("nan")] * (FS.n_frames * FS.n_coeffs)), "non-finite"),
        (_scaler_dict(mean=[0.0] * 10), "malformed"),
        (_scaler_dict(shape="x"), "malformed"),
        ({"mean": [0.0]}, "malformed"),
    ],
)
def test_bad_scaler(copy: Path, scaler: dict[str, object], message: str) -> None:
    (copy / "scaler.json").write_text(json.dumps(scaler))
    with pytest.raises(ModelDirError, match=message):
        modeldir.load(copy)


def test_scaler_of_wrong_shape(copy: Path) -> None:
    n = (FS.n_frames - 1) * FS.n_coeffs
    (copy / "scaler.json").write_text(json.dumps({"shape": [FS.n_frames - 1, FS.n_coeffs], "mean": [0.0] * n, "scale": [1.0] * n}))
    with pytest.raises(ModelDirError, match="scaler.json has shape"):
        modeldir.load(copy)


def test_scaler_not_json(copy: Path) -> None:
    (copy / "scaler.json").write_text("{oops")
    with pytest.raises(ModelDirError, match="scaler.json"):
        modeldir.load(copy)


def test_truncated_model_file(copy: Path) -> None:
    data = (copy / "model.keras").read_bytes()
    (copy / "model.keras").write_bytes(data[: len(data) // 2])
    with pytest.raises(ModelDirError, match="could not be loaded safely"):
        modeldir.load(copy)


@pytest.mark.parametrize("garbage", [b"", b"\x00" * 1000, b"PK\x03\x04 not really a zip", b"print('hello')\n"])
def test_garbage_model_file(copy: Path, garbage: bytes) -> None:
    (copy / "model.keras").write_bytes(garbage)
    with pytest.raises(ModelDirError, match="could not be loaded safely"):
        modeldir.load(copy)


def test_model_that_disagrees_with_config(copy: Path) -> None:
    _edit_json(copy / "config.json", lambda d: d.__setitem__("classes", ["neutral", "happy"]))  # model has 3 outputs
    with pytest.raises(ModelDirError, match="2 classes"):
        modeldir.load(copy)


def test_lambda_layer_is_refused_and_never_run(copy: Path, tmp_path: Path) -> None:
    import keras

    marker = tmp_path / "lambda-ran"
    # a lambda with a visible side effect, written without closures so Keras can serialise its bytecode
    fn = eval(f"lambda x: (__import__('pathlib').Path({str(marker)!r}).touch(), x * 2)[1]")
    inp = keras.Input((FS.n_frames, FS.n_coeffs), name="features")
    x = keras.layers.Lambda(fn)(inp)
    out = keras.layers.Dense(len(CLASSES), activation="softmax")(keras.layers.Flatten()(x))
    keras.Model(inp, out).save(copy / "model.keras")
    marker.unlink()  # building the model ran the lambda once; loading must not
    with pytest.raises(ModelDirError, match="could not be loaded safely") as exc:
        modeldir.load(copy)
    assert "lambda" in str(exc.value).lower()  # refused for the lambda, not for some other damage
    assert not marker.exists(), "loading executed code from model.keras"
    # the file is a working model with a live lambda: unsafe loading would run it (so the marker does detect it)
    keras.saving.load_model(copy / "model.keras", compile=False, safe_mode=False)
    assert marker.exists()


def _model_dir(features: FeatureSettings = FS, temperature: float = 1.0, model: object = None) -> ModelDir:
    config = {**_config(), "features": features.to_dict(), "temperature": temperature, "versions": {}}
    return ModelDir(Path("/models/tiny"), model, config, _scaler())


def test_check_features_names_each_difference() -> None:
    md = _model_dir()
    md.check_features(FeatureSettings(), "shards/a")  # same settings: fine
    with pytest.raises(ModelDirError) as exc:
        md.check_features(FeatureSettings(offset_s=0.5, n_mfcc=13), "shards/b")
    msg = str(exc.value)
    assert "offset_s: model 0.6, shards/b 0.5" in msg
    assert "n_mfcc: model 20, shards/b 13" in msg
    assert "hop_length" not in msg and "duration_s" not in msg


class _FixedModel:
    """Stands in for a Keras model: returns fixed probabilities."""

    def __init__(self, p: np.ndarray) -> None:
        self.p = p

    def __call__(self, x, training: bool = False):  # type: ignore[no-untyped-def]
        import tensorflow as tf

        return tf.tile(tf.constant(self.p[None]), [tf.shape(x)[0], 1])


def test_temperature_softens_but_keeps_the_ranking() -> None:
    p = np.array([0.7, 0.2, 0.1])
    x = np.zeros((2, *FS.shape), np.float32)
    plain = _model_dir(model=_FixedModel(p)).predict_proba(x)
    np.testing.assert_allclose(plain[0], p, rtol=1e-6)
    soft = _model_dir(temperature=2.0, model=_FixedModel(p)).predict_proba(x)
    want = np.sqrt(p) / np.sqrt(p).sum()
    np.testing.assert_allclose(soft[0], want, rtol=1e-5)
    assert soft[0].argmax() == 0 and soft[0].max() < p.max()


def test_package_never_imports_pickle_or_joblib() -> None:
    pattern = re.compile(r"^\s*(import|from)\s+(pickle|cPickle|joblib|dill|cloudpickle)\b|\b(pickle|joblib)\.(load|loads)\(", re.M)
    files = sorted(PACKAGE.rglob("*.py"))
    assert len(files) >= 10
    offenders = [str(p.relative_to(PACKAGE)) for p in files if pattern.search(p.read_text())]
    assert offenders == []
