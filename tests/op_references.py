"""The references the op registry (ops.py) compares zerograd with: plain NumPy
implementations and the PyTorch equivalents of the functions of ``zerograd.functions``,
each with the signature of the zerograd function it stands for, gathered in two
namespaces, ``NP`` and ``TH``. A registry case written as ``fn(m, *xs)`` runs with ``m``
= ``zerograd.functions``, ``NP`` or ``TH``.

No reference calls zerograd: every expected value is computed by NumPy (loops where the
op is a convolution) or by PyTorch. Not a test module; PyTorch is optional (``TH`` is None
without it).
"""
from __future__ import annotations

import types
import zlib

import numpy as np

import zerograd

try:
    import torch
    tF = torch.nn.functional
except ImportError:  # the PyTorch comparisons skip; everything else runs
    torch = tF = None


# =============================================================================
# Input domains
# =============================================================================
def _away_from_clip_edges(shape, rng):
    """In [-1, 1] but at least 0.1 from the clip bounds -0.5 and 0.5."""
    x = rng.uniform(-0.9, 0.9, size=shape)
    return np.where(np.abs(x) < 0.5, x * 0.8, np.sign(x) * (np.abs(x) + 0.1))


def _distinct(shape, rng):
    """Values in [-1, 1) at least 2 / size apart: no ties for max pooling to break."""
    size = int(np.prod(shape))
    return rng.permutation(size).reshape(shape) * 2.0 / size - 1.0


DOMAINS = {
    'any': lambda shape, rng: rng.uniform(-1.0, 1.0, size=shape),
    'pos': lambda shape, rng: rng.uniform(0.5, 2.0, size=shape),  # log, sqrt, pow's base
    'nonzero': lambda shape, rng: (rng.choice([-1.0, 1.0], size=shape)  # divisors, abs
                                   * rng.uniform(0.5, 1.5, size=shape)),
    'scores': lambda shape, rng: rng.uniform(-3.0, 3.0, size=shape),
    'kinkless': lambda shape, rng: (rng.choice([-1.0, 1.0], size=shape)  # relu's kink
                                    * rng.uniform(0.2, 1.5, size=shape)),
    'clip': _away_from_clip_edges,
    'prob': lambda shape, rng: rng.uniform(0.05, 0.95, size=shape),
    'distinct': _distinct,
}


def make_array(shape, domain, rng):
    """Random float64 values of ``shape`` in ``domain`` (a name of DOMAINS or a function
    (shape, rng) -> array), where the op is smooth and defined."""
    make = DOMAINS[domain] if isinstance(domain, str) else domain
    return np.asarray(make(tuple(shape), rng), dtype=np.float64)


def case_rng(case_id):
    """The generator of one case, seeded by its id: each case draws the same values
    whatever runs before it."""
    return np.random.default_rng(zlib.crc32(case_id.encode()))


def const(array, x):
    """A constant operand in x's framework and dtype (x: Variable, ndarray or tensor)."""
    if torch is not None and isinstance(x, torch.Tensor):
        return torch.as_tensor(array, dtype=x.dtype)
    return array.astype(x.dtype)


# =============================================================================
# NumPy references
# =============================================================================
def _pair(value):
    return (value, value) if isinstance(value, int) else tuple(value)


def np_sum_to(x, shape):
    """x summed over the leading axes and the axes where shape has 1: plain np.sum."""
    shape = tuple(shape)
    lead = x.ndim - len(shape)
    axes = tuple(range(lead)) + tuple(lead + i for i, n in enumerate(shape)
                                      if n == 1 and x.shape[lead + i] != 1)
    return np.sum(x, axis=axes, keepdims=True).reshape(shape)


def np_sigmoid(x):
    return 1 / (1 + np.exp(-x))


def np_softmax(x, axis=1):
    e = np.exp(x - x.max(axis=axis, keepdims=True))
    return e / e.sum(axis=axis, keepdims=True)


def np_log_softmax(x, axis=1):
    s = x - x.max(axis=axis, keepdims=True)
    return s - np.log(np.exp(s).sum(axis=axis, keepdims=True))


def np_mse(x0, x1):
    return ((x0 - x1) ** 2).sum() / len(x0)


