"""The LSTM cell as two fused ops (``LSTMState``, ``LSTMOutput``): ``lstm_cell``; and an
LSTM step's four gates' products and cell update as one (``LSTMStep``), which with
``LSTMOutput`` is ``lstm_step``, what ``layers.LSTM`` uses from its second step on. The book composes the
same cell from sigmoid, tanh, * and + in its LSTM layer; that composition is the oracle of
these ops.
"""
from __future__ import annotations

from typing import Any, Sequence

from zerograd.core import Function, Variable, _config, _result
from zerograd.cuda import get_array_module
from zerograd.functions.activation import _sigmoid_array, sigmoid
from zerograd.functions.array import _shaped
from zerograd.functions.fused import _linear_pair_array, _matmul_2d
from zerograd.functions.linalg import _check_linear, linear_pair
from zerograd.functions.math import _floating, tanh
from zerograd.hints import VarOrArray


def _lstm_state_array(c_prev: Any, af: Any, ai: Any, au: Any) -> tuple[Any, tuple]:
    """c = sigmoid(af) c_prev + sigmoid(ai) tanh(au) on arrays, and the gates (f, i, u)
    that the backward reads (LSTMState's and LSTMStep's numbers)."""
    f, i = _sigmoid_array(af), _sigmoid_array(ai)
    u = get_array_module(au).tanh(au)
    return f * c_prev + i * u, (f, i, u)


class LSTMState(Function):
    """The LSTM cell update as one op: c = sigmoid(af) c_prev + sigmoid(ai) tanh(au),
    from c_prev and the pre-activations of the forget and input gates and of the update,
    all (N, H). Composed of sigmoid, tanh, * and +, it is 6 ops forward and about 11
    backward.

    The backward computes on arrays with the gates kept from forward; when the backward
    is recorded (``create_graph=True``) it runs the same formulas as framework ops, so it
    can be differentiated again (the fast path is tested against that one, to the bit).
    """
    backward_reads = ('inputs',)

    def forward(self, c_prev, af, ai, au):
        c, self.gates = _lstm_state_array(c_prev, af, ai, au)
        return c

    def backward(self, gc):
        if _config.enable_backprop:  # recorded: the composed ops, differentiable again
            c_prev, af, ai, au = self.inputs
            return self._grads(c_prev, sigmoid(af), sigmoid(ai), tanh(au), gc)
        f, i, u = self.gates
        grads = self._grads(self.inputs[0].data, f, i, u, gc.data)
        return tuple(_result(g) for g in grads)

    @staticmethod
    def _grads(c_prev, f, i, u, gc):
        """(gc_prev, gaf, gai, gau) by the chain rule; on arrays or Variables alike."""
        return (gc * f,
                gc * c_prev * f * (1 - f),
                gc * u * i * (1 - i),
                gc * i * (1 - u * u))


class LSTMOutput(Function):
    """The LSTM output as one op: h = sigmoid(ao) tanh(c), c and ao (N, H); 3 ops
    forward and about 7 backward when composed. Backward as in ``LSTMState``."""
    backward_reads = ('inputs',)

    def forward(self, c, ao):
        o = _sigmoid_array(ao)
        tc = get_array_module(c).tanh(c)
        self.gates = (o, tc)
        return o * tc

    def backward(self, gh):
        if _config.enable_backprop:
            c, ao = self.inputs
            return self._grads(sigmoid(ao), tanh(c), gh)
        o, tc = self.gates
        return tuple(_result(g) for g in self._grads(o, tc, gh.data))

    @staticmethod
    def _grads(o, tc, gh):
        """(gc, gao); on arrays or Variables alike."""
        return gh * o * (1 - tc * tc), gh * tc * o * (1 - o)


