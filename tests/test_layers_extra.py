"""The training kit's layers: GRU, LayerNorm, and Dropout, pooling, Flatten and the
activations as layers, so ``Sequential`` can hold a whole CNN.

GRU against ``torch.nn.GRUCell`` and ``torch.nn.GRU`` with copied weights (every output,
the input gradients and every weight gradient), LayerNorm against ``torch.nn.LayerNorm``,
the pooling layers against ``torch.nn.MaxPool2d``/``AvgPool2d`` with PyTorch's default
stride, and a CNN in ``Sequential`` against the same ``torch.nn.Sequential``.
"""
import numpy as np
import pytest

import zerograd
import zerograd.functions as F
import zerograd.layers as L
from zerograd import Variable, optimizers, training, utils
from zerograd.models import Model, Sequential

try:  # the PyTorch comparisons are skipped where it is missing (the NumPy 1.x CI run)
    import torch
    TORCH_DTYPE = {np.float32: torch.float32, np.float64: torch.float64}
except ImportError:
    torch = None
needs_torch = pytest.mark.skipif(torch is None, reason='PyTorch is not installed')
# The brief's tolerances: float64 to 1e-6 is far looser than rounding; float32 to 1e-5.
TOL = {np.float32: dict(rtol=1e-5, atol=1e-5), np.float64: dict(rtol=1e-6, atol=1e-8)}


def th(array, requires_grad=False):
    return torch.tensor(np.array(array), requires_grad=requires_grad)


def close(ours, theirs, dtype, what):
    ours = ours.data if isinstance(ours, Variable) else ours
    theirs = theirs.detach().numpy() if hasattr(theirs, 'detach') else theirs
    assert ours.dtype == dtype, what
    np.testing.assert_allclose(ours, theirs, err_msg=what, **TOL[dtype])


def grad_or_zeros(param):
    """A parameter's gradient; zeros where backward never reached it (PyTorch's zeros)."""
    return np.zeros_like(param.data) if param.grad is None else param.grad.data


# =============================================================================
# GRU
# =============================================================================
IN, HIDDEN, BATCH, STEPS = 3, 4, 2, 5
GATES = 'rzn'  # PyTorch's order of the stacked gates


def random_gru(dtype, rng, in_size=IN, hidden=HIDDEN):
    """A GRU with every weight and bias random (so the split biases b_i*, b_h* matter)."""
    gru = L.GRU(hidden, in_size=in_size)
    for param in gru.params():
        param.data = (rng.standard_normal(param.data.shape) * 0.5).astype(dtype)
    return gru


def stacked(gru, prefix, attr):
    """Our per-gate blocks as PyTorch's stacked (3 H, in) weight or (3 H,) bias."""
    blocks = [getattr(getattr(gru, prefix + g), attr).data for g in GATES]
    return np.concatenate([block.T for block in blocks] if attr == 'W' else blocks)


def stacked_grads(gru, prefix, attr):
    blocks = [grad_or_zeros(getattr(getattr(gru, prefix + g), attr)) for g in GATES]
    return np.concatenate([block.T for block in blocks] if attr == 'W' else blocks)


def copy_to_torch(gru, module, suffix=''):
    with torch.no_grad():
        getattr(module, 'weight_ih' + suffix).copy_(th(stacked(gru, 'x2', 'W')))
        getattr(module, 'bias_ih' + suffix).copy_(th(stacked(gru, 'x2', 'b')))
        getattr(module, 'weight_hh' + suffix).copy_(th(stacked(gru, 'h2', 'W')))
        getattr(module, 'bias_hh' + suffix).copy_(th(stacked(gru, 'h2', 'b')))


def compare_weight_grads(gru, module, dtype, suffix=''):
    for ours, theirs in (('x2', 'ih'), ('h2', 'hh')):
        close(stacked_grads(gru, ours, 'W'), getattr(module, f'weight_{theirs}{suffix}').grad,
              dtype, f'{ours}*.W')
        close(stacked_grads(gru, ours, 'b'), getattr(module, f'bias_{theirs}{suffix}').grad,
              dtype, f'{ours}*.b')


