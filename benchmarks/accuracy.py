"""Accuracy on unseen speakers: the seed baseline and each new configuration over the 6 EmoBox actor folds.

    python benchmarks/accuracy.py [--configs seed-frames,logmel-attn] [--folds 1,2,3,4,5,6] [--epochs 20] [--members 3]

Extracts what it needs first (resumable, into features/bench-*), then runs speaker-fold cross-validation per
configuration: test actors of each fold are never heard in training, whatever the corpus; validation actors come
out of each fold's training actors and choose the epoch, learning rate and calibration temperature. TESS, when a
configuration uses it, only ever trains (it has 2 speakers, none of them a RAVDESS actor). Prints accuracy, macro
F1 and UAR per fold and overall, plus seconds of training. ``--members K`` trains K models per fold (other seeds,
other validation actors) and also reports their ensemble (averaged probabilities).

`-spknorm` configurations standardise each speaker's features with statistics of that speaker's own recordings
(audio only, never labels), test speakers included: what `score --speakers` does with a speaker-normalised model
when it is given several recordings of each speaker.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(REPO / "benchmarks"))

from train import run  # noqa: E402

from ser_batch.augment import AugmentSettings  # noqa: E402
from ser_batch.extract import extract  # noqa: E402
from ser_batch.features import FeatureSettings  # noqa: E402
from ser_batch.train import TrainSettings  # noqa: E402

DATA = REPO.parent / "shared" / "data"
FEATURES = {
    "seed-ravdess": (["ravdess-speech"], FeatureSettings.preset("seed")),
    "logmel-ravdess": (["ravdess-speech"], FeatureSettings.preset("logmel")),
    "logmel-ravdess-tess": (["ravdess-speech", "tess"], FeatureSettings.preset("logmel")),
    "logmel_pitch-ravdess": (["ravdess-speech"], FeatureSettings.preset("logmel_pitch")),
    "logmel_pitch-tess": (["tess"], FeatureSettings.preset("logmel_pitch")),
    "whisper_base-ravdess": (["ravdess-speech"], FeatureSettings.preset("whisper_base")),
    "whisper_base-tess": (["tess"], FeatureSettings.preset("whisper_base")),
}
REGULARISED = {"specaugment": True, "mixup": 0.2, "label_smoothing": 0.1}
CONFIGS: dict[str, tuple[str, dict[str, object]]] = {
    "seed-frames": ("seed-ravdess", {"model": "frames"}),
    "logmel-attn": ("logmel-ravdess", {"model": "attn", "label_smoothing": 0.1, "patience": 8}),
    "logmel-attn-spknorm": ("logmel-ravdess", {"model": "attn", "label_smoothing": 0.1, "patience": 8, "speaker_norm": True}),
    "logmel-attn-reg": ("logmel-ravdess", {"model": "attn", **REGULARISED}),
    "logmel-attn-reg-tess": ("logmel-ravdess-tess", {"model": "attn", **REGULARISED}),
    "logmel_pitch-attn": ("logmel_pitch-ravdess", {"model": "attn", "label_smoothing": 0.1, "patience": 8}),
    "logmel_pitch-attn-spknorm": ("logmel_pitch-ravdess", {"model": "attn", "label_smoothing": 0.1, "patience": 8, "speaker_norm": True}),
    "logmel_pitch-attn-spknorm-tess": ("logmel_pitch-ravdess+logmel_pitch-tess", {"model": "attn", "label_smoothing": 0.1, "patience": 8, "speaker_norm": True}),
    "whisper_base-pool": ("whisper_base-ravdess", {"model": "pool", "label_smoothing": 0.1, "patience": 8}),
    "whisper_base-pool-tess": ("whisper_base-ravdess+whisper_base-tess", {"model": "pool", "label_smoothing": 0.1, "patience": 8}),
    "whisper_base-pool-reg": ("whisper_base-ravdess", {"model": "pool", **REGULARISED, "time_mask": 4, "coeff_mask": 32}),
    "whisper_base-pool-spknorm": ("whisper_base-ravdess", {"model": "pool", "label_smoothing": 0.1, "patience": 8, "speaker_norm": True}),
}
"""Configuration -> (feature folders, joined by +; training settings). whisper_base (v3 since this round) cuts a
training window every 0.5 s of each whole recording, as score slides them; the shifted-window rows of v1/v2
(``--shifts 2``) are what that replaced."""


def features_dir(name: str) -> str:
    corpora, fs, *shifts = FEATURES[name]
    out = REPO / "features" / f"bench-{name}-v{fs.version}-aug{AugmentSettings().version}"  # new versions never mix
    augment = AugmentSettings(shifts=shifts[0] if shifts else 0)
    extract([DATA / c for c in corpora], out, feature_settings=fs, augment_settings=augment, progress=False)
    return str(out)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--configs", default=",".join(CONFIGS), help=f"comma-separated, from {', '.join(CONFIGS)}")
    ap.add_argument("--folds", default="1,2,3,4,5,6")
    ap.add_argument("--epochs", type=int, default=20)
    ap.add_argument("--workers", type=int, default=None)
    ap.add_argument("--members", type=int, default=1, help="models per fold; above 1 also reports their ensemble")
    ap.add_argument("--out", type=Path, default=REPO / "out" / "accuracy")
    args = ap.parse_args()
    chosen = {}
    for name in args.configs.split(","):
        feats, kw = CONFIGS[name]
        chosen[name] = ([features_dir(f) for f in feats.split("+")], TrainSettings(epochs=args.epochs, **kw))  # type: ignore[arg-type]
    run(chosen, [int(f) for f in args.folds.split(",")], args.workers, args.out, args.members)


if __name__ == "__main__":
    main()
