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

from ser_batch.corpora.base import NameCorpus, pick, within

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

LEVELS: tuple[str, ...] = ("LO", "MD", "HI", "XX", "X")


class CremaD(NameCorpus):
    """CREMA-D file names: ``SPEAKER_SENTENCE_EMOTION_LEVEL``."""

    name = "cremad"
    labels = frozenset(LABEL_TABLE.values())
    """Six labels: no calm, no surprised."""
    pattern = re.compile(r"^(\d{4})_([A-Z]{3})_([A-Z]{3})_([A-Z]{1,2})$")
    expected = "not a CREMA-D name (expected SPEAKER_SENTENCE_EMOTION_LEVEL like 1001_DFA_ANG_XX)"

    def read(self, path: Path, parts: tuple[str, ...]) -> tuple[str, str, dict[str, str]]:
        """Speaker in 1001-1091, a known emotion and level (the sentence is kept as written)."""
        speaker, sentence, emotion, level = parts
        within(path, "CREMA-D speaker", speaker, 1001, 1091)
        label = pick(path, LABEL_TABLE, emotion, f"CREMA-D emotion {emotion}")
        pick(path, LEVELS, level, f"CREMA-D level {level}")
        return speaker, label, {"sentence": sentence, "level": level}


CREMAD = CremaD()
"""The CREMA-D corpus object."""
