"""Training across corpora: leave-one-corpus-out figures, beside RAVDESS's 6 EmoBox folds with the others training.

    python benchmarks/corpora.py --features features/c-ravdess features/c-tess features/c-ased ... \\
        [--corpora tess,ased] [--ravdess-folds] [--no-loco] [--model pool] [--epochs 30] [--seed 0] [--out FILE.json]

Each folder holds the shards of one corpus (or more), all made by `ser-batch extract` with the same feature
settings, e.g. `ser-batch extract ../shared/data/tess --out features/c-tess` for each folder of ../shared/data.

Leave one corpus out (LOCO): for each corpus, a model trained on all the others (``protocol="loco"``: validation
speakers from each other corpus with 6 or more speakers; no recording of the left-out corpus trains or validates)
scores every original recording of the left-out corpus, recording by recording as ``score`` judges one (the mean of
its windows' probabilities). Three figures per corpus:

- 4-class UAR: recordings labelled angry, happy, neutral or sad, judged among those four classes (their
  probabilities renormalised). A corpus that lacks one of the four (TurEV-DB has no neutral) is judged over the ones
  it has, among all four; the table gives the count.
- shared UAR: recordings of every label the corpus shares with the model, judged among those labels only.
- open UAR: the model's own verdict over all its classes (what ``score`` says), over the same recordings.

``--ravdess-folds``: for each of the 6 EmoBox folds (../shared/benchmarks/ravdess-folds.json), a model trained on
the other corpora and RAVDESS's training actors, tested on the fold's 4 actors (8-class and 4-class UAR): the
figure to set beside the RAVDESS-only cross-validation.

Every fit's figures go to ``--cache`` (one JSON per fit, keyed by data, settings and split), so a rerun only trains
what is missing. The table is printed as Markdown and written, with every figure, to ``--out`` (JSON) and beside it
(.md). Training settings: the default model's (pool, label smoothing 0.1, patience 8) unless overridden; the loss is
masked to each corpus's labels and corpora are balanced (``--no-label-mask``, ``--corpus-balance`` to compare).
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import sys
import time
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

import numpy as np  # noqa: E402

from ser_batch import measures, splits  # noqa: E402
from ser_batch.errors import ConfigError  # noqa: E402
from ser_batch.shards import write_json_atomic  # noqa: E402
from ser_batch.objective import CORPUS_BALANCE  # noqa: E402
from ser_batch.train import NORM_BY, TrainSettings, fit  # noqa: E402
from ser_batch.trainset import load_meta  # noqa: E402

FOUR = ("angry", "happy", "neutral", "sad")
FOLDS_FILE = REPO.parent / "shared" / "benchmarks" / "ravdess-folds.json"


def ravdess_folds(path: Path) -> dict[int, tuple[int, ...]]:
    """The EmoBox test actors per fold from ``path``; they must be the folds ``splits`` uses."""
    try:
        folds = {int(k): tuple(int(a) for a in v) for k, v in json.loads(path.read_text())["test_actors"].items()}
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise ConfigError(f"cannot read the RAVDESS folds from {path} ({exc}); give --folds-file ravdess-folds.json") from exc
    if folds != splits.RAVDESS_EMOBOX_FOLDS:
        raise ConfigError(f"{path} holds other RAVDESS folds than ser_batch.splits.RAVDESS_EMOBOX_FOLDS; make them agree")
    return folds


def plan(speakers: list[str], corpora: list[str], with_folds: bool, folds_file: Path, settings: TrainSettings) -> dict[str, splits.Split]:
    """Job name -> split: ``loco-CORPUS`` for each corpus in ``corpora``, ``ravdess-fold-N`` with ``with_folds``."""
    jobs = {f"loco-{c}": splits.loco_split(speakers, c, settings.n_val_speakers, settings.seed) for c in corpora}
    if with_folds:
        if not any(splits.corpus_of(s) == "ravdess" for s in speakers):
            raise ConfigError("--ravdess-folds needs RAVDESS shards among --features")
        for fold, actors in ravdess_folds(folds_file).items():
            sp = splits.speaker_split(speakers, fold, settings.n_val_speakers, settings.seed)
            want = {f"ravdess:{a}" for a in actors}
            if set(sp.test_speakers) != want:
                raise ConfigError(f"fold {fold} would test {sorted(sp.test_speakers)}, not RAVDESS actors {sorted(want)}; are all 24 actors in the shards?")
            jobs[f"ravdess-fold-{fold}"] = sp
    return jobs


def figures(result: dict[str, Any]) -> dict[str, Any]:
    """4-class, shared-label and open UAR of one fit's recording-level test predictions."""
    classes = result["classes"]
    proba = np.asarray(result["test_predictions"]["proba"], np.float64)
    y = np.asarray(result["test_predictions"]["y"], int)
    present = [classes[i] for i in sorted(set(y.tolist()))]
    out: dict[str, Any] = {"recordings": int(len(y)), "speakers": len(result["test_speakers"]), "labels": present, "uar_open": result["uar"]}
    p, yy, kept = measures.restrict(proba, y, classes, present)
    out["uar_shared"] = measures.metrics(yy, p.argmax(axis=1), kept)["uar"]
    p4, y4, kept4 = measures.restrict(proba, y, classes, FOUR)
    if len(y4):
        out["uar_4"] = measures.metrics(y4, p4.argmax(axis=1), kept4)["uar"]
        out["four_present"] = sorted({kept4[i] for i in y4.tolist()})
    alone = result["test_predictions"].get("proba_alone")  # each recording z-scored on its own (with the prior)
    if alone is not None and len(y4):
        pa, ya, kept_a = measures.restrict(np.asarray(alone, np.float64), y, classes, FOUR)
        out["uar_4_alone"] = measures.metrics(ya, pa.argmax(axis=1), kept_a)["uar"]
    out["per_class_recall"] = {c: v["recall"] for c, v in result["per_class"].items() if v["support"]}
    for k in ("epochs_run", "seconds_train", "rows", "fold", "protocol", "test_speakers", "ece"):
        out[k] = result[k]
    if "uar_alone" in result:
        out["uar_alone"] = result["uar_alone"]
    return out


