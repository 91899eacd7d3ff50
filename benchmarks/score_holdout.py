"""What `ser-batch score` says about a model's own held-out test speakers: the figure a user of `score` gets.

    python benchmarks/score_holdout.py [--model models/ser-default] [--hop 1.25] [--speakers test|val]

The model card's figures come from the training windows (the corpus offset, e.g. 3 s from 0.5 s). `score` slides
windows over the whole recording instead and averages them, so its verdicts can differ; this scores every RAVDESS
recording of the model's test speakers (never heard in training) through `score` and prints both. Scoring
settings (``--hop``) are compared on ``--speakers val``, the validation actors, so the test actors choose nothing.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

import pandas as pd  # noqa: E402

from ser_batch import corpora  # noqa: E402
from ser_batch.measures import metrics  # noqa: E402
from ser_batch.score import ScoreSettings, score  # noqa: E402

DATA = REPO.parent / "shared" / "data" / "ravdess-speech"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--model", type=Path, default=REPO / "models" / "ser-default")
    ap.add_argument("--hop", type=float, default=ScoreSettings().hop_s)
    ap.add_argument("--workers", type=int, default=None)
    ap.add_argument("--speakers", choices=("test", "val"), default="test", help="the model's test or validation actors")
    args = ap.parse_args()
    config = json.loads((args.model / "config.json").read_text())
    actors = [int(s.split(":")[1]) for s in config["split"][f"{args.speakers}_speakers"] if s.startswith("ravdess:")]
    if not actors:
        sys.exit(f"{args.model} has no RAVDESS {args.speakers} actors (protocol {config['protocol']}): try --speakers val, or "
                 "score a fold's model (`ser-batch train ... --protocol holdout --fold 1` with the same settings)")
    files = sorted(f for a in actors for f in (DATA / f"Actor_{a:02d}").glob("*.flac"))
    classes = config["classes"]
    with tempfile.TemporaryDirectory() as tmp:
        t0 = time.perf_counter()
        score(files, Path(tmp) / "r.parquet", model=args.model, settings=ScoreSettings(hop_s=args.hop), workers=args.workers, progress=False)
        wall = time.perf_counter() - t0
        rep = pd.read_parquet(Path(tmp) / "r.parquet")
    truth = [classes.index(corpora.parse(Path(p)).label) for p in rep["path"]]
    pred = [classes.index(e) for e in rep["emotion"]]
    m = metrics(truth, pred, classes)
    print(f"{args.model.name}: {len(files)} recordings of {args.speakers} actors {actors}, scored in {wall:.1f} s (hop {args.hop} s)")
    print(f"  score      UAR {m['uar']:.3f}, accuracy {m['accuracy']:.3f}, macro F1 {m['macro_f1']:.3f}")
    if args.speakers == "test":
        card = json.loads((args.model / "metrics.json").read_text())
        print(f"  model card UAR {card['uar']:.3f}, accuracy {card['accuracy']:.3f}, macro F1 {card['macro_f1']:.3f} (training windows)")


if __name__ == "__main__":
    main()
