"""Planning a score job on the cluster: the client lists paths, the workers probe them, tasks are unit ranges.

The client never opens an audio file and keeps nothing per file longer than a batch: it streams paths
(``inputs.iter_paths``) in batches of ``LIST_BATCH`` to ``probe_task``s, which write each batch's plan (path,
duration, probing error, speaker) as a Parquet part. It then reads only the batches' durations to cut the work into
tasks: a recording's window starts are cut into pieces (``pieces.plan_pieces``), the *units* of a batch are its
recordings' pieces in order, and a task is a range of units of one batch (``TaskSpec``) of about ``task_s``
seconds of audio. A worker rebuilds its pieces from the plan part, so a task travels as three numbers.
"""

from __future__ import annotations

import hashlib
import math
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from ser_batch import audio
from ser_batch.cluster import RETRIES
from ser_batch.errors import AudioError
from ser_batch.inference import ScoreSettings, check_length
from ser_batch.pieces import Piece, plan_pieces
from ser_batch.shards import text, write_table_atomic

LIST_BATCH = 2048
"""Paths per probe task, and per plan part: a million files make 489 probe tasks."""

IN_FLIGHT_PER_SLOT = 4
"""Probe tasks submitted ahead per worker thread while the listing goes on (bounds what waits in memory)."""

TASKS_PER_SLOT = 4
"""Tasks per worker thread a job is cut into at least (when tasks of ``task_s`` would be fewer): with one or two
tasks per worker, one worker got most of the audio (measured: 2 workers at 22x real time each, against 39x alone)."""

MIN_TASK_S = 120.0
"""The smallest task (and piece) that cutting for balance makes (a piece reads up to a block of audio around it);
a smaller ``task_s`` set by the caller is kept."""

PLAN_DIR = "plan"
PLAN_SCHEMA = pa.schema([("path", pa.string()), ("file", pa.binary()), ("duration_s", pa.float64()), ("error", pa.string()), ("speaker", pa.string())])
"""A batch's plan: one row per listed path, in listing order; ``duration_s`` null where ``error`` says why.
``path`` is the name as text (``shards.text``), ``file`` its exact bytes (a non-UTF-8 name opens again)."""


@dataclass(frozen=True)
class Batch:
    """A probed batch of listed paths: its plan part's name, and what it holds."""

    name: str
    files: int
    seconds: float
    failed: str | None = None  # why its probe task failed (after retries): its paths become error rows
    paths: tuple[str, ...] = ()  # only for a failed batch


def batches(paths: Iterable[str], size: int = LIST_BATCH) -> Iterator[tuple[str, list[str]]]:
    """(plan name, paths) of each batch of ``size`` paths (`inputs.iter_paths`: each once), named by their order
    and content."""
    batch: list[str] = []
    i = 0
    for p in paths:
        batch.append(p)
        if len(batch) == size:
            yield _name(i, batch), batch
            batch, i = [], i + 1
    if batch:
        yield _name(i, batch), batch


def _name(i: int, paths: list[str]) -> str:
    h = hashlib.sha256("\0".join(paths).encode("utf-8", "surrogateescape")).hexdigest()[:10]
    return f"batch-{i:06d}-{h}.parquet"


def probe_task(paths: list[str], parts_dir: str, name: str, settings: ScoreSettings, speakers: str | None) -> dict[str, float]:
    """The Dask task that plans a batch: each path's duration (or why it cannot be scored) and speaker."""
    from ser_batch.speakers import speaker_of

    durations: list[float | None] = []
    errors: list[str | None] = []
    for p in paths:
        try:
            info = audio.probe(p)
            check_length(info.duration_s, p, settings)
            durations.append(info.duration_s)
            errors.append(None)
        except AudioError as exc:
            durations.append(None)
            errors.append(text(str(exc)))
    spk = speaker_of(paths, speakers) if speakers else [None] * len(paths)
    table = pa.table({"path": [text(p) for p in paths], "file": [p.encode("utf-8", "surrogateescape") for p in paths], "duration_s": durations, "error": errors, "speaker": [text(s) for s in spk]}, schema=PLAN_SCHEMA)
    write_table_atomic(table, Path(parts_dir) / PLAN_DIR / name)
    return {"files": len(paths), "seconds": float(sum(d for d in durations if d is not None))}


def probe_all(client: Any, paths: Iterable[str], parts_dir: Path, settings: ScoreSettings, speakers: str | None, progress: bool, job: str = "") -> list[Batch]:
    """Stream ``paths`` to probe tasks, a few batches ahead of the workers (``cluster.follow``'s ``in_flight``);
    the batches in listing order. A batch whose plan part exists (an earlier run of the same job) is not probed
    again. ``job`` goes into the Dask keys, so that two jobs on one scheduler never share a task."""
    from ser_batch.cluster import follow

    slots = max(1, sum(client.nthreads().values()))
    done: dict[str, Batch] = {}
    order: list[str] = []
    pending: dict[str, list[str]] = {}  # a batch's paths until its task has finished
    weights: dict[str, float] = {}

    def submit() -> Iterator[Any]:
        for name, batch in batches(paths):
            order.append(name)
            part = parts_dir / PLAN_DIR / name
            if part.is_file():
                done[name] = Batch(name, pq.read_metadata(part).num_rows, _seconds(part))
                continue
            pending[name] = batch
            weights[f"probe-{job}-{name}"] = len(batch)
            yield client.submit(probe_task, batch, str(parts_dir), name, settings, speakers, key=f"probe-{job}-{name}", retries=RETRIES, pure=False)

    for fut, res, err in follow(submit(), None, weights, "files (probing)", progress, in_flight=IN_FLIGHT_PER_SLOT * slots):
        name = fut.key.removeprefix(f"probe-{job}-")
        paths_of = pending.pop(name)
        if err is None:
            done[name] = Batch(name, int(res["files"]), float(res["seconds"]))
        else:  # a batch that failed after its retries: its paths are error rows
            done[name] = Batch(name, len(paths_of), 0.0, f"its probe task failed ({type(err).__name__}: {err}); rerun to retry", tuple(paths_of))
    return [done[n] for n in order]


