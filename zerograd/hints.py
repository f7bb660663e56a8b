"""Type aliases of zerograd's public signatures, in one place.

``VarOrArray``: what every op takes, a Variable or an array (NumPy, or CuPy on a GPU).
``Pair``: a (height, width) pair, as ``kernel_size``, ``stride`` and ``pad`` of the conv
and pooling functions, which take ``int | Pair`` (an int n means (n, n); ``utils.pair``).
"""
from __future__ import annotations

from typing import Union

import numpy as np

from zerograd.core import Variable

VarOrArray = Union[Variable, np.ndarray]
Pair = tuple[int, int]
