"""datasets: the Dataset base class (indexing, transforms, errors) and the book's spiral."""
import numpy as np
import pytest

from zerograd import utils
from zerograd.datasets import (CIFAR10, CIFAR100, MNIST, CharText, Dataset, ImageNet, MNIST5k,
                               Shakespear, SinCurve, Spiral, get_spiral, identity)


# -----------------------------------------------------------------------------
# Spiral
# -----------------------------------------------------------------------------
def _book_spiral(seed):
    """The book's get_spiral, on the GLOBAL generator, as the book wrote it (state restored)."""
    saved = np.random.get_state()
    try:
        np.random.seed(seed)
        x = np.zeros((300, 2), dtype=np.float32)
        t = np.zeros(300, dtype=np.int64)
        for j in range(3):
            for i in range(100):
                rate = i / 100
                radius = 1.0 * rate
                theta = j * 4.0 + 4.0 * rate + np.random.randn() * 0.2
                ix = 100 * j + i
                x[ix] = np.array([radius * np.sin(theta), radius * np.cos(theta)]).flatten()
                t[ix] = j
        indices = np.random.permutation(300)
        return x[indices], t[indices]
    finally:
        np.random.set_state(saved)


def test_spiral_shapes_dtypes_and_balanced_classes():
    for train in (True, False):
        x, t = get_spiral(train=train)
        assert x.shape == (300, 2) and x.dtype == np.float32
        assert t.shape == (300,) and t.dtype == np.int64
        assert np.bincount(t).tolist() == [100, 100, 100]
        # radius = i/100 < 1: every point lies in the unit disc
        assert np.all(np.hypot(x[:, 0], x[:, 1]) < 1.0)


def test_spiral_first_points_are_the_books():
    x, t = get_spiral(train=True)
    bx, bt = _book_spiral(1984)
    assert np.array_equal(x[:3], bx[:3]) and np.array_equal(t[:3], bt[:3])
    # all 300 rows, bit for bit
    assert np.array_equal(x, bx) and np.array_equal(t, bt)
    # the values the book prints for train_set[0]
    np.testing.assert_allclose(x[0], [-0.13981389, -0.00721657], rtol=1e-6)
    assert t[0] == 1


def test_spiral_test_set_uses_seed_2020():
    x, t = get_spiral(train=False)
    bx, bt = _book_spiral(2020)
    assert np.array_equal(x, bx) and np.array_equal(t, bt)
    x_train, _ = get_spiral(train=True)
    assert not np.array_equal(x, x_train)


def test_spiral_is_deterministic():
    x0, t0 = get_spiral()
    x1, t1 = get_spiral()
    assert np.array_equal(x0, x1) and np.array_equal(t0, t1)


def test_spiral_leaves_the_global_random_state_alone():
    np.random.seed(5)
    expected = np.random.rand(3)
    np.random.seed(5)
    get_spiral()
    Spiral(train=False)
    assert np.array_equal(np.random.rand(3), expected)


def test_spiral_dataset_matches_get_spiral():
    x, t = get_spiral(train=False)
    ds = Spiral(train=False)
    assert len(ds) == 300 and ds.train is False
    assert np.array_equal(ds.data, x) and np.array_equal(ds.label, t)
    x0, t0 = ds[0]
    assert np.array_equal(x0, x[0]) and t0 == t[0]
    assert repr(ds) == 'Spiral(train=False, 300 examples)'


# -----------------------------------------------------------------------------
# Dataset
# -----------------------------------------------------------------------------
class Toy(Dataset):
    """10 examples of shape (2,): data[i] = [i, 10 i], label i % 3."""

    def prepare(self):
        self.data = np.stack([np.arange(10.0), 10.0 * np.arange(10.0)], axis=1)
        self.label = np.arange(10) % 3


class Unlabelled(Dataset):
    def prepare(self):
        self.data = np.arange(5.0)


def double(x):
    return 2 * x


def plus_100(t):
    return t + 100


def test_dataset_int_index_without_transforms():
    ds = Toy()
    assert len(ds) == 10
    x, t = ds[3]
    assert np.array_equal(x, [3.0, 30.0]) and t == 0
    x, t = ds[np.int64(4)]
    assert np.array_equal(x, [4.0, 40.0]) and t == 1
    x, t = ds[-1]  # negative indices count from the end, as for arrays
    assert np.array_equal(x, [9.0, 90.0]) and t == 0


