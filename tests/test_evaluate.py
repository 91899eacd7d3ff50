"""Tests of ser_batch.evaluate: metrics and calibration against hand-computed cases, plots, report, summary table."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from ser_batch import evaluate as ev
from ser_batch import measures, plots
from ser_batch.errors import ConfigError

PNG = b"\x89PNG\r\n\x1a\n"
CLASSES = ["neutral", "happy", "angry"]


def test_metrics_hand_case() -> None:
    # class 0: TP 3, FN 1 (-> 1), FP 1 (from 2): P 3/4, R 3/4, F1 3/4
    # class 1: TP 2, FN 0, FP 1: P 2/3, R 1, F1 0.8
    # class 2: TP 0, FN 1, FP 0: P 0, R 0, F1 0
    y_true = [0, 0, 0, 0, 1, 1, 2]
    y_pred = [0, 0, 0, 1, 1, 1, 0]
    m = measures.metrics(y_true, y_pred, CLASSES)
    assert m["n"] == 7
    assert m["accuracy"] == pytest.approx(5 / 7)
    assert m["uar"] == pytest.approx((0.75 + 1.0 + 0.0) / 3)
    assert m["macro_f1"] == pytest.approx((0.75 + 0.8 + 0.0) / 3)
    assert m["weighted_f1"] == pytest.approx((4 * 0.75 + 2 * 0.8 + 1 * 0.0) / 7)
    # rows are the true class, columns the prediction
    assert m["confusion"] == [[3, 1, 0], [0, 2, 0], [1, 0, 0]]
    pc = m["per_class"]
    assert pc["neutral"] == pytest.approx({"precision": 0.75, "recall": 0.75, "f1": 0.75, "support": 4})
    assert pc["happy"] == pytest.approx({"precision": 2 / 3, "recall": 1.0, "f1": 0.8, "support": 2})
    assert pc["angry"] == pytest.approx({"precision": 0.0, "recall": 0.0, "f1": 0.0, "support": 1})
    assert m["classes"] == CLASSES
    json.dumps(m)  # plain JSON types only


def test_confusion_orientation_is_rows_true() -> None:
    # every true 'angry' is predicted 'neutral': the count sits in row angry, column neutral
    m = measures.metrics([2, 2, 2], [0, 0, 0], CLASSES)
    assert m["confusion"][2][0] == 3
    assert m["confusion"][0][2] == 0
    assert m["accuracy"] == 0.0


def test_uar_differs_from_accuracy_on_unbalanced_classes() -> None:
    # 9 of class 0 all right, 1 of class 1 wrong: accuracy 0.9, UAR 0.5
    m = measures.metrics([0] * 9 + [1], [0] * 10, CLASSES[:2])
    assert m["accuracy"] == pytest.approx(0.9)
    assert m["uar"] == pytest.approx(0.5)


def test_absent_classes_excluded_from_uar_and_macro_f1() -> None:
    # class 2 never occurs in y_true (but is predicted once): UAR and macro F1 average over classes 0 and 1 only
    m = measures.metrics([0, 0, 1, 1], [0, 2, 1, 1], CLASSES)
    assert m["uar"] == pytest.approx((0.5 + 1.0) / 2)
    assert m["macro_f1"] == pytest.approx((2 / 3 + 1.0) / 2)
    assert m["per_class"]["angry"]["support"] == 0
    assert m["confusion"][0] == [1, 0, 1]


def test_metrics_refuse_empty_input() -> None:
    with pytest.raises(ConfigError, match="no rows"):
        measures.metrics([], [], CLASSES)


def _proba(conf: float, predicted: int, n_classes: int = 3) -> list[float]:
    rest = (1 - conf) / (n_classes - 1)
    return [conf if i == predicted else rest for i in range(n_classes)]


def test_ece_perfectly_calibrated_is_zero() -> None:
    # 10 rows at confidence 0.6 with 6 right, 10 rows at 0.9 with 9 right
    proba = np.array([_proba(0.6, 0)] * 10 + [_proba(0.9, 1)] * 10)
    y = np.array([0] * 6 + [1] * 4 + [1] * 9 + [0])
    assert measures.expected_calibration_error(proba, y) == pytest.approx(0.0, abs=1e-9)


def test_ece_overconfident_known_value() -> None:
    # all at confidence 0.9, half right: gap 0.4
    proba = np.array([_proba(0.9, 0)] * 10)
    y = np.array([0] * 5 + [1] * 5)
    assert measures.expected_calibration_error(proba, y) == pytest.approx(0.4)


def test_ece_weights_bins_by_support() -> None:
    # 10 rows at 0.95 with 5 right (gap 0.45) + 30 rows at 0.6 with 18 right (gap 0): ECE = 10/40 * 0.45
    proba = np.array([_proba(0.95, 0)] * 10 + [_proba(0.6, 2)] * 30)
    y = np.array([0] * 5 + [1] * 5 + [2] * 18 + [0] * 12)
    assert measures.expected_calibration_error(proba, y) == pytest.approx(0.25 * 0.45)


def test_ece_always_right_at_full_confidence_is_zero_and_wrong_is_one() -> None:
    proba = np.eye(3)[[0, 1, 2, 0]]
    assert measures.expected_calibration_error(proba, np.array([0, 1, 2, 0])) == pytest.approx(0.0)
    assert measures.expected_calibration_error(proba, np.array([1, 2, 0, 1])) == pytest.approx(1.0)


def test_plots_write_png(tmp_path: Path) -> None:
    plots.confusion([[3, 1, 0], [0, 2, 0], [1, 0, 0]], CLASSES, tmp_path / "cm.png", "title")
    history = {"loss": [1.0, 0.5], "val_loss": [1.2, 0.8], "accuracy": [0.4, 0.7], "val_accuracy": [0.3, 0.6]}
    plots.curves(history, tmp_path / "curves.png")
    for name in ("cm.png", "curves.png"):
        data = (tmp_path / name).read_bytes()
        assert data.startswith(PNG) and len(data) > 2000


def test_write_report(tmp_path: Path) -> None:
    m = measures.metrics([0, 0, 1, 2], [0, 1, 1, 2], CLASSES)
    m["ece"] = 0.123
    ev.write_report(tmp_path, m, "tiny model", "holdout, fold 1 — speaker-independent")
    assert json.loads((tmp_path / "metrics.json").read_text())["accuracy"] == pytest.approx(0.75)
    assert (tmp_path / "confusion.png").read_bytes().startswith(PNG)
    report = (tmp_path / "report.md").read_text()
    assert "# tiny model" in report
    assert "speaker-independent" in report
    assert f"| unweighted average recall (UAR) | {m['uar']:.3f} |" in report
    assert "| expected calibration error | 0.123 |" in report
    assert "| happy | 1.000 | 0.500 | 0.667 | 1 |" in report


def test_summary_table_mean_and_sd() -> None:
    rows = [
        {"fold": 1, "test_speakers": ["a", "b"], "accuracy": 0.5, "macro_f1": 0.4, "uar": 0.45, "seconds_per_epoch": 2.0},
        {"fold": 2, "test_speakers": ["c"], "accuracy": 0.7, "macro_f1": 0.6, "uar": 0.65, "seconds_per_epoch": 4.0},
    ]
    lines = ev.summary_table(rows).splitlines()
    assert len(lines) == 2 + len(rows) + 1
    assert lines[2].startswith("| 1 | 2 | 0.500 |")
    last = lines[-1]
    assert "mean ± sd" in last
    assert "0.600 ± 0.100" in last  # accuracy
    assert "0.500 ± 0.100" in last  # macro F1
    assert "0.550 ± 0.100" in last  # UAR
    assert "3.0 |" in last
