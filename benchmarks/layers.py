"""Which layer of the Whisper base encoder carries emotion best across corpora? A linear probe per layer.

    python benchmarks/layers.py --data ../shared/data --per-corpus 300 [--cache logs/layers.npz]

CTranslate2 runs only the encoder layers a model file holds, so a copy of ``model.bin`` without the layers after
``k`` (``encoder.truncate``, built in memory after the SHA check) gives the states after layer ``k`` (and the
encoder's final layer norm) at a fraction of the encoder's cost: ``encoder.encode(..., layers=k)``. Each sampled recording (up to ``--per-corpus`` per corpus, the four labels
angry/happy/neutral/sad, the same recordings for every layer) is encoded in 3 s blocks as ``score`` does, and becomes
the mean and standard deviation of its frames. Per layer, the probe of ``benchmarks/probe.py`` is fitted for each
corpus left out in turn on every other corpus (corpora weighted equally) and judged on the left-out corpus: 4-class
UAR, plain and corpus z-scored. A probe, not a figure of the product.
"""

from __future__ import annotations

import argparse
import os
import sys
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(REPO / "benchmarks"))

import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402

FOUR = ("angry", "happy", "neutral", "sad")
LAYERS = (1, 2, 3, 4, 5, 6)


def vectors(path: str) -> np.ndarray:
    """(len(LAYERS), 1024): mean and sd of a recording's frames after each layer."""
    import soundfile as sf

    from ser_batch import audio, encoder

    y, sr = sf.read(path, dtype="float32", always_2d=True)
    y = audio.resample(audio.to_mono(y), sr, 16000)
    block = 48000
    n_frames = max(1, y.size // encoder.STRIDE)
    padded = np.zeros(max(1, -(-y.size // block)) * block, np.float32)
    padded[: y.size] = y
    out = []
    for layer in LAYERS:
        fr = encoder.encode(padded.reshape(-1, block), 16000, layers=layer).reshape(-1, encoder.WIDTH)[:n_frames]
        out.append(np.concatenate([fr.mean(0), fr.std(0)]))
    return np.stack(out)


def _init() -> None:
    os.environ["OMP_NUM_THREADS"] = "1"


def sample(data: Path, per_corpus: int, seed: int = 0) -> pd.DataFrame:
    from ser_batch import corpora

    entries, _ = corpora.discover([data])
    df = pd.DataFrame([{"path": str(e.path), "corpus": e.labels.corpus, "speaker": e.labels.speaker, "label": e.labels.label} for e in entries])
    df = df[df["label"].isin(FOUR)]
    rng = np.random.default_rng(seed)
    parts = []
    for _, g in df.groupby("corpus"):
        parts.append(g.iloc[rng.permutation(len(g))[:per_corpus]])
    return pd.concat(parts).reset_index(drop=True)


def probe(meta: pd.DataFrame, x: np.ndarray, c: float = 0.01) -> dict[str, float]:
    from probe import uar  # the same probe as benchmarks/probe.py

    return {k: uar(meta, x, ~(meta["corpus"] == k).to_numpy(), (meta["corpus"] == k).to_numpy(), c) for k in sorted(meta["corpus"].unique())}


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--data", type=Path, default=REPO.parent / "shared" / "data")
    ap.add_argument("--per-corpus", type=int, default=300)
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--cache", type=Path, default=None)
    args = ap.parse_args(argv)
    if args.cache is not None and args.cache.is_file():
        with np.load(args.cache, allow_pickle=False) as z:
            meta, x = pd.DataFrame({k: z[k] for k in ("corpus", "speaker", "label")}), z["x"]
    else:
        meta = sample(args.data, args.per_corpus)
        with ProcessPoolExecutor(args.workers, initializer=_init) as ex:
            x = np.stack(list(ex.map(vectors, meta["path"], chunksize=8))).astype(np.float64)
        if args.cache is not None:
            args.cache.parent.mkdir(parents=True, exist_ok=True)
            np.savez(args.cache, x=x, **{k: meta[k].to_numpy(str) for k in ("corpus", "speaker", "label")})
    from probe import group_z

    rows = []
    for i, layer in enumerate(LAYERS):
        for name, feats in (("plain", x[:, i]), ("corpus z-scored", group_z(meta, x[:, i], "corpus"))):
            r = probe(meta, feats)
            rows.append({"layer": layer, "features": name, **r, "mean (not RAVDESS)": np.mean([v for k, v in r.items() if k != "ravdess"])})
    cols = list(rows[0])
    print("| " + " | ".join(cols) + " |\n|" + "---|" * len(cols))
    for r in rows:
        print("| " + " | ".join(f"{v:.3f}" if isinstance(v, float) else str(v) for v in r.values()) + " |")


if __name__ == "__main__":
    main()
