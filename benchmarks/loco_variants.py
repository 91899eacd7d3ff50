"""Leave one corpus out in minutes: the shipped configuration's linear classifier replayed in scikit-learn, to try
variants of it before paying for Keras fits (``benchmarks/corpora.py``, 10 min each).

    python benchmarks/loco_variants.py --features features/ser-default-v7-whisper5 \\
        features/corpus-{tess,ased,nemo,urdu,turev-db,emotiontts-kor}-whisper5 --variant base --variant norm=speaker

What the product's ``linear`` model sees, computed exactly from each training window's per-coefficient mean and mean
square over its frames (cached once, ``--cache``): frames z-scored with their group's speech statistics (the
moments ``extract`` kept, shrunk toward the training groups' worth 10 s, as ``norm_prior_s`` does), then mean and
mean square of the window's z-scored frames, standardised, and a logistic regression (``C``) over the four labels
(angry, happy, neutral, sad), each training corpus weighing the same. The left-out corpus's windows are averaged per
recording, as ``score`` does: 4-class UAR over the labels it has. It learns the four labels only (the product: all
eight, loss masked per corpus), so its figures sit near, not on, ``corpora.py``'s.

Variants (``key=value``, several per ``--variant``): ``norm`` corpus|speaker (the group whose statistics z-score
its frames); ``frames`` all|inside (inside: the window's frames past the recording's end left out of its mean);
``C``; ``balance`` equal|sqrt (each corpus's share of the loss); ``adjust`` none|em|balanced (the left-out corpus's
recording posteriors re-weighted to its class prior estimated by EM, Saerens et al. 2002, or divided by their mean,
which assumes a balanced job); ``prior`` train|corpus (what a group's statistics are shrunk toward: the training
groups' typical statistics, as the product does, or the typical group of its own corpus, i.e. of the scored job: with
``norm=speaker`` a hierarchy, each speaker's own statistics where it has plenty of audio and its corpus's where not);
``prior_s`` (the prior's worth in seconds; the product's ``norm_prior_s`` is 10). ``window_z`` none|corpus|test (corpus: each corpus's window features,
after the frames' normalisation, standardised again with the mean and sd of that corpus's windows, as
``probe.py``'s "corpus z-scored" does to its recording vectors; test: the left-out corpus's only, the training
windows standardised together — AdaBN, Li et al. 2016, what swapping the ``linear`` model's batch-normalisation
statistics for the scored job's would do). Variants joined by ``+`` are an
ensemble: each fitted alone, their recording posteriors averaged.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402

from ser_batch import shards  # noqa: E402
from ser_batch.features import mean_std, shrinkage_prior  # noqa: E402
from ser_batch.speakers import group_moments  # noqa: E402

FOUR = ["angry", "happy", "neutral", "sad"]
DEFAULTS = {"norm": "corpus", "frames": "all", "C": "0.01", "balance": "equal", "adjust": "none", "prior": "train", "prior_s": "10", "window_z": "none"}


def window_stats(dirs: list[Path], cache: Path) -> dict[str, object]:
    """Per window: mean and mean square over all frames and over the frames inside the recording, and the rows'
    meta. Cached in ``cache`` (.npz + .parquet), named by what the folders hold (their manifests' shard fingerprints):
    shards made again, with other labels or settings, are read again."""
    made = json.dumps([shards.read_manifest(d).get("inputs_fingerprint") for d in dirs])
    cache = cache.with_name(f"{cache.name}-{hashlib.sha256(made.encode()).hexdigest()[:12]}")
    if cache.with_suffix(".npz").exists():
        z = np.load(cache.with_suffix(".npz"))
        return {**{k: z[k] for k in z.files}, "meta": pd.read_parquet(cache.with_suffix(".parquet"))}
    metas, parts = [], {k: [] for k in ("all1", "all2", "in1", "in2")}
    for d in dirs:
        for meta, x in shards.iter_batches(d):
            frames = x.shape[1]
            inside = np.clip(frames - np.round(meta["pad_s"].to_numpy() * 10).astype(int), 1, frames)  # 100 ms frames
            mask = (np.arange(frames)[None, :] < inside[:, None])[..., None]
            metas.append(meta[["recording_id", "corpus", "speaker", "label", "augmentation"]])
            parts["all1"].append(x.mean(1))
            parts["all2"].append((x * x).mean(1))
            parts["in1"].append((x * mask).sum(1) / inside[:, None])
            parts["in2"].append((x * x * mask).sum(1) / inside[:, None])
    out = {k: np.concatenate(v) for k, v in parts.items()}
    cache.parent.mkdir(parents=True, exist_ok=True)
    np.savez(cache.with_suffix(".npz"), **out)
    meta = pd.concat(metas, ignore_index=True)
    meta.to_parquet(cache.with_suffix(".parquet"))
    return out | {"meta": meta}


def loco(data: dict[str, object], dirs: list[Path], v: dict[str, str]) -> dict[str, pd.DataFrame]:
    """Per corpus left out, its recordings' 4-class posteriors (columns ``FOUR``) and labels (``y``) for variant ``v``;
    groups' statistics from the moments ``extract`` kept in ``dirs`` (``speakers.group_moments``, the product's
    definition)."""
    from sklearn.linear_model import LogisticRegression

    meta: pd.DataFrame = data["meta"]  # type: ignore[assignment]
    e1, e2 = (data["in1"], data["in2"]) if v["frames"] == "inside" else (data["all1"], data["all2"])
    original = (meta["augmentation"] == "none").to_numpy()
    corpus, group = meta["corpus"].to_numpy(), meta[v["norm"]].astype(str).to_numpy()
    four = meta["label"].isin(FOUR).to_numpy()
    gm = group_moments([str(d) for d in dirs], meta[original], v["norm"])

    frames = float(v["prior_s"]) * 10  # 100 ms frames
    of_corpus = {g: c for g, c in zip(group, corpus)}
    corpus_prior = {c: shrinkage_prior(np.stack([gm[g] for g in gm if of_corpus.get(g) == c]), frames) for c in set(corpus)}

    def z_stats(rows: np.ndarray, gm: dict[str, np.ndarray], prior: np.ndarray) -> np.ndarray:
        idx = np.flatnonzero(rows)
        a, b = e1[idx], e2[idx]  # type: ignore[index]
        out = np.empty((len(idx), 2 * a.shape[1]), np.float32)
        for g in np.unique(group[idx]):
            sel = group[idx] == g
            mu, sd = mean_std(gm[g], corpus_prior[of_corpus[g]] if v["prior"] == "corpus" else prior)
            out[sel, : a.shape[1]] = (a[sel] - mu) / sd  # mean of z-scored frames
            out[sel, a.shape[1] :] = (b[sel] - 2 * mu * a[sel] + mu**2) / sd**2  # their mean square
        return out

    result = {}
    for test in sorted(set(corpus)):
        train, held = (corpus != test) & four, (corpus == test) & four & original
        trained = sorted(set(group[corpus != test]) & set(gm))  # the prior: the training groups' statistics only
        prior = shrinkage_prior(np.stack([gm[g] for g in trained]), frames)
        x_train, x_test = z_stats(train, gm, prior), z_stats(held, gm, prior)
        if v["window_z"] in ("corpus", "test"):  # each corpus's window features standardised with its own windows
            for part, rows in ((x_train, train), (x_test, held)) if v["window_z"] == "corpus" else ((x_test, held),):
                for c in set(corpus[rows]):
                    sel, ref = corpus[rows] == c, (corpus[rows] == c) & original[rows]
                    part[sel] = (part[sel] - part[ref].mean(0)) / (part[ref].std(0) + 1e-6)
        mu, sd = x_train.mean(0), x_train.std(0) + 1e-6
        share = pd.Series(corpus[train]).value_counts()
        weight = pd.Series(corpus[train]).map(1.0 / (share if v["balance"] == "equal" else np.sqrt(share))).to_numpy()
        y = meta["label"].to_numpy()[train]
        clf = LogisticRegression(C=float(v["C"]), max_iter=300).fit((x_train - mu) / sd, y, sample_weight=weight / weight.mean())
        rec = pd.DataFrame(clf.predict_proba((x_test - mu) / sd), columns=clf.classes_)
        rec["recording"], rec["y"] = meta["recording_id"].to_numpy()[held], meta["label"].to_numpy()[held]
        per = rec.groupby("recording").agg({**{c: "mean" for c in clf.classes_}, "y": "first"})
        p = per[list(clf.classes_)].to_numpy()
        if v["adjust"] == "em":
            trained = np.array([weight[y == c].sum() for c in clf.classes_])
            trained /= trained.sum()
            prior_job = trained.copy()
            for _ in range(100):
                q = p * (prior_job / trained)
                q /= q.sum(1, keepdims=True)
                prior_job = q.mean(0)
            p = q
        elif v["adjust"] == "balanced":
            p = p / p.mean(0)
        result[test] = pd.DataFrame(p / p.sum(1, keepdims=True), columns=clf.classes_, index=per.index)[FOUR].assign(y=per["y"])
    return result


def uar(per: pd.DataFrame) -> float:
    """4-class UAR over the labels present of one corpus's recording posteriors."""
    from sklearn.metrics import recall_score

    return float(recall_score(per["y"], np.asarray(FOUR)[per[FOUR].to_numpy().argmax(1)], average="macro", labels=sorted(set(per["y"]))))


