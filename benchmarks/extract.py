"""Time `ser-batch extract` (with augmentation) against the seed's plain sequential loop, in one run.

    python benchmarks/extract.py [--corpus ../shared/data/ravdess-speech] [--limit N] [--workers N] [--repeat 3]

The seed loop: librosa.load at 22.05 kHz (offset 0.6 s, 2.5 s), ZCR + RMS + MFCC (frame 2048, hop 512), and the
same rows per file as ser-batch (original, noise, pitch shift, time stretch). Both run --repeat times, alternately;
prints each run, files/s from the median times and the median ratio, and checks both made the same number of rows.
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path

import librosa
import numpy as np

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))


def seed_features(data: np.ndarray, sr: int) -> np.ndarray:
    zcr = np.squeeze(librosa.feature.zero_crossing_rate(data, frame_length=2048, hop_length=512))
    rms = np.squeeze(librosa.feature.rms(y=data, frame_length=2048, hop_length=512))
    mfcc = np.ravel(librosa.feature.mfcc(y=data, sr=sr).T)
    return np.hstack((zcr, rms, mfcc))


def seed_loop(files: list[str]) -> int:
    """The origin notebook's get_features over every file, one after another."""
    rng = np.random.default_rng(0)
    rows = 0
    for f in files:
        data, sr = librosa.load(f, duration=2.5, offset=0.6)
        out = [seed_features(data, sr)]
        noise_amp = 0.035 * rng.uniform() * np.amax(data)
        out.append(seed_features(data + noise_amp * rng.normal(size=data.shape[0]), sr))
        out.append(seed_features(librosa.effects.pitch_shift(data, sr=sr, n_steps=0.7), sr))
        out.append(seed_features(librosa.effects.time_stretch(data, rate=0.8), sr))
        rows += len(out)
    return rows


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--corpus", default=str(REPO.parent / "shared" / "data" / "ravdess-speech"))
    ap.add_argument("--limit", type=int, default=0, help="only the first N files (0: all)")
    ap.add_argument("--workers", type=int, default=None)
    ap.add_argument("--repeat", type=int, default=3, help="runs of both (medians reported)")
    args = ap.parse_args()

    from ser_batch import corpora
    from ser_batch.extract import extract

    entries, _ = corpora.discover([Path(args.corpus)])
    files = [str(e.path) for e in entries][: args.limit or None]
    tmp = Path(tempfile.mkdtemp(prefix="ser-bench-"))
    try:
        src = tmp / "corpus"
        for f in files:  # same files for both, via links
            dst = src / Path(f).parent.name / Path(f).name
            dst.parent.mkdir(parents=True, exist_ok=True)
            os.symlink(f, dst)
        runs = []
        for i in range(args.repeat):  # alternate, so slow spells of a shared machine hit both alike
            t0 = time.perf_counter()
            result = extract([src], tmp / f"out-{i}", workers=args.workers, progress=False)
            t_ours = time.perf_counter() - t0
            t0 = time.perf_counter()
            seed_rows = seed_loop(files)
            t_seed = time.perf_counter() - t0
            runs.append((t_seed, t_ours))
            print(f"run {i + 1}: seed loop {t_seed:6.1f} s, ser-batch {t_ours:6.1f} s, {t_seed / t_ours:.1f}x; same rows: {seed_rows == result.rows}", flush=True)
            if seed_rows != result.rows:
                sys.exit(1)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)

    n = len(files)
    t_seed, t_ours = (statistics.median(r[k] for r in runs) for k in (0, 1))
    ratios = [a / b for a, b in runs]
    print(f"files: {n}, cores: {os.cpu_count()}, runs: {len(runs)} (medians)")
    print(f"seed sequential loop : {seed_rows} rows in {t_seed:6.1f} s = {n / t_seed:6.1f} files/s")
    print(f"ser-batch extract    : {result.rows} rows in {t_ours:6.1f} s = {n / t_ours:6.1f} files/s (Dask start-up included)")
    print(f"speed-up: median {statistics.median(ratios):.1f}x (runs {min(ratios):.1f}x to {max(ratios):.1f}x)")

if __name__ == "__main__":
    main()
