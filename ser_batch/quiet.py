"""Keep TensorFlow's native start-up lines off the terminal, in the CLI and in Dask workers alike.

``TF_CPP_MIN_LOG_LEVEL=3`` hides TensorFlow's own C++ log lines, but not the ones its CUDA stubs write while the
library loads, before absl's logging is initialised (``WARNING: All log messages before absl::InitializeLog() ...``
and ``I0000 ... cudart_stub.cc:31] Could not find cuda drivers on your machine``): no variable reaches those. So the
first ``import tensorflow`` runs with file descriptor 2 sent to a temporary file, and afterwards everything in it
but those lines is written back to stderr (a real error during the import still shows, just after it). Python-level
absl and ``tensorflow`` loggers are set to errors only.

Installed by ``import ser_batch`` when ``TF_CPP_MIN_LOG_LEVEL`` is 3 (ser_batch's default, and what workers get);
``ser-batch --verbose`` or a lower ``TF_CPP_MIN_LOG_LEVEL`` keeps everything. ``TF_ENABLE_ONEDNN_OPTS`` is left
alone: it changes the numbers, not just the messages (the oneDNN notice is an INFO line, hidden by the level).
"""

from __future__ import annotations

import importlib.abc
import importlib.machinery
import importlib.util
import logging
import os
import re
import sys
import tempfile
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from types import ModuleType

NOISE = re.compile(
    r"WARNING: All log messages before absl::InitializeLog\(\) is called are written to STDERR"
    r"|[IW]\d{4} [\d:.]+\s+\d+ [\w./-]+:\d+\] "  # absl/glog INFO and WARNING lines of the native libraries
    r"|E\d{4} [\d:.]+\s+\d+ [\w./-]+:\d+\] (Unable to register cu(DNN|FFT|BLAS) factory|.*computation placer already registered)"
    r"|To enable the following instructions: .* rebuild TensorFlow with the appropriate compiler flags"
)
"""Start-up lines that say nothing to a user: what is left after ``TF_CPP_MIN_LOG_LEVEL=3``, plus the known
spurious errors of TensorFlow's CUDA builds."""

QUIET_MODULES = ("tensorflow",)


def is_noise(line: str) -> bool:
    """Is this stderr line TensorFlow/absl start-up chatter?"""
    return NOISE.match(line.strip()) is not None


@contextmanager
def native_stderr_filtered() -> Iterator[None]:
    """Send file descriptor 2 to a temporary file for the block; then write back all but the start-up noise."""
    try:
        sys.stderr.flush()
        saved = os.dup(2)
    except (OSError, AttributeError, ValueError):  # no real stderr (a test runner's stand-in): nothing to filter
        yield
        return
    with tempfile.TemporaryFile() as tmp:
        os.dup2(tmp.fileno(), 2)
        try:
            yield
        finally:
            try:
                sys.stderr.flush()
            except (OSError, ValueError):
                pass
            os.dup2(saved, 2)
            os.close(saved)
            tmp.seek(0)
            kept = [ln for ln in tmp.read().decode("utf-8", "replace").splitlines(keepends=True) if not is_noise(ln)]
            if kept:
                sys.stderr.write("".join(kept))
                sys.stderr.flush()


class _QuietImporter(importlib.abc.MetaPathFinder):
    """Runs the first import of each module in ``names`` under ``native_stderr_filtered``."""

    def __init__(self, names: Sequence[str]) -> None:
        self.names = set(names)

    def find_spec(self, fullname: str, path: Sequence[str] | None, target: ModuleType | None = None) -> importlib.machinery.ModuleSpec | None:
        if fullname not in self.names:
            return None
        self.names.discard(fullname)
        if not self.names:
            uninstall()
        spec = None
        for finder in [f for f in sys.meta_path if not isinstance(f, _QuietImporter)]:
            find = getattr(finder, "find_spec", None)
            spec = find(fullname, path, target) if find is not None else None
            if spec is not None:
                break
        loader = spec.loader if spec is not None else None
        if loader is None or not hasattr(loader, "exec_module"):
            return spec
        run = loader.exec_module

        def exec_module(module: ModuleType) -> None:
            with native_stderr_filtered():
                run(module)
            errors_only()

        loader.exec_module = exec_module  # type: ignore[method-assign]  # this spec's own loader instance
        return spec


def errors_only() -> None:
    """Python-level TensorFlow and absl loggers: errors only (absl only once something imported it)."""
    logging.getLogger("tensorflow").setLevel(logging.ERROR)
    absl = sys.modules.get("absl.logging")
    if absl is not None:
        absl.set_verbosity(absl.ERROR)  # type: ignore[attr-defined]


def install() -> None:
    """Filter the start-up noise of the first ``import tensorflow`` (no-op once it is imported or installed)."""
    if any(isinstance(f, _QuietImporter) for f in sys.meta_path):
        return
    names = [n for n in QUIET_MODULES if n not in sys.modules]
    if names:
        sys.meta_path.insert(0, _QuietImporter(names))


def uninstall() -> None:
    """Let TensorFlow's start-up lines through again (``ser-batch --verbose``)."""
    sys.meta_path[:] = [f for f in sys.meta_path if not isinstance(f, _QuietImporter)]
