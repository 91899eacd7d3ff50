"""What each training row teaches and how much it weighs, across corpora with different label sets.

A corpus teaches only the labels it has (``label_mask``): each row's loss is the cross-entropy of the model's
probabilities renormalised over the labels its corpus has (``ser_batch.corpora.CORPORA[corpus].labels``; an unknown
corpus or ``None``, the generic layout, allows all classes). That is the softmax with the logits of the other
classes set to -inf, the usual partial-label loss: a TESS clip (no ``calm``) never pushes ``calm`` down, and a
TurEV-DB clip (no ``neutral``) never pushes ``neutral`` down, while within its own labels it teaches as before. The
mask travels in the targets (-1 for a label the row's corpus lacks), the loss is only given at training time, and
the saved model is the same softmax over all classes. Each corpus gets a share of the training loss
(``corpus_balance``: equal, or growing with the square root of its rows), so TESS's 2800 clips of 2 speakers do not
outweigh RAVDESS's 24 actors; with class weights, classes are balanced within each corpus.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import numpy as np
import pandas as pd

from ser_batch.errors import ConfigError

CORPUS_BALANCE = ("equal", "sqrt", "none")


def label_masks(corpora: np.ndarray, y: np.ndarray, classes: Sequence[str], enabled: bool = True) -> np.ndarray:
    """(rows, classes) bool: the classes each row may teach, i.e. the labels its corpus has.

    From ``CORPORA[corpus].labels``; a corpus that is unknown here or declares ``None`` (generic folders and
    manifests: any label may be missing or present) allows every class. A row's own label is always allowed.
    ``enabled=False`` allows every class for every row (the plain cross-entropy).
    """
    from ser_batch.corpora import CORPORA

    allowed = np.ones((len(y), len(classes)), bool)
    if enabled:
        for name in pd.unique(corpora):
            corpus = CORPORA.get(str(name))
            if corpus is not None and corpus.labels is not None:
                allowed[corpora == name] = np.isin(list(classes), sorted(corpus.labels))
        known = y >= 0
        allowed[np.flatnonzero(known), y[known]] = True
    return allowed


def encode_targets(y: np.ndarray, allowed: np.ndarray) -> np.ndarray:
    """Targets the masked loss reads: one-hot over the allowed classes, -1 where the row's corpus lacks the class."""
    t = np.zeros(allowed.shape, np.float32)
    known = y >= 0
    t[np.flatnonzero(known), y[known]] = 1.0
    t[~allowed] = -1.0
    return t


def masked_crossentropy(label_smoothing: float = 0.0) -> Callable[[Any, Any], Any]:
    """Cross-entropy over each row's allowed classes (targets from ``encode_targets``; -1 marks a disallowed class).

    The model's probabilities are renormalised over the allowed classes: log p_i - log sum_allowed p_j, which is
    the log-softmax of the logits with the disallowed ones set to -inf, so a disallowed class's logit does not
    change the loss or its gradient. Label smoothing spreads its mass over the allowed classes only. Probabilities
    are clipped at Keras's epsilon as the built-in loss does; with every class allowed this is that loss.
    """
    import keras
    from keras import ops

    eps = keras.config.epsilon()

    def masked_categorical_crossentropy(y_true: Any, y_pred: Any) -> Any:
        allowed = ops.cast(ops.greater_equal(y_true, 0.0), y_pred.dtype)
        target = ops.maximum(y_true, 0.0)
        if label_smoothing:
            n = ops.maximum(ops.sum(allowed, axis=-1, keepdims=True), 1.0)
            target = target * (1.0 - label_smoothing) + allowed * (label_smoothing / n)
        p = ops.clip(y_pred, eps, 1.0)
        log_norm = ops.log(ops.sum(p * allowed, axis=-1, keepdims=True))
        return -ops.sum(target * allowed * (ops.log(p) - log_norm), axis=-1)

    return masked_categorical_crossentropy


def row_weights(y: np.ndarray, corpora: np.ndarray, n_classes: int, class_weights: bool = True, balance: str = "equal") -> np.ndarray:
    """Sample weights of training rows, mean 1 (the loss keeps its scale).

    ``balance``: ``equal`` gives every corpus the same total weight (a corpus is a domain: language, speakers,
    microphones; none should dominate because it has more clips), ``sqrt`` a total in proportion to the square root
    of its rows (a middle way), ``none`` leaves rows as they are. With ``class_weights`` each class present in a
    corpus gets an equal share of that corpus's total (classes balanced within each corpus); with ``none`` classes
    are balanced over all rows, as before corpora were balanced. One corpus: every choice gives the same weights,
    n / (classes x rows of the class).
    """
    if balance not in CORPUS_BALANCE:
        raise ConfigError(f"corpus_balance must be one of {', '.join(CORPUS_BALANCE)}, got {balance!r}")
    n = len(y)
    w = np.ones(n, np.float64)
    if n == 0:
        return w.astype(np.float32)
    if balance == "none":
        if class_weights:
            counts = np.bincount(y, minlength=n_classes)
            w = n / (n_classes * np.maximum(counts[y], 1))
    else:
        for name in pd.unique(corpora):
            rows = corpora == name
            total = 1.0 if balance == "equal" else float(np.sqrt(rows.sum()))
            if class_weights:
                counts = np.bincount(y[rows], minlength=n_classes)
                w[rows] = total / (np.count_nonzero(counts) * counts[y[rows]])
            else:
                w[rows] = total / rows.sum()
    return (w * n / w.sum()).astype(np.float32)