def _seconds(part: Path) -> float:
    d = pq.read_table(part, columns=["duration_s"]).column(0).to_numpy(zero_copy_only=False)
    return float(np.nansum(d.astype(float)))


def durations(parts_dir: Path, name: str) -> np.ndarray:
    """A batch's durations (NaN where probing failed), the only per-file column the client reads."""
    col = pq.read_table(parts_dir / PLAN_DIR / name, columns=["duration_s"]).column(0)
    return col.to_numpy(zero_copy_only=False).astype(float)


# ---------------------------------------------------------------- units and tasks


def units(durations: np.ndarray, window_s: float, settings: ScoreSettings) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(row, chunk, audio seconds) of each piece of a batch, in order: the same pieces as ``plan_pieces``."""
    d = np.nan_to_num(np.asarray(durations, float), nan=0.0)
    n_starts = np.where(d <= 0, 0, np.where(d <= window_s, 1, np.ceil((d - window_s) / settings.hop_s - 1e-9) + 1)).astype(np.int64)
    per_chunk = max(1, int(settings.chunk_s // settings.hop_s))
    n_pieces = -(-n_starts // per_chunk)
    rows = np.repeat(np.arange(len(d)), n_pieces)
    chunk = np.arange(len(rows)) - np.repeat(np.cumsum(n_pieces) - n_pieces, n_pieces)
    first = chunk * per_chunk * settings.hop_s
    nxt = np.where(chunk + 1 < n_pieces[rows], (chunk + 1) * per_chunk * settings.hop_s, math.inf)
    return rows, chunk, np.maximum(0.0, np.minimum(nxt, d[rows]) - first)


@dataclass(frozen=True)
class TaskSpec:
    """A task: units [lo, hi) of a batch (``units``), under the job's final settings."""

    batch: str
    lo: int
    hi: int
    seconds: float

    @property
    def name(self) -> str:
        return f"{Path(self.batch).stem}-u{self.lo}-{self.hi}.parquet"


def cut_tasks(batch: str, durations: np.ndarray, window_s: float, settings: ScoreSettings) -> list[TaskSpec]:
    """A batch's units cut into tasks of about ``task_s`` seconds of audio, in order."""
    _rows, _chunks, secs = units(durations, window_s, settings)
    if not len(secs):
        return []
    before = np.cumsum(secs) - secs
    task_of = np.floor(before / settings.task_s + 1e-9).astype(np.int64)
    bounds = np.flatnonzero(np.diff(task_of)) + 1
    edges = [0, *bounds.tolist(), len(secs)]
    return [TaskSpec(batch, lo, hi, float(secs[lo:hi].sum())) for lo, hi in zip(edges[:-1], edges[1:])]


def task_pieces(spec: TaskSpec, plan: pa.Table, window_s: float, settings: ScoreSettings) -> list[tuple[int, Piece]]:
    """(row, piece) of a task's units, rebuilt from its batch's plan part on the worker."""
    paths = [b.decode("utf-8", "surrogateescape") for b in plan.column("file").to_pylist()]
    d = plan.column("duration_s").to_numpy(zero_copy_only=False).astype(float)
    rows, chunks, _secs = units(d, window_s, settings)
    out: list[tuple[int, Piece]] = []
    cache: dict[int, list[Piece]] = {}
    for r, c in zip(rows[spec.lo : spec.hi].tolist(), chunks[spec.lo : spec.hi].tolist()):
        if r not in cache:
            cache = {r: plan_pieces(paths[r], float(d[r]), window_s, settings.hop_s, settings.chunk_s)}
        out.append((r, cache[r][c]))
    return out


def read_plan(parts_dir: str | Path, batch: str) -> pa.Table:
    return pq.read_table(Path(parts_dir) / PLAN_DIR / batch)


def task_sizes(settings: ScoreSettings, total_s: float, slots: int) -> ScoreSettings:
    """Settings whose task and piece lengths cut ``total_s`` seconds of audio into enough tasks for ``slots``
    worker threads. Piece boundaries change no result (``pieces``), only which parts a rerun can reuse."""
    per = min(settings.task_s, max(MIN_TASK_S, total_s / (TASKS_PER_SLOT * max(1, slots))))  # never above task_s
    return replace(settings, task_s=per, chunk_s=min(settings.chunk_s, per))