def baseline(model_dir: Path, corpus: str, dirs: list[str]) -> dict[str, Any] | None:
    """A trained model (e.g. today's RAVDESS-only default) judged on ``corpus``'s recordings of speakers it never
    trained or validated on, as a LOCO fit is judged (``figures``); None when no such recording shares a label."""
    import pandas as pd

    from ser_batch import modeldir, shards

    md = modeldir.load(model_dir)
    seen = set(md.config["split"].get("train_speakers", [])) | set(md.config["split"].get("val_speakers", []))
    metas, xs = [], []
    for d in dirs:
        for m, x in shards.iter_batches(Path(d)):
            keep = ((m["augmentation"] == "none") & (m["corpus"] == corpus) & ~m["speaker"].isin(seen) & m["label"].isin(md.classes)).to_numpy()
            if keep.any():
                metas.append(m[keep])
                xs.append(x[keep])
    if not metas:
        return None
    m = pd.concat(metas, ignore_index=True)
    x = np.concatenate(xs)
    md.leave_out_padding(x, m["pad_s"].to_numpy())  # as evaluate and score read them
    if md.speaker_norm:  # each speaker's (corpus's) own statistics, as evaluate and score take them
        from ser_batch.speakers import normalise_rows

        normalise_rows(x, m, dirs, md.features, md.norm_by, md.scaler.prior)
    proba, y = measures.per_recording(md.predict_proba(x), m["label"].map({c: i for i, c in enumerate(md.classes)}).to_numpy(), m["recording_id"].to_numpy())
    open_m = measures.metrics(y, proba.argmax(axis=1), md.classes)
    result = {"classes": md.classes, "test_predictions": {"proba": proba.tolist(), "y": y.tolist()}, "test_speakers": sorted(m["speaker"].unique().tolist()),
              "uar": open_m["uar"], "per_class": open_m["per_class"], "epochs_run": None, "seconds_train": 0.0, "rows": int(len(m)),
              "fold": None, "protocol": f"baseline {md.name}", "ece": measures.expected_calibration_error(proba, y)}  # fmt: skip
    return figures(result)


