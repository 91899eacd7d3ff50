"""How the client process of `ser-batch score` and `ser-batch extract --no-augment` scales with the number of files.

    python benchmarks/scale.py [--n 10000,100000] [--what score,extract] [--workers 2] [--json OUT]
    python benchmarks/scale.py --n 500,2000                # a quick check
    python benchmarks/scale.py --n 1000000 --what score    # the 1M run, where the session allows it
    python benchmarks/scale.py --n 10000,100000,1000000 --what score --plan-only   # the client alone, no scoring

For each N a tree of N short recordings is built under --tree-root (default /tmp/ser-scale/N/tree): hard links
(symlinks where linking fails, e.g. across devices or at the link limit) to the clips of --source (default
../shared/data/ravdess-speech, 1440 clips of about 3.7 s), in folders of at most 1000 files, each keeping its
RAVDESS name so that `extract` parses labels from it. A tree already built for the same N and source is reused.
The source is never written to or deleted.

An external Dask cluster (ser-batch's own `local_cluster`: single-threaded worker processes with ser-batch's worker
environment) runs in a separate process, so that the measured client is only the `ser-batch` process:

    ser-batch score TREE --out OUT.parquet --scheduler ADDR --model models/ser-logmel --quiet
    ser-batch extract TREE --no-augment --features logmel --out OUT --scheduler ADDR --quiet

Per run: the client's own CPU seconds (user + sys) and peak RSS (``os.wait4`` of the child), the time from its start
until the scheduler first sends one of its tasks to a worker and first holds a result ("first task", "first result":
stamped by a small scheduler plugin registered from this process, so no poll interval blurs them), and the total
wall time. Then the slope per file between the two
largest N (CPU ms/file, memory KB/file, first-task ms/file) and a 1M-file estimate from it, against the targets:
client CPU <= 0.1 ms and memory growth <= 0.5 KB per file (1M files: under 2 minutes of CPU and 1 GB), workers
busy within 10 s of the start at 100k files. Each command first runs once on a small tree (100 files per worker) so
every worker has its model and libraries loaded; outputs are removed after every run.
"""

from __future__ import annotations

import argparse
import errno
import json
import os
import shutil
import subprocess
import sys
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]

AUDIO_SUFFIXES = (".wav", ".flac", ".ogg", ".mp3")
PER_FOLDER = 1000
MILLION = 1_000_000
TARGET_CPU_MS_PER_FILE = 0.1
TARGET_KB_PER_FILE = 0.5
TARGET_1M_CPU_S = 120.0
TARGET_1M_RSS_MB = 1000.0
TARGET_FIRST_TASK_S = 10.0
TARGET_FIRST_TASK_N = 100_000
WARMUP_FILES_PER_WORKER = 100  # score's tasks hold at least 120 s of audio: enough for one task per worker


@dataclass
class Run:
    """One measured client run."""

    what: str
    files: int
    cpu_s: float
    peak_rss_mb: float
    first_task_s: float | None
    first_result_s: float | None
    total_s: float
    rc: int
    done: int | None  # recordings scored ok (score) or files extracted ok (extract); None when unknown

    @property
    def cpu_ms_per_file(self) -> float:
        return self.cpu_s * 1000 / max(1, self.files)


# ---------------------------------------------------------------------------------------------- the tree of files


def source_clips(source: Path) -> list[Path]:
    """Audio files under ``source``, sorted, one per file name (a folder of the tree holds each name once)."""
    seen: dict[str, Path] = {}
    for folder, dirs, names in os.walk(source):
        dirs.sort()
        for name in sorted(names):
            if not name.startswith(".") and os.path.splitext(name)[1].lower() in AUDIO_SUFFIXES:
                seen.setdefault(name, Path(folder) / name)
    if not seen:
        sys.exit(f"no audio files under {source}")
    return [seen[k] for k in sorted(seen)]


def _link(src: Path, dst: Path) -> bool:
    """Hard-link ``dst`` to ``src``; a symlink where a hard link cannot be made. True for a hard link."""
    try:
        os.link(src, dst)
        return True
    except OSError as exc:
        if exc.errno not in (errno.EXDEV, errno.EMLINK, errno.EPERM, errno.EACCES, errno.ENOTSUP):
            raise
    os.symlink(src.resolve(), dst)
    return False


