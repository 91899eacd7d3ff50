"""Recordings to score or extract, named by folders, audio files, or list files of paths, streamed one at a time.

A list file lets a job name a million recordings without a million command-line arguments, and without walking
a huge tree: ``.txt``/``.lst`` (one path a line), ``.csv`` (a ``path`` column) or ``.parquet`` (a ``path``
column). Lists are read in blocks, so a 1M-line list never becomes a 1M-element Python structure here; what the
caller keeps of the paths yielded is up to the caller.

`iter_paths` gives the paths (``score``), `iter_listed` the same for ``extract``, where a ``.csv`` with a ``label``
column is not a path list but a labelled corpus manifest ``path,label[,speaker]`` (`ser_batch.corpora.read_manifest`):
every row needs a label, paths appear once, and its rows carry their own labels; it is read whole before any work
starts. A ``.csv`` without a ``label`` column is a path list there too: its paths are labelled from their corpus
layout, as a folder's files are. `iter_paths` reads only the ``path`` column of either kind.
"""

from __future__ import annotations

import csv
import itertools
import os
from collections.abc import Callable, Iterable, Iterator, Sequence
from os import PathLike
from pathlib import Path
from typing import Any, TypeVar

from ser_batch.corpora import AUDIO_EXTENSIONS, Labels, read_manifest, walk_audio
from ser_batch.corpora.base import display
from ser_batch.errors import ConfigError

__all__ = ["LIST_EXTENSIONS", "Listed", "distinct", "iter_listed", "iter_paths"]

T = TypeVar("T")

TEXT_LISTS: tuple[str, ...] = (".txt", ".lst")
LIST_EXTENSIONS: tuple[str, ...] = (*TEXT_LISTS, ".csv", ".parquet")
"""File extensions (matched case-insensitively) read as lists of paths rather than as audio."""

_BATCH_ROWS = 65_536
"""Rows per block read from a Parquet list (a CSV list is read in pyarrow's 1 MiB blocks)."""

_SLICE_ROWS = 4_096
"""Cells of a block turned into Python objects at a time: bounds the Python memory whatever the block size."""

Listed = tuple[str, "Labels | str | None"]
"""A path and the labels a manifest gives it (None: its name says them), or why it is no recording (a folder that
cannot be listed)."""


def iter_paths(inputs: Sequence[str | PathLike[str]], on_error: Callable[[str, str], None]) -> Iterator[str]:
    """Absolute paths of the recordings named by `inputs`, in input order, one at a time.

    Each input is
      * a folder: its non-hidden audio files (`AUDIO_EXTENSIONS`) in sorted path order, one folder listed at a
        time, without following symlinked folders; folders that cannot be listed go to ``on_error(folder, reason)``;
      * a list file (`LIST_EXTENSIONS`): ``.txt``/``.lst`` one path a line (surrounding blanks stripped; blank lines
        and lines starting with ``#`` skipped), ``.csv`` with a header row and a ``path`` column (any case; else
        the first column), ``.parquet`` with a ``path`` column. Relative paths are relative to the list file's
        folder. Entries are taken as files, never walked, and empty cells are skipped;
      * any other file: one recording (also a dangling symlink; the worker opening it reports what is wrong).

    A listed path that does not exist is still yielded: checking a million paths here, one by one on one machine
    before any work starts, would take minutes on network storage; the worker that opens it reports it as an
    error row like any unreadable recording. Paths are normalised but symlinks are not resolved; a path named
    twice (a list naming it twice, a folder given inside another) is yielded once (`distinct`).

    Every input is checked before the first path is yielded: one that does not exist raises `ConfigError` naming
    it. A list file that cannot be read (no ``path`` column in a Parquet list, malformed CSV) raises `ConfigError`
    when the iteration reaches it.
    """
    return distinct(_paths(_plan(inputs), on_error))


