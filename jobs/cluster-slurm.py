"""UNTESTED EXAMPLE - adapt before use. Start a Dask cluster on SLURM with dask-jobqueue and print its address.

Nothing in the test suite runs this file (no SLURM there); the tested setup is `dask scheduler` + `dask worker`
on one machine, see README "Running on a cluster". Adapt the partition, account, memory, walltime, the Python
environment and the network interface to your site.

    pip install dask-jobqueue          # in the same environment as ser-batch, on a node that can submit jobs
    python jobs/cluster-slurm.py --jobs 8
    # in another shell, on a node that reaches the scheduler and sees the same shared storage (e.g. NFS):
    ser-batch extract /shared/corpora/ravdess --out /shared/features/ravdess --scheduler tcp://HOST:PORT

The scheduler runs inside this script: keep it running while jobs use it; Ctrl-C stops the workers' SLURM jobs.

Requirements on every worker node:
- the same paths: corpora, `--out` folders and model directories on shared storage, mounted at the same place;
  pass absolute paths (or run ser-batch from a folder on that storage);
- the same Python environment with ser-batch installed (same versions of ser-batch, numpy, librosa, soundfile,
  TensorFlow/Keras as the client: Dask pickles the task functions by reference).
"""

from __future__ import annotations

import argparse
import time

from dask_jobqueue import SLURMCluster  # type: ignore[import-not-found]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--jobs", type=int, default=4, help="SLURM jobs, one worker process each")
    ap.add_argument("--cores", type=int, default=4, help="cores per job; ser-batch wants single-threaded workers")
    ap.add_argument("--memory", default="8GB", help="memory per job (score workers stay below ~1.5 GB each)")
    ap.add_argument("--walltime", default="04:00:00")
    ap.add_argument("--queue", default=None, help="SLURM partition")
    ap.add_argument("--account", default=None)
    ap.add_argument("--interface", default=None, help="network interface the workers reach the scheduler on, e.g. ib0")
    ap.add_argument("--python", default=None, help="python of the ser-batch environment on the workers")
    args = ap.parse_args()

    cluster = SLURMCluster(
        cores=args.cores,
        processes=args.cores,  # one single-threaded worker process per core: the audio work holds the GIL
        memory=args.memory,
        walltime=args.walltime,
        queue=args.queue,
        account=args.account,
        interface=args.interface,
        python=args.python,
        job_script_prologue=[
            "export OMP_NUM_THREADS=1 OPENBLAS_NUM_THREADS=1 MKL_NUM_THREADS=1 TF_CPP_MIN_LOG_LEVEL=3",
            # "source /shared/envs/ser-batch/bin/activate",  # <- your environment
        ],
        scheduler_options={"dashboard_address": ":8787"},
    )
    cluster.scale(jobs=args.jobs)
    print(cluster.job_script())
    print(f"\nscheduler: {cluster.scheduler_address}")
    print(f"use:       ser-batch extract ... --scheduler {cluster.scheduler_address}")
    print(f"dashboard: {cluster.dashboard_link}\n(Ctrl-C to stop the cluster)", flush=True)
    try:
        while True:
            time.sleep(60)
    except KeyboardInterrupt:
        pass
    finally:
        cluster.close()


if __name__ == "__main__":
    main()
