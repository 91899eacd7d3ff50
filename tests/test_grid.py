"""The frame grid of whisper_base (v4 on): each second of speech encoded once, silence never, training windows cut as
scoring cuts them, and a speaker-normalised model scored with one encoder pass."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import soundfile as sf

from conftest import emotion_signal, make_tiny_model
from ser_batch import encoder, features, pieces, windows
from ser_batch import plan, speakers as SP
from ser_batch import score as S
from ser_batch.inference import classify, file_reader, load_model, signal_reader
from ser_batch.errors import ConfigError
from ser_batch.extract import FileTask, WindowSettings, extract_file
from ser_batch.features import FeatureSettings

WS = FeatureSettings.preset("whisper_base")
SR = 16_000


def talk(seconds: float, pauses: tuple[tuple[float, float], ...] = (), seed: int = 0) -> np.ndarray:
    """Speech-like audio with stretches of digital silence (start_s, length_s)."""
    y = emotion_signal("05", 1 + seed, SR, seconds, seed=seed).astype(np.float32)
    for start, length in pauses:
        y[int(start * SR) : int((start + length) * SR)] = 0.0
    return y


@pytest.fixture
def count_blocks(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    """Blocks each encoder call received, in order."""
    calls: list[int] = []
    real = encoder.encode

    def counting(y: np.ndarray, sr: int, device: str = "cpu", layers: int = encoder.LAYERS) -> np.ndarray:
        calls.append(len(y))
        return real(y, sr, device, layers)

    monkeypatch.setattr(encoder, "encode", counting)
    return calls


def test_window_starts_and_the_frame_grid() -> None:
    assert windows.starts(7.0, 3.0, 0.5).tolist() == [0.0, 0.5, 1.0, 1.5, 2.0, 2.5, 3.0, 3.5, 4.0]
    assert windows.starts(2.0, 3.0, 0.5).tolist() == [0.0]
    assert windows.frame_steps(0.5, 0.1) == 5
    with pytest.raises(ConfigError, match="--hop 1.25 s is not a multiple of this model's 0.1 s frames"):
        windows.frame_steps(1.25, 0.1)


def test_silence_is_never_encoded(count_blocks: list[int]) -> None:
    """Fourteen seconds of silence between two stretches of speech: the blocks no speech window touches are skipped,
    and the silent blocks speech windows do read take the states of silence without being encoded."""
    silence = features.silent_states(WS.hop_length, "cpu", WS.encoder_layers)  # encoded once per process
    count_blocks.clear()
    y = talk(24.0, pauses=((4.0, 14.0),))
    g = features.gate(y, SR, WS, windows.SILENCE_DB)
    frames = features.encode_blocks(y, SR, WS, g, g.speech_blocks)
    # blocks [9, 12) and [12, 15) s lie in the pause, more than a window from any speech
    assert g.speech_blocks.tolist() == [True, True, True, False, False, True, True, True]
    # [6, 9) and [15, 18) s are read by speech windows but silent through and through: never encoded
    assert g.quiet_blocks.tolist() == [False, False, True, True, True, True, False, False]
    assert len(g.speech_blocks) == 8 and sum(count_blocks) == 4
    assert np.isnan(frames[90:150, 1:]).all() and not np.isnan(frames[:90]).any() and not np.isnan(frames[:, 0]).any()
    np.testing.assert_array_equal(frames[60:90, 1:], silence)
    np.testing.assert_array_equal(frames[150:180, 1:], silence)
    assert not np.allclose(frames[30:60, 1:], silence)  # [3, 6) s holds a second of speech: encoded
    # windows that lie wholly in the pause are silent, those touching speech are not
    assert not g.speech[int(8.0 / 0.1)] and g.speech[0] and g.speech[int(16.0 / 0.1)]


def test_pieces_see_what_the_whole_recording_sees(count_blocks: list[int]) -> None:
    """Cut into pieces of 6 s, a recording gives the same speech decisions, window features and statistics as in
    one piece, and encodes at most one extra block per piece boundary."""
    y = talk(40.0, pauses=((10.0, 9.0),), seed=1)
    read = signal_reader(y, SR)
    features.silent_states(WS.hop_length, "cpu", WS.encoder_layers)
    count_blocks.clear()
    whole = pieces.piece_frames(WS, read, pieces.plan_pieces("", 40.0, 3.0, 0.5, 600.0)[0], 0.5, windows.SILENCE_DB)
    once = sum(count_blocks)
    count_blocks.clear()
    cut = pieces.plan_pieces("", 40.0, 3.0, 0.5, 6.0)
    parts = [pieces.piece_frames(WS, read, pc, 0.5, windows.SILENCE_DB) for pc in cut]
    assert len(cut) == 7
    assert np.concatenate([p.starts for p in parts]).tolist() == whole.starts.tolist()
    assert np.concatenate([p.speech for p in parts]).tolist() == whole.speech.tolist()
    assert 0 < whole.speech.sum() < len(whole.speech)  # the pause holds silent windows
    a = np.concatenate([windows.cut(p.frames, p.first, WS.n_frames) for p in parts])
    b = windows.cut(whole.frames, whole.first, WS.n_frames)
    np.testing.assert_allclose(a, b, atol=2e-3)  # int8 kernels round by batch composition
    np.testing.assert_allclose(sum(p.moments for p in parts), whole.moments, rtol=1e-3)
    g = features.gate(np.pad(y, (0, 3 * SR)), SR, WS, windows.SILENCE_DB)
    assert once == (g.speech_blocks & ~g.quiet_blocks)[:14].sum() == 12  # 14 blocks hold the 40 s; [12, 18) s is silent
    assert sum(count_blocks) <= once + len(cut) - 1


def test_training_windows_are_the_scoring_windows(tmp_path: Path) -> None:
    """extract cuts a recording as score does: the same starts, the same speech windows, the same features."""
    y = talk(7.3, seed=2)
    path = tmp_path / "clip.wav"
    sf.write(path, y, SR)
    task = FileTask(str(path), "rid", "generic", "generic:a", "angry", "{}")
    rows, x, _info, mom = extract_file(task, WS, None, WindowSettings(hop_s=0.5))
    pf = pieces.piece_frames(WS, file_reader(str(path), SR), pieces.plan_pieces(str(path), 7.3, 3.0, 0.5, 600.0)[0], 0.5, windows.SILENCE_DB)
    assert [r["start_s"] for r in rows] == pf.starts[pf.speech].tolist()
    np.testing.assert_allclose(x, windows.cut(pf.frames, pf.first, WS.n_frames), atol=2e-3)
    np.testing.assert_allclose(mom, pf.moments, rtol=1e-3)
    assert rows[-1]["pad_s"] == pytest.approx(0.5 * 9 + 3.0 - 7.3 if len(rows) == 10 else rows[-1]["pad_s"])


def test_extract_refuses_shifts_with_the_grid(tmp_path: Path) -> None:
    from ser_batch.augment import AugmentSettings
    from ser_batch.extract import extract

    with pytest.raises(ConfigError, match="--shifts"):
        extract([tmp_path], tmp_path / "out", feature_settings=WS, augment_settings=AugmentSettings(shifts=2), progress=False)


def test_one_encoder_pass_for_a_speaker_normalised_model(tmp_path: Path, count_blocks: list[int]) -> None:
    """frames_task encodes and keeps the frames; score_task normalises and classifies them without encoding again,
    and says what scoring the same frames directly with the speaker's statistics says."""
    model = make_tiny_model(tmp_path / "m", speaker_norm=True, features="whisper_base")
    paths = []
    for i, pauses in enumerate([((3.0, 8.0),), ()]):
        p = tmp_path / f"rec{i}.wav"
        sf.write(p, talk(14.0, pauses, seed=i), SR)
        paths.append(str(p))
    settings = S.ScoreSettings(chunk_s=6.0)
    who = tmp_path / "who.csv"
    who.write_text("path,speaker\nrec0.wav,spk\nrec1.wav,spk\n")
    parts = tmp_path / "parts"
    plan.probe_task(paths, str(parts), "b.parquet", settings, str(who))
    (spec,) = plan.cut_tasks("b.parquet", plan.durations(parts, "b.parquet"), 3.0, settings)
    task = [pc for _r, pc in plan.task_pieces(spec, plan.read_plan(parts, "b.parquet"), 3.0, settings)]
    assert len(task) >= 4  # both recordings, each in pieces
    S.stats_task(spec, str(model), settings, str(parts))
    encoded = sum(count_blocks)
    totals = SP.sum_moments([parts / S.STATS_DIR / spec.name])
    assert set(totals) == {"who.csv:spk"}
    SP.write_norms(totals, parts / "norms.parquet")
    norm = SP.read_norms(str(parts / "norms.parquet"))["who.csv:spk"]
    kept_path = parts / S.STATS_DIR / f"{Path(spec.name).stem}.npz"
    kept = S._load_frames(kept_path, len(task))
    S.score_task(spec, str(model), settings, str(parts), "t.parquet", True, str(parts / "norms.parquet"))
    assert sum(count_blocks) == encoded  # the second task encoded nothing
    assert not kept_path.exists()  # and cleaned up after itself
    md = load_model(str(model))
    want = np.concatenate([classify(md, pf, norm, 64) for pf in kept])
    seg = pd.read_parquet(parts / "segments" / "t.parquet")
    got = seg[[c for c in seg.columns if c.startswith("p_")]].to_numpy()
    np.testing.assert_allclose(got[seg["is_speech"]], want[~np.isnan(want[:, 0])], atol=1e-5)
    assert seg.loc[~seg["is_speech"], "emotion"].isna().all()  # silent windows get no verdict
    part = pd.read_parquet(parts / "t.parquet")
    assert part["error"].isna().all() and (part["speech"] < part["windows"]).any()


