"""Hostile inputs and untrusted artifacts: nothing crashes a job, nothing escapes the output, nothing is executed.

* One folder of hostile audio inputs (bad headers, lying extensions, odd rates, formats and channel counts, NaN,
  a 20 min file, unreadable and looping links, a FIFO, non-UTF-8 and 250-byte names) goes through ``extract`` and
  ``score``: every file ends as exactly one ok row or one error row with a reason.
* Untrusted model directories (a Lambda layer that would write a marker file, gadgets in model.keras' config,
  truncated archives, config.json and scaler.json with wrong types or NaN) are refused with ModelDirError before
  anything in them runs.
* Recordings reached through ``..`` paths never make a job write outside its output.

Paths are stored as text in Parquet: bytes of a non-UTF-8 file name that are not UTF-8 appear as ``\\xNN``
(``os.fsencode(path).decode("utf-8", "backslashreplace")``), which keeps distinct names distinct.
"""

from __future__ import annotations

import json
import os
import shutil
import stat
import zipfile
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import soundfile as sf

from conftest import make_tiny_model
from test_cluster import no_temporaries
from ser_batch import modeldir, shards
from ser_batch.errors import ModelDirError
from ser_batch.score import ScoreSettings
from ser_batch.windows import starts as window_starts

SR = 16_000
ROOT = os.geteuid() == 0  # in CI the tests run as root, where chmod 000 does not stop reading


def text(path: str | os.PathLike[str]) -> str:
    """How a path is written into Parquet and reports."""
    return os.fsencode(path).decode("utf-8", "backslashreplace")


def voice(sr: int, seconds: float, seed: int = 0) -> np.ndarray:
    """A continuous harmonic 'voice' with a gliding pitch: loud everywhere, so every window is speech."""
    t = np.arange(int(round(seconds * sr))) / sr
    f0 = 150 + 30 * np.sin(2 * np.pi * 0.3 * t + seed)
    phase = 2 * np.pi * np.cumsum(f0) / sr
    y = sum(np.sin(k * phase) / k for k in (1, 2, 3)) * (0.7 + 0.3 * np.sin(2 * np.pi * 3 * t))
    return (0.3 * y / np.max(np.abs(y))).astype(np.float32)


def write_long(path: Path, sr: int, seconds: float, block_s: float = 60.0) -> None:
    """A long recording written block by block (memory stays small)."""
    with sf.SoundFile(path, "w", sr, 1, subtype="PCM_16") as f:
        done = 0.0
        while done < seconds:
            n = min(block_s, seconds - done)
            f.write(voice(sr, n, seed=int(done)))
            done += n


# kind -> (file name, expected status: "ok", "error", or "either")
NON_UTF8 = b"caf\xe9-\xff\xfe.wav"
LONG_NAME = "l" * 246 + ".wav"  # 250 bytes, near NAME_MAX (255)


