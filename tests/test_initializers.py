"""initializers: each distribution's moments, PyTorch's stds on the same fans, orthogonality,
the layers' use of them (fans, laziness, the book's default bit for bit) and the errors.

The moment checks are statistical, with seeded draws: on N samples the sample mean is
within 6 standard errors (std / sqrt(N)) of the mean, and the sample std within 6 of its
own standard error, std * sqrt((kurtosis - 1) / (4 N)) (the delta method on the sample
variance; kurtosis 3 for a normal law, 9/5 for a uniform one). A correct initializer
fails one check with probability about 2e-9; a wrong fan (a factor 2 in the variance)
misses by hundreds of standard errors.
"""
import math

import numpy as np
import pytest

import zerograd.initializers as I
import zerograd.layers as L
from zerograd import Variable
from zerograd.models import Sequential

KURTOSIS = {'normal': 3.0, 'uniform': 9 / 5}


@pytest.fixture
def torch():
    return pytest.importorskip('torch')


def assert_moments(w, mean, std, law):
    """w's sample mean and std agree with (mean, std) within 6 standard errors."""
    w = np.asarray(w, dtype=np.float64).ravel()
    n = w.size
    assert abs(w.mean() - mean) <= 6 * std / math.sqrt(n), (w.mean(), mean)
    std_error = std * math.sqrt((KURTOSIS[law] - 1) / (4 * n))
    assert abs(w.std() - std) <= 6 * std_error, (w.std(), std)


def assert_law(w, mean, std, law):
    """The shape of the law too: a normal one has 68.27% of its mass within one std
    (binomial standard error sqrt(p (1 - p) / N)); a uniform one fills
    [mean - sqrt(3) std, mean + sqrt(3) std] to its ends and never leaves it."""
    w = np.asarray(w, dtype=np.float64).ravel()
    if law == 'normal':
        p = math.erf(1 / math.sqrt(2))
        inside = np.mean(np.abs(w - mean) <= std)
        assert abs(inside - p) <= 6 * math.sqrt(p * (1 - p) / w.size), inside
    else:
        bound = math.sqrt(3) * std
        assert w.min() >= mean - bound * (1 + 1e-6) and w.max() <= mean + bound * (1 + 1e-6)
        # P(no sample within 1e-4 of an end) = (1 - 5e-5)^N = e^-50 for N = 1e6
        assert w.min() <= mean - bound * (1 - 1e-4) and w.max() >= mean + bound * (1 - 1e-4)


# -----------------------------------------------------------------------------
# Each distribution
# -----------------------------------------------------------------------------
@pytest.mark.parametrize('dtype', [np.float32, np.float64])
def test_normal_draws_the_mean_and_std_asked_in_the_dtype_asked(dtype):
    np.random.seed(0)
    w = I.Normal(mean=0.5, std=2.0)((1000, 1000), dtype)
    assert w.dtype == dtype and w.shape == (1000, 1000)
    assert_moments(w, 0.5, 2.0, 'normal')
    assert_law(w, 0.5, 2.0, 'normal')


def test_normal_defaults_to_pytorchs_standard_normal():
    np.random.seed(1)
    w = I.Normal()((1000, 1000))
    assert w.dtype == np.float32
    assert_moments(w, 0.0, 1.0, 'normal')


@pytest.mark.parametrize('dtype', [np.float32, np.float64])
def test_uniform_stays_in_low_high_with_the_uniform_laws_moments(dtype):
    np.random.seed(2)
    w = I.Uniform(-3.0, 5.0)((1000, 1000), dtype)
    assert w.dtype == dtype
    assert w.min() >= -3.0 and w.max() <= 5.0
    assert_moments(w, 1.0, 8 / math.sqrt(12), 'uniform')
    assert_law(w, 1.0, 8 / math.sqrt(12), 'uniform')


def test_uniform_defaults_to_zero_one():
    np.random.seed(3)
    w = I.Uniform()((1000, 1000), np.float64)
    assert_moments(w, 0.5, 1 / math.sqrt(12), 'uniform')


