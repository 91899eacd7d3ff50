"""ASED (Amharic Speech Emotion Dataset v1): ``04Sad/s4-04-02-01-29.wav`` (any extension).

Name ``xN-SS-RR-GG-PP``: emotion letter x with its folder number N (the two always agree), sentence SS,
repetition RR, gender GG (01 female, 02 male), speaker PP (01-65). Folders ``01Neutral 02Fearful 03Happy 04Sad
05Angry``. Letters are read case-insensitively: one published name starts with a capital (``S4-04-02-01-29``).
A file inside a folder that names a different label than its letter is refused (name and folder disagree).

Label table (letter and number -> label); ASED has five emotions, no calm, no disgust, no surprised::

    n1 neutral   f2 fearful   h3 happy   s4 sad   a5 angry

Speaker: the speaker number without leading zeros, ``"ased:29"``. Speakers 09, 15, 21, 23 and 25 appear with both
gender codes in the published corpus; the speaker is the speaker field alone, the gender code is kept as a field.
Fields: sentence, repetition (two-digit codes as written), gender (female/male, from the name).
"""

from __future__ import annotations

import re
from pathlib import Path

from ser_batch.corpora.base import Labels, display, fail
from ser_batch.corpora.generic import folder_label

__all__ = ["ASED", "Ased", "GENDERS", "LABEL_TABLE"]

LABEL_TABLE: dict[str, str] = {
    "n1": "neutral",
    "f2": "fearful",
    "h3": "happy",
    "s4": "sad",
    "a5": "angry",
}
"""ASED emotion letter and folder number (lower-cased) -> label (five of the eight emotions)."""

GENDERS: dict[str, str] = {"01": "female", "02": "male"}

_STEM = re.compile(r"^([A-Za-z]\d)-(\d\d)-(\d\d)-(\d\d)-(\d\d)$")


class Ased:
    """ASED file names: ``xN-SS-RR-GG-PP`` (emotion, sentence, repetition, gender, speaker)."""

    name: str = "ased"
    labels: frozenset[str] = frozenset(LABEL_TABLE.values())
    """Five labels: neutral, fearful, happy, sad, angry."""

    def match(self, path: Path) -> bool:
        """True when the stem is a letter-digit code and four two-digit fields joined by '-'."""
        return _STEM.match(path.stem) is not None

    def parse(self, path: Path) -> Labels:
        """Labels of an ASED file; `CorpusError` on a wrong layout, a bad field, or a folder that disagrees."""
        m = _STEM.match(path.stem)
        if m is None:
            raise fail(path, "not an ASED name (expected xN-SS-RR-GG-PP like s4-04-02-01-29)")
        code, sentence, repetition, gender, speaker = m.groups()
        label = LABEL_TABLE.get(code.lower())
        if label is None:
            raise fail(path, f"ASED emotion code {code} is not one of {', '.join(LABEL_TABLE)}")
        if sentence == "00":
            raise fail(path, "ASED sentence 00 is not a sentence number (they start at 01)")
        if repetition == "00":
            raise fail(path, "ASED repetition 00 is not a repetition number (they start at 01)")
        if gender not in GENDERS:
            raise fail(path, f"ASED gender {gender} is not 01 (female) or 02 (male)")
        speaker_no = int(speaker)
        if not 1 <= speaker_no <= 65:
            raise fail(path, f"ASED speaker {speaker} is not in 01-65")
        folder = folder_label(path.parent.name)
        if folder is not None and folder != label:
            raise fail(
                path,
                f"ASED code {code} means {label} but the file is in folder {display(path.parent.name)!r} "
                f"({folder}); move the file to the folder of its label or fix its name",
            )
        return Labels(
            corpus=self.name,
            speaker=f"{self.name}:{speaker_no}",
            label=label,
            fields={"sentence": sentence, "repetition": repetition, "gender": GENDERS[gender]},
        )


ASED = Ased()
"""The ASED corpus object."""
