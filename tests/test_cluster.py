"""The jobs on a real multi-process Dask cluster: a ``dask scheduler`` and two ``dask worker`` commands started as
separate OS processes on 127.0.0.1, reached by ``scheduler=`` (``--scheduler``) the way a user's cluster is.

``extract`` and ``score`` on that cluster must write exactly what a local run writes, and ``train`` must finish
and leave a loadable model directory. The helpers here (``external_cluster``,
``write_train_corpus``, ``speechy_file``) are reused by test_faults.py and test_hostile.py.

Every process started here is killed (its whole process group) in teardown, also when a test fails.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import soundfile as sf

from conftest import bad_files, make_tiny_model, write_synth
from ser_batch import shards
from ser_batch.cluster import WORKER_ENV
from ser_batch.features import FeatureSettings

pytestmark = pytest.mark.slow  # 40-65 s on two cores (more with a training run beside it): clusters start, TF loads in workers

FS = FeatureSettings()
DASK = str(Path(sys.executable).with_name("dask"))

# ---------------------------------------------------------------- an external cluster of OS processes


@dataclass
class ExternalCluster:
    """A scheduler and worker commands running as separate process groups."""

    address: str
    scheduler: subprocess.Popen
    workers: list[subprocess.Popen] = field(default_factory=list)
    logs: Path | None = None

    def kill_worker(self, i: int) -> None:
        """SIGKILL the whole process group of ``dask worker`` number ``i`` (nanny and worker process alike)."""
        _kill_group(self.workers[i], signal.SIGKILL)
        self.workers[i].wait(timeout=30)

    def n_workers(self) -> int:
        from distributed import Client

        with Client(self.address, timeout="20s") as c:
            return len(c.scheduler_info(n_workers=-1)["workers"])

    def log_text(self) -> str:
        if self.logs is None:
            return ""
        return "\n".join(f"--- {p.name}\n{p.read_text(errors='replace')[-3000:]}" for p in sorted(self.logs.glob("*.log")))


def _kill_group(proc: subprocess.Popen, sig: int) -> None:
    try:
        os.killpg(proc.pid, sig)  # start_new_session=True: the group id is the leader's pid
    except ProcessLookupError:
        pass


def _popen(args: list[str], log: Path) -> subprocess.Popen:
    env = {**os.environ, **WORKER_ENV, "PYTHONUNBUFFERED": "1"}
    with open(log, "wb") as f:
        return subprocess.Popen(args, stdout=f, stderr=subprocess.STDOUT, env=env, start_new_session=True, cwd=log.parent)


@contextmanager
def external_cluster(tmp: Path, n_workers: int = 2, nanny: bool = True, timeout: float = 90.0) -> Iterator[ExternalCluster]:
    """``dask scheduler`` + ``n_workers`` × ``dask worker --nthreads 1`` on 127.0.0.1, each its own process group.

    Yields once the scheduler counts ``n_workers`` workers; kills every group on exit, whatever happened.
    """
    from distributed import Client

    tmp.mkdir(parents=True, exist_ok=True)
    sched_file = tmp / "scheduler.json"
    procs: list[subprocess.Popen] = []
    try:
        sched = _popen(
            [DASK, "scheduler", "--host", "127.0.0.1", "--port", "0", "--scheduler-file", str(sched_file), "--no-dashboard"],
            tmp / "scheduler.log",
        )
        procs.append(sched)
        deadline = time.monotonic() + timeout
        while not sched_file.is_file() or not sched_file.read_text().strip():
            if sched.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"dask scheduler did not start:\n{(tmp / 'scheduler.log').read_text()}")
            time.sleep(0.1)
        address = json.loads(sched_file.read_text())["address"]
        cluster = ExternalCluster(address, sched, logs=tmp)
        for i in range(n_workers):
            args = [DASK, "worker", "--nthreads", "1", "--no-dashboard", "--nworkers", "1", "--local-directory", str(tmp / f"w{i}")]
            args += [] if nanny else ["--no-nanny"]
            w = _popen([*args, address], tmp / f"worker{i}.log")
            procs.append(w)
            cluster.workers.append(w)
        with Client(address, timeout="30s") as client:
            client.wait_for_workers(n_workers, timeout=timeout)
        yield cluster
    finally:
        for p in reversed(procs):
            _kill_group(p, signal.SIGTERM)
        for p in reversed(procs):
            try:
                p.wait(timeout=10)
            except subprocess.TimeoutExpired:
                _kill_group(p, signal.SIGKILL)
                p.wait(timeout=10)
        for p in procs:  # the nanny's worker child is in the same group: make sure the whole group is gone
            _kill_group(p, signal.SIGKILL)


# ---------------------------------------------------------------- inputs


# Fold 1 of the EmoBox RAVDESS folds tests actors 1, 11, 20, 21; the others train (2) or validate (2).
TRAIN_ACTORS = (1, 11, 20, 21, 2, 3, 4, 5)
TRAIN_CODES = ("01", "05")  # neutral, angry


def write_train_corpus(root: Path) -> Path:
    """RAVDESS layout, 8 actors × 2 emotions × 1 clip of 3 s (16 files) plus the conftest bad files (7)."""
    for i, actor in enumerate(TRAIN_ACTORS):
        for j, code in enumerate(TRAIN_CODES):
            path = root / f"Actor_{actor:02d}" / f"03-01-{code}-01-01-01-{actor:02d}.wav"
            write_synth(path, code, actor, 16_000, 3.0, 1, "wav16", seed=100 + 2 * i + j)
    bad_files(root / "Actor_09")
    return root


def speechy(sr: int, seconds: float, seed: int) -> np.ndarray:
    """Harmonic bursts with pauses: some windows speech, some silence."""
    rng = np.random.default_rng(seed)
    n = int(round(seconds * sr))
    y = np.zeros(n, np.float32)
    pos = 0
    while pos < n:
        length = int(rng.uniform(0.8, 2.5) * sr)
        t = np.arange(length) / sr
        phase = 2 * np.pi * np.cumsum(rng.uniform(120, 250) * (1 + 0.1 * np.sin(2 * np.pi * 0.5 * t))) / sr
        burst = sum(np.sin(k * phase) / k for k in (1, 2, 3)) * (0.6 + 0.4 * np.sin(2 * np.pi * 4 * t))
        stop = min(n, pos + length)
        y[pos:stop] = (0.3 * burst / np.max(np.abs(burst)))[: stop - pos]
        pos = stop + int(rng.uniform(0.3, 1.5) * sr)
    return y


def speechy_file(path: Path, seconds: float, seed: int, sr: int = 16_000) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    sf.write(path, speechy(sr, seconds, seed), sr)
    return path


def write_score_folder(root: Path) -> Path:
    """Recordings of 1-40 s at two rates, plus two bad ones."""
    for i, (secs, sr) in enumerate([(1.0, 16_000), (3.0, 16_000), (7.5, 22_050), (12.0, 16_000), (40.0, 16_000), (25.0, 8_000)]):
        speechy_file(root / f"rec{i:02d}.{'flac' if i % 2 else 'wav'}", secs, seed=i, sr=sr)
    (root / "bad").mkdir()
    (root / "bad" / "empty.wav").write_bytes(b"")
    (root / "bad" / "text.wav").write_text("not audio\n" * 40)
    return root


# ---------------------------------------------------------------- comparisons


KEY = ["recording_id", "augmentation"]


def sorted_rows(out: Path) -> tuple[pd.DataFrame, np.ndarray]:
    """All rows and features of an extract, sorted by recording_id + augmentation."""
    meta, x = shards.read_all(out)
    order = meta.sort_values(KEY, kind="stable").index.to_numpy()
    return meta.loc[order].reset_index(drop=True), x[order]


def assert_same_extract(a: Path, b: Path) -> None:
    ma, xa = sorted_rows(a)
    mb, xb = sorted_rows(b)
    pd.testing.assert_frame_equal(ma, mb)
    np.testing.assert_array_equal(xa, xb)
    ea = pd.read_parquet(a / "errors.parquet").sort_values("path").reset_index(drop=True)
    eb = pd.read_parquet(b / "errors.parquet").sort_values("path").reset_index(drop=True)
    pd.testing.assert_frame_equal(ea, eb)
    ca = pd.read_parquet(a / "catalog.parquet").sort_values("path").reset_index(drop=True)
    cb = pd.read_parquet(b / "catalog.parquet").sort_values("path").reset_index(drop=True)
    pd.testing.assert_frame_equal(ca, cb)


def assert_same_report(a: pd.DataFrame, b: pd.DataFrame) -> None:
    a = a.sort_values("path").reset_index(drop=True)
    b = b.sort_values("path").reset_index(drop=True)
    pd.testing.assert_frame_equal(a, b, check_exact=False, atol=1e-6, rtol=0)


def no_temporaries(root: Path) -> list[Path]:
    return [p for p in Path(root).rglob(".tmp-*")]


# ---------------------------------------------------------------- fixtures


@pytest.fixture(scope="module")
def cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ExternalCluster]:
    with external_cluster(tmp_path_factory.mktemp("external_cluster")) as c:
        yield c


@pytest.fixture(scope="module")
def tiny_model(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return make_tiny_model(tmp_path_factory.mktemp("cluster_model") / "tiny")


@pytest.fixture(scope="module")
def train_corpus(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return write_train_corpus(tmp_path_factory.mktemp("cluster_corpus") / "ravdess")


@pytest.fixture(scope="module")
def remote_extract(train_corpus: Path, cluster: ExternalCluster, tmp_path_factory: pytest.TempPathFactory) -> Path:
    from ser_batch.extract import extract

    out = tmp_path_factory.mktemp("remote_extract") / "features"
    r = extract([train_corpus], out, files_per_shard=3, scheduler=cluster.address, progress=False)
    assert r.files_ok == 16 and r.files_failed == 7 and r.rows == 64, cluster.log_text()
    return out


# ---------------------------------------------------------------- tests


def test_cluster_is_two_separate_worker_processes(cluster: ExternalCluster) -> None:
    from distributed import Client

    with Client(cluster.address, timeout="20s") as c:
        pids = c.run(os.getpid)
    assert len(pids) == 2 and len(set(pids.values())) == 2
    assert os.getpid() not in pids.values()
    assert all(w.poll() is None for w in cluster.workers)


def test_local_cluster_workers_get_the_worker_environment(dask_scheduler: str) -> None:
    import librosa
    from distributed import Client

    from ser_batch.cluster import MALLOC_ENV

    with Client(dask_scheduler, timeout="20s") as c:
        envs = list(c.run(lambda: dict(os.environ)).values())
    assert envs and all(env[k] == v for env in envs for k, v in {**WORKER_ENV, **MALLOC_ENV}.items())
    # workers compile librosa's numba code into a cache of their own, never into librosa's folder (numba #10128)
    assert not Path(envs[0]["NUMBA_CACHE_DIR"]).is_relative_to(Path(librosa.__file__).parent)


def test_follow_pulls_a_lazy_submitter_only_as_far_as_in_flight(dask_scheduler: str) -> None:
    """extract submits as it lists: at no time more than ``in_flight`` tasks are out, and every one comes back."""
    from distributed import Client

    from ser_batch.cluster import follow

    with Client(dask_scheduler, timeout="20s") as c:
        weights: dict[str, float] = {}
        submitted, done, most = 0, 0, 0

        def submit() -> Iterator:
            nonlocal submitted, most
            for i in range(20):
                fut = c.submit(lambda x: x * x, i, pure=False)
                weights[fut.key] = 1
                submitted += 1
                most = max(most, submitted - done)
                yield fut

        results = []
        for _fut, res, err in follow(submit(), None, weights, "tasks", show=False, in_flight=3):
            assert err is None
            done += 1
            results.append(res)
    assert sorted(results) == [i * i for i in range(20)] and most <= 3

def test_extract_on_the_cluster_equals_a_local_run(remote_extract: Path, train_corpus: Path, dask_scheduler: str, tmp_path: Path) -> None:
    from ser_batch.extract import extract

    local = tmp_path / "local"
    extract([train_corpus], local, files_per_shard=3, scheduler=dask_scheduler, progress=False)
    assert_same_extract(remote_extract, local)
    m = shards.read_manifest(remote_extract)
    assert [s["name"] for s in m["shards"]] == [s["name"] for s in shards.read_manifest(local)["shards"]]
    rows = shards.read_rows(remote_extract)
    assert not rows.duplicated(KEY).any()
    assert (rows["augmentation"] == "none").sum() == 16
    assert no_temporaries(remote_extract) == []


def test_both_workers_took_part(remote_extract: Path, cluster: ExternalCluster) -> None:
    """The 8 shard tasks were spread over both worker processes (each kept its task log)."""
    from distributed import Client

    with Client(cluster.address, timeout="20s") as c:
        done = c.run(lambda dask_worker: sum(1 for k in dask_worker.state.log if "extract-part" in str(k)))
    assert len(done) == 2 and all(n > 0 for n in done.values()), done


@pytest.fixture(scope="module")
def score_folder(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return write_score_folder(tmp_path_factory.mktemp("cluster_rec") / "rec")


def test_score_on_the_cluster_equals_a_local_run(cluster: ExternalCluster, tiny_model: Path, score_folder: Path, dask_scheduler: str, tmp_path: Path) -> None:
    from ser_batch.score import ScoreSettings, score

    folder = score_folder
    settings = ScoreSettings(chunk_s=10.0, task_s=15.0)  # the 40 s recording is split over tasks
    remote = score([folder], tmp_path / "remote" / "report.parquet", model=tiny_model, settings=settings, scheduler=cluster.address, progress=False)
    local = score([folder], tmp_path / "local" / "report.parquet", model=tiny_model, settings=settings, scheduler=dask_scheduler, progress=False)
    a = pd.read_parquet(tmp_path / "remote" / "report.parquet")
    b = pd.read_parquet(tmp_path / "local" / "report.parquet")
    assert len(a) == 8 and a["path"].is_unique
    assert (a["status"] == "ok").sum() == 6 and remote.ok == local.ok == 6
    assert_same_report(a, b)
    assert no_temporaries(tmp_path) == []
    assert sorted(p.name for p in (tmp_path / "remote").iterdir()) == ["report.parquet"]


def test_train_on_the_cluster_writes_a_model_dir(remote_extract: Path, cluster: ExternalCluster, tmp_path: Path) -> None:
    from ser_batch import modeldir
    from ser_batch.train import TrainSettings, train

    out = tmp_path / "model"
    result = train([remote_extract], out, protocol="holdout", fold=1, settings=TrainSettings(epochs=1, batch_size=8), scheduler=cluster.address)
    assert result["epochs_run"] == 1
    assert {"model.keras", "config.json", "scaler.json"} <= {p.name for p in out.iterdir()}
    cfg = modeldir.read_config(out)
    assert sorted(cfg["split"]["test_speakers"]) == sorted(f"ravdess:{a}" for a in (1, 11, 20, 21))
    md = modeldir.load(out)
    assert md.classes == ["neutral", "angry"]
    assert no_temporaries(out) == []


def test_relative_paths_work_when_workers_have_another_cwd(cluster: ExternalCluster, train_corpus: Path, remote_extract: Path, score_folder: Path, tiny_model: Path, tmp_path: Path) -> None:
    """The CLI from a folder of its own with relative paths: workers run elsewhere, so every path they get must be
    absolute (the workers of this cluster run in the cluster's temporary folder, not in ``work``)."""
    work = tmp_path / "work"
    work.mkdir()
    assert all(os.readlink(f"/proc/{w.pid}/cwd") != str(work) for w in cluster.workers)
    ser_batch = str(Path(sys.executable).with_name("ser-batch"))
    corpus = os.path.relpath(train_corpus, work)
    r = subprocess.run([ser_batch, "extract", corpus, "--out", "features", "--features", "seed", "--shifts", "0", "--files-per-shard", "3", "--scheduler", cluster.address, "-q"], cwd=work, capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stdout + r.stderr
    assert "files ok: 16, failed: 7; rows written: 64" in r.stdout, r.stdout
    assert_same_extract(work / "features", remote_extract)

    rec = os.path.relpath(score_folder, work)
    r = subprocess.run([ser_batch, "score", rec, "--out", "out/report.csv", "--model", str(tiny_model), "--scheduler", cluster.address, "-q"], cwd=work, capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stdout + r.stderr
    report = pd.read_csv(work / "out" / "report.csv")
    assert len(report) == 8 and (report["status"] == "ok").sum() == 6, report[["path", "status", "error"]]
    assert all(os.path.isabs(p) for p in report["path"])
    assert sorted(p.name for p in (work / "out").iterdir()) == ["report.csv"]
