"""Convolution (the book's steps 55-58): conv2d, deconv2d, im2col and col2im, with the
book's composed ``conv2d_simple`` as conv2d's oracle. Pooling is in ``pooling``; both are
reachable as ``F.conv2d`` etc. and, for the book's imports, from ``zerograd.functions_conv``.

Shapes, with the names used throughout: x is (N, C, H, W); conv2d's weight W is
(OC, C, KH, KW); the output is (N, OC, OH, OW) with OH = (H + 2 PH - KH) // SH + 1
(``utils.get_conv_outsize``). ``kernel_size``, ``stride`` and ``pad`` take an int or a pair
(KH, KW), (SH, SW), (PH, PW).

How the fast ops work
---------------------
A convolution is one matrix product on the "columns" of its input (im2col): every KH x KW
window of the padded input is one column of a (C*KH*KW, OH*OW*N) matrix. The windows are
read through a strided view of the input (``sliding_window_view``: no Python loop over the
batch or the pixels) and copied once. Then::

    forward        y  = W (OC, C*KH*KW) @ col                one GEMM
    weight grad    gW = gy (OC, OH*OW*N) @ col.T             one GEMM on the kept col
    input grad     gx = col2im(W.T @ gy)                     one GEMM + KH*KW strided adds

The forward GEMM's result (OC, OH*OW*N) is returned as an (N, OC, OH, OW) *view* of it: the
output is stored "batch-last", as (C, H, W, N) in memory, and never transposed by a copy.
The ops after it (relu, pooling, the next convolution's im2col) read it through its
strides, and its gradient comes back in the same memory order, ready for the backward
GEMMs. Batch-last is chosen for the copies: a window offset of a stride-1 convolution reads
and writes runs of OW*N contiguous numbers, where (N, C, H, W) order gives runs of OW.

Every backward is written with the Functions of this module and of ``functions``, so it
can be differentiated again: conv2d's input gradient is deconv2d, its weight gradient is
the Function ``Conv2DGradW`` whose own backward is conv2d and deconv2d.

>>> import numpy as np
>>> import zerograd.functions as F
>>> x = np.ones((1, 1, 4, 4), dtype=np.float32)
>>> W = np.ones((2, 1, 3, 3), dtype=np.float32)
>>> y = F.conv2d(x, W, pad=1)
>>> y.shape, y.dtype
((1, 2, 4, 4), dtype('float32'))
>>> y.data[0, 0]
array([[4., 6., 6., 4.],
       [6., 9., 9., 6.],
       [6., 9., 9., 6.],
       [4., 6., 6., 4.]], dtype=float32)
"""
from __future__ import annotations

import builtins
from typing import Any

import numpy as np

from zerograd import utils, workspace
from zerograd.core import Function, Variable, as_variable
from zerograd.cuda import get_array_module
from zerograd.functions.array import _shaped, reshape, transpose
from zerograd.functions.linalg import linear
from zerograd.functions.reduction import sum
from zerograd.hints import Pair, VarOrArray

# =============================================================================
# Argument checks
# =============================================================================
def _pair(op: str, name: str, value: Any) -> Pair:
    """``utils.pair`` with its TypeError naming the op and the argument. The conv layers
    use it too, so the same mistake gets the same error everywhere."""
    try:
        return utils.pair(value)
    except TypeError:
        raise TypeError(f'{op}: {name} must be an int or a pair of ints, '
                        f'got {value!r}') from None


def _window_args(op: str, kernel_size: Any, stride: Any, pad: Any) -> tuple[Pair, Pair, Pair]:
    """kernel_size, stride and pad as pairs: kernel and stride positive, pad non-negative."""
    kernel_size = _pair(op, 'kernel_size', kernel_size)
    stride = _pair(op, 'stride', stride)
    pad = _pair(op, 'pad', pad)
    if kernel_size[0] <= 0 or kernel_size[1] <= 0:
        raise ValueError(f'{op}: kernel_size must be positive, got {kernel_size}')
    if stride[0] <= 0 or stride[1] <= 0:
        raise ValueError(f'{op}: stride must be positive, got {stride}')
    if pad[0] < 0 or pad[1] < 0:
        raise ValueError(f'{op}: pad must be non-negative, got {pad}')
    return kernel_size, stride, pad


def _check_4d(op: str, name: str, x: Any, layout: str) -> None:
    if x.ndim != 4:
        raise ValueError(f'{op}: {name} must be 4-D {layout}, got shape {x.shape}')


