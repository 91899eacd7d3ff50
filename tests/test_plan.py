"""Tests of ser_batch.plan: batches of listed paths, the units of a batch and the tasks cut from them."""

from __future__ import annotations

import math

import numpy as np
import pytest

from ser_batch import pieces, plan
from ser_batch.inference import ScoreSettings


def _audio_s(p: pieces.Piece) -> float:
    return max(0.0, min(p.next_start_s, p.duration_s) - p.first_start_s)


@pytest.mark.parametrize("chunk_s", [600.0, 5.0, 1.3])
@pytest.mark.parametrize("hop_s", [0.5, 1.25])
def test_units_are_the_pieces_of_plan_pieces(chunk_s: float, hop_s: float) -> None:
    rng = np.random.default_rng(0)
    d = np.concatenate([[0.4, 3.0, 3.01, 40.0, math.nan], rng.uniform(0.1, 70.0, 30)])
    settings = ScoreSettings(hop_s=hop_s, chunk_s=chunk_s)
    rows, chunks, secs = plan.units(d, 3.0, settings)
    want = [(r, pc.chunk, _audio_s(pc)) for r, x in enumerate(d) if not math.isnan(x) for pc in pieces.plan_pieces("", float(x), 3.0, hop_s, chunk_s)]
    assert list(zip(rows.tolist(), chunks.tolist())) == [(r, c) for r, c, _s in want]
    np.testing.assert_allclose(secs, [s for *_rc, s in want])
    assert 4 not in rows  # an unreadable file (NaN duration) has no unit


def test_tasks_cover_every_unit_once_in_order_and_near_task_s() -> None:
    d = np.array([3.7] * 500 + [1800.0] + [2.0] * 100)
    settings = ScoreSettings(task_s=120.0, chunk_s=60.0)
    tasks = plan.cut_tasks("b.parquet", d, 3.0, settings)
    n_units = len(plan.units(d, 3.0, settings)[0])
    assert tasks[0].lo == 0 and tasks[-1].hi == n_units
    assert all(a.hi == b.lo for a, b in zip(tasks, tasks[1:]))
    assert sum(t.seconds for t in tasks) == pytest.approx(float(d.sum()))
    assert max(t.seconds for t in tasks) <= 120.0 + 60.0  # a task closes once it reaches task_s
    assert len({t.name for t in tasks}) == len(tasks)


def test_batches_are_named_by_order_and_content() -> None:
    """(A path listed twice never reaches `batches`: `inputs.iter_paths` yields each once, tested there.)"""
    paths = [f"/a/{i}.wav" for i in range(5)] + [f"/b/{i}.wav" for i in range(3)]
    got = list(plan.batches(iter(paths), size=3))
    assert [len(b) for _n, b in got] == [3, 3, 2]
    assert [p for _n, b in got for p in b] == paths
    again = list(plan.batches(iter(paths), size=3))
    assert [n for n, _b in got] == [n for n, _b in again] and len({n for n, _b in got}) == 3
    other = list(plan.batches(iter(paths[:4] + ["/c/x.wav"] + paths[5:]), size=3))
    assert [n for n, _b in other][0] == got[0][0] and [n for n, _b in other][1:] != [n for n, _b in got][1:]


def test_task_sizes_cut_small_jobs_for_every_worker_thread() -> None:
    s = plan.task_sizes(ScoreSettings(), total_s=3600.0, slots=2)
    assert s.task_s == pytest.approx(450.0) and s.chunk_s == pytest.approx(450.0)
    assert plan.task_sizes(ScoreSettings(), total_s=10.0, slots=8).task_s == plan.MIN_TASK_S
    assert plan.task_sizes(ScoreSettings(), total_s=1e7, slots=2).task_s == ScoreSettings().task_s
