"""Models across ranks: broadcasting weights, averaging gradients and batch norm
statistics, and data-parallel training equal to one process with the whole batch."""
from __future__ import annotations

import numpy as np
import pytest

import zerograd.functions as F
import zerograd.layers as L
from distributed_helpers import same_on_every_rank, two_ranks
from zerograd import Variable, distributed
from zerograd.models import MLP, Model
from zerograd.optimizers import ClipGrad, MomentumSGD, WeightDecay


def _mlp(seed: int, dtype=np.float32) -> MLP:
    np.random.seed(seed)
    model = MLP((5, 3))
    model(np.zeros((1, 4), dtype))  # create the lazy weights
    return model


def _arrays(model) -> list[np.ndarray]:
    return [p.data for p in model.named_params().values()]


class TwoDtypes(Model):
    """A float32 and a float64 layer: two flat buffers."""

    def __init__(self, seed: int) -> None:
        super().__init__()
        np.random.seed(seed)
        self.a = L.Linear(3, in_size=2)
        self.b = L.Linear(2, in_size=3, dtype=np.float64)

    def forward(self, x):
        return self.b(F.sigmoid(self.a(x)))


def test_bcast_data_gives_every_rank_the_roots_weights(comm):
    root = comm.size - 1
    model = TwoDtypes(seed=comm.rank)
    comm.bcast_data(model, root=root)
    expected = TwoDtypes(seed=root)  # what the root drew
    for key, param in model.named_params().items():
        np.testing.assert_array_equal(param.data, expected.named_params()[key].data)
        assert param.data.dtype == expected.named_params()[key].data.dtype
    assert same_on_every_rank(comm, _arrays(model))


def test_bcast_data_names_the_parameters_not_created_yet(comm):
    model = MLP((5, 3))  # lazy: no forward pass yet
    with pytest.raises(ValueError, match=r"not created yet: \['l0/W', 'l1/W'\]"):
        comm.bcast_data(model)


@two_ranks
def test_bcast_data_refuses_models_that_differ_between_ranks(comm):
    model = MLP((5 + comm.rank, 3))
    model(np.zeros((1, 4), np.float32))
    with pytest.raises(ValueError, match="models differ between the ranks"):
        comm.bcast_data(model)


def test_mean_grad_averages_rank_valued_gradients(comm):
    model = TwoDtypes(seed=0)
    for param in model.params():
        param.grad = Variable(np.full(param.data.shape, comm.rank + 1, param.data.dtype))
    comm.mean_grad(model)
    for param in model.params():
        assert param.grad.data.dtype == param.data.dtype
        np.testing.assert_array_equal(param.grad.data, np.full(param.data.shape,
                                                               (comm.size + 1) / 2))


class Branches(Model):
    """``used`` runs on every rank, ``rank0`` on rank 0 only, ``never`` nowhere."""

    def __init__(self) -> None:
        super().__init__()
        np.random.seed(0)
        self.used = L.Linear(2, in_size=3)
        self.rank0 = L.Linear(2, in_size=3)
        self.never = L.Linear(2, in_size=3)

    def forward(self, x, rank):
        y = self.used(x)
        return y + self.rank0(x) if rank == 0 else y


def test_a_parameter_used_on_one_rank_only_gets_the_mean_with_zeros(comm):
    model = Branches()
    x = np.arange(6, dtype=np.float32).reshape(2, 3) + comm.rank
    model.cleargrads()
    F.sum(model(x, comm.rank)).backward()
    own = {key: None if p.grad is None else p.grad.data.copy()
           for key, p in model.named_params().items()}
    comm.mean_grad(model)
    # rank 0's gradient of rank0/W, divided by the number of ranks (zeros elsewhere).
    x0 = np.arange(6, dtype=np.float32).reshape(2, 3)
    expected_rank0_W = x0.T @ np.ones((2, 2), np.float32) / comm.size
    np.testing.assert_allclose(model.rank0.W.grad.data, expected_rank0_W, rtol=1e-6)
    used_W = sum((x0 + r).T @ np.ones((2, 2), np.float32) for r in range(comm.size))
    np.testing.assert_allclose(model.used.W.grad.data, used_W / comm.size, rtol=1e-6)
    # No gradient anywhere: still None, so hooks such as WeightDecay skip it.
    assert model.never.W.grad is None and model.never.b.grad is None
    if comm.size == 1:
        np.testing.assert_array_equal(model.rank0.W.grad.data, own['rank0/W'])


def _train(model, batches, optimizer, steps):
    for step in range(steps):
        x, t = batches(step)
        loss = F.softmax_cross_entropy(model(x), t)
        model.cleargrads()
        loss.backward()
        optimizer.update()


