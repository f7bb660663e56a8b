"""DataLoader(num_workers=N): the same batches and random draws as num_workers=0, the
epoch rules, seek, errors from the worker, and no thread left behind."""
import gc
import subprocess
import sys
import threading

import numpy as np
import pytest

from stopping import Stop, stopping_loss
from zerograd import dataloaders, optimizers, training, transforms
from zerograd.dataloaders import DataLoader, SeqDataLoader
from zerograd.datasets import Dataset, SinCurve, Spiral
from zerograd.models import MLP

WORKER = 'zerograd-DataLoader-worker'


def workers_alive():
    return [thread for thread in threading.enumerate() if thread.name == WORKER]


@pytest.fixture(autouse=True)
def no_thread_left():
    yield
    gc.collect()
    assert workers_alive() == []


class Images(Dataset):
    """n random 'images' uint8 (1, 3, 4) with labels, through a random flip and a cast:
    the transforms draw from NumPy's global generator, one draw per example."""

    def __init__(self, n=50, **kwargs):
        self.n = n
        super().__init__(transform=transforms.Compose([transforms.RandomHorizontalFlip(),
                                                       transforms.ToFloat()]), **kwargs)

    def prepare(self):
        rng = np.random.RandomState(3)
        self.data = rng.randint(0, 256, size=(self.n, 1, 3, 4)).astype(np.uint8)
        self.label = np.arange(self.n) % 7


def epochs(make_loader, n_epochs=3, seed=0):
    """Every batch of n_epochs for loops, and the global random state after them."""
    np.random.seed(seed)
    loader = make_loader()
    seen = [[(x.copy(), None if t is None else t.copy()) for x, t in loader]
            for _ in range(n_epochs)]
    return seen, np.random.get_state()[1].copy()


def assert_same_batches(a, b):
    assert len(a) == len(b)
    for epoch_a, epoch_b in zip(a, b):
        assert len(epoch_a) == len(epoch_b)
        for (xa, ta), (xb, tb) in zip(epoch_a, epoch_b):
            assert xa.dtype == xb.dtype
            np.testing.assert_array_equal(xa, xb)
            if ta is None:
                assert tb is None
            else:
                np.testing.assert_array_equal(ta, tb)


@pytest.mark.parametrize('num_workers', [1, 2, 4])
def test_random_transforms_give_the_same_batches_and_draws_as_no_workers(num_workers):
    base, state0 = epochs(lambda: DataLoader(Images(), 8, shuffle=True))
    got, state = epochs(lambda: DataLoader(Images(), 8, shuffle=True, num_workers=num_workers))
    assert_same_batches(got, base)
    np.testing.assert_array_equal(state, state0)  # the same number of draws, in order
    ds = Images()
    flipped = sum(not np.array_equal(ds[i][0], ds.data[i]) for i in range(50))
    assert 10 < flipped < 40  # the transform really draws


@pytest.mark.parametrize('make', [
    lambda w: DataLoader(Spiral(), 32, shuffle=True, num_workers=w),  # fast path
    lambda w: DataLoader([(np.float32([i, i]), i % 3) for i in range(45)], 10, num_workers=w),
    lambda w: DataLoader([(np.float32([i]), None) for i in range(9)], 4, shuffle=False,
                         num_workers=w),  # unlabelled: t is None
    lambda w: SeqDataLoader(SinCurve(), 30, num_workers=w),
], ids=['fast-path', 'per-item', 'unlabelled', 'seq'])
def test_every_path_gives_the_same_batches_as_no_workers(make):
    base, state0 = epochs(lambda: make(0), n_epochs=2)
    got, state = epochs(lambda: make(2), n_epochs=2)
    assert_same_batches(got, base)
    np.testing.assert_array_equal(state, state0)


def test_len_and_attributes_are_unchanged():
    loader = DataLoader(Spiral(), 128, num_workers=2)
    assert len(loader) == loader.max_iter == 3
    assert loader.num_workers == 2
    assert DataLoader(Spiral(), 128).num_workers == 0
    assert repr(loader) == ('DataLoader(Spiral, batch_size=128, shuffle=True, gpu=False, '
                            'num_workers=2)')
    assert repr(DataLoader(Spiral(), 128)) == \
        'DataLoader(Spiral, batch_size=128, shuffle=True, gpu=False)'
    assert sum(1 for _ in loader) == 3


def test_the_thread_runs_during_an_epoch_and_stops_at_its_end():
    loader = DataLoader(Spiral(), 10, num_workers=1)
    for i, _ in enumerate(loader):
        if i == 2:
            assert len(workers_alive()) == 1
    assert workers_alive() == []
    assert loader.iteration == len(loader)


