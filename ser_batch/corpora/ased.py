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

from ser_batch.corpora.base import NameCorpus, fail, pick, within
from ser_batch.corpora.generic import check_folder

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


class Ased(NameCorpus):
    """ASED file names: ``xN-SS-RR-GG-PP`` (emotion, sentence, repetition, gender, speaker)."""

    name = "ased"
    labels = frozenset(LABEL_TABLE.values())
    """Five labels: neutral, fearful, happy, sad, angry."""
    pattern = re.compile(r"^([A-Za-z]\d)-(\d\d)-(\d\d)-(\d\d)-(\d\d)$")
    expected = "not an ASED name (expected xN-SS-RR-GG-PP like s4-04-02-01-29)"

    def read(self, path: Path, parts: tuple[str, ...]) -> tuple[str, str, dict[str, str]]:
        """A known code, sentence and repetition from 01, gender 01/02, speaker 01-65, no disagreeing folder."""
        code, sentence, repetition, gender, speaker = parts
        label = pick(path, LABEL_TABLE, code.lower(), f"ASED emotion code {code}")
        if sentence == "00":
            raise fail(path, "ASED sentence 00 is not a sentence number (they start at 01)")
        if repetition == "00":
            raise fail(path, "ASED repetition 00 is not a repetition number (they start at 01)")
        if gender not in GENDERS:
            raise fail(path, f"ASED gender {gender} is not 01 (female) or 02 (male)")
        speaker_no = within(path, "ASED speaker", speaker, 1, 65)
        check_folder(path, label, f"ASED code {code}")
        fields = {"sentence": sentence, "repetition": repetition, "gender": GENDERS[gender]}
        return str(speaker_no), label, fields


ASED = Ased()
"""The ASED corpus object."""
