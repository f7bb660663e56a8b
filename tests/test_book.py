"""The book's printed results for steps 1-36, reproduced exactly."""
import math

import numpy as np
import pytest

import zerograd.functions as F
from zerograd import Variable, utils


def newton_demo():
    """Newton's method on x^4 - 2x^2 from x = 2, the second derivative by double backprop
    (step 33). Returns the 8 iterates."""
    x = Variable(np.array(2.0))
    iterates = []
    for _ in range(8):
        iterates.append(float(x.data))
        y = x ** 4 - 2 * x ** 2
        x.cleargrad()
        y.backward(create_graph=True)
        gx = x.grad
        x.cleargrad()
        gx.backward()
        gx2 = x.grad
        x.data = x.data - gx.data / gx2.data
    return iterates


def tanh_graph(order):
    """The ``order``-th derivative of tanh at x = 1, by repeated backward (step 35)."""
    x = Variable(np.array(1.0), name='x')
    y = F.tanh(x)
    y.name = 'y'
    y.backward(create_graph=True)
    for _ in range(order - 1):
        gx = x.grad
        x.cleargrad()
        gx.backward(create_graph=True)
    gx = x.grad
    gx.name = f'gx{order}'
    return gx


def sphere(x, y):
    return x ** 2 + y ** 2


def matyas(x, y):
    return 0.26 * (x ** 2 + y ** 2) - 0.48 * x * y


def goldstein(x, y):
    return (1 + (x + y + 1) ** 2 * (19 - 14 * x + 3 * x ** 2 - 14 * y + 6 * x * y + 3 * y ** 2)) * \
        (30 + (2 * x - 3 * y) ** 2 * (18 - 32 * x + 12 * x ** 2 + 48 * y - 36 * x * y + 27 * y ** 2))


@pytest.mark.parametrize('func, point, expected', [
    (sphere, (1.0, 1.0), (2.0, 2.0)),
    (matyas, (1.0, 1.0), (0.040000000000000036, 0.040000000000000036)),
    (goldstein, (1.0, 1.0), (-5376.0, 8064.0)),
])
def test_step24_optimisation_benchmarks(func, point, expected):
    x = Variable(np.array(point[0]))
    y = Variable(np.array(point[1]))
    z = func(x, y)
    z.backward()
    assert x.grad.data.item() == expected[0]
    assert y.grad.data.item() == expected[1]


def my_sin(x, threshold=1e-4):
    y = 0
    for i in range(100000):
        c = (-1) ** i / math.factorial(2 * i + 1)
        t = c * x ** (2 * i + 1)
        y = y + t
        if abs(t.data) < threshold:
            break
    return y


def test_step27_taylor_sin():
    x = Variable(np.array(np.pi / 4))
    y = my_sin(x)
    y.backward()
    assert y.data.item() == 0.7071064695751781
    assert x.grad.data.item() == 0.7071032148228457


def test_step27_sin_gradient():
    x = Variable(np.array(np.pi / 4))
    y = F.sin(x)
    y.backward()
    # The book prints 0.7071067811865476; NumPy's sin kernels differ by one ulp across
    # versions and CPUs, so the value is checked to 1 ulp and the gradient exactly.
    assert abs(y.data.item() - 0.7071067811865476) <= np.spacing(0.7071067811865476)
    if np.lib.NumpyVersion(np.__version__) >= '2.0.0':
        assert x.grad.data.item() == 0.7071067811865476
    else:  # NumPy 1.x's cos is one ulp off here
        assert abs(x.grad.data.item() - 0.7071067811865476) <= np.spacing(0.7071067811865476)


def test_step28_rosenbrock_gradient_descent():
    x0 = Variable(np.array(0.0))
    x1 = Variable(np.array(2.0))
    for _ in range(50000):
        y = 100 * (x1 - x0 ** 2) ** 2 + (1 - x0) ** 2
        x0.cleargrad()
        x1.cleargrad()
        y.backward()
        x0.data -= 0.001 * x0.grad.data
        x1.data -= 0.001 * x1.grad.data
    assert abs(x0.data - 1.0) < 1e-4 and abs(x1.data - 1.0) < 1e-4


def test_step33_newton_with_second_derivative():
    assert newton_demo() == [2.0, 1.4545454545454546, 1.1510467893775467, 1.0253259289766978,
                             1.0009084519430513, 1.0000012353089454, 1.000000000002289, 1.0]


def test_step33_first_and_second_derivative():
    x = Variable(np.array(2.0))
    y = x ** 4 - 2 * x ** 2
    y.backward(create_graph=True)
    assert x.grad.data.item() == 24.0
    gx = x.grad
    x.cleargrad()
    gx.backward()
    assert x.grad.data.item() == 44.0


def test_step36_double_backprop():
    x = Variable(np.array(2.0))
    y = x ** 2
    y.backward(create_graph=True)
    gx = x.grad
    x.cleargrad()
    z = gx ** 3 + y
    z.backward()
    assert x.grad.data.item() == 100.0


def _tanh_derivatives(x):
    """Closed forms of the first four derivatives of tanh, with t = tanh(x)."""
    t = np.tanh(x)
    return [1 - t ** 2,
            -2 * t * (1 - t ** 2),
            (1 - t ** 2) * (6 * t ** 2 - 2),
            (1 - t ** 2) * (16 * t - 24 * t ** 3)]


def test_step35_higher_derivatives_of_tanh():
    xs = np.linspace(-2, 2, 9)
    x = Variable(xs)
    y = F.tanh(x)
    y.backward(create_graph=True)
    expected = _tanh_derivatives(xs)
    for order in range(1, 5):
        gx = x.grad
        np.testing.assert_allclose(gx.data, expected[order - 1], rtol=1e-12, atol=1e-12)
        if order < 4:
            x.cleargrad()
            gx.backward(create_graph=True)


def test_step35_picture_of_the_fourth_derivative(tmp_path):
    gx = tanh_graph(4)
    np.testing.assert_allclose(gx.data, _tanh_derivatives(1.0)[3], rtol=1e-12)
    path = tmp_path / 'tanh.png'
    utils.plot_dot_graph(gx, verbose=False, to_file=str(path))
    data = path.read_bytes()
    assert data[:8] == b'\x89PNG\r\n\x1a\n'
    assert len(data) > 10000  # a graph of a few hundred nodes, not an empty picture
