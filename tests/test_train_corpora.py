"""Training across corpora with different label sets: the masked loss, corpus weights, cross-corpus splits,
leave-one-corpus-out, and calibration only where it is judged on speakers that did not choose it.

The shards here are written directly (tiny random features around one centre per label), not extracted: they test
the bookkeeping of ``fit``, not features, and take seconds.
"""

from __future__ import annotations

import dataclasses
import json
from collections import Counter
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from ser_batch import measures, modeldir, shards, splits
from ser_batch.corpora import CORPORA
from ser_batch.errors import ConfigError
from ser_batch.features import FeatureSettings
from ser_batch.labels import EMOTIONS
from ser_batch.objective import encode_targets, label_masks, masked_crossentropy, row_weights
from ser_batch.train import TrainSettings, _regularise, cv_calibration, fit, make_splits
from ser_batch.trainset import load_meta

FS = FeatureSettings(duration_s=0.1, n_mfcc=4)  # (4 frames, 6 coefficients): small enough to train in seconds
SETTINGS = TrainSettings(model="pool", epochs=2, batch_size=16, patience=2)

# corpus -> (speakers, labels, recordings per speaker and label); every label set is the corpus's declared one
SYNTH: dict[str, tuple[list[str], list[str], int]] = {
    "ravdess": ([f"ravdess:{a}" for a in (1, 2, 3, 4, 5, 6, 7, 11)], list(EMOTIONS), 2),
    "tess": (["tess:OAF", "tess:YAF"], sorted(CORPORA["tess"].labels or ()), 8),  # many clips, few speakers
    "turevdb": ([f"turevdb:{s}" for s in range(1, 7)], sorted(CORPORA["turevdb"].labels or ()), 2),  # calm, no neutral
}


def write_shards(out: Path, corpus: str, seed: int = 0) -> Path:
    """A complete shard folder of one synthetic corpus: each label's windows scattered around its own centre."""
    speakers, labels, per = SYNTH[corpus]
    rng = np.random.default_rng(seed)
    centres = np.random.default_rng(99).normal(0, 1, (len(EMOTIONS), *FS.shape)).astype(np.float32)
    rows, xs = [], []
    for spk in speakers:
        for label in labels:
            for i in range(per):
                rid = f"{spk}/{label}/{i}"
                for aug in ("none", "noise"):
                    rows.append({
                        "recording_id": rid, "path": f"/synth/{rid}.wav", "corpus": corpus, "speaker": spk, "label": label,
                        "augmentation": aug, "aug_param": None if aug == "none" else 0.01, "pad_s": 0.0, "start_s": 0.0,
                        "feature_set": FS.name, "feature_version": FS.version,
                    })  # fmt: skip
                    xs.append(centres[EMOTIONS.index(label)] + rng.normal(0, 0.5, FS.shape).astype(np.float32))
    table = shards.rows_to_table(rows, np.stack(xs), shards.shard_schema(*FS.shape))
    shards.write_table_atomic(table, out / "shards" / "part-00000-synth.parquet")
    manifest = {
        "format": shards.MANIFEST_FORMAT, "format_version": shards.MANIFEST_VERSION, "complete": True,
        "settings": {"features": FS.to_dict(), "augment": {"kinds": ["noise"]}},
        "inputs_fingerprint": f"synth-{corpus}", "shards": [{"name": "part-00000-synth.parquet"}],
    }  # fmt: skip
    shards.write_json_atomic(manifest, out / shards.MANIFEST)
    return out


@pytest.fixture(scope="module")
def mixed(tmp_path_factory: pytest.TempPathFactory) -> list[str]:
    """One shard folder per synthetic corpus (read-only)."""
    root = tmp_path_factory.mktemp("corpora")
    return [str(write_shards(root / c, c, seed=i)) for i, c in enumerate(SYNTH)]


@pytest.fixture(scope="module")
def mixed_split(mixed: list[str]) -> splits.Split:
    return splits.speaker_split(load_meta(mixed).meta["speaker"].unique(), fold=1, n_val=2, seed=0)


@pytest.fixture(scope="module")
def mixed_model(mixed: list[str], mixed_split: splits.Split, tmp_path_factory: pytest.TempPathFactory):  # type: ignore[no-untyped-def]
    out = tmp_path_factory.mktemp("mixed_model") / "m"
    return fit(mixed, mixed_split, SETTINGS, out=str(out)), out


# ------------------------------------------------------------------------------------------------ the masked loss