def _check_fits(op: str, x_shape: tuple, kernel_size: Pair, pad: Pair) -> None:
    """The kernel must fit in the padded input (else there is no output pixel)."""
    KH, KW = kernel_size
    PH, PW = pad
    H, W = x_shape[2], x_shape[3]
    if KH > H + 2 * PH or KW > W + 2 * PW:
        raise ValueError(f'{op}: kernel ({KH}, {KW}) is larger than the padded input '
                         f'({H + 2 * PH}, {W + 2 * PW}) (x.shape={x_shape}, pad={pad})')


def _check_bias(op: str, b: Any, OC: int) -> None:
    if b is not None and b.shape != (OC,):
        raise ValueError(f'{op}: b must have shape ({OC},), got {b.shape}')


def _outsize(x_shape: tuple, kernel_size: Pair, stride: Pair, pad: Pair) -> Pair:
    """(OH, OW) of a convolution or pooling of an input of shape (N, C, H, W)."""
    return (utils.get_conv_outsize(x_shape[2], kernel_size[0], stride[0], pad[0]),
            utils.get_conv_outsize(x_shape[3], kernel_size[1], stride[1], pad[1]))


def _batch_last(x: Any) -> bool:
    """True when x (N, C, H, W) is stored as (C, H, W, N), as conv2d's output is."""
    return x.shape[0] > 1 and x.strides[0] < x.strides[3]


def _full(shape: tuple, value: Any, dtype: Any, xp: Any, batch_last: bool) -> Any:
    """An (N, C, H, W) array filled with value, stored as (C, H, W, N) if batch_last."""
    if batch_last:
        N, C, H, W = shape
        return workspace.full((C, H, W, N), value, dtype, xp).transpose(3, 0, 1, 2)
    return workspace.full(shape, value, dtype, xp)


def _pad(x: Any, pad: Pair, value: Any = 0) -> Any:
    """x (N, C, H, W) with PH rows and PW columns of ``value`` added on each side."""
    PH, PW = pad
    if PH == 0 and PW == 0:
        return x
    N, C, H, W = x.shape
    xp = get_array_module(x)
    padded = _full((N, C, H + 2 * PH, W + 2 * PW), value, x.dtype, xp, _batch_last(x))
    padded[:, :, PH:PH + H, PW:PW + W] = x
    return padded


def _lowest(dtype: Any) -> Any:
    """The padding of max pooling: a value that never wins the max (-inf for floats)."""
    if np.dtype(dtype).kind == 'f':
        return -np.inf
    return np.iinfo(dtype).min


def _windows(x: Any, kernel_size: Pair, stride: Pair, pad: Pair, pad_value: Any = 0) -> Any:
    """Every KH x KW window of x (N, C, H, W) padded with pad_value, as a read-only
    strided view of shape (N, C, KH, KW, OH, OW): windows[n, c, i, j, oh, ow] is
    x_padded[n, c, oh * SH + i, ow * SW + j]. Nothing is copied but the padding."""
    xp = get_array_module(x)
    x = _pad(x, pad, pad_value)
    SH, SW = stride
    view = xp.lib.stride_tricks.sliding_window_view(x, kernel_size, axis=(2, 3))
    return view[:, :, ::SH, ::SW].transpose(0, 1, 4, 5, 2, 3)


def _im2col_array(x: Any, kernel_size: Pair, stride: Pair, pad: Pair,
                  to_matrix: bool) -> Any:
    """im2col on arrays: (N*OH*OW, C*KH*KW) or (N, C, KH, KW, OH, OW), contiguous."""
    windows = _windows(x, kernel_size, stride, pad)
    N, C, KH, KW, OH, OW = windows.shape
    if to_matrix:
        windows = windows.transpose(0, 4, 5, 1, 2, 3)
        return windows.copy().reshape(N * OH * OW, C * KH * KW)
    return windows.copy()


def _conv_columns(x: Any, kernel_size: Pair, stride: Pair, pad: Pair) -> Any:
    """The columns of a convolution, (C*KH*KW, OH*OW*N): column (oh, ow, n) is the window
    of output pixel (n, oh, ow). One copy out of the strided view."""
    windows = _windows(x, kernel_size, stride, pad)
    N, C, KH, KW, OH, OW = windows.shape
    columns = workspace.empty((C, KH, KW, OH, OW, N), windows.dtype, get_array_module(x))
    columns[...] = windows.transpose(1, 2, 3, 4, 5, 0)
    return columns.reshape(C * KH * KW, OH * OW * N)


