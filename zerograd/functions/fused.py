"""The fused gradient ops: one Function where the book's backward composes several.

``Tanh``'s backward is ``TanhGrad`` (three ops in the book: 1 - y * y, then times gy),
``Sigmoid``'s is ``SigmoidGrad``, and ``Linear``'s two gradients are ``LinearGradX``
(gy W.T) and ``LinearGradW`` (x.T gy) instead of a transpose and a matmul each.
``LinearPair`` is an RNN gate's x W + b + h U as one op. Each is differentiable again, so
higher-order derivatives go through them, and each gives the numbers of the composed
version (``tests/test_fast_paths.py`` compares them). They live here, apart, so that the
book's ops in ``math``, ``activation`` and ``linalg`` read as in the book; those modules
import them. ``_matmul_2d`` is the 2-D product all the fast linear ops share, and
``_linear_pair_array`` LinearPair's forward, which ``rnn.LSTMStep`` runs per gate.

This module sits below them: it imports only the engine and ``reduction``. Where a
backward needs a matrix product it writes ``@``, which is ``Variable.__matmul__``, that is
``F.matmul`` (in ``linalg``, above this module). The LSTM cell's fused ops
(``LSTMState``, ``LSTMOutput``) run tanh and sigmoid when differentiated twice, so they
sit above those, in ``rnn``.
"""
from __future__ import annotations

from typing import Any

from zerograd.core import Function, _config, _result
from zerograd.functions.reduction import sum


def _matmul_2d(a: Any, b: Any) -> Any:
    """a @ b; for k = 1 (an outer product, as in a batch-1 weight gradient) the broadcast
    product a * b, which gives the same numbers (one product each) several times faster
    (0.2 ms against 0.9 ms for (784, 1) @ (1, 1000) in NumPy 2.4 with OpenBLAS)."""
    if a.ndim == 2 and b.ndim == 2 and a.shape[1] == 1 and b.shape[0] == 1:
        return a * b
    return a @ b


def _linear_grads(x: Any, W: Any, gy: Any, needs_gx: bool, with_b: bool) -> tuple:
    """Linear's gradients on arrays, x (N, in), W (in, out), gy (N, out): (gx or None,
    gW, and gb when with_b) as Variables, with the numbers of LinearGradX, LinearGradW
    and sum (an unrecorded backward of Linear and LinearPair, without a Function each)."""
    gx = _result(gy @ W.T) if needs_gx else None
    gW = _result(_matmul_2d(x.T, gy))
    return (gx, gW, _result(gy.sum(axis=(0,)))) if with_b else (gx, gW)


def _linear_pair_array(x: Any, W: Any, b: Any, h: Any, U: Any) -> Any:
    """x W + b + h U on arrays, in this order (LinearPair's and LSTMStep's numbers)."""
    y = _matmul_2d(x, W)
    y += b
    return y + _matmul_2d(h, U)


# =============================================================================
# tanh and sigmoid
# =============================================================================
class TanhGrad(Function):
    """Tanh's gradient as one op, gx = gy (1 - y ** 2), instead of three (one Function
    call instead of three per tanh in every backward, which an LSTM step does twice).
    Differentiable again: d/dy = -2 gy y, d/dgy = 1 - y ** 2."""
    backward_reads = ('inputs',)

    def forward(self, y, gy):
        return gy * (1 - y * y)

    def backward(self, ggx):
        y, gy = self.inputs
        return ggx * gy * (-2 * y), ggx * (1 - y * y)


class SigmoidGrad(Function):
    """Sigmoid's gradient as one op, gx = gy y (1 - y), instead of three.
    Differentiable again: d/dy = gy (1 - 2 y), d/dgy = y (1 - y)."""
    backward_reads = ('inputs',)

    def forward(self, y, gy):
        return gy * y * (1 - y)

    def backward(self, ggx):
        y, gy = self.inputs
        return ggx * gy * (1 - 2 * y), ggx * y * (1 - y)


# =============================================================================
# linear
# =============================================================================
# Linear's two gradients as one op each, instead of a transpose and a matmul each (two
# Function calls fewer per Linear in every backward). Both are bilinear, so their own
# gradients are matrix products again.
class LinearGradX(Function):
    """gx = gy W.T: gy (N, out), W (in, out) -> (N, in)."""
    backward_reads = ('inputs',)

    def forward(self, gy, W):
        return gy @ W.T

    def backward(self, ggx):
        gy, W = self.inputs
        return LinearGradX()(ggx, W.T), LinearGradW()(ggx, gy)


class LinearGradW(Function):
    """gW = x.T gy: x (N, in), gy (N, out) -> (in, out)."""
    backward_reads = ('inputs',)

    def forward(self, x, gy):
        return _matmul_2d(x.T, gy)

    def backward(self, ggW):
        x, gy = self.inputs
        return LinearGradX()(gy, ggW), x @ ggW  # x @ ggW is F.matmul(x, ggW)


class LinearPair(Function):
    """y = x W + b + h U as one op: x (N, in), W (in, out), b (out,), h (N, H), U (H, out)
    -> (N, out). An RNN gate's x2*(x) + h2*(h) is three ops composed (two Linears and an
    add) and this one, with the same numbers to the bit (the same products and sums in the
    same order). gx is skipped when x is input data, as in Linear. Not recorded, the
    backward computes on arrays (as Linear's), with the numbers of the recorded ops."""
    backward_reads = ('inputs',)

    def __init__(self, needs_gx: bool = True) -> None:
        self.needs_gx = needs_gx

    def forward(self, x, W, b, h, U):
        return _linear_pair_array(x, W, b, h, U)

    def backward(self, gy):
        x, W, b, h, U = self.inputs
        if not _config.enable_backprop:  # not recorded: the same products on arrays
            return (*_linear_grads(x.data, W.data, gy.data, self.needs_gx, True),
                    *_linear_grads(h.data, U.data, gy.data, True, False))
        gx = LinearGradX()(gy, W) if self.needs_gx else None
        return (gx, LinearGradW()(x, gy), sum(gy, axis=0),
                LinearGradX()(gy, U), LinearGradW()(h, gy))
