"""Learning-rate schedules: values against PyTorch's schedulers of the same names over 100
steps, exact resumes from JSON state (and with checkpoints), the callback protocol
(per epoch, per iteration, record['lr']), which hyper-parameter each optimizer exposes,
and the checks of the arguments."""
import json
import math
import warnings

import numpy as np
import pytest

import zerograd.functions as F
from zerograd import checkpoints, schedulers
from zerograd.callbacks import Callback
from zerograd.layers import Linear
from zerograd.optimizers import (SGD, AdaDelta, AdaGrad, Adam, AdamW, MomentumSGD,
                                 RMSprop)
from zerograd.schedulers import (CosineAnnealingLR, ExponentialLR, LambdaLR, LRScheduler,
                                 MultiStepLR, ReduceLROnPlateau, StepLR)

STEPS = 100


def lrs_by_hand(scheduler, steps=STEPS):
    """get_last_lr() at construction and after each of ``steps`` step() calls."""
    values = [scheduler.get_last_lr()[0]]
    for _ in range(steps):
        scheduler.step()
        values.append(scheduler.get_last_lr()[0])
    return values


def warm_up_then_cosine(n, warmup, start, T_max):
    """The factor of CosineAnnealingLR's docstring with eta_min = 0, written out."""
    if n < warmup:
        return start + (1 - start) * n / warmup
    return (1 + math.cos(math.pi * (n - warmup) / T_max)) / 2


# (id, ours (optimizer -> schedule), PyTorch's (torch module, optimizer -> schedule))
TORCH_CASES = [
    ('StepLR', lambda o: StepLR(o, step_size=7, gamma=0.5),
     lambda T, o: T.StepLR(o, step_size=7, gamma=0.5)),
    ('StepLR-default-gamma', lambda o: StepLR(o, 30), lambda T, o: T.StepLR(o, 30)),
    ('MultiStepLR', lambda o: MultiStepLR(o, [75, 10, 30, 30], gamma=0.3),
     lambda T, o: T.MultiStepLR(o, [75, 10, 30, 30], gamma=0.3)),
    ('ExponentialLR', lambda o: ExponentialLR(o, 0.95),
     lambda T, o: T.ExponentialLR(o, 0.95)),
    ('CosineAnnealingLR', lambda o: CosineAnnealingLR(o, T_max=100),
     lambda T, o: T.CosineAnnealingLR(o, T_max=100)),
    ('CosineAnnealingLR-past-T_max', lambda o: CosineAnnealingLR(o, 40, eta_min=0.001),
     lambda T, o: T.CosineAnnealingLR(o, 40, eta_min=0.001)),
    ('CosineAnnealingLR-warm-up', lambda o: CosineAnnealingLR(o, 90, eta_min=0.001,
                                                              warmup_steps=10,
                                                              warmup_start_factor=0.1),
     lambda T, o: T.SequentialLR(o, [T.LinearLR(o, start_factor=0.1, total_iters=10),
                                     T.CosineAnnealingLR(o, 90, eta_min=0.001)],
                                 milestones=[10])),
    ('CosineAnnealingLR-warm-up-defaults', lambda o: CosineAnnealingLR(o, 80, warmup_steps=20),
     lambda T, o: T.SequentialLR(o, [T.LinearLR(o, total_iters=20), T.CosineAnnealingLR(o, 80)],
                                 milestones=[20])),
    # A warm-up from 0, which LinearLR refuses: PyTorch's LambdaLR with the same factor.
    ('CosineAnnealingLR-warm-up-from-0',
     lambda o: CosineAnnealingLR(o, 95, warmup_steps=5, warmup_start_factor=0),
     lambda T, o: T.LambdaLR(o, lambda n: warm_up_then_cosine(n, 5, 0.0, 95))),
    ('LambdaLR', lambda o: LambdaLR(o, lambda n: 1 / (1 + 0.1 * n)),
     lambda T, o: T.LambdaLR(o, lambda n: 1 / (1 + 0.1 * n))),
]


def torch_lrs(torch, make, base_lr, steps=STEPS):
    param = torch.nn.Parameter(torch.zeros(1))
    optimizer = torch.optim.SGD([param], lr=base_lr)
    with warnings.catch_warnings():
        warnings.simplefilter('ignore')  # step() without an optimizer step, and the like
        scheduler = make(torch.optim.lr_scheduler, optimizer)
        values = [scheduler.get_last_lr()[0]]
        for _ in range(steps):
            optimizer.step()
            scheduler.step()
            values.append(scheduler.get_last_lr()[0])
    return values