@needs_torch
@pytest.mark.parametrize('dtype', [np.float32, np.float64])
def test_gru_matches_torch_gru_cell_outputs_and_gradients(dtype):
    rng = np.random.default_rng(0)
    gru = random_gru(dtype, rng)
    cell = torch.nn.GRUCell(IN, HIDDEN, dtype=TORCH_DTYPE[dtype])
    copy_to_torch(gru, cell)
    xs = rng.standard_normal((STEPS, BATCH, IN)).astype(dtype)
    gys = rng.standard_normal((STEPS, BATCH, HIDDEN)).astype(dtype)

    xvs = [Variable(x) for x in xs]
    hs = [gru(xv) for xv in xvs]
    loss = sum(F.sum(h * gy) for h, gy in zip(hs, gys))
    gru.cleargrads()
    loss.backward()

    xts = [th(x, True) for x in xs]
    h = torch.zeros(BATCH, HIDDEN, dtype=TORCH_DTYPE[dtype])  # GRUCell's default h0
    hts = []
    for xt in xts:
        h = cell(xt, h)
        hts.append(h)
    sum((ht * th(gy)).sum() for ht, gy in zip(hts, gys)).backward()

    for k in range(STEPS):
        close(hs[k], hts[k], dtype, f'h at step {k}')
        close(xvs[k].grad.data, xts[k].grad, dtype, f'gx at step {k}')
    compare_weight_grads(gru, cell, dtype)


@needs_torch
@pytest.mark.parametrize('batch_first', [False, True])
@pytest.mark.parametrize('dtype', [np.float32, np.float64])
def test_gru_fed_step_by_step_matches_torch_gru_from_a_given_h0(dtype, batch_first):
    rng = np.random.default_rng(1)
    gru = random_gru(dtype, rng)
    module = torch.nn.GRU(IN, HIDDEN, num_layers=1, batch_first=batch_first,
                          dtype=TORCH_DTYPE[dtype])
    copy_to_torch(gru, module, suffix='_l0')
    xs = rng.standard_normal((STEPS, BATCH, IN)).astype(dtype)  # time first
    h0 = rng.standard_normal((BATCH, HIDDEN)).astype(dtype)
    gy = rng.standard_normal((STEPS, BATCH, HIDDEN)).astype(dtype)

    x_all = Variable(xs)
    h0v = Variable(h0)
    gru.h = h0v  # a state from outside (an encoder's): the first step uses h2*
    hs = [gru(x_all[t]) for t in range(STEPS)]
    y = F.stack(hs, axis=0)
    gru.cleargrads()
    F.sum(y * gy).backward()

    x_t = th(xs.transpose(1, 0, 2) if batch_first else xs, True)
    h0_t = th(h0[None], True)  # (num_layers, N, H)
    y_t, h_n = module(x_t, h0_t)
    gy_t = th(gy.transpose(1, 0, 2) if batch_first else gy)
    (y_t * gy_t).sum().backward()
    if batch_first:
        y_t, x_grad = y_t.transpose(0, 1), x_t.grad.transpose(0, 1)
    else:
        x_grad = x_t.grad

    close(y, y_t, dtype, 'outputs')
    close(gru.h, h_n[0], dtype, 'the last h (h_n)')
    close(x_all.grad.data, x_grad, dtype, 'gx')
    close(h0v.grad.data, h0_t.grad[0], dtype, 'gh0')
    compare_weight_grads(gru, module, dtype, suffix='_l0')


def test_gru_gradients_match_central_differences_in_float64():
    rng = np.random.default_rng(2)
    gru = random_gru(np.float64, rng)
    xs = rng.standard_normal((3, BATCH, IN))

    def run(x):
        gru.reset_state()
        return F.stack([gru(x[t]) for t in range(len(xs))])

    assert utils.gradient_check(run, xs, rtol=1e-6, atol=1e-8)
    for key in ('x2n/W', 'h2r/W', 'h2n/b', 'x2z/b'):
        param = gru.named_params()[key]
        original = param.data.copy()

        def by_param(value, param=param):
            param.data = value
            return run(xs)

        numerical = utils.numerical_grad(by_param, original)
        param.data = original
        gru.cleargrads()
        F.sum(run(xs)).backward()
        np.testing.assert_allclose(param.grad.data, numerical, rtol=1e-6, atol=1e-8,
                                   err_msg=key)


