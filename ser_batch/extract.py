"""The extract job: inputs -> batches of paths -> Dask tasks -> Parquet feature shards, catalog and errors.

The client streams the inputs (folders, audio files, lists of paths, labelled manifests: `inputs.iter_listed`)
into batches of ``files_per_shard`` paths and submits each batch as a task, a bounded number at a time: its work per
file is reading and hashing the path, and it holds no per-file objects beyond the batches in flight. Each task
labels its files from their names (`corpora.parse`, unless a manifest gave the labels), looks at them (stat,
decode), computes the original and augmented rows, and writes its shard and file table (workers write). A last task
then streams the file tables, shard by shard, into the catalog and errors (`merge_files`); the client writes the
manifest.

Shards are named by a fingerprint of their batch (paths, and labels where a manifest gives them, in input order),
``--corpus`` and the settings, so a rerun skips the ones already written and a retried task rewrites the same file:
no row is lost or duplicated. The files themselves are not fingerprinted (that would stat each one on the client): a
recording changed in place under the same path is not extracted again by a rerun; delete the output folder (or that
file's shard) to redo it.
"""

from __future__ import annotations

import hashlib
import itertools
import json
import os
import tempfile
import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timezone
from importlib.metadata import version
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from ser_batch import audio, corpora, features, pieces, shards, windows
from ser_batch.augment import AugmentSettings, copies, shift_offsets
from ser_batch.cluster import RETRIES, dask_client, follow
from ser_batch.corpora import Labels
from ser_batch.corpora.base import display
from ser_batch.errors import AudioError, ConfigError, CorpusError, SerBatchError
from ser_batch.features import FeatureSettings
from ser_batch.inputs import Listed, iter_listed

FILES_PER_SHARD = 64

IN_FLIGHT_PER_THREAD = 4
"""Tasks submitted and unfinished per worker thread (at least 16 threads counted): enough that no worker waits,
few enough that the client holds a bounded share of a job of any size."""


@dataclass(frozen=True)
class FileTask:
    """One input file as a worker extracts it: its labels and its recording id (from the file's stat facts)."""

    path: str
    recording_id: str
    corpus: str
    speaker: str
    label: str
    fields: str  # JSON of corpus-specific fields


@dataclass(frozen=True)
class ShardPlan:
    """One Dask task: a batch of listed paths (with a manifest's labels), the layout forced on the others, and the
    name of its shard."""

    index: int
    name: str
    files: tuple[Listed, ...]
    corpus: str | None = None


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
    """Stable id of a recording (the seed of its augmentations): hash of its path, size and modification time.
    Workers compute it, as they open the file anyway."""
    try:
        st = os.stat(path)
        facts = f"{path}\0{st.st_size}\0{st.st_mtime_ns}"
    except OSError:
        facts = f"{path}\0missing"
    return hashlib.sha256(facts.encode("utf-8", "surrogateescape")).hexdigest()[:16]


def plan_shards(
    listed: Iterable[Listed],
    feature_settings: FeatureSettings,
    augment_settings: AugmentSettings | None,
    files_per_shard: int = FILES_PER_SHARD,
    window_settings: WindowSettings | None = None,
    corpus: str | None = None,
) -> Iterator[ShardPlan]:
    """Batch listed paths, in their order, into shards named by the fingerprint of the batch, ``corpus`` (the layout
    forced on paths without labels), the settings and the revision of the corpus label tables.

    A batch is fingerprinted by its paths (and a manifest's labels) only, no file is looked at, as it streams by:
    one batch at a time is held. ``files_per_shard`` and ``corpus`` are checked at once, before any path is read.
    """
    if files_per_shard < 1:
        raise ConfigError(f"--files-per-shard {files_per_shard}: a shard needs at least 1 file; leave it out for {FILES_PER_SHARD}")
    if corpus is not None:
        corpora.get_corpus(corpus)
    fp = f"{_settings_fingerprint(feature_settings, augment_settings, window_settings)}\0{corpus or ''}"
    fp += f"\0labels{corpora.LABEL_TABLES_REVISION}"  # a revised label table makes every shard again
    return _batches(iter(listed), fp, files_per_shard, corpus)


