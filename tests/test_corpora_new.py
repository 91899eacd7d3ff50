"""Tests of the corpus layouts ASED, nEMO, URDU, TurEV-DB and emotiontts-kor: parsing, detection, discovery."""

from __future__ import annotations

from collections import Counter
from pathlib import Path

import pytest

from ser_batch.corpora import CORPORA, detect, discover, parse
from ser_batch.corpora import ased, emotiontts_kor, nemo, turevdb, urdu
from ser_batch.errors import CorpusError
from ser_batch.labels import EMOTIONS

SHARED_DATA = Path(__file__).parents[1].parent / "shared" / "data"

NEW_MODULES = [ased, nemo, urdu, turevdb, emotiontts_kor]


def touch(path: Path) -> Path:
    """Create an empty file (and its folders)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(b"")
    return path


def fails(path: str, problem: str, corpus: str | None = None) -> str:
    """The message of the `CorpusError` that parsing `path` raises; checks it names the file and `problem`."""
    with pytest.raises(CorpusError, match=problem) as info:
        parse(Path(path), corpus=corpus)
    message = str(info.value)
    assert Path(path).name in message
    return message


# --------------------------------------------------------------------------- tables and label sets


@pytest.mark.parametrize("module", NEW_MODULES)
def test_label_tables_and_label_sets(module: object) -> None:
    table = module.LABEL_TABLE  # type: ignore[attr-defined]
    assert isinstance(table, dict) and table
    assert set(table.values()) <= set(EMOTIONS)
    assert module.__doc__ is not None and "label table" in module.__doc__.lower()
    corpora = [c for c in CORPORA.values() if type(c).__module__ == module.__name__]  # type: ignore[attr-defined]
    assert len(corpora) == 1
    assert corpora[0].labels == frozenset(table.values())


@pytest.mark.parametrize(
    ("corpus", "labels"),
    [
        ("ased", {"neutral", "fearful", "happy", "sad", "angry"}),
        ("nemo", {"neutral", "fearful", "happy", "sad", "angry", "surprised"}),
        ("urdu", {"neutral", "happy", "sad", "angry"}),
        ("turevdb", {"calm", "happy", "sad", "angry"}),
        ("emotiontts_kor", {"neutral", "happy", "sad", "angry"}),
    ],
)
def test_corpus_labels(corpus: str, labels: set[str]) -> None:
    assert CORPORA[corpus].labels == labels


def test_every_corpus_declares_labels() -> None:
    for corpus in CORPORA.values():
        assert corpus.labels is None or (isinstance(corpus.labels, frozenset) and corpus.labels <= set(EMOTIONS))
    assert [name for name, c in CORPORA.items() if c.labels is None] == ["generic"]


# --------------------------------------------------------------------------- ASED


@pytest.mark.parametrize(
    ("folder", "code", "label"),
    [("01Neutral", "n1", "neutral"), ("02Fearful", "f2", "fearful"), ("03Happy", "h3", "happy"),
     ("04Sad", "s4", "sad"), ("05Angry", "a5", "angry")],
)
def test_ased_every_emotion(folder: str, code: str, label: str) -> None:
    labels = parse(Path(f"ased/{folder}/{code}-03-02-01-07.ogg"))
    assert (labels.corpus, labels.label, labels.speaker) == ("ased", label, "ased:7")
    assert dict(labels.fields) == {"sentence": "03", "repetition": "02", "gender": "female"}


def test_ased_capital_letter_and_both_gender_codes() -> None:
    capital = parse(Path("ased/04Sad/S4-04-02-01-29.ogg"))
    assert (capital.corpus, capital.label, capital.speaker) == ("ased", "sad", "ased:29")
    female = parse(Path("ased/02Fearful/f2-01-01-01-09.ogg"))
    male = parse(Path("ased/02Fearful/f2-01-01-02-09.ogg"))
    assert female.speaker == male.speaker == "ased:9"
    assert (female.fields["gender"], male.fields["gender"]) == ("female", "male")
    assert parse(Path("x/a5-07-01-02-65.wav")).speaker == "ased:65"


def test_ased_in_a_plain_label_folder_is_ased() -> None:
    assert detect(Path("sad/s4-01-01-01-01.ogg")) is ased.ASED


@pytest.mark.parametrize(
    ("path", "problem"),
    [
        ("h1-01-01-01-01.ogg", "ASED emotion code h1 is not one of n1, f2, h3, s4, a5"),
        ("x3-01-01-01-01.ogg", "ASED emotion code x3"),
        ("h3-01-01-03-01.ogg", "ASED gender 03 is not 01 \\(female\\) or 02 \\(male\\)"),
        ("h3-01-01-01-66.ogg", "ASED speaker 66 is not in 01-65"),
        ("h3-01-01-01-00.ogg", "ASED speaker 00"),
        ("h3-00-01-01-01.ogg", "ASED sentence 00"),
        ("h3-01-00-01-01.ogg", "ASED repetition 00"),
        ("04Sad/h3-01-01-01-01.ogg", "ASED code h3 means happy but the file is in folder '04Sad' \\(sad\\); move"),
        ("Angry/h3-01-01-01-01.ogg", "in folder 'Angry' \\(angry\\)"),
    ],
)
def test_ased_bad_names(path: str, problem: str) -> None:
    fails(path, problem)


def test_ased_wrong_shape() -> None:
    for name in ("h3-01-01-01.ogg", "h3-01-01-01-01-01.ogg", "h-01-01-01-01.ogg", "h3_01_01_01_01.ogg"):
        assert not ased.ASED.match(Path(name))
    fails("h3_01_01_01_01.ogg", "not an ASED name", corpus="ased")


# --------------------------------------------------------------------------- nEMO


@pytest.mark.parametrize(
    ("word", "label"),
    [("anger", "angry"), ("fear", "fearful"), ("happiness", "happy"), ("neutral", "neutral"),
     ("sadness", "sad"), ("surprised", "surprised")],
)
def test_nemo_every_emotion(word: str, label: str) -> None:
    labels = parse(Path(f"nemo/samples/MP0_{word}_12.ogg"))
    assert (labels.corpus, labels.label, labels.speaker) == ("nemo", label, "nemo:MP0")
    assert dict(labels.fields) == {"number": "12", "gender": "male"}


def test_nemo_speakers_and_gender() -> None:
    genders = Counter(parse(Path(f"{s}_neutral_1.ogg")).fields["gender"] for s in nemo.SPEAKERS)
    assert genders == {"male": 5, "female": 4}
    assert parse(Path("EB0_Anger_90.wav")).label == "angry"


@pytest.mark.parametrize(
    ("path", "problem"),
    [
        ("XY0_anger_1.ogg", "nEMO speaker XY0 is not one of EB0, "),
        ("KS0_anger_0.ogg", "nEMO clip number 0"),
    ],
)
def test_nemo_bad_names(path: str, problem: str) -> None:
    fails(path, problem)


def test_nemo_unknown_emotion_word() -> None:
    # the emotion word is what makes the shape specific: without it, it is no layout at all
    assert detect(Path("KS0_boredom_3.ogg")) is None
    fails("KS0_boredom_3.ogg", "no known corpus layout matches")
    fails("KS0_boredom_3.ogg", "nEMO emotion 'boredom' is not one of anger, fear", corpus="nemo")
    fails("KS0-anger-3.ogg", "not a nEMO name", corpus="nemo")


def test_nemo_data_tsv_is_not_audio(tmp_path: Path) -> None:
    touch(tmp_path / "nemo" / "samples" / "KS0_anger_1.ogg")
    (tmp_path / "nemo" / "data.tsv").write_text("file_id\temotion\nKS0_anger_1.wav\tanger\n")
    entries, failures = discover([tmp_path / "nemo"])
    assert [e.labels.speaker for e in entries] == ["nemo:KS0"]
    assert failures == []


# --------------------------------------------------------------------------- URDU


@pytest.mark.parametrize(
    ("folder", "letter", "label"),
    [("Angry", "A", "angry"), ("Happy", "H", "happy"), ("Neutral", "N", "neutral"), ("Sad", "S", "sad")],
)
def test_urdu_every_emotion_not_generic(folder: str, letter: str, label: str) -> None:
    path = Path(f"urdu/{folder}/SF11_F46_{letter}098.ogg")
    assert detect(path) is urdu.URDU
    labels = parse(path)
    assert (labels.corpus, labels.label, labels.speaker) == ("urdu", label, "urdu:SF11")
    assert dict(labels.fields) == {"gender": "female", "file": "F46", "clip": f"{letter}098"}


def test_urdu_speaker_is_the_code() -> None:
    assert parse(Path("SM25_F1_A01.ogg")).speaker == "urdu:SM25"
    assert parse(Path("SM25_F1_A01.ogg")).fields["gender"] == "male"
    assert parse(Path("SM2_F2_H1000.ogg")).speaker == "urdu:SM2"


@pytest.mark.parametrize(
    ("path", "problem"),
    [
        ("SM1_F1_X01.ogg", "URDU emotion letter X is not one of A, H, N, S"),
        ("SM0_F1_A01.ogg", "URDU speaker SM0 has number 0"),
        ("Sad/SM1_F1_A01.ogg", "URDU letter A means angry but the file is in folder 'Sad' \\(sad\\); move"),
    ],
)
def test_urdu_bad_names(path: str, problem: str) -> None:
    fails(path, problem)


def test_urdu_wrong_shape() -> None:
    for name in ("SX1_F1_A01.ogg", "SM1_1_A01.ogg", "SM1_F1_A.ogg", "sm1_f1_a01.ogg", "SM1_F1_A01_x.ogg"):
        assert not urdu.URDU.match(Path(name))
    # in a label folder, a name that is not URDU-shaped stays the generic layout's
    assert detect(Path("Angry/SX1_F1_A01.ogg")) is CORPORA["generic"]
    fails("Angry/SX1_F1_A01.ogg", "not an URDU name", corpus="urdu")


# --------------------------------------------------------------------------- TurEV-DB


@pytest.mark.parametrize(
    ("folder", "code", "label"),
    [("Angry", "kz", "angry"), ("Calm", "sk", "calm"), ("Happy", "mt", "happy"), ("Sad", "hl", "sad")],
)
def test_turevdb_every_emotion_not_generic(folder: str, code: str, label: str) -> None:
    path = Path(f"turev-db/{folder}/1358_{code}_kirgin.ogg")
    assert detect(path) is turevdb.TUREVDB
    labels = parse(path)
    assert (labels.corpus, labels.label, labels.speaker) == ("turevdb", label, "turevdb:1358")
    assert dict(labels.fields) == {"word": "kirgin"}


def test_turevdb_words_as_written() -> None:
    assert parse(Path("Sad/7895_hl_ogul1.ogg")).fields["word"] == "ogul1"
    assert parse(Path("1157_KZ_kızgın.ogg")).fields["word"] == "kızgın"
    assert {parse(Path(f"{s}_sk_x.ogg")).speaker for s in turevdb.SPEAKERS} == {
        "turevdb:1157", "turevdb:1234", "turevdb:1358", "turevdb:1984", "turevdb:6783", "turevdb:7895"
    }


@pytest.mark.parametrize(
    ("path", "problem"),
    [
        ("Calm/1000_sk_kibir.ogg", "TurEV-DB speaker 1000 is not one of 1157, "),
        ("Calm/1234_kz_kibir.ogg", "TurEV-DB code kz means angry but the file is in folder 'Calm' \\(calm\\); move"),
    ],
)
def test_turevdb_bad_names(path: str, problem: str) -> None:
    fails(path, problem)


def test_turevdb_needs_its_codes() -> None:
    # a date-like user name in a label folder is not claimed: the generic layout keeps it
    assert detect(Path("angry/2023_en_hello.wav")) is CORPORA["generic"]
    fails("1234_xx_kibir.ogg", "TurEV-DB emotion code xx is not one of kz, sk, mt, hl", corpus="turevdb")
    fails("123_kz_kibir.ogg", "not a TurEV-DB name", corpus="turevdb")


# --------------------------------------------------------------------------- emotiontts-kor


@pytest.mark.parametrize(
    ("number", "label"),
    [("00001", "neutral"), ("00005", "neutral"), ("00100", "neutral"), ("00101", "happy"), ("00200", "happy"),
     ("00201", "sad"), ("00300", "sad"), ("00301", "angry"), ("00400", "angry")],
)
def test_emotiontts_kor_ranges(number: str, label: str) -> None:
    labels = parse(Path(f"emotiontts-kor/plain-to-emotional/ema/wav/ema{number}.ogg"))
    assert (labels.corpus, labels.label, labels.speaker) == ("emotiontts_kor", label, "emotiontts_kor:ema")
    assert dict(labels.fields) == {"subset": "plain-to-emotional", "number": number}


def test_emotiontts_kor_subsets() -> None:
    labels = parse(Path("emotional-to-emotional/neo/wav/neo00303.wav"))
    assert (labels.label, labels.speaker) == ("angry", "emotiontts_kor:neo")
    assert labels.fields["subset"] == "emotional-to-emotional"


@pytest.mark.parametrize(
    ("path", "problem"),
    [
        ("plain-to-emotional/ema/wav/ema00000.ogg", "emotiontts-kor number 00000 is outside 00001-00400"),
        ("plain-to-emotional/ema/wav/ema00401.ogg", "number 00401 is outside"),
        ("other/ema/wav/ema00101.ogg", "emotiontts-kor subset folder 'other' is not one of"),
        ("ema/wav/ema00101.ogg", "subset folder '' is not one of"),
    ],
)
def test_emotiontts_kor_bad_paths(path: str, problem: str) -> None:
    fails(path, problem)


def test_emotiontts_kor_needs_its_folders() -> None:
    for path in ("plain-to-emotional/ema/ema00101.ogg", "plain-to-emotional/emb/wav/ema00101.ogg",
                 "plain-to-emotional/ema/wav/ema0101.ogg", "ema00101.ogg"):
        assert not emotiontts_kor.EMOTIONTTS_KOR.match(Path(path))
        assert detect(Path(path)) is None
    fails("plain-to-emotional/emb/wav/ema00101.ogg", "not an emotiontts-kor path", corpus="emotiontts_kor")


# --------------------------------------------------------------------------- detection across all corpora


NEW_SAMPLES: dict[str, str] = {
    "ased": "04Sad/S4-04-02-01-29.ogg",
    "nemo": "samples/MP0_anger_5.ogg",
    "urdu": "Angry/SM2_F11_A033.ogg",
    "turevdb": "Calm/1358_sk_kibir.ogg",
    "emotiontts_kor": "plain-to-emotional/ema/wav/ema00101.ogg",
}

OLD_SAMPLES: dict[str, str] = {
    "ravdess": "Actor_01/03-01-05-01-02-01-12.wav",
    "cremad": "1001_DFA_ANG_XX.wav",
    "tess": "OAF_angry/OAF_back_angry.wav",
    "savee": "DC_a01.wav",
    "emodb": "03a01Fa.wav",
}


def test_new_layouts_match_only_themselves_and_their_label_folder() -> None:
    for name, sample in NEW_SAMPLES.items():
        matching = [c.name for c in CORPORA.values() if c.match(Path(sample))]
        # URDU and TurEV-DB folders are label names too; their own layout comes first
        assert matching == ([name, "generic"] if name in ("urdu", "turevdb") else [name]), sample
        assert detect(Path(sample)) is CORPORA[name]


def test_old_layouts_not_matched_by_new_ones() -> None:
    for sample in [*OLD_SAMPLES.values(), "AudioData/DC/a01.wav", "OAF_neutral/OA_bite_neutral.wav"]:
        for module in NEW_MODULES:
            assert not any(c.match(Path(sample)) for c in CORPORA.values() if type(c).__module__ == module.__name__)
    for name, sample in OLD_SAMPLES.items():
        for folder in ("angry", "Sad", "01Neutral"):
            assert detect(Path(folder) / Path(sample).name) is CORPORA[name]


@pytest.mark.parametrize("forced", list(NEW_SAMPLES))
def test_forced_new_corpus_mismatch_raises(forced: str) -> None:
    assert parse(Path(NEW_SAMPLES[forced]), corpus=forced).corpus == forced
    for name, sample in {**NEW_SAMPLES, **OLD_SAMPLES}.items():
        if name == forced:
            continue
        with pytest.raises(CorpusError) as info:
            parse(Path(sample), corpus=forced)
        assert Path(sample).name in str(info.value)


def test_discover_new_layouts(tmp_path: Path) -> None:
    for sample in NEW_SAMPLES.values():
        touch(tmp_path / sample)
    touch(tmp_path / "samples" / "ZZ0_anger_1.ogg")  # unknown nEMO speaker -> failure
    touch(tmp_path / "Sad" / "SM2_F11_A034.ogg")  # folder disagrees -> failure, not generic sad
    touch(tmp_path / "Happy" / "take1.ogg")  # not URDU-shaped: the generic layout's
    (tmp_path / "data.tsv").write_text("not audio\n")
    entries, failures = discover([tmp_path])
    got = {e.path.relative_to(tmp_path).as_posix(): (e.labels.corpus, e.labels.label) for e in entries}
    assert got == {
        "04Sad/S4-04-02-01-29.ogg": ("ased", "sad"),
        "samples/MP0_anger_5.ogg": ("nemo", "angry"),
        "Angry/SM2_F11_A033.ogg": ("urdu", "angry"),
        "Calm/1358_sk_kibir.ogg": ("turevdb", "calm"),
        "plain-to-emotional/ema/wav/ema00101.ogg": ("emotiontts_kor", "happy"),
        "Happy/take1.ogg": ("generic", "happy"),
    }
    reasons = {f.path.relative_to(tmp_path).as_posix(): f.reason for f in failures}
    assert set(reasons) == {"samples/ZZ0_anger_1.ogg", "Sad/SM2_F11_A034.ogg"}
    assert "nEMO speaker ZZ0" in reasons["samples/ZZ0_anger_1.ogg"]
    assert "URDU letter A means angry but the file is in folder 'Sad'" in reasons["Sad/SM2_F11_A034.ogg"]


# --------------------------------------------------------------------------- the real data (when present)


@pytest.mark.shared
@pytest.mark.parametrize(
    ("folder", "corpus", "files", "speakers", "labels"),
    [
        ("ased", "ased", 2470, 65, 5),
        ("nemo", "nemo", 4481, 9, 6),
        ("urdu", "urdu", 400, 29, 4),
        ("turev-db", "turevdb", 1735, 6, 4),
        ("emotiontts-kor", "emotiontts_kor", 300, 15, 4),
    ],
)
def test_shared_new_corpora(folder: str, corpus: str, files: int, speakers: int, labels: int) -> None:
    root = SHARED_DATA / folder
    if not root.is_dir():
        pytest.skip(f"{root} is absent")
    entries, failures = discover([root])
    assert failures == []
    assert len(entries) == files
    assert {e.labels.corpus for e in entries} == {corpus}
    assert len({e.labels.speaker for e in entries}) == speakers
    found = {e.labels.label for e in entries}
    assert len(found) == labels
    assert found == CORPORA[corpus].labels
    # detection is by file name: no file is also matched by another named layout
    for e in entries:
        assert [c.name for c in CORPORA.values() if c.match(e.path) and c.name != "generic"] == [corpus]


@pytest.mark.shared
def test_shared_odd_cases() -> None:
    if not SHARED_DATA.is_dir():
        pytest.skip(f"{SHARED_DATA} is absent")
    capital = SHARED_DATA / "ased" / "04Sad" / "S4-04-02-01-29.ogg"
    if capital.is_file():
        assert parse(capital).speaker == "ased:29"
    urdu_root = SHARED_DATA / "urdu"
    if urdu_root.is_dir():
        entries, _ = discover([urdu_root])
        assert set(Counter(e.labels.label for e in entries).values()) == {100}
