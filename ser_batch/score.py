"""The score job and ``predict``: recordings of any length -> windows -> probabilities -> a report.

Each recording is cut into windows of the model's length (2.5 s) every ``hop_s`` seconds, streamed from disk in
blocks (never the whole file in memory). A window whose loud frames stay below ``silence_db`` (frame RMS, 95th
percentile, dBFS: an energy detector, no VAD model) is marked silent and left out of the verdict.
Per recording: the dominant emotion is the argmax of the mean probability over speech windows; its confidence is
that mean; ``share_<emotion>`` is the share of speech windows whose top emotion it is.

On Dask, recordings are grouped into tasks of about ``task_s`` audio seconds and long recordings are split into
chunks across tasks. Each task writes one part file (atomically) of per-chunk partial sums, which merge exactly;
a rerun with the same ``--out`` skips finished parts, so a crash costs only the tasks in flight.
"""

from __future__ import annotations

import hashlib
import json
import math
import os
import shutil
import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from contextlib import ExitStack
from dataclasses import asdict, dataclass, replace
from functools import lru_cache
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from ser_batch import audio, features, windows
from ser_batch.cluster import RETRIES, dask_client, default_workers, follow
from ser_batch.pieces import Piece, PieceFrames, Reader, piece_frames
from ser_batch.pieces import plan_pieces as _plan
from ser_batch.errors import AudioError, ConfigError, SerBatchError
from ser_batch.labels import EMOTIONS
from ser_batch.shards import remove_temporaries, text, write_table_atomic

DEFAULT_MODEL_NAME = "ser-default"


def default_model() -> Path:
    """The shipped model: $SER_BATCH_MODEL, else models/ser-default of this checkout."""
    env = os.environ.get("SER_BATCH_MODEL")
    if env:
        return Path(env)
    return Path(__file__).resolve().parents[1] / "models" / DEFAULT_MODEL_NAME


@dataclass(frozen=True)
class ScoreSettings:
    """How recordings are windowed and judged."""

    hop_s: float = windows.SCORE_HOP_S
    silence_db: float = windows.SILENCE_DB
    chunk_s: float = 600.0  # a longer recording is split into chunks of this length, scored by separate tasks
    task_s: float = 900.0  # audio seconds per task
    max_duration_s: float = 48 * 3600.0  # longer files are refused as oversized
    batch_windows: int = 256

    def __post_init__(self) -> None:
        if self.hop_s <= 0 or self.chunk_s <= 0 or self.task_s <= 0:
            raise ConfigError("hop, chunk and task lengths must be > 0 seconds")

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


# ---------------------------------------------------------------- windowing


window_starts = windows.starts


def iter_windows(blocks: Iterable[np.ndarray], sr: int, window_s: float, hop_s: float, first_start_s: float = 0.0, last_start_s: float = math.inf) -> Iterator[tuple[float, np.ndarray]]:
    """(start_s, window) from a stream of blocks that begins at ``first_start_s``; windows start every ``hop_s``
    up to ``last_start_s``, and the last ones are zero-padded when the stream ends."""
    win, buf, buf_start = int(round(window_s * sr)), np.zeros(0, np.float32), first_start_s
    k = 0
    start = first_start_s
    for block in blocks:
        buf = np.concatenate([buf, block])
        while start <= last_start_s + 1e-9:
            lo = int(round((start - buf_start) * sr))
            if lo + win > buf.size:
                break
            yield start, buf[lo : lo + win]
            k += 1
            start = first_start_s + k * hop_s
        drop = max(0, min(int(round((start - buf_start) * sr)), buf.size))
        buf, buf_start = buf[drop:], buf_start + drop / sr
    while start <= last_start_s + 1e-9:
        lo = int(round((start - buf_start) * sr))
        if lo >= buf.size:
            break
        w = buf[lo : lo + win]
        yield start, np.pad(w, (0, win - w.size))
        k += 1
        start = first_start_s + k * hop_s


def silent(feats: np.ndarray, coefficients: Sequence[str], silence_db: float) -> np.ndarray:
    """Per window: is the 95th percentile of frame RMS below ``silence_db`` dBFS? (feats: windows, frames, coeffs)

    Reads the ``rms`` coefficient (seed features) or ``energy_db``, the frame RMS in dB (logmel features)."""
    coeffs = list(coefficients)
    if "rms" not in coeffs and "energy_db" in coeffs:
        return np.percentile(feats[:, :, coeffs.index("energy_db")], 95, axis=1) < silence_db
    rms = feats[:, :, coeffs.index("rms")]
    loud = np.percentile(rms, 95, axis=1)
    return 20 * np.log10(np.maximum(loud, 1e-10)) < silence_db


# ---------------------------------------------------------------- aggregation


