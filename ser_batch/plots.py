"""Every picture ser-batch draws: bare matplotlib Agg figures (no pyplot, no global backend, nothing left open), as
PNG files for ``evaluate`` and as ``data:`` URIs for the score report's page (``report``).

One colour per emotion (``COLORS``) on every plot; fixed margins in inches instead of a layout engine, which costs a
fifth of a second a plot on a page of a dozen.
"""

from __future__ import annotations

import base64
import io
import math
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from ser_batch.labels import EMOTIONS

COLORS: dict[str, str] = {
    "neutral": "#9e9e9e", "calm": "#4db6ac", "happy": "#f9c80e", "sad": "#1e88e5",
    "angry": "#e53935", "fearful": "#8e24aa", "disgust": "#6d8b3a", "surprised": "#fb8c00",
}  # fmt: skip
"""One colour per emotion on every plot."""

P_COLS = [f"p_{e}" for e in EMOTIONS]
CONFIDENCE_BINS = 20
MAX_TIMELINE_POINTS = 1500  # longer recordings are averaged over blocks of windows before drawing


def figure(width: float, height: float, left: float = 0.6, bottom: float = 0.5, right: float = 0.15, top: float = 0.3, wspace: float = 0.2, hspace: float = 0.2) -> Any:
    """A bare Agg figure (no pyplot) with fixed margins in inches."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    fig = Figure(figsize=(width, height), dpi=100)
    FigureCanvasAgg(fig)
    fig.subplots_adjust(left=left / width, right=1 - right / width, bottom=bottom / height, top=1 - top / height, wspace=wspace, hspace=hspace)
    return fig


def png(fig: Any, dpi: int = 90) -> bytes:
    """A figure as PNG bytes (no software tag: the same figure gives the same bytes)."""
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=dpi, metadata={"Software": None})
    return buf.getvalue()


def data_uri(fig: Any, dpi: int = 90) -> str:
    """A figure as a ``data:`` URI (PNG, base64), for a page that loads nothing."""
    return "data:image/png;base64," + base64.b64encode(png(fig, dpi)).decode("ascii")


def save(fig: Any, path: Path, dpi: int = 110) -> None:
    """A figure as a PNG file."""
    Path(path).write_bytes(png(fig, dpi))


def confusion(cm: Sequence[Sequence[int]], classes: Sequence[str], path: Path, title: str) -> None:
    """Confusion matrix as a PNG file, rows normalised to recall, counts written in the cells."""
    m = np.asarray(cm, float)
    norm = m / np.maximum(m.sum(axis=1, keepdims=True), 1)
    fig = figure(6.5, 5.5, left=1.0, bottom=1.0, right=0.3, top=0.6)
    ax = fig.subplots()
    im = ax.imshow(norm, cmap="Blues", vmin=0, vmax=1)
    ax.set_xticks(range(len(classes)), classes, rotation=45, ha="right")
    ax.set_yticks(range(len(classes)), classes)
    ax.set_xlabel("predicted")
    ax.set_ylabel("true")
    ax.set_title(title, fontsize=10)
    for i in range(len(classes)):
        for j in range(len(classes)):
            ax.text(j, i, int(m[i, j]), ha="center", va="center", fontsize=7, color="white" if norm[i, j] > 0.5 else "black")
    fig.colorbar(im, ax=ax, label="share of true class")
    save(fig, path)


def curves(history: dict[str, list[float]], path: Path) -> None:
    """Training curves (loss and accuracy, train vs validation speakers) as a PNG file."""
    fig = figure(9, 3.5, left=0.6, bottom=0.55, right=0.2, top=0.35, wspace=0.25)
    for ax, key in zip(fig.subplots(1, 2), ("loss", "accuracy")):
        for prefix, name in (("", "train"), ("val_", "validation speakers")):
            if prefix + key in history:
                ax.plot(range(1, len(history[prefix + key]) + 1), history[prefix + key], label=name)
        ax.set_xlabel("epoch")
        ax.set_title(key)
        ax.legend()
    save(fig, path)


def mix(counts: dict[str, int], p_mean: np.ndarray) -> str:
    """The archive's dominant emotions (recordings) beside its mean probability of each emotion."""
    fig = figure(10.5, 3.0, left=0.8, bottom=0.35, right=0.3, wspace=0.3)
    a, b = fig.subplots(1, 2)
    names = [e for e in EMOTIONS if e in counts] + [e for e in counts if e not in EMOTIONS]
    total = max(1, sum(counts.values()))
    y = np.arange(len(names))[::-1]
    vals = [counts[e] for e in names]
    a.barh(y, vals, color=[COLORS.get(e, "#555") for e in names])
    a.set_yticks(y, names)
    for yi, v in zip(y, vals):
        a.text(v, yi, f" {v:,} ({v / total:.0%})", va="center", fontsize=8)
    a.set_xlim(0, max(vals or [1]) * 1.35)
    a.set_title("dominant emotion (recordings)", fontsize=10)
    a.spines[["top", "right"]].set_visible(False)
    y = np.arange(len(EMOTIONS))[::-1]
    b.barh(y, np.nan_to_num(p_mean), color=[COLORS[e] for e in EMOTIONS])
    b.set_yticks(y, EMOTIONS)
    for yi, v in zip(y, p_mean):
        b.text(0 if not np.isfinite(v) else v, yi, " n/a" if not np.isfinite(v) else f" {v:.3f}", va="center", fontsize=8)
    b.axvline(1 / len(EMOTIONS), color="#888", lw=0.8, ls="--")
    b.set_xlim(0, max(0.3, float(np.nanmax(p_mean)) * 1.3 if np.isfinite(p_mean).any() else 1))
    b.set_title("mean probability (p_<emotion>), dashed: 1/8", fontsize=10)
    b.spines[["top", "right"]].set_visible(False)
    return data_uri(fig)


