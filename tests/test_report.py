"""ser_batch.report: one self-contained HTML page from a score report and its segments (written here directly with
pandas, in the real schema: no scoring runs)."""

from __future__ import annotations

import base64
import json
import re
import shutil
import subprocess
from html.parser import HTMLParser
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pytest
from typer.testing import CliRunner

from ser_batch import plots
from ser_batch import report as rp
from ser_batch.cli import app
from ser_batch.errors import ConfigError
from ser_batch.labels import EMOTIONS
from ser_batch.verdict import REPORT_COLUMNS

P = [f"p_{e}" for e in EMOTIONS]
DAYS = ["2024-03-01", "2024-03-02", "2024-03-04", "2024-03-09"]
ERRORS = {  # kind -> (message template, how many)
    "silent": ("{p} is silent: all {k} windows are below the silence threshold", 4),
    "decode": ("{p}: cannot be decoded (Error opening '{p}': Format not recognised.)", 3),
    "oversized": ("{p} is oversized: {k}.5 h > 48.0 h limit (--max-hours)", 2),
}


def make_report(root: Path, n_ok: int = 40, seed: int = 0) -> tuple[pd.DataFrame, pd.DataFrame]:
    """A report (REPORT_COLUMNS) of ``n_ok`` scored recordings in dated folders plus the ERRORS rows, and the
    segments of every scored recording; recording 7 is the most angry by far."""
    rng = np.random.default_rng(seed)
    rows = []
    for i in range(n_ok):
        day = DAYS[i % len(DAYS)]
        p = rng.dirichlet(np.ones(len(EMOTIONS)))
        path = str(root / "calls" / day.replace("-", "/") / f"agent{i % 3}" / f"call_{i:04d}.wav")
        rows.append({"path": path, "status": "ok", "error": None, "duration_s": 20.0 + i, "windows": 15 + i, "speech_windows": 14 + i,
                     "emotion": EMOTIONS[int(p.argmax())], "confidence": float(p.max()), **dict(zip(P, p)),
                     **{f"share_{e}": float(v) for e, v in zip(EMOTIONS, p)}, "agent": f"agent{i % 3}"})  # fmt: skip
    angry = np.full(len(EMOTIONS), 0.01)
    angry[EMOTIONS.index("angry")] = 1 - 0.01 * (len(EMOTIONS) - 1)
    if n_ok > 7:
        rows[7].update(dict(zip(P, angry)), emotion="angry", confidence=float(angry.max()))
    k = 0
    for kind, (msg, count) in ERRORS.items():
        for _ in range(count):
            path = str(root / "calls" / "2024" / "03" / "05" / f"bad_{kind}_{k}.wav")
            rows.append({"path": path, "status": "error", "error": msg.format(p=path, k=10 + 7 * k), "duration_s": None, "agent": "agent0"})
            k += 1
    df = pd.DataFrame(rows).reindex(columns=[*REPORT_COLUMNS, "agent"])
    df["model"], df["model_version"] = "ser-default", "4"
    df = df.astype({"windows": "Int64", "speech_windows": "Int64"})
    seg = [pd.DataFrame(columns=["path", "start_s", "end_s", "is_speech", "emotion", *P])]
    for r in df[df["status"] == "ok"].itertuples():
        starts = np.arange(0, r.duration_s - 2.5, 1.25)
        q = rng.dirichlet(np.ones(len(EMOTIONS)), size=len(starts)).astype(np.float32)
        s = pd.DataFrame({"path": r.path, "start_s": starts, "end_s": np.minimum(starts + 3.0, r.duration_s), "is_speech": np.arange(len(starts)) % 5 != 3})
        s["emotion"] = [EMOTIONS[j] for j in q.argmax(axis=1)]
        for j, c in enumerate(P):
            s[c] = q[:, j]
        seg.append(s)
    return df, pd.concat(seg, ignore_index=True)


