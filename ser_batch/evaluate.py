"""The report (figures from ``measures``, pictures from ``plots``); ``evaluate`` judges a model directory on shards, never on its own speakers.

Headline metric: unweighted average recall (UAR, the mean of per-class recalls), the field's figure for
unbalanced classes; accuracy, macro and weighted F1, per-class recall and the confusion matrix come with it.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from ser_batch import modeldir, plots, shards
from ser_batch.errors import ConfigError
from ser_batch.features import FeatureSettings
from ser_batch.measures import expected_calibration_error, metrics, per_recording
from ser_batch.shards import write_json_atomic
from ser_batch.speakers import normalise_rows


def write_report(out: Path, m: dict[str, Any], title: str, protocol_note: str, extra: str = "") -> None:
    """metrics.json, confusion.png and a short report.md in ``out``."""
    out.mkdir(parents=True, exist_ok=True)
    write_json_atomic(m, out / "metrics.json")
    plots.confusion(m["confusion"], m["classes"], out / "confusion.png", f"{title}\nUAR {m['uar']:.3f}, accuracy {m['accuracy']:.3f}")
    lines = [
        f"# {title}",
        "",
        f"Protocol: {protocol_note}",
        "",
        "| metric | value |",
        "|---|---|",
        f"| rows | {m['n']} |",
        f"| unweighted average recall (UAR) | {m['uar']:.3f} |",
        f"| accuracy | {m['accuracy']:.3f} |",
        f"| macro F1 | {m['macro_f1']:.3f} |",
        f"| weighted F1 | {m['weighted_f1']:.3f} |",
    ]
    if "ece" in m:
        lines.append(f"| expected calibration error | {m['ece']:.3f} |")
    lines += ["", "| class | recall | precision | F1 | support |", "|---|---|---|---|---|"]
    for c, v in m["per_class"].items():
        lines.append(f"| {c} | {v['recall']:.3f} | {v['precision']:.3f} | {v['f1']:.3f} | {v['support']} |")
    lines += ["", "![confusion matrix](confusion.png)", ""]
    if (out / "curves.png").is_file():
        lines += ["![training curves](curves.png)", ""]
    if extra:
        lines += [extra, ""]
    (out / "report.md").write_text("\n".join(lines))


def evaluate(
    model_dir: str | os.PathLike[str], feature_dirs: Sequence[str | os.PathLike[str]], out: str | os.PathLike[str] | None = None
) -> dict[str, Any]:
    """Judge a model on shards: original rows only, only speakers the model never trained or validated on,
    only labels both share (so another corpus can be a cross-corpus test). Writes the report to ``out``."""
    md = modeldir.load(model_dir)
    split = md.config["split"]
    seen = set(split.get("train_speakers", [])) | set(split.get("val_speakers", []))
    metas, feats = [], []
    for d in feature_dirs:
        md.check_features(FeatureSettings.from_dict(shards.read_manifest(Path(d))["settings"]["features"]), str(d))
        for meta, x in shards.iter_batches(Path(d)):
            keep = (meta["augmentation"] == "none") & ~meta["speaker"].isin(seen)
            metas.append(meta[keep])
            feats.append(x[keep.to_numpy()])
    meta = pd.concat(metas, ignore_index=True)
    x = np.concatenate(feats) if feats else np.zeros((0, *md.features.shape), np.float32)
    md.leave_out_padding(x, meta["pad_s"].to_numpy())
    if md.speaker_norm:  # each speaker's (corpus's) own statistics over all their recordings (no labels), as train and score do
        normalise_rows(x, meta, [str(d) for d in feature_dirs], md.features, md.norm_by, md.scaler.prior)
    shared_rows = meta["label"].isin(md.classes).to_numpy()
    meta, x = meta[shared_rows].reset_index(drop=True), x[shared_rows]
    if len(meta) == 0:
        raise ConfigError("no rows left to evaluate: every speaker was seen in training, or no label is shared with the model")
    shared = [c for c in md.classes if c in set(meta["label"])]
    idx = [md.classes.index(c) for c in shared]
    proba = md.predict_proba(x)[:, idx]
    proba /= proba.sum(axis=1, keepdims=True)
    proba, y_true = per_recording(proba, meta["label"].map({c: i for i, c in enumerate(shared)}).to_numpy(), meta["recording_id"].to_numpy())
    m = metrics(y_true, proba.argmax(axis=1), shared)
    m["ece"] = expected_calibration_error(proba, y_true)
    m["speakers"] = sorted(meta["speaker"].unique().tolist())
    m["data"] = [str(d) for d in feature_dirs]
    m["protocol"] = "evaluate: unseen speakers of the given shards, original rows only, shared labels only"
    if out is not None:
        note = (
            f"{len(m['speakers'])} speakers never seen in training or validation; original recordings only; "
            f"labels restricted to those shared with the model ({', '.join(shared)})."
        )
        write_report(Path(out), m, f"{md.name} on {', '.join(Path(d).name for d in feature_dirs)}", note)
    return m


def summary_table(rows: list[dict[str, Any]]) -> str:
    """Markdown table of per-fold figures with mean ± standard deviation."""
    lines = ["| fold | test speakers | accuracy | macro F1 | UAR | s/epoch |", "|---|---|---|---|---|---|"]
    for r in rows:
        lines.append(f"| {r['fold']} | {len(r['test_speakers'])} | {r['accuracy']:.3f} | {r['macro_f1']:.3f} | {r['uar']:.3f} | {r['seconds_per_epoch']:.1f} |")
    a = {k: np.array([r[k] for r in rows]) for k in ("accuracy", "macro_f1", "uar", "seconds_per_epoch")}
    lines.append(
        f"| **mean ± sd** | | {a['accuracy'].mean():.3f} ± {a['accuracy'].std():.3f} | {a['macro_f1'].mean():.3f} ± {a['macro_f1'].std():.3f} "
        f"| {a['uar'].mean():.3f} ± {a['uar'].std():.3f} | {a['seconds_per_epoch'].mean():.1f} |"
    )
    return "\n".join(lines)