def test_data_parallel_training_equals_one_process_with_the_whole_batch(comm):
    B, steps = 8 * comm.size, 20
    rng = np.random.default_rng(0)
    X = rng.standard_normal((steps, B, 4)).astype(np.float32)
    T = rng.integers(0, 3, (steps, B))
    # One process, batch B (every rank computes it, as the reference).
    single = _mlp(seed=1)
    _train(single, lambda s: (X[s], T[s]), MomentumSGD(lr=0.1).setup(single), steps)
    # Data-parallel: different initial weights on each rank until bcast_data; each rank
    # takes its B / size examples of every batch.
    model = _mlp(seed=1 + comm.rank)
    comm.bcast_data(model)
    optimizer = distributed.DistributedOptimizer(MomentumSGD(lr=0.1), comm).setup(model)
    b = B // comm.size
    shard = slice(comm.rank * b, (comm.rank + 1) * b)
    _train(model, lambda s: (X[s, shard], T[s, shard]), optimizer, steps)
    for key, param in model.named_params().items():
        np.testing.assert_allclose(param.data, single.named_params()[key].data,
                                   rtol=1e-6, atol=1e-6, err_msg=key)
    assert not np.allclose(_arrays(model)[0], _mlp(seed=1).l0.W.data)  # it did train
    assert same_on_every_rank(comm, _arrays(model))


def test_clipping_sees_the_averaged_gradients(comm):
    model = TwoDtypes(seed=0)
    seen = []
    optimizer = comm.wrap(MomentumSGD(lr=0.1).setup(model))
    optimizer.add_hook(lambda params: seen.append([p.grad.data.copy() for p in params]))
    optimizer.add_hook(ClipGrad(max_norm=0.5))
    before = [p.data.copy() for p in model.params()]
    for param in model.params():
        param.grad = Variable(np.full(param.data.shape, comm.rank + 1, param.data.dtype))
    optimizer.update()
    mean = (comm.size + 1) / 2
    for grad in seen[0]:
        np.testing.assert_array_equal(grad, np.full(grad.shape, mean))
    # Clipped by the norm of the averaged gradient: the step has norm lr * max_norm.
    steps = [p.data - b for p, b in zip(model.params(), before)]
    norm = np.sqrt(sum(float(np.sum(s.astype(np.float64) ** 2)) for s in steps))
    np.testing.assert_allclose(norm, 0.1 * 0.5, rtol=1e-5)
    assert same_on_every_rank(comm, [p.data for p in model.params()])


def test_weight_decay_skips_parameters_without_a_gradient_anywhere(comm):
    model = Branches()
    optimizer = comm.wrap(MomentumSGD(lr=0.1).setup(model))
    optimizer.add_hook(WeightDecay(0.5))
    never_before = model.never.W.data.copy()
    model.cleargrads()
    F.sum(model(np.ones((2, 3), np.float32), comm.rank)).backward()
    optimizer.update()
    np.testing.assert_array_equal(model.never.W.data, never_before)


def test_distributed_optimizer_delegates_hyperparameters_and_state(comm):
    model = _mlp(seed=0)
    inner = MomentumSGD(lr=0.1, momentum=0.5)
    optimizer = distributed.DistributedOptimizer(inner, comm)
    assert optimizer.setup(model) is optimizer and inner.target is model
    optimizer.lr = 0.05
    assert inner.lr == 0.05 and optimizer.lr == 0.05
    with pytest.raises(ValueError, match='lr must be a finite number >= 0'):
        optimizer.lr = -1.0
    x, t = np.ones((2, 4), np.float32), np.array([0, 1])
    model.cleargrads()
    F.softmax_cross_entropy(model(x), t).backward()
    optimizer.update()
    state = optimizer.state_dict()
    assert set(state) == {f'v/{key}' for key in model.named_params()}
    fresh = MomentumSGD(lr=0.05, momentum=0.5).setup(model)
    comm.wrap(fresh).load_state_dict(state)
    for key, value in fresh.state_dict().items():
        np.testing.assert_array_equal(value, state[key])
    assert optimizer.hyperparams() == {'lr': 0.05, 'momentum': 0.5}
    with pytest.raises(TypeError, match='already distributed'):
        comm.wrap(optimizer)


def test_mean_persistent_averages_batch_norm_statistics(comm):
    def batch_norm_on(rank):
        bn = L.BatchNorm()
        x = np.random.default_rng(rank).standard_normal((6, 3)).astype(np.float32) + rank
        bn(x)
        return bn

    class Net(Model):
        def __init__(self, rank):
            super().__init__()
            self.bn = batch_norm_on(rank)

    model = Net(comm.rank)
    gamma = model.bn.gamma.data.copy()
    comm.mean_persistent(model)
    per_rank = [batch_norm_on(r) for r in range(comm.size)]
    np.testing.assert_allclose(model.bn.avg_mean.data,
                               np.mean([bn.avg_mean.data for bn in per_rank], axis=0),
                               rtol=1e-6, atol=1e-7)
    np.testing.assert_allclose(model.bn.avg_var.data,
                               np.mean([bn.avg_var.data for bn in per_rank], axis=0),
                               rtol=1e-6, atol=1e-7)
    np.testing.assert_array_equal(model.bn.gamma.data, gamma)  # trained ones untouched
    assert same_on_every_rank(comm, [model.bn.avg_mean.data, model.bn.avg_var.data])
