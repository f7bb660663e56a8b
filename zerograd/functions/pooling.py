"""Pooling (the book's step 57): max pooling (``pooling``, with the book's composed
``pooling_simple`` as its oracle) and average pooling, on the windows of ``conv``'s
strided view (no copy of the windows; one pass per kernel offset).

Shapes: x (N, C, H, W) -> (N, C, OH, OW) with OH = (H + 2 PH - KH) // SH + 1, or with
max pooling's ``ceil_mode=True`` OH = ceil((H + 2 PH - KH) / SH) + 1 (the last, partial
window kept; Caffe's rounding, torch's and ONNX's ``ceil_mode``).
``kernel_size``, ``stride`` and ``pad`` take an int or a pair.

Every backward is a Function of this module, so it can be differentiated again: max
pooling's gradient is ``PoolingGrad``, whose gradient is ``PoolingWithIndexes``, whose
gradient is ``PoolingGrad`` again (any order); average pooling's is
``AveragePoolingGrad``, whose gradient is average pooling.
"""
from __future__ import annotations

import builtins
from typing import Any

import numpy as np

from zerograd import workspace
from zerograd.core import Function, Variable, as_variable
from zerograd.cuda import get_array_module
from zerograd.functions.array import reshape, transpose
from zerograd.functions.conv import (_batch_last, _check_4d, _check_fits, _full, _im2col_array,
                                     _lowest, _outsize, _window_args, _windows, im2col)
from zerograd.functions.reduction import max
from zerograd.hints import Pair, VarOrArray


def _index_dtype(window_size: int) -> Any:
    """The smallest integer type that numbers the positions of a window."""
    return np.uint8 if window_size <= 256 else np.int32


