"""Runs notebooks/training.ipynb with nbclient on a tiny synthetic corpus (EPOCHS = 1, WORKERS = 1)."""

from __future__ import annotations

import json
from pathlib import Path

import nbformat
import pytest

from conftest import REPO, write_synth

NOTEBOOK = REPO / "notebooks" / "training.ipynb"
PARAMETERS = ("CORPUS", "OUT", "EPOCHS", "WORKERS", "FOLD")


def _tagged(nb: nbformat.NotebookNode, tag: str) -> nbformat.NotebookNode:
    cells = [c for c in nb.cells if tag in c.get("metadata", {}).get("tags", [])]
    assert len(cells) == 1, f"one cell tagged {tag!r} expected"
    return cells[0]


def _text(cell: nbformat.NotebookNode) -> str:
    """All text a code cell put out: streams, and the plain and HTML forms of its results."""
    parts = []
    for out in cell.get("outputs", []):
        if out.get("output_type") == "stream":
            parts.append(out.get("text", ""))
        for mime in ("text/plain", "text/html"):
            parts.append(str(out.get("data", {}).get(mime, "")))
    return "\n".join(parts)


def test_notebook_parameters_point_at_the_real_data() -> None:
    nb = nbformat.read(NOTEBOOK, as_version=4)
    nbformat.validate(nb)
    params: dict[str, object] = {}
    exec(_tagged(nb, "parameters").source, {}, params)  # plain assignments only
    assert set(PARAMETERS) <= set(params)
    assert params["EPOCHS"] == 20 and params["WORKERS"] is None
    corpus = (NOTEBOOK.parent / str(params["CORPUS"])).resolve()
    assert corpus == (REPO.parent / "shared" / "data" / "ravdess-speech").resolve()
    assert nb.cells[0].cell_type == "markdown" and "87" in nb.cells[0].source and "speaker" in nb.cells[0].source
    # the notebook only calls the package: no function or class of its own
    code = "\n".join(c.source for c in nb.cells if c.cell_type == "code")
    assert "def " not in code and "class " not in code
    for api in ("discover(", "extract(", "speaker_split(", "fit(", "plots.confusion(", "Image("):
        assert api in code, api


def test_notebook_runs_on_a_tiny_corpus(tmp_path: Path) -> None:
    from nbclient import NotebookClient

    corpus = tmp_path / "corpus"
    for i, actor in enumerate(range(1, 7)):  # 6 speakers: fold 1 tests actor 1
        for j, code in enumerate(("01", "03", "05")):
            write_synth(corpus / f"Actor_{actor:02d}" / f"03-01-{code}-01-01-01-{actor:02d}.wav", code, actor, 16_000, 3.0, 1, "wav16", seed=10 * i + j)
    out = tmp_path / "out"

    nb = nbformat.read(NOTEBOOK, as_version=4)
    _tagged(nb, "parameters").source = "\n".join(
        [f"CORPUS = {str(corpus)!r}", f"OUT = {str(out)!r}", "EPOCHS = 1", "WORKERS = 1", "FOLD = 1"]
    )
    client = NotebookClient(nb, timeout=240, kernel_name="python3", resources={"metadata": {"path": str(tmp_path)}})
    client.execute()  # raises CellExecutionError on the first failing cell

    errors = [o for c in nb.cells if c.cell_type == "code" for o in c.get("outputs", []) if o.get("output_type") == "error"]
    assert errors == []
    assert all(c.get("execution_count") for c in nb.cells if c.cell_type == "code")
    metrics = _text(_tagged(nb, "metrics"))
    for word in ("uar", "accuracy", "macro_f1", "ravdess:1", "neutral", "happy", "angry"):
        assert word in metrics, word
    confusion = _tagged(nb, "confusion")
    assert any("image/png" in o.get("data", {}) for o in confusion.outputs)
    # what the calls wrote, where the parameters said
    for name in ("model.keras", "config.json", "scaler.json", "metrics.json", "report.md"):
        assert (out / "model" / name).is_file(), name
    assert (out / "confusion.png").is_file()
    assert json.loads((out / "features" / "manifest.json").read_text())["totals"]["files_ok"] == 18
    assert json.loads((out / "model" / "config.json").read_text())["split"]["test_speakers"] == ["ravdess:1"]


@pytest.mark.shared
def test_default_corpus_exists(shared_data: Path) -> None:
    assert (shared_data / "ravdess-speech").is_dir()
