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

from ser_batch.corpora.base import Labels, display, fail
from ser_batch.corpora.generic import folder_label

__all__ = ["GENDERS", "LABEL_TABLE", "URDU", "Urdu"]

LABEL_TABLE: dict[str, str] = {"A": "angry", "H": "happy", "N": "neutral", "S": "sad"}
"""URDU emotion letter -> label (four of the eight emotions)."""

GENDERS: dict[str, str] = {"F": "female", "M": "male"}

_STEM = re.compile(r"^(S([MF])(\d+))_(F\d+)_(([A-Z])(\d+))$")


class Urdu:
    """URDU file names: ``S{M|F}{id}_F{n}_{E}{k}``."""

    name: str = "urdu"
    labels: frozenset[str] = frozenset(LABEL_TABLE.values())
    """Four labels: angry, happy, neutral, sad."""

    def match(self, path: Path) -> bool:
        """True when the stem has the URDU shape (the emotion letter is checked by `parse`)."""
        return _STEM.match(path.stem) is not None

    def parse(self, path: Path) -> Labels:
        """Labels of an URDU file; `CorpusError` on a wrong layout, an unknown letter, or a disagreeing folder."""
        m = _STEM.match(path.stem)
        if m is None:
            raise fail(path, "not an URDU name (expected S{M|F}{id}_F{n}_{A|H|N|S}{k} like SM2_F11_A033)")
        speaker, gender, speaker_no, file_no, clip, letter, _clip_no = m.groups()
        label = LABEL_TABLE.get(letter)
        if label is None:
            raise fail(path, f"URDU emotion letter {letter} is not one of {', '.join(LABEL_TABLE)}")
        if int(speaker_no) == 0:
            raise fail(path, f"URDU speaker {speaker} has number 0 (speaker numbers start at 1)")
        folder = folder_label(path.parent.name)
        if folder is not None and folder != label:
            raise fail(
                path,
                f"URDU letter {letter} means {label} but the file is in folder {display(path.parent.name)!r} "
                f"({folder}); move the file to the folder of its label or fix its name",
            )
        return Labels(
            corpus=self.name,
            speaker=f"{self.name}:{speaker}",
            label=label,
            fields={"gender": GENDERS[gender], "file": file_no, "clip": clip},
        )


URDU = Urdu()
"""The URDU corpus object."""
