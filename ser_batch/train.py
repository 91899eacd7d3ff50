"""The train job: shards -> speaker split -> Keras model -> evaluation on speakers it never heard.

Each model fit is a Dask task (one for ``holdout`` and ``loco``, one per fold for ``cv``), which reads the shards
itself. The scaler and class weights come from training rows only; early stopping, the learning-rate schedule and
the checkpoint watch the validation speakers; the test speakers are touched once, after training, to report.

The rows it reads, and their normalisation, are ``trainset``'s; what each row teaches and how much it weighs across
corpora with different label sets is ``objective``'s.
"""

from __future__ import annotations

import hashlib
import json
import os
import tempfile
import time
from collections.abc import Callable, Iterator, Sequence
import dataclasses
from dataclasses import asdict, dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import numpy as np

from ser_batch import evaluate as ev
from ser_batch import measures, plots, splits
from ser_batch.cluster import RETRIES, dask_client
from ser_batch.errors import ConfigError
from ser_batch.labels import EMOTIONS
from ser_batch.modeldir import Scaler
from ser_batch.objective import CORPUS_BALANCE, encode_targets, label_masks, masked_crossentropy, row_weights
from ser_batch.trainset import Data, GroupNorms, alone_norm, fit_scaler, gather, iter_rows, load_meta, speaker_norm
from ser_batch.shards import write_json_atomic
from ser_batch.windows import FRAMES

CALIBRATION = ("none", "val", "cv")
NORM_BY = ("speaker", "corpus")


@dataclass(frozen=True)
class TrainSettings:
    """How a model is trained; written into every model directory and report."""

    model: str = "frames"
    epochs: int = 20
    batch_size: int = 64
    learning_rate: float = 1e-3
    patience: int = 5  # early stopping on validation loss
    lr_patience: int = 2  # ReduceLROnPlateau on validation loss, factor 0.5
    n_val_speakers: int = 2
    class_weights: bool = True
    seed: int = 0
    memory_limit_mb: int = 4096  # training rows above this are streamed from Parquet instead of loaded
    label_smoothing: float = 0.0
    l2: float = 1e-3  # the linear model's L2 penalty on its weights (models.build)
    frames: str = "all"  # all | inside: the linear model's means leave out the frames past a recording's end (windows.FRAMES)
    mixup: float = 0.0  # Beta(a, a) mixing of training pairs; 0 is off
    specaugment: bool = False  # random time and coefficient masks on training batches
    time_mask: int = 20  # frames, at most, per mask
    coeff_mask: int = 8  # coefficients, at most, per mask
    speaker_norm: bool = False  # z-score each speaker's features with that speaker's own (unlabelled) recordings
    norm_by: str = "speaker"  # with speaker_norm: whose statistics, a speaker's or a corpus's (score: the job's own, --speakers job)
    norm_prior_s: float = 10.0  # with speaker_norm: seconds of speech the training groups' typical statistics count for in every group's (features.shrinkage_prior; 0 is off)
    label_mask: bool = True  # each row's loss over the labels its corpus has only (module docstring)
    corpus_balance: str = "equal"  # equal | sqrt | none: each corpus's share of the training loss (row_weights)
    calibration: str = "none"  # none | val: fitted on the validation speakers (it made test ECE worse) | cv: `temperature`
    temperature: float = 1.0  # calibration "cv": chosen beforehand on a cross-validation's out-of-fold predictions (cv_calibration)

    def __post_init__(self) -> None:
        if self.corpus_balance not in CORPUS_BALANCE:
            raise ConfigError(f"corpus_balance must be one of {', '.join(CORPUS_BALANCE)}, got {self.corpus_balance!r}")
        if self.norm_by not in NORM_BY:
            raise ConfigError(f"norm_by must be one of {', '.join(NORM_BY)}, got {self.norm_by!r}")
        if not 0 <= self.norm_prior_s <= 3600:
            raise ConfigError(f"norm_prior_s must be between 0 and 3600 seconds of speech, got {self.norm_prior_s}")
        if self.frames not in FRAMES:
            raise ConfigError(f"frames must be one of {', '.join(FRAMES)}, got {self.frames!r}")
        if self.frames != "all" and self.model != "linear":
            raise ConfigError(f"frames {self.frames!r} needs model 'linear' (its means are what leave padding out), got {self.model!r}")
        if not 0 <= self.l2 <= 10:
            raise ConfigError(f"l2 must be between 0 and 10, got {self.l2}")
        if self.calibration not in CALIBRATION:
            raise ConfigError(f"calibration must be one of {', '.join(CALIBRATION)}, got {self.calibration!r}")
        if not 0.05 <= self.temperature <= 20 or (self.temperature != 1.0 and self.calibration != "cv"):
            raise ConfigError(f"temperature {self.temperature}: give it with calibration 'cv' only, between 0.05 and 20 "
                              "(the `temperature` of a cross-validation's cv.json calibration)")

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