def model_card(root: Path, name: str = "ser-default", version: str = "4", reliability: bool = False) -> Path:
    """A model directory with the card files report reads (config.json, metrics.json)."""
    d = root / name
    d.mkdir(parents=True)
    config = {"name": name, "model_version": version, "classes": list(EMOTIONS), "temperature": 0.6, "protocol": "holdout",
              "features": {"name": "whisper_base", "version": 2, "duration_s": 3.0, "sample_rate": 16000}, "model": {"model": "pool"},
              "versions": {"ser-batch": "0.1.0"}}  # fmt: skip
    metrics = {"n": 240, "uar": 0.7109, "accuracy": 0.7, "macro_f1": 0.6928, "weighted_f1": 0.6992, "ece": 0.1056, "ece_uncalibrated": 0.0976,
               "per_class": {e: {"recall": 0.5, "precision": 0.5, "f1": 0.5, "support": 30} for e in EMOTIONS}, "test_speakers": ["ravdess:1"]}  # fmt: skip
    if reliability:
        metrics["reliability"] = [{"confidence": c, "accuracy": c * 0.9, "count": 10} for c in (0.2, 0.4, 0.6, 0.8)]
    (d / "config.json").write_text(json.dumps(config))
    (d / "metrics.json").write_text(json.dumps(metrics))
    return d


@pytest.fixture
def written(tmp_path: Path) -> tuple[Path, Path, pd.DataFrame, Path]:
    df, seg = make_report(tmp_path)
    df.to_parquet(tmp_path / "report.parquet", index=False)
    seg.to_parquet(tmp_path / "segments.parquet", index=False)
    cards = tmp_path / "models"
    model_card(cards)
    return tmp_path / "report.parquet", tmp_path / "segments.parquet", df, cards


class Page(HTMLParser):
    """Section ids, image sources, every src/href, and the error groups' rows of a page."""

    def __init__(self, html: str) -> None:
        super().__init__()
        self.sections: list[str] = []
        self.images: list[str] = []
        self.links: list[str] = []
        self.error_rows: list[list[str]] = []
        self.scripts = 0
        self._row: list[str] | None = None
        self._cell: list[str] | None = None
        self.feed(html)

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        a = dict(attrs)
        if tag == "section":
            self.sections.append(a.get("id") or "")
        if tag == "img":
            self.images.append(a.get("src") or "")
        if tag == "script":
            self.scripts += 1
        self.links += [v for k, v in attrs if k in ("src", "href") and v]
        if tag == "tr" and a.get("class") == "error-group":
            self._row = []
        if tag == "td" and self._row is not None:
            self._cell = []

    def handle_endtag(self, tag: str) -> None:
        if tag == "td" and self._row is not None and self._cell is not None:
            self._row.append(" ".join("".join(self._cell).split()))
            self._cell = None
        if tag == "tr" and self._row is not None:
            self.error_rows.append(self._row)
            self._row = None

    def handle_data(self, data: str) -> None:
        if self._cell is not None:
            self._cell.append(data + " ")


def png_ok(src: str) -> bool:
    assert src.startswith("data:image/png;base64,"), src[:60]
    data = base64.b64decode(src.split(",", 1)[1])
    return data.startswith(b"\x89PNG\r\n\x1a\n") and len(data) > 2000


# ------------------------------------------------------------------------------------------ the page


def test_page_is_self_contained_with_every_section(written: tuple[Path, Path, pd.DataFrame, Path], tmp_path: Path) -> None:
    rep, seg, df, cards = written
    r = rp.report(rep, tmp_path / "out" / "page.html", segments=seg, recordings=6, models_dir=cards)
    html = r.out.read_text()
    page = Page(html)
    assert page.sections == ["mix", "over", "confidence", "timelines", "errors", "model"]
    assert page.scripts == 0
    assert all(src.startswith("data:image/png;base64,") for src in page.images) and all(png_ok(s) for s in page.images)
    # mix, over time, confidence, 6 timelines
    assert len(page.images) == 3 + 6
    outside = [u for u in page.links if not (u.startswith("#") or u.startswith("data:"))]
    assert outside == [], outside
    assert not re.search(r"""(?:src|href)\s*=\s*["']?\s*(?:https?:)?//""", html, re.I)
    assert "@import" not in html and "url(" not in html
    assert r.rows == len(df) and r.ok == 40 and r.errors == 9 and r.timelines == 6
    assert r.bytes == r.out.stat().st_size < 1_500_000
    assert not list(r.out.parent.glob(".tmp-*"))


