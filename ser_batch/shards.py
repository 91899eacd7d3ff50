"""Parquet feature shards: the explicit schema, atomic writes, the manifest, and reading back.

Layout of an extract output directory::

    manifest.json             settings, versions, input fingerprints, shard list (the source of truth)
    shards/part-NNNNN-FP.parquet   one row per (recording, augmentation); FP fingerprints the shard's inputs
    files/part-NNNNN-FP.parquet    one row per input of that shard: status, reason, audio facts (an input whose
                              name gave no labels, or that does not exist, is a row with stage ``catalog``)
    catalog.parquet           every file found (ok and failed), with corpus fields; no ``catalog`` stage rows
    errors.parquet            path, stage, reason for every input that yielded no rows

Shards are written under a temporary name and renamed, so a file with a final name is always complete.
"""

from __future__ import annotations

import itertools
import json
import os
import shutil
import tempfile
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import pyarrow as pa
import pyarrow.csv as pacsv
import pyarrow.parquet as pq

if TYPE_CHECKING:
    import pandas as pd

from ser_batch.errors import ConfigError

MANIFEST = "manifest.json"
MANIFEST_FORMAT = "ser-batch-shards"
MANIFEST_VERSION = 1

ROW_FIELDS: list[pa.Field] = [
    pa.field("recording_id", pa.string(), nullable=False),
    pa.field("path", pa.string(), nullable=False),
    pa.field("corpus", pa.string(), nullable=False),
    pa.field("speaker", pa.string(), nullable=False),
    pa.field("label", pa.string(), nullable=False),
    pa.field("augmentation", pa.string(), nullable=False),  # none | noise | pitch | stretch | shift
    pa.field("aug_param", pa.float32()),  # noise amplitude, semitones, or stretch rate; null for none
    pa.field("pad_s", pa.float32(), nullable=False),  # zero padding at the end of the window
    pa.field("start_s", pa.float32()),  # where the window starts in the (augmented) recording
    pa.field("feature_set", pa.string(), nullable=False),
    pa.field("feature_version", pa.int32(), nullable=False),
]

FILE_SCHEMA = pa.schema(
    [
        pa.field("recording_id", pa.string()),
        pa.field("path", pa.string()),
        pa.field("corpus", pa.string()),
        pa.field("speaker", pa.string()),
        pa.field("label", pa.string()),
        pa.field("fields", pa.string()),  # corpus-specific fields as JSON
        pa.field("status", pa.string()),  # ok | error
        pa.field("stage", pa.string()),
        pa.field("reason", pa.string()),
        pa.field("duration_s", pa.float64()),
        pa.field("sample_rate", pa.int32()),
        pa.field("channels", pa.int32()),
        pa.field("rows", pa.int32()),
        pa.field("moments", pa.list_(pa.float64())),  # (3, coeffs) of the speech blocks: the speaker's statistics
    ]
)

ERROR_SCHEMA = pa.schema([pa.field("path", pa.string()), pa.field("stage", pa.string()), pa.field("reason", pa.string())])


def shard_schema(n_frames: int, n_coeffs: int) -> pa.Schema:
    """Row schema plus ``features``: a fixed-size float32 list of frames x coeffs, row-major."""
    feat = pa.field("features", pa.list_(pa.float32(), n_frames * n_coeffs), nullable=False)
    meta = {b"n_frames": str(n_frames).encode(), b"n_coeffs": str(n_coeffs).encode()}
    return pa.schema([*ROW_FIELDS, feat], metadata=meta)


def rows_to_table(rows: list[dict[str, Any]], features: np.ndarray, schema: pa.Schema) -> pa.Table:
    """Build a shard table from row dicts and a (rows, frames, coeffs) float32 array."""
    n = len(rows)
    flat = np.ascontiguousarray(features, dtype=np.float32).reshape(n, -1) if n else np.zeros((0, 1), np.float32)
    width = schema.field("features").type.list_size
    if n and flat.shape[1] != width:
        raise ConfigError(f"features have {flat.shape[1]} values per row, the schema {width}")
    columns = {f.name: pa.array([r[f.name] for r in rows], type=f.type) for f in ROW_FIELDS}
    columns["features"] = pa.FixedSizeListArray.from_arrays(pa.array(flat.reshape(-1), pa.float32()), width)
    return pa.table(columns, schema=schema)