def np_softmax_cross_entropy(x, t):
    return -np_log_softmax(x)[np.arange(len(x)), t].mean()


def np_sigmoid_cross_entropy(x, t):
    t = np.asarray(t).reshape(x.shape)
    p = np_sigmoid(x)
    return -(t * np.log(p) + (1 - t) * np.log(1 - p)).sum() / len(x)


def np_binary_cross_entropy(p, t):
    t = np.asarray(t).reshape(p.shape)
    return -(t * np.log(p) + (1 - t) * np.log(1 - p)).sum() / len(p)


def _channel(a, x):
    """A (C,) array shaped to broadcast against x (N, C) or (N, C, H, W)."""
    return np.asarray(a).reshape((1, -1) + (1,) * (x.ndim - 2))


def np_batch_norm(x, gamma, beta, mean=None, var=None, decay=0.9, eps=2e-5):
    """Batch statistics in training (zerograd.Config.train), else the running mean/var."""
    if zerograd.Config.train or mean is None:
        axes = (0,) if x.ndim == 2 else (0, 2, 3)
        mean, var = x.mean(axis=axes), x.var(axis=axes)
    xhat = (x - _channel(mean, x)) / np.sqrt(_channel(var, x) + eps)
    return _channel(gamma, x) * xhat + _channel(beta, x)


def np_dropout(x, dropout_ratio=0.5):
    """The book's mask from NumPy's global generator, as zerograd draws it."""
    if not zerograd.Config.train:
        return x
    return x * (np.random.rand(*x.shape) > dropout_ratio) / (1 - dropout_ratio)


def np_lstm_cell(c_prev, af, ai, ao, au):
    c = np_sigmoid(af) * c_prev + np_sigmoid(ai) * np.tanh(au)
    return c, np_sigmoid(ao) * np.tanh(c)


def np_lstm_step(x, h, c_prev, Wx, b, Wh):
    return np_lstm_cell(c_prev, *[x @ Wx[k] + b[k] + h @ Wh[k] for k in range(4)])


def np_get_item_grad(slices, in_shape):
    """GetItemGrad(slices, in_shape) as a NumPy function: gy scattered (added) into zeros."""
    def scatter(gy):
        gx = np.zeros(in_shape)
        np.add.at(gx, slices, gy)
        return gx
    return scatter


def _pad(x, pad, value=0.0):
    PH, PW = _pair(pad)
    return np.pad(x, ((0, 0), (0, 0), (PH, PH), (PW, PW)), constant_values=value)


def _out(size, k, s, p):
    return (size + 2 * p - k) // s + 1


def np_windows(x, kernel_size, stride, pad, value=0.0):
    """(N, C, KH, KW, OH, OW) by a loop over the output pixels."""
    KH, KW = _pair(kernel_size)
    SH, SW = _pair(stride)
    PH, PW = _pair(pad)
    N, C, H, W = x.shape
    OH, OW = _out(H, KH, SH, PH), _out(W, KW, SW, PW)
    xp = _pad(x, pad, value)
    col = np.zeros((N, C, KH, KW, OH, OW), dtype=x.dtype)
    for i in range(OH):
        for j in range(OW):
            col[:, :, :, :, i, j] = xp[:, :, i * SH:i * SH + KH, j * SW:j * SW + KW]
    return col


def np_im2col(x, kernel_size, stride=1, pad=0, to_matrix=True):
    col = np_windows(x, kernel_size, stride, pad)
    if to_matrix:
        N, C, KH, KW, OH, OW = col.shape
        return col.transpose(0, 4, 5, 1, 2, 3).reshape(N * OH * OW, -1)
    return col


def np_col2im(col, input_shape, kernel_size, stride=1, pad=0, to_matrix=True):
    KH, KW = _pair(kernel_size)
    SH, SW = _pair(stride)
    PH, PW = _pair(pad)
    N, C, H, W = input_shape
    OH, OW = _out(H, KH, SH, PH), _out(W, KW, SW, PW)
    if to_matrix:
        col = col.reshape(N, OH, OW, C, KH, KW).transpose(0, 3, 4, 5, 1, 2)
    x = np.zeros((N, C, H + 2 * PH, W + 2 * PW), dtype=col.dtype)
    for i in range(OH):
        for j in range(OW):
            x[:, :, i * SH:i * SH + KH, j * SW:j * SW + KW] += col[:, :, :, :, i, j]
    return x[:, :, PH:PH + H, PW:PW + W]


