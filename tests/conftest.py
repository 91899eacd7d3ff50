"""Shared fixtures: synthetic audio (tones, chirps, coloured noise) written with soundfile into tmp folders.

Nothing here needs network or the real corpora; ``shared_data`` skips when ../shared/data is absent.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import soundfile as sf

REPO = Path(__file__).resolve().parents[1]

# (extension, soundfile format, subtype) of the formats the synthetic corpus is written in.
FORMATS: dict[str, tuple[str, str, str]] = {
    "wav16": (".wav", "WAV", "PCM_16"),
    "flac": (".flac", "FLAC", "PCM_16"),
    "ogg": (".ogg", "OGG", "VORBIS"),
    "wavfloat": (".wav", "WAV", "FLOAT"),
}
RATES: tuple[int, ...] = (8_000, 16_000, 22_050, 44_100, 48_000)
CHANNELS: tuple[int, ...] = (1, 2)
DURATIONS: tuple[float, ...] = (1.0, 1.7, 2.4, 3.5)

# RAVDESS emotion code -> label, for the emotions the synthetic corpus uses.
SYNTH_EMOTIONS: dict[str, str] = {"01": "neutral", "03": "happy", "04": "sad", "05": "angry"}
SYNTH_ACTORS: tuple[int, ...] = (1, 2, 3)
SYNTH_REPETITIONS: tuple[str, ...] = ("01", "02")


def tone(sr: int, seconds: float, freq: float = 440.0, amp: float = 0.3) -> np.ndarray:
    """A pure sine, float64 mono."""
    t = np.arange(int(round(seconds * sr))) / sr
    return amp * np.sin(2 * np.pi * freq * t)


def write_tone(
    path: str | Path,
    sr: int,
    seconds: float,
    channels: int = 1,
    freq: float = 440.0,
    subtype: str | None = None,
    amp: float = 0.3,
) -> Path:
    """Write a sine of ``freq`` Hz (same in every channel) and return the path; the format follows the suffix."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    y = tone(sr, seconds, freq, amp)
    data = np.repeat(y[:, None], channels, axis=1) if channels > 1 else y
    sf.write(path, data.astype(np.float32), sr, subtype=subtype)
    return path


def _coloured_noise(rng: np.random.Generator, n: int, exponent: float) -> np.ndarray:
    """Noise with power ~ 1/f**exponent (0 white, 1 pink, 2 brown), peak-normalised."""
    spec = np.fft.rfft(rng.standard_normal(n))
    f = np.fft.rfftfreq(n)
    f[0] = f[1]
    y = np.fft.irfft(spec / f ** (exponent / 2), n)
    return y / np.max(np.abs(y))


def emotion_signal(code: str, actor: int, sr: int, seconds: float, seed: int = 0) -> np.ndarray:
    """A mono signal whose character depends on the 'emotion' (separable) and a little on the actor."""
    n = int(round(seconds * sr))
    t = np.arange(n) / sr
    rng = np.random.default_rng(seed)
    base = 1.0 + 0.04 * actor  # a speaker's 'voice' shifts every frequency a little
    if code == "01":  # neutral: steady low harmonic tone
        f0 = 180 * base
        y = sum(np.sin(2 * np.pi * k * f0 * t) / k for k in (1, 2, 3))
    elif code == "03":  # happy: rising chirp, bright
        f = 300 * base + 900 * t / max(seconds, 1e-9)
        y = np.sin(2 * np.pi * np.cumsum(f) / sr)
    elif code == "04":  # sad: brown noise, slow amplitude swell
        y = _coloured_noise(rng, n, 2.0) * (0.5 + 0.5 * np.sin(2 * np.pi * 0.7 * t))
    elif code == "05":  # angry: white noise bursts over a 900 Hz tone
        y = 0.6 * _coloured_noise(rng, n, 0.0) * (np.sin(2 * np.pi * 6 * t) > 0) + 0.4 * np.sin(
            2 * np.pi * 900 * base * t
        )
    else:
        raise ValueError(code)
    y = np.asarray(y, dtype=np.float64)
    return 0.5 * y / np.max(np.abs(y))