def _matmul(a: Any, b: Any) -> Any:
    """a @ b for 2-D a and b, into an array from the workspace."""
    xp = get_array_module(a)
    return xp.matmul(a, b, out=workspace.empty((a.shape[0], b.shape[1]),
                                               xp.result_type(a.dtype, b.dtype), xp))


def _batch_last_matrix(x: Any) -> Any:
    """x (N, C, H, W) as the matrix (C, H*W*N): free when x is stored batch-last."""
    N, C, H, W = x.shape
    return x.transpose(1, 2, 3, 0).reshape(C, H * W * N)


def _col2im_array(col: Any, x_shape: tuple, stride: Pair, pad: Pair,
                  batch_last: bool = False) -> Any:
    """The adjoint of im2col: add each window of col (N, C, KH, KW, OH, OW) back where
    it was read, into an array of x_shape (N, C, H, W). One strided add per kernel offset
    (KH*KW of them); the result is stored batch-last if asked."""
    N, C, H, W = x_shape
    _, _, KH, KW, OH, OW = col.shape
    SH, SW = stride
    PH, PW = pad
    xp = get_array_module(col)
    x = _full((N, C, H + 2 * PH, W + 2 * PW), 0, col.dtype, xp, batch_last)
    for i in range(KH):
        for j in range(KW):
            x[:, :, i:i + SH * OH:SH, j:j + SW * OW:SW] += col[:, :, i, j]
    if PH or PW:
        x = workspace.copy(x[:, :, PH:PH + H, PW:PW + W])
    return x


class Im2col(Function):
    """col = the windows of x (N, C, H, W): (N*OH*OW, C*KH*KW) if to_matrix, else
    (N, C, KH, KW, OH, OW). gx = col2im(gcol)."""

    def __init__(self, kernel_size: Pair, stride: Pair, pad: Pair, to_matrix: bool) -> None:
        self.kernel_size = kernel_size
        self.stride = stride
        self.pad = pad
        self.to_matrix = to_matrix

    def forward(self, x):
        self.x_shape = x.shape
        return _im2col_array(x, self.kernel_size, self.stride, self.pad, self.to_matrix)

    def backward(self, gcol):
        return col2im(gcol, self.x_shape, self.kernel_size, self.stride, self.pad,
                      self.to_matrix)


class Col2im(Function):
    """x (N, C, H, W) = the sum of the windows in col, each added where im2col read it
    (the adjoint of im2col). gcol = im2col(gx)."""

    def __init__(self, x_shape: tuple, kernel_size: Pair, stride: Pair, pad: Pair,
                 to_matrix: bool) -> None:
        self.x_shape = x_shape
        self.kernel_size = kernel_size
        self.stride = stride
        self.pad = pad
        self.to_matrix = to_matrix

    def forward(self, col):
        N, C = self.x_shape[:2]
        (KH, KW), (OH, OW) = self.kernel_size, _outsize(self.x_shape, self.kernel_size,
                                                         self.stride, self.pad)
        if self.to_matrix:
            col = col.reshape(N, OH, OW, C, KH, KW).transpose(0, 3, 4, 5, 1, 2)
        return _col2im_array(col, self.x_shape, self.stride, self.pad)

    def backward(self, gx):
        return im2col(gx, self.kernel_size, self.stride, self.pad, self.to_matrix)


def im2col(x: VarOrArray, kernel_size: int | Pair, stride: int | Pair = 1, pad: int | Pair = 0,
           to_matrix: bool = True) -> Variable:
    """The windows of x (N, C, H, W) as columns, zero padded, differentiable.

    to_matrix=True: (N*OH*OW, C*KH*KW), one row per output pixel (the book's layout);
    to_matrix=False: (N, C, KH, KW, OH, OW). The gradient is ``col2im``.

    >>> x = np.arange(2 * 3 * 7 * 7, dtype=np.float32).reshape(2, 3, 7, 7)
    >>> im2col(x, 5).shape, im2col(x, 5, to_matrix=False).shape
    ((18, 75), (2, 3, 5, 5, 3, 3))
    """
    x = as_variable(x)
    _check_4d('im2col', 'x', x, '(N, C, H, W)')
    kernel_size, stride, pad = _window_args('im2col', kernel_size, stride, pad)
    _check_fits('im2col', x.shape, kernel_size, pad)
    return Im2col(kernel_size, stride, pad, to_matrix)(x)