def np_conv2d(x, W, b=None, stride=1, pad=0):
    """A naive convolution: for every output pixel, its window dotted with each filter."""
    OC, C, KH, KW = W.shape
    SH, SW = _pair(stride)
    PH, PW = _pair(pad)
    N, _, H, Wd = x.shape
    OH, OW = _out(H, KH, SH, PH), _out(Wd, KW, SW, PW)
    xp = _pad(x, pad)
    y = np.zeros((N, OC, OH, OW), dtype=np.result_type(x, W))
    for i in range(OH):
        for j in range(OW):
            window = xp[:, :, i * SH:i * SH + KH, j * SW:j * SW + KW]
            y[:, :, i, j] = np.tensordot(window, W, axes=([1, 2, 3], [1, 2, 3]))
    if b is not None:
        y += b.reshape(1, OC, 1, 1)
    return y


def np_deconv2d(x, W, b=None, stride=1, pad=0, outsize=None):
    """A naive transposed convolution: every input pixel adds W[c] times itself into its
    window of the (padded) output."""
    C, OC, KH, KW = W.shape
    SH, SW = _pair(stride)
    PH, PW = _pair(pad)
    N, _, H, Wd = x.shape
    if outsize is None:
        outsize = (SH * (H - 1) + KH - 2 * PH, SW * (Wd - 1) + KW - 2 * PW)
    OH, OW = _pair(outsize)
    y = np.zeros((N, OC, OH + 2 * PH, OW + 2 * PW), dtype=np.result_type(x, W))
    for n in range(N):
        for h in range(H):
            for w in range(Wd):
                y[n, :, h * SH:h * SH + KH, w * SW:w * SW + KW] += np.tensordot(
                    x[n, :, h, w], W, axes=(0, 0))
    y = y[:, :, PH:PH + OH, PW:PW + OW]
    if b is not None:
        y += b.reshape(1, OC, 1, 1)
    return y


def np_max_pool(x, kernel_size, stride=1, pad=0):
    return np_windows(x, kernel_size, stride, pad, -np.inf).max(axis=(2, 3))


def np_avg_pool(x, kernel_size, stride=1, pad=0):
    return np_windows(x, kernel_size, stride, pad).mean(axis=(2, 3))


def np_layer_norm(x, gamma=None, beta=None, eps=1e-5, normalized_shape=None):
    """Mean and biased variance over the trailing axes of gamma's (or the given) shape."""
    shape = np.shape(gamma if gamma is not None else beta) if normalized_shape is None \
        else tuple(np.atleast_1d(normalized_shape))
    axes = tuple(range(x.ndim - len(shape), x.ndim))
    y = (x - x.mean(axis=axes, keepdims=True)) / np.sqrt(x.var(axis=axes, keepdims=True) + eps)
    y = y if gamma is None else y * gamma
    return y if beta is None else y + beta


def _np_linear(x, W, b=None):
    y = x @ W
    return y if b is None else y + b


