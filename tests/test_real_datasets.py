"""Datasets on real files: full MNIST and its embedded 5k subset, CIFAR archives in the
binary format (written here), SinCurve, character text, ImageNet labels.

Everything runs offline (ZEROGRAD_OFFLINE=1): the data comes from ../shared/data, from the
package, or from files the tests write.
"""
import csv
import gzip
import hashlib
import io
import os
import socket
import tarfile
from pathlib import Path

import numpy as np
import pytest

from zerograd import datasets, utils
from zerograd.datasets import (CIFAR10, CIFAR100, MNIST, CharText, ImageNet, MNIST5k,
                               Shakespear, Shakespeare, SinCurve, read_idx)
from zerograd.utils import DownloadError

SHARED = Path(__file__).resolve().parents[1].parent / 'shared' / 'data'
MNIST_DIR = SHARED / 'mnist'
SHAKESPEARE = SHARED / 'shakespeare' / 'shakespeare_1mb.txt'
MNIST5K_CSV = SHARED / 'mnist-5k' / 'mnist_5k.csv.gz'
PACKAGE_CSV = Path(datasets.__file__).parent / 'data' / 'mnist_5k.csv.gz'

needs_mnist = pytest.mark.skipif(not MNIST_DIR.is_dir(), reason=f'{MNIST_DIR} is missing')

# The class counts of MNIST (well known; they sum to 60,000 and 10,000).
TRAIN_COUNTS = [5923, 6742, 5958, 6131, 5842, 5421, 5918, 6265, 5851, 5949]
TEST_COUNTS = [980, 1135, 1032, 1010, 982, 892, 958, 1028, 974, 1009]


def no_network(*args, **kwargs):
    raise AssertionError('a test tried to open a network connection')


@pytest.fixture(autouse=True)
def offline(monkeypatch, tmp_path):
    """Offline, with an empty default data folder, and no socket may connect."""
    monkeypatch.setenv('ZEROGRAD_OFFLINE', '1')
    monkeypatch.setenv('ZEROGRAD_DATA', str(tmp_path / 'empty-cache'))
    monkeypatch.setattr(socket, 'create_connection', no_network)
    monkeypatch.setattr(utils, '_open_url', no_network)


@pytest.fixture(scope='module')
def mnist():
    """Full MNIST read once: (train, test) datasets from ../shared/data/mnist."""
    if not MNIST_DIR.is_dir():
        pytest.skip(f'{MNIST_DIR} is missing')
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv('ZEROGRAD_OFFLINE', '1')
        mp.setattr(utils, '_open_url', no_network)
        return MNIST(train=True, root=SHARED), MNIST(train=False, root=SHARED)


# -----------------------------------------------------------------------------
# MNIST
# -----------------------------------------------------------------------------
def test_mnist_shapes_dtypes_and_labels(mnist):
    train, test = mnist
    assert train.data.shape == (60000, 1, 28, 28) and test.data.shape == (10000, 1, 28, 28)
    assert train.data.dtype == np.uint8 and test.data.dtype == np.uint8
    assert train.label.shape == (60000,) and test.label.shape == (10000,)
    assert np.issubdtype(train.label.dtype, np.integer)
    assert np.bincount(train.label).tolist() == TRAIN_COUNTS
    assert np.bincount(test.label).tolist() == TEST_COUNTS
    assert train.label[0] == 5 and test.label[0] == 7
    assert train.label[:10].tolist() == [5, 0, 4, 1, 9, 2, 1, 3, 1, 4]
    assert train.data.min() == 0 and train.data.max() == 255
    # the usual normalisation constants of MNIST: mean 0.1307 (train), 0.1325 (test)
    assert abs(train.data.mean() / 255 - 0.1307) < 5e-4
    assert abs(test.data.mean() / 255 - 0.1325) < 5e-4
    assert len(train) == 60000 and len(test) == 10000


def test_mnist_default_transform(mnist):
    train, _ = mnist
    x, t = train[0]
    assert x.dtype == np.float32 and x.shape == (784,)
    assert x.min() >= 0.0 and x.max() <= 1.0 and x.max() == 1.0
    np.testing.assert_allclose(x, train.data[0].reshape(-1) / 255.0, rtol=1e-6)
    assert t == 5
    xs, ts = train[:3]
    assert xs.shape == (3, 784) and xs.dtype == np.float32
    assert ts.tolist() == [5, 0, 4]