@pytest.mark.parametrize('init, value', [(I.Constant(0.25), 0.25), (I.Constant(-3), -3.0),
                                         (I.Zeros(), 0.0), (I.Ones(), 1.0)])
def test_constants_fill_every_element_and_draw_nothing(init, value):
    np.random.seed(4)
    state = np.random.get_state()[1].copy()
    w = init((3, 4, 5), np.float16)
    assert w.dtype == np.float16 and w.shape == (3, 4, 5)
    assert np.all(w == value)
    assert np.array_equal(np.random.get_state()[1], state)


# The expected std of each variance-scaling initializer, written from the papers'
# formulas for W (1000, 500): fan_in 1000, fan_out 500 (Linear's (in, out) layout).
FAN_IN, FAN_OUT = 1000, 500
VARIANCE_SCALING = [
    (I.LeCunNormal(), 'normal', math.sqrt(1 / FAN_IN)),
    (I.LeCunUniform(), 'uniform', math.sqrt(1 / FAN_IN)),
    (I.GlorotNormal(), 'normal', math.sqrt(2 / (FAN_IN + FAN_OUT))),
    (I.GlorotUniform(), 'uniform', math.sqrt(2 / (FAN_IN + FAN_OUT))),
    (I.GlorotNormal(gain=5 / 3), 'normal', 5 / 3 * math.sqrt(2 / (FAN_IN + FAN_OUT))),
    (I.HeNormal(), 'normal', math.sqrt(2 / FAN_IN)),
    (I.HeUniform(), 'uniform', math.sqrt(2 / FAN_IN)),
    (I.HeNormal(mode='fan_out'), 'normal', math.sqrt(2 / FAN_OUT)),
    (I.HeUniform(mode='fan_out'), 'uniform', math.sqrt(2 / FAN_OUT)),
    (I.HeNormal(a=0.2), 'normal', math.sqrt(2 / (1 + 0.04) / FAN_IN)),
    (I.HeNormal(nonlinearity='tanh'), 'normal', 5 / 3 / math.sqrt(FAN_IN)),
    (I.HeUniform(nonlinearity='linear'), 'uniform', 1 / math.sqrt(FAN_IN)),
]


@pytest.mark.parametrize('init, law, std', VARIANCE_SCALING, ids=repr)
@pytest.mark.parametrize('fans_given', [True, False])
def test_variance_scaling_draws_zero_mean_with_the_std_of_its_formula(init, law, std,
                                                                     fans_given):
    """With the fans passed (as layers do) or taken from the 2-D shape (in, out)."""
    np.random.seed(5)
    fans = {'fan_in': FAN_IN, 'fan_out': FAN_OUT} if fans_given else {}
    w = init((FAN_IN, FAN_OUT), np.float32, **fans)
    assert w.dtype == np.float32
    assert_moments(w, 0.0, std, law)
    assert_law(w, 0.0, std, law)


def test_fans_read_linears_and_conv2ds_layouts():
    assert I.fans((3, 5)) == (3, 5)
    assert I.fans((8, 3, 2, 5)) == (3 * 10, 8 * 10)
    assert I.fans((8, 3, 4)) == (12, 32)


def test_pytorchs_names_are_the_same_classes():
    assert I.XavierNormal is I.GlorotNormal and I.XavierUniform is I.GlorotUniform
    assert I.KaimingNormal is I.HeNormal and I.KaimingUniform is I.HeUniform


def test_calculate_gain_agrees_with_pytorch(torch):
    for nonlinearity in ['linear', 'conv2d', 'sigmoid', 'tanh', 'relu', 'selu']:
        assert I.calculate_gain(nonlinearity) == pytest.approx(
            torch.nn.init.calculate_gain(nonlinearity), rel=1e-12)
    for slope in [None, 0.0, 0.2, math.sqrt(5)]:
        assert I.calculate_gain('leaky_relu', slope) == pytest.approx(
            torch.nn.init.calculate_gain('leaky_relu', slope), rel=1e-12)


