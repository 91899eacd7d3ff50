"""Peak memory per Dask worker: `extract` on 1x, 4x and 16x a corpus, `score` on one recording of 10 min, 1 h, 10 h.

    python benchmarks/memory.py [--quick] [--corpus ../shared/data/ravdess-speech] [--files 120] [--workers 2]
                                [--scales 1,4,16] [--durations 600,3600,36000] [--no-augment] [--model DIR]
                                [--bound-gb 1.75]

The claim under test: a worker's memory does not grow with the size of the job. ``extract`` holds one shard of
files at a time; ``score`` streams a recording in 60 s blocks and splits long ones into 10 min chunks, so a 10 h
file costs a worker what a 10 min one does.

How: the corpus slice (the first ``--files`` files) is replicated by symlinks (copy00/, copy01/, ... so every
path, hence every recording id, is new); the long recordings are synthesised at 8 kHz and written block by block
as FLAC (the benchmark itself never holds one in memory). Every run gets a fresh LocalCluster of ``--workers``
single-threaded processes (passed as ``scheduler=cluster.scheduler_address``), and afterwards each worker reports
its own peak resident set (``getrusage(RUSAGE_SELF).ru_maxrss``). The table also gives each worker's resident set
before the job (imports done, nothing run): the job's share is the difference. Exit status 1 when a peak passes
``--bound-gb``.

``--quick`` (a check that the benchmark works, a couple of minutes): 30 files x 1/4/16 and 10 min + 1 h.
Score uses ``--model`` (default: the shipped models/ser-default when present, else a tiny untrained model of the
same shape: memory depends on the model's size, not on its weights being trained).
"""

from __future__ import annotations

import argparse
import importlib
import os
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))


def _peak_kb() -> int:
    import resource

    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss  # KiB on Linux


def _rss_kb() -> int:
    import psutil

    return psutil.Process().memory_info().rss // 1024


def run_on_fresh_cluster(workers: int, job, warmup=None):  # type: ignore[no-untyped-def]
    """(seconds, {worker: (rss before MiB, peak MiB)}, job result) of ``job(address)`` on a new LocalCluster."""
    from distributed import Client

    from ser_batch.cluster import local_cluster

    cluster = local_cluster(workers)
    try:
        with Client(cluster) as client:
            if warmup is not None:
                client.run(warmup)  # the imports a task would do anyway, so "before" is a fair floor
            before = client.run(_rss_kb)
            t0 = time.perf_counter()
            result = job(cluster.scheduler_address)
            seconds = time.perf_counter() - t0
            peaks = client.run(_peak_kb)
    finally:
        cluster.close()
    per_worker = {i: (before[a] / 1024, peaks[a] / 1024) for i, a in enumerate(sorted(peaks))}
    return seconds, per_worker, result


def _import_extract() -> None:
    importlib.import_module("ser_batch.extract")


def _import_score() -> None:
    importlib.import_module("ser_batch.score")


def replicate(files: list[Path], root: Path, copies: int) -> Path:
    """``copies`` trees of symlinks to ``files`` under ``root`` (the RAVDESS Actor_NN/ layout kept)."""
    for c in range(copies):
        for f in files:
            dst = root / f"copy{c:02d}" / f.parent.name / f.name
            dst.parent.mkdir(parents=True, exist_ok=True)
            if not dst.exists():
                os.symlink(f, dst)
    return root


def synthetic_corpus(root: Path, n: int) -> list[Path]:
    """RAVDESS-layout 3 s clips, when the real corpus is absent."""
    import soundfile as sf

    out = []
    sr = 16_000
    t = np.arange(3 * sr) / sr
    for i in range(n):
        actor, code = 1 + i % 24, f"{1 + (i // 24) % 8:02d}"
        p = root / f"Actor_{actor:02d}" / f"03-01-{code}-01-01-{1 + (i // 192) % 2:02d}-{actor:02d}.flac"
        if p.exists():
            p = p.with_name(p.stem + f"-{i}.flac")  # beyond 384 files names repeat; not a RAVDESS name any more
        p.parent.mkdir(parents=True, exist_ok=True)
        sf.write(p, (0.3 * np.sin(2 * np.pi * (150 + 5 * i) * t)).astype(np.float32), sr)
        out.append(p)
    return out


def long_recording(path: Path, seconds: float, sr: int = 8_000, block_s: float = 60.0) -> Path:
    """A speech-like recording of ``seconds``, synthesised and written one block at a time."""
    import soundfile as sf

    rng = np.random.default_rng(0)
    with sf.SoundFile(path, "w", sr, 1, format="FLAC", subtype="PCM_16") as f:
        done = 0.0
        while done < seconds:
            n = int(min(block_s, seconds - done) * sr)
            t = done + np.arange(n) / sr
            f0 = 160 + 40 * np.sin(2 * np.pi * 0.2 * t)
            phase = 2 * np.pi * np.cumsum(f0) / sr
            y = sum(np.sin(k * phase) / k for k in (1, 2, 3)) * (np.sin(2 * np.pi * 0.25 * t) > -0.3)
            f.write((0.25 * y + 0.01 * rng.standard_normal(n)).astype(np.float32))
            done += n / sr
    return path


