"""The ``ser-batch`` command line: a thin face over the Python API (parse options, call, print)."""

from __future__ import annotations

import functools
import os
import signal
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Annotated, Any, Optional

import typer

from ser_batch.errors import SerBatchError
from ser_batch.windows import SCORE_HOP_S, SILENCE_DB, TRAIN_HOP_S

app = typer.Typer(
    name="ser-batch",
    help="Speech emotion recognition as a batch job over audio corpora, on Dask (local by default).",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)


def package_version() -> str:
    """The installed ser-batch's version (the package's own where it is not installed)."""
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("ser-batch")
    except PackageNotFoundError:
        from ser_batch import __version__

        return __version__


def _print_version(value: bool) -> None:
    if value:
        typer.echo(f"ser-batch {package_version()}")
        raise typer.Exit()


@app.callback()
def _root(
    verbose: Annotated[bool, typer.Option("--verbose", help="Also show TensorFlow's and absl's start-up lines (hidden by default).")] = False,
    version: Annotated[Optional[bool], typer.Option("--version", callback=_print_version, is_eager=True, help="Print the version and exit.")] = None,
) -> None:
    """Speech emotion recognition as a batch job over audio corpora, on Dask (local by default)."""
    # SIGTERM unwinds like Ctrl-C: jobs clean their temporaries, keep finished parts, and a rerun resumes.
    signal.signal(signal.SIGTERM, _interrupt)
    if verbose:  # importing ser_batch hid them (ser_batch/quiet.py); nothing has imported TensorFlow yet
        import ser_batch
        from ser_batch import quiet

        quiet.uninstall()
        if ser_batch.TF_LOG_LEVEL_SET_HERE:
            os.environ["TF_CPP_MIN_LOG_LEVEL"] = "0"


def _interrupt(signum: int, _frame: object) -> None:
    raise KeyboardInterrupt(f"signal {signum}")


# ---------------------------------------------------------------- defaults of extract and train

DEFAULT_MODELS = "the default model's"
"""What --help says for the options whose defaults come from the default model's configuration."""


@functools.cache
def default_config() -> dict[str, Any]:
    """config.json of the default model (models/ser-default, or $SER_BATCH_MODEL): ``extract`` and ``train`` take
    their defaults from it, so that running them with no options makes that model's configuration again (features,
    shifted windows, model, epochs, ...). Where it cannot be read, the Python API's defaults apply, and a note says so."""
    import json

    from ser_batch.modeldir import default_model

    path = default_model() / "config.json"
    try:
        config = json.loads(path.read_text())
        if isinstance(config, dict):
            return config
        problem = "not a JSON object"
    except (OSError, ValueError) as exc:
        problem = str(exc)
    typer.secho(f"note: {path} cannot be read ({problem}); defaults are the Python API's (seed features, frames model)", err=True, fg=typer.colors.YELLOW)
    return {}


def _feature_set() -> str:
    from ser_batch.features import FeatureSettings

    return str(default_config().get("features", {}).get("name", FeatureSettings().name))


def _augment() -> bool:
    """Augmented copies unless the default model was made without (its config's augment is null)."""
    config = default_config()
    return not config or config.get("augment") is not None


def _augment_setting(name: str) -> Callable[[], Any]:
    def default() -> Any:
        from ser_batch.augment import AugmentSettings

        aug = default_config().get("augment") or {}
        return aug.get(name, getattr(AugmentSettings(), name))

    return default


def _train_setting(name: str) -> Callable[[], Any]:
    def default() -> Any:
        from ser_batch.train import TrainSettings

        return default_config().get("model", {}).get(name, getattr(TrainSettings(), name))

    return default


Scheduler = Annotated[
    Optional[str],
    typer.Option("--scheduler", help="Address of a running Dask scheduler (tcp://HOST:PORT); default: a local cluster."),
]
Workers = Annotated[
    Optional[int], typer.Option("--workers", help="Worker processes of the local cluster; default: one per usable CPU (affinity and cgroup quota), at most one per 2 GB of memory.")
]
Device = Annotated[str, typer.Option(help="Where workers run the Whisper encoder: auto (a GPU where the worker has one), cpu or cuda.")]
Quiet = Annotated[bool, typer.Option("--quiet", "-q", help="No progress bar or chatter; summaries only.")]