def _key(dirs: list[str], settings: TrainSettings, split: splits.Split) -> str:
    """A fit's cache key: its folders and what is in them (the manifests' fingerprints of their shards, whose names
    change with the settings, paths and label tables that made them), its settings and its split."""
    from ser_batch.shards import read_manifest

    made = [read_manifest(Path(d)).get("inputs_fingerprint") for d in dirs]
    blob = json.dumps({"dirs": dirs, "made": made, "settings": settings.to_dict(), "split": split.to_dict()}, sort_keys=True)
    return hashlib.sha256(blob.encode()).hexdigest()[:16]


def run(dirs: list[str], jobs: dict[str, splits.Split], settings: TrainSettings, cache: Path, workers: int, scheduler: str | None) -> dict[str, dict[str, Any]]:
    """Figures of every job, trained where the cache lacks them (in this process, or as Dask tasks)."""
    done: dict[str, dict[str, Any]] = {}
    todo = {}
    for name, sp in jobs.items():
        path = cache / f"{name}-{_key(dirs, settings, sp)}.json"  # one file per fit: other settings never overwrite it
        saved = json.loads(path.read_text()) if path.is_file() else {}
        if saved.get("key") == _key(dirs, settings, sp):
            done[name] = saved["figures"]
            print(f"{name}: reused {path}", flush=True)
        else:
            todo[name] = sp

    def keep(name: str, result: dict[str, Any]) -> None:
        done[name] = figures(result)
        key = _key(dirs, settings, jobs[name])
        write_json_atomic({"key": key, "figures": done[name]}, cache / f"{name}-{key}.json")
        f = done[name]
        print(f"{name}: shared UAR {f['uar_shared']:.3f}, 4-class {f.get('uar_4', float('nan')):.3f} "
              f"({f['recordings']} recordings, {f['epochs_run']} epochs, {f['seconds_train'] / 60:.1f} min)", flush=True)  # fmt: skip

    if not todo:
        return done
    if not workers and not scheduler:
        for name, sp in todo.items():
            keep(name, fit(dirs, sp, settings))
        return done
    from ser_batch.cluster import RETRIES, dask_client

    n = workers or min(len(todo), os.cpu_count() or 1)
    threads = max(1, (os.cpu_count() or 1) // n)
    with dask_client(scheduler, n, echo=print) as client:
        futures = {client.submit(fit, dirs, sp, settings, None, threads, key=f"corpora-{name}-{_key(dirs, settings, sp)}", retries=RETRIES, pure=False): name for name, sp in todo.items()}
        from distributed import as_completed

        for fut in as_completed(futures):
            keep(futures[fut], fut.result())
    return done


def tables(done: dict[str, dict[str, Any]]) -> str:
    """The LOCO table and the RAVDESS-folds table, Markdown."""
    lines = []
    loco = {k.removeprefix("loco-"): v for k, v in done.items() if k.startswith("loco-")}
    if loco:
        lines += [
            "Leave one corpus out: trained on all the other corpora, scored on every recording of this one "
            "(recording level; UAR = unweighted average recall).",
            "",
            "| left-out corpus | speakers | recordings | 4-class UAR (angry, happy, neutral, sad) | 4-class, each recording alone | UAR over shared labels | shared labels | open UAR (all model classes) |",
            "|---|---|---|---|---|---|---|---|",
        ]
        for c, f in sorted(loco.items()):
            four = f"{f['uar_4']:.3f}" + ("" if len(f.get("four_present", FOUR)) == 4 else f" ({len(f['four_present'])} present)") if "uar_4" in f else "—"
            lines.append(f"| {c} | {f['speakers']} | {f['recordings']} | {four} | {f.get('uar_4_alone', float('nan')):.3f} | {f['uar_shared']:.3f} | {len(f['labels'])}: {', '.join(f['labels'])} | {f['uar_open']:.3f} |")
        rest = [f for c, f in loco.items() if c != "ravdess" and "uar_4" in f]
        if rest:
            lines.append(f"| **mean, corpora other than RAVDESS** | | | {np.mean([f['uar_4'] for f in rest]):.3f} | "
                         f"{np.mean([f.get('uar_4_alone', np.nan) for f in rest]):.3f} | | | |")
        lines.append("")
    folds = {int(k.removeprefix("ravdess-fold-")): v for k, v in done.items() if k.startswith("ravdess-fold-")}
    if folds:
        lines += [
            "RAVDESS, 6 EmoBox folds, other corpora in training (test actors never trained or validated):",
            "",
            "| fold | test actors | recordings | UAR (all labels) | UAR, each recording alone | 4-class UAR | epochs |",
            "|---|---|---|---|---|---|---|",
        ]
        for k, f in sorted(folds.items()):
            lines.append(f"| {k} | {', '.join(sorted((s.partition(':')[2] for s in f['test_speakers']), key=lambda a: (len(a), a)))} | {f['recordings']} | {f['uar_shared']:.3f} | {f.get('uar_alone', float('nan')):.3f} | {f.get('uar_4', float('nan')):.3f} | {f['epochs_run']} |")
        u = np.array([f["uar_shared"] for f in folds.values()])
        u4 = np.array([f.get("uar_4", np.nan) for f in folds.values()])
        ua = np.array([f.get("uar_alone", np.nan) for f in folds.values()])
        lines += [f"| **mean ± sd** | | | {u.mean():.3f} ± {u.std():.3f} | {np.nanmean(ua):.3f} ± {np.nanstd(ua):.3f} | {np.nanmean(u4):.3f} ± {np.nanstd(u4):.3f} | |", ""]
    return "\n".join(lines)


def baseline_table(baselines: dict[str, dict[str, Any]]) -> str:
    """Trained models judged on each corpus's unseen speakers, in the LOCO table's columns."""
    if not baselines:
        return ""
    lines = ["", "Trained models as they are, on each corpus's speakers they never trained or validated on:", "",
             "| model | corpus | speakers | recordings | 4-class UAR | UAR over shared labels | open UAR |", "|---|---|---|---|---|---|---|"]  # fmt: skip
    for k, f in baselines.items():
        model, _, corpus = k.partition("/")
        lines.append(f"| {model} | {corpus} | {f['speakers']} | {f['recordings']} | {f.get('uar_4', float('nan')):.3f} | {f['uar_shared']:.3f} | {f['uar_open']:.3f} |")
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> dict[str, Any]:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--features", nargs="+", required=True, help="shard folders, one per corpus (ser-batch extract), same feature settings")
    ap.add_argument("--corpora", default=None, help="comma-separated corpora to leave out in turn (default: every corpus in the shards)")
    ap.add_argument("--no-loco", action="store_true", help="skip the leave-one-corpus-out fits")
    ap.add_argument("--ravdess-folds", action="store_true", help="also the 6 RAVDESS EmoBox folds with the other corpora training")
    ap.add_argument("--folds-file", type=Path, default=FOLDS_FILE)
    ap.add_argument("--model", default="pool")
    ap.add_argument("--epochs", type=int, default=30)
    ap.add_argument("--patience", type=int, default=8)
    ap.add_argument("--label-smoothing", type=float, default=0.1)
    ap.add_argument("--batch-size", type=int, default=64)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--speaker-norm", action="store_true")
    ap.add_argument("--norm-by", choices=NORM_BY, default="speaker", help="with --speaker-norm: z-score by speaker or by corpus (the left-out corpus with its own statistics)")
    ap.add_argument("--norm-prior-s", type=float, default=TrainSettings().norm_prior_s, help="with --speaker-norm: seconds of speech the training groups' statistics count for in every group's (0: off)")
    ap.add_argument("--no-label-mask", action="store_true", help="plain cross-entropy over all classes (for comparison)")
    ap.add_argument("--corpus-balance", choices=CORPUS_BALANCE, default="equal")
    ap.add_argument("--l2", type=float, default=1e-3, help="the linear model's L2 penalty (TrainSettings.l2)")
    ap.add_argument("--frames", choices=("all", "inside"), default="all", help="the linear model's frames (TrainSettings.frames)")
    ap.add_argument("--workers", type=int, default=0, help="fits in parallel on a local Dask cluster; 0 (default): one after another here")
    ap.add_argument("--scheduler", default=None, help="a running Dask scheduler (tcp://HOST:PORT) for the fits")
    ap.add_argument("--out", type=Path, default=REPO / "benchmarks" / "corpora.json", help="JSON of every figure; the Markdown goes beside it (.md)")
    ap.add_argument("--baseline", type=Path, action="append", default=[], help="a trained model directory (e.g. models/ser-default) judged on every corpus as a LOCO fit is, beside the table; repeatable")
    ap.add_argument("--cache", type=Path, default=REPO / "features" / "bench-corpora", help="one JSON per finished fit, reused by reruns")
    args = ap.parse_args(argv)

    dirs = [os.path.abspath(d) for d in args.features]
    settings = TrainSettings(
        model=args.model, epochs=args.epochs, patience=args.patience, label_smoothing=args.label_smoothing, batch_size=args.batch_size,
        seed=args.seed, speaker_norm=args.speaker_norm, norm_by=args.norm_by, norm_prior_s=args.norm_prior_s, label_mask=not args.no_label_mask, corpus_balance=args.corpus_balance, l2=args.l2, frames=args.frames,
    )  # fmt: skip
    data = load_meta(dirs)
    speakers = sorted(data.meta["speaker"].unique().tolist())
    present = sorted(data.meta["corpus"].unique().tolist())
    corpora = [] if args.no_loco else (args.corpora.split(",") if args.corpora else present)
    unknown = sorted(set(corpora) - set(present))
    if unknown:
        raise SystemExit(f"error: --corpora names {', '.join(unknown)}, not in the shards (they hold {', '.join(present)})")
    jobs = plan(speakers, corpora, args.ravdess_folds, args.folds_file, settings)
    baselines: dict[str, dict[str, Any]] = {}
    for b in args.baseline:
        for c in present:
            f = baseline(b, c, dirs)
            if f is not None:
                baselines[f"{b.name}/{c}"] = f
                print(f"baseline {b.name} on {c}: shared UAR {f['uar_shared']:.3f}, 4-class {f.get('uar_4', float('nan')):.3f} ({f['recordings']} recordings)", flush=True)
    if not jobs and not baselines:
        raise SystemExit("error: nothing to do: give corpora to leave out or --ravdess-folds")
    print(f"{len(jobs)} fits on {len(data.meta)} rows of {', '.join(present)}: {', '.join(jobs)}", flush=True)
    t0 = time.perf_counter()
    done = run(dirs, jobs, settings, args.cache, args.workers, args.scheduler)
    table = tables(done) + baseline_table(baselines)
    report = {
        "about": "Training across corpora: leave-one-corpus-out and RAVDESS EmoBox folds (benchmarks/corpora.py)",
        "features": data.features.to_dict(),
        "data": data.fingerprints,
        "rows_per_corpus": data.meta.groupby("corpus").size().to_dict(),
        "settings": settings.to_dict(),
        "results": done,
        "baselines": baselines,
        "minutes": (time.perf_counter() - t0) / 60,
    }
    write_json_atomic(report, args.out)
    args.out.with_suffix(".md").write_text(
        f"# Training across corpora ({settings.model}, {data.features.name}, seed {settings.seed})\n\n"
        f"Corpora: {', '.join(f'{c} ({n} rows)' for c, n in report['rows_per_corpus'].items())}. Loss masked to each "
        f"corpus's labels: {settings.label_mask}; corpus balance: {settings.corpus_balance}.\n\n{table}\n"
    )
    print("\n" + table, flush=True)
    return report


if __name__ == "__main__":
    main()
