"""AdamW, RMSprop and Nesterov momentum: step for step against torch.optim (50 steps of a
small least-squares problem with a quartic term, float64), exact resumes through
state_dict and checkpoints, float32 kept; and PyTorch's names beside the book's
(Optimizer.step, zero_grad, Adam(lr=...), betas=...)."""
import numpy as np
import pytest

import zerograd.functions as F
from zerograd import Parameter, Variable, checkpoints
from zerograd.layers import Layer, Linear
from zerograd.optimizers import (SGD, AdaDelta, Adam, AdamW, MomentumSGD, Optimizer,
                                 RMSprop)

STEPS = 50


def make_problem(dtype=np.float64, seed=0):
    """(layer with W (3, 4) and b (4,), x (8, 3), y (8, 4)), fixed random values."""
    rng = np.random.default_rng(seed)
    layer = Layer()
    layer.W = Parameter(rng.standard_normal((3, 4)).astype(dtype), name='W')
    layer.b = Parameter(rng.standard_normal(4).astype(dtype), name='b')
    x = rng.standard_normal((8, 3)).astype(dtype)
    y = rng.standard_normal((8, 4)).astype(dtype)
    return layer, x, y


def _loss_tail(m, r, W):
    """mean(r^2) + 0.05 sum(W^4), with m = zerograd.functions or torch."""
    mean = F.sum(r * r) / r.size if m is F else (r * r).mean()
    return mean + 0.05 * m.sum(W ** 4)


def zerograd_step(layer, optimizer, x, y):
    optimizer.zero_grad()
    loss = _loss_tail(F, F.matmul(x, layer.W) + layer.b - y, layer.W)
    loss.backward()
    optimizer.step()


def torch_step(torch, tensors, optimizer, x, y):
    W, b = tensors
    optimizer.zero_grad()
    r = torch.from_numpy(x) @ W + b - torch.from_numpy(y)
    loss = _loss_tail(torch, r, W)
    loss.backward()
    optimizer.step()


# (id, our optimizer, torch's with the same hyper-parameters: (torch, params) -> optimizer)
CASES = [
    ('AdamW-defaults', lambda: AdamW(), lambda torch, ps: torch.optim.AdamW(ps)),
    ('AdamW-lr-betas', lambda: AdamW(lr=0.02, betas=(0.8, 0.99), eps=1e-6, weight_decay=0.1),
     lambda torch, ps: torch.optim.AdamW(ps, lr=0.02, betas=(0.8, 0.99), eps=1e-6,
                                         weight_decay=0.1)),
    ('AdamW-book-names', lambda: AdamW(alpha=0.05, beta1=0.7, beta2=0.9, weight_decay=0.5),
     lambda torch, ps: torch.optim.AdamW(ps, lr=0.05, betas=(0.7, 0.9), weight_decay=0.5)),
    ('AdamW-no-decay-is-torch-Adam', lambda: AdamW(lr=0.03, weight_decay=0),
     lambda torch, ps: torch.optim.Adam(ps, lr=0.03)),
    ('RMSprop-defaults', lambda: RMSprop(), lambda torch, ps: torch.optim.RMSprop(ps)),
    ('RMSprop-weight-decay', lambda: RMSprop(lr=0.005, alpha=0.9, eps=1e-6, weight_decay=0.1),
     lambda torch, ps: torch.optim.RMSprop(ps, lr=0.005, alpha=0.9, eps=1e-6, weight_decay=0.1)),
    ('RMSprop-momentum', lambda: RMSprop(lr=0.002, momentum=0.9),
     lambda torch, ps: torch.optim.RMSprop(ps, lr=0.002, momentum=0.9)),
    ('RMSprop-centered', lambda: RMSprop(lr=0.003, centered=True),
     lambda torch, ps: torch.optim.RMSprop(ps, lr=0.003, centered=True)),
    ('RMSprop-centered-momentum-decay',
     lambda: RMSprop(lr=0.002, alpha=0.95, momentum=0.5, centered=True, weight_decay=0.01),
     lambda torch, ps: torch.optim.RMSprop(ps, lr=0.002, alpha=0.95, momentum=0.5,
                                           centered=True, weight_decay=0.01)),
    ('MomentumSGD-nesterov', lambda: MomentumSGD(lr=0.02, momentum=0.9, nesterov=True),
     lambda torch, ps: torch.optim.SGD(ps, lr=0.02, momentum=0.9, nesterov=True)),
    ('MomentumSGD-plain', lambda: MomentumSGD(lr=0.02, momentum=0.9),
     lambda torch, ps: torch.optim.SGD(ps, lr=0.02, momentum=0.9)),
]
IDS = [case[0] for case in CASES]


