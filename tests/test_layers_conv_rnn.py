"""Convolution and recurrent layers: Conv2d, Deconv2d, BatchNorm on images, RNN, LSTM.

Lazy weights drawn exactly as the book draws them (so seeded runs match it), float32 kept
float32, output shapes, errors, weight files; RNN and LSTM against PyTorch's RNNCell and
LSTMCell with the same weights (outputs at every step and every gradient), the
hidden-to-hidden shape Fix, and truncated BPTT with ``unchain_backward``.
"""
import numpy as np
import pytest

import zerograd
import zerograd.functions as F
import zerograd.layers as L
from zerograd import Model, Variable

try:  # the PyTorch comparisons are skipped where it is missing (the NumPy 1.x CI run)
    import torch
    tF = torch.nn.functional
    TORCH_DTYPE = {np.float32: torch.float32, np.float64: torch.float64}
except ImportError:
    torch = None
needs_torch = pytest.mark.skipif(torch is None, reason='PyTorch is not installed')

# float32 agrees to about 1e-6 relative (summation order differs); float64 to rounding.
TOL = {np.float32: dict(rtol=1e-5, atol=1e-6), np.float64: dict(rtol=1e-10, atol=1e-12)}


def th(array, requires_grad=False):
    return torch.tensor(np.array(array), requires_grad=requires_grad)


def scale(dtype, fan_in):
    """The book's initial scale sqrt(1 / fan_in), as a value of the weights' dtype."""
    return np.dtype(dtype).type(np.sqrt(1 / fan_in))


def randn_book(shape, dtype=np.float32, fan_in=None):
    """What the book's layers draw: randn(*shape) cast to dtype, times the scale."""
    return np.random.randn(*shape).astype(dtype) * scale(dtype, fan_in)


# =============================================================================
# Conv2d, Deconv2d
# =============================================================================
def test_conv2d_lazy_init_draws_like_the_book_and_is_float32():
    x = np.random.default_rng(0).standard_normal((2, 3, 8, 8)).astype(np.float32)
    np.random.seed(0)
    conv = L.Conv2d(4, kernel_size=3)
    assert conv.W.data is None and conv.in_channels is None
    y = conv(x)
    np.random.seed(0)
    np.testing.assert_array_equal(conv.W.data, randn_book((4, 3, 3, 3), fan_in=3 * 3 * 3))
    assert conv.in_channels == 3
    assert conv.W.dtype == np.float32 and conv.b.dtype == np.float32
    np.testing.assert_array_equal(conv.b.data, np.zeros(4))
    assert y.dtype == np.float32 and y.shape == (2, 4, 6, 6)


def test_deconv2d_lazy_init_draws_like_the_book_and_is_float32():
    x = np.random.default_rng(0).standard_normal((2, 3, 5, 5)).astype(np.float32)
    np.random.seed(0)
    deconv = L.Deconv2d(4, kernel_size=(3, 2), stride=2, pad=1)
    assert deconv.W.data is None
    y = deconv(x)
    np.random.seed(0)
    # W is (C, OC, KH, KW) for the transposed convolution; the scale still uses C KH KW.
    np.testing.assert_array_equal(deconv.W.data, randn_book((3, 4, 3, 2), fan_in=3 * 3 * 2))
    assert deconv.W.dtype == np.float32 and deconv.b.dtype == np.float32
    # OH = SH (H - 1) + KH - 2 PH
    assert y.dtype == np.float32 and y.shape == (2, 4, 2 * 4 + 3 - 2, 2 * 4 + 2 - 2)


@pytest.mark.parametrize('cls', [L.Conv2d, L.Deconv2d])
def test_in_channels_given_creates_W_at_construction(cls):
    np.random.seed(1)
    layer = cls(6, kernel_size=(2, 3), in_channels=5)
    shape = (6, 5, 2, 3) if cls is L.Conv2d else (5, 6, 2, 3)
    np.random.seed(1)
    np.testing.assert_array_equal(layer.W.data, randn_book(shape, fan_in=5 * 2 * 3))
    assert layer.W.dtype == np.float32


@pytest.mark.parametrize('cls', [L.Conv2d, L.Deconv2d])
def test_float64_layer_and_nobias(cls):
    layer = cls(2, kernel_size=3, nobias=True, dtype=np.float64, in_channels=1)
    assert layer.W.dtype == np.float64 and layer.b is None
    assert list(layer.named_params()) == ['W']
    y = layer(np.ones((1, 1, 4, 4)))
    assert y.dtype == np.float64


