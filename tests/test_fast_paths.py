"""The engine's fast paths give the plain path's results to the last bit (float64).

* ``Variable.backward`` in core.py hands a chain's next function on without the heap and
  adds gradients in place into sums it owns; ``zerograd.core_simple``, the book's plain
  engine (a heap walk on arrays, no fast paths), is the oracle: the same random graphs,
  built once with each engine, give the same gradients bit for bit.
* ``Function.__call__`` has one- and two-input paths; the general path is the oracle.
* Sigmoid's and Tanh's gradients are one op each (SigmoidGrad, TanhGrad); the composed
  formulas are the oracle, first and second order.
"""
from types import SimpleNamespace

import numpy as np
import pytest

import zerograd.core_simple as simple
import zerograd.functions as F
from zerograd import Variable
from zerograd.core import Function


# -- core_simple, the oracle ---------------------------------------------------------------
# core_simple has the book's steps 1-32 ops (the arithmetic, square, exp). The others the
# graphs use are written here on its Function, as the book's step 27 writes Sin: forward
# and backward on arrays, with the formulas of zerograd.functions.
class SimpleSin(simple.Function):
    def forward(self, x):
        return np.sin(x)

    def backward(self, gy):
        return gy * np.cos(self.inputs[0].data)


class SimpleCos(simple.Function):
    def forward(self, x):
        return np.cos(x)

    def backward(self, gy):
        return gy * -np.sin(self.inputs[0].data)


class SimpleTanh(simple.Function):
    def forward(self, x):
        return np.tanh(x)

    def backward(self, gy):
        y = self.outputs[0]().data
        return gy * (1 - y * y)


class SimpleSigmoid(simple.Function):
    def forward(self, x):
        return np.tanh(x * 0.5) * 0.5 + 0.5  # F.sigmoid's overflow-free form

    def backward(self, gy):
        y = self.outputs[0]().data
        return gy * y * (1 - y)


class SimpleSum(simple.Function):
    def forward(self, x):
        return x.sum()

    def backward(self, gy):
        return np.broadcast_to(gy, self.inputs[0].shape)


class SimpleMatMul(simple.Function):
    def forward(self, x, W):
        return x @ W

    def backward(self, gy):
        x, W = self.inputs[0].data, self.inputs[1].data
        return gy @ W.T, x.T @ gy


# The same names on each engine, so one function builds the same graph with either.
CORE = SimpleNamespace(name='core', Variable=Variable, sin=F.sin, cos=F.cos, tanh=F.tanh,
                       sigmoid=F.sigmoid, exp=F.exp, square=F.square, sum=F.sum,
                       matmul=F.matmul)
SIMPLE = SimpleNamespace(name='core_simple', Variable=simple.Variable,
                         sin=lambda x: SimpleSin()(x), cos=lambda x: SimpleCos()(x),
                         tanh=lambda x: SimpleTanh()(x), sigmoid=lambda x: SimpleSigmoid()(x),
                         exp=simple.exp, square=simple.square, sum=lambda x: SimpleSum()(x),
                         matmul=lambda x, W: SimpleMatMul()(x, W))


def grad_array(v):
    """v's gradient as an array (a Variable in core, an ndarray in core_simple), or None."""
    g = v.grad
    return g.data if isinstance(g, Variable) else g


def assert_same_gradients(core_nodes, simple_nodes):
    """Each pair of corresponding variables has equal data and equal gradients, to the bit
    (or no gradient in both)."""
    assert len(core_nodes) == len(simple_nodes)
    for i, (c, s) in enumerate(zip(core_nodes, simple_nodes)):
        np.testing.assert_array_equal(c.data, s.data, err_msg=f'node {i}: data')
        gc, gs = grad_array(c), grad_array(s)
        assert (gc is None) == (gs is None), f'node {i}: a gradient in one engine only'
        if gc is not None:
            assert type(gs) is np.ndarray
            assert gc.dtype == gs.dtype and gc.shape == gs.shape, f'node {i}'
            np.testing.assert_array_equal(gc, gs, err_msg=f'node {i}: grad')


