"""Regularisation and normalisation (the book's step 54 and after): dropout (inverted,
identity under ``test_mode()``), batch_norm (alias ``batch_nrom``, the book's
spelling), whose running mean and variance are updated in place in training, and
layer_norm (composed of the framework's functions, so every derivative comes with them).
"""
from __future__ import annotations

from typing import Any, Sequence

import numpy as np

from zerograd.core import Config, Function, Variable
from zerograd.cuda import get_array_module
from zerograd.functions.array import _data, reshape
from zerograd.functions.math import _floating, sqrt
from zerograd.functions.reduction import average, sum
from zerograd.hints import VarOrArray


def dropout(x: VarOrArray, dropout_ratio: float = 0.5) -> Variable:
    """Inverted dropout: in training, zero each element with probability dropout_ratio and
    scale the rest by 1 / (1 - ratio); under ``test_mode()`` x unchanged. The mask is drawn
    from NumPy's global generator as the book does (``rand(*x.shape) > ratio``)."""
    if not 0.0 <= dropout_ratio < 1.0:
        raise ValueError(f'dropout: dropout_ratio must be in [0, 1), got {dropout_ratio}')
    x = _floating('dropout', x, real=True)
    if not Config.train:
        return x
    xp = get_array_module(x.data)
    mask = xp.random.rand(*x.shape) > dropout_ratio
    scale = xp.array(1.0 - dropout_ratio).astype(x.dtype)
    return x * mask / scale


def _batch_axes(x: Any) -> tuple:
    return (0,) if x.ndim == 2 else (0, 2, 3)


def _channel_shape(x: Any) -> tuple:
    return (1, -1) if x.ndim == 2 else (1, -1, 1, 1)


class BatchNorm(Function):
    """Batch normalisation over the batch (and spatial) axes of x (N, C) or (N, C, H, W).

    In training it normalises by the batch statistics and updates the running ``mean`` and
    ``var`` arrays in place; under ``test_mode()`` it uses them instead.
    """
    backward_reads = ('inputs',)

    def __init__(self, mean: Any, var: Any, decay: float, eps: float) -> None:
        self.avg_mean = mean
        self.avg_var = var
        self.decay = decay
        self.eps = eps

    def forward(self, x, gamma, beta):
        axes = _batch_axes(x)
        shape = _channel_shape(x)
        xp = get_array_module(x)
        if Config.train:
            mu = x.mean(axis=axes)
            var = x.var(axis=axes)
            m = x.size // gamma.size
            adjust = m / (m - 1.0) if m > 1 else 1.0  # the running variance is unbiased
            self.avg_mean *= self.decay
            self.avg_mean += (1 - self.decay) * mu
            self.avg_var *= self.decay
            self.avg_var += (1 - self.decay) * adjust * var
        else:
            mu = self.avg_mean
            var = self.avg_var
        self.train = Config.train
        inv_std = 1 / xp.sqrt(var + self.eps)
        xhat = (x - mu.reshape(shape)) * inv_std.reshape(shape).astype(x.dtype)
        return (gamma.reshape(shape) * xhat + beta.reshape(shape)).astype(x.dtype)

    def backward(self, gy):
        x, gamma, beta = self.inputs
        axes = _batch_axes(x)
        shape = _channel_shape(x)
        if self.train:
            # Recompute the normalisation with framework functions, so that the
            # gradient can be differentiated again (double backward).
            m = x.size // gamma.size
            mu = sum(x, axis=axes, keepdims=True) / m
            xc = x - mu
            var = sum(xc * xc, axis=axes, keepdims=True) / m
            inv_std = (var + self.eps) ** -0.5
            xhat = xc * inv_std
            gbeta = sum(gy, axis=axes)
            ggamma = sum(xhat * gy, axis=axes)
            gxhat = gy * reshape(gamma, shape)
            gx = inv_std * (gxhat - sum(gxhat, axis=axes, keepdims=True) / m
                            - xhat * sum(gxhat * xhat, axis=axes, keepdims=True) / m)
        else:
            xp = get_array_module(x.data)
            inv_std = (1 / xp.sqrt(self.avg_var + self.eps)).astype(x.dtype).reshape(shape)
            xhat = (x - self.avg_mean.reshape(shape).astype(x.dtype)) * inv_std
            gbeta = sum(gy, axis=axes)
            ggamma = sum(xhat * gy, axis=axes)
            gx = gy * reshape(gamma, shape) * inv_std
        return gx, ggamma, gbeta


