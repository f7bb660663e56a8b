"""dataloaders: DataLoader epochs, shuffling, the fast path, errors; SeqDataLoader streams."""
import importlib.util

import numpy as np
import pytest

from zerograd.dataloaders import DataLoader, SeqDataLoader
from zerograd.datasets import Dataset, Spiral


class Toy(Dataset):
    """n examples of shape (2,): data[i] = [i, -i] (float32), label i (int64)."""

    def __init__(self, n=10, **kwargs):
        self.n = n
        super().__init__(**kwargs)

    def prepare(self):
        i = np.arange(self.n)
        self.data = np.stack([i, -i], axis=1).astype(np.float32)
        self.label = i.astype(np.int64)


def as_pairs(ds):
    """The same examples as a plain list of (x, t) pairs: forces the per-item path."""
    return [ds[i] for i in range(len(ds))]


def double(x):
    return 2 * x


def test_attributes():
    loader = DataLoader(Toy(10), batch_size=4)
    assert loader.batch_size == 4 and loader.shuffle is True and loader.gpu is False
    assert loader.data_size == 10 and loader.max_iter == 3 and len(loader) == 3
    assert loader.iteration == 0 and loader.index is None
    assert DataLoader(Toy(8), 4).max_iter == 2


def test_batches_in_order_with_partial_last_batch():
    loader = DataLoader(Toy(10), batch_size=4, shuffle=False)
    batches = list(loader)
    assert [x.shape for x, _ in batches] == [(4, 2), (4, 2), (2, 2)]
    assert [t.tolist() for _, t in batches] == [[0, 1, 2, 3], [4, 5, 6, 7], [8, 9]]
    x, t = batches[2]
    assert np.array_equal(x, [[8, -8], [9, -9]]) and x.dtype == np.float32
    assert t.dtype == np.int64


def test_every_epoch_covers_all_samples_once():
    np.random.seed(0)
    loader = DataLoader(Toy(10), batch_size=3)
    orders = []
    for _ in range(3):
        seen = np.concatenate([t for _, t in loader])
        assert sorted(seen.tolist()) == list(range(10))
        orders.append(seen.tolist())
    assert orders[0] != orders[1] or orders[1] != orders[2]  # reshuffled each epoch


def test_shuffle_order_is_the_global_permutation_drawn_when_the_loop_starts():
    np.random.seed(42)
    expected = np.random.permutation(10)
    np.random.seed(42)
    loader = DataLoader(Toy(10), batch_size=4)  # draws nothing ...
    order = np.concatenate([t for _, t in loader])  # ... until the loop starts
    assert np.array_equal(order, expected)
    assert np.array_equal(loader.index, expected)
    # The second epoch's order is the next permutation from the same generator.
    np.random.seed(42)
    np.random.permutation(10)
    expected2 = np.random.permutation(10)
    np.random.seed(42)
    list(loader)
    assert np.array_equal(np.concatenate([t for _, t in loader]), expected2)


def test_construction_draws_no_random_numbers():
    np.random.seed(3)
    expected = np.random.rand()
    np.random.seed(3)
    DataLoader(Toy(10), batch_size=4)
    assert np.random.rand() == expected


def test_no_shuffle_draws_no_random_numbers():
    np.random.seed(3)
    expected = np.random.rand()
    np.random.seed(3)
    list(DataLoader(Toy(10), batch_size=4, shuffle=False))
    assert np.random.rand() == expected


def test_a_new_for_loop_after_break_is_a_new_epoch():
    loader = DataLoader(Toy(10), batch_size=4, shuffle=False)
    for x, t in loader:
        break
    assert loader.iteration == 1
    batches = [t.tolist() for _, t in loader]
    assert batches == [[0, 1, 2, 3], [4, 5, 6, 7], [8, 9]]  # from the start, not resumed


def test_a_new_for_loop_after_break_draws_a_new_order():
    loader = DataLoader(Toy(10), batch_size=4)
    np.random.seed(7)
    first = np.random.permutation(10)
    second = np.random.permutation(10)
    np.random.seed(7)
    for x, t in loader:
        assert np.array_equal(t, first[:4])
        break
    assert np.array_equal(np.concatenate([t for _, t in loader]), second)


def test_next_continues_the_epoch_then_stops_then_starts_again():
    loader = DataLoader(Toy(10), batch_size=4, shuffle=False)
    assert next(loader)[1].tolist() == [0, 1, 2, 3]  # starts an epoch
    assert loader.next()[1].tolist() == [4, 5, 6, 7]  # the book's method
    assert next(loader)[1].tolist() == [8, 9]
    with pytest.raises(StopIteration):
        next(loader)
    assert next(loader)[1].tolist() == [0, 1, 2, 3]  # a new epoch


def test_next_continues_the_epoch_a_break_left_open():
    loader = DataLoader(Toy(10), batch_size=4, shuffle=False)
    for _ in loader:
        break
    assert next(loader)[1].tolist() == [4, 5, 6, 7]