def test_gru_draws_lazy_weights_in_gate_order_and_names_them_like_its_attributes():
    # h2r, h2z, h2n drawn at construction, then x2r, x2z, x2n on the first step.
    np.random.seed(0)
    expected_h = [np.random.randn(4, 4).astype(np.float32) * np.float32(np.sqrt(1 / 4))
                  for _ in range(3)]
    expected_x = [np.random.randn(3, 4).astype(np.float32) * np.float32(np.sqrt(1 / 3))
                  for _ in range(3)]
    np.random.seed(0)
    gru = L.GRU(4)
    assert [p.data is None for p in gru.params()] == [True, False] * 3 + [False] * 6
    y = gru(np.ones((2, 3), dtype=np.float32))
    assert y.shape == (2, 4) and y.dtype == np.float32
    for g, W in zip(GATES, expected_h):
        np.testing.assert_array_equal(getattr(gru, 'h2' + g).W.data, W)
    for g, W in zip(GATES, expected_x):
        np.testing.assert_array_equal(getattr(gru, 'x2' + g).W.data, W)
    assert list(gru.named_params()) == [f'{s}2{g}/{p}' for s in 'xh' for g in GATES
                                        for p in 'Wb']
    assert gru.extra_repr() == 'hidden_size=4, in_size=3'
    assert L.GRU(5).extra_repr() == 'hidden_size=5, in_size=None'


def test_gru_weights_round_trip_through_a_file(tmp_path):
    rng = np.random.default_rng(3)
    gru = random_gru(np.float32, rng)
    x = rng.standard_normal((BATCH, IN)).astype(np.float32)
    want = [gru(x).data for _ in range(2)]
    gru.save_weights(str(tmp_path / 'gru.npz'))
    fresh = L.GRU(HIDDEN)  # lazy: the file gives the x2* weights
    fresh.load_weights(str(tmp_path / 'gru.npz'))
    got = [fresh(x).data for _ in range(2)]
    np.testing.assert_array_equal(got, want)


def test_gru_state_resets_and_mismatches_are_clear_errors():
    gru = L.GRU(4, in_size=3)
    x = np.ones((2, 3), dtype=np.float32)
    first = gru(x).data
    second = gru(x).data
    assert not np.array_equal(first, second)  # the state carried over
    gru.reset_state()
    assert gru.h is None
    np.testing.assert_array_equal(gru(x).data, first)
    with pytest.raises(ValueError, match=r'GRU: x has batch size 5 but the hidden state '
                                         r'has 2 .*reset_state'):
        gru(np.ones((5, 3), dtype=np.float32))
    with pytest.raises(ValueError, match=r'GRU: x must be \(N, in_size\)'):
        gru(np.ones(3, dtype=np.float32))
    with pytest.raises(ValueError, match=r'GRU: input has 7 features but x2r.W expects 3 '
                                         r'\(x.shape=\(2, 7\)'):
        gru(np.ones((2, 7), dtype=np.float32))
    with pytest.raises(TypeError, match='GRU: hidden_size must be a positive int'):
        L.GRU(2.0)
    with pytest.raises(ValueError, match='GRU: in_size must be a positive int, got 0'):
        L.GRU(3, in_size=0)


def test_gru_truncated_backprop_stops_at_unchain_backward():
    rng = np.random.default_rng(4)
    gru = random_gru(np.float64, rng)
    x = rng.standard_normal((BATCH, IN))
    gru(Variable(x))
    gru(Variable(x)).unchain_backward()  # the graph behind h is cut
    h_then = gru.h.data.copy()
    xv = Variable(x)
    F.sum(gru(xv)).backward()
    # The same as one step from a constant h: nothing flowed into the earlier steps.
    gru.h = Variable(h_then)
    xw = Variable(x)
    F.sum(gru(xw)).backward()
    np.testing.assert_array_equal(xv.grad.data, xw.grad.data)


class _GRUNet(Model):
    def __init__(self):
        super().__init__()
        self.gru = L.GRU(6)
        self.fc = L.Linear(1)

    def reset_state(self):
        self.gru.reset_state()

    def forward(self, x):
        return self.fc(self.gru(x))


