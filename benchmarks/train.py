"""Speaker-fold cross-validation of model configurations on shards; prints per-fold and mean ± sd figures.

    python benchmarks/train.py features/ravdess --model frames --model seed [--epochs 20] [--folds 1,2,3,4,5,6]

Issue "train and evaluate": the seed's CNN in both input layouts on the seed features, over the 6 EmoBox actor
folds of RAVDESS (validation actors come out of each fold's training actors; test actors are never seen).
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

import numpy as np  # noqa: E402

from ser_batch.evaluate import summary_table  # noqa: E402
from ser_batch.measures import expected_calibration_error, metrics  # noqa: E402
from ser_batch.shards import write_json_atomic  # noqa: E402
from ser_batch.train import TrainSettings, train  # noqa: E402


def run(configs: dict[str, tuple[list[str], TrainSettings]], folds: list[int] | None, workers: int | None, out: Path | None = None, members: int = 1) -> dict[str, list]:
    """Cross-validate each named configuration; print its table as soon as it is done.

    ``members`` > 1 trains that many models per fold (seeds seed, seed+1, ...: other initialisations and other
    validation actors) and also reports the ensemble of the first 3, 4, ... of them (averaged test probabilities).
    Each member's fold results go to ``out/NAME[/seed-S]/folds.json``; a rerun with the same settings reuses them.
    """
    results = {}
    root = out or Path(tempfile.mkdtemp(prefix="ser-cv-"))
    for name, (dirs, settings) in configs.items():
        member_folds = []
        for i in range(members):
            member = dataclasses.replace(settings, seed=settings.seed + i)
            where = root / name / f"seed-{member.seed}" if members > 1 else root / name
            done = where / "folds.json"
            key = {"dirs": dirs, "settings": member.to_dict(), "folds": folds}
            saved = json.loads(done.read_text()) if done.is_file() else {}
            wall = None  # reused
            if saved.get("key") != key:
                t0 = time.perf_counter()
                saved = {"key": key, "folds": train(dirs, where, protocol="cv", settings=member, workers=workers, folds=folds)["folds"]}
                write_json_atomic(saved, done)
                wall = time.perf_counter() - t0
            member_folds.append(saved["folds"])
            _print(name if members == 1 else f"{name} (seed {member.seed})", dirs, settings.model, wall, saved["folds"])
            if i >= 2:
                _print(f"{name}, ensemble of {i + 1}", dirs, settings.model, None, ensemble(member_folds))
        results[name] = member_folds
    return results


def ensemble(member_folds: list[list[dict]]) -> list[dict]:
    """Per fold, the metrics of the members' averaged test probabilities (members share each fold's test rows)."""
    rows = []
    for folds in zip(*member_folds, strict=True):
        preds = [f["test_predictions"] for f in folds]
        y = np.asarray(preds[0]["y"])
        assert all(p["y"] == preds[0]["y"] for p in preds), "members disagree on the test rows"
        proba = np.mean([np.asarray(p["proba"]) for p in preds], axis=0)
        m = metrics(y, proba.argmax(axis=1), folds[0]["classes"])
        m.update(fold=folds[0]["fold"], test_speakers=folds[0]["test_speakers"], seconds_per_epoch=sum(f["seconds_per_epoch"] for f in folds))
        m["ece"] = expected_calibration_error(proba, y)
        rows.append(m)
    return rows


def _print(name: str, dirs: list[str], model: str, wall: float | None, rows: list[dict]) -> None:
    took = f"; {wall / 60:.1f} min wall" if wall is not None else ""
    print(f"\n## {name}  ({', '.join(dirs)}; {model}{took})\n")
    print(summary_table(rows))
    mean = {k: np.mean([r[k] for r in rows]) for k in ("uar", "accuracy", "macro_f1", "ece")}
    print(f"\nUAR {mean['uar']:.3f} ± {np.std([r['uar'] for r in rows]):.3f}, accuracy {mean['accuracy']:.3f}, "
          f"macro F1 {mean['macro_f1']:.3f}, ECE {mean['ece']:.3f}", flush=True)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("features", nargs="+", help="shard folders (made by ser-batch extract)")
    ap.add_argument("--model", action="append", help="frames, seed, attn, pool, linear (repeatable)")
    ap.add_argument("--epochs", type=int, default=20)
    ap.add_argument("--folds", default="1,2,3,4,5,6")
    ap.add_argument("--workers", type=int, default=None)
    ap.add_argument("--out", type=Path, default=None)
    args = ap.parse_args()
    folds = [int(f) for f in args.folds.split(",")]
    configs = {m: (args.features, TrainSettings(model=m, epochs=args.epochs)) for m in args.model or ["frames", "seed"]}
    run(configs, folds, args.workers, args.out)


if __name__ == "__main__":
    main()