@pytest.mark.parametrize('dtype', [np.float16, np.float32, np.float64])
@pytest.mark.parametrize('name', sorted(I.NAMES))
def test_every_initializer_gives_the_dtype_and_shape_asked(name, dtype):
    w = I.NAMES[name]()((6, 4, 3), dtype)
    assert w.dtype == dtype and w.shape == (6, 4, 3)
    assert np.all(np.isfinite(w))


@pytest.mark.parametrize('name', ['normal', 'uniform', 'he_normal', 'glorot_uniform',
                                  'orthogonal'])
def test_draws_come_from_numpys_global_generator(name):
    """np.random.seed makes them reproducible; they move the global stream on."""
    init = I.NAMES[name]()
    np.random.seed(6)
    first = init((20, 30), np.float64)
    after_first = np.random.rand()
    np.random.seed(6)
    assert np.array_equal(init((20, 30), np.float64), first)
    assert np.random.rand() == after_first
    assert not np.array_equal(init((20, 30), np.float64), first)


# -----------------------------------------------------------------------------
# Against PyTorch: the same std on the same fans, each in its own layout
# -----------------------------------------------------------------------------
# (ours, torch's name, its keyword arguments, law)
TORCH_PAIRS = [
    (I.HeNormal(), 'kaiming_normal_', {}, 'normal'),
    (I.HeNormal(mode='fan_out'), 'kaiming_normal_', {'mode': 'fan_out'}, 'normal'),
    (I.HeNormal(a=0.1, nonlinearity='leaky_relu'), 'kaiming_normal_',
     {'a': 0.1, 'nonlinearity': 'leaky_relu'}, 'normal'),
    (I.HeUniform(), 'kaiming_uniform_', {}, 'uniform'),
    (I.HeUniform(mode='fan_out', nonlinearity='relu'), 'kaiming_uniform_',
     {'mode': 'fan_out', 'nonlinearity': 'relu'}, 'uniform'),
    # PyTorch's default nn.Linear/nn.Conv2d weight: kaiming_uniform_(a=sqrt(5))
    (I.HeUniform(a=math.sqrt(5)), 'kaiming_uniform_', {'a': math.sqrt(5)}, 'uniform'),
    (I.GlorotNormal(), 'xavier_normal_', {}, 'normal'),
    (I.GlorotUniform(gain=2.0), 'xavier_uniform_', {'gain': 2.0}, 'uniform'),
]


def _assert_same_std(ours, theirs, law):
    """Two samples' stds agree within 6 standard errors of their difference."""
    ours = np.asarray(ours, dtype=np.float64).ravel()
    theirs = np.asarray(theirs, dtype=np.float64).ravel()
    assert abs(ours.mean()) <= 6 * ours.std() / math.sqrt(ours.size)
    scale = math.sqrt((KURTOSIS[law] - 1) / 4)
    error = math.hypot(ours.std() * scale / math.sqrt(ours.size),
                       theirs.std() * scale / math.sqrt(theirs.size))
    assert abs(ours.std() - theirs.std()) <= 6 * error, (ours.std(), theirs.std())


@pytest.mark.parametrize('ours, name, kwargs, law', TORCH_PAIRS, ids=repr)
def test_linear_weights_have_pytorchs_std_for_nn_linears_weight(torch, ours, name, kwargs,
                                                               law):
    """zerograd's Linear W is (in, out), nn.Linear's weight (out, in): the fans must follow
    the layer, not the shape's first axis (fan_in 1000 and fan_out 250 differ by 4)."""
    np.random.seed(7)
    layer = L.Linear(250, in_size=1000, initializer=ours)
    assert layer.W.shape == (1000, 250)
    torch.manual_seed(7)
    weight = torch.nn.Linear(1000, 250).weight.detach()
    assert tuple(weight.shape) == (250, 1000)
    with torch.no_grad():
        getattr(torch.nn.init, name)(weight, **kwargs)
    _assert_same_std(layer.W.data, weight.numpy(), law)


