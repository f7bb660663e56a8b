"""The per-op checks of every op in ``zerograd.core`` and ``zerograd.functions``.

Each op goes through ``check_op``: forward against a NumPy reference (float64 and float32),
float32 kept, first derivatives and double backward against central differences, and a
broadcasting case where the op broadcasts. Then the error messages for bad input, the
dtype rules for scalar operands, and the few exact-value rules (ties in max/min, the
scatter-add of get_item).
"""
import operator
import re

import numpy as np
import pytest

import zerograd.functions as F
from zerograd import Variable
from zerograd.functions import GetItemGrad
from zerograd.testing import check_op


def away_from_zero(shape, rng):
    """Uniform in [-1.5, -0.5] U [0.5, 1.5]: a domain for divisors and abs."""
    return rng.choice([-1.0, 1.0], size=shape) * rng.uniform(0.5, 1.5, size=shape)


POSITIVE = dict(low=0.5, high=2.0)  # log, sqrt, the base of pow
NONZERO = dict(make_input=away_from_zero)  # divisors, abs

# A constant ndarray operand: positive, so it can be a divisor or the base of a power.
C = np.random.default_rng(1).uniform(0.5, 1.5, size=(2, 3))


def named(cases):
    """pytest params whose test ids are the cases' first field (their name)."""
    return [pytest.param(*case, id=case[0]) for case in cases]


def const(x):
    """C in x's dtype, so that float32 checks see a float32 constant."""
    return C.astype(x.dtype)


# =============================================================================
# Arithmetic: + - * / ** as operators and as F.add etc., every operand form
# =============================================================================
# name, operator, F function, NumPy reference, input domain
ARITHMETIC = [
    ('add', operator.add, F.add, np.add, {}),
    ('sub', operator.sub, F.sub, np.subtract, {}),
    ('mul', operator.mul, F.mul, np.multiply, {}),
    ('div', operator.truediv, F.div, np.divide, NONZERO),
    ('pow', operator.pow, F.pow, np.power, POSITIVE),
]

# operand form -> (f(op), reference(ref), shapes, broadcasting shapes)
OPERANDS = {
    'var-var': (lambda op: lambda x, y: op(x, y), lambda ref: ref,
                [(2, 3), (2, 3)], [(2, 1, 3), (4, 1)]),
    'var-scalar': (lambda op: lambda x: op(x, 1.5), lambda ref: lambda x: ref(x, 1.5),
                   [(2, 3)], None),
    'scalar-var': (lambda op: lambda x: op(1.5, x), lambda ref: lambda x: ref(1.5, x),
                   [(2, 3)], None),
    'var-ndarray': (lambda op: lambda x: op(x, const(x)), lambda ref: lambda x: ref(x, C),
                    [(2, 3)], [(3,)]),
    'ndarray-var': (lambda op: lambda x: op(const(x), x), lambda ref: lambda x: ref(C, x),
                    [(2, 3)], [(1, 3)]),
}


@pytest.mark.parametrize('form', list(OPERANDS))
@pytest.mark.parametrize('spelling', ['operator', 'F'])
@pytest.mark.parametrize('name, op, function, ref, domain', ARITHMETIC,
                         ids=[a[0] for a in ARITHMETIC])
def test_arithmetic(name, op, function, ref, domain, spelling, form):
    make_f, make_ref, shapes, broadcast = OPERANDS[form]
    f = make_f(op if spelling == 'operator' else function)
    check_op(f'{name} ({spelling}, {form})', f, make_ref(ref), shapes,
             broadcast=broadcast, **domain)


UNARY_ARITHMETIC = [
    ('-x', lambda x: -x, np.negative, {}),
    ('F.neg', F.neg, np.negative, {}),
    ('F.rsub', lambda x: F.rsub(x, 1.5), lambda x: 1.5 - x, {}),
    ('F.rdiv', lambda x: F.rdiv(x, 1.5), lambda x: 1.5 / x, NONZERO),
    ('x ** 3 (int exponent, negative base)', lambda x: x ** 3, lambda x: x ** 3, {}),
    ('x ** 2 (int exponent)', lambda x: x ** 2, lambda x: x ** 2, {}),
    ('x ** -1.5', lambda x: x ** -1.5, lambda x: x ** -1.5, POSITIVE),
    ('x ** 0.5', lambda x: x ** 0.5, lambda x: x ** 0.5, POSITIVE),
    ('2 ** x (int base)', lambda x: 2 ** x, lambda x: 2.0 ** x, {}),
    ('0.5 ** x', lambda x: 0.5 ** x, lambda x: 0.5 ** x, {}),
    ('2.0 - x', lambda x: 2.0 - x, lambda x: 2.0 - x, {}),
    ('2.0 / x', lambda x: 2.0 / x, lambda x: 2.0 / x, NONZERO),
]


