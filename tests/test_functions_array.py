"""The array functions of ``zerograd.functions``: reshape, transpose, sum_to, broadcast_to,
expand_dims, flatten, get_item (and its gradient GetItemGrad), concat, stack, cast.

Every case of the registry's 'array' topic goes through ``check_op``. Then the exact-value
rules check_op cannot see (get_item's scatter-add, reshape's shortcut) and cast's dtypes.
"""
import numpy as np
import pytest

import ops
import zerograd.functions as F
from zerograd import Variable


@pytest.mark.parametrize('case', ops.cases(ops.GRAD, 'array'), ids=ops.case_id)
def test_check_op(case):
    """The registry's array cases (ops.py) through zerograd.testing.check_op."""
    ops.check_case(case)


def test_reshape_returns_x_itself_when_the_shape_matches():
    x = Variable(np.ones((2, 3)))
    assert F.reshape(x, (2, 3)) is x
    assert F.reshape(x, [2, 3]) is x
    assert x.reshape(2, 3) is x
    assert x.reshape((2, 3)) is x
    assert F.reshape(x, (3, 2)) is not x


def test_get_item_backward_adds_repeated_indexes():
    x = Variable(np.arange(12.0).reshape(3, 4))
    y = x[np.array([0, 0, 2, 0])]
    y.grad = Variable(np.arange(16.0).reshape(4, 4))
    y.backward()
    expected = np.zeros((3, 4))
    expected[0] = [0 + 4 + 12, 1 + 5 + 13, 2 + 6 + 14, 3 + 7 + 15]
    expected[2] = [8, 9, 10, 11]
    np.testing.assert_array_equal(x.grad.data, expected)


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


@pytest.mark.parametrize('dtype', ['U3', object, 'S2', 'V4', 'M8[D]'])
def test_cast_refuses_non_numeric_dtypes(dtype):
    with pytest.raises(TypeError, match=r'cast: dtype must be numeric .*got'):
        F.cast(np.array([1.0]), dtype)


def test_cast_to_numeric_dtypes_still_works():
    assert F.cast(np.array([1.5]), np.int32).dtype == np.int32
    assert F.cast(np.array([1.5]), 'complex64').dtype == np.complex64
    assert F.cast(np.array([1.5]), bool).dtype == np.bool_