@dataclass
class Partial:
    """Sums over the windows of one chunk: merging chunks is adding these."""

    windows: int = 0
    speech: int = 0
    prob_sum: np.ndarray | None = None  # over speech windows, per class
    top_count: np.ndarray | None = None  # speech windows whose argmax is each class

    def add(self, proba: np.ndarray, is_silent: np.ndarray) -> None:
        n_classes = proba.shape[1]
        if self.prob_sum is None:
            self.prob_sum, self.top_count = np.zeros(n_classes), np.zeros(n_classes, np.int64)
        sp = proba[~is_silent]
        self.windows += len(proba)
        self.speech += len(sp)
        self.prob_sum += sp.sum(axis=0)
        self.top_count += np.bincount(sp.argmax(axis=1), minlength=n_classes) if len(sp) else 0  # type: ignore[operator]


def verdict(windows: int, speech: int, prob_sum: np.ndarray, top_count: np.ndarray, classes: Sequence[str]) -> dict[str, Any]:
    """Recording-level figures from merged sums, with probabilities and shares spread over all 8 emotions."""
    row: dict[str, Any] = {"windows": int(windows), "speech_windows": int(speech)}
    mean = prob_sum / speech if speech else np.full(len(classes), np.nan)
    share = top_count / speech if speech else np.full(len(classes), np.nan)
    for e in EMOTIONS:
        i = classes.index(e) if e in classes else None
        row[f"p_{e}"] = float(mean[i]) if i is not None else (0.0 if speech else math.nan)
        row[f"share_{e}"] = float(share[i]) if i is not None else (0.0 if speech else math.nan)
    if speech:
        best = int(np.argmax(mean))
        row["emotion"], row["confidence"] = classes[best], float(mean[best])
    else:
        row["emotion"], row["confidence"] = None, math.nan
    return row


# ---------------------------------------------------------------- scoring a signal


def _load_model(path: str):  # type: ignore[no-untyped-def]
    """One loaded model per worker process; a model directory rewritten in place is loaded again."""
    try:
        stamp = os.stat(Path(path) / "model.keras").st_mtime_ns
    except OSError:
        stamp = 0
    return _load_model_at(path, stamp)


@lru_cache(maxsize=2)
def _load_model_at(path: str, _stamp: int):  # type: ignore[no-untyped-def]
    from ser_batch import modeldir

    return modeldir.load(path)


Norm = tuple[np.ndarray, np.ndarray]
"""A speaker's mean and standard deviation per feature coefficient, for models trained with speaker_norm."""


def window_features(md: Any, blocks: Iterable[np.ndarray], settings: ScoreSettings, first_start_s: float = 0.0, last_start_s: float = math.inf) -> Iterator[tuple[np.ndarray, np.ndarray, np.ndarray]]:
    """(starts, features, silent) per batch of windows of the model's length from a stream of blocks."""
    fs = md.features
    starts: list[float] = []
    wins: list[np.ndarray] = []

    def batch() -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        feats = features.compute(np.stack(wins), fs.sample_rate, fs)
        return np.array(starts), feats, silent(feats, fs.coefficients, settings.silence_db)

    for start, w in iter_windows(blocks, fs.sample_rate, fs.duration_s, settings.hop_s, first_start_s, last_start_s):
        if not np.isfinite(w).all():
            raise AudioError("contains NaN or Inf samples; re-export it as PCM")
        starts.append(start)
        wins.append(w)
        if len(wins) == settings.batch_windows:
            yield batch()
            starts, wins = [], []
    if wins:
        yield batch()


def score_stream(md: Any, blocks: Iterable[np.ndarray], settings: ScoreSettings, first_start_s: float = 0.0, last_start_s: float = math.inf, norm: Norm | None = None) -> Iterator[tuple[np.ndarray, np.ndarray, np.ndarray]]:
    """(starts, proba, silent) per batch of windows; features standardised with the speaker's ``norm`` if given."""
    for starts, feats, sil in window_features(md, blocks, settings, first_start_s, last_start_s):
        if norm is not None:
            feats = (feats - norm[0]) / norm[1]
        elif md.speaker_norm:
            raise ConfigError(f"model {md.path} was trained on speaker-normalised features and needs its speaker's statistics")
        yield starts, md.predict_proba(feats), sil


def speech_moments(md: Any, blocks: Iterable[np.ndarray], settings: ScoreSettings, last_start_s: float = math.inf) -> np.ndarray:
    """Moments (``features.moments``) of the frames of a recording's speech windows up to ``last_start_s`` (the
    windows scoring uses, never extra padded tail ones): its part of its speaker's norm (feature sets read per
    window; frame-grid ones use ``pieces.piece_frames``)."""
    total = np.zeros((3, md.features.n_coeffs))
    for _starts, feats, sil in window_features(md, blocks, settings, last_start_s=last_start_s):
        if (~sil).any():
            total += features.moments(feats[~sil])
    return total


@dataclass(frozen=True)
class Prediction:
    """What ``predict`` says about one signal."""

    emotion: str | None
    confidence: float
    probabilities: dict[str, float]
    windows: int
    speech_windows: int


