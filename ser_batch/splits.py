"""Honest splits: by speaker, augmented rows only in training, validation speakers out of the training speakers.

Protocols
- ``holdout``: one fold's speakers are the test set (default fold 1); a single model.
- ``cv``: every fold is the test set once; mean ± spread over folds.
- ``seed-random``: the origin notebook's random row split over augmented copies. Leaky (copies of one recording
  land on both sides); only for comparison, and every report says so.

Folds: RAVDESS actors follow the EmoBox benchmark's 6 folds (the ones published results use); speakers of other
corpora get a fold from a stable hash of their name. A corpus with fewer speakers than folds (TESS has 2) cannot
be judged speaker-independently on its own: its speakers always train.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable
from dataclasses import asdict, dataclass

import numpy as np
import pandas as pd

from ser_batch.errors import ConfigError

PROTOCOLS = ("holdout", "cv", "seed-random")
N_FOLDS = 6

RAVDESS_EMOBOX_FOLDS: dict[int, tuple[int, ...]] = {
    1: (1, 11, 20, 21),
    2: (4, 10, 12, 14),
    3: (8, 9, 19, 23),
    4: (3, 5, 7, 24),
    5: (2, 15, 16, 18),
    6: (6, 13, 17, 22),
}
"""Test actors per fold of the EmoBox RAVDESS benchmark (emo-box/EmoBox, data/ravdess)."""


@dataclass(frozen=True)
class Split:
    """Who trains, who validates, who is tested, and under which protocol."""

    protocol: str
    fold: int | None
    train_speakers: tuple[str, ...]
    val_speakers: tuple[str, ...]
    test_speakers: tuple[str, ...]
    seed: int = 0

    def to_dict(self) -> dict[str, object]:
        d = asdict(self)
        for k in ("train_speakers", "val_speakers", "test_speakers"):
            d[k] = list(d[k])
        return d

    @classmethod
    def from_dict(cls, d: dict[str, object]) -> Split:
        return cls(
            protocol=str(d["protocol"]),
            fold=None if d.get("fold") is None else int(d["fold"]),  # type: ignore[arg-type]
            train_speakers=tuple(d["train_speakers"]),  # type: ignore[arg-type]
            val_speakers=tuple(d["val_speakers"]),  # type: ignore[arg-type]
            test_speakers=tuple(d["test_speakers"]),  # type: ignore[arg-type]
            seed=int(d.get("seed", 0)),  # type: ignore[arg-type]
        )


def fold_of(speaker: str, n_folds: int = N_FOLDS) -> int:
    """Fold (1..n) of a speaker: EmoBox's for RAVDESS actors, a stable hash otherwise."""
    corpus, _, name = speaker.partition(":")
    if corpus == "ravdess" and n_folds == N_FOLDS and name.isdigit():
        for fold, actors in RAVDESS_EMOBOX_FOLDS.items():
            if int(name) in actors:
                return fold
    digest = hashlib.sha256(speaker.encode("utf-8", "surrogateescape")).digest()
    return int.from_bytes(digest[:4], "little") % n_folds + 1


def foldable(speakers: Iterable[str], n_folds: int = N_FOLDS) -> set[str]:
    """Speakers that may be tested: those of corpora with at least ``n_folds`` known speakers."""
    by_corpus: dict[str, set[str]] = {}
    for s in speakers:
        corpus, _, name = s.partition(":")
        if name != "?":  # unknown speakers cannot be kept apart, so they only ever train
            by_corpus.setdefault(corpus, set()).add(s)
    return {s for group in by_corpus.values() if len(group) >= n_folds for s in group}


def speaker_split(
    speakers: Iterable[str], fold: int, n_val: int = 2, seed: int = 0, n_folds: int = N_FOLDS, protocol: str = "holdout"
) -> Split:
    """Test = foldable speakers of ``fold``; validation = ``n_val`` foldable training speakers; the rest train."""
    if not 1 <= fold <= n_folds:
        raise ConfigError(f"fold must be in 1..{n_folds}, got {fold}")
    all_speakers = sorted(set(speakers))
    testable = foldable(all_speakers, n_folds)
    if not testable:
        raise ConfigError(
            f"no corpus has {n_folds} or more speakers, so no speaker-independent test is possible; "
            "add a corpus with more speakers (RAVDESS has 24)"
        )
    test = sorted(s for s in testable if fold_of(s, n_folds) == fold)
    rest = [s for s in all_speakers if s not in test]
    candidates = sorted(s for s in rest if s in testable)
    rng = np.random.default_rng([seed, fold])
    val = sorted(rng.choice(candidates, size=min(n_val, max(len(candidates) - 1, 0)), replace=False).tolist())
    train = [s for s in rest if s not in val]
    if not test or not train:
        raise ConfigError(f"fold {fold} leaves an empty test or training set; check the speakers in the data")
    return Split(protocol, fold, tuple(train), tuple(val), tuple(test), seed)


def masks(meta: pd.DataFrame, split: Split) -> dict[str, np.ndarray]:
    """Row masks for train / val / test: augmented rows only ever in train."""
    original = (meta["augmentation"] == "none").to_numpy()
    if split.protocol == "seed-random":
        return seed_random_masks(meta, split.seed)
    spk = meta["speaker"]
    return {
        "train": spk.isin(split.train_speakers).to_numpy(),
        "val": spk.isin(split.val_speakers).to_numpy() & original,
        "test": spk.isin(split.test_speakers).to_numpy() & original,
    }


def seed_random_masks(meta: pd.DataFrame, seed: int = 0, test_size: float = 0.25) -> dict[str, np.ndarray]:
    """The seed's leaky protocol: a random 75/25 split over all rows, augmented copies included."""
    rng = np.random.default_rng(seed)
    test = rng.random(len(meta)) < test_size
    val = np.zeros(len(meta), bool)
    val[np.flatnonzero(~test)[rng.random(int((~test).sum())) < 0.1]] = True
    return {"train": ~test & ~val, "val": val, "test": test}


def check(meta: pd.DataFrame, m: dict[str, np.ndarray], protocol: str) -> None:
    """Assert the invariants of an honest split; raise ConfigError naming the leak."""
    if protocol == "seed-random":
        return
    parts = {k: set(meta.loc[v, "speaker"]) for k, v in m.items()}
    for a, b in (("train", "val"), ("train", "test"), ("val", "test")):
        common = parts[a] & parts[b]
        if common:
            raise ConfigError(f"speakers {sorted(common)[:5]} are in both {a} and {b}")
    for k in ("val", "test"):
        if (meta.loc[m[k], "augmentation"] != "none").any():
            raise ConfigError(f"augmented rows in {k}")
