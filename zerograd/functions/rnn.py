"""The LSTM cell as two fused ops (``LSTMState``, ``LSTMOutput``): ``lstm_cell``, which
``layers.LSTM`` uses from its second step on. The book composes the same cell from
sigmoid, tanh, * and + in its LSTM layer; that composition is the oracle of these ops.
"""
from __future__ import annotations

from zerograd.core import Config, Function, Variable, as_array
from zerograd.cuda import get_array_module
from zerograd.functions.activation import _sigmoid_array, sigmoid
from zerograd.functions.math import _floating, tanh
from zerograd.hints import VarOrArray


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
        f, i = _sigmoid_array(af), _sigmoid_array(ai)
        u = get_array_module(au).tanh(au)
        self.gates = (f, i, u)
        return f * c_prev + i * u

    def backward(self, gc):
        if Config.enable_backprop:  # recorded: the composed ops, differentiable again
            c_prev, af, ai, au = self.inputs
            return self._grads(c_prev, sigmoid(af), sigmoid(ai), tanh(au), gc)
        f, i, u = self.gates
        grads = self._grads(self.inputs[0].data, f, i, u, gc.data)
        return tuple(Variable(as_array(g)) for g in grads)  # 0-d: NumPy gives scalars

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
        if Config.enable_backprop:
            c, ao = self.inputs
            return self._grads(sigmoid(ao), tanh(c), gh)
        o, tc = self.gates
        return tuple(Variable(as_array(g)) for g in self._grads(o, tc, gh.data))

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