@pytest.mark.parametrize('name, ours, theirs', CASES, ids=IDS)
def test_matches_torch_step_for_step(name, ours, theirs):
    torch = pytest.importorskip('torch')
    layer, x, y = make_problem()
    tensors = [torch.tensor(layer.W.data.copy(), requires_grad=True),
               torch.tensor(layer.b.data.copy(), requires_grad=True)]
    optimizer = ours().setup(layer)
    torch_optimizer = theirs(torch, tensors)
    start = layer.W.data.copy()
    for step in range(STEPS):
        zerograd_step(layer, optimizer, x, y)
        torch_step(torch, tensors, torch_optimizer, x, y)
        for param, tensor in zip((layer.W, layer.b), tensors):
            # The same formulas in the same order: equal to rounding (the issue asks 1e-6).
            np.testing.assert_allclose(param.data, tensor.detach().numpy(), rtol=1e-12,
                                       atol=1e-12, err_msg=f'{name}, step {step + 1}')
    assert np.abs(layer.W.data - start).max() > 1e-2  # the parameters really moved


def test_adamw_decay_is_decoupled_from_the_gradient():
    # With a zero gradient Adam's step is 0 (m = 0), so AdamW only shrinks the weights:
    # p *= 1 - alpha * weight_decay, once per update.
    layer, _, _ = make_problem()
    W = layer.W.data.copy()
    optimizer = AdamW(alpha=0.1, weight_decay=0.2).setup(layer)
    for _ in range(3):
        layer.W.grad = Variable(np.zeros_like(W))
        optimizer.update()
    np.testing.assert_allclose(layer.W.data, W * (1 - 0.1 * 0.2) ** 3, rtol=1e-14)


def run_steps(layer, optimizer, x, y, steps):
    for _ in range(steps):
        zerograd_step(layer, optimizer, x, y)


RESUME_CASES = [
    ('AdamW', lambda: AdamW(lr=0.02, weight_decay=0.1)),
    ('RMSprop', lambda: RMSprop(lr=0.005)),
    ('RMSprop-centered-momentum', lambda: RMSprop(lr=0.002, momentum=0.9, centered=True)),
    ('MomentumSGD-nesterov', lambda: MomentumSGD(lr=0.02, nesterov=True)),
]


@pytest.mark.parametrize('name, make', RESUME_CASES, ids=[c[0] for c in RESUME_CASES])
def test_state_dict_resume_is_bit_for_bit(name, make):
    straight, x, y = make_problem()
    run_steps(straight, make().setup(straight), x, y, STEPS)

    layer, _, _ = make_problem()
    first = make().setup(layer)
    run_steps(layer, first, x, y, 20)
    state = first.state_dict()
    resumed = make().setup(layer)
    resumed.load_state_dict(state)
    run_steps(layer, resumed, x, y, STEPS - 20)
    np.testing.assert_array_equal(layer.W.data, straight.W.data)
    np.testing.assert_array_equal(layer.b.data, straight.b.data)


