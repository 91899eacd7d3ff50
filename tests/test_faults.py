"""Real faults, real processes: a worker SIGKILLed mid-job, and the command interrupted by SIGINT or SIGTERM.

* Worker loss: ``extract`` and ``score`` run against an external cluster (``dask scheduler`` + two ``dask worker``
  commands, see test_cluster.py); once a few shards/parts exist, the whole process group of the busy worker is
  SIGKILLed. The job must finish on the survivor with every input exactly once: no lost rows, no duplicates.
* Interruption: ``ser-batch extract --workers 1`` gets SIGINT delivered to its process group (what Ctrl-C in a
  terminal does) or SIGTERM to its pid (what ``kill`` and schedulers do), and ``ser-batch score --workers 1`` gets
  SIGTERM, after the first shard/part is written. The command must exit, leave no ``.tmp-*`` file and no process
  behind, and a rerun of the same command must finish with exactly the output of an uninterrupted run.

Each uninterrupted reference is computed once per module on the session's LocalCluster (conftest).
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow.parquet as pq
import pytest
import soundfile as sf

from conftest import SYNTH_EMOTIONS, make_tiny_model, write_synth
from test_cluster import (
    ExternalCluster,
    assert_same_extract,
    external_cluster,
    no_temporaries,
    speechy,
)
from ser_batch import shards

pytestmark = pytest.mark.slow  # about two minutes on two busy cores: several clusters start, TF loads in workers

SER_BATCH = str(Path(sys.executable).with_name("ser-batch"))
FILES_PER_SHARD = 4
ACTORS = (1, 2, 3, 4)
STATEMENTS = ("01", "02")
REPS = ("01", "02")
N_FILES = len(ACTORS) * len(SYNTH_EMOTIONS) * len(STATEMENTS) * len(REPS)  # 64 files, 16 shards
SCORE_SECONDS = (460.0,) * 5  # 38 min at 16 kHz: three tasks at the default task_s of 900 s (2 + 2 + 1 recordings)


# ---------------------------------------------------------------- inputs and references


@pytest.fixture(scope="module")
def corpus(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """64 RAVDESS-layout clips of 3 s (16 shards of 4 files)."""
    root = tmp_path_factory.mktemp("faults_corpus") / "ravdess"
    i = 0
    for actor in ACTORS:
        for code in SYNTH_EMOTIONS:
            for st in STATEMENTS:
                for rep in REPS:
                    path = root / f"Actor_{actor:02d}" / f"03-01-{code}-01-{st}-{rep}-{actor:02d}.wav"
                    write_synth(path, code, actor, 16_000, 3.0, 1, "wav16", seed=i)
                    i += 1
    assert i == N_FILES
    return root


@pytest.fixture(scope="module")
def extract_reference(corpus: Path, dask_scheduler: str, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The uninterrupted extract (augmented)."""
    from ser_batch.extract import extract

    out = tmp_path_factory.mktemp("faults_ref") / "features"
    r = extract([corpus], out, files_per_shard=FILES_PER_SHARD, scheduler=dask_scheduler, progress=False)
    assert r.files_ok == N_FILES and r.rows == 4 * N_FILES
    return out