def lstm_cell(c_prev: VarOrArray, af: VarOrArray, ai: VarOrArray, ao: VarOrArray,
              au: VarOrArray) -> tuple[Variable, Variable]:
    """The LSTM update (c, h) from the previous cell c_prev and the pre-activations of
    the forget, input and output gates and of the update (af, ai, ao, au), all (N, H):
    c = sigmoid(af) c_prev + sigmoid(ai) tanh(au), h = sigmoid(ao) tanh(c).
    Two ops (``LSTMState``, ``LSTMOutput``) instead of nine; c is h's input, as when
    composed, so ``unchain_backward`` cuts the same graph. ``layers.LSTM`` uses it from
    the second step on."""
    args = [_floating('lstm_cell', a, real=True) for a in (c_prev, af, ai, ao, au)]
    for name, a in zip(('c_prev', 'af', 'ai', 'ao', 'au'), args):
        if a.shape != args[0].shape:
            raise ValueError(f'lstm_cell: {name} must have the shape of c_prev '
                             f'{args[0].shape}, got {a.shape}')
    c_prev, af, ai, ao, au = args
    c = LSTMState()(c_prev, af, ai, au)
    return c, LSTMOutput()(c, ao)


class LSTMStep(Function):
    """An LSTM step's gates and cell as one op: the four gates' pre-activations
    x Wx + b + h Wh (four ``linear_pair``) and the cell update (``LSTMState``), from
    x (N, I), h (N, H), c_prev (N, H) and the gates' parameters in the order f, i, o, u:
    Wx (I, H) four times, b (H,) four times, Wh (H, H) four times. Outputs c and the output
    gate's pre-activation ao (N, H), which ``LSTMOutput`` turns into h: c stays h's input,
    as when composed, so ``unchain_backward`` from a loss of h cuts c's creator too.

    Forward gives the numbers of ``linear_pair`` and ``LSTMState`` to the bit. Backward is
    one call on arrays instead of about 21 Functions (LSTMState's, and a LinearGradW, a
    LinearGradX and a sum per product of each gate); the gradient of h (and of x) adds
    the four gates' products in the order f, i, o, u, so it may differ from the composed
    ops' sum in the last bits. When the backward is recorded (``create_graph=True``) it
    runs the same formulas as framework ops, so it can be differentiated again.
    needs_gx False: x is input data, its gradient is not computed (as in Linear).
    """
    backward_reads = ('inputs',)

    def __init__(self, needs_gx: bool = True) -> None:
        self.needs_gx = needs_gx

    def forward(self, x, h, c_prev, *params):
        af, ai, ao, au = (_linear_pair_array(x, params[k], params[4 + k], h, params[8 + k])
                          for k in range(4))
        c, self.gates = _lstm_state_array(c_prev, af, ai, au)
        return c, ao

    def backward(self, gc, gao):
        x, h, c_prev, *params = self.inputs
        Wx, Wh = params[0:4], params[8:12]
        if _config.enable_backprop:  # recorded: the composed ops, differentiable again
            af, ai, au = (linear_pair(x, Wx[k], params[4 + k], h, Wh[k]) for k in (0, 1, 3))
            return self._grads(x, h, c_prev, Wx, Wh, (sigmoid(af), sigmoid(ai), tanh(au)),
                               gc, gao)
        grads = self._grads(x.data, h.data, c_prev.data, [W.data for W in Wx],
                            [W.data for W in Wh], self.gates,
                            None if gc is None else gc.data, None if gao is None else gao.data)
        return tuple(None if g is None else _result(g) for g in grads)

    def _grads(self, x, h, c_prev, Wx, Wh, gates, gc, gao):
        """(gx, gh, gc_prev, gWx * 4, gb * 4, gWh * 4) by the chain rule, on arrays or
        Variables alike; gc or gao None: no gradient reached that output (zeros)."""
        f, i, u = gates
        if gc is None:
            gc = 0 * f
        if gao is None:
            gao = 0 * f
        gc_prev, gaf, gai, gau = LSTMState._grads(c_prev, f, i, u, gc)
        ga = (gaf, gai, gao, gau)
        gx = gh = None
        for k in range(4):  # LinearPair's backward, gate by gate
            gh_k = ga[k] @ Wh[k].T
            gh = gh_k if gh is None else gh + gh_k
            if self.needs_gx:
                gx_k = ga[k] @ Wx[k].T
                gx = gx_k if gx is None else gx + gx_k
        return (gx, gh, gc_prev,
                *[_matmul_2d(x.T, g) for g in ga],
                *[g.sum(axis=0) for g in ga],
                *[_matmul_2d(h.T, g) for g in ga])