IN_MEMORY_ONLY = ("history", "test_predictions")
"""Parts of ``fit``'s result that are not written into metrics.json or cv.json (history goes to its own file)."""


def fit(
    feature_dirs: Sequence[str],
    split: splits.Split,
    settings: TrainSettings = TrainSettings(),
    out: str | None = None,
    threads: int | None = None,
    name: str | None = None,
    model_version: str = "dev",
    job: str | None = None,
    card: str = "",
) -> dict[str, Any]:
    """Train one model on ``split`` and evaluate it on the split's test rows; save a model dir to ``out`` if given.

    Returns the test metrics with the history and timings. Runs as a Dask task or in-process alike.
    """
    import tensorflow as tf

    if threads:
        try:
            tf.config.threading.set_intra_op_parallelism_threads(threads)
            tf.config.threading.set_inter_op_parallelism_threads(min(threads, 2))
        except RuntimeError:
            pass  # TensorFlow already started in this process; keep its pools
    import keras

    from ser_batch import models

    keras.utils.set_random_seed(settings.seed)
    tf.config.experimental.enable_op_determinism()  # multi-threaded reductions in a fixed order: a rerun is the same model
    data = dataclasses.replace(load_meta(feature_dirs), frames=settings.frames)
    if settings.frames != "all" and not data.features.grid:
        raise ConfigError(f"frames {settings.frames!r} needs a frame-grid feature set (whisper_base), not {data.features.name!r}")
    m = splits.masks(data.meta, split)
    splits.check(data.meta, m, split.protocol)
    labels = data.meta["label"].to_numpy()
    classes = [c for c in EMOTIONS if c in set(labels[m["train"]])]
    if len(classes) < 2:
        raise ConfigError("training rows hold fewer than two labels")
    for part in ("val", "test"):
        m[part] &= np.isin(labels, classes)
    if not m["test"].any() and split.protocol != "all":
        raise ConfigError("the split leaves no test rows")
    y = np.array([classes.index(c) if c in classes else -1 for c in labels])
    corpora = data.meta["corpus"].astype(str).to_numpy()
    targets = encode_targets(y, label_masks(corpora, y, classes, settings.label_mask))
    norm = speaker_norm(data, settings.norm_by, data.meta["speaker"].isin(split.test_speakers).to_numpy(), settings.norm_prior_s) if settings.speaker_norm else None
    scaler = fit_scaler(data, m["train"], norm)
    fs = data.features
    n_classes = len(classes)
    weights = np.zeros(len(y), np.float32)  # class and corpus weights of the training rows, as sample weights
    weights[m["train"]] = row_weights(y[m["train"]], corpora[m["train"]], n_classes, settings.class_weights, settings.corpus_balance)

    train_bytes = int(m["train"].sum()) * fs.n_frames * fs.n_coeffs * 4
    streamed = train_bytes > settings.memory_limit_mb * 2**20
    if streamed:
        train_ds = _stream_dataset(data, m["train"], targets, weights, scaler, settings, norm)
    else:
        xt = scaler.transform(gather(data, m["train"], norm))
        train_ds = (
            tf.data.Dataset.from_tensor_slices((xt, targets[m["train"]], weights[m["train"]]))
            .shuffle(len(xt), seed=settings.seed, reshuffle_each_iteration=True)
            .batch(settings.batch_size)
        )
    train_ds = _regularise(train_ds, settings)
    val = None
    if m["val"].any():  # the same masked loss; corpora balanced (no class weights), so every corpus steers stopping
        val_w = row_weights(y[m["val"]], corpora[m["val"]], n_classes, False, settings.corpus_balance)
        val = (scaler.transform(gather(data, m["val"], norm)), targets[m["val"]], val_w)

    loss = masked_crossentropy(settings.label_smoothing) if settings.label_mask else None
    model = models.build(settings.model, fs.n_frames, fs.n_coeffs, n_classes, settings.learning_rate, settings.label_smoothing, settings.seed, loss=loss, l2=settings.l2, frames=settings.frames)
    monitor = "val_loss" if val is not None else "loss"
    with tempfile.TemporaryDirectory() as tmp:
        best = os.path.join(tmp, "best.weights.h5")
        callbacks = [
            keras.callbacks.EarlyStopping(monitor=monitor, patience=settings.patience),
            keras.callbacks.ReduceLROnPlateau(monitor=monitor, factor=0.5, patience=settings.lr_patience, min_lr=1e-5),
            keras.callbacks.ModelCheckpoint(best, monitor=monitor, save_best_only=True, save_weights_only=True),
        ]
        t0 = time.perf_counter()
        hist = model.fit(train_ds, validation_data=val, epochs=settings.epochs, callbacks=callbacks, shuffle=False, verbose=0)
        seconds = time.perf_counter() - t0
        model.load_weights(best)

    recordings = data.meta["recording_id"].to_numpy()
    temperature = settings.temperature if settings.calibration == "cv" else 1.0
    if settings.calibration == "val" and val is not None:  # on the validation speakers, never on the test speakers
        p_val = np.asarray(model.predict(val[0], batch_size=256, verbose=0))
        temperature = measures.fit_temperature(p_val, y[m["val"]], recordings[m["val"]])
    result = _judge(model, data, m["test"], y, classes, scaler, norm, temperature, settings) if m["test"].any() else {"classes": classes}
    result["calibration"] = settings.calibration
    result["temperature"] = temperature
    history = {k: [float(v) for v in vals] for k, vals in hist.history.items() if k != "learning_rate"}
    epochs = len(history.get("loss", []))
    result.update(
        fold=split.fold,
        protocol=split.protocol,
        test_speakers=list(split.test_speakers),
        epochs_run=epochs,
        seconds_train=seconds,
        seconds_per_epoch=seconds / max(epochs, 1),
        streamed=streamed,
        rows={k: int(v.sum()) for k, v in m.items()},
        history=history,
    )
    if out is not None:
        if loss is not None:  # the saved file's compile config names built-in objects only: it loads in safe mode
            model.compile(loss=keras.losses.CategoricalCrossentropy(label_smoothing=settings.label_smoothing), metrics=["accuracy"])
        _save(Path(out), model, scaler, data, split, settings, classes, result, name, model_version, job, card)
    return result


