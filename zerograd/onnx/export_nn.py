"""Converters of the network ops: convolutions, pooling, batch norm, the LSTM cell.

Each is ``converter(ctx, f, xs, ys)`` (see ``exporter.register_converter``).

==========================  ===================================================================
zerograd Function           ONNX
==========================  ===================================================================
Conv2d                      Conv (W (OC, C, KH, KW) as it is; pads [PH, PW, PH, PW])
Deconv2d                    ConvTranspose (W (C, OC, KH, KW) is ONNX's layout; an outsize
                            above the default is output_padding)
Pooling                     MaxPool (ceil_mode=1 from ``pooling(..., ceil_mode=True)``
                            where that keeps a partial window; see ``_max_pooling``)
AveragePooling              AveragePool with count_include_pad=1 (zero padding counts)
BatchNorm (test mode)       BatchNormalization with the running statistics as initializers
                            named by their parameter paths ('bn1/avg_mean')
LSTMState, LSTMOutput       Sigmoid, Tanh, Mul, Add: the cell's formulas
LSTMStep                    per gate Gemm and MatMul, added (as LinearPair); c as LSTMState
Im2col                      Pad, then one strided Slice per kernel offset, Concat, Reshape
                            (and Transpose when to_matrix): a copy, exact for every value
Col2im                      Col2Im (opset 18 and later)
==========================  ===================================================================

onnxruntime's CPU backend has Conv, ConvTranspose, AveragePool and Col2Im in float32 only
(float64 has no kernel, and the session would refuse the file), so those are exported in
float32 only and any other dtype is a NotImplementedError saying so. MaxPool and
BatchNormalization run in float64 too.
"""
from __future__ import annotations

import numpy as np

import zerograd.functions as F
from zerograd.core import Function
from zerograd.onnx.exporter import ExportContext, converter, describe, refuse_backward_only
from zerograd.onnx.export_ops import _cast, _out


def _float_only(f: Function, op_type: str, dtypes: tuple = (np.float32,)) -> None:
    """Refuse an op whose dtype onnxruntime's CPU backend has no kernel of."""
    dtype = _out(f).dtype
    if dtype not in [np.dtype(d) for d in dtypes]:
        allowed = ' and '.join(np.dtype(d).name for d in dtypes)
        raise NotImplementedError(
            f'zerograd.onnx.export: {describe(f)} gives {dtype}, but onnxruntime\'s CPU '
            f'backend has {op_type} in {allowed} only (no {dtype} kernel: the file would not '
            f'load); export the model in {np.dtype(dtypes[0]).name} (cast its parameters '
            'and inputs)')


def _same_dtype(ctx: ExportContext, f: Function, xs: list[str]) -> list[str]:
    """The inputs cast to the output's dtype (ONNX wants x, W and b in one dtype)."""
    dtype = _out(f).dtype
    return [_cast(ctx, n, x.dtype, dtype) for n, x in zip(xs, f.inputs)]


def _fixed_spatial(ctx: ExportContext, f: Function) -> None:
    """Converters that bake in H and W need them fixed (not dynamic axes)."""
    x = f.inputs[0]
    if any(ctx.varying(x)[2:]):
        raise NotImplementedError(
            f'zerograd.onnx.export: {describe(f)} needs a fixed height and width, but they '
            'change with the dynamic axes; keep only the batch axis dynamic')


# -- conv (zerograd/functions/conv.py)
@converter(F.Conv2d)
def _conv2d(ctx, f, xs, ys):
    _float_only(f, 'Conv')
    KH, KW = f.inputs[1].shape[2:]
    (SH, SW), (PH, PW) = f.stride, f.pad
    ctx.node('Conv', _same_dtype(ctx, f, xs), ys, kernel_shape=[KH, KW], strides=[SH, SW],
             pads=[PH, PW, PH, PW])


@converter(F.Deconv2d)
def _deconv2d(ctx, f, xs, ys):
    # zerograd's W (C, OC, KH, KW) is ConvTranspose's (C_in, C_out, KH, KW). ONNX's output
    # is S (H - 1) + output_padding + K - 2 P, so an outsize above deconv2d's default
    # S (H - 1) + K - 2 P (by less than the stride) is that output_padding.
    _float_only(f, 'ConvTranspose')
    x, W = f.inputs[:2]
    KH, KW = W.shape[2:]
    (SH, SW), (PH, PW) = f.stride, f.pad
    default = [S * (n - 1) + K - 2 * P for n, K, S, P in
               zip(x.shape[2:], (KH, KW), (SH, SW), (PH, PW))]
    output_padding = [int(o) - d for o, d in zip(f.outsize, default)]
    if any(output_padding):
        _fixed_spatial(ctx, f)
    ctx.node('ConvTranspose', _same_dtype(ctx, f, xs), ys, kernel_shape=[KH, KW],
             strides=[SH, SW], pads=[PH, PW, PH, PW],
             output_padding=output_padding if any(output_padding) else None)