def _loss(y_true: np.ndarray, logits: np.ndarray, smoothing: float = 0.0) -> np.ndarray:
    import keras

    p = keras.ops.softmax(keras.ops.convert_to_tensor(logits.astype(np.float32)), axis=-1)
    return np.asarray(masked_crossentropy(smoothing)(keras.ops.convert_to_tensor(y_true), p))


CLASSES = ["calm", "sad", "angry"]  # a model's classes (EMOTIONS order)
A_ROW = encode_targets(np.array([1]), np.array([[False, True, True]]))  # corpus A {angry, sad}: a sad row
B_ROW = encode_targets(np.array([0]), np.array([[True, False, True]]))  # corpus B {angry, calm}: a calm row


@pytest.mark.parametrize("smoothing", [0.0, 0.1])
def test_a_label_the_rows_corpus_lacks_does_not_change_its_loss(smoothing: float) -> None:
    assert B_ROW.tolist() == [[1.0, -1.0, 0.0]]
    logits = np.array([[0.3, -1.0, 0.8]])
    base = _loss(B_ROW, logits, smoothing)
    for sad in (-5.0, 0.0, 2.0, 6.0):  # B has no `sad`: whatever the model says about sad, B's loss is the same
        np.testing.assert_allclose(_loss(B_ROW, logits + [[0.0, sad + 1.0, 0.0]], smoothing), base, rtol=1e-5)
    # ... while an allowed competitor does change it, and A's row (which has sad) does feel the sad logit
    assert not np.allclose(_loss(B_ROW, logits + [[0.0, 0.0, 2.0]], smoothing), base)
    assert not np.allclose(_loss(A_ROW, logits + [[0.0, 2.0, 0.0]], smoothing), _loss(A_ROW, logits, smoothing))


def test_the_gradient_on_a_disallowed_logit_is_zero() -> None:
    import tensorflow as tf

    logits = tf.Variable([[0.3, -1.0, 0.8]])
    with tf.GradientTape() as tape:
        loss = masked_crossentropy(0.1)(tf.constant(B_ROW), tf.nn.softmax(logits))
    grad = tape.gradient(loss, logits).numpy()
    assert abs(grad[0, 1]) < 1e-6 and abs(grad[0, 0]) > 1e-3


def test_the_loss_is_renormalised_softmax_cross_entropy() -> None:
    logits = np.array([[0.3, -1.0, 0.8]])
    allowed = np.exp(logits[0, [0, 2]])
    np.testing.assert_allclose(_loss(B_ROW, logits), [-np.log(allowed[0] / allowed.sum())], rtol=1e-5)
    # smoothing 0.1 within the two allowed labels: targets 0.95 / 0.05, nothing on sad
    p = allowed / allowed.sum()
    np.testing.assert_allclose(_loss(B_ROW, logits, 0.1), [-(0.95 * np.log(p[0]) + 0.05 * np.log(p[1]))], rtol=1e-5)


@pytest.mark.parametrize("smoothing", [0.0, 0.1])
def test_with_every_label_allowed_it_is_keras_categorical_cross_entropy(smoothing: float) -> None:
    import keras

    rng = np.random.default_rng(0)
    logits = rng.normal(0, 2, (16, 8))
    y = rng.integers(0, 8, 16)
    t = encode_targets(y, np.ones((16, 8), bool))
    p = keras.ops.softmax(keras.ops.convert_to_tensor(logits.astype(np.float32)))
    want = keras.losses.CategoricalCrossentropy(label_smoothing=smoothing, reduction=None)(t, p)
    np.testing.assert_allclose(_loss(t, logits, smoothing), np.asarray(want), rtol=1e-4, atol=1e-6)


def test_label_masks_follow_each_corpus_label_set() -> None:
    classes = list(EMOTIONS)
    corpora = np.array(["turevdb", "tess", "generic", "someday-corpus", "ravdess"])
    y = np.array([classes.index(c) for c in ("calm", "sad", "happy", "angry", "calm")])
    m = label_masks(corpora, y, classes)
    as_sets = [{c for c, ok in zip(classes, row) if ok} for row in m]
    assert as_sets[0] == set(CORPORA["turevdb"].labels or ()) and "neutral" not in as_sets[0]
    assert as_sets[1] == set(CORPORA["tess"].labels or ()) and "calm" not in as_sets[1]
    assert as_sets[2] == as_sets[3] == as_sets[4] == set(classes)  # generic (None), unknown, all eight
    assert label_masks(corpora, y, classes, enabled=False).all()
    # a model without `calm`: masks are over its classes only
    four = ["neutral", "happy", "sad", "angry"]
    assert label_masks(np.array(["turevdb"]), np.array([3]), four).tolist() == [[False, True, True, True]]


