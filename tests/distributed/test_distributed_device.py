"""Device arrays through the communicator: staged through host memory, they come back on
the device with the values the host path gives. Runs on zerograd's strict stand-in for CuPy
everywhere (it refuses any silent mix of device and host arrays) and on real CuPy with a GPU;
at size 1 under pytest and at size 2 under mpiexec."""
from __future__ import annotations

import importlib.util

import numpy as np
import pytest

from zerograd import Variable, cuda
from zerograd.models import MLP
from zerograd.testing_strict import use_strict_device

from distributed_helpers import COMM


@pytest.fixture(params=['strict', 'cupy'])
def xp(request):
    """The device's array module, installed as zerograd's CuPy for the test."""
    if request.param == 'strict':
        with use_strict_device() as module:
            yield module
        return
    if importlib.util.find_spec('cupy') is None:
        pytest.skip('CuPy is not installed; the strict stand-in ran')
    ok, text = cuda.gpu_status()
    if not ok:
        pytest.skip(f'no GPU ({text}); the strict stand-in ran')
    yield cuda._cupy()


def _on_device(xp, *arrays):
    for a in arrays:
        a = a.data if isinstance(a, Variable) else a
        assert isinstance(a, xp.ndarray), f'expected a device array, got {type(a).__name__}'


def test_allreduce_of_a_device_array_comes_back_on_the_device(xp):
    a = cuda.as_cupy(np.full(5, COMM.rank + 1, dtype=np.float32))
    total = COMM.allreduce(a, op='sum')
    _on_device(xp, total)
    want = sum(r + 1 for r in range(COMM.size))
    np.testing.assert_array_equal(cuda.as_numpy(total), np.full(5, want, np.float32))


def test_bcast_data_and_mean_grad_of_a_model_on_the_device(xp):
    np.random.seed(COMM.rank)  # different weights on every rank: rank 0's must win
    model = MLP((4, 2))
    model(np.zeros((1, 3), np.float32))
    root = {k: p.data.copy() for k, p in model.named_params().items()}
    root = COMM.bcast_obj(root if COMM.rank == 0 else None)
    model.to_gpu()
    COMM.bcast_data(model)
    for key, p in model.named_params().items():
        _on_device(xp, p)
        np.testing.assert_array_equal(cuda.as_numpy(p.data), root[key])
    for p in model.params():
        p.grad = Variable(cuda.as_cupy(np.full(p.data.shape, COMM.rank + 1, np.float32)))
    COMM.mean_grad(model)
    mean = sum(r + 1 for r in range(COMM.size)) / COMM.size
    for p in model.params():
        _on_device(xp, p.grad)
        np.testing.assert_allclose(cuda.as_numpy(p.grad.data), mean)
