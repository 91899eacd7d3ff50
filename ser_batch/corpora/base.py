"""Shared interface of the corpus parsers: the `Labels` a file name yields and the `Corpus` protocol.

Corpus parsers look at path strings only (file stem and, for some layouts, the parent folder); they never open
the file. `match` is a cheap structural test used for auto-detection; `parse` validates every field and raises
`CorpusError` with a message naming the file and what is wrong.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Protocol, runtime_checkable

from ser_batch.errors import CorpusError
from ser_batch.labels import EMOTIONS

__all__ = ["Corpus", "Labels", "display", "fail"]


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
