"""Property tests (hypothesis): broadcasting arithmetic and its gradients, for any shapes."""
import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

import zerograd.functions as F
from zerograd import Variable


def summed_to(a, shape):
    """a summed (plain np.sum) over the axes broadcasting added or stretched, to shape."""
    lead = a.ndim - len(shape)
    axes = tuple(range(lead)) + tuple(lead + i for i, n in enumerate(shape)
                                      if n == 1 and a.shape[lead + i] != 1)
    return np.sum(a, axis=axes, keepdims=True).reshape(shape)

shapes_pair = hnp.mutually_broadcastable_shapes(num_shapes=2, min_dims=0, max_dims=4,
                                                 max_side=4)


@settings(max_examples=60, deadline=None)
@given(shapes=shapes_pair, op=st.sampled_from(['add', 'sub', 'mul', 'div']), seed=st.integers(0, 99))
def test_broadcasting_ops_match_numpy_and_sum_gradients_back(shapes, op, seed):
    rng = np.random.default_rng(seed)
    a = rng.uniform(0.5, 2.0, shapes.input_shapes[0])
    b = rng.uniform(0.5, 2.0, shapes.input_shapes[1])
    x0, x1 = Variable(a), Variable(b)
    y = getattr(F, op)(x0, x1)
    expected = {'add': np.add, 'sub': np.subtract, 'mul': np.multiply, 'div': np.divide}[op](a, b)
    np.testing.assert_allclose(y.data, expected)
    assert y.shape == shapes.result_shape
    y.backward()
    assert x0.grad.shape == a.shape and x1.grad.shape == b.shape
    ones = np.ones(shapes.result_shape)
    dx0 = {'add': ones, 'sub': ones, 'mul': ones * b, 'div': ones / b}[op]
    dx1 = {'add': ones, 'sub': -ones, 'mul': ones * a, 'div': -ones * a / b ** 2}[op]
    np.testing.assert_allclose(x0.grad.data, summed_to(np.asarray(dx0), a.shape), rtol=1e-12)
    np.testing.assert_allclose(x1.grad.data, summed_to(np.asarray(dx1), b.shape), rtol=1e-12)


@settings(max_examples=60, deadline=None)
@given(shapes=shapes_pair)
def test_broadcast_to_and_sum_to_are_adjoint(shapes):
    # <broadcast_to(x), y> == <x, sum_to(y)>: sum_to is broadcast_to's transpose.
    small, big = shapes.input_shapes[0], shapes.result_shape
    rng = np.random.default_rng(0)
    x = rng.standard_normal(small)
    y = rng.standard_normal(big)
    lhs = np.sum(F.broadcast_to(x, big).data * y)
    rhs = np.sum(x * F.sum_to(y, small).data)
    np.testing.assert_allclose(lhs, rhs, rtol=1e-10, atol=1e-12)
    # and each against plain NumPy
    np.testing.assert_array_equal(F.broadcast_to(x, big).data, np.broadcast_to(x, big))
    np.testing.assert_allclose(F.sum_to(y, small).data, summed_to(y, small), rtol=1e-12)


@settings(max_examples=40, deadline=None)
@given(shape=hnp.array_shapes(min_dims=1, max_dims=4, max_side=4), data=st.data())
def test_sum_over_any_axes_has_gradient_of_ones(shape, data):
    axes = data.draw(st.lists(st.integers(-len(shape), len(shape) - 1), unique_by=lambda a: a % len(shape)))
    keepdims = data.draw(st.booleans())
    x = Variable(np.random.default_rng(1).standard_normal(shape))
    y = F.sum(x, axis=tuple(axes) if axes else None, keepdims=keepdims)
    np.testing.assert_allclose(y.data, x.data.sum(axis=tuple(axes) if axes else None,
                                                  keepdims=keepdims))
    y.backward()
    np.testing.assert_array_equal(x.grad.data, np.ones(shape))