@pytest.mark.parametrize('ours, name, kwargs, law', TORCH_PAIRS, ids=repr)
def test_conv2d_weights_have_pytorchs_std_for_nn_conv2ds_weight(torch, ours, name, kwargs,
                                                               law):
    np.random.seed(8)
    layer = L.Conv2d(256, kernel_size=3, in_channels=64, initializer=ours)
    torch.manual_seed(8)
    weight = torch.nn.Conv2d(64, 256, kernel_size=3).weight.detach()
    assert tuple(weight.shape) == layer.W.shape == (256, 64, 3, 3)
    with torch.no_grad():
        getattr(torch.nn.init, name)(weight, **kwargs)
    _assert_same_std(layer.W.data, weight.numpy(), law)


def test_he_uniform_with_a_sqrt5_is_pytorchs_default_linear_weight(torch):
    np.random.seed(9)
    layer = L.Linear(300, in_size=800, initializer=I.HeUniform(a=math.sqrt(5)))
    torch.manual_seed(9)
    weight = torch.nn.Linear(800, 300).weight.detach().numpy()
    _assert_same_std(layer.W.data, weight, 'uniform')
    bound = 1 / math.sqrt(800)  # PyTorch's documented U(-1/sqrt(in), 1/sqrt(in))
    assert np.abs(layer.W.data).max() <= bound * (1 + 1e-6)


def test_orthogonal_matches_pytorchs_orthogonal_in_norms(torch):
    """Both give the same singular values: all equal to the gain."""
    np.random.seed(10)
    ours = I.Orthogonal(gain=1.5)((40, 70), np.float64)
    weight = torch.empty(40, 70, dtype=torch.float64)
    torch.nn.init.orthogonal_(weight, gain=1.5)
    np.testing.assert_allclose(np.linalg.svd(ours, compute_uv=False),
                               np.linalg.svd(weight.numpy(), compute_uv=False), atol=1e-12)


# -----------------------------------------------------------------------------
# Orthogonal
# -----------------------------------------------------------------------------
@pytest.mark.parametrize('dtype', [np.float32, np.float64])
@pytest.mark.parametrize('shape', [(300, 300), (500, 200), (200, 500), (64, 32, 3, 3),
                                   (16, 8, 3, 3)])
def test_orthogonal_has_orthonormal_columns_when_tall_and_rows_when_wide(shape, dtype):
    np.random.seed(11)
    w = I.Orthogonal()(shape, dtype)
    assert w.dtype == dtype and w.shape == shape
    m = w.reshape(shape[0], -1).astype(np.float64)
    rows, cols = m.shape
    product = m.T @ m if rows >= cols else m @ m.T
    np.testing.assert_allclose(product, np.eye(min(rows, cols)), rtol=0, atol=1e-5)


def test_orthogonal_scales_by_its_gain():
    np.random.seed(12)
    w = I.Orthogonal(gain=0.5)((50, 30), np.float64)
    np.testing.assert_allclose(w.T @ w, 0.25 * np.eye(30), rtol=0, atol=1e-12)


def test_orthogonal_is_not_always_the_same_matrix():
    np.random.seed(13)
    a, b = I.Orthogonal()((5, 5), np.float64), I.Orthogonal()((5, 5), np.float64)
    assert not np.allclose(a, b)