def over_time(frame: pd.DataFrame, unit: str) -> str:
    """Recordings per period (or group), the share of each dominant emotion, the mean probabilities."""
    labels = [str(i) for i in frame.index]
    x = np.arange(len(labels))
    emo = [e for e in EMOTIONS if e in frame.columns]
    n = frame["n"].to_numpy(float)
    share = frame[emo].to_numpy(float) / np.where(n > 0, n, np.nan)[:, None]
    rotate = max((len(s) for s in labels), default=0) > 4
    fig = figure(10.5, 6.2, left=0.7, bottom=0.95 if rotate else 0.5, right=0.1, top=0.1, hspace=0.12)
    ax_n, ax_s, ax_p = fig.subplots(3, 1, sharex=True, height_ratios=[1, 2, 2])
    ax_n.bar(x, np.nan_to_num(n), color="#607d8b", width=0.85)
    ax_n.set_ylabel("recordings", fontsize=8)
    if len(x) <= 40:
        bottom = np.zeros(len(x))
        for j, e in enumerate(emo):
            ax_s.bar(x, np.nan_to_num(share[:, j]), bottom=bottom, color=COLORS[e], width=0.85, label=e)
            bottom += np.nan_to_num(share[:, j])
    else:  # one stacked area in blocks: hundreds of bars x 8 emotions would take seconds to draw
        ax_s.stackplot(x, np.nan_to_num(share).T, colors=[COLORS[e] for e in emo], step="mid", lw=0)
    ax_s.set_ylim(0, 1)
    ax_s.set_xlim(-0.6, len(x) - 0.4)
    ax_s.set_ylabel("share, dominant", fontsize=8)
    for e in EMOTIONS:
        ax_p.plot(x, frame[f"mean_p_{e}"].to_numpy(float), color=COLORS[e], marker="o" if len(x) < 40 else None, ms=3, lw=1.4, label=e)
    ax_p.set_ylabel("mean p_<emotion>", fontsize=8)
    ax_p.set_ylim(bottom=0)
    step = max(1, math.ceil(len(x) / 24))
    ax_p.set_xticks(x[::step], labels[::step], rotation=45 if rotate else 0, ha="right" if rotate else "center", fontsize=8)
    ax_p.set_xlabel(unit, fontsize=9)
    for ax in (ax_n, ax_s, ax_p):
        ax.spines[["top", "right"]].set_visible(False)
        ax.tick_params(labelsize=8)
    return data_uri(fig)


