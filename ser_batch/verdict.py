"""From window probabilities to a recording's verdict, through sums that merge exactly across pieces.

Per recording: the dominant emotion is the argmax of the mean probability over speech windows; its confidence is
that mean; ``share_<emotion>`` is the share of speech windows whose top emotion it is. A task stores a ``Partial``
per piece (``PART_SCHEMA``); the report adds a recording's pieces and calls ``verdict``.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import pyarrow as pa

from ser_batch.labels import EMOTIONS


@dataclass
class Partial:
    """Sums over the windows of one piece: merging pieces is adding these."""

    windows: int = 0
    speech: int = 0
    prob_sum: np.ndarray | None = None  # over speech windows, per class
    top_count: np.ndarray | None = None  # speech windows whose argmax is each class

    def add(self, proba: np.ndarray, is_silent: np.ndarray) -> None:
        n_classes = proba.shape[1]
        if self.prob_sum is None:
            self.prob_sum, self.top_count = np.zeros(n_classes), np.zeros(n_classes, np.int64)
        sp = proba[~is_silent]
        self.windows += len(proba)
        self.speech += len(sp)
        self.prob_sum += sp.sum(axis=0)
        self.top_count += np.bincount(sp.argmax(axis=1), minlength=n_classes) if len(sp) else 0  # type: ignore[operator]

    def row(self, n_classes: int) -> dict[str, Any]:
        """The part's columns ``windows, speech, prob_sum, top_count``."""
        return {
            "windows": self.windows, "speech": self.speech,
            "prob_sum": (self.prob_sum if self.prob_sum is not None else np.zeros(n_classes)).tolist(),
            "top_count": (self.top_count if self.top_count is not None else np.zeros(n_classes, np.int64)).tolist(),
        }  # fmt: skip


PART_SCHEMA = pa.schema(
    [
        ("row", pa.int64()), ("path", pa.string()), ("chunk", pa.int32()), ("error", pa.string()),
        ("windows", pa.int64()), ("speech", pa.int64()), ("prob_sum", pa.list_(pa.float64())), ("top_count", pa.list_(pa.int64())),
    ]
)  # fmt: skip
"""A task's part: one row per piece, ``row`` its recording's row in the plan batch."""


def verdict(windows: int, speech: int, prob_sum: np.ndarray, top_count: np.ndarray, classes: Sequence[str]) -> dict[str, Any]:
    """Recording-level figures from merged sums, with probabilities and shares spread over all 8 emotions."""
    row: dict[str, Any] = {"windows": int(windows), "speech_windows": int(speech)}
    mean = prob_sum / speech if speech else np.full(len(classes), np.nan)
    share = top_count / speech if speech else np.full(len(classes), np.nan)
    for e in EMOTIONS:
        i = classes.index(e) if e in classes else None
        row[f"p_{e}"] = float(mean[i]) if i is not None else (0.0 if speech else math.nan)
        row[f"share_{e}"] = float(share[i]) if i is not None else (0.0 if speech else math.nan)
    if speech:
        best = int(np.argmax(mean))
        row["emotion"], row["confidence"] = classes[best], float(mean[best])
    else:
        row["emotion"], row["confidence"] = None, math.nan
    return row


REPORT_SCHEMA = pa.schema(
    [
        ("path", pa.string()), ("status", pa.string()), ("error", pa.string()), ("duration_s", pa.float64()),
        ("windows", pa.int64()), ("speech_windows", pa.int64()), ("emotion", pa.string()), ("confidence", pa.float64()),
        *((f"p_{e}", pa.float64()) for e in EMOTIONS), *((f"share_{e}", pa.float64()) for e in EMOTIONS),
        ("model", pa.string()), ("model_version", pa.string()),
    ]
)  # fmt: skip
"""The report: one row per recording (``status`` ok or error, with the reason in ``error``)."""

REPORT_COLUMNS = REPORT_SCHEMA.names


def report_schema(with_speaker: bool) -> pa.Schema:
    """``REPORT_SCHEMA``, with a ``speaker`` column before ``model`` for a speaker-normalised model."""
    if not with_speaker:
        return REPORT_SCHEMA
    return REPORT_SCHEMA.insert(REPORT_SCHEMA.get_field_index("model"), pa.field("speaker", pa.string()))