def test_mixup_lets_a_mixed_row_teach_either_rows_labels() -> None:
    import tensorflow as tf

    x = np.zeros((2, *FS.shape), np.float32)
    y = np.vstack([B_ROW, A_ROW]).astype(np.float32)  # calm row of B, sad row of A
    w = np.array([1.0, 3.0], np.float32)
    ds = _regularise(tf.data.Dataset.from_tensor_slices((x, y, w)).batch(2), dataclasses.replace(SETTINGS, mixup=0.4, specaugment=True))
    _, ym, wm = next(iter(ds))
    ym, wm = ym.numpy(), wm.numpy()
    assert ((ym < 0).sum(axis=1) <= 1).all()  # mixed with itself: its own mask; with the other row: the union (none out)
    np.testing.assert_allclose(np.maximum(ym, 0).sum(axis=1), 1.0, rtol=1e-5)
    assert ((wm >= 1.0 - 1e-6) & (wm <= 3.0 + 1e-6)).all()


# ---------------------------------------------------------------------------------------------------- weights


def _rows() -> tuple[np.ndarray, np.ndarray]:
    corpora = np.array(["tess"] * 280 + ["ravdess"] * 100 + ["urdu"] * 20)
    rng = np.random.default_rng(1)
    y = np.concatenate([rng.integers(0, 7, 280), rng.integers(0, 8, 100), rng.integers(0, 4, 20)])
    return y, corpora


@pytest.mark.parametrize("class_weights", [True, False])
def test_equal_balance_gives_every_corpus_the_same_total(class_weights: bool) -> None:
    y, corpora = _rows()
    w = row_weights(y, corpora, 8, class_weights, "equal")
    totals = {c: w[corpora == c].sum() for c in np.unique(corpora)}
    np.testing.assert_allclose(list(totals.values()), len(y) / 3, rtol=1e-5)
    assert w.mean() == pytest.approx(1.0, rel=1e-5)
    if class_weights:  # and within a corpus, each of its classes the same share
        for c in np.unique(corpora):
            per_class = [w[(corpora == c) & (y == k)].sum() for k in np.unique(y[corpora == c])]
            np.testing.assert_allclose(per_class, per_class[0], rtol=1e-5)


def test_sqrt_balance_and_none() -> None:
    y, corpora = _rows()
    w = row_weights(y, corpora, 8, False, "sqrt")
    totals = np.array([w[corpora == c].sum() for c in ("tess", "ravdess", "urdu")])
    np.testing.assert_allclose(totals / totals[-1], np.sqrt([280, 100, 20]) / np.sqrt(20), rtol=1e-5)
    assert (row_weights(y, corpora, 8, False, "none") == 1).all()
    with pytest.raises(ConfigError, match="corpus_balance"):
        row_weights(y, corpora, 8, True, "even")


def test_one_corpus_keeps_the_old_class_weights() -> None:
    y = np.array([0, 0, 0, 1, 2, 2])
    old = len(y) / (3 * np.bincount(y)[y])
    for balance in ("equal", "sqrt", "none"):
        np.testing.assert_allclose(row_weights(y, np.array(["ravdess"] * 6), 3, True, balance), old, rtol=1e-6)


def test_settings_refuse_unknown_choices() -> None:
    with pytest.raises(ConfigError, match="corpus_balance"):
        TrainSettings(corpus_balance="by-speaker")
    with pytest.raises(ConfigError, match="calibration"):
        TrainSettings(calibration="test")
    with pytest.raises(ConfigError, match="temperature 2.0: give it with calibration 'cv' only"):
        TrainSettings(temperature=2.0)
    with pytest.raises(ConfigError, match="between 0.05 and 20"):
        TrainSettings(calibration="cv", temperature=0.0)
    d = TrainSettings().to_dict()
    assert d["label_mask"] is True and d["corpus_balance"] == "equal" and d["calibration"] == "none"


# ------------------------------------------------------------------------------------------------------- splits


def test_no_test_or_validation_speaker_trains_whatever_the_corpus(mixed: list[str], mixed_split: splits.Split) -> None:
    data = load_meta(mixed)
    assert set(mixed_split.test_speakers) == {"ravdess:1", "ravdess:11"}  # RAVDESS fold 1 only: comparable
    assert Counter(splits.corpus_of(s) for s in mixed_split.val_speakers) == {"ravdess": 2, "turevdb": 2}
    plans = [mixed_split, *make_splits(data, "cv", 1, SETTINGS, folds=[1, 2, 4, 5, 6])]  # fold 3 has no actor here
    plans += [make_splits(data, "loco", 1, SETTINGS, corpus=c)[0] for c in SYNTH]
    for sp in plans:
        m = splits.masks(data.meta, sp)
        splits.check(data.meta, m, sp.protocol)
        train = set(data.meta.loc[m["train"], "speaker"])
        held = set(data.meta.loc[m["val"] | m["test"], "speaker"])
        assert train and held and not train & held, sp
    with pytest.raises(ConfigError, match="corpus to leave out"):
        make_splits(data, "loco", 1, SETTINGS)