def build_tree(clips: list[Path], tree: Path, n: int, per_folder: int = PER_FOLDER) -> str:
    """Make ``tree`` hold ``n`` links to ``clips`` (file i is clip i mod len(clips)) in folders of at most
    ``per_folder`` files with distinct names; reuse a tree already built alike. Returns how it was made."""
    marker = tree.parent / f"{tree.name}.json"
    want = {"n": n, "clips": len(clips), "first": str(clips[0]), "per_folder": per_folder}
    if tree.is_dir() and marker.is_file():
        try:
            if json.loads(marker.read_text()) == want:
                return "reused"
        except ValueError:
            pass
    marker.unlink(missing_ok=True)
    if tree.exists():
        shutil.rmtree(tree)  # links only: the clips they point at stay
    per = max(1, min(per_folder, len(clips)))  # names within one folder must differ
    tree.mkdir(parents=True)
    hard = soft = 0
    for i in range(n):
        folder = tree / f"part-{i // per:05d}"
        if i % per == 0:
            folder.mkdir()
        clip = clips[i % len(clips)]
        if _link(clip, folder / clip.name):
            hard += 1
        else:
            soft += 1
    marker.write_text(json.dumps(want))
    return "hard links" if not soft else "symlinks" if not hard else f"{hard} hard links, {soft} symlinks"


# ---------------------------------------------------------------------------------------------- the cluster


CLUSTER_CODE = """
import sys
from ser_batch.cluster import local_cluster
cluster = local_cluster(int(sys.argv[1]), None)
print(cluster.scheduler_address, flush=True)
sys.stdin.read()  # until the benchmark closes our stdin (or dies)
cluster.close()
"""


def start_cluster(workers: int, log: Path) -> tuple[subprocess.Popen[str], str]:
    """A LocalCluster as ser-batch makes it, in its own process (its chatter to ``log``); returns (process,
    scheduler address)."""
    with log.open("w") as fh:
        proc = subprocess.Popen([sys.executable, "-c", CLUSTER_CODE, str(workers)], cwd=REPO, stdin=subprocess.PIPE,
                                stdout=subprocess.PIPE, stderr=fh, text=True)  # fmt: skip
    assert proc.stdout is not None
    addr = proc.stdout.readline().strip()
    if not addr.startswith("tcp://"):
        proc.kill()
        sys.exit(f"the cluster process did not start (printed {addr!r}; see {log})")
    return proc, addr


def stop_cluster(proc: subprocess.Popen[str]) -> None:
    """Close the cluster process: its stdin first, then a kill if it lingers."""
    try:
        if proc.stdin:
            proc.stdin.close()
        proc.wait(30)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()


def _plugin_class() -> type:
    """The scheduler plugin that stamps the first task sent to a worker and the first result (wall-clock time).

    Made in a function so that this module imports without distributed; pickled by value to the scheduler."""
    from distributed.diagnostics.plugin import SchedulerPlugin

    class FirstTasks(SchedulerPlugin):
        name = "ser-scale-first-tasks"

        def __init__(self) -> None:
            self.first_processing: float | None = None
            self.first_memory: float | None = None

        def transition(self, key: Any, start: str, finish: str, *args: Any, **kwargs: Any) -> None:
            if finish == "processing" and self.first_processing is None:
                self.first_processing = time.time()
            elif finish in ("memory", "erred") and self.first_memory is None:
                self.first_memory = time.time()

    return FirstTasks


def _plugin_reset(dask_scheduler: Any) -> None:
    plugin = dask_scheduler.plugins["ser-scale-first-tasks"]
    plugin.first_processing = plugin.first_memory = None


def _plugin_read(dask_scheduler: Any) -> tuple[float | None, float | None]:
    plugin = dask_scheduler.plugins["ser-scale-first-tasks"]
    return plugin.first_processing, plugin.first_memory


# ---------------------------------------------------------------------------------------------- one client run


PLAN_ONLY = ["--max-hours", "0.000001"]
"""``--plan-only``: every recording is refused as oversized by its probe task, so the workers only list and probe
and the client does everything it does per file (listing, batches, plans, report rows) without the scoring."""


