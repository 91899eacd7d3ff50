"""One self-contained HTML page about a score report: what the archive sounds like, how sure the model is, where
it failed, and which model said so.

The page (``report``) shows the emotion mix over the archive (dominant emotion of the ``ok`` recordings and the
mean of each ``p_<emotion>``), the same over time (dates found in the paths by a regex) or per value of a column,
the distribution of ``confidence`` beside the model card's calibration figures, per-window timelines of a few
recordings (the most confident, the most angry, a random sample) from the segments file, the error rows grouped
by reason, and the model card's figures on unseen speakers.

Built to stay fast on a million-row report: the report is read in batches of the needed columns only and
aggregated as it streams (counts, sums, a histogram, small per-period tables, running top-k candidates), so memory
stays flat; the segments file is read filtered to the chosen recordings. The plots (``plots``) are PNGs embedded as
``data:`` URIs; the page has no script and loads nothing.
"""

from __future__ import annotations

import json
import math
import os
import re
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.dataset as ds

from ser_batch import plots
from ser_batch.errors import ConfigError
from ser_batch.labels import EMOTIONS
from ser_batch.plots import COLORS, CONFIDENCE_BINS, P_COLS

DATE_PATTERN = (
    r"(?:^|\D)(?P<year>(?:19|20)\d{2})[-_./]?(?P<month>0[1-9]|1[0-2])[-_./]?(?P<day>0[1-9]|[12]\d|3[01])"
    r"(?:[T_ -]?[0-2]\d[-:.]?[0-5]\d(?:[-:.]?[0-5]\d)?)?(?:\D|$)"
)
"""Default date finder: YYYY-MM-DD, YYYY_MM_DD, YYYY/MM/DD or YYYYMMDD anywhere in the path (the first match), with
a time (HHMM[SS]) glued on allowed; digits right before or after keep it from matching inside longer numbers."""

RECORDINGS = 6
"""Per-recording timelines drawn by default: a third most confident, a third most angry, the rest at random."""

UNITS = (("day", "D", 120), ("week", "W", 2 * 366), ("month", "M", 10 * 366), ("year", "Y", math.inf))
"""Time bars per day up to 120 days of archive, then per week, month or year: a readable number of bars."""
MAX_GROUPS = 30  # --group-by: the groups with the most recordings; the rest are summed as "(other)"
ERROR_EXAMPLES = 3
MAX_ERROR_GROUPS = 50
BATCH_ROWS = 1 << 17

SEGMENT_COLUMNS = ["path", "start_s", "end_s", "is_speech", *P_COLS]


@dataclass(frozen=True)
class ReportResult:
    """What ``report`` wrote."""

    out: Path
    rows: int
    ok: int
    errors: int
    timelines: int
    bytes: int
    seconds: float


# ------------------------------------------------------------------------------------------------ reading


def open_table(path: str | os.PathLike[str], what: str = "report") -> ds.Dataset:
    """A score report (or segments file) as a pyarrow dataset: a .parquet file, a .csv file or a folder of parts."""
    p = Path(path)
    if not p.exists():
        raise ConfigError(f"{what} {p} does not exist; give the file `ser-batch score --out` (or --segments) wrote: .parquet, .csv or a folder of .parquet parts")
    fmt = "csv" if p.is_file() and p.suffix.lower() == ".csv" else "parquet"
    try:
        return ds.dataset(p, format=fmt)
    except (pa.ArrowInvalid, pa.ArrowTypeError, OSError) as exc:
        raise ConfigError(f"{what} {p} cannot be read as {fmt} ({exc}); give a .parquet or .csv file, or a folder of .parquet parts") from exc


def _column(batch: pa.RecordBatch, name: str, length: int) -> pa.Array:
    """A column of the batch, or nulls where the report lacks it."""
    i = batch.schema.get_field_index(name)
    return batch.column(i) if i >= 0 else pa.nulls(length)


def _floats(batch: pa.RecordBatch, name: str) -> np.ndarray:
    col = _column(batch, name, batch.num_rows)
    if pa.types.is_null(col.type):
        return np.full(batch.num_rows, np.nan)
    return np.asarray(pc.cast(col, pa.float64()).to_numpy(zero_copy_only=False), dtype=np.float64)