class _Stop(Exception):
    """Stands for a kill after a number of loss calls."""


def _bptt_setup(seed=0):
    from zerograd.dataloaders import SeqDataLoader
    from zerograd.datasets import SinCurve
    np.random.seed(0)
    data = SinCurve(train=True)
    data.data, data.label = data.data[:80], data.label[:80]
    np.random.seed(seed)
    model = _GRUNet()
    return model, optimizers.Adam(0.01).setup(model), SeqDataLoader(data, batch_size=4)


def test_fit_bptt_saves_and_restores_the_gru_state_for_an_exact_resume(tmp_path):
    # 20 steps per epoch, an update every 6: stopped in epoch 2 after 13 of its steps, with
    # GRU's h (its only state, like RNN's) saved in the checkpoint and restored.
    model, optimizer, loader = _bptt_setup()
    straight = training.fit_bptt(model, optimizer, loader, 2, bptt_length=6, quiet=True)
    calls = [0]

    def stopping(y, t):
        calls[0] += 1
        if calls[0] > 20 + 13:
            raise _Stop
        return F.mean_squared_error(y, t)

    out = str(tmp_path / 'run')
    first, opt1, loader1 = _bptt_setup()
    with pytest.raises(_Stop):
        training.fit_bptt(first, opt1, loader1, 2, bptt_length=6, out=out, quiet=True,
                          checkpoint_every=0, loss_fn=stopping)
    info = training.checkpoint_info(out)
    assert info['epoch'] == 1 and info['state']['partial']['iteration'] == 12
    assert set(info['state']['partial']['recurrent']) == {'gru/h'}
    resumed, opt2, loader2 = _bptt_setup(seed=3)
    history = training.fit_bptt(resumed, opt2, loader2, 2, bptt_length=6, out=out,
                                resume=True, quiet=True)
    for (_, p), (_, q) in zip(model.named_params().items(), resumed.named_params().items()):
        np.testing.assert_array_equal(p.data, q.data)
    assert history['train_loss'] == straight['train_loss']


# =============================================================================
# LayerNorm
# =============================================================================
@needs_torch
@pytest.mark.parametrize('dtype', [np.float32, np.float64])
@pytest.mark.parametrize('shape, normalized_shape', [((4, 6), 6), ((2, 3, 4, 5), (4, 5)),
                                                     ((3, 2, 5), (5,))])
@pytest.mark.parametrize('affine', [True, False])
def test_layer_norm_matches_torch_layer_norm_values_and_gradients(dtype, shape,
                                                                  normalized_shape, affine):
    rng = np.random.default_rng(5)
    norm = L.LayerNorm(normalized_shape, eps=1e-3, elementwise_affine=affine, dtype=dtype)
    module = torch.nn.LayerNorm(normalized_shape, eps=1e-3, elementwise_affine=affine,
                                dtype=TORCH_DTYPE[dtype])
    if affine:
        norm.gamma.data = rng.standard_normal(norm.gamma.shape).astype(dtype)
        norm.beta.data = rng.standard_normal(norm.beta.shape).astype(dtype)
        with torch.no_grad():
            module.weight.copy_(th(norm.gamma.data))
            module.bias.copy_(th(norm.beta.data))
    x = (rng.standard_normal(shape) * 3 + 1).astype(dtype)
    gy = rng.standard_normal(shape).astype(dtype)
    xv = Variable(x)
    y = norm(xv)
    F.sum(y * gy).backward()
    xt = th(x, True)
    yt = module(xt)
    (yt * th(gy)).sum().backward()
    close(y, yt, dtype, 'y')
    close(xv.grad.data, xt.grad, dtype, 'gx')
    if affine:
        close(norm.gamma.grad.data, module.weight.grad, dtype, 'ggamma')
        close(norm.beta.grad.data, module.bias.grad, dtype, 'gbeta')
    else:
        assert list(norm.params()) == []


