"""training.fit(..., comm=...): data-parallel training, checked in one process.

A size-1 communicator must change nothing. Two ranks are simulated by threads that run
in lock step (one at a time, handing over at each collective call), so that NumPy's
global state and zerograd's Config are never used by two at once: the real MPI runs are
in tests/distributed/.
"""
import copy
import os
import threading

import numpy as np
import pytest

import zerograd.functions as F
from zerograd import DataLoader, optimizers, training
from zerograd.core import Variable
from zerograd.datasets import Dataset, Spiral
from zerograd.models import MLP


class _Arrays(Dataset):
    def __init__(self, data, label):
        self._arrays = (data, label)
        super().__init__()

    def prepare(self):
        self.data, self.label = self._arrays


class _World:
    """The shared side of the simulated ranks: a turn, and the contributions of a round."""

    def __init__(self, size):
        self.size, self.turn, self.done = size, 0, -1
        self.slots, self.results = [None] * size, {}
        self.cond = threading.Condition()
        self.failed = None

    def collective(self, rank, round_, value, combine):
        with self.cond:
            self.slots[rank] = value
            if rank == self.size - 1:
                self.results[round_] = combine(list(self.slots))
                self.done = round_
            self.turn = (rank + 1) % self.size
            self.cond.notify_all()
            self._wait(rank, round_)
            return self.results[round_]

    def _wait(self, rank, round_):
        ok = self.cond.wait_for(lambda: self.failed is not None or (
            self.turn == rank and self.done >= round_), timeout=60)
        if self.failed is not None or not ok:
            raise RuntimeError(f'simulated rank {rank}: another rank failed: {self.failed}')

    def finish(self, rank):
        with self.cond:
            self.turn = (rank + 1) % self.size
            self.cond.notify_all()


class FakeComm:
    """The Communicator API of zerograd.distributed, for ranks that are threads."""

    def __init__(self, world, rank):
        self.world, self.rank, self.size = world, rank, world.size
        self.intra_rank, self.intra_size, self.inter_rank, self.inter_size = rank, world.size, 0, 1
        self.round = 0
        self.calls = []

    def _collective(self, name, value, combine):
        self.calls.append(name)
        self.round += 1
        return self.world.collective(self.rank, self.round, value, combine)

    def allreduce(self, array, op='sum'):
        assert op == 'sum'
        total = self._collective('allreduce', np.array(array, copy=True), lambda vs: sum(vs))
        return np.array(total, copy=True)

    def bcast_obj(self, obj, root=0):
        return copy.deepcopy(self._collective('bcast_obj', obj, lambda vs: vs[root]))

    def gather_obj(self, obj, root=0):
        got = self._collective('gather_obj', obj, lambda vs: vs)
        return copy.deepcopy(got) if self.rank == root else None

    def barrier(self):
        self._collective('barrier', None, lambda vs: None)

    def bcast_data(self, model, root=0):
        mine = {k: p.data.copy() for k, p in model.named_params().items()}
        theirs = self._collective('bcast_data', mine, lambda vs: vs[root])
        for key, param in model.named_params().items():
            param.data = theirs[key].copy()

    def mean_grad(self, model):
        mine = {k: None if p.grad is None else p.grad.data.copy()
                for k, p in model.named_params().items()}

        def mean(values):
            out = {}
            for key in values[0]:
                got = [v[key] for v in values if v[key] is not None]
                out[key] = None if not got else sum(got) / np.asarray(len(values), got[0].dtype)
            return out
        means = self._collective('mean_grad', mine, mean)
        for key, param in model.named_params().items():
            param.grad = None if means[key] is None else Variable(means[key].copy())

    def mean_persistent(self, model):
        self._collective('mean_persistent', None, lambda vs: None)

    def wrap(self, optimizer):
        return _Wrapped(optimizer, self)


class _Wrapped:
    averages_gradients = True

    def __init__(self, optimizer, comm):
        self.optimizer, self.comm = optimizer, comm

    def update(self):
        self.comm.mean_grad(self.optimizer.target)
        self.optimizer.update()


