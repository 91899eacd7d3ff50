"""ser-batch: speech emotion recognition as a batch job over large audio corpora, on Dask.

The Python API behind the CLI, for notebooks and programs::

    from ser_batch.extract import extract      # corpora -> Parquet feature shards
    from ser_batch.train import train, fit     # shards -> model directory, speaker-independent figures
    from ser_batch.evaluate import evaluate    # model + shards -> report
    from ser_batch.score import score          # recordings (folders, lists) -> emotion report
    from ser_batch.predict import predict      # one signal -> emotion
    from ser_batch.report import report        # emotion report (+ segments) -> one self-contained HTML page
"""

import os as _os

# Before anything imports TensorFlow (here, in the CLI and in every Dask worker, which imports this package to run
# its tasks): its C++ log lines off unless someone asked for them by setting the level themselves.
TF_LOG_LEVEL_SET_HERE = "TF_CPP_MIN_LOG_LEVEL" not in _os.environ
_os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")  # TensorFlow's CUDA probing noise on CPU machines
_os.environ.setdefault("GRPC_VERBOSITY", "ERROR")
if _os.environ["TF_CPP_MIN_LOG_LEVEL"] == "3":
    from ser_batch import quiet as _quiet

    _quiet.install()  # the lines TF_CPP_MIN_LOG_LEVEL does not reach (absl's pre-initialisation ones)

__version__ = "0.1.0"