def test_layer_norm_gradients_match_central_differences_in_float64():
    rng = np.random.default_rng(6)
    norm = L.LayerNorm((3, 4), dtype=np.float64)
    norm.gamma.data = rng.standard_normal((3, 4))
    norm.beta.data = rng.standard_normal((3, 4))
    x = rng.standard_normal((2, 3, 4))
    assert utils.gradient_check(lambda x: norm(x) * norm(x), x, rtol=1e-6, atol=1e-8)
    gamma = norm.gamma.data.copy()
    numerical = utils.numerical_grad(lambda g: F.layer_norm(x, g, norm.beta.data) ** 2, gamma)
    norm.cleargrads()
    F.sum(norm(x) ** 2).backward()
    np.testing.assert_allclose(norm.gamma.grad.data, numerical, rtol=1e-6, atol=1e-8)


def test_layer_norm_parameters_dtype_repr_and_errors():
    norm = L.LayerNorm(4)
    assert norm.normalized_shape == (4,)
    assert list(norm.named_params()) == ['gamma', 'beta']
    np.testing.assert_array_equal(norm.gamma.data, np.ones(4, np.float32))
    np.testing.assert_array_equal(norm.beta.data, np.zeros(4, np.float32))
    y = norm(np.arange(8, dtype=np.float32).reshape(2, 4))
    assert y.dtype == np.float32
    assert norm.extra_repr() == '(4,), eps=1e-05, elementwise_affine=True'
    with pytest.raises(ValueError, match=r'LayerNorm: x must end with normalized_shape '
                                         r'\(4,\), got shape \(4, 3\)'):
        norm(np.ones((4, 3), np.float32))
    with pytest.raises(TypeError, match='LayerNorm: normalized_shape must be an int'):
        L.LayerNorm(2.5)
    with pytest.raises(ValueError, match='LayerNorm: normalized_shape must hold positive'):
        L.LayerNorm((3, 0))
    with pytest.raises(ValueError, match='LayerNorm: eps must be >= 0'):
        L.LayerNorm(3, eps=-1.0)
    with pytest.raises(ValueError, match='layer_norm: give normalized_shape'):
        F.layer_norm(np.ones((2, 3)))
    with pytest.raises(ValueError, match=r'layer_norm: gamma must have shape \(3,\)'):
        F.layer_norm(np.ones((2, 3)), np.ones(2), normalized_shape=3)


# =============================================================================
# Dropout
# =============================================================================
def test_dropout_layer_drops_in_training_and_is_the_identity_after_eval_or_in_test_mode():
    x = np.ones((50, 40), dtype=np.float32)
    drop = L.Dropout(0.25)
    np.random.seed(7)
    y = drop(x)
    np.random.seed(7)
    np.testing.assert_array_equal(y.data, F.dropout(x, 0.25).data)  # F.dropout's mask
    assert y.dtype == np.float32
    assert 0.2 < (y.data == 0).mean() < 0.3
    np.testing.assert_allclose(y.data[y.data != 0], 1 / 0.75)
    state = np.random.get_state()[1].copy()
    with zerograd.test_mode():
        np.testing.assert_array_equal(drop(x).data, x)
    drop.eval()
    np.testing.assert_array_equal(drop(x).data, x)
    np.testing.assert_array_equal(np.random.get_state()[1], state)  # no mask was drawn
    drop.train()
    assert (drop(x).data == 0).any()
    assert drop.extra_repr() == 'p=0.25'
    with pytest.raises(ValueError, match=r'Dropout: p must be in \[0, 1\), got 1.0'):
        L.Dropout(1.0)
    with pytest.raises(TypeError, match='Dropout: p must be a float'):
        L.Dropout('0.5')


# =============================================================================
# Pooling, Flatten, activations
# =============================================================================
@needs_torch
@pytest.mark.parametrize('dtype', [np.float32, np.float64])
@pytest.mark.parametrize('args', [dict(kernel_size=2), dict(kernel_size=3),
                                  dict(kernel_size=(2, 3)),
                                  dict(kernel_size=3, stride=2, pad=1)])
