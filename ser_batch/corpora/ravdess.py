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

from ser_batch.corpora.base import Labels, fail

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

_STEM = re.compile(r"^(\d\d)-(\d\d)-(\d\d)-(\d\d)-(\d\d)-(\d\d)-(\d\d)$")


class Ravdess:
    """RAVDESS file names: seven two-digit fields joined by '-'."""

    name: str = "ravdess"
    labels: frozenset[str] = frozenset(LABEL_TABLE.values())
    """All eight emotions."""

    def match(self, path: Path) -> bool:
        """True when the stem is seven two-digit fields (values are checked by `parse`)."""
        return _STEM.match(path.stem) is not None

    def parse(self, path: Path) -> Labels:
        """Labels of a RAVDESS file; `CorpusError` on a wrong layout or an out-of-range field."""
        m = _STEM.match(path.stem)
        if m is None:
            raise fail(path, "not a RAVDESS name (expected 7 two-digit fields like 03-01-05-01-02-01-12)")
        modality, channel, emotion, intensity, statement, repetition, actor = m.groups()
        checks = (
            ("modality", modality, MODALITIES),
            ("vocal channel", channel, VOCAL_CHANNELS),
            ("emotion", emotion, LABEL_TABLE),
            ("intensity", intensity, INTENSITIES),
            ("statement", statement, _CODES_12),
            ("repetition", repetition, _CODES_12),
        )
        for what, code, allowed in checks:
            if code not in allowed:
                raise fail(path, f"RAVDESS {what} {code} is not one of {', '.join(sorted(allowed))}")
        actor_no = int(actor)
        if not 1 <= actor_no <= 24:
            raise fail(path, f"RAVDESS actor {actor} is not in 01-24")
        return Labels(
            corpus=self.name,
            speaker=f"{self.name}:{actor_no}",
            label=LABEL_TABLE[emotion],
            fields={
                "modality": MODALITIES[modality],
                "vocal_channel": VOCAL_CHANNELS[channel],
                "intensity": INTENSITIES[intensity],
                "statement": statement,
                "repetition": repetition,
            },
        )


RAVDESS = Ravdess()
"""The RAVDESS corpus object."""
