"""The one place that makes or connects a Dask client, and follows submitted work with a progress bar."""

from __future__ import annotations

import logging
import os
import sys
import warnings
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
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


@contextmanager
def dask_client(
    scheduler: str | None = None,
    workers: int | None = None,
    dashboard: str | None = ":8787",
    echo: Callable[[str], None] | None = None,
) -> Iterator[Client]:
    """A client on ``scheduler`` (``tcp://HOST:PORT``), or on a LocalCluster of ``workers`` processes.

    The local default is one single-threaded worker process per core, which suits the GIL-bound audio work.
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
    n = workers or os.cpu_count() or 1
    if n < 1:
        raise ConfigError("--workers must be at least 1")
    cluster = local_cluster(n, dashboard)
    client = Client(cluster)
    say(f"Dask: local cluster of {n} worker processes; dashboard {client.dashboard_link}")
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
    futures: Sequence[Future],
    total: float,
    weights: dict[str, float],
    unit: str,
    show: bool = True,
) -> Iterator[tuple[Future, Any, BaseException | None]]:
    """Yield (future, result, error) as tasks finish, advancing a progress bar by each task's weight."""
    bar = _bar(total, unit, show)
    try:
        for fut in as_completed(futures):
            try:
                result, error = fut.result(), None
            except Exception as exc:  # a task that failed after its retries: the caller turns it into error rows
                result, error = None, exc
            bar.update(weights.get(fut.key, 0))
            yield fut, result, error
    finally:
        bar.close()


def _bar(total: float, unit: str, show: bool) -> Any:
    from tqdm import tqdm

    return tqdm(total=total, unit=unit, disable=not show, file=sys.stderr, dynamic_ncols=True, unit_scale=True)