def col2im(x: VarOrArray, input_shape: tuple, kernel_size: int | Pair, stride: int | Pair = 1,
           pad: int | Pair = 0, to_matrix: bool = True) -> Variable:
    """The adjoint of ``im2col``: each window of col added back where it came from, into
    an array of ``input_shape`` (N, C, H, W). x: the columns, (N*OH*OW, C*KH*KW) if
    to_matrix, else (N, C, KH, KW, OH, OW) (named x as in the book). The gradient is
    ``im2col``.

    >>> col = np.ones((4, 4), dtype=np.float32)  # 2 x 2 windows of a 3 x 3 image
    >>> col2im(col, (1, 1, 3, 3), 2).data[0, 0]
    array([[1., 2., 1.],
           [2., 4., 2.],
           [1., 2., 1.]], dtype=float32)
    """
    col = as_variable(x)
    input_shape = tuple(int(n) for n in input_shape)
    if len(input_shape) != 4:
        raise ValueError(f'col2im: input_shape must be (N, C, H, W), got {input_shape}')
    kernel_size, stride, pad = _window_args('col2im', kernel_size, stride, pad)
    _check_fits('col2im', input_shape, kernel_size, pad)
    N, C = input_shape[:2]
    (KH, KW), (OH, OW) = kernel_size, _outsize(input_shape, kernel_size, stride, pad)
    expected = (N * OH * OW, C * KH * KW) if to_matrix else (N, C, KH, KW, OH, OW)
    if col.shape != expected:
        raise ValueError(f'col2im: col must have shape {expected} for input_shape '
                         f'{input_shape}, kernel_size {kernel_size}, stride {stride}, pad '
                         f'{pad} and to_matrix={to_matrix}, got {col.shape}')
    return Col2im(input_shape, kernel_size, stride, pad, to_matrix)(col)


class Conv2d(Function):
    """y = conv(x, W) + b: x (N, C, H, W), W (OC, C, KH, KW), b (OC,) or None ->
    y (N, OC, OH, OW), stored batch-last. One GEMM on the columns of x, which are kept
    for the weight gradient (memory traded for a second im2col).

    gx = deconv2d(gy, W) (skipped when x is input data: ``needs_gx`` False),
    gW = Conv2DGradW(x, gy), gb = gy summed over (N, OH, OW).
    """

    def __init__(self, stride: Pair, pad: Pair, needs_gx: bool = True) -> None:
        self.stride = stride
        self.pad = pad
        self.needs_gx = needs_gx

    def forward(self, x, W, b=None):
        OC, C, KH, KW = W.shape
        N = x.shape[0]
        OH, OW = _outsize(x.shape, (KH, KW), self.stride, self.pad)
        self.col = _conv_columns(x, (KH, KW), self.stride, self.pad)  # (C*KH*KW, OH*OW*N)
        y = _matmul(W.reshape(OC, C * KH * KW), self.col)              # (OC, OH*OW*N)
        if b is not None:
            y += b.reshape(OC, 1)
        return y.reshape(OC, OH, OW, N).transpose(3, 0, 1, 2)

    def backward(self, gy):
        x, W = self.inputs[:2]
        gx = None
        if self.needs_gx:
            gx = deconv2d(gy, W, stride=self.stride, pad=self.pad, outsize=x.shape[2:])
        gW = Conv2DGradW(W.shape[2:], self.stride, self.pad, self.col)(x, gy)
        if len(self.inputs) == 2:
            return gx, gW
        gb = sum(gy, axis=(0, 2, 3))
        return gx, gW, gb


class Conv2DGradW(Function):
    """The weight gradient of conv2d as a Function of (x, gy): x (N, C, H, W),
    gy (N, OC, OH, OW) -> gW (OC, C, KH, KW) = gy (OC, OH*OW*N) @ col(x).T, one GEMM.

    col: x's columns when the forward convolution kept them (else computed here).
    gW is bilinear in x and gy, so its gradients are convolutions again: for an upstream
    ggW, gx = deconv2d(gy, ggW) and ggy = conv2d(x, ggW).
    """

    def __init__(self, kernel_size: Pair, stride: Pair, pad: Pair, col: Any = None) -> None:
        self.kernel_size = tuple(kernel_size)
        self.stride = stride
        self.pad = pad
        self.col = col

    def forward(self, x, gy):
        col = self.col
        if col is None:
            col = _conv_columns(x, self.kernel_size, self.stride, self.pad)
        OC, C = gy.shape[1], x.shape[1]
        gW = _batch_last_matrix(gy) @ col.T  # (OC, C*KH*KW)
        return gW.reshape((OC, C) + self.kernel_size)

    def backward(self, ggW):
        x, gy = self.inputs
        gx = deconv2d(gy, ggW, stride=self.stride, pad=self.pad, outsize=x.shape[2:])
        ggy = conv2d(x, ggW, stride=self.stride, pad=self.pad)
        return gx, ggy