@pytest.mark.parametrize('kind', ['max', 'avg'])
def test_pooling_layers_match_torch_with_its_default_stride(dtype, args, kind):
    rng = np.random.default_rng(8)
    x = rng.standard_normal((2, 3, 7, 8)).astype(dtype)
    ours = (L.MaxPool2d if kind == 'max' else L.AvgPool2d)(**args)
    theirs_args = {'padding' if k == 'pad' else k: v for k, v in args.items()}
    theirs = (torch.nn.MaxPool2d if kind == 'max' else torch.nn.AvgPool2d)(**theirs_args)
    xv, xt = Variable(x), th(x, True)
    y, yt = ours(xv), theirs(xt)
    gy = rng.standard_normal(tuple(yt.shape)).astype(dtype)
    F.sum(y * gy).backward()
    (yt * th(gy)).sum().backward()
    close(y, yt, dtype, 'y')
    close(xv.grad.data, xt.grad, dtype, 'gx')


def test_pooling_layers_repr_and_errors():
    assert L.MaxPool2d(2).extra_repr() == 'kernel_size=2, stride=2, pad=0'
    assert L.AvgPool2d((2, 3), stride=1, pad=(1, 1)).extra_repr() == \
        'kernel_size=(2, 3), stride=1, pad=(1, 1)'
    with pytest.raises(ValueError, match='MaxPool2d: kernel_size must be positive'):
        L.MaxPool2d(0)
    with pytest.raises(TypeError, match='AvgPool2d: stride must be an int or a pair'):
        L.AvgPool2d(2, stride='2')
    with pytest.raises(ValueError, match=r'MaxPool2d: x must be 4-D \(N, C, H, W\), got '
                                         r'shape \(3, 4\)'):
        L.MaxPool2d(2)(np.ones((3, 4)))


@needs_torch
@pytest.mark.parametrize('start, end', [(1, -1), (0, -1), (1, 2), (-2, -1), (2, 2)])
def test_flatten_matches_torch_flatten(start, end):
    x = np.arange(2 * 3 * 4 * 5, dtype=np.float32).reshape(2, 3, 4, 5)
    y = L.Flatten(start, end)(x)
    want = torch.nn.Flatten(start, end)(th(x)).numpy()
    assert y.shape == want.shape
    np.testing.assert_array_equal(y.data, want)


def test_flatten_default_repr_and_errors():
    assert L.Flatten()(np.zeros((2, 3, 4))).shape == (2, 12)
    assert L.Flatten().extra_repr() == 'start_axis=1, end_axis=-1'
    with pytest.raises(ValueError, match=r'Flatten: start_axis=2, end_axis=1 do not select'):
        L.Flatten(2, 1)(np.zeros((2, 3, 4)))
    with pytest.raises(ValueError, match=r'Flatten: start_axis=3, end_axis=-1'):
        L.Flatten(3)(np.zeros((2, 3, 4)))
    with pytest.raises(TypeError, match='Flatten: start_axis must be an int'):
        L.Flatten(1.0)


@needs_torch
@pytest.mark.parametrize('dtype', [np.float32, np.float64])
@pytest.mark.parametrize('ours, theirs', [
    (lambda: L.ReLU(), lambda: torch.nn.ReLU()),
    (lambda: L.Sigmoid(), lambda: torch.nn.Sigmoid()),
    (lambda: L.Tanh(), lambda: torch.nn.Tanh()),
    (lambda: L.LeakyReLU(0.1), lambda: torch.nn.LeakyReLU(0.1)),
    (lambda: L.Softmax(), lambda: torch.nn.Softmax(dim=1)),
    (lambda: L.Softmax(axis=-1), lambda: torch.nn.Softmax(dim=-1)),
    (lambda: L.LogSoftmax(), lambda: torch.nn.LogSoftmax(dim=1)),
    (lambda: L.Identity(), lambda: torch.nn.Identity()),
], ids=['ReLU', 'Sigmoid', 'Tanh', 'LeakyReLU', 'Softmax', 'Softmax-1', 'LogSoftmax',
        'Identity'])
def test_activation_layers_match_torch(dtype, ours, theirs):
    rng = np.random.default_rng(9)
    x = rng.standard_normal((3, 4, 5)).astype(dtype)
    gy = rng.standard_normal((3, 4, 5)).astype(dtype)
    xv, xt = Variable(x), th(x, True)
    y, yt = ours()(xv), theirs()(xt)
    F.sum(y * gy).backward()
    (yt * th(gy)).sum().backward()
    close(y, yt, dtype, 'y')
    close(xv.grad.data, xt.grad, dtype, 'gx')


