"""benchmarks/prosody.py: its pitch and loudness figures on tones it can be checked against, and its speaker folds."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path
from types import ModuleType

import numpy as np
import pytest
import soundfile as sf

SCRIPT = Path(__file__).resolve().parents[1] / "benchmarks" / "prosody.py"


@pytest.fixture(scope="module")
def prosody() -> ModuleType:
    spec = importlib.util.spec_from_file_location("bench_prosody", SCRIPT)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules["bench_prosody"] = module
    spec.loader.exec_module(module)
    return module


def _tone(path: Path, hz: float, amp: float, sr: int = 22050, seconds: float = 1.5) -> str:
    t = np.arange(int(sr * seconds)) / sr
    y = amp * np.sin(2 * np.pi * hz * t) * (t < 1.0)  # 1 s of tone, then 0.5 s of silence
    sf.write(path, y.astype(np.float32), sr)
    return str(path)


def test_pitch_loudness_and_loud_share_of_tones(prosody: ModuleType, tmp_path: Path) -> None:
    low = prosody.prosody(_tone(tmp_path / "low.flac", 110.0, 0.1))
    high = prosody.prosody(_tone(tmp_path / "high.flac", 220.0, 0.4))
    assert low[0] == pytest.approx(12.0, abs=0.3)  # 110 Hz is 12 semitones above 55 Hz
    assert high[0] - low[0] == pytest.approx(12.0, abs=0.3)  # an octave
    assert low[1] < 0.5  # a steady tone: no pitch range
    assert high[2] - low[2] == pytest.approx(20 * np.log10(4), abs=0.5)  # 4x the amplitude: +12 dB
    assert low[4] == pytest.approx(1.0 / 1.5, abs=0.03)  # the silent half second is not loud
    assert low[5] == pytest.approx(1.5, abs=1e-3)


def test_grouped_folds_keep_speakers_whole_and_cover_every_row(prosody: ModuleType) -> None:
    groups = np.array(["a", "b", "c", "a", "d", "e", "f", "b", "g"])
    folds = prosody.grouped_folds(groups, k=3)
    assert len(folds) == 3
    assert (np.sum(folds, axis=0) == 1).all()  # every row tested exactly once
    for f in folds:
        assert not set(groups[f]) & set(groups[~f])
    assert len(prosody.grouped_folds(groups[:2], k=5)) == 2  # at most one fold per speaker
