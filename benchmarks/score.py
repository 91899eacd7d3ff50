"""Time `ser-batch score` on long recordings built from corpus clips, and watch each worker's peak memory.

    python benchmarks/score.py --suite [--hours 0.5] [--workers N]     # the table in the README, one run
    python benchmarks/score.py [--hours 2.0] [--minutes-per-recording 30] [--workers N] [--corpus DIR]
    python benchmarks/score.py --lengths [--length-minutes 10 40 160] [--workers N]

--suite measures, on one cluster in one run: the encoder's own throughput (3 s blocks of speech through
``encoder.encode`` in every worker at once, as many layers deep as each model's feature version runs it: the
limit), then ``score`` with the default model on dense speech (clips with 0.3-1.5 s pauses) and on call-like audio
(the same with long pauses of faint noise, about 40 % of the time, below the silence gate), and the
speaker-normalised model on dense speech; each as x real time and as a share of its limit. Then a per-stage
profile of one worker's work on a dense recording (decode and resample, silence gate, front end, encoder,
classifier), in one process, against the same audio through ``score`` (the rest is Dask
scheduling, I/O and merging).

Recordings are made by concatenating random clips of the corpus (default ../shared/data/ravdess-speech) with random
0.3-1.5 s pauses, written as 16 kHz FLAC to a temporary folder one clip at a time (the builder never holds a whole
recording). They are then scored with the shipped model (models/ser-default, or --model) on a LocalCluster of
single-threaded worker processes made here, so that each worker's peak RSS (ru_maxrss) can be asked afterwards.

The model is loaded in every worker by a short warm-up run first, so the timed run measures scoring throughput:
audio seconds per wall second (x real time), and that per worker process (per core when workers <= cores).
--lengths scores one recording of each length on fresh workers and prints peak worker memory per length: streaming
and chunking should keep it flat however long the recording.
"""

from __future__ import annotations

import argparse
import os
import random
import resource
import shutil
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import soundfile as sf

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

SR = 16_000


def clip_paths(corpus: Path) -> list[str]:
    from ser_batch import corpora

    found = list(corpora.walk_audio(str(corpus.resolve()), lambda p, why: print(f"skipped {p}: {why}", file=sys.stderr)))
    if not found:
        sys.exit(f"no audio found under {corpus}")
    return found


def build_recording(path: Path, clips: list[str], seconds: float, rng: random.Random) -> float:
    """Write clips and 0.3-1.5 s pauses to ``path`` until ``seconds`` are reached; returns the length written."""
    from ser_batch import audio

    target = int(round(seconds * SR))
    written = 0
    with sf.SoundFile(path, "w", samplerate=SR, channels=1, format="FLAC", subtype="PCM_16") as out:
        while written < target:
            y, sr = sf.read(rng.choice(clips), dtype="float32", always_2d=True)
            y = audio.resample(audio.to_mono(y), sr, SR)
            pause = np.zeros(int(rng.uniform(0.3, 1.5) * SR), np.float32)
            for block in (y, pause):
                block = block[: target - written]
                out.write(block)
                written += block.size
    return written / SR


def build_call(path: Path, clips: list[str], seconds: float, rng: random.Random, silence: float = 0.4) -> float:
    """Like ``build_recording``, with long pauses (4-20 s of noise at -75 dBFS, under the silence gate) taking about
    ``silence`` of the length, as on hold or while the other side talks."""
    from ser_batch import audio

    target = int(round(seconds * SR))
    written = 0
    speech = 0
    with sf.SoundFile(path, "w", samplerate=SR, channels=1, format="FLAC", subtype="PCM_16") as out:
        while written < target:
            if written and speech / written > 1 - silence:
                pause = (10 ** (-75 / 20) * np.sqrt(2) * np.random.default_rng(written).standard_normal(int(rng.uniform(4, 20) * SR))).astype(np.float32)
                block = pause[: target - written]
            else:
                y, sr = sf.read(rng.choice(clips), dtype="float32", always_2d=True)
                y = audio.resample(audio.to_mono(y), sr, SR)
                block = np.concatenate([y, np.zeros(int(rng.uniform(0.3, 1.5) * SR), np.float32)])[: target - written]
                speech += block.size
            out.write(block)
            written += block.size
    return written / SR