def predict(signal: np.ndarray, sr: int, model: str | os.PathLike[str] | None = None, settings: ScoreSettings = ScoreSettings(), device: str = "cpu") -> Prediction:
    """Emotion of a NumPy signal (mono or (samples, channels)) at rate ``sr``, with the default model if none given."""
    md = _load_model(str(model or default_model()))
    y = audio.resample(audio.to_mono(np.asarray(signal, np.float32)), sr, md.features.sample_rate)
    audio.check_signal(y, "signal", md.features.frame_length)
    if md.features.grid:
        return _predict_grid(md, signal_reader(y, md.features.sample_rate), y.size / md.features.sample_rate, settings, device)
    part = Partial()
    last = _last_start(y.size / md.features.sample_rate, md.features.duration_s, settings)
    norm = features.mean_std(speech_moments(md, [y], settings, last)) if md.speaker_norm else None
    for _starts, proba, sil in score_stream(md, [y], settings, last_start_s=last, norm=norm):
        part.add(proba, sil)
    return _prediction(part, md.classes)


def predict_file(path: str | os.PathLike[str], model: str | os.PathLike[str] | None = None, settings: ScoreSettings = ScoreSettings(), device: str = "cpu") -> Prediction:
    """Emotion of one audio file, streamed from disk."""
    md = _load_model(str(model or default_model()))
    info = audio.probe(path)
    _check_length(info, str(path), settings)
    if md.features.grid:
        return _predict_grid(md, file_reader(os.fspath(path), md.features.sample_rate), info.duration_s, settings, device)
    part = Partial()
    last = _last_start(info.duration_s, md.features.duration_s, settings)
    norm = features.mean_std(speech_moments(md, audio.stream(path, md.features.sample_rate), settings, last)) if md.speaker_norm else None
    for _starts, proba, sil in score_stream(md, audio.stream(path, md.features.sample_rate), settings, last_start_s=last, norm=norm):
        part.add(proba, sil)
    return _prediction(part, md.classes)


def _predict_grid(md: Any, read: Reader, duration_s: float, settings: ScoreSettings, device: str) -> Prediction:
    """A frame-grid model on one recording, piece by piece (memory flat with length); a speaker-normalised model
    takes the recording as its own speaker, from its pieces' moments, and keeps its frames between the two steps."""
    pcs = plan_pieces("", duration_s, md.features.duration_s, settings)
    frames = [piece_frames(md.features, read, pc, settings.hop_s, settings.silence_db, device) for pc in pcs] if md.speaker_norm else None
    norm = features.mean_std(sum(pf.moments for pf in frames)) if frames else None  # type: ignore[union-attr]
    part = Partial()
    for i, pc in enumerate(pcs):
        pf = frames[i] if frames else piece_frames(md.features, read, pc, settings.hop_s, settings.silence_db, device)
        part.add(classify(md, pf, norm, settings.batch_windows), ~pf.speech)
    return _prediction(part, md.classes)


def _last_start(duration_s: float, window_s: float, settings: ScoreSettings) -> float:
    """The last window start of ``window_starts``: the same windows as the score job, no extra padded tail ones."""
    starts = window_starts(duration_s, window_s, settings.hop_s)
    return float(starts[-1]) if len(starts) else 0.0


def _prediction(part: Partial, classes: list[str]) -> Prediction:
    if part.windows == 0:
        raise AudioError("no window could be scored")
    v = verdict(part.windows, part.speech, part.prob_sum, part.top_count, classes)  # type: ignore[arg-type]
    if not part.speech:
        raise AudioError("is silent: every window is below the silence threshold")
    return Prediction(v["emotion"], v["confidence"], {e: v[f"p_{e}"] for e in EMOTIONS}, v["windows"], v["speech_windows"])


def _check_length(info: audio.AudioInfo, path: str, settings: ScoreSettings) -> None:
    if info.duration_s > settings.max_duration_s:
        raise AudioError(f"{path} is oversized: {info.duration_s / 3600:.1f} h > {settings.max_duration_s / 3600:.1f} h limit (--max-hours)")


# ---------------------------------------------------------------- the Dask job


PART_SCHEMA = pa.schema(
    [
        ("path", pa.string()), ("chunk", pa.int32()), ("duration_s", pa.float64()), ("error", pa.string()),
        ("windows", pa.int64()), ("speech", pa.int64()), ("prob_sum", pa.list_(pa.float64())), ("top_count", pa.list_(pa.int64())),
    ]
)  # fmt: skip


def plan_pieces(path: str, duration_s: float, window_s: float, settings: ScoreSettings) -> list[Piece]:
    """Split a recording's window starts into pieces of about ``chunk_s`` seconds (``pieces.plan_pieces``)."""
    return _plan(path, duration_s, window_s, settings.hop_s, settings.chunk_s)


def file_reader(path: str, sr: int) -> Reader:
    """Read [start_s, stop_s) of an audio file at ``sr``, streamed in blocks; AudioError on NaN/Inf samples."""

    def read(start_s: float, stop_s: float) -> np.ndarray:
        parts = list(audio.stream(path, sr, block_s=60.0, start_s=start_s, stop_s=stop_s))
        return _finite(np.concatenate(parts) if parts else np.zeros(0, np.float32))

    return read


def signal_reader(y: np.ndarray, sr: int) -> Reader:
    """Read [start_s, stop_s) of a signal already in memory."""
    return lambda start_s, stop_s: _finite(y[int(round(start_s * sr)) : int(round(stop_s * sr))])