def _echo(quiet: bool):  # type: ignore[no-untyped-def]
    return None if quiet else (lambda msg: typer.echo(msg, err=True))


def _fail(exc: SerBatchError) -> None:
    typer.secho(f"error: {exc}", err=True, fg=typer.colors.RED)
    raise typer.Exit(2)


@app.command()
def extract(
    corpus_dirs: Annotated[list[Path], typer.Argument(help="Corpus folders (searched recursively), audio files, lists of paths (.txt/.lst one a line; .parquet, or .csv without a label column, with a path column), or CSV manifests path,label[,speaker].", show_default=False)],
    feature_set: Annotated[str, typer.Option("--features", default_factory=_feature_set, show_default=DEFAULT_MODELS, help="Feature set: seed (ZCR, RMS, MFCC: the seed's), logmel (log-mel + energy), logmel_pitch (logmel + F0 and voicing) or whisper_base (frozen Whisper base encoder states + energy).")],
    augment: Annotated[bool, typer.Option("--augment/--no-augment", default_factory=_augment, show_default=DEFAULT_MODELS, help="Also write noise, pitch-shift and time-stretch copies (training only).")],
    seed: Annotated[int, typer.Option(default_factory=_augment_setting("seed"), show_default=DEFAULT_MODELS, help="Seed of the augmentations; same seed, same copies.")],
    shifts: Annotated[int, typer.Option(default_factory=_augment_setting("shifts"), show_default=DEFAULT_MODELS, help="With --augment, also this many windows at random positions of each recording (training only), so a model does not learn where speech starts in its window; 0 for none (the seed's).")],
    out: Annotated[Path, typer.Option("--out", "-o", help="Output folder for shards, manifest, catalog and errors.")] = Path("features"),
    corpus: Annotated[Optional[str], typer.Option("--corpus", help="Force one layout (ravdess, cremad, tess, savee, emodb, generic) instead of detecting it per file.")] = None,
    normalize: Annotated[Optional[str], typer.Option(help="Per-window normalisation: none or utterance (subtract each band's mean).")] = None,
    offset: Annotated[Optional[float], typer.Option(help="Start of the analysis window in seconds (seed: 0.6, logmel*: 0.5).")] = None,
    duration: Annotated[Optional[float], typer.Option(help="Length of the analysis window in seconds (seed: 2.5, logmel*: 3.0).")] = None,
    files_per_shard: Annotated[Optional[int], typer.Option(help="Files per task and shard (x4 rows with augmentation); default 64.")] = None,
    window_hop: Annotated[float, typer.Option(help="whisper_base: a training window every this many seconds of each whole recording, as score slides them.")] = TRAIN_HOP_S,
    device: Device = "auto",
    scheduler: Scheduler = None,
    workers: Workers = None,
    quiet: Quiet = False,
) -> None:
    """Find audio, parse labels and speakers from the corpus layout, and write feature shards (Parquet) in parallel.

    Paths stream from folders and lists of paths into tasks of --files-per-shard files; labels and speakers come
    from each path's corpus layout (a CSV with a label column is a manifest and gives them instead). A listed path
    that does not exist is reported in errors.parquet. A rerun with the same inputs and settings skips finished
    shards; a file changed in place under the same path is not extracted again (delete --out to redo it).

    With no options it makes the default model's features (`ser-batch models` shows them); the seed's are
    `--features seed --shifts 0`.
    """
    from ser_batch.augment import AugmentSettings
    from ser_batch.extract import FILES_PER_SHARD, WindowSettings
    from ser_batch.extract import extract as run
    from ser_batch.features import FeatureSettings

    try:
        fs = FeatureSettings.preset(feature_set, offset_s=offset, duration_s=duration, normalize=normalize)
        result = run(
            corpus_dirs, out, corpus=corpus, feature_settings=fs,
            augment_settings=AugmentSettings(seed=seed, shifts=shifts) if augment else None,
            files_per_shard=FILES_PER_SHARD if files_per_shard is None else files_per_shard,
            window_settings=WindowSettings(hop_s=window_hop), scheduler=scheduler, workers=workers, device=device,
            progress=not quiet, echo=_echo(quiet),
        )  # fmt: skip
    except SerBatchError as exc:
        _fail(exc)
        return
    rate = (result.files_ok + result.files_failed) / result.seconds if result.seconds else 0.0
    typer.echo(
        f"files ok: {result.files_ok}, failed: {result.files_failed}; rows written: {result.rows} in "
        f"{result.shards} shards ({result.shards_skipped} reused); {result.seconds:.1f} s, {rate:.1f} files/s -> {out}"
    )
    if result.files_failed:
        typer.echo(f"failures are listed in {out / 'errors.parquet'}")
    if result.files_ok == 0:
        typer.secho("error: no file could be read", err=True, fg=typer.colors.RED)
        raise typer.Exit(1)