def _strings(col: pa.Array) -> pa.Array:
    """Any column as plain UTF-8 strings (pandas writes large_string; a CSV may give numbers or nulls)."""
    return col if pa.types.is_string(col.type) else pc.cast(col, pa.string())


# ------------------------------------------------------------------------------------------------ aggregation


@dataclass
class _Candidates:
    """The k rows with the highest ``key`` seen so far (running top-k over batches)."""

    k: int
    table: pa.Table | None = None

    def offer(self, rows: pa.Table, key: np.ndarray) -> None:
        if self.k <= 0 or rows.num_rows == 0:
            return
        t = rows.append_column("_key", pa.array(key, pa.float64()))
        if self.table is not None:
            t = pa.concat_tables([self.table, t])
        self.table = t.take(pc.select_k_unstable(t, self.k, sort_keys=[("_key", "descending")]))

    def rows(self) -> list[dict[str, Any]]:
        if self.table is None:
            return []
        return self.table.sort_by([("_key", "descending"), ("path", "ascending")]).to_pylist()


@dataclass
class _Aggregate:
    """Everything the page needs from the report, gathered batch by batch."""

    k: int
    seed: int
    rows: int = 0
    ok: int = 0
    hours: float = 0.0
    emotion_counts: dict[str, int] = field(default_factory=dict)
    p_sum: np.ndarray = field(default_factory=lambda: np.zeros(len(EMOTIONS)))
    p_n: np.ndarray = field(default_factory=lambda: np.zeros(len(EMOTIONS)))
    conf_hist: np.ndarray = field(default_factory=lambda: np.zeros(CONFIDENCE_BINS, np.int64))
    conf_sum: float = 0.0
    conf_n: int = 0
    keyed: list[pa.Table] = field(default_factory=list)  # per batch: (key, emotion) counts and p sums
    undated: int = 0
    errors: dict[str, dict[str, Any]] = field(default_factory=dict)
    models: dict[tuple[str, str], int] = field(default_factory=dict)
    confident: _Candidates = field(init=False)
    angry: _Candidates = field(init=False)
    random: _Candidates = field(init=False)

    def __post_init__(self) -> None:
        self.confident, self.angry, self.random = _Candidates(self.k), _Candidates(self.k), _Candidates(self.k)
        self.rng = np.random.default_rng(self.seed)

    def add(self, batch: pa.RecordBatch, keys: pa.Array | None) -> None:
        n = batch.num_rows
        self.rows += n
        status = _strings(_column(batch, "status", n))
        ok = np.asarray(pc.fill_null(pc.equal(status, "ok"), False).to_numpy(zero_copy_only=False), bool)
        self.ok += int(ok.sum())
        dur = _floats(batch, "duration_s")
        self.hours += float(np.nansum(dur)) / 3600
        self._models(batch, n)
        self._errors(batch, ~ok)
        if not ok.any():
            return
        okb = batch.filter(pa.array(ok))
        emotion = _strings(_column(okb, "emotion", okb.num_rows))
        for v in pc.value_counts(emotion).to_pylist():
            name = v["values"] if v["values"] is not None else "(none)"
            self.emotion_counts[name] = self.emotion_counts.get(name, 0) + int(v["counts"])
        p = np.stack([_floats(okb, c) for c in P_COLS], axis=1)
        self.p_sum += np.nansum(p, axis=0)
        self.p_n += np.isfinite(p).sum(axis=0)
        conf = _floats(okb, "confidence")
        good = np.isfinite(conf)
        self.conf_hist += np.histogram(np.clip(conf[good], 0, 1), bins=CONFIDENCE_BINS, range=(0, 1))[0]
        self.conf_sum += float(conf[good].sum())
        self.conf_n += int(good.sum())
        if keys is not None:
            self._keyed(keys.filter(pa.array(ok)), emotion, p)
        rows = pa.table({
            "path": _strings(_column(okb, "path", okb.num_rows)), "emotion": emotion,
            "confidence": pa.array(conf), "p_angry": pa.array(p[:, EMOTIONS.index("angry")]),
            "duration_s": pa.array(dur[ok]),
        })  # fmt: skip
        self.confident.offer(rows.filter(pa.array(good)), conf[good])
        angry = np.nan_to_num(p[:, EMOTIONS.index("angry")], nan=-1.0)
        self.angry.offer(rows.filter(pa.array(angry > 0)), angry[angry > 0])
        self.random.offer(rows, self.rng.random(rows.num_rows))

    def _models(self, batch: pa.RecordBatch, n: int) -> None:
        if batch.schema.get_field_index("model") < 0:
            return
        t = pa.table({"model": _strings(_column(batch, "model", n)), "model_version": _strings(_column(batch, "model_version", n))})
        for r in t.group_by(["model", "model_version"]).aggregate([([], "count_all")]).to_pylist():
            key = (r["model"] or "?", r["model_version"] or "?")
            self.models[key] = self.models.get(key, 0) + int(r["count_all"])

    def _errors(self, batch: pa.RecordBatch, bad: np.ndarray) -> None:
        if not bad.any():
            return
        eb = batch.filter(pa.array(bad))
        paths = _strings(_column(eb, "path", eb.num_rows)).to_pylist()
        errors = _strings(_column(eb, "error", eb.num_rows)).to_pylist()
        for path, err in zip(paths, errors):
            why = reason(err, path)
            g = self.errors.get(why)
            if g is None:
                g = self.errors[why] = {"reason": why, "count": 0, "paths": [], "example": err or ""}
            g["count"] += 1
            if len(g["paths"]) < ERROR_EXAMPLES:
                g["paths"].append(path or "")

    def _keyed(self, keys: pa.Array, emotion: pa.Array, p: np.ndarray) -> None:
        key = pc.fill_null(_strings(keys), "")
        t = pa.table({"key": key, "emotion": pc.fill_null(emotion, "(none)"), **{c: pa.array(p[:, i]) for i, c in enumerate(P_COLS)}})
        self.undated += int(pc.sum(pc.equal(key, "")).as_py() or 0)
        agg = t.group_by(["key", "emotion"]).aggregate([([], "count_all"), *((c, "sum") for c in P_COLS)])
        self.keyed.append(agg)

    def keyed_frame(self) -> pd.DataFrame:
        """Per key: ok recordings by dominant emotion (columns = emotions) and the mean of each p_<emotion>."""
        if not self.keyed:
            return pd.DataFrame()
        df = pa.concat_tables(self.keyed).to_pandas()
        df = df[df["key"] != ""]
        if df.empty:
            return pd.DataFrame()
        counts = df.pivot_table(index="key", columns="emotion", values="count_all", aggfunc="sum", fill_value=0)
        sums = df.groupby("key")[[f"{c}_sum" for c in P_COLS]].sum()
        n = counts.sum(axis=1)
        out = counts.reindex(columns=[e for e in [*EMOTIONS, "(none)"] if e in counts.columns]).astype(int)
        out["n"] = n
        for c in P_COLS:
            out[f"mean_{c}"] = sums[f"{c}_sum"] / n
        return out