def command(what: str, tree: Path, out: Path, addr: str, model: Path, plan_only: bool = False) -> list[str]:
    """The ser-batch command line of ``what`` (score or extract)."""
    exe = Path(sys.executable).with_name("ser-batch")
    head = [str(exe)] if exe.exists() else [shutil.which("ser-batch") or "ser-batch"]
    if what == "score":
        return [*head, "score", str(tree), "--out", str(out / "report.parquet"), "--scheduler", addr, "--model", str(model), "--quiet", *(PLAN_ONLY if plan_only else [])]
    return [*head, "extract", str(tree), "--no-augment", "--features", "logmel", "--out", str(out / "features"), "--scheduler", addr, "--quiet"]


def done_count(what: str, out: Path, plan_only: bool = False) -> int | None:
    """Recordings scored ok (``plan_only``: refused as oversized), or files extracted ok; None when the output is
    missing. The first error goes to stderr."""
    try:
        if what == "score":
            import pyarrow.parquet as pq

            table = pq.read_table(out / "report.parquet", columns=["status", "error"]).to_pandas()
            bad = table.loc[table["status"] != "ok", "error"]
            if plan_only:
                return int(bad.str.contains("oversized").sum())
            if len(bad):
                print(f"score: {len(bad)} recordings not ok, e.g. {bad.iloc[0]}", file=sys.stderr)
            return int(len(table) - len(bad))
        return int(json.loads((out / "features" / "manifest.json").read_text())["totals"]["files_ok"])
    except (OSError, ValueError, KeyError):
        return None


def measure(what: str, tree: Path, n: int, out: Path, addr: str, model: Path, monitor: Any, log: Path, plan_only: bool = False) -> Run:
    """Run one ser-batch command as a child: its rusage, when the scheduler first sent it a task and first held a
    result (the plugin's stamps), and its wall time."""
    if out.exists():
        shutil.rmtree(out)
    out.mkdir(parents=True)
    monitor.run_on_scheduler(_plugin_reset)
    with log.open("w") as fh:
        wall0, t0 = time.time(), time.perf_counter()
        proc = subprocess.Popen(command(what, tree, out, addr, model, plan_only), cwd=REPO, stdout=fh, stderr=subprocess.STDOUT)
        _pid, status, usage = os.wait4(proc.pid, 0)  # wait4, not Popen.wait: it gives the child's own rusage
        total = time.perf_counter() - t0
        proc.returncode = os.waitstatus_to_exitcode(status)
    first_task, first_result = (None if t is None else t - wall0 for t in monitor.run_on_scheduler(_plugin_read))
    run = Run(what, n, usage.ru_utime + usage.ru_stime, usage.ru_maxrss / 1024, first_task, first_result, total,
              proc.returncode if not plan_only else 0, done_count(what, out, plan_only))  # fmt: skip
    shutil.rmtree(out, ignore_errors=True)
    return run


# ---------------------------------------------------------------------------------------------- the report


def slopes(runs: list[Run]) -> dict[str, Any] | None:
    """Per-file slopes between the two largest N, and the 1M estimate from them (None with fewer than two N)."""
    runs = sorted(runs, key=lambda r: r.files)
    if len(runs) < 2:
        return None
    a, b = runs[-2], runs[-1]
    dn = b.files - a.files
    cpu_ms = (b.cpu_s - a.cpu_s) * 1000 / dn
    kb = (b.peak_rss_mb - a.peak_rss_mb) * 1024 / dn
    first_ms = None if a.first_task_s is None or b.first_task_s is None else (b.first_task_s - a.first_task_s) * 1000 / dn
    big = b.files >= MILLION
    # a negative slope is noise (small N, a busy machine): extrapolate flat from the largest N rather than below it
    at_1m = {
        "estimated": not big,
        "cpu_s": b.cpu_s + max(0.0, cpu_ms) / 1000 * (MILLION - b.files),
        "peak_rss_mb": b.peak_rss_mb + max(0.0, kb) / 1024 * (MILLION - b.files),
        "first_task_s": None if first_ms is None else b.first_task_s + max(0.0, first_ms) / 1000 * (MILLION - b.files),  # type: ignore[operator]
    }
    at_100k = None if first_ms is None else b.first_task_s + max(0.0, first_ms) / 1000 * (TARGET_FIRST_TASK_N - b.files)  # type: ignore[operator]
    return {"between": [a.files, b.files], "cpu_ms_per_file": cpu_ms, "kb_per_file": kb, "first_task_ms_per_file": first_ms,
            "first_task_s_at_100k": at_100k, "at_1m": at_1m}  # fmt: skip