def unary_ops(ops):
    """Every one-input op of both engines (and the test's Simple* ones), scalars on either
    side of the operators."""
    return [ops.sin, ops.tanh, ops.sigmoid, ops.exp, ops.square, lambda v: -v,
            lambda v: v * 1.5, lambda v: 1.5 * v, lambda v: v + 0.25, lambda v: 0.25 + v,
            lambda v: v - 0.5, lambda v: 0.5 - v, lambda v: v / 3.0,
            lambda v: 2.0 / (v * v + 1.0), lambda v: v ** 2, lambda v: v ** 3,
            lambda v: (v * v + 1.0) ** 0.5, lambda v: v * np.full(3, 0.75),
            lambda v: np.full(3, 0.75) - v]


def binary_ops(ops):
    return [lambda a, b: a + b, lambda a, b: a * b, lambda a, b: a - b,
            lambda a, b: a / (b * b + 1.0)]


def random_graph(rng, ops, n_leaves, n_ops):
    """A random DAG of unary and binary ops over float64 leaves (shapes broadcast), built
    with the engine ``ops``. The same rng state builds the same graph with either engine.
    Returns the leaves, every node, and the output."""
    leaves = [ops.Variable(rng.standard_normal((2, 3) if i % 2 else (3,)))
              for i in range(n_leaves)]
    nodes = list(leaves)
    unary, binary = unary_ops(ops), binary_ops(ops)
    for _ in range(n_ops):
        if rng.random() < 0.5:
            a = nodes[rng.integers(len(nodes))]
            nodes.append(unary[rng.integers(len(unary))](a) * 0.5)
        else:
            a, b = (nodes[i] for i in rng.integers(len(nodes), size=2))
            nodes.append(binary[rng.integers(len(binary))](a, b) * 0.5)
    y = nodes[-1]
    for v in nodes[-4:-1]:  # several branches meet at the output
        y = y + v
        nodes.append(y)
    return leaves, nodes, ops.sum(y)


@pytest.mark.parametrize('retain_grad', [False, True], ids=['leaves', 'retain_grad'])
@pytest.mark.parametrize('seed', range(40))
def test_backward_matches_core_simple_bit_for_bit(seed, retain_grad):
    built = []
    for ops in (CORE, SIMPLE):
        rng = np.random.default_rng(seed)
        n_ops = int(rng.integers(5, 40))
        leaves, nodes, y = random_graph(rng, ops, n_leaves=3, n_ops=n_ops)
        y.backward(retain_grad=retain_grad)
        built.append((leaves, nodes, y))
    (core_leaves, core_nodes, core_y), (simple_leaves, simple_nodes, simple_y) = built
    assert_same_gradients([core_y], [simple_y])
    assert_same_gradients(core_leaves, simple_leaves)
    if retain_grad:  # every intermediate gradient too
        assert_same_gradients(core_nodes, simple_nodes)
    assert any(x.grad is not None for x in core_leaves)


@pytest.mark.parametrize('op', range(len(unary_ops(CORE)) + len(binary_ops(CORE))))
def test_every_op_of_both_engines_matches_bit_for_bit(op):
    # each op alone, on broadcasting shapes and used twice (its gradient is a sum)
    rng = np.random.default_rng(100 + op)
    arrays = [rng.standard_normal((3,)), rng.standard_normal((2, 3))]
    results = []
    for ops in (CORE, SIMPLE):
        a, b = (ops.Variable(x.copy()) for x in arrays)
        unary, binary = unary_ops(ops), binary_ops(ops)
        f = unary[op] if op < len(unary) else binary[op - len(unary)]
        y = f(a) * f(b) if op < len(unary) else f(a, b) * f(b, a)
        ops.sum(y).backward()
        results.append([y, a, b])
    assert_same_gradients(*results)


