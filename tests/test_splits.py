"""Tests of ser_batch.splits: speaker-disjoint folds, validation from training speakers, augmented rows only in train."""

from __future__ import annotations

from collections import Counter
from itertools import chain

import numpy as np
import pandas as pd
import pytest
from hypothesis import event, given, settings
from hypothesis import strategies as st

from ser_batch import splits
from ser_batch.errors import ConfigError
from ser_batch.splits import N_FOLDS, RAVDESS_EMOBOX_FOLDS, Split

RAVDESS_ALL = [f"ravdess:{a}" for a in range(1, 25)]
TESS = ["tess:OAF", "tess:YAF"]

# Speaker sets of mixed corpora: RAVDESS actors, many CREMA-D speakers, TESS's two, a few SAVEE, unknown speakers.
speaker_sets = st.builds(
    lambda rav, crem, tess, savee, unknown: rav | crem | tess | savee | unknown,
    st.lists(st.booleans(), min_size=24, max_size=24).map(lambda keep: {f"ravdess:{a}" for a, k in zip(range(1, 25), keep) if k}),
    st.integers(0, 30).map(lambda k: {f"cremad:{1001 + 3 * i}" for i in range(k)}),
    st.sets(st.sampled_from(TESS), max_size=2),
    st.sets(st.sampled_from(["savee:DC", "savee:JE", "savee:JK", "savee:KL"]), max_size=4),
    st.sets(st.sampled_from(["generic:?", "other:?"]), max_size=2),
)


def _corpus(s: str) -> str:
    return s.partition(":")[0]


@settings(max_examples=150, deadline=None)
@given(speakers=speaker_sets, fold=st.integers(1, N_FOLDS), n_val=st.integers(0, 4), seed=st.integers(0, 3))
def test_speaker_split_properties(speakers: set[str], fold: int, n_val: int, seed: int) -> None:
    testable = splits.foldable(speakers)
    ravdess = {s for s in testable if _corpus(s) == "ravdess"}
    in_fold = {s for s in (ravdess or testable) if splits.fold_of(s) == fold}  # with RAVDESS, only its actors are tested
    try:
        sp = splits.speaker_split(speakers, fold, n_val=n_val, seed=seed)
    except ConfigError:
        event("refused")
        # only refused when no speaker-independent test is possible, or the fold leaves test or train empty
        assert not testable or not in_fold or in_fold == set(speakers)
        return
    event("split")
    train, val, test = set(sp.train_speakers), set(sp.val_speakers), set(sp.test_speakers)
    # disjoint, and together exactly the speakers given
    assert not (train & val) and not (train & test) and not (val & test)
    assert train | val | test == set(speakers)
    assert len(sp.train_speakers) == len(train)
    # test: exactly the foldable speakers of this fold (RAVDESS's EmoBox fold when RAVDESS is there)
    assert test == in_fold and test
    # validation: n_val from each corpus's testable training candidates, never from the test fold, one left to train
    candidates = testable - test
    assert val <= candidates
    for corpus in {_corpus(s) for s in candidates}:
        mine = {s for s in candidates if _corpus(s) == corpus}
        assert len(val & mine) == min(n_val, len(mine) - 1), corpus
        assert mine - val, f"at least one foldable {corpus} candidate must stay in training"
    # corpora with fewer speakers than folds, and unknown speakers, only ever train
    counts = Counter(_corpus(s) for s in speakers if not s.endswith(":?"))
    for s in speakers:
        if s.endswith(":?") or counts[_corpus(s)] < N_FOLDS:
            assert s in train, s
    assert sp.protocol == "holdout" and sp.fold == fold and sp.seed == seed
    # deterministic for (speakers, fold, seed), whatever the input order
    again = splits.speaker_split(sorted(speakers, reverse=True), fold, n_val=n_val, seed=seed)
    assert again == sp


def test_emobox_folds_cover_every_ravdess_actor_once() -> None:
    actors = list(chain.from_iterable(RAVDESS_EMOBOX_FOLDS.values()))
    assert sorted(actors) == list(range(1, 25))
    assert set(RAVDESS_EMOBOX_FOLDS) == set(range(1, N_FOLDS + 1))
    assert all(len(v) == 4 for v in RAVDESS_EMOBOX_FOLDS.values())
    for fold, members in RAVDESS_EMOBOX_FOLDS.items():
        for a in members:
            assert splits.fold_of(f"ravdess:{a}") == fold


def test_fold_one_tests_emobox_actors() -> None:
    sp = splits.speaker_split(RAVDESS_ALL, 1)
    assert sp.test_speakers == ("ravdess:1", "ravdess:11", "ravdess:20", "ravdess:21")
    assert len(sp.val_speakers) == 2 and len(sp.train_speakers) == 18


