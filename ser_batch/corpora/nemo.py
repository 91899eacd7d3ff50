"""nEMO (emotional speech in Polish): ``samples/KS0_happiness_5.wav`` (any extension) -- speaker, emotion, number.

Nine actors, each a code of two capital letters and a digit (EB0 IC0 KD0 KS0 MK0 MP0 SM0 TP0 WR0). The number is
the clip's number within speaker and emotion (1-90 as published). The corpus's ``data.tsv`` (text, speaker
padded with spaces, gender, age) is not read: everything needed is in the file name, and gender per speaker is
the fixed table below (from ``data.tsv``). ``data.tsv`` is not audio, so discovery never picks it up.

Label table (emotion word, case-insensitive -> label); nEMO has six emotions, no calm, no disgust::

    anger angry      fear fearful     happiness happy
    neutral neutral  sadness sad      surprised surprised

Speaker: ``"nemo:MP0"``. Fields: number (as written), gender (female/male).
"""

from __future__ import annotations

import re
from pathlib import Path

from ser_batch.corpora.base import NameCorpus, fail, pick

__all__ = ["LABEL_TABLE", "NEMO", "Nemo", "SPEAKERS"]

LABEL_TABLE: dict[str, str] = {
    "anger": "angry",
    "fear": "fearful",
    "happiness": "happy",
    "neutral": "neutral",
    "sadness": "sad",
    "surprised": "surprised",
}
"""nEMO emotion word (lower-cased) -> label (six of the eight emotions)."""

SPEAKERS: dict[str, str] = {
    "EB0": "female",
    "IC0": "female",
    "KD0": "female",
    "KS0": "male",
    "MK0": "female",
    "MP0": "male",
    "SM0": "male",
    "TP0": "male",
    "WR0": "male",
}
"""nEMO speaker code -> gender, as ``data.tsv`` gives it (5 male, 4 female)."""


class Nemo(NameCorpus):
    """nEMO file names: ``SPEAKER_EMOTION_NUMBER``."""

    name = "nemo"
    labels = frozenset(LABEL_TABLE.values())
    """Six labels: no calm, no disgust."""
    pattern = re.compile(r"^([A-Z]{2}\d)_([A-Za-z]+)_(\d+)$")
    expected = "not a nEMO name (expected SPEAKER_EMOTION_NUMBER like KS0_happiness_5)"

    def match(self, path: Path) -> bool:
        """True for the nEMO shape with one of its six emotion words (the speaker is checked by `parse`).

        The word is required because ``AB1_word_3`` alone is too common a shape to claim.
        """
        parts = self.split(path)
        return parts is not None and parts[1].lower() in LABEL_TABLE

    def read(self, path: Path, parts: tuple[str, ...]) -> tuple[str, str, dict[str, str]]:
        """A known speaker and emotion word (any case), a clip number from 1."""
        speaker, emotion, number = parts
        gender = pick(path, SPEAKERS, speaker, f"nEMO speaker {speaker}")
        label = pick(path, LABEL_TABLE, emotion.lower(), f"nEMO emotion {emotion!r}")
        if int(number) == 0:
            raise fail(path, f"nEMO clip number {number} is not a clip number (they start at 1)")
        return speaker, label, {"number": number, "gender": gender}


NEMO = Nemo()
"""The nEMO corpus object."""
