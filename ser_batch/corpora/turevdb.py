"""TurEV-DB (Turkish Emotion Voice Database): ``Angry/1234_kz_kirgin.wav`` (any extension) -- speaker, code, word.

Six actors with four-digit codes (1157 1234 1358 1984 6783 7895), each saying single words. The published folders
``Angry Calm Happy Sad`` look like the generic folder-per-label layout; this layout is detected by the file name
(a four-digit speaker and one of the four emotion codes), before the generic one, and a file whose folder names a
different label than its code is refused (name and folder disagree).

Label table (emotion code, case-insensitive -> label); TurEV-DB has four emotions, no neutral, fearful, disgust
or surprised::

    kz angry (kızgın)   sk calm (sakin)   mt happy (mutlu)   hl sad (hüzünlü)

Speaker: ``"turevdb:1234"``. Fields: word (the spoken word as written; one published name is ``ogul1``, kept).
"""

from __future__ import annotations

import re
from pathlib import Path

from ser_batch.corpora.base import NameCorpus, pick
from ser_batch.corpora.generic import check_folder

__all__ = ["LABEL_TABLE", "SPEAKERS", "TUREVDB", "TurEVDB"]

LABEL_TABLE: dict[str, str] = {"kz": "angry", "sk": "calm", "mt": "happy", "hl": "sad"}
"""TurEV-DB emotion code (lower-cased) -> label (four of the eight emotions)."""

SPEAKERS: frozenset[str] = frozenset({"1157", "1234", "1358", "1984", "6783", "7895"})


class TurEVDB(NameCorpus):
    """TurEV-DB file names: ``SPEAKER_CODE_WORD``."""

    name = "turevdb"
    labels = frozenset(LABEL_TABLE.values())
    """Four labels: angry, calm, happy, sad."""
    pattern = re.compile(r"^(\d{4})_([A-Za-z]{2})_([^\W_]+)$")
    expected = "not a TurEV-DB name (expected SPEAKER_CODE_WORD like 1234_kz_kirgin)"

    def match(self, path: Path) -> bool:
        """True for a four-digit speaker, one of the four emotion codes and a word (speaker checked by `parse`).

        The code is required because ``2023_en_word`` alone is too common a shape to claim.
        """
        parts = self.split(path)
        return parts is not None and parts[1].lower() in LABEL_TABLE

    def read(self, path: Path, parts: tuple[str, ...]) -> tuple[str, str, dict[str, str]]:
        """A known emotion code (any case) and speaker, no disagreeing folder."""
        speaker, code, word = parts
        label = pick(path, LABEL_TABLE, code.lower(), f"TurEV-DB emotion code {code}")
        pick(path, SPEAKERS, speaker, f"TurEV-DB speaker {speaker}")
        check_folder(path, label, f"TurEV-DB code {code}")
        return speaker, label, {"word": word}


TUREVDB = TurEVDB()
"""The TurEV-DB corpus object."""