# -----------------------------------------------------------------------------
# Layers
# -----------------------------------------------------------------------------
@pytest.mark.parametrize('dtype', [np.float16, np.float32, np.float64])
def test_default_linear_and_conv_weights_are_the_books_draws_bit_for_bit(dtype):
    """No initializer: W = randn(...).astype(dtype) * dtype(sqrt(1 / fan_in)), as before."""
    np.random.seed(14)
    linear = L.Linear(5, in_size=7, dtype=dtype)
    conv = L.Conv2d(4, kernel_size=3, in_channels=2, dtype=dtype)
    deconv = L.Deconv2d(4, kernel_size=(2, 3), in_channels=6, dtype=dtype)
    np.random.seed(14)
    expected = [np.random.randn(7, 5).astype(dtype) * dtype(np.sqrt(1 / 7)),
                np.random.randn(4, 2, 3, 3).astype(dtype) * dtype(np.sqrt(1 / 18)),
                np.random.randn(6, 4, 2, 3).astype(dtype) * dtype(np.sqrt(1 / 36))]
    for layer, W in zip([linear, conv, deconv], expected):
        assert layer.W.dtype == dtype
        assert np.array_equal(layer.W.data, W)
        assert np.array_equal(layer.b.data, np.zeros(layer.b.shape, dtype))


def test_lecun_normal_given_is_the_default_bit_for_bit():
    np.random.seed(15)
    default = L.Linear(6, in_size=9).W.data
    np.random.seed(15)
    given = L.Linear(6, in_size=9, initializer=I.LeCunNormal()).W.data
    assert np.array_equal(default, given)


def test_embed_id_defaults_to_the_books_randn_and_takes_an_initializer():
    np.random.seed(16)
    embed = L.EmbedID(10, 4)
    np.random.seed(16)
    assert np.array_equal(embed.W.data, np.random.randn(10, 4).astype(np.float32))
    np.random.seed(17)
    embed = L.EmbedID(2000, 300, initializer=I.GlorotUniform())
    assert embed.W.dtype == np.float32
    assert_moments(embed.W.data, 0.0, math.sqrt(2 / 2300), 'uniform')
    embed = L.EmbedID(1000, 300, initializer=I.HeNormal())  # fan_in: the vocabulary
    assert_moments(embed.W.data, 0.0, math.sqrt(2 / 1000), 'normal')


@pytest.mark.parametrize('make', [
    lambda **kw: L.Linear(3, in_size=4, **kw),
    lambda **kw: L.Conv2d(3, kernel_size=2, in_channels=4, **kw),
    lambda **kw: L.Deconv2d(3, kernel_size=2, in_channels=4, **kw),
])
def test_a_layer_draws_w_and_b_with_the_initializers_given(make):
    layer = make(initializer=I.Constant(0.5), bias_initializer=I.Constant(-2.0))
    assert layer.W.dtype == np.float32 and np.all(layer.W.data == 0.5)
    assert layer.b.dtype == np.float32 and np.array_equal(layer.b.data, [-2.0] * 3)
    layer = make(initializer='ones', bias_initializer='zeros')  # by name
    assert np.all(layer.W.data == 1) and np.all(layer.b.data == 0)


def test_a_plain_callable_gets_the_shape_and_its_result_is_cast_to_the_layers_dtype():
    shapes = []

    def arange(shape):
        shapes.append(shape)
        return np.arange(math.prod(shape), dtype=np.float64).reshape(shape)

    layer = L.Linear(3, in_size=2, initializer=arange, bias_initializer=lambda s: np.ones(s))
    assert shapes == [(2, 3)]
    assert layer.W.dtype == np.float32
    np.testing.assert_array_equal(layer.W.data, [[0, 1, 2], [3, 4, 5]])
    np.testing.assert_array_equal(layer.b.data, [1, 1, 1])


def test_a_lazy_layer_draws_with_the_fans_of_its_first_input():
    np.random.seed(18)
    layer = L.Linear(500, initializer=I.HeNormal(), bias_initializer=I.LeCunUniform())
    assert layer.W.data is None and layer.b.data is None  # b waits for the fans too
    y = layer(np.zeros((2, 2000), dtype=np.float32))
    assert y.shape == (2, 500) and layer.W.shape == (2000, 500)
    assert_moments(layer.W.data, 0.0, math.sqrt(2 / 2000), 'normal')
    bound = math.sqrt(3 / 2000)  # the layer's fan_in
    assert layer.b.dtype == np.float32 and np.abs(layer.b.data).max() <= bound
    assert np.abs(layer.b.data).max() > bound / 2