def _judge(model: Any, data: Data, test: np.ndarray, y: np.ndarray, classes: list[str], scaler: Scaler, norm: GroupNorms | None, temperature: float, settings: TrainSettings) -> dict[str, Any]:
    """The test rows judged as ``score`` judges a recording (the mean of its windows' temperature-scaled
    probabilities): metrics, ECE before and after, each recording alone (with a prior), and the predictions."""
    recordings = data.meta["recording_id"].to_numpy()
    fs = data.features
    x_test = gather(data, test, norm)
    windows = np.asarray(model.predict(scaler.transform(x_test), batch_size=256, verbose=0))
    # as score judges a recording: the mean probability over its windows (each window's temperature-scaled)
    raw, y_test = measures.per_recording(windows, y[test], recordings[test])
    proba = measures.per_recording(measures.apply_temperature(windows, temperature), y[test], recordings[test])[0]
    result = measures.metrics(y_test, proba.argmax(axis=1), classes)
    result["ece"] = measures.expected_calibration_error(proba, y_test)  # of the probabilities the model gives, test speakers
    if settings.calibration != "none":
        result["ece_uncalibrated"] = measures.expected_calibration_error(raw, y_test)
    alone = alone_norm(data, test, norm) if norm is not None and norm.prior is not None and fs.grid else None
    if alone is not None:  # what `predict` (and `score --speakers recording`) says of each test recording on its own
        w_alone = measures.apply_temperature(np.asarray(model.predict(scaler.transform(gather(data, test, alone)), batch_size=256, verbose=0)), temperature)
        proba_alone = measures.per_recording(w_alone, y[test], recordings[test])[0]
        result["uar_alone"] = measures.metrics(y_test, proba_alone.argmax(axis=1), classes)["uar"]
    # lets a benchmark average models (proba) and cross-validation fit a temperature on other folds (windows, raw)
    result["test_predictions"] = {
        "y": y_test.tolist(),
        "proba": proba.tolist(),
        "windows": {"proba": windows.tolist(), "y": y[test].tolist(), "recording": recordings[test].astype(str).tolist()},
        **({"proba_alone": proba_alone.tolist()} if alone is not None else {}),
    }
    return result


