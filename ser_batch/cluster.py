"""The one place that makes or connects a Dask client, and follows submitted work with a progress bar."""

from __future__ import annotations

import logging
import math
import os
import sys
import warnings
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from os import PathLike
from pathlib import Path, PurePosixPath
from typing import Any

import dask
from distributed import Client, Future, LocalCluster, as_completed

from ser_batch.errors import ConfigError

WORKER_ENV = {
    # One BLAS/OpenMP thread per worker process: Dask supplies the parallelism, oversubscription only slows it.
    "OMP_NUM_THREADS": "1",
    "OPENBLAS_NUM_THREADS": "1",
    "MKL_NUM_THREADS": "1",
    "TF_CPP_MIN_LOG_LEVEL": "3",
    # TensorFlow's own pools (the classifier) would otherwise take every core in every worker, beside the encoder
    "TF_NUM_INTRAOP_THREADS": "1",
    "TF_NUM_INTEROP_THREADS": "1",
    # librosa compiles numba gufuncs into its own folder on first import; fresh workers doing that at once can
    # leave that cache inconsistent, and later librosa.yin calls in the user's own code then segfault (numba
    # issue #10128). ser-batch calls no numba code itself; its workers keep their compiled copies to themselves.
    "NUMBA_CACHE_DIR": str(Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "ser-batch" / "numba"),
}

MALLOC_ENV = {
    # Dask's nanny starts workers with MALLOC_TRIM_THRESHOLD_=65536 (to hand freed memory back early). Setting it
    # also pins glibc's mmap threshold at 128 KiB, so every audio-sized array becomes a fresh mmap and page faults:
    # extract ran 3x slower in a worker than in a plain process. Arrays below 4 MiB (a file's windows and spectra)
    # come from the heap again; larger ones (score's batches) are still mapped and unmapped, and free heap above
    # 32 MiB still goes back to the system, so a worker's peak stays where it was (measured: 1.24 GB in score).
    "MALLOC_TRIM_THRESHOLD_": str(32 * 2**20),
    "MALLOC_MMAP_THRESHOLD_": str(4 * 2**20),
}

RETRIES = 2
"""Each task is retried this often when it raises (a full disk, a flaky mount). A task whose worker *dies* is rerun
elsewhere by the scheduler regardless, up to ``distributed.scheduler.allowed-failures`` deaths (default 3). Tasks
are idempotent (named outputs, atomic writes), so neither kind of rerun duplicates rows."""


WORKER_MEMORY = 2 * 2**30
"""Memory (bytes) a local worker process is planned with: a ``whisper_base`` score worker peaks at ~1.6 GB (the
encoder weights plus a batch), extract and the smaller models stay well below. `default_workers` starts no more
workers than usable memory holds at this size, so a small container is not run out of memory by its own workers."""

CGROUP_ROOT = "/sys/fs/cgroup"
"""Where the cgroup file systems are mounted (v2: the unified hierarchy itself; v1: one folder per controller)."""

PROC_CGROUP = "/proc/self/cgroup"
"""This process's cgroup per hierarchy; limits set on it (or an ancestor) below `CGROUP_ROOT` apply too."""

_NO_MEMORY_LIMIT = 2**60
"""cgroup memory limits at or above this mean "unlimited" (v1 writes 9223372036854771712, not "max")."""

CgroupPath = str | PathLike[str]


def usable_cpus(cgroup_root: CgroupPath = CGROUP_ROOT, proc_cgroup: CgroupPath = PROC_CGROUP) -> int:
    """CPUs this process may use: the smaller of its CPU affinity (cpusets, ``taskset``) and its cgroup CPU quota.

    ``os.cpu_count()`` counts the host's cores, so a container limited to 4 CPUs on a 64-core host would start 64
    workers. A quota is rounded up (1.5 CPUs -> 2); the result is at least 1.
    """
    n = _affinity_cpus()
    quota = _cgroup_cpu_quota(Path(cgroup_root), _own_cgroups(proc_cgroup))
    return max(1, min(n, quota) if quota is not None else n)


def usable_memory_bytes(cgroup_root: CgroupPath = CGROUP_ROOT, proc_cgroup: CgroupPath = PROC_CGROUP) -> int | None:
    """Memory this process may use: the smaller of physical memory and its cgroup memory limit; None if unknown.

    A cgroup limit of ``max`` (v2) or an absurdly large value (v1's "unlimited") counts as no limit.
    """
    limits = [m for m in (_physical_memory(), _cgroup_memory_limit(Path(cgroup_root), _own_cgroups(proc_cgroup))) if m]
    return min(limits) if limits else None