def _f(v: float | None, fmt: str) -> str:
    return "-" if v is None else format(v, fmt)


def _ok(good: bool) -> str:
    return "meets" if good else "MISSES"


def report(runs: list[Run], workers: int) -> dict[str, Any]:
    """Print the Markdown tables; return everything for --json."""
    print(f"\nClient of `ser-batch` on an external cluster of {workers} single-threaded workers ({os.cpu_count()} cores)\n")
    print("| command | files | client CPU s | CPU ms/file | peak RSS MB | first task s | first result s | total s | done | rc |")
    print("|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|")
    for r in runs:
        print(f"| {r.what} | {r.files} | {r.cpu_s:.2f} | {r.cpu_ms_per_file:.3f} | {r.peak_rss_mb:.0f} | {_f(r.first_task_s, '.2f')} | "
              f"{_f(r.first_result_s, '.2f')} | {r.total_s:.1f} | {_f(r.done, 'd')} | {r.rc} |")  # fmt: skip
    out: dict[str, Any] = {"workers": workers, "runs": [asdict(r) | {"cpu_ms_per_file": r.cpu_ms_per_file} for r in runs], "slopes": {}}
    rows = []
    for what in dict.fromkeys(r.what for r in runs):
        s = slopes([r for r in runs if r.what == what])
        if s is None:
            continue
        out["slopes"][what] = s
        m, f100 = s["at_1m"], s["first_task_s_at_100k"]
        tag = " (estimated)" if m["estimated"] else ""
        rows.append(
            f"| {what} | {s['between'][0]}-{s['between'][1]} | {s['cpu_ms_per_file']:.4f} (<= {TARGET_CPU_MS_PER_FILE}: {_ok(s['cpu_ms_per_file'] <= TARGET_CPU_MS_PER_FILE)}) | "
            f"{s['kb_per_file']:.3f} (<= {TARGET_KB_PER_FILE}: {_ok(s['kb_per_file'] <= TARGET_KB_PER_FILE)}) | "
            f"{_f(s['first_task_ms_per_file'], '.4f')} | "
            f"{_f(f100, '.1f')} (<= {TARGET_FIRST_TASK_S:g}: {'-' if f100 is None else _ok(f100 <= TARGET_FIRST_TASK_S)}) | "
            f"{m['cpu_s']:.0f}{tag} (< {TARGET_1M_CPU_S:g}: {_ok(m['cpu_s'] < TARGET_1M_CPU_S)}) | "
            f"{m['peak_rss_mb']:.0f}{tag} (< {TARGET_1M_RSS_MB:g}: {_ok(m['peak_rss_mb'] < TARGET_1M_RSS_MB)}) | "
            f"{_f(m['first_task_s'], '.0f')}{tag} |"
        )  # fmt: skip
    if rows:
        print("\nPer file, between the two largest N (a straight line through them; targets in brackets):\n")
        print("| command | N | CPU ms/file | memory KB/file | first task ms/file | first task s at 100k | 1M: client CPU s | 1M: peak RSS MB | 1M: first task s |")
        print("|---|---|---:|---:|---:|---:|---:|---:|---:|")
        print("\n".join(rows))
        print("\n1M figures are from the slope unless 1M files were measured; 'first task s at 100k' likewise unless N=100k was. "
              "A negative slope (noise: small N or a busy machine) is extrapolated flat.")
    return out


# ---------------------------------------------------------------------------------------------- main


