"""Edge cases found in review: each would give a silently wrong answer or a raw error."""
import gc
import weakref
import zipfile

import numpy as np
import pytest

import zerograd.functions as F
from zerograd import Variable
from zerograd.models import MLP


def test_sigmoid_cross_entropy_gradient_at_zero():
    # log(1 + exp(x)) - t x has the derivative sigmoid(x) - t: 0.5 at x = 0, not 0.
    x = Variable(np.zeros((2, 1)))
    loss = F.sigmoid_cross_entropy(x, np.zeros((2, 1)))
    assert loss.data == pytest.approx(np.log(2.0))
    loss.backward()
    np.testing.assert_allclose(x.grad.data, [[0.25], [0.25]])


def test_sigmoid_cross_entropy_reshapes_only_n_labels_for_n_by_1_scores():
    np.testing.assert_allclose(F.sigmoid_cross_entropy(np.zeros((3, 1)), np.ones(3)).data,
                               np.log(2.0))
    with pytest.raises(ValueError, match=r'sigmoid_cross_entropy: t must have the shape of '
                                         r'x \(2, 3\) .*got \(6,\)'):
        F.sigmoid_cross_entropy(np.zeros((2, 3)), np.arange(6) % 2)


def test_int_variables_keep_float_gradients():
    x = Variable(np.array(1))
    F.sin(x).backward()
    assert x.grad.data == pytest.approx(np.cos(1.0))
    x = Variable(np.array([4, 9]))
    (x ** 0.5).backward()
    np.testing.assert_allclose(x.grad.data, [0.25, 1 / 6])


def test_clip_bounds_never_widen_float32():
    x = Variable(np.array([-1.0, 0.5, 2.0], dtype=np.float32))
    y = F.clip(x, np.float64(0), np.float64(1))
    assert y.dtype == np.float32
    np.testing.assert_array_equal(y.data, [0.0, 0.5, 1.0])


def test_binary_cross_entropy_float16_has_no_log_zero():
    p = Variable(np.array([0.0, 1.0], dtype=np.float16))
    loss = F.binary_cross_entropy(p, np.array([1.0, 0.0]))
    assert np.isfinite(loss.data)


@pytest.mark.parametrize('call, error, message', [
    (lambda: F.mean(Variable(np.zeros((0, 3))), axis=0), ValueError, 'average: nothing to average'),
    (lambda: F.flatten(Variable(np.array(1.0))), ValueError, 'flatten: x must have at least one axis'),
    (lambda: F.max(Variable(np.zeros(0))), ValueError, r'max: x of shape \(0,\) is empty'),
    (lambda: F.min(Variable(np.zeros((2, 0)))), ValueError, r'min: x of shape \(2, 0\) is empty'),
    (lambda: F.softmax_cross_entropy(np.zeros((0, 3)), np.zeros(0, int)), ValueError,
     'softmax_cross_entropy: x must hold a non-empty batch'),
    (lambda: F.mean_squared_error(np.zeros(0), np.zeros(0)), ValueError,
     'mean_squared_error: x must hold a non-empty batch'),
    (lambda: F.mean_squared_error(np.array(1.0), np.array(2.0)), ValueError,
     r'mean_squared_error: x must hold a non-empty batch, got shape \(\)'),
    (lambda: F.batch_norm(np.zeros((0, 2)), np.ones(2), np.zeros(2), np.zeros(2), np.ones(2)),
     ValueError, 'batch_norm: x of shape .* is empty'),
    # Integer scores are computed in float64 (the float functions' dtype rule, tested in
    # test_functions.py); complex ones are refused by the functions that need real numbers.
    (lambda: F.softmax(np.array([[1j, 2]])), TypeError,
     'softmax: x must hold real numbers, got complex128'),
    (lambda: F.log_softmax(np.array([[1j, 2]])), TypeError,
     'log_softmax: x must hold real numbers'),
    (lambda: F.softmax_cross_entropy(np.array([[1j, 2]]), np.array([0])), TypeError,
     'softmax_cross_entropy: x must hold real numbers'),
    (lambda: F.dropout(np.array([1j, 2])), TypeError, 'dropout: x must hold real numbers'),
    (lambda: F.get_item(Variable(np.zeros(3)), 5), IndexError, r'get_item: .*x.shape=\(3,\)'),
    (lambda: F.embed_id(np.array([0, 4]), np.zeros((4, 2))), ValueError,
     r'embed_id: ids must be in \[0, 4\) .*got values from 0 to 4'),
    (lambda: F.accuracy(np.zeros((3, 2)), np.zeros(2, int)), ValueError,
     r'accuracy: .*got \(3, 2\) and \(2,\)'),
])
def test_bad_edge_inputs_name_the_op(call, error, message):
    with pytest.raises(error, match=message):
        call()


def test_flatten_of_an_empty_batch():
    y = F.flatten(Variable(np.zeros((0, 3, 4))))
    assert y.shape == (0, 12)