@converter(F.Im2col)
def _im2col(ctx, f, xs, ys):
    # Each kernel offset (i, j) is the strided slice padded_x[:, :, i::SH, j::SW] of
    # (N, C, OH, OW); stacked on a new axis 2 they are the windows (N, C, KH*KW, OH, OW).
    _fixed_spatial(ctx, f)
    (KH, KW), (SH, SW), (PH, PW) = f.kernel_size, f.stride, f.pad
    N, C, H, W = f.inputs[0].shape
    OH, OW = (H + 2 * PH - KH) // SH + 1, (W + 2 * PW - KW) // SW + 1
    padded = xs[0]
    if PH or PW:
        padded = ctx.op('Pad', xs[0], ctx.int64s([0, 0, PH, PW, 0, 0, PH, PW], 'pads'))
    axes, steps = ctx.int64s([2, 3], 'axes'), ctx.int64s([SH, SW], 'steps')
    offsets = []
    for i in range(KH):
        for j in range(KW):
            window = ctx.op('Slice', padded, ctx.int64s([i, j], 'starts'),
                            ctx.int64s([i + SH * (OH - 1) + 1, j + SW * (OW - 1) + 1], 'ends'),
                            axes, steps)
            offsets.append(ctx.unsqueeze(window, [2]))
    windows = ctx.op('Concat', *offsets, axis=2) if len(offsets) > 1 else offsets[0]
    if not f.to_matrix:  # (N, C, KH, KW, OH, OW)
        ctx.node('Reshape', [windows, ctx.int64s([0, C, KH, KW, OH, OW], 'shape')], ys)
        return
    rows = ctx.op('Transpose', windows, perm=[0, 3, 4, 1, 2])  # (N, OH, OW, C, KH*KW)
    ctx.node('Reshape', [rows, ctx.int64s([-1, C * KH * KW], 'shape')], ys)


@converter(F.Col2im)
def _col2im(ctx, f, xs, ys):
    if ctx.opset < 18:
        raise NotImplementedError(f'zerograd.onnx.export: {describe(f)}: ONNX has Col2Im '
                                  f'from opset 18; export with opset=18 or later (got '
                                  f'{ctx.opset})')
    _float_only(f, 'Col2Im')
    if any(ctx.varying(_out(f))[1:]):
        raise NotImplementedError(f'zerograd.onnx.export: {describe(f)} needs fixed sizes '
                                  'but the batch axis; keep only the batch axis dynamic')
    N, C, H, W = f.x_shape
    (KH, KW), (SH, SW), (PH, PW) = f.kernel_size, f.stride, f.pad
    OH, OW = (H + 2 * PH - KH) // SH + 1, (W + 2 * PW - KW) // SW + 1
    # Col2Im reads (N, C*KH*KW, OH*OW): each column one window, channel-major.
    if f.to_matrix:  # (N*OH*OW, C*KH*KW)
        blocks = ctx.op('Reshape', xs[0], ctx.int64s([-1, OH * OW, C * KH * KW], 'shape'))
        blocks = ctx.op('Transpose', blocks, perm=[0, 2, 1])
    else:  # (N, C, KH, KW, OH, OW)
        blocks = ctx.op('Reshape', xs[0], ctx.int64s([0, C * KH * KW, OH * OW], 'shape'))
    ctx.node('Col2Im', [blocks, ctx.int64s([H, W], 'image_shape'),
                        ctx.int64s([KH, KW], 'block_shape')], ys,
             strides=[SH, SW], pads=[PH, PW, PH, PW])


