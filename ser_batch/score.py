"""The score job: directories (or lists) of recordings of any length -> a report of their emotions, on Dask.

Three steps, all work on the workers: ``plan`` lists paths on the client and probes them in tasks (durations,
unreadable files, speakers); the recordings' pieces are cut into tasks of about ``task_s`` seconds of audio;
``score_task`` scores each task's pieces (``inference``) into one part file of per-piece sums (``verdict``),
written atomically. A speaker-normalised model first runs ``stats_task`` over the same tasks (a frame-grid model
keeps the frames it encoded there, so each second is encoded once), and the client sums each speaker's statistics
(``speakers``). ``output`` streams the parts into the report. A rerun with the same ``--out`` reuses every plan,
statistics and score part already written, so a crash costs only the tasks in flight.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import os
import shutil
import time
from collections.abc import Callable, Sequence
from contextlib import ExitStack
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from ser_batch import audio, features, output, plan, speakers as spk, windows
from ser_batch.cluster import RETRIES, dask_client, follow
from ser_batch.errors import ConfigError, SerBatchError
from ser_batch.inference import ScoreSettings, classify, file_reader, load_model, score_stream, speech_moments
from ser_batch.labels import EMOTIONS
from ser_batch.modeldir import default_model, read_prior
from ser_batch.pieces import Piece, PieceFrames, piece_frames
from ser_batch.plan import TaskSpec
from ser_batch.shards import remove_temporaries, text, write_table_atomic
from ser_batch.verdict import PART_SCHEMA, Partial

__all__ = ["ScoreResult", "ScoreSettings", "score", "score_task", "stats_task"]

STATS_DIR = "stats"
"""Where the statistics pass keeps each task's statistics part and (frame-grid models) its frames (``.npz``)."""


def _attempt(pc: Piece, fn: Callable[[], Any]) -> tuple[Any, str | None]:
    """``fn()``, or the reason it failed, naming the file: one odd file costs its row, never the task."""
    try:
        return fn(), None
    except SerBatchError as exc:
        return None, str(exc) if pc.path in str(exc) else f"{pc.path} {exc}"
    except Exception as exc:  # noqa: BLE001
        return None, f"{pc.path}: {type(exc).__name__}: {exc}"


def _frames(md: Any, pc: Piece, settings: ScoreSettings, device: str) -> PieceFrames:
    return piece_frames(md.features, file_reader(pc.path, md.features.sample_rate), pc, settings.hop_s, settings.silence_db, device)


def _blocks(md: Any, pc: Piece) -> Any:
    """A per-window model's stream of a piece: its windows' audio."""
    return audio.stream(pc.path, md.features.sample_rate, block_s=60.0, start_s=pc.first_start_s, stop_s=pc.last_start_s + md.features.duration_s)


def stats_task(spec: TaskSpec, model: str, settings: ScoreSettings, parts_dir: str, device: str = "cpu") -> dict[str, float]:
    """The statistics pass of a speaker-normalised model over one task: each piece's share of its speaker's
    moments; a frame-grid model keeps the frames it encoded for ``score_task``."""
    md = load_model(model)
    table = plan.read_plan(parts_dir, spec.batch)
    speaker = table.column("speaker").to_pylist()
    kept: list[PieceFrames | None] = []
    rows = []
    for r, pc in plan.task_pieces(spec, table, md.features.duration_s, settings):
        if md.features.grid:
            pf, error = _attempt(pc, lambda: _frames(md, pc, settings, device))
            kept.append(pf)
            m = None if pf is None else pf.moments
        else:
            m, error = _attempt(pc, lambda: speech_moments(md, _blocks(md, pc), settings, pc.first_start_s, pc.last_start_s))
        rows.append({"row": r, "speaker": speaker[r], "chunk": pc.chunk, "error": text(error), "moments": None if m is None else m.reshape(-1).tolist()})
    root = Path(parts_dir) / STATS_DIR
    if md.features.grid:
        _save_frames(root / f"{Path(spec.name).stem}.npz", kept)
    write_table_atomic(pa.Table.from_pylist(rows, schema=spk.STATS_SCHEMA), root / spec.name)
    return {"seconds": spec.seconds}