def test_errors_are_grouped_by_reason_without_their_paths(written: tuple[Path, Path, pd.DataFrame, Path], tmp_path: Path) -> None:
    rep, seg, df, cards = written
    html = rp.report(rep, tmp_path / "page.html", models_dir=cards).out.read_text()
    rows = Page(html).error_rows
    assert len(rows) == len(ERRORS)
    counts = {reason.split(" e.g. ")[0]: int(n.replace(",", "")) for reason, n, _examples in rows}
    assert counts == {
        "is silent: all # windows are below the silence threshold": 4,
        "cannot be decoded (Error opening ' ': Format not recognised.)": 3,
        "is oversized: # h > # h limit (--max-hours)": 2,
    }
    assert [int(n) for _r, n, _e in rows] == [4, 3, 2]  # largest group first
    for reason, _n, examples in rows:
        assert "bad_" in examples and "bad_" in reason.split(" e.g. ")[1]  # example paths and one full message
        assert "bad_" not in reason.split(" e.g. ")[0]
    assert "9 recordings with status error in 3 groups" in html


def test_mix_counts_and_means(written: tuple[Path, Path, pd.DataFrame, Path], tmp_path: Path) -> None:
    rep, _seg, df, cards = written
    html = rp.report(rep, tmp_path / "page.html", recordings=0, models_dir=cards).out.read_text()
    ok = df[df["status"] == "ok"]
    for e in EMOTIONS:
        n = int((ok["emotion"] == e).sum())
        mean = ok[f"p_{e}"].mean()
        assert re.search(rf"{e}</td><td class=\"n\">{n}</td><td class=\"n\">[\d.]+%</td><td class=\"n\">{mean:.3f}</td>", html), e


def test_dates_are_found_in_paths(written: tuple[Path, Path, pd.DataFrame, Path], tmp_path: Path) -> None:
    rep, _seg, _df, cards = written
    html = rp.report(rep, tmp_path / "page.html", recordings=0, models_dir=cards).out.read_text()
    assert "Emotion mix over time, per day" in html
    for day in DAYS:  # and the empty days between them as empty bars
        assert f"<td>{day}</td>" in html
    assert "<td>2024-03-03</td>" in html


def test_group_by_a_column_and_a_date_pattern(written: tuple[Path, Path, pd.DataFrame, Path], tmp_path: Path) -> None:
    rep, _seg, _df, cards = written
    html = rp.report(rep, tmp_path / "g.html", recordings=0, group_by="agent", models_dir=cards).out.read_text()
    assert "Emotion mix by agent" in html and "<td>agent1</td>" in html
    # only year and month from the folders: one bar for March 2024
    html = rp.report(rep, tmp_path / "d.html", recordings=0, date_pattern=r"calls/(?P<year>\d{4})/(?P<month>\d\d)/", models_dir=cards).out.read_text()
    assert "<td>2024-03-01</td>" in html and "<td>2024-03-02</td>" not in html
    with pytest.raises(ConfigError, match="not both"):
        rp.report(rep, tmp_path / "x.html", group_by="agent", date_pattern=r"\d+")
    with pytest.raises(ConfigError, match="no such column"):
        rp.report(rep, tmp_path / "x.html", group_by="nope")
    with pytest.raises(ConfigError, match="not a regular expression"):
        rp.report(rep, tmp_path / "x.html", date_pattern="(")


