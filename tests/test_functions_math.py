"""The elementwise math of ``zerograd.functions``: arithmetic (operators and F.add etc.,
every operand form), sin, cos, tanh, exp, log, square, sqrt, abs, clip.

Every case of the registry's 'math' topic goes through ``check_op``. Then the dtype rules
of scalar and integer operands and the errors for operands that do not broadcast.
"""
import operator
import re

import numpy as np
import pytest

import ops
import zerograd.functions as F
from zerograd import Variable


@pytest.mark.parametrize('case', ops.cases(ops.GRAD, 'math'), ids=ops.case_id)
def test_check_op(case):
    """The registry's math cases (ops.py) through zerograd.testing.check_op."""
    ops.check_case(case)


def test_ndarray_operand_on_the_left_gives_a_variable():
    x = Variable(np.array([1.0, 2.0]))
    a = np.array([3.0, 4.0])
    for y, expected in [(a + x, [4.0, 6.0]), (a - x, [2.0, 2.0]), (a * x, [3.0, 8.0]),
                        (a / x, [3.0, 2.0]), (a ** x, [3.0, 16.0])]:
        assert isinstance(y, Variable)
        np.testing.assert_allclose(y.data, expected)


def named(cases):
    """pytest params whose test ids are the cases' first field (their name)."""
    return [pytest.param(*case, id=case[0]) for case in cases]


def _raises(call, error, *parts):
    """call() raises `error` whose message contains `parts`, in this order."""
    with pytest.raises(error, match='.*'.join(re.escape(part) for part in parts)):
        call()


# =============================================================================
# Errors: operands that do not broadcast
# =============================================================================


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


@pytest.mark.parametrize('dtype', [np.float16, np.float32, np.float64])
def test_python_float_constants_are_reused_and_exact(dtype):
    # _as_constant keeps the 0-d array of a Python float per dtype (a chain's x * 1.0001
    # makes it once), read-only; 0.0 and -0.0 (equal keys) and NaN (never equal) are
    # made anew each time, so their signs and values are always the ones written
    from zerograd import arithmetic
    x = Variable(np.array([1.0, -2.0, 0.0], dtype=dtype))
    first, again = (x * 1.0001).creator.c, (x * 1.0001).creator.c
    assert first is again and first.dtype == dtype and not first.flags.writeable
    with pytest.raises(ValueError):  # shared by every such op: it cannot be made writeable
        first.flags.writeable = True
    if dtype == np.float16:  # 1e10 overflows float16: made anew, its warning every time
        with np.errstate(over='ignore', invalid='ignore'):  # inf * 0 too
            assert (x * 1e10).creator.c is not (x * 1e10).creator.c
    for c in (0.0, -0.0):
        for op in (lambda v: v * c, lambda v: v + c, lambda v: c - v, lambda v: c * v):
            y = op(x)
            expected = op(x.data.copy())
            np.testing.assert_array_equal(y.data, expected)
            assert np.array_equal(np.signbit(y.data), np.signbit(expected))
    y = x * float('nan')
    assert np.isnan(y.data).all() and y.dtype == dtype
    # a schedule's ever-changing constants do not grow the store without bound
    for k in range(1000):
        x * (1.0 + k / 1000)
    assert len(arithmetic._CONSTANTS) <= 256
    # the same float with another dtype is another array, of that dtype
    other = np.float64 if dtype != np.float64 else np.float32
    assert (Variable(x.data.astype(other)) * 1.0001).creator.c.dtype == other