def test_a_lazy_layer_draws_what_an_eager_one_draws_w_then_b():
    for eager, lazy in [
            (lambda: L.Linear(4, in_size=3, initializer='he_uniform',
                              bias_initializer='normal'),
             lambda: L.Linear(4, initializer='he_uniform', bias_initializer='normal')),
            (lambda: L.Conv2d(4, 3, in_channels=2, initializer='orthogonal',
                              bias_initializer='uniform'),
             lambda: L.Conv2d(4, 3, initializer='orthogonal', bias_initializer='uniform'))]:
        np.random.seed(19)
        a = eager()
        np.random.seed(19)
        b = lazy()
        b(np.zeros((1, 2, 5, 5) if isinstance(b, L.Conv2d) else (1, 3), dtype=np.float32))
        assert np.array_equal(a.W.data, b.W.data) and np.array_equal(a.b.data, b.b.data)


def test_conv_layers_take_fan_in_from_their_input_side():
    """Conv2d W (OC, C, KH, KW) and Deconv2d W (C, OC, KH, KW): fan_in = C KH KW for
    both, fan_out = OC KH KW."""
    np.random.seed(20)
    C, OC = 64, 128
    conv = L.Conv2d(OC, kernel_size=3, in_channels=C, initializer=I.HeNormal())
    assert_moments(conv.W.data, 0.0, math.sqrt(2 / (C * 9)), 'normal')
    conv = L.Conv2d(OC, kernel_size=3, in_channels=C, initializer=I.HeNormal(mode='fan_out'))
    assert_moments(conv.W.data, 0.0, math.sqrt(2 / (OC * 9)), 'normal')
    deconv = L.Deconv2d(OC, kernel_size=3, in_channels=C, initializer=I.HeNormal())
    assert deconv.W.shape == (C, OC, 3, 3)
    assert_moments(deconv.W.data, 0.0, math.sqrt(2 / (C * 9)), 'normal')
    lazy = L.Conv2d(OC, kernel_size=(3, 5), initializer=I.GlorotUniform())
    lazy(np.zeros((1, C, 8, 8), dtype=np.float32))
    assert_moments(lazy.W.data, 0.0, math.sqrt(2 / ((C + OC) * 15)), 'uniform')


def test_weights_loaded_into_a_lazy_layer_are_not_drawn_over(tmp_path):
    source = Sequential(L.Linear(4, in_size=3, bias_initializer='normal'))
    source.save_weights(str(tmp_path / 'w.npz'))
    target = Sequential(L.Linear(4, bias_initializer='normal'))
    target.load_weights(str(tmp_path / 'w.npz'))
    target(np.zeros((2, 3), dtype=np.float32))
    for a, b in zip(source.params(), target.params()):
        assert np.array_equal(a.data, b.data)


def test_a_failing_bias_initializer_leaves_a_lazy_layer_uncreated():
    layer = L.Linear(3, bias_initializer=I.Orthogonal())
    with pytest.raises(ValueError, match=r'Orthogonal: needs a shape of at least 2'):
        layer(np.zeros((2, 4), dtype=np.float32))
    assert layer.W.data is None and layer.b.data is None


def test_initializers_work_on_the_devices_array_module():
    """On the strict CuPy stand-in: W and b are device arrays, drawn with its module."""
    from zerograd.testing_strict import StrictArray, strict, use_strict_device
    with use_strict_device():
        for name in sorted(I.NAMES):
            w = I.NAMES[name]()((4, 3), np.float32, strict)
            assert type(w) is StrictArray and w.dtype == np.float32, name
        layer = L.Linear(3, initializer='orthogonal', bias_initializer=np.ones)
        layer(Variable(strict.zeros((2, 5), dtype=np.float32)))
        assert type(layer.W.data) is StrictArray and type(layer.b.data) is StrictArray
        np.testing.assert_allclose(strict.asnumpy(layer.W.data.T @ layer.W.data),
                                   np.eye(3), atol=1e-6)


