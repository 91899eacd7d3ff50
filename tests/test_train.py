"""Tests of ser_batch.train and evaluate end to end on a tiny, separable synthetic RAVDESS-layout corpus.

One augmented extract per module (on the session's Dask cluster from conftest), in-process ``fit`` for the
training checks, and the CLI ``train`` + ``evaluate`` once (one local cluster of one worker).
"""

from __future__ import annotations

import dataclasses

import json
import shutil
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from typer.testing import CliRunner

from conftest import write_synth
from ser_batch import evaluate as ev
from ser_batch import measures, models, modeldir, shards, splits
from ser_batch.augment import AugmentSettings
from ser_batch.errors import ConfigError, ModelDirError
from ser_batch.features import FeatureSettings
from ser_batch.train import TrainSettings, fit, make_splits
from ser_batch.trainset import Data, load_meta

# Fold 1 of the EmoBox RAVDESS folds tests actors 1, 11, 20, 21: here 1 and 11 are tested, the other six train
# or validate. Three acoustically distinct 'emotions' (harmonic tone, rising chirp, noise bursts over a tone).
ACTORS = (1, 2, 3, 4, 5, 6, 7, 11)
EMOTION_CODES = {"01": "neutral", "03": "happy", "05": "angry"}
REPS = ("01", "02")
CLASSES = ["neutral", "happy", "angry"]  # EMOTIONS order
CHANCE = 1 / len(CLASSES)
# 6 epochs: at 3 the tiny model was still undertrained for some seeds and CPUs (one seed in six scored chance on the
# test actors, and CI once scored 0.5); at 6 every seed tried scores 1.0. Patience 6 never stops it early.
SETTINGS = TrainSettings(model="frames", epochs=6, batch_size=8, patience=6)


def write_corpus(root: Path, actors=ACTORS, reps=REPS) -> Path:  # type: ignore[no-untyped-def]
    """RAVDESS layout, 3 s mono 16 kHz clips, so the 2.5 s window from 0.6 s fits."""
    i = 0
    for actor in actors:
        for code in EMOTION_CODES:
            for rep in reps:
                path = root / f"Actor_{actor:02d}" / f"03-01-{code}-01-01-{rep}-{actor:02d}.wav"
                write_synth(path, code, actor, 16_000, 3.0, 1, "wav16", seed=1000 + i)
                i += 1
    return root


@pytest.fixture(scope="module")
def features(tmp_path_factory: pytest.TempPathFactory, dask_scheduler: str) -> Path:
    """Augmented shards of the tiny corpus (3 shards, so streaming crosses shard borders). Read-only."""
    from ser_batch.extract import extract

    root = write_corpus(tmp_path_factory.mktemp("train_corpus"))
    out = tmp_path_factory.mktemp("train_features") / "features"
    result = extract([root], out, augment_settings=AugmentSettings(), files_per_shard=16, scheduler=dask_scheduler, progress=False)
    assert result.files_ok == len(ACTORS) * len(EMOTION_CODES) * len(REPS) and result.files_failed == 0
    assert result.shards == 3
    return out


@pytest.fixture(scope="module")
def split(features: Path) -> splits.Split:
    return splits.speaker_split(load_meta([str(features)]).meta["speaker"].unique(), fold=1, n_val=2, seed=0)


@pytest.fixture(scope="module")
def holdout(features: Path, split: splits.Split, tmp_path_factory: pytest.TempPathFactory):  # type: ignore[no-untyped-def]
    """One in-process fit on fold 1, saved to a model directory: (result, model dir)."""
    out = tmp_path_factory.mktemp("train_model") / "tiny"
    result = fit([str(features)], split, SETTINGS, out=str(out))
    return result, out


def _test_rows(features: Path, split: splits.Split) -> tuple[pd.DataFrame, np.ndarray]:
    meta, x = shards.read_all(features)
    keep = ((meta["augmentation"] == "none") & meta["speaker"].isin(split.test_speakers)).to_numpy()
    return meta[keep].reset_index(drop=True), x[keep]


def test_split_of_the_tiny_corpus(split: splits.Split) -> None:
    assert split.test_speakers == ("ravdess:1", "ravdess:11")
    assert len(split.val_speakers) == 2 and len(split.train_speakers) == 4