def test_dataset_default_transforms_are_identity_callables():
    ds = Toy()
    assert ds.transform is identity and ds.target_transform is identity
    assert ds.transform(7) == 7  # the book calls them; they always exist


def test_dataset_int_index_applies_transforms():
    ds = Toy(transform=double, target_transform=plus_100)
    x, t = ds[5]
    assert np.array_equal(x, [10.0, 100.0]) and t == 102


def test_dataset_without_labels_gives_none():
    ds = Unlabelled(transform=double)
    assert ds[2] == (4.0, None)
    x, t = ds[1:3]
    assert np.array_equal(x, [2.0, 4.0]) and t is None


def test_dataset_slice_and_array_index_without_transforms():
    ds = Toy()
    x, t = ds[2:5]
    assert np.array_equal(x, ds.data[2:5]) and np.array_equal(t, [2, 0, 1])
    x, t = ds[np.array([7, 0, 7])]
    assert np.array_equal(x, [[7.0, 70.0], [0.0, 0.0], [7.0, 70.0]])
    assert np.array_equal(t, [1, 0, 1])
    x, t = ds[[1, -1]]  # lists work too
    assert np.array_equal(x, [[1.0, 10.0], [9.0, 90.0]]) and np.array_equal(t, [1, 0])
    x, t = ds[::4]
    assert np.array_equal(t, [0, 1, 2]) and x.shape == (3, 2)


def test_dataset_slice_and_array_index_apply_transforms_per_item():
    seen = []

    def record(x):
        seen.append(x.shape)
        return x.sum()

    ds = Toy(transform=record, target_transform=plus_100)
    x, t = ds[np.array([1, 2, 3])]
    assert seen == [(2,), (2,), (2,)]  # called on each example, not on the batch
    assert np.array_equal(x, [11.0, 22.0, 33.0]) and np.array_equal(t, [101, 102, 100])
    x, t = ds[8:]
    assert np.array_equal(x, [88.0, 99.0]) and np.array_equal(t, [102, 100])


def test_dataset_batch_index_equals_stacked_items():
    for ds in (Toy(), Toy(transform=double, target_transform=plus_100)):
        index = np.array([9, 3, 3, 0])
        x, t = ds[index]
        items = [ds[int(i)] for i in index]
        assert np.array_equal(x, np.array([item[0] for item in items]))
        assert np.array_equal(t, np.array([item[1] for item in items]))
        assert x.dtype == np.array([item[0] for item in items]).dtype


def test_dataset_boolean_mask():
    ds = Toy()
    mask = ds.label == 2
    x, t = ds[mask]
    assert np.array_equal(t, [2, 2, 2]) and np.array_equal(x[:, 0], [2.0, 5.0, 8.0])


def test_dataset_index_out_of_range():
    ds = Toy()
    with pytest.raises(IndexError, match=r'Toy: index 10 is out of range .* length 10'):
        ds[10]
    with pytest.raises(IndexError, match=r'index -11 .* length 10'):
        ds[-11]
    with pytest.raises(IndexError, match=r'index 12 .* length 10'):
        ds[np.array([0, 12, 3])]


def test_dataset_non_integer_index():
    ds = Toy()
    for bad in (1.5, '3', None, True):
        with pytest.raises(TypeError, match='Toy: index must be an int'):
            ds[bad]
    with pytest.raises(TypeError, match='must hold integers, got float64'):
        ds[np.array([0.0, 1.0])]


def test_dataset_iterates_with_the_sequence_protocol():
    # IndexError at the end is what lets `for x, t in ds` stop.
    labels = [int(t) for _, t in Toy()]
    assert labels == [0, 1, 2, 0, 1, 2, 0, 1, 2, 0]


def test_dataset_rejects_mismatched_lengths():
    class Broken(Dataset):
        def prepare(self):
            self.data = np.zeros((4, 2))
            self.label = np.zeros(3)

    with pytest.raises(ValueError, match=r'Broken: data and label lengths differ \(4 vs 3\)'):
        Broken()


def test_dataset_without_prepare_has_no_length():
    with pytest.raises(TypeError, match='prepare'):
        len(Dataset())


# -----------------------------------------------------------------------------
# train must be a bool; paths and timeouts are checked before anything is read
# -----------------------------------------------------------------------------
@pytest.fixture
def offline_empty_cache(monkeypatch, tmp_path):
    """Offline, an empty data folder, and no URL may be opened: a dataset that got past its
    argument checks would fail with a DownloadError, not the error the test expects."""
    def no_network(*args, **kwargs):
        raise AssertionError('a test tried to open a URL')

    monkeypatch.setenv('ZEROGRAD_OFFLINE', '1')
    monkeypatch.setenv('ZEROGRAD_DATA', str(tmp_path / 'empty-cache'))
    monkeypatch.setattr(utils, '_open_url', no_network)
    return tmp_path


