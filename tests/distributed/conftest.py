"""Tests of zerograd.distributed: they run as one process under plain pytest and as two
under ``mpiexec -n 2 python -m pytest tests/distributed`` (the CI's MPI stage).

Under several ranks, a test that fails on one rank only would leave the others waiting
forever in their next collective call: the hook below ends the whole job instead, with
the failure printed.
"""
from __future__ import annotations

import sys

import pytest

from distributed_helpers import COMM
from zerograd import distributed


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item, call):
    outcome = yield
    report = outcome.get_result()
    if COMM.size > 1 and report.failed:
        sys.stderr.write(f'\n[rank {COMM.rank}] {item.nodeid} failed:\n{report.longreprtext}\n'
                         f'[rank {COMM.rank}] aborting the MPI job so that the other ranks '
                         'do not wait forever\n')
        sys.stderr.flush()
        COMM.mpi_comm.Abort(1)


@pytest.fixture(scope='session')
def comm() -> distributed.Communicator:
    return COMM