def _stream_dataset(data: Data, mask: np.ndarray, targets: np.ndarray, weights: np.ndarray, scaler: Scaler, settings: TrainSettings, norm: GroupNorms | None = None):  # type: ignore[no-untyped-def]
    """tf.data over Parquet batches of (features, masked targets, sample weights): memory stays flat however large
    the training set (targets and weights are per-row arrays of all rows, small beside the features)."""
    import tensorflow as tf

    fs = data.features

    def gen() -> Iterator[tuple[np.ndarray, np.ndarray, np.ndarray]]:
        for x, idx in iter_rows(data, mask, batch_rows=max(settings.batch_size * 16, 1024), norm=norm):
            yield scaler.transform(x), targets[idx], weights[idx]

    sig = (
        tf.TensorSpec((None, fs.n_frames, fs.n_coeffs), tf.float32),
        tf.TensorSpec((None, targets.shape[1]), tf.float32),
        tf.TensorSpec((None,), tf.float32),
    )
    ds = tf.data.Dataset.from_generator(gen, output_signature=sig).unbatch()
    return ds.shuffle(8192, seed=settings.seed).batch(settings.batch_size).prefetch(2)


def _regularise(ds, settings: TrainSettings):  # type: ignore[no-untyped-def]
    """SpecAugment-style masks and mixup on training batches (never on validation or test) of (x, targets, weights).

    Mixup mixes the one-hot parts of two rows' targets and their weights; the mixed row may teach the classes
    either row's corpus has (the union of the two masks, so neither row's label is ever disallowed).
    """
    import tensorflow as tf

    def mask(x, y, w):  # type: ignore[no-untyped-def]
        shape = tf.shape(x)
        b, t, c = shape[0], shape[1], shape[2]

        def band(length, width):  # type: ignore[no-untyped-def]
            start = tf.random.uniform([b, 1], 0, length, tf.int32)
            w = tf.random.uniform([b, 1], 0, width + 1, tf.int32)
            r = tf.range(length)[None, :]
            return tf.cast((r >= start) & (r < start + w), x.dtype)

        keep = (1.0 - band(t, settings.time_mask))[:, :, None] * (1.0 - band(c, settings.coeff_mask))[:, None, :]
        return x * keep, y, w

    def mix(x, y, w):  # type: ignore[no-untyped-def]
        b = tf.shape(x)[0]
        g1 = tf.random.gamma([b], settings.mixup)
        g2 = tf.random.gamma([b], settings.mixup)
        lam = g1 / (g1 + g2)
        idx = tf.random.shuffle(tf.range(b))
        lx = tf.cast(tf.reshape(lam, [-1, 1, 1]), x.dtype)
        ly = tf.cast(tf.reshape(lam, [-1, 1]), y.dtype)
        lw = tf.cast(lam, w.dtype)
        y2, w2 = tf.gather(y, idx), tf.gather(w, idx)
        target = ly * tf.maximum(y, 0.0) + (1 - ly) * tf.maximum(y2, 0.0)
        allowed = (y >= 0) | (y2 >= 0)
        return lx * x + (1 - lx) * tf.gather(x, idx), tf.where(allowed, target, -tf.ones_like(target)), lw * w + (1 - lw) * w2

    if settings.specaugment:
        ds = ds.map(mask, num_parallel_calls=tf.data.AUTOTUNE)
    if settings.mixup > 0:
        ds = ds.map(mix, num_parallel_calls=tf.data.AUTOTUNE)
    return ds.prefetch(2)


