"""utils: numerical gradients, comparisons, shape helpers, graph pictures; and the op checker."""
import re
import shutil

import numpy as np
import pytest

import zerograd.functions as F
from zerograd import Function, Variable, utils
from zerograd.testing import OpCheckError, check_op


# -----------------------------------------------------------------------------
# numerical gradients
# -----------------------------------------------------------------------------
def test_numerical_diff_of_the_book():
    def square(x):
        return x ** 2
    x = Variable(np.array(2.0))
    assert abs(utils.numerical_diff(square, x) - 4.0) < 1e-8


def test_numerical_grad_is_central_difference_of_sum():
    x = np.array([[1.0, 2.0], [3.0, 4.0]])
    grad = utils.numerical_grad(lambda v: v ** 3, x)
    np.testing.assert_allclose(grad, 3 * x ** 2, rtol=1e-7)
    assert np.array_equal(x, [[1.0, 2.0], [3.0, 4.0]])  # untouched


def test_numerical_grad_of_a_non_contiguous_array():
    x = np.arange(6.0).reshape(3, 2).T  # Fortran-ordered view
    np.testing.assert_allclose(utils.numerical_grad(lambda v: v ** 2, x), 2 * x, atol=1e-6)
    assert utils.gradient_check(F.sin, x) is True


def test_numerical_grad_passes_extra_arguments():
    x = np.array([1.0, 2.0])
    grad = utils.numerical_grad(lambda v, k, power=1: k * v ** power, x, 3.0, power=2)
    np.testing.assert_allclose(grad, 6.0 * x, rtol=1e-7)


def test_gradient_check_true_for_a_correct_op():
    x = np.random.default_rng(0).standard_normal((3, 4)).astype(np.float32)
    before = x.copy()
    assert utils.gradient_check(F.tanh, x) is True
    assert x.dtype == np.float32 and np.array_equal(x, before)  # input left as it was
    v = Variable(x)
    assert utils.gradient_check(F.sin, v) is True
    assert v.dtype == np.float32 and v.grad is None


class WrongGradient(Function):
    def forward(self, x):
        return np.sin(x)

    def backward(self, gy):
        x, = self.inputs
        return gy * F.sin(x)  # should be cos


def test_gradient_check_false_for_a_wrong_op():
    assert utils.gradient_check(lambda x: WrongGradient()(x), np.array([0.3, 1.2])) is False


def test_array_equal_and_allclose_accept_variables_and_arrays():
    a = np.array([1.0, 2.0])
    assert utils.array_equal(Variable(a), a) and utils.array_equal(a, Variable(a.copy()))
    assert not utils.array_equal(a, np.array([1.0, 2.5]))
    assert not utils.array_equal(a, np.array([1.0, 2.0, 3.0]))
    assert utils.array_allclose(Variable(a), a + 1e-7)
    assert not utils.array_allclose(a, a + 1e-2)
    assert utils.array_allclose(a, a + 1e-2, rtol=0, atol=0.1)
    assert not utils.array_allclose(a, np.ones(3))


# -----------------------------------------------------------------------------
# shape helpers
# -----------------------------------------------------------------------------
def test_sum_to_array():
    x = np.arange(24.0).reshape(2, 3, 4)
    np.testing.assert_array_equal(utils.sum_to(x, (3, 1)), x.sum(axis=(0, 2))[:, None])
    np.testing.assert_array_equal(utils.sum_to(x, (4,)), x.sum(axis=(0, 1)))
    np.testing.assert_array_equal(utils.sum_to(x, ()), x.sum())


@pytest.mark.parametrize('shape', [(4, 1, 1, 1), (3,), (2, 4), (5, 3, 4)])
def test_sum_to_array_refuses_a_shape_that_does_not_broadcast(shape):
    x = np.ones((2, 3, 4))
    with pytest.raises(ValueError, match=r'sum_to: an array of shape \(2, 3, 4\) cannot be '
                       r'summed to shape'):
        utils.sum_to(x, shape)


def test_reshape_sum_backward_and_max_backward_shape():
    gy = np.ones((2, 4))
    assert utils.reshape_sum_backward(gy, (2, 3, 4), 1, False).shape == (2, 1, 4)
    assert utils.reshape_sum_backward(gy, (2, 3, 4), -2, False).shape == (2, 1, 4)
    assert utils.reshape_sum_backward(np.ones(()), (2, 3), None, False).shape == (1, 1)
    assert utils.max_backward_shape(np.ones((2, 3, 4)), (0, 2)) == [1, 3, 1]
    assert utils.max_backward_shape(np.ones((2, 3)), None) == [1, 1]


def test_logsumexp_is_stable():
    x = np.array([[1000.0, 1000.0], [-1000.0, -1000.0]])
    np.testing.assert_allclose(utils.logsumexp(x, axis=1),
                               [[1000.0 + np.log(2)], [-1000.0 + np.log(2)]])


def test_pair_and_conv_sizes():
    assert utils.pair(3) == (3, 3) and utils.pair((2, 5)) == (2, 5)
    # Anything but an int or a pair of ints is a TypeError, as in every layer and function
    # that takes a pair.
    for bad in ['ab', 1.5, True, (1.0, 2), (1, True), None, np.float32(2.0), (1, 2, 3), [4],
                ()]:
        with pytest.raises(TypeError, match='pair: expected an int or a pair of ints'):
            utils.pair(bad)
    assert utils.pair(np.int64(2)) == (2, 2) and utils.pair([1, np.int32(3)]) == (1, 3)
    assert utils.get_conv_outsize(4, 3, 1, 1) == 4
    assert utils.get_conv_outsize(15, 3, 2, 0) == 7
    assert utils.get_deconv_outsize(4, 3, 1, 1) == 4
    assert utils.get_deconv_outsize(7, 3, 2, 0) == 15


