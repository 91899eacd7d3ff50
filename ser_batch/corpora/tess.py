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

from ser_batch.corpora.base import Labels, fail

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

_STEM = re.compile(r"^(OAF|YAF|OA)_([^_]+)_([A-Za-z]+)$", re.IGNORECASE)


class Tess:
    """TESS file names: ``SPEAKER_WORD_EMOTION``."""

    name: str = "tess"
    labels: frozenset[str] = frozenset(LABEL_TABLE.values())
    """Seven labels: no calm."""

    def match(self, path: Path) -> bool:
        """True when the stem has the TESS shape (the emotion token is checked by `parse`)."""
        return _STEM.match(path.stem) is not None

    def parse(self, path: Path) -> Labels:
        """Labels of a TESS file; `CorpusError` on a wrong layout or an unknown emotion token."""
        m = _STEM.match(path.stem)
        if m is None:
            raise fail(path, "not a TESS name (expected OAF_WORD_EMOTION or YAF_WORD_EMOTION like OAF_back_angry)")
        prefix, word, emotion = m.groups()
        label = LABEL_TABLE.get(emotion.lower())
        if label is None:
            raise fail(path, f"TESS emotion {emotion!r} is not one of {', '.join(LABEL_TABLE)}")
        speaker = SPEAKER_TABLE[prefix.upper()]
        return Labels(corpus=self.name, speaker=f"{self.name}:{speaker}", label=label, fields={"word": word})


TESS = Tess()
"""The TESS corpus object."""
