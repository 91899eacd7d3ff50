"""How many workers a local cluster starts: CPU affinity, cgroup v1/v2 CPU quotas and memory limits, read from fake
cgroup trees in tmp_path (no cluster is started; test_cluster.py holds the slow multi-process tests)."""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

from ser_batch import cluster
from ser_batch.cluster import WORKER_MEMORY, default_workers, usable_cpus, usable_memory_bytes
from ser_batch.errors import ConfigError

GiB = 2**30
V1_UNLIMITED = "9223372036854771712"


def write(root: Path, files: dict[str, str]) -> Path:
    for rel, text in files.items():
        (root / rel).parent.mkdir(parents=True, exist_ok=True)
        (root / rel).write_text(text + "\n")
    return root


@pytest.fixture
def host(monkeypatch: pytest.MonkeyPatch) -> None:
    """A 64-core host with 256 GiB: what os.cpu_count() and sysconf see from inside a container."""
    monkeypatch.setattr(os, "sched_getaffinity", lambda _pid: set(range(64)), raising=False)
    monkeypatch.setattr(cluster, "_physical_memory", lambda: 256 * GiB)


def proc(tmp_path: Path, text: str = "0::/\n") -> Path:
    return write(tmp_path, {"proc_self_cgroup": text.strip()}) / "proc_self_cgroup"


def test_cgroup_v2_quota_and_memory(tmp_path: Path, host: None) -> None:
    root = write(tmp_path / "cg", {"cpu.max": "400000 100000", "memory.max": str(12 * GiB)})
    assert usable_cpus(root, proc(tmp_path)) == 4
    assert usable_memory_bytes(root, proc(tmp_path)) == 12 * GiB
    assert default_workers(root, proc(tmp_path)) == 4


def test_cgroup_v2_fractional_quota_rounds_up(tmp_path: Path, host: None) -> None:
    root = write(tmp_path / "cg", {"cpu.max": "150000 100000"})
    assert usable_cpus(root, proc(tmp_path)) == 2
    write(root, {"cpu.max": "20000 100000"})  # 0.2 CPU: still one worker
    assert usable_cpus(root, proc(tmp_path)) == 1


def test_cgroup_v2_max_is_no_limit(tmp_path: Path, host: None) -> None:
    root = write(tmp_path / "cg", {"cpu.max": "max 100000", "memory.max": "max"})
    assert usable_cpus(root, proc(tmp_path)) == 64
    assert usable_memory_bytes(root, proc(tmp_path)) == 256 * GiB


def test_cgroup_v2_limit_on_the_process_own_cgroup_or_an_ancestor(tmp_path: Path, host: None) -> None:
    """Without a cgroup namespace the limits sit on the process's own cgroup (a systemd slice), not on the root."""
    root = write(
        tmp_path / "cg",
        {
            "system.slice/cpu.max": "300000 100000",
            "system.slice/job.service/cpu.max": "max 100000",
            "system.slice/job.service/memory.max": str(6 * GiB),
        },
    )
    own = proc(tmp_path, "0::/system.slice/job.service")
    assert usable_cpus(root, own) == 3
    assert usable_memory_bytes(root, own) == 6 * GiB
    # a path that is not below the mounted root (a container seeing the host's path): only the root counts
    assert usable_cpus(root, proc(tmp_path, "0::/elsewhere/job")) == 64


def test_cgroup_v1_quota_and_memory(tmp_path: Path, host: None) -> None:
    root = write(
        tmp_path / "cg",
        {
            "cpu,cpuacct/cpu.cfs_quota_us": "250000",
            "cpu,cpuacct/cpu.cfs_period_us": "100000",
            "memory/memory.limit_in_bytes": str(5 * GiB),
        },
    )
    own = proc(tmp_path, "4:memory:/docker/abc\n3:cpu,cpuacct:/docker/abc\n0::/")  # host paths, not below root
    assert usable_cpus(root, own) == 3
    assert usable_memory_bytes(root, own) == 5 * GiB
    assert default_workers(root, own) == 2  # 5 GiB holds two 2 GiB workers


def test_cgroup_v1_unlimited(tmp_path: Path, host: None) -> None:
    root = write(
        tmp_path / "cg",
        {
            "cpu/cpu.cfs_quota_us": "-1",
            "cpu/cpu.cfs_period_us": "100000",
            "memory/memory.limit_in_bytes": V1_UNLIMITED,
        },
    )
    assert usable_cpus(root, proc(tmp_path)) == 64
    assert usable_memory_bytes(root, proc(tmp_path)) == 256 * GiB


def test_cgroup_v1_limit_on_the_process_own_cgroup(tmp_path: Path, host: None) -> None:
    root = write(
        tmp_path / "cg",
        {
            "cpu/cpu.cfs_quota_us": "-1",
            "cpu/cpu.cfs_period_us": "100000",
            "cpu/jobs/one/cpu.cfs_quota_us": "200000",
            "cpu/jobs/one/cpu.cfs_period_us": "100000",
            "memory/memory.limit_in_bytes": V1_UNLIMITED,
            "memory/jobs/memory.limit_in_bytes": str(3 * GiB),
        },
    )
    own = proc(tmp_path, "5:memory:/jobs/one\n2:cpu:/jobs/one")
    assert usable_cpus(root, own) == 2
    assert usable_memory_bytes(root, own) == 3 * GiB