@pytest.mark.parametrize('optimizer_factory, name', [
    (lambda: SGD(lr=0.1), 'lr'), (lambda: Adam(alpha=0.1), 'alpha'),
    (lambda: RMSprop(lr=0.1), 'lr')], ids=['SGD', 'Adam', 'RMSprop'])
@pytest.mark.parametrize('case_id, ours, theirs', TORCH_CASES, ids=[c[0] for c in TORCH_CASES])
def test_matches_torch_over_100_steps(case_id, ours, theirs, optimizer_factory, name):
    torch = pytest.importorskip('torch')
    optimizer = optimizer_factory()
    scheduler = ours(optimizer)
    values = [(scheduler.get_last_lr()[0], getattr(optimizer, name))]
    for _ in range(STEPS):
        scheduler.step()
        values.append((scheduler.get_last_lr()[0], getattr(optimizer, name)))
    last_lrs, optimizer_lrs = map(list, zip(*values))
    assert last_lrs == optimizer_lrs  # the schedule's value is the optimizer's
    expected = torch_lrs(torch, theirs, 0.1)
    np.testing.assert_allclose(last_lrs, expected, rtol=1e-12, atol=1e-16)
    assert len(set(last_lrs)) > 2  # the rate really changed


def torch_plateau_lrs(torch, metrics, base_lr, **kwargs):
    param = torch.nn.Parameter(torch.zeros(1))
    optimizer = torch.optim.SGD([param], lr=base_lr)
    scheduler = torch.optim.lr_scheduler.ReduceLROnPlateau(optimizer, **kwargs)
    values = []
    for value in metrics:
        optimizer.step()
        scheduler.step(value)
        values.append(optimizer.param_groups[0]['lr'])
    return values


def plateau_metrics(seed, mode):
    """100 values that improve, then stall, with noise and a few long plateaus."""
    rng = np.random.default_rng(seed)
    trend = np.concatenate([np.linspace(1.0, 0.5, 20), np.full(25, 0.5),
                            np.linspace(0.5, 0.3, 15), np.full(40, 0.3)])
    values = trend + 0.002 * rng.standard_normal(STEPS)
    return [float(v) for v in (values if mode == 'min' else -values)]


PLATEAU_CASES = [
    {},
    {'patience': 3},
    {'patience': 2, 'factor': 0.5, 'cooldown': 3},
    {'patience': 1, 'factor': 0.5, 'min_lr': 0.004},
    {'patience': 2, 'threshold': 0.01, 'threshold_mode': 'abs'},
    {'mode': 'max', 'patience': 2, 'factor': 0.3},
    {'mode': 'max', 'patience': 1, 'threshold': 0.005, 'threshold_mode': 'abs', 'cooldown': 1},
    {'patience': 0, 'factor': 0.9, 'eps': 1e-3},
]


@pytest.mark.parametrize('kwargs', PLATEAU_CASES, ids=[str(k) for k in PLATEAU_CASES])
def test_reduce_on_plateau_matches_torch(kwargs):
    torch = pytest.importorskip('torch')
    metrics = plateau_metrics(0, kwargs.get('mode', 'min'))
    metrics[50] = float('nan')  # never an improvement, for both
    optimizer = MomentumSGD(lr=0.1)
    scheduler = ReduceLROnPlateau(optimizer, **kwargs)
    ours = []
    for value in metrics:
        scheduler.step(value)
        ours.append(optimizer.lr)
        assert scheduler.get_last_lr() == [optimizer.lr]
    expected = torch_plateau_lrs(torch, metrics, 0.1, **kwargs)
    np.testing.assert_allclose(ours, expected, rtol=1e-12, atol=0)
    assert len(set(ours)) > 1, 'the case never reduced the rate'


# -- which hyper-parameter is the learning rate ------------------------------------------
@pytest.mark.parametrize('optimizer, name', [
    (SGD(lr=0.1), 'lr'), (MomentumSGD(lr=0.1), 'lr'), (AdaGrad(lr=0.1), 'lr'),
    (RMSprop(lr=0.1), 'lr'), (Adam(alpha=0.1), 'alpha'), (AdamW(lr=0.1), 'alpha')],
    ids=lambda v: type(v).__name__ if not isinstance(v, str) else v)
