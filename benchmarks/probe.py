"""A linear probe across corpora: do other corpora teach the encoder's states something RAVDESS does not?

    python benchmarks/probe.py --features features/c-ravdess features/c-tess features/c-ased ... [--C 0.01]

Each recording becomes the mean and standard deviation of its frames' features over its speech windows (the
original rows only, never augmented copies); a logistic regression over the four labels every corpus but TurEV-DB
has (angry, happy, neutral, sad) is trained, for each corpus left out in turn, (a) on RAVDESS alone and (b) on every
other corpus, each corpus weighted equally, and judged on the left-out corpus's recordings: 4-class UAR over the
labels it has; plain, and with each speaker's recording vectors first z-scored with that speaker's own
(unlabelled) recordings; "corpus z-scored", each corpus's with all of its recordings (what normalising
with the statistics of a whole scored archive would do). Seconds per run on 2 cores, not hours: the question to ask before training Keras models
across corpora (``benchmarks/corpora.py``), not a figure of the product (``score`` never sees this classifier).

The regularisation ``--C`` is fixed, not chosen on the left-out corpora; 0.001, 0.01 and 0.1 gave means within
1.5 points of each other here.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import warnings
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402

from ser_batch import shards  # noqa: E402

FOUR = ("angry", "happy", "neutral", "sad")


def recording_vectors(dirs: list[Path]) -> tuple[pd.DataFrame, np.ndarray]:
    """One row per original recording (corpus, speaker, label, path) and its frames' mean and sd (2 x coeffs)."""
    settings = {json.dumps(json.loads((d / "manifest.json").read_text())["settings"]["features"], sort_keys=True) for d in dirs}
    if len(settings) != 1:
        raise SystemExit("error: the shard folders hold different feature settings; extract them alike")
    rows, vecs = [], []
    for d in dirs:
        for m, x in shards.iter_batches(d):
            keep = (m["augmentation"] == "none").to_numpy()
            m, x = m[keep], x[keep]
            for _, idx in m.groupby("recording_id", sort=False).indices.items():
                fr = x[idx].reshape(-1, x.shape[-1])
                vecs.append(np.concatenate([fr.mean(0), fr.std(0)]))
                rows.append(m.iloc[idx[0]][["corpus", "speaker", "label", "path"]].to_dict())
    return pd.DataFrame(rows), np.stack(vecs).astype(np.float64)


def group_z(meta: pd.DataFrame, x: np.ndarray, by: str = "speaker") -> np.ndarray:
    """Each speaker's (or corpus's) vectors z-scored with its own recordings (audio only, never labels)."""
    out = x.copy()
    for _, idx in meta.groupby(by).indices.items():
        out[idx] = (x[idx] - x[idx].mean(0)) / (x[idx].std(0) + 1e-6)
    return out


def egemaps(paths: list[str], workers: int) -> np.ndarray:
    """eGeMAPS v02 functionals of each file (88 per recording; openSMILE, Eyben et al. 2016): the field's hand-made
    paralinguistic set (pitch, loudness, jitter, shimmer, formants, spectral balance, rates), for comparison only.
    openSMILE is not a dependency of ser-batch: ``pip install opensmile`` (its licence: research and personal use)."""
    import importlib.util
    from concurrent.futures import ProcessPoolExecutor

    if importlib.util.find_spec("opensmile") is None:
        raise SystemExit("error: --egemaps needs openSMILE's Python package: pip install opensmile")
    chunks = [paths[i::workers] for i in range(workers)]
    with ProcessPoolExecutor(workers) as pool:
        parts = list(pool.map(_egemaps_chunk, chunks))
    out = np.empty((len(paths), 88))
    for i, part in enumerate(parts):
        out[i::workers] = part
    return out


def _egemaps_chunk(paths: list[str]) -> np.ndarray:
    import opensmile
    import soundfile as sf

    smile = opensmile.Smile(feature_set=opensmile.FeatureSet.eGeMAPSv02, feature_level=opensmile.FeatureLevel.Functionals)
    out = []
    for p in paths:
        y, sr = sf.read(p, dtype="float32", always_2d=True)
        out.append(smile.process_signal(y.mean(axis=1), sr).to_numpy()[0])
    return np.array(out).reshape(len(paths), 88)


