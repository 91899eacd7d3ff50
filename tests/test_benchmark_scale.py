"""benchmarks/scale.py: the tree of linked recordings and the per-file slopes (no cluster, no ser-batch run)."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path
from types import ModuleType

import pytest

SCRIPT = Path(__file__).resolve().parents[1] / "benchmarks" / "scale.py"


@pytest.fixture(scope="module")
def scale() -> ModuleType:
    spec = importlib.util.spec_from_file_location("bench_scale", SCRIPT)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules["bench_scale"] = module  # dataclasses look their module up
    spec.loader.exec_module(module)
    return module


def _source(root: Path) -> list[Path]:
    for actor in (1, 2):
        folder = root / f"Actor_{actor:02d}"
        folder.mkdir(parents=True)
        for emotion in range(1, 4 if actor == 1 else 3):
            (folder / f"03-01-{emotion:02d}-01-01-01-{actor:02d}.flac").write_bytes(b"fake %d" % emotion)
    (root / "notes.txt").write_text("not audio")
    return list(root.rglob("*.flac"))


def test_tree_links_every_file_in_small_folders_and_is_reused(scale: ModuleType, tmp_path: Path) -> None:
    made = _source(tmp_path / "src")
    clips = scale.source_clips(tmp_path / "src")
    assert sorted(clips) == sorted(made) and len(clips) == 5
    tree = tmp_path / "out" / "12" / "tree"
    assert scale.build_tree(clips, tree, 12, per_folder=4) == "hard links"
    files = sorted(tree.rglob("*.flac"))
    assert len(files) == 12
    folders = {f.parent for f in files}
    assert len(folders) == 3 and all(len({f.name for f in files if f.parent == d}) == 4 for d in folders)
    assert all(f.stat().st_nlink > 1 for f in files)  # hard links, not copies
    assert scale.build_tree(clips, tree, 12, per_folder=4) == "reused"
    assert scale.build_tree(clips, tree, 7, per_folder=4) == "hard links"  # another N: rebuilt, source untouched
    assert len(list(tree.rglob("*.flac"))) == 7
    assert sorted(scale.source_clips(tmp_path / "src")) == sorted(made)


def test_tree_names_parse_as_ravdess(scale: ModuleType, tmp_path: Path) -> None:
    from ser_batch import corpora

    _source(tmp_path / "src")
    clips = scale.source_clips(tmp_path / "src")
    tree = tmp_path / "tree"
    scale.build_tree(clips, tree, 9, per_folder=1000)
    entries, failures = corpora.discover([tree])
    assert len(entries) == 9 and not failures


def test_slopes_and_counts(scale: ModuleType) -> None:
    runs = [scale.Run("score", n, 2 + n * 1e-4, 180 + n / 1024, 1 + n * 1e-5, None, 5, 0, n) for n in (1_000, 10_000, 100_000)]
    s = scale.slopes(runs)
    assert s["between"] == [10_000, 100_000]
    assert s["cpu_ms_per_file"] == pytest.approx(0.1) and s["kb_per_file"] == pytest.approx(1.0)
    assert s["at_1m"]["estimated"] and s["at_1m"]["cpu_s"] == pytest.approx(102)
    assert s["first_task_s_at_100k"] == pytest.approx(2.0)
    assert scale.slopes(runs[:1]) is None
    assert scale.parse_counts("10k,1M,500,500") == [500, 10_000, 1_000_000]
