"""What expected calibration error a perfectly calibrated model shows on n recordings: the floor under any ECE.

    python benchmarks/ece_floor.py [--n 240 1440] [--trials 300]

Each simulated recording gets a top-class confidence c (uniform in 0.3-0.95, about what `ser-default` gives) and
is right with probability c exactly, so the true calibration error is 0; what `measures.expected_calibration_error`
(15 bins) reports anyway is sampling noise. One RAVDESS fold has 240 test recordings, all 6 folds 1440.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import numpy as np  # noqa: E402

from ser_batch.measures import expected_calibration_error  # noqa: E402


def floor(n: int, trials: int, classes: int = 8, seed: int = 0) -> np.ndarray:
    """ECE of ``trials`` perfectly calibrated samples of ``n`` recordings."""
    rng = np.random.default_rng(seed)
    out = []
    for _ in range(trials):
        c = rng.uniform(0.3, 0.95, n)
        top = np.where(rng.random(n) < c, 0, 1)  # the truth is class 0; right with probability c
        p = np.repeat(((1 - c) / (classes - 1))[:, None], classes, axis=1)
        p[np.arange(n), top] = c
        out.append(expected_calibration_error(p, np.zeros(n, int)))
    return np.asarray(out)


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--n", type=int, nargs="+", default=[240, 1440])
    ap.add_argument("--trials", type=int, default=300)
    args = ap.parse_args(argv)
    for n in args.n:
        e = floor(n, args.trials)
        print(f"{n} recordings: ECE of a perfectly calibrated model {e.mean():.3f} (10-90 %: {np.percentile(e, 10):.3f}-{np.percentile(e, 90):.3f})")


if __name__ == "__main__":
    main()
