"""Data-parallel speed: an MLP epoch on MNIST with 1 process against mpiexec -n 2.

    python -m benchmarks.distributed [--epochs-of N] [--mpiexec PATH]

Each run is one process per rank with OMP_NUM_THREADS=1. One process trains with batch 100;
two processes run twice: with batch 100 per process (the rule of ``mpiexec -n 2 zerograd
train``: 200 global, half the steps) and with batch 50 per process (100 global, the same
steps as one process, each half the work; the optimizer's update and the gradient
averaging do not shrink). Prints the epoch times, the ratio (target <= 0.6) and
the share of the 2-rank epoch spent in communication (mean_grad and the epoch's reductions).
ZEROGRAD_DATA with full MNIST is used when present; else the embedded MNIST5k.
"""
from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import time

BATCH = 100


def worker() -> None:
    import numpy as np

    from zerograd import DataLoader, optimizers, training
    from zerograd.distributed import create_communicator, scatter_dataset
    from zerograd.models import MLP
    from zerograd.recipes import mnist_datasets
    import zerograd.functions as F

    comm = create_communicator()
    train, _, name = mnist_datasets(log=lambda line: None)
    shard = scatter_dataset(train, comm)
    np.random.seed(0)
    model = MLP((1000, 1000, 10), activation=F.relu)
    optimizer = optimizers.Adam(0.001).setup(model)
    communicating = [0.0]
    if comm.size > 1:  # time the gradient averaging
        mean_grad = comm.mean_grad

        def timed(model):
            start = time.perf_counter()
            mean_grad(model)
            communicating[0] += time.perf_counter() - start
        comm.mean_grad = timed
    # The command's rule: BATCH per process (BATCH * size global); or BATCH global.
    per_process = os.environ.get('ZEROGRAD_BENCH_RULE', 'per-process') == 'per-process'
    loader = DataLoader(shard, BATCH if per_process else BATCH // comm.size)
    if comm.size > 1:
        comm.barrier()
    start = time.perf_counter()
    training.fit(model, optimizer, loader, 1, quiet=True, comm=comm)
    elapsed = time.perf_counter() - start
    if comm.rank == 0:
        print(json.dumps({'seconds': elapsed, 'communication': communicating[0],
                          'dataset': name, 'samples': len(train)}))


def _run(command: list[str], rule: str = 'per-process') -> dict:
    env = dict(os.environ, ZEROGRAD_BENCH_RULE=rule, OMP_NUM_THREADS='1', OPENBLAS_NUM_THREADS='1', MKL_NUM_THREADS='1',
               PYTHONPATH=os.pathsep.join(filter(None, [os.getcwd(),
                                                        os.environ.get('PYTHONPATH')])))
    done = subprocess.run(command, env=env, capture_output=True, text=True, timeout=1800)
    if done.returncode != 0:
        raise SystemExit(f'benchmarks.distributed: {command[0]} failed:\n{done.stderr}')
    return json.loads(done.stdout.strip().splitlines()[-1])


def main() -> None:
    if '--worker' in sys.argv:
        worker()
        return
    mpiexec = os.environ.get('MPIEXEC') or shutil.which('mpiexec', path=os.path.dirname(
        sys.executable)) or shutil.which('mpiexec')
    if mpiexec is None:
        raise SystemExit('benchmarks.distributed: no mpiexec (pip install mpich mpi4py)')
    me = [sys.executable, '-m', 'benchmarks.distributed', '--worker']
    one = _run(me)
    two = _run([mpiexec, '-n', '2', *me])
    two_global = _run([mpiexec, '-n', '2', *me], rule='global')
    print(f'{one["dataset"]} ({one["samples"]:,} digits), MLP 1000-1000-10, Adam, 1 thread per '
          f'process; one process: batch {BATCH}')
    print(f'1 process:   {one["seconds"]:.2f} s per epoch')
    for name, run in ((f'batch {BATCH} per process (the command\'s rule, {2 * BATCH} global)', two),
                      (f'batch {BATCH // 2} per process ({BATCH} global)', two_global)):
        print(f'2 processes, {name}: {run["seconds"]:.2f} s per epoch, of which '
              f'{run["communication"]:.2f} s ({100 * run["communication"] / run["seconds"]:.0f}%) '
              f'averaging gradients; ratio 2/1: {run["seconds"] / one["seconds"]:.2f} '
              '(target <= 0.6, ideal 0.5)')

if __name__ == '__main__':
    main()