def _ceil_extra(size: int, kernel: int, stride: int, pad: int) -> int:
    """Rows (or columns) of padding after the end that ceil mode adds, so that the last,
    partial window is complete: OH = ceil((size + 2 pad - kernel) / stride) + 1, less one
    when that last window would start in the padding after the end (torch's and ONNX's
    rule: every window holds an element of x)."""
    OH = -(-(size + 2 * pad - kernel) // stride) + 1
    if (OH - 1) * stride >= size + pad:
        OH -= 1
    # 0 when the windows end where floor mode's do (or before the end: floor's rule)
    return builtins.max((OH - 1) * stride + kernel - (size + 2 * pad), 0)


def _pad_ceil(x: Any, pad: Pair, extra: Pair, value: Any) -> Any:
    """x (N, C, H, W) padded with value: PH rows before and PH + EH after, PW columns
    before and PW + EW after (ceil mode's windows); stored batch-last if x is."""
    (PH, PW), (EH, EW) = pad, extra
    N, C, H, W = x.shape
    padded = _full((N, C, H + 2 * PH + EH, W + 2 * PW + EW), value, x.dtype,
                   get_array_module(x), _batch_last(x))
    padded[:, :, PH:PH + H, PW:PW + W] = x
    return padded


class Pooling(Function):
    """Max pooling: y[n, c, oh, ow] = the maximum of the window of x at (oh, ow), padding
    with a value that never wins (-inf). The position of each maximum (the first one on a
    tie) is kept in ``indexes`` (N, C, OH, OW), found in the same pass as the maximum.
    gx = PoolingGrad(gy): gy sent to those positions.

    ceil_mode: keep the last, partial window (OH rounded up); its missing rows and
    columns are padding after the end (``extra``, set by forward), which never wins."""

    def __init__(self, kernel_size: Pair, stride: Pair, pad: Pair,
                 ceil_mode: bool = False) -> None:
        self.kernel_size = kernel_size
        self.stride = stride
        self.pad = pad
        self.ceil_mode = ceil_mode
        self.extra = (0, 0)

    def _windows(self, x: Any, pad_value: Any = 0) -> Any:
        """The windows of x, with ceil mode's extra padding when there is some."""
        if self.extra == (0, 0):  # the ordinary path: _windows pads (if at all)
            return _windows(x, self.kernel_size, self.stride, self.pad, pad_value)
        x = _pad_ceil(x, self.pad, self.extra, pad_value)
        return _windows(x, self.kernel_size, self.stride, (0, 0))

    def forward(self, x):
        xp = get_array_module(x)
        KH, KW = self.kernel_size
        if self.ceil_mode:
            self.extra = tuple(_ceil_extra(n, k, s, p) for n, k, s, p in zip(
                x.shape[2:], self.kernel_size, self.stride, self.pad))
        windows = self._windows(x, _lowest(x.dtype))
        # One pass per kernel offset keeps the running maximum and where it was seen.
        # Plain arithmetic, no masked copies (which are several times slower): the index
        # only grows, so "k where greater" is maximum(indexes, greater * k).
        y = workspace.copy(windows[:, :, 0, 0])
        index_type = _index_dtype(KH * KW)
        self.indexes = workspace.empty_like(y, dtype=index_type)  # in y's memory order
        self.indexes.fill(0)
        for k in range(1, KH * KW):
            window = windows[:, :, k // KW, k % KW]
            greater = window > y
            xp.maximum(y, window, out=y)
            xp.maximum(self.indexes, greater * index_type(k), out=self.indexes)
        self.x_shape = x.shape
        self.batch_last = _batch_last(x)
        return y

    def backward(self, gy):
        return PoolingGrad(self)(gy)


class PoolingGrad(Function):
    """The gradient of max pooling: gx (N, C, H, W) is zero but at each window's maximum,
    which gets that window's gy (N, C, OH, OW) (summed where windows overlap).
    Linear in gy; its gradient is PoolingWithIndexes."""

    def __init__(self, pooling: Pooling) -> None:
        self.pooling = pooling

    def forward(self, gy):
        p = self.pooling
        KH, KW = p.kernel_size
        SH, SW = p.stride
        PH, PW = p.pad
        EH, EW = p.extra
        N, C, H, W = p.x_shape
        OH, OW = gy.shape[2:]
        xp = get_array_module(gy)
        if _batch_last(gy) != p.batch_last:
            # One copy into the memory order of the indexes and of gx, so that the passes
            # below stream through all three (mixed orders are several times slower).
            gy_in_order = workspace.empty_like(p.indexes, dtype=gy.dtype)
            gy_in_order[...] = gy
            gy = gy_in_order
        gx = _full((N, C, H + 2 * PH + EH, W + 2 * PW + EW), 0, gy.dtype, xp, p.batch_last)
        overlapping = KH > SH or KW > SW
        for k in range(KH * KW):
            i, j = divmod(k, KW)
            positions = gx[:, :, i:i + SH * OH:SH, j:j + SW * OW:SW]
            if overlapping:
                positions += gy * (p.indexes == k)
            else:  # each position is in one window: write, no read-add-write
                xp.multiply(gy, p.indexes == k, out=positions)
        if PH or PW or EH or EW:
            gx = workspace.copy(gx[:, :, PH:PH + H, PW:PW + W])
        return gx

    def backward(self, ggx):
        return PoolingWithIndexes(self.pooling)(ggx)


class PoolingWithIndexes(Function):
    """x (N, C, H, W) read at the positions a max pooling chose: y (N, C, OH, OW).
    Linear in x (the adjoint of PoolingGrad); its gradient is PoolingGrad."""

    def __init__(self, pooling: Pooling) -> None:
        self.pooling = pooling

    def forward(self, x):
        p = self.pooling
        xp = get_array_module(x)
        KH, KW = p.kernel_size
        windows = p._windows(x)
        y = windows[:, :, 0, 0].copy(order='K')
        for k in range(1, KH * KW):
            xp.copyto(y, windows[:, :, k // KW, k % KW], where=p.indexes == k)
        return y

    def backward(self, gy):
        return PoolingGrad(self.pooling)(gy)


def _check_pooling(op: str, x: Any, kernel_size: Any, stride: Any, pad: Any,
                   ceil_mode: bool = False) -> tuple[Pair, Pair, Pair]:
    _check_4d(op, 'x', x, '(N, C, H, W)')
    kernel_size, stride, pad = _window_args(op, kernel_size, stride, pad)
    if not ceil_mode:
        _check_fits(op, x.shape, kernel_size, pad)
    else:  # a partial window may be all there is: one, if the padded x is K - S + 1 long
        for n, k, s, p in zip(x.shape[2:], kernel_size, stride, pad):
            if n + 2 * p + s <= k:
                raise ValueError(f'{op}: kernel {kernel_size} with stride {stride} leaves '
                                 f'no window in the padded input (x.shape={x.shape}, '
                                 f'pad={pad}, ceil_mode=True)')
    return kernel_size, stride, pad


def _check_max_pad(op: str, kernel_size: Pair, pad: Pair) -> None:
    # With pad < kernel every window holds at least one element of x.
    if pad[0] >= kernel_size[0] or pad[1] >= kernel_size[1]:
        raise ValueError(f'{op}: pad {pad} must be smaller than kernel_size {kernel_size}, '
                         'or some windows would hold only padding')


def pooling(x: VarOrArray, kernel_size: int | Pair, stride: int | Pair = 1,
            pad: int | Pair = 0, ceil_mode: bool = False) -> Variable:
    """Max pooling. x: (N, C, H, W) -> (N, C, OH, OW), OH = (H + 2 PH - KH) // SH + 1.
    kernel_size, stride, pad: an int or a pair; pad < kernel_size. The padding never wins
    (as torch's max_pool2d). Note the book's default stride=1: pass stride=2 for the usual
    2 x 2 pooling. The gradient goes to the first maximum of each window.
    ceil_mode=True keeps the last, partial window: OH = ceil((H + 2 PH - KH) / SH) + 1,
    less one if that window would start after x's end and its padding (torch's
    ``ceil_mode``, ONNX MaxPool's ``ceil_mode=1``; Caffe's pooling).

    >>> x = np.arange(16, dtype=np.float32).reshape(1, 1, 4, 4)
    >>> pooling(x, 2, stride=2).data
    array([[[[ 5.,  7.],
             [13., 15.]]]], dtype=float32)
    >>> pooling(x, 3, stride=2, ceil_mode=True).data
    array([[[[10., 11.],
             [14., 15.]]]], dtype=float32)
    """
    x = as_variable(x)
    if not isinstance(ceil_mode, (bool, np.bool_)):
        raise TypeError(f'pooling: ceil_mode must be a bool, got {ceil_mode!r}')
    kernel_size, stride, pad = _check_pooling('pooling', x, kernel_size, stride, pad,
                                              bool(ceil_mode))
    _check_max_pad('pooling', kernel_size, pad)
    return Pooling(kernel_size, stride, pad, bool(ceil_mode))(x)


def pooling_simple(x: VarOrArray, kernel_size: int | Pair, stride: int | Pair = 1,
                   pad: int | Pair = 0) -> Variable:
    """The composed max pooling, the oracle of ``pooling``: im2col, max over each window,
    reshape. Padding gets -inf (a constant added to the columns), so it never wins; on a
    tie every maximum gets the gradient (``max``'s rule), where ``pooling`` picks one.

    >>> x = np.arange(16, dtype=np.float32).reshape(1, 1, 4, 4)
    >>> pooling_simple(x, 2, stride=2).data
    array([[[[ 5.,  7.],
             [13., 15.]]]], dtype=float32)
    """
    x = as_variable(x)
    kernel_size, stride, pad = _check_pooling('pooling_simple', x, kernel_size, stride, pad)
    _check_max_pad('pooling_simple', kernel_size, pad)
    N, C, H, W = x.shape
    KH, KW = kernel_size
    OH, OW = _outsize(x.shape, kernel_size, stride, pad)
    col = im2col(x, kernel_size, stride, pad, to_matrix=True)  # (N*OH*OW, C*KH*KW)
    col = reshape(col, (N, OH * OW, C, KH * KW))
    if pad != (0, 0):
        # -inf where im2col read padding (found as the zeros of the columns of ones).
        xp = get_array_module(x.data)
        ones = xp.ones((1, 1, H, W), dtype=x.dtype)
        inside = _im2col_array(ones, kernel_size, stride, pad, to_matrix=True)
        mask = xp.where(inside == 0, x.dtype.type(_lowest(x.dtype)), x.dtype.type(0))
        col = col + mask.reshape(1, OH * OW, 1, KH * KW)
    y = max(col, axis=3)                                        # (N, OH*OW, C)
    return transpose(reshape(y, (N, OH, OW, C)), (0, 3, 1, 2))


class AveragePooling(Function):
    """Average pooling: y = the sum of each window of the zero-padded x divided by KH*KW
    (the padding counts, as torch's avg_pool2d by default). Linear in x;
    gx = AveragePoolingGrad(gy)."""

    def __init__(self, kernel_size: Pair, stride: Pair, pad: Pair) -> None:
        self.kernel_size = kernel_size
        self.stride = stride
        self.pad = pad

    def forward(self, x):
        self.x_shape = x.shape
        self.batch_last = _batch_last(x)
        KH, KW = self.kernel_size
        windows = _windows(x, self.kernel_size, self.stride, self.pad)
        dtype = x.dtype if x.dtype.kind == 'f' else np.float64  # integers average to floats
        y = windows[:, :, 0, 0].astype(dtype, order='K')
        for k in range(1, KH * KW):
            y += windows[:, :, k // KW, k % KW]
        y /= y.dtype.type(KH * KW)
        return y

    def backward(self, gy):
        return AveragePoolingGrad(self)(gy)


class AveragePoolingGrad(Function):
    """The gradient of average pooling: each window of gx (N, C, H, W) gets its
    gy / (KH*KW), summed where windows overlap (col2im of the broadcast gy).
    Linear in gy, the adjoint of average pooling; its gradient is AveragePooling."""

    def __init__(self, pooling: AveragePooling) -> None:
        self.pooling = pooling

    def forward(self, gy):
        p = self.pooling
        KH, KW = p.kernel_size
        SH, SW = p.stride
        PH, PW = p.pad
        N, C, H, W = p.x_shape
        OH, OW = gy.shape[2:]
        xp = get_array_module(gy)
        share = gy / gy.dtype.type(KH * KW)
        gx = _full((N, C, H + 2 * PH, W + 2 * PW), 0, gy.dtype, xp, p.batch_last)
        for i in range(KH):
            for j in range(KW):
                gx[:, :, i:i + SH * OH:SH, j:j + SW * OW:SW] += share
        if PH or PW:
            gx = workspace.copy(gx[:, :, PH:PH + H, PW:PW + W])
        return gx

    def backward(self, ggx):
        p = self.pooling
        return AveragePooling(p.kernel_size, p.stride, p.pad)(ggx)


def average_pooling(x: VarOrArray, kernel_size: int | Pair, stride: int | Pair = 1,
                    pad: int | Pair = 0) -> Variable:
    """Average pooling. x: (N, C, H, W) -> (N, C, OH, OW), OH = (H + 2 PH - KH) // SH + 1.
    kernel_size, stride, pad: an int or a pair (non-square kernels work). Zero padding
    counts in the average (torch's avg_pool2d with count_include_pad=True).

    >>> x = np.arange(16, dtype=np.float32).reshape(1, 1, 4, 4)
    >>> average_pooling(x, (2, 4), stride=2).data
    array([[[[ 3.5],
             [11.5]]]], dtype=float32)
    """
    x = as_variable(x)
    kernel_size, stride, pad = _check_pooling('average_pooling', x, kernel_size, stride, pad)
    return AveragePooling(kernel_size, stride, pad)(x)