@app.command()
def train(
    feature_dirs: Annotated[list[Path], typer.Argument(help="Shard folders made by `ser-batch extract` (same feature settings).", show_default=False)],
    model: Annotated[str, typer.Option(default_factory=_train_setting("model"), show_default=DEFAULT_MODELS, help="frames (the seed's blocks over time), seed (the origin's flat layout, ~20x slower), attn (compact, with attention pooling), pool (for encoder states: whisper_base), linear (a logistic regression over each coefficient's mean and mean square).")],
    epochs: Annotated[int, typer.Option(default_factory=_train_setting("epochs"), show_default=DEFAULT_MODELS, help="Maximum epochs (early stopping watches the validation speakers).")],
    batch_size: Annotated[int, typer.Option(default_factory=_train_setting("batch_size"), show_default=DEFAULT_MODELS, help="Batch size.")],
    learning_rate: Annotated[float, typer.Option(default_factory=_train_setting("learning_rate"), show_default=DEFAULT_MODELS, help="Adam learning rate.")],
    val_speakers: Annotated[int, typer.Option(default_factory=_train_setting("n_val_speakers"), show_default=DEFAULT_MODELS, help="Validation speakers taken from the training speakers.")],
    seed: Annotated[int, typer.Option(default_factory=_train_setting("seed"), show_default=DEFAULT_MODELS, help="Random seed (weights, shuffling, validation speakers).")],
    patience: Annotated[int, typer.Option(default_factory=_train_setting("patience"), show_default=DEFAULT_MODELS, help="Early stopping: epochs without a better validation loss.")],
    specaugment: Annotated[bool, typer.Option("--specaugment/--no-specaugment", default_factory=_train_setting("specaugment"), show_default=DEFAULT_MODELS, help="Random time and coefficient masks on training batches.")],
    mixup: Annotated[float, typer.Option(default_factory=_train_setting("mixup"), show_default=DEFAULT_MODELS, help="Mixup Beta(a, a) on training pairs; 0 is off (0.2 is typical).")],
    label_smoothing: Annotated[float, typer.Option(default_factory=_train_setting("label_smoothing"), show_default=DEFAULT_MODELS, help="Label smoothing of the training targets (0.1 is typical).")],
    l2: Annotated[float, typer.Option("--l2", default_factory=_train_setting("l2"), show_default=DEFAULT_MODELS, help="The linear model's L2 penalty on its weights (larger: simpler, steadier across corpora).")],
    speaker_norm: Annotated[bool, typer.Option("--speaker-norm/--no-speaker-norm", default_factory=_train_setting("speaker_norm"), show_default=DEFAULT_MODELS, help="Z-score each speaker's features with that speaker's own recordings (score then needs --speakers).")],
    norm_by: Annotated[str, typer.Option(default_factory=_train_setting("norm_by"), show_default=DEFAULT_MODELS, help="With --speaker-norm: 'speaker', or 'corpus' (each corpus z-scored with its own statistics; score takes the job's).")],
    norm_prior_s: Annotated[float, typer.Option(default_factory=_train_setting("norm_prior_s"), show_default=DEFAULT_MODELS, help="With --speaker-norm: seconds of speech the training groups' typical statistics count for in every group's, so that a lone recording is judged (0: off).")],
    label_mask: Annotated[bool, typer.Option("--label-mask/--no-label-mask", default_factory=_train_setting("label_mask"), show_default=DEFAULT_MODELS, help="Each row's loss over the labels its corpus has only: a corpus without calm never teaches 'not calm'.")],
    corpus_balance: Annotated[str, typer.Option(default_factory=_train_setting("corpus_balance"), show_default=DEFAULT_MODELS, help="Each corpus's share of the training loss: equal, sqrt (grows with the square root of its rows) or none (its rows').")],
    out: Annotated[Path, typer.Option("--out", "-o", help="Model directory (holdout, seed-random) or report folder (cv).")] = Path("models/my-model"),
    protocol: Annotated[str, typer.Option(help="holdout: one speaker fold is the test set; cv: every fold once (mean ± sd); all: every speaker trains but a few validation speakers (no figures; the shipped model once cv has chosen); seed-random: the origin's LEAKY row split, for comparison only.")] = "holdout",
    fold: Annotated[int, typer.Option(help="Test fold for holdout (1-6; RAVDESS uses the EmoBox actor folds).")] = 1,
    frames: Annotated[Optional[str], typer.Option(show_default=False, help="all, or inside: the linear model's means leave out the frames past a recording's end (a 1 s word in a 3 s window is two thirds padding). Default: the default model's for --model linear, all for the others.")] = None,
    scheduler: Scheduler = None,
    workers: Workers = None,
    quiet: Quiet = False,
) -> None:
    """Train a model from shards with an honest speaker split, and evaluate it on speakers it never heard.

    With no options it trains the default model's configuration (model, epochs, patience, label smoothing, ...:
    `ser-batch models` shows it); the seed's CNN is `--model frames`. The Python API (`TrainSettings`) keeps its
    own defaults.
    """
    from ser_batch.train import TrainSettings
    from ser_batch.train import train as run

    settings = TrainSettings(
        model=model, epochs=epochs, batch_size=batch_size, learning_rate=learning_rate, n_val_speakers=val_speakers,
        seed=seed, patience=patience, specaugment=specaugment, mixup=mixup, label_smoothing=label_smoothing,
        speaker_norm=speaker_norm, norm_by=norm_by, norm_prior_s=norm_prior_s, label_mask=label_mask,
        corpus_balance=corpus_balance, l2=l2, frames=frames or (_train_setting("frames")() if model == "linear" else "all"),
    )  # fmt: skip
    try:
        result = run(feature_dirs, out, protocol=protocol, fold=fold, settings=settings, scheduler=scheduler, workers=workers, echo=_echo(quiet))
    except SerBatchError as exc:
        _fail(exc)
        return
    if protocol == "cv":
        s = result["summary"]
        typer.echo(
            f"cv over {len(result['folds'])} speaker folds: UAR {s['uar']['mean']:.3f} ± {s['uar']['sd']:.3f}, "
            f"accuracy {s['accuracy']['mean']:.3f} ± {s['accuracy']['sd']:.3f}, macro F1 {s['macro_f1']['mean']:.3f} -> {out}/report.md"
        )
    elif protocol == "all":
        typer.echo(f"{_trained_on_all(result)} -> {out}")
    else:
        what = "LEAKY seed-random split" if protocol == "seed-random" else f"unseen test speakers (fold {fold})"
        typer.echo(
            f"{what}: UAR {result['uar']:.3f}, accuracy {result['accuracy']:.3f}, macro F1 {result['macro_f1']:.3f} "
            f"on {result['n']} recordings; {result['epochs_run']} epochs, {result['seconds_per_epoch']:.1f} s/epoch -> {out}"
        )


