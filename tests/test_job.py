"""Tests of ser_batch.job: the shipped job specs match the shipped models they reproduce; bad specs are refused."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from conftest import REPO

from ser_batch.errors import ConfigError
from ser_batch.features import FeatureSettings
from ser_batch.job import load_spec

SPECS = sorted((REPO / "jobs").glob("*.toml"))


def test_every_shipped_model_has_its_job_spec() -> None:
    made = {load_spec(p).train.out for p in SPECS}
    assert {f"models/{d.name}" for d in (REPO / "models").iterdir() if d.is_dir()} <= made


@pytest.mark.parametrize("spec_path", SPECS, ids=[p.stem for p in SPECS])
def test_shipped_model_is_what_its_spec_says(spec_path: Path) -> None:
    spec = load_spec(spec_path)
    model = REPO / spec.train.out
    if not (model / "config.json").is_file():
        pytest.skip(f"{model} is not shipped")
    config = json.loads((model / "config.json").read_text())
    assert (config["name"], config["model_version"]) == (spec.name, spec.version)
    assert {config["features"]["name"]} == {e.features for e in spec.extracts}
    made = {FeatureSettings.preset(e.features, version=e.features_version).version for e in spec.extracts}
    assert {config["features"]["version"]} == made  # a spec on an older feature version pins it (features_version)
    assert config["model"]["model"] == spec.train.model and config["model"]["speaker_norm"] == spec.train.speaker_norm
    assert config["protocol"] == spec.train.protocol
    card = (model / "README.md").read_text()
    assert spec.card.strip() in card  # the figures that chose the configuration travel with the model


def test_unknown_keys_are_refused_naming_them(tmp_path: Path) -> None:
    text = (REPO / "jobs" / "ser-default.toml").read_text()
    bad = tmp_path / "jobs" / "bad.toml"
    bad.parent.mkdir()
    bad.write_text(text + '\nnotes = "x"\n')
    with pytest.raises(ConfigError, match="notes"):
        load_spec(bad)
    assert text.rfind("[train]") > max(text.rfind("[extract]"), text.rfind("[[extract]]"))  # the last table: an appended line lands in it
    bad.write_text(text + "\nepoch = 3\n")
    with pytest.raises(ConfigError, match="epoch"):
        load_spec(bad)


def test_several_extract_tables_train_one_model(tmp_path: Path) -> None:
    """[[extract]] tables (e.g. RAVDESS with augmented copies, other corpora without) feed one [train]."""
    spec = tmp_path / "jobs" / "multi.toml"
    spec.parent.mkdir()
    base = 'name = "m"\nversion = "1"\n[train]\nout = "models/m"\nmodel = "pool"\ncorpus_balance = "sqrt"\n'
    two = '[[extract]]\ncorpora = ["a"]\nout = "features/a"\nfeatures = "whisper_base"\n[[extract]]\ncorpora = ["b", "c"]\nout = "features/bc"\nfeatures = "whisper_base"\naugment = false\n'
    spec.write_text(base + two)
    s = load_spec(spec)
    assert [e.out for e in s.extracts] == ["features/a", "features/bc"] and s.extracts[1].corpora == ("b", "c") and not s.extracts[1].augment
    assert s.train.corpus_balance == "sqrt" and s.train.label_mask
    spec.write_text(base + two.replace("features/bc", "features/a"))
    with pytest.raises(ConfigError, match="same out"):
        load_spec(spec)
    spec.write_text(base + two.replace('features = "whisper_base"\naugment', 'features = "logmel"\naugment'))
    with pytest.raises(ConfigError, match="different feature sets"):
        load_spec(spec)