def test_reset_starts_a_new_epoch():
    loader = DataLoader(Toy(10), batch_size=4, shuffle=False)
    next(loader)
    next(loader)
    loader.reset()
    assert loader.iteration == 0
    assert next(loader)[1].tolist() == [0, 1, 2, 3]


def test_fast_path_equals_per_item_path():
    for kwargs in ({}, {'transform': double}, {'transform': double, 'target_transform': double}):
        ds = Toy(11, **kwargs)
        np.random.seed(1)
        fast = list(DataLoader(ds, batch_size=4))
        np.random.seed(1)
        slow = list(DataLoader(as_pairs(ds), batch_size=4))
        assert len(fast) == len(slow) == 3
        for (xf, tf), (xs, ts) in zip(fast, slow):
            assert xf.dtype == xs.dtype and tf.dtype == ts.dtype
            assert np.array_equal(xf, xs) and np.array_equal(tf, ts)


def test_fast_path_indexes_the_arrays_directly():
    # No transforms: the items are never fetched one by one through ds[i].
    class Counting(Toy):
        calls = 0

        def _check_int(self, i):
            Counting.calls += 1
            return super()._check_int(i)

    list(DataLoader(Counting(10), batch_size=4))
    assert Counting.calls == 0


def test_overridden_getitem_is_honoured():
    class Squares(Toy):
        def __getitem__(self, i):
            return np.float32(i * i), i

    x, t = next(DataLoader(Squares(5), batch_size=5, shuffle=False))
    assert np.array_equal(x, [0, 1, 4, 9, 16]) and np.array_equal(t, [0, 1, 2, 3, 4])


def test_unlabelled_dataset_gives_t_none():
    class Unlabelled(Dataset):
        def prepare(self):
            self.data = np.arange(5.0)

    batches = list(DataLoader(Unlabelled(), batch_size=2, shuffle=False))
    assert [t for _, t in batches] == [None, None, None]
    pairs = [(float(i), None) for i in range(5)]
    assert [t for _, t in DataLoader(pairs, batch_size=2)] == [None, None, None]


def test_spiral_epoch_like_the_book():
    loader = DataLoader(Spiral(), batch_size=30)
    assert loader.max_iter == 10
    xs, ts = zip(*loader)
    assert all(x.shape == (30, 2) and x.dtype == np.float32 for x in xs)
    assert np.bincount(np.concatenate(ts)).tolist() == [100, 100, 100]


def test_batch_size_errors():
    # the wrong type is a TypeError, a wrong value a ValueError (as for layer sizes)
    for bad in (2.0, '4', None, True, np.bool_(True)):
        with pytest.raises(TypeError, match=r'DataLoader: batch_size must be a positive int'):
            DataLoader(Toy(10), batch_size=bad)
    for bad in (0, -1, np.int64(0)):
        with pytest.raises(ValueError, match=r'DataLoader: batch_size must be a positive int'):
            DataLoader(Toy(10), batch_size=bad)
    with pytest.raises(ValueError, match=r'got -1'):
        DataLoader(Toy(10), batch_size=-1)
    assert DataLoader(Toy(10), batch_size=np.int64(5)).max_iter == 2


def test_dataset_errors():
    with pytest.raises(TypeError, match=r'DataLoader: dataset must have __len__ and __getitem__'):
        DataLoader(iter([1, 2]), batch_size=1)
    with pytest.raises(TypeError, match=r'DataLoader: dataset\[i\] must be an \(x, t\) pair'):
        next(DataLoader([1.0, 2.0], batch_size=1))


@pytest.mark.skipif(importlib.util.find_spec('cupy') is not None, reason='CuPy is installed')
def test_gpu_without_cupy_is_a_clear_import_error():
    with pytest.raises(ImportError, match='CuPy is not installed'):
        DataLoader(Toy(10), batch_size=4, gpu=True)
    loader = DataLoader(Toy(10), batch_size=4)
    with pytest.raises(ImportError, match='CuPy is not installed'):
        loader.to_gpu()
    assert loader.gpu is False
    loader.to_cpu()
    assert loader.gpu is False


# -----------------------------------------------------------------------------
# SeqDataLoader
# -----------------------------------------------------------------------------
class Sequence(Dataset):
    """data = arange(n), label = data + 100 (the next item, shifted, to tell them apart)."""

    def __init__(self, n=10, **kwargs):
        self.n = n
        super().__init__(**kwargs)

    def prepare(self):
        self.data = np.arange(self.n)
        self.label = np.arange(self.n) + 100


def test_seq_loader_exact_batches():
    loader = SeqDataLoader(Sequence(10), batch_size=2)
    assert loader.shuffle is False and loader.jump == 5 and loader.max_iter == 5
    batches = list(loader)
    assert [x.tolist() for x, _ in batches] == [[0, 5], [1, 6], [2, 7], [3, 8], [4, 9]]
    assert [t.tolist() for _, t in batches] == [[100, 105], [101, 106], [102, 107],
                                               [103, 108], [104, 109]]