def test_mnist_images_are_the_idx_files(mnist):
    _, test = mnist
    with gzip.open(MNIST_DIR / 't10k-images-idx3-ubyte.gz') as file:
        raw = file.read()
    assert raw[:4] == b'\x00\x00\x08\x03'
    assert np.array_equal(test.data[0, 0].ravel(), np.frombuffer(raw, np.uint8, 784, 16))
    assert np.array_equal(test.data[-1, 0].ravel(), np.frombuffer(raw, np.uint8)[-784:])


@needs_mnist
def test_mnist_from_zerograd_data(monkeypatch, mnist):
    monkeypatch.setenv('ZEROGRAD_DATA', str(SHARED))
    test = MNIST(train=False, transform=None)
    assert np.array_equal(test.data, mnist[1].data)
    assert np.array_equal(test.label, mnist[1].label)
    x, t = test[0]
    assert x.dtype == np.uint8 and x.shape == (1, 28, 28) and t == 7  # no transform


@needs_mnist
def test_mnist_available():
    assert MNIST.available(SHARED)  # the files are in its mnist folder
    assert MNIST.folder(SHARED) == str(MNIST_DIR)
    assert not MNIST.available(MNIST_DIR)


def test_mnist_offline_without_files(tmp_path):
    assert not MNIST.available()
    with pytest.raises(DownloadError) as info:
        MNIST(train=False)
    message = str(info.value)
    assert 't10k-images-idx3-ubyte.gz' in message
    assert str(tmp_path / 'empty-cache' / 'mnist') in message
    assert 'https://ossci-datasets.s3.amazonaws.com/mnist/t10k-images-idx3-ubyte.gz' in message


def _idx(dims, data, code=0x08):
    header = bytes([0, 0, code, len(dims)]) + b''.join(d.to_bytes(4, 'big') for d in dims)
    return header + bytes(data)


def test_read_idx_valid_files(tmp_path):
    images = np.arange(2 * 3 * 4, dtype=np.uint8).reshape(2, 3, 4)
    path = tmp_path / 'i.idx'
    path.write_bytes(_idx((2, 3, 4), images.tobytes()))
    out = read_idx(path, magic=2051)
    assert out.dtype == np.uint8 and np.array_equal(out, images)
    out[0, 0, 0] = 7  # writable
    gz = tmp_path / 'l.idx.gz'
    gz.write_bytes(gzip.compress(_idx((3,), [4, 1, 9])))
    assert read_idx(gz, magic=2049).tolist() == [4, 1, 9]
    big_endian = tmp_path / 'f.idx'
    big_endian.write_bytes(_idx((2,), np.array([1.5, -2.0], '>f4').tobytes(), code=0x0D))
    out = read_idx(big_endian)
    assert out.dtype == np.float32 and out.tolist() == [1.5, -2.0]


def test_read_idx_rejects_a_file_that_is_not_idx(tmp_path):
    html = tmp_path / 'train-images-idx3-ubyte.gz'
    html.write_bytes(b'<html><body>Access denied</body></html>')
    with pytest.raises(ValueError, match=r"train-images-idx3-ubyte.gz' is not an IDX file: "
                                         r'it starts with 3c 68 74 6d'):
        read_idx(html)
    empty = tmp_path / 'empty'
    empty.write_bytes(b'')
    with pytest.raises(ValueError, match='starts with nothing'):
        read_idx(empty)


def test_read_idx_wrong_magic_and_wrong_length(tmp_path):
    labels = tmp_path / 'labels.idx'
    labels.write_bytes(_idx((3,), [1, 2, 3]))
    with pytest.raises(ValueError, match=r'magic number 2049, expected 2051 \(images\)'):
        read_idx(labels, magic=2051)
    short = tmp_path / 'short.idx'
    short.write_bytes(_idx((10, 28, 28), bytes(100)))
    with pytest.raises(ValueError, match=r'holds 100 bytes of data, .* \(10, 28, 28\) of '
                                         r'uint8 need 7840'):
        read_idx(short)
    long = tmp_path / 'long.idx'
    long.write_bytes(_idx((2,), [1, 2, 3]))
    with pytest.raises(ValueError, match='holds 3 bytes of data'):
        read_idx(long)
    header = tmp_path / 'header.idx'
    header.write_bytes(bytes([0, 0, 8, 3, 0, 0]))
    with pytest.raises(ValueError, match='ends inside its header'):
        read_idx(header)