def test_break_stops_the_thread_and_the_next_loop_is_a_new_epoch():
    loader = DataLoader(Spiral(), 10, num_workers=2)
    np.random.seed(1)
    for i, (x, t) in enumerate(loader):
        if i == 1:
            break
    assert workers_alive() == []
    assert loader.iteration == 2  # batches handed out, not batches prepared
    first = loader.index.copy()
    batches = list(loader)  # a whole new epoch, in a newly drawn order
    assert len(batches) == len(loader) and not np.array_equal(loader.index, first)
    # The draws match num_workers=0 doing the same (Spiral has no random transform).
    np.random.seed(1)
    plain = DataLoader(Spiral(), 10)
    for i, _ in enumerate(plain):
        if i == 1:
            break
    assert_same_batches([list(plain)], [batches])


def test_an_exception_in_the_loop_body_stops_the_thread():
    loader = DataLoader(Spiral(), 10, num_workers=2)
    with pytest.raises(KeyError):
        for _ in loader:
            raise KeyError('in the loop body')
    assert workers_alive() == []


def test_next_continues_the_epoch_a_break_left_open():
    np.random.seed(0)
    loader = DataLoader(Spiral(), 64, num_workers=1)
    for x0, _ in loader:
        break
    assert workers_alive() == []
    x1, _ = next(loader)  # continues where the loop stopped, in the same order
    np.testing.assert_array_equal(x1, Spiral().data[loader.index[64:128]])
    rest = []
    while True:
        try:
            rest.append(next(loader)[0])
        except StopIteration:
            break
    assert [len(x) for x in rest] == [64, 64, 44]
    assert workers_alive() == []
    np.testing.assert_array_equal(next(loader)[0].shape, (64, 2))  # a new epoch
    loader.close()


def test_close_stops_the_thread_and_the_loader_goes_on():
    np.random.seed(0)
    loader = DataLoader(Spiral(), 5, num_workers=3)
    next(loader)
    assert len(workers_alive()) == 1
    loader.close()
    assert workers_alive() == []
    x, _ = next(loader)
    np.testing.assert_array_equal(x, Spiral().data[loader.index[5:10]])
    loader.close()


def test_a_garbage_collected_loader_stops_its_thread():
    loader = DataLoader(Spiral(), 10, num_workers=2)
    next(loader)
    thread = workers_alive()[0]
    del loader
    gc.collect()
    thread.join(timeout=5)
    assert not thread.is_alive()


def test_seek_continues_exactly_like_no_workers():
    np.random.seed(5)
    index = np.random.permutation(300)
    for iteration in (0, 3, 9):
        plain, worked = DataLoader(Spiral(), 32), DataLoader(Spiral(), 32, num_workers=2)
        plain.seek(iteration, index)
        worked.seek(iteration, index)
        expected = [plain.next() for _ in range(len(plain) - iteration)]
        got = [worked.next() for _ in range(len(worked) - iteration)]
        assert_same_batches([got], [expected])
        assert worked.iteration == len(worked)
        with pytest.raises(StopIteration):
            worked.next()


def test_seek_while_the_thread_runs_restarts_it_at_the_new_place():
    np.random.seed(2)
    loader = DataLoader(Spiral(), 20, num_workers=2)
    next(loader), next(loader)
    index = np.arange(300)[::-1].copy()
    loader.seek(4, index)
    x, t = next(loader)
    np.testing.assert_array_equal(x, Spiral().data[index[80:100]])
    assert loader.iteration == 5
    loader.iteration = 1  # set by hand: the thread is restarted there too
    x, _ = next(loader)
    np.testing.assert_array_equal(x, Spiral().data[index[20:40]])
    loader.close()


class Broken(Dataset):
    def prepare(self):
        self.data = np.zeros((30, 2), np.float32)
        self.label = np.zeros(30, np.int64)

    def __getitem__(self, index):
        if index == 17:
            raise ValueError('Broken: example 17 is unreadable')
        return super().__getitem__(index)


def test_an_exception_in_the_worker_is_raised_in_the_loop_with_its_message():
    loader = DataLoader(Broken(), 5, shuffle=False, num_workers=2)
    served = []
    with pytest.raises(ValueError, match='^Broken: example 17 is unreadable$') as info:
        for x, _ in loader:
            served.append(x)
    assert len(served) == 3 and loader.iteration == 3  # batches 0-2 came before the error
    assert any(entry.name == '__getitem__' for entry in info.traceback)  # the worker's frame
    assert workers_alive() == []
    with pytest.raises(ValueError, match='example 17'):  # the next call retries the batch
        next(loader)
    assert loader.iteration == 3


def test_the_same_error_as_no_workers_for_a_wrong_dataset():
    with pytest.raises(TypeError, match=r'DataLoader: dataset\[i\] must be an \(x, t\) pair'):
        next(iter(DataLoader([1, 2, 3], 2, num_workers=1)))


