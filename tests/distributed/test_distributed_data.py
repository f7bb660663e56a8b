"""Sharding a data set over the ranks, and exact global evaluation."""
from __future__ import annotations

import numpy as np
import pytest

import zerograd.functions as F
from distributed_helpers import two_ranks
from zerograd import distributed, training
from zerograd.dataloaders import DataLoader
from zerograd.datasets import Dataset, Spiral
from zerograd.models import MLP


@pytest.mark.parametrize('n', [1, 2, 7, 10, 300])
@pytest.mark.parametrize('size', [1, 2, 3, 4])
@pytest.mark.parametrize('shuffle', [False, True])
def test_shards_are_equal_disjoint_but_for_padding_and_covering(n, size, shuffle):
    shards = [distributed.shard_indices(n, rank, size, shuffle, seed=3) for rank in range(size)]
    length = -(-n // size)
    assert all(len(shard) == length for shard in shards)
    joined = np.concatenate(shards)
    assert sorted(joined[:n]) == list(range(n))  # before the padding: each index once
    padding = joined[n:]
    np.testing.assert_array_equal(padding, np.resize(joined[:n], len(padding)))
    assert len(padding) < size


@pytest.mark.parametrize('n, size', [(7, 2), (10, 3), (2, 4)])
def test_shards_without_padding_partition_the_data(n, size):
    shards = [distributed.shard_indices(n, rank, size, True, seed=0, equal_length=False)
              for rank in range(size)]
    assert sorted(np.concatenate(shards)) == list(range(n))
    lengths = [len(shard) for shard in shards]
    assert max(lengths) - min(lengths) <= 1


def test_a_seed_makes_the_shuffled_shards_deterministic():
    a = distributed.shard_indices(100, 1, 3, shuffle=True, seed=7)
    np.testing.assert_array_equal(a, distributed.shard_indices(100, 1, 3, shuffle=True, seed=7))
    assert not np.array_equal(a, distributed.shard_indices(100, 1, 3, shuffle=True, seed=8))
    assert not np.array_equal(a, distributed.shard_indices(100, 1, 3))


def test_scatter_dataset_gives_each_rank_a_view_of_its_shard(comm):
    dataset = Spiral()
    shard = distributed.scatter_dataset(dataset, comm, shuffle=True, seed=5)
    assert shard.parent is dataset  # a view: nothing copied or pickled
    np.testing.assert_array_equal(
        shard.indices, distributed.shard_indices(300, comm.rank, comm.size, True, 5))
    x, t = shard[3]
    np.testing.assert_array_equal(x, dataset.data[shard.indices[3]])
    assert int(t) == dataset.label[shard.indices[3]]
    xs, ts = shard[np.array([0, 2])]
    np.testing.assert_array_equal(xs, dataset.data[shard.indices[[0, 2]]])
    batches = list(DataLoader(shard, batch_size=64, shuffle=False))
    assert sum(len(x) for x, _ in batches) == len(shard)
    everything = comm.gather_obj(shard.indices)
    if comm.rank == 0:
        assert len({len(s) for s in everything}) == 1
        assert sorted(np.concatenate(everything)[:300]) == list(range(300))


def test_scatter_dataset_without_a_seed_agrees_across_ranks(comm):
    shard = distributed.scatter_dataset(Spiral(), comm, shuffle=True)
    everything = comm.gather_obj(shard.indices)
    if comm.rank == 0:
        assert sorted(np.concatenate(everything)[:300]) == list(range(300))


@two_ranks
def test_scatter_dataset_refuses_data_sets_of_different_lengths(comm):
    data = [(np.zeros(2), 0)] * (10 + comm.rank)
    with pytest.raises(ValueError, match='data sets of different lengths'):
        distributed.scatter_dataset(data, comm)


class Numbers(Dataset):
    def prepare(self):
        rng = np.random.default_rng(0)
        self.data = rng.standard_normal((7, 2)).astype(np.float32)
        self.label = rng.integers(0, 3, 7)


def test_global_evaluation_equals_one_process_with_unequal_shards(comm):
    np.random.seed(0)
    model = MLP((4, 3))
    dataset = Numbers()  # 7 examples: shards of unequal lengths on 2 or more ranks
    single = training.evaluate(model, DataLoader(dataset, batch_size=1, shuffle=False))
    shard = distributed.scatter_dataset(dataset, comm, equal_length=False)
    sums = {'loss': 0.0, 'accuracy': 0.0}
    for x, t in DataLoader(shard, batch_size=1, shuffle=False):
        y = model(x)
        sums['loss'] += float(F.softmax_cross_entropy(y, t).data) * len(x)
        sums['accuracy'] += float(F.accuracy(y, t).data) * len(x)
    result = comm.global_mean(sums, len(shard))
    assert result.keys() == single.keys()
    for name in single:
        np.testing.assert_allclose(result[name], single[name], rtol=1e-12, err_msg=name)