@needs_mnist
def test_read_idx_truncated_gzip(tmp_path):
    raw = (MNIST_DIR / 't10k-labels-idx1-ubyte.gz').read_bytes()
    cut = tmp_path / 't10k-labels-idx1-ubyte.gz'
    cut.write_bytes(raw[:len(raw) // 2])
    with pytest.raises(ValueError, match=r"t10k-labels-idx1-ubyte.gz' is a gzip file that "
                                         r'cannot be decompressed: it is truncated'):
        read_idx(cut)


@needs_mnist
def test_mnist_folder_with_a_truncated_or_foreign_file(tmp_path):
    folder = tmp_path / 'mnist'
    folder.mkdir()
    for name in ('t10k-images-idx3-ubyte.gz', 't10k-labels-idx1-ubyte.gz'):
        (folder / name).write_bytes((MNIST_DIR / name).read_bytes())
    labels = folder / 't10k-labels-idx1-ubyte.gz'
    good = labels.read_bytes()
    labels.write_bytes(good[:len(good) - 100])  # truncated gzip
    with pytest.raises(ValueError) as info:
        MNIST(train=False, root=tmp_path)
    message = str(info.value)
    assert str(labels) in message and '27ae3e4e09519cfbb04c329615203637' in message
    assert 'truncated' in message
    labels.write_bytes(b'<html>not found</html>')  # not IDX, not gzip
    with pytest.raises(ValueError, match=hashlib.md5(b'<html>not found</html>').hexdigest()):
        MNIST(train=False, root=tmp_path)
    assert not MNIST.available(tmp_path)
    assert sorted(os.listdir(folder)) == ['t10k-images-idx3-ubyte.gz',
                                          't10k-labels-idx1-ubyte.gz']  # nothing added


def test_mnist_labels():
    assert MNIST.labels() == {i: str(i) for i in range(10)}


# -----------------------------------------------------------------------------
# MNIST5k: the subset in the package
# -----------------------------------------------------------------------------
def _csv_rows(path):
    with gzip.open(path, 'rt') as file:
        return np.array([[int(v) for v in row] for row in csv.reader(file)])


@pytest.fixture(scope='module')
def csv_rows():
    return _csv_rows(PACKAGE_CSV)


def test_mnist5k_package_file():
    assert PACKAGE_CSV.is_file()
    assert PACKAGE_CSV.stat().st_size <= 1.5 * 1024 * 1024
    if MNIST5K_CSV.is_file():
        assert PACKAGE_CSV.read_bytes() == MNIST5K_CSV.read_bytes()


def test_mnist5k_split_and_pixels(csv_rows):
    train, test = MNIST5k(train=True), MNIST5k(train=False)
    assert len(train) == 4000 and len(test) == 1000
    assert np.bincount(train.label).tolist() == [400] * 10
    assert np.bincount(test.label).tolist() == [100] * 10
    assert train.data.dtype == np.uint8 and train.data.shape == (4000, 1, 28, 28)
    assert test.data.shape == (1000, 1, 28, 28)
    # the split by hand: each class's first 400 rows in file order are the training set
    labels = csv_rows[:, 784]
    is_train = np.zeros(len(labels), dtype=bool)
    for c in range(10):
        is_train[np.flatnonzero(labels == c)[:400]] = True
    assert np.array_equal(train.data.reshape(4000, 784), csv_rows[is_train, :784])
    assert np.array_equal(train.label, labels[is_train])
    assert np.array_equal(test.data.reshape(1000, 784), csv_rows[~is_train, :784])
    assert np.array_equal(test.label, labels[~is_train])


def test_mnist5k_default_transform():
    ds = MNIST5k(train=False)
    x, t = ds[0]
    assert x.dtype == np.float32 and x.shape == (784,)
    assert 0.0 <= x.min() and x.max() <= 1.0
    np.testing.assert_allclose(x, ds.data[0].ravel() / 255.0, rtol=1e-6)
    assert int(t) == ds.label[0]
    assert MNIST5k.available() and MNIST5k.labels() == MNIST.labels()


def test_mnist5k_digits_are_real_mnist_training_digits(mnist):
    train, _ = mnist
    index = {row.tobytes(): label for row, label in
             zip(train.data.reshape(60000, 784), train.label)}
    images, labels = MNIST5k.read_csv()
    found = [index.get(row.tobytes()) for row in images.reshape(-1, 784)]
    assert None not in found  # every one of the 5,000 images is in MNIST's training set
    assert np.array_equal(np.array(found), labels)  # with the same label


def test_show_draws_a_grid(tmp_path):
    pytest.importorskip('matplotlib')
    ds = MNIST5k(train=False)
    to_file = tmp_path / 'grid.png'
    grid = ds.show(row=2, col=3, to_file=str(to_file))
    assert grid.shape == (56, 84) and grid.dtype == np.uint8
    assert np.array_equal(grid[:28, :28], ds.data[0, 0])
    assert np.array_equal(grid[28:, 56:], ds.data[5, 0])
    assert to_file.read_bytes()[:8] == b'\x89PNG\r\n\x1a\n'
    with pytest.raises(ValueError, match='row must be a positive int'):
        ds.show(row=0, to_file=str(to_file))
    with pytest.raises(TypeError, match=r'show: col must be a positive int, got 2.0'):
        ds.show(row=2, col=2.0, to_file=str(to_file))


# -----------------------------------------------------------------------------
# CIFAR-10 and CIFAR-100, from archives in the binary format written here
# -----------------------------------------------------------------------------
def _pixels(rng, n):
    return rng.integers(0, 256, size=(n, 3, 32, 32), dtype=np.uint8)


def _records(label_columns, pixels):
    """Binary records: the label bytes of each row, then its 3,072 pixels (R, G, B)."""
    labels = np.asarray(label_columns, dtype=np.uint8).reshape(len(pixels), -1)
    return np.concatenate([labels, pixels.reshape(len(pixels), -1)], axis=1).tobytes()


def _write_tar(path, members, mode='w:gz'):
    """members: name -> bytes, or name -> ('symlink', target)."""
    with tarfile.open(path, mode) as archive:
        for name, content in members.items():
            info = tarfile.TarInfo(name)
            if isinstance(content, tuple):
                info.type = tarfile.SYMTYPE
                info.linkname = content[1]
                archive.addfile(info)
            else:
                info.size = len(content)
                archive.addfile(info, io.BytesIO(content))
    return path


def _cifar10_members(rng):
    """Five training batches of 2 records and a test batch of 3; returns the expected
    arrays too."""
    members, train_x, train_t = {}, [], []
    for i in range(1, 6):
        x, t = _pixels(rng, 2), rng.integers(0, 10, size=2)
        members[f'cifar-10-batches-bin/data_batch_{i}.bin'] = _records(t, x)
        train_x.append(x)
        train_t.append(t)
    test_x, test_t = _pixels(rng, 3), np.array([3, 9, 0])
    members['cifar-10-batches-bin/test_batch.bin'] = _records(test_t, test_x)
    members['cifar-10-batches-bin/batches.meta.txt'] = (
        '\n'.join(datasets.CIFAR10_LABELS) + '\n\n').encode()
    expected = (np.concatenate(train_x), np.concatenate(train_t), test_x, test_t)
    return members, expected


def test_cifar10_decodes_the_binary_format(tmp_path):
    members, (train_x, train_t, test_x, test_t) = _cifar10_members(np.random.default_rng(0))
    path = _write_tar(tmp_path / 'cifar-10-binary.tar.gz', members)
    train = CIFAR10(train=True, path=path, transform=None)
    test = CIFAR10(train=False, path=path, transform=None)
    assert train.data.dtype == np.uint8 and train.data.shape == (10, 3, 32, 32)
    assert np.array_equal(train.data, train_x) and np.array_equal(train.label, train_t)
    assert np.array_equal(test.data, test_x) and test.label.tolist() == [3, 9, 0]
    assert train.data.flags.writeable


def test_cifar10_channel_planes_and_default_transform(tmp_path):
    x = np.zeros((1, 3, 32, 32), dtype=np.uint8)
    x[0, 0], x[0, 1], x[0, 2] = 255, 0, 128  # red plane, green plane, blue plane
    x[0, 1, 0, 5] = 7  # green, row 0, column 5
    record = _records([6], x)
    assert record[1 + 1024 + 5] == 7  # planes in the record: R (1024), then G, then B
    members = {f'cifar-10-batches-bin/data_batch_{i}.bin': record for i in range(1, 6)}
    members['cifar-10-batches-bin/test_batch.bin'] = record
    ds = CIFAR10(train=False, path=_write_tar(tmp_path / 'c.tar.gz', members))
    assert ds.data[0, 1, 0, 5] == 7 and ds.data[0, 0].min() == 255
    image, label = ds[0]
    assert label == 6 and image.dtype == np.float32 and image.shape == (3, 32, 32)
    assert np.all(image[0] == 1.0) and image[1, 1, 1] == -1.0
    assert image.min() >= -1.0 and image.max() <= 1.0
    np.testing.assert_allclose(image[2, 0, 0], 128 / 127.5 - 1, rtol=1e-6)


def test_cifar10_labels_complete():
    labels = CIFAR10.labels()
    assert labels == dict(enumerate(['airplane', 'automobile', 'bird', 'cat', 'deer', 'dog',
                                     'frog', 'horse', 'ship', 'truck']))


def _cifar100_archive(tmp_path, rng, name_files=True):
    train_x, test_x = _pixels(rng, 4), _pixels(rng, 2)
    train_labels = np.array([[4, 30], [1, 1], [19, 99], [0, 72]])  # (coarse, fine)
    test_labels = np.array([[14, 2], [17, 47]])
    members = {'cifar-100-binary/train.bin': _records(train_labels, train_x),
               'cifar-100-binary/test.bin': _records(test_labels, test_x)}
    if name_files:
        members['cifar-100-binary/fine_label_names.txt'] = \
            '\n'.join(datasets.CIFAR100_FINE_LABELS).encode()
        members['cifar-100-binary/coarse_label_names.txt'] = \
            '\n'.join(datasets.CIFAR100_COARSE_LABELS).encode() + b'\n'
    path = _write_tar(tmp_path / 'cifar-100-binary.tar.gz', members)
    return path, train_x, train_labels, test_x, test_labels


def test_cifar100_fine_and_coarse(tmp_path):
    path, train_x, train_labels, test_x, test_labels = \
        _cifar100_archive(tmp_path, np.random.default_rng(1))
    fine = CIFAR100(train=True, path=path, transform=None)
    coarse = CIFAR100(train=True, path=path, transform=None, label_type='coarse')
    assert np.array_equal(fine.data, train_x) and fine.data.shape == (4, 3, 32, 32)
    assert fine.label.tolist() == [30, 1, 99, 72]
    assert coarse.label.tolist() == [4, 1, 19, 0]
    test = CIFAR100(train=False, path=path, transform=None)
    assert np.array_equal(test.data, test_x) and test.label.tolist() == [2, 47]
    # the instance's labels() follow its label_type
    assert fine.labels()[99] == 'worm' and coarse.labels()[19] == 'vehicles_2'
    with pytest.raises(ValueError, match="label_type must be 'fine' or 'coarse'"):
        CIFAR100(path=path, label_type='medium')


def test_cifar100_without_name_files(tmp_path):
    path = _cifar100_archive(tmp_path, np.random.default_rng(2), name_files=False)[0]
    assert len(CIFAR100(train=False, path=path)) == 2


def test_cifar100_labels_complete():
    fine, coarse = CIFAR100.labels(), CIFAR100.labels('coarse')
    assert len(fine) == 100 and len(set(fine.values())) == 100
    assert sorted(fine) == list(range(100))
    assert fine[0] == 'apple' and fine[30] == 'dolphin' and fine[72] == 'seal'
    assert fine[99] == 'worm' and list(fine.values()) == sorted(fine.values())
    assert len(coarse) == 20 and len(set(coarse.values())) == 20
    assert coarse[0] == 'aquatic_mammals' and coarse[9] == 'large_man-made_outdoor_things'
    assert coarse[19] == 'vehicles_2'
    assert CIFAR100.labels(label_type='fine') == fine
    with pytest.raises(ValueError, match='label_type'):
        CIFAR100.labels('all')


def _members_with(extra):
    members, _ = _cifar10_members(np.random.default_rng(3))
    members.update(extra)
    return members


@pytest.mark.parametrize('name', ['../evil.bin', 'cifar-10-batches-bin/../../evil.bin',
                                  '/tmp/zerograd-evil.bin'])
def test_cifar_rejects_unsafe_member_paths(tmp_path, name):
    work = tmp_path / 'work'
    work.mkdir()
    path = _write_tar(work / 'c.tar.gz', _members_with({name: b'payload'}))
    before = sorted(p.name for p in tmp_path.rglob('*'))
    with pytest.raises(ValueError, match='unsafe path'):
        CIFAR10(path=path)
    assert sorted(p.name for p in tmp_path.rglob('*')) == before  # nothing written
    assert not (tmp_path / 'evil.bin').exists()
    assert not os.path.exists('/tmp/zerograd-evil.bin')


def test_cifar_member_missing_or_of_the_wrong_kind(tmp_path):
    members = _members_with({})
    del members['cifar-10-batches-bin/data_batch_3.bin']
    path = _write_tar(tmp_path / 'missing.tar.gz', members)
    with pytest.raises(ValueError, match=r"lacks the member\(s\) "
                                         r"\['cifar-10-batches-bin/data_batch_3.bin'\]"):
        CIFAR10(path=path)
    assert len(CIFAR10(train=False, path=path)) == 3  # the test set is all there
    link = _members_with({'cifar-10-batches-bin/test_batch.bin': ('symlink', '/etc/passwd')})
    with pytest.raises(ValueError, match='not a regular file'):
        CIFAR10(train=False, path=_write_tar(tmp_path / 'link.tar.gz', link))


def test_cifar_wrong_record_length(tmp_path):
    members = _members_with({'cifar-10-batches-bin/test_batch.bin': bytes(3073 * 2 + 5)})
    with pytest.raises(ValueError, match=r'holds 6151 bytes, not a whole number of '
                                         r'3073-byte records'):
        CIFAR10(train=False, path=_write_tar(tmp_path / 'c.tar.gz', members))
    path = _cifar100_archive(tmp_path, np.random.default_rng(4))[0]
    # a CIFAR-100 archive read as CIFAR-10: wrong member names
    with pytest.raises(ValueError, match='lacks the member'):
        CIFAR10(path=path)


def test_cifar_label_out_of_range_and_wrong_names(tmp_path):
    x = np.zeros((1, 3, 32, 32), dtype=np.uint8)
    members = _members_with({'cifar-10-batches-bin/test_batch.bin': _records([10], x)})
    with pytest.raises(ValueError, match='holds label 10; classes are 0..9'):
        CIFAR10(train=False, path=_write_tar(tmp_path / 'l.tar.gz', members))
    names = _members_with({'cifar-10-batches-bin/batches.meta.txt': b'cat\ndog\n'})
    with pytest.raises(ValueError, match='batches.meta.txt.* differ from the standard 10'):
        CIFAR10(train=False, path=_write_tar(tmp_path / 'n.tar.gz', names))


def test_cifar_not_an_archive_or_truncated(tmp_path):
    junk = tmp_path / 'junk.tar.gz'
    junk.write_bytes(b'<html>this is not an archive</html>' * 20)
    with pytest.raises(ValueError, match='not a readable tar archive'):
        CIFAR10(path=junk)
    good = _write_tar(tmp_path / 'good.tar.gz', _members_with({})).read_bytes()
    cut = tmp_path / 'cut.tar.gz'
    cut.write_bytes(good[:len(good) // 2])
    with pytest.raises(ValueError, match='truncated'):
        CIFAR10(path=cut)


def test_cifar_download_path_is_checked(tmp_path):
    with pytest.raises(DownloadError) as info:
        CIFAR10()
    message = str(info.value)
    assert 'cifar-10-binary.tar.gz' in message
    assert 'https://www.cs.toronto.edu/~kriz/cifar-10-binary.tar.gz' in message
    # an archive in the data folder that is not the published one fails its checksum
    folder = tmp_path / 'data'
    folder.mkdir()
    _write_tar(folder / 'cifar-100-binary.tar.gz', _members_with({}))
    with pytest.raises(ValueError, match='03b5dce01913d631647c71ecec9e9cb8'):
        CIFAR100(root=folder)


def test_cifar_show(tmp_path):
    pytest.importorskip('matplotlib')
    path = _cifar100_archive(tmp_path, np.random.default_rng(5))[0]
    ds = CIFAR100(path=path)
    grid = ds.show(row=2, col=3, to_file=str(tmp_path / 'c.png'))
    assert grid.shape == (64, 96, 3)
    assert np.array_equal(grid[32:, :32], ds.data[3].transpose(1, 2, 0))
    assert np.all(grid[32:, 32:] == 0)  # only 4 images: the other tiles stay black


# -----------------------------------------------------------------------------
# SinCurve
# -----------------------------------------------------------------------------
def test_sincurve_train_uses_the_global_generator():
    np.random.seed(0)
    ds = SinCurve(train=True)
    after = np.random.rand()
    np.random.seed(0)
    x = np.linspace(0, 2 * np.pi, 1000)
    y = np.sin(x) + np.random.uniform(-0.05, 0.05, size=x.shape)
    assert np.random.rand() == after  # the same draws, in the same order
    assert ds.data.shape == (999, 1) and ds.label.shape == (999, 1)
    assert ds.data.dtype == np.float64 and ds.label.dtype == np.float64
    assert np.array_equal(ds.data[:, 0], y[:-1]) and np.array_equal(ds.label[:, 0], y[1:])
    assert np.array_equal(ds.data[1:], ds.label[:-1])
    assert np.max(np.abs(ds.data[:, 0] - np.sin(x[:-1]))) <= 0.05
    x0, t0 = ds[0]
    assert x0.shape == (1,) and t0[0] == y[1]


def test_sincurve_test_is_cos_without_noise():
    np.random.seed(1)
    ds = SinCurve(train=False)
    x = np.linspace(0, 2 * np.pi, 1000)
    assert np.array_equal(ds.data[:, 0], np.cos(x)[:-1])
    assert np.array_equal(ds.label[:, 0], np.cos(x)[1:])
    # as in the book, the noise is drawn for the test set too (then not used)
    np.random.seed(1)
    np.random.uniform(-0.05, 0.05, size=1000)
    expected = np.random.rand()
    np.random.seed(1)
    SinCurve(train=False)
    assert np.random.rand() == expected
    np.random.seed(2)
    assert not np.array_equal(SinCurve(train=True).data, SinCurve(train=True).data)


# -----------------------------------------------------------------------------
# Character text: CharText and Shakespear
# -----------------------------------------------------------------------------
def _book_ids(text):
    """The book's loop: ids in order of first appearance."""
    char_to_id = {}
    for c in text:
        if c not in char_to_id:
            char_to_id[c] = len(char_to_id)
    return char_to_id, np.array([char_to_id[c] for c in text])


def test_chartext_small_file(tmp_path):
    path = tmp_path / 'small.txt'
    path.write_text('hello, wörld 日本\nhello', encoding='utf-8')
    ds = CharText(path)
    assert ds.char_to_id == {'h': 0, 'e': 1, 'l': 2, 'o': 3, ',': 4, ' ': 5, 'w': 6,
                             'ö': 7, 'r': 8, 'd': 9, '日': 10, '本': 11, '\n': 12}
    assert ds.id_to_char == {i: c for c, i in ds.char_to_id.items()}
    text = 'hello, wörld 日本\nhello'
    ids = [ds.char_to_id[c] for c in text]
    assert ds.data.tolist() == ids[:-1] and ds.label.tolist() == ids[1:]
    assert np.issubdtype(ds.data.dtype, np.integer) and len(ds) == len(text) - 1
    assert ds[0] == (0, 1)


def test_chartext_bad_files(tmp_path):
    one = tmp_path / 'one.txt'
    one.write_text('a')
    with pytest.raises(ValueError, match='holds 1 characters; at least 2'):
        CharText(one)
    latin = tmp_path / 'latin1.txt'
    latin.write_bytes('café crème'.encode('latin-1'))
    with pytest.raises(ValueError, match='is not UTF-8 text'):
        CharText(latin)
    with pytest.raises(FileNotFoundError):
        CharText(tmp_path / 'absent.txt')


@pytest.mark.skipif(not SHAKESPEARE.is_file(), reason=f'{SHAKESPEARE} is missing')
def test_shakespear_from_a_path():
    ds = Shakespear(path=SHAKESPEARE)
    assert Shakespear is Shakespeare
    assert len(ds) == 1_115_393 and len(ds.data) == len(ds.label) == 1_115_393
    text = SHAKESPEARE.read_text(encoding='utf-8')
    char_to_id, ids = _book_ids(text)
    assert ds.char_to_id == char_to_id
    assert ds.id_to_char == {i: c for c, i in char_to_id.items()}
    assert np.array_equal(ds.data, ids[:-1]) and np.array_equal(ds.label, ids[1:])
    assert ''.join(ds.id_to_char[int(i)] for i in ds.data[:25]) == "ALL'S WELL THAT ENDS WELL"
    assert ds.data[0] == 0 and ds.label[-1] == ids[-1]


def test_shakespear_offline_without_the_file(tmp_path):
    with pytest.raises(DownloadError) as info:
        Shakespear()
    message = str(info.value)
    assert "'shakespear.txt'" in message and str(tmp_path / 'empty-cache') in message
    assert 'karpathy/char-rnn/master/data/tinyshakespeare/input.txt' in message
    # placed in the data folder by hand, it is used (with tiny-shakespeare's size)
    folder = tmp_path / 'data'
    folder.mkdir()
    (folder / 'shakespear.txt').write_text(('to be or not to be\n' * 60_000)[:1_115_394])
    assert len(Shakespear(root=folder)) == 1_115_393


# -----------------------------------------------------------------------------
# ImageNet labels: parsed as data, never run
# -----------------------------------------------------------------------------
def test_imagenet_labels_from_a_file(tmp_path):
    path = tmp_path / 'imagenet1000_clsidx_to_labels.txt'
    path.write_text("{0: 'tench, Tinca tinca',\n 1: 'goldfish, Carassius auratus',\n"
                    " 2: 'great white shark, white shark, man-eater'}\n")
    labels = ImageNet.labels(path=path)
    assert labels == {0: 'tench, Tinca tinca', 1: 'goldfish, Carassius auratus',
                      2: 'great white shark, white shark, man-eater'}
    assert ImageNet.labels(root=tmp_path) == labels  # the cached file in a data folder
    with pytest.raises(NotImplementedError, match='labels'):
        ImageNet()


@pytest.mark.parametrize('text', [
    "__import__('os').system('touch PWNED')",
    "{0: __import__('os').system('touch PWNED')}",
    "{0: 'tench'} if open('PWNED', 'w') else {}",
    "(lambda: open('PWNED', 'w'))()",
])
def test_imagenet_labels_never_run_code(tmp_path, monkeypatch, text):
    monkeypatch.chdir(tmp_path)
    path = tmp_path / 'labels.txt'
    path.write_text(text)
    with pytest.raises(ValueError, match='not a dict literal.*never run as code'):
        ImageNet.labels(path=path)
    assert not (tmp_path / 'PWNED').exists()


@pytest.mark.parametrize('text, match', [
    ('[1, 2, 3]', 'non-empty dict'), ('{}', 'non-empty dict'),
    ("{'a': 'b'}", r"found 'a': 'b'"), ('{0: 1}', 'found 0: 1'),
    ("{True: 'x'}", 'found True'), ("{-1: 'x'}", 'found -1'),
])
def test_imagenet_labels_must_be_a_dict_of_ints_to_names(tmp_path, text, match):
    path = tmp_path / 'labels.txt'
    path.write_text(text)
    with pytest.raises(ValueError, match=match):
        ImageNet.labels(path=path)
