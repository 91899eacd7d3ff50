"""Speaker normalisation when a speaker's recordings do not span the emotions evenly.

    python benchmarks/skew.py [--model models/ser-speaker-norm] [--features features/ser-default-v7-whisper5]

A speaker-normalised model standardises each speaker's features with that speaker's statistics (the moments of the
frames of their speech, ``speakers.group_moments``). Every RAVDESS actor records every emotion, so in training and
in the card's figures those statistics are balanced. A call-centre agent's calls are mostly neutral. Here the
model's own test speakers (never trained or validated on) are scored on all their recordings, with statistics
taken from a subset of their recordings only:

- all: every recording (what ``score --speakers layout`` does, the card's figure);
- neutral + calm only; mostly neutral (neutral + calm plus one recording of each other emotion);
- one emotion only (each of the 8 in turn: mean and worst);
- each recording alone (``--speakers recording``, and what ``predict`` does).

Recording-level UAR over all labels (the mean of a recording's window probabilities, as ``score`` judges it).
A corpus-normalised model (``norm_by = "corpus"``, e.g. ``--model models/ser-multicorpus``) takes one set of
statistics for all the test speakers together (the job ``score --speakers job`` sees): the subsets are then taken
from every speaker's recordings alike, so "neutral + calm only" is an archive of neutral calls.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
import pyarrow.parquet as pq  # noqa: E402

from ser_batch import features, measures, modeldir, shards  # noqa: E402


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--model", type=Path, default=REPO / "models" / "ser-speaker-norm")
    ap.add_argument("--features", type=Path, default=REPO / "features" / "ser-default-v7-whisper5")
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args()
    md = modeldir.load(args.model)
    if not md.speaker_norm:
        raise SystemExit(f"{args.model} is not speaker-normalised")
    test = set(md.config["split"]["test_speakers"])
    if not test:
        raise SystemExit(f"{args.model} has no test speakers (protocol {md.config['protocol']}): measure a fold's model instead")
    files = pd.concat([pq.read_table(f, columns=["recording_id", "speaker", "label", "moments"]).to_pandas() for f in sorted((args.features / "files").glob("part-*.parquet"))])
    files = files[files["speaker"].isin(test) & files["moments"].notna()].drop_duplicates("recording_id").set_index("recording_id")
    group = (lambda spk: "job") if md.norm_by == "corpus" else (lambda spk: spk)  # whose statistics a row takes
    files["group"] = files["speaker"].map(group)
    metas, xs = [], []
    for m, x in shards.iter_batches(args.features):
        keep = ((m["augmentation"] == "none") & m["speaker"].isin(test)).to_numpy()
        metas.append(m[keep])
        xs.append(x[keep])
    meta = pd.concat(metas, ignore_index=True)
    x = md.leave_out_padding(np.concatenate(xs), meta["pad_s"].to_numpy())  # as training and score read them
    y = meta["label"].map({c: i for i, c in enumerate(md.classes)}).to_numpy()
    rng = np.random.default_rng(args.seed)

    def uar(norm_of_row: list[tuple[np.ndarray, np.ndarray]]) -> float:
        mean = np.stack([m for m, _s in norm_of_row])[:, None, :]
        std = np.stack([s for _m, s in norm_of_row])[:, None, :]
        proba, yy = measures.per_recording(md.predict_proba((x - mean) / std), y, meta["recording_id"].to_numpy())
        return float(measures.metrics(yy, proba.argmax(axis=1), md.classes)["uar"])

    def by_subset(pick) -> float:  # type: ignore[no-untyped-def]
        stats = {}
        for key, g in files.groupby("group"):
            chosen = pd.concat([pick(h) for _s, h in g.groupby("speaker")])
            stats[key] = features.mean_std(np.sum([np.asarray(m).reshape(3, -1) for m in chosen["moments"]], axis=0), md.scaler.prior)
        return uar([stats[group(s)] for s in meta["speaker"]])

    rows = [(f"all recordings of the {'job' if md.norm_by == 'corpus' else 'speaker'} (the card's figure)", by_subset(lambda g: g))]
    neutral = lambda g: g[g["label"].isin(["neutral", "calm"])]  # noqa: E731
    rows.append(("neutral + calm recordings only (12 of 60)", by_subset(neutral)))
    rows.append(("mostly neutral: neutral + calm and one recording of each other emotion (12 + 6)",
                 by_subset(lambda g: pd.concat([neutral(g), *(h.sample(1, random_state=int(rng.integers(1 << 31))) for lab, h in g.groupby("label") if lab not in ("neutral", "calm"))]))))
    single = {e: by_subset(lambda g, e=e: g[g["label"] == e]) for e in md.classes}
    rows.append((f"one emotion only: mean over the 8 (worst: {min(single, key=single.get)} {min(single.values()):.3f})", float(np.mean(list(single.values())))))
    own = {rid: features.mean_std(np.asarray(m).reshape(3, -1), md.scaler.prior) for rid, m in files["moments"].items()}
    rows.append(("each recording alone (--speakers recording, predict)", uar([own[r] for r in meta["recording_id"]])))
    print(f"\n{md.name} version {md.config.get('model_version', '?')}: {len(test)} test speakers, {meta['recording_id'].nunique()} recordings\n")
    print("| statistics from | UAR (all labels) |\n|---|---|")
    for what, u in rows:
        print(f"| {what} | {u:.3f} |")


if __name__ == "__main__":
    main()