def _save(out: Path, model: Any, scaler: Scaler, data: Data, split: splits.Split, settings: TrainSettings, classes: list[str], result: dict[str, Any], name: str | None, model_version: str, job: str | None, card: str = "") -> None:
    from ser_batch import modeldir

    protocol_note = _protocol_note(split)
    config = {
        "name": name or out.name,
        "model_version": model_version,
        "job": job,
        "classes": classes,
        "features": data.features.to_dict(),
        "augment": data.augment,
        "model": settings.to_dict(),
        "protocol": split.protocol,
        "protocol_note": protocol_note,
        "split": split.to_dict(),
        "data": {"dirs": list(data.dirs), "fingerprints": data.fingerprints, "rows": result["rows"]},
        "created": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "temperature": result["temperature"],
    }
    modeldir.save(out, model, config, scaler)
    metrics = {k: v for k, v in result.items() if k not in IN_MEMORY_ONLY}
    plots.curves(result["history"], out / "curves.png")
    if "uar" in metrics:
        ev.write_report(out, metrics, f"{config['name']}: {settings.model} model, test speakers", protocol_note)
    else:  # protocol all: nothing was held out, so no figure here; the card carries the cross-validated ones
        for stale in ("metrics.json", "confusion.png"):  # a previous model's figures in the same directory
            (out / stale).unlink(missing_ok=True)
        (out / "report.md").write_text(f"# {config['name']}: {settings.model} model\n\nProtocol: {protocol_note}\n")
    write_json_atomic(result["history"], out / "history.json")
    modeldir.write_model_card(out, sorted(data.meta["corpus"].unique()), extra=card)


def _protocol_note(split: splits.Split) -> str:
    if split.protocol == "seed-random":
        return (
            "seed-random — the origin notebook's random split over augmented rows. LEAKY: copies of one recording "
            "are on both sides, so this figure overstates accuracy on new speakers. For comparison only."
        )
    if split.protocol == "all":
        return (
            f"all — every speaker of every corpus trained except {len(split.val_speakers)} validation speakers, who "
            "chose the epoch and learning rate; no test speakers, so the figures on unseen speakers are those of this "
            "configuration's cross-validation (the card); augmented copies only in training."
        )
    if split.protocol == "loco":
        held = ", ".join(sorted({splits.corpus_of(s) for s in split.test_speakers}))
        return (
            f"loco — leave one corpus out: all {len(split.test_speakers)} speakers of {held} tested, none of its "
            f"recordings trained or validated; {len(split.val_speakers)} validation speakers of the other corpora "
            "chose the epoch and learning rate; augmented copies only in training; scaler fitted on training rows."
        )
    return (
        f"{split.protocol}, fold {split.fold} — speaker-independent: {len(split.test_speakers)} test speakers never "
        f"heard in training ({', '.join(split.test_speakers)}); {len(split.val_speakers)} validation speakers "
        "chose the epoch and learning rate; augmented copies only in training; scaler fitted on training rows."
    )