def distinct(items: Iterable[T], key: Callable[[T], str] = str) -> Iterator[T]:
    """``items`` in order, each ``key`` once: a recording named twice is processed once.

    What is held is a 64-bit hash per item, not the item: a sorted NumPy array (8 bytes a path: 8 MB for a million),
    checked and grown a chunk of items at a time. Two of a million paths collide in 64 bits with a
    chance of 1 in 30 million (the later one would be left out).
    """
    import numpy as np

    old = np.empty(0, np.int64)
    it = iter(items)
    while chunk := list(itertools.islice(it, _CHUNK)):
        hashes = np.fromiter((hash(key(x)) for x in chunk), np.int64, len(chunk))
        at = np.searchsorted(old, hashes)
        known = (old[np.minimum(at, old.size - 1)] == hashes) if old.size else np.zeros(len(chunk), bool)
        fresh: set[int] = set()
        for x, h, k in zip(chunk, hashes.tolist(), known.tolist()):
            if not k and h not in fresh:
                fresh.add(h)
                yield x
        new = np.sort(np.fromiter(fresh, np.int64, len(fresh)))
        old = np.insert(old, np.searchsorted(old, new), new)


_CHUNK = 4_096
"""Items `distinct` reads ahead and checks at once (then merges their hashes into its sorted array: one copy)."""


def _plan(inputs: Sequence[str | PathLike[str]]) -> list[tuple[str, str]]:
    """(kind, absolute path) of each input; `ConfigError` for one that does not exist."""
    plan: list[tuple[str, str]] = []
    for item in inputs:
        path = os.path.abspath(os.fspath(item))
        if os.path.isdir(path):
            plan.append(("folder", path))
        elif not os.path.exists(path) and not os.path.islink(path):
            raise ConfigError(
                f"{display(os.fspath(item))}: no such file or folder; give folders, audio files or lists of paths "
                f"({', '.join(LIST_EXTENSIONS)})"
            )
        else:
            ext = os.path.splitext(path)[1].lower()
            plan.append((ext if ext in LIST_EXTENSIONS and os.path.isfile(path) else "audio", path))
    return plan


def iter_listed(inputs: Sequence[str | PathLike[str]]) -> Iterator[Listed]:
    """What ``extract`` reads: the paths named by `inputs`, in input order, one at a time, with manifest labels.

    Inputs are those of `iter_paths`, except that a ``.csv`` with a ``label`` column is a labelled manifest, read
    whole here (`read_manifest`) so that a bad row stops the job before any work: its paths come with its labels.
    Every other path comes with None: the worker labels it from its name (`ser_batch.corpora.parse`), and finds
    out whether it exists. Nothing per path is done here beyond reading it, so the client's work per file stays
    small and constant. A folder that cannot be listed comes with the reason.

    A path named twice (in two manifests, or a folder given inside another) is yielded once, as `iter_paths` does:
    the first time, with its labels then.

    Every input is checked (and every manifest read) before the first path is yielded: a missing input raises
    `ConfigError`, a bad manifest `CorpusError`.
    """
    failed: list[tuple[str, str]] = []
    sources: list[list[tuple[Path, Labels]] | Iterator[str]] = [
        read_manifest(Path(os.path.abspath(item))) if _is_manifest(item)
        else _paths(_plan([item]), lambda path, why: failed.append((path, why)))
        for item in inputs
    ]  # fmt: skip
    return distinct(_listed(sources, failed), key=lambda listed: listed[0])


def _listed(sources: list[list[tuple[Path, Labels]] | Iterator[str]], failed: list[tuple[str, str]]) -> Iterator[Listed]:
    """The generator behind `iter_listed`; `failed` fills with the folders `iter_paths` could not list."""
    for source in sources:
        if isinstance(source, list):
            yield from ((os.fspath(path), labels) for path, labels in source)
            continue
        for path in source:
            yield from _drain(failed)
            yield path, None
        yield from _drain(failed)


def _drain(failed: list[tuple[str, str]]) -> Iterator[Listed]:
    while failed:
        yield failed.pop(0)


def _is_manifest(item: str | PathLike[str]) -> bool:
    """Whether `item` is a ``.csv`` file whose header names a ``label`` column (a labelled corpus manifest)."""
    path = os.fspath(item)
    if os.path.splitext(path)[1].lower() != ".csv" or not os.path.isfile(path):
        return False
    try:
        with open(path, encoding="utf-8-sig", errors="surrogateescape", newline="") as fh:
            header = next(csv.reader(fh), None)
    except (OSError, csv.Error):
        return False  # read as a path list, which names the problem
    return header is not None and "label" in (c.strip().lower() for c in header)


