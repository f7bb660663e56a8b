"""``zerograd.functions`` as a whole: the op registry (tests/ops.py) covers every public
function, float32 stays float32 through double backward, the one dtype rule of the float
functions, and the error messages for bad shapes and bad input across the package.

The per-op checks (``check_op`` on every registry case) are in the test file of each
topic: test_functions_math.py, _array, _reduction, _linalg, _activation, _loss,
_normalization, _conv, _pooling and _rnn.
"""
import inspect
import os
import re

import numpy as np
import pytest

import ops
import zerograd
import zerograd.functions as F
from op_references import make_array
from zerograd import Variable


# =============================================================================
# The registry covers every public function
# =============================================================================


def test_every_public_function_has_a_registry_entry():
    public = {name for name, value in vars(F).items()
              if inspect.isfunction(value) and not name.startswith('_')
              and value.__module__.startswith('zerograd.')}
    listed = set(ops.OPS) | set(ops.NOT_DIFFERENTIABLE) | set(ops.ALIASES)
    assert public - listed == set(), 'add an entry to tests/ops.py'
    assert set(ops.NOT_DIFFERENTIABLE) & set(ops.OPS) == set()
    for alias, name in ops.ALIASES.items():
        assert getattr(F, alias) is getattr(F, name)


def test_every_entry_names_a_function_references_and_cases():
    for name, entry in ops.OPS.items():
        assert callable(getattr(F, name)), name
        assert callable(entry.numpy), f'{name}: no NumPy reference'
        assert entry.topic in ops.TOPICS, name
        assert entry.cases, f'{name}: no case'
        for case in entry.cases:
            assert case.kinds and case.kinds <= ops.ALL, case.id
            assert case.broadcast is None or len(case.broadcast) == len(case.shapes), case.id


@pytest.mark.parametrize('topic', ops.TOPICS)
def test_each_topic_has_its_test_file_running_its_cases(topic):
    path = os.path.join(os.path.dirname(__file__), f'test_functions_{topic}.py')
    with open(path, encoding='utf-8') as file:
        assert f"ops.cases(ops.GRAD, '{topic}')" in file.read()
    assert ops.cases(ops.GRAD, topic)


def test_an_entry_without_a_case_of_its_own_is_caught():
    # The coverage test above would fail for a public function missing from the registry.
    public = {name for name, value in vars(F).items() if inspect.isfunction(value)}
    assert 'tanh' in public and 'tanh' in ops.OPS
    listed = (set(ops.OPS) - {'tanh'}) | set(ops.NOT_DIFFERENTIABLE) | set(ops.ALIASES)
    assert 'tanh' in public - listed


# =============================================================================
# float32 stays float32 through double backward
# =============================================================================


def _functions(y):
    """Every Function in the graph behind y."""
    todo, seen = [y.creator], set()
    while todo:
        func = todo.pop()
        if func is not None and func not in seen:
            seen.add(func)
            todo.extend(x.creator for x in func.inputs)
    return seen


@pytest.mark.parametrize('case', ops.cases(ops.GRAD, float32_double=True), ids=ops.case_id)
def test_float32_stays_float32_through_double_backward(case):
    rng = np.random.default_rng(0)
    name, f = case.id, case.zerograd()
    xs = [Variable(make_array(shape, case.domain, rng).astype(np.float32))
          for shape in case.shapes]
    y = f(*xs)
    assert y.dtype == np.float32, f'{name}: output is {y.dtype}'
    # Each Function's own backward keeps its inputs' dtypes (whatever the engine does after).
    for func in _functions(y):
        # shape and dtype: an intermediate's values may be released (release.release_unread)
        gys = [Variable(np.ones(out().shape, out().dtype)) for out in func.outputs]
        with zerograd.no_grad():
            gxs = func.backward(*gys)
        for x, gx in zip(func.inputs, gxs if isinstance(gxs, tuple) else (gxs,)):
            assert gx is None or gx.dtype == x.dtype, \
                f'{name}: {type(func).__name__}.backward gave {gx.dtype} for a {x.dtype} input'
    y.backward(create_graph=True)
    gxs = [x.grad for x in xs]
    for i, gx in enumerate(gxs):
        assert gx.dtype == np.float32, f'{name}: gradient of input {i} is {gx.dtype}'
        xs[i].cleargrad()
    F.sum(gxs[0] * gxs[0]).backward()
    for i, x in enumerate(xs):
        assert x.grad is None or x.grad.dtype == np.float32, \
            f'{name}: second derivative of input {i} is {x.grad.dtype}'


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


# =============================================================================
# Errors a user can act on
# =============================================================================

def named(cases):
    """pytest params whose test ids are the cases' first field (their name)."""
    return [pytest.param(*case, id=case[0]) for case in cases]


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


X = Variable(np.zeros((2, 3)))


X234 = Variable(np.zeros((2, 3, 4)))


C3 = np.ones(3)