@pytest.mark.parametrize('name, f, ref, domain', UNARY_ARITHMETIC,
                         ids=[u[0] for u in UNARY_ARITHMETIC])
def test_unary_arithmetic(name, f, ref, domain):
    check_op(name, f, ref, [(2, 3)], **domain)


def test_pow_with_variable_exponent_of_both_signs():
    # x ** y with a positive base x and an exponent y in [-2, 2] of shape (2, 1); the
    # plain case above draws both from [0.5, 2].
    def make(shape, rng):
        if shape == (2, 1):
            return rng.uniform(-2.0, 2.0, size=shape)
        return rng.uniform(0.5, 2.0, size=shape)
    check_op('x ** y (signed exponent)', lambda x, y: x ** y, np.power, [(2, 3), (2, 1)],
             broadcast=[(3,), (2, 1)], make_input=make)


def test_ndarray_operand_on_the_left_gives_a_variable():
    x = Variable(np.array([1.0, 2.0]))
    a = np.array([3.0, 4.0])
    for y, expected in [(a + x, [4.0, 6.0]), (a - x, [2.0, 2.0]), (a * x, [3.0, 8.0]),
                        (a / x, [3.0, 2.0]), (a ** x, [3.0, 16.0])]:
        assert isinstance(y, Variable)
        np.testing.assert_allclose(y.data, expected)


# =============================================================================
# Elementwise functions
# =============================================================================
ELEMENTWISE = [
    ('sin', F.sin, np.sin, {}),
    ('cos', F.cos, np.cos, {}),
    ('tanh', F.tanh, np.tanh, {}),
    ('exp', F.exp, np.exp, {}),
    ('log', F.log, np.log, POSITIVE),
    ('square', F.square, np.square, {}),
    ('sqrt', F.sqrt, np.sqrt, POSITIVE),
    ('abs', F.abs, np.abs, NONZERO),
]


@pytest.mark.parametrize('name, f, ref, domain', ELEMENTWISE, ids=[e[0] for e in ELEMENTWISE])
@pytest.mark.parametrize('shape', [(2, 3), (), (2, 1, 3)], ids=str)
def test_elementwise(name, f, ref, domain, shape):
    check_op(name, f, ref, [shape], **domain)