def test_activation_layers_repr_their_arguments():
    assert L.LeakyReLU().extra_repr() == 'slope=0.2'  # F.leaky_relu's default
    assert L.Softmax().extra_repr() == 'axis=1'
    assert L.LogSoftmax(axis=0).extra_repr() == 'axis=0'
    assert list(L.ReLU().params()) == []
    with pytest.raises(TypeError, match='LogSoftmax: axis must be an int'):
        L.LogSoftmax(axis=None)
    with pytest.raises(TypeError, match='LeakyReLU: slope must be a float'):
        L.LeakyReLU('0.1')


# =============================================================================
# A whole CNN in Sequential
# =============================================================================
def cnn(dtype):
    """A CNN in Sequential, its lazy weights created by one batch x (4, 1, 8, 8)."""
    model = Sequential(
        L.Conv2d(4, 3, pad=1, dtype=dtype), L.ReLU(), L.MaxPool2d(2), L.Dropout(0.3),
        L.Conv2d(6, 3, dtype=dtype), L.Tanh(), L.AvgPool2d(2), L.Flatten(),
        L.Linear(5, dtype=dtype), L.LayerNorm(5, dtype=dtype), L.LeakyReLU(0.1),
        L.Linear(3, dtype=dtype))
    x = np.random.default_rng(10).standard_normal((4, 1, 8, 8)).astype(dtype)
    model(x)
    return model, x


def cnn_pair(dtype):
    """The same CNN in zerograd and in PyTorch, with PyTorch's weights copied over."""
    torch.manual_seed(0)
    theirs = torch.nn.Sequential(
        torch.nn.Conv2d(1, 4, 3, padding=1), torch.nn.ReLU(), torch.nn.MaxPool2d(2),
        torch.nn.Dropout(0.3), torch.nn.Conv2d(4, 6, 3), torch.nn.Tanh(),
        torch.nn.AvgPool2d(2), torch.nn.Flatten(), torch.nn.Linear(6, 5), torch.nn.LayerNorm(5),
        torch.nn.LeakyReLU(0.1), torch.nn.Linear(5, 3)).to(TORCH_DTYPE[dtype])
    ours, x = cnn(dtype)
    for layer, module in zip(ours.layers, theirs):
        with torch.no_grad():
            if isinstance(layer, L.Conv2d):
                layer.W.data = module.weight.numpy().copy()
                layer.b.data = module.bias.numpy().copy()
            elif isinstance(layer, L.Linear):
                layer.W.data = module.weight.numpy().T.copy()
                layer.b.data = module.bias.numpy().copy()
            elif isinstance(layer, L.LayerNorm):
                module.weight.copy_(torch.linspace(0.5, 1.5, 5))
                module.bias.copy_(torch.linspace(-0.2, 0.2, 5))
                layer.gamma.data = module.weight.numpy().copy()
                layer.beta.data = module.bias.numpy().copy()
    return ours, theirs, x


def torch_grads(theirs):
    grads = []
    for module in theirs:
        if isinstance(module, (torch.nn.Conv2d, torch.nn.Linear, torch.nn.LayerNorm)):
            weight = module.weight.grad.numpy()
            grads += [weight.T if isinstance(module, torch.nn.Linear) else weight,
                      module.bias.grad.numpy()]
    return grads


@needs_torch
@pytest.mark.parametrize('dtype', [np.float32, np.float64])
def test_sequential_cnn_in_eval_mode_matches_torch_sequential_and_trains_the_same(dtype):
    ours, theirs, x = cnn_pair(dtype)
    t = np.array([0, 2, 1, 2])
    ours.eval()
    theirs.eval()
    assert all(not layer.training for layer in ours.layers)
    opt = optimizers.SGD(0.1).setup(ours)
    opt_t = torch.optim.SGD(theirs.parameters(), lr=0.1)
    for step in range(3):
        y = ours(x)
        loss = F.softmax_cross_entropy(y, t)
        ours.cleargrads()
        loss.backward()
        yt = theirs(th(x))
        loss_t = torch.nn.functional.cross_entropy(yt, torch.from_numpy(t))
        opt_t.zero_grad()
        loss_t.backward()
        close(y, yt, dtype, f'forward at step {step}')
        close(loss, loss_t, dtype, f'loss at step {step}')
        for k, (param, grad_t) in enumerate(zip(ours.params(), torch_grads(theirs))):
            close(param.grad.data, grad_t, dtype, f'gradient {k} at step {step}')
        opt.update()
        opt_t.step()


