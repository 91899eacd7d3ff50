"""Is a corpus hard because its emotions are unclear, or because it voices them unlike the others? Pitch and loudness
per label, and each corpus judged by its own other speakers against the other corpora.

    python benchmarks/prosody.py --cache logs/probe-v5.npz [--prosody-cache logs/prosody.npz]

``--cache`` is ``benchmarks/probe.py``'s cache of recording vectors (mean and sd of each recording's encoder
frames; made by ``probe.py --features ... --cache``), which also lists the recordings. For the four labels' recordings
(angry, happy, neutral, sad) this script measures six prosodic figures with ser-batch's own DSP (``dsp.yin`` and
frame energies; no openSMILE): median F0 and its interquartile range in semitones over the loud frames, loudness
(mean and sd of frame energy in dB over the loud frames), the share of loud frames, and the duration. Every figure is
z-scored within its speaker (unlabelled: all of a speaker's recordings), so a table row says how a label moves a
speaker's voice away from that speaker's own average.

Printed: (1) per corpus and label, the mean speaker-z F0 and loudness; (2) per corpus, 4-class UAR of the probe's
logistic regression (``probe.uar``) trained (a) on the corpus's own other speakers (speaker-grouped 5-fold, 2 folds for a
corpus of 2 speakers; the folds' UARs averaged, weighted by their recordings) and (b) on every other corpus (corpora weighted equally), for the prosody figures and
for the encoder states (speaker z-scored). A diagnosis, not a figure of the product. Caution on (a): in corpora whose
emotions each have their own sentences (emotiontts-kor, ASED), the encoder states also carry the words, so "own
speakers" is an upper bound for them; prosody carries little of the words.
"""

from __future__ import annotations

import argparse
import sys
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(REPO / "benchmarks"))

import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402

from probe import FOUR, group_z, uar  # noqa: E402

SR = 16000
FRAME, HOP = 640, 160
"""40 ms frames every 10 ms: two periods of a 50 Hz voice."""
NAMES = ("F0 median (st)", "F0 IQR (st)", "loudness (dB)", "loudness sd (dB)", "loud share", "duration (s)")


def prosody(path: str) -> np.ndarray:
    """The six figures of ``NAMES`` for one file: frames within 25 dB of the file's loudest count as loud."""
    import soundfile as sf

    from ser_batch import audio, dsp

    y, sr = sf.read(path, dtype="float32", always_2d=True)
    y = audio.resample(audio.to_mono(y), sr, SR)
    frames = np.lib.stride_tricks.sliding_window_view(np.pad(y, FRAME // 2), FRAME)[::HOP]
    db = 10 * np.log10(np.mean(frames.astype(np.float64) ** 2, axis=-1) + 1e-10)
    loud = db > db.max() - 25
    f0 = dsp.yin(y, SR, 60.0, 500.0, FRAME, HOP)[: len(db)]
    st = 12 * np.log2(f0[loud[: len(f0)]] / 55.0)
    q25, q50, q75 = np.percentile(st, [25, 50, 75])
    return np.array([q50, q75 - q25, db[loud].mean(), db[loud].std(), loud.mean(), y.size / SR])


def grouped_folds(groups: np.ndarray, k: int = 5) -> list[np.ndarray]:
    """Test masks of ``k`` folds (at most one per group) holding whole groups, the groups dealt in sorted order."""
    uniq = np.unique(groups)
    k = min(k, len(uniq))
    return [np.isin(groups, uniq[i::k]) for i in range(k)]


def main(argv: list[str] | None = None) -> dict[str, dict[str, float]]:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--cache", type=Path, required=True, help="benchmarks/probe.py's --cache (.npz of recording vectors)")
    ap.add_argument("--prosody-cache", type=Path, default=None, help="an .npz of the prosody figures, written on the first run")
    ap.add_argument("--C", type=float, default=0.01, help="inverse regularisation of the logistic regression (probe.py's)")
    ap.add_argument("--workers", type=int, default=2)
    args = ap.parse_args(argv)
    with np.load(args.cache, allow_pickle=False) as z:
        meta, states = pd.DataFrame({k: z[k] for k in ("corpus", "speaker", "label", "path")}), z["x"]
    four = meta["label"].isin(FOUR).to_numpy()
    meta, states = meta[four].reset_index(drop=True), states[four]
    if args.prosody_cache is not None and args.prosody_cache.is_file():
        pros = np.load(args.prosody_cache)["x"]
    else:
        with ProcessPoolExecutor(args.workers) as pool:
            pros = np.stack(list(pool.map(prosody, meta["path"], chunksize=64)))
        if args.prosody_cache is not None:
            np.savez(args.prosody_cache, x=pros)
    meta["speaker"] = meta["corpus"] + ":" + meta["speaker"]
    zp = group_z(meta, np.nan_to_num(pros))
    table = pd.DataFrame(zp[:, [0, 2]], columns=["F0", "loudness"]).assign(corpus=meta["corpus"], label=meta["label"])
    means = table.groupby(["corpus", "label"])[["F0", "loudness"]].mean().unstack("label")
    print("Speaker-z median F0 / loudness per label (0 = the speaker's own average; sd units):\n")
    labels = list(FOUR)
    print("| corpus | " + " | ".join(f"{lab}" for lab in labels) + " |")
    print("|---|" + "---|" * len(labels))
    for c in means.index:
        cells = [f"{means.loc[c, ('F0', lab)]:+.2f} / {means.loc[c, ('loudness', lab)]:+.2f}" if not np.isnan(means.loc[c, ("F0", lab)]) else "—" for lab in labels]
        print(f"| {c} | " + " | ".join(cells) + " |")
    results: dict[str, dict[str, float]] = {}
    feats = {"prosody": zp, "encoder states": group_z(meta, states)}
    corpora = sorted(meta["corpus"].unique())
    for c in corpora:
        mine = (meta["corpus"] == c).to_numpy()
        row: dict[str, float] = {"speakers": float(meta.loc[mine, "speaker"].nunique())}
        for name, x in feats.items():
            own = []
            for test in grouped_folds(meta.loc[mine, "speaker"].to_numpy()):
                te = np.zeros(len(meta), bool)
                te[np.flatnonzero(mine)[test]] = True
                own.append((te.sum(), uar(meta, x, mine & ~te, te, args.C)))
            row[f"{name}: own other speakers"] = float(sum(n * u for n, u in own) / sum(n for n, _ in own))
            row[f"{name}: other corpora"] = uar(meta, x, ~mine, mine, args.C)
        results[c] = row
    cols = [k for k in results[corpora[0]] if k != "speakers"]
    print("\n4-class UAR of the probe (chance 0.25; TurEV-DB: 3 labels present, chance 0.33):\n")
    print("| corpus | speakers | " + " | ".join(cols) + " |")
    print("|---|---|" + "---|" * len(cols))
    for c in corpora:
        print(f"| {c} | {results[c]['speakers']:.0f} | " + " | ".join(f"{results[c][k]:.3f}" for k in cols) + " |")
    return results


if __name__ == "__main__":
    main()