@needs_torch
@pytest.mark.parametrize('dtype', [np.float32, np.float64])
@pytest.mark.parametrize('kernel_size, stride, pad', [
    (3, 1, 0), (3, 2, 1), ((2, 3), (2, 1), (1, 0)), (1, 3, 2), ((4, 4), 3, (0, 2)),
])
def test_conv2d_matches_torch(kernel_size, stride, pad, dtype):
    rng = np.random.default_rng(1)
    x = rng.standard_normal((2, 3, 9, 8)).astype(dtype)
    conv = L.Conv2d(5, kernel_size, stride, pad, dtype=dtype, in_channels=3)
    conv.b.data = rng.standard_normal(5).astype(dtype)  # a nonzero bias, to check it too
    xv = Variable(x)
    y = conv(xv)
    gy = rng.standard_normal(y.shape).astype(dtype)
    F.sum(y * gy).backward()

    xt, Wt, bt = th(x, True), th(conv.W.data, True), th(conv.b.data, True)
    yt = tF.conv2d(xt, Wt, bt, stride=stride, padding=pad)
    (yt * th(gy)).sum().backward()
    assert y.shape == tuple(yt.shape) and y.dtype == dtype
    for ours, theirs in ((y.data, yt), (xv.grad.data, xt.grad), (conv.W.grad.data, Wt.grad),
                         (conv.b.grad.data, bt.grad)):
        assert ours.dtype == dtype
        np.testing.assert_allclose(ours, theirs.detach().numpy(), **TOL[dtype])


@needs_torch
@pytest.mark.parametrize('dtype', [np.float32, np.float64])
@pytest.mark.parametrize('kernel_size, stride, pad', [
    (3, 1, 0), (4, 2, 1), ((2, 3), (2, 1), (1, 0)), (3, 3, 1),
])
def test_deconv2d_matches_torch(kernel_size, stride, pad, dtype):
    rng = np.random.default_rng(2)
    x = rng.standard_normal((2, 3, 5, 4)).astype(dtype)
    deconv = L.Deconv2d(4, kernel_size, stride, pad, dtype=dtype, in_channels=3)
    deconv.b.data = rng.standard_normal(4).astype(dtype)
    xv = Variable(x)
    y = deconv(xv)
    gy = rng.standard_normal(y.shape).astype(dtype)
    F.sum(y * gy).backward()

    xt, Wt, bt = th(x, True), th(deconv.W.data, True), th(deconv.b.data, True)
    yt = tF.conv_transpose2d(xt, Wt, bt, stride=stride, padding=pad)
    (yt * th(gy)).sum().backward()
    assert y.shape == tuple(yt.shape) and y.dtype == dtype
    for ours, theirs in ((y.data, yt), (xv.grad.data, xt.grad),
                         (deconv.W.grad.data, Wt.grad), (deconv.b.grad.data, bt.grad)):
        np.testing.assert_allclose(ours, theirs.detach().numpy(), **TOL[dtype])


@pytest.mark.parametrize('cls', [L.Conv2d, L.Deconv2d])
def test_conv_layer_errors(cls):
    name = cls.__name__
    layer = cls(4, kernel_size=3)
    with pytest.raises(ValueError, match=rf'{name}: x must be 4-D \(N, C, H, W\), got shape '
                                         r'\(3, 8, 8\)'):
        layer(np.ones((3, 8, 8), dtype=np.float32))
    assert layer.W.data is None  # a rejected input creates no weights
    layer(np.ones((1, 3, 8, 8), dtype=np.float32))
    W_shape = (4, 3, 3, 3) if cls is L.Conv2d else (3, 4, 3, 3)
    with pytest.raises(ValueError, match=rf'{name}: input has 5 channels but W expects 3 '
                                         rf'\(x.shape=\(1, 5, 8, 8\), W.shape='
                                         rf'\({", ".join(map(str, W_shape))}\)\)'):
        layer(np.ones((1, 5, 8, 8), dtype=np.float32))
    with pytest.raises(TypeError, match=rf'{name}: kernel_size must be an int or a pair'):
        cls(4, kernel_size=(3, 3, 3))
    with pytest.raises(TypeError, match=rf'{name}: stride must be an int or a pair'):
        cls(4, kernel_size=3, stride=1.5)
    with pytest.raises(TypeError, match=rf'{name}: x must be an ndarray or a Variable'):
        layer([[1.0]])


