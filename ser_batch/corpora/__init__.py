"""Labels and speakers from corpus file layouts (path strings only; no audio is opened here).

Known layouts, in detection order: RAVDESS, CREMA-D, TESS, SAVEE, EmoDB, ASED, nEMO, URDU, TurEV-DB,
emotiontts-kor, and generic (a folder per label, or a CSV manifest ``path,label[,speaker]``). Each corpus module
documents its label table, and each corpus object says which labels it has (`Corpus.labels`; None for generic).
A file whose name fits no layout, or fits one but has a bad field, is reported as a failure with the reason --
never guessed.

Order matters only where shapes could overlap: the new corpora come after the five older ones (whose names they
never match), and URDU and TurEV-DB, published in folders named after labels, are detected by their file names
before the generic folder-per-label layout can take them.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

from ser_batch.corpora.ased import ASED
from ser_batch.corpora.base import Corpus, Labels, display, fail
from ser_batch.corpora.cremad import CREMAD
from ser_batch.corpora.emodb import EMODB
from ser_batch.corpora.emotiontts_kor import EMOTIONTTS_KOR
from ser_batch.corpora.generic import GENERIC, read_manifest
from ser_batch.corpora.nemo import NEMO
from ser_batch.corpora.ravdess import RAVDESS
from ser_batch.corpora.savee import SAVEE
from ser_batch.corpora.tess import TESS
from ser_batch.corpora.turevdb import TUREVDB
from ser_batch.corpora.urdu import URDU
from ser_batch.errors import CorpusError

__all__ = [
    "AUDIO_EXTENSIONS",
    "CORPORA",
    "CatalogEntry",
    "CatalogFailure",
    "Corpus",
    "Labels",
    "detect",
    "discover",
    "get_corpus",
    "parse",
    "read_manifest",
]

_DETECTION_ORDER: tuple[Corpus, ...] = (
    RAVDESS,
    CREMAD,
    TESS,
    SAVEE,
    EMODB,
    ASED,
    NEMO,
    URDU,
    TUREVDB,
    EMOTIONTTS_KOR,
    GENERIC,
)
LABEL_TABLES_REVISION = 2
"""Revision of the corpus label tables, part of every shard's name (`extract.plan_shards`): bumped when a table
changes, so a rerun labels and extracts the files again instead of reusing shards labelled by the old table.
2: emotiontts-kor's 00201-00300 sad and 00301-00400 angry, the other way round from revision 1."""

CORPORA: dict[str, Corpus] = {c.name: c for c in _DETECTION_ORDER}
"""Corpus name -> corpus object, in detection order."""

AUDIO_EXTENSIONS: tuple[str, ...] = (".wav", ".flac", ".ogg", ".mp3")
"""File extensions (matched case-insensitively) that `discover` picks up in folders."""

_MANIFEST_EXTENSION = ".csv"


@dataclass(frozen=True)
class CatalogEntry:
    """A file with its labels."""

    path: Path
    labels: Labels


@dataclass(frozen=True)
class CatalogFailure:
    """A file that could not be labelled, and why."""

    path: Path
    reason: str


def get_corpus(name: str) -> Corpus:
    """The corpus object called `name`; `CorpusError` listing the known names when there is none."""
    try:
        return CORPORA[name]
    except KeyError:
        raise CorpusError(f"unknown corpus {name!r}; known corpora: {', '.join(CORPORA)}") from None


def detect(path: Path) -> Corpus | None:
    """The first corpus, in `CORPORA` order, whose `match` accepts `path`; None when none does."""
    path = Path(path)
    for corpus in CORPORA.values():
        if corpus.match(path):
            return corpus
    return None


def parse(path: Path, corpus: str | None = None) -> Labels:
    """Labels of one file, from the forced `corpus` or the corpus detected from its name.

    Raises `CorpusError` when the name does not fit (the forced corpus, or any known layout), a field is invalid,
    or `corpus` is not a known name.
    """
    path = Path(path)
    if corpus is not None:
        return get_corpus(corpus).parse(path)
    found = detect(path)
    if found is None:
        raise fail(
            path,
            f"no known corpus layout matches {display(path.name)}; "
            "use --corpus or a CSV manifest path,label[,speaker]",
        )
    return found.parse(path)


