"""Inputs given as folders, audio files and list files (.txt/.lst, .csv, .parquet), read as a stream."""

from __future__ import annotations

import inspect
import itertools
import os
import sys
import tracemalloc
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from ser_batch.corpora import Labels
from ser_batch.errors import ConfigError, CorpusError
from ser_batch.inputs import iter_listed, iter_paths


def paths(inputs: list, errors: list | None = None) -> list[str]:
    sink = errors if errors is not None else []
    return list(iter_paths(inputs, lambda p, why: sink.append((p, why))))


def touch(*files: Path) -> None:
    for f in files:
        f.parent.mkdir(parents=True, exist_ok=True)
        f.write_bytes(b"")


def test_folder_and_audio_file(tmp_path: Path) -> None:
    touch(tmp_path / "d" / "b.wav", tmp_path / "d" / "sub" / "a.FLAC", tmp_path / "d" / ".hidden.wav", tmp_path / "d" / "notes.txt", tmp_path / "one.mp3")
    got = paths([tmp_path / "d", str(tmp_path / "one.mp3")])
    assert got == [str(tmp_path / "d" / "b.wav"), str(tmp_path / "d" / "sub" / "a.FLAC"), str(tmp_path / "one.mp3")]


def test_relative_inputs_become_absolute(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    touch(tmp_path / "d" / "x.wav")
    (tmp_path / "l.txt").write_text("d/x.wav\n")
    monkeypatch.chdir(tmp_path)
    assert paths(["d", "l.txt"]) == [str(tmp_path / "d" / "x.wav")]  # and named twice: listed once


def test_txt_list_with_comments_blank_lines_and_relative_paths(tmp_path: Path) -> None:
    lists = tmp_path / "lists"
    lists.mkdir()
    (lists / "a.txt").write_text(
        "# recordings of day 1\n"
        "\n"
        "rec1.wav\n"
        "  sub/rec2.flac  \n"
        "   # an indented comment\n"
        "../up.wav\r\n"
        "/abs/elsewhere.ogg\n"
        "missing/but listed.wav\n"
    )
    (lists / "b.LST").write_text("c.wav")  # no final newline
    assert paths([lists / "a.txt", lists / "b.LST"]) == [
        str(lists / "rec1.wav"),
        str(lists / "sub" / "rec2.flac"),
        str(tmp_path / "up.wav"),
        "/abs/elsewhere.ogg",
        str(lists / "missing" / "but listed.wav"),  # listed paths are not checked: the worker reports them
        str(lists / "c.wav"),
    ]


def test_txt_list_keeps_non_utf8_names(tmp_path: Path) -> None:
    (tmp_path / "l.txt").write_bytes(b"caf\xe9.wav\n")
    (got,) = paths([tmp_path / "l.txt"])
    assert os.fsencode(got) == os.fsencode(str(tmp_path)) + b"/caf\xe9.wav"


def test_csv_list_with_a_path_column(tmp_path: Path) -> None:
    """A corpus manifest path,label[,speaker] is also a list of paths (only the path column is read)."""
    (tmp_path / "m.csv").write_text('\ufefflabel,PATH,speaker\nangry,a.wav,s1\nsad,"b, c.wav",s2\nneutral,,s3\nhappy,/abs/d.wav,\n')
    assert paths([tmp_path / "m.csv"]) == [str(tmp_path / "a.wav"), str(tmp_path / "b, c.wav"), "/abs/d.wav"]


def test_csv_list_without_a_path_column_reads_the_first(tmp_path: Path) -> None:
    (tmp_path / "m.csv").write_text("file,duration\nx/a.wav,3.5\n b.wav ,1\n")
    assert paths([tmp_path / "m.csv"]) == [str(tmp_path / "x" / "a.wav"), str(tmp_path / "b.wav")]


def test_csv_list_without_a_header_is_refused(tmp_path: Path) -> None:
    """Reading its first path as a header would drop it silently."""
    (tmp_path / "m.csv").write_text("a.wav\nb.wav\n")
    with pytest.raises(ConfigError, match=r"m\.csv: the first row 'a\.wav' looks like a path.*header row 'path'.*\.txt"):
        paths([tmp_path / "m.csv"])
    (tmp_path / "e.csv").write_text("")
    with pytest.raises(ConfigError, match=r"e\.csv: empty CSV"):
        paths([tmp_path / "e.csv"])


def test_malformed_csv_names_the_file(tmp_path: Path) -> None:
    (tmp_path / "m.csv").write_text("path,label\na.wav,x\nb.wav,y,z,w\n")
    with pytest.raises(ConfigError, match=r"m\.csv: malformed CSV"):
        paths([tmp_path / "m.csv"])


def test_parquet_list(tmp_path: Path) -> None:
    table = pa.table({"speaker": ["s1", "s2", "s3", "s4"], "path": ["a.wav", None, "sub/b.wav", "/abs/c.wav"]})
    pq.write_table(table, tmp_path / "l.parquet", row_group_size=2)
    assert paths([tmp_path / "l.parquet"]) == [str(tmp_path / "a.wav"), str(tmp_path / "sub" / "b.wav"), "/abs/c.wav"]


def test_parquet_list_needs_a_text_path_column(tmp_path: Path) -> None:
    pq.write_table(pa.table({"file": ["a.wav"]}), tmp_path / "n.parquet")
    with pytest.raises(ConfigError, match=r"n\.parquet: no path column \(columns: file\); name the column of paths 'path'"):
        paths([tmp_path / "n.parquet"])
    pq.write_table(pa.table({"path": [1, 2]}), tmp_path / "i.parquet")
    with pytest.raises(ConfigError, match=r"i\.parquet: column 'path' holds int64, not text"):
        paths([tmp_path / "i.parquet"])


def test_missing_input_raises_before_anything_is_yielded(tmp_path: Path) -> None:
    touch(tmp_path / "a.wav")
    with pytest.raises(ConfigError, match=r"nowhere\.txt: no such file or folder; give folders, audio files or lists"):
        iter_paths([tmp_path / "a.wav", tmp_path / "nowhere.txt"], lambda p, why: None)


def test_other_files_and_dangling_links_are_recordings(tmp_path: Path) -> None:
    """Any file that is not a list is a recording, as score took it so far; the worker reports what it is not."""
    touch(tmp_path / "x.m4a")
    (tmp_path / "gone.wav").symlink_to(tmp_path / "nothing.wav")
    assert paths([tmp_path / "x.m4a", tmp_path / "gone.wav"]) == [str(tmp_path / "x.m4a"), str(tmp_path / "gone.wav")]


@pytest.mark.skipif(os.geteuid() == 0, reason="root lists any folder")
def test_unlistable_folder_goes_to_on_error(tmp_path: Path) -> None:
    touch(tmp_path / "d" / "ok.wav", tmp_path / "d" / "locked" / "x.wav")
    (tmp_path / "d" / "locked").chmod(0)
    try:
        errors: list = []
        assert paths([tmp_path / "d"], errors) == [str(tmp_path / "d" / "ok.wav")]
        assert errors and errors[0][0] == str(tmp_path / "d" / "locked") and "cannot list folder" in errors[0][1]
    finally:
        (tmp_path / "d" / "locked").chmod(0o755)


# ---------------------------------------------------------------- streaming

N = 100_000


def test_a_long_txt_list_is_read_lazily(tmp_path: Path) -> None:
    """The first paths come before the rest of the file is read: rewriting its end afterwards shows in the output."""
    lst = tmp_path / "big.txt"
    lst.write_text("".join(f"r/{i:07d}.wav\n" for i in range(N)))
    gen = iter_paths([lst], lambda p, why: None)
    assert inspect.isgenerator(gen)
    assert list(itertools.islice(gen, 3)) == [str(tmp_path / "r" / f"{i:07d}.wav") for i in range(3)]
    with open(lst, "r+b") as fh:  # same length, so earlier offsets stay put
        fh.seek(-len(b"r/0099999.wav\n"), os.SEEK_END)
        fh.write(b"z/9999999.wav\n")
    rest = list(gen)
    assert len(rest) == N - 3 and rest[-1] == str(tmp_path / "z" / "9999999.wav")


@pytest.mark.parametrize("kind", ["txt", "csv", "parquet"])
def test_a_long_list_never_becomes_a_big_python_structure(tmp_path: Path, kind: str) -> None:
    """Consuming 100k paths one by one keeps Python's peak far below the ~13 MB a list of them would take: what
    stays is 8 bytes a path (`inputs.distinct`'s hashes), and one copy of them while a merge runs, beside a chunk."""
    lst = tmp_path / f"big.{kind}"
    names = (f"recordings/day{i // 1000:03d}/{i:07d}.wav" for i in range(N))
    if kind == "txt":
        lst.write_text("".join(f"{n}\n" for n in names))
    elif kind == "csv":
        lst.write_text("path,label\n" + "".join(f"{n},neutral\n" for n in names))
    else:
        pq.write_table(pa.table({"path": list(names)}), lst, row_group_size=20_000)
    gen = iter_paths([lst], lambda p, why: None)
    tracemalloc.start()
    try:
        count = sum(1 for _ in gen)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert count == N
    whole = N * sys.getsizeof(str(tmp_path / "recordings" / "day099" / "0099999.wav"))  # a list of them: ~13 MB
    assert peak < 2 * 8 * N + whole / 5, f"peak {peak / 1e6:.1f} MB streaming {N} paths (a list of them: {whole / 1e6:.1f} MB)"


# ---------------------------------------------------------------- iter_listed: what extract reads


def test_iter_listed_gives_paths_and_a_csv_with_labels_is_a_manifest(tmp_path: Path) -> None:
    rav, take, odd = tmp_path / "c" / "Actor_01" / "03-01-05-01-01-01-01.wav", tmp_path / "c" / "angry" / "take.wav", tmp_path / "c" / "odd.wav"
    touch(rav, take, odd)
    (tmp_path / "list.csv").write_text("path,note\nc/angry/take.wav,x\nc/gone.wav,y\n")  # no label column: a path list
    (tmp_path / "manifest.csv").write_text("path,LABEL,speaker\nc/odd.wav,sad,s9\n")
    got = list(iter_listed([tmp_path / "list.csv", tmp_path / "manifest.csv", tmp_path / "c"]))
    assert [p for p, _ in got] == [str(take), str(tmp_path / "c" / "gone.wav"), str(odd), str(rav)]  # take and odd once
    assert [labels for _, labels in got[:2]] == [None] * 2 and got[3][1] is None  # labelled by the worker, which also finds gone.wav gone
    manifest = got[2][1]
    assert isinstance(manifest, Labels) and (manifest.corpus, manifest.speaker, manifest.label) == ("generic", "generic:s9", "sad")
    assert manifest.fields["line"] == "2"


def test_iter_listed_checks_inputs_and_manifests_before_any_path(tmp_path: Path) -> None:
    touch(tmp_path / "a.wav")
    with pytest.raises(ConfigError, match=r"nowhere\.txt: no such file or folder"):
        iter_listed([tmp_path / "a.wav", tmp_path / "nowhere.txt"])
    (tmp_path / "m.csv").write_text("path,label\na.wav,boredom\n")
    with pytest.raises(CorpusError, match=r"m\.csv: line 2: label 'boredom'"):
        iter_listed([tmp_path / "a.wav", tmp_path / "m.csv"])



def test_a_recording_named_twice_is_listed_once_by_iter_paths_and_iter_listed(tmp_path: Path) -> None:
    """A folder inside another, a folder given twice, a file named again in a list or a manifest: each recording
    once, where it came first (with the labels it had there)."""
    (tmp_path / "d" / "e").mkdir(parents=True)
    for name in ("a.wav", "d/b.wav", "d/e/c.wav"):
        touch(tmp_path / name)
    (tmp_path / "l.txt").write_text("a.wav\nd/e/c.wav\na.wav\n")
    (tmp_path / "m.csv").write_text("path,label\nd/b.wav,angry\na.wav,sad\n")
    every = [str(tmp_path / n) for n in ("d/e/c.wav", "d/b.wav", "a.wav")]
    for twice in ([tmp_path / "d" / "e", tmp_path / "d"], [tmp_path / "d" / "e", tmp_path / "d" / ".." / "d"]):
        assert list(iter_paths(twice, _no_error)) == every[:2]
        assert [p for p, _ in iter_listed(twice)] == every[:2]
    assert list(iter_paths([tmp_path / "d", tmp_path / "l.txt", tmp_path / "m.csv"], _no_error)) == [every[1], every[0], every[2]]
    listed = list(iter_listed([tmp_path / "m.csv", tmp_path / "l.txt", tmp_path / "d"]))
    assert [p for p, _ in listed] == [every[1], every[2], every[0]]
    assert listed[1][1] is not None and listed[1][1].label == "sad", "the manifest came first: its labels stay"


def _no_error(path: str, why: str) -> None:
    raise AssertionError(f"{path}: {why}")


def test_iter_listed_reports_a_folder_it_cannot_list_in_line(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import ser_batch.inputs as inputs

    def walk(root: str, on_error):  # type: ignore[no-untyped-def]
        on_error(os.path.join(root, "locked"), "locked: cannot list folder: Permission denied")
        yield os.path.join(root, "angry", "ok.wav")

    (tmp_path / "d").mkdir()
    (tmp_path / "f").mkdir()
    monkeypatch.setattr(inputs, "walk_audio", walk)
    got = list(iter_listed([tmp_path / "d", tmp_path / "f"]))
    assert [p for p, _ in got] == [str(tmp_path / d / f) for d in ("d", "f") for f in ("locked", "angry/ok.wav")]
    assert got[0][1] == "locked: cannot list folder: Permission denied" and got[1][1] is None
