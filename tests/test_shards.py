"""Tests of ser_batch.shards: schema, atomic writes, manifest checks, and reading back in batches."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from conftest import Extracted
from ser_batch import shards
from ser_batch.errors import ConfigError
from ser_batch.features import FeatureSettings


def make_rows(n: int) -> list[dict[str, object]]:
    kinds = ["none", "noise", "pitch", "stretch"]
    return [
        {
            "recording_id": f"rec{i // 4}",
            "path": f"/data/Actor_01/03-01-0{1 + i % 8}-01-01-01-01.wav",
            "corpus": "ravdess",
            "speaker": "ravdess:1",
            "label": "neutral",
            "augmentation": kinds[i % 4],
            "aug_param": None if i % 4 == 0 else 0.5 * i,
            "pad_s": 0.25 * i,
            "start_s": 0.6,
            "feature_set": "seed",
            "feature_version": 1,
        }
        for i in range(n)
    ]


def test_schema_fields_and_types() -> None:
    schema = shards.shard_schema(79, 22)
    expected = {
        "recording_id": pa.string(),
        "path": pa.string(),
        "corpus": pa.string(),
        "speaker": pa.string(),
        "label": pa.string(),
        "augmentation": pa.string(),
        "aug_param": pa.float32(),
        "pad_s": pa.float32(),
        "start_s": pa.float32(),
        "feature_set": pa.string(),
        "feature_version": pa.int32(),
        "features": pa.list_(pa.float32(), 79 * 22),
    }
    assert schema.names == list(expected)
    for name, typ in expected.items():
        assert schema.field(name).type == typ, name
    assert schema.field("aug_param").nullable
    assert not schema.field("features").nullable
    assert not schema.field("label").nullable
    assert schema.metadata == {b"n_frames": b"79", b"n_coeffs": b"22"}
    assert shards.FILE_SCHEMA.names[:6] == ["recording_id", "path", "corpus", "speaker", "label", "fields"]
    assert {"status", "stage", "reason", "duration_s", "sample_rate", "channels", "rows"} <= set(shards.FILE_SCHEMA.names)
    assert shards.ERROR_SCHEMA.names == ["path", "stage", "reason"]


def test_write_and_read_back(tmp_path: Path) -> None:
    s = FeatureSettings()
    rows = make_rows(6)
    x = np.random.default_rng(0).standard_normal((6, *s.shape)).astype(np.float32)
    table = shards.rows_to_table(rows, x, shards.shard_schema(*s.shape))
    path = tmp_path / "shards" / "part-00000-abc.parquet"
    shards.write_table_atomic(table, path)
    assert path.is_file()
    assert not list(path.parent.glob(".tmp-*")), "no temporary left behind"
    back = pq.read_table(path)
    assert back.schema.names == table.schema.names
    assert back.schema.metadata[b"n_frames"] == b"79" and back.schema.metadata[b"n_coeffs"] == b"22"
    for name in back.schema.names[:-1]:
        assert back.schema.field(name).type == table.schema.field(name).type, name
    assert back.schema.field("features").type.list_size == 79 * 22
    assert back.schema.field("features").type.value_type == pa.float32()
    got = shards.features_of(back)
    assert got.dtype == np.float32
    np.testing.assert_array_equal(got, x)
    df = back.drop(["features"]).to_pandas()
    assert df["augmentation"].tolist() == ["none", "noise", "pitch", "stretch", "none", "noise"]
    assert df["aug_param"].isna().tolist() == [True, False, False, False, True, False]
    assert df["pad_s"].tolist() == pytest.approx([0.25 * i for i in range(6)])
    assert df["feature_version"].tolist() == [1] * 6


def test_features_of_a_sliced_table() -> None:
    x = np.arange(5 * 3 * 2, dtype=np.float32).reshape(5, 3, 2)
    table = shards.rows_to_table(make_rows(5), x, shards.shard_schema(3, 2))
    np.testing.assert_array_equal(shards.features_of(table.slice(2, 2)), x[2:4])


def test_zero_rows(tmp_path: Path) -> None:
    table = shards.rows_to_table([], np.zeros((0, 3, 2), np.float32), shards.shard_schema(3, 2))
    assert table.num_rows == 0
    shards.write_table_atomic(table, tmp_path / "empty.parquet")
    assert shards.features_of(pq.read_table(tmp_path / "empty.parquet")).shape == (0, 3, 2)


def test_wrong_feature_width_is_refused() -> None:
    with pytest.raises(ConfigError, match="6 values per row, the schema 8"):
        shards.rows_to_table(make_rows(2), np.zeros((2, 3, 2), np.float32), shards.shard_schema(4, 2))


def test_failed_write_leaves_nothing(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    table = shards.rows_to_table(make_rows(1), np.zeros((1, 3, 2), np.float32), shards.shard_schema(3, 2))
    target = tmp_path / "part.parquet"

    def boom(*_a: object, **_k: object) -> None:
        raise OSError("disk full")

    monkeypatch.setattr(shards.pq, "write_table", boom)
    with pytest.raises(OSError, match="disk full"):
        shards.write_table_atomic(table, target)
    assert list(tmp_path.iterdir()) == []


def test_table_writer_atomic_gathers_pieces_into_row_groups_and_leaves_nothing_on_an_error(tmp_path: Path) -> None:
    schema = pa.schema([pa.field("path", pa.string())])
    with shards.table_writer_atomic(tmp_path / "t.parquet", schema, group_rows=5) as write:
        for i in range(4):
            write(pa.table({"path": [f"{i}-{j}" for j in range(3)]}, schema=schema))
        assert not (tmp_path / "t.parquet").exists(), "the file appears only when complete"
    f = pq.ParquetFile(tmp_path / "t.parquet")
    assert f.read()["path"].to_pylist() == [f"{i}-{j}" for i in range(4) for j in range(3)]
    assert [f.metadata.row_group(g).num_rows for g in range(f.num_row_groups)] == [6, 6]
    with pytest.raises(RuntimeError, match="boom"), shards.table_writer_atomic(tmp_path / "u.parquet", schema) as write:
        write(pa.table({"path": ["a"]}, schema=schema))
        raise RuntimeError("boom")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["t.parquet"]


@pytest.mark.parametrize("kind", ["csv", "dataset"])
def test_table_writer_atomic_writes_csv_and_datasets_whole_or_not_at_all(tmp_path: Path, kind: str) -> None:
    schema = pa.schema([pa.field("path", pa.string()), pa.field("n", pa.int64())])
    out = tmp_path / ("t.csv" if kind == "csv" else "t")

    def read() -> list[str]:
        return pd.read_csv(out)["path"].tolist() if kind == "csv" else pd.read_parquet(out)["path"].tolist()

    with shards.table_writer_atomic(out, schema, kind, group_rows=4) as write:
        for i in range(3):
            write(pa.table({"path": [f"{i}-{j}" for j in range(3)], "n": [j for j in range(3)]}, schema=schema))
        assert not out.exists()
    assert read() == [f"{i}-{j}" for i in range(3) for j in range(3)]
    if kind == "dataset":
        assert sorted(p.name for p in out.iterdir()) == ["part-000000.parquet", "part-000001.parquet"]
    with pytest.raises(RuntimeError, match="boom"), shards.table_writer_atomic(out, schema, kind) as write:
        write(pa.table({"path": ["x"], "n": [1]}, schema=schema))
        raise RuntimeError("boom")
    assert read() == [f"{i}-{j}" for i in range(3) for j in range(3)], "a failed rewrite leaves the old output whole"
    with shards.table_writer_atomic(out, schema, kind):
        pass
    assert read() == [], "an empty table replaces it, columns and all"
    assert sorted(p.name for p in tmp_path.iterdir()) == [out.name], "no temporary left behind"


def test_write_json_atomic_and_remove_temporaries(tmp_path: Path) -> None:
    shards.write_json_atomic({"b": 1, "a": [1, 2]}, tmp_path / "m.json")
    assert json.loads((tmp_path / "m.json").read_text()) == {"a": [1, 2], "b": 1}
    assert sorted(p.name for p in tmp_path.iterdir()) == ["m.json"]
    (tmp_path / ".tmp-abc.parquet").write_bytes(b"half")
    shards.remove_temporaries(tmp_path)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["m.json"]
    shards.remove_temporaries(tmp_path / "missing")  # no error on a missing folder


def test_read_manifest_errors(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="run `ser-batch extract"):
        shards.read_manifest(tmp_path)
    (tmp_path / shards.MANIFEST).write_text(json.dumps({"format": "other"}))
    with pytest.raises(ConfigError, match="not a ser-batch shard manifest"):
        shards.read_manifest(tmp_path)
    (tmp_path / shards.MANIFEST).write_text(json.dumps({"format": shards.MANIFEST_FORMAT, "complete": False}))
    with pytest.raises(ConfigError, match="unfinished"):
        shards.read_manifest(tmp_path)


# ------------------------------------------------------------------------------- on a real extract output


def test_extract_output_has_no_temporaries(extracted: Extracted) -> None:
    leftovers = [p for p in extracted.out.rglob("*") if p.name.startswith(".tmp-")]
    assert leftovers == []


@pytest.mark.parametrize("batch_rows", [1, 5, 7, 4096])
def test_iter_batches_totals_and_bounds(extracted: Extracted, batch_rows: int) -> None:
    manifest = shards.read_manifest(extracted.out)
    total = manifest["totals"]["rows"]
    assert total == len(extracted.good) * 4
    all_meta, all_x = shards.read_all(extracted.out)
    seen = 0
    for meta, x in shards.iter_batches(extracted.out, batch_rows=batch_rows):
        assert 0 < len(meta) <= batch_rows
        assert x.shape == (len(meta), *FeatureSettings().shape)
        assert x.dtype == np.float32
        np.testing.assert_array_equal(x, all_x[seen : seen + len(meta)])
        assert meta["recording_id"].tolist() == all_meta["recording_id"].iloc[seen : seen + len(meta)].tolist()
        seen += len(meta)
    assert seen == total == len(all_meta) == all_x.shape[0]


def test_iter_batches_with_chosen_columns(extracted: Extracted) -> None:
    meta, x = next(shards.iter_batches(extracted.out, batch_rows=3, columns=["label", "speaker"]))
    assert list(meta.columns) == ["label", "speaker"]
    assert x.shape[0] == 3


def test_read_rows_and_shard_paths(extracted: Extracted) -> None:
    paths = shards.shard_paths(extracted.out)
    manifest = shards.read_manifest(extracted.out)
    assert [p.name for p in paths] == [s["name"] for s in manifest["shards"]]
    assert all(p.is_file() for p in paths)
    rows = shards.read_rows(extracted.out)
    assert len(rows) == manifest["totals"]["rows"]
    assert list(rows.columns) == [f.name for f in shards.ROW_FIELDS]
    assert sum(s["rows"] for s in manifest["shards"]) == len(rows)