def _trained_on_all(result: dict[str, Any]) -> str:
    """The summary of a fit on every speaker (protocol all): no test speakers, so no figure to print."""
    return (f"trained on all speakers ({result['rows']['train']} rows; {result['rows']['val']} validation rows chose the epoch), "
            f"{result['epochs_run']} epochs, {result['seconds_per_epoch']:.1f} s/epoch; no test speakers: its figures are its "
            "configuration's cross-validation (the model card)")


@app.command()
def evaluate(
    model_dir: Annotated[Path, typer.Argument(help="A model directory made by `ser-batch train`.", show_default=False)],
    feature_dirs: Annotated[list[Path], typer.Argument(help="Shard folders; speakers the model trained or validated on are left out.", show_default=False)],
    out: Annotated[Optional[Path], typer.Option("--out", "-o", help="Report folder (metrics.json, report.md, confusion.png); default MODEL_DIR/eval-NAME.")] = None,
) -> None:
    """Evaluate a model on shards (its own test speakers, or another corpus restricted to the shared labels)."""
    from ser_batch.evaluate import evaluate as run

    target = out or model_dir / f"eval-{'-'.join(p.name for p in feature_dirs)}"
    try:
        m = run(model_dir, feature_dirs, target)
    except SerBatchError as exc:
        _fail(exc)
        return
    typer.echo(
        f"{m['n']} recordings of {len(m['speakers'])} unseen speakers, labels {', '.join(m['classes'])}: UAR {m['uar']:.3f}, "
        f"accuracy {m['accuracy']:.3f}, macro F1 {m['macro_f1']:.3f}, ECE {m['ece']:.3f} -> {target}/report.md"
    )


