"""CREMA-D: ``1001_DFA_ANG_XX.wav`` -- speaker, sentence, emotion, level.

Speaker 1001-1091; sentence a three-letter code (IEO, TIE, IOM, IWW, TAI, MTI, IWL, ITH, DFA, ITS, TSI, WSI);
level LO, MD, HI, XX (unspecified) or the variant X.

Label table (emotion code -> label); CREMA-D has no calm and no surprised::

    ANG angry   DIS disgust   FEA fearful
    HAP happy   NEU neutral   SAD sad

Speaker: ``"cremad:1001"``. Fields: sentence, level (codes as written).
"""

from __future__ import annotations

import re
from pathlib import Path

from ser_batch.corpora.base import Labels, fail

__all__ = ["CREMAD", "CremaD", "LABEL_TABLE"]

LABEL_TABLE: dict[str, str] = {
    "ANG": "angry",
    "DIS": "disgust",
    "FEA": "fearful",
    "HAP": "happy",
    "NEU": "neutral",
    "SAD": "sad",
}
"""CREMA-D emotion code -> label (six of the eight emotions)."""

LEVELS: frozenset[str] = frozenset({"LO", "MD", "HI", "XX", "X"})

_STEM = re.compile(r"^(\d{4})_([A-Z]{3})_([A-Z]{3})_([A-Z]{1,2})$")


class CremaD:
    """CREMA-D file names: ``SPEAKER_SENTENCE_EMOTION_LEVEL``."""

    name: str = "cremad"
    labels: frozenset[str] = frozenset(LABEL_TABLE.values())
    """Six labels: no calm, no surprised."""

    def match(self, path: Path) -> bool:
        """True when the stem has the four-part CREMA-D shape (values are checked by `parse`)."""
        return _STEM.match(path.stem) is not None

    def parse(self, path: Path) -> Labels:
        """Labels of a CREMA-D file; `CorpusError` on a wrong layout or an unknown code."""
        m = _STEM.match(path.stem)
        if m is None:
            raise fail(path, "not a CREMA-D name (expected SPEAKER_SENTENCE_EMOTION_LEVEL like 1001_DFA_ANG_XX)")
        speaker, sentence, emotion, level = m.groups()
        if not 1001 <= int(speaker) <= 1091:
            raise fail(path, f"CREMA-D speaker {speaker} is not in 1001-1091")
        if emotion not in LABEL_TABLE:
            raise fail(path, f"CREMA-D emotion {emotion} is not one of {', '.join(LABEL_TABLE)}")
        if level not in LEVELS:
            raise fail(path, f"CREMA-D level {level} is not one of LO, MD, HI, XX, X")
        return Labels(
            corpus=self.name,
            speaker=f"{self.name}:{speaker}",
            label=LABEL_TABLE[emotion],
            fields={"sentence": sentence, "level": level},
        )


CREMAD = CremaD()
"""The CREMA-D corpus object."""