_NUMBERS, _SPACES = re.compile(r"\d+(?:\.\d+)?"), re.compile(r"\s+")


def reason(error: str | None, path: str | None) -> str:
    """An error's reason without its recording: the path (and file name) taken out and numbers as #, so the same
    failure of many files is one group."""
    if not error:
        return "(no reason given)"
    r = str(error)
    if path:
        r = r.replace(path, " ")
        base = os.path.basename(path)
        if len(base) > 3:
            r = r.replace(base, " ")
    r = _SPACES.sub(" ", _NUMBERS.sub("#", r)).strip(" :;,-")
    return r or "(no reason given)"


def date_keys(paths: pa.Array, pattern: str) -> pa.Array:
    """Per path the date ``pattern`` finds in it as text (YYYY-MM-DD from groups year/month/day, else the text of a
    group named date, else the whole match); null where it finds none."""
    names = re.compile(pattern).groupindex
    if not ({"year", "month"} <= set(names) or "date" in names):
        pattern = f"(?P<date>{pattern})"
    try:
        found = pc.extract_regex(_strings(paths), pattern=pattern)
    except (pa.ArrowInvalid, pa.ArrowNotImplementedError) as exc:
        raise ConfigError(f"--date-pattern {pattern!r}: not a regex pyarrow (RE2) can run ({exc}); use named groups year, month[, day] or date, and no look-arounds or back-references") from exc
    if {"year", "month"} <= set(names):
        day = pc.struct_field(found, "day") if "day" in names else pa.nulls(len(found), pa.string())
        day = pc.if_else(pc.equal(pc.utf8_length(pc.fill_null(_strings(day), "")), 0), "01", _strings(day))
        year, month = _strings(pc.struct_field(found, "year")), _strings(pc.struct_field(found, "month"))
        return pc.binary_join_element_wise(year, month, day, "-")
    return _strings(pc.struct_field(found, "date"))


