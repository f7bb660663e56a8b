"""The normalisation and regularisation of ``zerograd.functions``: batch_norm, dropout.

Every case of the registry's 'normalization' topic goes through ``check_op``. Then
dropout's mask and test mode, and batch norm's running statistics.
"""
import re

import numpy as np
import pytest

import ops
import zerograd
import zerograd.functions as F
from zerograd import Variable

RUNNING_MEAN, RUNNING_VAR = ops.RUNNING_MEAN, ops.RUNNING_VAR


@pytest.mark.parametrize('case', ops.cases(ops.GRAD, 'normalization'), ids=ops.case_id)
def test_check_op(case):
    """The registry's normalization cases (ops.py) through zerograd.testing.check_op."""
    ops.check_case(case)


def _batch_axes(x):
    return (0,) if x.ndim == 2 else (0, 2, 3)


def _channel(a, x):
    """A (C,) array shaped to broadcast against x (N, C) or (N, C, H, W)."""
    return a.reshape((1, -1) + (1,) * (x.ndim - 2))


def np_batch_norm(x, gamma, beta, mean=None, var=None, eps=2e-5):
    """Train mode (batch statistics) when mean/var are None, else test mode."""
    if mean is None:
        mean, var = x.mean(axis=_batch_axes(x)), x.var(axis=_batch_axes(x))
    xhat = (x - _channel(mean, x)) / np.sqrt(_channel(var, x) + eps)
    return _channel(gamma, x) * xhat + _channel(beta, x)


def np_dropout_mask(shape, ratio):
    np.random.seed(0)
    return np.random.rand(*shape) > ratio


# =============================================================================
# dropout
# =============================================================================


@pytest.mark.parametrize('dtype', [np.float64, np.float32], ids=['float64', 'float32'])
@pytest.mark.parametrize('ratio', [0.5, 0.2, 0.0])
def test_dropout_mask_scale_and_gradient(ratio, dtype):
    x = Variable(np.random.default_rng(5).uniform(0.5, 1.5, size=(6, 7)).astype(dtype))
    np.random.seed(0)
    y = F.dropout(x) if ratio == 0.5 else F.dropout(x, ratio)
    mask = np_dropout_mask(x.shape, ratio)
    assert y.dtype == dtype
    np.testing.assert_allclose(y.data, x.data * mask / (1 - ratio), rtol=1e-6)
    gy = np.random.default_rng(6).standard_normal(x.shape).astype(dtype)
    y.grad = Variable(gy)
    y.backward()
    assert x.grad.dtype == dtype
    np.testing.assert_allclose(x.grad.data, gy * mask / (1 - ratio), rtol=1e-6)


def test_dropout_is_identity_in_test_mode():
    x = Variable(np.arange(6.0).reshape(2, 3) + 1)
    with zerograd.test_mode():
        y = F.dropout(x, 0.9)
    np.testing.assert_array_equal(y.data, x.data)
    y.backward()
    np.testing.assert_array_equal(x.grad.data, np.ones((2, 3)))


# =============================================================================
# batch_norm: running statistics
# =============================================================================


@pytest.mark.parametrize('decay', [None, 0.5], ids=['default decay 0.9', 'decay 0.5'])
@pytest.mark.parametrize('shape', [(6, 3), (4, 3, 2, 2)], ids=['(N, C)', '(N, C, H, W)'])
def test_batch_norm_train_updates_running_stats_in_place(shape, decay):
    rng = np.random.default_rng(8)
    x = rng.normal(1.0, 2.0, size=shape)
    gamma, beta = rng.uniform(0.5, 1.5, 3), rng.standard_normal(3)
    mean, var = RUNNING_MEAN.copy(), RUNNING_VAR.copy()
    kwargs = {} if decay is None else dict(decay=decay)
    y = F.batch_norm(Variable(x), Variable(gamma), Variable(beta), mean, var, **kwargs)
    np.testing.assert_allclose(y.data, np_batch_norm(x, gamma, beta), rtol=1e-10, atol=1e-12)
    d = 0.9 if decay is None else decay
    m = x.size // 3
    axes = _batch_axes(x)
    np.testing.assert_allclose(mean, d * RUNNING_MEAN + (1 - d) * x.mean(axis=axes),
                               rtol=1e-12)
    np.testing.assert_allclose(var, d * RUNNING_VAR + (1 - d) * x.var(axis=axes) * m / (m - 1),
                               rtol=1e-12)


@pytest.mark.parametrize('shape', [(6, 3), (4, 3, 2, 2)], ids=['(N, C)', '(N, C, H, W)'])
def test_batch_norm_test_mode_uses_running_stats_and_leaves_them(shape):
    rng = np.random.default_rng(9)
    x = rng.normal(1.0, 2.0, size=shape)
    gamma, beta = rng.uniform(0.5, 1.5, 3), rng.standard_normal(3)
    mean, var = RUNNING_MEAN.copy(), RUNNING_VAR.copy()
    with zerograd.test_mode():
        y = F.batch_norm(x, gamma, beta, mean, var)
    np.testing.assert_array_equal(mean, RUNNING_MEAN)
    np.testing.assert_array_equal(var, RUNNING_VAR)
    np.testing.assert_allclose(y.data, np_batch_norm(x, gamma, beta, mean, var), rtol=1e-10)


def test_batch_nrom_is_batch_norm():
    assert F.batch_nrom is F.batch_norm


@pytest.mark.parametrize('shape', [(1, 3), (1, 3, 1, 1)])
def test_batch_norm_training_needs_more_than_one_value_per_channel(shape):
    mean, var = np.array([0.5, 1.0, -1.0]), np.array([2.0, 3.0, 4.0])
    x = np.arange(3.0).reshape(shape)
    with pytest.raises(ValueError, match=r'batch_norm: expected more than 1 value per channel '
                                         rf'when training, got x of shape {re.escape(str(shape))}'):
        F.batch_norm(x, np.ones(3), np.zeros(3), mean, var)
    np.testing.assert_array_equal(mean, [0.5, 1.0, -1.0])  # the running statistics untouched
    np.testing.assert_array_equal(var, [2.0, 3.0, 4.0])
    with zerograd.test_mode():  # inference uses the running statistics: one sample is fine
        y = F.batch_norm(x, np.ones(3), np.zeros(3), mean, var)
    expected = (np.arange(3.0) - mean) / np.sqrt(var + 2e-5)
    np.testing.assert_allclose(y.data.reshape(3), expected, rtol=1e-12)


def test_batch_norm_training_with_one_sample_of_several_pixels_is_fine():
    x = np.arange(8.0).reshape(1, 2, 2, 2)  # 4 values per channel
    y = F.batch_norm(x, np.ones(2), np.zeros(2), np.zeros(2), np.ones(2))
    flat = x.reshape(2, 4)
    expected = (flat - flat.mean(axis=1, keepdims=True)) / np.sqrt(flat.var(axis=1, keepdims=True) + 2e-5)
    np.testing.assert_allclose(y.data.reshape(2, 4), expected, rtol=1e-12)