# ----------------------------------------------------------------------------------------- fitting and the model


def test_a_mixed_model_saves_loads_safely_and_gives_eight_probabilities(mixed_model, mixed_split: splits.Split) -> None:  # type: ignore[no-untyped-def]
    result, out = mixed_model
    assert result["classes"] == list(EMOTIONS)
    assert result["test_speakers"] == list(mixed_split.test_speakers)
    assert result["temperature"] == 1.0 and result["calibration"] == "none" and "ece_uncalibrated" not in result
    md = modeldir.load(out)  # safe mode, no custom objects: the masked loss is training-time only
    assert md.classes == list(EMOTIONS)
    x = np.random.default_rng(0).normal(0, 1, (5, *FS.shape)).astype(np.float32)
    p = md.predict_proba(x)
    assert p.shape == (5, 8)
    np.testing.assert_allclose(p.sum(axis=1), 1.0, rtol=1e-5)
    config = json.loads((out / "config.json").read_text())
    assert config["model"]["label_mask"] is True and config["model"]["corpus_balance"] == "equal"
    assert config["temperature"] == 1.0
    assert "Calibration: none" in (out / "README.md").read_text()
    metrics = json.loads((out / "metrics.json").read_text())
    assert 0.0 <= metrics["ece"] <= 1.0


def test_a_streamed_regularised_fit_carries_masks_and_weights(mixed: list[str], mixed_split: splits.Split) -> None:
    settings = dataclasses.replace(SETTINGS, memory_limit_mb=0, mixup=0.2, specaugment=True, time_mask=1, coeff_mask=1, label_smoothing=0.1)
    result = fit(mixed, mixed_split, settings)
    assert result["streamed"] and result["epochs_run"] == 2
    assert np.isfinite(result["history"]["loss"]).all() and np.isfinite(result["history"]["val_loss"]).all()


def test_loco_fit_tests_only_the_left_out_corpus(mixed: list[str]) -> None:
    data = load_meta(mixed)
    (sp,) = make_splits(data, "loco", 1, SETTINGS, corpus="tess")
    result = fit(mixed, sp, SETTINGS)
    assert result["protocol"] == "loco" and result["fold"] is None
    assert result["rows"]["test"] == 2 * 7 * 8  # every original TESS recording
    assert set(result["test_speakers"]) == {"tess:OAF", "tess:YAF"}
    p, y, kept = measures.restrict(np.asarray(result["test_predictions"]["proba"]), np.asarray(result["test_predictions"]["y"]), result["classes"], ["angry", "happy", "neutral", "sad"])
    assert kept == ["neutral", "happy", "sad", "angry"] and len(y) == 2 * 4 * 8 and p.shape == (len(y), 4)


def test_validation_calibration_is_an_option(mixed: list[str], mixed_split: splits.Split) -> None:
    result = fit(mixed, mixed_split, dataclasses.replace(SETTINGS, calibration="val"))
    assert result["calibration"] == "val" and "ece_uncalibrated" in result
    assert 0.05 <= result["temperature"] <= 20


def test_a_temperature_chosen_by_cross_validation_scales_every_window(mixed: list[str], mixed_split: splits.Split) -> None:
    result = fit(mixed, mixed_split, dataclasses.replace(SETTINGS, calibration="cv", temperature=2.0))
    assert result["calibration"] == "cv" and result["temperature"] == 2.0 and "ece_uncalibrated" in result
    win = result["test_predictions"]["windows"]
    recordings = np.asarray(win["recording"])
    scaled, _ = measures.per_recording(measures.apply_temperature(np.asarray(win["proba"]), 2.0), np.asarray(win["y"]), recordings)
    np.testing.assert_allclose(result["test_predictions"]["proba"], scaled, atol=1e-6)
    raw, _ = measures.per_recording(np.asarray(win["proba"]), np.asarray(win["y"]), recordings)
    assert scaled.max(axis=1).mean() < raw.max(axis=1).mean(), "a temperature above 1 softens the probabilities"