def batch_norm(x: VarOrArray, gamma: VarOrArray, beta: VarOrArray, mean: VarOrArray,
               var: VarOrArray, decay: float = 0.9, eps: float = 2e-5) -> Variable:
    """Batch normalisation. x: (N, C) or (N, C, H, W), real (bool/int: float64); gamma,
    beta, mean, var: (C,). ``mean`` and ``var`` are arrays updated in place in training,
    which needs more than one value per channel (N H W > 1), as in PyTorch."""
    x = _floating('batch_norm', x, real=True)
    _check_batch_norm_x('batch_norm', x)
    C = x.shape[1]
    for name, value in (('gamma', gamma), ('beta', beta), ('mean', mean), ('var', var)):
        if _data(value).shape != (C,):
            raise ValueError(f'batch_norm: {name} must have shape ({C},) for x of shape '
                             f'{x.shape}, got {_data(value).shape}')
    return BatchNorm(_data(mean), _data(var), decay, eps)(x, gamma, beta)


batch_nrom = batch_norm  # the book's spelling


def _check_batch_norm_x(op: str, x: Any) -> None:
    """x (N, C) or (N, C, H, W), non-empty, and in training more than one value per channel:
    the variance of one value is 0, so the output would be all zeros (beta) and the running
    variance would be corrupted. Nothing is changed before this check."""
    if x.ndim not in (2, 4):
        raise ValueError(f'{op}: x must be (N, C) or (N, C, H, W), got {x.shape}')
    if x.size == 0:
        raise ValueError(f'{op}: x of shape {x.shape} is empty: no statistics to take')
    if Config.train and x.size // x.shape[1] == 1:
        raise ValueError(f'{op}: expected more than 1 value per channel when training, got '
                         f'x of shape {x.shape} (use a batch of 2 or more, or test_mode())')


# =============================================================================
# Layer normalisation
# =============================================================================
def _normalized_shape(op: str, value: Any) -> tuple[int, ...]:
    """An int n as (n,), or a non-empty tuple/list of positive ints, as a tuple."""
    shape = (value,) if isinstance(value, (int, np.integer)) else value
    if not isinstance(shape, (tuple, list)) or len(shape) == 0 or any(
            not isinstance(n, (int, np.integer)) or isinstance(n, (bool, np.bool_))
            for n in shape):
        raise TypeError(f'{op}: normalized_shape must be an int or a non-empty tuple of '
                        f'ints, got {value!r}')
    if any(n <= 0 for n in shape):
        raise ValueError(f'{op}: normalized_shape must hold positive sizes, got {value!r}')
    return tuple(int(n) for n in shape)


def layer_norm(x: VarOrArray, gamma: VarOrArray | None = None,
               beta: VarOrArray | None = None, eps: float = 1e-5,
               normalized_shape: int | Sequence[int] | None = None) -> Variable:
    """Layer normalisation over the last axes of x, PyTorch's ``F.layer_norm``:
    y = (x - mean) / sqrt(var + eps) * gamma + beta, mean and (biased) var taken over the
    last ``len(normalized_shape)`` axes of each sample.

    x: ``(..., *normalized_shape)``, real (bool/int: float64); gamma, beta: normalized_shape
    or None (no scale, no shift). normalized_shape defaults to gamma's (else beta's)
    shape and must be given when both are None. Composed of average, sqrt and the
    arithmetic ops, so it is differentiable any number of times.

    >>> x = np.array([[1., 2., 3.], [2., 2., 2.]])
    >>> layer_norm(x, normalized_shape=3).data.round(4)
    array([[-1.2247,  0.    ,  1.2247],
           [ 0.    ,  0.    ,  0.    ]])
    """
    x = _floating('layer_norm', x, real=True)
    if normalized_shape is None:
        given = gamma if gamma is not None else beta
        if given is None:
            raise ValueError('layer_norm: give normalized_shape when gamma and beta are None')
        normalized_shape = _data(given).shape
    shape = _normalized_shape('layer_norm', normalized_shape)
    if x.shape[x.ndim - len(shape):] != shape or x.ndim < len(shape):
        raise ValueError(f'layer_norm: x of shape {x.shape} does not end with '
                         f'normalized_shape {shape}')
    for name, value in (('gamma', gamma), ('beta', beta)):
        if value is not None and _data(value).shape != shape:
            raise ValueError(f'layer_norm: {name} must have shape {shape} (normalized_shape), '
                             f'got {_data(value).shape}')
    axes = tuple(range(x.ndim - len(shape), x.ndim))
    xc = x - average(x, axis=axes, keepdims=True)
    var = average(xc * xc, axis=axes, keepdims=True)
    y = xc / sqrt(var + eps)  # eps a Python float: float32 stays float32
    if gamma is not None:
        y = y * gamma
    if beta is not None:
        y = y + beta
    return y
