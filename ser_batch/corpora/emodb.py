"""EmoDB (Berlin Database of Emotional Speech): ``03a01Fa.wav`` -- speaker, text, emotion, version.

Speakers 03, 08, 09, 10, 11, 12, 13, 14, 15, 16; texts a01 a02 a04 a05 a07 b01 b02 b03 b09 b10; one emotion
letter (German initial); a version letter a-z.

Label table (emotion letter -> label); EmoDB has no calm and no surprised::

    W Wut (anger)        -> angry
    L Langeweile (boredom) -> none: not one of the 8 emotions, and forcing it into calm would pollute calm;
                            parse raises CorpusError and the file is left out
    E Ekel (disgust)     -> disgust
    A Angst (fear)       -> fearful
    F Freude (happiness) -> happy
    T Trauer (sadness)   -> sad
    N neutral            -> neutral

Speaker: ``"emodb:03"`` (two digits, as EmoDB writes them). Fields: text, version.
"""

from __future__ import annotations

import re
from pathlib import Path

from ser_batch.corpora.base import NameCorpus, fail, pick

__all__ = ["EMODB", "EmoDB", "LABEL_TABLE", "SPEAKERS", "TEXTS"]

LABEL_TABLE: dict[str, str | None] = {
    "W": "angry",
    "L": None,  # boredom: no label among the 8 emotions; such files are left out (CorpusError)
    "E": "disgust",
    "A": "fearful",
    "F": "happy",
    "T": "sad",
    "N": "neutral",
}
"""EmoDB emotion letter -> label; None (boredom) means the file is left out."""

SPEAKERS: frozenset[str] = frozenset({"03", "08", "09", "10", "11", "12", "13", "14", "15", "16"})
TEXTS: frozenset[str] = frozenset({"a01", "a02", "a04", "a05", "a07", "b01", "b02", "b03", "b09", "b10"})


class EmoDB(NameCorpus):
    """EmoDB file names: ``SSTTTEV`` (speaker, text, emotion letter, version letter)."""

    name = "emodb"
    labels = frozenset(v for v in LABEL_TABLE.values() if v is not None)
    """Six labels: no calm, no surprised (boredom is left out)."""
    pattern = re.compile(r"^(\d\d)([ab]\d\d)([WLEAFTN])([a-z])$")
    expected = "not an EmoDB name (expected speaker, text, emotion, version like 03a01Fa)"

    def read(self, path: Path, parts: tuple[str, ...]) -> tuple[str, str, dict[str, str]]:
        """A known speaker and text; boredom (L) is refused."""
        speaker, text, emotion, version = parts
        pick(path, SPEAKERS, speaker, f"EmoDB speaker {speaker}")
        pick(path, TEXTS, text, f"EmoDB text {text}")
        label = LABEL_TABLE[emotion]
        if label is None:
            raise fail(path, "EmoDB boredom (L) has no label among the 8 emotions; the file is left out")
        return speaker, label, {"text": text, "version": version}


EMODB = EmoDB()
"""The EmoDB corpus object."""