def parse(spec: str) -> dict[str, str]:
    """``key=value[,key=value]`` over ``DEFAULTS`` ('base': the defaults)."""
    v = dict(DEFAULTS)
    for kv in filter(None, spec.replace("base", "").split(",")):
        key, _, value = kv.partition("=")
        if key not in DEFAULTS:
            raise SystemExit(f"error: unknown variant key {key!r}; known: {', '.join(DEFAULTS)}")
        v[key] = value
    return v


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--features", nargs="+", type=Path, required=True, help="shard folders, one per corpus (the shipped job's)")
    ap.add_argument("--variant", action="append", default=[], help="key=value[,key=value] (module docstring); repeatable; 'base' is the defaults")
    ap.add_argument("--cache", type=Path, default=REPO / "features" / "bench-loco-variants" / "stats")
    args = ap.parse_args()
    data = window_stats(args.features, args.cache)
    corpora = sorted(set(data["meta"]["corpus"]))  # type: ignore[index]
    print("| variant | " + " | ".join(corpora) + " | mean, not RAVDESS | s |")
    print("|---" * (len(corpora) + 3) + "|")
    for spec in args.variant or ["base"]:
        t = time.time()
        members = [loco(data, args.features, parse(m)) for m in spec.split("+")]  # an ensemble: posteriors averaged
        r = {c: uar(sum(m[c][FOUR] for m in members).assign(y=members[0][c]["y"])) for c in corpora}
        mean = np.mean([r[c] for c in corpora if c != "ravdess"])
        print(f"| {spec} | " + " | ".join(f"{r[c]:.3f}" for c in corpora) + f" | **{mean:.3f}** | {time.time() - t:.0f} |", flush=True)


if __name__ == "__main__":
    main()
