"""`ser-batch extract` and `ser-batch train` with no options make the default model's configuration (its
config.json), and the seed's stays one option away. The jobs themselves are replaced by stand-ins that record what
the CLI asked for: nothing is extracted or trained here."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest
from typer.testing import CliRunner

from ser_batch import cli
from ser_batch.augment import AugmentSettings
from ser_batch.cli import app
from ser_batch.features import FeatureSettings
from ser_batch.modeldir import default_model
from ser_batch.train import TrainSettings

runner = CliRunner()
CLI_TO_SETTINGS = {"model": "model", "epochs": "epochs", "batch_size": "batch_size", "learning_rate": "learning_rate", "n_val_speakers": "n_val_speakers",
                   "seed": "seed", "patience": "patience", "specaugment": "specaugment", "mixup": "mixup", "label_smoothing": "label_smoothing",
                   "speaker_norm": "speaker_norm", "norm_by": "norm_by", "l2": "l2"}  # fmt: skip


@pytest.fixture(autouse=True)
def fresh_defaults() -> Iterator[None]:
    cli.default_config.cache_clear()
    yield
    cli.default_config.cache_clear()


@pytest.fixture
def calls(monkeypatch: pytest.MonkeyPatch) -> dict[str, dict[str, Any]]:
    """The keyword arguments the CLI passes to extract() and train()."""
    seen: dict[str, dict[str, Any]] = {}

    def extract(roots: Any, out: Any, **kw: Any) -> SimpleNamespace:
        seen["extract"] = kw
        return SimpleNamespace(files_ok=1, files_failed=0, rows=1, shards=1, shards_skipped=0, seconds=1.0)

    def train(dirs: Any, out: Any, **kw: Any) -> dict[str, Any]:
        seen["train"] = kw
        return {"uar": 0.5, "accuracy": 0.5, "macro_f1": 0.5, "n": 1, "epochs_run": 1, "seconds_per_epoch": 1.0}

    monkeypatch.setattr("ser_batch.extract.extract", extract)
    monkeypatch.setattr("ser_batch.train.train", train)
    return seen


def shipped() -> dict[str, Any]:
    return json.loads((default_model() / "config.json").read_text())


def test_extract_defaults_follow_the_default_model(calls: dict[str, dict[str, Any]], tmp_path: Path) -> None:
    res = runner.invoke(app, ["extract", str(tmp_path), "--out", str(tmp_path / "f"), "-q"])
    assert res.exit_code == 0, res.output
    config = shipped()
    kw = calls["extract"]
    assert kw["feature_settings"] == FeatureSettings.preset(config["features"]["name"])  # that set's preset, as this code computes it
    aug = kw["augment_settings"]
    assert aug is not None and aug.shifts == config["augment"]["shifts"] and aug.seed == config["augment"]["seed"]


def test_train_defaults_follow_the_default_model(calls: dict[str, dict[str, Any]], tmp_path: Path) -> None:
    res = runner.invoke(app, ["train", str(tmp_path), "--out", str(tmp_path / "m"), "-q"])
    assert res.exit_code == 0, res.output
    config = shipped()["model"]
    settings = calls["train"]["settings"]
    for key, field in CLI_TO_SETTINGS.items():
        assert getattr(settings, field) == config.get(key, getattr(TrainSettings(), field)), key  # a setting newer than the model: its default
    assert calls["train"]["protocol"] == "holdout" and calls["train"]["fold"] == 1


def test_the_seed_configuration_is_one_option_away(calls: dict[str, dict[str, Any]], tmp_path: Path) -> None:
    res = runner.invoke(app, ["extract", str(tmp_path), "--features", "seed", "--shifts", "0", "-q"])
    assert res.exit_code == 0, res.output
    assert calls["extract"]["feature_settings"].name == "seed"
    assert calls["extract"]["augment_settings"] == AugmentSettings()
    res = runner.invoke(app, ["train", str(tmp_path), "--model", "frames", "--no-speaker-norm", "-q"])
    assert res.exit_code == 0, res.output
    assert calls["train"]["settings"].model == "frames"


def test_defaults_follow_another_default_model(calls: dict[str, dict[str, Any]], tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    model = tmp_path / "my-default"
    model.mkdir()
    config = {"features": {"name": "logmel"}, "augment": None, "model": {"model": "attn", "epochs": 7, "speaker_norm": True}}
    (model / "config.json").write_text(json.dumps(config))
    monkeypatch.setenv("SER_BATCH_MODEL", str(model))
    assert runner.invoke(app, ["extract", str(tmp_path), "-q"]).exit_code == 0
    assert calls["extract"]["feature_settings"].name == "logmel" and calls["extract"]["augment_settings"] is None
    assert runner.invoke(app, ["train", str(tmp_path), "-q"]).exit_code == 0
    s = calls["train"]["settings"]
    assert (s.model, s.epochs, s.speaker_norm, s.patience) == ("attn", 7, True, TrainSettings().patience)


def test_without_a_readable_default_model_the_apis_defaults_apply_with_a_note(calls: dict[str, dict[str, Any]], tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SER_BATCH_MODEL", str(tmp_path / "gone"))
    res = runner.invoke(app, ["train", str(tmp_path), "-q"])
    assert res.exit_code == 0, res.output
    assert calls["train"]["settings"] == TrainSettings()
    assert "note:" in res.stderr and "gone" in res.stderr


def test_help_says_where_the_defaults_come_from() -> None:
    res = runner.invoke(app, ["train", "--help"], env={"COLUMNS": "200"})
    assert res.exit_code == 0
    assert "the default model's" in res.stdout and "--model frames" in res.stdout
    res = runner.invoke(app, ["extract", "--help"], env={"COLUMNS": "200"})
    assert "--features seed --shifts 0" in res.stdout