def _dates(frame: pd.DataFrame) -> tuple[pd.DataFrame, str]:
    """The per-date-text frame re-indexed by parsed dates and summed per day, month or year (whichever gives a
    readable number of bars); also the unit's name."""
    when = pd.to_datetime(pd.Series(frame.index, index=frame.index), errors="coerce", format="mixed")
    frame = frame[when.notna()]
    when = when[when.notna()]
    if frame.empty:
        return frame, ""
    span_days = (when.max() - when.min()).days
    unit, freq = next((u, f) for u, f, most in UNITS if span_days <= most)
    period = when.dt.to_period(freq)
    counts = [c for c in frame.columns if not c.startswith("mean_")]
    summed = frame[counts].groupby(period).sum()
    for c in P_COLS:
        summed[f"mean_{c}"] = (frame[f"mean_{c}"] * frame["n"]).groupby(period).sum() / summed["n"]
    full = pd.period_range(summed.index.min(), summed.index.max(), freq=freq)
    if len(full) <= 400:  # show empty periods as gaps, not as if they were not there
        summed = summed.reindex(full)
        summed[counts] = summed[counts].fillna(0)
    return summed.sort_index(), unit


# ------------------------------------------------------------------------------------------------ model cards


def _card(models_dir: Path, name: str, version: str) -> dict[str, Any]:
    """What the model card of ``name`` says: config.json and metrics.json of models_dir/name, whatever is there."""
    d = models_dir / name
    card: dict[str, Any] = {"name": name, "version": version, "dir": str(d), "found": False, "notes": []}
    try:
        config = json.loads((d / "config.json").read_text())
    except FileNotFoundError:
        card["notes"].append(f"no model card: {d / 'config.json'} does not exist (give --models FOLDER where the model directory {name}/ is)")
        return card
    except (OSError, ValueError) as exc:
        card["notes"].append(f"{d / 'config.json'} cannot be read ({exc})")
        return card
    card["found"] = True
    card_version = str(config.get("model_version", "?"))
    if card_version != version:
        card["notes"].append(f"the card is version {card_version}; this report was made with version {version}: its figures may not apply")
    fs = config.get("features", {})
    m = config.get("model", {})
    card["facts"] = [
        ("feature set", f"{fs.get('name', '?')} v{fs.get('version', '?')}, {fs.get('duration_s', '?')} s windows at {fs.get('sample_rate', '?')} Hz"),
        ("model", f"{m.get('model', '?')}" + (", speaker-normalised" if m.get("speaker_norm") is True else "")),
        ("classes", ", ".join(config.get("classes", [])) or "?"),
        ("protocol", str(config.get("protocol_note", config.get("protocol", "?")))),
        ("calibration temperature", f"{config['temperature']:.3f}" if isinstance(config.get("temperature"), (int, float)) else "not available"),
        ("trained with", ", ".join(f"{k} {v}" for k, v in sorted(config.get("versions", {}).items())) or "?"),
        ("created", str(config.get("created", "?"))),
    ]
    try:
        metrics = json.loads((d / "metrics.json").read_text())
    except (OSError, ValueError):
        metrics = {}
        if config.get("protocol") == "all":  # nothing was held out of its training: the card's cross-validation speaks for it
            card["notes"].append(f"trained on every speaker: its figures on unseen speakers are the cross-validated ones of its card ({d / 'README.md'})")
        else:
            card["notes"].append(f"no figures: {d / 'metrics.json'} is missing or unreadable")
    card["n_test"] = metrics.get("n")
    card["figures"] = [(label, metrics.get(key)) for key, label in (("uar", "UAR"), ("accuracy", "accuracy"), ("macro_f1", "macro F1"), ("weighted_f1", "weighted F1"))]
    card["accuracy"] = metrics.get("accuracy")
    card["calibration"] = [
        (label, f"{metrics[key]:.3f}" if isinstance(metrics.get(key), (int, float)) else "not available")
        for key, label in (("ece", "expected calibration error (ECE)"), ("ece_uncalibrated", "ECE before temperature scaling"))
    ]
    bins = metrics.get("reliability")
    card["reliability"] = plots.reliability(bins) if _reliability_ok(bins) else None
    card["per_class"] = [
        {"class": c, **{k: v.get(k) for k in ("recall", "precision", "f1", "support")}} for c, v in metrics.get("per_class", {}).items()
    ]
    card["test_speakers"] = ", ".join(metrics.get("test_speakers", [])) or None
    return card