class ConvNet(Model):
    def __init__(self):
        super().__init__()
        self.conv1 = L.Conv2d(4, kernel_size=3, pad=1)
        self.bn = L.BatchNorm()
        self.deconv = L.Deconv2d(2, kernel_size=2, stride=2)

    def forward(self, x):
        return self.deconv(F.relu(self.bn(self.conv1(x))))


def test_save_and_load_weights_keys(tmp_path):
    x = np.random.default_rng(3).standard_normal((2, 3, 6, 6)).astype(np.float32)
    conv = L.Conv2d(4, kernel_size=3, in_channels=3)
    assert list(conv.named_params()) == ['W', 'b']
    conv.b.data += 1
    conv.save_weights(tmp_path / 'conv.npz')
    with np.load(tmp_path / 'conv.npz') as npz:
        assert sorted(npz.files) == ['W', 'b']
    loaded = L.Conv2d(4, kernel_size=3)  # lazy: loading creates the weights
    loaded.load_weights(tmp_path / 'conv.npz')
    np.testing.assert_array_equal(loaded(x).data, conv(x).data)

    model = ConvNet()
    with pytest.raises(ValueError, match='not created yet'):
        model.save_weights(tmp_path / 'lazy.npz')
    y = model(x)
    model.save_weights(tmp_path / 'net.npz')
    with np.load(tmp_path / 'net.npz') as npz:
        assert sorted(npz.files) == sorted([
            'conv1/W', 'conv1/b', 'bn/avg_mean', 'bn/avg_var', 'bn/gamma', 'bn/beta',
            'deconv/W', 'deconv/b'])
        assert npz['deconv/W'].shape == (4, 2, 2, 2)
    other = ConvNet()
    other.load_weights(tmp_path / 'net.npz')
    with zerograd.test_mode():
        np.testing.assert_array_equal(other(x).data, model(x).data)
    assert y.shape == (2, 2, 12, 12)


# =============================================================================
# BatchNorm on images
# =============================================================================
def _image_batch(dtype):
    """(4, 3, 5, 6) with a different mean and spread per channel."""
    rng = np.random.default_rng(4)
    x = (rng.standard_normal((4, 3, 5, 6)) * np.array([1.0, 2.0, 0.5]).reshape(1, 3, 1, 1)
         + np.array([0.0, 3.0, -1.0]).reshape(1, 3, 1, 1))
    return x.astype(dtype), rng.standard_normal(x.shape).astype(dtype)


@pytest.mark.parametrize('dtype', [np.float32, np.float64])
def test_batchnorm_layer_on_4d_input_keeps_per_channel_running_stats(dtype):
    x, _ = _image_batch(dtype)
    bn = L.BatchNorm()
    y = bn(x)
    assert y.shape == x.shape and y.dtype == dtype
    for name in ('avg_mean', 'avg_var', 'gamma', 'beta'):
        param = getattr(bn, name)
        assert param.shape == (3,) and param.dtype == dtype, name
    # One step of the running statistics from (0, 1), decay 0.9, the variance unbiased.
    np.testing.assert_allclose(bn.avg_mean.data, 0.1 * x.mean(axis=(0, 2, 3)), rtol=1e-5)
    np.testing.assert_allclose(bn.avg_var.data, 0.9 + 0.1 * x.var(axis=(0, 2, 3), ddof=1),
                               rtol=1e-5)
    # Training normalises each channel by its batch statistics.
    np.testing.assert_allclose(y.data.mean(axis=(0, 2, 3)), 0, atol=1e-5)
    np.testing.assert_allclose(y.data.std(axis=(0, 2, 3)), 1, rtol=1e-3)

    with zerograd.test_mode():  # the running statistics normalise now
        y_test = bn(x)
    expected = ((x - bn.avg_mean.data.reshape(1, 3, 1, 1))
                / np.sqrt(bn.avg_var.data.reshape(1, 3, 1, 1) + 2e-5))
    np.testing.assert_allclose(y_test.data, expected, **TOL[dtype])