def tiny_model(path: Path) -> Path:
    from ser_batch import modeldir, models
    from ser_batch.features import FeatureSettings
    from ser_batch.labels import EMOTIONS

    fs = FeatureSettings()
    m = models.build("frames", fs.n_frames, fs.n_coeffs, len(EMOTIONS))
    config = {
        "name": "tiny-untrained", "classes": list(EMOTIONS), "features": fs.to_dict(), "model": {}, "protocol": "holdout",
        "split": {"train_speakers": [], "val_speakers": [], "test_speakers": []},
    }  # fmt: skip
    scaler = modeldir.Scaler(np.zeros(fs.shape, np.float32), np.ones(fs.shape, np.float32))
    return modeldir.save(path, m, config, scaler)


def _fmt_duration(s: float) -> str:
    return f"{s / 3600:g} h" if s >= 3600 else f"{s / 60:g} min"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--corpus", default=str(REPO.parent / "shared" / "data" / "ravdess-speech"))
    ap.add_argument("--files", type=int, default=120, help="files of the corpus slice that is replicated")
    ap.add_argument("--scales", default="1,4,16", help="copies of the slice, comma-separated")
    ap.add_argument("--durations", default="600,3600,36000", help="seconds of each score recording, comma-separated")
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--no-augment", action="store_true", help="extract without the augmented copies")
    ap.add_argument("--model", default=None, help="model directory for score")
    ap.add_argument("--bound-gb", type=float, default=1.75, help="the claimed bound on a worker's peak RSS")
    ap.add_argument("--quick", action="store_true", help="30 files x 1/4/16 and 10 min + 1 h: checks the benchmark works")
    ap.add_argument("--skip-extract", action="store_true")
    ap.add_argument("--skip-score", action="store_true")
    args = ap.parse_args()
    if args.quick:
        args.files, args.durations = min(args.files, 30), "600,3600"

    from ser_batch import corpora
    from ser_batch.augment import AugmentSettings
    from ser_batch.extract import extract
    from ser_batch.modeldir import default_model
    from ser_batch.score import score

    rows: list[tuple[str, str, str, float, dict[int, tuple[float, float]]]] = []
    with tempfile.TemporaryDirectory(prefix="ser-memory-") as tmp_name:
        tmp = Path(tmp_name)
        if not args.skip_extract:
            corpus = Path(args.corpus)
            if corpus.is_dir():
                entries, _ = corpora.discover([corpus])
                files = [e.path for e in entries][: args.files]
                print(f"extract: {len(files)} files of {corpus.name}", file=sys.stderr)
            else:
                files = synthetic_corpus(tmp / "synthetic", args.files)
                print(f"extract: {len(files)} synthetic files ({corpus} not found)", file=sys.stderr)
            aug = None if args.no_augment else AugmentSettings()
            for k in (int(s) for s in args.scales.split(",")):
                root = replicate(files, tmp / f"x{k}", k)
                out = tmp / f"features-x{k}"
                job = lambda addr, root=root, out=out: extract([root], out, augment_settings=aug, scheduler=addr, progress=False)  # noqa: E731
                secs, per_worker, res = run_on_fresh_cluster(args.workers, job, _import_extract)
                rows.append(("extract", f"{len(files)} files x{k}", f"{res.files_ok + res.files_failed} files, {res.rows} rows", secs, per_worker))
                print(f"extract x{k}: {res.files_ok} ok, {res.files_failed} failed, {res.rows} rows in {secs:.1f} s", file=sys.stderr)
        if not args.skip_score:
            model = Path(args.model) if args.model else default_model()
            if not (model / "config.json").is_file():
                model = tiny_model(tmp / "tiny-model")
            for d in (float(s) for s in args.durations.split(",")):
                t0 = time.perf_counter()
                rec = long_recording(tmp / f"rec-{int(d)}s.flac", d)
                made = time.perf_counter() - t0
                out = tmp / f"report-{int(d)}.parquet"
                job = lambda addr, rec=rec, out=out: score([rec], out, model=model, scheduler=addr, progress=False)  # noqa: E731
                secs, per_worker, res = run_on_fresh_cluster(args.workers, job, _import_score)
                size = rec.stat().st_size / 2**20
                rows.append(("score", f"1 recording of {_fmt_duration(d)}", f"{size:.0f} MiB FLAC, {res.ok} ok", secs, per_worker))
                print(f"score {_fmt_duration(d)}: written in {made:.0f} s, scored in {secs:.1f} s ({res.ok} ok)", file=sys.stderr)
                rec.unlink()

    bound_mb = args.bound_gb * 1024
    print(f"\nPeak RSS per worker ({args.workers} single-threaded worker processes, a fresh LocalCluster per run)")
    print(f"{'job':<8} {'input':<26} {'what':<30} {'wall s':>7}  {'before MiB':>11}  {'peak MiB':>16}")
    worst = 0.0
    for job_name, what_in, what, secs, per_worker in rows:
        before = " / ".join(f"{b:.0f}" for b, _ in per_worker.values())
        peak = " / ".join(f"{p:.0f}" for _, p in per_worker.values())
        worst = max(worst, *(p for _, p in per_worker.values()))
        print(f"{job_name:<8} {what_in:<26} {what:<30} {secs:>7.1f}  {before:>11}  {peak:>16}")
    print(f"\nClient process peak (cumulative over all runs): {_peak_kb() / 1024:.0f} MiB")
    ok = worst < bound_mb
    print(f"Bound: every worker's peak < {args.bound_gb:g} GiB ({bound_mb:.0f} MiB): {'holds' if ok else 'BROKEN'} (worst {worst:.0f} MiB)")
    sys.exit(0 if ok else 1)


if __name__ == "__main__":
    main()