def test_sequential_cnn_trains_on_a_tiny_batch_and_its_weights_round_trip(tmp_path):
    np.random.seed(0)
    ours, x = cnn(np.float32)
    t = np.array([0, 2, 1, 2])
    opt = optimizers.Adam(0.01).setup(ours)
    losses = []
    for _ in range(60):  # in training mode: dropout on
        loss = F.softmax_cross_entropy(ours(x), t)
        ours.cleargrads()
        loss.backward()
        opt.update()
        losses.append(float(loss.data))
    assert losses[-1] < 0.25 * losses[0]
    with zerograd.test_mode():
        assert (ours(x).data.argmax(axis=1) == t).all()
        want = ours(x).data
    ours.save_weights(str(tmp_path / 'cnn.npz'))
    assert 'l9/gamma' in np.load(str(tmp_path / 'cnn.npz'))
    fresh = cnn(np.float32)[0]
    fresh.load_weights(str(tmp_path / 'cnn.npz'))
    fresh.eval()
    np.testing.assert_array_equal(fresh(x).data, want)


def test_a_cnn_and_a_gru_of_the_new_layers_export_to_onnx_and_agree_with_onnxruntime():
    ort = pytest.importorskip('onnxruntime')
    from zerograd import onnx as zonnx

    class Encoder(Model):
        def __init__(self):
            super().__init__()
            self.gru = L.GRU(4)
            self.norm = L.LayerNorm(4)

        def forward(self, x):
            self.gru.reset_state()
            for t in range(x.shape[1]):
                h = self.gru(x[:, t])
            return self.norm(h)

    np.random.seed(0)
    model, x = cnn(np.float32)
    encoder = Encoder()
    xs = np.random.default_rng(11).standard_normal((2, 3, 5)).astype(np.float32)
    encoder(xs)
    for net, inputs in ((Sequential(model, L.Softmax()), x), (encoder, xs)):
        proto = zonnx.export(net, inputs)
        session = ort.InferenceSession(proto.SerializeToString(),
                                       providers=['CPUExecutionProvider'])
        got, = session.run(None, {session.get_inputs()[0].name: inputs})
        with zerograd.test_mode():  # export runs in test mode: dropout off
            want = net(inputs).data
        np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-6)


def test_the_new_layers_on_the_strict_device_stand_in_give_the_cpus_values():
    from zerograd import cuda
    from zerograd.testing_strict import use_strict_device
    rng = np.random.default_rng(12)
    xs = rng.standard_normal((3, 2, 5)).astype(np.float32)
    np.random.seed(0)
    model, x = cnn(np.float32)
    model.eval()
    cpu_y = model(x).data
    with use_strict_device() as xp:
        model.to_gpu()
        y = model(cuda.as_cupy(x))
        F.sum(y).backward()
        assert isinstance(y.data, xp.ndarray)
        np.testing.assert_allclose(cuda.as_numpy(y.data), cpu_y, rtol=1e-5, atol=1e-6)
        assert all(isinstance(p.grad.data, xp.ndarray) for p in model.params())
        gru = L.GRU(4)  # lazy, fed device data without to_gpu(): all of it moves there
        hs = [gru(cuda.as_cupy(xt)) for xt in xs]
        F.sum(hs[-1]).backward()
        assert all(isinstance(p.data, xp.ndarray) for p in gru.params())
        weights = {key: cuda.as_numpy(p.data) for key, p in gru.named_params().items()}
        device_hs = [cuda.as_numpy(h.data) for h in hs]
    cpu_gru = L.GRU(4)
    cpu_gru(xs[0])
    for key, param in cpu_gru.named_params().items():
        param.data = weights[key]
    cpu_gru.reset_state()
    for h, xt in zip(device_hs, xs):
        np.testing.assert_allclose(h, cpu_gru(xt).data, rtol=1e-5, atol=1e-6)