def _text_file(folder):
    path = folder / 'text.txt'
    path.write_text('to be or not to be')
    return path


DATASETS = {
    'Spiral': lambda train, folder: Spiral(train=train),
    'SinCurve': lambda train, folder: SinCurve(train=train),
    'MNIST5k': lambda train, folder: MNIST5k(train=train),
    'MNIST': lambda train, folder: MNIST(train=train),
    'CIFAR10': lambda train, folder: CIFAR10(train=train),
    'CIFAR100': lambda train, folder: CIFAR100(train=train),
    'CharText': lambda train, folder: CharText(_text_file(folder), train=train),
    'Shakespeare': lambda train, folder: Shakespear(train=train),
    'Dataset': lambda train, folder: Dataset(train=train),
}


@pytest.mark.parametrize('name', sorted(DATASETS))
@pytest.mark.parametrize('train', ['no', None, 0, 1, 'True', [True], np.array([False])])
def test_train_must_be_a_bool(name, train, offline_empty_cache):
    with pytest.raises(TypeError) as info:
        DATASETS[name](train, offline_empty_cache)
    message = str(info.value)
    assert message.startswith(f'{name}: train must be a bool')
    assert message.endswith(f'got {train!r}')


def test_get_spiral_train_must_be_a_bool():
    with pytest.raises(TypeError, match="get_spiral: train must be a bool .* got 'no'"):
        get_spiral(train='no')


def test_numpy_bools_choose_the_split():
    test_set = MNIST5k(train=np.bool_(False))
    assert len(test_set) == 1000 and test_set.train is False
    assert len(MNIST5k(train=np.bool_(True))) == 4000
    assert np.array_equal(Spiral(train=np.bool_(False)).data, get_spiral(train=False)[0])


@pytest.mark.parametrize('make', [lambda path: CIFAR10(path=path),
                                  lambda path: CIFAR100(path=path),
                                  lambda path: CharText(path),
                                  lambda path: Shakespear(path=path),
                                  lambda path: ImageNet.labels(path=path)])
def test_a_folder_or_missing_path_names_the_path(make, tmp_path):
    with pytest.raises(ValueError) as info:
        make(tmp_path)
    assert 'path must be' in str(info.value) and f'{str(tmp_path)!r} is a folder' in str(info.value)
    missing = tmp_path / 'absent.tar.gz'
    with pytest.raises(FileNotFoundError) as info:
        make(missing)
    assert f'path {str(missing)!r} does not exist' in str(info.value)


def test_cifar_path_error_names_the_archive(tmp_path):
    with pytest.raises(ValueError, match=r"CIFAR10: path must be the archive file "
                                         r"cifar-10-binary\.tar\.gz, but '.*' is a folder"):
        CIFAR10(path=tmp_path)


@pytest.mark.parametrize('timeout, error', [(0, ValueError), (-2.0, ValueError),
                                            (float('nan'), ValueError), ('5', TypeError)])
def test_mnist_timeout_is_checked_before_any_download(timeout, error, offline_empty_cache):
    with pytest.raises(error, match=r'MNIST: timeout must be a positive'):
        MNIST(timeout=timeout)


def test_a_shakespeare_copy_of_the_wrong_size_is_refused(offline_empty_cache):
    folder = offline_empty_cache / 'data'
    folder.mkdir()
    (folder / 'shakespear.txt').write_text('First Citizen:\nBefore we proceed')  # cut short
    with pytest.raises(ValueError) as info:
        Shakespear(root=folder)
    assert 'size mismatch: expected 1,115,394 bytes, got 32' in str(info.value)
    assert str(folder / 'shakespear.txt') in str(info.value)


def test_mnist_under_a_data_folder_that_is_a_file(offline_empty_cache, monkeypatch):
    a_file = offline_empty_cache / 'hostname'
    a_file.write_text('not a folder')
    monkeypatch.setenv('ZEROGRAD_DATA', str(a_file))
    for call in (MNIST.available, MNIST):
        with pytest.raises(ValueError) as info:
            call()
        assert f'ZEROGRAD_DATA={str(a_file)!r} must name a folder' in str(info.value)
    with pytest.raises(ValueError, match=r"root=.* must name a folder"):
        MNIST(root=a_file)