def test_no_dates_says_how_to_give_them(tmp_path: Path) -> None:
    df, _seg = make_report(tmp_path / "x")
    df["path"] = [f"/calls/03-01-05-01-01-01-{i:02d}.wav" for i in range(len(df))]  # RAVDESS names are no dates
    df.to_parquet(tmp_path / "r.parquet", index=False)
    html = rp.report(tmp_path / "r.parquet", tmp_path / "page.html", recordings=0, models_dir=tmp_path).out.read_text()
    assert "no dates found in the paths" in html and "--date-pattern" in html


@pytest.mark.parametrize(
    ("path", "date"),
    [
        ("/a/2024-03-15/x.wav", "2024-03-15"), ("/a/20240315.wav", "2024-03-15"), ("/a/2024/03/15/x.wav", "2024-03-15"),
        ("/a/call_2024_03_15-1.wav", "2024-03-15"), ("/a/rec-20240315T101500.wav", "2024-03-15"), ("/a/20240315101500.wav", "2024-03-15"),
        ("/a/03-01-05-01-01-01-01.wav", None), ("/a/id1202403151.wav", None), ("/a/2024-13-01.wav", None), ("/a/x.wav", None),
    ],
)  # fmt: skip
def test_default_date_pattern(path: str, date: str | None) -> None:
    assert rp.date_keys(pa.array([path]), rp.DATE_PATTERN).to_pylist() == [date]


def test_reason_strips_path_and_numbers() -> None:
    assert rp.reason("/x/a b.wav is silent: all 12 windows are below", "/x/a b.wav") == "is silent: all # windows are below"
    assert rp.reason(None, "/x") == "(no reason given)"
    assert rp.reason("/x/y.wav: its task failed (KilledWorker: y.wav); rerun to retry", "/x/y.wav") == "its task failed (KilledWorker: ); rerun to retry"


def test_timelines_pick_the_most_confident_and_the_most_angry(written: tuple[Path, Path, pd.DataFrame, Path], tmp_path: Path) -> None:
    rep, seg, df, cards = written
    html = rp.report(rep, tmp_path / "page.html", segments=seg, recordings=3, models_dir=cards).out.read_text()
    ok = df[df["status"] == "ok"]
    blocks = re.findall(r'<div class="timeline">\s*<div><b>([^<]+)</b>.*?<span class="path">([^<]+)</span>', html, re.S)
    assert [w for w, _p in blocks] == ["most confident", "most angry", "random"]
    by_why = dict(blocks)
    assert by_why["most confident"] == ok.loc[ok["confidence"].idxmax(), "path"]
    assert by_why["most angry"] == ok.loc[ok["p_angry"].idxmax(), "path"] or ok.loc[ok["p_angry"].idxmax(), "path"] == by_why["most confident"]
    assert len(set(by_why.values())) == 3


def test_without_segments_the_page_says_how_to_get_them(written: tuple[Path, Path, pd.DataFrame, Path], tmp_path: Path) -> None:
    rep, _seg, _df, cards = written
    r = rp.report(rep, tmp_path / "page.html", models_dir=cards)
    assert r.timelines == 0 and "no segments file given" in r.out.read_text()