class Deconv2d(Function):
    """y = the transposed convolution of x (N, C, H, W) with W (C, OC, KH, KW), plus b:
    y (N, OC, OH, OW) of the given outsize, stored batch-last. Each input pixel adds
    W[c] times its value into its window of y: one GEMM then col2im.

    gx = conv2d(gy, W) (skipped when ``needs_gx`` is False), gW = Conv2DGradW(gy, x),
    gb = gy summed over (N, OH, OW).
    """

    def __init__(self, stride: Pair, pad: Pair, outsize: Pair, needs_gx: bool = True) -> None:
        self.stride = stride
        self.pad = pad
        self.outsize = outsize
        self.needs_gx = needs_gx

    def forward(self, x, W, b=None):
        C, OC, KH, KW = W.shape
        N, _, H = x.shape[:3]
        col = _matmul(W.reshape(C, OC * KH * KW).T, _batch_last_matrix(x))  # (OC*KH*KW, H*W*N)
        col = col.reshape(OC, KH, KW, H, x.shape[3], N).transpose(5, 0, 1, 2, 3, 4)
        y = _col2im_array(col, (N, OC) + self.outsize, self.stride, self.pad,
                          batch_last=True)
        if b is not None:
            y += b.reshape(1, OC, 1, 1)
        return y

    def backward(self, gy):
        x, W = self.inputs[:2]
        gx = conv2d(gy, W, stride=self.stride, pad=self.pad) if self.needs_gx else None
        gW = Conv2DGradW(W.shape[2:], self.stride, self.pad)(gy, x)
        if len(self.inputs) == 2:
            return gx, gW
        gb = sum(gy, axis=(0, 2, 3))
        return gx, gW, gb


def _check_conv(op: str, x: Any, W: Any, b: Any, stride: Any, pad: Any,
                transposed: bool) -> tuple[Pair, Pair]:
    """Check conv2d's (or deconv2d's, when transposed) arguments; (stride, pad) as pairs."""
    w_layout = '(C, OC, KH, KW)' if transposed else '(OC, C, KH, KW)'
    _check_4d(op, 'x', x, '(N, C, H, W)')
    _check_4d(op, 'W', W, w_layout)
    _, stride, pad = _window_args(op, 1, stride, pad)
    C_of_W, OC = (W.shape[0], W.shape[1]) if transposed else (W.shape[1], W.shape[0])
    if x.shape[1] != C_of_W:
        raise ValueError(f'{op}: x has {x.shape[1]} channels but W {w_layout} expects '
                         f'{C_of_W} (x.shape={x.shape}, W.shape={W.shape})')
    _check_bias(op, b, OC)
    return stride, pad


def conv2d(x: VarOrArray, W: VarOrArray, b: VarOrArray | None = None, stride: int | Pair = 1,
           pad: int | Pair = 0) -> Variable:
    """2-D convolution (cross-correlation, as in every framework), zero padded.

    x: (N, C, H, W); W: (OC, C, KH, KW); b: (OC,) or None -> (N, OC, OH, OW) with
    OH = (H + 2 PH - KH) // SH + 1. stride, pad: an int or a pair. When x is a plain
    array (input data), its gradient is not computed.

    >>> x = np.random.rand(1, 5, 15, 15).astype(np.float32)
    >>> W = np.random.rand(8, 5, 3, 3).astype(np.float32)
    >>> conv2d(x, W, stride=1, pad=1).shape
    (1, 8, 15, 15)
    """
    stride, pad = _check_conv('conv2d', _shaped(x), _shaped(W),
                              None if b is None else _shaped(b), stride, pad, False)
    _check_fits('conv2d', _shaped(x).shape, _shaped(W).shape[2:], pad)
    needs_gx = isinstance(x, Variable)
    if b is None:
        return Conv2d(stride, pad, needs_gx)(x, W)
    return Conv2d(stride, pad, needs_gx)(x, W, b)