def confidence(hist: np.ndarray, mean: float, n_classes: int, card_accuracy: float | None) -> str:
    """Histogram of the recordings' confidence, with chance, its mean and the model card's accuracy marked."""
    fig = figure(6.2, 3.2, left=0.6, bottom=0.55, top=0.15)
    ax = fig.subplots()
    edges = np.linspace(0, 1, CONFIDENCE_BINS + 1)
    ax.bar(edges[:-1], hist, width=np.diff(edges), align="edge", color="#5c6bc0", edgecolor="white", lw=0.5)
    ax.axvline(1 / n_classes, color="#888", ls="--", lw=0.9, label=f"chance (1/{n_classes})")
    if np.isfinite(mean):
        ax.axvline(mean, color="#e53935", lw=1.2, label=f"mean here {mean:.2f}")
    if card_accuracy is not None:
        ax.axvline(card_accuracy, color="#2e7d32", lw=1.2, ls=":", label=f"card accuracy {card_accuracy:.2f}")
    ax.set_xlim(0, 1)
    ax.set_xlabel("confidence (mean probability of the dominant emotion over speech windows)", fontsize=8)
    ax.set_ylabel("recordings", fontsize=8)
    ax.tick_params(labelsize=8)
    ax.legend(fontsize=8, frameon=False)
    ax.spines[["top", "right"]].set_visible(False)
    return data_uri(fig)


def reliability(bins: list[dict[str, float]]) -> str:
    """The model card's reliability curve (accuracy against confidence, per bin)."""
    fig = figure(3.4, 3.2, left=0.55, bottom=0.5)
    ax = fig.subplots()
    conf = [b["confidence"] for b in bins]
    acc = [b["accuracy"] for b in bins]
    ax.plot([0, 1], [0, 1], color="#888", ls="--", lw=0.8)
    ax.plot(conf, acc, marker="o", color="#2e7d32")
    ax.set_xlim(0, 1)
    ax.set_ylim(0, 1)
    ax.set_xlabel("confidence", fontsize=8)
    ax.set_ylabel("accuracy", fontsize=8)
    ax.set_title("model card: reliability", fontsize=9)
    ax.tick_params(labelsize=8)
    return data_uri(fig)


def timeline(seg: pd.DataFrame) -> str:
    """Each window's probabilities stacked over [its start, the next window's start) (the last to its end), so the
    bands tile the recording; silent windows are grey and empty. Long recordings are averaged over blocks of windows."""
    seg = seg.sort_values("start_s")
    p = seg[P_COLS].to_numpy(float, copy=True)
    speech = seg["is_speech"].fillna(True).to_numpy(bool)
    start, last_end = seg["start_s"].to_numpy(float), float(seg["end_s"].max())
    p[~speech] = 0.0  # a silent window says nothing; its probabilities are left out of the verdict too
    if len(p) > MAX_TIMELINE_POINTS:  # the picture stays readable and small
        firsts = np.arange(0, len(p), math.ceil(len(p) / MAX_TIMELINE_POINTS))
        sizes = np.diff(np.append(firsts, len(p)))
        p = np.add.reduceat(p, firsts, axis=0) / sizes[:, None]
        speech = np.add.reduceat(speech.astype(float), firsts) / sizes >= 0.5
        start = start[firsts]
    edges = np.append(start, max(last_end, start[-1] + 1e-3))
    minutes = edges[-1] > 300
    scale = 60.0 if minutes else 1.0
    fig = figure(12, 1.6, left=0.5, bottom=0.42, right=0.1, top=0.1)
    ax = fig.subplots()
    ax.stackplot(edges / scale, np.vstack([p, p[-1:]]).T, colors=[COLORS[e] for e in EMOTIONS], lw=0, step="post")
    for lo, hi, sp in zip(edges[:-1], edges[1:], speech):
        if not sp:
            ax.axvspan(lo / scale, hi / scale, color="#eeeeee", zorder=0, lw=0)
    ax.set_ylim(0, 1)
    ax.set_xlim(0, edges[-1] / scale)
    ax.set_ylabel("p", fontsize=8)
    ax.set_xlabel("minutes" if minutes else "seconds", fontsize=8)
    ax.tick_params(labelsize=8)
    ax.spines[["top", "right"]].set_visible(False)
    return data_uri(fig, dpi=80)


def legend() -> list[dict[str, str]]:
    """The page's colour key."""
    return [{"name": e, "color": COLORS[e]} for e in EMOTIONS]
