"""Tests of ser_batch.augment: lengths, determinism from (seed, recording, kind), and what each kind does."""

from __future__ import annotations

import numpy as np
import pytest

from conftest import emotion_signal, tone
from ser_batch.augment import KINDS, AugmentSettings, augment, rng_for
from ser_batch.errors import ConfigError

SR = 16_000


def peak_hz(y: np.ndarray, sr: int = SR) -> float:
    spec = np.abs(np.fft.rfft(y * np.hanning(y.size)))
    return float(np.fft.rfftfreq(y.size, 1 / sr)[np.argmax(spec)])


def speechlike(seconds: float = 2.5) -> np.ndarray:
    return emotion_signal("03", 1, SR, seconds).astype(np.float32)


@pytest.mark.parametrize("kind", KINDS)
def test_each_kind_keeps_length_and_dtype_and_is_deterministic(kind: str) -> None:
    y = speechlike()
    s = AugmentSettings()
    out, param = augment(y, SR, kind, s, "rec-1")
    assert out.shape == y.shape
    assert out.dtype == np.float32
    assert np.isfinite(out).all()
    assert isinstance(param, float)
    again, param2 = augment(y.copy(), SR, kind, s, "rec-1")
    np.testing.assert_array_equal(out, again)
    assert param == param2
    assert not np.array_equal(out, y), "an augmentation changes the signal"
    np.testing.assert_array_equal(y, speechlike())  # the input is not modified in place


@pytest.mark.parametrize("n", [4_000, 40_000, 40_001])
@pytest.mark.parametrize("kind", KINDS)
def test_length_kept_for_odd_sizes(kind: str, n: int) -> None:
    y = tone(SR, n / SR).astype(np.float32)
    assert augment(y, SR, kind, AugmentSettings(stretch_rate=1.25), "r")[0].size == n
    assert augment(y, SR, kind, AugmentSettings(), "r")[0].size == n


def test_noise_depends_on_seed_and_recording_only() -> None:
    y = speechlike()
    base = AugmentSettings(seed=0)
    a, amp_a = augment(y, SR, "noise", base, "rec-1")
    b, _ = augment(y, SR, "noise", base, "rec-1")
    np.testing.assert_array_equal(a, b)
    other_seed, _ = augment(y, SR, "noise", AugmentSettings(seed=1), "rec-1")
    other_rec, _ = augment(y, SR, "noise", base, "rec-2")
    assert not np.allclose(a, other_seed)
    assert not np.allclose(a, other_rec)
    # the parameter is the noise amplitude: at most noise_max x peak, and it is what was added
    assert 0 < amp_a <= base.noise_max * np.max(np.abs(y))
    assert np.std(a - y) == pytest.approx(amp_a, rel=0.05)


def test_rng_for_is_a_function_of_its_arguments() -> None:
    draw = lambda *args: rng_for(*args).standard_normal(4)  # noqa: E731
    np.testing.assert_array_equal(draw(0, "r", "noise"), draw(0, "r", "noise"))
    assert not np.array_equal(draw(0, "r", "noise"), draw(0, "r", "pitch"))
    assert not np.array_equal(draw(0, "r", "noise"), draw(1, "r", "noise"))
    assert not np.array_equal(draw(0, "r", "noise"), draw(0, "s", "noise"))


@pytest.mark.parametrize("steps", [0.7, 2.0, -3.0])
def test_pitch_shift_moves_a_tone_by_the_semitone_ratio(steps: float) -> None:
    y = tone(SR, 2.5, 1000.0).astype(np.float32)
    out, param = augment(y, SR, "pitch", AugmentSettings(pitch_steps=steps), "r")
    assert param == steps
    middle = slice(4_000, 36_000)  # away from the edges of the STFT
    expected = 1000.0 * 2 ** (steps / 12)
    assert peak_hz(out[middle]) == pytest.approx(expected, rel=0.005)
    assert peak_hz(y[middle]) == pytest.approx(1000.0, abs=1.0)


def test_default_pitch_shift_is_the_seeds_0_7_semitones() -> None:
    out, param = augment(tone(SR, 2.5, 1000.0).astype(np.float32), SR, "pitch", AugmentSettings(), "r")
    assert param == 0.7
    assert peak_hz(out[4_000:36_000]) / 1000.0 == pytest.approx(2 ** (0.7 / 12), rel=0.003)


