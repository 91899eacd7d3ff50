"""Tests of ser_batch.audio: probing, windows at the working rate, padding, resampling, bad files, streaming."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from conftest import BAD_REASONS, CHANNELS, FORMATS, RATES, tone, write_tone
from ser_batch import audio
from ser_batch.audio import WORKING_SR
from ser_batch.errors import AudioError, SerBatchError


def peak_hz(y: np.ndarray, sr: int) -> float:
    """Frequency of the largest FFT bin (Hann-windowed)."""
    spec = np.abs(np.fft.rfft(y * np.hanning(y.size)))
    return float(np.fft.rfftfreq(y.size, 1 / sr)[np.argmax(spec)])


def write_fmt(path_stem: Path, fmt: str, sr: int, channels: int, seconds: float, freq: float = 440.0) -> Path:
    ext, major, subtype = FORMATS[fmt]
    path = path_stem.with_suffix(ext)
    y = tone(sr, seconds, freq)
    data = np.stack([y] * channels, axis=1) if channels > 1 else y
    sf.write(path, data.astype(np.float32), sr, format=major, subtype=subtype)
    return path


@pytest.mark.parametrize("channels", CHANNELS)
@pytest.mark.parametrize("sr", RATES)
@pytest.mark.parametrize("fmt", list(FORMATS))
def test_probe_and_window_every_format_rate_and_channel_count(tmp_path: Path, fmt: str, sr: int, channels: int) -> None:
    path = write_fmt(tmp_path / "clip", fmt, sr, channels, seconds=1.3, freq=440.0)
    info = audio.probe(path)
    assert info.sample_rate == sr
    assert info.channels == channels
    assert info.frames == int(round(1.3 * sr))
    assert info.duration_s == pytest.approx(1.3, abs=1e-3)
    assert info.format == FORMATS[fmt][1]

    win = audio.read_window(path, WORKING_SR, offset_s=0.2, duration_s=0.8)
    assert win.samples.shape == (int(round(0.8 * WORKING_SR)),)
    assert win.samples.dtype == np.float32
    assert win.sample_rate == WORKING_SR
    assert win.start_s == 0.2
    assert win.pad_s == pytest.approx(0.0, abs=2 / WORKING_SR)
    assert win.info == info
    # the tone survives decoding, downmixing and resampling (lossy vorbis included)
    assert peak_hz(win.samples, WORKING_SR) == pytest.approx(440.0, abs=3.0)
    assert np.max(np.abs(win.samples)) == pytest.approx(0.3, rel=0.1)


@pytest.mark.parametrize(("sr", "duration"), [(16_000, 2.5), (22_050, 1.2345), (44_100, 0.3333), (8_000, 2.0)])
@pytest.mark.parametrize("out_sr", [16_000, 8_000, 22_050])
def test_read_window_length_is_exact_at_the_working_rate(tmp_path: Path, sr: int, duration: float, out_sr: int) -> None:
    path = write_tone(tmp_path / "a.wav", sr, 4.0, channels=2, subtype="PCM_16")
    win = audio.read_window(path, out_sr, offset_s=0.6, duration_s=duration)
    assert win.samples.ndim == 1
    assert win.samples.size == int(round(duration * out_sr))
    assert win.samples.dtype == np.float32
    assert win.sample_rate == out_sr
    assert win.pad_s == pytest.approx(0.0, abs=2 / out_sr)


@pytest.mark.parametrize(("seconds", "sr"), [(1.0, 16_000), (1.0, 44_100), (1.7, 48_000), (3.0, 8_000)])
def test_short_audio_is_padded_and_the_padding_recorded(tmp_path: Path, seconds: float, sr: int) -> None:
    path = write_tone(tmp_path / "short.wav", sr, seconds, subtype="PCM_16")
    win = audio.read_window(path, WORKING_SR, offset_s=0.6, duration_s=2.5)
    expected_pad = max(0.0, 0.6 + 2.5 - seconds)
    assert win.start_s == 0.6
    assert win.samples.size == 40_000
    assert win.pad_s == pytest.approx(expected_pad, abs=2e-3)
    n_pad = int(round(win.pad_s * WORKING_SR))
    if n_pad:
        assert not np.any(win.samples[-n_pad:]), "the padding is zeros"
    # the audio part is there (allow the resampler's last few samples to fade)
    audio_part = win.samples[: win.samples.size - n_pad - 16]
    assert np.max(np.abs(audio_part[-200:])) > 0.1


def test_audio_shorter_than_the_offset_is_read_from_the_start(tmp_path: Path) -> None:
    path = write_tone(tmp_path / "tiny.wav", 16_000, 0.5, subtype="PCM_16")
    win = audio.read_window(path, WORKING_SR, offset_s=0.6, duration_s=2.5, min_samples=1024)
    assert win.start_s == 0.0
    assert win.pad_s == pytest.approx(2.0, abs=1e-3)
    assert np.max(np.abs(win.samples[:7000])) > 0.1


@pytest.mark.parametrize("seconds", [0.6, 0.62, 0.65])
def test_audio_barely_longer_than_the_offset_is_read_from_the_start(tmp_path: Path, seconds: float) -> None:
    # Fewer than min_samples after the offset: the clip must not be refused while a shorter one is accepted.
    path = write_tone(tmp_path / "edge.wav", 16_000, seconds, subtype="PCM_16")
    win = audio.read_window(path, WORKING_SR, offset_s=0.6, duration_s=2.5, min_samples=1024)
    assert win.start_s == 0.0
    assert win.pad_s == pytest.approx(2.5 - seconds, abs=1e-3)


def test_read_window_starts_at_the_offset(tmp_path: Path) -> None:
    sr = 16_000
    y = np.concatenate([tone(sr, 0.6, 200.0), tone(sr, 2.0, 1000.0)]).astype(np.float32)
    path = tmp_path / "two.wav"
    sf.write(path, y, sr)
    win = audio.read_window(path, sr, offset_s=0.6, duration_s=1.0)
    assert peak_hz(win.samples, sr) == pytest.approx(1000.0, abs=2.0)
    head = audio.read_window(path, sr, offset_s=0.0, duration_s=0.5)
    assert peak_hz(head.samples, sr) == pytest.approx(200.0, abs=2.0)


def test_resampling_48k_to_16k_keeps_a_1khz_tone(tmp_path: Path) -> None:
    path = write_tone(tmp_path / "k.wav", 48_000, 2.0, freq=1000.0, subtype="PCM_16")
    win = audio.read_window(path, 16_000, offset_s=0.0, duration_s=2.0)
    assert win.samples.size == 32_000
    assert peak_hz(win.samples, 16_000) == pytest.approx(1000.0, abs=1.0)
    # and no energy folded elsewhere: the tone carries almost all of it
    spec = np.abs(np.fft.rfft(win.samples * np.hanning(win.samples.size))) ** 2
    f = np.fft.rfftfreq(win.samples.size, 1 / 16_000)
    assert spec[np.abs(f - 1000) < 20].sum() / spec.sum() > 0.99


def test_resample_identity_and_ratio() -> None:
    y = tone(44_100, 1.0).astype(np.float32)
    assert audio.resample(y, 44_100, 44_100) is y
    out = audio.resample(y, 44_100, 16_000)
    assert out.dtype == np.float32
    assert abs(out.size - 16_000) <= 1


def test_downmix_averages_channels(tmp_path: Path) -> None:
    sr = 16_000
    y = tone(sr, 1.0, 500.0)
    path = tmp_path / "lr.wav"
    sf.write(path, np.stack([y, np.zeros_like(y)], axis=1).astype(np.float32), sr, subtype="FLOAT")
    win = audio.read_window(path, sr, 0.0, 1.0)
    assert np.max(np.abs(win.samples)) == pytest.approx(0.15, rel=0.02)
    # opposite channels cancel to silence, which is refused
    anti = tmp_path / "anti.wav"
    sf.write(anti, np.stack([y, -y], axis=1).astype(np.float32), sr, subtype="FLOAT")
    with pytest.raises(AudioError, match="silent"):
        audio.read_window(anti, sr, 0.0, 1.0)


def test_to_mono_shapes() -> None:
    stereo = np.array([[1.0, 0.0], [0.5, 0.5]])
    assert audio.to_mono(stereo).tolist() == [0.5, 0.5]
    assert audio.to_mono(stereo).dtype == np.float32
    assert audio.to_mono(np.array([1.0, 2.0])).shape == (2,)


@pytest.mark.parametrize("kind", list(BAD_REASONS))
def test_bad_files_raise_audio_error_with_reason(bad_dir: dict[str, Path], kind: str) -> None:
    path = bad_dir[kind]
    with pytest.raises(AudioError) as info:
        audio.read_window(path, WORKING_SR, offset_s=0.6, duration_s=2.5, min_samples=1024)
    msg = str(info.value)
    assert BAD_REASONS[kind].lower() in msg.lower()
    assert path.name in msg, "the message names the file"
    assert isinstance(info.value, SerBatchError)


@pytest.mark.parametrize("kind", ["empty", "text"])
def test_probe_rejects_non_audio(bad_dir: dict[str, Path], kind: str) -> None:
    with pytest.raises(AudioError, match=BAD_REASONS[kind]):
        audio.probe(bad_dir[kind])


def test_probe_missing_file(tmp_path: Path) -> None:
    with pytest.raises(AudioError, match="cannot open"):
        audio.probe(tmp_path / "nope.wav")


def test_check_signal_rejects_inf_and_accepts_a_tone() -> None:
    y = tone(16_000, 0.5).astype(np.float32)
    audio.check_signal(y, "ok.wav", min_samples=1024)
    bad = y.copy()
    bad[10] = np.inf
    with pytest.raises(AudioError, match="NaN or Inf"):
        audio.check_signal(bad, "inf.wav")
    with pytest.raises(AudioError, match="too short"):
        audio.check_signal(y[:10], "s.wav", min_samples=11)


def test_stream_covers_the_whole_two_channel_44k_file(tmp_path: Path) -> None:
    seconds = 3.3
    path = write_tone(tmp_path / "long.wav", 44_100, seconds, channels=2, freq=700.0, subtype="PCM_16")
    blocks = list(audio.stream(path, WORKING_SR, block_s=0.5))
    assert len(blocks) == math.ceil(seconds / 0.5)
    assert all(b.ndim == 1 and b.dtype == np.float32 for b in blocks)
    total = sum(b.size for b in blocks)
    assert abs(total - seconds * WORKING_SR) <= len(blocks)  # at most a sample of rounding per block
    y = np.concatenate(blocks)
    assert peak_hz(y, WORKING_SR) == pytest.approx(700.0, abs=1.0)


def test_stream_between_start_and_stop(tmp_path: Path) -> None:
    path = write_tone(tmp_path / "s.flac", 16_000, 3.0)
    blocks = list(audio.stream(path, WORKING_SR, block_s=0.4, start_s=0.5, stop_s=2.0))
    assert sum(b.size for b in blocks) == 24_000
    assert max(b.size for b in blocks) == 6_400


def test_stream_of_bad_file_raises(bad_dir: dict[str, Path]) -> None:
    with pytest.raises(AudioError, match="truncated"):
        list(audio.stream(bad_dir["undecodable"], WORKING_SR))
    with pytest.raises(AudioError, match="empty"):
        list(audio.stream(bad_dir["empty"], WORKING_SR))