def test_a_hop_off_the_frame_grid_is_refused_before_any_work(tmp_path: Path) -> None:
    model = make_tiny_model(tmp_path / "m", features="whisper_base")
    sf.write(tmp_path / "a.wav", talk(4.0), SR)
    with pytest.raises(ConfigError, match="--hop 1.25 s"):
        S.score([tmp_path / "a.wav"], tmp_path / "r.parquet", model=model, settings=S.ScoreSettings(hop_s=1.25), progress=False)
    assert json.loads((model / "config.json").read_text())["features"]["version"] == features.FEATURE_SETS["whisper_base"].version


def test_layout_speakers_of_a_folder_per_label_corpus_are_the_recordings(tmp_path: Path) -> None:
    """A folder-per-label layout names no speaker: each recording is its own, never one speaker for the folder."""
    files = [str(tmp_path / "angry" / "a.wav"), str(tmp_path / "angry" / "b.wav"), "/x/Actor_01/03-01-05-01-01-01-01.wav"]
    spk = dict(zip(files, SP.speaker_of(files, "layout")))
    assert spk[files[0]] != spk[files[1]] and spk[files[0]] == f"recording:{files[0]}"
    assert spk[files[2]] == "ravdess:1"


def test_speaker_statistics_leave_out_the_padding() -> None:
    """A speaker's statistics count the frames of speech blocks inside the recording, never the zero padding of its
    last block (4.2 s of speech: 42 frames, though its blocks hold 60)."""
    y = talk(4.2, seed=3)
    pf = pieces.piece_frames(WS, signal_reader(y, SR), pieces.plan_pieces("", 4.2, 3.0, 0.5, 600.0)[0], 0.5, windows.SILENCE_DB)
    assert pf.moments[0, 0] == 42
    np.testing.assert_allclose(pf.moments[1, 0] / 42, pf.frames[:42, 0].mean(), rtol=1e-5)
