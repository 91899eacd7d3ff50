"""The extract job: corpora -> catalog -> Dask tasks over file batches -> Parquet feature shards.

Each task reads its files, computes the original and augmented rows, and writes its own shard (workers write;
the client only gathers per-file status). Shards are named by a fingerprint of their inputs and settings, so a
rerun skips the ones already written and a retried task rewrites the same file: no row is lost or duplicated.
"""

from __future__ import annotations

import hashlib
import json
import os
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime, timezone
from importlib.metadata import version
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa

from ser_batch import audio, corpora, features, pieces, shards, windows
from ser_batch.augment import AugmentSettings, copies, shift_offsets
from ser_batch.cluster import RETRIES, dask_client, follow
from ser_batch.errors import AudioError, ConfigError, SerBatchError
from ser_batch.features import FeatureSettings

FILES_PER_SHARD = 64


@dataclass(frozen=True)
class FileTask:
    """One input file with its parsed labels and the stat facts that fingerprint it."""

    path: str
    recording_id: str
    corpus: str
    speaker: str
    label: str
    fields: str  # JSON of corpus-specific fields


@dataclass(frozen=True)
class ShardPlan:
    """One Dask task: a batch of files and the shard name their rows go to."""

    index: int
    name: str
    files: tuple[FileTask, ...]


@dataclass(frozen=True)
class ExtractResult:
    """What an extract run did, for the summary line and for tests."""

    out: Path
    files_ok: int
    files_failed: int
    rows: int
    shards: int
    shards_skipped: int
    seconds: float


def recording_id(path: str) -> str:
    """Stable id of a recording: hash of its path, size and modification time."""
    try:
        st = os.stat(path)
        facts = f"{path}\0{st.st_size}\0{st.st_mtime_ns}"
    except OSError:
        facts = f"{path}\0missing"
    return hashlib.sha256(facts.encode("utf-8", "surrogateescape")).hexdigest()[:16]