@dataclass(frozen=True)
class SynthFile:
    """One file of the synthetic corpus and what was written."""

    path: Path
    sample_rate: int
    channels: int
    fmt: str
    seconds: float
    emotion: str
    label: str
    actor: int


def write_synth(
    path: Path, code: str, actor: int, sr: int, seconds: float, channels: int, fmt: str, seed: int = 0
) -> SynthFile:
    _, major, subtype = FORMATS[fmt]
    y = emotion_signal(code, actor, sr, seconds, seed)
    if channels == 2:  # slightly different channels, so downmixing is exercised
        data = np.stack([y, 0.8 * y], axis=1)
    else:
        data = y
    path.parent.mkdir(parents=True, exist_ok=True)
    sf.write(path, data.astype(np.float32), sr, format=major, subtype=subtype)
    return SynthFile(path, sr, channels, fmt, seconds, code, SYNTH_EMOTIONS[code], actor)


def build_ravdess_corpus(root: Path) -> list[SynthFile]:
    """RAVDESS layout ``Actor_NN/03-01-EE-01-01-RR-NN.ext``: 3 actors x 4 emotions x 2 repetitions (24 files).

    Rates, channel counts, formats and durations are cycled so that every value of each occurs.
    """
    files = []
    i = 0
    for actor in SYNTH_ACTORS:
        for code in SYNTH_EMOTIONS:
            for rep in SYNTH_REPETITIONS:
                fmt = list(FORMATS)[i % len(FORMATS)]
                sr = RATES[i % len(RATES)]
                channels = CHANNELS[(i // 2) % len(CHANNELS)]
                seconds = DURATIONS[(i // 3) % len(DURATIONS)]
                ext = FORMATS[fmt][0]
                path = root / f"Actor_{actor:02d}" / f"03-01-{code}-01-01-{rep}-{actor:02d}{ext}"
                files.append(write_synth(path, code, actor, sr, seconds, channels, fmt, seed=i))
                i += 1
    return files


@pytest.fixture(scope="session")
def synth_corpus(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, list[SynthFile]]:
    """A tiny RAVDESS-layout corpus of good files (read-only for tests: do not modify it)."""
    root = tmp_path_factory.mktemp("synth_ravdess")
    return root, build_ravdess_corpus(root)


# Bad files: kind -> RAVDESS-style name (actor 09, one emotion code each, so each file parses as RAVDESS)
BAD_NAMES: dict[str, str] = {
    "empty": "03-01-01-01-01-01-09.wav",
    "text": "03-01-02-01-01-01-09.wav",
    "truncated": "03-01-03-01-01-01-09.wav",
    "undecodable": "03-01-04-01-01-01-09.flac",
    "silent": "03-01-05-01-01-01-09.wav",
    "short": "03-01-06-01-01-01-09.wav",
    "nan": "03-01-07-01-01-01-09.wav",
}

# kind -> a fragment the AudioError message must contain
BAD_REASONS: dict[str, str] = {
    "empty": "empty",
    "text": "not readable audio",
    "truncated": "too short",
    "undecodable": "truncated",
    "silent": "silent",
    "short": "too short",
    "nan": "NaN",
}


def bad_files(folder: Path) -> dict[str, Path]:
    """Write one file of each broken kind into ``folder``; returns kind -> path."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    p = {kind: folder / name for kind, name in BAD_NAMES.items()}
    sr = 16_000
    p["empty"].write_bytes(b"")
    p["text"].write_text("this is a text file, not audio\n" * 20)
    # a real wav cut right after the header plus a few samples: the header says 2 s, the data holds 8 samples
    good = folder / ".good.wav"
    write_tone(good, sr, 2.0, subtype="PCM_16")
    p["truncated"].write_bytes(good.read_bytes()[:60])
    # a FLAC cut inside its first frames: the header parses, decoding fails
    good_flac = folder / ".good.flac"
    write_tone(good_flac, sr, 2.0)
    p["undecodable"].write_bytes(good_flac.read_bytes()[:44])
    good.unlink()
    good_flac.unlink()
    sf.write(p["silent"], np.zeros(2 * sr, np.float32), sr, subtype="PCM_16")
    sf.write(p["short"], tone(sr, 100 / sr).astype(np.float32), sr, subtype="PCM_16")
    y = tone(sr, 2.0).astype(np.float32)
    y[::50] = np.nan  # throughout, so any window sees them
    sf.write(p["nan"], y, sr, subtype="FLOAT")
    return p


@pytest.fixture
def bad_dir(tmp_path: Path) -> dict[str, Path]:
    """The bad files in a fresh tmp folder."""
    return bad_files(tmp_path / "bad")


@pytest.fixture(scope="session")
def shared_data() -> Path:
    """../shared/data beside the repository (the real corpora); skips the test when absent."""
    path = REPO.parent / "shared" / "data"
    if not path.is_dir():
        pytest.skip(f"shared data not found at {path}")
    return path


# ---------------------------------------------------------------- Dask: one cluster and one extract for the session


@pytest.fixture(scope="session")
def dask_scheduler() -> str:
    """Address of one single-worker LocalCluster shared by every test that runs an extract."""
    from ser_batch.cluster import local_cluster

    cluster = local_cluster(1)
    try:
        yield cluster.scheduler_address
    finally:
        cluster.close()


@dataclass(frozen=True)
class Extracted:
    """A finished extract (with augmentation) over the synthetic corpus plus the bad files."""

    corpus: Path
    good: list[SynthFile]
    bad: dict[str, Path]
    out: Path
    result: object  # ExtractResult


FILES_PER_SHARD = 8


@pytest.fixture(scope="session")
def extracted(tmp_path_factory: pytest.TempPathFactory, dask_scheduler: str) -> Extracted:
    """One augmented extract run shared by test_extract and test_shards (read-only: copy before changing)."""
    from ser_batch.extract import extract

    root = tmp_path_factory.mktemp("extract_corpus")
    good = build_ravdess_corpus(root)
    bad = bad_files(root / "Actor_09")
    out = tmp_path_factory.mktemp("extract_out") / "features"
    result = extract([root], out, files_per_shard=FILES_PER_SHARD, scheduler=dask_scheduler, progress=False)
    return Extracted(root, good, bad, out, result)


def make_tiny_model(path: Path, classes: list[str] | None = None, name: str = "tiny", speaker_norm: bool = False, features: str = "seed", norm_by: str = "speaker", prior: Any = None) -> Path:
    """An untrained model directory with an identity scaler: fast to build, loads safely. Seed features and the
    'frames' model by default; ``features="whisper_base"`` gives a frame-grid model ('pool')."""
    import keras
    import numpy as np

    from ser_batch import modeldir, models
    from ser_batch.features import FeatureSettings
    from ser_batch.labels import EMOTIONS

    fs = FeatureSettings.preset(features)
    keras.utils.set_random_seed(0)
    classes = list(classes or EMOTIONS)
    model = models.build("frames" if features == "seed" else "pool", fs.n_frames, fs.n_coeffs, len(classes))
    config = {
        "name": name,
        "classes": classes,
        "features": fs.to_dict(),
        "model": {"speaker_norm": True, "norm_by": norm_by} if speaker_norm else {},
        "protocol": "holdout",
        "split": {"train_speakers": [], "val_speakers": [], "test_speakers": []},
    }
    scaler = modeldir.Scaler(np.zeros(fs.shape, np.float32), np.ones(fs.shape, np.float32), prior)
    return modeldir.save(path, model, config, scaler)