def build_hostile(folder: Path) -> dict[str, tuple[str, str]]:
    """Write the hostile inputs into ``folder/angry`` (generic layout: every name parses, label angry).

    Returns kind -> (absolute path as str, expected status).
    """
    d = folder / "angry"
    d.mkdir(parents=True)
    y = voice(SR, 3.0)
    out: dict[str, tuple[str, str]] = {}

    def put(kind: str, name: str, expected: str) -> Path:
        out[kind] = (os.path.join(str(d), name), expected)
        return d / name

    good = folder / ".scratch.wav"
    sf.write(good, y, SR, subtype="PCM_16")
    whole = good.read_bytes()
    put("truncated_header", "truncated_header.wav", "error").write_bytes(whole[:30])  # cut inside the fmt chunk
    put("truncated_body", "truncated_body.wav", "either").write_bytes(whole[: len(whole) // 3])  # header says 3 s
    put("header_only", "header_only.wav", "error").write_bytes(whole[:44])  # a whole header, not one sample
    good.unlink()
    sf.write(put("flac_named_wav", "flac_named.wav", "ok"), y, SR, format="FLAC")
    sf.write(put("ogg_named_flac", "ogg_named.flac", "ok"), y, SR, format="OGG", subtype="VORBIS")
    put("text_named_wav", "text.wav", "error").write_text("RIFF? no: just text\n" * 50)
    put("random_mp3", "noise.mp3", "either").write_bytes(np.random.default_rng(0).bytes(4096))
    put("zero_bytes", "empty.wav", "error").write_bytes(b"")
    write_long(put("long_20min_8k", "long_20min_8k.wav", "ok"), 8_000, 20 * 60.0)
    nan = y.copy()
    nan[::100] = np.nan
    sf.write(put("nan", "nan.wav", "error"), nan, SR, subtype="FLOAT")
    inf = y.copy()
    inf[::250] = np.inf  # throughout, so the analysis window and every scored window see them
    sf.write(put("inf", "inf.wav", "error"), inf, SR, subtype="FLOAT")
    sf.write(put("pcm_u8", "pcm_u8.wav", "ok"), y, SR, subtype="PCM_U8")
    sf.write(put("float32", "float32.wav", "ok"), y, SR, subtype="FLOAT")
    sf.write(put("rate_8k", "rate_8k.wav", "ok"), voice(8_000, 3.0), 8_000)
    sf.write(put("rate_96k", "rate_96k.wav", "ok"), voice(96_000, 3.0), 96_000, subtype="PCM_24")
    sf.write(put("six_channels", "six_channels.wav", "ok"), np.stack([y * (0.5 + 0.1 * c) for c in range(6)], axis=1), SR)
    p = put("unreadable", "unreadable.wav", "ok" if ROOT else "error")
    sf.write(p, y, SR)
    p.chmod(0)
    os.symlink("self_loop.wav", put("self_loop", "self_loop.wav", "error"))  # ELOOP
    os.symlink("nowhere.wav", put("dangling", "dangling.wav", "error"))
    os.symlink("/dev/zero", put("dev_zero", "dev_zero.wav", "error"))  # size 0: refused before any read
    os.mkfifo(put("fifo", "fifo.wav", "error"))  # opening it would block forever
    os.symlink("..", d / "loop")  # a folder linked to its parent: walking must not loop
    raw = os.path.join(os.fsencode(d), NON_UTF8)
    try:
        sf.write(raw, y, SR)  # soundfile takes bytes paths as they are
        out["non_utf8"] = (os.fsdecode(raw), "ok")
    except (OSError, RuntimeError):  # a file system that only takes UTF-8 names (not ext4, tmpfs, xfs)
        pass
    sf.write(put("long_name", LONG_NAME, "ok"), y, SR)
    sf.write(put("dots_in_name", "a..b...wav", "ok"), y, SR)
    sf.write(put("csv_hostile_name", 'odd, "quoted"\nname;.wav', "ok"), y, SR)  # comma, quotes, newline
    return out


@pytest.fixture(scope="module")
def hostile(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict[str, tuple[str, str]]]:
    root = tmp_path_factory.mktemp("hostile") / "in"
    files = build_hostile(root)
    yield root, files
    (root / "angry" / "unreadable.wav").chmod(0o644)


@pytest.fixture(scope="module")
def tiny_model(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return make_tiny_model(tmp_path_factory.mktemp("hostile_model") / "tiny")


def check_expected(kind: str, expected: str, status: str, reason: object) -> None:
    assert status in ("ok", "error"), (kind, status)
    if status == "error":
        assert isinstance(reason, str) and reason.strip(), f"{kind}: error without a reason"
    if expected != "either":
        assert status == expected, (kind, status, reason)


# ---------------------------------------------------------------- extract


@pytest.fixture(scope="module")
def hostile_extract(hostile, dask_scheduler: str, tmp_path_factory: pytest.TempPathFactory):  # type: ignore[no-untyped-def]
    from ser_batch.extract import extract

    root, files = hostile
    out = tmp_path_factory.mktemp("hostile_extract") / "features"
    result = extract([root], out, files_per_shard=4, scheduler=dask_scheduler, progress=False)
    return result, out


def test_extract_accounts_for_every_hostile_file_once(hostile, hostile_extract) -> None:  # type: ignore[no-untyped-def]
    _root, files = hostile
    result, out = hostile_extract
    catalog = pd.read_parquet(out / "catalog.parquet")
    errors = pd.read_parquet(out / "errors.parquet")
    unparsed = errors[errors["stage"] == "catalog"]
    seen = list(catalog["path"]) + list(unparsed["path"])
    assert sorted(seen) == sorted(text(p) for p, _ in files.values()), "a file is missing or listed twice"
    assert errors["path"].is_unique
    by_path = catalog.set_index("path")
    for kind, (path, expected) in files.items():
        row = by_path.loc[text(path)]
        check_expected(kind, expected, row["status"], row["reason"])
        if row["status"] == "error":
            assert errors.set_index("path").loc[text(path), "reason"] == row["reason"]
    n_ok = int((catalog["status"] == "ok").sum())
    assert result.files_ok == n_ok and result.files_failed == len(errors) == len(files) - n_ok
    rows = shards.read_rows(out)
    assert len(rows) == 4 * n_ok and not rows.duplicated(["recording_id", "augmentation"]).any()
    assert set(rows["path"]) == set(catalog.loc[catalog["status"] == "ok", "path"])
    assert no_temporaries(out) == []


def test_extract_reads_the_odd_but_valid_files(hostile, hostile_extract) -> None:  # type: ignore[no-untyped-def]
    _root, files = hostile
    _result, out = hostile_extract
    catalog = pd.read_parquet(out / "catalog.parquet").set_index("path")
    facts = {"rate_8k": (8_000, 1), "rate_96k": (96_000, 1), "six_channels": (SR, 6), "long_20min_8k": (8_000, 1), "pcm_u8": (SR, 1)}
    for kind, (rate, channels) in facts.items():
        row = catalog.loc[text(files[kind][0])]
        assert (row["sample_rate"], row["channels"]) == (rate, channels), kind
    assert catalog.loc[text(files["long_20min_8k"][0]), "duration_s"] == pytest.approx(1200.0)
    reasons = catalog["reason"].fillna("")
    assert "NaN or Inf" in reasons[text(files["nan"][0])] and "NaN or Inf" in reasons[text(files["inf"][0])]
    assert "empty" in reasons[text(files["fifo"][0])] and "empty" in reasons[text(files["zero_bytes"][0])]
    if "non_utf8" in files:
        assert "\\xe9" in text(files["non_utf8"][0])
    meta, x = shards.read_all(out)
    assert np.isfinite(x).all()


# ---------------------------------------------------------------- score


@pytest.fixture(scope="module")
def hostile_score(hostile, tiny_model: Path, dask_scheduler: str, tmp_path_factory: pytest.TempPathFactory):  # type: ignore[no-untyped-def]
    from ser_batch.score import score

    root, _files = hostile
    out = tmp_path_factory.mktemp("hostile_score") / "report.csv"
    seg = out.parent / "segments.parquet"
    result = score([root], out, model=tiny_model, segments=seg, scheduler=dask_scheduler, progress=False)
    return result, out


def test_score_accounts_for_every_hostile_file_once(hostile, hostile_score) -> None:  # type: ignore[no-untyped-def]
    _root, files = hostile
    result, out = hostile_score
    report = pd.read_csv(out)
    assert sorted(report["path"]) == sorted(text(p) for p, _ in files.values()), "a file is missing or listed twice"
    by_path = report.set_index("path")
    for kind, (path, expected) in files.items():
        row = by_path.loc[text(path)]
        check_expected(kind, expected, row["status"], row["error"])
    ok = report["status"] == "ok"
    assert result.ok == int(ok.sum()) and result.errors == int((~ok).sum())
    assert report.loc[ok, "emotion"].notna().all() and (report.loc[ok, "windows"] > 0).all()
    long = by_path.loc[text(files["long_20min_8k"][0])]
    assert long["windows"] == len(window_starts(1200.0, 2.5, ScoreSettings().hop_s)) == 2396 and long["duration_s"] == pytest.approx(1200.0)  # streamed in chunks, no window lost
    seg = pd.read_parquet(out.parent / "segments.parquet")
    assert set(seg["path"]) == set(report.loc[ok, "path"])
    assert sorted(p.name for p in out.parent.iterdir()) == ["report.csv", "segments.parquet"]


# ---------------------------------------------------------------- output paths


def snapshot(root: Path, skip: Path) -> dict[str, tuple[int, int]]:
    """Every path under ``root`` but ``skip`` with (size, mtime): links are listed, not followed."""
    seen = {}
    for folder, dirs, names in os.walk(root):
        if Path(folder) == skip or skip in Path(folder).parents:
            continue
        for n in dirs + names:
            p = os.path.join(folder, n)
            if Path(p) == skip:
                continue
            st = os.lstat(p)
            seen[p] = (st.st_size if not stat.S_ISDIR(st.st_mode) else 0, st.st_mtime_ns if not stat.S_ISDIR(st.st_mode) else 0)
    return seen


def test_dotdot_paths_never_write_outside_the_output(tmp_path: Path, tiny_model: Path, dask_scheduler: str) -> None:
    from ser_batch.extract import extract
    from ser_batch.score import score

    corpus = tmp_path / "a" / "b" / "corpus"
    (corpus / "angry").mkdir(parents=True)
    sf.write(corpus / "angry" / "take.wav", voice(SR, 3.0), SR)
    (tmp_path / "outside").mkdir()
    sf.write(tmp_path / "outside" / "evil.wav", voice(SR, 3.0, 1), SR)
    sf.write(corpus / "angry" / "..evil.wav", voice(SR, 3.0, 2), SR)  # hidden: not picked up, not written to
    (corpus / "list.csv").write_text(
        "path,label\n../../../outside/evil.wav,angry\nangry/../angry/take.wav,angry\n"
        "../../../../../../../../../../../../../../../tmp/../../evil.wav,sad\n"
    )
    out = tmp_path / "a" / "out"
    before = snapshot(tmp_path, out)
    r = extract([corpus / "list.csv"], out / "features", augment_settings=None, scheduler=dask_scheduler, progress=False)
    assert r.files_ok == 2 and r.files_failed == 1
    catalog = pd.read_parquet(out / "features" / "catalog.parquet")
    assert sorted(catalog["path"]) == sorted([str(tmp_path / "outside" / "evil.wav"), str(corpus / "angry" / "take.wav")])
    s = score(
        [corpus / "angry" / ".." / "angry", tmp_path / "a" / "b" / ".." / ".." / "outside" / "evil.wav"],
        out / "r" / "report.parquet", model=tiny_model, segments=out / "r" / "seg.parquet", scheduler=dask_scheduler, progress=False,
    )
    assert s.recordings == 2 and s.ok == 2
    report = pd.read_parquet(out / "r" / "report.parquet")
    assert sorted(report["path"]) == sorted([str(tmp_path / "outside" / "evil.wav"), str(corpus / "angry" / "take.wav")])
    assert snapshot(tmp_path, out) == before, "a job wrote outside its output"
    assert sorted(p.name for p in (out / "r").iterdir()) == ["report.parquet", "seg.parquet"]
    assert not Path("/evil.wav").exists() and not Path("/tmp/evil.wav").exists()


# ---------------------------------------------------------------- untrusted model directories


@pytest.fixture
def model_copy(tiny_model: Path, tmp_path: Path) -> Path:
    return Path(shutil.copytree(tiny_model, tmp_path / "model"))


def lambda_model(marker: Path):  # type: ignore[no-untyped-def]
    """Input and output shapes of a ser-batch model, with a Lambda that writes ``marker`` whenever it runs."""
    import keras

    from ser_batch.features import FeatureSettings
    from ser_batch.labels import EMOTIONS

    fs = FeatureSettings()
    inp = keras.Input((fs.n_frames, fs.n_coeffs))
    h = keras.layers.Lambda(lambda x, m=str(marker): (open(m, "a").write("ran\n"), x)[1])(inp)
    h = keras.layers.GlobalAveragePooling1D()(h)
    return keras.Model(inp, keras.layers.Dense(len(EMOTIONS), activation="softmax")(h))


def test_a_lambda_layer_is_refused_and_never_runs(model_copy: Path, tmp_path: Path) -> None:
    marker = tmp_path / "marker"
    m = lambda_model(marker)
    m.save(model_copy / "model.keras")
    marker.unlink(missing_ok=True)  # building the graph ran it once, here, on purpose
    with pytest.raises(ModelDirError, match="model.keras"):
        modeldir.load(model_copy)
    assert not marker.exists(), "the Lambda layer was executed"


def test_extra_config_fields_do_not_unlock_unsafe_loading(model_copy: Path, tmp_path: Path) -> None:
    """Extra fields are never read: asking for unsafe mode or custom objects in config.json changes nothing."""
    marker = tmp_path / "marker"
    lambda_model(marker).save(model_copy / "model.keras")
    marker.unlink(missing_ok=True)
    cfg = json.loads((model_copy / "config.json").read_text())
    cfg.update({"safe_mode": False, "custom_objects": {"Lambda": "os.system"}, "py/reduce": ["os.system", ["touch /tmp/x"]], "__class__": "subprocess.Popen"})
    (model_copy / "config.json").write_text(json.dumps(cfg))
    with pytest.raises(ModelDirError):
        modeldir.load(model_copy)
    assert not marker.exists()


def _rewrite_keras_config(path: Path, edit) -> None:  # type: ignore[no-untyped-def]
    """Change the config.json inside a .keras archive (what an attacker controls)."""
    with zipfile.ZipFile(path) as z:
        members = {n: z.read(n) for n in z.namelist()}
    cfg = json.loads(members["config.json"])
    edit(cfg)
    members["config.json"] = json.dumps(cfg).encode()
    with zipfile.ZipFile(path, "w") as z:
        for n, data in members.items():
            z.writestr(n, data)


def _layers(cfg: dict) -> list[dict]:  # type: ignore[type-arg]
    return cfg["config"]["layers"]


@pytest.mark.parametrize("gadget", ["os_system_activation", "enable_unsafe_deserialization", "non_keras_module_class"])
def test_gadgets_in_model_keras_config_are_refused(gadget: str, model_copy: Path, tmp_path: Path) -> None:
    marker = tmp_path / "pwned"
    command = f"touch {marker}"

    def edit(cfg: dict) -> None:  # type: ignore[type-arg]
        dense = next(layer for layer in _layers(cfg) if layer["class_name"] == "Dense")
        if gadget == "os_system_activation":
            dense["config"]["activation"] = {"module": "os", "class_name": "function", "config": "system", "registered_name": "system"}
            dense["config"]["name"] = command
        elif gadget == "enable_unsafe_deserialization":
            dense["config"]["activation"] = {"module": "keras.config", "class_name": "function", "config": "enable_unsafe_deserialization", "registered_name": "enable_unsafe_deserialization"}
        else:
            dense["module"], dense["class_name"], dense["registered_name"] = "subprocess", "Popen", "Popen"
            dense["config"] = {"args": command, "shell": True}

    _rewrite_keras_config(model_copy / "model.keras", edit)
    with pytest.raises(ModelDirError, match="could not be loaded safely"):
        modeldir.load(model_copy)
    assert not marker.exists()
    # and safe mode is still on afterwards: a Lambda is still refused
    lam = tmp_path / "lam"
    lambda_model(lam).save(model_copy / "model.keras")
    lam.unlink(missing_ok=True)
    with pytest.raises(ModelDirError):
        modeldir.load(model_copy)
    assert not lam.exists()


@pytest.mark.parametrize("damage", ["truncated", "half", "text", "empty", "zip_without_weights"])
def test_damaged_model_keras_is_refused(damage: str, model_copy: Path) -> None:
    path = model_copy / "model.keras"
    data = path.read_bytes()
    if damage == "truncated":
        path.write_bytes(data[:-200])
    elif damage == "half":
        path.write_bytes(data[: len(data) // 2])
    elif damage == "text":
        path.write_text("import os; os.system('echo pwned')\n")
    elif damage == "empty":
        path.write_bytes(b"")
    else:
        with zipfile.ZipFile(path) as z:
            members = {n: z.read(n) for n in z.namelist() if not n.endswith(".h5")}
        with zipfile.ZipFile(path, "w") as z:
            for n, d in members.items():
                z.writestr(n, d)
    with pytest.raises(ModelDirError):
        modeldir.load(model_copy)


BAD_CONFIGS = {
    "classes_not_a_list": {"classes": "angry"},
    "class_not_a_string": {"classes": ["angry", 5, "sad", "happy", "calm", "fearful", "disgust", "surprised"]},
    "duplicate_classes": {"classes": ["angry"] * 8},
    "unknown_class": {"classes": ["angry", "bored", "sad", "happy", "calm", "fearful", "disgust", "surprised"]},
    "features_not_a_dict": {"features": ["mfcc"]},
    "features_wrong_type": {"features": {"sample_rate": "sixteen thousand"}},
    "temperature_string": {"temperature": "1.0"},
    "temperature_bool": {"temperature": True},
    "temperature_nan": {"temperature": float("nan")},
    "temperature_inf": {"temperature": float("inf")},
    "format_version_bool": {"format_version": True},
    "format_version_future": {"format_version": 99},
    "format_other": {"format": "pickle"},
    "name_not_a_string": {"name": {"__class__": "os.system"}},
    "split_not_a_dict": {"split": "all"},
    "versions_missing": {"versions": None},
}


@pytest.mark.parametrize("case", sorted(BAD_CONFIGS))
def test_config_json_with_wrong_types_is_refused(case: str, model_copy: Path) -> None:
    cfg = json.loads((model_copy / "config.json").read_text())
    for key, value in BAD_CONFIGS[case].items():
        if value is None:
            del cfg[key]
        elif key == "features" and isinstance(value, dict):
            cfg[key] = {**cfg[key], **value}
        else:
            cfg[key] = value
    (model_copy / "config.json").write_text(json.dumps(cfg))
    with pytest.raises(ModelDirError):
        modeldir.read_config(model_copy)
    with pytest.raises(ModelDirError):
        modeldir.load(model_copy)


@pytest.mark.parametrize("body", ["[]", '"config"', "{not json", "", "\x00\xff"])
def test_config_json_that_is_no_object_is_refused(body: str, model_copy: Path) -> None:
    (model_copy / "config.json").write_bytes(body.encode("utf-8", "surrogateescape") if body != "\x00\xff" else b"\x00\xff")
    with pytest.raises(ModelDirError):
        modeldir.read_config(model_copy)


BAD_SCALERS = {
    "nan_mean": lambda d: d["mean"].__setitem__(3, float("nan")),
    "inf_scale": lambda d: d["scale"].__setitem__(0, float("inf")),
    "zero_scale": lambda d: d["scale"].__setitem__(7, 0.0),
    "negative_scale": lambda d: d["scale"].__setitem__(7, -1.0),
    "wrong_shape": lambda d: d.__setitem__("shape", [d["shape"][0] // 2, d["shape"][1] * 2]),
    "inferred_shape": lambda d: d.__setitem__("shape", [-1]),
    "short_mean": lambda d: d.__setitem__("mean", d["mean"][:-1]),
    "strings": lambda d: d.__setitem__("mean", ["zero"] * len(d["mean"])),
    "nested": lambda d: d.__setitem__("scale", [{"__class__": "os.system"}] * len(d["scale"])),
    "not_an_object": lambda d: d.clear(),
}


@pytest.mark.parametrize("case", sorted(BAD_SCALERS))
def test_scaler_json_damage_is_refused(case: str, model_copy: Path) -> None:
    d = json.loads((model_copy / "scaler.json").read_text())
    BAD_SCALERS[case](d)
    (model_copy / "scaler.json").write_text(json.dumps(d))
    with pytest.raises(ModelDirError):
        modeldir.load(model_copy)


def test_score_with_a_lambda_model_runs_nothing_and_reports_errors(model_copy: Path, tmp_path: Path, dask_scheduler: str) -> None:
    """On the workers too: the tampered model is refused there, every recording gets an error row, no marker."""
    from ser_batch.score import score

    marker = tmp_path / "marker"
    lambda_model(marker).save(model_copy / "model.keras")
    marker.unlink(missing_ok=True)
    rec = tmp_path / "rec"
    rec.mkdir()
    for i in range(2):
        sf.write(rec / f"r{i}.wav", voice(SR, 4.0, i), SR)
    r = score([rec], tmp_path / "out" / "report.parquet", model=model_copy, scheduler=dask_scheduler, progress=False)
    report = pd.read_parquet(tmp_path / "out" / "report.parquet")
    assert r.ok == 0 and len(report) == 2 and (report["status"] == "error").all()
    assert report["error"].str.contains("ModelDirError").all()
    assert not marker.exists()
