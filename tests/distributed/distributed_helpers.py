"""What the tests of zerograd.distributed share."""
from __future__ import annotations

import numpy as np
import pytest

from zerograd import distributed

COMM = distributed.create_communicator()

two_ranks = pytest.mark.skipif(
    COMM.size < 2, reason='needs 2 MPI ranks: runs under mpiexec -n 2 python -m pytest '
    'tests/distributed (the MPI stage of .ci/run)')


def same_on_every_rank(comm: distributed.Communicator, arrays: list) -> bool:
    """True on every rank when every rank holds bitwise the same arrays."""
    blob = b''.join(np.ascontiguousarray(a).tobytes() for a in arrays)
    blobs = comm.gather_obj(blob)
    return comm.bcast_obj(None if blobs is None else len(set(blobs)) == 1)
