"""URDU (natural speech from Urdu TV talk shows): ``Angry/SM2_F11_A033.wav`` (any extension).

Name ``S{M|F}{id}_F{n}_{E}{k}``: speaker (gender letter M/F and number; the speaker is the whole code, ``SM2``), file
number F{n}, emotion letter E and clip number k. The published folders ``Angry Happy Neutral Sad`` look like the
generic folder-per-label layout; this layout is detected by the file name, before the generic one, and a file
whose folder names a different label than its letter is refused (name and folder disagree).

Label table (emotion letter -> label); URDU has four emotions, no calm, fearful, disgust or surprised::

    A angry   H happy   N neutral   S sad

Speaker: ``"urdu:SM2"`` (code as written). Fields: gender (female/male, from the code), file (``F11``), clip (the
emotion letter and number as written, ``A033``).
"""

from __future__ import annotations

import re
from pathlib import Path

from ser_batch.corpora.base import NameCorpus, fail, pick
from ser_batch.corpora.generic import check_folder

__all__ = ["GENDERS", "LABEL_TABLE", "URDU", "Urdu"]

LABEL_TABLE: dict[str, str] = {"A": "angry", "H": "happy", "N": "neutral", "S": "sad"}
"""URDU emotion letter -> label (four of the eight emotions)."""

GENDERS: dict[str, str] = {"F": "female", "M": "male"}


class Urdu(NameCorpus):
    """URDU file names: ``S{M|F}{id}_F{n}_{E}{k}``."""

    name = "urdu"
    labels = frozenset(LABEL_TABLE.values())
    """Four labels: angry, happy, neutral, sad."""
    pattern = re.compile(r"^(S([MF])(\d+))_(F\d+)_(([A-Z])(\d+))$")
    expected = "not an URDU name (expected S{M|F}{id}_F{n}_{A|H|N|S}{k} like SM2_F11_A033)"

    def read(self, path: Path, parts: tuple[str, ...]) -> tuple[str, str, dict[str, str]]:
        """A known emotion letter, a speaker number from 1, no disagreeing folder."""
        speaker, gender, speaker_no, file_no, clip, letter, _clip_no = parts
        label = pick(path, LABEL_TABLE, letter, f"URDU emotion letter {letter}")
        if int(speaker_no) == 0:
            raise fail(path, f"URDU speaker {speaker} has number 0 (speaker numbers start at 1)")
        check_folder(path, label, f"URDU letter {letter}")
        return speaker, label, {"gender": GENDERS[gender], "file": file_no, "clip": clip}


URDU = Urdu()
"""The URDU corpus object."""
