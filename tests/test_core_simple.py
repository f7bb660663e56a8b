"""zerograd.core_simple: the book's steps 1-32 engine (grads are ndarrays), its fixes, and
the book's steps 28 and 29 run unchanged but for the package name."""
import os
import pathlib
import re
import subprocess
import sys
import weakref

import numpy as np
import pytest

import zerograd
import zerograd.core_simple as simple
from zerograd.core_simple import Function, Variable

ROOT = pathlib.Path(__file__).resolve().parent.parent


# -- the package switch and the names -------------------------------------------------------
def test_the_package_has_the_books_switch_off():
    assert zerograd.is_simple_core is False


def test_importing_zerograd_does_not_import_core_simple():
    code = 'import sys, zerograd; print("zerograd.core_simple" in sys.modules)'
    out = subprocess.run([sys.executable, '-c', code], cwd=ROOT, capture_output=True,
                         text=True, timeout=120, check=True).stdout
    assert out.strip() == 'False'


def test_core_simple_has_the_books_names():
    names = ['Config', 'using_config', 'no_grad', 'Variable', 'Function', 'as_array',
             'as_variable', 'add', 'mul', 'neg', 'sub', 'rsub', 'div', 'rdiv', 'pow',
             'setup_variable', 'square', 'exp', 'numerical_diff', 'Add', 'Mul', 'Neg',
             'Sub', 'Div', 'Pow', 'Square', 'Exp']
    assert [n for n in names if not hasattr(simple, n)] == []


def test_setup_variable_binds_only_core_simple_operators():
    simple.setup_variable()
    simple.setup_variable()  # twice, as a script may: nothing changes
    assert Variable.__add__ is simple.add and Variable.__rtruediv__ is simple.rdiv
    assert zerograd.Variable.__add__ is zerograd.arithmetic.add
    assert zerograd.Variable is zerograd.core.Variable is not Variable


# -- steps 1-19 ------------------------------------------------------------------------------
def test_data_must_be_an_ndarray_with_a_message_that_says_how():
    with pytest.raises(TypeError, match=r"Variable: data must be an ndarray or None, got "
                                        r"<class 'float'>; wrap it with np\.array\(1\.0\)"):
        Variable(1.0)
    assert Variable(None).data is None and repr(Variable(None)) == 'variable(None)'


def test_square_exp_square_backward_and_numerical_diff():
    x = Variable(np.array(0.5))
    y = simple.square(simple.exp(simple.square(x)))
    y.backward()
    expected = 4 * 0.5 * np.exp(2 * 0.5 ** 2)  # d/dx e^(2x^2) = 4x e^(2x^2)
    assert type(x.grad) is np.ndarray and x.grad.shape == ()
    np.testing.assert_allclose(x.grad, expected, rtol=1e-15)

    def f(v):
        return simple.square(simple.exp(simple.square(v)))
    np.testing.assert_allclose(simple.numerical_diff(f, Variable(np.array(0.5))), expected,
                               rtol=1e-7)
    np.testing.assert_allclose(simple.numerical_diff(simple.square, Variable(np.array(2.0))),
                               4.0, rtol=1e-10)


def test_grads_are_arrays_even_for_0d_sums():
    x = Variable(np.array(3.0))
    y = x * x + x  # x's grad is a sum of 0-d arrays, which NumPy returns as a scalar
    y.backward()
    assert type(x.grad) is np.ndarray
    assert float(x.grad) == 7.0


def test_a_variable_used_twice_adds_and_cleargrad_resets():
    x = Variable(np.array(3.0))
    (x + x).backward()
    assert float(x.grad) == 2.0
    ((x + x) + x).backward()  # no cleargrad: added to the 2
    assert float(x.grad) == 5.0
    x.cleargrad()
    ((x + x) + x).backward()
    assert float(x.grad) == 3.0