def make_splits(data: Data, protocol: str, fold: int, settings: TrainSettings, folds: Sequence[int] | None = None, corpus: str | None = None) -> list[splits.Split]:
    """The splits a protocol asks for (``folds`` narrows cv to some folds; ``corpus`` names loco's test corpus)."""
    if protocol not in splits.PROTOCOLS:
        raise ConfigError(f"unknown protocol {protocol!r}; known: {', '.join(splits.PROTOCOLS)}")
    speakers = data.meta["speaker"].unique().tolist()
    if protocol == "seed-random":
        return [splits.Split("seed-random", None, tuple(sorted(speakers)), (), (), settings.seed)]
    if protocol == "loco":
        if not corpus:
            raise ConfigError("protocol loco needs the corpus to leave out (corpus='tess', say)")
        return [splits.loco_split(speakers, corpus, settings.n_val_speakers, settings.seed)]
    if protocol == "all":
        return [splits.all_split(speakers, settings.n_val_speakers, settings.seed)]
    chosen = (folds or range(1, splits.N_FOLDS + 1)) if protocol == "cv" else [fold]
    return [splits.speaker_split(speakers, f, settings.n_val_speakers, settings.seed, protocol=protocol) for f in chosen]


def train(
    feature_dirs: Sequence[str | os.PathLike[str]],
    out: str | os.PathLike[str],
    *,
    protocol: str = "holdout",
    fold: int = 1,
    settings: TrainSettings = TrainSettings(),
    scheduler: str | None = None,
    workers: int | None = None,
    echo: Callable[[str], None] | None = None,
    name: str | None = None,
    model_version: str = "dev",
    job: str | None = None,
    folds: Sequence[int] | None = None,
    card: str = "",
    corpus: str | None = None,
) -> dict[str, Any]:
    """Train on shards as Dask tasks. ``holdout``/``loco``/``seed-random`` save a model dir to ``out``; ``cv`` writes
    per-fold and mean ± sd figures (cv.json, report.md) to ``out``. ``corpus``: the corpus ``loco`` leaves out."""
    say = echo or (lambda _m: None)
    dirs = [os.path.abspath(d) for d in feature_dirs]  # workers may run in another directory
    data = load_meta(dirs)
    plan = make_splits(data, protocol, fold, settings, folds, corpus)
    cores = os.cpu_count() or 1
    n_workers = workers or min(len(plan), cores)
    threads = max(1, cores // n_workers)
    out_dir = Path(os.path.abspath(out))
    say(f"Training {settings.model} on {len(data.meta)} rows from {len(dirs)} shard folder(s), protocol {protocol}, {len(plan)} fit(s).")
    with dask_client(scheduler, n_workers, echo=say) as client:
        futures = [
            client.submit(
                fit, dirs, sp, settings, None if protocol == "cv" else str(out_dir), threads, name, model_version, job, card,
                key=f"fit-{protocol}-{sp.fold}-{_digest(sp)}", retries=RETRIES, pure=False,
            )
            for sp in plan
        ]  # fmt: skip
        results = client.gather(futures)
    if protocol != "cv":
        return results[0]
    return _write_cv(out_dir, results, settings, data)


def _write_cv(out: Path, results: list[dict[str, Any]], settings: TrainSettings, data: Data) -> dict[str, Any]:
    """Write cv.json, report.md and the pooled confusion; return the report with each fold's full in-memory result."""
    out.mkdir(parents=True, exist_ok=True)
    rows = [{k: v for k, v in r.items() if k not in IN_MEMORY_ONLY} for r in results]
    summary = {
        k: {"mean": float(np.mean([r[k] for r in rows])), "sd": float(np.std([r[k] for r in rows]))}
        for k in ("accuracy", "macro_f1", "uar", "weighted_f1", "ece", "seconds_per_epoch", "uar_alone")
        if all(k in r for r in rows)
    }
    classes = rows[0]["classes"]
    pooled = np.sum([np.asarray(r["confusion"]) for r in rows if r["classes"] == classes], axis=0)
    calibration = cv_calibration(results)
    report = {
        "protocol": "cv: speaker folds (EmoBox folds for RAVDESS); validation speakers from each fold's training speakers",
        "settings": settings.to_dict(),
        "features": data.features.to_dict(),
        "data": data.fingerprints,
        "summary": summary,
        "calibration": calibration,
        "folds": rows,
    }
    write_json_atomic(report, out / "cv.json")
    plots.confusion(pooled.tolist(), classes, out / "confusion.png", f"{settings.model}: pooled over {len(rows)} folds")
    cal = ""
    if calibration is not None:
        cal = (
            f"Calibration ({calibration['chosen_on']}): ECE {calibration['ece_before']:.3f} before, "
            f"{calibration['ece_after']:.3f} after temperature scaling, each fold scaled by a temperature fitted on the "
            f"other folds; one temperature fitted on all {calibration['folds']} folds: {calibration['temperature']:.3f}.\n\n"
        )
    if "uar_alone" in summary:
        cal += (f"Each test recording judged alone (its own statistics shrunk toward the training groups', as `predict` "
                f"does): UAR {summary['uar_alone']['mean']:.3f} ± {summary['uar_alone']['sd']:.3f}.\n\n")
    (out / "report.md").write_text(
        f"# Cross-validation: {settings.model} model\n\n{report['protocol']}.\n\n{ev.summary_table(rows)}\n\n{cal}"
        "![pooled confusion matrix](confusion.png)\n"
    )
    return {**report, "folds": results}


def cv_calibration(results: Sequence[dict[str, Any]]) -> dict[str, Any] | None:
    """A temperature chosen on the cross-validation's out-of-fold test predictions, judged honestly.

    ECE before: each fold's recordings with the model's own probabilities. ECE after: each fold's recordings scaled
    by a temperature fitted on the *other* folds' predictions only (cross-fitted), so no recording helped choose
    the temperature it is judged with. ``temperature``: one temperature fitted on all folds, the one a model of this
    configuration would ship. Temperatures apply per window, before the windows of a recording are averaged, as
    ``score`` does. Folds with another class list than the first are left out; None with fewer than two folds.
    """
    classes = results[0]["classes"]
    folds = [r for r in results if r["classes"] == classes and "windows" in r.get("test_predictions", {})]
    if len(folds) < 2:
        return None
    win = [r["test_predictions"]["windows"] for r in folds]
    p = [np.asarray(w["proba"], np.float64) for w in win]
    y = [np.asarray(w["y"], int) for w in win]
    rec = [np.array([f"{i}/{r}" for r in w["recording"]]) for i, w in enumerate(win)]
    before, after, per_fold = [], [], []
    for k in range(len(folds)):
        others = [i for i in range(len(folds)) if i != k]
        t = measures.fit_temperature(np.concatenate([p[i] for i in others]), np.concatenate([y[i] for i in others]), np.concatenate([rec[i] for i in others]))
        b = measures.per_recording(p[k], y[k], rec[k])
        a = measures.per_recording(measures.apply_temperature(p[k], t), y[k], rec[k])
        before.append(b)
        after.append(a)
        per_fold.append({
            "fold": folds[k]["fold"], "temperature": t,
            "ece_before": measures.expected_calibration_error(*b), "ece_after": measures.expected_calibration_error(*a),
        })  # fmt: skip

    def pooled(parts: list[tuple[np.ndarray, np.ndarray]]) -> float:
        return measures.expected_calibration_error(np.concatenate([q for q, _ in parts]), np.concatenate([t for _, t in parts]))

    return {
        "chosen_on": f"out-of-fold test predictions of {len(folds)} cross-validation folds (each fold judged with a temperature fitted on the others)",
        "folds": len(folds),
        "temperature": measures.fit_temperature(np.concatenate(p), np.concatenate(y), np.concatenate(rec)),
        "ece_before": pooled(before),
        "ece_after": pooled(after),
        "per_fold": per_fold,
    }


def _digest(obj: Any) -> str:
    return hashlib.sha256(json.dumps(obj.to_dict(), sort_keys=True).encode()).hexdigest()[:8]