def _finite(y: np.ndarray) -> np.ndarray:
    if not np.isfinite(y).all():
        raise AudioError("contains NaN or Inf samples; re-export it as PCM")
    return y


def classify(md: Any, pf: PieceFrames, norm: Norm | None, batch: int) -> np.ndarray:
    """Probabilities (windows, classes) of a piece's speech windows, NaN for its silent ones; the features are
    standardised with the speaker's ``norm`` for a speaker-normalised model."""
    if norm is None and md.speaker_norm:
        raise ConfigError(f"model {md.path} was trained on speaker-normalised features and needs its speaker's statistics")
    proba = np.full((len(pf.starts), len(md.classes)), np.nan, np.float32)
    rows = np.flatnonzero(pf.speech)
    for i in range(0, len(rows), batch):
        x = windows.cut(pf.frames, pf.first[i : i + batch], md.features.n_frames)
        if norm is not None:
            x = (x - norm[0]) / norm[1]
        proba[rows[i : i + batch]] = md.predict_proba(x)
    return proba


FRAMES_DIR = "frames"
"""Where the first pass for a speaker-normalised model keeps each task's frames (``.npz``, no pickle) and moments."""


def _save_frames(path: Path, frames: list[PieceFrames | None]) -> None:
    arrays: dict[str, np.ndarray] = {}
    for i, pf in enumerate(frames):
        if pf is not None:
            arrays.update({f"{k}_{i}": getattr(pf, k) for k in ("starts", "speech", "first", "frames", "moments")})
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.parent / f".tmp-{path.stem}-{os.getpid()}.npz"
    np.savez(tmp, **arrays)
    os.replace(tmp, path)


def _load_frames(path: Path, n: int) -> list[PieceFrames | None]:
    with np.load(path, allow_pickle=False) as z:
        return [PieceFrames(*(z[f"{k}_{i}"] for k in ("starts", "speech", "first", "frames", "moments"))) if f"starts_{i}" in z else None for i in range(n)]


STATS_SCHEMA = pa.schema([("path", pa.string()), ("chunk", pa.int32()), ("error", pa.string()), ("moments", pa.list_(pa.float64()))])


def frames_task(pieces: list[Piece], model: str, settings: ScoreSettings, parts_dir: str, name: str, device: str = "cpu") -> dict[str, float]:
    """First of the two tasks of a speaker-normalised model's piece group: encode once, keep the frames for the
    second task and write each piece's part of its speaker's statistics."""
    md = _load_model(model)
    kept: list[PieceFrames | None] = []
    rows = []
    for pc in pieces:
        pf, error = None, None
        try:
            pf = piece_frames(md.features, file_reader(pc.path, md.features.sample_rate), pc, settings.hop_s, settings.silence_db, device)
        except SerBatchError as exc:
            error = str(exc) if pc.path in str(exc) else f"{pc.path} {exc}"
        except Exception as exc:  # noqa: BLE001 - one odd file costs its row, never the task
            error = f"{pc.path}: {type(exc).__name__}: {exc}"
        kept.append(pf)
        rows.append({"path": text(pc.path), "chunk": pc.chunk, "error": text(error), "moments": None if pf is None else pf.moments.reshape(-1).tolist()})
    root = Path(parts_dir) / FRAMES_DIR
    _save_frames(root / f"{Path(name).stem}.npz", kept)
    write_table_atomic(pa.Table.from_pylist(rows, schema=STATS_SCHEMA), root / name)
    return {"seconds": _audio_s(pieces)}


def _audio_s(pieces: Sequence[Piece]) -> float:
    """Seconds of audio a group of pieces covers (each second of a recording in exactly one piece)."""
    return sum(max(0.0, min(p.next_start_s, p.duration_s) - p.first_start_s) for p in pieces)


def score_task(pieces: list[Piece], model: str, settings: ScoreSettings, parts_dir: str, name: str, segments: bool, norms: dict[str, Norm] | None = None, device: str = "cpu") -> dict[str, float]:
    """The Dask task: score its pieces, write one part (and its segments) atomically.

    A frame-grid model (``whisper_base``) encodes each piece once (``piece_frames``); a speaker-normalised one reads
    the frames its ``frames_task`` kept instead, and deletes them once its part is written.
    """
    md = _load_model(model)
    fs = md.features
    kept_path = Path(parts_dir) / FRAMES_DIR / f"{Path(name).stem}.npz"
    kept = _load_frames(kept_path, len(pieces)) if fs.grid and norms is not None else None
    stats_errors = _stats_errors(Path(parts_dir) / FRAMES_DIR / name) if kept is not None else {}
    rows, seg_rows = [], []
    for i, pc in enumerate(pieces):
        part = Partial()
        error = None
        try:
            norm = norms.get(pc.path) if norms is not None else None
            for starts, proba, sil in _score_piece(md, pc, settings, norm, device, kept[i] if kept is not None else None, stats_errors.get((text(pc.path), pc.chunk))):
                part.add(proba, sil)
                if segments:
                    seg_rows.append(_segment_table(text(pc.path), starts, np.minimum(starts + fs.duration_s, pc.duration_s), proba, sil, md.classes))
        except SerBatchError as exc:
            error = str(exc) if pc.path in str(exc) else f"{pc.path} {exc}"
        except Exception as exc:  # one odd file costs its row, never the task
            error = f"{pc.path}: {type(exc).__name__}: {exc}"
        n = len(md.classes)
        rows.append({
            "path": text(pc.path), "chunk": pc.chunk, "duration_s": pc.duration_s, "error": text(error), "windows": part.windows,
            "speech": part.speech,
            "prob_sum": (part.prob_sum if part.prob_sum is not None else np.zeros(n)).tolist(),
            "top_count": (part.top_count if part.top_count is not None else np.zeros(n, np.int64)).tolist(),
        })  # fmt: skip
    root = Path(parts_dir)
    if segments:
        seg = pa.concat_tables(seg_rows) if seg_rows else _segment_table("", np.zeros(0), np.zeros(0), np.zeros((0, len(md.classes))), np.zeros(0, bool), md.classes)
        write_table_atomic(seg, root / "segments" / name)
    write_table_atomic(pa.Table.from_pylist(rows, schema=PART_SCHEMA), root / name)
    if kept is not None:
        kept_path.unlink(missing_ok=True)
    return {"seconds": _audio_s(pieces)}


