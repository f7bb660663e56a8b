"""Converters of the tensor ops: arithmetic, math, array, reduction, linalg, activation, loss.

Each is ``converter(ctx, f, xs, ys)`` (see ``exporter.register_converter``). ONNX wants
both operands of Add, Mul... in one dtype where NumPy promotes (float32 + a float64
constant is float64), so the binary ops cast each operand to the output's dtype first.
"""
from __future__ import annotations

from typing import Any, Sequence

import numpy as np

import zerograd.arithmetic as A
import zerograd.functions as F
from zerograd.core import Function, Variable
from zerograd.cuda import as_numpy
from zerograd.functions import fused
from zerograd.functions.math import _ToFloat
from zerograd.onnx.exporter import (ExportContext, converter, describe, refuse_backward_only,
                                    register_converter, require_onnx)

INT64_MAX = np.iinfo(np.int64).max
INT64_MIN = np.iinfo(np.int64).min


def _out(f: Function, k: int = 0) -> Variable:
    return f.outputs[k]()


def _onnx_dtype(dtype: Any) -> int:
    return require_onnx().helper.np_dtype_to_tensor_dtype(np.dtype(dtype))


def _cast(ctx: ExportContext, name: str, have: Any, want: Any) -> str:
    """name cast to the dtype want, when its dtype have differs."""
    if np.dtype(have) == np.dtype(want):
        return name
    return ctx.op('Cast', name, to=_onnx_dtype(want))


def _binary(op_type: str):
    def convert(ctx, f, xs, ys):
        dtype = _out(f).dtype
        a, b = (_cast(ctx, n, x.dtype, dtype) for n, x in zip(xs, f.inputs))
        ctx.node(op_type, [a, b], ys)
    return convert


def _with_constant(op_type: str):
    """x (op) c, or c (op) x when the constant comes first (rsub, rdiv, 2 ** x)."""
    def convert(ctx, f, xs, ys):
        ctx.same_constant(f, _host(f.c), _host(ctx.twin(f).c))
        dtype = _out(f).dtype
        x = _cast(ctx, xs[0], f.inputs[0].dtype, dtype)
        c = ctx.constant(np.asarray(_host(f.c), dtype=dtype), 'c')
        ctx.node(op_type, [c, x] if f.constant_first else [x, c], ys)
    return convert


def _unary(op_type: str, **attrs: Any):
    def convert(ctx, f, xs, ys):
        ctx.node(op_type, xs, ys, **attrs)
    return convert


# -- arithmetic (zerograd/arithmetic.py)
for _cls, _op in ((A.Add, 'Add'), (A.Sub, 'Sub'), (A.Mul, 'Mul'), (A.Div, 'Div'),
                  (A.PowVariable, 'Pow')):
    register_converter(_cls, _binary(_op))
for _cls, _op in ((A.AddConstant, 'Add'), (A.SubConstant, 'Sub'), (A.SubFromConstant, 'Sub'),
                  (A.MulConstant, 'Mul'), (A.DivConstant, 'Div'),
                  (A.DivFromConstant, 'Div'), (A.Pow, 'Pow'), (A.ConstantPow, 'Pow')):
    register_converter(_cls, _with_constant(_op))
register_converter(A.Neg, _unary('Neg'))

# -- math (zerograd/functions/math.py)
for _cls, _op in ((F.Sin, 'Sin'), (F.Cos, 'Cos'), (F.Tanh, 'Tanh'), (F.Exp, 'Exp'),
                  (F.Log, 'Log'), (F.Sqrt, 'Sqrt'), (F.Abs, 'Abs'), (F.Sigmoid, 'Sigmoid')):
    register_converter(_cls, _unary(_op))


@converter(F.ReLU)
def _relu(ctx, f, xs, ys):
    dtype = _out(f).dtype
    if dtype.kind == 'f':
        ctx.node('Relu', xs, ys)
    else:  # ONNX Runtime has no integer Relu
        ctx.node('Max', [xs[0], ctx.scalar(0, dtype, 'zero')], ys)


@converter(F.Square)
def _square(ctx, f, xs, ys):
    ctx.node('Mul', [xs[0], xs[0]], ys)


@converter(_ToFloat)
def _to_float(ctx, f, xs, ys):
    ctx.node('Cast', xs, ys, to=_onnx_dtype(np.float64))


@converter(F.Clip)
def _clip(ctx, f, xs, ys):
    dtype = _out(f).dtype
    if dtype.kind == 'f':
        low, high = dtype.type(f.x_min), dtype.type(f.x_max)
    else:  # NumPy clips an int array at int bounds (a float bound would promote it)
        low, high = f.x_min, f.x_max
        if int(low) != low or int(high) != high:
            raise NotImplementedError(f'zerograd.onnx.export: {describe(f)} clips an integer '
                                      f'array at non-integer bounds {low}, {high}')
        low, high = dtype.type(int(low)), dtype.type(int(high))
    ctx.node('Clip', [xs[0], ctx.scalar(low, dtype, 'min'), ctx.scalar(high, dtype, 'max')], ys)