# =============================================================================
# Shape ops
# =============================================================================
SHAPE_OPS = [
    # reshape
    ('F.reshape tuple', lambda x: F.reshape(x, (3, 2)), lambda x: x.reshape(3, 2), (2, 3)),
    ('F.reshape list', lambda x: F.reshape(x, [3, 2]), lambda x: x.reshape(3, 2), (2, 3)),
    ('F.reshape int', lambda x: F.reshape(x, 6), lambda x: x.reshape(6), (2, 3)),
    ('F.reshape -1', lambda x: F.reshape(x, (-1,)), lambda x: x.reshape(-1), (2, 3)),
    ('F.reshape -1 middle', lambda x: F.reshape(x, (2, -1, 2)), lambda x: x.reshape(2, -1, 2),
     (4, 3)),
    ('F.reshape to 0-d', lambda x: F.reshape(x, ()), lambda x: x.reshape(()), (1, 1)),
    ('Variable.reshape varargs', lambda x: x.reshape(3, 2), lambda x: x.reshape(3, 2), (2, 3)),
    ('Variable.reshape tuple', lambda x: x.reshape((3, 2)), lambda x: x.reshape(3, 2), (2, 3)),
    ('Variable.reshape -1', lambda x: x.reshape(-1, 2), lambda x: x.reshape(-1, 2), (2, 3)),
    # transpose
    ('F.transpose None', F.transpose, np.transpose, (2, 3, 4)),
    ('F.transpose 2-D', F.transpose, np.transpose, (2, 3)),
    ('F.transpose axes', lambda x: F.transpose(x, (1, 0, 2)),
     lambda x: x.transpose(1, 0, 2), (2, 3, 4)),
    ('F.transpose cyclic axes', lambda x: F.transpose(x, (2, 0, 1)),
     lambda x: x.transpose(2, 0, 1), (2, 3, 4)),
    ('F.transpose negative axes', lambda x: F.transpose(x, (-1, 0, -2)),
     lambda x: x.transpose(2, 0, 1), (2, 3, 4)),
    ('Variable.transpose()', lambda x: x.transpose(), np.transpose, (2, 3, 4)),
    ('Variable.transpose(*axes)', lambda x: x.transpose(2, 0, 1),
     lambda x: x.transpose(2, 0, 1), (2, 3, 4)),
    ('Variable.transpose(axes)', lambda x: x.transpose((1, 2, 0)),
     lambda x: x.transpose(1, 2, 0), (2, 3, 4)),
    ('Variable.T 2-D', lambda x: x.T, lambda x: x.T, (2, 3)),
    ('Variable.T 3-D', lambda x: x.T, lambda x: x.T, (2, 3, 4)),
    # sum_to
    ('sum_to (1, 3)', lambda x: F.sum_to(x, (1, 3)), lambda x: x.sum(0, keepdims=True), (2, 3)),
    ('sum_to (3,)', lambda x: F.sum_to(x, (3,)), lambda x: x.sum(0), (2, 3)),
    ('sum_to (2, 1)', lambda x: F.sum_to(x, (2, 1)), lambda x: x.sum(1, keepdims=True), (2, 3)),
    ('sum_to ()', lambda x: F.sum_to(x, ()), np.sum, (2, 3)),
    ('sum_to (3, 1) from 3-D', lambda x: F.sum_to(x, (3, 1)),
     lambda x: x.sum((0, 2))[:, None], (2, 3, 4)),
    # broadcast_to
    ('broadcast_to (3,)->(2, 3)', lambda x: F.broadcast_to(x, (2, 3)),
     lambda x: np.broadcast_to(x, (2, 3)), (3,)),
    ('broadcast_to (2, 1)->(2, 3)', lambda x: F.broadcast_to(x, (2, 3)),
     lambda x: np.broadcast_to(x, (2, 3)), (2, 1)),
    ('broadcast_to (1, 3)->(4, 2, 3)', lambda x: F.broadcast_to(x, [4, 2, 3]),
     lambda x: np.broadcast_to(x, (4, 2, 3)), (1, 3)),
    ('broadcast_to ()->(2, 3)', lambda x: F.broadcast_to(x, (2, 3)),
     lambda x: np.broadcast_to(x, (2, 3)), ()),
    # expand_dims, flatten
    ('expand_dims 0', lambda x: F.expand_dims(x, 0), lambda x: np.expand_dims(x, 0), (2, 3)),
    ('expand_dims 1', lambda x: F.expand_dims(x, 1), lambda x: np.expand_dims(x, 1), (2, 3)),
    ('expand_dims 2', lambda x: F.expand_dims(x, 2), lambda x: np.expand_dims(x, 2), (2, 3)),
    ('expand_dims -1', lambda x: F.expand_dims(x, -1), lambda x: np.expand_dims(x, -1), (2, 3)),
    ('expand_dims -3', lambda x: F.expand_dims(x, -3), lambda x: np.expand_dims(x, -3), (2, 3)),
    ('flatten 3-D', F.flatten, lambda x: x.reshape(2, 12), (2, 3, 4)),
    ('flatten 4-D', F.flatten, lambda x: x.reshape(2, 6), (2, 3, 1, 2)),
    ('flatten 2-D', F.flatten, lambda x: x, (2, 3)),
]


@pytest.mark.parametrize('name, f, ref, shape', SHAPE_OPS, ids=[s[0] for s in SHAPE_OPS])
def test_shape_op(name, f, ref, shape):
    check_op(name, f, ref, [shape])


def test_reshape_returns_x_itself_when_the_shape_matches():
    x = Variable(np.ones((2, 3)))
    assert F.reshape(x, (2, 3)) is x
    assert F.reshape(x, [2, 3]) is x
    assert x.reshape(2, 3) is x
    assert x.reshape((2, 3)) is x
    assert F.reshape(x, (3, 2)) is not x


# =============================================================================
# get_item
# =============================================================================
INDEXES = [
    ('int', 1),
    ('negative int', -1),
    ('slice', slice(1, 3)),
    ('reversed slice', slice(None, None, -1)),
    ('tuple of slices', (slice(None), slice(1, 3))),
    ('tuple of ints', (1, 2)),
    ('ellipsis', (Ellipsis, 1)),
    ('newaxis', (None, 0)),
    ('repeated index array', np.array([0, 0, 2, 0])),
    ('repeated index list', [2, 0, 2]),
    ('2-D index array', np.array([[0, 1], [1, 1]])),
    ('repeated index pairs', (np.array([0, 2, 0, 0]), np.array([1, 1, 1, 3]))),
    ('index array and slice', (np.array([1, 1]), slice(1, None))),
    ('slice and index array', (slice(None), np.array([3, 3, 0]))),
    ('boolean mask', np.array([True, False, True])),
]


@pytest.mark.parametrize('spelling', ['F.get_item', 'x[index]'])
@pytest.mark.parametrize('name, index', INDEXES, ids=[i[0] for i in INDEXES])
def test_get_item(name, index, spelling):
    if spelling == 'F.get_item':
        f = lambda x: F.get_item(x, index)  # noqa: E731
    else:
        f = lambda x: x[index]  # noqa: E731
    check_op(f'{spelling} {name}', f, lambda x: x[index], [(3, 4)])