def test_num_workers_errors():
    for bad in (True, 1.0, '2', None):
        with pytest.raises(TypeError, match=r'DataLoader: num_workers must be an int >= 0 '):
            DataLoader(Spiral(), 10, num_workers=bad)
    with pytest.raises(ValueError, match=r'DataLoader: num_workers must be an int >= 0 .*'
                                         r'got -1$'):
        DataLoader(Spiral(), 10, num_workers=-1)
    with pytest.raises(TypeError, match='SeqDataLoader: num_workers'):
        SeqDataLoader(SinCurve(), 10, num_workers=2.5)
    assert DataLoader(Spiral(), 10, True, False, num_workers=np.int64(3)).num_workers == 3


def test_gpu_batches_are_moved_in_the_loop_thread(monkeypatch):
    moved = []

    def fake_as_cupy(array):  # stands in for CuPy: records the thread, tags the array
        moved.append(threading.current_thread())
        return ('on gpu', array)

    monkeypatch.setattr(dataloaders.cuda, 'as_cupy', fake_as_cupy)
    np.random.seed(0)
    loader = DataLoader(Spiral(), 100, num_workers=2)
    loader.gpu = True  # (the constructor would ask for CuPy)
    batches = list(loader)
    assert len(batches) == 3 and all(x[0] == 'on gpu' and t[0] == 'on gpu' for x, t in batches)
    np.testing.assert_array_equal(batches[0][0][1], Spiral().data[loader.index[:100]])
    assert moved == [threading.main_thread()] * 6


def test_fit_gives_the_same_weights_and_history_with_workers():
    def train(num_workers):
        np.random.seed(0)
        model = MLP((10, 3))
        optimizer = optimizers.SGD(lr=0.5).setup(model)
        loader = DataLoader(Spiral(), 30, num_workers=num_workers)
        history = training.fit(model, optimizer, loader, 3, quiet=True, log=lambda s: None)
        return [p.data.copy() for p in model.params()], history['train_loss']

    (weights0, loss0), (weights2, loss2) = train(0), train(2)
    assert loss2 == loss0
    for a, b in zip(weights2, weights0):
        np.testing.assert_array_equal(a, b)


def test_interpreter_exit_does_not_hang_with_a_thread_running():
    code = ('import numpy as np\n'
            'from zerograd.dataloaders import DataLoader\n'
            'from zerograd.datasets import Spiral\n'
            'loader = DataLoader(Spiral(), 1, num_workers=4)\n'
            'next(loader)\n'
            'keep = loader\n'
            'print("done")\n')
    result = subprocess.run([sys.executable, '-c', code], capture_output=True, text=True,
                            timeout=60)
    assert result.returncode == 0, result.stderr
    assert result.stdout == 'done\n' and result.stderr == ''


def test_a_copy_of_a_running_loader_takes_no_thread():
    import copy
    np.random.seed(0)
    loader = DataLoader(Spiral(), 5, num_workers=2)
    next(loader)
    twin = copy.deepcopy(loader)
    assert twin._prefetcher is None and len(workers_alive()) == 1
    np.testing.assert_array_equal(next(twin)[0], next(loader)[0])  # the same next batch
    loader.close()
    twin.close()


@pytest.mark.parametrize('stop_after', [4, 17])
def test_fit_resumes_in_the_middle_of_an_epoch_bit_for_bit_with_workers(tmp_path, stop_after):
    def setup(seed=0):
        np.random.seed(seed)
        model = MLP((10, 3))
        return model, optimizers.Adam(0.01).setup(model), DataLoader(Spiral(), 30,
                                                                       num_workers=2)

    model, optimizer, loader = setup()
    straight = training.fit(model, optimizer, loader, 3, quiet=True)
    out = str(tmp_path / 'run')
    first, opt1, loader1 = setup()
    with pytest.raises(Stop):
        training.fit(first, opt1, loader1, 3, out=out, quiet=True, checkpoint_every=0,
                     loss_fn=stopping_loss(stop_after))
    assert workers_alive() == []  # the exception left the epoch's loop: thread stopped
    assert training.checkpoint_info(out)['state']['partial'] is not None
    resumed, opt2, loader2 = setup(seed=777)
    history = training.fit(resumed, opt2, loader2, 3, out=out, resume=True, quiet=True)
    for p, q in zip(model.params(), resumed.params()):
        np.testing.assert_array_equal(p.data, q.data)
    assert history['train_loss'] == straight['train_loss']


@pytest.mark.slow
def test_the_loader_benchmark_runs():
    import os
    repo = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    result = subprocess.run([sys.executable, os.path.join('benchmarks', 'loader.py'), '--quick'],
                            cwd=repo, capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stdout + result.stderr
    for epoch in ('load only', 'load + train'):
        for loader in ('num_workers=0', 'num_workers=2 (thread)', '1 process (pool)',
                       '2 processes (pool)'):
            assert f'| {epoch} | {loader} | ' in result.stdout
