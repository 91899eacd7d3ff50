"""Training rows as the train job reads them: shard folders' row metadata, features streamed shard by shard, each
group's (speaker's, corpus's, recording's) normalisation, and the scaler fitted on training rows."""

from __future__ import annotations

import os
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, NamedTuple

import numpy as np
import pandas as pd

from ser_batch import features, shards, windows
from ser_batch import speakers as spk
from ser_batch.errors import ConfigError
from ser_batch.features import FeatureSettings
from ser_batch.modeldir import Scaler


@dataclass(frozen=True)
class Data:
    """Row metadata of one or more shard folders with the same feature settings."""

    dirs: tuple[str, ...]
    meta: pd.DataFrame  # speaker, label, augmentation, recording_id, corpus, plus `source` (dir index)
    features: FeatureSettings
    augment: dict[str, Any] | None
    fingerprints: dict[str, str]
    frames: str = "all"  # windows.FRAMES: "inside" reads each row's frames past its recording's end as NaN


def load_meta(feature_dirs: Sequence[str | os.PathLike[str]]) -> Data:
    """Read manifests and row metadata (no features) of shard folders; they must share feature settings."""
    if not feature_dirs:
        raise ConfigError("give at least one folder of shards made by `ser-batch extract`")
    metas, fs, aug, fps = [], None, None, {}
    for i, d in enumerate(feature_dirs):
        man = shards.read_manifest(Path(d))
        this = FeatureSettings.from_dict(man["settings"]["features"])
        if fs is not None and this != fs:
            raise ConfigError(f"{d} was extracted with other feature settings than {feature_dirs[0]}; extract both alike")
        fs, aug = this, aug or man["settings"]["augment"]
        fps[str(d)] = man.get("inputs_fingerprint", "?")
        m = shards.read_rows(Path(d), ["recording_id", "corpus", "speaker", "label", "augmentation", "pad_s"])
        m["source"] = i
        metas.append(m)
    meta = pd.concat(metas, ignore_index=True)
    if len(meta) == 0:
        raise ConfigError("the shards hold no rows")
    return Data(tuple(str(d) for d in feature_dirs), meta, fs, aug, fps)  # type: ignore[arg-type]


class GroupNorms(NamedTuple):
    """Per-row group index, each group's mean and std per coefficient, and the prior they were shrunk toward: the
    training-side table of what ``inference.Norm`` is for one group when scoring."""

    codes: np.ndarray  # (rows,)
    mean: np.ndarray  # (groups, C)
    std: np.ndarray  # (groups, C)
    prior: np.ndarray | None = None  # (3, C) moments (features.shrinkage_prior), saved with the model for score


def iter_rows(data: Data, mask: np.ndarray, batch_rows: int = 4096, norm: GroupNorms | None = None) -> Iterator[tuple[np.ndarray, np.ndarray]]:
    """Stream (features, row index) of the selected rows, shard by shard, in data.meta order."""
    offset = 0
    for d in data.dirs:
        for meta, x in shards.iter_batches(Path(d), batch_rows, columns=["recording_id"]):
            sel = mask[offset : offset + len(meta)]
            if sel.any():
                idx = np.flatnonzero(sel) + offset
                xs = x[sel]
                if data.frames == "inside":
                    windows.past_end(xs, windows.frames_inside(data.features.duration_s, data.meta["pad_s"].to_numpy()[idx], data.features.frame_s))
                if norm is not None:
                    g = norm.codes[idx]
                    xs = ((xs - norm.mean[g][:, None, :]) / norm.std[g][:, None, :]).astype(np.float32)
                yield xs, idx
            offset += len(meta)


def gather(data: Data, mask: np.ndarray, norm: GroupNorms | None = None) -> np.ndarray:
    """All selected rows' features in memory, in meta order."""
    parts = [x for x, _ in iter_rows(data, mask, norm=norm)]
    if not parts:
        return np.zeros((0, *data.features.shape), np.float32)
    return np.concatenate(parts)