@needs_torch
@pytest.mark.parametrize('dtype', [np.float32, np.float64])
def test_batchnorm_layer_on_4d_input_matches_torch(dtype):
    x, gy = _image_batch(dtype)
    bn = L.BatchNorm()
    xv = Variable(x)
    y = bn(xv)
    F.sum(y * gy).backward()

    mean_t = torch.zeros(3, dtype=TORCH_DTYPE[dtype])
    var_t = torch.ones(3, dtype=TORCH_DTYPE[dtype])
    xt = th(x, True)
    gamma_t, beta_t = th(bn.gamma.data, True), th(bn.beta.data, True)
    yt = tF.batch_norm(xt, mean_t, var_t, gamma_t, beta_t, training=True, momentum=0.1,
                       eps=2e-5)
    (yt * th(gy)).sum().backward()
    for ours, theirs in ((y.data, yt), (bn.avg_mean.data, mean_t), (bn.avg_var.data, var_t),
                         (xv.grad.data, xt.grad), (bn.gamma.grad.data, gamma_t.grad),
                         (bn.beta.grad.data, beta_t.grad)):
        np.testing.assert_allclose(ours, theirs.detach().numpy(), **TOL[dtype])
    assert bn.avg_mean.grad is None and bn.avg_var.grad is None  # never trained


# =============================================================================
# RNN and LSTM against PyTorch
# =============================================================================
STEPS, BATCH, IN, HIDDEN = 5, 3, 4, 6
GATES = ('i', 'f', 'u', 'o')  # PyTorch's row blocks of W_ih and W_hh: i, f, g (our u), o


def _random_weights(layer, dtype, rng):
    """Replace every parameter with random values (nonzero biases included)."""
    for param in layer.params():
        param.data = (rng.standard_normal(param.shape) * 0.5).astype(dtype)


def _run_ours(layer, xs):
    """Outputs at every step, and the gradient of their total sum: (hs, gxs)."""
    xvs = [Variable(x) for x in xs]
    hs = [layer(xv) for xv in xvs]
    total = F.sum(hs[0])
    for h in hs[1:]:
        total = total + F.sum(h)
    layer.cleargrads()
    total.backward()
    return hs, [xv.grad.data for xv in xvs]


def _run_torch(cell, xs, lstm):
    """The same with a PyTorch cell started from h0 = c0 = 0."""
    xts = [th(x, True) for x in xs]
    dtype = xts[0].dtype
    h = torch.zeros(BATCH, HIDDEN, dtype=dtype)
    c = torch.zeros(BATCH, HIDDEN, dtype=dtype)
    hs = []
    for xt in xts:
        if lstm:
            h, c = cell(xt, (h, c))
        else:
            h = cell(xt, h)
        hs.append(h)
    torch.stack(hs).sum().backward()
    return [h.detach().numpy() for h in hs], [xt.grad.numpy() for xt in xts]


def _assert_close(ours, theirs, dtype, what):
    assert ours.dtype == dtype, what
    np.testing.assert_allclose(ours, theirs, err_msg=what, **TOL[dtype])


@needs_torch
@pytest.mark.parametrize('dtype', [np.float32, np.float64])
def test_rnn_matches_torch_rnn_cell(dtype):
    rng = np.random.default_rng(5)
    rnn = L.RNN(HIDDEN, in_size=IN)
    _random_weights(rnn, dtype, rng)
    cell = torch.nn.RNNCell(IN, HIDDEN, nonlinearity='tanh', dtype=TORCH_DTYPE[dtype])
    with torch.no_grad():
        cell.weight_ih.copy_(th(rnn.x2h.W.data.T))  # ours is (in, out), PyTorch's (out, in)
        cell.bias_ih.copy_(th(rnn.x2h.b.data))
        cell.weight_hh.copy_(th(rnn.h2h.W.data.T))
        cell.bias_hh.zero_()  # h2h has no bias
    xs = rng.standard_normal((STEPS, BATCH, IN)).astype(dtype)

    hs, gxs = _run_ours(rnn, xs)
    hts, gxts = _run_torch(cell, xs, lstm=False)
    for k in range(STEPS):
        _assert_close(hs[k].data, hts[k], dtype, f'h at step {k}')
        _assert_close(gxs[k], gxts[k], dtype, f'gx at step {k}')
    _assert_close(rnn.x2h.W.grad.data, cell.weight_ih.grad.numpy().T, dtype, 'x2h.W')
    _assert_close(rnn.x2h.b.grad.data, cell.bias_ih.grad.numpy(), dtype, 'x2h.b')
    _assert_close(rnn.h2h.W.grad.data, cell.weight_hh.grad.numpy().T, dtype, 'h2h.W')