# -----------------------------------------------------------------------------
# Errors
# -----------------------------------------------------------------------------
@pytest.mark.parametrize('make, error, message', [
    (lambda: I.Normal(std=-1.0), ValueError, r'Normal: std must be >= 0, got -1'),
    (lambda: I.Normal(mean=float('nan')), ValueError, r'Normal: mean must be finite'),
    (lambda: I.Normal(std='1'), TypeError, r"Normal: std must be a real number, got '1'"),
    (lambda: I.Uniform(1.0, 1.0), ValueError, r'Uniform: low must be less than high'),
    (lambda: I.Uniform(2.0, -1.0), ValueError, r'low=2.0, high=-1.0'),
    (lambda: I.Constant(None), TypeError, r'Constant: value must be a real number'),
    (lambda: I.Constant(True), TypeError, r'Constant: value must be a real number'),
    (lambda: I.HeNormal(mode='fan_avg'), ValueError,
     r"HeNormal: mode must be one of 'fan_in', 'fan_out', got 'fan_avg'"),
    (lambda: I.HeUniform(nonlinearity='gelu'), ValueError,
     r"HeUniform: nonlinearity must be one of .* got 'gelu'"),
    (lambda: I.GlorotNormal(gain=float('inf')), ValueError, r'GlorotNormal: gain must be'),
    (lambda: I.Orthogonal()((5,)), ValueError,
     r'Orthogonal: needs a shape of at least 2 dimensions, got \(5,\)'),
    (lambda: I.HeNormal()((5,)), ValueError, r'HeNormal: needs fan_in and fan_out'),
    (lambda: I.HeNormal()((5,), fan_in=0, fan_out=3), ValueError,
     r'HeNormal: fan_in must be a positive int, got 0'),
    (lambda: I.HeNormal()((5, 0)), ValueError, r'HeNormal: fans must be positive'),
    (lambda: I.Normal()((2, -1)), ValueError, r'Normal: shape must not have a negative size'),
    (lambda: I.Normal()((2, 1.5)), TypeError, r'Normal: shape must be a tuple of ints'),
    (lambda: I.Normal()((2, 3), np.int32), TypeError,
     r'Normal: dtype must be float16, float32 or float64, got int32'),
    (lambda: I.fans((4,)), ValueError, r'fans: .* fewer than 2 dimensions'),
    (lambda: I.calculate_gain('swish'), ValueError, r'calculate_gain: nonlinearity'),
    (lambda: L.Linear(3, initializer=0.1), TypeError,
     r'Linear: initializer must be .* got the number 0.1; .*Constant\(0.1\)'),
    (lambda: L.Linear(3, initializer='he'), ValueError,
     r"Linear: unknown initializer 'he'; the names are .*he_normal"),
    (lambda: L.Conv2d(3, 3, initializer=I.HeNormal), TypeError,
     r'Conv2d: initializer must be an Initializer object, got the class HeNormal; '
     r'write HeNormal\(\)'),
    (lambda: L.Deconv2d(3, 3, bias_initializer=object()), TypeError,
     r'Deconv2d: bias_initializer must be an Initializer'),
    (lambda: L.Linear(3, nobias=True, bias_initializer='zeros'), ValueError,
     r'Linear: bias_initializer given with nobias=True'),
    (lambda: L.EmbedID(3, 2, initializer=[1, 2]), TypeError,
     r'EmbedID: initializer must be an Initializer'),
    (lambda: L.Linear(3, in_size=2, initializer=lambda shape: np.zeros(3)), ValueError,
     r'initializer <lambda>: returned shape \(3,\), expected \(2, 3\)'),
    (lambda: L.Linear(3, in_size=2, initializer=lambda shape: 0.0), TypeError,
     r'initializer <lambda>: must return an array, got float'),
])
def test_bad_initializers_and_hyper_parameters_are_named_errors(make, error, message):
    with pytest.raises(error, match=message):
        make()