def plan_shards(
    entries: Sequence[corpora.CatalogEntry],
    feature_settings: FeatureSettings,
    augment_settings: AugmentSettings | None,
    files_per_shard: int = FILES_PER_SHARD,
    window_settings: WindowSettings | None = None,
) -> list[ShardPlan]:
    """Batch files (in path order) into shards named by the fingerprint of their inputs and the settings."""
    if files_per_shard < 1:
        raise ConfigError("--files-per-shard must be at least 1")
    settings_fp = _settings_fingerprint(feature_settings, augment_settings, window_settings)
    tasks = [
        FileTask(
            path=str(e.path),
            recording_id=recording_id(str(e.path)),
            corpus=e.labels.corpus,
            speaker=e.labels.speaker,
            label=e.labels.label,
            fields=json.dumps(dict(e.labels.fields), sort_keys=True),
        )
        for e in sorted(entries, key=lambda e: str(e.path))
    ]
    plans = []
    for i in range(0, len(tasks), files_per_shard):
        batch = tuple(tasks[i : i + files_per_shard])
        h = hashlib.sha256(settings_fp.encode())
        for t in batch:
            h.update(t.recording_id.encode())
        plans.append(ShardPlan(i // files_per_shard, f"part-{i // files_per_shard:05d}-{h.hexdigest()[:12]}.parquet", batch))
    return plans


@dataclass(frozen=True)
class WindowSettings:
    """How ``extract`` cuts training windows from a recording of a frame-grid feature set (``windows``)."""

    hop_s: float = windows.TRAIN_HOP_S
    silence_db: float = windows.SILENCE_DB

    def to_dict(self) -> dict[str, float]:
        return {"hop_s": self.hop_s, "silence_db": self.silence_db}


def extract_file(
    task: FileTask, feature_settings: FeatureSettings, augment_settings: AugmentSettings | None,
    window_settings: WindowSettings = WindowSettings(), device: str = "cpu",
) -> tuple[list[dict[str, Any]], np.ndarray, audio.AudioInfo, np.ndarray | None]:
    """Rows and features (original first, then each augmentation) of one file, and the speech moments of a
    frame-grid feature set; raises AudioError when unusable."""
    fs = feature_settings
    if fs.grid:
        return _extract_grid(task, fs, augment_settings, window_settings, device)
    win = audio.read_window(task.path, fs.sample_rate, fs.offset_s, fs.duration_s, min_samples=fs.frame_length)
    made = copies(win.samples, fs.sample_rate, augment_settings, task.recording_id) if augment_settings else []
    signals = [win.samples, *(y for _, y, _ in made)]
    kinds: list[tuple[str, float | None, float]] = [("none", None, win.pad_s), *((k, p, win.pad_s) for k, _, p in made)]
    offsets = shift_offsets(win.info.duration_s, fs.duration_s, augment_settings, task.recording_id) if augment_settings else []
    for off in offsets:
        shifted = audio.read_window(task.path, fs.sample_rate, off, fs.duration_s, min_samples=fs.frame_length)
        signals.append(shifted.samples)
        kinds.append(("shift", off, shifted.pad_s))
    feats = features.compute(np.stack(signals), fs.sample_rate, fs)
    base = {
        "recording_id": task.recording_id,
        "path": shards.text(task.path),
        "corpus": task.corpus,
        "speaker": task.speaker,
        "label": task.label,
        "feature_set": fs.name,
        "feature_version": fs.version,
    }
    rows = [{**base, "pad_s": pad, "augmentation": k, "aug_param": p, "start_s": off} for (k, p, pad), off in zip(kinds, [win.start_s] * (1 + len(made)) + offsets)]
    return rows, feats, win.info, None


def _extract_grid(
    task: FileTask, fs: FeatureSettings, aug: AugmentSettings | None, ws: WindowSettings, device: str
) -> tuple[list[dict[str, Any]], np.ndarray, audio.AudioInfo, np.ndarray]:
    """The whole recording (and each augmented copy) as one piece scored the way ``score`` scores it
    (``pieces.piece_frames``): one row per speech window every ``ws.hop_s``, so training sees the windows, states
    and speaker statistics scoring sees."""
    info = audio.probe(task.path)
    parts = list(audio.stream(task.path, fs.sample_rate))
    y = np.concatenate(parts) if parts else np.zeros(0, np.float32)
    audio.check_signal(y, task.path, fs.frame_length)
    made = copies(y, fs.sample_rate, aug, task.recording_id) if aug else []
    duration = y.size / fs.sample_rate
    piece = pieces.plan_pieces(task.path, duration, fs.duration_s, ws.hop_s, duration + ws.hop_s)[0]  # one piece
    base = {
        "recording_id": task.recording_id, "path": shards.text(task.path), "corpus": task.corpus, "speaker": task.speaker,
        "label": task.label, "feature_set": fs.name, "feature_version": fs.version,
    }  # fmt: skip
    rows: list[dict[str, Any]] = []
    feats: list[np.ndarray] = []
    moments = np.zeros(0)
    for kind, sig, param in [("none", y, None), *made]:
        pf = pieces.piece_frames(fs, lambda a, b, sig=sig: sig[int(round(a * fs.sample_rate)) : int(round(b * fs.sample_rate))], piece, ws.hop_s, ws.silence_db, device)
        if kind == "none":
            if not pf.speech.any():
                raise AudioError(f"{task.path} is silent: every window is below the {ws.silence_db:g} dBFS silence threshold")
            moments = pf.moments
        feats.append(windows.cut(pf.frames, pf.first, fs.n_frames))
        rows.extend({**base, "augmentation": kind, "aug_param": param, "start_s": float(s),
                     "pad_s": float(max(0.0, s + fs.duration_s - duration))} for s in pf.starts[pf.speech])  # fmt: skip
    return rows, np.concatenate(feats), info, moments


def extract_shard(
    plan: ShardPlan, out: str, feature_settings: FeatureSettings, augment_settings: AugmentSettings | None,
    window_settings: WindowSettings = WindowSettings(), device: str = "cpu",
) -> dict[str, int]:
    """The Dask task: extract every file of ``plan``, write its file table and then its shard, atomically."""
    fs = feature_settings
    rows: list[dict[str, Any]] = []
    feats: list[np.ndarray] = []
    files: list[dict[str, Any]] = []
    for task in plan.files:
        rec = {
            "recording_id": task.recording_id, "path": shards.text(task.path), "corpus": task.corpus, "speaker": task.speaker,
            "label": task.label, "fields": task.fields, "status": "ok", "stage": None, "reason": None,
            "duration_s": None, "sample_rate": None, "channels": None, "rows": 0, "moments": None,
        }  # fmt: skip
        try:
            r, x, info, mom = extract_file(task, fs, augment_settings, window_settings, device)
        except SerBatchError as exc:
            rec.update(status="error", stage="decode", reason=shards.text(str(exc)))
        except Exception as exc:  # a bug or an odd file must cost one row, never the batch
            rec.update(status="error", stage="features", reason=shards.text(f"{type(exc).__name__}: {exc}"))
        else:
            rows.extend(r)
            feats.append(x)
            rec.update(duration_s=info.duration_s, sample_rate=info.sample_rate, channels=info.channels, rows=len(r),
                       moments=None if mom is None else mom.reshape(-1).tolist())
        files.append(rec)
    root = Path(out)
    shards.write_table_atomic(pa.Table.from_pylist(files, schema=shards.FILE_SCHEMA), root / "files" / plan.name)
    x = np.concatenate(feats) if feats else np.zeros((0, *fs.shape), np.float32)
    table = shards.rows_to_table(rows, x, shards.shard_schema(*fs.shape))
    shards.write_table_atomic(table, root / "shards" / plan.name)
    return {"files": len(plan.files), "ok": sum(f["status"] == "ok" for f in files), "rows": len(rows)}


def extract(
    roots: Sequence[str | os.PathLike[str]],
    out: str | os.PathLike[str],
    *,
    corpus: str | None = None,
    feature_settings: FeatureSettings = FeatureSettings(),
    augment_settings: AugmentSettings | None = AugmentSettings(),
    files_per_shard: int = FILES_PER_SHARD,
    window_settings: WindowSettings = WindowSettings(),
    scheduler: str | None = None,
    workers: int | None = None,
    device: str = "auto",
    progress: bool = True,
    echo: Callable[[str], None] | None = None,
) -> ExtractResult:
    """Find audio under ``roots``, extract features (and augmented copies) in parallel, write shards to ``out``.

    Reruns with the same inputs and settings skip finished shards; an ``out`` made with other settings is refused.
    A frame-grid feature set (``whisper_base``) gives one row per speech window every ``window_settings.hop_s``
    of each whole recording; ``device`` (auto, cpu, cuda) is where workers run its encoder.
    """
    if feature_settings.grid and augment_settings is not None and augment_settings.shifts:
        raise ConfigError(f"{feature_settings.name} cuts training windows every {window_settings.hop_s:g} s of each whole recording; "
                          "--shifts is for feature sets read at a fixed offset: leave it at 0")
    t0 = time.perf_counter()
    say = echo or (lambda _m: None)
    out_dir = Path(out).absolute()  # workers write the shards, and a remote worker has its own working directory
    entries, failures = corpora.discover([Path(r) for r in roots], corpus=corpus)
    ws = window_settings if feature_settings.grid else None
    plans = plan_shards(entries, feature_settings, augment_settings, files_per_shard, ws)
    settings = _settings_dict(feature_settings, augment_settings, ws)
    _claim_output(out_dir, settings)
    for sub in ("shards", "files"):
        shards.remove_temporaries(out_dir / sub)
    todo = [p for p in plans if not _shard_done(out_dir, p.name)]
    say(f"Found {len(entries)} audio files ({len(failures)} unparsed) in {len(plans)} shards; {len(plans) - len(todo)} already done.")
    task_errors: dict[str, str] = {}
    try:
        if todo:
            with dask_client(scheduler, workers, echo=say) as client:
                futures = [
                    client.submit(
                        extract_shard, p, str(out_dir), feature_settings, augment_settings, window_settings, device,
                        key=f"extract-{p.name}", retries=RETRIES, pure=False,
                    )
                    for p in todo
                ]  # fmt: skip
                weights = {f.key: len(p.files) for f, p in zip(futures, todo)}
                by_key = {f.key: p for f, p in zip(futures, todo)}
                for fut, _res, err in follow(futures, sum(weights.values()), weights, "files", progress):
                    if err is not None:
                        task_errors[by_key[fut.key].name] = f"{type(err).__name__}: {err}"
    finally:  # interrupted or not: no half-written file stays behind; finished shards stay for the rerun
        for sub in ("shards", "files"):
            shards.remove_temporaries(out_dir / sub)
    result = _finish(out_dir, plans, failures, settings, task_errors)
    return ExtractResult(**result, out=out_dir, shards_skipped=len(plans) - len(todo), seconds=time.perf_counter() - t0)


def _settings_dict(fs: FeatureSettings, aug: AugmentSettings | None, ws: WindowSettings | None = None) -> dict[str, Any]:
    out = {"features": fs.to_dict(), "augment": aug.to_dict() if aug else None}
    return out | {"windows": ws.to_dict()} if ws is not None else out


def _settings_fingerprint(fs: FeatureSettings, aug: AugmentSettings | None, ws: WindowSettings | None = None) -> str:
    return hashlib.sha256(json.dumps(_settings_dict(fs, aug, ws), sort_keys=True).encode()).hexdigest()[:12]


def _claim_output(out: Path, settings: dict[str, Any]) -> None:
    """Refuse an output made with other settings; otherwise record ours before any shard is written."""
    path = out / shards.MANIFEST
    if path.is_file():
        old = json.loads(path.read_text())
        if old.get("format") != shards.MANIFEST_FORMAT:
            raise ConfigError(f"{out} holds a {shards.MANIFEST} that is not ser-batch's; choose another --out")
        old_settings = _normalized(old.get("settings", {}))
        if old_settings != settings:
            diff = _diff(old_settings, settings)
            raise ConfigError(
                f"{out} holds shards made with other settings ({diff}); use another --out or delete {out}"
            )
        if old.get("complete"):
            old["complete"] = False
            shards.write_json_atomic(old, path)
        return
    if out.exists() and any(out.iterdir()):
        raise ConfigError(f"{out} is not empty and is no ser-batch shard directory; choose another --out")
    shards.write_json_atomic(_manifest_base(settings) | {"complete": False, "shards": []}, path)


def _normalized(settings: dict[str, Any]) -> dict[str, Any]:
    """Settings as the current code writes them (fields added since then take their defaults)."""
    try:
        fs = FeatureSettings.from_dict(settings["features"])
        aug = AugmentSettings.from_dict(settings["augment"]) if settings.get("augment") else None
        ws = WindowSettings(**settings["windows"]) if settings.get("windows") else None
    except (KeyError, TypeError, SerBatchError):
        return settings
    return _settings_dict(fs, aug, ws)


def _diff(old: dict[str, Any], new: dict[str, Any], prefix: str = "") -> str:
    parts = []
    for key in sorted(set(old) | set(new)):
        a, b = old.get(key), new.get(key)
        if isinstance(a, dict) and isinstance(b, dict):
            inner = _diff(a, b, f"{prefix}{key}.")
            if inner:
                parts.append(inner)
        elif a != b:
            parts.append(f"{prefix}{key}: {a!r} there, {b!r} now")
    return "; ".join(parts)


def _shard_done(out: Path, name: str) -> bool:
    return (out / "shards" / name).is_file() and (out / "files" / name).is_file()


def _manifest_base(settings: dict[str, Any]) -> dict[str, Any]:
    return {
        "format": shards.MANIFEST_FORMAT,
        "version": shards.MANIFEST_VERSION,
        "settings": settings,
        "versions": {pkg: version(pkg) for pkg in ("ser-batch", "librosa", "numpy", "soxr", "soundfile", "ctranslate2")},
    }


def _finish(
    out: Path,
    plans: list[ShardPlan],
    failures: Sequence[corpora.CatalogFailure],
    settings: dict[str, Any],
    task_errors: dict[str, str],
) -> dict[str, int]:
    """Merge per-shard file tables into catalog and errors, drop stale shards, and write the final manifest."""
    done = [p for p in plans if _shard_done(out, p.name)]
    wanted = {p.name for p in done}
    for sub in ("shards", "files"):
        for stale in (out / sub).glob("part-*.parquet") if (out / sub).is_dir() else ():
            if stale.name not in wanted:
                stale.unlink()
    frames = [pd.read_parquet(out / "files" / p.name) for p in done]
    files = pd.concat(frames, ignore_index=True) if frames else pd.DataFrame(columns=shards.FILE_SCHEMA.names)
    lost = [
        {"path": shards.text(t.path), "stage": "task", "reason": shards.text(f"its batch failed: {task_errors.get(p.name, 'unknown')}")}
        for p in plans if p.name not in wanted for t in p.files
    ]  # fmt: skip
    errors = pd.DataFrame(
        [{"path": shards.text(str(f.path)), "stage": "catalog", "reason": shards.text(f.reason)} for f in failures]
        + files.loc[files["status"] == "error", ["path", "stage", "reason"]].to_dict("records")
        + lost,
        columns=shards.ERROR_SCHEMA.names,
    )
    shards.write_table_atomic(pa.Table.from_pandas(errors, schema=shards.ERROR_SCHEMA, preserve_index=False), out / "errors.parquet")
    shards.write_table_atomic(_catalog(files), out / "catalog.parquet")
    shard_rows = files.groupby(files["path"].map({shards.text(t.path): p.name for p in done for t in p.files}))["rows"].sum()
    manifest = _manifest_base(settings) | {
        "complete": True,
        "created": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "inputs_fingerprint": hashlib.sha256("".join(sorted(wanted)).encode()).hexdigest()[:16],
        "shards": [
            {"name": p.name, "rows": int(shard_rows.get(p.name, 0)), "files": len(p.files)} for p in done
        ],
        "totals": {
            "files_found": sum(len(p.files) for p in plans) + len(failures),
            "files_ok": int((files["status"] == "ok").sum()),
            "files_failed": len(errors),
            "rows": int(files["rows"].sum()) if len(files) else 0,
        },
    }
    shards.write_json_atomic(manifest, out / shards.MANIFEST)
    t = manifest["totals"]
    return {"files_ok": t["files_ok"], "files_failed": t["files_failed"], "rows": t["rows"], "shards": len(done)}


def _catalog(files: pd.DataFrame) -> pa.Table:
    """Catalog table: one row per file with its corpus fields spread into columns."""
    if len(files) == 0:
        return pa.Table.from_pandas(files, preserve_index=False)
    extra = pd.DataFrame([json.loads(f) for f in files["fields"]], index=files.index)
    cat = pd.concat([files.drop(columns=["fields", "moments"], errors="ignore"), extra.add_prefix("field_")], axis=1)
    return pa.Table.from_pandas(cat, preserve_index=False)
