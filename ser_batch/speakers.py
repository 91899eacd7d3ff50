"""Who speaks in each recording, and each speaker's feature statistics, for speaker-normalised models.

A speaker's statistics are the moments (``features.moments``) of the frames of their speech (``pieces`` says which
frames: speech blocks inside the recording, never padding), summed over all their recordings: the one definition
that train, evaluate and score share (a corpus's: its speakers' summed, ``group_moments``). Speakers are worked out
on the workers, batch by batch (``speaker_of``); the client only sums per-speaker moments and writes them to a norms
table the scoring tasks read.
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import Iterable, Sequence
from functools import lru_cache
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from ser_batch import features
from ser_batch.errors import ConfigError
from ser_batch.inference import Norm

if TYPE_CHECKING:
    import pandas as pd

    from ser_batch.features import FeatureSettings


MODES = ("layout", "recording", "job")


def speaker_of(paths: Sequence[str], speakers: str) -> list[str]:
    """Speaker of each path.

    ``speakers``: "recording" (each recording is its own speaker), "job" (all recordings of the job are one: the
    statistics a corpus-normalised model takes), "layout" (the speaker a known corpus layout
    names, e.g. RAVDESS's actor; the recording itself where none does, as in a folder-per-label corpus), or a CSV
    file with columns ``path,speaker`` (paths relative to the CSV's folder or absolute; unlisted files are their
    own speaker).
    """
    from ser_batch import corpora
    from ser_batch.corpora.generic import UNKNOWN_SPEAKER
    from ser_batch.errors import CorpusError

    if speakers == "job":
        return ["job"] * len(paths)
    own = [f"recording:{p}" for p in paths]
    if speakers == "recording":
        return own
    if speakers == "layout":
        for i, p in enumerate(paths):
            try:
                spk = corpora.parse(Path(p)).speaker
            except CorpusError:
                continue
            if spk and spk != UNKNOWN_SPEAKER:
                own[i] = spk
        return own
    table = _speaker_table(speakers, _mtime(speakers))
    name = Path(speakers).name
    return [f"{name}:{table[p]}" if table.get(p) else o for p, o in zip(paths, own)]


def check(speakers: str) -> str:
    """``speakers`` if usable (a mode, or a readable CSV path,speaker), as the key of the job's parts."""
    if speakers in MODES:
        return speakers
    table = _speaker_table(speakers, _mtime(speakers))
    return hashlib.sha256(repr(sorted(table.items())).encode("utf-8", "surrogateescape")).hexdigest()


def _mtime(path: str) -> int:
    try:
        return os.stat(path).st_mtime_ns
    except OSError as exc:
        raise ConfigError(f"--speakers {path}: not 'layout', 'recording', 'job' or a readable CSV path,speaker ({exc.strerror or exc})") from exc


@lru_cache(maxsize=2)
def _speaker_table(speakers: str, _mtime_ns: int) -> dict[str, str]:
    import pandas as pd

    table = Path(speakers)
    try:
        df = pd.read_csv(table, dtype=str, keep_default_na=False)
    except (OSError, ValueError) as exc:
        raise ConfigError(f"--speakers {speakers}: not 'layout', 'recording', 'job' or a readable CSV path,speaker ({exc})") from exc
    if not {"path", "speaker"} <= set(df.columns):
        raise ConfigError(f"--speakers {table}: needs the columns path,speaker; it has {', '.join(df.columns)}")
    return {os.path.abspath(os.path.join(table.parent, p)): s for p, s in zip(df["path"], df["speaker"])}


STATS_SCHEMA = pa.schema([("row", pa.int64()), ("speaker", pa.string()), ("chunk", pa.int32()), ("error", pa.string()), ("moments", pa.list_(pa.float64()))])
"""A statistics part: each piece's share of its speaker's moments (or why the piece failed)."""


def sum_moments(parts: Iterable[Path]) -> dict[str, np.ndarray]:
    """Moments per speaker over statistics parts, read one part at a time."""
    totals: dict[str, np.ndarray] = {}
    for p in parts:
        t = pq.read_table(p, columns=["speaker", "moments"]).to_pydict()
        for spk, m in zip(t["speaker"], t["moments"]):
            if m is not None:
                totals[spk] = totals.get(spk, 0) + np.asarray(m).reshape(3, -1)
    return totals


def write_norms(totals: dict[str, np.ndarray], path: Path, prior: np.ndarray | None = None) -> str:
    """Each speaker's mean and std (shrunk toward the model's ``prior``, if it has one) as a Parquet table (no
    pickle); returns its digest (parts depend on it)."""
    from ser_batch.shards import write_table_atomic

    names = sorted(totals)
    ms = [features.mean_std(totals[s], prior) for s in names]
    table = pa.table({"speaker": names, "mean": [m.tolist() for m, _ in ms], "std": [s.tolist() for _, s in ms]})
    write_table_atomic(table, path)
    h = hashlib.sha256()
    for s, (m, sd) in zip(names, ms):
        h.update(s.encode("utf-8", "surrogateescape") + m.tobytes() + sd.tobytes())
    return h.hexdigest()[:10]


@lru_cache(maxsize=2)
def read_norms(path: str, _mtime_ns: int = 0) -> dict[str, Norm]:
    """Speaker -> (mean, std) from ``write_norms``'s table (cached per worker process)."""
    t = pq.read_table(path).to_pydict()
    return {s: (np.asarray(m, np.float32), np.asarray(sd, np.float32)) for s, m, sd in zip(t["speaker"], t["mean"], t["std"])}


def group_moments(dirs: Sequence[str], meta: pd.DataFrame, by: str = "speaker") -> dict[str, np.ndarray]:
    """Moments (3, coeffs) per normalisation group (``by``: speaker, corpus or recording_id) of a frame-grid feature
    set: the sum of the speech moments ``extract`` kept for the group's recordings in ``meta`` (the definition
    ``score`` uses)."""
    from ser_batch import shards

    owner = dict(zip(meta["recording_id"], meta[by].astype(str)))
    out: dict[str, np.ndarray] = {}
    for rid, m in shards.recording_moments(dirs).items():
        if rid in owner:
            out[owner[rid]] = out.get(owner[rid], 0) + m
    return out


def normalise_rows(x: np.ndarray, meta: pd.DataFrame, dirs: Sequence[str], fs: FeatureSettings, by: str = "speaker", prior: np.ndarray | None = None) -> np.ndarray:
    """Rows in memory z-scored in place with their group's statistics (``trainset.speaker_norm``'s definition, shrunk
    toward the model's ``prior``): from the moments ``extract`` kept for a frame-grid feature set, else from these
    rows' own frames. Returns ``x``."""
    kept = group_moments(dirs, meta, by) if fs.grid else {}
    keys = meta[by].astype(str)
    for g in keys.unique():
        rows = (keys == g).to_numpy()
        mean, std = features.mean_std(kept[g] if g in kept else features.moments(x[rows]), prior)
        x[rows] = (x[rows] - mean) / std
    return x