def _encoder_rate(clips: list[str], seconds: float, layers: int) -> float:
    """Audio seconds per second through ``encoder.encode`` of 3 s blocks of speech, ``layers`` deep, in this process."""
    from ser_batch import audio, encoder

    ys = [audio.resample(audio.to_mono(sf.read(c, dtype="float32", always_2d=True)[0]), sf.info(c).samplerate, SR) for c in clips[:40]]
    y = np.concatenate(ys)
    blocks = y[: len(y) // 48000 * 48000].reshape(-1, 48000)
    encoder.encode(blocks[:2], SR, layers=layers)
    done, t0 = 0, time.perf_counter()
    while time.perf_counter() - t0 < seconds:
        encoder.encode(blocks[done % len(blocks)][None], SR, layers=layers)
        done += 1
    return done * 3.0 / (time.perf_counter() - t0)


def profile_stages(model: Path, recording: Path) -> dict[str, float]:
    """Seconds per stage of scoring one recording in this process, as a worker does it, stage by stage."""
    from ser_batch import encoder, features, pieces, windows
    from ser_batch import inference as S

    md = S.load_model(str(model))
    fs = md.features
    encoder.encode(np.zeros((1, 48000), np.float32), SR, layers=fs.encoder_layers)  # loaded once per process: not timed
    md.predict_proba(np.zeros((1, *fs.shape), np.float32))
    times = dict.fromkeys(("decode + resample", "silence gate", "front end (log-mel)", "encoder", "classifier", "windows + pooling"), 0.0)
    real_mel, real_gate = encoder.log_mel, features.gate
    # a normalised model needs statistics: unit ones here, for timing only (their values do not change the cost)
    norm = (np.zeros(fs.n_coeffs, np.float32), np.ones(fs.n_coeffs, np.float32)) if md.speaker_norm else None

    def timed(name, fn):  # type: ignore[no-untyped-def]
        def wrapper(*a, **k):  # type: ignore[no-untyped-def]
            t = time.perf_counter()
            out = fn(*a, **k)
            times[name] += time.perf_counter() - t
            return out
        return wrapper

    encoder.log_mel = timed("front end (log-mel)", real_mel)
    features.gate = timed("silence gate", real_gate)
    predict = md.predict_proba
    object.__setattr__(md, "predict_proba", timed("classifier", predict))  # a frozen dataclass: patched for timing only
    try:
        info = sf.info(str(recording))
        t_all = time.perf_counter()
        read = timed("decode + resample", S.file_reader(str(recording), SR))
        for pc in pieces.plan_pieces(str(recording), info.duration, fs.duration_s, S.ScoreSettings().hop_s, S.ScoreSettings().chunk_s):
            t = time.perf_counter()
            pf = pieces.piece_frames(fs, read, pc, S.ScoreSettings().hop_s, windows.SILENCE_DB)
            times["encoder"] += time.perf_counter() - t
            S.classify(md, pf, norm, S.ScoreSettings().batch_windows)
        total = time.perf_counter() - t_all
    finally:
        encoder.log_mel, features.gate = real_mel, real_gate
        object.__setattr__(md, "predict_proba", predict)
    times["encoder"] -= times["decode + resample"] + times["silence gate"] + times["front end (log-mel)"]
    times["windows + pooling"] = total - sum(v for k, v in times.items() if k != "windows + pooling")
    times["total"] = total
    times["audio s"] = info.duration
    return times


def run_suite(args: argparse.Namespace, clips: list[str], tmp: Path) -> None:
    """The README's table: limit, dense, call-like, speaker-normalised, and where a worker's time goes."""
    from ser_batch import modeldir
    from ser_batch.features import FeatureSettings
    from ser_batch.score import score

    minutes = min(args.minutes_per_recording, args.hours * 60)
    n = max(1, int(round(args.hours * 60 / minutes)))
    rng = random.Random(args.seed)
    sets: dict[str, list[Path]] = {"dense": [], "call": []}
    for i in range(n):
        sets["dense"].append(tmp / f"dense-{i}.flac")
        build_recording(sets["dense"][-1], clips, minutes * 60, rng)
        sets["call"].append(tmp / f"call-{i}.flac")
        build_call(sets["call"][-1], clips, minutes * 60, rng)
    norm_model = REPO / "models" / "ser-speaker-norm"
    cluster, client = make_cluster(args.workers)
    rows = []
    try:
        warm_up(client, cluster.scheduler_address, args.model, clips, tmp)
        warm_up(client, cluster.scheduler_address, norm_model, clips, tmp)
        # each model against the encoder as deep as its feature version runs it (whisper_base v4: 6 layers, v5: 3),
        # and the whole encoder beside them: what a model of the last layer's states would be held to
        depth = {m: FeatureSettings.from_dict(modeldir.read_config(m)["features"]).encoder_layers for m in (args.model, norm_model)}
        limits = {k: sum(client.run(_encoder_rate, clips, 20.0, k).values()) for k in sorted({*depth.values(), 6})}
        for label, model, files in (
            ("default, dense speech", args.model, sets["dense"]),
            ("default, call-like (40 % long pauses)", args.model, sets["call"]),
            ("speaker-normalised, dense speech", norm_model, sets["dense"]),
        ):
            t0 = time.perf_counter()
            res = score([str(f) for f in files], tmp / f"{len(rows)}.parquet", model=model, scheduler=cluster.scheduler_address, progress=False,
                        speakers="recording" if model == norm_model else None)  # fmt: skip
            wall = time.perf_counter() - t0
            rows.append((label, res.audio_hours, wall, res.audio_hours * 3600 / wall, limits[depth[model]]))
        rss = peak_rss_mib(client)
    finally:
        client.close()
        cluster.close()
    print(f"\n{args.workers} workers on {os.cpu_count()} cores; {n} recordings of {minutes:g} min per set; models {args.model.name}, {norm_model.name}")
    for k, limit in limits.items():
        print(f"encoder alone, {k} of 6 layers (3 s blocks of speech, one per call, every worker at once): {limit:.1f}x real time")
    print(f"\n{'run':<40}{'audio h':>9}{'wall s':>9}{'x real time':>13}{'of its encoder':>16}")
    for label, hours, wall, x, limit in rows:
        print(f"{label:<40}{hours:>9.2f}{wall:>9.1f}{x:>13.1f}{x / limit:>15.0%}")
    print(f"peak RSS per worker: {max(rss.values()):.0f} MiB")
    prof = profile_stages(args.model, sets["dense"][0])
    audio_s, total = prof.pop("audio s"), prof.pop("total")
    print(f"\nwhere one worker's time goes (one {audio_s / 60:.0f} min dense recording in one process, {audio_s / total:.1f}x real time):")
    for k, v in prof.items():
        print(f"  {k:<24}{v:>8.1f} s {v / total:>6.0%}")
    dense_x = rows[0][3] / args.workers
    print(f"  through score, per worker: {dense_x:.1f}x real time; the difference is Dask scheduling, I/O and merging")


def peak_rss_mib(client) -> dict[str, float]:  # type: ignore[no-untyped-def]
    """ru_maxrss of every worker process (kilobytes on Linux) in MiB."""
    kb = client.run(lambda: resource.getrusage(resource.RUSAGE_SELF).ru_maxrss)
    return {w: v / 1024 for w, v in sorted(kb.items())}


def make_cluster(workers: int):  # type: ignore[no-untyped-def]
    from distributed import Client

    from ser_batch.cluster import local_cluster

    cluster = local_cluster(workers)
    return cluster, Client(cluster)


def _load(model: str) -> None:
    from ser_batch.inference import load_model as _load_model

    _load_model(model)


def warm_up(client, scheduler: str, model: Path, clips: list[str], tmp: Path) -> float:  # type: ignore[no-untyped-def]
    """Load the model in every worker, then score one short recording per worker (first-call set-up)."""
    from ser_batch.score import ScoreSettings, score

    t0 = time.perf_counter()
    client.run(_load, str(model))
    n = len(client.scheduler_info()["workers"])
    folder = tmp / "warmup"
    folder.mkdir(exist_ok=True)
    rng = random.Random(12345)
    for i in range(n):
        build_recording(folder / f"w{i}.flac", clips, 10.0, rng)
    score([folder], tmp / "warmup.parquet", model=model, settings=ScoreSettings(task_s=5.0), scheduler=scheduler, progress=False)
    return time.perf_counter() - t0


def timed_score(files: list[Path], out: Path, model: Path, scheduler: str, progress: bool):  # type: ignore[no-untyped-def]
    from ser_batch.score import score

    t0 = time.perf_counter()
    result = score([str(f) for f in files], out, model=model, scheduler=scheduler, progress=progress)
    return result, time.perf_counter() - t0


def run_throughput(args: argparse.Namespace, clips: list[str], tmp: Path) -> None:
    total_s = args.hours * 3600
    per_s = args.minutes_per_recording * 60
    lengths = [per_s] * int(total_s // per_s) + ([total_s % per_s] if total_s % per_s >= 1 else [])
    rng = random.Random(args.seed)
    t0 = time.perf_counter()
    files = []
    for i, seconds in enumerate(lengths):
        files.append(tmp / f"rec-{i:03d}.flac")
        build_recording(files[-1], clips, seconds, rng)
    t_build = time.perf_counter() - t0
    builder_mib = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024

    cluster, client = make_cluster(args.workers)
    try:
        t_warm = warm_up(client, cluster.scheduler_address, args.model, clips, tmp)
        result, wall = timed_score(files, tmp / "report.parquet", args.model, cluster.scheduler_address, not args.quiet)
        rss = peak_rss_mib(client)
    finally:
        client.close()
        cluster.close()

    audio_s = result.audio_hours * 3600
    print()
    print(f"corpus                 : {args.corpus} ({len(clips)} clips); model {args.model}")
    sizes = ", ".join(f"{lengths.count(v)} x {v / 60:g} min" for v in sorted(set(lengths), reverse=True))
    print(f"recordings             : {sizes}, built in {t_build:.1f} s (builder peak RSS {builder_mib:.0f} MiB)")
    print(f"scored                 : {result.ok} ok, {result.errors} errors; dominant emotions {result.distribution}")
    print(f"workers / cores        : {args.workers} / {os.cpu_count()} (warm-up, model load included: {t_warm:.1f} s)")
    print()
    print(f"{'audio hours':<24}{'wall s':>10}{'x real time':>14}{'x RT per core':>16}{'peak RSS/worker MiB':>22}")
    print(f"{result.audio_hours:<24.3f}{wall:>10.1f}{audio_s / wall:>14.1f}{audio_s / wall / args.workers:>16.1f}{max(rss.values()):>22.0f}")
    print()
    for w, mib in rss.items():
        print(f"  {w}: peak RSS {mib:.0f} MiB")
    if result.errors:
        sys.exit(1)


def run_lengths(args: argparse.Namespace, clips: list[str], tmp: Path) -> None:
    import pandas as pd

    rng = random.Random(args.seed)
    cluster, client = make_cluster(args.workers)
    rows = []
    try:
        for minutes in args.length_minutes:
            rec = tmp / f"len-{minutes:g}min.flac"
            build_recording(rec, clips, minutes * 60, rng)
            client.restart()  # fresh worker processes: ru_maxrss starts again
            warm_up(client, cluster.scheduler_address, args.model, clips, tmp)
            base = peak_rss_mib(client)
            result, wall = timed_score([rec], tmp / f"len-{minutes:g}.parquet", args.model, cluster.scheduler_address, not args.quiet)
            peak = peak_rss_mib(client)
            rows.append((minutes, result, wall, max(base.values()), max(peak.values())))
            rec.unlink()
    finally:
        client.close()
        cluster.close()
    print()
    print(f"workers: {args.workers}; model {args.model}; peak RSS per worker after warm-up (model loaded) and after scoring")
    print(f"{'minutes':>8}{'windows':>10}{'wall s':>9}{'x real time':>13}{'warm MiB':>10}{'peak MiB':>10}{'growth MiB':>12}")
    for minutes, _result, wall, base, peak in rows:
        windows = int(pd.read_parquet(tmp / f"len-{minutes:g}.parquet")["windows"].sum())
        print(f"{minutes:>8g}{windows:>10d}{wall:>9.1f}{minutes * 60 / wall:>13.1f}{base:>10.0f}{peak:>10.0f}{peak - base:>12.0f}")
    peaks = [r[4] for r in rows]
    print(f"\npeak spread across lengths: {max(peaks) - min(peaks):.0f} MiB ({(max(peaks) / min(peaks) - 1) * 100:.1f} %)")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--hours", type=float, default=2.0, help="total audio to build and score (default 2.0)")
    ap.add_argument("--minutes-per-recording", type=float, default=30.0, help="length of each recording (default 30)")
    ap.add_argument("--workers", type=int, default=os.cpu_count() or 1, help="worker processes (default: one per core)")
    ap.add_argument("--corpus", type=Path, default=REPO.parent / "shared" / "data" / "ravdess-speech", help="folder of clips")
    ap.add_argument("--model", type=Path, default=None, help="model directory (default: the shipped models/ser-default)")
    ap.add_argument("--suite", action="store_true", help="the README's table: encoder limit, dense, call-like, speaker-normalised, stages")
    ap.add_argument("--lengths", action="store_true", help="compare peak worker memory over recordings of several lengths")
    ap.add_argument("--length-minutes", type=float, nargs="+", default=[10.0, 40.0, 160.0], help="lengths for --lengths")
    ap.add_argument("--seed", type=int, default=0, help="seed of the clip order and pauses")
    ap.add_argument("--tmp", type=Path, default=None, help="where to write the recordings (default: system temp)")
    ap.add_argument("--quiet", "-q", action="store_true", help="no progress bar")
    args = ap.parse_args()

    from ser_batch import modeldir
    from ser_batch.modeldir import default_model

    args.model = args.model or default_model()
    modeldir.read_config(args.model)  # a clear error now rather than after building hours of audio
    if args.workers < 1:
        sys.exit("--workers must be at least 1")
    clips = clip_paths(args.corpus)
    tmp = Path(tempfile.mkdtemp(prefix="ser-score-bench-", dir=args.tmp))
    try:
        (run_suite if args.suite else run_lengths if args.lengths else run_throughput)(args, clips, tmp)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
