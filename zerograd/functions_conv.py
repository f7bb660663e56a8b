"""Convolution and pooling under the book's module name, for its
``from dezero.functions_conv import conv2d, pooling, ...`` (steps 55-58).

The ops are written in ``zerograd/functions/conv.py`` and ``zerograd/functions/pooling.py``
and are the same objects as ``F.conv2d`` etc.; this module only re-exports them.

>>> import zerograd.functions as F
>>> from zerograd.functions_conv import conv2d
>>> conv2d is F.conv2d
True
"""
from zerograd.functions.conv import (Col2im, Conv2d, Conv2DGradW, Deconv2d,  # noqa: F401
                                     Im2col, col2im, conv2d, conv2d_simple, deconv2d, im2col)
from zerograd.functions.conv import _pair, _window_args  # noqa: F401 (used by layers)
from zerograd.functions.pooling import (AveragePooling, AveragePoolingGrad,  # noqa: F401
                                        Pooling, PoolingGrad, PoolingWithIndexes,
                                        average_pooling, pooling, pooling_simple)
from zerograd.hints import Pair  # noqa: F401