# -- activation (zerograd/functions/activation.py)
@converter(F.LeakyReLU)
def _leaky_relu(ctx, f, xs, ys):
    dtype = _out(f).dtype
    if dtype == np.float32:
        ctx.node('LeakyRelu', xs, ys, alpha=float(f.slope))
        return
    # LeakyRelu's alpha is a float32 attribute: in float64 the slope would be rounded
    x = xs[0]
    positive = ctx.op('Greater', x, ctx.scalar(0, dtype, 'zero'))
    ctx.node('Where', [positive, x, ctx.op('Mul', x, ctx.scalar(f.slope, dtype, 'slope'))], ys)


@converter(F.Softmax)
def _softmax(ctx, f, xs, ys):
    ctx.node('Softmax', xs, ys, axis=int(f.axis))


@converter(F.LogSoftmax)
def _log_softmax(ctx, f, xs, ys):
    ctx.node('LogSoftmax', xs, ys, axis=int(f.axis))


# -- array (zerograd/functions/array.py)
@converter(F.Reshape)
def _reshape(ctx, f, xs, ys):
    x, y = f.inputs[0], _out(f)
    ctx.node('Reshape', [xs[0], ctx.int64s(ctx.reshape_target(x, y), 'shape')], ys)


@converter(F.Transpose)
def _transpose(ctx, f, xs, ys):
    ndim = f.inputs[0].ndim
    axes = list(range(ndim))[::-1] if f.axes is None else [int(a) % ndim for a in f.axes]
    ctx.node('Transpose', xs, ys, perm=axes)


@converter(F.BroadcastTo)
def _broadcast_to(ctx, f, xs, ys):
    # Expand broadcasts both ways: a 1 in the target keeps the input's own size there, so an
    # axis the input already has at full size (the batch axis) is not baked in.
    x, y = f.inputs[0], _out(f)
    lead = y.ndim - x.ndim
    target = [1 if i >= lead and x.shape[i - lead] == n else n for i, n in enumerate(y.shape)]
    moving = ctx.varying(y)
    for i, n in enumerate(target):
        if moving[i] and n != 1:
            raise NotImplementedError(
                f'zerograd.onnx.export: {describe(f)} broadcasts to a size that changes with '
                f'the dynamic axes ({y.shape}, axis {i}); use dynamic_axes={{}}')
    ctx.node('Expand', [xs[0], ctx.int64s(target, 'shape')], ys)


@converter(F.SumTo)
def _sum_to(ctx, f, xs, ys):
    x, y = f.inputs[0], _out(f)
    lead = x.ndim - y.ndim
    axes = list(range(lead)) + [lead + i for i, n in enumerate(y.shape)
                                if n == 1 and x.shape[lead + i] != 1]
    if not axes:
        ctx.identity(xs[0], ys[0])
        return
    summed = ctx.reduce('ReduceSum', _cast(ctx, xs[0], x.dtype, y.dtype), axes, keepdims=True)
    if lead:
        ctx.squeeze(summed, list(range(lead)), ys[0])
    else:
        ctx.identity(summed, ys[0])


@converter(F.Concat)
def _concat(ctx, f, xs, ys):
    ctx.node('Concat', xs, ys, axis=int(f.axis))


@converter(F.Stack)
def _stack(ctx, f, xs, ys):
    ctx.node('Concat', [ctx.unsqueeze(x, [f.axis]) for x in xs], ys, axis=int(f.axis))


@converter(F.Cast)
def _cast_op(ctx, f, xs, ys):
    ctx.node('Cast', xs, ys, to=_onnx_dtype(f.dtype))


@converter(F.EmbedID)
def _embed_id(ctx, f, xs, ys):
    ids, W = xs
    ctx.node('Gather', [W, _cast(ctx, ids, f.inputs[0].dtype, np.int64)], ys, axis=0)


