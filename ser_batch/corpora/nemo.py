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

from ser_batch.corpora.base import Labels, fail

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

_STEM = re.compile(r"^([A-Z]{2}\d)_([A-Za-z]+)_(\d+)$")


class Nemo:
    """nEMO file names: ``SPEAKER_EMOTION_NUMBER``."""

    name: str = "nemo"
    labels: frozenset[str] = frozenset(LABEL_TABLE.values())
    """Six labels: no calm, no disgust."""

    def match(self, path: Path) -> bool:
        """True for the nEMO shape with one of its six emotion words (the speaker is checked by `parse`).

        The word is required because ``AB1_word_3`` alone is too common a shape to claim.
        """
        m = _STEM.match(path.stem)
        return m is not None and m.group(2).lower() in LABEL_TABLE

    def parse(self, path: Path) -> Labels:
        """Labels of a nEMO file; `CorpusError` on a wrong layout, an unknown speaker or emotion, or number 0."""
        m = _STEM.match(path.stem)
        if m is None:
            raise fail(path, "not a nEMO name (expected SPEAKER_EMOTION_NUMBER like KS0_happiness_5)")
        speaker, emotion, number = m.groups()
        if speaker not in SPEAKERS:
            raise fail(path, f"nEMO speaker {speaker} is not one of {', '.join(SPEAKERS)}")
        label = LABEL_TABLE.get(emotion.lower())
        if label is None:
            raise fail(path, f"nEMO emotion {emotion!r} is not one of {', '.join(LABEL_TABLE)}")
        if int(number) == 0:
            raise fail(path, f"nEMO clip number {number} is not a clip number (they start at 1)")
        return Labels(
            corpus=self.name,
            speaker=f"{self.name}:{speaker}",
            label=label,
            fields={"number": number, "gender": SPEAKERS[speaker]},
        )


NEMO = Nemo()
"""The nEMO corpus object."""
