"""Generic layouts: one folder per label, or a CSV manifest ``path,label[,speaker]``.

Label table: label names (folder names and manifest labels) go through one explicit synonym table, case-insensitively, with
spaces and hyphens read as underscores::

    neutral   <- neutral, neu
    calm      <- calm, calmness
    happy     <- happy, happiness, hap, joy, joyful
    sad       <- sad, sadness
    angry     <- angry, anger, ang
    fearful   <- fearful, fear, fea, afraid
    disgust   <- disgust, disgusted, dis
    surprised <- surprised, surprise, sur, ps, pleasant_surprise, pleasant_surprised

Nothing else is accepted (for example boredom or contempt are errors, never guessed).

(a) Folder layout, e.g. ``clips/angry/take3.wav``: the parent folder name gives the label. The speaker cannot be
known from such a layout, so it is ``"generic:?"`` (unknown). Auto-detection picks this layout only when the
parent folder name is one of the synonyms above, so arbitrary folders are never guessed. Fields: folder.

(b) CSV manifest with a header row naming the columns ``path`` and ``label`` and optionally ``speaker`` (any
order, case-insensitive; other columns are ignored). Relative paths are resolved against the CSV's folder.
Speaker ``S`` becomes ``"generic:S"``; an empty or missing speaker is ``"generic:?"``. Fields: manifest, line.
"""

from __future__ import annotations

import csv
import os
from pathlib import Path
from typing import TextIO

from ser_batch.corpora.base import Labels, display, fail
from ser_batch.errors import CorpusError
from ser_batch.labels import EMOTIONS

__all__ = [
    "GENERIC",
    "Generic",
    "LABEL_TABLE",
    "UNKNOWN_SPEAKER",
    "check_folder",
    "folder_label",
    "label_from_name",
    "read_manifest",
]

LABEL_TABLE: dict[str, str] = {
    "neutral": "neutral",
    "neu": "neutral",
    "calm": "calm",
    "calmness": "calm",
    "happy": "happy",
    "happiness": "happy",
    "hap": "happy",
    "joy": "happy",
    "joyful": "happy",
    "sad": "sad",
    "sadness": "sad",
    "angry": "angry",
    "anger": "angry",
    "ang": "angry",
    "fearful": "fearful",
    "fear": "fearful",
    "fea": "fearful",
    "afraid": "fearful",
    "disgust": "disgust",
    "disgusted": "disgust",
    "dis": "disgust",
    "surprised": "surprised",
    "surprise": "surprised",
    "sur": "surprised",
    "ps": "surprised",
    "pleasant_surprise": "surprised",
    "pleasant_surprised": "surprised",
}
"""Label synonym (normalised: lower case, spaces/hyphens as underscores) -> label."""

UNKNOWN_SPEAKER: str = "generic:?"
"""Speaker of files whose layout does not say who speaks."""


def _normalise(name: str) -> str:
    """Lower case, surrounding space stripped, inner spaces and hyphens as underscores."""
    return name.strip().lower().replace("-", "_").replace(" ", "_")


def label_from_name(name: str) -> str | None:
    """The label a folder name or manifest label stands for, or None when it is not a known synonym."""
    return LABEL_TABLE.get(_normalise(name))


def folder_label(name: str) -> str | None:
    """The label an emotion folder of a named corpus stands for, a leading number stripped (``01Neutral``, ``Angry``).

    Named corpora whose folders repeat the label (ASED, URDU, TurEV-DB) use it to refuse a file whose name and
    folder disagree, rather than silently trusting one of them. None when the folder names no label.
    """
    return label_from_name(name.lstrip("0123456789"))


def check_folder(path: Path, label: str, what: str) -> None:
    """`fail` when the parent folder of `path` names a label other than `label` (`what`: ``"URDU letter A"``)."""
    folder = folder_label(path.parent.name)
    if folder is not None and folder != label:
        raise fail(
            path,
            f"{what} means {label} but the file is in folder {display(path.parent.name)!r} ({folder}); "
            "move the file to the folder of its label or fix its name",
        )