# -----------------------------------------------------------------------------
# graph pictures
# -----------------------------------------------------------------------------
def _graph():
    x0 = Variable(np.array(1.0), name='x0')
    x1 = Variable(np.array(1.0, dtype=np.float32), name='x1')
    y = F.sin(x0) + x1
    y.name = 'y'
    return x0, x1, y


def test_get_dot_graph_lists_variables_and_functions():
    x0, x1, y = _graph()
    text = utils.get_dot_graph(y, verbose=True)
    assert text.startswith('digraph g {\n') and text.endswith('}')
    assert f'{id(x0)} [label="x0: () float64", color=orange, style=filled]' in text
    assert f'{id(x1)} [label="x1: () float32", color=orange, style=filled]' in text
    sin = y.creator.inputs[0].creator
    assert f'{id(sin)} [label="Sin", color=lightblue, style=filled, shape=box]' in text
    assert f'{id(x0)} -> {id(sin)}' in text and f'{id(y.creator)} -> {id(y)}' in text
    quiet = utils.get_dot_graph(y, verbose=False)
    assert '[label="x0", color=orange' in quiet and 'float' not in quiet


@pytest.mark.parametrize('ext, magic', [('png', b'\x89PNG'), ('svg', b'<?xml'), ('pdf', b'%PDF')])
def test_plot_dot_graph_writes_by_extension(tmp_path, ext, magic):
    _, _, y = _graph()
    path = tmp_path / 'sub dir' / f'graph.{ext}'  # a space: no shell is involved
    assert utils.plot_dot_graph(y, to_file=str(path)) == str(path)
    assert path.read_bytes().startswith(magic)


def test_plot_dot_graph_rejects_unknown_extension(tmp_path):
    _, _, y = _graph()
    with pytest.raises(ValueError, match=r"must end in .png, .svg or .pdf, got '.*graph.gif'"):
        utils.plot_dot_graph(y, to_file=str(tmp_path / 'graph.gif'))


def test_plot_dot_graph_without_graphviz(tmp_path, monkeypatch):
    monkeypatch.setattr(shutil, 'which', lambda name: None)
    _, _, y = _graph()
    with pytest.raises(RuntimeError, match=re.escape("Graphviz's `dot` program was not found; "
                                                     'install the graphviz package')):
        utils.plot_dot_graph(y, to_file=str(tmp_path / 'g.png'))


def test_graphviz_is_installed_for_the_suite():
    # The picture tests above must really run: CI installs Graphviz.
    assert shutil.which('dot') is not None


# -----------------------------------------------------------------------------
# the op checker itself
# -----------------------------------------------------------------------------
class BadDoubleSin(Function):
    """Right first derivative, but backward uses a raw array: second derivative lost."""

    def forward(self, x):
        return np.sin(x)

    def backward(self, gy):
        x, = self.inputs
        return gy * np.cos(x.data)


class Float64Leak(Function):
    def forward(self, x):
        return x.astype(np.float64) * 2.0

    def backward(self, gy):
        return gy * 2.0


def test_check_op_passes_a_correct_op():
    check_op('tanh', F.tanh, np.tanh, [(2, 3)])


def test_check_op_catches_a_wrong_first_derivative():
    with pytest.raises(OpCheckError, match=r'wrong: first derivative of input 0 .* shapes '
                                           r'\[\(4,\)\]: largest error'):
        check_op('wrong', lambda x: WrongGradient()(x), np.sin, [(4,)])


def test_check_op_catches_a_lost_second_derivative():
    with pytest.raises(OpCheckError, match='second derivative of input 0'):
        check_op('bad_double', lambda x: BadDoubleSin()(x), np.sin, [(3,)])


def test_check_op_catches_a_float64_leak():
    with pytest.raises(OpCheckError, match='float32 inputs gave a float64 output'):
        check_op('leak', lambda x: Float64Leak()(x), lambda x: 2 * x, [(3,)])


def test_check_op_catches_a_wrong_forward():
    with pytest.raises(OpCheckError, match=r'forward \(float64\) against NumPy'):
        check_op('cos_as_sin', F.cos, np.sin, [(3,)])


def test_array_allclose_broadcasts_as_np_allclose_does():
    # The book's (and DeZero's) array_allclose is np.allclose: its tests compare a grad
    # with a scalar or a row. Shapes that do not broadcast are simply not close.
    assert utils.array_allclose(np.ones((2, 3)), 1.0)
    assert utils.array_allclose(Variable(np.ones((2, 3))), np.ones(3))
    assert utils.array_allclose(np.array(2.0), Variable(np.full((4, 1), 2.0 + 1e-7)))
    assert not utils.array_allclose(np.ones((2, 3)), np.array([1.0, 1.0, 1.1]))
    assert not utils.array_allclose(np.ones((2, 3)), np.ones(2))  # no broadcast: False
    assert not utils.array_allclose(np.ones(3), np.ones((3, 2)))
    x = Variable(np.random.rand(10))  # the book's test_sum.py: x.grad against 1
    F.sum(x).backward()
    assert utils.array_allclose(x.grad, 1)