def uar(meta: pd.DataFrame, x: np.ndarray, train: np.ndarray, test: np.ndarray, c: float) -> float:
    """4-class UAR on ``test`` rows of a corpus-balanced logistic regression fitted on ``train`` rows."""
    from sklearn.linear_model import LogisticRegression
    from sklearn.metrics import recall_score
    from sklearn.preprocessing import StandardScaler

    four = meta["label"].isin(FOUR).to_numpy()
    tr, te = train & four, test & four
    corpus = meta["corpus"].to_numpy()[tr]
    w = np.array([1.0 / (corpus == k).sum() for k in corpus])
    scaler = StandardScaler().fit(x[tr])
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        clf = LogisticRegression(C=c, max_iter=2000).fit(scaler.transform(x[tr]), meta["label"].to_numpy()[tr], sample_weight=w * len(w) / w.sum())
    truth = meta["label"].to_numpy()[te]
    return float(recall_score(truth, clf.predict(scaler.transform(x[te])), average="macro", labels=sorted(set(truth))))


def main(argv: list[str] | None = None) -> dict[str, dict[str, float]]:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--features", nargs="+", type=Path, required=True, help="shard folders (ser-batch extract), same feature settings")
    ap.add_argument("--C", type=float, default=0.01, help="inverse regularisation of the logistic regression")
    ap.add_argument("--cache", type=Path, default=None, help="an .npz of the recording vectors, written on the first run, read by the next")
    ap.add_argument("--egemaps", action="store_true", help="also openSMILE's eGeMAPS functionals of the four labels' recordings, alone and beside the states (pip install opensmile)")
    args = ap.parse_args(argv)
    if args.cache is not None and args.cache.is_file():
        with np.load(args.cache, allow_pickle=False) as z:
            meta, x = pd.DataFrame({k: z[k] for k in ("corpus", "speaker", "label", "path")}), z["x"]
    else:
        meta, x = recording_vectors(args.features)
        if args.cache is not None:
            np.savez(args.cache, x=x, **{k: meta[k].to_numpy(str) for k in ("corpus", "speaker", "label", "path")})
    corpora = sorted(meta["corpus"].unique())
    if "ravdess" not in corpora:
        raise SystemExit("error: the probe compares against RAVDESS alone: give RAVDESS's shards too")
    results: dict[str, dict[str, float]] = {}
    variants = [("plain", x), ("speaker z-scored", group_z(meta, x)), ("corpus z-scored", group_z(meta, x, "corpus"))]
    if args.egemaps:  # the four labels' recordings only (the others never enter a fit)
        four = meta["label"].isin(FOUR).to_numpy()
        e = np.zeros((len(meta), 88))
        e[four] = egemaps(meta["path"].to_numpy(str)[four].tolist(), max(1, os.cpu_count() or 1))
        e = group_z(meta, e, "corpus")
        variants += [("eGeMAPS, corpus z-scored", e), ("states + eGeMAPS, corpus z-scored", np.concatenate([variants[2][1], e], axis=1))]
    for name, feats in variants:
        for c in corpora:
            test = (meta["corpus"] == c).to_numpy()
            rav = (meta["corpus"] == "ravdess").to_numpy() & ~test
            results.setdefault(c, {"recordings": int(test.sum())})
            results[c][f"{name}: RAVDESS only"] = uar(meta, feats, rav, test, args.C) if rav.any() else float("nan")
            results[c][f"{name}: all others"] = uar(meta, feats, ~test, test, args.C)
    cols = [k for k in results[corpora[0]] if k != "recordings"]
    print("| left-out corpus | recordings | " + " | ".join(cols) + " |")
    print("|---|---|" + "---|" * len(cols))
    for c in corpora:
        print(f"| {c} | {results[c]['recordings']} | " + " | ".join(f"{results[c][k]:.3f}" for k in cols) + " |")
    others = [c for c in corpora if c != "ravdess"]
    print("| **mean, corpora other than RAVDESS** | | " + " | ".join(f"{np.mean([results[c][k] for c in others]):.3f}" for k in cols) + " |")
    return results


if __name__ == "__main__":
    main()