def default_workers(cgroup_root: CgroupPath = CGROUP_ROOT, proc_cgroup: CgroupPath = PROC_CGROUP) -> int:
    """Worker processes of a local cluster: one per usable CPU, but no more than usable memory holds at
    `WORKER_MEMORY` each; at least 1."""
    return _plan_workers(usable_cpus(cgroup_root, proc_cgroup), usable_memory_bytes(cgroup_root, proc_cgroup))[0]


def _plan_workers(cpus: int, memory: int | None) -> tuple[int, str]:
    """(workers, why) for `cpus` usable CPUs and `memory` usable bytes (None: unknown, CPUs alone decide)."""
    if memory is None:
        return max(1, cpus), f"{cpus} usable CPUs, memory unknown"
    by_memory = memory // WORKER_MEMORY
    if by_memory < cpus:
        return max(1, by_memory), (
            f"{cpus} usable CPUs but {memory / 1e9:.1f} GB memory, {WORKER_MEMORY / 1e9:.1f} GB per worker"
        )
    return max(1, cpus), f"{cpus} usable CPUs, {memory / 1e9:.1f} GB memory"


def _affinity_cpus() -> int:
    """CPUs in this process's affinity mask (all cores where the platform has no affinity)."""
    if hasattr(os, "sched_getaffinity"):
        try:
            return len(os.sched_getaffinity(0)) or 1
        except OSError:
            pass
    return os.cpu_count() or 1


def _physical_memory() -> int | None:
    """Physical memory in bytes, from sysconf; None where the platform does not say."""
    try:
        pages, size = os.sysconf("SC_PHYS_PAGES"), os.sysconf("SC_PAGE_SIZE")
    except (AttributeError, ValueError, OSError):
        return None
    return pages * size if pages > 0 and size > 0 else None


def _own_cgroups(proc_cgroup: CgroupPath) -> dict[str, str]:
    """Controller -> this process's cgroup path, from ``/proc/self/cgroup`` ("" names the v2 unified hierarchy)."""
    try:
        text = Path(proc_cgroup).read_text()
    except (OSError, ValueError):
        return {}
    own: dict[str, str] = {}
    for line in text.splitlines():
        fields = line.split(":", 2)
        if len(fields) == 3:
            for controller in fields[1].split(",") if fields[1] else [""]:
                own[controller] = fields[2]
    return own


def _limit_dirs(base: Path, own: str | None) -> list[Path]:
    """`base` and each existing folder from it down to `base/own`: a limit on any of them applies to this process.

    Where `own` is not below `base` (a container without a cgroup namespace sees the host's path), only `base`.
    """
    dirs = [base]
    for part in PurePosixPath(own or "/").parts[1:]:
        if part == ".." or not (dirs[-1] / part).is_dir():
            break
        dirs.append(dirs[-1] / part)
    return dirs


def _read(path: Path) -> str | None:
    """The stripped text of a cgroup file; None when it is missing or unreadable."""
    try:
        return path.read_text().strip()
    except (OSError, ValueError):
        return None


def _cpus_of(quota: str, period: str) -> int | None:
    """ceil(quota / period), at least 1; None for no limit ("max", -1) or malformed values."""
    try:
        q, p = int(quota), int(period)
    except ValueError:
        return None
    return max(1, math.ceil(q / p)) if q > 0 and p > 0 else None


def _cgroup_cpu_quota(root: Path, own: dict[str, str]) -> int | None:
    """The tightest CPU quota (in whole CPUs) of cgroup v2 ``cpu.max`` or v1 ``cpu.cfs_quota_us``; None if none."""
    quotas: list[int | None] = []
    for d in _limit_dirs(root, own.get("")):  # v2: "QUOTA PERIOD" or "max PERIOD"
        fields = (_read(d / "cpu.max") or "").split()
        if len(fields) == 2:
            quotas.append(_cpus_of(*fields))
    for name in ("cpu", "cpu,cpuacct", "cpuacct,cpu"):  # v1: the cpu controller, alone or co-mounted
        if not (root / name).is_dir():
            continue
        for d in _limit_dirs(root / name, own.get("cpu")):
            quota, period = _read(d / "cpu.cfs_quota_us"), _read(d / "cpu.cfs_period_us")
            if quota is not None and period is not None:
                quotas.append(_cpus_of(quota, period))
    found = [q for q in quotas if q is not None]
    return min(found) if found else None