@needs_torch
@pytest.mark.parametrize('dtype', [np.float32, np.float64])
def test_lstm_matches_torch_lstm_cell(dtype):
    rng = np.random.default_rng(6)
    lstm = L.LSTM(HIDDEN, in_size=IN)
    _random_weights(lstm, dtype, rng)
    cell = torch.nn.LSTMCell(IN, HIDDEN, dtype=TORCH_DTYPE[dtype])

    def stacked(prefix, attr):
        # PyTorch stacks the gates' (out, in) blocks in the order i, f, g, o.
        blocks = [getattr(getattr(lstm, prefix + g), attr).data for g in GATES]
        return np.concatenate([block.T for block in blocks] if attr == 'W' else blocks)

    with torch.no_grad():
        cell.weight_ih.copy_(th(stacked('x2', 'W')))
        cell.bias_ih.copy_(th(stacked('x2', 'b')))
        cell.weight_hh.copy_(th(stacked('h2', 'W')))
        cell.bias_hh.zero_()
    xs = rng.standard_normal((STEPS, BATCH, IN)).astype(dtype)

    hs, gxs = _run_ours(lstm, xs)
    hts, gxts = _run_torch(cell, xs, lstm=True)
    for k in range(STEPS):
        _assert_close(hs[k].data, hts[k], dtype, f'h at step {k}')
        _assert_close(gxs[k], gxts[k], dtype, f'gx at step {k}')
    H = HIDDEN
    for j, g in enumerate(GATES):
        rows = slice(j * H, (j + 1) * H)
        _assert_close(getattr(lstm, 'x2' + g).W.grad.data,
                      cell.weight_ih.grad.numpy()[rows].T, dtype, f'x2{g}.W')
        _assert_close(getattr(lstm, 'x2' + g).b.grad.data,
                      cell.bias_ih.grad.numpy()[rows], dtype, f'x2{g}.b')
        _assert_close(getattr(lstm, 'h2' + g).W.grad.data,
                      cell.weight_hh.grad.numpy()[rows].T, dtype, f'h2{g}.W')


# =============================================================================
# RNN and LSTM: structure, draw order, the Fix, state
# =============================================================================
def test_sublayer_order_and_weight_keys():
    rnn = L.RNN(5, in_size=3)
    assert list(rnn.named_params()) == ['x2h/W', 'x2h/b', 'h2h/W']
    lstm = L.LSTM(5, in_size=3)
    assert list(lstm.named_params()) == [
        'x2f/W', 'x2f/b', 'x2i/W', 'x2i/b', 'x2o/W', 'x2o/b', 'x2u/W', 'x2u/b',
        'h2f/W', 'h2i/W', 'h2o/W', 'h2u/W']


def test_hidden_to_hidden_weights_are_hidden_by_hidden():
    # The book built h2h with in_size=in_size: (3, 5), unusable from the second step on.
    rnn = L.RNN(5, in_size=3)
    assert rnn.x2h.W.shape == (3, 5) and rnn.h2h.W.shape == (5, 5)
    lstm = L.LSTM(5, in_size=3)
    for g in 'fiou':
        assert getattr(lstm, 'x2' + g).W.shape == (3, 5)
        assert getattr(lstm, 'h2' + g).W.shape == (5, 5)
    x = np.ones((2, 3), dtype=np.float32)
    for layer in (rnn, lstm):
        for _ in range(3):
            h = layer(x)
        assert h.shape == (2, 5) and h.dtype == np.float32


def test_rnn_draws_the_books_weights_in_the_books_order():
    x = np.full((1, 1), 0.5, dtype=np.float32)
    np.random.seed(0)
    rnn = L.RNN(10)
    assert rnn.x2h.W.data is None and rnn.h2h.W.data is None
    rnn(x)
    assert rnn.h2h.W.data is None  # drawn on its first use, the second step
    rnn(x)
    np.random.seed(0)
    np.testing.assert_array_equal(rnn.x2h.W.data, randn_book((1, 10), fan_in=1))  # step 1
    np.testing.assert_array_equal(rnn.h2h.W.data, randn_book((10, 10), fan_in=10))  # step 2
    assert rnn.x2h.W.dtype == rnn.h2h.W.dtype == np.float32

    # With in_size given, both are drawn at construction, x2h first.
    np.random.seed(0)
    rnn = L.RNN(5, in_size=3)
    np.random.seed(0)
    np.testing.assert_array_equal(rnn.x2h.W.data, randn_book((3, 5), fan_in=3))
    np.testing.assert_array_equal(rnn.h2h.W.data, randn_book((5, 5), fan_in=5))