def _stats_errors(path: Path) -> dict[tuple[str | None, int], str]:
    """Errors the first pass met, by (path, chunk): the second pass reports them."""
    t = pq.read_table(path, columns=["path", "chunk", "error"]).to_pydict()
    return {(p, c): e for p, c, e in zip(t["path"], t["chunk"], t["error"]) if e}


def _score_piece(md: Any, pc: Piece, settings: ScoreSettings, norm: Norm | None, device: str, kept: PieceFrames | None, error: str | None) -> Iterator[tuple[np.ndarray, np.ndarray, np.ndarray]]:
    """(starts, proba, silent) of a piece's windows, in batches."""
    fs = md.features
    if error:
        raise SerBatchError(error)
    if fs.grid:
        pf = kept if kept is not None else piece_frames(fs, file_reader(pc.path, fs.sample_rate), pc, settings.hop_s, settings.silence_db, device)
        yield pf.starts, classify(md, pf, norm, settings.batch_windows), ~pf.speech
        return
    blocks = audio.stream(pc.path, fs.sample_rate, block_s=60.0, start_s=pc.first_start_s, stop_s=pc.last_start_s + fs.duration_s)
    yield from score_stream(md, blocks, settings, pc.first_start_s, pc.last_start_s, norm)


def _segment_table(path: str, starts: np.ndarray, ends: np.ndarray, proba: np.ndarray, sil: np.ndarray, classes: list[str]) -> pa.Table:
    cols: dict[str, Any] = {
        "path": pa.array([path] * len(starts), pa.string()),
        "start_s": pa.array(starts, pa.float64()),
        "end_s": pa.array(ends, pa.float64()),
        "is_speech": pa.array(~sil, pa.bool_()),
        "emotion": pa.array([None if q else classes[i] for i, q in zip(np.nan_to_num(proba, nan=-1.0).argmax(axis=1), sil)] if len(proba) else [], pa.string()),
    }
    for e in EMOTIONS:
        cols[f"p_{e}"] = pa.array(proba[:, classes.index(e)] if e in classes else np.zeros(len(starts)), pa.float32())
    return pa.table(cols)


def moments_task(paths: list[str], model: str, settings: ScoreSettings) -> dict[str, np.ndarray]:
    """The Dask task of the first pass for speaker-normalised models: each recording's speech moments.

    A recording that cannot be read is left out here; the scoring pass reports it.
    """
    md = _load_model(model)
    out = {}
    for p in paths:
        try:
            last = _last_start(audio.probe(p).duration_s, md.features.duration_s, settings)
            out[p] = speech_moments(md, audio.stream(p, md.features.sample_rate), settings, last)
        except Exception:  # noqa: BLE001 - the scoring pass turns the same failure into the file's error row
            continue
    return out


def speakers_of(files: Sequence[str], speakers: str) -> dict[str, str]:
    """Speaker of each file, for speaker normalisation.

    ``speakers``: "recording" (each recording is its own speaker), "layout" (the speaker a known corpus layout
    names, e.g. RAVDESS's actor; the recording itself where none does), or a CSV file with columns
    ``path,speaker`` (paths relative to the CSV's folder or absolute; unlisted files are their own speaker).
    """
    from ser_batch import corpora
    from ser_batch.corpora.generic import UNKNOWN_SPEAKER
    from ser_batch.errors import CorpusError

    own = {f: f"recording:{f}" for f in files}
    if speakers == "recording":
        return own
    if speakers == "layout":
        for f in files:
            try:
                spk = corpora.parse(Path(f)).speaker
            except CorpusError:
                continue
            if spk and spk != UNKNOWN_SPEAKER:  # a folder-per-label layout names no speaker: each recording is its own
                own[f] = spk
        return own
    table = Path(speakers)
    try:
        df = pd.read_csv(table, dtype=str, keep_default_na=False)
    except (OSError, ValueError) as exc:
        raise ConfigError(f"--speakers {speakers}: not 'layout', 'recording' or a readable CSV path,speaker ({exc})") from exc
    if not {"path", "speaker"} <= set(df.columns):
        raise ConfigError(f"--speakers {table}: needs the columns path,speaker; it has {', '.join(df.columns)}")
    for p, spk in zip(df["path"], df["speaker"]):
        f = os.path.abspath(os.path.join(table.parent, p))
        if f in own and spk:
            own[f] = f"{table.name}:{spk}"
    return own


