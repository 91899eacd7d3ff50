"""Figures from class probabilities, pure functions: metrics, windows judged per recording as ``score`` judges
them, and calibration (expected calibration error, temperature scaling).

Headline metric: unweighted average recall (UAR, the mean of per-class recalls), the field's figure for
unbalanced classes; accuracy, macro and weighted F1, per-class recall and the confusion matrix come with it.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from ser_batch.errors import ConfigError


def metrics(y_true: Sequence[int], y_pred: Sequence[int], classes: Sequence[str]) -> dict[str, Any]:
    """Accuracy, UAR, macro/weighted F1, per-class figures and the confusion matrix (rows true, cols predicted)."""
    from sklearn.metrics import confusion_matrix, f1_score, precision_recall_fscore_support

    labels = list(range(len(classes)))
    yt, yp = np.asarray(y_true), np.asarray(y_pred)
    if yt.size == 0:
        raise ConfigError("no rows to evaluate")
    cm = confusion_matrix(yt, yp, labels=labels)
    prec, rec, f1, support = precision_recall_fscore_support(yt, yp, labels=labels, zero_division=0)
    present = support > 0
    return {
        "n": int(yt.size),
        "accuracy": float((yt == yp).mean()),
        "uar": float(rec[present].mean()),
        "macro_f1": float(f1_score(yt, yp, labels=np.flatnonzero(present).tolist(), average="macro", zero_division=0)),
        "weighted_f1": float(f1_score(yt, yp, labels=labels, average="weighted", zero_division=0)),
        "per_class": {
            c: {"precision": float(prec[i]), "recall": float(rec[i]), "f1": float(f1[i]), "support": int(support[i])}
            for i, c in enumerate(classes)
        },
        "classes": list(classes),
        "confusion": cm.tolist(),
    }


def per_recording(proba: np.ndarray, y: np.ndarray, recording: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Window probabilities averaged per recording, as ``score`` judges a recording: (recordings, classes), labels."""
    import pandas as pd  # here, not at import: modeldir (every worker, the CLI) needs only apply_temperature

    codes, uniq = pd.factorize(recording)
    if len(uniq) == len(recording):
        return proba, y
    sums = np.zeros((len(uniq), proba.shape[1]))
    np.add.at(sums, codes, proba)
    first = np.unique(codes, return_index=True)[1]
    return sums / np.bincount(codes)[:, None], y[first]


def expected_calibration_error(proba: np.ndarray, y_true: np.ndarray, bins: int = 15) -> float:
    """ECE: support-weighted gap between confidence and accuracy over equal-width confidence bins."""
    conf = proba.max(axis=1)
    correct = proba.argmax(axis=1) == y_true
    edges = np.linspace(0, 1, bins + 1)
    idx = np.clip(np.digitize(conf, edges[1:-1]), 0, bins - 1)
    ece = 0.0
    for b in range(bins):
        sel = idx == b
        if sel.any():
            ece += sel.mean() * abs(correct[sel].mean() - conf[sel].mean())
    return float(ece)


def apply_temperature(proba: np.ndarray, temperature: float) -> np.ndarray:
    """Soften (T > 1) or sharpen (T < 1) softmax outputs: softmax(log p / T)."""
    if temperature == 1.0:
        return proba
    logp = np.log(np.clip(np.asarray(proba, np.float64), 1e-12, 1.0)) / temperature
    p = np.exp(logp - logp.max(axis=1, keepdims=True))
    return p / p.sum(axis=1, keepdims=True)


def fit_temperature(proba: np.ndarray, y_true: np.ndarray, recording: np.ndarray | None = None) -> float:
    """The temperature minimising negative log-likelihood on held-out rows (never the rows it is judged on).

    With ``recording`` the likelihood is that of each recording's mean over its temperature-scaled windows, the
    probabilities ``score`` reports for a recording; without it, that of each row.
    """
    from scipy.optimize import minimize_scalar

    def nll(log_t: float) -> float:
        p, y = apply_temperature(proba, float(np.exp(log_t))), np.asarray(y_true)
        if recording is not None:
            p, y = per_recording(p, y, recording)
        return float(-np.log(np.clip(p[np.arange(len(y)), y], 1e-12, 1.0)).mean())

    res = minimize_scalar(nll, bounds=(np.log(0.05), np.log(20.0)), method="bounded")
    return float(np.exp(res.x))


def restrict(proba: np.ndarray, y: np.ndarray, classes: Sequence[str], keep: Sequence[str]) -> tuple[np.ndarray, np.ndarray, list[str]]:
    """Rows whose label is in ``keep``, judged among ``keep``'s classes only: the probabilities of those classes
    renormalised, labels re-indexed. What a model scores on a corpus with fewer labels (or a 4-class figure).
    Returns (proba, y, kept classes in the model's order)."""
    kept = [c for c in classes if c in set(keep)]
    idx = [list(classes).index(c) for c in kept]
    new_index = {old: i for i, old in enumerate(idx)}
    rows = np.isin(np.asarray(y), idx)
    p = np.asarray(proba, np.float64)[rows][:, idx]
    p = p / np.maximum(p.sum(axis=1, keepdims=True), 1e-12)
    return p, np.array([new_index[int(v)] for v in np.asarray(y)[rows]], int), kept
