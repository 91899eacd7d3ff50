"""ser-batch: speech emotion recognition as a batch job over large audio corpora, on Dask.

The Python API behind the CLI, for notebooks and programs::

    from ser_batch.extract import extract      # corpora -> Parquet feature shards
    from ser_batch.train import train, fit     # shards -> model directory, speaker-independent figures
    from ser_batch.evaluate import evaluate    # model + shards -> report
    from ser_batch.score import score, predict # recordings -> emotion report; one signal -> emotion
"""

import os as _os

_os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")  # TensorFlow's CUDA probing noise on CPU machines

__version__ = "0.1.0"