def test_every_fold_tests_each_ravdess_actor_once() -> None:
    tested = Counter(s for f in range(1, N_FOLDS + 1) for s in splits.speaker_split(RAVDESS_ALL + TESS, f).test_speakers)
    assert set(tested) == set(RAVDESS_ALL)
    assert set(tested.values()) == {1}


@pytest.mark.parametrize("fold", range(1, N_FOLDS + 1))
def test_tess_always_trains(fold: int) -> None:
    sp = splits.speaker_split(RAVDESS_ALL + TESS, fold, n_val=3)
    assert set(TESS) <= set(sp.train_speakers)
    assert not set(TESS) & (set(sp.val_speakers) | set(sp.test_speakers))


def test_corpus_with_too_few_speakers_alone_is_refused() -> None:
    with pytest.raises(ConfigError, match="speaker-independent"):
        splits.speaker_split(TESS, 1)
    with pytest.raises(ConfigError, match="speaker-independent"):
        splits.speaker_split([f"ravdess:{a}" for a in range(1, 6)], 1)  # 5 < 6 speakers


def test_hash_folds_are_stable_and_in_range() -> None:
    speakers = [f"cremad:{i}" for i in range(1001, 1092)]
    folds = [splits.fold_of(s) for s in speakers]
    assert set(folds) <= set(range(1, N_FOLDS + 1))
    assert len(set(folds)) == N_FOLDS  # 91 speakers fill every fold
    assert folds == [splits.fold_of(s) for s in speakers]


@pytest.mark.parametrize("fold", [0, 7, -1])
def test_bad_fold_is_refused(fold: int) -> None:
    with pytest.raises(ConfigError, match="fold"):
        splits.speaker_split(RAVDESS_ALL, fold)


def test_split_dict_round_trip() -> None:
    sp = splits.speaker_split(RAVDESS_ALL, 3, seed=5)
    d = sp.to_dict()
    assert isinstance(d["train_speakers"], list)
    assert Split.from_dict(d) == sp


# ------------------------------------------------------------------------------------------------ masks and check


def _meta(speakers: list[str], files_per_speaker: int = 2) -> pd.DataFrame:
    rows = []
    for s in speakers:
        for f in range(files_per_speaker):
            for aug in ("none", "noise", "pitch", "stretch"):
                rows.append({"speaker": s, "recording_id": f"{s}/{f}", "augmentation": aug, "label": "happy"})
    return pd.DataFrame(rows)


def test_masks_keep_augmented_rows_out_of_val_and_test() -> None:
    meta = _meta(RAVDESS_ALL + TESS)
    sp = splits.speaker_split(meta["speaker"].unique(), 2)
    m = splits.masks(meta, sp)
    aug = (meta["augmentation"] != "none").to_numpy()
    assert not (m["val"] & aug).any()
    assert not (m["test"] & aug).any()
    assert (m["train"] & aug).any()  # augmented copies do train
    # each mask holds exactly its speakers' rows (originals only for val and test)
    assert set(meta.loc[m["test"], "speaker"]) == set(sp.test_speakers)
    assert set(meta.loc[m["val"], "speaker"]) == set(sp.val_speakers)
    assert m["test"].sum() == len(sp.test_speakers) * 2
    assert m["train"].sum() == len(sp.train_speakers) * 2 * 4
    # no row in two parts
    assert not (m["train"] & m["val"]).any() and not (m["train"] & m["test"]).any() and not (m["val"] & m["test"]).any()
    splits.check(meta, m, sp.protocol)  # an honest split passes


def test_check_raises_on_speaker_leak() -> None:
    meta = _meta(RAVDESS_ALL)
    sp = splits.speaker_split(meta["speaker"].unique(), 1)
    m = splits.masks(meta, sp)
    leaked = dict(m)
    one_train_row = np.flatnonzero(((meta["speaker"] == sp.train_speakers[0]) & (meta["augmentation"] == "none")).to_numpy())[0]
    leaked["test"] = m["test"].copy()
    leaked["test"][one_train_row] = True
    with pytest.raises(ConfigError, match="train and test") as exc:
        splits.check(meta, leaked, "holdout")
    assert sp.train_speakers[0] in str(exc.value)


def test_check_raises_on_train_val_leak() -> None:
    meta = _meta(RAVDESS_ALL)
    sp = splits.speaker_split(meta["speaker"].unique(), 1)
    bad = Split("holdout", 1, sp.train_speakers, (*sp.val_speakers, sp.train_speakers[0]), sp.test_speakers)
    with pytest.raises(ConfigError, match="train and val"):
        splits.check(meta, splits.masks(meta, bad), "holdout")


def test_check_raises_on_augmented_rows_in_test() -> None:
    meta = _meta(RAVDESS_ALL)
    sp = splits.speaker_split(meta["speaker"].unique(), 1)
    m = splits.masks(meta, sp)
    m["test"] = meta["speaker"].isin(sp.test_speakers).to_numpy()  # augmented copies too
    with pytest.raises(ConfigError, match="augmented rows in test"):
        splits.check(meta, m, "holdout")


