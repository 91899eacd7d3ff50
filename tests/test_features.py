"""Tests of ser_batch.features: shapes, determinism, batching, settings validation and fingerprints."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest

from conftest import emotion_signal
from ser_batch.errors import ConfigError
from ser_batch.features import FEATURE_SETS, FeatureSettings, compute


def window(code: str = "01", actor: int = 1, settings: FeatureSettings = FeatureSettings()) -> np.ndarray:
    return emotion_signal(code, actor, settings.sample_rate, settings.duration_s).astype(np.float32)


def test_default_settings_are_the_seeds() -> None:
    s = FeatureSettings()
    assert (s.name, s.version, s.sample_rate, s.offset_s, s.duration_s) == ("seed", 1, 16_000, 0.6, 2.5)
    assert s.n_samples == 40_000
    assert s.shape == (1 + 40_000 // 512, 22)
    assert s.coefficients[:3] == ("zcr", "rms", "mfcc_1")
    assert len(s.coefficients) == s.n_coeffs == 2 + s.n_mfcc


@pytest.mark.parametrize(
    "settings",
    [
        FeatureSettings(), FeatureSettings(duration_s=1.0, n_mfcc=13), FeatureSettings(hop_length=256, frame_length=512),
        FeatureSettings.preset("logmel"), FeatureSettings.preset("logmel_pitch"), FeatureSettings.preset("whisper_base"),
    ],
)  # fmt: skip
def test_compute_shape_dtype_and_determinism(settings: FeatureSettings) -> None:
    y = window(settings=settings)
    assert y.size == settings.n_samples
    x = compute(y, settings.sample_rate, settings)
    assert x.shape == settings.shape
    assert x.dtype == np.float32
    assert x.flags["C_CONTIGUOUS"]
    assert np.isfinite(x).all()
    np.testing.assert_array_equal(x, compute(y.copy(), settings.sample_rate, settings))


def test_columns_mean_what_their_names_say() -> None:
    s = FeatureSettings(duration_s=1.0)
    loud = window("01", settings=s)
    quiet = 0.1 * loud
    xl, xq = compute(loud, s.sample_rate, s), compute(quiet, s.sample_rate, s)
    rms = s.coefficients.index("rms")
    zcr = s.coefficients.index("zcr")
    assert np.median(xl[:, rms]) == pytest.approx(10 * np.median(xq[:, rms]), rel=0.01)
    noise = np.random.default_rng(0).standard_normal(s.n_samples).astype(np.float32) * 0.3
    assert np.median(compute(noise, s.sample_rate, s)[:, zcr]) > 5 * np.median(xl[:, zcr])


@pytest.mark.parametrize("f0", [110.0, 200.0, 320.0])
def test_logmel_pitch_finds_the_fundamental_and_voicing(f0: float) -> None:
    s = FeatureSettings.preset("logmel_pitch")
    t = np.arange(s.n_samples) / s.sample_rate
    harmonic = sum(np.sin(2 * np.pi * k * f0 * t) / k for k in (1, 2, 3))
    y = (0.2 * harmonic * (t >= 1.0)).astype(np.float32)  # 1 s of silence, then a voice-like tone
    x = compute(y, s.sample_rate, s)
    assert x.shape == (188, 67) and s.coefficients[-2:] == ("log2_f0", "voiced")
    frames_t = np.arange(x.shape[0]) * s.hop_length / s.sample_rate
    voiced = x[:, -1] > 0
    assert not voiced[frames_t < 0.9].any() and voiced[frames_t > 1.1].all()
    assert 100 * 2 ** np.median(x[voiced, -2]) == pytest.approx(f0, rel=0.02)
    assert (x[~voiced, -2] == 0).all()
    np.testing.assert_allclose(x[:, :65], compute(y, s.sample_rate, FeatureSettings.preset("logmel")), rtol=1e-6)


def test_different_signals_give_different_features() -> None:
    s = FeatureSettings(duration_s=1.0)
    a = compute(window("01", settings=s), s.sample_rate, s)
    b = compute(window("05", settings=s), s.sample_rate, s)
    assert not np.allclose(a, b)


def test_batch_equals_per_window() -> None:
    s = FeatureSettings(duration_s=1.0)
    stack = np.stack([window(code, settings=s) for code in ("01", "03", "04", "05")])
    batch = compute(stack, s.sample_rate, s)
    assert batch.shape == (4, *s.shape)
    assert batch.dtype == np.float32
    for i in range(4):
        np.testing.assert_allclose(batch[i], compute(stack[i], s.sample_rate, s), rtol=1e-5, atol=1e-5)


def test_wrong_sample_rate_is_refused() -> None:
    s = FeatureSettings()
    with pytest.raises(ConfigError, match="16000 Hz.*22050 Hz"):
        compute(window(settings=s), 22_050, s)


def test_settings_round_trip_and_fingerprint() -> None:
    s = FeatureSettings(offset_s=0.5, duration_s=3.0, n_mfcc=13)
    d = s.to_dict()
    assert d["n_mfcc"] == 13 and d["name"] == "seed"
    back = FeatureSettings.from_dict(d)
    assert back == s
    assert back.fingerprint() == s.fingerprint()
    assert len(s.fingerprint()) == 12
    assert FeatureSettings().fingerprint() == FeatureSettings().fingerprint()
    seen = {s.fingerprint()}
    for change in ({"offset_s": 0.6}, {"duration_s": 2.5}, {"n_mfcc": 20}, {"hop_length": 256}):
        fp = dataclasses.replace(s, **change).fingerprint()
        assert fp not in seen, change
        seen.add(fp)


def test_settings_of_another_version_are_refused() -> None:
    """This code computes the current version and whisper_base v4 only: a model trained on whisper_base v3 (silent
    blocks encoded) is not fed v5; a v4 model still gets v4's states, those after the encoder's last layer."""
    assert FeatureSettings.preset("whisper_base").version == FEATURE_SETS["whisper_base"].version == 5
    assert FeatureSettings.preset("whisper_base").encoder_layers == 3
    old = {**FeatureSettings.preset("whisper_base").to_dict(), "version": 3}
    with pytest.raises(ConfigError, match="whisper_base v3 .* extract the features again"):
        FeatureSettings.from_dict(old)
    assert FeatureSettings.from_dict({**old, "version": 4}).encoder_layers == 6
    with pytest.raises(ConfigError, match="logmel v4"):
        FeatureSettings.preset("logmel", version=4)


def test_from_dict_rejects_unknown_fields() -> None:
    d = FeatureSettings().to_dict() | {"n_bogus": 64}
    with pytest.raises(ConfigError, match="n_bogus"):
        FeatureSettings.from_dict(d)


def test_unknown_feature_set_raises() -> None:
    assert "seed" in FEATURE_SETS
    with pytest.raises(ConfigError, match="unknown feature set 'wav2vec'"):
        FeatureSettings(name="wav2vec")
    with pytest.raises(ConfigError, match="unknown feature set"):
        FeatureSettings.from_dict(FeatureSettings().to_dict() | {"name": "nope"})


@pytest.mark.parametrize(
    "bad",
    [{"duration_s": 0.0}, {"duration_s": -1.0}, {"offset_s": -0.1}, {"hop_length": 0}, {"frame_length": 256, "hop_length": 512}],
)
def test_invalid_settings_raise(bad: dict[str, float]) -> None:
    with pytest.raises(ConfigError):
        FeatureSettings(**bad)  # type: ignore[arg-type]


def test_settings_are_frozen() -> None:
    with pytest.raises(dataclasses.FrozenInstanceError):
        FeatureSettings().n_mfcc = 13  # type: ignore[misc]


def test_a_windows_features_do_not_depend_on_its_batch_neighbours() -> None:
    # librosa clips MFCC dB values at (max of the whole input - 80 dB): a quiet window stacked with a loud one must
    # still get the features it gets alone (the extract stacks original and augmented copies).
    s = FeatureSettings(duration_s=1.0)
    quiet = 1e-3 * window("03", settings=s)
    loud = window("05", settings=s)
    alone = compute(quiet, s.sample_rate, s)
    np.testing.assert_allclose(compute(np.stack([quiet, loud]), s.sample_rate, s)[0], alone, rtol=1e-5, atol=1e-4)
    assert compute(np.zeros((0, s.n_samples), np.float32), s.sample_rate, s).shape == (0, *s.shape)


@pytest.mark.parametrize(("n_fft", "hop"), [(1024, 512), (512, 256), (2048, 512)])
def test_stft_is_librosas_bit_for_bit(n_fft: int, hop: int) -> None:
    import librosa

    from ser_batch.dsp import stft

    stack = np.stack([window(code) for code in ("01", "04", "05")])
    np.testing.assert_array_equal(stft(stack, n_fft, hop), librosa.stft(stack, n_fft=n_fft, hop_length=hop))
    np.testing.assert_array_equal(stft(stack[1], n_fft, hop), librosa.stft(stack[1], n_fft=n_fft, hop_length=hop))


def test_yin_is_librosas_bit_for_bit() -> None:
    import librosa

    from ser_batch.dsp import yin

    t = np.arange(40_000) / 16_000
    glide = 0.5 * np.sin(2 * np.pi * (100 + 150 * t) * t)  # 100 Hz rising to 400 Hz
    noise = 0.1 * np.random.default_rng(0).standard_normal(40_000)
    stack = np.stack([window(code, actor) for code in ("01", "03", "05") for actor in (1, 2)] + [glide, noise, 0 * t])
    for y in (stack.astype(np.float32), stack.astype(np.float64), stack[0].astype(np.float32)):
        ours = yin(y, 16_000, 60.0, 600.0, frame_length=1024, hop_length=256)
        ref = librosa.yin(y, fmin=60.0, fmax=600.0, sr=16_000, frame_length=1024, hop_length=256)
        np.testing.assert_array_equal(ours, ref)
    with pytest.raises(ValueError, match="fmax <= sr / 2"):
        yin(stack[0], 16_000, 60.0, 9_000.0, frame_length=1024, hop_length=256)


def test_features_and_augmentation_call_no_numba_code(monkeypatch: pytest.MonkeyPatch) -> None:
    # Dask workers that compile librosa's numba gufuncs at the same moment can leave their on-disk cache
    # inconsistent, and calling them then segfaults (numba issue #10128): worker code must not call any of them.
    import importlib
    import pkgutil

    import librosa
    from numba.core.registry import CPUDispatcher
    from numba.np.ufunc.dufunc import DUFunc
    from numba.np.ufunc.gufunc import GUFunc

    from ser_batch import augment
    from ser_batch.features import FEATURE_SETS

    def forbidden(name: str):  # type: ignore[no-untyped-def]
        def call(*args: object, **kwargs: object) -> None:
            raise AssertionError(f"{name} is numba-compiled code")

        return call

    replaced = 0
    for info in pkgutil.walk_packages(librosa.__path__, "librosa."):
        if info.name.rsplit(".", 1)[-1].startswith("_") or info.name == "librosa.display":
            continue
        module = importlib.import_module(info.name)
        for name, obj in list(vars(module).items()):
            numba_made = isinstance(obj, (CPUDispatcher, GUFunc, DUFunc))
            if numba_made or (isinstance(obj, np.ufunc) and getattr(np, name, None) is not obj):
                monkeypatch.setattr(module, name, forbidden(f"{info.name}.{name}"))
                replaced += 1
    assert replaced > 10  # the check is live: librosa's yin, zero_crossing_rate, util.localmin... are all covered
    rng = np.random.default_rng(0)
    for name in FEATURE_SETS:
        s = FeatureSettings.preset(name)
        compute((0.1 * rng.standard_normal((2, s.n_samples))).astype(np.float32), s.sample_rate, s)
    augment.copies(window("05"), 16_000, augment.AugmentSettings(), "Actor_01/03-01-05-01-01-01-01")


def test_a_feature_set_is_a_registered_class_that_settings_defer_to(monkeypatch: pytest.MonkeyPatch) -> None:
    """Shape, coefficients, checks, versions and compute come from the class in FEATURE_SETS: adding one is a subclass."""
    from ser_batch import features

    class Energy(features.FeatureSet):
        name = "energy"
        version = 2
        versions = (2,)
        preset = {"offset_s": 0.0, "duration_s": 1.0, "frame_length": 400, "hop_length": 400}

        def n_frames(self, s: FeatureSettings) -> int:
            return s.n_samples // s.hop_length

        def coefficients(self, s: FeatureSettings) -> tuple[str, ...]:
            return ("rms",)

        def compute(self, y: np.ndarray, sr: int, s: FeatureSettings) -> np.ndarray:
            frames = y.reshape(*y.shape[:-1], -1, s.hop_length)
            return np.sqrt((frames**2).mean(axis=-1))[..., None].astype(np.float32)

    monkeypatch.setitem(features.FEATURE_SETS, "energy", Energy())
    s = FeatureSettings.preset("energy")
    assert (s.version, s.shape, s.grid, s.encoder_layers) == (2, (40, 1), False, 0)
    y = np.full((3, s.n_samples), 0.5, np.float32)
    np.testing.assert_allclose(compute(y, 16_000, s), 0.5)
    with pytest.raises(ConfigError, match="energy v1 is not what this ser-batch computes"):
        FeatureSettings.preset("energy", version=1)
    with pytest.raises(ConfigError, match="hop_length <= frame_length"):
        FeatureSettings.preset("energy", hop_length=800)  # the base class's check
