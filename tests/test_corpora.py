"""Tests of ser_batch.corpora: file-name parsing per corpus, detection, manifests and discovery."""

from __future__ import annotations

import os
import pickle
from collections import Counter
from pathlib import Path

import pytest

from ser_batch.corpora import (
    AUDIO_EXTENSIONS,
    CORPORA,
    CatalogEntry,
    CatalogFailure,
    Corpus,
    Labels,
    detect,
    discover,
    parse,
    read_manifest,
)
from ser_batch.corpora import cremad, emodb, generic, ravdess, savee, tess
from ser_batch.errors import CorpusError, SerBatchError
from ser_batch.labels import EMOTIONS

SHARED_DATA = Path(__file__).parents[1].parent / "shared" / "data"


def touch(path: Path) -> Path:
    """Create an empty file (and its folders)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(b"")
    return path


# --------------------------------------------------------------------------- interface and tables


def test_corpora_order_and_protocol() -> None:
    assert list(CORPORA) == [
        "ravdess", "cremad", "tess", "savee", "emodb", "ased", "nemo", "urdu", "turevdb", "emotiontts_kor", "generic"
    ]
    for name, corpus in CORPORA.items():
        assert corpus.name == name
        assert isinstance(corpus, Corpus)
    assert AUDIO_EXTENSIONS == (".wav", ".flac", ".ogg", ".mp3")


@pytest.mark.parametrize("module", [ravdess, cremad, tess, savee, emodb, generic])
def test_label_tables_map_onto_emotions(module: object) -> None:
    table = module.LABEL_TABLE  # type: ignore[attr-defined]
    assert isinstance(table, dict) and table
    assert {v for v in table.values() if v is not None} <= set(EMOTIONS)
    assert module.__doc__ is not None and "label table" in module.__doc__.lower()


@pytest.mark.parametrize(
    ("corpus", "missing"),
    [
        ("ravdess", set()),
        ("cremad", {"calm", "surprised"}),
        ("tess", {"calm"}),
        ("savee", {"calm"}),
        ("emodb", {"calm", "surprised"}),
    ],
)
def test_corpus_labels(corpus: str, missing: set[str]) -> None:
    labels = CORPORA[corpus].labels
    assert isinstance(labels, frozenset)
    assert labels == set(EMOTIONS) - missing


def test_generic_labels_unknown() -> None:
    assert CORPORA["generic"].labels is None


def test_generic_table_covers_every_emotion() -> None:
    assert set(generic.LABEL_TABLE.values()) == set(EMOTIONS)
    for emotion in EMOTIONS:
        assert generic.LABEL_TABLE[emotion] == emotion


def test_labels_validation_and_pickle() -> None:
    labels = Labels("tess", "tess:OAF", "angry", {"word": "back"})
    assert pickle.loads(pickle.dumps(labels)) == labels
    assert hash(labels) == hash(Labels("tess", "tess:OAF", "angry", {"word": "back"}))
    with pytest.raises(ValueError):
        Labels("tess", "tess:OAF", "bored", {})
    with pytest.raises(ValueError):
        Labels("tess", "OAF", "angry", {})


def test_corpus_error_is_ser_batch_error() -> None:
    assert issubclass(CorpusError, SerBatchError)


# --------------------------------------------------------------------------- RAVDESS


@pytest.mark.parametrize(
    ("code", "label"),
    [("01", "neutral"), ("02", "calm"), ("03", "happy"), ("04", "sad"),
     ("05", "angry"), ("06", "fearful"), ("07", "disgust"), ("08", "surprised")],
)
def test_ravdess_every_emotion(code: str, label: str) -> None:
    labels = parse(Path(f"Actor_12/03-01-{code}-01-02-01-12.wav"))
    assert labels.corpus == "ravdess"
    assert labels.label == label
    assert labels.speaker == "ravdess:12"


def test_ravdess_fields_and_song() -> None:
    labels = ravdess.RAVDESS.parse(Path("/x/01-02-03-02-01-02-05.FLAC"))
    assert labels.speaker == "ravdess:5"
    assert labels.label == "happy"
    assert dict(labels.fields) == {
        "modality": "full-AV",
        "vocal_channel": "song",
        "intensity": "strong",
        "statement": "01",
        "repetition": "02",
    }
    assert parse(Path("02-01-01-01-01-01-24.mp4")).fields["modality"] == "video-only"
    assert parse(Path("03-01-01-01-01-01-01.wav")).fields["modality"] == "audio-only"


@pytest.mark.parametrize(
    ("name", "problem"),
    [
        ("03-01-09-01-01-01-01.wav", "emotion 09"),
        ("03-01-00-01-01-01-01.wav", "emotion 00"),
        ("04-01-01-01-01-01-01.wav", "modality 04"),
        ("03-03-01-01-01-01-01.wav", "vocal channel 03"),
        ("03-01-01-03-01-01-01.wav", "intensity 03"),
        ("03-01-01-01-03-01-01.wav", "statement 03"),
        ("03-01-01-01-01-03-01.wav", "repetition 03"),
        ("03-01-01-01-01-01-25.wav", "actor 25"),
        ("03-01-01-01-01-01-00.wav", "actor 00"),
    ],
)
def test_ravdess_bad_fields(name: str, problem: str) -> None:
    with pytest.raises(CorpusError, match=problem) as info:
        parse(Path(name))
    assert name in str(info.value)


def test_ravdess_wrong_shape_not_matched() -> None:
    for name in ("03-01-05-01-02-01.wav", "03-01-05-01-02-01-12-01.wav", "3-1-5-1-2-1-12.wav", "03_01_05_01_02_01_12.wav"):
        assert not ravdess.RAVDESS.match(Path(name))


# --------------------------------------------------------------------------- CREMA-D


@pytest.mark.parametrize(
    ("code", "label"),
    [("ANG", "angry"), ("DIS", "disgust"), ("FEA", "fearful"), ("HAP", "happy"), ("NEU", "neutral"), ("SAD", "sad")],
)
def test_cremad_every_emotion(code: str, label: str) -> None:
    labels = parse(Path(f"AudioWAV/1001_DFA_{code}_XX.wav"))
    assert (labels.corpus, labels.label, labels.speaker) == ("cremad", label, "cremad:1001")
    assert dict(labels.fields) == {"sentence": "DFA", "level": "XX"}


@pytest.mark.parametrize("level", ["LO", "MD", "HI", "XX", "X"])
def test_cremad_levels(level: str) -> None:
    assert parse(Path(f"1091_IEO_HAP_{level}.wav")).fields["level"] == level


@pytest.mark.parametrize(
    ("name", "problem"),
    [
        ("1000_DFA_ANG_XX.wav", "speaker 1000"),
        ("1092_DFA_ANG_XX.wav", "speaker 1092"),
        ("1001_DFA_SUR_XX.wav", "emotion SUR"),
        ("1001_DFA_ANG_LL.wav", "level LL"),
    ],
)
def test_cremad_bad_fields(name: str, problem: str) -> None:
    with pytest.raises(CorpusError, match=problem):
        parse(Path(name))


# --------------------------------------------------------------------------- TESS


@pytest.mark.parametrize(
    ("token", "label"),
    [("angry", "angry"), ("disgust", "disgust"), ("fear", "fearful"), ("happy", "happy"),
     ("neutral", "neutral"), ("ps", "surprised"), ("sad", "sad")],
)
def test_tess_every_emotion(token: str, label: str) -> None:
    labels = parse(Path(f"tess/YAF_x/YAF_back_{token}.wav"))
    assert (labels.corpus, labels.label, labels.speaker) == ("tess", label, "tess:YAF")
    assert labels.fields["word"] == "back"


def test_tess_typo_speaker() -> None:
    labels = parse(Path("OAF_neutral/OA_bite_neutral.wav"))
    assert labels.speaker == "tess:OAF"
    assert labels.label == "neutral"
    assert labels.fields["word"] == "bite"


@pytest.mark.parametrize(
    ("folder", "name", "label"),
    [
        ("OAF_Fear", "OAF_back_fear.wav", "fearful"),
        ("OAF_Pleasant_surprise", "OAF_back_ps.wav", "surprised"),
        ("YAF_pleasant_surprised", "YAF_back_ps.wav", "surprised"),
        ("angry", "OAF_back_sad.wav", "sad"),  # the file name wins over any folder
    ],
)
def test_tess_uses_file_name_not_folder(folder: str, name: str, label: str) -> None:
    labels = parse(Path(folder) / name)
    assert labels.corpus == "tess"
    assert labels.label == label


def test_tess_unknown_emotion() -> None:
    with pytest.raises(CorpusError, match="TESS emotion 'bored'"):
        parse(Path("OAF_back_bored.wav"))


# --------------------------------------------------------------------------- SAVEE


@pytest.mark.parametrize(
    ("code", "label"),
    [("a", "angry"), ("d", "disgust"), ("f", "fearful"), ("h", "happy"),
     ("n", "neutral"), ("sa", "sad"), ("su", "surprised")],
)
def test_savee_every_emotion(code: str, label: str) -> None:
    labels = parse(Path(f"ALL/JK_{code}15.wav"))
    assert (labels.corpus, labels.label, labels.speaker) == ("savee", label, "savee:JK")
    assert labels.fields["sentence"] == f"{code}15"


@pytest.mark.parametrize("speaker", ["DC", "JE", "JK", "KL"])
def test_savee_speakers_and_folder_layout(speaker: str) -> None:
    assert parse(Path(f"{speaker}_n30.wav")).speaker == f"savee:{speaker}"
    folder = parse(Path(f"AudioData/{speaker}/sa01.wav"))
    assert (folder.corpus, folder.label, folder.speaker) == ("savee", "sad", f"savee:{speaker}")


def test_savee_folder_layout_needs_speaker_folder() -> None:
    assert not savee.SAVEE.match(Path("AudioData/XX/a01.wav"))
    assert detect(Path("AudioData/XX/a01.wav")) is None
    with pytest.raises(CorpusError, match="not a SAVEE name"):
        savee.SAVEE.parse(Path("AudioData/dc/a01.wav"))


def test_savee_bad_number_and_speaker() -> None:
    with pytest.raises(CorpusError, match="sentence number 31"):
        parse(Path("DC_a31.wav"))
    with pytest.raises(CorpusError, match="sentence number 00"):
        parse(Path("DC/a00.wav"))
    assert not savee.SAVEE.match(Path("XY_a01.wav"))
    assert not savee.SAVEE.match(Path("DC_x01.wav"))


# --------------------------------------------------------------------------- EmoDB


@pytest.mark.parametrize(
    ("letter", "label"),
    [("W", "angry"), ("E", "disgust"), ("A", "fearful"), ("F", "happy"), ("T", "sad"), ("N", "neutral")],
)
def test_emodb_every_emotion(letter: str, label: str) -> None:
    labels = parse(Path(f"wav/03a01{letter}a.wav"))
    assert (labels.corpus, labels.label, labels.speaker) == ("emodb", label, "emodb:03")
    assert dict(labels.fields) == {"text": "a01", "version": "a"}


def test_emodb_speakers_and_texts() -> None:
    for speaker in sorted(emodb.SPEAKERS):
        for text in sorted(emodb.TEXTS):
            assert parse(Path(f"{speaker}{text}Nc.wav")).speaker == f"emodb:{speaker}"


def test_emodb_boredom_is_left_out() -> None:
    assert emodb.LABEL_TABLE["L"] is None
    with pytest.raises(
        CorpusError, match=r"EmoDB boredom \(L\) has no label among the 8 emotions; the file is left out"
    ) as info:
        parse(Path("03a01La.wav"))
    assert "03a01La.wav" in str(info.value)


@pytest.mark.parametrize(("name", "problem"), [("04a01Fa.wav", "speaker 04"), ("03a03Fa.wav", "text a03")])
def test_emodb_bad_fields(name: str, problem: str) -> None:
    with pytest.raises(CorpusError, match=problem):
        parse(Path(name))


# --------------------------------------------------------------------------- generic folder layout


@pytest.mark.parametrize(
    ("folder", "label"),
    [
        ("neutral", "neutral"), ("Calm", "calm"), ("happiness", "happy"), ("HAPPY", "happy"),
        ("Sadness", "sad"), ("anger", "angry"), ("angry", "angry"), ("fear", "fearful"),
        ("fearful", "fearful"), ("disgusted", "disgust"), ("surprise", "surprised"), ("ps", "surprised"),
        ("Pleasant Surprise", "surprised"), ("pleasant-surprised", "surprised"),
    ],
)
def test_generic_folder(folder: str, label: str) -> None:
    path = Path("clips") / folder / "take3.wav"
    assert detect(path) is generic.GENERIC
    labels = parse(path)
    assert (labels.corpus, labels.label, labels.speaker) == ("generic", label, "generic:?")
    assert labels.fields["folder"] == folder


@pytest.mark.parametrize("folder", ["boredom", "contempt", "Actor_01", "OAF_angry", "clips", ""])
def test_generic_does_not_guess(folder: str) -> None:
    path = Path(folder) / "take3.wav"
    assert not generic.GENERIC.match(path)
    assert detect(path) is None
    with pytest.raises(CorpusError, match="no known corpus layout matches take3.wav; use --corpus"):
        parse(path)
    with pytest.raises(CorpusError, match="is not a label name"):
        parse(path, corpus="generic")


# --------------------------------------------------------------------------- detection


SAMPLES: dict[str, str] = {
    "ravdess": "Actor_01/03-01-05-01-02-01-12.wav",
    "cremad": "1001_DFA_ANG_XX.wav",
    "tess": "OAF_angry/OAF_back_angry.wav",
    "savee": "DC_a01.wav",
    "emodb": "03a01Fa.wav",
    "generic": "angry/take1.wav",
}


def test_detection_is_exclusive() -> None:
    for name, sample in SAMPLES.items():
        matching = [c.name for c in CORPORA.values() if c.match(Path(sample))]
        assert matching == [name], sample
        assert detect(Path(sample)) is CORPORA[name]
        assert parse(Path(sample)).corpus == name


def test_savee_folder_layout_is_exclusive() -> None:
    sample = Path("AudioData/DC/a01.wav")
    assert [c.name for c in CORPORA.values() if c.match(sample)] == ["savee"]


def test_detection_order_prefers_named_layouts_over_generic_folder() -> None:
    for name, sample in SAMPLES.items():
        if name in ("generic",):
            continue
        inside_label_folder = Path("angry") / Path(sample).name
        assert detect(inside_label_folder) is CORPORA[name]
    # a RAVDESS-shaped name with a bad field inside a label folder is a failure, not a generic guess
    with pytest.raises(CorpusError, match="RAVDESS emotion 09"):
        parse(Path("happy/03-01-09-01-01-01-01.wav"))


@pytest.mark.parametrize("name", ["readme.wav", "03a01Fa_copy.wav", "song.mp3", "1001_DFA_ANG.wav"])
def test_unknown_layout(name: str) -> None:
    assert detect(Path(name)) is None
    with pytest.raises(CorpusError, match="no known corpus layout matches"):
        parse(Path(name))


@pytest.mark.parametrize("forced", list(SAMPLES))
def test_forced_corpus_mismatch_raises(forced: str) -> None:
    assert parse(Path(SAMPLES[forced]), corpus=forced).corpus == forced
    for name, sample in SAMPLES.items():
        if name == forced:
            continue
        with pytest.raises(CorpusError) as info:
            parse(Path(sample), corpus=forced)
        assert Path(sample).name in str(info.value)


def test_forced_generic_mismatch() -> None:
    with pytest.raises(CorpusError, match="'Actor_01' is not a label name"):
        parse(Path(SAMPLES["ravdess"]), corpus="generic")


def test_unknown_corpus_name_lists_known() -> None:
    known = "ravdess, cremad, tess, savee, emodb, ased, nemo, urdu, turevdb, emotiontts_kor, generic"
    with pytest.raises(CorpusError, match=f"unknown corpus 'iemocap'.*{known}"):
        parse(Path("x.wav"), corpus="iemocap")
    with pytest.raises(CorpusError, match="unknown corpus"):
        discover([], corpus="iemocap")


# --------------------------------------------------------------------------- CSV manifest


def test_manifest_relative_and_absolute_paths(tmp_path: Path) -> None:
    other = touch(tmp_path / "elsewhere" / "b.wav")
    (tmp_path / "sets").mkdir()
    csv_path = tmp_path / "sets" / "list.csv"
    csv_path.write_text(
        "\ufeffPath, Label ,speaker,notes\n"
        "../clips/a.wav,Anger,spk1,x\n"
        f"{other},happiness,,y\n"
        "\n"
        "c.flac,ps\n",
        encoding="utf-8",
    )
    rows = read_manifest(csv_path)
    assert [p for p, _ in rows] == [tmp_path / "clips" / "a.wav", other, tmp_path / "sets" / "c.flac"]
    assert all(p.is_absolute() for p, _ in rows)
    assert [(lab.label, lab.speaker) for _, lab in rows] == [
        ("angry", "generic:spk1"),
        ("happy", "generic:?"),
        ("surprised", "generic:?"),
    ]
    assert rows[2][1].fields["line"] == "5"
    assert all(lab.corpus == "generic" for _, lab in rows)


def test_manifest_relative_to_relative_csv(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    (tmp_path / "m").mkdir()
    (tmp_path / "m" / "list.csv").write_text("path,label\na.wav,sad\n")
    monkeypatch.chdir(tmp_path)
    [(path, labels)] = read_manifest(Path("m/list.csv"))
    assert path == tmp_path / "m" / "a.wav"
    assert labels.label == "sad"


@pytest.mark.parametrize(
    ("text", "problem"),
    [
        ("", "manifest is empty"),
        ("path,speaker\na.wav,s1\n", "line 1: header has no label column"),
        ("file,label\na.wav,sad\n", "line 1: header has no path column"),
        ("a.wav,sad\nb.wav,happy\n", "line 1: header has no path and label column"),
        ("path,label\na.wav,sad\nb.wav,bored\n", "line 3: label 'bored' is not one of"),
        ("path,label\na.wav\n", "line 2: no label for 'a.wav'"),
        ("path,label\n,sad\n", "line 2: empty path"),
        ("path,label\na.wav,sad\n./a.wav,happy\n", "line 3: './a.wav' is already listed on line 2"),
    ],
)
def test_manifest_errors(tmp_path: Path, text: str, problem: str) -> None:
    csv_path = tmp_path / "list.csv"
    csv_path.write_text(text)
    with pytest.raises(CorpusError) as info:
        read_manifest(csv_path)
    message = str(info.value)
    assert str(csv_path) in message
    assert problem in message


def test_manifest_not_utf8_and_missing(tmp_path: Path) -> None:
    csv_path = tmp_path / "list.csv"
    csv_path.write_bytes(b"path,label\n\xff.wav,sad\n")
    with pytest.raises(CorpusError, match="not UTF-8"):
        read_manifest(csv_path)
    with pytest.raises(CorpusError, match="cannot read manifest"):
        read_manifest(tmp_path / "nope.csv")


# --------------------------------------------------------------------------- discover


def make_mixed_tree(root: Path) -> None:
    touch(root / "ravdess" / "Actor_01" / "03-01-05-01-02-01-01.wav")
    touch(root / "ravdess" / "Actor_01" / "03-01-01-01-01-01-01.FLAC")
    touch(root / "tess" / "OAF_Fear" / "OAF_back_fear.wav")
    touch(root / "tess" / "OAF_neutral" / "OA_bite_neutral.ogg")
    touch(root / "cremad" / "1001_DFA_ANG_XX.mp3")
    touch(root / "emodb" / "03a01Fa.wav")
    touch(root / "emodb" / "03a01La.wav")  # boredom -> failure
    touch(root / "savee" / "DC" / "su02.wav")
    touch(root / "mine" / "Happiness" / "take1.wav")
    touch(root / "mine" / "misc" / "mystery.wav")  # unparseable -> failure
    touch(root / "mine" / "misc" / "notes.txt")  # not audio -> ignored
    touch(root / "mine" / "misc" / ".03-01-05-01-02-01-02.wav")  # hidden -> skipped
    touch(root / ".cache" / "03-01-05-01-02-01-03.wav")  # hidden folder -> skipped


def test_discover_mixed_tree(tmp_path: Path) -> None:
    make_mixed_tree(tmp_path)
    entries, failures = discover([tmp_path])
    assert all(isinstance(e, CatalogEntry) for e in entries)
    assert all(isinstance(f, CatalogFailure) for f in failures)
    got = {e.path.relative_to(tmp_path).as_posix(): (e.labels.corpus, e.labels.label, e.labels.speaker) for e in entries}
    assert got == {
        "ravdess/Actor_01/03-01-05-01-02-01-01.wav": ("ravdess", "angry", "ravdess:1"),
        "ravdess/Actor_01/03-01-01-01-01-01-01.FLAC": ("ravdess", "neutral", "ravdess:1"),
        "tess/OAF_Fear/OAF_back_fear.wav": ("tess", "fearful", "tess:OAF"),
        "tess/OAF_neutral/OA_bite_neutral.ogg": ("tess", "neutral", "tess:OAF"),
        "cremad/1001_DFA_ANG_XX.mp3": ("cremad", "angry", "cremad:1001"),
        "emodb/03a01Fa.wav": ("emodb", "happy", "emodb:03"),
        "savee/DC/su02.wav": ("savee", "surprised", "savee:DC"),
        "mine/Happiness/take1.wav": ("generic", "happy", "generic:?"),
    }
    assert [e.path for e in entries] == sorted(e.path for e in entries)
    assert [f.path.relative_to(tmp_path).as_posix() for f in failures] == ["emodb/03a01La.wav", "mine/misc/mystery.wav"]
    assert "boredom" in failures[0].reason
    assert "no known corpus layout matches mystery.wav" in failures[1].reason
    # deterministic, and the same tree given twice is listed once
    assert discover([tmp_path, tmp_path / "tess"]) == (entries, failures)


def test_discover_forced_corpus(tmp_path: Path) -> None:
    make_mixed_tree(tmp_path)
    entries, failures = discover([tmp_path / "ravdess", tmp_path / "tess"], corpus="ravdess")
    assert {e.labels.corpus for e in entries} == {"ravdess"} and len(entries) == 2
    assert len(failures) == 2
    assert all("not a RAVDESS name" in f.reason for f in failures)


def test_discover_paths_absolute_symlinks_not_resolved(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    real = touch(tmp_path / "store" / "blob.bin")
    link = tmp_path / "data" / "angry" / "clip.wav"
    link.parent.mkdir(parents=True)
    link.symlink_to(real)
    monkeypatch.chdir(tmp_path)
    entries, failures = discover([Path("data")])
    assert failures == []
    assert [e.path for e in entries] == [link]
    assert entries[0].path.is_absolute()


def test_discover_symlink_loop_terminates(tmp_path: Path) -> None:
    touch(tmp_path / "a" / "sad" / "x.wav")
    (tmp_path / "a" / "sad" / "loop").symlink_to(tmp_path / "a", target_is_directory=True)
    (tmp_path / "a" / "self").symlink_to(tmp_path / "a" / "self")  # a link to itself
    entries, failures = discover([tmp_path])
    assert [e.path for e in entries] == [tmp_path / "a" / "sad" / "x.wav"]
    assert failures == []


def test_discover_single_file_and_manifest(tmp_path: Path) -> None:
    clip = touch(tmp_path / "03-01-02-01-01-01-07.wav")
    entries, failures = discover([clip])
    assert [(e.path, e.labels.label) for e in entries] == [(clip, "calm")]
    bad = touch(tmp_path / "whatever.wav")
    entries, failures = discover([bad])
    assert entries == [] and [f.path for f in failures] == [bad]

    touch(tmp_path / "clips" / "one.wav")
    manifest = tmp_path / "list.CSV"
    manifest.write_text("path,label,speaker\nclips/one.wav,fear,s9\nclips/missing.wav,sad,s9\n")
    entries, failures = discover([manifest], corpus="ravdess")  # manifests carry their own labels
    assert [(e.path, e.labels.label, e.labels.speaker) for e in entries] == [
        (tmp_path / "clips" / "one.wav", "fearful", "generic:s9")
    ]
    assert [f.path for f in failures] == [tmp_path / "clips" / "missing.wav"]
    assert "line 3" in failures[0].reason


def test_discover_manifest_labels_beat_name_failure_and_conflicts_fail(tmp_path: Path) -> None:
    touch(tmp_path / "clips" / "one.wav")
    touch(tmp_path / "clips" / "03-01-02-01-01-01-07.wav")
    manifest = tmp_path / "list.csv"
    manifest.write_text("path,label\nclips/one.wav,sad\nclips/03-01-02-01-01-01-07.wav,angry\n")
    entries, failures = discover([tmp_path / "clips", manifest])
    assert [(e.path.name, e.labels.label) for e in entries] == [("one.wav", "sad")]
    assert [f.path.name for f in failures] == ["03-01-02-01-01-01-07.wav"]
    assert "labelled twice with different labels" in failures[0].reason


def test_discover_bad_roots(tmp_path: Path) -> None:
    with pytest.raises(CorpusError, match="nope"):
        discover([tmp_path / "nope"])
    notes = touch(tmp_path / "notes.txt")
    with pytest.raises(CorpusError, match="not a folder, a CSV manifest"):
        discover([notes])
    bad_csv = tmp_path / "bad.csv"
    bad_csv.write_text("file,label\n")
    with pytest.raises(CorpusError, match="bad.csv: line 1"):
        discover([bad_csv])


def test_discover_non_utf8_names(tmp_path: Path) -> None:
    root = os.fsencode(tmp_path)
    try:
        with open(os.path.join(root, b"\xff\xfe-clip.wav"), "wb"):
            pass
        os.mkdir(os.path.join(root, b"sad"))
        with open(os.path.join(root, b"sad", b"caf\xe9.wav"), "wb"):
            pass
    except OSError:  # pragma: no cover - file systems that refuse non-UTF-8 names
        pytest.skip("file system does not accept non-UTF-8 names")
    entries, failures = discover([tmp_path])
    assert [e.labels.label for e in entries] == ["sad"]
    assert len(failures) == 1
    failures[0].reason.encode("utf-8")  # printable: no lone surrogates in the message
    assert "\ufffd" in failures[0].reason
    assert os.fsencode(failures[0].path).endswith(b"\xff\xfe-clip.wav")


# --------------------------------------------------------------------------- the real data (when present)


@pytest.mark.shared
def test_shared_ravdess_speech() -> None:
    root = SHARED_DATA / "ravdess-speech"
    if not root.is_dir():
        pytest.skip(f"{root} is absent")
    entries, failures = discover([root])
    assert failures == []
    assert len(entries) == 1440
    assert len({e.labels.speaker for e in entries}) == 24
    counts = Counter(e.labels.label for e in entries)
    assert counts["neutral"] == 96
    assert set(counts) == set(EMOTIONS)
    assert all(e.labels.fields["vocal_channel"] == "speech" for e in entries)


@pytest.mark.shared
def test_shared_tess() -> None:
    root = SHARED_DATA / "tess"
    if not root.is_dir():
        pytest.skip(f"{root} is absent")
    entries, failures = discover([root])
    assert failures == []
    assert len(entries) == 2800
    assert {e.labels.speaker for e in entries} == {"tess:OAF", "tess:YAF"}
    counts = Counter(e.labels.label for e in entries)
    assert len(counts) == 7 and "calm" not in counts
    assert set(counts.values()) == {400}