def _reliability_ok(bins: Any) -> bool:
    """Reliability bins as a list of {confidence, accuracy, ...} (the cards of today have none)."""
    return isinstance(bins, list) and bool(bins) and all(isinstance(b, dict) and {"confidence", "accuracy"} <= set(b) for b in bins)


def _run_settings(dataset: ds.Dataset) -> list[tuple[str, str]]:
    """Settings a run wrote into the report's schema metadata (anything but pandas' and Arrow's own)."""
    meta = dataset.schema.metadata or {}
    out = []
    for k, v in meta.items():
        key = k.decode("utf-8", "replace")
        if key in ("pandas", "ARROW:schema"):
            continue
        text = v.decode("utf-8", "replace")
        try:
            parsed = json.loads(text)
            if isinstance(parsed, dict):
                out.extend((f"{key}.{a}", json.dumps(b) if not isinstance(b, str) else b) for a, b in parsed.items())
                continue
        except ValueError:
            pass
        out.append((key, text))
    return out


# ------------------------------------------------------------------------------------------------ the page


def _choose(agg: _Aggregate, n: int) -> list[dict[str, Any]]:
    """Up to ``n`` recordings: a third the most confident, a third the most angry, the rest at random, no repeats."""
    n_conf = math.ceil(n / 3)
    n_angry = math.ceil((n - n_conf) / 2)
    chosen: dict[str, dict[str, Any]] = {}
    for why, cand, want in (("most confident", agg.confident, n_conf), ("most angry", agg.angry, n_angry), ("random", agg.random, n)):
        for r in cand.rows():
            if len(chosen) >= n or want <= 0:
                break
            if r["path"] in chosen:
                continue
            chosen[r["path"]] = {**r, "why": why}
            want -= 1
    return list(chosen.values())


def _timelines(segments: Path | None, chosen: list[dict[str, Any]]) -> tuple[list[dict[str, Any]], str | None]:
    """Per chosen recording a timeline image from the segments file, read filtered to those paths."""
    if not chosen:
        return [], None
    if segments is None:
        return [dict(r, image=None) for r in chosen], "no segments file given: `ser-batch score ... --segments SEGMENTS.parquet` writes one, `ser-batch report ... --segments SEGMENTS.parquet` draws it"
    dataset = open_table(segments, "segments")
    missing = [c for c in SEGMENT_COLUMNS if c not in dataset.schema.names]
    if missing:
        raise ConfigError(f"segments {segments} lacks the columns {', '.join(missing)}; give the file `ser-batch score --segments` wrote")
    paths = [r["path"] for r in chosen]
    table = dataset.to_table(columns=SEGMENT_COLUMNS, filter=ds.field("path").isin(paths))
    by_path = dict(tuple(table.to_pandas().groupby("path", sort=False))) if table.num_rows else {}
    out = []
    for r in chosen:
        seg = by_path.get(r["path"])
        out.append(dict(r, image=plots.timeline(seg) if seg is not None and len(seg) else None, windows=0 if seg is None else len(seg)))
    return out, None