def test_sum_to_and_broadcast_to_take_an_int_shape():
    assert F.sum_to(Variable(np.ones((2, 4))), 4).shape == (4,)
    assert F.broadcast_to(Variable(np.ones(1)), 3).shape == (3,)


def test_linear_layer_rejects_a_list():
    import zerograd.layers as L
    with pytest.raises(TypeError, match='Linear: x must be an ndarray or a Variable, got list'):
        L.Linear(2)([[1.0, 2.0]])


def test_load_weights_with_a_string_array_changes_nothing(tmp_path):
    model = MLP((3, 2))
    model(np.zeros((1, 2), dtype=np.float32))
    before = {k: p.data.copy() for k, p in model.named_params().items()}
    arrays = {k: np.ones_like(v) for k, v in before.items()}
    arrays['l1/b'] = np.array(['a', 'b'])
    path = tmp_path / 'w.npz'
    np.savez(path, **arrays)
    with pytest.raises(ValueError, match=r"not numbers: \['l1/b: <U1'\]"):
        model.load_weights(str(path))
    for key, p in model.named_params().items():
        np.testing.assert_array_equal(p.data, before[key])


def test_load_weights_with_a_member_that_is_not_npy(tmp_path):
    path = tmp_path / 'w.npz'
    with zipfile.ZipFile(path, 'w') as archive:
        archive.writestr('l0/W', b'plain bytes')
    with pytest.raises(ValueError, match="holds 'l0/W', which is not a NumPy array"):
        MLP((3, 2)).load_weights(str(path))


def test_create_graph_cycle_is_broken_by_cleargrad():
    gc.disable()
    try:
        x = Variable(np.array(2.0))
        y = x ** 3
        y.backward(create_graph=True)
        ref = weakref.ref(x.grad.creator)
        del y
        assert ref() is not None  # x.grad -> its graph -> x: a cycle keeps it alive
        x.cleargrad()
        assert ref() is None  # cut by cleargrad: freed at once by reference counting
    finally:
        gc.enable()


def test_mlp_uses_its_activation():
    np.random.seed(0)
    relu_model = MLP((4, 2), activation=F.relu)
    np.random.seed(0)
    sigmoid_model = MLP((4, 2))
    x = np.array([[1.0, -1.0]], dtype=np.float32)
    hidden = x @ relu_model(x).creator.inputs[1].data if False else None  # noqa: F841
    expected_relu = np.maximum(x @ _w(relu_model, x, 'l0/W'), 0) @ _w(relu_model, x, 'l1/W')
    np.testing.assert_allclose(relu_model(x).data, expected_relu, rtol=1e-5)
    assert not np.allclose(sigmoid_model(x).data, relu_model(x).data)


def _w(model, x, key):
    model(x)
    return model.named_params()[key].data


def test_mse_aligns_shapes_that_differ_only_by_length_one_axes():
    # The book's steps 59-60: a (1, 1) prediction against a (1,) target.
    y = Variable(np.array([[2.0]]))
    loss = F.mean_squared_error(y, np.array([0.5]))
    assert loss.data == pytest.approx(2.25)
    loss.backward()
    np.testing.assert_allclose(y.grad.data, [[3.0]])
    with pytest.raises(ValueError, match=r'x0 and x1 must have the same shape, got \(3,\) '
                                         r'and \(3, 1\)'):
        F.mean_squared_error(np.zeros(3), np.zeros((3, 1)))


def test_conv2d_backward_when_pad_exceeds_the_default_deconv_size():
    # conv2d of a 1x1 input with a 2x2 kernel, stride 2, pad 1 has a 1x1 output; its input
    # gradient is a deconv2d whose default size would be 0: outsize=1 must be accepted.
    x = Variable(np.ones((1, 1, 1, 1)))
    W = Variable(np.ones((1, 1, 2, 2)))
    y = F.conv2d(x, W, stride=2, pad=1)
    y.backward()
    np.testing.assert_array_equal(x.grad.data, [[[[1.0]]]])
    np.testing.assert_array_equal(W.grad.data.ravel(), [0.0, 0.0, 0.0, 1.0])
    with pytest.raises(ValueError, match='deconv2d: pad .* is too large .* give outsize'):
        F.deconv2d(np.ones((1, 1, 1, 1)), np.ones((1, 1, 2, 2)), stride=2, pad=1)


def test_history_load_rejects_non_numbers(tmp_path):
    from zerograd.training import History
    (tmp_path / 'h.json').write_text('[{"epoch": "x"}]')
    with pytest.raises(ValueError, match=r'does not hold a list of metric records'):
        History.load(str(tmp_path / 'h.json'))
    (tmp_path / 'bad.json').write_text('[{"epoch": ')
    with pytest.raises(ValueError, match=r"History.load: '.*bad.json' is not valid JSON"):
        History.load(str(tmp_path / 'bad.json'))