@pytest.fixture(scope="module")
def recordings(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Five recordings of 7.7 min at 16 kHz (three score tasks at the default settings) and one bad file.

    16 kHz is the model's rate: nothing is resampled, so reports of different chunkings agree to float round-off.
    """
    root = tmp_path_factory.mktemp("faults_rec") / "rec"
    root.mkdir()
    for i, secs in enumerate(SCORE_SECONDS):
        sf.write(root / f"call{i:02d}.wav", speechy(16_000, secs, seed=i), 16_000, subtype="PCM_16")
    (root / "broken.wav").write_text("not audio\n" * 10)
    return root


@pytest.fixture(scope="module")
def tiny_model(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return make_tiny_model(tmp_path_factory.mktemp("faults_model") / "tiny")


@pytest.fixture(scope="module")
def score_reference(recordings: Path, tiny_model: Path, dask_scheduler: str, tmp_path_factory: pytest.TempPathFactory) -> pd.DataFrame:
    from ser_batch.score import score

    out = tmp_path_factory.mktemp("faults_score_ref") / "report.parquet"
    r = score([recordings], out, model=tiny_model, scheduler=dask_scheduler, progress=False)
    assert r.recordings == len(SCORE_SECONDS) + 1 and r.ok == len(SCORE_SECONDS)
    return pd.read_parquet(out)


# ---------------------------------------------------------------- checks


def wait_for(cond: Callable[[], bool], timeout: float, what: str, alive: Callable[[], bool] = lambda: True) -> None:
    deadline = time.monotonic() + timeout
    while not cond():
        if time.monotonic() > deadline or not alive():
            raise AssertionError(f"timed out waiting for {what}" if alive() else f"the job ended before {what}")
        time.sleep(0.05)


def finished_files(folder: Path, pattern: str) -> list[Path]:
    return sorted(folder.glob(pattern)) if folder.is_dir() else []


def assert_each_input_once(out: Path, n_files: int) -> None:
    """Every input in the catalog once with status ok, exactly one original and three copies per recording."""
    rows = shards.read_rows(out)
    assert len(rows) == 4 * n_files, f"{len(rows)} rows for {n_files} files: rows lost or duplicated"
    assert not rows.duplicated(["recording_id", "augmentation"]).any(), "duplicated rows"
    originals = rows[rows["augmentation"] == "none"]
    assert originals["recording_id"].is_unique and len(originals) == n_files
    assert (rows.groupby("recording_id").size() == 4).all()
    catalog = pd.read_parquet(out / "catalog.parquet")
    assert len(catalog) == n_files and catalog["path"].is_unique and (catalog["status"] == "ok").all()
    assert set(catalog["recording_id"]) == set(originals["recording_id"])
    assert len(pd.read_parquet(out / "errors.parquet")) == 0
    m = shards.read_manifest(out)
    assert sum(s["files"] for s in m["shards"]) == n_files and sum(s["rows"] for s in m["shards"]) == 4 * n_files
    assert sorted(p.name for p in (out / "shards").iterdir()) == sorted(s["name"] for s in m["shards"])
    assert no_temporaries(out) == []


def assert_same_report(a: pd.DataFrame, b: pd.DataFrame, atol: float = 1e-5) -> None:
    a = a.sort_values("path").reset_index(drop=True)
    b = b.sort_values("path").reset_index(drop=True)
    assert list(a["path"]) == list(b["path"]) and a["path"].is_unique
    assert list(a["status"]) == list(b["status"])
    num = [c for c in a.columns if c.startswith(("p_", "share_"))] + ["windows", "speech_windows", "confidence", "duration_s"]
    np.testing.assert_allclose(a[num].to_numpy(float), b[num].to_numpy(float), atol=atol)
    assert list(a["emotion"].fillna("-")) == list(b["emotion"].fillna("-"))


def busy_worker(cluster: ExternalCluster) -> int:
    """Index of a ``dask worker`` command whose worker process is running a task right now."""
    from distributed import Client

    with Client(cluster.address, timeout="20s") as c:
        processing = c.processing()
        pids = c.run(os.getpid)
    for addr, keys in processing.items():
        if keys and addr in pids:
            group = os.getpgid(pids[addr])
            for i, w in enumerate(cluster.workers):
                if w.pid == group and w.poll() is None:
                    return i
    raise AssertionError(f"no worker is busy: {processing}")


# ---------------------------------------------------------------- worker loss


def test_extract_survives_a_killed_worker(corpus: Path, extract_reference: Path, tmp_path: Path) -> None:
    from ser_batch.extract import extract

    out = tmp_path / "features"
    with external_cluster(tmp_path / "cluster") as cluster, ThreadPoolExecutor(1) as pool:
        job = pool.submit(extract, [corpus], out, files_per_shard=FILES_PER_SHARD, scheduler=cluster.address, progress=False)
        wait_for(lambda: len(finished_files(out / "shards", "part-*.parquet")) >= 2, 120, "two shards", lambda: not job.done())
        victim = busy_worker(cluster)
        cluster.kill_worker(victim)
        killed_after = len(finished_files(out / "shards", "part-*.parquet"))
        result = job.result(timeout=180)
        assert cluster.n_workers() == 1, cluster.log_text()
    assert killed_after < 16, "the job was over before the kill"
    assert result.files_ok == N_FILES and result.files_failed == 0 and result.rows == 4 * N_FILES
    assert_each_input_once(out, N_FILES)
    assert_same_extract(out, extract_reference)


def test_score_survives_a_killed_worker(recordings: Path, tiny_model: Path, score_reference: pd.DataFrame, tmp_path: Path) -> None:
    from ser_batch.score import ScoreSettings, score

    out = tmp_path / "out" / "report.parquet"
    settings = ScoreSettings(chunk_s=120.0, task_s=240.0)  # ten tasks of two chunks
    with external_cluster(tmp_path / "cluster") as cluster, ThreadPoolExecutor(1) as pool:
        job = pool.submit(score, [recordings], out, model=tiny_model, settings=settings, scheduler=cluster.address, progress=False)
        wait_for(lambda: len(finished_files(out.parent, ".report.parquet.parts-*/batch-*-u*.parquet")) >= 3, 180, "three parts", lambda: not job.done())
        victim = busy_worker(cluster)
        cluster.kill_worker(victim)
        result = job.result(timeout=240)
        assert cluster.n_workers() == 1, cluster.log_text()
    report = pd.read_parquet(out)
    assert result.recordings == len(report) == len(SCORE_SECONDS) + 1
    assert report["path"].is_unique
    assert (report.loc[report["path"].str.endswith("broken.wav"), "status"] == "error").all()
    assert (report.loc[~report["path"].str.endswith("broken.wav"), "status"] == "ok").all(), report[["path", "status", "error"]]
    assert_same_report(report, score_reference)
    assert sorted(p.name for p in out.parent.iterdir()) == ["report.parquet"]  # parts merged and removed


# ---------------------------------------------------------------- interruption


def start(args: list[str], cwd: Path) -> subprocess.Popen:
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    # SIGINT as a terminal delivers it, even when this test run was started in the background of a shell without job
    # control (which starts its children with SIGINT ignored, and Python then never raises KeyboardInterrupt)
    return subprocess.Popen([SER_BATCH, *args], cwd=cwd, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, start_new_session=True,
                            preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))  # fmt: skip


def stop(proc: subprocess.Popen, sig: int, group: bool) -> tuple[int, str]:
    """Deliver ``sig`` (to the group, like Ctrl-C, or to the pid, like kill) and wait for the command to end."""
    if group:
        os.killpg(proc.pid, sig)
    else:
        proc.send_signal(sig)
    try:
        text, _ = proc.communicate(timeout=90)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        text, _ = proc.communicate()
        raise AssertionError(f"the command did not end within 90 s of signal {sig}:\n{text.decode(errors='replace')}")
    return proc.returncode, text.decode(errors="replace")


def assert_no_process_left(proc: subprocess.Popen) -> None:
    """The command's whole process group (its local cluster's workers included) is gone."""
    deadline = time.monotonic() + 20
    while True:
        try:
            os.killpg(proc.pid, 0)
        except ProcessLookupError:
            return
        if time.monotonic() > deadline:
            os.killpg(proc.pid, signal.SIGKILL)
            raise AssertionError("processes of the interrupted command were still running")
        time.sleep(0.1)


def kill_on_failure(proc: subprocess.Popen) -> None:
    if proc.poll() is None:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()


@pytest.mark.parametrize(("sig", "group"), [(signal.SIGINT, True), (signal.SIGTERM, False)], ids=["sigint-group", "sigterm"])
def test_interrupted_extract_leaves_no_temporaries_and_resumes(sig: int, group: bool, corpus: Path, extract_reference: Path, tmp_path: Path) -> None:
    out = tmp_path / "features"
    args = ["extract", str(corpus), "--out", str(out), "--features", "seed", "--shifts", "0", "--workers", "1", "--files-per-shard", str(FILES_PER_SHARD), "--quiet"]
    proc = start(args, tmp_path)
    try:
        wait_for(lambda: len(finished_files(out / "shards", "part-*.parquet")) >= 1, 120, "the first shard", lambda: proc.poll() is None)
        code, text = stop(proc, sig, group)
    finally:
        kill_on_failure(proc)
    assert code != 0, f"the command was not interrupted:\n{text}"
    assert_no_process_left(proc)
    assert no_temporaries(out) == [], text
    done = finished_files(out / "shards", "part-*.parquet")
    assert 1 <= len(done) < 16
    for p in done:  # a file with a final name is whole
        assert pq.read_metadata(p).num_rows == 4 * FILES_PER_SHARD
    assert shards.MANIFEST in os.listdir(out)
    with pytest.raises(Exception, match="unfinished"):
        shards.read_manifest(out)

    rerun = subprocess.run([SER_BATCH, *args], cwd=tmp_path, capture_output=True, text=True, timeout=300)
    assert rerun.returncode == 0, rerun.stdout + rerun.stderr
    reused = int(rerun.stdout.split(" shards (")[1].split(" reused")[0])
    assert reused >= len(done)
    assert_each_input_once(out, N_FILES)
    assert_same_extract(out, extract_reference)


def test_sigterm_during_score_leaves_no_temporaries_and_resumes(recordings: Path, tiny_model: Path, score_reference: pd.DataFrame, tmp_path: Path) -> None:
    out = tmp_path / "out" / "report.parquet"
    args = ["score", str(recordings), "--out", str(out), "--model", str(tiny_model), "--workers", "1", "--quiet"]
    proc = start(args, tmp_path)
    parts = lambda: finished_files(out.parent, ".report.parquet.parts-*/batch-*-u*.parquet")  # noqa: E731
    try:
        wait_for(lambda: len(parts()) >= 1, 180, "the first part", lambda: proc.poll() is None)
        code, text = stop(proc, signal.SIGTERM, group=False)
    finally:
        kill_on_failure(proc)
    assert code != 0, f"the command was not interrupted:\n{text}"
    assert_no_process_left(proc)
    assert no_temporaries(tmp_path) == [], text
    assert not out.exists(), "no report from an interrupted run"
    kept = parts()
    assert 1 <= len(kept) < 3

    rerun = subprocess.run([SER_BATCH, *args], cwd=tmp_path, capture_output=True, text=True, timeout=300)
    assert rerun.returncode == 0, rerun.stdout + rerun.stderr
    report = pd.read_parquet(out)
    assert len(report) == len(SCORE_SECONDS) + 1 and report["path"].is_unique
    assert_same_report(report, score_reference)
    assert no_temporaries(tmp_path) == []
    assert sorted(p.name for p in out.parent.iterdir()) == ["report.parquet"]