def report(
    report_file: str | os.PathLike[str],
    out: str | os.PathLike[str],
    *,
    segments: str | os.PathLike[str] | None = None,
    recordings: int = RECORDINGS,
    group_by: str | None = None,
    date_pattern: str | None = None,
    models_dir: str | os.PathLike[str] | None = None,
    title: str | None = None,
    seed: int = 0,
) -> ReportResult:
    """Write one self-contained HTML page (``out``) about a score report and, optionally, its segments.

    ``group_by`` names a report column to break the emotion mix down by; otherwise dates are looked for in the
    paths with ``date_pattern`` (default ``DATE_PATTERN``: named groups year, month[, day], or a group named date,
    or the whole match). ``recordings`` timelines are drawn from ``segments``; the random ones are drawn with
    ``seed``. Model cards are looked up by the report's ``model`` column in ``models_dir`` (default: the folder of
    the default model, models/).
    """
    t0 = time.perf_counter()
    src, out_path = Path(report_file), Path(out)
    if recordings < 0:
        raise ConfigError("--recordings must be >= 0")
    if group_by and date_pattern:
        raise ConfigError("give --group-by COLUMN or --date-pattern REGEX, not both")
    if date_pattern is not None:
        try:
            re.compile(date_pattern)
        except re.error as exc:
            raise ConfigError(f"--date-pattern {date_pattern!r} is not a regular expression ({exc})") from exc
    dataset = open_table(src)
    names = dataset.schema.names
    missing = [c for c in ("path", "status") if c not in names]
    if missing:
        raise ConfigError(f"{src} lacks the columns {', '.join(missing)}: not a report of `ser-batch score` (columns: {', '.join(names[:12])}{', ...' if len(names) > 12 else ''})")
    if group_by and group_by not in names:
        raise ConfigError(f"--group-by {group_by}: {src} has no such column; it has {', '.join(names)}")
    wanted = ["path", "status", "error", "emotion", "confidence", "duration_s", *P_COLS, "model", "model_version", *([group_by] if group_by else [])]
    columns = list(dict.fromkeys(c for c in wanted if c in names))
    pattern = date_pattern or DATE_PATTERN
    agg = _Aggregate(k=max(recordings, 1), seed=seed)
    for batch in dataset.to_batches(columns=columns, batch_size=BATCH_ROWS, batch_readahead=2, fragment_readahead=1):
        if batch.num_rows == 0:
            continue
        keys = batch.column(batch.schema.get_field_index(group_by)) if group_by else date_keys(batch.column(batch.schema.get_field_index("path")), pattern)
        agg.add(batch, keys)

    p_mean = np.where(agg.p_n > 0, agg.p_sum / np.maximum(agg.p_n, 1), np.nan)
    conf_mean = agg.conf_sum / agg.conf_n if agg.conf_n else math.nan
    mix = [
        {"emotion": e, "color": COLORS.get(e, "#555"), "count": agg.emotion_counts.get(e, 0), "share": agg.emotion_counts.get(e, 0) / agg.ok if agg.ok else 0.0, "p_mean": p_mean[i] if i < len(EMOTIONS) else math.nan}
        for i, e in enumerate([*EMOTIONS, *(e for e in agg.emotion_counts if e not in EMOTIONS)])
    ]  # fmt: skip

    over: dict[str, Any] = {"image": None, "note": None, "table": []}
    frame = agg.keyed_frame()
    if group_by:
        over["title"] = f"by {group_by}"
        if frame.empty:
            over["note"] = f"no ok recording has a value in column {group_by}"
        else:
            frame = frame.sort_values("n", ascending=False)
            if len(frame) > MAX_GROUPS:
                rest = frame.iloc[MAX_GROUPS:]
                other = rest.drop(columns=[c for c in rest if c.startswith("mean_")]).sum()
                for c in P_COLS:
                    other[f"mean_{c}"] = (rest[f"mean_{c}"] * rest["n"]).sum() / rest["n"].sum()
                frame = pd.concat([frame.iloc[:MAX_GROUPS], other.to_frame(f"(other {len(rest)})").T])
                over["note"] = f"{MAX_GROUPS} groups with the most recordings shown; the other {len(rest)} are summed in the last bar"
            over["image"] = plots.over_time(frame, group_by)
    else:
        over["title"] = "over time"
        dated, unit = _dates(frame) if not frame.empty else (frame, "")
        if dated.empty:
            over["note"] = (
                f"no dates found in the paths with {'--date-pattern' if date_pattern else 'the default pattern (YYYY-MM-DD, YYYY_MM_DD, YYYY/MM/DD or YYYYMMDD)'}"
                "; give --date-pattern REGEX (named groups year, month[, day]) or --group-by COLUMN"
            )
        else:
            over["title"] = f"over time, per {unit}"
            over["image"] = plots.over_time(dated, unit)
            if agg.undated:
                over["note"] = f"{agg.undated:,} ok recordings have no date in their path and are left out of this section"
            frame = dated
    if over["image"] is not None:
        emo = [e for e in EMOTIONS if e in frame.columns]
        for key, r in frame.iterrows():
            n = int(r["n"]) if np.isfinite(r["n"]) else 0
            top = max(emo, key=lambda e: r[e]) if n and emo else None
            over["table"].append({"key": str(key), "n": n, "top": top, "top_share": (r[top] / n) if top else math.nan})

    cards_root = Path(models_dir) if models_dir else _default_models_dir()
    cards = [dict(_card(cards_root, name, version), rows=count) for (name, version), count in sorted(agg.models.items())]
    card_accuracy = next((c["accuracy"] for c in cards if c.get("accuracy") is not None), None)

    chosen = _choose(agg, recordings)
    timelines, timeline_note = _timelines(Path(segments) if segments else None, chosen)
    errors = sorted(agg.errors.values(), key=lambda g: (-g["count"], g["reason"]))
    n_errors = agg.rows - agg.ok

    page = _template().render(
        title=title or f"Emotion report: {src.name}",
        source=str(src),
        generated=datetime.now(timezone.utc).strftime("%Y-%m-%d %H:%M UTC"),
        rows=agg.rows, ok=agg.ok, n_errors=n_errors, hours=agg.hours,
        legend=plots.legend(),
        mix=mix, mix_image=plots.mix(agg.emotion_counts, p_mean) if agg.ok else None,
        over=over,
        confidence_image=plots.confidence(agg.conf_hist, conf_mean, len(EMOTIONS), card_accuracy) if agg.conf_n else None,
        confidence_mean=conf_mean, confidence_n=agg.conf_n,
        confidence_median=_hist_quantile(agg.conf_hist, 0.5),
        timelines=timelines, timeline_note=timeline_note, recordings=recordings,
        segments=str(segments) if segments else None,
        errors=errors[:MAX_ERROR_GROUPS], error_groups=len(errors),
        cards=cards, run_settings=_run_settings(dataset),
        version=_version(),
    )  # fmt: skip
    out_path.parent.mkdir(parents=True, exist_ok=True)
    tmp = out_path.parent / f".tmp-{out_path.name}"
    tmp.write_text(page, encoding="utf-8")
    os.replace(tmp, out_path)
    return ReportResult(out_path, agg.rows, agg.ok, n_errors, sum(1 for t in timelines if t.get("image")), out_path.stat().st_size, time.perf_counter() - t0)


def _hist_quantile(hist: np.ndarray, q: float) -> float:
    """A quantile read off the confidence histogram (to its bin's middle)."""
    total = hist.sum()
    if not total:
        return math.nan
    i = int(np.searchsorted(np.cumsum(hist), q * total))
    return (i + 0.5) / len(hist)


def _default_models_dir() -> Path:
    from ser_batch.modeldir import default_model

    return default_model().parent


def _version() -> str:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("ser-batch")
    except PackageNotFoundError:
        from ser_batch import __version__

        return __version__


def _template() -> Any:
    import jinja2

    env = jinja2.Environment(loader=jinja2.PackageLoader("ser_batch", "templates"), autoescape=True, undefined=jinja2.StrictUndefined, trim_blocks=True, lstrip_blocks=True)
    env.filters["num"] = lambda v, fmt=".3f": "n/a" if v is None or (isinstance(v, float) and not math.isfinite(v)) else format(v, fmt)
    return env.get_template("report.html.j2")


__all__: Sequence[str] = ("DATE_PATTERN", "ReportResult", "date_keys", "open_table", "reason", "report")