ModelOpt = Annotated[Optional[Path], typer.Option("--model", "-m", help="Model directory; default: the shipped models/ser-default (or $SER_BATCH_MODEL).")]


@app.command()
def score(
    inputs: Annotated[list[Path], typer.Argument(help="Folders (searched recursively), audio files of any length, or lists of paths (.txt/.lst one a line, .csv or .parquet with a path column).", show_default=False)],
    out: Annotated[str, typer.Option("--out", "-o", help="Report, one row per recording: .parquet, .csv, or a folder DIR/ for a partitioned Parquet dataset (large jobs).")] = "report.parquet",
    segments: Annotated[Optional[str], typer.Option("--segments", help="Also write one row per window to this .parquet, .csv or folder DIR/.")] = None,
    model: ModelOpt = None,
    hop: Annotated[float, typer.Option(help="Seconds between window starts (the shipped models' windows are 3 s; a multiple of 0.1 s for whisper_base, where a small hop costs no encoding).")] = SCORE_HOP_S,
    silence_db: Annotated[float, typer.Option(help="Windows whose loud frames stay below this dBFS are silence (never encoded).")] = SILENCE_DB,
    device: Device = "auto",
    max_hours: Annotated[float, typer.Option(help="Longer recordings are refused as oversized.")] = 48.0,
    speakers: Annotated[Optional[str], typer.Option(help="Speaker-normalised models only: who speaks in each recording. 'layout' (default: the speaker a known corpus layout names, else the recording), 'recording' (each its own), 'job' (all one; the default for a corpus-normalised model), or a CSV path,speaker.")] = None,
    scheduler: Scheduler = None,
    workers: Workers = None,
    quiet: Quiet = False,
) -> None:
    """Score whole directories of recordings into an emotion report (per recording, optionally per window)."""
    from ser_batch.labels import EMOTIONS
    from ser_batch.score import ScoreSettings
    from ser_batch.score import score as run

    try:
        settings = ScoreSettings(hop_s=hop, silence_db=silence_db, max_duration_s=max_hours * 3600)
        r = run(inputs, out, model=model, segments=segments, settings=settings, scheduler=scheduler, workers=workers, speakers=speakers, device=device, progress=not quiet, echo=_echo(quiet))
    except SerBatchError as exc:
        _fail(exc)
        return
    typer.echo(f"recordings: {r.recordings} ({r.ok} ok, {r.errors} errors), {r.audio_hours:.2f} h of audio in {r.seconds:.1f} s -> {out}")
    if r.ok:
        dist = ", ".join(f"{e} {r.distribution.get(e, 0)}" for e in EMOTIONS if r.distribution.get(e))
        typer.echo(f"dominant emotion: {dist}")
    if r.errors:
        typer.echo(f"errors: {r.errors} recordings have status 'error' with a reason in {out}")
    if r.ok == 0:
        raise typer.Exit(1)


