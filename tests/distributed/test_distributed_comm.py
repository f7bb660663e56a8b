"""The communicator: ranks, collective operations on rank-valued data, and what happens
without MPI or when a rank fails."""
from __future__ import annotations

import os
import pathlib
import shutil
import subprocess
import sys
import time

import numpy as np
import pytest

from distributed_helpers import COMM, two_ranks
from zerograd import distributed


def test_ranks_describe_the_job(comm):
    assert 0 <= comm.rank < comm.size
    assert 0 <= comm.intra_rank < comm.intra_size <= comm.size
    assert 0 <= comm.inter_rank < comm.inter_size
    sizes = comm.gather_obj((comm.rank, comm.intra_size, comm.inter_rank))
    if comm.rank == 0:
        assert [rank for rank, _, _ in sizes] == list(range(comm.size))
        # The processes of every machine add up to the job.
        per_machine = {inter: intra for _, intra, inter in sizes}
        assert sum(per_machine.values()) == comm.size
        assert len(per_machine) == comm.inter_size


@pytest.mark.parametrize('dtype', [np.float32, np.float64, np.int64, np.float16])
def test_allreduce_of_rank_values(comm, dtype):
    x = np.full((2, 3), comm.rank + 1, dtype=dtype)
    n = comm.size
    total = comm.allreduce(x)
    assert total.dtype == dtype and total.shape == (2, 3)
    np.testing.assert_array_equal(total, np.full((2, 3), n * (n + 1) // 2))
    np.testing.assert_array_equal(comm.allreduce(x, 'max'), np.full((2, 3), n))
    np.testing.assert_array_equal(comm.allreduce(x, 'min'), np.full((2, 3), 1))
    mean = comm.allreduce(x, 'mean')
    assert mean.dtype == (dtype if np.dtype(dtype).kind == 'f' else np.float64)
    np.testing.assert_array_equal(mean, np.full((2, 3), (n + 1) / 2))
    np.testing.assert_array_equal(x, np.full((2, 3), comm.rank + 1))  # input unchanged


def test_allreduce_refuses_an_unknown_op_and_a_variable(comm):
    from zerograd import Variable
    with pytest.raises(ValueError, match="op must be one of .*'prod'"):
        comm.allreduce(np.ones(2), 'prod')
    with pytest.raises(TypeError, match='pass its .data'):
        comm.allreduce(Variable(np.ones(2)))


def test_bcast_obj_and_gather_obj_of_rank_values(comm):
    root = comm.size - 1
    assert comm.bcast_obj({'rank': comm.rank}, root=root) == {'rank': root}
    gathered = comm.gather_obj(comm.rank * 10, root=root)
    if comm.rank == root:
        assert gathered == [r * 10 for r in range(comm.size)]
    else:
        assert gathered is None
    with pytest.raises(ValueError, match=f'root must be a rank from 0 to {comm.size - 1}'):
        comm.bcast_obj(1, root=comm.size)
    comm.barrier()


def test_global_mean_divides_global_sums_by_the_global_count(comm):
    # Rank r holds r + 1 examples whose losses add up to 10 * (r + 1) ** 2.
    n = comm.size
    result = comm.global_mean({'loss': 10.0 * (comm.rank + 1) ** 2, 'accuracy': 1.0},
                              comm.rank + 1)
    count = n * (n + 1) / 2
    assert result == {'loss': 10.0 * sum((r + 1) ** 2 for r in range(n)) / count,
                      'accuracy': n / count}
    with pytest.raises(ValueError, match='total count over the ranks is 0'):
        comm.global_mean({'loss': 0.0}, 0)


def test_without_mpi4py_one_process_gets_a_local_communicator(monkeypatch):
    monkeypatch.setattr(distributed, '_import_mpi', lambda: None)
    for name in distributed._LAUNCHER_SIZE_VARIABLES:
        monkeypatch.delenv(name, raising=False)
    comm = distributed.create_communicator()
    assert (comm.rank, comm.size, comm.mpi_comm) == (0, 1, None)
    np.testing.assert_array_equal(comm.allreduce(np.arange(3), 'mean'), [0.0, 1.0, 2.0])
    assert comm.bcast_obj('x') == 'x' and comm.gather_obj('x') == ['x']


@pytest.mark.parametrize('variable', ['PMI_SIZE', 'OMPI_COMM_WORLD_SIZE', 'MPI_LOCALNRANKS'])
def test_without_mpi4py_under_a_launcher_names_the_install_command(monkeypatch, variable):
    monkeypatch.setattr(distributed, '_import_mpi', lambda: None)
    for name in distributed._LAUNCHER_SIZE_VARIABLES:
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv(variable, '2')
    with pytest.raises(ImportError, match=r"one of 2 .*pip install 'zerograd\[mpi\]'"):
        distributed.create_communicator()


def _mpiexec() -> str | None:
    """mpiexec beside this Python (a venv with the mpich wheel), else on PATH."""
    here = pathlib.Path(sys.executable).parent / 'mpiexec'
    return str(here) if here.exists() else shutil.which('mpiexec')


@pytest.mark.skipif(COMM.size > 1, reason='starts its own 2-rank job: run from one process')
def test_a_rank_that_raises_ends_the_whole_job_quickly(tmp_path):
    mpiexec = _mpiexec()
    if mpiexec is None:
        pytest.skip('mpiexec not found (pip install mpich in this environment)')
    if distributed._import_mpi() is None:
        pytest.skip(f'mpi4py is not installed here ({distributed.INSTALL_HINT})')
    script = tmp_path / 'raise_on_rank_1.py'
    script.write_text(
        'from zerograd import distributed\n'
        'comm = distributed.create_communicator()\n'
        'if comm.rank == 1:\n'
        '    raise RuntimeError("rank 1 fails")\n'
        'comm.barrier()  # rank 0 would wait here forever without the abort hook\n')
    root = pathlib.Path(__file__).resolve().parents[2]
    env = dict(os.environ, PYTHONPATH=str(root), OMP_NUM_THREADS='1')
    start = time.perf_counter()
    result = subprocess.run([mpiexec, '-n', '2', sys.executable, str(script)], env=env,
                            capture_output=True, text=True, timeout=120)
    elapsed = time.perf_counter() - start
    assert result.returncode != 0
    assert 'rank 1 fails' in result.stderr
    assert elapsed < 20, f'the job took {elapsed:.1f} s to end'


@two_ranks
def test_every_rank_gets_a_different_rank(comm):
    assert sorted(comm.gather_obj(comm.rank) or []) == (
        list(range(comm.size)) if comm.rank == 0 else [])