def run_ranks(size, work):
    """work(comm) on ``size`` simulated ranks; returns their results in rank order."""
    world = _World(size)
    results, errors = [None] * size, [None] * size

    def body(rank):
        try:
            with world.cond:
                world._wait(rank, -1)
            results[rank] = work(FakeComm(world, rank))
        except BaseException as error:  # noqa: B902 - reported below
            errors[rank] = error
            with world.cond:
                world.failed = repr(error)
                world.cond.notify_all()
        world.finish(rank)

    threads = [threading.Thread(target=body, args=(r,), name=f'rank{r}') for r in range(size)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(120)
    for error in errors:
        if error is not None:
            raise error
    return results


def _spiral(n=240):
    data = Spiral(train=True)
    return data.data[:n], data.label[:n]


def _shard(x, t, batch, rank, size):
    """The rows of blocks rank, rank + size, ... of ``batch`` rows: the one-process loader
    with batch ``batch * size`` sees, as its batch i, the blocks i of every rank in order."""
    block = np.arange(len(x)) // batch
    keep = block % size == rank
    return _Arrays(x[keep], t[keep])


def _weights(model):
    return {k: p.data.copy() for k, p in model.named_params().items()}


def test_fit_with_a_size_one_communicator_equals_fit_without(tmp_path):
    class One:
        rank, size = 0, 1

    histories, weights = [], []
    for comm, out in ((None, tmp_path / 'a'), (One(), tmp_path / 'b')):
        np.random.seed(0)
        model = MLP((10, 3))
        optimizer = optimizers.MomentumSGD(0.1).setup(model)
        lines = []
        history = training.fit(model, optimizer, DataLoader(Spiral(), 30), 3, comm=comm,
                               test_loader=DataLoader(Spiral(train=False), 30, shuffle=False),
                               out=str(out), log=lines.append)
        histories.append([{k: v for k, v in r.items() if k != 'samples_per_second'}
                          for r in history.records])
        weights.append(_weights(model))
        assert len(lines) == 3
    assert histories[0] == histories[1]
    for key in weights[0]:
        np.testing.assert_array_equal(weights[0][key], weights[1][key])


def test_two_ranks_with_half_batches_equal_one_process_with_the_global_batch(tmp_path):
    x, t = _spiral(240)
    np.random.seed(0)
    reference = MLP((10, 3))
    reference(x[:1])
    start = _weights(reference)
    optimizer = optimizers.MomentumSGD(0.1).setup(reference)
    one = training.fit(reference, optimizer, DataLoader(_Arrays(x, t), 24, shuffle=False), 2,
                       test_loader=DataLoader(_Arrays(x, t), 50, shuffle=False), quiet=True)

    def work(comm):
        np.random.seed(comm.rank + 7)  # different draws: rank 0's must win
        model = MLP((10, 3))
        model(x[:1])
        if comm.rank == 0:
            for key, param in model.named_params().items():
                param.data = start[key].copy()
        lines = []
        history = training.fit(
            model, optimizers.MomentumSGD(0.1).setup(model),
            DataLoader(_shard(x, t, 12, comm.rank, comm.size), 12, shuffle=False), 2,
            test_loader=DataLoader(_Arrays(x[comm.rank::2], t[comm.rank::2]), 30,
                                   shuffle=False),
            comm=comm, log=lines.append)
        return _weights(model), history, lines

    (w0, h0, lines0), (w1, h1, lines1) = run_ranks(2, work)
    assert len(lines0) == 2 and lines1 == []  # rank 0 alone prints
    for key, value in _weights(reference).items():
        np.testing.assert_array_equal(w0[key], w1[key])  # bitwise identical ranks
        np.testing.assert_allclose(w0[key], value, rtol=0, atol=1e-6)
    for name in ('train_loss', 'train_accuracy', 'test_loss', 'test_accuracy'):
        np.testing.assert_allclose(h0[name], one[name], rtol=1e-6)
        assert h0[name] == h1[name]


def test_global_evaluation_is_exact_with_unequal_shards():
    x, t = _spiral(100)
    np.random.seed(0)
    model = MLP((10, 3))
    whole = training.evaluate(model, DataLoader(_Arrays(x, t), 7, shuffle=False))
    parts = [slice(0, 37), slice(37, 100)]

    def work(comm):
        piece = parts[comm.rank]
        return training.evaluate(model, DataLoader(_Arrays(x[piece], t[piece]), 7,
                                                   shuffle=False), comm=comm)

    got = run_ranks(2, work)
    assert got[0] == got[1]
    assert got[0]['loss'] == pytest.approx(whole['loss'], rel=1e-6)
    assert got[0]['accuracy'] == pytest.approx(whole['accuracy'], rel=1e-12)


def test_lazy_layers_are_created_then_broadcast_from_rank_zero():
    x, t = _spiral(80)

    def work(comm):
        np.random.seed(comm.rank)
        model = MLP((10, 3))  # lazy: no weights before a forward
        training.fit(model, optimizers.SGD(0.1).setup(model),
                     DataLoader(_Arrays(x[comm.rank::2], t[comm.rank::2]), 10), 1,
                     comm=comm, quiet=True)
        return _weights(model)

    w0, w1 = run_ranks(2, work)
    for key in w0:
        np.testing.assert_array_equal(w0[key], w1[key])


def test_unequal_training_shards_are_refused_on_every_rank():
    x, t = _spiral(100)

    def work(comm):
        model = MLP((10, 3))
        n = 40 if comm.rank == 0 else 60
        with pytest.raises(ValueError, match='different lengths'):
            training.fit(model, optimizers.SGD(0.1).setup(model),
                         DataLoader(_Arrays(x[:n], t[:n]), 10), 1, comm=comm, quiet=True)
        return True

    assert run_ranks(2, work) == [True, True]


def _train_ranks(x, t, out, epochs, resume=False, calls=None):
    def work(comm):
        np.random.seed(comm.rank)
        model = MLP((10, 3))
        optimizer = optimizers.MomentumSGD(0.1).setup(model)
        optimizer.add_hook(optimizers.WeightDecay(1e-3))
        history = training.fit(model, optimizer,
                               DataLoader(_shard(x, t, 10, comm.rank, 2), 10, shuffle=False),
                               epochs, comm=comm, out=str(out), resume=resume, quiet=True)
        return _weights(model), history
    return run_ranks(2, work)


def test_rank_zero_alone_writes_and_a_resume_is_bitwise_identical(tmp_path, monkeypatch):
    x, t = _spiral(200)
    writers = []
    save_state = training.save_state

    def recording(*args, **kwargs):
        writers.append(threading.current_thread().name)
        return save_state(*args, **kwargs)

    monkeypatch.setattr(training, 'save_state', recording)
    (straight, history), _ = _train_ranks(x, t, tmp_path / 'straight', 3)
    assert writers == ['rank0'] * 3
    _train_ranks(x, t, tmp_path / 'resumed', 1)
    (resumed, resumed_history), (other, _) = _train_ranks(x, t, tmp_path / 'resumed', 3,
                                                          resume=True)
    for key in straight:
        np.testing.assert_array_equal(resumed[key], straight[key])
        np.testing.assert_array_equal(other[key], straight[key])
    strip = [{k: v for k, v in r.items() if k != 'samples_per_second'} for r in history.records]
    assert [{k: v for k, v in r.items() if k != 'samples_per_second'}
            for r in resumed_history.records] == strip


def test_a_resume_with_another_number_of_processes_is_refused(tmp_path):
    x, t = _spiral(200)
    _train_ranks(x, t, tmp_path / 'run', 1)
    np.random.seed(0)
    model = MLP((10, 3))
    optimizer = optimizers.MomentumSGD(0.1).setup(model)
    with pytest.raises(ValueError, match='written by 2 processes, this run has 1'):
        training.fit(model, optimizer, DataLoader(_Arrays(x, t), 10), 2,
                     out=str(tmp_path / 'run'), resume=True, quiet=True)
    assert sorted(os.listdir(tmp_path / 'run')) == ['checkpoint.npz', 'history.json']


def test_the_averaged_gradient_is_what_the_optimizer_hooks_see():
    x, t = _spiral(40)
    seen = []

    def work(comm):
        np.random.seed(0)
        model = MLP((10, 3))
        optimizer = optimizers.SGD(1e-3).setup(model)
        optimizer.add_hook(lambda params: seen.append(
            (comm.rank, [p.grad.data.copy() for p in params])))
        training.fit(model, optimizer, DataLoader(_Arrays(x[comm.rank::2], t[comm.rank::2]),
                                                  20, shuffle=False), 1, comm=comm, quiet=True)
        return _weights(model)

    run_ranks(2, work)
    np.random.seed(0)
    model = MLP((10, 3))
    model(x[:1])
    grads = []
    for rank in range(2):
        model.cleargrads()
        F.softmax_cross_entropy(model(x[rank::2]), t[rank::2]).backward()
        grads.append([p.grad.data.copy() for p in model.params()])
    by_rank = dict(seen)
    for got0, got1, g0, g1 in zip(by_rank[0], by_rank[1], grads[0], grads[1]):
        np.testing.assert_array_equal(got0, got1)
        np.testing.assert_allclose(got0, (g0 + g1) / 2, rtol=1e-6, atol=1e-7)