def score_task(spec: TaskSpec, model: str, settings: ScoreSettings, parts_dir: str, name: str, segments: bool, norms: str | None = None, device: str = "cpu") -> dict[str, float]:
    """The Dask task: score a task's pieces and write its part ``name`` (and its segments) atomically.

    With ``norms`` (the job's speaker statistics table) each window is standardised with its speaker's; a
    frame-grid model then reads the frames its ``stats_task`` kept, and deletes them once its part is written.
    """
    md = load_model(model)
    fs = md.features
    table = plan.read_plan(parts_dir, spec.batch)
    speaker = table.column("speaker").to_pylist()
    norm_of = spk.read_norms(norms, os.stat(norms).st_mtime_ns) if norms else None
    root = Path(parts_dir)
    kept_path = root / STATS_DIR / f"{Path(spec.name).stem}.npz"
    pcs = plan.task_pieces(spec, table, fs.duration_s, settings)
    kept = _load_frames(kept_path, len(pcs)) if fs.grid and norms else None
    stats_errors = _stats_errors(root / STATS_DIR / spec.name) if norms else {}
    rows, seg_rows = [], []
    for i, (r, pc) in enumerate(pcs):
        part = Partial()
        norm = norm_of.get(speaker[r]) if norm_of is not None else None

        def run() -> None:
            if (r, pc.chunk) in stats_errors:
                raise SerBatchError(stats_errors[r, pc.chunk])
            if fs.grid:
                pf = kept[i] if kept is not None and kept[i] is not None else _frames(md, pc, settings, device)
                batches = [(pf.starts, classify(md, pf, norm, settings.batch_windows), ~pf.speech)]
            else:
                batches = score_stream(md, _blocks(md, pc), settings, pc.first_start_s, pc.last_start_s, norm)
            for starts, proba, sil in batches:
                part.add(proba, sil)
                if segments:
                    seg_rows.append(_segment_table(text(pc.path), starts, np.minimum(starts + fs.duration_s, pc.duration_s), proba, sil, md.classes))

        _none, error = _attempt(pc, run)
        rows.append({"row": r, "path": text(pc.path), "chunk": pc.chunk, "error": text(error), **part.row(len(md.classes))})
    if segments:
        seg = pa.concat_tables(seg_rows) if seg_rows else _segment_table("", np.zeros(0), np.zeros(0), np.zeros((0, len(md.classes))), np.zeros(0, bool), md.classes)
        write_table_atomic(seg, root / "segments" / name)
    write_table_atomic(pa.Table.from_pylist(rows, schema=PART_SCHEMA), root / name)
    if kept is not None:
        kept_path.unlink(missing_ok=True)
    return {"seconds": spec.seconds}


def _stats_errors(path: Path) -> dict[tuple[int, int], str]:
    """Errors the statistics pass met, by (row, chunk): the scoring pass reports them."""
    t = pq.read_table(path, columns=["row", "chunk", "error"]).to_pydict()
    return {(r, c): e for r, c, e in zip(t["row"], t["chunk"], t["error"]) if e}


_KEPT = tuple(f.name for f in dataclasses.fields(PieceFrames))  # every field, so a piece comes back whole


def _save_frames(path: Path, frames: list[PieceFrames | None]) -> None:
    """The statistics pass's pieces, for the scoring pass (each piece encoded once per job)."""
    arrays: dict[str, np.ndarray] = {}
    for i, pf in enumerate(frames):
        if pf is not None:
            arrays.update({f"{k}_{i}": np.asarray(getattr(pf, k)) for k in _KEPT})
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.parent / f".tmp-{path.stem}-{os.getpid()}.npz"
    np.savez(tmp, **arrays)
    os.replace(tmp, path)


def _load_frames(path: Path, n: int) -> list[PieceFrames | None]:
    """The pieces `_save_frames` kept; None for a piece not kept whole (it is encoded again)."""
    if not path.is_file():
        return [None] * n
    with np.load(path, allow_pickle=False) as z:
        whole = [all(f"{k}_{i}" in z for k in _KEPT) for i in range(n)]
        return [PieceFrames(*(z[f"{k}_{i}"] for k in _KEPT)) if whole[i] else None for i in range(n)]