def test_accumulation_never_changes_an_array_another_variable_holds():
    a = Variable(np.array([1.0, 2.0]))
    b = Variable(np.array([3.0, 4.0]))
    s = a + b  # Add's backward hands the same array to a and b
    y = s + a
    y.backward(retain_grad=True)
    np.testing.assert_array_equal(a.grad, [2.0, 2.0])
    np.testing.assert_array_equal(b.grad, [1.0, 1.0])
    np.testing.assert_array_equal(s.grad, [1.0, 1.0])


def test_generations_give_the_diamond_its_full_gradient():
    x = Variable(np.array(2.0))
    a = simple.square(x)
    y = simple.square(a) + simple.square(a)  # 2 x^4: dy/dx = 8 x^3
    y.backward()
    assert float(y.data) == 32.0 and float(x.grad) == 64.0
    assert (x.generation, a.generation, y.generation) == (0, 1, 3)


class Record(Function):
    """y = x, noting in ``log`` when its backward runs."""

    def __init__(self, name, log):
        self.name, self.log = name, log

    def forward(self, x):
        return x.copy()

    def backward(self, gy):
        self.log.append(self.name)
        return gy


def test_backward_runs_the_newest_generation_first_and_ties_in_the_order_found():
    # Three functions of generation 0 (their input x is a leaf) are found in the order c
    # (an input of the last add), then a and b (of the first add, reached later): a heap
    # keyed on (-generation, order found) runs them so. The book's sorted list pops its
    # last element first (b, a, c).
    log = []
    x = Variable(np.array(1.0))
    a, b, c = (Record(name, log)(x) for name in 'abc')
    y = Record('y', log)(Record('s', log)(a + b) + c)
    y.backward()
    assert log == ['y', 's', 'c', 'a', 'b']
    assert float(x.grad) == 3.0


def test_a_deep_chain_needs_no_recursion():
    x = Variable(np.array(1.0))
    y = x
    for _ in range(10000):
        y = y + 1.0
    y.backward()
    assert float(y.data) == 10001.0 and float(x.grad) == 1.0


def test_outputs_are_weak_references_and_a_dead_output_gets_no_gradient():
    class DivMod(Function):
        def forward(self, x0, x1):
            return x0 // x1, x0 % x1

        def backward(self, gq, gr):
            assert gr is None  # r was dropped before backward
            return gq * 0.0, gq * 0.0

    x0, x1 = Variable(np.array(7.0)), Variable(np.array(2.0))
    q, r = DivMod()(x0, x1)
    f = q.creator
    assert isinstance(f.outputs[1], weakref.ref) and f.outputs[1]() is r
    del r
    assert f.outputs[1]() is None
    (q * 3.0).backward()
    assert float(x0.grad) == 0.0 and float(x1.grad) == 0.0


def test_backward_with_the_wrong_number_of_gradients_names_the_function():
    class Broken(Function):
        def forward(self, x0, x1):
            return x0 + x1

        def backward(self, gy):
            return gy

    with pytest.raises(ValueError, match=r'Broken\.backward returned 1 gradients for 2 inputs'):
        Broken()(Variable(np.array(1.0)), Variable(np.array(2.0))).backward()


def test_retain_grad_and_no_grad():
    x0, x1 = Variable(np.array(1.0)), Variable(np.array(1.0))
    t = x0 + x1
    y = x0 + t
    y.backward()
    assert y.grad is None and t.grad is None
    assert float(x0.grad) == 2.0 and float(x1.grad) == 1.0
    y = x0 + (x0 + x1)
    y.backward(retain_grad=True)
    assert float(y.grad) == 1.0
    with simple.no_grad():
        z = simple.square(x0)
    assert z.creator is None and simple.Config.enable_backprop is True
    with simple.using_config('enable_backprop', False):
        assert simple.Config.enable_backprop is False
    assert simple.Config.enable_backprop is True


def test_variable_looks_like_its_array():
    x = Variable(np.array([[1.0, 2.0, 3.0], [4.0, 5.0, 6.0]]), name='x')
    assert (x.name, x.shape, x.ndim, x.size, x.dtype, len(x)) == \
        ('x', (2, 3), 2, 6, np.dtype('float64'), 2)
    assert repr(x) == 'variable([[1. 2. 3.]\n          [4. 5. 6.]])'


