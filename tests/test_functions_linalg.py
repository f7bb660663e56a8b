"""The linear algebra of ``zerograd.functions``: matmul, linear, linear_simple,
linear_pair, embed_id.

Every case of the registry's 'linalg' topic goes through ``check_op``. Then linear with a
plain-array input, which must give gradients to W and b only.
"""
import numpy as np
import pytest

import ops
import zerograd.functions as F
from zerograd import Variable

_rng = np.random.default_rng(42)
X43 = ops.X43


@pytest.mark.parametrize('case', ops.cases(ops.GRAD, 'linalg'), ids=ops.case_id)
def test_check_op(case):
    """The registry's linalg cases (ops.py) through zerograd.testing.check_op."""
    ops.check_case(case)


def test_linear_with_ndarray_x_gives_grads_to_W_and_b_only():
    W = Variable(_rng.standard_normal((3, 5)))
    b = Variable(_rng.standard_normal(5))
    y = F.linear(X43, W, b)
    np.testing.assert_allclose(y.data, X43 @ W.data + b.data, rtol=1e-12)
    y.backward()
    np.testing.assert_allclose(W.grad.data, X43.T @ np.ones((4, 5)), rtol=1e-12)
    np.testing.assert_allclose(b.grad.data, np.full(5, 4.0))
    x_input = y.creator.inputs[0]  # the Variable wrapped around the plain array
    assert x_input.grad is None, 'linear computed a gradient for a plain-array x'

    x = Variable(X43)  # a Variable x does get its gradient
    F.linear(x, W, b).backward()
    np.testing.assert_allclose(x.grad.data, np.ones((4, 5)) @ W.data.T, rtol=1e-12)