@pytest.mark.parametrize('name, index', INDEXES, ids=[i[0] for i in INDEXES])
def test_get_item_grad_own_backward(name, index):
    # GetItemGrad scatters gy into zeros of the input's shape; its backward is get_item.
    def scatter(gy):
        gx = np.zeros((3, 4))
        np.add.at(gx, index, gy)
        return gx

    gy_shape = np.zeros((3, 4))[index].shape
    check_op(f'GetItemGrad {name}', lambda gy: GetItemGrad(index, (3, 4))(gy), scatter,
             [gy_shape])


def test_get_item_backward_adds_repeated_indexes():
    x = Variable(np.arange(12.0).reshape(3, 4))
    y = x[np.array([0, 0, 2, 0])]
    y.grad = Variable(np.arange(16.0).reshape(4, 4))
    y.backward()
    expected = np.zeros((3, 4))
    expected[0] = [0 + 4 + 12, 1 + 5 + 13, 2 + 6 + 14, 3 + 7 + 15]
    expected[2] = [8, 9, 10, 11]
    np.testing.assert_array_equal(x.grad.data, expected)


# =============================================================================
# Reductions: sum, max, min
# =============================================================================
AXES = [None, 0, 1, -1, -3, (0, 2), (-1, 0), (0, 1, 2)]


@pytest.mark.parametrize('keepdims', [False, True])
@pytest.mark.parametrize('axis', AXES, ids=str)
@pytest.mark.parametrize('name, function, ref', [('sum', F.sum, np.sum), ('max', F.max, np.max),
                                                 ('min', F.min, np.min)],
                         ids=['sum', 'max', 'min'])
def test_reduction(name, function, ref, axis, keepdims):
    check_op(f'{name}(axis={axis}, keepdims={keepdims})',
             lambda x: function(x, axis=axis, keepdims=keepdims),
             lambda x: ref(x, axis=axis, keepdims=keepdims), [(2, 3, 4)])


@pytest.mark.parametrize('name, f, ref', named([
    ('sum empty tuple axis', lambda x: F.sum(x, ()), lambda x: np.sum(x, ())),
    ('sum of 0-d', F.sum, np.sum),
    ('Variable.sum()', lambda x: x.sum(), np.sum),
    ('Variable.sum(axis, keepdims)', lambda x: x.sum(axis=1, keepdims=True),
     lambda x: x.sum(axis=1, keepdims=True)),
    ('Variable.sum(tuple)', lambda x: x.sum((0, 1)), lambda x: x.sum((0, 1))),
    ('Variable.max()', lambda x: x.max(), np.max),
    ('Variable.max(axis, keepdims)', lambda x: x.max(axis=-1, keepdims=True),
     lambda x: x.max(axis=-1, keepdims=True)),
    ('Variable.min()', lambda x: x.min(), np.min),
    ('Variable.min(axis)', lambda x: x.min(0), lambda x: x.min(0)),
]))
def test_reduction_spellings(name, f, ref):
    shape = () if name == 'sum of 0-d' else (2, 3)
    check_op(name, f, ref, [shape])


@pytest.mark.parametrize('function, x, axis, gy, expected', [
    # the maximum 3 appears twice in row 0, the maximum 2 twice in row 1
    (F.max, [[1.0, 3.0, 3.0], [2.0, 2.0, 0.0]], 1, [10.0, 20.0],
     [[0.0, 10.0, 10.0], [20.0, 20.0, 0.0]]),
    (F.max, [[1.0, 3.0, 3.0], [2.0, 3.0, 0.0]], None, 5.0,
     [[0.0, 5.0, 5.0], [0.0, 5.0, 0.0]]),
    (F.min, [[1.0, 2.0, 0.0], [1.0, 5.0, 0.0]], 0, [1.0, 2.0, 3.0],
     [[1.0, 2.0, 3.0], [1.0, 0.0, 3.0]]),
    (F.min, [[4.0, 4.0], [4.0, 4.0]], None, 2.0, [[2.0, 2.0], [2.0, 2.0]]),
], ids=['max axis=1', 'max all', 'min axis=0', 'min all equal'])
def test_max_min_tie_gives_every_tied_element_the_gradient(function, x, axis, gy, expected):
    x = Variable(np.array(x))
    y = function(x, axis=axis)
    y.grad = Variable(np.array(gy))
    y.backward()
    np.testing.assert_array_equal(x.grad.data, expected)