def _paths(plan: list[tuple[str, str]], on_error: Callable[[str, str], None]) -> Iterator[str]:
    """The generator behind `iter_paths`, over checked inputs."""
    for kind, path in plan:
        if kind == "folder":
            yield from walk_audio(path, on_error)
        elif kind == "audio":
            yield path
        else:
            base = os.path.dirname(path)
            reader = _text_list if kind in TEXT_LISTS else _csv_list if kind == ".csv" else _parquet_list
            for entry in reader(path):
                entry = entry.strip()
                if entry:
                    yield os.path.abspath(os.path.join(base, entry))


def _text_list(path: str) -> Iterator[str]:
    """Lines of a text list, without comments; undecodable bytes kept as surrogates, like ``os.fsdecode``."""
    try:
        with open(path, encoding="utf-8-sig", errors="surrogateescape", newline=None) as fh:
            for line in fh:
                if not line.lstrip().startswith("#"):
                    yield line
    except OSError as exc:
        raise ConfigError(f"{display(path)}: cannot read list of paths: {exc.strerror or exc}") from exc


def _csv_list(path: str) -> Iterator[str]:
    """The ``path`` column (else the first) of a CSV list, read block by block."""
    import pyarrow as pa
    import pyarrow.csv as pacsv

    where = display(path)
    try:
        with open(path, encoding="utf-8-sig", errors="surrogateescape", newline="") as fh:
            header = next(csv.reader(fh), None)
    except (OSError, csv.Error) as exc:
        raise ConfigError(f"{where}: cannot read the header of this list of paths: {exc}") from exc
    if not header or not any(c.strip() for c in header):
        raise ConfigError(f"{where}: empty CSV; a CSV list of paths needs a header row with a path column")
    names = [c.strip().lower() for c in header]
    if "path" in names:
        column = header[names.index("path")]
    elif os.path.splitext(names[0])[1] in AUDIO_EXTENSIONS:
        raise ConfigError(
            f"{where}: the first row {header[0]!r} looks like a path, not a header; add a header row 'path' "
            "or save the list as .txt (one path a line)"
        )
    else:
        column = header[0]
    options = pacsv.ConvertOptions(include_columns=[column], column_types={column: pa.binary()})
    try:
        reader = pacsv.open_csv(path, convert_options=options)
        for batch in reader:
            yield from _cells(batch.column(0))
    except (OSError, ValueError, pa.ArrowException) as exc:  # ValueError: a header name that is not UTF-8
        raise ConfigError(f"{where}: malformed CSV list of paths: {exc}") from exc


def _parquet_list(path: str) -> Iterator[str]:
    """The ``path`` column of a Parquet list, read row group by row group in batches."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    where = display(path)
    try:
        pf = pq.ParquetFile(path)
    except (OSError, pa.ArrowException) as exc:
        raise ConfigError(f"{where}: cannot read this Parquet list of paths: {exc}") from exc
    names = pf.schema_arrow.names
    lowered = [n.strip().lower() for n in names]
    if "path" not in lowered:
        raise ConfigError(f"{where}: no path column (columns: {', '.join(names) or 'none'}); name the column of paths 'path'")
    column = names[lowered.index("path")]
    kind = pf.schema_arrow.field(column).type
    if pa.types.is_dictionary(kind):
        kind = kind.value_type
    if not (pa.types.is_string(kind) or pa.types.is_large_string(kind) or pa.types.is_binary(kind) or pa.types.is_large_binary(kind)):
        raise ConfigError(f"{where}: column {column!r} holds {kind}, not text; write the paths as strings")
    try:
        for batch in pf.iter_batches(batch_size=_BATCH_ROWS, columns=[column]):
            yield from _cells(batch.column(0))
    except (OSError, pa.ArrowException) as exc:
        raise ConfigError(f"{where}: cannot read this Parquet list of paths: {exc}") from exc
    finally:
        pf.close()


def _cells(column: Any) -> Iterator[str]:
    """The non-null cells of an Arrow string or binary array as str (bytes decoded like ``os.fsdecode``)."""
    for start in range(0, len(column), _SLICE_ROWS):
        for cell in column.slice(start, _SLICE_ROWS).to_pylist():
            if cell is not None:
                yield cell if isinstance(cell, str) else os.fsdecode(cell)
