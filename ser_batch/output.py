"""Writing a score job's report and segments by streaming its parts, batch by batch (memory flat in files).

``--out`` (and ``--segments``) is a ``.parquet`` file, a ``.csv`` file, or a folder (``DIR/``, or an existing
folder): a partitioned Parquet dataset of ``part-NNNNNN.parquet`` files that pandas, Dask, DuckDB and Polars read
as one table. Each is written under a temporary name and put in place when complete.
"""

from __future__ import annotations

import json
import math
import os
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from ser_batch.errors import ConfigError
from ser_batch.plan import Batch, TaskSpec, read_plan, units
from ser_batch.inference import ScoreSettings
from ser_batch.shards import table_writer_atomic, text
from ser_batch.verdict import report_schema, verdict


def kind(out: str | os.PathLike[str], what: str = "--out") -> str:
    """parquet, csv or dataset (a path ending in a separator, or an existing folder); ConfigError otherwise."""
    raw = os.fspath(out)
    p = Path(raw)
    if raw.endswith(("/", os.sep)) or p.is_dir():
        if p.is_dir() and any(not (c.name.startswith("part-") and c.suffix == ".parquet") for c in p.iterdir()):
            raise ConfigError(f"{what} {raw}: the folder holds files other than a report's part-*.parquet; give an empty or new folder")
        return "dataset"
    suffix = p.suffix.lower()
    if suffix in (".parquet", ".csv"):
        return suffix[1:]
    raise ConfigError(f"{what} {raw} must end in .parquet or .csv, or be a folder (DIR/) for a Parquet dataset")


def target(out: str | os.PathLike[str], what: str = "--out") -> tuple[Path, str]:
    """Where ``out`` is written and as what (`kind`)."""
    return Path(os.fspath(out).rstrip("/" + os.sep) or "."), kind(out, what)


@dataclass
class Counts:
    """What the report holds: recordings, ok rows and each verdict's count."""

    recordings: int = 0
    ok: int = 0
    distribution: dict[str, int] = field(default_factory=dict)


def write_report(
    parts_dir: Path, batches: Sequence[Batch], specs: dict[str, list[TaskSpec]], part_name: Callable[[TaskSpec], str],
    failures: dict[str, str], extra_errors: dict[str, str], config: dict[str, Any], out: str | os.PathLike[str],
    window_s: float, settings: ScoreSettings, with_speaker: bool, metadata: dict[str, Any] | None = None,
) -> Counts:
    """The report from the plan and score parts, one batch at a time, in listing order; then ``extra_errors``
    (inputs that could not be listed) as error rows. ``metadata`` (JSON-able) goes into the Parquet schema, so a
    report says which settings made it (``ser-batch report`` shows them)."""
    schema = report_schema(with_speaker)
    if metadata:
        schema = schema.with_metadata({k: json.dumps(v) for k, v in metadata.items()})
    counts = Counts()
    path, how = target(out)
    with table_writer_atomic(path, schema, how) as write:
        for b in batches:
            rows = _failed_rows(b) if b.failed else _batch_rows(parts_dir, b, specs[b.name], part_name, failures, config, window_s, settings)
            _count(rows, counts)
            write(_table(rows, schema, config))
        extra = [{"path": text(p), "status": "error", "error": text(why)} for p, why in extra_errors.items()]
        _count(extra, counts)
        write(_table(extra, schema, config))
    return counts


def write_segments(parts_dir: Path, specs: Sequence[TaskSpec], part_name: Callable[[TaskSpec], str], out: str | os.PathLike[str], schema: pa.Schema) -> None:
    """The per-window segments of every task, in task order, streamed into ``out``."""
    path, how = target(out, "--segments")
    with table_writer_atomic(path, schema, how) as write:
        for s in specs:
            p = parts_dir / "segments" / part_name(s)
            if p.is_file():
                write(pq.read_table(p))


def _failed_rows(b: Batch) -> list[dict[str, Any]]:
    return [{"path": text(p), "status": "error", "error": text(f"{p}: {b.failed}")} for p in b.paths]


def _batch_rows(parts_dir: Path, b: Batch, specs: list[TaskSpec], part_name: Callable[[TaskSpec], str], failures: dict[str, str], config: dict[str, Any], window_s: float, settings: ScoreSettings) -> list[dict[str, Any]]:
    """A batch's report rows: its recordings' pieces summed over the parts of its tasks."""
    plan = read_plan(parts_dir, b.name).to_pydict()
    n, classes = len(plan["path"]), list(config["classes"])
    dur = np.array([math.nan if d is None else d for d in plan["duration_s"]], float)
    errors: list[str | None] = list(plan["error"])
    unit_rows = units(dur, window_s, settings)[0]
    windows, speech = np.zeros(n, np.int64), np.zeros(n, np.int64)
    prob, top = np.zeros((n, len(classes))), np.zeros((n, len(classes)), np.int64)
    for s in specs:
        part = parts_dir / part_name(s)
        if not part.is_file():
            why = failures.get(s.name, "not scored; rerun to retry")
            for r in np.unique(unit_rows[s.lo : s.hi]).tolist():
                errors[r] = errors[r] or f"{plan['path'][r]}: {why}"
            continue
        t = pq.read_table(part).to_pydict()
        for r, err, w, sp, ps, tc in zip(t["row"], t["error"], t["windows"], t["speech"], t["prob_sum"], t["top_count"]):
            if err:
                errors[r] = errors[r] or err
                continue
            windows[r] += w
            speech[r] += sp
            prob[r] += ps
            top[r] += tc
    rows = []
    for r in range(n):
        row: dict[str, Any] = {"path": plan["path"][r], "duration_s": plan["duration_s"][r], "speaker": plan["speaker"][r]}
        if errors[r]:
            row.update(status="error", error=errors[r])
        else:
            row.update(verdict(int(windows[r]), int(speech[r]), prob[r], top[r], classes), status="ok", error=None)
            if not speech[r]:
                row.update(status="error", error=f"{plan['path'][r]} is silent: all {int(windows[r])} windows are below the silence threshold")
        rows.append(row)
    return rows


def _count(rows: list[dict[str, Any]], counts: Counts) -> None:
    for r in rows:
        counts.recordings += 1
        if r["status"] == "ok":
            counts.ok += 1
            counts.distribution[r["emotion"]] = counts.distribution.get(r["emotion"], 0) + 1


def _table(rows: list[dict[str, Any]], schema: pa.Schema, config: dict[str, Any]) -> pa.Table:
    version = str(config.get("model_version", config["versions"].get("ser-batch", "?")))
    for r in rows:
        for k, v in r.items():
            if isinstance(v, float) and math.isnan(v):
                r[k] = None
        r["model"], r["model_version"] = config["name"], version
    return pa.Table.from_pylist(rows, schema=schema)  # the schema's metadata travels with every part