# =============================================================================
# matmul
# =============================================================================
MATMUL_SHAPES = [
    [(3, 4), (4, 5)],
    [(2, 3, 4), (4, 5)],
    [(3, 4), (2, 4, 5)],
    [(2, 3, 4), (2, 4, 5)],
    [(2, 3, 4), (1, 4, 5)],
    [(1, 3, 4), (2, 4, 5)],
    [(2, 1, 3, 4), (3, 4, 2)],
    [(4,), (4, 5)],
    [(3, 4), (4,)],
    [(4,), (4,)],
    [(4,), (2, 4, 5)],
    [(2, 3, 4), (4,)],
]


@pytest.mark.parametrize('shapes', MATMUL_SHAPES, ids=str)
def test_matmul(shapes):
    check_op('matmul', F.matmul, np.matmul, shapes)


@pytest.mark.parametrize('name, f, ref, shapes', named([
    ('x @ W', lambda x, W: x @ W, np.matmul, [(2, 3, 4), (1, 4, 5)]),
    ('x.matmul(W)', lambda x, W: x.matmul(W), np.matmul, [(3, 4), (4, 5)]),
    ('x.dot(W)', lambda x, W: x.dot(W), np.matmul, [(3, 4), (4, 5)]),
    ('x.dot(W) 1-D', lambda x, W: x.dot(W), np.matmul, [(4,), (4,)]),
    ('x @ ndarray', lambda x: x @ const(x).T, lambda x: x @ C.T, [(4, 3)]),
    ('ndarray @ x', lambda x: const(x) @ x, lambda x: C @ x, [(3, 4)]),
]))
def test_matmul_spellings(name, f, ref, shapes):
    check_op(name, f, ref, shapes)


# =============================================================================
# Errors a user can act on
# =============================================================================
def _raises(call, error, *parts):
    """call() raises `error` whose message contains `parts`, in this order."""
    with pytest.raises(error, match='.*'.join(re.escape(part) for part in parts)):
        call()


BAD_SHAPES = [  # x has shape (2, 3)
    ('F.reshape(x, (4, 2))',
     lambda x: F.reshape(x, (4, 2)), ['reshape', '(2, 3)', '(4, 2)']),
    ('x.reshape(5)',
     lambda x: x.reshape(5), ['reshape', '(2, 3)', '(5,)']),
    ('F.reshape(x, (-1, 4))',
     lambda x: F.reshape(x, (-1, 4)), ['reshape', '(2, 3)', '(-1, 4)']),
    ('F.reshape(x, (-1, -1))',
     lambda x: F.reshape(x, (-1, -1)), ['reshape', '(2, 3)', '(-1, -1)']),
    ('F.transpose(x, (0, 0))',
     lambda x: F.transpose(x, (0, 0)), ['transpose', '(0, 0)', '(2, 3)']),
    ('F.transpose(x, (0,))',
     lambda x: F.transpose(x, (0,)), ['transpose', '(0,)', '(2, 3)']),
    ('F.transpose(x, (0, 1, 2))',
     lambda x: F.transpose(x, (0, 1, 2)), ['transpose', '(0, 1, 2)', '(2, 3)']),
    ('F.transpose(x, (0, 5))',
     lambda x: F.transpose(x, (0, 5)), ['transpose', '5', '(2, 3)']),
    ('x.transpose(1, 1)',
     lambda x: x.transpose(1, 1), ['transpose', '(2, 3)']),
    ('F.sum(x, 2)',
     lambda x: F.sum(x, 2), ['sum', 'axis 2', '(2, 3)']),
    ('F.sum(x, -3)',
     lambda x: F.sum(x, -3), ['sum', 'axis -3', '(2, 3)']),
    ('F.sum(x, (0, 2))',
     lambda x: F.sum(x, (0, 2)), ['sum', 'axis 2', '(2, 3)']),
    ('x.sum(axis=3)',
     lambda x: x.sum(axis=3), ['sum', 'axis 3', '(2, 3)']),
    ('F.max(x, 2)',
     lambda x: F.max(x, 2), ['max', 'axis 2', '(2, 3)']),
    ('F.min(x, -3)',
     lambda x: F.min(x, -3), ['min', 'axis -3', '(2, 3)']),
    ('F.broadcast_to(x, (3, 2))',
     lambda x: F.broadcast_to(x, (3, 2)), ['broadcast_to', '(2, 3)', '(3, 2)']),
    ('F.broadcast_to(x, (3,))',
     lambda x: F.broadcast_to(x, (3,)), ['broadcast_to', '(2, 3)', '(3,)']),
    ('F.broadcast_to(x, (4, 3))',
     lambda x: F.broadcast_to(x, (4, 3)), ['broadcast_to', '(2, 3)', '(4, 3)']),
    ('F.sum_to(x, (4,))',
     lambda x: F.sum_to(x, (4,)), ['sum_to', '(2, 3)', '(4,)']),
    ('F.sum_to(x, (3, 2))',
     lambda x: F.sum_to(x, (3, 2)), ['sum_to', '(2, 3)', '(3, 2)']),
    ('F.sum_to(x, (4, 2, 3))',
     lambda x: F.sum_to(x, (4, 2, 3)), ['sum_to', '(2, 3)', '(4, 2, 3)']),
    ('F.matmul(x, np.zeros((4, 5)))',
     lambda x: F.matmul(x, np.zeros((4, 5))), ['matmul', '(2, 3)', '(4, 5)']),
    ('x @ Variable(np.zeros((2, 5)))',
     lambda x: x @ Variable(np.zeros((2, 5))), ['matmul', '(2, 3)', '(2, 5)']),
    ('F.matmul(np.zeros(4), x)',
     lambda x: F.matmul(np.zeros(4), x), ['matmul', '(4,)', '(2, 3)']),
    ('F.matmul(Variable(np.zeros(3)), np.zeros(4))',
     lambda x: F.matmul(Variable(np.zeros(3)), np.zeros(4)), ['matmul', '(3,)', '(4,)']),
    ('F.matmul(np.zeros((2, 3, 4)), np.zeros((3, 4, 5)))',
     lambda x: F.matmul(np.zeros((2, 3, 4)), np.zeros((3, 4, 5))),
     ['matmul', '(2, 3, 4)', '(3, 4, 5)']),
    ('F.expand_dims(x, 3)',
     lambda x: F.expand_dims(x, 3), ['expand_dims', '3', '(2, 3)']),
    ('F.matmul(Variable(np.array(1.0)), x)',
     lambda x: F.matmul(Variable(np.array(1.0)), x), ['matmul', '()', '(2, 3)']),
]