def test_fit_beats_chance_on_unseen_speakers(holdout, split: splits.Split) -> None:  # type: ignore[no-untyped-def]
    result, _ = holdout
    assert result["accuracy"] > CHANCE + 0.2, result
    assert result["uar"] > CHANCE + 0.2, result
    assert result["classes"] == CLASSES
    assert result["test_speakers"] == list(split.test_speakers)
    # test and validation: originals of their speakers only; training: its speakers' originals and 3 copies each
    assert result["rows"] == {"train": 4 * 6 * 4, "val": 2 * 6, "test": 2 * 6}
    assert result["n"] == 12
    assert result["epochs_run"] == SETTINGS.epochs
    assert not result["streamed"]
    assert {"loss", "val_loss", "accuracy", "val_accuracy"} <= set(result["history"])
    assert 0.0 <= result["ece"] <= 1.0


def test_model_dir_records_what_made_it(holdout, split: splits.Split) -> None:  # type: ignore[no-untyped-def]
    result, out = holdout
    for name in ("model.keras", "config.json", "scaler.json", "metrics.json", "report.md", "confusion.png", "curves.png", "history.json"):
        assert (out / name).is_file(), name
    config = modeldir.read_config(out)
    assert config["classes"] == CLASSES
    assert config["protocol"] == "holdout"
    assert splits.Split.from_dict(config["split"]) == split
    assert config["features"] == FeatureSettings().to_dict()
    assert config["augment"] == AugmentSettings().to_dict()
    assert config["model"] == SETTINGS.to_dict()
    assert {"ser-batch", "tensorflow", "keras", "numpy", "librosa"} <= set(config["versions"])
    assert "speaker-independent" in config["protocol_note"]
    metrics = json.loads((out / "metrics.json").read_text())
    assert metrics["accuracy"] == pytest.approx(result["accuracy"])
    assert "history" not in metrics and "test_predictions" not in metrics
    report = (out / "report.md").read_text()
    assert "speaker-independent" in report and "ravdess:11" in report


def test_loaded_model_reproduces_reported_metrics(holdout, features: Path, split: splits.Split) -> None:  # type: ignore[no-untyped-def]
    result, out = holdout
    md = modeldir.load(out)
    meta, x = _test_rows(features, split)
    assert len(meta) == result["n"]
    y = meta["label"].map(CLASSES.index).to_numpy()
    proba = md.predict_proba(x)
    m = measures.metrics(y, proba.argmax(axis=1), md.classes)
    assert m["accuracy"] == pytest.approx(result["accuracy"], abs=1e-9)
    assert m["confusion"] == result["confusion"]
    assert measures.expected_calibration_error(proba, y) == pytest.approx(result["ece"], abs=1e-4)
    # the in-memory predictions (for ensembles in benchmarks/accuracy.py) are these rows' calibrated probabilities
    assert result["test_predictions"]["y"] == y.tolist()
    np.testing.assert_allclose(result["test_predictions"]["proba"], proba, atol=1e-5)


def test_scaler_is_fitted_on_training_rows_only(holdout, features: Path, split: splits.Split) -> None:  # type: ignore[no-untyped-def]
    _, out = holdout
    md = modeldir.load(out)
    meta, x = shards.read_all(features)
    train = meta["speaker"].isin(split.train_speakers).to_numpy()
    np.testing.assert_allclose(md.scaler.mean, x[train].mean(axis=0), rtol=1e-3, atol=1e-3)
    assert not np.allclose(md.scaler.mean, x.mean(axis=0), rtol=1e-3, atol=1e-3)


