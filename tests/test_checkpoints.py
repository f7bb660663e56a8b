"""Checkpoints: training resumed from a file ends bit for bit where uninterrupted training
ends, for every optimizer; files are plain arrays, written atomically, checked on load."""
import os
import subprocess
import sys
import zipfile

import numpy as np
import pytest

import zerograd.functions as F
from zerograd import checkpoints
from zerograd import layers as L
from zerograd.models import MLP
from zerograd.optimizers import (SGD, AdaDelta, AdaGrad, Adam, ClipGrad, MomentumSGD,
                                 WeightDecay)

OPTIMIZERS = [  # non-default hyper-parameters, so that restoring them matters
    lambda: Adam(alpha=0.01, beta1=0.8),
    lambda: MomentumSGD(lr=0.1, momentum=0.7),
    lambda: AdaGrad(lr=0.05),
    lambda: AdaDelta(rho=0.9),
    lambda: SGD(lr=0.1),
]
IDS = ['Adam', 'MomentumSGD', 'AdaGrad', 'AdaDelta', 'SGD']


@pytest.fixture(autouse=True)
def keep_global_random_state():
    """new_model seeds NumPy's global generator; other tests get theirs back untouched."""
    state = np.random.get_state()
    yield
    np.random.set_state(state)


def data():
    rng = np.random.default_rng(0)
    x = rng.standard_normal((20, 4)).astype(np.float32)
    t = rng.integers(0, 3, size=20)
    return x, t


def new_model(seed=0, created=False):
    """MLP((5, 3)); its weights are drawn from NumPy's global generator seeded with
    ``seed`` at the first call, or at once when ``created``."""
    np.random.seed(seed)
    model = MLP((5, 3))
    if created:
        model(data()[0])
    return model


def train(model, optimizer, steps):
    x, t = data()
    for _ in range(steps):
        loss = F.softmax_cross_entropy(model(x), t)
        model.cleargrads()
        loss.backward()
        optimizer.update()


def weights(model):
    return {key: param.data.copy() for key, param in model.named_params().items()}


@pytest.mark.parametrize('make_optimizer', OPTIMIZERS, ids=IDS)
def test_resume_is_bit_exact(tmp_path, make_optimizer):
    straight = new_model()
    train(straight, make_optimizer().setup(straight), 10)

    first = new_model()
    optimizer = make_optimizer().setup(first)
    train(first, optimizer, 5)
    path = tmp_path / 'ckpt.npz'
    checkpoints.save(path, first, optimizer, epoch=5)

    resumed = new_model(seed=123)  # weights created lazily: none yet, load gives them
    assert resumed.l0.W.data is None
    new_optimizer = type(optimizer)().setup(resumed)  # default hyper-parameters: restored
    assert checkpoints.load(path, resumed, new_optimizer) == {'epoch': 5}
    assert new_optimizer.hyperparams() == optimizer.hyperparams()
    train(resumed, new_optimizer, 5)

    expected, got = weights(straight), weights(resumed)
    assert set(expected) == set(got) == {'l0/W', 'l0/b', 'l1/W', 'l1/b'}
    for key in expected:
        assert got[key].dtype == np.float32
        assert np.array_equal(got[key], expected[key]), key


@pytest.mark.parametrize('make_optimizer', OPTIMIZERS[:4], ids=IDS[:4])
def test_resume_without_optimizer_state_differs(tmp_path, make_optimizer):
    # The exact test above means something: weights alone do not resume these optimizers.
    straight = new_model()
    train(straight, make_optimizer().setup(straight), 10)
    first = new_model()
    train(first, make_optimizer().setup(first), 5)
    checkpoints.save(tmp_path / 'ckpt.npz', first)
    resumed = new_model(seed=123, created=True)
    checkpoints.load(tmp_path / 'ckpt.npz', resumed)
    train(resumed, make_optimizer().setup(resumed), 5)
    assert not np.array_equal(resumed.l0.W.data, straight.l0.W.data)


def test_resume_with_hooks_is_bit_exact(tmp_path):
    def make():
        optimizer = Adam(alpha=0.05)
        optimizer.add_hook(WeightDecay(1e-3))
        optimizer.add_hook(ClipGrad(0.5))
        return optimizer

    straight = new_model()
    train(straight, make().setup(straight), 6)
    first = new_model()
    optimizer = make().setup(first)
    train(first, optimizer, 3)
    checkpoints.save(tmp_path / 'ckpt.npz', first, optimizer)
    resumed = new_model(seed=7, created=True)  # other weights, all overwritten by load
    optimizer = make()  # not set up: load sets it up on the model
    checkpoints.load(tmp_path / 'ckpt.npz', resumed, optimizer)
    assert optimizer.target is resumed
    train(resumed, optimizer, 3)
    for key, value in weights(straight).items():
        assert np.array_equal(weights(resumed)[key], value), key