@pytest.mark.parametrize('name, call, parts', named(BAD_SHAPES))
def test_bad_shape_raises_value_error_naming_op_and_shapes(name, call, parts):
    x = Variable(np.zeros((2, 3)))
    _raises(lambda: call(x), ValueError, *parts)


@pytest.mark.parametrize('name, op', named([('add', operator.add), ('sub', operator.sub),
                                            ('mul', operator.mul), ('div', operator.truediv),
                                            ('pow', operator.pow)]))
@pytest.mark.parametrize('operands', ['var-var', 'var-ndarray', 'ndarray-var'])
def test_non_broadcastable_operands_name_op_and_both_shapes(name, op, operands):
    x = Variable(np.ones((2, 3)))
    y = np.ones(4)
    if operands == 'var-var':
        call = lambda: op(x, Variable(y))  # noqa: E731
    elif operands == 'var-ndarray':
        call = lambda: op(x, y)  # noqa: E731
    else:
        call = lambda: op(y, x)  # noqa: E731
        _raises(call, ValueError, name, '(4,)', '(2, 3)')  # shapes in the written order
        return
    _raises(call, ValueError, name, '(2, 3)', '(4,)')


@pytest.mark.parametrize('name, function', named([('add', F.add), ('sub', F.sub),
                                                  ('mul', F.mul), ('div', F.div),
                                                  ('pow', F.pow)]))
def test_non_broadcastable_functions_name_op_and_both_shapes(name, function):
    x = Variable(np.ones((2, 3)))
    y = Variable(np.ones((3, 2)))
    _raises(lambda: function(x, y), ValueError, name, '(2, 3)', '(3, 2)')


@pytest.mark.parametrize('call', [
    lambda x, i: F.get_item(x, i),
    lambda x, i: x[i],
    lambda x, i: x[i, 0],
    lambda x, i: x[0, i],
], ids=['F.get_item', 'x[v]', 'x[v, 0]', 'x[0, v]'])
def test_get_item_with_variable_index_raises_type_error(call):
    x = Variable(np.zeros((3, 3)))
    index = Variable(np.array([0, 1]))
    with pytest.raises(TypeError, match='get_item.*Variable'):
        call(x, index)


