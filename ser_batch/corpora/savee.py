"""SAVEE: ``DC_a01.wav`` / ``JK_sa15.wav``, or the original layout ``AudioData/DC/a01.wav``.

Four male speakers DC, JE, JK, KL. The name is an emotion code and a sentence number 01-30 (15 sentences per
emotion, 30 for neutral). The original layout, with the speaker as the parent folder and a bare ``a01.wav``, is
accepted only when the parent folder is exactly one of the four speakers.

Label table (emotion code -> label); SAVEE has no calm::

    a angry   d disgust   f fearful   h happy
    n neutral sa sad      su surprised

Speaker: ``"savee:DC"``. Fields: sentence (emotion code and number as written, e.g. ``sa15``; SAVEE sentences
are numbered per emotion).
"""

from __future__ import annotations

import re
from pathlib import Path

from ser_batch.corpora.base import NameCorpus, within

__all__ = ["LABEL_TABLE", "SAVEE", "SPEAKERS", "Savee"]

LABEL_TABLE: dict[str, str] = {
    "a": "angry",
    "d": "disgust",
    "f": "fearful",
    "h": "happy",
    "n": "neutral",
    "sa": "sad",
    "su": "surprised",
}
"""SAVEE emotion code -> label (seven of the eight emotions)."""

SPEAKERS: tuple[str, ...] = ("DC", "JE", "JK", "KL")

_BARE = re.compile(r"^(a|d|f|h|n|sa|su)(\d\d)$")


class Savee(NameCorpus):
    """SAVEE file names, flat (``DC_a01``) or in a speaker folder (``DC/a01``)."""

    name = "savee"
    labels = frozenset(LABEL_TABLE.values())
    """Seven labels: no calm."""
    pattern = re.compile(r"^(DC|JE|JK|KL)_(a|d|f|h|n|sa|su)(\d\d)$")
    expected = (
        "not a SAVEE name (expected SPEAKER_CODENN like DC_a01, or CODENN like a01 "
        f"inside a folder named {', '.join(SPEAKERS)}; codes {', '.join(LABEL_TABLE)})"
    )

    def split(self, path: Path) -> tuple[str, ...] | None:
        """(speaker, code, number) from ``DC_a01``, or from ``a01`` inside a DC/JE/JK/KL folder; else None."""
        flat = super().split(path)
        if flat is not None or path.parent.name not in SPEAKERS:
            return flat
        b = _BARE.match(path.stem)
        return None if b is None else (path.parent.name, *b.groups())

    def read(self, path: Path, parts: tuple[str, ...]) -> tuple[str, str, dict[str, str]]:
        """The sentence number must be in 01-30."""
        speaker, code, number = parts
        within(path, "SAVEE sentence number", number, 1, 30)
        return speaker, LABEL_TABLE[code], {"sentence": f"{code}{number}"}


SAVEE = Savee()
"""The SAVEE corpus object."""