def trained(tmp_path, optimizer=None, **extra):
    model = new_model()
    optimizer = optimizer or Adam()
    optimizer.setup(model)
    train(model, optimizer, 2)
    path = tmp_path / 'ckpt.npz'
    checkpoints.save(path, model, optimizer, **extra)
    return path, model, optimizer


def test_file_layout_is_plain_arrays(tmp_path):
    path, model, optimizer = trained(tmp_path, epoch=2)
    with np.load(path, allow_pickle=False) as npz:
        files = set(npz.files)
        assert str(npz['optimizer_class']) == 'Adam'
        assert npz['optimizer_class'].dtype.kind == 'U'
        assert float(npz['optimizer_hyperparams/alpha']) == 0.001
        assert int(npz['optimizer/t']) == 2
        np.testing.assert_array_equal(npz['model/l0/W'], model.l0.W.data)
    assert files == {
        'zerograd_checkpoint', 'model/l0/W', 'model/l0/b', 'model/l1/W', 'model/l1/b',
        'optimizer_class', 'optimizer_hyperparams/alpha', 'optimizer_hyperparams/beta1',
        'optimizer_hyperparams/beta2', 'optimizer_hyperparams/eps', 'optimizer/t',
        'optimizer/m/l0/W', 'optimizer/m/l0/b', 'optimizer/m/l1/W', 'optimizer/m/l1/b',
        'optimizer/v/l0/W', 'optimizer/v/l0/b', 'optimizer/v/l1/W', 'optimizer/v/l1/b',
        'extra/epoch'}


def test_extras_round_trip(tmp_path):
    path, model, optimizer = trained(tmp_path, epoch=7, loss=0.25, best=True, tag='run-1',
                                     step=np.int64(40))
    extras = checkpoints.load(path, new_model(), Adam())
    assert extras == {'epoch': 7, 'loss': 0.25, 'best': True, 'tag': 'run-1', 'step': 40}
    assert type(extras['epoch']) is int and type(extras['loss']) is float
    assert type(extras['best']) is bool and type(extras['step']) is int


def test_extras_must_be_scalars(tmp_path):
    model = new_model()
    train(model, SGD().setup(model), 1)
    with pytest.raises(TypeError, match=r"checkpoints.save: extra 'history' must be an int, "
                                        r'float, bool or str, got list'):
        checkpoints.save(tmp_path / 'ckpt.npz', model, history=[1, 2])
    assert os.listdir(tmp_path) == []


def test_mismatched_optimizer_class(tmp_path):
    path, model, _ = trained(tmp_path)
    other = new_model()
    with pytest.raises(ValueError, match=r'holds the state of a Adam optimizer, not of '
                                         r'MomentumSGD'):
        checkpoints.load(path, other, MomentumSGD().setup(other))
    assert other.l0.W.data is None  # nothing was loaded


def test_checkpoint_without_optimizer(tmp_path):
    model = new_model()
    train(model, SGD().setup(model), 1)
    path = tmp_path / 'ckpt.npz'
    checkpoints.save(path, model)
    with pytest.raises(ValueError, match='holds no optimizer state'):
        checkpoints.load(path, new_model(), SGD())
    other = new_model()
    assert checkpoints.load(path, other) == {}
    np.testing.assert_array_equal(other.l1.W.data, model.l1.W.data)


def test_model_only_load_ignores_optimizer_state(tmp_path):
    path, model, _ = trained(tmp_path)
    other = new_model(seed=5)
    checkpoints.load(path, other)
    for key, value in weights(model).items():
        np.testing.assert_array_equal(weights(other)[key], value)


