"""Which number range of emotiontts-kor holds which emotion? What its speakers say, and how high they say it.

    python benchmarks/kor_labels.py [--data ../shared/data/emotiontts-kor] [--per-range 2]

The corpus's README gives 00201-00300 as angry and 00301-00400 as sad. Two checks of the public sample, neither of
which uses an emotion model: (1) the ten ``emotional-to-emotional`` speakers read a script written for each emotion,
so the words say the emotion: the first ``--per-range`` clips of each range are transcribed by Whisper base (the
full model of ser-batch's weights packages, encoder and decoder, Korean, beam 5) and printed; (2) for all 15
speakers, the median F0 (semitones over 55 Hz, `prosody.prosody`) of each range, and which range is each speaker's
lowest. Printed as Markdown (`benchmarks/kor-labels.md`).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(REPO / "benchmarks"))

import numpy as np  # noqa: E402

from prosody import SR, prosody  # noqa: E402

RANGES = ("00001-00100", "00101-00200", "00201-00300", "00301-00400")
PROMPT = ["<|startoftranscript|>", "<|ko|>", "<|transcribe|>", "<|notimestamps|>"]


def _byte_decoder() -> dict[str, int]:
    """GPT-2's printable-character alphabet for bytes, inverted: Whisper's tokens spell UTF-8 bytes with it."""
    keep = [*range(ord("!"), ord("~") + 1), *range(ord("¡"), ord("¬") + 1), *range(ord("®"), ord("ÿ") + 1)]
    chars, extra = list(keep), 0
    for b in range(256):
        if b not in keep:
            keep.append(b)
            chars.append(256 + extra)
            extra += 1
    return {chr(c): b for b, c in zip(keep, chars)}


def transcribe(paths: list[Path]) -> list[str]:
    """Korean transcripts of ``paths`` (each up to 30 s) by the whole Whisper base model."""
    import ctranslate2
    import soundfile as sf

    from ser_batch import audio, encoder

    model = ctranslate2.models.Whisper("whisper-base", device="cpu", compute_type="int8", files=encoder.model_files(6))
    decode, out = _byte_decoder(), []
    for path in paths:
        y, sr = sf.read(path, dtype="float32", always_2d=True)
        y = audio.resample(audio.to_mono(y), sr, SR)
        y = np.pad(y, (0, max(0, 30 * SR - y.size)))[: 30 * SR]
        mel = ctranslate2.StorageView.from_array(np.ascontiguousarray(encoder.log_mel(y[None], SR)))
        tokens = model.generate(mel, [PROMPT], beam_size=5, max_length=120)[0].sequences[0]
        text = "".join(t for t in tokens if not t.startswith("<|"))
        out.append(bytes(decode[c] for c in text if c in decode).decode("utf-8", "replace").strip())
    return out


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--data", default=str(REPO.parent / "shared" / "data" / "emotiontts-kor"))
    parser.add_argument("--per-range", type=int, default=2, help="clips of each range to transcribe per speaker")
    args = parser.parse_args(argv)
    root = Path(args.data)

    print("## What the emotional-script speakers say (Whisper base transcripts)\n")
    print("| speaker | clip | transcript |\n|---|---|---|")
    for speaker in sorted((root / "emotional-to-emotional").iterdir()):
        clips = sorted((speaker / "wav").glob("*.ogg"))
        chosen = [c for r in range(4) for c in [c for c in clips if (int(c.stem[-5:]) - 1) // 100 == r][: args.per_range]]
        for clip, text in zip(chosen, transcribe(chosen)):
            print(f"| {speaker.name} | {clip.stem} | {text} |")

    print("\n## Median F0 per range (semitones over 55 Hz, mean over the speaker's clips)\n")
    print(f"| subset | speaker | {' | '.join(RANGES)} | lowest |\n|---|---|{'---|' * len(RANGES)}---|")
    lowest = []
    for subset in ("plain-to-emotional", "emotional-to-emotional"):
        for speaker in sorted((root / subset).iterdir()):
            f0: list[list[float]] = [[] for _ in RANGES]
            for clip in sorted((speaker / "wav").glob("*.ogg")):
                f0[(int(clip.stem[-5:]) - 1) // 100].append(float(prosody(str(clip))[0]))
            means = [float(np.mean(v)) for v in f0]
            lowest.append(RANGES[int(np.argmin(means))])
            print(f"| {subset} | {speaker.name} | {' | '.join(f'{m:.1f}' for m in means)} | {lowest[-1]} |")
    print("\nLowest range per speaker: " + ", ".join(f"{r} {lowest.count(r)}" for r in RANGES))


if __name__ == "__main__":
    main()