def test_no_cgroup_files(tmp_path: Path, host: None) -> None:
    root = tmp_path / "empty"
    root.mkdir()
    assert usable_cpus(root, tmp_path / "no-such-proc-file") == 64
    assert usable_memory_bytes(root, tmp_path / "no-such-proc-file") == 256 * GiB
    assert default_workers(root, tmp_path / "no-such-proc-file") == 64


def test_malformed_cgroup_files_are_ignored(tmp_path: Path, host: None) -> None:
    root = write(tmp_path / "cg", {"cpu.max": "lots", "memory.max": "-5", "cpu/cpu.cfs_quota_us": "x", "cpu/cpu.cfs_period_us": "0"})
    assert usable_cpus(root, proc(tmp_path)) == 64
    assert usable_memory_bytes(root, proc(tmp_path)) == 256 * GiB


def test_affinity_bounds_the_cpus(tmp_path: Path, host: None, monkeypatch: pytest.MonkeyPatch) -> None:
    """taskset / a cpuset: 3 CPUs allowed, a quota of 8 does not raise that."""
    monkeypatch.setattr(os, "sched_getaffinity", lambda _pid: {5, 6, 7}, raising=False)
    root = write(tmp_path / "cg", {"cpu.max": "800000 100000"})
    assert usable_cpus(root, proc(tmp_path)) == 3
    write(root, {"cpu.max": "200000 100000"})  # and the quota bounds it the other way
    assert usable_cpus(root, proc(tmp_path)) == 2


def test_memory_bounds_the_workers(tmp_path: Path, host: None) -> None:
    """16 CPUs but 5 GiB: two workers of WORKER_MEMORY, not 16 that would run the container out of memory."""
    assert WORKER_MEMORY == 2 * GiB
    root = write(tmp_path / "cg", {"cpu.max": "1600000 100000", "memory.max": str(5 * GiB)})
    assert usable_cpus(root, proc(tmp_path)) == 16
    assert default_workers(root, proc(tmp_path)) == 2
    write(root, {"memory.max": str(GiB)})  # less than one worker's worth: still one
    assert default_workers(root, proc(tmp_path)) == 1


def test_the_real_machine_gives_sane_numbers() -> None:
    cpus, memory = usable_cpus(), usable_memory_bytes()
    assert 1 <= cpus <= (os.cpu_count() or cpus)
    assert memory is None or memory > 0
    assert 1 <= default_workers() <= cpus


# ---------------------------------------------------------------- dask_client says why


class FakeClient:
    dashboard_link = "http://127.0.0.1:8787/status"

    def __init__(self, cluster: object) -> None:
        self.cluster = cluster

    def close(self) -> None:
        pass


class FakeCluster:
    def __init__(self, n: int) -> None:
        self.n = n

    def close(self) -> None:
        pass


@contextmanager
def fake_local(monkeypatch: pytest.MonkeyPatch, cpus: int, memory: int | None) -> Iterator[list[str]]:
    monkeypatch.setattr(cluster, "usable_cpus", lambda: cpus)
    monkeypatch.setattr(cluster, "usable_memory_bytes", lambda: memory)
    monkeypatch.setattr(cluster, "local_cluster", lambda n, _dashboard: FakeCluster(n))
    monkeypatch.setattr(cluster, "Client", FakeClient)
    yield []


@pytest.mark.parametrize(
    ("cpus", "memory", "n", "why"),
    [
        (2, 23_400_000_000, 2, "(2 usable CPUs, 23.4 GB memory)"),
        (8, 5 * GiB, 2, "(8 usable CPUs but 5.4 GB memory, 2.1 GB per worker)"),
        (4, None, 4, "(4 usable CPUs, memory unknown)"),
    ],
)
def test_dask_client_defaults_to_usable_resources_and_says_why(monkeypatch: pytest.MonkeyPatch, cpus: int, memory: int | None, n: int, why: str) -> None:
    with fake_local(monkeypatch, cpus, memory) as said, cluster.dask_client(echo=said.append) as client:
        assert client.cluster.n == n
    assert said == [f"Dask: local cluster of {n} worker processes {why}; dashboard {FakeClient.dashboard_link}"]


def test_dask_client_explicit_workers(monkeypatch: pytest.MonkeyPatch) -> None:
    with fake_local(monkeypatch, 64, 256 * GiB) as said, cluster.dask_client(workers=3, echo=said.append) as client:
        assert client.cluster.n == 3
    assert said == [f"Dask: local cluster of 3 worker processes; dashboard {FakeClient.dashboard_link}"]
    with fake_local(monkeypatch, 64, 256 * GiB), pytest.raises(ConfigError, match="at least 1 worker"):
        with cluster.dask_client(workers=0):
            pass