def test_segments_are_read_filtered_to_the_chosen_recordings(written: tuple[Path, Path, pd.DataFrame, Path], tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    rep, seg, _df, cards = written
    seen: list[int] = []
    real = plots.timeline
    monkeypatch.setattr(plots, "timeline", lambda s: seen.append(s["path"].nunique()) or real(s))
    calls: list[dict[str, object]] = []

    class Spy:
        def __init__(self, dataset: object) -> None:
            self.dataset, self.schema = dataset, dataset.schema  # type: ignore[attr-defined]

        def to_table(self, **kw: object) -> pa.Table:
            calls.append(kw)
            return self.dataset.to_table(**kw)  # type: ignore[attr-defined]

    real_open = rp.open_table
    monkeypatch.setattr(rp, "open_table", lambda path, what="report": Spy(real_open(path, what)) if what == "segments" else real_open(path, what))
    rp.report(rep, tmp_path / "page.html", segments=seg, recordings=4, models_dir=cards)
    assert seen == [1, 1, 1, 1]
    assert len(calls) == 1 and calls[0]["filter"] is not None  # one filtered read of the needed columns, never the whole file
    assert "emotion" not in calls[0]["columns"]  # type: ignore[operator]


def test_model_card_figures_and_calibration(written: tuple[Path, Path, pd.DataFrame, Path], tmp_path: Path) -> None:
    rep, _seg, _df, cards = written
    html = rp.report(rep, tmp_path / "page.html", recordings=0, models_dir=cards).out.read_text()
    for text in ("ser-default", "0.711", "0.700", "0.693", "0.106", "0.098", "whisper_base v2", "Reliability diagram: not available"):
        assert text in html, text
    other = tmp_path / "other"
    model_card(other, reliability=True, version="3")
    html = rp.report(rep, tmp_path / "page2.html", recordings=0, models_dir=other).out.read_text()
    assert 'alt="reliability diagram of ser-default"' in html
    assert "the card is version 3; this report was made with version 4" in html
    html = rp.report(rep, tmp_path / "page3.html", recordings=0, models_dir=tmp_path / "nowhere").out.read_text()
    assert "no model card" in html and "calibration not available" in html
    everyone = tmp_path / "everyone"
    d = model_card(everyone)
    (d / "metrics.json").unlink()  # protocol all: every speaker trained, so no held-out figures
    (d / "config.json").write_text((d / "config.json").read_text().replace('"holdout"', '"all"'))
    html = rp.report(rep, tmp_path / "page4.html", recordings=0, models_dir=everyone).out.read_text()
    assert "trained on every speaker" in html and "is missing or unreadable" not in html


def test_run_settings_from_schema_metadata(written: tuple[Path, Path, pd.DataFrame, Path], tmp_path: Path) -> None:
    rep, _seg, df, cards = written
    table = pa.Table.from_pandas(df, preserve_index=False)
    table = table.replace_schema_metadata({**table.schema.metadata, b"ser_batch": json.dumps({"hop_s": 0.5, "silence_db": -60}).encode()})
    import pyarrow.parquet as pq

    pq.write_table(table, tmp_path / "meta.parquet")
    html = rp.report(tmp_path / "meta.parquet", tmp_path / "page.html", recordings=0, models_dir=cards).out.read_text()
    assert "ser_batch.hop_s" in html and "0.5" in html
    html = rp.report(rep, tmp_path / "page2.html", recordings=0, models_dir=cards).out.read_text()
    assert "Not recorded in this report." in html


def test_csv_and_a_folder_of_parts(written: tuple[Path, Path, pd.DataFrame, Path], tmp_path: Path) -> None:
    rep, _seg, df, cards = written
    df.to_csv(tmp_path / "report.csv", index=False)
    parts = tmp_path / "parts"
    parts.mkdir()
    df.iloc[:20].to_parquet(parts / "part-0.parquet", index=False)
    df.iloc[20:].to_parquet(parts / "part-1.parquet", index=False)
    (parts / ".tmp-part-2.parquet").write_bytes(b"half written")  # hidden: ignored
    want = rp.report(rep, tmp_path / "a.html", recordings=0, models_dir=cards)
    for src in (tmp_path / "report.csv", parts):
        r = rp.report(src, tmp_path / "b.html", recordings=0, models_dir=cards)
        assert (r.rows, r.ok, r.errors) == (want.rows, want.ok, want.errors)


def test_refuses_what_is_not_a_report(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="does not exist"):
        rp.report(tmp_path / "none.parquet", tmp_path / "x.html")
    pd.DataFrame({"a": [1]}).to_parquet(tmp_path / "other.parquet")
    with pytest.raises(ConfigError, match=r"other\.parquet lacks the columns path, status"):
        rp.report(tmp_path / "other.parquet", tmp_path / "x.html")


def test_all_errors_and_empty_report(tmp_path: Path) -> None:
    df, _seg = make_report(tmp_path, n_ok=0)
    df.to_parquet(tmp_path / "r.parquet", index=False)
    r = rp.report(tmp_path / "r.parquet", tmp_path / "page.html", models_dir=tmp_path)
    assert (r.ok, r.errors) == (0, 9) and "No recording was scored" in r.out.read_text()
    df.iloc[:0].to_parquet(tmp_path / "empty.parquet", index=False)
    assert rp.report(tmp_path / "empty.parquet", tmp_path / "e.html", models_dir=tmp_path).rows == 0


def test_many_rows_stay_small_and_quick(tmp_path: Path) -> None:
    """200k rows: the page stays small (plots of aggregates and samples, not of rows)."""
    n = 200_000
    rng = np.random.default_rng(1)
    p = rng.dirichlet(np.ones(len(EMOTIONS)), size=n)
    df = pd.DataFrame({"path": [f"/arch/2023-{1 + i % 12:02d}-{1 + i % 28:02d}/c{i}.wav" for i in range(n)], "status": "ok", "error": None})
    df["emotion"] = np.array(EMOTIONS)[p.argmax(1)]
    df["confidence"] = p.max(1)
    for j, c in enumerate(P):
        df[c] = p[:, j]
    df["model"], df["model_version"] = "ser-default", "4"
    df.to_parquet(tmp_path / "big.parquet", index=False)
    r = rp.report(tmp_path / "big.parquet", tmp_path / "big.html", models_dir=tmp_path)
    assert r.rows == n and r.bytes < 600_000
    assert "over time, per week" in r.out.read_text()


def test_cli_report(written: tuple[Path, Path, pd.DataFrame, Path], tmp_path: Path) -> None:
    rep, seg, _df, cards = written
    out = tmp_path / "cli.html"
    res = CliRunner().invoke(app, ["report", str(rep), "--segments", str(seg), "--out", str(out), "--recordings", "2", "--models", str(cards)])
    assert res.exit_code == 0, res.output
    assert re.fullmatch(r"49 recordings \(40 ok, 9 errors\), 2 timelines -> .*cli\.html \(\d+ kB, [\d.]+ s\)\n", res.stdout)
    res = CliRunner().invoke(app, ["report", str(tmp_path / "nope.parquet"), "--out", str(out)])
    assert res.exit_code == 2 and "does not exist" in res.stderr


def test_cli_recordings_default_is_the_apis() -> None:
    import inspect

    from ser_batch import cli

    assert inspect.signature(cli.report_command).parameters["recordings"].default == rp.RECORDINGS
    assert inspect.signature(rp.report).parameters["recordings"].default == rp.RECORDINGS


# ------------------------------------------------------------------------------------------ how it looks


def _chromium() -> str | None:
    return next((p for p in map(shutil.which, ("chromium", "chromium-browser", "google-chrome", "google-chrome-stable")) if p), None)


@pytest.mark.skipif(_chromium() is None, reason="no chromium installed (only for looking at the page)")
def test_headless_screenshot_is_not_blank(written: tuple[Path, Path, pd.DataFrame, Path], tmp_path: Path) -> None:
    from PIL import Image

    rep, seg, _df, cards = written
    page = rp.report(rep, tmp_path / "page.html", segments=seg, models_dir=cards).out
    shot = tmp_path / "shot.png"
    cmd = [_chromium(), "--headless", "--no-sandbox", "--disable-gpu", "--hide-scrollbars", f"--screenshot={shot}", "--window-size=1200,3000", page.resolve().as_uri()]
    subprocess.run(cmd, capture_output=True, timeout=120, check=False)
    assert shot.is_file() and shot.stat().st_size > 50_000
    img = np.asarray(Image.open(shot).convert("RGB"))
    assert img.shape[:2] == (3000, 1200)
    colours = len(np.unique(img.reshape(-1, 3)[::7], axis=0))
    assert colours > 200  # text, plots and the emotion colours, not a blank or error page
    assert (img.min(axis=2) < 100).mean() > 0.01  # some ink