def discover(
    roots: Sequence[Path | str], corpus: str | None = None
) -> tuple[list[CatalogEntry], list[CatalogFailure]]:
    """Find and label audio files under `roots`; returns (entries, failures), each sorted by path.

    Each root is a folder (walked recursively without following symlinked folders, so link loops end; files
    with `AUDIO_EXTENSIONS`, any case; names starting with '.' skipped), a CSV manifest (``.csv``, read with
    `read_manifest`; its rows carry their own labels, `corpus` does not apply; rows whose file is missing become
    failures), or a single audio file. Files whose name does not parse become failures with the reason. Paths
    are absolute but symlinks are not resolved. A file found twice is listed once; found twice with different
    labels, it is a failure. Raises `CorpusError` for a root that does not exist or is none of these, and for an
    unknown `corpus`.
    """
    root_list: list[Path | str] = [roots] if isinstance(roots, (str, Path)) else list(roots)
    forced = get_corpus(corpus) if corpus is not None else None
    labelled: dict[str, Labels] = {}
    failed: dict[str, str] = {}
    conflicted: set[str] = set()

    def add(path: str, outcome: Labels | str) -> None:
        """Record a result; labels beat a failure, two different labels make a failure."""
        if isinstance(outcome, str):
            if path not in labelled:
                failed.setdefault(path, outcome)
            return
        if path in conflicted:
            return
        known = labelled.get(path)
        if known is None:
            failed.pop(path, None)
            labelled[path] = outcome
        elif known != outcome:
            del labelled[path]
            conflicted.add(path)
            failed[path] = (
                f"{display(path)}: labelled twice with different labels "
                f"({known.corpus} {known.label} {known.speaker}; {outcome.corpus} {outcome.label} {outcome.speaker})"
            )

    def label_file(path: str) -> None:
        """Label one file by its name (forced or detected corpus); a `CorpusError` becomes a failure."""
        try:
            add(path, forced.parse(Path(path)) if forced is not None else parse(Path(path)))
        except CorpusError as exc:
            add(path, str(exc))

    for root in root_list:
        root_str = os.path.abspath(os.fspath(root))
        if not os.path.exists(root_str):
            raise CorpusError(f"{display(root)}: no such file or folder")
        if os.path.isdir(root_str):
            for path in walk_audio(root_str, add):
                label_file(path)
        elif root_str.lower().endswith(_MANIFEST_EXTENSION):
            for path_obj, labels in read_manifest(Path(root_str)):
                path = os.fspath(path_obj)
                if os.path.isfile(path):
                    add(path, labels)
                else:
                    add(
                        path,
                        f"{display(path)}: listed in manifest {display(root_str)} line "
                        f"{labels.fields.get('line', '?')} but no such file",
                    )
        elif os.path.splitext(root_str)[1].lower() in AUDIO_EXTENSIONS:
            label_file(root_str)
        else:
            raise CorpusError(
                f"{display(root)}: not a folder, a CSV manifest (.csv) or an audio file "
                f"({', '.join(AUDIO_EXTENSIONS)})"
            )

    entries = [CatalogEntry(Path(p), labelled[p]) for p in sorted(labelled)]
    failures = [CatalogFailure(Path(p), failed[p]) for p in sorted(failed)]
    return entries, failures


def walk_audio(root: str, on_failure: Callable[[str, str], None]) -> Iterator[str]:
    """The non-hidden audio files under ``root`` in sorted path order, one folder in memory at a time (the first
    path comes at once, however large the tree); symlinked folders are not followed.

    Folders that cannot be listed are reported to ``on_failure(folder, message)``, never skipped silently.
    """
    try:
        with os.scandir(root) as it:
            entries = [(e.name, e.is_dir(follow_symlinks=False)) for e in it if not e.name.startswith(".")]
    except OSError as exc:
        on_failure(root, f"{display(root)}: cannot list folder: {exc.strerror or exc}")
        return
    # a folder sorts as "name/": the order of the full paths, as sorting them all would give
    for name, is_dir in sorted(entries, key=lambda e: e[0] + "/" if e[1] else e[0]):
        path = os.path.join(root, name)
        if is_dir:
            yield from walk_audio(path, on_failure)
        elif os.path.splitext(name)[1].lower() in AUDIO_EXTENSIONS:
            yield path