@pytest.mark.parametrize('name, make', RESUME_CASES, ids=[c[0] for c in RESUME_CASES])
def test_checkpoint_resume_is_bit_for_bit(name, make, tmp_path):
    straight, x, y = make_problem()
    reference = make().setup(straight)
    run_steps(straight, reference, x, y, 20)
    lr_name = type(reference)._lr_name
    setattr(reference, lr_name, getattr(reference, lr_name) / 2)  # as a schedule would
    run_steps(straight, reference, x, y, STEPS - 20)

    layer, _, _ = make_problem()
    first = make().setup(layer)
    run_steps(layer, first, x, y, 20)
    setattr(first, lr_name, getattr(first, lr_name) / 2)
    path = str(tmp_path / 'checkpoint')
    checkpoints.save(path, layer, first)

    fresh, _, _ = make_problem(seed=5)  # other weights: everything comes from the file
    resumed = make()  # the constructor's learning rate: the file's wins
    checkpoints.load(path, fresh, resumed)
    assert getattr(resumed, lr_name) == getattr(first, lr_name)
    run_steps(fresh, resumed, x, y, STEPS - 20)
    np.testing.assert_array_equal(fresh.W.data, straight.W.data)
    np.testing.assert_array_equal(fresh.b.data, straight.b.data)


def test_state_names_follow_the_settings():
    layer, x, y = make_problem()
    expected = {
        RMSprop(): {'square_avg'},
        RMSprop(centered=True): {'square_avg', 'grad_avg'},
        RMSprop(momentum=0.5): {'square_avg', 'momentum_buffer'},
        RMSprop(momentum=0.5, centered=True): {'square_avg', 'grad_avg', 'momentum_buffer'},
        AdamW(): {'t', 'm', 'v'},
        MomentumSGD(nesterov=True): {'v'},
    }
    for optimizer, names in expected.items():
        optimizer.setup(layer)
        state = optimizer.state_dict()
        assert {key.partition('/')[0] for key in state} == names, optimizer
        assert all(key == 't' or key.partition('/')[2] in ('W', 'b') for key in state)


def test_rmsprop_state_of_other_settings_is_refused():
    layer, x, y = make_problem()
    plain = RMSprop().setup(layer)
    run_steps(layer, plain, x, y, 2)
    with pytest.raises(ValueError, match=r"RMSprop.load_state_dict: .*missing "
                                         r"'momentum_buffer/W'"):
        RMSprop(momentum=0.9).setup(layer).load_state_dict(plain.state_dict())


def test_nesterov_checkpoint_needs_a_nesterov_optimizer(tmp_path):
    layer, x, y = make_problem()
    optimizer = MomentumSGD(nesterov=True).setup(layer)
    run_steps(layer, optimizer, x, y, 2)
    path = str(tmp_path / 'nesterov')
    checkpoints.save(path, layer, optimizer)
    with pytest.raises(ValueError, match=r"holds hyper-parameters \['lr', 'momentum', "
                                         r"'nesterov'\], MomentumSGD has \['lr', 'momentum'\]"):
        checkpoints.load(path, make_problem()[0], MomentumSGD())
    restored = MomentumSGD(nesterov=True)
    checkpoints.load(path, make_problem()[0], restored)
    assert restored.nesterov is True


def test_plain_momentum_checkpoint_names_no_nesterov(tmp_path):
    # So a checkpoint written before Nesterov existed (lr and momentum only) still loads.
    layer, x, y = make_problem()
    optimizer = MomentumSGD(lr=0.05).setup(layer)
    run_steps(layer, optimizer, x, y, 2)
    assert optimizer.hyperparams() == {'lr': 0.05, 'momentum': 0.9}
    path = str(tmp_path / 'plain')
    checkpoints.save(path, layer, optimizer)
    with np.load(path + '.npz') as saved:
        assert sorted(k for k in saved.files if k.startswith('optimizer_hyperparams/')) == [
            'optimizer_hyperparams/lr', 'optimizer_hyperparams/momentum']
    restored = MomentumSGD()
    checkpoints.load(path, make_problem()[0], restored)
    assert restored.lr == 0.05 and restored.nesterov is False