def text(value: str | None) -> str | None:
    """``value`` as valid UTF-8 for Arrow and CSV: the undecodable bytes of a non-UTF-8 file name (which Python holds
    as surrogate escapes) become ``\\xNN``, so distinct names stay distinct and no write fails on them."""
    if value is None:
        return None
    try:
        value.encode("utf-8")
        return value
    except UnicodeEncodeError:
        try:
            return value.encode("utf-8", "surrogateescape").decode("utf-8", "backslashreplace")
        except UnicodeEncodeError:  # a lone surrogate that did not come from a file name
            return value.encode("utf-8", "backslashreplace").decode("utf-8")


def write_table_atomic(table: pa.Table, path: Path) -> None:
    """Write Parquet under a temporary name in the same folder, then rename: readers never see half a file."""
    with _replacing(path, ".parquet") as tmp:
        pq.write_table(table, tmp, compression="zstd")


TABLE_KINDS = ("parquet", "csv", "dataset")


@contextmanager
def table_writer_atomic(path: Path, schema: pa.Schema, kind: str = "parquet", group_rows: int = 65_536) -> Iterator[Callable[[pa.Table], None]]:
    """``write(table)`` for a table written piece by piece (one bigger than memory), put in place under ``path``
    only once the block ends without an error, like `write_table_atomic`: a Parquet or CSV file, or (``dataset``) a
    folder of ``part-NNNNNN.parquet`` files that pandas, Dask and DuckDB read as one table. Pieces are gathered into
    row groups (dataset: files) of about ``group_rows`` rows, not one per piece; an empty table keeps its columns."""
    if kind not in TABLE_KINDS:
        raise ValueError(f"kind must be one of {TABLE_KINDS}, got {kind!r}")
    with _replacing_folder(path) if kind == "dataset" else _replacing(path, "." + kind) as tmp:
        if kind == "dataset":
            parts = itertools.count()
            writer = None

            def flush(table: pa.Table) -> None:
                pq.write_table(table, os.path.join(tmp, f"part-{next(parts):06d}.parquet"), compression="zstd")
        else:
            writer = pq.ParquetWriter(tmp, schema, compression="zstd") if kind == "parquet" else pacsv.CSVWriter(tmp, schema)
            flush = writer.write_table
        try:
            held: list[pa.Table] = []
            rows, flushed = 0, False

            def write(table: pa.Table) -> None:
                nonlocal rows, flushed
                held.append(table)
                rows += table.num_rows
                if rows >= group_rows:
                    flush(pa.concat_tables(held))
                    held.clear()
                    rows, flushed = 0, True

            yield write
            if rows or not flushed:
                flush(pa.concat_tables(held) if held else schema.empty_table())
        finally:
            if writer is not None:
                writer.close()


def write_json_atomic(data: Any, path: Path) -> None:
    """JSON twin of :func:`write_table_atomic`."""
    with _replacing(path, ".json") as tmp, open(tmp, "w") as f:
        json.dump(data, f, indent=2, sort_keys=True)
        f.write("\n")


@contextmanager
def _replacing(path: Path, suffix: str) -> Iterator[str]:
    """A temporary name beside ``path`` to write to: renamed to ``path`` when the block ends, removed on an error."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=".tmp-", suffix=suffix, dir=path.parent)
    os.close(fd)
    try:
        yield tmp
        os.chmod(tmp, 0o644)  # mkstemp makes 0600; outputs are for everyone who may read the folder
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)


@contextmanager
def _replacing_folder(path: Path) -> Iterator[str]:
    """`_replacing` for a folder: a temporary folder beside ``path`` that replaces it when the block ends."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = tempfile.mkdtemp(prefix=f".tmp-{path.name}-", dir=path.parent)
    try:
        yield tmp
        os.chmod(tmp, 0o755)
        if path.is_dir():
            shutil.rmtree(path)
        os.replace(tmp, path)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def remove_temporaries(folder: Path) -> None:
    """Delete leftovers of writes that were killed mid-way."""
    if folder.is_dir():
        for p in folder.glob(".tmp-*"):
            shutil.rmtree(p, ignore_errors=True) if p.is_dir() else p.unlink(missing_ok=True)


