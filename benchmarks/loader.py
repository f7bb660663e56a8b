"""DataLoader(num_workers=N) on the MNIST pipeline: seconds per epoch, loading alone and
loading + training, with 0 workers, the background thread (``num_workers=2``), and, for
comparison, 1 and 2 worker processes (a fork-based pool built here, not in zerograd).

    python benchmarks/loader.py             # full MNIST (60,000) from ../shared/data, else MNIST5k
    python benchmarks/loader.py --rounds 5  # rounds of every configuration, alternating; best kept
    python benchmarks/loader.py --quick     # 300 examples, 1 round: a smoke run

The pipeline is the issue-6 workload's (``workloads.make_mnist``): ``datasets.MNIST`` with
its default per-example transform (Flatten, ToFloat, Normalize(0, 255)), batch 100,
shuffle; training: MLP 784-1000-10 ReLU, SGD lr 0.1. The process pool gets each batch's
index array (computed in the main process, in order) and sends back the NumPy batch; its
processes are forked at the start of each epoch (as PyTorch's DataLoader without
persistent workers) and are timed with it.
"""
from __future__ import annotations

import argparse
import multiprocessing
import os
import sys
import time

import harness  # noqa: F401  (2 BLAS threads, before NumPy loads)

import numpy as np  # noqa: E402

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), '..'))

import zerograd.functions as F  # noqa: E402
from zerograd import datasets, optimizers  # noqa: E402
from zerograd.dataloaders import DataLoader, _BatchMaker  # noqa: E402
from zerograd.models import MLP  # noqa: E402

SHARED_DATA = os.path.join(os.path.dirname(os.path.abspath(__file__)), '..', '..', 'shared',
                           'data')
BATCH = 100


def mnist(quick: bool) -> tuple[datasets.Dataset, str]:
    if not quick and datasets.MNIST.available(SHARED_DATA):
        ds, name = datasets.MNIST(train=True, root=SHARED_DATA), 'MNIST (60,000)'
    else:
        ds, name = datasets.MNIST5k(train=True), 'MNIST5k (4,000)'
    if quick:
        ds.data, ds.label, name = ds.data[:300], ds.label[:300], 'MNIST5k (300, --quick)'
    return ds, name


# -- the process pool: one input queue per process (batch k goes to process k % n), results
# put back in order in the main process.
_pool_dataset = None  # set before forking: the children inherit it instead of a pickle


def _pool_worker(inbox: multiprocessing.Queue, outbox: multiprocessing.Queue) -> None:
    make = _BatchMaker(_pool_dataset, 'DataLoader')
    while True:
        job = inbox.get()
        if job is None:
            return
        k, batch_index = job
        outbox.put((k, make(batch_index)))


def process_epoch(dataset: datasets.Dataset, n: int, step) -> None:
    """One shuffled epoch with n worker processes; step(x, t) per batch, in order."""
    global _pool_dataset
    _pool_dataset = dataset
    order = np.random.permutation(len(dataset))
    batches = [order[i:i + BATCH] for i in range(0, len(order), BATCH)]
    context = multiprocessing.get_context('fork')
    inboxes = [context.Queue() for _ in range(n)]
    outbox = context.Queue(maxsize=2 * n)
    processes = [context.Process(target=_pool_worker, args=(inbox, outbox), daemon=True)
                 for inbox in inboxes]
    for process in processes:
        process.start()
    for k, batch_index in enumerate(batches):
        inboxes[k % n].put((k, batch_index))
    for inbox in inboxes:
        inbox.put(None)
    ready, wanted = {}, 0
    while wanted < len(batches):
        while wanted not in ready:
            k, batch = outbox.get()
            ready[k] = batch
        step(*ready.pop(wanted))
        wanted += 1
    for process in processes:
        process.join()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    parser.add_argument('--rounds', type=int, default=3)
    parser.add_argument('--quick', action='store_true')
    args = parser.parse_args()
    rounds = 1 if args.quick else args.rounds
    ds, name = mnist(args.quick)
    np.random.seed(0)
    model = MLP((1000, 10), activation=F.relu)
    optimizer = optimizers.SGD(lr=0.1).setup(model)

    def train_step(x, t):
        loss = F.softmax_cross_entropy(model(x), t)
        model.cleargrads()
        loss.backward()
        optimizer.update()

    def no_step(x, t):
        pass

    def thread_epoch(num_workers, step):
        def epoch():
            for x, t in DataLoader(ds, BATCH, shuffle=True, num_workers=num_workers):
                step(x, t)
        return epoch

    def pool_epoch(n, step):
        return lambda: process_epoch(ds, n, step)

    configs = {}
    for label, step in (('load only', no_step), ('load + train', train_step)):
        configs[(label, 'num_workers=0')] = thread_epoch(0, step)
        configs[(label, 'num_workers=2 (thread)')] = thread_epoch(2, step)
        configs[(label, '1 process (pool)')] = pool_epoch(1, step)
        configs[(label, '2 processes (pool)')] = pool_epoch(2, step)
    print(f'# {name}, batch {BATCH}; {harness.machine()}')
    print(f'# {time.strftime("%Y-%m-%d %H:%M")}, load average {os.getloadavg()[0]:.2f}, '
          f'{rounds} round(s), best kept')
    times = {key: [] for key in configs}
    for _ in range(rounds):  # every configuration once per round: noise hits all alike
        for key, epoch in configs.items():
            times[key].append(harness.timed(epoch))
    print('| epoch | loader | best s | all runs s | vs num_workers=0 |')
    print('| --- | --- | --- | --- | --- |')
    for (label, loader), values in times.items():
        base = min(times[(label, 'num_workers=0')])
        print(f'| {label} | {loader} | {min(values):.3f} | '
              f'{", ".join(f"{v:.2f}" for v in values)} | {min(values) / base:.2f}x |')
    print(f'# load average at the end {os.getloadavg()[0]:.2f}')


if __name__ == '__main__':
    main()
