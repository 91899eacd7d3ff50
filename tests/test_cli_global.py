"""The app's own options (--version, --verbose), `ser-batch models`, and the filter that keeps TensorFlow's native
start-up lines off stderr (ser_batch/quiet.py)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Iterator
from importlib.metadata import version
from pathlib import Path

import pytest
from typer.testing import CliRunner

import ser_batch
from ser_batch import quiet
from ser_batch.cli import app
from ser_batch.labels import EMOTIONS
from ser_batch.modeldir import default_model

runner = CliRunner()

TF_NOISE = [
    "WARNING: All log messages before absl::InitializeLog() is called are written to STDERR",
    "I0000 00:00:1796046265.335623    4111 cudart_stub.cc:31] Could not find cuda drivers on your machine, GPU will not be used.",
    "I0000 00:00:1796046334.986099    4740 cpu_feature_guard.cc:227] This TensorFlow binary is optimized to use available CPU instructions",
    "W0000 00:00:1796046334.986099    4740 port.cc:153] oneDNN custom operations are on. You may see slightly different numerical results",
    "E0000 00:00:1731014532.131 12 cuda_dnn.cc:8310] Unable to register cuDNN factory: Attempting to register factory for plugin cuDNN",
]


def test_version() -> None:
    res = runner.invoke(app, ["--version"])
    assert res.exit_code == 0
    assert res.stdout == f"ser-batch {version('ser-batch')}\n"


@pytest.mark.parametrize("line", TF_NOISE)
def test_noise_lines(line: str) -> None:
    assert quiet.is_noise(line + "\n")


@pytest.mark.parametrize("line", ["E0000 00:00:17.1 12 dso_loader.cc:1] libcudart.so: cannot open shared object file", "Traceback (most recent call last):", "Illegal instruction", "error: x"])
def test_real_trouble_is_no_noise(line: str) -> None:
    assert not quiet.is_noise(line)


@pytest.fixture
def noisy_module(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    """A module whose import writes TensorFlow's start-up noise and one real line straight to file descriptor 2."""
    name = "noisy_native_lib"
    lines = [*TF_NOISE, "E0000 00:00:17.1 12 dso_loader.cc:1] a real error"]
    payload = ("\n".join(lines) + "\n").encode()
    (tmp_path / f"{name}.py").write_text(f"import os\nos.write(2, {payload!r})\nVALUE = 42\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    yield name
    sys.modules.pop(name, None)
    quiet.uninstall()


def test_first_import_is_filtered(noisy_module: str, capfd: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(quiet, "QUIET_MODULES", (noisy_module,))
    quiet.uninstall()
    quiet.install()
    module = __import__(noisy_module)
    assert module.VALUE == 42
    err = capfd.readouterr().err
    assert err == "E0000 00:00:17.1 12 dso_loader.cc:1] a real error\n"
    assert not any(isinstance(f, quiet._QuietImporter) for f in sys.meta_path)  # done after its one import


def test_verbose_lets_everything_through(noisy_module: str, capfd: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(quiet, "QUIET_MODULES", (noisy_module,))
    monkeypatch.setattr(ser_batch, "TF_LOG_LEVEL_SET_HERE", True)
    monkeypatch.setenv("TF_CPP_MIN_LOG_LEVEL", "3")
    quiet.install()
    res = runner.invoke(app, ["--verbose", "models"])
    assert res.exit_code == 0, res.output
    assert os.environ["TF_CPP_MIN_LOG_LEVEL"] == "0"
    assert not any(isinstance(f, quiet._QuietImporter) for f in sys.meta_path)
    __import__(noisy_module)
    assert "cudart_stub.cc:31" in capfd.readouterr().err


def test_verbose_keeps_a_level_the_user_set(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(ser_batch, "TF_LOG_LEVEL_SET_HERE", False)
    monkeypatch.setenv("TF_CPP_MIN_LOG_LEVEL", "2")
    assert runner.invoke(app, ["--verbose", "models"]).exit_code == 0
    assert os.environ["TF_CPP_MIN_LOG_LEVEL"] == "2"


def test_tensorflow_starts_quietly_in_a_fresh_process() -> None:
    """What the CLI and every Dask worker do: import ser_batch, later TensorFlow; stderr stays empty."""
    env = {k: v for k, v in os.environ.items() if k not in ("TF_CPP_MIN_LOG_LEVEL", "GRPC_VERBOSITY")}
    r = subprocess.run([sys.executable, "-c", "import ser_batch, keras, tensorflow as tf; print(tf.constant(2) * 3)"], env=env, capture_output=True, text=True, timeout=240)
    assert r.returncode == 0, r.stderr
    assert "tf.Tensor(6" in r.stdout
    assert r.stderr == "", r.stderr


# ------------------------------------------------------------------------------------------ ser-batch models


def card(d: Path, name: str, classes: list[str], uar: float | None, features: str = "logmel") -> Path:
    d.mkdir(parents=True)
    config = {"name": name, "model_version": "7", "classes": classes, "features": {"name": features, "version": 1}, "model": {"model": "attn"}}
    (d / "config.json").write_text(json.dumps(config))
    if uar is not None:
        (d / "metrics.json").write_text(json.dumps({"uar": uar, "accuracy": 0.6}))
    return d


def test_models_lists_the_shipped_ones_and_a_folder(tmp_path: Path) -> None:
    card(tmp_path / "extra" / "mine", "mine", ["neutral", "angry"], 0.8123)
    card(tmp_path / "extra" / "nocard", "nocard", list(EMOTIONS), None)
    (tmp_path / "extra" / "not-a-model").mkdir()
    res = runner.invoke(app, ["models", str(tmp_path / "extra")], env={"COLUMNS": "250"})
    assert res.exit_code == 0, res.output
    lines = res.stdout.splitlines()
    assert lines[0].split() == ["name", "version", "features", "model", "classes", "UAR", "accuracy", "path"]
    by_name = {ln.lstrip("* ").split()[0]: ln for ln in lines[1:] if ln.strip() and not ln.startswith("* the")}
    shipped = json.loads((default_model() / "config.json").read_text())
    row = by_name[shipped["name"]]
    assert row.startswith("*") and shipped["features"]["name"] in row and str(shipped["model_version"]) in row.split()
    if (default_model() / "metrics.json").is_file():
        assert f"{json.loads((default_model() / 'metrics.json').read_text())['uar']:.3f}" in row
    else:  # trained on every speaker (protocol all): no held-out figure to show
        assert row.split()[-3:-1] == ["-", "-"], row  # UAR and accuracy, before the path
    assert "2: neutral,angry" in by_name["mine"] and "0.812" in by_name["mine"] and "logmel v1" in by_name["mine"]
    assert by_name["nocard"].split()[5:7] == ["8", "-"]
    assert "not-a-model" not in res.stdout
    assert "note: mine: not usable" in res.stderr  # the stand-in card lacks most fields


def test_models_of_a_model_directory_and_of_nothing(tmp_path: Path) -> None:
    d = card(tmp_path / "one", "one", list(EMOTIONS), 0.5)
    res = runner.invoke(app, ["models", str(d)])
    assert res.exit_code == 0 and "one" in res.stdout
    res = runner.invoke(app, ["models", str(tmp_path / "missing")])
    assert res.exit_code == 2 and "missing is not a folder" in res.stderr
