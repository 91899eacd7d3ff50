"""Tests of ``predict`` / ``predict_file`` and the `predict` command line (all in this process, no Dask)."""

from __future__ import annotations

import json
import re
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
from conftest import REPO, make_tiny_model
from typer.testing import CliRunner

from ser_batch.errors import AudioError
from ser_batch.features import FeatureSettings
from ser_batch.labels import EMOTIONS
from ser_batch.predict import Prediction, predict, predict_file
from ser_batch.score import ScoreSettings
from ser_batch.windows import starts as window_starts

FS = FeatureSettings()
SHIPPED = REPO / "models" / "ser-default"


@pytest.fixture(scope="session")
def tiny(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """An untrained 'frames' model over all 8 emotions with an identity scaler."""
    return make_tiny_model(tmp_path_factory.mktemp("predict_model") / "tiny", name="tiny-predict")


def voice(sr: int, seconds: float, seed: int = 0) -> np.ndarray:
    """A harmonic, gliding, syllable-modulated signal with a pause in the middle."""
    rng = np.random.default_rng(seed)
    t = np.arange(int(round(seconds * sr))) / sr
    f0 = 160 * (1 + 0.15 * np.sin(2 * np.pi * 0.8 * t))
    phase = 2 * np.pi * np.cumsum(f0) / sr
    y = sum(np.sin(k * phase) / k for k in (1, 2, 3)) * (0.6 + 0.4 * np.sin(2 * np.pi * 4 * t))
    y = 0.3 * y / np.max(np.abs(y)) + 0.002 * rng.standard_normal(t.size)
    y[(t > seconds * 0.45) & (t < seconds * 0.55)] = 0
    return y.astype(np.float32)


def check(p: Prediction, duration_s: float) -> None:
    assert isinstance(p, Prediction)
    assert p.emotion in EMOTIONS
    assert list(p.probabilities) == list(EMOTIONS)
    assert sum(p.probabilities.values()) == pytest.approx(1.0, abs=1e-4)
    assert all(0 <= v <= 1 for v in p.probabilities.values())
    assert p.confidence == pytest.approx(max(p.probabilities.values())) and p.probabilities[p.emotion] == p.confidence
    assert p.windows == len(window_starts(duration_s, FS.duration_s, ScoreSettings().hop_s))
    assert 1 <= p.speech_windows <= p.windows


@pytest.mark.parametrize("sr, channels, seconds", [(8_000, 1, 6.0), (16_000, 1, 3.3), (48_000, 2, 4.0), (16_000, 1, 0.5)])
def test_predict_numpy_signal(tiny: Path, sr: int, channels: int, seconds: float) -> None:
    y = voice(sr, seconds)
    signal = np.stack([y, 0.5 * y], axis=1) if channels == 2 else y
    p = predict(signal, sr, model=tiny)
    check(p, seconds)


def test_predict_signal_equals_predict_file(tiny: Path, tmp_path: Path) -> None:
    """The same samples give the same answer from memory and from disk (16 kHz, no resampling involved)."""
    y = voice(16_000, 7.0, seed=2)
    sf.write(tmp_path / "v.wav", y, 16_000, subtype="FLOAT")
    a, b = predict(y, 16_000, model=tiny), predict_file(tmp_path / "v.wav", model=tiny)
    assert (a.emotion, a.windows, a.speech_windows) == (b.emotion, b.windows, b.speech_windows)
    np.testing.assert_allclose(list(a.probabilities.values()), list(b.probabilities.values()), atol=1e-5)


def test_predict_stereo_is_the_mean_of_its_channels(tiny: Path) -> None:
    y = voice(16_000, 3.0, seed=3)
    z = voice(16_000, 3.0, seed=4)[::-1].copy()
    a = predict(np.stack([y, z], axis=1), 16_000, model=tiny)
    b = predict((y + z) / 2, 16_000, model=tiny)
    np.testing.assert_allclose(list(a.probabilities.values()), list(b.probabilities.values()), atol=1e-6)


def test_predict_refuses_silent_short_and_nan_signals(tiny: Path) -> None:
    with pytest.raises(AudioError, match="silent"):
        predict(np.zeros(3 * 16_000, np.float32), 16_000, model=tiny)
    with pytest.raises(AudioError, match="too short"):
        predict(voice(16_000, 0.02), 16_000, model=tiny)  # 320 samples < one frame
    with pytest.raises(AudioError, match="too short"):
        predict(np.zeros(0, np.float32), 16_000, model=tiny)
    y = voice(16_000, 3.0)
    y[100] = np.nan
    with pytest.raises(AudioError, match="NaN"):
        predict(y, 16_000, model=tiny)


def test_predict_of_a_quiet_but_not_mute_signal_is_refused_as_silent(tiny: Path) -> None:
    """Above the -80 dBFS peak check but below the -60 dBFS window threshold: no speech window to judge."""
    y = 10 ** (-70 / 20) * np.sin(2 * np.pi * 200 * np.arange(3 * 16_000) / 16_000)
    with pytest.raises(AudioError, match="silent"):
        predict(y.astype(np.float32), 16_000, model=tiny)


# ---------------------------------------------------------------- command line


@pytest.fixture(scope="module")
def files(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    d = tmp_path_factory.mktemp("predict_files")
    out = {"good": d / "good.flac", "stereo": d / "stereo44k.wav", "bad": d / "bad.wav", "empty": d / "empty.wav"}
    sf.write(out["good"], voice(16_000, 5.0), 16_000)
    y = voice(44_100, 3.0, seed=5)
    sf.write(out["stereo"], np.stack([y, y], axis=1), 44_100)
    out["bad"].write_text("definitely not audio\n" * 10)
    out["empty"].write_bytes(b"")
    return out


def _cli(*args: str):  # type: ignore[no-untyped-def]
    from ser_batch.cli import app

    return CliRunner().invoke(app, ["predict", *args])


def test_cli_predict_prints_one_line(tiny: Path, files: dict[str, Path]) -> None:
    r = _cli(str(files["good"]), "--model", str(tiny))
    assert r.exit_code == 0, r.output
    expected = predict_file(files["good"], model=tiny).emotion
    assert r.stdout == f"Emotion Detected: {expected}\n"


def test_cli_predict_notes_that_a_speaker_normalised_model_lacks_its_speakers(tmp_path: Path, tiny: Path, files: dict[str, Path]) -> None:
    """One file is its own speaker: the note says what that costs (on stderr), the verdict still prints; the
    default model gets no note."""
    from conftest import make_tiny_model

    spk = make_tiny_model(tmp_path / "spk", speaker_norm=True)
    r = _cli(str(files["good"]), "--model", str(spk))
    assert r.exit_code == 0, r.output
    assert r.stdout.startswith("Emotion Detected: ") and "its own speaker" in r.stderr and "--speakers" in r.stderr
    assert "its own speaker" not in _cli(str(files["good"]), "--model", str(tiny)).stderr
    broken = _cli(str(files["good"]), "--model", str(tmp_path / "missing"))  # a broken model is still an error per file
    assert broken.exit_code == 1 and "is not a complete model directory" in broken.stderr
    assert broken.exception is None or isinstance(broken.exception, SystemExit), broken.exception  # no traceback


def test_cli_predict_verbose_lists_8_probabilities(tiny: Path, files: dict[str, Path]) -> None:
    r = _cli(str(files["stereo"]), "--model", str(tiny), "--verbose")
    assert r.exit_code == 0, r.output
    lines = r.stdout.splitlines()
    assert len(lines) == 9 and re.fullmatch(r"Emotion Detected: (\w+)", lines[0])
    probs = {}
    for line in lines[1:]:
        m = re.fullmatch(r"\s+(\w+)\s+([01]\.\d{3})", line)
        assert m, line
        probs[m.group(1)] = float(m.group(2))
    assert set(probs) == set(EMOTIONS)
    assert sum(probs.values()) == pytest.approx(1.0, abs=0.01)
    values = list(probs.values())
    assert values == sorted(values, reverse=True)  # most likely first
    assert lines[0].endswith(next(iter(probs)))  # ...and that is the emotion detected


def test_cli_predict_json(tiny: Path, files: dict[str, Path]) -> None:
    r = _cli(str(files["good"]), str(files["bad"]), "--model", str(tiny), "--json")
    assert r.exit_code == 0, r.output  # one file failed, not all
    good, bad = (json.loads(line) for line in r.stdout.splitlines())
    assert good["status"] == "ok" and good["path"] == str(files["good"])
    assert good["emotion"] in EMOTIONS and set(good["probabilities"]) == set(EMOTIONS)
    assert sum(good["probabilities"].values()) == pytest.approx(1.0, abs=1e-4)
    assert good["confidence"] == pytest.approx(good["probabilities"][good["emotion"]])
    assert good["windows"] == 6 and 1 <= good["speech_windows"] <= 6  # 3 s at the 0.5 s hop
    assert bad["status"] == "error" and "not readable audio" in bad["error"]


def test_cli_predict_several_files_names_each(tiny: Path, files: dict[str, Path]) -> None:
    r = _cli(str(files["good"]), str(files["stereo"]), "--model", str(tiny))
    assert r.exit_code == 0, r.output
    lines = r.stdout.splitlines()
    assert [ln.split(": Emotion Detected: ")[0] for ln in lines] == [str(files["good"]), str(files["stereo"])]
    assert all(ln.split(": Emotion Detected: ")[1] in EMOTIONS for ln in lines)


@pytest.mark.parametrize("kind, reason", [("bad", "not readable audio"), ("empty", "empty")])
def test_cli_predict_bad_file_exits_1(tiny: Path, files: dict[str, Path], kind: str, reason: str) -> None:
    r = _cli(str(files[kind]), "--model", str(tiny))
    assert r.exit_code == 1
    assert "Emotion Detected" not in r.stdout
    assert "error:" in r.stderr and reason in r.stderr and str(files[kind]) in r.stderr


def test_cli_predict_with_the_shipped_model(files: dict[str, Path]) -> None:
    if not (SHIPPED / "config.json").is_file():
        pytest.skip(f"the shipped model is not there yet ({SHIPPED})")
    r = _cli(str(files["good"]))
    assert r.exit_code == 0, r.output
    m = re.fullmatch(r"Emotion Detected: (\w+)\n", r.stdout)
    assert m and m.group(1) in EMOTIONS