# -- steps 20-22: the operators ----------------------------------------------------------------
def test_operators_with_scalars_and_arrays_on_either_side():
    x = Variable(np.array(2.0))
    values = [-x, 5.0 - x, x - 5.0, x / 4.0, 1.0 / x, x ** 3, 3.0 * x + 1, x * 3 + 1]
    assert [float(v.data) for v in values] == [-2.0, 3.0, -3.0, 0.5, 0.5, 8.0, 7.0, 7.0]
    y = np.array([1.0, 2.0]) + x  # the ndarray defers to Variable.__radd__
    assert type(y) is Variable
    np.testing.assert_array_equal(y.data, [3.0, 4.0])
    y = x ** 3 - 4.0 / x  # dy/dx = 3 x^2 + 4 / x^2 = 13
    y.backward()
    assert float(x.grad) == 13.0


@pytest.mark.parametrize('op', ['x + 1', '1 + x', 'x - 0.5', '0.5 - x', 'x * 0.1', '0.1 * x',
                                'x / 3', '3 / x', 'x ** 2', 'x ** 0.5', '-x'])
def test_a_python_scalar_keeps_float32(op):
    x = Variable(np.array([1.0, 2.0], dtype=np.float32))
    y = eval(op)
    assert y.dtype == np.float32
    y.backward()
    assert x.grad.dtype == np.float32


def test_a_python_float_with_an_int_variable_computes_in_float64():
    x = Variable(np.array([1, 2], dtype=np.int32))
    assert (x * 0.5).dtype == np.float64
    assert (x + 1).dtype == np.int32


def test_broadcast_operands_get_gradients_of_their_own_shape():
    a = Variable(np.array([1.0, 2.0, 3.0]))
    b = Variable(np.arange(6.0).reshape(2, 3))
    c = Variable(np.array([[10.0], [20.0]]))
    y = (a * b - c) / (a + c)
    y.backward()
    assert a.grad.shape == (3,) and b.grad.shape == (2, 3) and c.grad.shape == (2, 1)
    A, B, Cc = a.data, b.data, c.data  # y = (A B - C) / (A + C), by hand
    np.testing.assert_allclose(b.grad, np.broadcast_to(A / (A + Cc), (2, 3)), rtol=1e-15)
    np.testing.assert_allclose(a.grad, (B / (A + Cc) - (A * B - Cc) / (A + Cc) ** 2).sum(0),
                               rtol=1e-14)
    np.testing.assert_allclose(c.grad, (-1 / (A + Cc) - (A * B - Cc) / (A + Cc) ** 2)
                               .sum(1, keepdims=True), rtol=1e-14)


def goldstein(x, y):
    return (1 + (x + y + 1) ** 2 * (19 - 14 * x + 3 * x ** 2 - 14 * y + 6 * x * y + 3 * y ** 2)) * \
        (30 + (2 * x - 3 * y) ** 2 * (18 - 32 * x + 12 * x ** 2 + 48 * y - 36 * x * y + 27 * y ** 2))


@pytest.mark.parametrize('func, expected', [  # the book's step 24 prints these
    (lambda x, y: x ** 2 + y ** 2, (2.0, 2.0)),
    (lambda x, y: 0.26 * (x ** 2 + y ** 2) - 0.48 * x * y,
     (0.040000000000000036, 0.040000000000000036)),
    (goldstein, (-5376.0, 8064.0)),
], ids=['sphere', 'matyas', 'goldstein'])
def test_step24_functions_differentiate_to_the_books_numbers(func, expected):
    x, y = Variable(np.array(1.0)), Variable(np.array(1.0))
    func(x, y).backward()
    assert (float(x.grad), float(y.grad)) == expected


