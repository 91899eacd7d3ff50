"""RAVDESS speech and song: ``03-01-05-01-02-01-12.wav`` (any extension).

Seven two-digit fields: modality (01 full-AV, 02 video-only, 03 audio-only), vocal channel (01 speech, 02 song),
emotion, intensity (01 normal, 02 strong), statement (01 "Kids are talking by the door", 02 "Dogs are sitting by
the door"), repetition (01, 02), actor (01-24, odd male, even female).

Label table (emotion field -> label), one to one onto the 8 emotions::

    01 neutral   02 calm     03 happy    04 sad
    05 angry     06 fearful  07 disgust  08 surprised

Speaker: the actor number without leading zeros, ``"ravdess:12"``. Fields: modality, vocal_channel, intensity
as words; statement and repetition as their two-digit codes.
"""

from __future__ import annotations

import re
from pathlib import Path

from ser_batch.corpora.base import NameCorpus, pick, within

__all__ = ["LABEL_TABLE", "RAVDESS", "Ravdess"]

LABEL_TABLE: dict[str, str] = {
    "01": "neutral",
    "02": "calm",
    "03": "happy",
    "04": "sad",
    "05": "angry",
    "06": "fearful",
    "07": "disgust",
    "08": "surprised",
}
"""RAVDESS emotion code -> label (all eight emotions, one to one)."""

MODALITIES: dict[str, str] = {"01": "full-AV", "02": "video-only", "03": "audio-only"}
VOCAL_CHANNELS: dict[str, str] = {"01": "speech", "02": "song"}
INTENSITIES: dict[str, str] = {"01": "normal", "02": "strong"}
_CODES_12: frozenset[str] = frozenset({"01", "02"})


class Ravdess(NameCorpus):
    """RAVDESS file names: seven two-digit fields joined by '-'."""

    name = "ravdess"
    labels = frozenset(LABEL_TABLE.values())
    """All eight emotions."""
    pattern = re.compile(r"^(\d\d)-(\d\d)-(\d\d)-(\d\d)-(\d\d)-(\d\d)-(\d\d)$")
    expected = "not a RAVDESS name (expected 7 two-digit fields like 03-01-05-01-02-01-12)"

    def read(self, path: Path, parts: tuple[str, ...]) -> tuple[str, str, dict[str, str]]:
        """Every code must be known and the actor in 01-24."""
        modality, channel, emotion, intensity, statement, repetition, actor = parts
        fields = {
            "modality": pick(path, MODALITIES, modality, f"RAVDESS modality {modality}"),
            "vocal_channel": pick(path, VOCAL_CHANNELS, channel, f"RAVDESS vocal channel {channel}"),
        }
        label = pick(path, LABEL_TABLE, emotion, f"RAVDESS emotion {emotion}")
        fields["intensity"] = pick(path, INTENSITIES, intensity, f"RAVDESS intensity {intensity}")
        fields["statement"] = pick(path, _CODES_12, statement, f"RAVDESS statement {statement}")
        fields["repetition"] = pick(path, _CODES_12, repetition, f"RAVDESS repetition {repetition}")
        return str(within(path, "RAVDESS actor", actor, 1, 24)), label, fields


RAVDESS = Ravdess()
"""The RAVDESS corpus object."""