def _batches(listed: Iterator[Listed], fp: str, size: int, corpus: str | None) -> Iterator[ShardPlan]:
    for index in itertools.count():
        batch = tuple(itertools.islice(listed, size))
        if not batch:
            return
        h = hashlib.sha256(fp.encode())
        for path, labels in batch:
            what = "" if labels is None else labels if isinstance(labels, str) else _labels_text(labels)
            h.update(f"{path}\0{what}\0".encode("utf-8", "surrogateescape"))  # no path holds \0, nor a reason or JSON
        yield ShardPlan(index, f"part-{index:05d}-{h.hexdigest()[:12]}.parquet", batch, corpus)


def _labels_text(labels: Labels) -> str:
    return json.dumps([labels.corpus, labels.speaker, labels.label, labels.fields], sort_keys=True)


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
    """The Dask task: extract every file of ``plan``, write its file table and then its shard, atomically.

    Paths without labels are labelled from their names, by ``plan.corpus`` or the layout detected. A listed path
    whose name gives no labels, or that names nothing at all, is a row of stage ``catalog``: an error, and no file
    found, so it stays out of the catalog. Any other unusable file is an error row of the catalog.
    """
    fs = feature_settings
    rows: list[dict[str, Any]] = []
    feats: list[np.ndarray] = []
    files: list[dict[str, Any]] = []
    for path, labels in plan.files:
        rec: dict[str, Any] = {name: None for name in shards.FILE_SCHEMA.names} | {"path": shards.text(path), "status": "error", "rows": 0}
        if labels is None:
            labels = _labels(path, plan.corpus)
        if isinstance(labels, str):
            files.append(rec | {"stage": "catalog", "reason": shards.text(labels)})
            continue
        rec.update(corpus=labels.corpus, speaker=labels.speaker, label=labels.label, fields=json.dumps(dict(labels.fields), sort_keys=True))
        if not os.path.lexists(path):
            files.append(rec | {"stage": "catalog", "reason": shards.text(_missing(path, labels))})
            continue
        rec["recording_id"] = recording_id(path)
        task = FileTask(path, rec["recording_id"], labels.corpus, labels.speaker, labels.label, rec["fields"])
        try:
            r, x, info, mom = extract_file(task, fs, augment_settings, window_settings, device)
        except SerBatchError as exc:
            rec.update(stage="decode", reason=shards.text(str(exc)))
        except Exception as exc:  # a bug or an odd file must cost one row, never the batch
            rec.update(stage="features", reason=shards.text(f"{type(exc).__name__}: {exc}"))
        else:
            rows.extend(r)
            feats.append(x)
            rec.update(status="ok", duration_s=info.duration_s, sample_rate=info.sample_rate, channels=info.channels, rows=len(r),
                       moments=None if mom is None else mom.reshape(-1).tolist())  # fmt: skip
        files.append(rec)
    root = Path(out)
    shards.write_table_atomic(pa.Table.from_pylist(files, schema=shards.FILE_SCHEMA), root / "files" / plan.name)
    x = np.concatenate(feats) if feats else np.zeros((0, *fs.shape), np.float32)
    table = shards.rows_to_table(rows, x, shards.shard_schema(*fs.shape))
    shards.write_table_atomic(table, root / "shards" / plan.name)
    return {"files": len(plan.files), "ok": sum(f["status"] == "ok" for f in files), "rows": len(rows)}


def _labels(path: str, corpus: str | None) -> Labels | str:
    """The labels the name of ``path`` gives in the ``corpus`` layout (or the one detected), else why none."""
    try:
        return corpora.get_corpus(corpus).parse(Path(path)) if corpus is not None else corpora.parse(Path(path))
    except CorpusError as exc:
        return str(exc)


def _missing(path: str, labels: Labels) -> str:
    """Why a listed path has no row: it names no file (a manifest's rows say where they were listed)."""
    where = labels.fields
    if "manifest" in where and "line" in where:
        return f"{display(path)}: listed in manifest {where['manifest']} line {where['line']} but no such file"
    return f"{display(path)}: listed but no such file; fix the path or take it off the list"