def test_lstm_draws_the_books_weights_in_the_books_order():
    # The book's h2* are Linear(H, in_size=H): drawn at construction; the x2* on step 1.
    x = np.full((2, 3), 0.5, dtype=np.float32)
    np.random.seed(0)
    lstm = L.LSTM(10)
    lstm(x)
    np.random.seed(0)
    for g in 'fiou':
        np.testing.assert_array_equal(getattr(lstm, 'h2' + g).W.data,
                                      randn_book((10, 10), fan_in=10), err_msg='h2' + g)
    for g in 'fiou':
        np.testing.assert_array_equal(getattr(lstm, 'x2' + g).W.data,
                                      randn_book((3, 10), fan_in=3), err_msg='x2' + g)


def test_reset_state_and_first_step_formulas():
    rng = np.random.default_rng(7)
    x = rng.standard_normal((2, 3))
    rnn = L.RNN(4, in_size=3)
    _random_weights(rnn, np.float64, rng)
    h1 = rnn(x)
    np.testing.assert_allclose(h1.data, np.tanh(x @ rnn.x2h.W.data + rnn.x2h.b.data))
    h2 = rnn(x)
    np.testing.assert_allclose(h2.data, np.tanh(x @ rnn.x2h.W.data + rnn.x2h.b.data
                                                + h1.data @ rnn.h2h.W.data))
    assert rnn.h is h2
    rnn.reset_state()
    assert rnn.h is None
    np.testing.assert_array_equal(rnn(x).data, h1.data)

    lstm = L.LSTM(4, in_size=3)
    _random_weights(lstm, np.float64, rng)
    h = lstm(x)

    def gate(g):
        return x @ getattr(lstm, 'x2' + g).W.data + getattr(lstm, 'x2' + g).b.data

    def sigmoid(a):
        return 1 / (1 + np.exp(-a))

    c = sigmoid(gate('i')) * np.tanh(gate('u'))
    np.testing.assert_allclose(lstm.c.data, c)
    np.testing.assert_allclose(h.data, sigmoid(gate('o')) * np.tanh(c))
    lstm.reset_state()
    assert lstm.h is None and lstm.c is None


@pytest.mark.parametrize('cls', [L.RNN, L.LSTM])
def test_recurrent_input_errors(cls):
    name = cls.__name__
    layer = cls(4, in_size=3)
    with pytest.raises(ValueError, match=rf'{name}: x must be \(N, in_size\), one time step '
                                         r'of a batch, got shape \(2, 1, 3\)'):
        layer(np.ones((2, 1, 3), dtype=np.float32))
    layer(np.ones((2, 3), dtype=np.float32))
    with pytest.raises(ValueError, match=rf'{name}: x has batch size 5 but the hidden state '
                                         r'has 2 .*reset_state\(\)'):
        layer(np.ones((5, 3), dtype=np.float32))
    layer.reset_state()
    assert layer(np.ones((5, 3), dtype=np.float32)).shape == (5, 4)


# =============================================================================
# Truncated BPTT
# =============================================================================
@pytest.mark.parametrize('cls', [L.RNN, L.LSTM])
def test_unchain_backward_truncates_bptt(cls):
    rng = np.random.default_rng(8)
    layer = cls(4, in_size=2)
    _random_weights(layer, np.float64, rng)
    xs = [Variable(rng.standard_normal((3, 2))) for _ in range(4)]

    loss = 0
    for k, x in enumerate(xs):
        loss += F.sum(layer(x))
        if k == 1:
            loss.unchain_backward()  # the book's truncation point
            assert layer.h.creator is None  # the state is a leaf now
            if cls is L.LSTM:
                assert layer.c.creator is None
    layer.cleargrads()
    loss.backward()
    assert xs[0].grad is None and xs[1].grad is None  # backward stopped at the cut
    assert xs[2].grad is not None and xs[3].grad is not None

    # The same gradients as a run whose state after step 1 is a plain constant.
    reference = cls(4, in_size=2)
    for ours, theirs in zip(reference.params(), layer.params()):
        ours.data = theirs.data.copy()
    reference(xs[0].data)
    reference(xs[1].data)
    reference.h = Variable(reference.h.data)
    if cls is L.LSTM:
        reference.c = Variable(reference.c.data)
    x2, x3 = Variable(xs[2].data), Variable(xs[3].data)
    ref_loss = F.sum(reference(x2)) + F.sum(reference(x3))
    reference.cleargrads()
    ref_loss.backward()
    np.testing.assert_allclose(xs[2].grad.data, x2.grad.data, rtol=1e-12)
    np.testing.assert_allclose(xs[3].grad.data, x3.grad.data, rtol=1e-12)
    for (key, ours), theirs in zip(layer.named_params().items(), reference.params()):
        np.testing.assert_allclose(ours.grad.data, theirs.grad.data, rtol=1e-12, err_msg=key)