# id, call, exception, message pattern
BAD_INPUT = [
    ('softmax_cross_entropy float labels',
     lambda: F.softmax_cross_entropy(X, np.array([0.0, 1.0])), TypeError,
     r'softmax_cross_entropy: t must hold integer class ids.*float64'),
    ('softmax_cross_entropy labels (N, 1)',
     lambda: F.softmax_cross_entropy(X, np.array([[0], [1]])), ValueError,
     r'softmax_cross_entropy: .*\(N,\).*\(2, 1\)'),
    ('softmax_cross_entropy negative label',
     lambda: F.softmax_cross_entropy(X, np.array([-1, 2])), ValueError,
     r'softmax_cross_entropy: class ids must be in \[0, 3\), got values from -1 to 2'),
    ('softmax_cross_entropy label >= C',
     lambda: F.softmax_cross_entropy(X, np.array([0, 3])), ValueError,
     r'softmax_cross_entropy: class ids must be in \[0, 3\), got values from 0 to 3'),
    ('softmax_cross_entropy 3-D x',
     lambda: F.softmax_cross_entropy(X234, np.array([0, 1])), ValueError,
     r'softmax_cross_entropy: x must be .*\(N, C\), got \(2, 3, 4\)'),
    ('softmax_cross_entropy_simple float labels',
     lambda: F.softmax_cross_entropy_simple(X, np.array([0.0, 1.0])), TypeError,
     r'softmax_cross_entropy_simple: t must hold integer class ids'),
    ('softmax_cross_entropy_simple labels (N, 1)',
     lambda: F.softmax_cross_entropy_simple(X, np.array([[0], [1]])), ValueError,
     r'softmax_cross_entropy_simple: .*\(2, 1\)'),
    ('softmax_cross_entropy_simple label >= C',
     lambda: F.softmax_cross_entropy_simple(X, np.array([0, 5])), ValueError,
     r'softmax_cross_entropy_simple: class ids must be in \[0, 3\)'),
    ('mean_squared_error (N,) vs (N, 1)',
     lambda: F.mean_squared_error(np.zeros(3), np.zeros((3, 1))), ValueError,
     r'mean_squared_error: .*\(3,\) and \(3, 1\)'),
    ('mean_squared_error_simple (N, 1) vs (N,)',
     lambda: F.mean_squared_error_simple(np.zeros((3, 1)), np.zeros(3)), ValueError,
     r'mean_squared_error_simple: .*\(3, 1\) and \(3,\)'),
    ('linear features', lambda: F.linear(np.zeros((2, 4)), np.zeros((3, 5))), ValueError,
     re.escape('linear: input has 4 features but W expects 3 (x.shape=(2, 4), '
               'W.shape=(3, 5))')),
    ('linear b shape', lambda: F.linear(X, np.zeros((3, 5)), np.zeros(4)), ValueError,
     r'linear: b must have shape \(5,\), got \(4,\)'),
    ('linear_simple features', lambda: F.linear_simple(Variable(np.zeros((2, 4))),
                                                       np.zeros((3, 5))), ValueError,
     re.escape('linear_simple: input has 4 features but W expects 3 (x.shape=(2, 4), '
               'W.shape=(3, 5))')),
    ('concat shapes', lambda: F.concat([X, np.zeros((2, 4))], axis=0), ValueError,
     r'concat: .*\(2, 3\).*\(2, 4\)'),
    ('concat ndim', lambda: F.concat([X, X234], axis=1), ValueError,
     r'concat: .*\(2, 3\).*\(2, 3, 4\)'),
    ('concat axis', lambda: F.concat([X, X], axis=2), ValueError, r'concat: axis 2'),
    ('concat empty', lambda: F.concat([]), ValueError, r'concat'),
    ('stack shapes', lambda: F.stack([X, np.zeros((3, 2))]), ValueError,
     r'stack: .*\(2, 3\).*\(3, 2\)'),
    ('stack axis', lambda: F.stack([X, X], axis=3), ValueError, r'stack: axis 3'),
    ('dropout ratio 1', lambda: F.dropout(X, 1.0), ValueError, r'dropout: .*ratio.*1\.0'),
    ('dropout ratio < 0', lambda: F.dropout(X, -0.1), ValueError, r'dropout: .*ratio.*-0\.1'),
    ('dropout ratio > 1', lambda: F.dropout(X, 1.5), ValueError, r'dropout: .*ratio.*1\.5'),
    ('batch_norm gamma shape', lambda: F.batch_norm(X, np.ones(4), C3, C3, C3), ValueError,
     r'batch_norm: gamma must have shape \(3,\).*\(2, 3\).*\(4,\)'),
    ('batch_norm var shape', lambda: F.batch_norm(X, C3, C3, C3, np.ones(2)), ValueError,
     r'batch_norm: var must have shape \(3,\).*\(2,\)'),
    ('batch_norm 3-D x', lambda: F.batch_norm(X234, C3, C3, C3, C3), ValueError,
     r'batch_norm: x must be \(N, C\) or \(N, C, H, W\), got \(2, 3, 4\)'),
    ('embed_id float ids', lambda: F.embed_id(np.array([0.0, 1.0]), np.zeros((3, 2))),
     TypeError, r'embed_id: x must be an integer ndarray or Variable of ids, got an array '
     r'of float64'),
    ('clip x_min > x_max', lambda: F.clip(X, 1.0, -1.0), ValueError,
     r'clip: x_min 1\.0 .*x_max -1\.0'),
]


@pytest.mark.parametrize('name, call, error, pattern', BAD_INPUT, ids=[b[0] for b in BAD_INPUT])
def test_bad_input_raises_naming_the_op_and_values(name, call, error, pattern):
    with pytest.raises(error, match=pattern):
        call()