def speaker_norm(data: Data, by: str = "speaker", held_out: np.ndarray | None = None, prior_s: float = 0.0) -> GroupNorms:
    """Each speaker's (or corpus's, ``by``) mean and std per coefficient, over the frames of its original recordings
    (no labels). By corpus, the ``held_out`` rows (the test speakers) are a group of their own within their corpus:
    ``score`` sees only the job it scores, never the training speakers' audio. With ``prior_s``, every group's
    moments get ``prior_s`` seconds' worth of the other groups' typical statistics (``features.shrinkage_prior``,
    from the groups without held-out rows), as ``score`` and ``predict`` do with the saved prior.

    For a frame-grid feature set these are the moments ``extract`` kept per recording (``features.speech_moments``,
    the frames of its speech blocks): the definition ``score`` uses. For a test speaker this uses their unlabelled
    audio: a transductive protocol, reported as such.
    """
    meta = data.meta
    if by == "corpus" and held_out is not None:
        meta = meta.assign(corpus=np.where(held_out, meta["corpus"].astype(str) + "/held-out", meta["corpus"].astype(str)))
    codes, groups = pd.factorize(meta[by].astype(str))
    mom = np.zeros((len(groups), 3, data.features.n_coeffs))
    if data.features.grid:
        kept = spk.group_moments(data.dirs, meta, by)
        for i, g in enumerate(groups):
            mom[i] = kept.get(g, 0)
    else:
        for x, idx in iter_rows(data, (data.meta["augmentation"] == "none").to_numpy()):
            for s in np.unique(codes[idx]):
                mom[s] += features.moments(x[codes[idx] == s])
    prior = None
    if prior_s > 0:
        own = np.ones(len(groups), bool) if held_out is None else ~np.isin(np.arange(len(groups)), codes[held_out])
        prior = features.shrinkage_prior(mom[own & (mom[:, 0, 0] > 0)], prior_s / data.features.frame_s)
    mean, std = features.mean_std(mom, prior)
    return GroupNorms(codes, mean, std, prior)


def alone_norm(data: Data, rows: np.ndarray, norm: GroupNorms) -> GroupNorms:
    """``norm`` for ``rows`` as if each recording were scored on its own: its own speech moments shrunk toward the
    training prior (``predict``'s statistics) instead of its group's."""
    own = spk.group_moments(data.dirs, data.meta, "recording_id")
    ids, codes = np.unique(data.meta["recording_id"].to_numpy()[rows], return_inverse=True)
    mean, std = features.mean_std(np.stack([own[r] for r in ids]), norm.prior)
    full = np.zeros(len(data.meta), np.int64)
    full[rows] = codes
    return GroupNorms(full, mean, std, norm.prior)


def fit_scaler(data: Data, mask: np.ndarray, norm: GroupNorms | None = None) -> Scaler:
    """Per-(frame, coeff) standardisation from training rows, streamed; frames left out (NaN: ``data.frames``
    ``inside``) count for nothing. (scikit-learn's ``partial_fit`` keeps a NaN mean, or drops to scale 1, where a
    batch holds a position only as NaN.)"""
    n = np.zeros(data.features.shape, np.float64)
    total = np.zeros(data.features.shape, np.float64)
    squares = np.zeros(data.features.shape, np.float64)
    for x, _ in iter_rows(data, mask, norm=norm):
        ok = np.isfinite(x)
        z = np.where(ok, x, 0.0).astype(np.float64)
        n += ok.sum(axis=0)
        total += z.sum(axis=0)
        squares += (z * z).sum(axis=0)
    mean = total / np.maximum(n, 1)
    std = np.sqrt(np.maximum(squares / np.maximum(n, 1) - mean * mean, 0.0))
    scale = np.where(std > 1e-8, std, 1.0)
    prior = None if norm is None else norm.prior
    return Scaler(mean.astype(np.float32), scale.astype(np.float32), prior)