def test_seq_loader_uneven_length_like_the_book():
    # 11 items, 3 streams: jump 3, ceil(11 / 3) = 4 batches as in the book; the 4th
    # batch's rows step into the first item of the next segment.
    loader = SeqDataLoader(Sequence(11), batch_size=3)
    assert loader.max_iter == 4
    batches = [x.tolist() for x, _ in loader]
    assert batches == [[0, 3, 6], [1, 4, 7], [2, 5, 8], [3, 6, 9]]


def test_seq_loader_each_for_loop_is_a_new_epoch():
    loader = SeqDataLoader(Sequence(10), batch_size=2)
    for _ in loader:
        break
    assert [x.tolist() for x, _ in loader][0] == [0, 5]
    assert [x.tolist() for x, _ in loader][0] == [0, 5]  # and again, after a full epoch


def test_seq_loader_equals_per_item_path():
    ds = Sequence(10, transform=double)
    fast = list(SeqDataLoader(ds, batch_size=3))
    slow = list(SeqDataLoader(as_pairs(ds), batch_size=3))
    for (xf, tf), (xs, ts) in zip(fast, slow):
        assert np.array_equal(xf, xs) and np.array_equal(tf, ts) and xf.dtype == xs.dtype
    assert [x.tolist() for x, _ in fast] == [[0, 6, 12], [2, 8, 14], [4, 10, 16],
                                             [6, 12, 18]]


def test_seq_loader_errors():
    with pytest.raises(ValueError, match=r'SeqDataLoader: batch_size must be a positive int'):
        SeqDataLoader(Sequence(10), batch_size=0)
    with pytest.raises(TypeError, match=r'SeqDataLoader: batch_size must be a positive int'):
        SeqDataLoader(Sequence(10), batch_size=2.0)
    with pytest.raises(ValueError, match=r'SeqDataLoader: batch_size 11 exceeds .* length 10'):
        SeqDataLoader(Sequence(10), batch_size=11)


# -----------------------------------------------------------------------------
# Examples that cannot be stacked into one batch
# -----------------------------------------------------------------------------
class _Ragged:
    """dataset[i] = (ones(i + 1), 0): every example has another shape."""

    def __len__(self):
        return 4

    def __getitem__(self, i):
        return np.ones(i + 1), 0


class _RaggedLabels:
    def __len__(self):
        return 3

    def __getitem__(self, i):
        return np.ones(2), np.zeros((1, 2) if i == 2 else (2,))


def test_examples_of_different_shapes_name_the_indices_and_shapes():
    loader = DataLoader(_Ragged(), batch_size=3, shuffle=False)
    with pytest.raises(ValueError, match=r'DataLoader: the examples of one batch must have one '
                                         r'shape to be stacked, but x of dataset\[0\] has shape '
                                         r'\(1,\) and x of dataset\[1\] has \(2,\) \(x shapes by '
                                         r'dataset index: 0: \(1,\), 1: \(2,\), 2: \(3,\)\)'):
        next(iter(loader))


def test_labels_of_different_shapes_name_the_indices_and_shapes():
    loader = DataLoader(_RaggedLabels(), batch_size=3, shuffle=False)
    with pytest.raises(ValueError, match=r'but t of dataset\[0\] has shape \(2,\) and t of '
                                         r'dataset\[2\] has \(1, 2\)'):
        next(iter(loader))


def test_examples_of_one_shape_still_stack():
    x, t = next(iter(DataLoader(_Ragged(), batch_size=1, shuffle=False)))
    np.testing.assert_array_equal(x, [[1.0]])
    np.testing.assert_array_equal(t, [0])


def test_seek_wrong_types_are_type_errors_and_wrong_values_value_errors():
    loader = DataLoader(Toy(10), batch_size=5, shuffle=False)
    for bad in (1.0, '1', True):
        with pytest.raises(TypeError, match=r'DataLoader.seek: iteration must be an int'):
            loader.seek(bad)
    for bad in (-1, 3):
        with pytest.raises(ValueError, match=r'DataLoader.seek: iteration must be an int from '
                                             r'0 to 2, got ' + str(bad)):
            loader.seek(bad)
    with pytest.raises(TypeError, match=r'DataLoader.seek: index .* of integers, got float64'):
        loader.seek(0, np.arange(10.0))
    for bad in (np.arange(9), np.zeros(10, dtype=int)):
        with pytest.raises(ValueError, match=r'DataLoader.seek: index must be a permutation'):
            loader.seek(0, bad)
    loader.seek(1, np.arange(10)[::-1])
    x, t = next(loader)
    assert [int(v) for v in t] == [4, 3, 2, 1, 0]