def test_a_long_chain_and_a_diamond_match_core_simple():
    results = []
    for ops in (CORE, SIMPLE):
        x = ops.Variable(np.linspace(-1, 1, 5))
        y = x
        for _ in range(50):
            y = ops.sin(y) * 1.0001 + 0.1
        a, b = ops.exp(y), ops.cos(y)  # a diamond after the chain
        z = ops.sum(a * b + a)
        z.backward()
        results.append([z, x])
    assert_same_gradients(*results)


class Three(Function):
    """x0 * x1 + x2, any number of inputs goes through the general path."""

    def forward(self, *xs):
        return xs[0] * xs[1] + xs[2]

    def backward(self, gy):
        x0, x1, x2 = self.inputs
        return gy * x1, gy * x0, gy


class Two(Three):
    def forward(self, x0, x1):
        return x0 * x1

    def backward(self, gy):
        x0, x1 = self.inputs
        return gy * x1, gy * x0


def test_one_two_and_many_input_calls_record_the_same_graph():
    rng = np.random.default_rng(0)
    a, b = rng.standard_normal(3), rng.standard_normal(3)
    x0, x1 = Variable(a), Variable(b)
    y2 = Two()(x0, b)  # an array input is wrapped, on the two-input path too
    y3 = Three()(x0, b, np.zeros(3))
    np.testing.assert_array_equal(y2.data, y3.data)
    for y in (y2, y3):
        f = y.creator
        assert type(f.inputs) is list and f.inputs[0] is x0
        assert isinstance(f.inputs[1], Variable) and f.inputs[1].data is b
        assert f.outputs[0]() is y and y.generation == 1 and f.generation == 0
    y1 = F.sin(x1)
    assert y1.creator.inputs == [x1] and y1.generation == 1
    y2.backward()
    g2 = x0.grad.data.copy()
    x0.cleargrad()
    y3.backward()
    np.testing.assert_array_equal(x0.grad.data, g2)


@pytest.mark.parametrize('name', ['sigmoid', 'tanh'])
def test_one_op_gradients_equal_the_composed_formulas(name):
    rng = np.random.default_rng(1)
    x = Variable(rng.standard_normal((3, 4)))
    gy = Variable(rng.standard_normal((3, 4)))
    y = getattr(F, name)(x)
    gx = y.creator.backward(gy)
    composed = gy * y * (1 - y) if name == 'sigmoid' else gy * (1 - y * y)
    np.testing.assert_array_equal(gx.data, composed.data)
    # second order: d(sum(gx))/dx through the one-op gradient, against the composed one
    x.cleargrad()
    y = getattr(F, name)(x)
    y.backward(create_graph=True)
    g = x.grad
    x.cleargrad()
    g.backward()
    second = x.grad.data
    s = 1 / (1 + np.exp(-x.data)) if name == 'sigmoid' else np.tanh(x.data)
    expected = s * (1 - s) * (1 - 2 * s) if name == 'sigmoid' else -2 * s * (1 - s * s)
    np.testing.assert_allclose(second, expected, rtol=1e-12, atol=1e-14)


def test_in_place_sums_never_touch_a_gradient_handed_on():
    # v's gradient is a sum of three uses, made by the engine. Add's backward hands that
    # very Variable on to u (and q) as their gradient; it runs before z's creator (its
    # generation is q's, higher), so u's gradient is then v's object, and z adds 5 more.
    # With retain_grad, v.grad must still be 2 + 3 + 0, not 10.
    u = Variable(np.array([1.0, 2.0]))
    q = F.sin(F.sin(F.sin(Variable(np.array([0.5, 0.5])))))
    v = u + q
    z = u * 5.0
    w = v * 2.0 + v * 3.0 + v * 0.0
    F.sum(z + w).backward(retain_grad=True)
    np.testing.assert_array_equal(v.grad.data, [5.0, 5.0])
    np.testing.assert_array_equal(u.grad.data, [10.0, 10.0])