def test_corrupt_file(tmp_path):
    path, _, _ = trained(tmp_path)
    raw = path.read_bytes()
    path.write_bytes(raw[:len(raw) // 2])
    with pytest.raises(ValueError, match=r'checkpoints.load: .*ckpt.npz.* corrupt or truncated'):
        checkpoints.load(path, new_model(), Adam())
    path.write_bytes(b'not a zip file at all')
    with pytest.raises(ValueError, match=r'checkpoints.load: '):
        checkpoints.load(path, new_model(), Adam())


def test_pickled_arrays_are_refused(tmp_path):
    path = tmp_path / 'evil.npz'
    np.savez(path, zerograd_checkpoint=np.array(1), **{'model/l0/W': np.array([None])})
    with pytest.raises(ValueError, match='need pickle'):
        checkpoints.load(path, new_model())


def test_weights_file_is_not_a_checkpoint(tmp_path):
    model = new_model()
    train(model, SGD().setup(model), 1)
    model.save_weights(str(tmp_path / 'weights.npz'))
    with pytest.raises(ValueError, match='not a checkpoint written by zerograd.checkpoints'):
        checkpoints.load(tmp_path / 'weights.npz', new_model())


def test_mismatched_model(tmp_path):
    path, _, _ = trained(tmp_path)
    wrong = MLP((6, 3))
    wrong(np.zeros((1, 4), np.float32))
    with pytest.raises(ValueError, match=r"different shapes: \['l0/W: file \(4, 5\), model "
                                         r"\(4, 6\)'"):
        checkpoints.load(path, wrong, Adam())
    with pytest.raises(ValueError, match=r"missing from the file: \['l2/W', 'l2/b'\]"):
        checkpoints.load(path, MLP((5, 3, 2)))


def test_bad_optimizer_state_changes_nothing(tmp_path):
    path, model, _ = trained(tmp_path)
    arrays = dict(np.load(path))
    arrays['optimizer/m/l0/W'] = np.zeros((2, 2), np.float32)
    np.savez(path, **arrays)
    other = new_model()
    optimizer = Adam()
    with pytest.raises(ValueError, match=r"Adam.load_state_dict: .*'m/l0/W' has shape"):
        checkpoints.load(path, other, optimizer)
    assert other.l0.W.data is None and optimizer.t == 0 and optimizer.target is None


def test_bad_hyperparameter_in_file(tmp_path):
    path, _, _ = trained(tmp_path)
    arrays = dict(np.load(path))
    arrays['optimizer_hyperparams/beta1'] = np.array(1.0)
    np.savez(path, **arrays)
    with pytest.raises(ValueError, match=r'Adam: beta1 must be in \[0, 1\), got 1.0'):
        checkpoints.load(path, new_model(), Adam())


def test_save_before_weights_exist(tmp_path):
    with pytest.raises(ValueError, match=r"checkpoints.save: parameter 'l0/W' of MLP is not "
                                         'created yet'):
        checkpoints.save(tmp_path / 'ckpt.npz', new_model())
    assert os.listdir(tmp_path) == []


def test_saved_atomically(tmp_path, monkeypatch):
    path, model, optimizer = trained(tmp_path)
    assert os.listdir(tmp_path) == ['ckpt.npz']  # no temporary file left behind
    checkpoints.save(path, model, optimizer)  # overwriting works too
    assert os.listdir(tmp_path) == ['ckpt.npz']
    good = path.read_bytes()

    def crash(*args, **kwargs):
        raise OSError('disk full')

    monkeypatch.setattr(np, 'savez_compressed', crash)
    with pytest.raises(OSError, match='disk full'):
        checkpoints.save(path, model, optimizer, epoch=99)
    assert os.listdir(tmp_path) == ['ckpt.npz']
    assert path.read_bytes() == good  # the previous checkpoint is intact


def test_npz_suffix_is_added(tmp_path):
    model = new_model()
    optimizer = MomentumSGD().setup(model)
    train(model, optimizer, 1)
    checkpoints.save(str(tmp_path / 'ckpt'), model, optimizer, epoch=1)
    assert os.listdir(tmp_path) == ['ckpt.npz']
    assert checkpoints.load(str(tmp_path / 'ckpt'), new_model(), MomentumSGD()) == {'epoch': 1}
    assert zipfile.is_zipfile(tmp_path / 'ckpt.npz')


def test_random_state_saved_and_restored_only_when_asked(tmp_path):
    from zerograd import checkpoints, optimizers
    from zerograd.models import MLP
    np.random.seed(3)
    model = MLP((4, 2))
    model(np.zeros((1, 3), dtype=np.float32))
    optimizer = optimizers.SGD().setup(model)
    path = str(tmp_path / 'c.npz')
    checkpoints.save(path, model, optimizer, random_state=True, epoch=1)
    expected = np.random.rand(3)  # the draws that follow the saved state
    np.random.seed(99)
    after_seed = np.random.get_state()[1].copy()
    checkpoints.load(path, MLP((4, 2)), optimizers.SGD())  # not asked: untouched
    assert np.array_equal(np.random.get_state()[1], after_seed)
    checkpoints.load(path, MLP((4, 2)), optimizers.SGD(), random_state=True)
    np.testing.assert_array_equal(np.random.rand(3), expected)
    plain = str(tmp_path / 'plain.npz')
    checkpoints.save(plain, model, optimizer)
    with pytest.raises(ValueError, match='holds no random state'):
        checkpoints.load(plain, MLP((4, 2)), optimizers.SGD(), random_state=True)


def test_an_rnn_saved_after_one_step_resumes_exactly(tmp_path):
    # After one step a lazy RNN has no h2h weight yet (drawn on its second step, the
    # book's order): files leave it out, loading leaves it uncreated, and the run goes on
    # as if it had never stopped.
    from zerograd import optimizers
    from zerograd.models import Model

    class Net(Model):
        def __init__(self):
            super().__init__()
            self.rnn = L.RNN(4)
            self.fc = L.Linear(1)

        def forward(self, x):
            return self.fc(self.rnn(x))

    xs = [np.full((2, 1), v, np.float32) for v in (0.5, -1.0, 2.0)]

    def step(model, optimizer, x):
        loss = F.sum(model(x) ** 2)
        model.cleargrads()
        loss.backward()
        optimizer.update()

    np.random.seed(0)
    model = Net()
    optimizer = optimizers.Adam().setup(model)
    step(model, optimizer, xs[0])
    assert model.rnn.h2h.W.data is None
    checkpoints.save(tmp_path / 'one.npz', model, optimizer, random_state=True)
    model.save_weights(tmp_path / 'one_weights.npz')
    with np.load(tmp_path / 'one_weights.npz') as npz:
        assert sorted(npz.files) == ['fc/W', 'fc/b', 'rnn/x2h/W', 'rnn/x2h/b']
    model.rnn.reset_state()  # a new sequence: the hidden state is not in checkpoints
    for x in xs[1:]:  # the second step of the sequence draws h2h's W
        step(model, optimizer, x)
    assert model.rnn.h2h.W.data is not None

    restored = Net()
    restored_optimizer = optimizers.Adam().setup(restored)
    checkpoints.load(tmp_path / 'one.npz', restored, restored_optimizer, random_state=True)
    assert restored.rnn.h2h.W.data is None
    for x in xs[1:]:
        step(restored, restored_optimizer, x)
    for (key, p), q in zip(model.named_params().items(), restored.params()):
        np.testing.assert_array_equal(p.data, q.data, err_msg=key)

    weights_only = Net()
    weights_only.load_weights(tmp_path / 'one_weights.npz')
    assert weights_only.rnn.h2h.W.data is None
    trained = Net()
    trained(xs[0]), trained(xs[1])  # h2h created: a file without it is now incomplete
    with pytest.raises(ValueError, match=r"missing from the file: \['rnn/h2h/W'\]"):
        trained.load_weights(tmp_path / 'one_weights.npz')


# -- every field is checked before it is used -----------------------------------------------
def tamper(path, **changes):
    """Rewrite the checkpoint at ``path`` with some arrays replaced (None: removed)."""
    with np.load(path) as npz:
        arrays = {key: npz[key] for key in npz.files}
    for key, value in changes.items():
        key = key.replace('__', '/')
        if value is None:
            del arrays[key]
        else:
            arrays[key] = value
    np.savez(path, **arrays)


def with_random_state(tmp_path):
    model = new_model(created=True)
    optimizer = SGD().setup(model)
    path = tmp_path / 'ckpt.npz'
    checkpoints.save(path, model, optimizer, random_state=True, epoch=1)
    return path


@pytest.mark.parametrize('field, value', [
    ('pos', np.array(10**6)),  # NumPy accepts it, and the next draw crashes (SIGSEGV)
    ('pos', np.array(625)),  # one word past the key: out of bounds, silently
    ('pos', np.array(-1)),
    ('pos', np.array(5.0)),
    ('keys', np.zeros(624, np.uint32)),  # a generator that gives only zeros
    ('keys', np.ones(623, np.uint32)),
    ('keys', np.ones((624, 1), np.uint32)),
    ('keys', np.full(624, 2**32, np.int64)),  # would wrap to 0 as uint32
    ('keys', np.full(624, -1, np.int64)),
    ('keys', np.ones(624, np.float64)),
    ('kind', np.array('PCG64')),
    ('has_gauss', np.array(2)),
    ('cached_gaussian', np.array(np.nan)),
    ('cached_gaussian', np.array(np.inf)),
])
def test_broken_random_state_is_refused_before_use(tmp_path, field, value):
    path = with_random_state(tmp_path)
    tamper(path, **{f'random__{field}': value})
    model = new_model()  # seeds the generator: before taking its state
    np.random.seed(42)
    before = np.random.get_state()
    with pytest.raises(ValueError, match=rf"checkpoints.load: .*ckpt.npz.* holds a broken "
                                         rf"random state: random/{field} must be"):
        checkpoints.load(path, model, SGD(), random_state=True)
    after = np.random.get_state()
    assert after[0] == before[0] and after[2:] == before[2:]
    assert np.array_equal(after[1], before[1])  # the generator is untouched
    assert model.l0.W.data is None  # and so is the model


def test_broken_random_state_cannot_crash_the_interpreter(tmp_path):
    # The crash itself is tried only in a child process: with the old checks it died by
    # SIGSEGV at the first draw after loading.
    path = with_random_state(tmp_path)
    tamper(path, random__pos=np.array(10**6))
    code = ('import sys, numpy as np\n'
            'from zerograd import checkpoints, optimizers\n'
            'from zerograd.models import MLP\n'
            'try:\n'
            '    checkpoints.load(sys.argv[1], MLP((5, 3)), optimizers.SGD(), random_state=True)\n'
            'except ValueError as error:\n'
            '    print("refused:", error)\n'
            'print("draw", np.random.rand() >= 0)\n')
    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    result = subprocess.run([sys.executable, '-c', code, str(path)], capture_output=True,
                            text=True, timeout=120, env=dict(os.environ, PYTHONPATH=root))
    assert result.returncode == 0, (result.returncode, result.stderr)
    assert 'refused:' in result.stdout and 'random/pos must be an integer in [0, 624]' \
        in result.stdout
    assert result.stdout.endswith('draw True\n')


def test_random_state_at_the_end_of_its_words_is_accepted(tmp_path):
    # pos = 624 is a state NumPy itself reaches: the words are regenerated at the next draw.
    path = with_random_state(tmp_path)
    np.random.seed(5)
    state = np.random.get_state()
    state = (state[0], state[1], 624, 0, 0.0)
    tamper(path, random__pos=np.array(624), random__keys=state[1],
           random__has_gauss=np.array(0), random__cached_gaussian=np.array(0.0))
    np.random.set_state(state)
    expected = np.random.rand(4)
    np.random.seed(0)
    checkpoints.load(path, new_model(), SGD(), random_state=True)
    np.testing.assert_array_equal(np.random.rand(4), expected)


@pytest.mark.parametrize('epoch', [np.array(-1), np.array(2.5), np.array(True),
                                   np.array([1, 2])])
def test_epoch_must_be_a_non_negative_integer(tmp_path, epoch):
    path, _, _ = trained(tmp_path, epoch=3)
    tamper(path, extra__epoch=epoch)
    model = new_model()
    with pytest.raises(ValueError, match=r"checkpoints.load: extra 'epoch' in .*ckpt.npz.* "
                                         r'must be'):
        checkpoints.load(path, model, Adam())
    assert model.l0.W.data is None


def test_negative_epoch_is_not_saved(tmp_path):
    model = new_model(created=True)
    with pytest.raises(ValueError, match=r"checkpoints.save: extra 'epoch' must be an integer "
                                         r'>= 0, got -1'):
        checkpoints.save(tmp_path / 'ckpt.npz', model, epoch=-1)
    assert os.listdir(tmp_path) == []


def test_extras_of_other_kinds_are_refused(tmp_path):
    path, _, _ = trained(tmp_path)
    tamper(path, extra__note=np.array(1 + 2j))
    with pytest.raises(ValueError, match=r"extra 'note' in .* must be a bool, int, float or "
                                         r'str scalar, got complex128'):
        checkpoints.load(path, new_model(), Adam())


@pytest.mark.parametrize('name, value, match', [
    ('alpha', np.inf, r'Adam: alpha must be a finite number >= 0, got inf'),
    ('alpha', np.nan, r'Adam: alpha must be a finite number >= 0, got nan'),
    ('eps', -1.0, r'Adam: eps must be a finite number > 0, got -1.0'),
    ('beta2', np.nan, r'Adam: beta2 must be in \[0, 1\), got nan'),
])
def test_hyperparameters_in_the_file_are_checked(tmp_path, name, value, match):
    path, _, _ = trained(tmp_path)
    tamper(path, **{f'optimizer_hyperparams__{name}': np.array(value)})
    model, optimizer = new_model(), Adam()
    with pytest.raises(ValueError, match=match):
        checkpoints.load(path, model, optimizer)
    assert model.l0.W.data is None and optimizer.alpha == 0.001


# -- optimizer state: every slot of every parameter --------------------------------------
SLOTS = {'Adam': ('m', 'v'), 'MomentumSGD': ('v',), 'AdaGrad': ('h',),
         'AdaDelta': ('msg', 'msdx')}


@pytest.mark.parametrize('make_optimizer', OPTIMIZERS[:4], ids=IDS[:4])
def test_missing_optimizer_state_of_one_parameter_is_refused(tmp_path, make_optimizer):
    path, _, optimizer = trained(tmp_path, make_optimizer())
    slots = SLOTS[type(optimizer).__name__]
    tamper(path, **{f'optimizer__{slot}__l1__b': None for slot in slots})
    model, fresh = new_model(), type(optimizer)()
    missing = ', '.join(repr(f'{slot}/l1/b') for slot in sorted(slots))
    with pytest.raises(ValueError, match=rf'{type(optimizer).__name__}.load_state_dict: .*'
                                         rf'missing {missing}'):
        checkpoints.load(path, model, fresh)
    assert model.l0.W.data is None and fresh.target is None


@pytest.mark.parametrize('key, value, match', [
    ('optimizer/m/l0/W', None, r"missing 'm/l0/W'"),
    ('optimizer/t', None, r"missing 't'"),
    ('optimizer/m/l2/W', np.zeros((3, 3), np.float32), r"'m/l2/W' names no parameter"),
    ('optimizer/w/l0/W', np.zeros((4, 5), np.float32), r"unknown name 'w/l0/W'"),
    ('optimizer/m/l0/W', np.zeros((4, 5), np.float64),
     r"'m/l0/W' has dtype float64 but the parameter has float32"),
    ('optimizer/m/l0/W', np.zeros((4, 5), np.complex64), r"'m/l0/W' has dtype complex64"),
    ('optimizer/m/l0/W', np.full((4, 5), np.nan, np.float32), r"'m/l0/W' holds nan or inf"),
    ('optimizer/v/l0/b', -np.ones(5, np.float32), r"'v/l0/b' holds negative values"),
])
def test_optimizer_state_with_a_wrong_slot_is_refused(tmp_path, key, value, match):
    path, _, _ = trained(tmp_path)
    tamper(path, **{key.replace('/', '__'): value})
    model, optimizer = new_model(), Adam()
    with pytest.raises(ValueError, match='Adam.load_state_dict: .*' + match):
        checkpoints.load(path, model, optimizer)
    assert model.l0.W.data is None and optimizer.t == 0 and optimizer.target is None


def test_a_frozen_layer_resumes_exactly(tmp_path):
    # The frozen layer never gets optimizer state; the file holds its slots as the zeros
    # an update would start from, so all slots are present and the resume is exact.
    from zerograd.optimizers import FreezeParam

    def make(model):
        optimizer = Adam(alpha=0.05).setup(model)
        optimizer.add_hook(FreezeParam(model.l0))
        return optimizer

    straight = new_model()
    train(straight, make(straight), 4)
    first = new_model()
    optimizer = make(first)
    train(first, optimizer, 2)
    checkpoints.save(tmp_path / 'ckpt.npz', first, optimizer)
    with np.load(tmp_path / 'ckpt.npz') as npz:
        assert not npz['optimizer/m/l0/W'].any() and npz['optimizer/v/l0/b'].shape == (5,)
    resumed = new_model(seed=3)
    resumed_optimizer = Adam()
    checkpoints.load(tmp_path / 'ckpt.npz', resumed, resumed_optimizer)
    resumed_optimizer.add_hook(FreezeParam(resumed.l0))
    train(resumed, resumed_optimizer, 2)
    for key, value in weights(straight).items():
        assert np.array_equal(weights(resumed)[key], value), key