def test_each_optimizer_has_its_learning_rate_scheduled(optimizer, name):
    others = {k: v for k, v in optimizer.hyperparams().items() if k != name}
    scheduler = ExponentialLR(optimizer, 0.5)
    scheduler.step()
    assert getattr(optimizer, name) == 0.05 and scheduler.base_lr == 0.1
    assert {k: v for k, v in optimizer.hyperparams().items() if k != name} == others
    if isinstance(optimizer, RMSprop):
        assert optimizer.alpha == 0.99  # RMSprop's alpha is its smoothing constant


def test_adams_bias_corrected_lr_follows_the_scheduled_alpha():
    optimizer = Adam(lr=0.01)
    StepLR(optimizer, 1, gamma=0.5).step()
    assert optimizer.alpha == 0.005
    assert optimizer.lr == pytest.approx(0.005 * math.sqrt(1 - 0.999) / (1 - 0.9))


def test_adadelta_has_no_learning_rate_to_schedule():
    with pytest.raises(TypeError, match=r'StepLR: AdaDelta has no learning rate .* no '
                                        r'schedule can change it'):
        StepLR(AdaDelta(), 10)


def test_schedule_of_something_else_is_refused():
    with pytest.raises(TypeError, match=r'ExponentialLR: optimizer must be a zerograd '
                                        r'Optimizer, got dict'):
        ExponentialLR({'lr': 0.1}, 0.9)


def test_cosine_annealing_reaches_zero_and_sgd_accepts_it():
    optimizer = SGD(lr=0.1)
    scheduler = CosineAnnealingLR(optimizer, T_max=4)
    values = lrs_by_hand(scheduler, 4)
    assert values[-1] == 0.0 and optimizer.lr == 0.0
    np.testing.assert_allclose(values, [0.1 * (1 + math.cos(math.pi * n / 4)) / 2
                                        for n in range(5)], rtol=1e-15, atol=1e-18)


def test_warm_up_starts_at_the_start_factor_at_construction():
    optimizer = SGD(lr=0.2)
    CosineAnnealingLR(optimizer, T_max=10, warmup_steps=4, warmup_start_factor=0.25)
    assert optimizer.lr == 0.05  # 0.2 * 0.25, before any step, as PyTorch's LinearLR


def test_lambda_giving_a_negative_factor_names_the_schedule_and_step():
    optimizer = SGD(lr=0.1)
    scheduler = LambdaLR(optimizer, lambda n: 1 - n)
    scheduler.step()  # factor 0: allowed
    with pytest.raises(ValueError, match=r'LambdaLR: step 2 gives the learning rate -0.1, '
                                         r'which the optimizer refuses: SGD: lr must be a '
                                         r'finite number >= 0'):
        scheduler.step()


def test_lambda_giving_something_else():
    with pytest.raises(TypeError, match=r"LambdaLR: lr_lambda\(0\) must be a real number, "
                                        r"got 'x' \(str\)"):
        LambdaLR(SGD(), lambda n: 'x')


# -- state: JSON values, exact resume ---------------------------------------------------
RESUME_CASES = [
    ('StepLR', lambda o: StepLR(o, 7, gamma=0.5)),
    ('MultiStepLR', lambda o: MultiStepLR(o, [10, 40, 60])),
    ('ExponentialLR', lambda o: ExponentialLR(o, 0.97)),
    ('CosineAnnealingLR', lambda o: CosineAnnealingLR(o, 80, eta_min=1e-4, warmup_steps=10)),
    ('LambdaLR', lambda o: LambdaLR(o, lambda n: 0.99 ** n)),
    ('ReduceLROnPlateau', lambda o: ReduceLROnPlateau(o, patience=2, cooldown=1, factor=0.5)),
]


def drive(scheduler, steps, start=0):
    metrics = plateau_metrics(1, 'min')
    values = []
    for n in range(start, start + steps):
        if isinstance(scheduler, ReduceLROnPlateau):
            scheduler.step(metrics[n])
        else:
            scheduler.step()
        values.append(scheduler.get_last_lr()[0])
    return values


@pytest.mark.parametrize('case_id, make', RESUME_CASES, ids=[c[0] for c in RESUME_CASES])
def test_restored_schedule_continues_exactly(case_id, make):
    straight = drive(make(SGD(lr=0.1)), STEPS)

    first_optimizer = SGD(lr=0.1)
    first = make(first_optimizer)
    before = drive(first, 37)
    text = json.dumps(first.state_dict(), allow_nan=False)  # JSON values only

    optimizer = SGD(lr=0.1)  # a new run: the same settings, the schedule's state loaded
    scheduler = make(optimizer)
    scheduler.load_state_dict(json.loads(text))
    assert optimizer.lr == first_optimizer.lr  # the optimizer gets the schedule's lr
    after = drive(scheduler, STEPS - 37, start=37)
    assert before + after == straight
    assert len(set(straight)) > 1