# =============================================================================
# dtype: a scalar operand never widens float32
# =============================================================================
SCALARS = [2.0, 2, np.float64(2.0), np.float32(2.0), np.int64(2), np.float16(2.0)]
SCALAR_OPS = [
    ('x + s', lambda x, s: x + s), ('s + x', lambda x, s: s + x),
    ('x - s', lambda x, s: x - s), ('s - x', lambda x, s: s - x),
    ('x * s', lambda x, s: x * s), ('s * x', lambda x, s: s * x),
    ('x / s', lambda x, s: x / s), ('s / x', lambda x, s: s / x),
    ('x ** s', lambda x, s: x ** s), ('s ** x', lambda x, s: s ** x),
]
F_SCALAR_OPS = [
    ('F.add(x, s)', lambda x, s: F.add(x, s), lambda a, s: a + s),
    ('F.add(s, x)', lambda x, s: F.add(s, x), lambda a, s: s + a),
    ('F.sub(x, s)', lambda x, s: F.sub(x, s), lambda a, s: a - s),
    ('F.sub(s, x)', lambda x, s: F.sub(s, x), lambda a, s: s - a),
    ('F.rsub(x, s)', lambda x, s: F.rsub(x, s), lambda a, s: s - a),
    ('F.mul(x, s)', lambda x, s: F.mul(x, s), lambda a, s: a * s),
    ('F.mul(s, x)', lambda x, s: F.mul(s, x), lambda a, s: s * a),
    ('F.div(x, s)', lambda x, s: F.div(x, s), lambda a, s: a / s),
    ('F.div(s, x)', lambda x, s: F.div(s, x), lambda a, s: s / a),
    ('F.rdiv(x, s)', lambda x, s: F.rdiv(x, s), lambda a, s: s / a),
    ('F.pow(x, s)', lambda x, s: F.pow(x, s), lambda a, s: a ** s),
    ('F.pow(s, x)', lambda x, s: F.pow(s, x), lambda a, s: s ** a),
]
DTYPE_OPS = [(name, f, f) for name, f in SCALAR_OPS] + F_SCALAR_OPS


@pytest.mark.parametrize('scalar', SCALARS, ids=lambda s: f'{type(s).__name__}')
@pytest.mark.parametrize('name, f, ref', DTYPE_OPS, ids=[d[0] for d in DTYPE_OPS])
def test_scalar_operand_keeps_float32(name, f, ref, scalar):
    data = np.array([[0.5, 1.0, 1.5], [2.0, 0.75, 1.25]])
    x = Variable(data.astype(np.float32))
    y = f(x, scalar)
    assert y.dtype == np.float32, f'{name} with {type(scalar).__name__} gave {y.dtype}'
    np.testing.assert_allclose(y.data, ref(data, float(scalar)), rtol=1e-6)
    y.backward()
    assert x.grad.dtype == np.float32, f'{name}: x.grad is {x.grad.dtype}'
    x64 = Variable(data)
    f(x64, float(scalar)).backward()
    np.testing.assert_allclose(x.grad.data, x64.grad.data, rtol=1e-6)


@pytest.mark.parametrize('name, f', named([
    ('-x', lambda x: -x), ('x + x', lambda x: x + x), ('x ** x', lambda x: x ** x),
    ('x / x', lambda x: x / x),
]))
def test_float32_variable_ops_stay_float32(name, f):
    x = Variable(np.array([0.5, 1.5], dtype=np.float32))
    y = f(x)
    assert y.dtype == np.float32
    y.backward()
    assert x.grad.dtype == np.float32


# An integer or bool ndarray operand behaves as in NumPy: no wrap-around, no float16 maths.
# name, f(x, c), derivative d f / d x as a function of (x, c as float64)
INT_CONSTANT_OPS = [
    ('x + c', lambda x, c: x + c, lambda x, c: np.ones_like(x)),
    ('c + x', lambda x, c: c + x, lambda x, c: np.ones_like(x)),
    ('x - c', lambda x, c: x - c, lambda x, c: np.ones_like(x)),
    ('c - x', lambda x, c: c - x, lambda x, c: -np.ones_like(x)),
    ('x * c', lambda x, c: x * c, lambda x, c: c + 0 * x),
    ('x / c', lambda x, c: x / c, lambda x, c: 1 / c + 0 * x),
    ('c / x', lambda x, c: c / x, lambda x, c: -c / x ** 2),
    ('x ** c', lambda x, c: x ** c, lambda x, c: c * x ** (c - 1)),
    ('c ** x', lambda x, c: c ** x, lambda x, c: c ** x * np.log(c)),
]


@pytest.mark.parametrize('dtype', [np.uint8, np.int8, np.int64, np.bool_],
                         ids=['uint8', 'int8', 'int64', 'bool'])
@pytest.mark.parametrize('name, f, df', INT_CONSTANT_OPS, ids=[o[0] for o in INT_CONSTANT_OPS])
def test_integer_ndarray_operand_follows_numpy(name, f, df, dtype):
    c = np.array([3, 4, 1]).astype(dtype)
    data = np.array([1.0, 2.0, 1.5])
    x = Variable(data.copy())
    y = f(x, c)
    np.testing.assert_allclose(y.data, f(data, c), rtol=1e-12, err_msg=f'{name} forward')
    y.backward()
    np.testing.assert_allclose(x.grad.data, df(data, c.astype(np.float64)), rtol=1e-12,
                               err_msg=f'{name} gradient')