def lstm_step(x: VarOrArray, h: VarOrArray, c_prev: VarOrArray, Wxs: Sequence[VarOrArray],
              bs: Sequence[VarOrArray], Whs: Sequence[VarOrArray]) -> tuple[Variable, Variable]:
    """One LSTM step (c, h) in two ops (``LSTMStep``, ``LSTMOutput``) instead of 26: each
    gate's pre-activation ``linear_pair(x, Wxs[k], bs[k], h, Whs[k])``, then ``lstm_cell`` on
    c_prev, with the same numbers. x (N, I), h and c_prev (N, H); Wxs, bs and Whs are the
    four gates' parameters in the order f, i, o, u: Wxs[k] (I, H), bs[k] (H,),
    Whs[k] (H, H). ``layers.LSTM`` uses it from the second step on."""
    for name, group in (('Wxs', Wxs), ('bs', bs), ('Whs', Whs)):
        if len(group) != 4:
            raise ValueError(f'lstm_step: {name} must hold the 4 gates\' parameters (f, i, o, '
                             f'u), got {len(group)}')
    x_, h_, c_ = _shaped(x), _shaped(h), _shaped(c_prev)
    params = [_shaped(p) for p in (*Wxs, *bs, *Whs)]
    if not _lstm_shapes_fit(x_, h_, c_, params):  # checked at once; explained only if not
        _explain_lstm_shapes(x_, h_, c_, params)
    needs_gx = isinstance(x, Variable)
    h, c_prev = _floating('lstm_step', h, real=True), _floating('lstm_step', c_prev, real=True)
    c, ao = LSTMStep(needs_gx)(x, h, c_prev, *Wxs, *bs, *Whs)
    return c, LSTMOutput()(c, ao)


def _lstm_shapes_fit(x: Any, h: Any, c_prev: Any, params: list) -> bool:
    """True when x (N, I), h and c_prev (N, H) and the gates' Wx (I, H) * 4, b (H,) * 4 and
    Wh (H, H) * 4 fit together: one comparison of shapes per step (a layer's every step)."""
    if x.ndim != 2 or h.ndim != 2 or c_prev.shape != h.shape or len(x) != len(h):
        return False
    I, H = x.shape[1], h.shape[1]
    return [p.shape for p in params] == [(I, H)] * 4 + [(H,)] * 4 + [(H, H)] * 4


def _explain_lstm_shapes(x: Any, h: Any, c_prev: Any, params: list) -> None:
    """Raise the error that says which of lstm_step's shapes do not fit (as linear's)."""
    for k in range(4):
        Wx, b, Wh = params[k], params[4 + k], params[8 + k]
        _check_linear('lstm_step', x, Wx, b)
        _check_linear('lstm_step', h, Wh, None)
        if Wx.shape[1] != Wh.shape[1] or Wh.shape[0] != Wh.shape[1]:
            raise ValueError(f'lstm_step: Wh must be (H, H) and Wx (I, H) with the same H, '
                             f'got Wx.shape={Wx.shape}, Wh.shape={Wh.shape}')
    raise ValueError(f'lstm_step: h and c_prev must be (N, H) with x (N, I), got '
                     f'x.shape={x.shape}, h.shape={h.shape}, c_prev.shape={c_prev.shape}, '
                     f'Wh.shape={params[8].shape}')
