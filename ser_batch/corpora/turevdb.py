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

from ser_batch.corpora.base import Labels, display, fail
from ser_batch.corpora.generic import folder_label

__all__ = ["LABEL_TABLE", "SPEAKERS", "TUREVDB", "TurEVDB"]

LABEL_TABLE: dict[str, str] = {"kz": "angry", "sk": "calm", "mt": "happy", "hl": "sad"}
"""TurEV-DB emotion code (lower-cased) -> label (four of the eight emotions)."""

SPEAKERS: frozenset[str] = frozenset({"1157", "1234", "1358", "1984", "6783", "7895"})

_STEM = re.compile(r"^(\d{4})_([A-Za-z]{2})_([^\W_]+)$")


class TurEVDB:
    """TurEV-DB file names: ``SPEAKER_CODE_WORD``."""

    name: str = "turevdb"
    labels: frozenset[str] = frozenset(LABEL_TABLE.values())
    """Four labels: angry, calm, happy, sad."""

    def match(self, path: Path) -> bool:
        """True for a four-digit speaker, one of the four emotion codes and a word (speaker checked by `parse`).

        The code is required because ``2023_en_word`` alone is too common a shape to claim.
        """
        m = _STEM.match(path.stem)
        return m is not None and m.group(2).lower() in LABEL_TABLE

    def parse(self, path: Path) -> Labels:
        """Labels of a TurEV-DB file; `CorpusError` on a bad layout, speaker or code, or a disagreeing folder."""
        m = _STEM.match(path.stem)
        if m is None:
            raise fail(path, "not a TurEV-DB name (expected SPEAKER_CODE_WORD like 1234_kz_kirgin)")
        speaker, code, word = m.groups()
        label = LABEL_TABLE.get(code.lower())
        if label is None:
            raise fail(path, f"TurEV-DB emotion code {code} is not one of {', '.join(LABEL_TABLE)}")
        if speaker not in SPEAKERS:
            raise fail(path, f"TurEV-DB speaker {speaker} is not one of {', '.join(sorted(SPEAKERS))}")
        folder = folder_label(path.parent.name)
        if folder is not None and folder != label:
            raise fail(
                path,
                f"TurEV-DB code {code} means {label} but the file is in folder {display(path.parent.name)!r} "
                f"({folder}); move the file to the folder of its label or fix its name",
            )
        return Labels(corpus=self.name, speaker=f"{self.name}:{speaker}", label=label, fields={"word": word})


TUREVDB = TurEVDB()
"""The TurEV-DB corpus object."""