def test_a_weight_used_many_times_sums_in_place_to_core_simples_result():
    rng = np.random.default_rng(3)
    W0, h0 = rng.standard_normal((3, 3)), rng.standard_normal((2, 3))
    results = []
    for ops in (CORE, SIMPLE):
        W, h = ops.Variable(W0.copy()), ops.Variable(h0.copy())
        for _ in range(10):  # an RNN: W's gradient is a sum of 10 terms
            h = ops.tanh(ops.matmul(h, W))
        y = ops.sum(h)
        y.backward()
        results.append((W, h))
    assert_same_gradients([results[0][0]], [results[1][0]])
    W, h = results[0]
    before = W.grad
    before_data = before.data.copy()
    y2 = F.sum(F.matmul(h, W))  # a second backward adds to the grad the user holds
    y2.backward()
    assert W.grad is not before  # the first grad is not changed in place
    np.testing.assert_array_equal(before.data, before_data)


@pytest.mark.parametrize('dtype', [np.float32, np.float64])
@pytest.mark.parametrize('x_is_data', [True, False])
@pytest.mark.parametrize('bias', [True, False])
def test_linear_and_mse_gradients_on_arrays_equal_the_recorded_ones(dtype, x_is_data, bias):
    # Not recorded, Linear's and mean_squared_error's backward compute on arrays; recorded
    # (create_graph=True) they run LinearGradX, LinearGradW, sum and the arithmetic ops
    rng = np.random.default_rng(13)
    arrays = [rng.standard_normal(s).astype(dtype) for s in [(6, 4), (4, 3), (3,), (6, 3)]]
    results = []
    for create_graph in (False, True):
        x = arrays[0] if x_is_data else Variable(arrays[0].copy())
        W, b, t = (Variable(a.copy()) for a in arrays[1:])
        y = F.linear(x, W, b if bias else None)
        F.mean_squared_error(y, t).backward(create_graph=create_graph)
        grads = [v.grad for v in (x, W, b, t) if isinstance(v, Variable)]
        assert (b.grad is not None) == bias
        results.append([g.data for g in grads if g is not None])
    assert len(results[0]) == len(results[1]) == 3 + (not x_is_data) - (not bias)
    for a, b in zip(*results):
        assert a.dtype == b.dtype == dtype
        np.testing.assert_array_equal(a, b)


@pytest.mark.parametrize('dtype', [np.float32, np.float64])
@pytest.mark.parametrize('x_is_data', [True, False])
def test_linear_pair_gradients_on_arrays_equal_the_recorded_ones(dtype, x_is_data):
    rng = np.random.default_rng(14)
    shapes = [(6, 1), (1, 3), (3,), (6, 3), (3, 3)]  # x (N, 1): the k = 1 products too
    arrays = [rng.standard_normal(s).astype(dtype) for s in shapes]
    results = []
    for create_graph in (False, True):
        x = arrays[0] if x_is_data else Variable(arrays[0].copy())
        W, b, h, U = (Variable(a.copy()) for a in arrays[1:])
        F.sum(F.tanh(F.linear_pair(x, W, b, h, U))).backward(create_graph=create_graph)
        results.append([v.grad.data for v in (x, W, b, h, U) if isinstance(v, Variable)])
    assert len(results[0]) == len(results[1]) == 4 + (not x_is_data)
    for a, b in zip(*results):
        assert a.dtype == b.dtype == dtype
        np.testing.assert_array_equal(a, b)


@pytest.mark.parametrize('recorded', [False, True])
def test_mse_skips_the_gradient_of_a_data_target(recorded):
    from zerograd import no_grad
    x = Variable(np.array([[1.0], [2.0]]))
    for t, wanted in ((np.array([[0.5], [0.0]]), False),
                      (Variable(np.array([[0.5], [0.0]])), True)):
        f = F.mean_squared_error(x, t).creator
        gy = Variable(np.array(1.0))
        if recorded:  # as inside backward(create_graph=True)
            gx0, gx1 = f.backward(gy)
        else:
            with no_grad():
                gx0, gx1 = f.backward(gy)
        assert (gx0.creator is not None) == recorded
        np.testing.assert_array_equal(gx0.data, [[0.5], [2.0]])  # 2 (x - t) / N
        assert (gx1 is not None) == wanted
        if wanted:
            np.testing.assert_array_equal(gx1.data, [[-0.5], [-2.0]])