def burst_length_s(y: np.ndarray, hop: int = 160) -> float:
    """Seconds during which the short-time RMS exceeds half its maximum."""
    frames = y[: y.size // hop * hop].reshape(-1, hop)
    rms = np.sqrt((frames**2).mean(axis=1))
    return float((rms > 0.5 * rms.max()).sum() * hop / SR)


def test_stretch_0_8_makes_a_tone_burst_longer() -> None:
    y = np.zeros(int(2.5 * SR), np.float32)
    y[int(0.2 * SR) : int(0.6 * SR)] = tone(SR, 0.4, 600.0)
    out, rate = augment(y, SR, "stretch", AugmentSettings(), "r")
    assert rate == 0.8
    assert burst_length_s(y) == pytest.approx(0.4, abs=0.02)
    assert burst_length_s(out) == pytest.approx(0.4 / 0.8, abs=0.04)
    # pitch is kept by a time stretch
    active = out[int(0.35 * SR) : int(0.65 * SR)]
    assert peak_hz(active) == pytest.approx(600.0, rel=0.01)


def test_stretch_faster_than_one_pads_the_end_with_zeros() -> None:
    y = tone(SR, 2.0, 500.0).astype(np.float32)
    out, rate = augment(y, SR, "stretch", AugmentSettings(stretch_rate=2.0), "r")
    assert rate == 2.0
    assert out.size == y.size
    assert not np.any(out[int(1.1 * SR) :])
    assert np.max(np.abs(out[: int(0.9 * SR)])) > 0.1


@pytest.mark.parametrize("rate", [0.8, 2 ** (-0.7 / 12), 1.25])
def test_vectorised_vocoder_and_istft_equal_librosas(rate: float) -> None:
    import librosa

    from ser_batch.augment import istft, phase_vocoder

    spec = librosa.stft(speechlike(2.5), n_fft=2048, hop_length=512)
    ours, theirs = phase_vocoder(spec, rate), librosa.phase_vocoder(spec, rate=rate, hop_length=512, n_fft=2048)
    assert ours.shape == theirs.shape and ours.dtype == np.complex64
    np.testing.assert_allclose(np.abs(ours), np.abs(theirs), rtol=1e-5, atol=1e-5)
    # phases: librosa sums them in float32 one frame at a time as we do, but rounds its increments differently
    np.testing.assert_allclose(ours, theirs, rtol=1e-2, atol=1e-4 * np.abs(theirs).max())
    length = int(round(spec.shape[1] * 512 / rate)) - 2048
    np.testing.assert_allclose(istft(ours, length), librosa.istft(ours, hop_length=512, n_fft=2048, length=length), atol=1e-6)


@pytest.mark.parametrize("kind", ["pitch", "stretch"])
def test_copies_equal_librosa_effects(kind: str) -> None:
    import librosa

    y = speechlike(2.5)
    out, _ = augment(y, SR, kind, AugmentSettings(), "r")
    if kind == "pitch":
        ref = librosa.effects.pitch_shift(y, sr=SR, n_steps=0.7)
    else:
        ref = librosa.effects.time_stretch(y, rate=0.8)[: y.size]
    assert np.linalg.norm(out - ref) < 1e-3 * np.linalg.norm(ref)  # > 60 dB SNR: the same signal


def test_settings_from_before_versions_read_as_version_1() -> None:
    assert AugmentSettings().version == 2
    old = AugmentSettings().to_dict()
    del old["version"]
    assert AugmentSettings.from_dict(old).version == 1
    assert AugmentSettings.from_dict(old) != AugmentSettings()  # so extract refuses to mix them in one output


def test_stretch_window_matches_stretch_then_crop() -> None:
    # augment stretches only the input that lands in the window: check it equals stretching all, then cropping
    import librosa

    y = speechlike(2.5)
    out, _ = augment(y, SR, "stretch", AugmentSettings(), "r")
    full = librosa.effects.time_stretch(y, rate=0.8)[: y.size]
    cut = int(0.8 * y.size)  # well inside the part both computed alike
    corr = np.corrcoef(out[:cut], full[:cut])[0, 1]
    assert corr > 0.99


def test_unknown_kind_raises_config_error() -> None:
    with pytest.raises(ConfigError, match="unknown augmentation 'reverb'"):
        augment(speechlike(), SR, "reverb", AugmentSettings(), "r")
    with pytest.raises(ConfigError, match="reverb"):
        AugmentSettings(kinds=("noise", "reverb"))
    with pytest.raises(ConfigError, match="stretch_rate"):
        AugmentSettings(stretch_rate=0.0)


def test_settings_round_trip() -> None:
    s = AugmentSettings(kinds=("noise", "stretch"), seed=7, pitch_steps=2.0)
    d = s.to_dict()
    assert d["kinds"] == ["noise", "stretch"]
    assert AugmentSettings.from_dict(d) == s
    assert AugmentSettings.from_dict(AugmentSettings().to_dict()) == AugmentSettings()
    assert AugmentSettings().kinds == ("noise", "pitch", "stretch")


def test_shift_offsets_cover_where_score_windows_start() -> None:
    from ser_batch.augment import shift_offsets

    s = AugmentSettings(shifts=400)
    offs = np.array(shift_offsets(3.7, 3.0, s, "rec"))
    assert len(offs) == 400 and offs.min() >= 0.0
    # score's windows of a 3.7 s recording start at 0 and 1.25 s (the last runs past the end): both are covered
    assert offs.max() <= 1.95 + 1e-9 and offs.min() < 0.1 and offs.max() > 1.8
    assert shift_offsets(3.7, 3.0, s, "rec") == list(offs)  # deterministic per (seed, recording)
    assert shift_offsets(3.7, 3.0, s, "other") != list(offs)
    assert max(shift_offsets(1.5, 3.0, s, "rec")) <= 0.5  # at least 1 s of audio stays in the window
    assert shift_offsets(0.8, 3.0, s, "rec") == [0.0] * 400
    assert shift_offsets(3.7, 3.0, AugmentSettings(), "rec") == []
    with pytest.raises(ConfigError, match="shifts"):
        AugmentSettings(shifts=-1)