def _cgroup_memory_limit(root: Path, own: dict[str, str]) -> int | None:
    """The tightest cgroup memory limit in bytes (v2 ``memory.max``, v1 ``memory.limit_in_bytes``); None if none."""
    files = [d / "memory.max" for d in _limit_dirs(root, own.get(""))]
    if (root / "memory").is_dir():
        files += [d / "memory.limit_in_bytes" for d in _limit_dirs(root / "memory", own.get("memory"))]
    limits: list[int] = []
    for f in files:
        text = _read(f)
        if text and text.isdigit() and 0 < int(text) < _NO_MEMORY_LIMIT:  # "max" and v1's "unlimited" are no limit
            limits.append(int(text))
    return min(limits) if limits else None


@contextmanager
def dask_client(
    scheduler: str | None = None,
    workers: int | None = None,
    dashboard: str | None = ":8787",
    echo: Callable[[str], None] | None = None,
) -> Iterator[Client]:
    """A client on ``scheduler`` (``tcp://HOST:PORT``), or on a LocalCluster of ``workers`` processes.

    Local workers are single-threaded processes, which suits the GIL-bound audio work; by default one per usable
    CPU as far as memory allows (`default_workers`: container quotas and affinity count, not the host's cores).
    """
    say = echo or (lambda _msg: None)
    if scheduler:
        try:
            client = Client(scheduler, timeout="20s")
        except OSError as exc:
            raise ConfigError(f"cannot reach the Dask scheduler at {scheduler}: {exc}") from exc
        say(f"Dask: connected to {scheduler}; dashboard {client.dashboard_link}")
        try:
            yield client
        finally:
            client.close()
        return
    if workers is None:
        n, why = _plan_workers(usable_cpus(), usable_memory_bytes())
        why = f" ({why})"
    else:
        n, why = workers, ""
    if n < 1:
        raise ConfigError(f"--workers {n}: a local cluster needs at least 1 worker; leave --workers out for the default")
    cluster = local_cluster(n, dashboard)
    client = Client(cluster)
    say(f"Dask: local cluster of {n} worker processes{why}; dashboard {client.dashboard_link}")
    try:
        yield client
    finally:
        client.close()
        cluster.close()


def local_cluster(n_workers: int, dashboard: str | None = ":0") -> LocalCluster:
    """A LocalCluster of ``n_workers`` single-threaded worker processes, with malloc set for array-heavy tasks."""
    environ = {**dask.config.get("distributed.nanny.pre-spawn-environ", {}), **MALLOC_ENV}
    with dask.config.set({"distributed.nanny.pre-spawn-environ": environ}), warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)  # "port 8787 is in use, using another" is not the user's concern
        return LocalCluster(
            n_workers=n_workers,
            threads_per_worker=1,
            processes=True,
            dashboard_address=dashboard,
            silence_logs=logging.ERROR,
            env=WORKER_ENV,
        )


def follow(
    futures: Iterable[Future],
    total: float | None,
    weights: dict[str, float],
    unit: str,
    show: bool = True,
    in_flight: int | None = None,
) -> Iterator[tuple[Future, Any, BaseException | None]]:
    """Yield (future, result, error) as tasks finish, advancing a progress bar by each task's weight.

    `futures` may be a generator that submits as it is pulled: it is pulled only while fewer than `in_flight`
    tasks are unfinished (all at once when None), so a job of any size keeps a bounded number of tasks on the
    client and the scheduler. Each future's weight must be in `weights` once it is pulled; with `total` None the
    bar's total is the weight pulled so far.
    """
    bar = progress_bar(0 if total is None else total, unit, show)
    source, pending = iter(futures), as_completed()

    def top_up() -> None:
        while in_flight is None or pending.count() < in_flight:
            fut = next(source, None)
            if fut is None:
                return
            pending.add(fut)
            if total is None:
                bar.total += weights.get(fut.key, 0)
                bar.refresh()

    try:
        top_up()
        while not pending.is_empty():
            fut = next(pending)
            try:
                result, error = fut.result(), None
            except Exception as exc:  # a task that failed after its retries: the caller turns it into error rows
                result, error = None, exc
            bar.update(weights.get(fut.key, 0))
            yield fut, result, error
            top_up()
    finally:
        bar.close()


def progress_bar(total: float | None, unit: str, show: bool) -> Any:
    """A progress bar on stderr in the summary's unit (hidden when ``show`` is false); ``total`` None: a count."""
    from tqdm import tqdm

    # the summary's own unit and figures (e.g. 1.48 h audio), never tqdm's inverted rates such as "920s/h audio"
    fmt = "{l_bar}{bar}| {n:.2f}/{total:.2f} " + unit + " [{elapsed}<{remaining}]" if isinstance(total, float) else None
    return tqdm(total=total, unit=unit, disable=not show, file=sys.stderr, dynamic_ncols=True, bar_format=fmt)