# =============================================================================
# The float functions' dtype rule: bool and integer inputs are computed in float64
# =============================================================================
# name, f, values valid for every dtype below (positive: log and sqrt)
FLOAT_FUNCTIONS = [
    ('sin', F.sin), ('cos', F.cos), ('tanh', F.tanh), ('exp', F.exp), ('log', F.log),
    ('sqrt', F.sqrt), ('sigmoid', F.sigmoid), ('leaky_relu', F.leaky_relu),
    ('softmax', F.softmax), ('log_softmax', F.log_softmax),
    ('dropout (test mode)', lambda x: _in_test_mode(F.dropout, x)),
    ('sigmoid_simple', F.sigmoid_simple), ('softmax_simple', F.softmax_simple),
]
INT_DTYPES = [np.bool_, np.int8, np.uint8, np.int16, np.int32, np.int64]


def _in_test_mode(f, x):
    from zerograd import test_mode
    with test_mode():
        return f(x)


@pytest.mark.parametrize('dtype', INT_DTYPES, ids=lambda d: np.dtype(d).name)
@pytest.mark.parametrize('name, f', FLOAT_FUNCTIONS, ids=[n for n, _ in FLOAT_FUNCTIONS])
def test_float_function_computes_bool_and_int_in_float64(name, f, dtype):
    values = np.array([[1, 1, 1], [1, 1, 1]]) if dtype is np.bool_ else \
        np.array([[1, 2, 3], [4, 5, 6]])
    x = Variable(values.astype(dtype))
    y = f(x)
    x64 = Variable(values.astype(np.float64))
    y64 = f(x64)
    assert y.dtype == np.float64, f'{name} of {np.dtype(dtype).name} gave {y.dtype}'
    np.testing.assert_array_equal(y.data, y64.data)
    y.backward()
    y64.backward()
    assert x.grad.dtype == np.float64  # an integer input keeps a float gradient
    np.testing.assert_array_equal(x.grad.data, x64.grad.data)
    assert f(values.astype(dtype)).dtype == np.float64  # a plain array too


def test_exp_of_bool_is_float64_not_float16():
    assert F.exp(Variable(np.array([True, False]))).dtype == np.float64
    np.testing.assert_array_equal(F.exp(np.array([True, False])).data, [np.e, 1.0])


def test_book_step37_sin_of_an_int_array_gives_the_books_numbers():
    x = Variable(np.array([[1, 2, 3], [4, 5, 6]]))
    y = F.sin(x)
    np.testing.assert_array_equal(y.data, np.sin(np.array([[1, 2, 3], [4, 5, 6]])))
    assert y.dtype == np.float64


@pytest.mark.parametrize('dtype', [np.float16, np.float32, np.float64, np.complex64])
def test_float_functions_keep_a_float_or_complex_dtype(dtype):
    x = np.array([0.5, 1.5], dtype=dtype)
    for f in (F.sin, F.cos, F.tanh, F.exp, F.log, F.sqrt, F.sigmoid):
        assert f(x).dtype == dtype


@pytest.mark.parametrize('name, call', [
    ('softmax_cross_entropy', lambda x: F.softmax_cross_entropy(x, np.array([0, 1]))),
    ('sigmoid_cross_entropy', lambda x: F.sigmoid_cross_entropy(x, np.array([[0, 1], [1, 0]]))),
    ('binary_cross_entropy', lambda x: F.binary_cross_entropy(x - 1, np.array([[0, 1], [1, 0]]))),
    ('batch_norm', lambda x: F.batch_norm(x, np.ones(2), np.zeros(2), np.zeros(2), np.ones(2))),
    ('lstm_cell', lambda x: F.lstm_cell(x, x, x, x, x)[1]),
])
def test_losses_and_normalisations_compute_integer_input_in_float64(name, call):
    values = np.array([[1, 2], [2, 1]])
    x, x64 = Variable(values), Variable(values.astype(np.float64))
    y, y64 = call(x), call(x64)
    assert y.dtype == np.float64
    np.testing.assert_array_equal(y.data, y64.data)
    y.backward()
    y64.backward()
    np.testing.assert_array_equal(x.grad.data, x64.grad.data)


@pytest.mark.parametrize('dtype', ['U3', object, 'S2', 'V4', 'M8[D]'])
def test_cast_refuses_non_numeric_dtypes(dtype):
    with pytest.raises(TypeError, match=r'cast: dtype must be numeric .*got'):
        F.cast(np.array([1.0]), dtype)


def test_cast_to_numeric_dtypes_still_works():
    assert F.cast(np.array([1.5]), np.int32).dtype == np.int32
    assert F.cast(np.array([1.5]), 'complex64').dtype == np.complex64
    assert F.cast(np.array([1.5]), bool).dtype == np.bool_