def test_a_variable_exponent_is_refused_with_a_message():
    with pytest.raises(TypeError, match=r'pow: the exponent must be a constant'):
        Variable(np.array(2.0)) ** Variable(np.array(3.0))


# -- the book's steps 28 and 29, with "dezero" renamed "zerograd" ---------------------------
# Written here in the shape of the book's step scripts: the same opening (a script run from
# steps/ puts the package's folder on sys.path, then picks the simple core through
# is_simple_core and setup_variable), the same computation and the same print calls, so
# they print what the book prints.
_SIMPLE_CORE_OPENING = '''\
if '__file__' in globals():
    import os, sys
    sys.path.append(os.path.join(os.path.dirname(__file__), '..'))
import numpy as np
import zerograd
from zerograd import Variable
if not zerograd.is_simple_core:
    from zerograd.core_simple import Variable
    from zerograd.core_simple import setup_variable
    setup_variable()
'''

STEP28 = _SIMPLE_CORE_OPENING + '''
def rosenbrock(x0, x1):
    return 100 * (x1 - x0 ** 2) ** 2 + (x0 - 1) ** 2


x0, x1 = Variable(np.array(0.0)), Variable(np.array(2.0))
for _ in range(1000):
    print(x0, x1)
    y = rosenbrock(x0, x1)
    x0.cleargrad()
    x1.cleargrad()
    y.backward()
    x0.data -= 0.001 * x0.grad   # grads are ndarrays in the simple core
    x1.data -= 0.001 * x1.grad
'''

STEP29 = _SIMPLE_CORE_OPENING + '''
def f(x):
    return x ** 4 - 2 * x ** 2


def f_second_derivative(x):   # worked out by hand, as in step 29
    return 12 * x ** 2 - 4


x = Variable(np.array(2.0))
for i in range(10):
    print(i, x)
    y = f(x)
    x.cleargrad()
    y.backward()
    x.data -= x.grad / f_second_derivative(x.data)
'''


def run_script(tmp_path, name, text):
    """Run a step script as the book does (python steps/stepNN.py), zerograd importable."""
    script = tmp_path / 'steps' / name
    script.parent.mkdir()
    script.write_text(text)
    env = dict(os.environ, PYTHONPATH=os.pathsep.join(
        [str(ROOT)] + [p for p in os.environ.get('PYTHONPATH', '').split(os.pathsep) if p]))
    result = subprocess.run([sys.executable, str(script)], cwd=tmp_path, env=env,
                            capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr
    return result.stdout.splitlines()


def test_step28_gradient_descent_on_rosenbrock_prints_the_books_numbers(tmp_path):
    lines = run_script(tmp_path, 'step28.py', STEP28)
    assert len(lines) == 1000
    assert lines[:2] == ['variable(0.0) variable(2.0)', 'variable(0.002) variable(1.6)']
    # the same descent with the gradient worked out on paper, in Python floats
    x0, x1 = 0.0, 2.0
    for i, line in enumerate(lines):
        printed = [float(v) for v in re.fullmatch(r'variable\((.*)\) variable\((.*)\)',
                                                  line).groups()]
        np.testing.assert_allclose(printed, [x0, x1], rtol=1e-13, err_msg=f'iteration {i}')
        g0 = -400 * x0 * (x1 - x0 ** 2) + 2 * (x0 - 1)
        g1 = 200 * (x1 - x0 ** 2)
        x0, x1 = x0 - 0.001 * g0, x1 - 0.001 * g1


def test_step29_newtons_method_prints_the_books_numbers(tmp_path):
    lines = run_script(tmp_path, 'step29.py', STEP29)
    assert lines == [  # as printed in the book
        '0 variable(2.0)',
        '1 variable(1.4545454545454546)',
        '2 variable(1.1510467893775467)',
        '3 variable(1.0253259289766978)',
        '4 variable(1.0009084519430513)',
        '5 variable(1.0000012353089454)',
        '6 variable(1.000000000002289)',
        '7 variable(1.0)',
        '8 variable(1.0)',
        '9 variable(1.0)',
    ]
