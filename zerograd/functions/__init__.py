"""Differentiable functions: ``import zerograd.functions as F``.

Each op is a Function subclass (``forward`` on arrays, ``backward`` on Variables with the
framework's functions, so every backward can be differentiated again) and a lowercase
wrapper that checks its arguments and takes shortcuts. The ops live in modules by topic,
as Chainer splits its functions, and are all re-exported here:

=================  ==========================================================================
``math``           elementwise: sin, cos, tanh, exp, log, square, sqrt, abs, clip; the dtype
                   rule of the float functions (bool and int computed in float64)
``array``          reshape, transpose, broadcast_to, sum_to, get_item, embed_id, expand_dims,
                   flatten, concat, stack, cast
``reduction``      sum, max, min, average (alias mean)
``linalg``         matmul, linear, linear_simple, linear_pair
``activation``     sigmoid, sigmoid_simple, relu, leaky_relu, softmax, softmax_simple,
                   log_softmax
``loss``           mean_squared_error, softmax_cross_entropy (and their ``_simple``
                   versions), sigmoid_cross_entropy, binary_cross_entropy, accuracy
``normalization``  dropout, batch_norm (alias batch_nrom), layer_norm
``conv``           conv2d, deconv2d, conv2d_simple, im2col, col2im
``pooling``        pooling (max), pooling_simple, average_pooling
``rnn``            lstm_cell (the LSTM cell as two fused ops), lstm_step (a whole LSTM step,
                   gates and cell, as two)
``fused``          the fused gradient ops the others' backwards call: TanhGrad,
                   SigmoidGrad, LinearGradX, LinearGradW, LinearPair
=================  ==========================================================================

The arithmetic functions ``add, sub, rsub, mul, div, rdiv, neg, pow`` live in ``arithmetic`` (the
operators of Variable) and are re-exported here too. The modules import each other
downward only (``fused`` and ``array`` at the bottom, ``conv``, ``pooling``, ``loss`` and
``rnn`` at the top), never this package; ``tests/test_imports.py`` keeps it so.
"""
from zerograd.arithmetic import add, div, mul, neg, pow, rdiv, rsub, sub  # noqa: F401
from zerograd.core import Config, Function, Variable, as_array, as_variable  # noqa: F401
from zerograd.cuda import get_array_module, scatter_add  # noqa: F401
from zerograd.functions.activation import (LeakyReLU, LogSoftmax, ReLU, Sigmoid,  # noqa: F401
                                           Softmax, leaky_relu, log_softmax, relu, sigmoid,
                                           sigmoid_simple, softmax, softmax_simple)
from zerograd.functions.array import (BroadcastTo, Cast, Concat, EmbedID, GetItem,  # noqa: F401
                                      GetItemGrad, Reshape, Stack, SumTo, Transpose,
                                      broadcast_to, cast, concat, embed_id, expand_dims,
                                      flatten, get_item, reshape, stack, sum_to, transpose)
from zerograd.functions.conv import (Col2im, Conv2d, Conv2DGradW, Deconv2d,  # noqa: F401
                                     Im2col, col2im, conv2d, conv2d_simple, deconv2d, im2col)
from zerograd.functions.fused import (LinearGradW, LinearGradX, LinearPair,  # noqa: F401
                                      SigmoidGrad, TanhGrad)
from zerograd.functions.linalg import (Linear, MatMul, linear, linear_pair,  # noqa: F401
                                       linear_simple, matmul)
from zerograd.functions.loss import (MeanSquaredError, SigmoidCrossEntropy,  # noqa: F401
                                     SoftmaxCrossEntropy, accuracy, binary_cross_entropy,
                                     mean_squared_error, mean_squared_error_simple,
                                     sigmoid_cross_entropy, softmax_cross_entropy,
                                     softmax_cross_entropy_simple)
from zerograd.functions.math import (Abs, Clip, Cos, Exp, Log, Sin, Sqrt, Square,  # noqa: F401
                                     Tanh, abs, clip, cos, exp, log, sin, sqrt, square, tanh)
from zerograd.functions.normalization import (BatchNorm, batch_nrom, batch_norm,  # noqa: F401
                                              dropout, layer_norm)
from zerograd.functions.normalization import _check_batch_norm_x  # noqa: F401 (layers.BatchNorm)
from zerograd.functions.pooling import (AveragePooling, AveragePoolingGrad,  # noqa: F401
                                        Pooling, PoolingGrad, PoolingWithIndexes,
                                        average_pooling, pooling, pooling_simple)
from zerograd.functions.reduction import (Average, Max, Min, Sum, average, max,  # noqa: F401
                                           mean, min, sum)
from zerograd.functions.rnn import (LSTMOutput, LSTMState, LSTMStep, lstm_cell,  # noqa: F401
                                   lstm_step)