def speaker_norms(client: Any, files: Sequence[str], speaker: dict[str, str], model: str, settings: ScoreSettings, progress: bool) -> dict[str, Norm]:
    """First pass: every recording's speech moments on the cluster, summed per speaker -> each file's norm."""
    slots = max(1, sum(client.nthreads().values()))
    size = max(1, min(32, -(-len(files) // (4 * slots))))  # a few long recordings still spread over the workers
    chunks = [list(files[i : i + size]) for i in range(0, len(files), size)]
    futures = [client.submit(moments_task, c, model, settings, pure=False, retries=RETRIES) for c in chunks]
    per_file: dict[str, np.ndarray] = {}
    for _fut, res, err in follow(futures, len(files), {f.key: len(c) for f, c in zip(futures, chunks)}, "files (speaker statistics)", progress):
        if err is None:
            per_file.update(res)
    totals: dict[str, np.ndarray] = {}
    for f, m in per_file.items():
        totals[speaker[f]] = totals.get(speaker[f], 0) + m
    stats = {spk: features.mean_std(m) for spk, m in totals.items()}
    return {f: stats[speaker[f]] for f in files if speaker[f] in stats}


def _norms_from_stats(parts_dir: Path, names: Sequence[str], speaker: dict[str, str]) -> dict[str, Norm]:
    """Each file's speaker statistics from the first pass's per-piece moments, summed per speaker (streamed)."""
    by_text = {str(text(f)): spk for f, spk in speaker.items()}
    totals: dict[str, np.ndarray] = {}
    for n in names:
        p = parts_dir / FRAMES_DIR / n
        if not p.is_file():
            continue
        t = pq.read_table(p, columns=["path", "moments"]).to_pydict()
        for path, m in zip(t["path"], t["moments"]):
            if m is not None and path in by_text:
                spk = by_text[path]
                totals[spk] = totals.get(spk, 0) + np.asarray(m).reshape(3, -1)
    stats = {spk: features.mean_std(m) for spk, m in totals.items()}
    return {f: stats[spk] for f, spk in speaker.items() if spk in stats}


@dataclass(frozen=True)
class ScoreResult:
    """What a score run did."""

    out: Path
    recordings: int
    ok: int
    errors: int
    audio_hours: float
    seconds: float
    distribution: dict[str, int]


def score(
    inputs: Sequence[str | os.PathLike[str]],
    out: str | os.PathLike[str],
    *,
    model: str | os.PathLike[str] | None = None,
    segments: str | os.PathLike[str] | None = None,
    settings: ScoreSettings = ScoreSettings(),
    scheduler: str | None = None,
    workers: int | None = None,
    speakers: str | None = None,
    device: str = "auto",
    progress: bool = True,
    echo: Callable[[str], None] | None = None,
) -> ScoreResult:
    """Score every recording under ``inputs`` into ``out`` (.parquet or .csv) and optionally per-window ``segments``.

    A model trained with speaker normalisation first gathers each speaker's feature statistics over their speech
    windows, then scores with them; ``speakers`` says who is who (``speakers_of``, default "layout"). With a
    frame-grid model that is one encoder pass: each task's frames are kept until the statistics are known.
    ``device`` (auto, cpu, cuda) is where each worker runs the encoder; auto takes a GPU where the worker has one.
    """
    from ser_batch import modeldir
    from ser_batch.inputs import iter_paths

    t0 = time.perf_counter()
    say = echo or (lambda _m: None)
    out_path = Path(out)
    if out_path.suffix.lower() not in (".parquet", ".csv"):
        raise ConfigError(f"--out {out_path} must end in .parquet or .csv")
    model_dir = Path(model) if model else default_model()
    config = modeldir.read_config(model_dir)
    fs = features.FeatureSettings.from_dict(config["features"])
    normalised = config["model"].get("speaker_norm") is True
    if speakers is not None and not normalised:
        raise ConfigError(f"--speakers applies to speaker-normalised models; {model_dir} is not one")
    errors: dict[str, str] = {}
    # folders, audio files and lists of paths (inputs.iter_paths); absolute: workers may run elsewhere; no file twice
    files = sorted(set(iter_paths(inputs, lambda p, why: errors.__setitem__(p, why))))
    if fs.grid:
        windows.frame_steps(settings.hop_s, fs.frame_s)  # refuse a hop off the model's frame grid before any work
    durations: dict[str, float] = {}
    for f in files:
        try:
            info = audio.probe(f)
            _check_length(info, f, settings)
        except AudioError as exc:
            errors[f] = str(exc)
            continue
        durations[f] = info.duration_s
    total_s = sum(durations.values())
    speaker = speakers_of(sorted(durations), speakers or "layout") if normalised else {}
    one_pass = normalised and fs.grid
    with ExitStack() as stack:
        client = stack.enter_context(dask_client(scheduler, workers, echo=say)) if scheduler else None
        slots = sum(client.nthreads().values()) if client is not None else (workers or default_workers())
        settings = task_sizes(settings, total_s, slots)
        pieces = [pc for f, d in durations.items() for pc in plan_pieces(f, d, fs.duration_s, settings)]
        tasks = _group(pieces, settings)
        norms: dict[str, Norm] | None = None
        if normalised and not one_pass and durations:
            client = stack.enter_context(dask_client(scheduler, workers, echo=say))
            norms = speaker_norms(client, sorted(durations), speaker, str(model_dir), settings, progress)
            say(f"Speaker statistics of {len(set(speaker.values()))} speakers ({speakers or 'layout'}).")
        digest = hashlib.sha256(repr(sorted((f, m.tobytes(), s.tobytes()) for f, (m, s) in (norms or {}).items())).encode()).hexdigest()
        if one_pass:  # the parts depend on every recording of their speakers: key them on who is who
            digest = hashlib.sha256(json.dumps(sorted(speaker.items())).encode()).hexdigest()
        key = hashlib.sha256(json.dumps([config.get("created"), config["name"], settings.to_dict(), bool(segments), digest], sort_keys=True).encode()).hexdigest()[:10]
        parts_dir = out_path.absolute().parent / f".{out_path.name}.parts-{key}"  # absolute: workers have their own cwd
        names = [f"task-{i:06d}-{hashlib.sha256(repr(t).encode()).hexdigest()[:10]}.parquet" for i, t in enumerate(tasks)]
        todo = [(t, n) for t, n in zip(tasks, names) if not (parts_dir / n).is_file()]
        say(f"{len(files)} recordings ({total_s / 3600:.2f} h of audio) in {len(tasks)} tasks; {len(tasks) - len(todo)} already done; model {model_dir}")
        try:
            if todo:
                client = client or stack.enter_context(dask_client(scheduler, workers, echo=say))
                weights = [_audio_s(t) / 3600 for t, _n in todo]
                if one_pass:
                    first = [(t, n, w) for (t, n), w in zip(todo, weights) if not (parts_dir / FRAMES_DIR / n).is_file()]
                    futures = [client.submit(frames_task, t, str(model_dir), settings, str(parts_dir), n, device, key=f"frames-{n}", retries=RETRIES, pure=False) for t, n, _w in first]
                    for fut, _res, err in follow(futures, sum(w for *_, w in first), {f.key: w for f, (*_, w) in zip(futures, first)}, "h audio (encoding)", progress):
                        if err is not None:
                            for p in next(t for t, n, _w in first if f"frames-{n}" == fut.key):
                                errors[p.path] = f"{p.path}: its task failed ({type(err).__name__}: {err}); rerun to retry"
                    norms = _norms_from_stats(parts_dir, [n for _t, n in todo], speaker)
                    say(f"Speaker statistics of {len(set(speaker.values()))} speakers ({speakers or 'layout'}).")
                    todo = [(t, n) for t, n in todo if (parts_dir / FRAMES_DIR / n).is_file()]
                    weights = [_audio_s(t) / 3600 for t, _n in todo]
                futures = [
                    client.submit(
                        score_task, t, str(model_dir), settings, str(parts_dir), n, bool(segments),
                        None if norms is None else {p.path: norms[p.path] for p in t if p.path in norms}, device,
                        key=f"score-{n}", retries=RETRIES, pure=False,
                    )
                    for t, n in todo
                ]  # fmt: skip
                by_key = {f.key: t for f, (t, _n) in zip(futures, todo)}
                for fut, _res, err in follow(futures, sum(weights), {f.key: w for f, w in zip(futures, weights)}, "h audio" if not one_pass else "h audio (scoring)", progress):
                    if err is not None:
                        for p in by_key[fut.key]:
                            errors[p.path] = f"{p.path}: its task failed ({type(err).__name__}: {err}); rerun to retry"
        finally:  # interrupted or not: finished parts stay for the rerun, half-written ones go
            for sub in ("", "segments", FRAMES_DIR):
                remove_temporaries(parts_dir / sub)
    report = _merge(parts_dir, names, files, durations, errors, config, model_dir)
    if normalised:
        report.insert(report.columns.get_loc("model"), "speaker", report["path"].map({str(text(f)): s for f, s in speaker.items()}))
    _write_report(report, out_path)
    if segments:
        _merge_segments(parts_dir, names, Path(segments))
    shutil.rmtree(parts_dir, ignore_errors=True)
    ok = report["status"] == "ok"
    dist = report.loc[ok, "emotion"].value_counts().to_dict()
    return ScoreResult(out_path, len(report), int(ok.sum()), int((~ok).sum()), total_s / 3600, time.perf_counter() - t0, {str(k): int(v) for k, v in dist.items()})


TASKS_PER_SLOT = 4
"""Tasks per worker thread a job is cut into at least (when tasks of ``task_s`` would be fewer): with one or two
tasks per worker, one worker got most of the audio (measured: 2 workers at 22x real time each, against 39x alone)."""
MIN_TASK_S = 120.0
"""The smallest task (and piece) that cutting for balance makes (a piece reads up to a block of audio around it);
a smaller ``task_s`` set by the caller is kept."""


def task_sizes(settings: ScoreSettings, total_s: float, slots: int) -> ScoreSettings:
    """Settings whose task and piece lengths cut ``total_s`` seconds of audio into enough tasks for ``slots``
    worker threads. Piece boundaries change no result (``pieces``), only which parts a rerun can reuse."""
    per = min(settings.task_s, max(MIN_TASK_S, total_s / (TASKS_PER_SLOT * max(1, slots))))  # never above task_s
    return replace(settings, task_s=per, chunk_s=min(settings.chunk_s, per))


def _group(pieces: list[Piece], settings: ScoreSettings) -> list[list[Piece]]:
    """Pack pieces into tasks of about ``task_s`` audio seconds, in order."""
    tasks: list[list[Piece]] = []
    cur: list[Piece] = []
    acc = 0.0
    for p in pieces:
        cur.append(p)
        acc += _audio_s([p])
        if acc >= settings.task_s:
            tasks.append(cur)
            cur, acc = [], 0.0
    if cur:
        tasks.append(cur)
    return tasks


REPORT_COLUMNS = ["path", "status", "error", "duration_s", "windows", "speech_windows", "emotion", "confidence",
                  *(f"p_{e}" for e in EMOTIONS), *(f"share_{e}" for e in EMOTIONS), "model", "model_version"]  # fmt: skip


def _merge(parts_dir: Path, names: list[str], files: list[str], durations: dict[str, float], errors: dict[str, str], config: dict[str, Any], model_dir: Path) -> pd.DataFrame:
    """One row per recording from the parts (chunks deduplicated by (path, chunk)), in path order."""
    classes = list(config["classes"])
    # parts hold paths as text (non-UTF-8 file names escaped): match them in the same form
    files = [str(text(f)) for f in files]
    durations = {str(text(k)): v for k, v in durations.items()}
    errors = {str(text(k)): str(text(v)) for k, v in errors.items()}
    tables = [pq.read_table(parts_dir / n) for n in names if (parts_dir / n).is_file()]
    parts = pa.concat_tables(tables).to_pandas() if tables else pd.DataFrame(columns=PART_SCHEMA.names)
    parts = parts.drop_duplicates(["path", "chunk"])
    rows = []
    version = str(config.get("model_version", config["versions"].get("ser-batch", "?")))
    for path, g in parts.groupby("path", sort=False):
        errs = g["error"].dropna()
        if len(errs) or path in errors:  # in errors: a task holding one of its chunks failed, the rest is partial
            rows.append({"path": path, "status": "error", "error": errs.iloc[0] if len(errs) else errors[path], "duration_s": durations.get(path)})
            continue
        speech = int(g["speech"].sum())
        v = verdict(int(g["windows"].sum()), speech, np.sum(np.stack(g["prob_sum"].to_numpy()), axis=0), np.sum(np.stack(g["top_count"].to_numpy()), axis=0), classes)
        row = {"path": path, "status": "ok", "error": None, "duration_s": durations.get(path), **v}
        if not speech:
            row.update(status="error", error=f"{path} is silent: all {v['windows']} windows are below the silence threshold")
        rows.append(row)
    seen = {r["path"] for r in rows}
    for f in files:
        if f not in seen:
            rows.append({"path": f, "status": "error", "error": errors.get(f, f"{f}: not scored; rerun to retry"), "duration_s": durations.get(f)})
    for f, why in errors.items():
        if f not in seen and f not in set(files):
            rows.append({"path": f, "status": "error", "error": why, "duration_s": None})
    df = pd.DataFrame(rows).reindex(columns=REPORT_COLUMNS)
    df["model"], df["model_version"] = config["name"], version
    return df.sort_values("path", kind="stable").reset_index(drop=True)


def _write_report(df: pd.DataFrame, out: Path) -> None:
    """Parquet (documented schema) or CSV, written atomically."""
    out.parent.mkdir(parents=True, exist_ok=True)
    df = df.astype({"windows": "Int64", "speech_windows": "Int64"})
    if out.suffix.lower() == ".csv":
        tmp = out.parent / f".tmp-{out.name}"
        df.to_csv(tmp, index=False)
        os.replace(tmp, out)
    else:
        write_table_atomic(pa.Table.from_pandas(df, preserve_index=False), out)


def _merge_segments(parts_dir: Path, names: list[str], out: Path) -> None:
    """Concatenate per-task segment parts into one Parquet file, streaming (memory flat)."""
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.parent / f".tmp-{out.name}"
    writer = None
    try:
        for n in names:
            p = parts_dir / "segments" / n
            if not p.is_file():
                continue
            t = pq.read_table(p)
            if writer is None:
                writer = pq.ParquetWriter(tmp, t.schema, compression="zstd")
            writer.write_table(t)
    finally:
        if writer is not None:
            writer.close()
    if writer is not None:
        os.replace(tmp, out)