@converter(F.GetItem)
def _get_item(ctx, f, xs, ys):
    x = f.inputs[0]
    items = f.slices if isinstance(f.slices, tuple) else (f.slices,)
    twin = ctx.twin(f)
    twin_items = twin.slices if isinstance(twin.slices, tuple) else (twin.slices,)
    if len(items) != len(twin_items) or any(
            not isinstance(a, (np.ndarray, list)) and not hasattr(a, 'dtype') and a != b
            for a, b in zip(items, twin_items)):
        raise ValueError(
            f'zerograd.onnx.export: {describe(f)} indexes with {_index_text(items)}, which '
            f'becomes {_index_text(twin_items)} when the batch (dynamic) size changes: '
            "forward computed the index from the input's size, so the file would be wrong "
            'at other sizes; export with dynamic_axes={}')
    arrays = [i for i, s in enumerate(items) if isinstance(s, (np.ndarray, list))
              or (hasattr(s, 'dtype') and getattr(s, 'ndim', 0) > 0)]
    if not arrays:
        _basic_index(ctx, f, x, items, xs[0], ys[0])
        return
    for i in arrays:
        if np.shape(items[i]) != np.shape(twin_items[i]):
            raise NotImplementedError(
                f'zerograd.onnx.export: {describe(f)} indexes with an array of shape '
                f'{np.shape(items[i])} that changes with the batch size; pass the index '
                'array as an input of the model, or use dynamic_axes={}')
    # A boolean mask picks the positions np.nonzero gives (a constant here: its size is
    # known when exporting), one integer array per axis it covers.
    expanded: list[Any] = []
    for s in items:
        s = _host(s)
        if getattr(s, 'dtype', None) == np.bool_ and s.ndim > 0:
            expanded.extend(np.nonzero(s))
        else:
            expanded.append(s)
    items = tuple(expanded)
    arrays = [i for i, s in enumerate(items) if hasattr(s, 'dtype') and s.ndim > 0
              or isinstance(s, list)]
    index = [np.asarray(s) for s in items]
    if len(items) == 1:  # x[ids]: rows picked by an integer array
        ctx.node('Gather', [xs[0], ctx.constant(index[0].astype(np.int64), 'indices')], ys,
                 axis=0)
        return
    if len(arrays) == 1 and all(isinstance(s, slice) for i, s in enumerate(items)
                                if i != arrays[0]):
        # x[:, ids, 1:]: the slices first, then Gather on the array's axis (NumPy puts the
        # index's axes where the array was, as Gather does)
        k = arrays[0]
        sliced = [slice(None) if i == k else s for i, s in enumerate(items)]
        y = ctx.unique('sliced')
        _basic_index(ctx, f, x, sliced, xs[0], y)
        # negative indices stay negative: Gather counts them from the end at run time
        ctx.node('Gather', [y, ctx.constant(index[k].astype(np.int64), 'indices')], ys, axis=k)
        return
    rest = items[len(arrays):]
    if arrays == list(range(len(arrays))) and all(
            isinstance(s, slice) and s == slice(None) for s in rest):
        # x[a0, a1, ...] on the leading axes: GatherND of the broadcast index tuples
        picked = np.stack(np.broadcast_arrays(*index[:len(arrays)]), axis=-1).astype(np.int64)
        ctx.node('GatherND', [xs[0], ctx.constant(picked, 'indices')], ys)
        return
    raise NotImplementedError(f'zerograd.onnx.export: {describe(f)} mixes index arrays and '
                              f'slices ({_index_text(items)}); ONNX has no single op for it')


def _host(s: Any) -> Any:
    """An index or constant as NumPy (a CuPy one copied to the host), others as they are."""
    return as_numpy(s) if hasattr(s, 'dtype') else s


def _index_text(items: Sequence[Any]) -> str:
    return ', '.join(f'array{np.shape(s)}' if hasattr(s, 'shape') else repr(s) for s in items)


def _basic_index(ctx: ExportContext, f: Function, x: Variable, items: Sequence[Any],
                 name: str, output: str) -> None:
    """x[ints, slices, None, ...] as Slice, then Squeeze (ints) and Unsqueeze (None)."""
    n_real = sum(1 for s in items if s is not None and s is not Ellipsis)
    if sum(1 for s in items if s is Ellipsis) > 1:
        raise NotImplementedError(f'zerograd.onnx.export: {describe(f)}: more than one ...')
    expanded: list[Any] = []
    for s in items:
        if s is Ellipsis:
            expanded.extend([slice(None)] * (x.ndim - n_real))
        else:
            expanded.append(s)
    expanded.extend([slice(None)] * (x.ndim - sum(1 for s in expanded if s is not None)))
    starts, ends, axes, steps, squeeze, new_axes = [], [], [], [], [], []
    axis = out_axis = 0
    for s in expanded:
        if s is None:
            new_axes.append(out_axis)
            out_axis += 1
            continue
        if isinstance(s, slice):
            if s != slice(None):
                step = 1 if s.step is None else int(s.step)
                start = s.start if s.start is not None else (0 if step > 0 else INT64_MAX)
                end = s.stop if s.stop is not None else (INT64_MAX if step > 0 else INT64_MIN)
                starts.append(int(start))
                ends.append(int(end))
                axes.append(axis)
                steps.append(step)
            out_axis += 1
        else:  # an int: a slice of one, then squeezed
            i = int(s)
            starts.append(i)
            ends.append(i + 1 if i != -1 else INT64_MAX)
            axes.append(axis)
            steps.append(1)
            squeeze.append(axis)
        axis += 1
    y = name
    if axes:
        y = ctx.op('Slice', y, ctx.int64s(starts, 'starts'), ctx.int64s(ends, 'ends'),
                   ctx.int64s(axes, 'axes'), ctx.int64s(steps, 'steps'))
    if squeeze:
        y = ctx.squeeze(y, squeeze)
    if new_axes:
        y = ctx.unsqueeze(y, new_axes)
    ctx.identity(y, output)


