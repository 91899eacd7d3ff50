"""Shared interface of the corpus parsers: the `Labels` a file name yields and the `Corpus` protocol.

Corpus parsers look at path strings only (file stem and, for some layouts, the parent folder); they never open
the file. `match` is a cheap structural test used for auto-detection; `parse` validates every field and raises
`CorpusError` with a message naming the file and what is wrong. `NameCorpus` is that match/parse for the corpora
whose file name says the labels; each keeps only its pattern, tables and checks, written with `pick` and `within`.
"""

from __future__ import annotations

import re
from collections.abc import Collection, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Protocol, TypeVar, runtime_checkable

from ser_batch.errors import CorpusError
from ser_batch.labels import EMOTIONS

__all__ = ["Corpus", "Labels", "NameCorpus", "display", "fail", "pick", "within"]

_V = TypeVar("_V")


@dataclass(frozen=True)
class Labels:
    """What a file's name and place say about it.

    `speaker` is corpus-qualified (``"ravdess:12"``, ``"tess:OAF"``) so speakers of different corpora never
    collide; `label` is one of `EMOTIONS`; `fields` holds corpus-specific fields as strings.
    """

    corpus: str
    speaker: str
    label: str
    fields: Mapping[str, str] = field(default_factory=dict, hash=False)

    def __post_init__(self) -> None:
        if self.label not in EMOTIONS:
            raise ValueError(f"label {self.label!r} is not one of {', '.join(EMOTIONS)}")
        if not self.speaker.startswith(self.corpus + ":"):
            raise ValueError(f"speaker {self.speaker!r} is not qualified with corpus {self.corpus!r}")
        # A private plain-dict copy: callers cannot mutate it through their own reference, and it pickles.
        object.__setattr__(self, "fields", dict(self.fields))


@runtime_checkable
class Corpus(Protocol):
    """One corpus layout: a cheap `match` for detection and a strict `parse`.

    `labels` is the set of labels the corpus has (a subset of `EMOTIONS`), so training can mask the loss to the
    labels a corpus can actually yield; None means unknown (the generic layout).
    """

    name: str
    labels: frozenset[str] | None

    def match(self, path: Path) -> bool:
        """Whether the name/layout of `path` looks like this corpus (structure only, no value checks)."""
        ...

    def parse(self, path: Path) -> Labels:
        """The labels of `path`; raises `CorpusError` naming the file and what is wrong."""
        ...


def display(path: Path | str) -> str:
    """`path` as printable text: undecodable bytes of non-UTF-8 names become U+FFFD instead of surrogates."""
    text = str(path)
    try:
        raw = text.encode("utf-8", "surrogateescape")
    except UnicodeEncodeError:  # a surrogate that did not come from os.fsdecode
        raw = text.encode("utf-8", "backslashreplace")
    return raw.decode("utf-8", "replace")


def fail(path: Path | str, problem: str) -> CorpusError:
    """A `CorpusError` whose message names the file, then the problem."""
    return CorpusError(f"{display(path)}: {problem}")


def pick(path: Path, table: Mapping[str, _V] | Collection[str], key: str, what: str) -> _V | str:
    """`table[key]` (`key` itself when `table` is a set or tuple); else `fail` with ``"{what} is not one of ..."``.

    The choices are listed in table order, a set's sorted.
    """
    if key not in table:
        shown = sorted(table) if isinstance(table, (set, frozenset)) else table
        raise fail(path, f"{what} is not one of {', '.join(shown)}")
    return table[key] if isinstance(table, Mapping) else key


def within(path: Path, what: str, text: str, low: int, high: int) -> int:
    """`text` as a number in low-high; else `fail` with ``"{what} {text} is not in 01-24"`` (bounds padded as text)."""
    number = int(text)
    if not low <= number <= high:
        width = len(text)
        raise fail(path, f"{what} {text} is not in {low:0{width}d}-{high:0{width}d}")
    return number


class NameCorpus:
    """A corpus whose file name says the labels: `pattern` splits the stem, `read` checks the parts.

    A subclass sets `name`, `labels`, `pattern` and `expected` (the error for a name that does not fit: ``"not a
    RAVDESS name (expected ...)"``) and implements `read`; a layout that also looks at folders overrides `split`.
    """

    name: str
    labels: frozenset[str]
    pattern: re.Pattern[str]
    expected: str

    def split(self, path: Path) -> tuple[str, ...] | None:
        """The parts of the name of `path` (the groups of `pattern` on the stem), or None when it does not fit."""
        m = self.pattern.match(path.stem)
        return None if m is None else m.groups()

    def read(self, path: Path, parts: tuple[str, ...]) -> tuple[str, str, dict[str, str]]:
        """(speaker without the corpus prefix, label, fields) from the parts; `fail` on a bad part."""
        raise NotImplementedError

    def match(self, path: Path) -> bool:
        """True when the name has this corpus's shape (the values are checked by `parse`)."""
        return self.split(path) is not None

    def parse(self, path: Path) -> Labels:
        """Labels of a file of this corpus; `CorpusError` on a wrong layout or a bad field."""
        parts = self.split(path)
        if parts is None:
            raise fail(path, self.expected)
        speaker, label, fields = self.read(path, parts)
        return Labels(corpus=self.name, speaker=f"{self.name}:{speaker}", label=label, fields=fields)
