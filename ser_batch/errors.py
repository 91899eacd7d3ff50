"""One small error hierarchy: jobs catch these per file and turn them into error rows."""

from __future__ import annotations


class SerBatchError(Exception):
    """Base of every error ser-batch raises on purpose; the CLI prints it as one line."""


class AudioError(SerBatchError):
    """A file could not be read as usable audio (corrupt, empty, silent, not audio, too large)."""


class CorpusError(SerBatchError):
    """A path does not fit the corpus layout it was matched or forced to."""


class ModelDirError(SerBatchError):
    """A model directory is missing files, was tampered with, or does not match the data."""


class ConfigError(SerBatchError):
    """Settings are invalid or do not match those of existing artifacts."""
