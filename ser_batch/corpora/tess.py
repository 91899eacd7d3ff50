"""TESS: ``OAF_angry/OAF_back_angry.wav`` -- speaker, target word, emotion.

Two speakers, OAF (older) and YAF (younger). One original file carries the typo ``OA_bite_neutral``; ``OA`` is
read as speaker OAF. The emotion is the last underscore token of the *file* name; folder names are inconsistent
in the original (``OAF_Fear``, ``OAF_Pleasant_surprise``, ``YAF_pleasant_surprised``) and are not used.

Label table (emotion token, case-insensitive -> label); TESS has no calm::

    angry angry     disgust disgust   fear fearful   happy happy
    neutral neutral ps surprised (pleasant surprise)  sad sad

Speaker: ``"tess:OAF"`` / ``"tess:YAF"``. Fields: word (the target word as written).
"""

from __future__ import annotations

import re
from pathlib import Path

from ser_batch.corpora.base import NameCorpus, pick

__all__ = ["LABEL_TABLE", "SPEAKER_TABLE", "TESS", "Tess"]

LABEL_TABLE: dict[str, str] = {
    "angry": "angry",
    "disgust": "disgust",
    "fear": "fearful",
    "happy": "happy",
    "neutral": "neutral",
    "ps": "surprised",
    "sad": "sad",
}
"""TESS emotion token (lower-cased) -> label (seven of the eight emotions; ``ps`` is pleasant surprise)."""

SPEAKER_TABLE: dict[str, str] = {"OAF": "OAF", "YAF": "YAF", "OA": "OAF"}
"""Speaker prefix (upper-cased) -> speaker; ``OA`` is a typo in the original for OAF."""


class Tess(NameCorpus):
    """TESS file names: ``SPEAKER_WORD_EMOTION``."""

    name = "tess"
    labels = frozenset(LABEL_TABLE.values())
    """Seven labels: no calm."""
    pattern = re.compile(r"^(OAF|YAF|OA)_([^_]+)_([A-Za-z]+)$", re.IGNORECASE)
    expected = "not a TESS name (expected OAF_WORD_EMOTION or YAF_WORD_EMOTION like OAF_back_angry)"

    def read(self, path: Path, parts: tuple[str, ...]) -> tuple[str, str, dict[str, str]]:
        """A known emotion token (any case); the prefix ``OA`` is speaker OAF."""
        prefix, word, emotion = parts
        label = pick(path, LABEL_TABLE, emotion.lower(), f"TESS emotion {emotion!r}")
        return SPEAKER_TABLE[prefix.upper()], label, {"word": word}


TESS = Tess()
"""The TESS corpus object."""
