"""``frames = "inside"``: the linear model's means over a window's frames leave out those past the recording's end
(a 1 s word in a 3 s window is two thirds padding), the same frames in training (from a row's ``pad_s``) and in
``score`` (from the piece's end)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from conftest import emotion_signal
from ser_batch import modeldir, models, pieces, windows
from ser_batch.errors import ConfigError, ModelDirError
from ser_batch.extract import FileTask, WindowSettings, extract_file
from ser_batch.features import FeatureSettings
from ser_batch.inference import classify, file_reader
from ser_batch.labels import EMOTIONS
from ser_batch.train import TrainSettings

WS = FeatureSettings.preset("whisper_base")
SR = 16_000


def test_frames_inside_counts_the_frames_that_start_before_the_end() -> None:
    pad = np.array([0.0, 2.0, 2.05, 2.95, 3.0], np.float32)  # float32, as the shards keep it
    assert windows.frames_inside(3.0, pad, 0.1).tolist() == [30, 10, 10, 1, 1]  # 2.05: frame 9 starts at 0.9 < 0.95
    x = np.ones((2, 4, 3), np.float32)
    windows.past_end(x, np.array([4, 1]))
    assert np.isfinite(x[0]).all() and np.isfinite(x[1, 0]).all() and np.isnan(x[1, 1:]).all()


def test_the_masked_linear_model_reads_only_the_frames_inside() -> None:
    """A window whose last 20 of 30 frames are past the end scores as its 10 frames repeated three times (the same
    means); the plain linear model reads the padding."""
    rng = np.random.default_rng(0)
    x = rng.standard_normal((1, 30, 8)).astype(np.float32)
    tiled = np.tile(x[:, :10], (1, 3, 1))
    padded = windows.past_end(x.copy(), np.array([10]))
    scaler = modeldir.Scaler(np.zeros((30, 8), np.float32), np.ones((30, 8), np.float32))
    assert (scaler.transform(padded)[0, 10:] == 0).all()  # NaN frames leave the scaler as exactly 0
    masked = models.build("linear", 30, 8, 3, seed=1, frames="inside")
    plain = models.build("linear", 30, 8, 3, seed=1)
    np.testing.assert_allclose(masked(scaler.transform(padded)), masked(tiled), rtol=1e-5, atol=1e-6)
    assert not np.allclose(plain(scaler.transform(padded)), plain(tiled), atol=1e-4)
    np.testing.assert_allclose(masked(x), plain(x), rtol=1e-5, atol=1e-6)  # no padding: the same model


def test_frames_inside_is_refused_where_it_means_nothing() -> None:
    with pytest.raises(ConfigError, match="frames must be one of"):
        TrainSettings(model="linear", frames="speech")
    with pytest.raises(ConfigError, match="needs model 'linear'"):
        TrainSettings(model="pool", frames="inside")
    with pytest.raises(ConfigError, match="needs the linear model"):
        models.build("pool", 30, 8, 3, frames="inside")


def _linear_inside(path: Path) -> modeldir.ModelDir:
    import keras

    keras.utils.set_random_seed(0)
    model = models.build("linear", WS.n_frames, WS.n_coeffs, len(EMOTIONS), frames="inside")
    config = {"name": "inside", "classes": list(EMOTIONS), "features": WS.to_dict(), "model": {"model": "linear", "frames": "inside"},
              "protocol": "holdout", "split": {"train_speakers": [], "val_speakers": [], "test_speakers": []}}  # fmt: skip
    scaler = modeldir.Scaler(np.zeros(WS.shape, np.float32), np.ones(WS.shape, np.float32))
    return modeldir.load(modeldir.save(path, model, config, scaler))


@pytest.mark.parametrize("seconds", [1.3, 4.2, 4.45])
def test_training_and_scoring_leave_out_the_same_frames(tmp_path: Path, seconds: float) -> None:
    """extract's rows, masked by their ``pad_s``, and score's windows, masked by the piece's end, hold the same
    frames and get the same probabilities from a model that reads the frames inside."""
    y = emotion_signal("05", 2, SR, seconds, seed=3).astype(np.float32)
    path = tmp_path / "clip.wav"
    sf.write(path, y, SR)
    task = FileTask(str(path), "rid", "generic", "generic:a", "angry", "{}")
    rows, x, _info, _mom = extract_file(task, WS, None, WindowSettings(hop_s=0.5))
    pad = np.array([r["pad_s"] for r in rows], np.float32)
    assert pad[-1] > 0  # the last window runs past the end
    train_side = windows.past_end(x.copy(), windows.frames_inside(WS.duration_s, pad, WS.frame_s))
    pf = pieces.piece_frames(WS, file_reader(str(path), SR), pieces.plan_pieces(str(path), seconds, 3.0, 0.5, 600.0)[0], 0.5, windows.SILENCE_DB)
    score_side = windows.past_end(windows.cut(pf.frames, pf.first, WS.n_frames), pf.end - pf.first)
    np.testing.assert_array_equal(np.isnan(train_side), np.isnan(score_side))
    assert np.isnan(train_side[-1, :, 0]).sum() == round(pad[-1] / WS.frame_s)
    md = _linear_inside(tmp_path / "m")  # evaluate and the benchmarks read shard rows through the model dir
    np.testing.assert_array_equal(np.isnan(md.leave_out_padding(x.copy(), pad)), np.isnan(train_side))
    np.testing.assert_allclose(np.nan_to_num(train_side), np.nan_to_num(score_side), atol=2e-3)
    md = _linear_inside(tmp_path / "m")
    assert md.frames == "inside"
    scored = classify(md, pf, None, 64)[pf.speech]
    np.testing.assert_allclose(scored, md.predict_proba(train_side), atol=1e-3)
    plain = md.predict_proba(np.where(np.isnan(train_side), x, train_side))
    if pad[-1] >= WS.frame_s:  # a frame or more past the end (4.45 s: the last frame starts at 4.4 s, inside)
        log = np.log(np.maximum(np.stack([scored[-1], plain[-1]]), 1e-30))  # an untrained model is sure: compare logs
        assert np.abs(log[0] - log[1]).max() > 1e-3  # the padding would have moved it


def test_a_model_dir_with_an_unknown_frames_setting_is_refused(tmp_path: Path) -> None:
    import json

    md = _linear_inside(tmp_path / "m")
    cfg = json.loads((md.path / "config.json").read_text())
    cfg["model"]["frames"] = "some"
    (md.path / "config.json").write_text(json.dumps(cfg))
    with pytest.raises(ModelDirError, match="frames must be"):
        modeldir.load(md.path)


def test_the_pieces_kept_between_score_passes_keep_their_end(tmp_path: Path) -> None:
    """A job-normalised model scores the pieces its statistics pass kept: they come back with every field, the
    recording's end too, so the frames past it stay out in the scoring pass."""
    from ser_batch.score import _load_frames, _save_frames

    y = emotion_signal("05", 2, SR, 1.3, seed=3).astype(np.float32)
    path = tmp_path / "clip.wav"
    sf.write(path, y, SR)
    pf = pieces.piece_frames(WS, file_reader(str(path), SR), pieces.plan_pieces(str(path), 1.3, 3.0, 0.5, 600.0)[0], 0.5, windows.SILENCE_DB)
    assert pf.end < len(pf.frames)  # 1.3 s: most of the window is past the end
    _save_frames(tmp_path / "kept.npz", [None, pf])
    none, back = _load_frames(tmp_path / "kept.npz", 2)
    assert none is None and back is not None and int(back.end) == pf.end
    md = _linear_inside(tmp_path / "m")
    np.testing.assert_array_equal(classify(md, back, None, 64), classify(md, pf, None, 64))