NP = types.SimpleNamespace(
    add=np.add, sub=np.subtract, mul=np.multiply, div=np.divide, pow=np.power,
    neg=np.negative, rsub=lambda x0, x1: x1 - x0, rdiv=lambda x0, x1: x1 / x0,
    sin=np.sin, cos=np.cos, tanh=np.tanh, exp=np.exp, log=np.log, square=np.square,
    sqrt=np.sqrt, abs=np.abs,
    reshape=np.reshape, transpose=np.transpose, sum_to=np_sum_to,
    broadcast_to=np.broadcast_to, expand_dims=np.expand_dims,
    flatten=lambda x: x.reshape(len(x), -1), get_item=lambda x, slices: x[slices],
    GetItemGrad=np_get_item_grad, cast=lambda x, dtype: x.astype(dtype),
    concat=lambda xs, axis=0: np.concatenate(xs, axis=axis),
    stack=lambda xs, axis=0: np.stack(xs, axis=axis),
    sum=np.sum, max=np.max, min=np.min, average=np.mean, mean=np.mean,
    matmul=np.matmul, linear=_np_linear, linear_simple=_np_linear,
    linear_pair=lambda x, W, b, h, U: x @ W + b + h @ U,
    embed_id=lambda x, W: W[x],
    sigmoid=np_sigmoid, sigmoid_simple=np_sigmoid, relu=lambda x: np.maximum(x, 0),
    leaky_relu=lambda x, slope=0.2: np.where(x > 0, x, slope * x), clip=np.clip,
    softmax=np_softmax, softmax_simple=np_softmax, log_softmax=np_log_softmax,
    mean_squared_error=np_mse, mean_squared_error_simple=np_mse,
    softmax_cross_entropy=np_softmax_cross_entropy,
    softmax_cross_entropy_simple=np_softmax_cross_entropy,
    sigmoid_cross_entropy=np_sigmoid_cross_entropy,
    binary_cross_entropy=np_binary_cross_entropy,
    dropout=np_dropout, batch_norm=np_batch_norm, batch_nrom=np_batch_norm,
    layer_norm=np_layer_norm, lstm_cell=np_lstm_cell, lstm_step=np_lstm_step,
    conv2d=np_conv2d, conv2d_simple=np_conv2d, deconv2d=np_deconv2d,
    pooling=np_max_pool, pooling_simple=np_max_pool, average_pooling=np_avg_pool,
    im2col=np_im2col, col2im=np_col2im,
)


# =============================================================================
# PyTorch references
# =============================================================================
def _torch_index(index):
    """A NumPy index with its arrays as tensors (PyTorch indexes with tensors)."""
    if isinstance(index, tuple):
        return tuple(_torch_index(i) for i in index)
    if isinstance(index, np.ndarray):
        return torch.from_numpy(index)
    return index


def index_for(m, index):
    """An index for the namespace m's arrays: tensors for TH, the NumPy index otherwise."""
    return _torch_index(index) if m is TH else index


def _th_labels(t, x):
    return torch.as_tensor(np.asarray(t), dtype=x.dtype).reshape(x.shape)


def _th_batch_norm(x, gamma, beta, mean=None, var=None, decay=0.9, eps=2e-5):
    """Training (batch statistics, the running ones updated in place with momentum
    1 - decay) or, under zerograd.test_mode(), inference with the running statistics."""
    C = x.shape[1]
    mean = torch.zeros(C, dtype=x.dtype) if mean is None else torch.as_tensor(mean,
                                                                             dtype=x.dtype)
    var = torch.ones(C, dtype=x.dtype) if var is None else torch.as_tensor(var, dtype=x.dtype)
    return tF.batch_norm(x, mean, var, gamma, beta, training=bool(zerograd.Config.train),
                         momentum=1 - decay, eps=eps)


def _th_layer_norm(x, gamma=None, beta=None, eps=1e-5, normalized_shape=None):
    shape = tuple((gamma if gamma is not None else beta).shape) if normalized_shape is None \
        else tuple(np.atleast_1d(normalized_shape))
    return tF.layer_norm(x, shape, gamma, beta, eps)


def _th_deconv2d(x, W, b=None, stride=1, pad=0, outsize=None):
    KH, KW = W.shape[2:]
    (SH, SW), (PH, PW) = _pair(stride), _pair(pad)
    H, W_width = x.shape[2:]
    default = (SH * (H - 1) + KH - 2 * PH, SW * (W_width - 1) + KW - 2 * PW)
    outsize = default if outsize is None else _pair(outsize)
    output_padding = (outsize[0] - default[0], outsize[1] - default[1])
    return tF.conv_transpose2d(x, W, b, stride, pad, output_padding)


def _th_lstm_cell(c_prev, af, ai, ao, au):
    c = torch.sigmoid(af) * c_prev + torch.sigmoid(ai) * torch.tanh(au)
    return c, torch.sigmoid(ao) * torch.tanh(c)


def _th_lstm_step(x, h, c_prev, Wx, b, Wh):
    return _th_lstm_cell(c_prev, *[x @ Wx[k] + b[k] + h @ Wh[k] for k in range(4)])