def test_rmsprop_centered_round_trips_through_a_checkpoint(tmp_path):
    layer, x, y = make_problem()
    optimizer = RMSprop(centered=True, momentum=0.5).setup(layer)
    run_steps(layer, optimizer, x, y, 2)
    path = str(tmp_path / 'rmsprop')
    checkpoints.save(path, layer, optimizer)
    restored = RMSprop(centered=True, momentum=0.5)
    checkpoints.load(path, make_problem()[0], restored)
    assert restored.centered is True
    assert restored.hyperparams() == optimizer.hyperparams()


FLOAT32_CASES = [AdamW, RMSprop, lambda: RMSprop(momentum=0.9, centered=True, weight_decay=0.1),
                 lambda: MomentumSGD(nesterov=True)]


@pytest.mark.parametrize('numpy_scalars', [False, True], ids=['python', 'numpy-float64'])
@pytest.mark.parametrize('make', FLOAT32_CASES, ids=['AdamW', 'RMSprop', 'RMSprop-all',
                                                     'Nesterov'])
def test_float32_stays_float32(make, numpy_scalars):
    layer, x, y = make_problem(np.float32)
    optimizer = make()
    if numpy_scalars:  # NumPy 2 would promote float32 arrays by a np.float64 scalar
        for name, value in optimizer.hyperparams().items():
            if not isinstance(value, bool):
                setattr(optimizer, name, np.float64(value))
    optimizer.setup(layer)
    reference, _, _ = make_problem(np.float64)
    reference_optimizer = make().setup(reference)
    for _ in range(5):
        zerograd_step(layer, optimizer, x, y)
        zerograd_step(reference, reference_optimizer, x.astype(np.float64),
                      y.astype(np.float64))
    assert layer.W.data.dtype == np.float32 and layer.b.data.dtype == np.float32
    for value in optimizer.state_dict().values():
        if value.ndim:
            assert value.dtype == np.float32
    np.testing.assert_allclose(layer.W.data, reference.W.data, rtol=1e-4, atol=1e-5)


# -- PyTorch's names beside the book's --------------------------------------------------
def test_step_is_update_and_zero_grad_clears_the_targets_gradients():
    layer = Linear(2, in_size=3)
    optimizer = SGD(lr=0.1).setup(layer)
    x = np.ones((4, 3), np.float32)
    F.sum(layer(x)).backward()
    W = layer.W.data.copy()
    gW = layer.W.grad.data.copy()
    optimizer.step()
    np.testing.assert_allclose(layer.W.data, W - np.float32(0.1) * gW, rtol=1e-6)
    optimizer.zero_grad()
    assert layer.W.grad is None and layer.b.grad is None


def test_adam_step_counts_like_update():
    layer, x, y = make_problem()
    optimizer = Adam().setup(layer)
    zerograd_step(layer, optimizer, x, y)
    optimizer.update()
    assert optimizer.t == 2


def test_zero_grad_before_setup():
    with pytest.raises(RuntimeError, match=r'SGD.zero_grad: .*call optimizer.setup'):
        SGD().zero_grad()


@pytest.mark.parametrize('cls', [Adam, AdamW])
def test_adam_accepts_pytorchs_names(cls):
    assert cls(lr=0.02).alpha == 0.02
    assert cls(0.03).alpha == 0.03
    optimizer = cls(lr=0.02, betas=(0.8, 0.95))
    assert (optimizer.alpha, optimizer.beta1, optimizer.beta2) == (0.02, 0.8, 0.95)
    assert cls().alpha == 0.001 and cls().beta1 == 0.9 and cls().beta2 == 0.999
    # lr keeps the book's meaning: the bias-corrected step size of the current step
    assert cls(lr=0.02, betas=(0.8, 0.95)).lr == pytest.approx(0.02 * (1 - 0.95) ** 0.5 / 0.2)