def test_linear_gradient_ops_first_and_second_order():
    from zerograd.testing import check_op
    check_op('LinearGradX', lambda gy, W: F.LinearGradX()(gy, W), lambda gy, W: gy @ W.T,
             [(4, 3), (5, 3)])
    check_op('LinearGradW', lambda x, gy: F.LinearGradW()(x, gy), lambda x, gy: x.T @ gy,
             [(4, 5), (4, 3)])


def test_linear_third_order_matches_the_composed_linear():
    rng = np.random.default_rng(4)
    x0, W0, b0 = rng.standard_normal((3, 4)), rng.standard_normal((4, 2)), rng.standard_normal(2)
    grads = []
    for lin in (F.linear, F.linear_simple):
        x, W = Variable(x0.copy()), Variable(W0.copy())
        y = F.sum(F.tanh(lin(x, W, b0)) ** 3)
        y.backward(create_graph=True)
        gx = x.grad
        x.cleargrad(); W.cleargrad()
        F.sum(gx * gx).backward(create_graph=True)
        gW = W.grad
        x.cleargrad(); W.cleargrad()
        F.sum(gW).backward()
        grads.append((x.grad.data, W.grad.data))
    np.testing.assert_allclose(grads[0][0], grads[1][0], rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(grads[0][1], grads[1][1], rtol=1e-12, atol=1e-12)


def lstm_composed(c_prev, af, ai, ao, au):
    """The book's LSTM formulas, op by op: the oracle of F.lstm_cell."""
    c = F.sigmoid(af) * c_prev + F.sigmoid(ai) * F.tanh(au)
    return c, F.sigmoid(ao) * F.tanh(c)


def test_lstm_cell_first_and_second_order():
    from zerograd.testing import check_op
    ref_c = lambda c, af, ai, ao, au: (1 / (1 + np.exp(-af))) * c + (1 / (1 + np.exp(-ai))) * np.tanh(au)
    check_op('lstm_cell c', lambda *a: F.lstm_cell(*a)[0], ref_c, [(3, 4)] * 5)
    check_op('lstm_cell h', lambda *a: F.lstm_cell(*a)[1],
             lambda c, af, ai, ao, au: (1 / (1 + np.exp(-ao))) * np.tanh(ref_c(c, af, ai, ao, au)),
             [(3, 4)] * 5)


@pytest.mark.parametrize('create_graph', [False, True])
def test_lstm_cell_gradients_equal_the_composed_ops_bit_for_bit(create_graph):
    # create_graph=False takes the array path, True the recorded one: both must give the
    # composed ops' gradients exactly, for c and h used alone and together
    rng = np.random.default_rng(5)
    arrays = [rng.standard_normal((3, 4)) for _ in range(5)]
    for use in ('c', 'h', 'both'):
        grads = []
        for cell in (F.lstm_cell, lstm_composed):
            xs = [Variable(a.copy()) for a in arrays]
            c, h = cell(*xs)
            y = {'c': F.sum(c * c), 'h': F.sum(h * h), 'both': F.sum(c * h + h)}[use]
            y.backward(create_graph=create_graph)
            grads.append([None if x.grad is None else x.grad.data for x in xs])
        for fused, composed in zip(*grads):
            if composed is None:  # ao, when only c is used
                assert fused is None
            else:
                np.testing.assert_array_equal(fused, composed)


def test_lstm_layer_is_the_composed_formulas():
    from zerograd import layers as L
    rng = np.random.default_rng(6)
    lstm = L.LSTM(4, in_size=2)
    for p in lstm.params():
        p.data = rng.standard_normal(p.data.shape)
    xs = [rng.standard_normal((3, 2)) for _ in range(3)]
    hs = [lstm(x) for x in xs]
    h, c = None, None
    for x, h_layer in zip(xs, hs):  # the book's LSTM, written out
        h, c = book_lstm_step(lstm, x, h, c)
        np.testing.assert_allclose(h_layer.data, h.data, rtol=1e-13, atol=1e-15)


def test_k1_products_are_the_matrix_products_bit_for_bit():
    rng = np.random.default_rng(7)
    for dtype in (np.float64, np.float32):
        a = rng.standard_normal((5, 1)).astype(dtype)
        b = rng.standard_normal((1, 4)).astype(dtype)
        y = F.matmul(a, b).data
        assert y.dtype == dtype
        np.testing.assert_array_equal(y, a @ b)
        x = Variable(rng.standard_normal((1, 3)).astype(dtype))
        W = Variable(rng.standard_normal((3, 4)).astype(dtype))
        y = F.linear(x, W)
        y.backward()  # gW = x.T @ ones: a (3, 1) @ (1, 4) product
        np.testing.assert_array_equal(W.grad.data, x.data.T @ np.ones((1, 4), dtype))
        # gx of a one-output layer: gy (N, 1) @ W.T (1, in), recorded or not
        W1 = Variable(rng.standard_normal((3, 1)).astype(dtype))
        gy = rng.standard_normal((5, 1)).astype(dtype)
        W1.data[1] = 0.0  # BLAS's 0 + (-1) * 0 is +0.0, a broadcast product's -0.0
        for create_graph in (False, True):
            x = Variable(rng.standard_normal((5, 3)).astype(dtype))
            F.sum(F.linear(x, W1) * gy).backward(create_graph=create_graph)
            expected = gy @ W1.data.T
            np.testing.assert_array_equal(x.grad.data, expected)
            assert np.array_equal(np.signbit(x.grad.data), np.signbit(expected))


def test_linear_pair_first_and_second_order_and_errors():
    from zerograd.testing import check_op
    check_op('linear_pair', F.linear_pair,
             lambda x, W, b, h, U: x @ W + b + h @ U, [(3, 4), (4, 2), (2,), (3, 5), (5, 2)])
    with pytest.raises(ValueError, match=r'linear_pair: x W and h U must have the same shape'):
        F.linear_pair(np.ones((3, 4)), np.ones((4, 2)), np.ones(2), np.ones((2, 5)),
                      np.ones((5, 2)))
    with pytest.raises(ValueError, match=r'linear_pair: input has 3 features but W expects 4'):
        F.linear_pair(np.ones((2, 3)), np.ones((4, 2)), np.ones(2), np.ones((2, 5)),
                      np.ones((5, 2)))


@pytest.mark.parametrize('x_is_data', [True, False])
def test_linear_pair_equals_two_linears_and_an_add_bit_for_bit(x_is_data):
    rng = np.random.default_rng(8)
    arrays = [rng.standard_normal(s) for s in [(3, 4), (4, 2), (2,), (3, 5), (5, 2)]]
    results = []
    for fused in (True, False):
        x = arrays[0] if x_is_data else Variable(arrays[0].copy())
        W, b, h, U = (Variable(a.copy()) for a in arrays[1:])
        y = F.linear_pair(x, W, b, h, U) if fused else F.linear(x, W, b) + F.linear(h, U)
        F.sum(F.tanh(y)).backward()
        grads = [v.grad.data for v in (W, b, h, U)]
        if not x_is_data:
            grads.append(x.grad.data)
        results.append((y.data, grads))
    np.testing.assert_array_equal(results[0][0], results[1][0])
    for fused, composed in zip(results[0][1], results[1][1]):
        np.testing.assert_array_equal(fused, composed)


def test_rnn_layer_trains_as_the_composed_layer_bit_for_bit():
    # three steps, backward, against the book's x2h(x) + h2h(h) written out
    from zerograd import layers as L
    rng = np.random.default_rng(9)
    xs = [rng.standard_normal((3, 2)) for _ in range(3)]

    def run(fast):
        np.random.seed(0)
        model = L.RNN(4)
        loss = 0
        for x in xs:
            if not fast and model.h is not None:
                model.h = F.tanh(model.x2h(x) + model.h2h(model.h))
                h = model.h
            else:
                h = model(x)
            loss = loss + F.sum(h * h)
        loss.backward()
        return [p.grad.data for p in model.params()], loss.data

    fast, plain = run(True), run(False)
    np.testing.assert_array_equal(fast[1], plain[1])
    for a, b in zip(fast[0], plain[0]):
        np.testing.assert_array_equal(a, b)


def book_lstm_step(lstm, x, h, c):
    """The book's LSTM step, op by op (h, c None on the first step)."""
    def gate(g):
        y = getattr(lstm, 'x2' + g)(x)
        return y if h is None else y + getattr(lstm, 'h2' + g)(h)
    f, i, o, u = F.sigmoid(gate('f')), F.sigmoid(gate('i')), F.sigmoid(gate('o')), F.tanh(gate('u'))
    c = i * u if c is None else f * c + i * u
    return o * F.tanh(c), c


@pytest.mark.parametrize('seed_h', [False, True])
def test_lstm_layer_trains_as_the_book_formulas(seed_h):
    # Each fused op equals its composed ops to the bit (tests above); in the layer the
    # gradients of h and c arrive in another order, so sums may differ in the last bits.
    from zerograd import layers as L
    rng = np.random.default_rng(10)
    xs = [rng.standard_normal((3, 2)) for _ in range(4)]
    h0 = rng.standard_normal((3, 4)) if seed_h else None  # an h given from outside

    results = []
    for fast in (True, False):
        np.random.seed(0)
        lstm = L.LSTM(4)
        lstm.h = None if h0 is None else Variable(h0.copy())
        h, c, loss = lstm.h, None, 0
        for x in xs:
            if fast:
                y = lstm(x)
            else:
                y, c = book_lstm_step(lstm, x, h, c)
                h = y
            loss = loss + F.sum(y * y)
        loss.backward()
        results.append((loss.data, [p.grad.data for p in lstm.params()]))
    np.testing.assert_allclose(results[0][0], results[1][0], rtol=1e-14)
    for a, b in zip(results[0][1], results[1][1]):
        np.testing.assert_allclose(a, b, rtol=1e-12, atol=1e-15)


def test_lstm_cell_on_0d_and_1d_inputs():
    values = (0.3, -0.2, 0.5, 0.1, -0.4)
    for shape in ((), (1,)):
        xs = [Variable(np.full(shape, v)) for v in values]
        c, h = F.lstm_cell(*xs)
        (c + h).backward()
        ys = [Variable(np.full(shape, v)) for v in values]
        c2, h2 = lstm_composed(*ys)
        (c2 + h2).backward()
        for x, y in zip(xs, ys):
            assert x.grad.shape == shape
            np.testing.assert_array_equal(x.grad.data, y.grad.data)


def test_recurrent_layers_with_replaced_sublayers_use_them():
    # the one-op gate is only for plain Linears with a bias: anything else runs the layers
    from zerograd import layers as L
    rnn = L.RNN(3, in_size=2)
    rnn.x2h = L.Linear(3, in_size=2, nobias=True)
    x = np.ones((1, 2))
    h1 = rnn(x)
    h2 = rnn(x)
    expected = np.tanh(x @ rnn.x2h.W.data + h1.data @ rnn.h2h.W.data)
    assert rnn.x2h.b is None and rnn.x2h.outputs[0]() is not None  # the sublayer ran
    np.testing.assert_allclose(h2.data, expected, rtol=1e-6)




def test_a_replaced_hidden_sublayer_with_a_bias_keeps_its_bias():
    # linear_pair has no second bias: an h2h with one must run as a layer, not be dropped
    from zerograd import layers as L
    rnn = L.RNN(3, in_size=2)
    x = np.ones((1, 2))
    h1 = rnn(x)
    rnn.h2h = L.Linear(3, in_size=3)
    rnn.h2h.b.data[...] = 0.5
    h2 = rnn(x)
    expected = np.tanh(x @ rnn.x2h.W.data + rnn.x2h.b.data
                       + h1.data @ rnn.h2h.W.data + rnn.h2h.b.data)
    np.testing.assert_allclose(h2.data, expected, rtol=1e-6)


def lstm_step_composed(x, h, c_prev, Wx, b, Wh):
    """lstm_step's oracle: four linear_pair and lstm_cell."""
    return F.lstm_cell(c_prev, *[F.linear_pair(x, Wx[k], b[k], h, Wh[k]) for k in range(4)])


@pytest.mark.parametrize('x_is_data', [True, False])
@pytest.mark.parametrize('create_graph', [False, True])
def test_lstm_step_equals_linear_pairs_and_the_cell(x_is_data, create_graph):
    # forward and every parameter's and c_prev's gradient to the bit; h's and x's add the
    # four gates' products, in lstm_step's order, so they may differ in the last bits
    rng = np.random.default_rng(12)
    shapes = [(3, 2), (3, 4), (3, 4)] + [(2, 4)] * 4 + [(4,)] * 4 + [(4, 4)] * 4
    arrays = [rng.standard_normal(s) for s in shapes]
    results = []
    for step in (F.lstm_step, lstm_step_composed):
        vs = [Variable(a.copy()) for a in arrays]
        x = arrays[0] if x_is_data else vs[0]
        c, h = step(x, vs[1], vs[2], vs[3:7], vs[7:11], vs[11:15])
        F.sum(c * c + h * F.tanh(h)).backward(create_graph=create_graph)
        results.append(([c.data, h.data], [None if v.grad is None else v.grad.data for v in vs]))
    (outs, grads), (ref_outs, ref_grads) = results
    for a, b in zip(outs, ref_outs):
        np.testing.assert_array_equal(a, b)
    assert (grads[0] is None) == x_is_data == (ref_grads[0] is None)
    for k, (a, b) in enumerate(zip(grads, ref_grads)):
        if k in (0, 1):  # x, h
            if a is not None:
                np.testing.assert_allclose(a, b, rtol=1e-13, atol=1e-15)
        else:
            np.testing.assert_array_equal(a, b)


def test_lstm_step_checks_its_arguments():
    x, h = np.ones((3, 2)), np.ones((3, 4))
    Wx, b, Wh = [np.ones((2, 4))] * 4, [np.ones(4)] * 4, [np.ones((4, 4))] * 4
    with pytest.raises(ValueError, match=r"lstm_step: Whs must hold the 4 gates' parameters"):
        F.lstm_step(x, h, h, Wx, b, Wh[:3])
    with pytest.raises(ValueError, match=r'lstm_step: input has 3 features but W expects 2'):
        F.lstm_step(np.ones((3, 3)), h, h, Wx, b, Wh)
    with pytest.raises(ValueError, match=r'lstm_step: h and c_prev must be \(N, H\)'):
        F.lstm_step(x, h, np.ones((3, 5)), Wx, b, Wh)
    with pytest.raises(ValueError, match=r'lstm_step: b must have shape \(4,\)'):
        F.lstm_step(x, h, h, Wx, [np.ones(5)] * 4, Wh)


def test_the_lstm_layer_steps_in_two_ops_unless_a_sublayer_is_replaced():
    from zerograd import layers as L
    lstm = L.LSTM(4, in_size=2)
    x = np.ones((3, 2))
    lstm(x)
    h = lstm(x)
    assert type(h.creator) is F.LSTMOutput and type(lstm.c.creator) is F.LSTMStep
    assert lstm.c in h.creator.inputs  # c is h's input: unchain_backward cuts it too
    lstm.h2o = L.Linear(4, in_size=4)  # a bias: not F.lstm_step's case
    h = lstm(x)
    assert type(lstm.c.creator) is F.LSTMState
    assert lstm.h2o.outputs[0]() is not None  # the sublayer ran