@dataclass
class _Tally:
    """What the client keeps of a run: each shard's name (not its files), counts, and the files of failed tasks."""

    names: list[str] = field(default_factory=list)
    files: int = 0
    skipped: int = 0
    lost: list[dict[str, str | None]] = field(default_factory=list)

    def todo(self, plans: Iterable[ShardPlan], out: Path) -> Iterator[ShardPlan]:
        """The plans whose shard is not written yet, counting every plan as it streams by."""
        for plan in plans:
            self.names.append(plan.name)
            self.files += len(plan.files)
            if _shard_done(out, plan.name):
                self.skipped += 1
            else:
                yield plan


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
    """Extract features (and augmented copies) of the audio ``roots`` name, in parallel; write shards to ``out``.

    ``roots`` are folders, audio files, lists of paths (``.txt``/``.lst``, ``.parquet`` or ``.csv`` with a path
    column) and labelled CSV manifests ``path,label[,speaker]`` (`inputs.iter_listed`); labels come from each
    path's corpus layout (or ``corpus``) unless a manifest gives them. Paths stream through: the client holds the
    batches in flight, never the list. A path given twice is extracted once.

    Reruns with the same inputs (in the same order) and settings skip finished shards; an ``out`` made with other
    settings is refused. A frame-grid feature set (``whisper_base``) gives one row per speech window every
    ``window_settings.hop_s`` of each whole recording; ``device`` (auto, cpu, cuda) is where workers run its encoder.
    """
    if feature_settings.grid and augment_settings is not None and augment_settings.shifts:
        raise ConfigError(f"{feature_settings.name} cuts training windows every {window_settings.hop_s:g} s of each whole recording; "
                          "--shifts is for feature sets read at a fixed offset: leave it at 0")
    t0 = time.perf_counter()
    say = echo or (lambda _m: None)
    out_dir = Path(out).absolute()  # workers write the shards, and a remote worker has its own working directory
    ws = window_settings if feature_settings.grid else None
    plans = plan_shards(iter_listed(roots), feature_settings, augment_settings, files_per_shard, ws, corpus)
    settings = _settings_dict(feature_settings, augment_settings, ws)
    _claim_output(out_dir, settings)
    for sub in ("shards", "files"):
        shards.remove_temporaries(out_dir / sub)
    tally = _Tally()
    todo = tally.todo(plans, out_dir)
    try:
        first = next(todo, None)  # no Dask at all when every shard is written
        if first is None:
            say(f"{tally.files} paths in {len(tally.names)} shards, all done already.")
            result = _finish(out_dir, tally, settings)
        else:
            with dask_client(scheduler, workers, echo=say) as client:
                args = (str(out_dir), feature_settings, augment_settings, window_settings, device)
                _run(client, itertools.chain([first], todo), args, tally, progress)
                say(f"{tally.files} paths in {len(tally.names)} shards; {tally.skipped} were done already.")
                result = _finish(out_dir, tally, settings, client)
    finally:  # interrupted or not: no half-written file stays behind; finished shards stay for the rerun
        for sub in ("shards", "files"):
            shards.remove_temporaries(out_dir / sub)
    return ExtractResult(**result, out=out_dir, shards_skipped=tally.skipped, seconds=time.perf_counter() - t0)


def _run(client: Any, plans: Iterator[ShardPlan], args: tuple[Any, ...], tally: _Tally, progress: bool) -> None:
    """Submit a task per plan, a bounded number in flight; the files of a task that failed go to ``tally.lost``."""
    in_flight: dict[str, ShardPlan] = {}
    weights: dict[str, float] = {}

    def submitted() -> Iterator[Any]:
        for plan in plans:
            fut = client.submit(extract_shard, plan, *args, key=f"extract-{plan.name}-{_job(args[0])}", retries=RETRIES, pure=False)
            in_flight[fut.key], weights[fut.key] = plan, len(plan.files)
            yield fut

    limit = IN_FLIGHT_PER_THREAD * max(16, sum(client.nthreads().values()))
    for fut, _res, err in follow(submitted(), None, weights, "files", progress, in_flight=limit):
        plan = in_flight.pop(fut.key)
        del weights[fut.key]
        if err is not None:
            reason = shards.text(f"its batch failed: {type(err).__name__}: {err}")
            tally.lost.extend({"path": shards.text(path), "stage": "task", "reason": reason} for path, _ in plan.files)


def _job(out: str) -> str:
    """Task keys name the output folder too: two jobs of the same inputs and settings into two folders, on one
    scheduler, must not share tasks."""
    return hashlib.sha256(out.encode("utf-8", "surrogateescape")).hexdigest()[:8]


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


