"""Speaker-fold cross-validation of model configurations on shards; prints per-fold and mean ± sd figures.

    python benchmarks/train.py features/ravdess --model frames --model seed [--epochs 20] [--folds 1,2,3,4,5,6]

Issue "train and evaluate": the seed's CNN in both input layouts on the seed features, over the 6 EmoBox actor
folds of RAVDESS (validation actors come out of each fold's training actors; test actors are never seen).
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from ser_batch.evaluate import summary_table  # noqa: E402
from ser_batch.train import TrainSettings, train  # noqa: E402


def run(configs: dict[str, tuple[list[str], TrainSettings]], folds: list[int] | None, workers: int | None, out: Path | None = None) -> dict[str, dict]:
    """Cross-validate each named configuration; print its table as soon as it is done."""
    results = {}
    root = out or Path(tempfile.mkdtemp(prefix="ser-cv-"))
    for name, (dirs, settings) in configs.items():
        t0 = time.perf_counter()
        report = train(dirs, root / name, protocol="cv", settings=settings, workers=workers, folds=folds)
        wall = time.perf_counter() - t0
        results[name] = report
        s = report["summary"]
        print(f"\n## {name}  ({', '.join(dirs)}; {settings.model}; {wall / 60:.1f} min wall)\n")
        print(summary_table(report["folds"]))
        print(f"\nUAR {s['uar']['mean']:.3f} ± {s['uar']['sd']:.3f}, accuracy {s['accuracy']['mean']:.3f}, "
              f"macro F1 {s['macro_f1']['mean']:.3f}, ECE {s['ece']['mean']:.3f}", flush=True)
    return results


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("features", nargs="+", help="shard folders (made by ser-batch extract)")
    ap.add_argument("--model", action="append", help="frames, seed, attn, cnn2d (repeatable)")
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
