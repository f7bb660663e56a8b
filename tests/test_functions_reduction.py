"""The reductions of ``zerograd.functions``: sum, max, min, average (mean).

Every case of the registry's 'reduction' topic goes through ``check_op``. Then ties in
max and min, where every tied element gets the gradient.
"""
import numpy as np
import pytest

import ops
import zerograd.functions as F
from zerograd import Variable


@pytest.mark.parametrize('case', ops.cases(ops.GRAD, 'reduction'), ids=ops.case_id)
def test_check_op(case):
    """The registry's reduction cases (ops.py) through zerograd.testing.check_op."""
    ops.check_case(case)


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
