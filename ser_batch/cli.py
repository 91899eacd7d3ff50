"""The ``ser-batch`` command line: a thin face over the Python API (parse options, call, print)."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Annotated, Optional

import typer

from ser_batch.errors import SerBatchError

app = typer.Typer(
    name="ser-batch",
    help="Speech emotion recognition as a batch job over audio corpora, on Dask (local by default).",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)

@app.callback()
def _root() -> None:
    """Speech emotion recognition as a batch job over audio corpora, on Dask (local by default)."""


Scheduler = Annotated[
    Optional[str],
    typer.Option("--scheduler", help="Address of a running Dask scheduler (tcp://HOST:PORT); default: a local cluster."),
]
Workers = Annotated[
    Optional[int], typer.Option("--workers", help="Worker processes of the local cluster; default: one per core.")
]
Quiet = Annotated[bool, typer.Option("--quiet", "-q", help="No progress bar or chatter; summaries only.")]


def _echo(quiet: bool):  # type: ignore[no-untyped-def]
    return None if quiet else (lambda msg: typer.echo(msg, err=True))


def _fail(exc: SerBatchError) -> None:
    typer.secho(f"error: {exc}", err=True, fg=typer.colors.RED)
    raise typer.Exit(2)


@app.command()
def extract(
    corpus_dirs: Annotated[list[Path], typer.Argument(help="Corpus folders (searched recursively), audio files, or CSV manifests path,label[,speaker].", show_default=False)],
    out: Annotated[Path, typer.Option("--out", "-o", help="Output folder for shards, manifest, catalog and errors.")] = Path("features"),
    corpus: Annotated[Optional[str], typer.Option("--corpus", help="Force one layout (ravdess, cremad, tess, savee, emodb, generic) instead of detecting it per file.")] = None,
    augment: Annotated[bool, typer.Option("--augment/--no-augment", help="Also write noise, pitch-shift and time-stretch copies (training only).")] = True,
    seed: Annotated[int, typer.Option(help="Seed of the augmentations; same seed, same copies.")] = 0,
    offset: Annotated[float, typer.Option(help="Start of the analysis window in seconds (the seed's 0.6).")] = 0.6,
    duration: Annotated[float, typer.Option(help="Length of the analysis window in seconds (the seed's 2.5).")] = 2.5,
    files_per_shard: Annotated[int, typer.Option(help="Files per task and shard (x4 rows with augmentation).")] = 128,
    scheduler: Scheduler = None,
    workers: Workers = None,
    quiet: Quiet = False,
) -> None:
    """Find audio, parse labels and speakers from the corpus layout, and write feature shards (Parquet) in parallel."""
    from ser_batch.augment import AugmentSettings
    from ser_batch.extract import extract as run
    from ser_batch.features import FeatureSettings

    try:
        fs = FeatureSettings(offset_s=offset, duration_s=duration)
        result = run(
            corpus_dirs, out, corpus=corpus, feature_settings=fs,
            augment_settings=AugmentSettings(seed=seed) if augment else None,
            files_per_shard=files_per_shard, scheduler=scheduler, workers=workers,
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


def main() -> None:  # pragma: no cover - console entry for `python -m ser_batch`
    app(prog_name="ser-batch")


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