def deconv2d(x: VarOrArray, W: VarOrArray, b: VarOrArray | None = None, stride: int | Pair = 1,
             pad: int | Pair = 0, outsize: int | Pair | None = None) -> Variable:
    """2-D transposed convolution (the gradient of conv2d with respect to its input).

    x: (N, C, H, W); W: (C, OC, KH, KW) (torch's conv_transpose2d layout); b: (OC,) or
    None -> (N, OC, OH, OW). outsize (OH, OW) defaults to SH (H - 1) + KH - 2 PH
    (``utils.get_deconv_outsize``); it may exceed that by less than the stride (the rows a
    strided conv2d of that size ignores), as long as conv2d of (OH, OW) gives (H, W).

    >>> x = np.ones((1, 2, 3, 3), dtype=np.float32)
    >>> W = np.ones((2, 4, 3, 3), dtype=np.float32)
    >>> deconv2d(x, W, stride=2, pad=1).shape, deconv2d(x, W, stride=2, pad=1, outsize=6).shape
    ((1, 4, 5, 5), (1, 4, 6, 6))
    """
    x_, W_ = _shaped(x), _shaped(W)
    stride, pad = _check_conv('deconv2d', x_, W_, None if b is None else _shaped(b),
                              stride, pad, True)
    KH, KW = W_.shape[2:]
    H, W_width = x_.shape[2:]
    default = (utils.get_deconv_outsize(H, KH, stride[0], pad[0]),
               utils.get_deconv_outsize(W_width, KW, stride[1], pad[1]))
    if outsize is None and (default[0] <= 0 or default[1] <= 0):
        raise ValueError(f'deconv2d: pad {pad} is too large for kernel ({KH}, {KW}) and '
                         f'stride {stride}: the output would be {default} (x.shape={x_.shape}); '
                         'give outsize')
    outsize = default if outsize is None else _pair('deconv2d', 'outsize', outsize)
    for axis, (size, low) in enumerate(zip(outsize, default)):
        # Sizes from low to low + stride - 1 all convolve back to x's size (a strided
        # conv2d ignores the last rows); at least 1, which low need not be.
        if not builtins.max(low, 1) <= size < low + stride[axis]:
            raise ValueError(
                f'deconv2d: outsize {outsize} does not fit x of shape {x_.shape}: with kernel '
                f'({KH}, {KW}), stride {stride} and pad {pad} each size must be in '
                f'[{default[0]}, {default[0] + stride[0] - 1}] x '
                f'[{default[1]}, {default[1] + stride[1] - 1}]')
    needs_gx = isinstance(x, Variable)
    if b is None:
        return Deconv2d(stride, pad, outsize, needs_gx)(x, W)
    return Deconv2d(stride, pad, outsize, needs_gx)(x, W, b)


def conv2d_simple(x: VarOrArray, W: VarOrArray, b: VarOrArray | None = None,
                  stride: int | Pair = 1, pad: int | Pair = 0) -> Variable:
    """The book's composed convolution, the oracle of ``conv2d``: im2col, then linear
    with the weights as a (C*KH*KW, OC) matrix, then reshape to (N, OC, OH, OW).

    >>> x = np.random.rand(1, 5, 15, 15).astype(np.float32)
    >>> W = np.random.rand(8, 5, 3, 3).astype(np.float32)
    >>> conv2d_simple(x, W, stride=1, pad=1).shape
    (1, 8, 15, 15)
    """
    x, W = as_variable(x), as_variable(W)
    stride, pad = _check_conv('conv2d_simple', x, W, None if b is None else _shaped(b),
                              stride, pad, False)
    OC, C, KH, KW = W.shape
    _check_fits('conv2d_simple', x.shape, (KH, KW), pad)
    N = x.shape[0]
    OH, OW = _outsize(x.shape, (KH, KW), stride, pad)
    col = im2col(x, (KH, KW), stride, pad, to_matrix=True)  # (N*OH*OW, C*KH*KW)
    W_matrix = transpose(reshape(W, (OC, C * KH * KW)))     # (C*KH*KW, OC)
    t = linear(col, W_matrix, b)                             # (N*OH*OW, OC)
    return transpose(reshape(t, (N, OH, OW, OC)), (0, 3, 1, 2))