# -- reduction (zerograd/functions/reduction.py)
def _reduction(op_type: str):
    def convert(ctx, f, xs, ys):
        # NumPy sums bool and int32 as int64 (the output's dtype); ONNX keeps the input's
        x = _cast(ctx, xs[0], f.inputs[0].dtype, _out(f).dtype)
        ctx.reduce(op_type, x, None if f.axis is None else list(f.axis), f.keepdims, ys[0])
    return convert


register_converter(F.Sum, _reduction('ReduceSum'))
register_converter(F.Max, _reduction('ReduceMax'))
register_converter(F.Min, _reduction('ReduceMin'))
register_converter(F.Average, _reduction('ReduceMean'))


# -- linalg (zerograd/functions/linalg.py)
@converter(F.MatMul)
def _matmul(ctx, f, xs, ys):
    dtype = _out(f).dtype
    ctx.node('MatMul', [_cast(ctx, n, x.dtype, dtype) for n, x in zip(xs, f.inputs)], ys)


@converter(F.Linear)
def _linear(ctx, f, xs, ys):
    dtype = _out(f).dtype
    ctx.node('Gemm', [_cast(ctx, n, x.dtype, dtype) for n, x in zip(xs, f.inputs)], ys)


@converter(fused.LinearPair)
def _linear_pair(ctx, f, xs, ys):
    dtype = _out(f).dtype
    x, W, b, h, U = (_cast(ctx, n, v.dtype, dtype) for n, v in zip(xs, f.inputs))
    ctx.node('Add', [ctx.op('Gemm', x, W, b), ctx.op('MatMul', h, U)], ys)


# -- loss (zerograd/functions/loss.py)
@converter(F.MeanSquaredError)
def _mean_squared_error(ctx, f, xs, ys):
    x0, x1 = f.inputs
    dtype = _out(f).dtype
    diff = ctx.op('Sub', *(_cast(ctx, n, x.dtype, dtype) for n, x in zip(xs, f.inputs)))
    total = ctx.reduce('ReduceSum', ctx.op('Mul', diff, diff), None, keepdims=False)
    ctx.node('Div', [total, _batch_size(ctx, xs[0], dtype)], ys)


def _batch_size(ctx: ExportContext, x: str, dtype: Any) -> str:
    """len(x) in dtype, read from x's shape at run time (the batch size is dynamic)."""
    n = ctx.op('Shape', x, start=0, end=1)
    return ctx.op('Cast', ctx.squeeze(n, [0]), to=_onnx_dtype(dtype))


@converter(F.SoftmaxCrossEntropy)
def _softmax_cross_entropy(ctx, f, xs, ys):
    scores, labels = xs
    labels = _cast(ctx, labels, f.inputs[1].dtype, np.int64)
    ctx.node('SoftmaxCrossEntropyLoss', [scores, labels], ys, reduction='mean')


@converter(F.SigmoidCrossEntropy)
def _sigmoid_cross_entropy(ctx, f, xs, ys):
    # sum(max(x, 0) - x t + log(1 + exp(-|x|))) / len(x), as forward computes it
    x, t = f.inputs
    dtype = _out(f).dtype
    xn, tn = xs[0], _cast(ctx, xs[1], t.dtype, dtype)
    one = ctx.scalar(1, dtype, 'one')
    soft = ctx.op('Log', ctx.op('Add', one, ctx.op('Exp', ctx.op('Neg', ctx.op('Abs', xn)))))
    loss = ctx.op('Add', ctx.op('Sub', ctx.op('Relu', xn), ctx.op('Mul', xn, tn)), soft)
    total = ctx.reduce('ReduceSum', loss, None, keepdims=False)
    ctx.node('Div', [total, _batch_size(ctx, xn, dtype)], ys)


# -- backward-only Functions: refused with the forward op they belong to
for _cls, _forward in ((F.GetItemGrad, 'get_item'), (fused.TanhGrad, 'tanh'),
                       (fused.SigmoidGrad, 'sigmoid'), (fused.LinearGradX, 'linear'),
                       (fused.LinearGradW, 'linear')):
    refuse_backward_only(_cls, _forward)