def _th_reduce(name):
    def reduce(x, axis=None, keepdims=False):
        if name == 'sum':
            return x.sum(dim=axis, keepdim=keepdims)
        if name == 'mean':
            return x.mean() if axis is None and not keepdims else x.mean(
                dim=axis, keepdim=keepdims)
        dim = () if axis is None else axis
        return getattr(x, name)(dim=dim, keepdim=keepdims)
    return reduce


def _th_namespace():
    linear = lambda x, W, b=None: tF.linear(x, W.T, b)  # noqa: E731  torch's W is (out, in)
    conv2d = lambda x, W, b=None, stride=1, pad=0: tF.conv2d(x, W, b, stride, pad)  # noqa
    max_pool = lambda x, k, stride=1, pad=0: tF.max_pool2d(x, k, stride, pad)  # noqa: E731
    softmax = lambda x, axis=1: tF.softmax(x, dim=axis)  # noqa: E731
    mse = lambda x0, x1: ((x0 - x1) ** 2).sum() / len(x0)  # noqa: E731
    cross_entropy = lambda x, t: tF.cross_entropy(x, torch.from_numpy(np.asarray(t)))  # noqa
    return types.SimpleNamespace(
        add=torch.add, sub=torch.sub, mul=torch.mul, div=torch.div, pow=torch.pow,
        neg=torch.neg, rsub=lambda x0, x1: x1 - x0, rdiv=lambda x0, x1: x1 / x0,
        sin=torch.sin, cos=torch.cos, tanh=torch.tanh, exp=torch.exp, log=torch.log,
        square=torch.square, sqrt=torch.sqrt, abs=torch.abs,
        reshape=lambda x, shape: x.reshape(shape),
        transpose=lambda x, axes=None: x.permute(
            *(range(x.ndim - 1, -1, -1) if axes is None else axes)),
        sum_to=lambda x, shape: x.sum_to_size(shape),
        broadcast_to=lambda x, shape: x.expand(shape),
        expand_dims=lambda x, axis: x.unsqueeze(axis),
        flatten=lambda x: x.flatten(1),
        get_item=lambda x, slices: x[_torch_index(slices)],
        cast=lambda x, dtype: x.to(getattr(torch, np.dtype(dtype).name)),
        concat=lambda xs, axis=0: torch.cat(xs, dim=axis),
        stack=lambda xs, axis=0: torch.stack(xs, dim=axis),
        sum=_th_reduce('sum'), max=_th_reduce('amax'), min=_th_reduce('amin'),
        average=_th_reduce('mean'), mean=_th_reduce('mean'),
        matmul=torch.matmul, linear=linear, linear_simple=linear,
        linear_pair=lambda x, W, b, h, U: linear(x, W, b) + linear(h, U),
        embed_id=lambda x, W: tF.embedding(torch.from_numpy(np.asarray(x)), W),
        sigmoid=torch.sigmoid, sigmoid_simple=torch.sigmoid, relu=torch.relu,
        leaky_relu=lambda x, slope=0.2: tF.leaky_relu(x, negative_slope=slope),
        clip=torch.clamp,
        softmax=softmax, softmax_simple=softmax,
        log_softmax=lambda x, axis=1: tF.log_softmax(x, dim=axis),
        mean_squared_error=mse, mean_squared_error_simple=mse,
        softmax_cross_entropy=cross_entropy, softmax_cross_entropy_simple=cross_entropy,
        sigmoid_cross_entropy=lambda x, t: tF.binary_cross_entropy_with_logits(
            x, _th_labels(t, x), reduction='sum') / len(x),
        binary_cross_entropy=lambda p, t: tF.binary_cross_entropy(
            p, _th_labels(t, p), reduction='sum') / len(p),
        batch_norm=_th_batch_norm, batch_nrom=_th_batch_norm, layer_norm=_th_layer_norm,
        lstm_cell=_th_lstm_cell, lstm_step=_th_lstm_step,
        conv2d=conv2d, conv2d_simple=conv2d, deconv2d=_th_deconv2d,
        pooling=max_pool, pooling_simple=max_pool,
        average_pooling=lambda x, k, stride=1, pad=0: tF.avg_pool2d(
            x, k, stride, pad, count_include_pad=True),
    )


TH = None if torch is None else _th_namespace()
