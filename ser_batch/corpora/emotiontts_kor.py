"""emotiontts open DB, Korean emotional speech: ``plain-to-emotional/ema/wav/ema00101.wav`` (any extension).

Layout ``{subset}/{speaker}/wav/{speaker}{NNNNN}``: subset ``plain-to-emotional`` or ``emotional-to-emotional``,
a speaker folder whose name the file name repeats, then a five-digit number whose range gives the emotion. Detected
by that shape (a ``wav`` folder inside a folder named like the file's prefix); the subset folder is checked by
`parse`. The public 5 % sample holds numbers 00001-00005, 00101-00105, 00201-00205, 00301-00305 per speaker.

Label table (number range -> label); four emotions, no calm, fearful, disgust or surprised::

    00001-00100 neutral   00101-00200 happy   00201-00300 sad   00301-00400 angry

The corpus's README gives 00201-00300 as angry (화남) and 00301-00400 as sad (슬픔); in the public sample the two
are the other way round, so this table departs from it. The evidence (`benchmarks/kor-labels.md`): the ten
``emotional-to-emotional`` speakers read a script written for each emotion, and Whisper's transcripts of every one
of them say 00201-00205 are sad sentences ("hearing that from you really hurts", "I got a draft notice, I'm so
depressed", a funeral, condolences) and 00301-00305 angry ones ("how many more times must I tell you", "is turning
the radio down that hard?"); and on all 15 speakers, ``plain-to-emotional`` included, 00201-00300 is the
lowest-pitched of the four ranges, as sad speech is in every other corpus here.

Numbers outside 00001-00400 are refused, never guessed. Speaker: ``"emotiontts_kor:ema"`` (the speaker folder).
Fields: subset (as written), number (five digits as written).
"""

from __future__ import annotations

import re
from pathlib import Path

from ser_batch.corpora.base import NameCorpus, display, fail

__all__ = ["EMOTIONTTS_KOR", "EmotionTTSKor", "LABEL_TABLE", "SUBSETS", "label_of_number"]

LABEL_TABLE: dict[tuple[int, int], str] = {
    (1, 100): "neutral",
    (101, 200): "happy",
    (201, 300): "sad",
    (301, 400): "angry",
}
"""Inclusive number range -> label (four of the eight emotions); 201-400 as the audio holds them, not as the corpus's
README says (module docstring)."""

SUBSETS: frozenset[str] = frozenset({"plain-to-emotional", "emotional-to-emotional"})


def label_of_number(number: int) -> str | None:
    """The label of an utterance number by its range, or None outside 1-400."""
    for (low, high), label in LABEL_TABLE.items():
        if low <= number <= high:
            return label
    return None


class EmotionTTSKor(NameCorpus):
    """emotiontts open DB file paths: ``{subset}/{speaker}/wav/{speaker}{NNNNN}``."""

    name = "emotiontts_kor"
    labels = frozenset(LABEL_TABLE.values())
    """Four labels: neutral, happy, angry, sad."""
    pattern = re.compile(r"^([A-Za-z]+)(\d{5})$")
    expected = (
        "not an emotiontts-kor path (expected SUBSET/SPEAKER/wav/SPEAKERNNNNN like "
        "plain-to-emotional/ema/wav/ema00101, the speaker folder named as the file's prefix)"
    )

    def split(self, path: Path) -> tuple[str, ...] | None:
        """(speaker, number) when the path has the speaker/wav/speakerNNNNN shape (subset checked by `parse`)."""
        parts = super().split(path)
        if parts is None or path.parent.name != "wav" or path.parent.parent.name != parts[0]:
            return None
        return parts

    def read(self, path: Path, parts: tuple[str, ...]) -> tuple[str, str, dict[str, str]]:
        """A known subset folder and a number in 00001-00400."""
        speaker, number = parts
        subset = path.parent.parent.parent.name
        if subset not in SUBSETS:
            raise fail(
                path,
                f"emotiontts-kor subset folder {display(subset)!r} is not one of {', '.join(sorted(SUBSETS))}; "
                "keep the corpus's folder layout",
            )
        label = label_of_number(int(number))
        if label is None:
            raise fail(path, f"emotiontts-kor number {number} is outside 00001-00400 (no emotion range holds it)")
        return speaker, label, {"subset": subset, "number": number}


EMOTIONTTS_KOR = EmotionTTSKor()
"""The emotiontts-kor corpus object."""
