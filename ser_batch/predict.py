"""``predict``: the emotion of one signal or one file, in this process (the origin's ``Emotion Detected: X``).

The same windows, silence gate, model and verdict as a score job (``inference``, ``verdict``), without Dask; a
speaker-normalised model takes the recording as its own speaker, its statistics shrunk toward the training
groups' (the model's ``norm_prior``). A normalised model without that prior (``norm_prior_s`` 0, or trained before
it) is refused when it is corpus-normalised: one recording's own statistics leave it at chance.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Any

import numpy as np

from ser_batch import audio, features
from ser_batch.errors import AudioError, ConfigError
from ser_batch.inference import ScoreSettings, check_length, classify, file_reader, last_start, load_model, score_stream, signal_reader, speech_moments
from ser_batch.labels import EMOTIONS
from ser_batch.modeldir import default_model
from ser_batch.pieces import Reader, piece_frames, plan_pieces
from ser_batch.verdict import Partial, verdict


@dataclass(frozen=True)
class Prediction:
    """What ``predict`` says about one signal."""

    emotion: str | None
    confidence: float
    probabilities: dict[str, float]
    windows: int
    speech_windows: int


def predict(signal: np.ndarray, sr: int, model: str | os.PathLike[str] | None = None, settings: ScoreSettings = ScoreSettings(), device: str = "auto") -> Prediction:
    """Emotion of a NumPy signal (mono or (samples, channels)) at rate ``sr``, with the default model if none given."""
    md = _one_recording_model(model)
    fs = md.features
    y = audio.resample(audio.to_mono(np.asarray(signal, np.float32)), sr, fs.sample_rate)
    audio.check_signal(y, "signal", fs.frame_length)
    if fs.grid:
        return _predict_grid(md, signal_reader(y, fs.sample_rate), y.size / fs.sample_rate, settings, device)
    return _predict_windows(md, lambda: [y], y.size / fs.sample_rate, settings)


def predict_file(path: str | os.PathLike[str], model: str | os.PathLike[str] | None = None, settings: ScoreSettings = ScoreSettings(), device: str = "auto") -> Prediction:
    """Emotion of one audio file, streamed from disk."""
    md = _one_recording_model(model)
    fs = md.features
    duration = audio.probe(path).duration_s
    check_length(duration, str(path), settings)
    if fs.grid:
        return _predict_grid(md, file_reader(os.fspath(path), fs.sample_rate), duration, settings, device)
    return _predict_windows(md, lambda: audio.stream(path, fs.sample_rate), duration, settings)


def _one_recording_model(model: str | os.PathLike[str] | None) -> Any:
    """The model, loaded; a ``ConfigError`` for one that cannot judge a recording on its own."""
    path = str(model or default_model())
    md = load_model(path)
    if md.speaker_norm and md.norm_by == "corpus" and md.scaler.prior is None:
        raise ConfigError(
            f"{path}: this model z-scores features with the statistics of the whole job it scores (norm_by corpus) "
            "and has no prior to shrink one recording's toward (norm_prior_s 0); alone, a recording is at chance "
            "(benchmarks/skew.py): score a folder of recordings with `ser-batch score`, or retrain with norm_prior_s"
        )
    return md


def _predict_windows(md: Any, blocks: Any, duration_s: float, settings: ScoreSettings) -> Prediction:
    """A per-window model on one recording; ``blocks()`` streams it again for each pass."""
    last = last_start(duration_s, md.features.duration_s, settings.hop_s)
    norm = features.mean_std(speech_moments(md, blocks(), settings, last_start_s=last), md.scaler.prior) if md.speaker_norm else None
    part = Partial()
    for _starts, proba, sil in score_stream(md, blocks(), settings, last_start_s=last, norm=norm):
        part.add(proba, sil)
    return _prediction(part, md.classes)


def _predict_grid(md: Any, read: Reader, duration_s: float, settings: ScoreSettings, device: str) -> Prediction:
    """A frame-grid model on one recording, piece by piece (memory flat with length); a speaker-normalised model
    keeps its pieces' frames between the statistics and the scoring."""
    pcs = plan_pieces("", duration_s, md.features.duration_s, settings.hop_s, settings.chunk_s)
    frames = [piece_frames(md.features, read, pc, settings.hop_s, settings.silence_db, device) for pc in pcs] if md.speaker_norm else None
    norm = features.mean_std(sum(pf.moments for pf in frames), md.scaler.prior) if frames else None  # type: ignore[union-attr]
    part = Partial()
    for i, pc in enumerate(pcs):
        pf = frames[i] if frames else piece_frames(md.features, read, pc, settings.hop_s, settings.silence_db, device)
        part.add(classify(md, pf, norm, settings.batch_windows), ~pf.speech)
    return _prediction(part, md.classes)


def _prediction(part: Partial, classes: list[str]) -> Prediction:
    if part.windows == 0:
        raise AudioError("no window could be scored")
    v = verdict(part.windows, part.speech, part.prob_sum, part.top_count, classes)  # type: ignore[arg-type]
    if not part.speech:
        raise AudioError("is silent: every window is below the silence threshold")
    return Prediction(v["emotion"], v["confidence"], {e: v[f"p_{e}"] for e in EMOTIONS}, v["windows"], v["speech_windows"])