@settings(max_examples=30, deadline=None)
@given(n=st.integers(1, 600), seed=st.integers(0, 1000))
def test_seed_random_masks_partition_rows(n: int, seed: int) -> None:
    meta = pd.DataFrame({"speaker": ["ravdess:1"] * n, "augmentation": ["none"] * n})
    m = splits.seed_random_masks(meta, seed)
    total = m["train"].astype(int) + m["val"].astype(int) + m["test"].astype(int)
    assert (total == 1).all()
    again = splits.seed_random_masks(meta, seed)
    assert all((again[k] == m[k]).all() for k in m)


def test_seed_random_protocol_is_random_over_rows() -> None:
    meta = _meta(RAVDESS_ALL, files_per_speaker=10)  # 960 rows
    sp = Split("seed-random", None, tuple(RAVDESS_ALL), (), (), seed=1)
    m = splits.masks(meta, sp)
    assert 0.2 < m["test"].mean() < 0.3  # the seed's 75/25 split
    assert (m["test"] & (meta["augmentation"] != "none").to_numpy()).any()  # leaky by design: copies in test
    other = splits.masks(meta, Split("seed-random", None, tuple(RAVDESS_ALL), (), (), seed=2))
    assert (other["test"] != m["test"]).any()
    splits.check(meta, m, "seed-random")  # not judged: it is the leaky comparison protocol


# ---------------------------------------------------------------------------------------------- mixed corpora, loco

ASED = [f"ased:{i:02d}" for i in range(1, 66)]


@pytest.mark.parametrize("fold", range(1, N_FOLDS + 1))
def test_with_ravdess_only_its_emobox_fold_is_tested_and_every_corpus_validates(fold: int) -> None:
    sp = splits.speaker_split(RAVDESS_ALL + ASED + TESS, fold, n_val=2)
    assert set(sp.test_speakers) == {f"ravdess:{a}" for a in RAVDESS_EMOBOX_FOLDS[fold]}
    assert Counter(_corpus(s) for s in sp.val_speakers) == {"ravdess": 2, "ased": 2}
    assert set(TESS) <= set(sp.train_speakers)
    # RAVDESS's validation actors do not depend on which other corpora are in the data
    alone = splits.speaker_split(RAVDESS_ALL, fold, n_val=2)
    assert [s for s in sp.val_speakers if _corpus(s) == "ravdess"] == list(alone.val_speakers)


def test_without_ravdess_speakers_of_every_foldable_corpus_are_tested() -> None:
    crema = [f"cremad:{1001 + i}" for i in range(40)]
    tested = set().union(*(splits.speaker_split(ASED + crema, f).test_speakers for f in range(1, N_FOLDS + 1)))
    assert tested == set(ASED + crema)


@pytest.mark.parametrize("corpus", ["tess", "ravdess", "ased"])
def test_loco_tests_every_speaker_of_one_corpus_and_trains_on_the_others(corpus: str) -> None:
    speakers = RAVDESS_ALL + ASED + TESS + ["generic:?"]
    sp = splits.loco_split(speakers, corpus, n_val=2, seed=1)
    assert sp.protocol == "loco" and sp.fold is None
    assert {_corpus(s) for s in sp.test_speakers} == {corpus}
    assert set(sp.test_speakers) == {s for s in speakers if _corpus(s) == corpus}
    assert not {_corpus(s) for s in (*sp.train_speakers, *sp.val_speakers)} & {corpus}
    assert set(sp.train_speakers) | set(sp.val_speakers) | set(sp.test_speakers) == set(speakers)
    foldable_others = {c for c in ("ravdess", "ased") if c != corpus}
    assert Counter(_corpus(s) for s in sp.val_speakers) == {c: 2 for c in foldable_others}
    assert Split.from_dict(sp.to_dict()) == sp


def test_loco_refuses_an_absent_corpus_or_nothing_left_to_train() -> None:
    with pytest.raises(ConfigError, match="not in the data"):
        splits.loco_split(RAVDESS_ALL, "tess")
    with pytest.raises(ConfigError, match="no training speakers"):
        splits.loco_split(TESS, "tess")


def test_check_refuses_speakers_not_qualified_with_their_corpus() -> None:
    meta = _meta(RAVDESS_ALL)
    meta["corpus"] = "ravdess"
    sp = splits.speaker_split(meta["speaker"].unique(), 1)
    splits.check(meta, splits.masks(meta, sp), "holdout")
    meta.loc[0, "corpus"] = "tess"  # a ravdess speaker id on a tess row: the two corpora could share a speaker
    with pytest.raises(ConfigError, match="not qualified"):
        splits.check(meta, splits.masks(meta, sp), "holdout")