def test_cv_calibration_judges_each_fold_with_a_temperature_from_the_others() -> None:
    rng = np.random.default_rng(0)
    results = []
    for fold in range(1, 4):  # over-confident predictions: a temperature above 1 helps, on every fold alike
        y = rng.integers(0, 3, 60)
        logits = rng.normal(0, 1, (60, 3)) + 1.5 * np.eye(3)[y]
        p = np.exp(4 * logits)
        p /= p.sum(axis=1, keepdims=True)
        rec = [f"r{i // 2}" for i in range(60)]  # two windows a recording
        y = y[::2].repeat(2)
        results.append({"fold": fold, "classes": ["a", "b", "c"], "test_predictions": {"windows": {"proba": p.tolist(), "y": y.tolist(), "recording": rec}}})
    cal = cv_calibration(results)
    assert cal is not None and cal["folds"] == 3 and len(cal["per_fold"]) == 3
    assert cal["temperature"] > 1.0
    assert cal["ece_after"] < cal["ece_before"]
    assert "out-of-fold" in cal["chosen_on"]
    assert cv_calibration(results[:1]) is None


def test_cv_json_reports_ece_before_and_after_a_temperature_from_other_folds(mixed: list[str], mixed_model, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    from ser_batch.train import _write_cv

    data = load_meta(mixed)
    (fold2,) = make_splits(data, "holdout", 2, SETTINGS)
    results = [mixed_model[0], fit(mixed, fold2, SETTINGS)]
    report = _write_cv(tmp_path, results, SETTINGS, data)
    cal = json.loads((tmp_path / "cv.json").read_text())["calibration"]
    assert cal == json.loads(json.dumps(report["calibration"]))
    assert [f["fold"] for f in cal["per_fold"]] == [1, 2] and cal["folds"] == 2
    assert {"temperature", "ece_before", "ece_after", "chosen_on"} <= set(cal)
    assert "test_predictions" not in json.loads((tmp_path / "cv.json").read_text())["folds"][0]
    assert "ECE" in (tmp_path / "report.md").read_text()


def test_restrict_renormalises_over_the_kept_labels() -> None:
    proba = np.array([[0.5, 0.2, 0.3], [0.1, 0.1, 0.8], [0.6, 0.3, 0.1]])
    p, y, kept = measures.restrict(proba, np.array([0, 2, 1]), ["neutral", "calm", "happy"], ["happy", "neutral"])
    assert kept == ["neutral", "happy"]
    assert y.tolist() == [0, 1]  # the calm row is left out
    np.testing.assert_allclose(p, [[0.5 / 0.8, 0.3 / 0.8], [0.1 / 0.9, 0.8 / 0.9]])


def test_fit_temperature_on_recordings_scales_windows_before_averaging() -> None:
    rng = np.random.default_rng(3)
    y = rng.integers(0, 4, 200)
    p = np.exp(5 * (rng.normal(0, 1, (200, 4)) + np.eye(4)[y]))
    p /= p.sum(axis=1, keepdims=True)
    rec = np.arange(200) // 4
    y = y[rec * 4]  # one label per recording
    t = measures.fit_temperature(p, y, rec)
    assert 0.05 < t < 20
    nll = lambda temp: -np.log(measures.per_recording(measures.apply_temperature(p, temp), y, rec)[0][np.arange(50), y[::4]]).mean()  # noqa: E731
    assert nll(t) <= min(nll(t * 1.2), nll(t / 1.2)) + 1e-9
    assert pd.Series(rec).nunique() == 50


def test_the_corpora_benchmark_runs_and_reuses_finished_fits(mixed: list[str], tmp_path: Path) -> None:
    import importlib.util

    from conftest import REPO

    spec = importlib.util.spec_from_file_location("bench_corpora", REPO / "benchmarks" / "corpora.py")
    assert spec is not None and spec.loader is not None
    bench = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(bench)
    argv = ["--features", *mixed, "--corpora", "tess,turevdb", "--epochs", "1", "--batch-size", "16", "--out", str(tmp_path / "c.json"), "--cache", str(tmp_path / "cache")]
    report = bench.main(argv)
    assert set(report["results"]) == {"loco-tess", "loco-turevdb"}
    tur = report["results"]["loco-turevdb"]
    assert tur["labels"] == ["calm", "happy", "sad", "angry"] and tur["four_present"] == ["angry", "happy", "sad"]
    md = (tmp_path / "c.md").read_text()
    assert "| turevdb | 6 | 48 |" in md and "(3 present)" in md
    again = bench.main(argv)  # every fit cached: the same figures without training
    assert again["results"] == json.loads(json.dumps(report["results"]))