class Generic:
    """One folder per label: the parent folder name is the label, the speaker is unknown."""

    name: str = "generic"
    labels: frozenset[str] | None = None
    """Unknown: a folder or manifest may hold any of the eight emotions, or only some."""

    def match(self, path: Path) -> bool:
        """True only when the parent folder name is a known label synonym."""
        return label_from_name(path.parent.name) is not None

    def parse(self, path: Path) -> Labels:
        """Labels from the parent folder name; `CorpusError` when it is not a known label synonym."""
        folder = path.parent.name
        label = label_from_name(folder)
        if label is None:
            raise fail(
                path,
                f"parent folder {display(folder)!r} is not a label name "
                f"(one of {', '.join(EMOTIONS)} or a synonym such as anger, happiness, fear, sadness, surprise)",
            )
        return Labels(corpus=self.name, speaker=UNKNOWN_SPEAKER, label=label, fields={"folder": folder})


GENERIC = Generic()
"""The generic (folder-per-label) corpus object."""


def read_manifest(csv_path: Path) -> list[tuple[Path, Labels]]:
    """Rows of a CSV manifest ``path,label[,speaker]`` as (absolute path, labels), in file order.

    Raises `CorpusError` naming the CSV, the line and the problem: no header, no path or label column, an empty
    path, an unknown label, or a path listed twice.
    """
    where = display(csv_path)
    base = os.path.abspath(os.path.dirname(csv_path))
    try:
        with open(csv_path, encoding="utf-8-sig", newline="") as fh:
            rows = _numbered_rows(fh)
    except OSError as exc:
        raise CorpusError(f"{where}: cannot read manifest: {exc.strerror or exc}") from exc
    except UnicodeDecodeError as exc:
        raise CorpusError(f"{where}: manifest is not UTF-8 text ({exc.reason} at byte {exc.start})") from exc
    except csv.Error as exc:
        raise CorpusError(f"{where}: malformed CSV: {exc}") from exc

    if not rows:
        raise CorpusError(f"{where}: manifest is empty; expected a header row path,label[,speaker]")
    header_line, header = rows[0]
    columns = [_normalise(c) for c in header]
    if "path" not in columns or "label" not in columns:
        missing = " and ".join(c for c in ("path", "label") if c not in columns)
        raise CorpusError(
            f"{where}: line {header_line}: header has no {missing} column "
            f"(expected a header row path,label[,speaker]; got {','.join(header)!r})"
        )
    i_path, i_label = columns.index("path"), columns.index("label")
    i_speaker = columns.index("speaker") if "speaker" in columns else None

    out: list[tuple[Path, Labels]] = []
    seen: dict[str, int] = {}
    for line, row in rows[1:]:

        def cell(i: int | None) -> str:
            return row[i].strip() if i is not None and i < len(row) else ""

        raw_path, raw_label, raw_speaker = cell(i_path), cell(i_label), cell(i_speaker)
        if not raw_path:
            raise CorpusError(f"{where}: line {line}: empty path")
        if not raw_label:
            raise CorpusError(f"{where}: line {line}: no label for {raw_path!r}")
        label = label_from_name(raw_label)
        if label is None:
            raise CorpusError(
                f"{where}: line {line}: label {raw_label!r} is not one of {', '.join(EMOTIONS)} "
                "or a known synonym (e.g. anger, happiness, fear, sadness, surprise, ps)"
            )
        path = os.path.abspath(os.path.join(base, raw_path))
        if path in seen:
            raise CorpusError(f"{where}: line {line}: {raw_path!r} is already listed on line {seen[path]}")
        seen[path] = line
        speaker = f"generic:{raw_speaker}" if raw_speaker else UNKNOWN_SPEAKER
        labels = Labels(
            corpus=GENERIC.name,
            speaker=speaker,
            label=label,
            fields={"manifest": where, "line": str(line)},
        )
        out.append((Path(path), labels))
    return out


def _numbered_rows(fh: TextIO) -> list[tuple[int, list[str]]]:
    """Non-blank CSV rows with the line number each starts on (quoted cells may span lines)."""
    reader = csv.reader(fh)
    rows: list[tuple[int, list[str]]] = []
    start = 1
    for row in reader:
        if any(c.strip() for c in row):
            rows.append((start, row))
        start = reader.line_num + 1
    return rows