SEGMENT_SCHEMA = pa.schema(
    [("path", pa.string()), ("start_s", pa.float64()), ("end_s", pa.float64()), ("is_speech", pa.bool_()), ("emotion", pa.string()),
     *((f"p_{e}", pa.float32()) for e in EMOTIONS)]
)  # fmt: skip


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
    return pa.table(cols, schema=SEGMENT_SCHEMA)


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
    """Score every recording under ``inputs`` (folders, audio files, lists of paths) into ``out``: a .parquet or
    .csv file, or a folder for a Parquet dataset (``output``); optionally per-window ``segments`` likewise.

    A speaker-normalised model first gathers each speaker's statistics over their speech, then scores with them;
    ``speakers`` says who is who (``speakers.speaker_of``; default "layout", "job" for a corpus-normalised model). ``device`` (auto, cpu, cuda) is
    where each worker runs the encoder; auto takes a GPU where the worker has one.
    """
    from ser_batch import modeldir
    from ser_batch.inputs import iter_paths

    t0 = time.perf_counter()
    say = echo or (lambda _m: None)
    output.kind(out)
    if segments is not None:
        output.kind(segments, "--segments")
    model_dir = Path(model) if model else default_model()
    config = modeldir.read_config(model_dir)
    fs = features.FeatureSettings.from_dict(config["features"])
    normalised = config["model"].get("speaker_norm") is True
    if speakers is not None and not normalised:
        raise ConfigError(f"--speakers applies to speaker-normalised models; {model_dir} is not one")
    who = (speakers or ("job" if config["model"].get("norm_by") == "corpus" else "layout")) if normalised else None
    if fs.grid:
        windows.frame_steps(settings.hop_s, fs.frame_s)  # refuse a hop off the model's frame grid before any work
    key = hashlib.sha256(json.dumps([config.get("created"), config["name"], settings.to_dict(), bool(segments), who and spk.check(who)], sort_keys=True).encode()).hexdigest()[:10]
    out_name = Path(os.fspath(out).rstrip("/" + os.sep) or ".")
    parts_dir = out_name.absolute().parent / f".{out_name.name}.parts-{key}"  # absolute: workers have their own cwd
    listing_errors: dict[str, str] = {}
    paths = iter_paths(inputs, listing_errors.__setitem__)  # checks every input now; yields paths as it lists
    failures: dict[str, str] = {}  # task name -> why it failed
    digest = ""
    with ExitStack() as stack:
        client = stack.enter_context(dask_client(scheduler, workers, echo=say))
        slots = max(1, sum(client.nthreads().values()))
        try:
            batches = plan.probe_all(client, paths, parts_dir, settings, who, progress, job=key)
            total_s = sum(b.seconds for b in batches)
            settings = plan.task_sizes(settings, total_s, slots)
            specs = {b.name: plan.cut_tasks(b.name, plan.durations(parts_dir, b.name), fs.duration_s, settings) for b in batches if not b.failed}
            every = [s for ss in specs.values() for s in ss]
            if normalised:
                todo = [s for s in every if not (parts_dir / STATS_DIR / s.name).is_file()]
                _run(client, todo, lambda s: client.submit(stats_task, s, str(model_dir), settings, str(parts_dir), device, key=f"stats-{key}-{s.name}", retries=RETRIES, pure=False), failures, "h audio (encoding)", progress)
                totals = spk.sum_moments(parts_dir / STATS_DIR / s.name for s in every if (parts_dir / STATS_DIR / s.name).is_file())
                digest = spk.write_norms(totals, parts_dir / "norms.parquet", read_prior(model_dir))
                say(f"Speaker statistics of {len(totals)} speakers ({who}).")
            name = _part_name(digest)
            todo = [s for s in every if not (parts_dir / name(s)).is_file() and s.name not in failures]
            say(f"{sum(b.files for b in batches)} recordings ({total_s / 3600:.2f} h of audio) in {len(every)} tasks; {len(every) - len(todo)} already done; model {model_dir}")
            norms = str(parts_dir / "norms.parquet") if normalised else None
            _run(client, todo, lambda s: client.submit(score_task, s, str(model_dir), settings, str(parts_dir), name(s), bool(segments), norms, device, key=f"score-{key}-{name(s)}", retries=RETRIES, pure=False), failures, "h audio" if not normalised else "h audio (scoring)", progress)
        finally:  # interrupted or not: finished parts stay for the rerun, half-written ones go
            for sub in ("", "segments", STATS_DIR, plan.PLAN_DIR):
                remove_temporaries(parts_dir / sub)
    meta = {"score_settings": settings.to_dict(), "model": {"name": config["name"], "version": str(config.get("model_version", "")), "path": str(model_dir)}}
    if who:
        meta["speakers"] = who
    counts = output.write_report(parts_dir, batches, specs, name, failures, listing_errors, config, out, fs.duration_s, settings, normalised, meta)
    if segments:
        output.write_segments(parts_dir, every, name, segments, SEGMENT_SCHEMA)
    shutil.rmtree(parts_dir, ignore_errors=True)
    return ScoreResult(out_name, counts.recordings, counts.ok, counts.recordings - counts.ok, total_s / 3600, time.perf_counter() - t0, counts.distribution)


def _part_name(digest: str) -> Callable[[TaskSpec], str]:
    """A task's score part name; a speaker-normalised job's names carry its statistics' digest (a rerun whose
    statistics changed scores again)."""
    return lambda s: s.name if not digest else f"{Path(s.name).stem}-{digest}.parquet"


def _run(client: Any, specs: list[TaskSpec], submit: Callable[[TaskSpec], Any], failures: dict[str, str], unit: str, progress: bool) -> None:
    """Run one task per spec, following them with a progress bar in hours of audio; failures by task name."""
    if not specs:
        return
    futures = [submit(s) for s in specs]
    by_key = {f.key: s for f, s in zip(futures, specs)}
    weights = {f.key: s.seconds / 3600 for f, s in zip(futures, specs)}
    for fut, _res, err in follow(futures, sum(weights.values()), weights, unit, progress):
        if err is not None:
            failures[by_key[fut.key].name] = f"its task failed ({type(err).__name__}: {err}); rerun to retry"