def test_state_dict_contents():
    optimizer = SGD(lr=0.1)
    scheduler = StepLR(optimizer, 2)
    scheduler.step()
    assert scheduler.state_dict() == {'class': 'StepLR', 'last_epoch': 1, 'base_lr': 0.1,
                                      'last_lr': 0.1, 'lr_in_epoch': None}
    plateau = ReduceLROnPlateau(SGD(lr=0.1))
    assert plateau.state_dict()['best'] is None
    plateau.step(0.5)
    state = plateau.state_dict()
    assert (state['best'], state['num_bad_epochs'], state['cooldown_counter']) == (0.5, 0, 0)


@pytest.mark.parametrize('change, error, match', [
    (lambda s: s.update({'class': 'ExponentialLR'}), ValueError,
     r'the state is that of a ExponentialLR, not of a StepLR'),
    (lambda s: s.pop('base_lr'), ValueError, r"the state has the entries \['class', "
                                             r"'last_epoch', 'last_lr', 'lr_in_epoch'\], a "
                                             r'StepLR has'),
    (lambda s: s.update({'last_epoch': -1}), ValueError, r'last_epoch must be an integer >= 0'),
    (lambda s: s.update({'last_epoch': 2.5}), TypeError, r'last_epoch must be an integer'),
    (lambda s: s.update({'last_lr': float('nan')}), ValueError,
     r'last_lr must be a finite number >= 0, got nan'),
    (lambda s: s.update({'base_lr': '0.1'}), TypeError, r'base_lr must be a real number'),
])
def test_load_state_dict_checks_and_changes_nothing_on_error(change, error, match):
    optimizer = SGD(lr=0.1)
    scheduler = StepLR(optimizer, 2, gamma=0.5)
    drive(scheduler, 5)
    state = scheduler.state_dict()
    before = dict(state)
    change(state)
    with pytest.raises(error, match=r'StepLR.load_state_dict: ' + match):
        scheduler.load_state_dict(state)
    assert scheduler.state_dict() == before and optimizer.lr == before['last_lr']


def test_plateau_state_is_checked():
    scheduler = ReduceLROnPlateau(SGD(lr=0.1))
    state = scheduler.state_dict()
    state['num_bad_epochs'] = -2
    with pytest.raises(ValueError, match=r'ReduceLROnPlateau.load_state_dict: '
                                         r'num_bad_epochs must be an integer >= 0, got -2'):
        scheduler.load_state_dict(state)


# -- the callback protocol ----------------------------------------------------------------
def train_by_hand(model, optimizer, callbacks, epochs, batches, x, t, first_epoch=1,
                  iteration=0, used=None, records=None):
    """A loop that calls the callbacks as training.fit does; returns (used lrs, records)."""
    used = [] if used is None else used
    records = [] if records is None else records
    for epoch in range(first_epoch, first_epoch + epochs):
        for callback in callbacks:
            callback.on_epoch_start(epoch)
        for _ in range(batches):
            used.append(optimizer.lr)
            model.cleargrads()
            loss = F.mean_squared_error(model(x), t)
            loss.backward()
            optimizer.update()
            iteration += 1
            for callback in callbacks:
                callback.on_batch_end(iteration, float(loss.data))
        record = {'train_loss': 1.0 / epoch}
        for callback in callbacks:
            callback.on_epoch_end(epoch, record)
        records.append(record)
    return used, records


def make_model(seed=0):
    np.random.seed(seed)
    model = Linear(2, in_size=3)
    rng = np.random.default_rng(seed)
    return model, rng.standard_normal((5, 3)), rng.standard_normal((5, 2))


def test_is_a_callback_that_steps_per_epoch_and_records_the_lr_used():
    model, x, t = make_model()
    optimizer = SGD(lr=0.1).setup(model)
    scheduler = StepLR(optimizer, step_size=2, gamma=0.5)
    assert isinstance(scheduler, Callback) and isinstance(scheduler, LRScheduler)
    scheduler.on_train_begin(model, optimizer)
    used, records = train_by_hand(model, optimizer, [scheduler], epochs=5, batches=3, x=x, t=t)
    per_epoch = [0.1, 0.1, 0.05, 0.05, 0.025]
    assert used == [lr for lr in per_epoch for _ in range(3)]
    assert [r['lr'] for r in records] == per_epoch
    assert records[0]['train_loss'] == 1.0  # the other entries are kept
    assert optimizer.lr == 0.025 and scheduler.last_epoch == 5


