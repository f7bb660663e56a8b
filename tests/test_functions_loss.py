"""The losses of ``zerograd.functions``: mean_squared_error, softmax_cross_entropy,
sigmoid_cross_entropy, binary_cross_entropy (and the ``_simple`` oracles), and accuracy.

Every case of the registry's 'loss' topic goes through ``check_op``. Then the inputs that
would give a silently wrong answer, refused, and accuracy (not differentiable).
"""
import numpy as np
import pytest

import ops
import zerograd.functions as F
from zerograd import Variable


@pytest.mark.parametrize('case', ops.cases(ops.GRAD, 'loss'), ids=ops.case_id)
def test_check_op(case):
    """The registry's loss cases (ops.py) through zerograd.testing.check_op."""
    ops.check_case(case)


@pytest.mark.parametrize('p, low, high', [
    ([1.5, 0.2], '0.2', '1.5'), ([-0.1, 0.5], '-0.1', '0.5'), ([np.nan, 0.5], 'nan', 'nan'),
])
def test_binary_cross_entropy_refuses_probabilities_outside_0_1(p, low, high):
    with pytest.raises(ValueError, match=rf'binary_cross_entropy: p must hold probabilities in '
                                         rf'\[0, 1\], got values from {low} to {high}'):
        F.binary_cross_entropy(np.array(p), np.array([1.0, 0.0]))


def test_binary_cross_entropy_refuses_targets_outside_0_1():
    with pytest.raises(ValueError, match=r'binary_cross_entropy: t must hold targets in \[0, 1\], '
                                         r'got values from 0.0 to 2.0'):
        F.binary_cross_entropy(np.array([0.5, 0.5]), np.array([2.0, 0.0]))


@pytest.mark.parametrize('t, low, high', [([2, 0], '0.0', '2.0'), ([-1.0, 0.5], '-1.0', '0.5')])
def test_sigmoid_cross_entropy_refuses_targets_outside_0_1(t, low, high):
    with pytest.raises(ValueError, match=rf'sigmoid_cross_entropy: t must hold targets in '
                                         rf'\[0, 1\], got values from {low} to {high}'):
        F.sigmoid_cross_entropy(np.array([1.5, 0.2]), np.array(t))


def test_sigmoid_cross_entropy_accepts_soft_targets():
    x, t = np.array([1.5, -0.2]), np.array([0.25, 1.0])
    expected = np.sum(np.log1p(np.exp(x)) - t * x) / 2
    np.testing.assert_allclose(F.sigmoid_cross_entropy(x, t).data, expected, rtol=1e-12)


# =============================================================================
# accuracy
# =============================================================================


@pytest.mark.parametrize('wrap', [lambda a: a, Variable], ids=['arrays', 'Variables'])
def test_accuracy_on_a_hand_example(wrap):
    y = np.array([[0.1, 0.8, 0.1], [0.9, 0.05, 0.05], [0.2, 0.3, 0.5], [0.6, 0.3, 0.1]])
    t = np.array([1, 0, 1, 0])  # rows 0, 1 and 3 are right
    acc = F.accuracy(wrap(y), wrap(t))
    assert isinstance(acc, Variable) and acc.creator is None
    assert acc.shape == ()
    assert float(acc.data) == 0.75


@pytest.mark.parametrize('t', [np.array([0, 3]), np.array([-1, 0]), np.array([0.0, 1.0]),
                               np.array([[0], [1]])],
                         ids=['too large', 'negative', 'float', 'shape (N, 1)'])
def test_accuracy_checks_labels_as_softmax_cross_entropy_does(t):
    y = np.array([[0.1, 0.9, 0.0], [0.8, 0.1, 0.1]])
    error = TypeError if t.dtype.kind == 'f' else ValueError  # a dtype, or a value or shape
    with pytest.raises(error) as loss_error:
        F.softmax_cross_entropy(y, t)
    with pytest.raises(error) as accuracy_error:
        F.accuracy(y, t)
    message = str(loss_error.value).replace('softmax_cross_entropy', 'accuracy')
    if t.shape == (2,):  # the same check and message
        assert str(accuracy_error.value) == message
    assert str(accuracy_error.value).startswith('accuracy: ')


def test_accuracy_of_valid_labels():
    y = np.array([[0.1, 0.9, 0.0], [0.8, 0.1, 0.1], [0.0, 0.2, 0.7]])
    assert float(F.accuracy(y, np.array([1, 0, 0])).data) == pytest.approx(2 / 3)
