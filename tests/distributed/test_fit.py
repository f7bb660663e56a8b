"""training.fit(..., comm=comm) on real MPI ranks (mpiexec -n 2): equal to one process with
the global batch, ranks bitwise identical, rank 0 alone writes, resume bitwise identical.
The same checks with simulated ranks run under plain pytest (tests/test_training_distributed.py).
"""
from __future__ import annotations

import os

import numpy as np

from zerograd import DataLoader, optimizers, training
from zerograd.datasets import Spiral
from zerograd.distributed import SubDataset
from zerograd.models import MLP

from distributed_helpers import COMM, same_on_every_rank, two_ranks


SPIRAL = Spiral(train=True)


def _data(n=240):
    return SPIRAL.data[:n], SPIRAL.label[:n]


def _shard(x, t, batch, rank, size):
    """Blocks rank, rank + size, ... of ``batch`` rows, as a view of the data set (what
    ``scatter_dataset`` gives): one process's batch i of ``batch * size`` rows is the
    blocks i of every rank, in rank order."""
    keep = np.flatnonzero((np.arange(len(x)) // batch) % size == rank)
    return SubDataset(SPIRAL, keep)


def _model(x, seed):
    np.random.seed(seed)
    model = MLP((10, 3))
    model(x[:1])
    return model


def _fit(model, x, t, epochs, comm=None, out=None, resume=False):
    rank, size = (0, 1) if comm is None else (comm.rank, comm.size)
    batch = 24 // size
    return training.fit(
        model, optimizers.MomentumSGD(0.1).setup(model),
        DataLoader(_shard(x, t, batch, rank, size), batch, shuffle=False), epochs,
        test_loader=DataLoader(SubDataset(SPIRAL, np.arange(rank, len(x), size)), 30,
                               shuffle=False),
        comm=comm, out=out, resume=resume, quiet=True)


@two_ranks
def test_two_ranks_equal_one_process_with_the_global_batch_bitwise_alike():
    x, t = _data()
    reference = _model(x, 0)
    one = _fit(reference, x, t, 2)
    model = _model(x, 0 if COMM.rank == 0 else 99)  # rank 0's weights are broadcast
    history = _fit(model, x, t, 2, COMM)
    weights = [p.data for p in model.params()]
    assert same_on_every_rank(COMM, weights)
    for w, w_one in zip(weights, reference.params()):
        np.testing.assert_allclose(w, w_one.data, rtol=0, atol=1e-6)
    for name in ('train_loss', 'train_accuracy', 'test_loss', 'test_accuracy'):
        np.testing.assert_allclose(history[name], one[name], rtol=1e-6)


@two_ranks
def test_rank_zero_alone_writes_and_a_resume_is_bitwise_identical(tmp_path):
    x, t = _data()
    folder = COMM.bcast_obj(str(tmp_path))  # one folder every rank sees (rank 0's)
    straight = _model(x, 0)
    _fit(straight, x, t, 2, COMM, out=os.path.join(folder, 'straight'))
    if COMM.rank != 0:
        assert not os.path.exists(os.path.join(str(tmp_path), 'straight'))
    COMM.barrier()
    assert sorted(os.listdir(os.path.join(folder, 'straight'))) == sorted(
        COMM.bcast_obj(os.listdir(os.path.join(folder, 'straight'))))
    resumed = _model(x, 0)
    _fit(resumed, x, t, 1, COMM, out=os.path.join(folder, 'resumed'))
    resumed = _model(x, 5)
    _fit(resumed, x, t, 2, COMM, out=os.path.join(folder, 'resumed'), resume=True)
    for a, b in zip(resumed.params(), straight.params()):
        np.testing.assert_array_equal(a.data, b.data)
    assert same_on_every_rank(COMM, [p.data for p in resumed.params()])