def test_per_iteration_steps_after_each_update_and_records_the_epochs_last_lr():
    model, x, t = make_model()
    optimizer = SGD(lr=0.1).setup(model)
    scheduler = ExponentialLR(optimizer, 0.5, interval='iteration')
    used, records = train_by_hand(model, optimizer, [scheduler], epochs=2, batches=3, x=x, t=t)
    assert used == [0.1 * 0.5 ** n for n in range(6)]
    assert [r['lr'] for r in records] == [used[2], used[5]]
    assert scheduler.last_epoch == 6


def test_iteration_schedule_resumed_mid_epoch_records_the_same_lr():
    model, x, t = make_model()
    optimizer = SGD(lr=0.1).setup(model)
    scheduler = ExponentialLR(optimizer, 0.5, interval='iteration')
    for iteration in (1, 2):
        scheduler.on_batch_end(iteration, 0.0)
    restored = ExponentialLR(SGD(lr=0.1), 0.5, interval='iteration')
    restored.load_state_dict(json.loads(json.dumps(scheduler.state_dict())))
    record, record_restored = {}, {}
    scheduler.on_epoch_end(1, record)
    restored.on_epoch_end(1, record_restored)
    assert record == record_restored == {'lr': 0.05}


def test_reduce_on_plateau_reads_the_monitored_entry():
    optimizer = SGD(lr=0.1)
    scheduler = ReduceLROnPlateau(optimizer, monitor='test_loss', patience=1)
    records = [{'test_loss': v} for v in (1.0, 1.0, 1.0, 0.5)]
    for epoch, record in enumerate(records, start=1):
        scheduler.on_epoch_end(epoch, record)
    assert [r['lr'] for r in records] == [0.1, 0.1, 0.1, pytest.approx(0.01)]
    assert optimizer.lr == pytest.approx(0.01)
    scheduler.on_batch_end(1, 0.3)  # per epoch only
    assert scheduler.last_epoch == 4


def test_reduce_on_plateau_names_the_missing_key_and_the_records_keys():
    scheduler = ReduceLROnPlateau(SGD(), monitor='test_loss')
    with pytest.raises(ValueError, match=r"ReduceLROnPlateau: the record of epoch 3 has no "
                                         r"'test_loss' to monitor; it has \['train_accuracy', "
                                         r"'train_loss'\]"):
        scheduler.on_epoch_end(3, {'train_loss': 0.5, 'train_accuracy': 0.9})


def test_on_train_begin_refuses_another_optimizer():
    model, _, _ = make_model()
    scheduler = StepLR(SGD().setup(model), 3)
    with pytest.raises(ValueError, match=r'StepLR: fit trains with another optimizer'):
        scheduler.on_train_begin(model, SGD().setup(model))


def test_interrupted_training_resumes_bit_for_bit_from_a_checkpoint(tmp_path):
    # Weights and optimizer through zerograd.checkpoints, the schedule's state through JSON
    # (what fit's checkpoints hold): the resumed run's weights equal the straight run's.
    def new_run():
        model, x, t = make_model()
        optimizer = MomentumSGD(lr=0.1, nesterov=True).setup(model)
        scheduler = CosineAnnealingLR(optimizer, T_max=20, warmup_steps=4,
                                      interval='iteration')
        return model, optimizer, scheduler, x, t

    model, optimizer, scheduler, x, t = new_run()
    straight_used, straight_records = train_by_hand(model, optimizer, [scheduler], 6, 4, x, t)

    model, optimizer, scheduler, x, t = new_run()
    used, records = train_by_hand(model, optimizer, [scheduler], 2, 4, x, t)
    path = str(tmp_path / 'run')
    checkpoints.save(path, model, optimizer)
    (tmp_path / 'schedule.json').write_text(json.dumps(scheduler.state_dict()))

    model, optimizer, scheduler, x, t = new_run()
    checkpoints.load(path, model, optimizer)
    scheduler.load_state_dict(json.loads((tmp_path / 'schedule.json').read_text()))
    train_by_hand(model, optimizer, [scheduler], 4, 4, x, t, first_epoch=3, iteration=8,
                  used=used, records=records)
    assert used == straight_used and records == straight_records

    straight_model, straight_optimizer, straight_scheduler, _, _ = new_run()
    train_by_hand(straight_model, straight_optimizer, [straight_scheduler], 6, 4, x, t)
    np.testing.assert_array_equal(model.W.data, straight_model.W.data)
    np.testing.assert_array_equal(model.b.data, straight_model.b.data)