@app.command()
def predict(
    files: Annotated[list[Path], typer.Argument(help="Audio files.", show_default=False)],
    model: ModelOpt = None,
    verbose: Annotated[bool, typer.Option("--verbose", "-v", help="Also print the probability of each emotion.")] = False,
    as_json: Annotated[bool, typer.Option("--json", help="Print one JSON object per file instead.")] = False,
    device: Device = "auto",
) -> None:
    """Print `Emotion Detected: <label>` for each file (the seed's predict.py), in this process."""
    import json

    from ser_batch.modeldir import default_model, read_config, read_prior
    from ser_batch.predict import predict_file

    try:
        settings = read_config(model or default_model())["model"]
        prior = read_prior(model or default_model()) if settings.get("speaker_norm") is True else None  # scaler.json is large: parsed only when it matters
    except SerBatchError:
        settings, prior = {}, None  # each file reports the broken model below, as before
    if settings.get("speaker_norm") is True and settings.get("norm_by") != "corpus" and prior is None:  # a corpus-normalised one is refused per file
        typer.secho("note: a speaker-normalised model takes each file as its own speaker here, which costs it most of its gain "
                    "(README: 0.50 UAR against 0.67 for ser-default); score several recordings per speaker with "
                    "`ser-batch score --speakers` instead", err=True, fg=typer.colors.YELLOW)
    failed = 0
    for f in files:
        try:
            p = predict_file(f, model, device=device)
        except SerBatchError as exc:
            failed += 1
            if as_json:
                typer.echo(json.dumps({"path": str(f), "status": "error", "error": str(exc)}))
            else:
                typer.secho(f"{f}: error: {exc}", err=True, fg=typer.colors.RED)
            continue
        if as_json:
            typer.echo(json.dumps({"path": str(f), "status": "ok", "emotion": p.emotion, "confidence": p.confidence, "probabilities": p.probabilities, "windows": p.windows, "speech_windows": p.speech_windows}))
            continue
        typer.echo(f"{f}: Emotion Detected: {p.emotion}" if len(files) > 1 else f"Emotion Detected: {p.emotion}")
        if verbose:
            for e, v in sorted(p.probabilities.items(), key=lambda kv: -kv[1]):
                typer.echo(f"  {e:<10} {v:.3f}")
    if failed == len(files):
        raise typer.Exit(1)


@app.command()
def job(
    spec: Annotated[Path, typer.Argument(help="A job spec in jobs/ (TOML): extract then train.", show_default=False)],
    scheduler: Scheduler = None,
    workers: Workers = None,
    quiet: Quiet = False,
) -> None:
    """Run a versioned job spec, e.g. `ser-batch job jobs/ser-default.toml` reproduces the shipped model."""
    from ser_batch.job import run_job

    try:
        r = run_job(spec, scheduler=scheduler, workers=workers, progress=not quiet, echo=_echo(quiet))
    except SerBatchError as exc:
        _fail(exc)
        return
    if "uar" not in r:  # protocol all
        typer.echo(f"{spec}: {_trained_on_all(r)}")
        return
    typer.echo(f"{spec}: test speakers UAR {r['uar']:.3f}, accuracy {r['accuracy']:.3f}, macro F1 {r['macro_f1']:.3f}")


@app.command("report")
def report_command(
    report_file: Annotated[Path, typer.Argument(metavar="REPORT", help="What `ser-batch score --out` wrote: a .parquet or .csv file, or a folder of .parquet parts.", show_default=False)],
    out: Annotated[Path, typer.Option("--out", "-o", help="The HTML page to write (one self-contained file: plots embedded, nothing loaded from the net).")] = Path("report.html"),
    segments: Annotated[Optional[Path], typer.Option("--segments", help="What `ser-batch score --segments` wrote: per-window timelines of a few recordings.")] = None,
    recordings: Annotated[int, typer.Option("--recordings", "-n", help="Timelines to draw: a third the most confident, a third the most angry, the rest at random.")] = 6,  # report.RECORDINGS (a test checks)
    group_by: Annotated[Optional[str], typer.Option("--group-by", help="Break the emotion mix down by this report column (e.g. speaker) instead of by date.")] = None,
    date_pattern: Annotated[Optional[str], typer.Option("--date-pattern", help="Regex that finds a recording's date in its path: named groups year, month[, day], or a group named date, or the whole match. Default: YYYY-MM-DD, YYYY_MM_DD, YYYY/MM/DD or YYYYMMDD anywhere in the path.")] = None,
    models_dir: Annotated[Optional[Path], typer.Option("--models", help="Folder of model directories where the report's model card is looked up; default: the default model's folder (models/).")] = None,
    title: Annotated[Optional[str], typer.Option(help="Title of the page; default: the report's file name.")] = None,
) -> None:
    """Make one self-contained HTML page of a score report: emotion mix, over time, confidence, timelines, errors, model."""
    from ser_batch.report import report as run

    try:
        r = run(report_file, out, segments=segments, recordings=recordings, group_by=group_by, date_pattern=date_pattern, models_dir=models_dir, title=title)
    except SerBatchError as exc:
        _fail(exc)
        return
    typer.echo(f"{r.rows:,} recordings ({r.ok:,} ok, {r.errors:,} errors), {r.timelines} timelines -> {r.out} ({r.bytes / 1000:,.0f} kB, {r.seconds:.1f} s)")


