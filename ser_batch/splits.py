"""Honest splits: by speaker, augmented rows only in training, validation speakers out of the training speakers.

Protocols
- ``holdout``: one fold's speakers are the test set (default fold 1); a single model.
- ``cv``: every fold is the test set once; mean ± spread over folds.
- ``seed-random``: the origin notebook's random row split over augmented copies. Leaky (copies of one recording
  land on both sides); only for comparison, and every report says so.

- ``loco``: leave one corpus out: every speaker of the named corpus is tested, none of them trains or validates.

Folds: RAVDESS actors follow the EmoBox benchmark's 6 folds (the ones published results use); speakers of other
corpora get a fold from a stable hash of their name. When RAVDESS is in the data, only its actors are tested in
``holdout`` and ``cv`` (the other corpora train and validate), so a fold's figure is the EmoBox fold's figure
whatever else trained. A corpus with fewer speakers than folds (TESS has 2) cannot be judged
speaker-independently on its own: its speakers always train.

Speakers are corpus-qualified (``ravdess:12``, ``ased:29``), so two corpora never share a speaker by accident, and
``check`` refuses rows whose speaker is not qualified with the row's corpus. Validation speakers are drawn from
every corpus with enough speakers (``n_val`` from each), so early stopping watches every such corpus.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable
from dataclasses import asdict, dataclass

import numpy as np
import pandas as pd

from ser_batch.errors import ConfigError

PROTOCOLS = ("holdout", "cv", "seed-random", "loco", "all")
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


def corpus_of(speaker: str) -> str:
    """The corpus part of a corpus-qualified speaker (``ravdess:12`` -> ``ravdess``)."""
    return speaker.partition(":")[0]


def foldable(speakers: Iterable[str], n_folds: int = N_FOLDS) -> set[str]:
    """Speakers that may be tested: those of corpora with at least ``n_folds`` known speakers."""
    by_corpus: dict[str, set[str]] = {}
    for s in speakers:
        corpus, _, name = s.partition(":")
        if name != "?":  # unknown speakers cannot be kept apart, so they only ever train
            by_corpus.setdefault(corpus, set()).add(s)
    return {s for group in by_corpus.values() if len(group) >= n_folds for s in group}


def validation_speakers(rest: Iterable[str], testable: set[str], n_val: int, seed: int, fold: int) -> list[str]:
    """``n_val`` speakers from each corpus with enough speakers, out of ``rest`` (never a test speaker); each such
    corpus keeps at least one training speaker. Each corpus draws with its own generator seeded by (seed, fold), so
    one corpus's validation speakers do not depend on which other corpora are in the data."""
    by_corpus: dict[str, list[str]] = {}
    for s in sorted(set(rest)):
        if s in testable:
            by_corpus.setdefault(corpus_of(s), []).append(s)
    val: list[str] = []
    for corpus in sorted(by_corpus):
        candidates = by_corpus[corpus]
        rng = np.random.default_rng([seed, fold])
        val += rng.choice(candidates, size=min(n_val, max(len(candidates) - 1, 0)), replace=False).tolist()
    return sorted(val)


def speaker_split(
    speakers: Iterable[str], fold: int, n_val: int = 2, seed: int = 0, n_folds: int = N_FOLDS, protocol: str = "holdout"
) -> Split:
    """Test = foldable speakers of ``fold`` (RAVDESS actors only, when RAVDESS is foldable in the data);
    validation = ``n_val`` foldable training speakers of each corpus; the rest train."""
    if not 1 <= fold <= n_folds:
        raise ConfigError(f"fold must be in 1..{n_folds}, got {fold}")
    all_speakers = sorted(set(speakers))
    testable = foldable(all_speakers, n_folds)
    if not testable:
        raise ConfigError(
            f"no corpus has {n_folds} or more speakers, so no speaker-independent test is possible; "
            "add a corpus with more speakers (RAVDESS has 24)"
        )
    ravdess = {s for s in testable if corpus_of(s) == "ravdess"}
    tested = ravdess or testable  # with RAVDESS, its EmoBox folds are the test sets; other corpora train
    test = sorted(s for s in tested if fold_of(s, n_folds) == fold)
    rest = [s for s in all_speakers if s not in test]
    val = validation_speakers(rest, testable, n_val, seed, fold)
    train = [s for s in rest if s not in val]
    if not test or not train:
        raise ConfigError(f"fold {fold} leaves an empty test or training set; check the speakers in the data")
    return Split(protocol, fold, tuple(train), tuple(val), tuple(test), seed)


def loco_split(speakers: Iterable[str], corpus: str, n_val: int = 2, seed: int = 0, n_folds: int = N_FOLDS) -> Split:
    """Leave one corpus out: test = every speaker of ``corpus`` (unknown ones too: none of them trains);
    validation = ``n_val`` speakers of each other corpus with at least ``n_folds`` speakers; the rest train."""
    all_speakers = sorted(set(speakers))
    test = [s for s in all_speakers if corpus_of(s) == corpus]
    if not test:
        present = sorted({corpus_of(s) for s in all_speakers})
        raise ConfigError(f"corpus {corpus!r} is not in the data (corpora: {', '.join(present)}); name one of them to leave out")
    rest = [s for s in all_speakers if corpus_of(s) != corpus]
    val = validation_speakers(rest, foldable(rest, n_folds), n_val, seed, 0)
    train = [s for s in rest if s not in val]
    if not train:
        raise ConfigError(f"leaving {corpus!r} out leaves no training speakers; add shards of another corpus")
    return Split("loco", None, tuple(train), tuple(val), tuple(test), seed)


def all_split(speakers: Iterable[str], n_val: int = 2, seed: int = 0, n_folds: int = N_FOLDS) -> Split:
    """Every speaker trains except ``n_val`` validation speakers of each corpus with at least ``n_folds`` speakers
    (they choose the epoch): the shipped model once cross-validation has chosen its configuration. No test set."""
    all_speakers = sorted(set(speakers))
    val = validation_speakers(all_speakers, foldable(all_speakers, n_folds), n_val, seed, 0)
    train = [s for s in all_speakers if s not in val]
    if not train:
        raise ConfigError("no training speakers; check the shards")
    return Split("all", None, tuple(train), tuple(val), (), seed)


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
    if "corpus" in meta:  # corpus-qualified speakers: the same id in two corpora is two speakers, never one
        pairs = meta[["speaker", "corpus"]].astype(str).drop_duplicates()
        bad = [not s.startswith(c + ":") for s, c in zip(pairs["speaker"], pairs["corpus"])]
        if any(bad):
            first = pairs[bad].iloc[0]
            raise ConfigError(
                f"speaker {first['speaker']!r} of corpus {first['corpus']!r} is not qualified as '{first['corpus']}:NAME', "
                "so speakers of two corpora could be taken for one; extract the shards again with this ser-batch"
            )
    parts = {k: set(meta.loc[v, "speaker"]) for k, v in m.items()}
    for a, b in (("train", "val"), ("train", "test"), ("val", "test")):
        common = parts[a] & parts[b]
        if common:
            raise ConfigError(f"speakers {sorted(common)[:5]} are in both {a} and {b}")
    for k in ("val", "test"):
        if (meta.loc[m[k], "augmentation"] != "none").any():
            raise ConfigError(f"augmented rows in {k}")