@pytest.mark.parametrize('cls', [Adam, AdamW])
@pytest.mark.parametrize('kwargs, match', [
    ({'alpha': 0.1, 'lr': 0.1}, r'give alpha or lr \(PyTorch\'s name for it\), not both '
                                r'\(got alpha=0.1, lr=0.1\)'),
    ({'beta1': 0.8, 'betas': (0.8, 0.9)}, r'give beta1 and beta2 or betas'),
    ({'betas': 0.9}, r'betas must be a pair \(beta1, beta2\), got 0.9'),
])
def test_adam_refuses_both_names_of_one_value(cls, kwargs, match):
    with pytest.raises(TypeError, match=rf'{cls.__name__}: {match}'):
        cls(**kwargs)


@pytest.mark.parametrize('cls', [Adam, AdamW])
def test_adam_lr_alias_is_checked_like_alpha(cls):
    with pytest.raises(ValueError, match=rf'{cls.__name__}: alpha must be a finite number '
                                         r'>= 0, got -0.1'):
        cls(lr=-0.1)
    with pytest.raises(AttributeError, match=rf'{cls.__name__}: lr is derived .* set alpha'):
        cls().lr = 0.1


def test_hyperparams_and_repr_of_the_new_optimizers():
    assert AdamW().hyperparams() == {'alpha': 0.001, 'beta1': 0.9, 'beta2': 0.999,
                                     'eps': 1e-8, 'weight_decay': 0.01}
    assert RMSprop().hyperparams() == {'lr': 0.01, 'alpha': 0.99, 'eps': 1e-8,
                                       'weight_decay': 0.0, 'momentum': 0.0,
                                       'centered': False}
    assert repr(MomentumSGD(lr=0.1, nesterov=True)) == \
        'MomentumSGD(lr=0.1, momentum=0.9, nesterov=True)'


@pytest.mark.parametrize('factory, error, match', [
    (lambda: AdamW(weight_decay=-0.1), ValueError,
     r'AdamW: weight_decay must be a finite number >= 0, got -0.1'),
    (lambda: RMSprop(alpha=1.0), ValueError, r'RMSprop: alpha must be in \[0, 1\), got 1.0'),
    (lambda: RMSprop(momentum=-0.1), ValueError, r'RMSprop: momentum must be in \[0, 1\)'),
    (lambda: RMSprop(eps=0), ValueError, r'RMSprop: eps must be a finite number > 0'),
    (lambda: RMSprop(centered=2), ValueError, r'RMSprop: centered must be True or False, '
                                              r'got 2'),
    (lambda: RMSprop(centered='yes'), TypeError, r"RMSprop: centered must be True or False, "
                                                 r"got 'yes' \(str\)"),
    (lambda: MomentumSGD(nesterov=None), TypeError, r'MomentumSGD: nesterov must be True or '
                                                    r'False, got None'),
])
def test_bad_hyperparameters_of_the_new_optimizers(factory, error, match):
    with pytest.raises(error, match=match):
        factory()


def test_a_learning_rate_of_zero_changes_nothing():
    # A schedule may reach 0 (cosine annealing to eta_min=0): it must be a valid value.
    layer, x, y = make_problem()
    W = layer.W.data.copy()
    for optimizer in (SGD(lr=0), MomentumSGD(lr=0, nesterov=True), RMSprop(lr=0),
                      AdamW(lr=0, weight_decay=0.1)):
        run_steps(layer, optimizer.setup(layer), x, y, 2)
    np.testing.assert_array_equal(layer.W.data, W)


def test_learning_rate_names():
    assert [cls._lr_name for cls in (SGD, MomentumSGD, RMSprop, Adam, AdamW, AdaDelta)] == \
        ['lr', 'lr', 'lr', 'alpha', 'alpha', None]
    assert Optimizer._lr_name == 'lr'