def read_manifest(out: Path) -> dict[str, Any]:
    """The manifest of a shard directory; a clear error when it is missing or unfinished."""
    path = Path(out) / MANIFEST
    if not path.is_file():
        raise ConfigError(f"{out} has no {MANIFEST}: run `ser-batch extract CORPUS --out {out}` first")
    data = json.loads(path.read_text())
    if data.get("format") != MANIFEST_FORMAT:
        raise ConfigError(f"{path} is not a ser-batch shard manifest")
    if not data.get("complete"):
        raise ConfigError(f"{out} holds an unfinished extract; rerun the same `ser-batch extract` to finish it")
    return data


def shard_paths(out: Path) -> list[Path]:
    """Shard files listed in the manifest, in order."""
    manifest = read_manifest(out)
    return [Path(out) / "shards" / s["name"] for s in manifest["shards"]]


def read_rows(out: Path, columns: list[str] | None = None) -> pd.DataFrame:
    """Row metadata (no features) of every shard, as one DataFrame."""
    cols = columns or [f.name for f in ROW_FIELDS]
    tables = [pq.read_table(p, columns=cols) for p in shard_paths(out)]
    import pandas as pd  # here: a score client, which never reads shards, starts 1 s sooner

    return pa.concat_tables(tables).to_pandas() if tables else pd.DataFrame(columns=cols)


def features_of(table: pa.Table | pa.RecordBatch, shape: tuple[int, int] | None = None) -> np.ndarray:
    """The ``features`` column as (rows, frames, coeffs) float32; shape from the schema metadata if not given."""
    if shape is None:
        meta = table.schema.metadata or {}
        shape = (int(meta[b"n_frames"]), int(meta[b"n_coeffs"]))
    col = table.column("features")
    if isinstance(col, pa.ChunkedArray):
        col = col.combine_chunks()
    values = col.flatten().to_numpy(zero_copy_only=False)
    return values.reshape(len(table), *shape)


def iter_batches(
    out: Path, batch_rows: int = 4096, columns: list[str] | None = None
) -> Iterator[tuple[pd.DataFrame, np.ndarray]]:
    """Stream (metadata, features) in batches of at most ``batch_rows``: memory stays flat as corpora grow."""
    cols = columns or [f.name for f in ROW_FIELDS]
    for path in shard_paths(out):
        pf = pq.ParquetFile(path)
        meta = pf.schema_arrow.metadata or {}
        shape = (int(meta[b"n_frames"]), int(meta[b"n_coeffs"]))
        for batch in pf.iter_batches(batch_size=batch_rows, columns=[*cols, "features"]):
            yield batch.select(cols).to_pandas(), features_of(batch, shape)


def read_all(out: Path) -> tuple[pd.DataFrame, np.ndarray]:
    """All rows and features at once, for corpora that fit in memory."""
    metas, feats = [], []
    for meta, x in iter_batches(out, batch_rows=65536):
        metas.append(meta)
        feats.append(x)
    if not metas:
        raise ConfigError(f"{out} holds no feature rows")
    import pandas as pd

    return pd.concat(metas, ignore_index=True), np.concatenate(feats)


def recording_moments(dirs: Sequence[str]) -> dict[str, np.ndarray]:
    """Each recording's speech moments (3, coeffs) that ``extract`` kept in the file tables of a frame-grid feature
    set (``features.speech_moments``): summed per group by ``speakers.group_moments``, the one definition of a
    speaker's (or corpus's, or a lone recording's) statistics."""
    out: dict[str, np.ndarray] = {}
    for d in dirs:
        for f in sorted((Path(d) / "files").glob("part-*.parquet")):
            t = pq.read_table(f, columns=["recording_id", "moments"]).to_pydict()
            for rid, m in zip(t["recording_id"], t["moments"]):
                if m is not None:
                    out[rid] = out.get(rid, 0) + np.asarray(m).reshape(3, -1)
    return out