def parse_counts(text: str) -> list[int]:
    """'10000,100000' or '10k,1M' -> [10000, 100000]."""
    counts = []
    for item in text.split(","):
        item = item.strip().lower()
        mult = {"k": 1_000, "m": MILLION}.get(item[-1:], 1)
        counts.append(int(float(item[:-1] if mult > 1 else item) * mult))
    if not counts or min(counts) < 1:
        raise argparse.ArgumentTypeError(f"--n {text}: positive counts, comma-separated")
    return sorted(set(counts))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--n", type=parse_counts, default=[10_000, 100_000], help="file counts, comma-separated (default 10000,100000; 10k, 1M work)")
    ap.add_argument("--what", default="score,extract", help="commands to measure: score, extract or both (default score,extract)")
    ap.add_argument("--source", type=Path, default=REPO.parent / "shared" / "data" / "ravdess-speech", help="folder of clips (never modified)")
    ap.add_argument("--tree-root", type=Path, default=Path("/tmp/ser-scale"), help="trees go to ROOT/N/tree (default /tmp/ser-scale)")
    ap.add_argument("--model", type=Path, default=REPO / "models" / "ser-logmel", help="model for score (default models/ser-logmel, the cheap one)")
    ap.add_argument("--workers", type=int, default=2, help="worker processes of the external cluster (default 2)")
    ap.add_argument("--remove-trees", action="store_true", help="delete the trees afterwards (default: keep them for the next run)")
    ap.add_argument("--json", type=Path, default=None, help="also write the figures to this JSON file")
    ap.add_argument("--plan-only", action="store_true", help="score: refuse every file as oversized (--max-hours), so the workers only probe and the client's per-file work is measured without hours of scoring")
    args = ap.parse_args()
    whats = [w.strip() for w in args.what.split(",") if w.strip()]
    if not whats or set(whats) - {"score", "extract"}:
        sys.exit(f"--what {args.what}: score and/or extract")
    if args.source.resolve() == args.tree_root.resolve() or args.tree_root.resolve() in args.source.resolve().parents:
        sys.exit("--tree-root must not contain --source")

    clips = source_clips(args.source)
    args.tree_root.mkdir(parents=True, exist_ok=True)
    warmup_files = WARMUP_FILES_PER_WORKER * args.workers
    trees = {}
    for n in [warmup_files, *args.n]:
        t = time.perf_counter()
        tree = args.tree_root / str(n) / "tree"
        how = build_tree(clips, tree, n)
        trees[n] = tree
        print(f"tree of {n} files ({how}, {len(clips)} distinct clips): {tree} [{time.perf_counter() - t:.1f} s]", file=sys.stderr)

    from distributed import Client

    cluster, addr = start_cluster(args.workers, args.tree_root / "cluster.log")
    runs: list[Run] = []
    try:
        with Client(addr, timeout="30s") as monitor:
            monitor.wait_for_workers(args.workers, timeout=120)
            monitor.register_plugin(_plugin_class()())
            for what in whats:
                out = args.tree_root / "out" / what
                warm = measure(what, trees[warmup_files], warmup_files, out, addr, args.model, monitor, args.tree_root / f"{what}-warmup.log")
                if warm.rc:
                    sys.exit(f"warm-up {what} failed (rc {warm.rc}); see {args.tree_root / f'{what}-warmup.log'}")
                for n in args.n:
                    log = args.tree_root / f"{what}-{n}.log"
                    run = measure(what, trees[n], n, out, addr, args.model, monitor, log, args.plan_only and what == "score")
                    print(f"{what} {n}: cpu {run.cpu_s:.1f} s, rss {run.peak_rss_mb:.0f} MB, first task {_f(run.first_task_s, '.2f')} s, "
                          f"total {run.total_s:.1f} s, rc {run.rc} (log {log})", file=sys.stderr)  # fmt: skip
                    runs.append(run)
    finally:
        stop_cluster(cluster)
        if args.remove_trees:
            for n in trees:
                shutil.rmtree(args.tree_root / str(n), ignore_errors=True)
    result = report(runs, args.workers)
    if args.json:
        args.json.write_text(json.dumps(result, indent=2))
    if any(r.rc or (r.done is not None and r.done != r.files) for r in runs):
        print("\nsome runs failed or wrote fewer rows than files: see the 'done' and 'rc' columns and the logs", file=sys.stderr)
        sys.exit(1)


if __name__ == "__main__":
    main()