# -- arguments ------------------------------------------------------------------------------
@pytest.mark.parametrize('factory, error, match', [
    (lambda o: StepLR(o, 0), ValueError, r'StepLR: step_size must be an integer >= 1, got 0'),
    (lambda o: StepLR(o, 2.0), TypeError, r'StepLR: step_size must be an integer, got 2.0'),
    (lambda o: StepLR(o, 2, gamma=-1), ValueError, r'StepLR: gamma must be a finite number '
                                                   r'>= 0, got -1.0'),
    (lambda o: StepLR(o, 2, interval='batch'), ValueError,
     r"StepLR: interval must be one of \('epoch', 'iteration'\), got 'batch'"),
    (lambda o: MultiStepLR(o, 5), TypeError, r'MultiStepLR: milestones must be a list'),
    (lambda o: MultiStepLR(o, [5, 0]), ValueError, r'MultiStepLR: a milestone must be an '
                                                   r'integer >= 1, got 0'),
    (lambda o: ExponentialLR(o, float('nan')), ValueError, r'ExponentialLR: gamma must be'),
    (lambda o: CosineAnnealingLR(o, 0), ValueError, r'CosineAnnealingLR: T_max must be an '
                                                    r'integer >= 1'),
    (lambda o: CosineAnnealingLR(o, 10, warmup_start_factor=1.5), ValueError,
     r'CosineAnnealingLR: warmup_start_factor must be in \[0, 1\], got 1.5'),
    (lambda o: CosineAnnealingLR(o, 10, warmup_steps=-1), ValueError,
     r'CosineAnnealingLR: warmup_steps must be an integer >= 0'),
    (lambda o: LambdaLR(o, 0.5), TypeError, r'LambdaLR: lr_lambda must be callable'),
    (lambda o: ReduceLROnPlateau(o, factor=1.0), ValueError,
     r'ReduceLROnPlateau: factor must be < 1'),
    (lambda o: ReduceLROnPlateau(o, mode='lowest'), ValueError,
     r"ReduceLROnPlateau: mode must be one of \('min', 'max'\), got 'lowest'"),
    (lambda o: ReduceLROnPlateau(o, threshold_mode='relative'), ValueError,
     r"ReduceLROnPlateau: threshold_mode must be one of \('rel', 'abs'\)"),
    (lambda o: ReduceLROnPlateau(o, patience=-1), ValueError,
     r'ReduceLROnPlateau: patience must be an integer >= 0'),
    (lambda o: ReduceLROnPlateau(o, monitor=3), TypeError,
     r'ReduceLROnPlateau: monitor must be the name of a record entry'),
])
def test_bad_arguments(factory, error, match):
    optimizer = SGD(lr=0.1)
    with pytest.raises(error, match=match):
        factory(optimizer)
    assert optimizer.lr == 0.1  # nothing changed


def test_plateau_metric_must_be_a_number():
    with pytest.raises(TypeError, match=r"ReduceLROnPlateau.step: the metric must be a real "
                                        r"number, got 'low'"):
        ReduceLROnPlateau(SGD()).step('low')
    scheduler = ReduceLROnPlateau(SGD())
    scheduler.step(np.float32(0.5))  # NumPy scalars are numbers
    assert scheduler.best == 0.5 and type(scheduler.best) is float


def test_module_is_exported():
    import zerograd
    assert zerograd.schedulers is schedulers
    assert repr(StepLR(SGD(lr=0.1), 3)) == 'StepLR(base_lr=0.1, last_epoch=0, lr=0.1)'


def test_drives_a_distributed_optimizer_through_its_wrapper():
    from zerograd import distributed
    inner = MomentumSGD(lr=0.1)
    optimizer = distributed.DistributedOptimizer(inner, distributed.create_communicator())
    optimizer.setup(Linear(2, in_size=3))
    scheduler = StepLR(optimizer, 1, gamma=0.5)
    scheduler.step()
    assert inner.lr == 0.05 and scheduler.get_last_lr() == [0.05]
    scheduler.on_train_begin(inner.target, optimizer)  # the wrapper or the wrapped: one
    scheduler.on_train_begin(inner.target, inner)
