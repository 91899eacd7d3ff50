"""Tests of the extract job (Python API and CLI) on the synthetic corpus, with one shared Dask cluster.

Real Dask runs in this file: the session ``extracted`` fixture (conftest), a rerun after deleting a shard, an
all-bad corpus, the CLI with its own ``--workers 1`` cluster, and a slice of the real RAVDESS data. Everything
else (reruns that skip every shard, refused settings) never reaches Dask.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from typer.testing import CliRunner

from conftest import BAD_REASONS, FILES_PER_SHARD, SYNTH_EMOTIONS, Extracted, bad_files
from ser_batch import audio, corpora, features, shards
from ser_batch.augment import AugmentSettings
from ser_batch.cli import app
from ser_batch.corpora import Labels
from ser_batch.errors import AudioError, ConfigError, CorpusError
from ser_batch.extract import (
    ExtractResult,
    FileTask,
    extract,
    extract_file,
    extract_shard,
    plan_shards,
    recording_id,
)
from ser_batch.features import FeatureSettings
from ser_batch.inputs import iter_listed

runner = CliRunner()
KINDS = ["none", "noise", "pitch", "stretch"]


def n_files(e: Extracted) -> int:
    return len(e.good) + len(e.bad)


def copy_out(e: Extracted, tmp_path: Path) -> Path:
    dst = tmp_path / "copy"
    shutil.copytree(e.out, dst)
    return dst


def outputs(out: Path) -> tuple[pd.DataFrame, np.ndarray, pd.DataFrame, pd.DataFrame]:
    meta, x = shards.read_all(out)
    return meta, x, pd.read_parquet(out / "catalog.parquet"), pd.read_parquet(out / "errors.parquet")


# ------------------------------------------------------------------------------------------ the first run


def test_result_counts(extracted: Extracted) -> None:
    r = extracted.result
    assert isinstance(r, ExtractResult)
    assert r.files_ok == len(extracted.good) == 24
    assert r.files_failed == len(extracted.bad) == 7
    assert r.rows == 24 * 4
    assert r.shards == -(-n_files(extracted) // FILES_PER_SHARD)
    assert r.shards_skipped == 0
    assert r.out == extracted.out
    assert r.seconds > 0


def test_manifest_is_complete(extracted: Extracted) -> None:
    m = shards.read_manifest(extracted.out)
    assert m["complete"] is True
    assert m["format"] == shards.MANIFEST_FORMAT
    assert m["settings"]["features"] == FeatureSettings().to_dict()
    assert m["settings"]["augment"] == AugmentSettings().to_dict()
    assert m["totals"] == {"files_found": 31, "files_ok": 24, "files_failed": 7, "rows": 96}
    assert len(m["shards"]) == extracted.result.shards
    assert sum(s["files"] for s in m["shards"]) == 31
    assert sum(s["rows"] for s in m["shards"]) == 96
    assert all(re.fullmatch(r"part-\d{5}-[0-9a-f]{12}\.parquet", s["name"]) for s in m["shards"])
    assert {"librosa", "numpy", "soxr", "soundfile", "ser-batch"} <= set(m["versions"])
    listed = sorted(s["name"] for s in m["shards"])
    assert sorted(p.name for p in (extracted.out / "shards").iterdir()) == listed
    assert sorted(p.name for p in (extracted.out / "files").iterdir()) == listed


def test_rows_one_original_and_three_copies_per_recording(extracted: Extracted) -> None:
    rows = shards.read_rows(extracted.out)
    assert len(rows) == 96
    per_rec = rows.groupby("recording_id")["augmentation"].apply(sorted)
    assert len(per_rec) == 24
    assert all(kinds == sorted(KINDS) for kinds in per_rec)
    assert (rows["augmentation"] == "none").sum() == 24
    none = rows[rows["augmentation"] == "none"]
    assert none["aug_param"].isna().all()
    assert not rows.loc[rows["augmentation"] != "none", "aug_param"].isna().any()
    assert np.allclose(rows.loc[rows["augmentation"] == "pitch", "aug_param"], 0.7)
    assert np.allclose(rows.loc[rows["augmentation"] == "stretch", "aug_param"], 0.8)
    assert (rows.loc[rows["augmentation"] == "noise", "aug_param"] > 0).all()
    assert set(rows["feature_set"]) == {"seed"} and set(rows["feature_version"]) == {1}
    assert set(rows["corpus"]) == {"ravdess"}


def test_rows_carry_labels_speakers_and_padding(extracted: Extracted) -> None:
    rows = shards.read_rows(extracted.out)
    none = rows[rows["augmentation"] == "none"].set_index("path")
    assert len(none) == len(extracted.good)
    for f in extracted.good:
        row = none.loc[str(f.path)]
        assert row["label"] == f.label == SYNTH_EMOTIONS[f.emotion]
        assert row["speaker"] == f"ravdess:{f.actor}"
        assert row["pad_s"] == pytest.approx(max(0.0, 0.6 + 2.5 - f.seconds), abs=2e-3)
    assert set(rows["speaker"]) == {"ravdess:1", "ravdess:2", "ravdess:3"}
    assert not any("Actor_09" in p for p in rows["path"]), "bad files yield no rows"


def test_original_features_match_a_direct_computation(extracted: Extracted) -> None:
    meta, x = shards.read_all(extracted.out)
    s = FeatureSettings()
    assert x.shape == (96, *s.shape) and np.isfinite(x).all()
    for f in extracted.good[::5]:
        i = meta.index[(meta["path"] == str(f.path)) & (meta["augmentation"] == "none")][0]
        win = audio.read_window(f.path, s.sample_rate, s.offset_s, s.duration_s, min_samples=s.frame_length)
        np.testing.assert_allclose(x[i], features.compute(win.samples, s.sample_rate, s), rtol=1e-4, atol=1e-3)
        copies = meta.index[(meta["path"] == str(f.path)) & (meta["augmentation"] != "none")]
        assert all(not np.allclose(x[j], x[i]) for j in copies)


def test_errors_list_every_bad_file_with_stage_and_reason(extracted: Extracted) -> None:
    errors = pd.read_parquet(extracted.out / "errors.parquet")
    assert list(errors.columns) == ["path", "stage", "reason"]
    assert len(errors) == len(extracted.bad)
    by_path = errors.set_index("path")
    for kind, path in extracted.bad.items():
        row = by_path.loc[str(path)]
        assert row["stage"] == "decode"
        assert BAD_REASONS[kind].lower() in row["reason"].lower(), (kind, row["reason"])


def test_catalog_one_row_per_file_with_audio_facts_and_fields(extracted: Extracted) -> None:
    cat = pd.read_parquet(extracted.out / "catalog.parquet")
    assert len(cat) == n_files(extracted)
    assert cat["path"].is_unique
    for col in ("duration_s", "sample_rate", "channels", "status", "rows", "label", "speaker"):
        assert col in cat.columns
    fields = {c for c in cat.columns if c.startswith("field_")}
    assert fields == {"field_modality", "field_vocal_channel", "field_intensity", "field_statement", "field_repetition"}
    assert set(cat["field_modality"]) == {"audio-only"}
    assert set(cat["field_vocal_channel"]) == {"speech"}
    by_path = cat.set_index("path")
    for f in extracted.good:
        row = by_path.loc[str(f.path)]
        assert row["status"] == "ok"
        assert row["sample_rate"] == f.sample_rate
        assert row["channels"] == f.channels
        assert row["duration_s"] == pytest.approx(f.seconds, abs=1e-3)
        assert row["rows"] == 4
    for path in extracted.bad.values():
        row = by_path.loc[str(path)]
        assert row["status"] == "error" and row["rows"] == 0
        assert pd.isna(row["duration_s"])
    assert "fields" not in cat.columns


# ------------------------------------------------------------------------------------------ reruns


def test_rerun_skips_every_shard_and_changes_nothing(extracted: Extracted, tmp_path: Path) -> None:
    out = copy_out(extracted, tmp_path)
    before = outputs(out)
    manifest_before = json.loads((out / shards.MANIFEST).read_text())
    # no scheduler is reachable at this address: the rerun must not need Dask at all
    r = extract([extracted.corpus], out, files_per_shard=FILES_PER_SHARD, scheduler="tcp://127.0.0.1:9", progress=False)
    assert r.shards_skipped == r.shards == extracted.result.shards
    assert (r.files_ok, r.files_failed, r.rows) == (24, 7, 96)
    after = outputs(out)
    pd.testing.assert_frame_equal(before[0], after[0])
    np.testing.assert_array_equal(before[1], after[1])
    pd.testing.assert_frame_equal(before[2], after[2])
    pd.testing.assert_frame_equal(before[3], after[3])
    manifest_after = json.loads((out / shards.MANIFEST).read_text())
    manifest_before.pop("created")
    manifest_after.pop("created")
    assert manifest_after == manifest_before


@pytest.mark.parametrize(
    ("kwargs", "expected"),
    [
        ({"augment_settings": None}, r"augment: \{.*\} there, None now"),
        ({"feature_settings": FeatureSettings(duration_s=2.0)}, r"features\.duration_s: 2\.5 there, 2\.0 now"),
        ({"augment_settings": AugmentSettings(seed=3)}, r"augment\.seed: 0 there, 3 now"),
    ],
)
def test_rerun_with_other_settings_is_refused(extracted: Extracted, tmp_path: Path, kwargs: dict, expected: str) -> None:
    out = copy_out(extracted, tmp_path)
    manifest = (out / shards.MANIFEST).read_text()
    with pytest.raises(ConfigError, match=expected) as info:
        extract([extracted.corpus], out, scheduler="tcp://127.0.0.1:9", progress=False, **kwargs)
    assert "other settings" in str(info.value)
    assert (out / shards.MANIFEST).read_text() == manifest, "a refused run leaves the output as it was"


def test_cli_rerun_with_other_settings_exits_2(extracted: Extracted, tmp_path: Path) -> None:
    out = copy_out(extracted, tmp_path)
    res = runner.invoke(app, ["extract", str(extracted.corpus), "--out", str(out), "--features", "seed", "--no-augment", "-q"])
    assert res.exit_code == 2, res.output
    assert "error:" in res.stderr and "other settings" in res.stderr


def test_foreign_output_folder_is_refused(extracted: Extracted, tmp_path: Path) -> None:
    out = tmp_path / "busy"
    out.mkdir()
    (out / "notes.txt").write_text("mine")
    with pytest.raises(ConfigError, match="not empty"):
        extract([extracted.corpus], out, scheduler="tcp://127.0.0.1:9", progress=False)
    assert sorted(p.name for p in out.iterdir()) == ["notes.txt"]


def test_deleted_shard_is_recomputed_and_stale_files_dropped(
    extracted: Extracted, tmp_path: Path, dask_scheduler: str
) -> None:
    out = copy_out(extracted, tmp_path)
    meta0, x0, cat0, err0 = outputs(out)
    victim = sorted((out / "shards").iterdir())[1]
    victim.unlink()
    (out / "shards" / "part-99999-000000000000.parquet").write_bytes(b"stale")
    (out / "shards" / ".tmp-killed.parquet").write_bytes(b"half")
    r = extract([extracted.corpus], out, files_per_shard=FILES_PER_SHARD, scheduler=dask_scheduler, progress=False)
    assert r.shards == extracted.result.shards
    assert r.shards_skipped == r.shards - 1
    assert (r.files_ok, r.files_failed, r.rows) == (24, 7, 96)
    assert victim.is_file()
    names = sorted(p.name for p in (out / "shards").iterdir())
    assert names == sorted(s["name"] for s in shards.read_manifest(out)["shards"])
    meta1, x1, cat1, err1 = outputs(out)
    pd.testing.assert_frame_equal(meta0, meta1)
    np.testing.assert_array_equal(x0, x1)
    pd.testing.assert_frame_equal(cat0, cat1)
    pd.testing.assert_frame_equal(err0, err1)


# ------------------------------------------------------------------------------------------ lists of paths


def check_listed(out: Path, chosen: list, r: ExtractResult) -> None:
    """The listed files, in list order, with the labels and speakers of their corpus layout; one row each."""
    assert (r.files_ok, r.rows) == (len(chosen), len(chosen))
    cat = pd.read_parquet(out / "catalog.parquet")
    assert list(cat["path"]) == [str(f.path) for f in chosen]
    assert list(cat["label"]) == [f.label for f in chosen]
    assert list(cat["speaker"]) == [f"ravdess:{f.actor}" for f in chosen]
    assert (cat["status"] == "ok").all() and list(cat["sample_rate"]) == [f.sample_rate for f in chosen]
    assert "field_statement" in cat.columns
    meta, x = shards.read_all(out)
    assert list(meta["path"]) == [str(f.path) for f in chosen] and np.isfinite(x).all()


def test_txt_list_of_paths(synth_corpus: tuple[Path, list], tmp_path: Path, dask_scheduler: str) -> None:
    _, files = synth_corpus
    chosen = [files[5], files[0], files[17]]
    listing = tmp_path / "lists" / "take.txt"
    listing.parent.mkdir()
    listing.write_text("# relative to the list's folder\n\n" + "\n".join(os.path.relpath(f.path, listing.parent) for f in chosen) + "\n")
    out = tmp_path / "out"
    r = extract([listing], out, augment_settings=None, files_per_shard=2, scheduler=dask_scheduler, progress=False)
    assert (r.files_failed, r.shards) == (0, 2)
    check_listed(out, chosen, r)
    assert shards.read_manifest(out)["totals"] == {"files_found": 3, "files_ok": 3, "files_failed": 0, "rows": 3}
    again = extract([listing], out, augment_settings=None, files_per_shard=2, scheduler="tcp://127.0.0.1:9", progress=False)
    assert again.shards_skipped == again.shards == 2  # the same list again: nothing to do, no Dask


def test_parquet_list_of_paths(synth_corpus: tuple[Path, list], tmp_path: Path, dask_scheduler: str) -> None:
    _, files = synth_corpus
    chosen = [files[23], files[2], files[11], files[8]]
    pq_list = tmp_path / "take.parquet"
    pq.write_table(pa.table({"path": [str(f.path) for f in chosen], "note": ["a", "b", "c", "d"]}), pq_list, row_group_size=3)
    out = tmp_path / "out"
    r = extract([pq_list], out, augment_settings=None, scheduler=dask_scheduler, progress=False)
    assert (r.files_failed, r.shards) == (0, 1)
    check_listed(out, chosen, r)


def test_missing_listed_file_is_an_error_row(synth_corpus: tuple[Path, list], tmp_path: Path, dask_scheduler: str) -> None:
    """A .csv without a label column is a path list too; a path on it that names nothing is an error row."""
    _, files = synth_corpus
    gone = tmp_path / "Actor_04" / "03-01-05-01-01-01-04.wav"
    listing = tmp_path / "take.csv"
    listing.write_text(f"path,speaker_note\n{files[1].path},x\n{gone},y\n{files[4].path},z\n")
    out = tmp_path / "out"
    r = extract([listing], out, augment_settings=None, scheduler=dask_scheduler, progress=False)
    assert (r.files_ok, r.files_failed, r.rows) == (2, 1, 2)
    errors = pd.read_parquet(out / "errors.parquet")
    assert errors.to_dict("records") == [
        {"path": str(gone), "stage": "catalog", "reason": f"{gone}: listed but no such file; fix the path or take it off the list"}
    ]
    cat = pd.read_parquet(out / "catalog.parquet")
    assert list(cat["path"]) == [str(files[1].path), str(files[4].path)], "a file never found is no catalog row"
    assert shards.read_manifest(out)["totals"] == {"files_found": 3, "files_ok": 2, "files_failed": 1, "rows": 2}


# ------------------------------------------------------------------------------------------ pieces, no Dask


def test_plan_shards_is_deterministic_and_fingerprints_paths_labels_and_settings(
    extracted: Extracted, monkeypatch: pytest.MonkeyPatch
) -> None:
    fs, aug = FeatureSettings(), AugmentSettings()
    listed = list(iter_listed([extracted.corpus]))
    assert all(labels is None for _, labels in listed)  # the workers label them

    def names(items: list, *args: object, **kwargs: object) -> list[str]:
        return [p.name for p in plan_shards(iter(items), *args, **kwargs)]

    a = list(plan_shards(iter(listed), fs, aug, files_per_shard=8))
    assert [p.name for p in a] == names(listed, fs, aug, files_per_shard=8)
    assert [p.index for p in a] == [0, 1, 2, 3]
    assert [len(p.files) for p in a] == [8, 8, 8, 7]
    assert [path for p in a for path, _ in p.files] == sorted(path for path, _ in listed)  # a folder streams sorted
    assert {p.name for p in a}.isdisjoint(names(listed, fs, None, files_per_shard=8))
    assert {p.name for p in a}.isdisjoint(names(listed, FeatureSettings(offset_s=0.5), aug, 8))
    assert {p.name for p in a}.isdisjoint(names(listed, fs, aug, files_per_shard=5))
    assert {p.name for p in a}.isdisjoint(names(listed, fs, aug, 8, None, "ravdess"))  # a forced layout: other labels
    # a batch is named by its paths and a manifest's labels: labelling one file renames its shard only
    path, _ = listed[9]
    relabelled = [*listed[:9], (path, Labels("generic", "generic:?", "calm")), *listed[10:]]
    changed = [x != y for x, y in zip(names(relabelled, fs, aug, files_per_shard=8), [p.name for p in a])]
    assert changed == [False, True, False, False]
    # a revised corpus label table renames every shard: a rerun labels the files again instead of reusing them
    monkeypatch.setattr(corpora, "LABEL_TABLES_REVISION", corpora.LABEL_TABLES_REVISION + 1)
    assert {p.name for p in a}.isdisjoint(names(listed, fs, aug, files_per_shard=8))
    with pytest.raises(ConfigError, match="files-per-shard"):  # at once, before any path is read
        plan_shards(iter(listed), fs, aug, files_per_shard=0)
    with pytest.raises(CorpusError, match="unknown corpus 'iemocap'"):
        plan_shards(iter(listed), fs, aug, corpus="iemocap")


def test_recording_id_follows_content_facts(tmp_path: Path) -> None:
    p = tmp_path / "a.wav"
    p.write_bytes(b"x" * 10)
    first = recording_id(str(p))
    assert first == recording_id(str(p)) and len(first) == 16
    p.write_bytes(b"x" * 11)
    assert recording_id(str(p)) != first
    assert recording_id(str(tmp_path / "missing.wav")) != first


def _task(path: Path, label: str = "angry") -> FileTask:
    return FileTask(str(path), recording_id(str(path)), "ravdess", "ravdess:1", label, json.dumps({"statement": "01"}))


def test_extract_file_rows_and_features(synth_corpus: tuple[Path, list]) -> None:
    _, files = synth_corpus
    f = files[3]
    fs = FeatureSettings()
    rows, x, info, _moments = extract_file(_task(f.path), fs, AugmentSettings())
    assert [r["augmentation"] for r in rows] == KINDS
    assert x.shape == (4, *fs.shape) and x.dtype == np.float32
    assert info.sample_rate == f.sample_rate and info.channels == f.channels
    rows1, x1, _, _ = extract_file(_task(f.path), fs, None)
    assert [r["augmentation"] for r in rows1] == ["none"]
    np.testing.assert_allclose(x1[0], x[0], rtol=1e-5, atol=1e-4)  # the original does not depend on the copies
    rows2, _, _, _ = extract_file(_task(f.path), fs, AugmentSettings(kinds=("pitch",)))
    assert [r["augmentation"] for r in rows2] == ["none", "pitch"]


def test_extract_file_shifted_windows_read_the_recording_elsewhere(synth_corpus: tuple[Path, list]) -> None:
    from ser_batch.augment import shift_offsets

    _, files = synth_corpus
    f = files[3]
    fs = FeatureSettings()
    aug = AugmentSettings(kinds=(), shifts=2)
    rows, x, info, _ = extract_file(_task(f.path), fs, aug)
    assert [r["augmentation"] for r in rows] == ["none", "shift", "shift"]
    offsets = shift_offsets(info.duration_s, fs.duration_s, aug, _task(f.path).recording_id)
    assert [r["aug_param"] for r in rows[1:]] == offsets
    for row, off, feats in zip(rows[1:], offsets, x[1:]):
        win = audio.read_window(f.path, fs.sample_rate, off, fs.duration_s)
        assert row["pad_s"] == win.pad_s
        np.testing.assert_allclose(feats, features.compute(win.samples, fs.sample_rate, fs), rtol=1e-5, atol=1e-4)


def test_extract_file_raises_for_bad_audio(bad_dir: dict[str, Path]) -> None:
    with pytest.raises(AudioError, match="silent"):
        extract_file(_task(bad_dir["silent"]), FeatureSettings(), AugmentSettings())


def test_extract_shard_in_process_turns_failures_into_file_rows(
    synth_corpus: tuple[Path, list], bad_dir: dict[str, Path], tmp_path: Path
) -> None:
    _, files = synth_corpus
    unnamed = bad_dir["nan"].with_name("take1.wav")
    unnamed.write_bytes(bad_dir["nan"].read_bytes())
    listing = tmp_path / "list.txt"
    listing.write_text("\n".join(str(p) for p in (files[0].path, bad_dir["nan"], bad_dir["text"], unnamed, bad_dir["nan"].with_name("03-01-08-01-01-01-09.wav"))))
    fs = FeatureSettings(duration_s=1.0)
    [plan] = plan_shards(iter_listed([listing]), fs, None)
    stats = extract_shard(plan, str(tmp_path), fs, None)
    assert stats == {"files": 5, "ok": 1, "rows": 1}
    table = pd.read_parquet(tmp_path / "files" / plan.name)
    assert list(table["status"]) == ["ok", "error", "error", "error", "error"]
    assert list(table["stage"].iloc[1:]) == ["decode", "decode", "catalog", "catalog"]
    assert "no known corpus layout matches take1.wav" in table["reason"].iloc[3]
    assert "listed but no such file" in table["reason"].iloc[4] and table["label"].iloc[4] == "surprised"
    assert table["recording_id"].iloc[3:].isna().all() and table["recording_id"].iloc[:3].notna().all()
    [forced] = plan_shards(iter_listed([files[0].path]), fs, None, corpus="generic")  # labels by the layout forced
    assert extract_shard(forced, str(tmp_path / "forced"), fs, None) == {"files": 1, "ok": 0, "rows": 0}
    assert "parent folder 'Actor_01' is not a label name" in pd.read_parquet(tmp_path / "forced" / "files" / forced.name)["reason"][0]
    shard = shards.pq.read_table(tmp_path / "shards" / plan.name)
    assert shard.num_rows == 1
    assert shards.features_of(shard).shape == (1, *fs.shape)
    assert not [p for p in tmp_path.rglob(".tmp-*")]


# ------------------------------------------------------------------------------------------ CLI


@pytest.mark.filterwarnings("ignore:Port 8787 is already in use:UserWarning")
def test_cli_extract_end_to_end_no_augment(synth_corpus: tuple[Path, list], extracted: Extracted, tmp_path: Path) -> None:
    root, files = synth_corpus
    out = tmp_path / "cli-out"
    res = runner.invoke(app, ["extract", str(root), "--out", str(out), "--features", "seed", "--workers", "1", "-q", "--no-augment"])
    assert res.exit_code == 0, res.output
    line = res.stdout.strip().splitlines()[0]
    assert re.fullmatch(
        rf"files ok: {len(files)}, failed: 0; rows written: {len(files)} in 1 shards \(0 reused\); "
        rf"[\d.]+ s, [\d.]+ files/s -> {re.escape(str(out))}",
        line,
    ), line
    assert "failures are listed" not in res.stdout
    meta, x = shards.read_all(out)
    assert len(meta) == len(files)
    assert set(meta["augmentation"]) == {"none"} and meta["aug_param"].isna().all()
    assert shards.read_manifest(out)["settings"]["augment"] is None
    # the same audio (the corpora are built alike) gives the same original features with or without augmentation
    aug_meta, aug_x = shards.read_all(extracted.out)
    rel = lambda p, r: str(Path(p).relative_to(r))  # noqa: E731
    aug_none = {rel(p, extracted.corpus): i for i, (p, k) in enumerate(zip(aug_meta["path"], aug_meta["augmentation"])) if k == "none"}
    for i, p in enumerate(meta["path"]):
        np.testing.assert_allclose(x[i], aug_x[aug_none[rel(p, root)]], rtol=1e-4, atol=1e-3)


def test_cli_all_bad_corpus_exits_1(tmp_path: Path, dask_scheduler: str) -> None:
    corpus = tmp_path / "bad_corpus"
    bad = bad_files(corpus / "Actor_09")
    out = tmp_path / "out"
    res = runner.invoke(app, ["extract", str(corpus), "--out", str(out), "--features", "seed", "--shifts", "0", "--scheduler", dask_scheduler, "-q"])
    assert res.exit_code == 1, res.output
    assert f"files ok: 0, failed: {len(bad)}; rows written: 0" in res.stdout
    assert "failures are listed in" in res.stdout
    assert "no file could be read" in res.stderr
    errors = pd.read_parquet(out / "errors.parquet")
    assert sorted(errors["path"]) == sorted(str(p) for p in bad.values())
    assert shards.read_manifest(out)["totals"]["rows"] == 0


def test_cli_missing_corpus_exits_2(tmp_path: Path) -> None:
    res = runner.invoke(app, ["extract", str(tmp_path / "nowhere"), "--out", str(tmp_path / "o"), "--features", "seed", "-q"])
    assert res.exit_code == 2
    assert "error:" in res.stderr and "nowhere" in res.stderr


def test_cli_help() -> None:
    res = runner.invoke(app, ["--help"])
    assert res.exit_code == 0
    assert "extract" in res.stdout
    res = runner.invoke(app, ["extract", "--help"])
    assert res.exit_code == 0
    for opt in ("--out", "--no-augment", "--workers", "--scheduler", "--files-per-shard", "--duration"):
        assert opt in res.stdout, opt


def test_console_script_help() -> None:
    exe = Path(sys.executable).parent / "ser-batch"
    if not exe.is_file():
        pytest.skip("ser-batch console script not installed")
    for args in (["--help"], ["extract", "--help"]):
        proc = subprocess.run([str(exe), *args], capture_output=True, text=True, timeout=60)
        assert proc.returncode == 0, proc.stderr
        assert "Usage" in proc.stdout


# ------------------------------------------------------------------------------------------ real data


@pytest.mark.shared
def test_real_ravdess_slice(shared_data: Path, tmp_path: Path, dask_scheduler: str) -> None:
    src = shared_data / "ravdess-speech"
    if not src.is_dir():
        pytest.skip("ravdess-speech not in shared data")
    corpus = tmp_path / "ravdess"
    linked = []
    for actor in ("Actor_01", "Actor_02"):
        (corpus / actor).mkdir(parents=True)
        for f in sorted((src / actor).iterdir())[::8][:8]:  # 8 files per actor, spread over the emotions
            (corpus / actor / f.name).symlink_to(f)
            linked.append(corpus / actor / f.name)
    assert len(linked) == 16
    out = tmp_path / "out"
    r = extract([corpus], out, augment_settings=None, scheduler=dask_scheduler, progress=False)
    assert (r.files_ok, r.files_failed, r.rows) == (16, 0, 16)
    rows = shards.read_rows(out)
    assert set(rows["speaker"]) == {"ravdess:1", "ravdess:2"}
    assert set(rows["augmentation"]) == {"none"}
    codes = {"01": "neutral", "02": "calm", "03": "happy", "04": "sad", "05": "angry", "06": "fearful", "07": "disgust", "08": "surprised"}
    for path, label, speaker in zip(rows["path"], rows["label"], rows["speaker"]):
        fields = Path(path).stem.split("-")
        assert label == codes[fields[2]]
        assert speaker == f"ravdess:{int(fields[6])}"
    assert len(set(rows["label"])) >= 4
    cat = pd.read_parquet(out / "catalog.parquet")
    assert set(cat["sample_rate"]) == {16_000} and set(cat["channels"]) == {1}
    assert (cat["duration_s"] > 2.5).all()
    _, x = shards.read_all(out)
    assert np.isfinite(x).all() and x.std() > 0