@app.command("models")
def models_command(
    folders: Annotated[Optional[list[Path]], typer.Argument(help="More folders of model directories (or model directories) to list beside the default model's folder (models/).", show_default=False)] = None,
) -> None:
    """List models: name, version, feature set, model, classes and the headline figure (UAR on unseen speakers)."""
    from ser_batch.modeldir import default_model

    default = default_model()
    roots = [default.parent, *(folders or [])]
    for f in folders or []:
        if not f.is_dir():
            _fail(SerBatchError(f"{f} is not a folder; give a folder of model directories, or a model directory"))
    dirs: dict[Path, Path] = {}
    for root in roots:
        for d in _model_dirs(root):
            dirs.setdefault(d.resolve(), d)
    if not dirs:
        typer.echo(f"no model directories (with a config.json) in {', '.join(map(str, roots))}")
        raise typer.Exit(1)
    rows, notes = [], []
    for real, d in dirs.items():
        row, note = _model_row(d, is_default=real == default.resolve())
        rows.append(row)
        if note:
            notes.append(f"{row[1]}: {note}")
    header = ("", "name", "version", "features", "model", "classes", "UAR", "accuracy", "path")
    widths = [max(len(str(r[i])) for r in [header, *rows]) for i in range(len(header))]
    for r in [header, *rows]:
        typer.echo("  ".join(str(v).ljust(w) for v, w in zip(r, widths)).rstrip())
    typer.echo("\n* the default model: score and predict use it, extract and train take their defaults from it. UAR and accuracy: the card's test speakers, never heard in training.")
    for n in notes:
        typer.secho(f"note: {n}", err=True, fg=typer.colors.YELLOW)


def _model_dirs(root: Path) -> list[Path]:
    """``root`` itself if it is a model directory, else its sub-folders that are."""
    if (root / "config.json").is_file():
        return [root]
    if not root.is_dir():
        return []
    return sorted(d for d in root.iterdir() if d.is_dir() and (d / "config.json").is_file())


def _model_row(d: Path, is_default: bool) -> tuple[tuple[str, ...], str | None]:
    """One line of `ser-batch models` from a model directory's config.json and metrics.json, and any problem."""
    import json

    from ser_batch import modeldir

    try:
        config = json.loads((d / "config.json").read_text())
    except (OSError, ValueError) as exc:
        return ("*" if is_default else "", d.name, "?", "?", "?", "?", "?", "?", str(d)), f"{d / 'config.json'} cannot be read ({exc})"
    try:
        metrics = json.loads((d / "metrics.json").read_text())
    except (OSError, ValueError):
        metrics = {}
    note = None
    try:
        modeldir.read_config(d)
    except SerBatchError as exc:
        note = f"not usable with this ser-batch: {exc}"
    fs, m = config.get("features", {}), config.get("model", {})
    classes = config.get("classes", [])
    fig = lambda k: f"{metrics[k]:.3f}" if isinstance(metrics.get(k), (int, float)) else "-"  # noqa: E731
    return (
        "*" if is_default else "",
        str(config.get("name", d.name)),
        str(config.get("model_version", "?")),
        f"{fs.get('name', '?')} v{fs.get('version', '?')}",
        str(m.get("model", "?")) + (f" +{m.get('norm_by', 'speaker')}-norm" if m.get("speaker_norm") is True else ""),
        str(len(classes)) if len(classes) == 8 else f"{len(classes)}: {','.join(classes)}",
        fig("uar"),
        fig("accuracy"),
        str(d),
    ), note


def main() -> None:  # pragma: no cover - console entry for `python -m ser_batch`
    app(prog_name="ser-batch")


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