def _finish(out: Path, tally: _Tally, settings: dict[str, Any], client: Any = None) -> dict[str, int]:
    """Drop stale shards, merge the file tables of the finished ones into errors and catalog (`merge_files`: as a
    task on a worker when there is a cluster, the last of the work per file), and write the manifest."""
    done = [name for name in tally.names if _shard_done(out, name)]
    wanted = set(done)
    for sub in ("shards", "files"):
        for stale in (out / sub).glob("part-*.parquet") if (out / sub).is_dir() else ():
            if stale.name not in wanted:
                stale.unlink()
    args = (str(out), done, tally.lost)
    merged = client.submit(merge_files, *args, key=f"extract-merge-{_job(str(out))}", retries=RETRIES, pure=False).result() if client else merge_files(*args)
    manifest = _manifest_base(settings) | {
        "complete": True,
        "created": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "inputs_fingerprint": hashlib.sha256("".join(sorted(wanted)).encode()).hexdigest()[:16],
        "shards": merged.pop("shards"),
        "totals": {"files_found": tally.files, **merged},
    }
    shards.write_json_atomic(manifest, out / shards.MANIFEST)
    return {"files_ok": merged["files_ok"], "files_failed": merged["files_failed"], "rows": merged["rows"], "shards": len(done)}


def merge_files(out: str, names: list[str], lost: list[dict[str, str | None]]) -> dict[str, Any]:
    """Stream the file tables ``names`` into ``errors.parquet`` (with the ``lost`` files of failed tasks) and
    ``catalog.parquet``; the totals and each shard's rows and files, for the manifest.

    One pass over the file tables, one shard's table in memory at a time, writes the errors and, into a scratch
    file, the rows of the catalog, finding the corpus fields on the way; a second pass over that one file, in
    large batches, spreads the fields into the catalog's ``field_*`` columns.
    """
    root = Path(out)
    entries: list[dict[str, Any]] = []
    keys: set[str] = set()
    ok = rows = failed = 0
    found_schema = pa.schema([f for f in shards.FILE_SCHEMA if f.name != "moments"])
    with tempfile.TemporaryDirectory(prefix=".tmp-", dir=root) as scratch:
        found_path = Path(scratch) / "found.parquet"
        with (
            shards.table_writer_atomic(root / "errors.parquet", shards.ERROR_SCHEMA) as write_errors,
            shards.table_writer_atomic(found_path, found_schema) as write_found,
        ):
            for name in names:
                t = _read(root / "files" / name, found_schema.names)
                bad = t.filter(pc.equal(t["status"], "error")).select(shards.ERROR_SCHEMA.names)
                if bad.num_rows:
                    write_errors(bad.cast(shards.ERROR_SCHEMA))
                n_rows = pc.sum(t["rows"]).as_py() or 0
                ok, rows, failed = ok + t.num_rows - bad.num_rows, rows + n_rows, failed + bad.num_rows
                entries.append({"name": name, "rows": n_rows, "files": t.num_rows})
                found = t.filter(pc.fill_null(pc.not_equal(t["stage"], "catalog"), True))  # no labels, no such file
                if found.num_rows:
                    write_found(found)
                    for fields in pc.unique(found["fields"]).to_pylist():
                        keys.update(json.loads(fields) if fields else ())
            if lost:
                write_errors(pa.Table.from_pylist(lost, schema=shards.ERROR_SCHEMA))
                failed += len(lost)
        columns = [f for f in found_schema if f.name != "fields"]
        schema = pa.schema(columns + [pa.field(f"field_{k}", pa.string()) for k in sorted(keys)])
        with shards.table_writer_atomic(root / "catalog.parquet", schema) as write_catalog, pq.ParquetFile(found_path) as f:
            for batch in f.iter_batches(batch_size=65_536):
                fields = _spread(batch.column("fields"), sorted(keys))
                write_catalog(pa.Table.from_arrays([batch.column(c.name) for c in columns] + fields, schema=schema))
    return {"shards": entries, "files_ok": ok, "files_failed": failed, "rows": rows}


def _read(path: Path, columns: list[str]) -> pa.Table:
    """``columns`` of a small Parquet file, in that order (``ParquetFile``: a quarter of ``read_table``'s cost)."""
    with pq.ParquetFile(path) as f:
        return f.read(columns=columns).select(columns)


def _spread(fields: pa.Array, keys: list[str]) -> list[pa.Array]:
    """The corpus fields (JSON text per file) as a string column per key; each distinct text is parsed once."""
    coded = pc.dictionary_encode(fields)
    parsed = [json.loads(f) if f else {} for f in coded.dictionary.to_pylist()]
    return [pa.array([d.get(k) for d in parsed], pa.string()).take(coded.indices) for k in keys]