def test_evaluate_counts_only_unseen_speakers(holdout, features: Path, split: splits.Split, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    result, out = holdout
    m = ev.evaluate(out, [features], tmp_path / "eval")
    assert m["speakers"] == sorted(split.test_speakers)
    assert not set(m["speakers"]) & (set(split.train_speakers) | set(split.val_speakers))
    assert m["n"] == result["n"]  # originals of the test speakers only
    assert m["accuracy"] == pytest.approx(result["accuracy"], abs=1e-9)
    for name in ("metrics.json", "report.md", "confusion.png"):
        assert (tmp_path / "eval" / name).is_file()


def test_evaluate_normalises_each_speaker_for_a_speaker_normalised_model(features: Path, split: splits.Split, tmp_path: Path) -> None:
    """evaluate must standardise each unseen speaker with their own statistics, as training did for its test rows."""
    out = tmp_path / "tiny-norm"
    result = fit([str(features)], split, dataclasses.replace(SETTINGS, speaker_norm=True), out=str(out))
    m = ev.evaluate(out, [features])
    assert m["n"] == result["n"]
    assert m["accuracy"] == pytest.approx(result["accuracy"], abs=1e-9)
    assert m["uar"] == pytest.approx(result["uar"], abs=1e-9)


def test_evaluate_refuses_other_feature_settings(holdout, features: Path, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    _, out = holdout
    other = Path(shutil.copytree(features, tmp_path / "other"))
    manifest = json.loads((other / "manifest.json").read_text())
    manifest["settings"]["features"].update(offset_s=0.5, n_mfcc=13)
    (other / "manifest.json").write_text(json.dumps(manifest))
    with pytest.raises(ModelDirError) as exc:
        ev.evaluate(out, [other])
    assert "offset_s" in str(exc.value) and "n_mfcc" in str(exc.value)
    assert "hop_length" not in str(exc.value)


def test_streaming_fit_trains_and_beats_chance(features: Path, split: splits.Split) -> None:
    result = fit([str(features)], split, dataclasses.replace(SETTINGS, memory_limit_mb=0))
    assert result["streamed"]
    assert result["epochs_run"] == SETTINGS.epochs  # the generator is read afresh every epoch
    assert result["rows"] == {"train": 96, "val": 12, "test": 12}
    assert result["accuracy"] > CHANCE + 0.2, result


def test_the_linear_model_learns_and_loads_safely(features: Path, split: splits.Split, tmp_path: Path) -> None:
    result = fit([str(features)], split, dataclasses.replace(SETTINGS, model="linear", epochs=12, learning_rate=1e-2), out=str(tmp_path / "lin"))
    assert result["uar"] > CHANCE + 0.2, result
    meta, x = _test_rows(features, split)
    proba = modeldir.load(tmp_path / "lin").predict_proba(x)  # loads in Keras safe mode: built-in layers only
    assert proba.shape == (len(meta), len(CLASSES)) and np.allclose(proba.sum(axis=1), 1.0, atol=1e-5)


@pytest.mark.parametrize("name", models.MODELS)
def test_build_is_seeded_whatever_pythons_random_did(name: str) -> None:
    """Keras draws unseeded initialisers from Python's global ``random``, which a Dask worker's threads draw from
    too: the same job then trained another model. ``build``'s seed alone must fix the weights."""
    import random

    a = models.build(name, 20, 8, 3, seed=1).get_weights()
    random.random()
    b = models.build(name, 20, 8, 3, seed=1).get_weights()
    c = models.build(name, 20, 8, 3, seed=2).get_weights()
    assert all(np.array_equal(x, y) for x, y in zip(a, b, strict=True))
    assert not all(np.array_equal(x, y) for x, y in zip(a, c, strict=True))


def test_the_linear_models_l2_penalty_is_a_setting() -> None:
    def penalty(model: object) -> float:
        dense = [layer for layer in model.layers if layer.__class__.__name__ == "Dense"]  # type: ignore[attr-defined]
        return float(dense[-1].kernel_regularizer.l2)

    assert penalty(models.build("linear", 20, 8, 3)) == pytest.approx(1e-3)  # what the shipped linear models had
    assert penalty(models.build("linear", 20, 8, 3, l2=0.01)) == pytest.approx(0.01)
    with pytest.raises(ConfigError, match="l2"):
        TrainSettings(l2=-1.0)


def test_fit_refuses_a_leaky_split(features: Path, split: splits.Split) -> None:
    leaky = splits.Split("holdout", 1, (*split.train_speakers, split.test_speakers[0]), split.val_speakers, split.test_speakers)
    with pytest.raises(ConfigError, match="train and test"):
        fit([str(features)], leaky, SETTINGS)


def _data(speakers: list[str]) -> Data:
    meta = pd.DataFrame({"speaker": speakers, "label": "happy", "augmentation": "none"})
    return Data(("x",), meta, FeatureSettings(), None, {})


def test_make_splits_cv_gives_six_disjoint_test_sets() -> None:
    ravdess = [f"ravdess:{a}" for a in range(1, 25)]
    data = _data(ravdess + ["tess:OAF", "tess:YAF"])
    plan = make_splits(data, "cv", 1, TrainSettings())
    assert [sp.fold for sp in plan] == list(range(1, 7))
    assert all(sp.protocol == "cv" for sp in plan)
    tests = [set(sp.test_speakers) for sp in plan]
    assert all(len(t) == 4 for t in tests)
    assert set().union(*tests) == set(ravdess)
    assert sum(len(t) for t in tests) == 24  # pairwise disjoint
    for sp in plan:
        assert {"tess:OAF", "tess:YAF"} <= set(sp.train_speakers)
        assert not set(sp.val_speakers) & set(sp.test_speakers)
        assert len(sp.val_speakers) == TrainSettings().n_val_speakers


def test_make_splits_other_protocols() -> None:
    data = _data([f"ravdess:{a}" for a in range(1, 25)])
    (hold,) = make_splits(data, "holdout", 4, TrainSettings())
    assert hold.fold == 4 and set(hold.test_speakers) == {f"ravdess:{a}" for a in splits.RAVDESS_EMOBOX_FOLDS[4]}
    (rand,) = make_splits(data, "seed-random", 1, TrainSettings(seed=3))
    assert rand.protocol == "seed-random" and rand.test_speakers == () and rand.seed == 3
    with pytest.raises(ConfigError, match="unknown protocol"):
        make_splits(data, "random", 1, TrainSettings())


def test_protocol_all_trains_every_speaker_but_a_few_validation_speakers_per_corpus() -> None:
    ravdess = [f"ravdess:{a}" for a in range(1, 25)]
    ased = [f"ased:{a}" for a in range(1, 10)]
    (sp,) = make_splits(_data(ravdess + ased + ["tess:OAF", "tess:YAF"]), "all", 1, TrainSettings())
    assert sp.protocol == "all" and sp.test_speakers == ()
    assert {splits.corpus_of(s) for s in sp.val_speakers} == {"ravdess", "ased"}  # TESS's 2 speakers both train
    assert len(sp.val_speakers) == 2 * TrainSettings().n_val_speakers
    assert set(sp.train_speakers) | set(sp.val_speakers) == set(ravdess + ased + ["tess:OAF", "tess:YAF"])
    assert not set(sp.train_speakers) & set(sp.val_speakers)


def test_a_model_trained_on_all_speakers_saves_no_figures_and_loads(features: Path, tmp_path: Path) -> None:
    (sp,) = make_splits(load_meta([str(features)]), "all", 1, SETTINGS)
    result = fit([str(features)], sp, SETTINGS, out=str(tmp_path / "all"))
    assert "uar" not in result and result["rows"]["test"] == 0 and result["rows"]["train"] == 6 * 6 * 4
    assert not (tmp_path / "all" / "metrics.json").exists()  # nothing was held out: no figure pretends otherwise
    assert "no test speakers" in (tmp_path / "all" / "report.md").read_text()
    assert modeldir.read_config(tmp_path / "all")["protocol"] == "all"
    meta, x = shards.read_all(features)
    assert modeldir.load(tmp_path / "all").predict_proba(x[:4]).shape == (4, len(CLASSES))


def test_cli_train_and_evaluate(features: Path, tmp_path: Path) -> None:
    from ser_batch.cli import app

    runner = CliRunner()
    model = tmp_path / "cli-model"
    r = runner.invoke(app, ["train", str(features), "--out", str(model), "--model", "frames", "--epochs", "1", "--batch-size", "8", "--workers", "1", "-q"])
    assert r.exit_code == 0, r.output
    assert "unseen test speakers (fold 1)" in r.output
    for name in ("model.keras", "config.json", "scaler.json", "metrics.json", "report.md", "confusion.png", "curves.png"):
        assert (model / name).is_file(), name
    config = json.loads((model / "config.json").read_text())
    assert config["model"]["epochs"] == 1 and config["model"]["batch_size"] == 8

    report = tmp_path / "cli-eval"
    r = runner.invoke(app, ["evaluate", str(model), str(features), "--out", str(report)])
    assert r.exit_code == 0, r.output
    assert "2 unseen speakers" in r.output
    for name in ("metrics.json", "report.md", "confusion.png"):
        assert (report / name).is_file(), name
    m = json.loads((report / "metrics.json").read_text())
    test_speakers = set(config["split"]["test_speakers"])
    assert set(m["speakers"]) <= test_speakers and m["speakers"]
    assert not set(m["speakers"]) & (set(config["split"]["train_speakers"]) | set(config["split"]["val_speakers"]))
    assert m["n"] == 12

    # the same directory retrained on every speaker: the held-out figures of the model before it go
    r = runner.invoke(app, ["train", str(features), "--out", str(model), "--model", "frames", "--epochs", "1", "--batch-size", "8", "--workers", "1", "--protocol", "all", "-q"])
    assert r.exit_code == 0, r.output
    assert "trained on all speakers" in r.output and "no test speakers" in r.output
    assert not (model / "metrics.json").exists() and not (model / "confusion.png").exists()
    assert json.loads((model / "config.json").read_text())["split"]["test_speakers"] == []


def test_cli_reports_errors_in_one_line(tmp_path: Path) -> None:
    from ser_batch.cli import app

    r = CliRunner().invoke(app, ["evaluate", str(tmp_path / "no-model"), str(tmp_path)])
    assert r.exit_code == 2
    assert "error:" in r.output and "model.keras" in r.output


def test_speaker_norm_standardises_each_speaker_with_its_own_recordings(features: Path) -> None:
    from ser_batch.trainset import gather, speaker_norm

    data = load_meta([str(features)])
    norm = speaker_norm(data)
    original = (data.meta["augmentation"] == "none").to_numpy()
    x = gather(data, original, norm)
    spk = data.meta.loc[original, "speaker"].to_numpy()
    for s in np.unique(spk):
        per_coeff = x[spk == s].reshape(-1, x.shape[-1])
        np.testing.assert_allclose(per_coeff.mean(axis=0), 0.0, atol=1e-3)
        std = per_coeff.std(axis=0)
        assert np.all((np.abs(std - 1.0) < 1e-2) | (std < 1e-3))  # constant coefficients stay constant
    raw = gather(data, original)
    assert not np.allclose(raw, x)


def test_corpus_norm_standardises_each_corpus_as_a_whole(features: Path) -> None:
    from ser_batch.trainset import gather, speaker_norm

    data = load_meta([str(features)])
    codes, mean, _, prior = speaker_norm(data, "corpus")
    assert prior is None and len(mean) == data.meta["corpus"].nunique() and np.array_equal(np.unique(codes), np.arange(len(mean)))
    original = (data.meta["augmentation"] == "none").to_numpy()
    x = gather(data, original, speaker_norm(data, "corpus"))
    corpus = data.meta.loc[original, "corpus"].to_numpy()
    for c in np.unique(corpus):
        np.testing.assert_allclose(x[corpus == c].reshape(-1, x.shape[-1]).mean(axis=0), 0.0, atol=1e-3)
    spk = data.meta.loc[original, "speaker"].to_numpy()  # a speaker's own level is kept (as speaker norm would not)
    assert max(np.abs(x[spk == s].mean()) for s in np.unique(spk)) > 1e-2
    held = data.meta["speaker"].isin(data.meta["speaker"].unique()[:2]).to_numpy()  # two test speakers: their own group
    codes2, mean2, _, _ = speaker_norm(data, "corpus", held)
    assert len(mean2) == len(mean) + 1 and len(set(codes2[held])) == 1 and not set(codes2[held]) & set(codes2[~held])
    with pytest.raises(ConfigError, match="norm_by"):
        TrainSettings(norm_by="label")


def test_the_prior_shrinks_small_groups_toward_the_training_groups_and_leaves_large_ones(features: Path) -> None:
    from ser_batch import features as F
    from ser_batch.trainset import speaker_norm

    rng = np.random.default_rng(0)
    groups = np.stack([F.moments(rng.normal(mu, sd, (2000, 3))) for mu, sd in ((0.0, 1.0), (4.0, 3.0))])
    prior = F.shrinkage_prior(groups, 50.0)
    mean, std = F.mean_std(prior)
    np.testing.assert_allclose(mean, 2.0, atol=0.1)  # each group counts once, however long
    np.testing.assert_allclose(std, np.sqrt((1 + 9) / 2), atol=0.2)  # a typical group's spread, not the spread between groups
    assert prior[0, 0] == 50.0
    lone = F.moments(rng.normal(10.0, 0.1, (5, 3)))  # a lone short recording: pulled most of the way to the prior
    assert F.mean_std(lone)[1].max() < 0.5 and 2.0 < F.mean_std(lone, prior)[0].min() < 4.0
    big = F.moments(rng.normal(10.0, 1.0, (50000, 3)))
    np.testing.assert_allclose(F.mean_std(big, prior)[0], F.mean_std(big)[0], atol=0.05)

    data = load_meta([str(features)])
    held = data.meta["speaker"].isin(data.meta["speaker"].unique()[:2]).to_numpy()
    plain, shrunk = speaker_norm(data, "speaker", held), speaker_norm(data, "speaker", held, prior_s=5.0)
    assert plain.prior is None and shrunk.prior is not None and shrunk.prior[0, 0] == pytest.approx(5.0 / data.features.frame_s)
    assert not np.allclose(plain.mean, shrunk.mean) and np.array_equal(plain.codes, shrunk.codes)
    with pytest.raises(ConfigError, match="norm_prior_s"):
        TrainSettings(norm_prior_s=-1)


def test_a_corpus_normalised_fit_also_reports_each_recording_judged_alone(tmp_path_factory: pytest.TempPathFactory, dask_scheduler: str) -> None:
    """With a prior, fit reports what `predict` would say of each test recording on its own (its own statistics
    shrunk toward the prior), beside the figure with the test speakers' group statistics."""
    from ser_batch import features as F
    from ser_batch.extract import extract
    from ser_batch.trainset import alone_norm, gather, speaker_norm

    root = write_corpus(tmp_path_factory.mktemp("grid_corpus"), actors=(1, 2, 3, 4, 5, 11), reps=("01",))
    out = tmp_path_factory.mktemp("grid_features") / "features"
    extract([root], out, feature_settings=FeatureSettings.preset("whisper_base"), augment_settings=None, scheduler=dask_scheduler, progress=False)
    data = load_meta([str(out)])
    sp = splits.speaker_split(data.meta["speaker"].unique(), fold=1, n_val=1, seed=0)
    test = data.meta["speaker"].isin(sp.test_speakers).to_numpy()
    norm = speaker_norm(data, "corpus", test, prior_s=5.0)
    alone = alone_norm(data, test, norm)
    rid = data.meta["recording_id"].to_numpy()[test][0]
    own = shards.recording_moments([str(out)])[rid]
    mean, std = F.mean_std(own, norm.prior)
    rows = test & (data.meta["recording_id"] == rid).to_numpy()
    np.testing.assert_allclose(gather(data, rows, alone), (gather(data, rows) - mean) / std, rtol=1e-4, atol=1e-4)
    assert not np.allclose(gather(data, rows, alone), gather(data, rows, norm), atol=1e-3)
    settings = TrainSettings(model="linear", epochs=1, batch_size=8, speaker_norm=True, norm_by="corpus", norm_prior_s=5.0)
    result = fit([str(out)], sp, settings)
    assert 0.0 <= result["uar_alone"] <= 1.0
    alone_p, group_p = (np.asarray(result["test_predictions"][k]) for k in ("proba_alone", "proba"))
    assert alone_p.shape == group_p.shape and not np.allclose(alone_p, group_p)
    assert "uar_alone" not in fit([str(out)], sp, dataclasses.replace(settings, norm_prior_s=0.0))


def test_a_speaker_normalised_holdout_model_says_so_and_refuses_raw_features(features: Path, tmp_path: Path) -> None:
    from ser_batch.inference import ScoreSettings, score_stream
    from ser_batch.train import train

    train([features], tmp_path / "m", protocol="holdout", settings=TrainSettings(epochs=1, speaker_norm=True))
    md = modeldir.load(tmp_path / "m")
    assert md.speaker_norm and md.config["model"]["speaker_norm"] is True
    y = np.random.default_rng(0).standard_normal(md.features.n_samples).astype(np.float32) * 0.1
    with pytest.raises(ConfigError, match="speaker's statistics"):
        list(score_stream(md, [y], ScoreSettings()))