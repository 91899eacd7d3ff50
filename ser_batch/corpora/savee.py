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

from ser_batch.corpora.base import Labels, fail

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

_FLAT = re.compile(r"^(DC|JE|JK|KL)_(a|d|f|h|n|sa|su)(\d\d)$")
_BARE = re.compile(r"^(a|d|f|h|n|sa|su)(\d\d)$")


class Savee:
    """SAVEE file names, flat (``DC_a01``) or in a speaker folder (``DC/a01``)."""

    name: str = "savee"
    labels: frozenset[str] = frozenset(LABEL_TABLE.values())
    """Seven labels: no calm."""

    def _split(self, path: Path) -> tuple[str, str, str] | None:
        """(speaker, code, number) from either layout, or None."""
        m = _FLAT.match(path.stem)
        if m is not None:
            speaker, code, number = m.groups()
            return speaker, code, number
        if path.parent.name in SPEAKERS:
            b = _BARE.match(path.stem)
            if b is not None:
                code, number = b.groups()
                return path.parent.name, code, number
        return None

    def match(self, path: Path) -> bool:
        """True for ``DC_a01`` style names and for ``a01`` inside a DC/JE/JK/KL folder."""
        return self._split(path) is not None

    def parse(self, path: Path) -> Labels:
        """Labels of a SAVEE file; `CorpusError` on a wrong layout or a sentence number outside 01-30."""
        parts = self._split(path)
        if parts is None:
            raise fail(
                path,
                "not a SAVEE name (expected SPEAKER_CODENN like DC_a01, or CODENN like a01 "
                f"inside a folder named {', '.join(SPEAKERS)}; codes {', '.join(LABEL_TABLE)})",
            )
        speaker, code, number = parts
        if not 1 <= int(number) <= 30:
            raise fail(path, f"SAVEE sentence number {number} is not in 01-30")
        return Labels(
            corpus=self.name,
            speaker=f"{self.name}:{speaker}",
            label=LABEL_TABLE[code],
            fields={"sentence": f"{code}{number}"},
        )


SAVEE = Savee()
"""The SAVEE corpus object."""