# -- pooling (zerograd/functions/pooling.py)
@converter(F.Pooling)
def _max_pooling(ctx, f, xs, ys):
    _float_only(f, 'MaxPool', (np.float32, np.float64))
    (KH, KW), (SH, SW), (PH, PW) = f.kernel_size, f.stride, f.pad
    pads, ceil_mode = [PH, PW, PH, PW], 0
    if f.ceil_mode and (f.extra != (0, 0) or any(ctx.varying(f.inputs[0])[2:])):
        # onnxruntime (at every opset) and onnx from opset 22 drop a last window that would
        # start in the end padding, as zerograd does; onnx's shape inference before 22 does
        # not, and the checker would refuse the file. There, where an axis has such a
        # window, the partial windows are written as padding after the end instead (MaxPool
        # never picks padding): the same numbers.
        OH, OW = _out(f).shape[2:]
        H, W = f.inputs[0].shape[2:]
        unruled = [-(-(n + 2 * p - k) // s) + 1 for n, k, s, p in
                   zip((H, W), (KH, KW), (SH, SW), (PH, PW))]
        if ctx.opset >= 22 or unruled == [OH, OW] or any(ctx.varying(f.inputs[0])[2:]):
            ceil_mode = 1
        else:
            EH, EW = f.extra
            pads = [PH, PW, PH + EH, PW + EW]
    # (ceil mode without a partial window, sizes that divide, is floor mode: written so)
    ctx.node('MaxPool', xs, ys, kernel_shape=[KH, KW], strides=[SH, SW], pads=pads,
             ceil_mode=ceil_mode)


@converter(F.AveragePooling)
def _average_pooling(ctx, f, xs, ys):
    # zerograd divides every window by KH*KW, padding included: count_include_pad=1.
    _float_only(f, 'AveragePool')  # (integers average to float64: refused too)
    (KH, KW), (SH, SW), (PH, PW) = f.kernel_size, f.stride, f.pad
    ctx.node('AveragePool', xs, ys, kernel_shape=[KH, KW], strides=[SH, SW],
             pads=[PH, PW, PH, PW], count_include_pad=1)


# -- normalization (zerograd/functions/normalization.py)
@converter(F.BatchNorm)
def _batch_norm(ctx, f, xs, ys):
    if f.train:
        raise NotImplementedError(
            f'zerograd.onnx.export: {describe(f)} was traced in training mode (batch '
            'statistics, running statistics updated); ONNX BatchNormalization is exported '
            'with the running statistics only: trace in test mode (export does)')
    x = f.inputs[0]
    _float_only(f, 'BatchNormalization', (np.float32, np.float64))
    # The running statistics are arrays held by the Function (the layer's avg_mean and
    # avg_var parameters' arrays, so they keep those paths as initializer names).
    mean = _cast(ctx, ctx.constant(f.avg_mean, 'avg_mean'), f.avg_mean.dtype, x.dtype)
    var = _cast(ctx, ctx.constant(f.avg_var, 'avg_var'), f.avg_var.dtype, x.dtype)
    gamma, beta = (_cast(ctx, n, v.dtype, x.dtype) for n, v in zip(xs[1:], f.inputs[1:]))
    ctx.node('BatchNormalization', [xs[0], gamma, beta, mean, var], ys, epsilon=float(f.eps))


# -- rnn (zerograd/functions/rnn.py)
@converter(F.LSTMState)
def _lstm_state(ctx, f, xs, ys):
    # c = sigmoid(af) c_prev + sigmoid(ai) tanh(au)
    c_prev, af, ai, au = _same_dtype(ctx, f, xs)
    forget = ctx.op('Mul', ctx.op('Sigmoid', af), c_prev)
    update = ctx.op('Mul', ctx.op('Sigmoid', ai), ctx.op('Tanh', au))
    ctx.node('Add', [forget, update], ys)


@converter(F.LSTMOutput)
def _lstm_output(ctx, f, xs, ys):
    # h = sigmoid(ao) tanh(c)
    c, ao = _same_dtype(ctx, f, xs)
    ctx.node('Mul', [ctx.op('Sigmoid', ao), ctx.op('Tanh', c)], ys)


@converter(F.LSTMStep)
def _lstm_step(ctx, f, xs, ys):
    # each gate x Wx + b + h Wh (as LinearPair), then c (as LSTMState) and ao
    x, h, c_prev, *params = _same_dtype(ctx, f, xs)
    af, ai, au = (ctx.op('Add', ctx.op('Gemm', x, params[k], params[4 + k]),
                         ctx.op('MatMul', h, params[8 + k])) for k in (0, 1, 3))
    forget = ctx.op('Mul', ctx.op('Sigmoid', af), c_prev)
    update = ctx.op('Mul', ctx.op('Sigmoid', ai), ctx.op('Tanh', au))
    c, ao = ys
    ctx.node('Add', [forget, update], [c])
    ctx.node('Add', [ctx.op('Gemm', x, params[2], params[6]), ctx.op('MatMul', h, params[10])],
             [ao])


# -- backward-only Functions: refused with the forward op they belong to. PoolingWithIndexes
# reads its input at the maxima of another array (the pooling's input), which no ONNX op
# does: it is the gradient of PoolingGrad, seen only in double-backward graphs.
for _cls, _forward in ((F.Conv2DGradW, 'conv2d'), (F.PoolingGrad, 'pooling'),
                       (F.PoolingWithIndexes, 'pooling'),
                       (F.AveragePoolingGrad, 'average_pooling')):
    refuse_backward_only(_cls, _forward)
