"""The ONNX ops ``zerograd.onnx.load`` runs, each written with zerograd functions.

Each op has a builder, registered with ``_op``: at load time it reads the node's
attributes, refuses what it does not support (``NotImplementedError`` naming the node,
the op type and the attribute), and returns the function that runs the node on its
inputs (Variables, or NumPy arrays for constants) in every forward. The attributes an op
accepts are listed at registration: any other attribute is refused before anything runs.

==========================  ==================================================================
ONNX op                     zerograd
==========================  ==================================================================
Add Sub Mul Div Pow Neg     ``+ - * / **`` and unary ``-`` of Variable
Sin Cos Tanh Exp Log Sqrt   ``F.sin F.cos F.tanh F.exp F.log F.sqrt F.abs``
Abs
Relu LeakyRelu Sigmoid      ``F.relu F.leaky_relu F.sigmoid``
Clip                        ``F.clip``
Greater Less Equal          bool arrays (no gradient)
Where Max Min               ``F.broadcast_to F.concat F.get_item``
Cast                        ``F.cast``
Reshape Flatten Squeeze     ``F.reshape``
Unsqueeze
Transpose                   ``F.transpose``
Expand                      ``F.broadcast_to``
Pad                         ``F.get_item F.concat`` (constant mode)
ReduceSum ReduceMean        ``F.sum F.average F.max F.min``
ReduceMax ReduceMin
MatMul                      ``F.matmul``
Gemm                        ``F.linear`` (x W + b), else ``F.matmul``, ``*`` and ``+``
Softmax LogSoftmax          ``F.softmax F.log_softmax``
Concat                      ``F.concat``
Split Slice Gather          ``F.get_item``
GatherND
Conv ConvTranspose          ``F.conv2d F.deconv2d`` (groups: ``F.get_item`` and ``F.concat``)
MaxPool                     ``F.pooling`` (asymmetric pads, ceil_mode: ``F.concat`` of -inf)
AveragePool                 ``F.average_pooling`` (count_include_pad=0, ceil_mode: divided by
                            the average pooling of the mask of counted elements)
Col2Im                      ``F.col2im``
GlobalAveragePool           ``F.average F.max``
GlobalMaxPool
BatchNormalization          ``F.batch_norm`` (running statistics updated in training)
Dropout                     ``F.dropout`` in training, identity in test mode
SoftmaxCrossEntropyLoss     ``F.log_softmax``, ``F.get_item``, ``F.sum``
Identity Constant Shape     the array itself (constants)
ConstantOfShape
==========================  ==================================================================
"""
from __future__ import annotations

import math
from typing import Any, Callable, Sequence

import numpy as np

import zerograd.functions as F
from zerograd.core import Config, Variable
from zerograd.cuda import get_array_module

# The largest array a shape op (Expand, ConstantOfShape) may make, in bytes: a file
# asking for more is refused before anything is allocated.
MAX_BYTES = 2 ** 32
# What all the arrays whose sizes the file sets (ConstantOfShape, Expand, Pad, Col2Im,
# ConvTranspose's output, the padding of Conv and pooling) may take together in one
# forward: each is under MAX_BYTES, but a small file can hold many of them.
MAX_RUN_BYTES = 2 ** 33

Runner = Callable[..., Any]


def describe_node(proto: Any, index: int) -> str:
    """'node 3 'conv1' (Conv)' for messages; an unnamed node by its first output."""
    label = repr(proto.name) if proto.name else f'(unnamed, output {list(proto.output)[:1]})'
    return f'node {index} {label} ({proto.op_type})'


class RunBudget:
    """The bytes the file's own sizes have allocated in the current forward (the model
    resets it at each call; every node of the model shares it)."""

    def __init__(self) -> None:
        self.used = 0


class NodeSpec:
    """One node of the graph as the builders see it: its names, its attributes as Python
    values, the opset, ``read_tensor`` (the loader's checked TensorProto reader) and the
    model's run budget."""

    def __init__(self, proto: Any, index: int, opset: int,
                 read_tensor: Callable[[Any, str], np.ndarray],
                 budget: RunBudget | None = None) -> None:
        from onnx import helper
        self.op_type: str = proto.op_type
        self.name: str = proto.name
        self.index = index
        self.opset = opset
        self.inputs: list[str] = list(proto.input)
        self.outputs: list[str] = list(proto.output)
        self.attrs: dict[str, Any] = {a.name: helper.get_attribute_value(a)
                                      for a in proto.attribute}
        self.read_tensor = read_tensor
        self.budget = RunBudget() if budget is None else budget
        self.where = describe_node(proto, index)

    def attr(self, name: str, default: Any = None) -> Any:
        """The node's attribute ``name`` (bytes decoded to str), or ``default``."""
        value = self.attrs.get(name, default)
        return value.decode() if isinstance(value, bytes) else value

    def refuse(self, name: str, value: Any, supported: str) -> NotImplementedError:
        """The error for an attribute value this loader does not run."""
        return NotImplementedError(f'load: {self.where}: attribute {name}={value!r} is not '
                                   f'supported ({supported})')

    def error(self, message: str) -> ValueError:
        """A ValueError naming the node, for the caller to raise."""
        return ValueError(f'load: {self.where}: {message}')


class OpInfo:
    """A registered op: its builder and what a node of it may have."""

    def __init__(self, builder: Callable[[NodeSpec], Runner], attrs: frozenset,
                 inputs: tuple[int, int], outputs: int | None) -> None:
        self.builder = builder
        self.attrs = attrs
        self.inputs = inputs      # (fewest, most)
        self.outputs = outputs    # the most outputs it makes; None: any number


OPS: dict[str, OpInfo] = {}


def _op(*op_types: str, attrs: Sequence[str] = (), inputs: tuple[int, int] = (1, 1),
        outputs: int | None = 1) -> Callable:
    def register(builder: Callable[[NodeSpec], Runner]) -> Callable[[NodeSpec], Runner]:
        for op_type in op_types:
            OPS[op_type] = OpInfo(builder, frozenset(attrs), inputs, outputs)
        return builder
    return register


def check(node: NodeSpec) -> None:
    """Refuse node if its op, an attribute's name or its input/output counts are not
    supported (before any tensor of the file is read)."""
    info = OPS.get(node.op_type)
    if info is None:
        raise NotImplementedError(f'load: {node.where}: op type {node.op_type!r} is not '
                                  f'supported (supported: {", ".join(sorted(OPS))})')
    for name in node.attrs:
        if name not in info.attrs:
            raise NotImplementedError(f'load: {node.where}: attribute {name!r} is not '
                                      f'supported for {node.op_type} (supported: '
                                      f'{", ".join(sorted(info.attrs)) or "none"})')
    fewest, most = info.inputs
    if not fewest <= len(node.inputs) <= most:
        raise node.error(f'{node.op_type} takes {fewest} to {most} inputs, got '
                         f'{len(node.inputs)}: {node.inputs}')
    if not node.outputs or not node.outputs[0]:
        raise node.error('the node has no output')
    named = [k for k, name in enumerate(node.outputs) if name]
    if info.outputs is not None and named[-1] >= info.outputs:
        raise NotImplementedError(f'load: {node.where}: output {named[-1]} '
                                  f'({node.outputs[named[-1]]!r}) of {node.op_type} is not '
                                  f'supported (only the first {info.outputs})')


def build(node: NodeSpec) -> Runner:
    """The runner of node, after ``check``; the builder checks the attribute values."""
    check(node)
    return OPS[node.op_type].builder(node)


# =============================================================================
# Helpers
# =============================================================================
def _data(x: Any) -> Any:
    return x.data if isinstance(x, Variable) else np.asarray(x)


def _ints(x: Any) -> list[int]:
    """A shape, axes or indices input as a list of Python ints."""
    array = _data(x)
    if array.dtype.kind not in 'iu':
        raise TypeError(f'expected an integer tensor, got {array.dtype}')
    return [int(v) for v in array.reshape(-1)]


def _axis(node: NodeSpec, axis: int, ndim: int) -> int:
    if not -ndim <= axis < ndim:
        raise node.error(f'axis {axis} is out of range for an input of rank {ndim}')
    return axis % ndim


def check_size(node: NodeSpec, shape: Sequence[int], dtype: Any, charged: int | None = None
               ) -> None:
    """Refuse a shape with a negative size or of more than MAX_BYTES, before allocating,
    and charge ``charged`` bytes (default: the whole array) to the forward's budget,
    refusing when the forward would pass MAX_RUN_BYTES."""
    if any(n < 0 for n in shape):
        raise node.error(f'shape {tuple(shape)} has a negative size')
    itemsize = np.dtype(dtype).itemsize
    nbytes = math.prod(shape) * itemsize  # Python ints: no overflow
    # NumPy refuses (0, 2**62) too: the sizes other than 0 must fit as well.
    if nbytes > MAX_BYTES:
        raise node.error(f'shape {tuple(shape)} of {np.dtype(dtype)} would take {nbytes} '
                         f'bytes, more than the {MAX_BYTES} allowed')
    if math.prod(max(n, 1) for n in shape) * itemsize > MAX_BYTES:
        raise node.error(f'shape {tuple(shape)} of {np.dtype(dtype)} is empty but too large '
                         f'for NumPy: its sizes other than 0 would take more than the '
                         f'{MAX_BYTES} bytes allowed')
    charged = nbytes if charged is None else max(charged, 0)
    if node.budget.used + charged > MAX_RUN_BYTES:
        raise node.error(f'shape {tuple(shape)} of {np.dtype(dtype)} would bring the arrays '
                         f'whose sizes the file sets to {node.budget.used + charged} bytes '
                         f'in this forward, more than the {MAX_RUN_BYTES} allowed')
    node.budget.used += charged


def _charge_padding(node: NodeSpec, x: Any, begins: Sequence[int], ends: Sequence[int],
                    axes: Sequence[int]) -> None:
    """Check x padded by begins/ends on axes, charging the budget the padding's bytes."""
    shape = list(x.shape)
    for axis, before, after in zip(axes, begins, ends):
        shape[axis] += max(before, 0) + max(after, 0)
    itemsize = _data(x).dtype.itemsize
    check_size(node, shape, _data(x).dtype,
               (math.prod(shape) - math.prod(x.shape)) * itemsize)


def _need_rank(node: NodeSpec, x: Any, ranks: Sequence[int], what: str) -> None:
    if x.ndim not in ranks:
        raise NotImplementedError(f'load: {node.where}: only {what} are supported, got an '
                                  f'input of shape {tuple(x.shape)}')


def _ones_only(node: NodeSpec, name: str) -> None:
    value = node.attr(name)
    if value is not None and any(v != 1 for v in value):
        raise node.refuse(name, value, 'only 1')


def _auto_pad(node: NodeSpec) -> None:
    value = node.attr('auto_pad', 'NOTSET')
    if value not in ('NOTSET', 'VALID'):
        raise node.refuse('auto_pad', value, 'only NOTSET, or VALID with no pads')
    if value == 'VALID' and any(node.attr('pads', [])):
        raise node.error(f'auto_pad VALID with pads {node.attr("pads")}')


def _pads(node: NodeSpec, spatial: int = 2) -> tuple[list[int], list[int]]:
    """(begins, ends) of the pads attribute, each of length spatial."""
    pads = node.attr('pads')
    if pads is None:
        return [0] * spatial, [0] * spatial
    if len(pads) != 2 * spatial or any(p < 0 for p in pads):
        raise node.error(f'pads {pads} must be {2 * spatial} non-negative values')
    return list(pads[:spatial]), list(pads[spatial:])


def _symmetric_pads(node: NodeSpec) -> tuple[int, int]:
    begins, ends = _pads(node)
    if begins != ends:
        raise node.refuse('pads', node.attr('pads'), 'only the same padding at both ends')
    return begins[0], begins[1]


def _pair_attr(node: NodeSpec, name: str, default: int) -> tuple[int, int]:
    value = node.attr(name)
    if value is None:
        return default, default
    if len(value) != 2:
        raise NotImplementedError(f'load: {node.where}: attribute {name}={value!r} is not '
                                  'supported (only 2-D: two values)')
    return int(value[0]), int(value[1])


def _channel_groups(x: Any, W: Any, group: int, w_axis: int) -> list[tuple[Any, Any]]:
    """x's channels and W's axis w_axis split into group equal parts, pairwise."""
    C = x.shape[1] // group
    OCg = W.shape[w_axis] // group
    parts = []
    for g in range(group):
        xg = F.get_item(x, (slice(None), slice(g * C, (g + 1) * C)))
        index = (slice(None),) * w_axis + (slice(g * OCg, (g + 1) * OCg),)
        parts.append((xg, F.get_item(W, index)))
    return parts


def _group_bias(b: Any, group: int, g: int) -> Any:
    if b is None:
        return None
    n = b.shape[0] // group
    return F.get_item(b, slice(g * n, (g + 1) * n))


# =============================================================================
# Elementwise
# =============================================================================
_UNARY: dict[str, Callable] = {
    'Neg': F.neg, 'Sin': F.sin, 'Cos': F.cos, 'Tanh': F.tanh, 'Exp': F.exp, 'Log': F.log,
    'Sqrt': F.sqrt, 'Abs': F.abs, 'Relu': F.relu, 'Sigmoid': F.sigmoid,
}


@_op(*_UNARY)
def _unary(node: NodeSpec) -> Runner:
    return _UNARY[node.op_type]


def _int_div(a: Any, b: Any) -> Any:
    # ONNX divides integers as C does, truncating toward zero (NumPy's // floors).
    xp = get_array_module(a)
    with np.errstate(divide='ignore'):
        q = xp.sign(a) * xp.sign(b) * (xp.abs(a) // xp.abs(b))
    return q.astype(xp.result_type(a, b))


_BINARY: dict[str, tuple[Callable, Callable]] = {   # (on Variables, on two arrays)
    'Add': (F.add, np.add), 'Sub': (F.sub, np.subtract), 'Mul': (F.mul, np.multiply),
    'Div': (F.div, np.divide), 'Pow': (F.pow, np.power),
}


@_op(*_BINARY, inputs=(2, 2))
def _binary(node: NodeSpec) -> Runner:
    on_variables, on_arrays = _BINARY[node.op_type]

    def run(a: Any, b: Any) -> Any:
        if node.op_type == 'Div' and _data(a).dtype.kind in 'iu' \
                and _data(b).dtype.kind in 'iu':
            # Integers have no gradient: the quotient, truncated, is a constant.
            return _int_div(_data(a), _data(b))
        if not isinstance(a, Variable) and not isinstance(b, Variable):
            a, b = np.asarray(a), np.asarray(b)
            return on_arrays(a, b).astype(a.dtype, copy=False)
        y = on_variables(a, b)
        if node.op_type == 'Pow' and y.dtype != _data(a).dtype:
            y = F.cast(y, _data(a).dtype)   # ONNX Pow keeps the base's type
        return y
    return run


_COMPARE: dict[str, Callable] = {'Greater': np.greater, 'Less': np.less, 'Equal': np.equal}


@_op(*_COMPARE, inputs=(2, 2))
def _compare(node: NodeSpec) -> Runner:
    compare = _COMPARE[node.op_type]

    def run(a: Any, b: Any) -> Any:
        a, b = _data(a), _data(b)
        xp = get_array_module(a)
        # A bool tensor (no gradient): only Where and Cast read it.
        return getattr(xp, compare.__name__)(a, b)
    return run


def _select(condition: Any, a: Any, b: Any) -> Any:
    """Where(condition, a, b) with broadcasting, differentiable in a and b: both broadcast
    to the output's shape, stacked, and each element picked by F.get_item (exact for inf
    and nan, which a * mask + b * (1 - mask) is not)."""
    condition = _data(condition)
    if not isinstance(a, Variable) and not isinstance(b, Variable):
        xp = get_array_module(condition)
        return xp.where(condition, a, b)
    xp = get_array_module(_data(a) if isinstance(a, Variable) else _data(b))
    shape = np.broadcast_shapes(condition.shape, tuple(a.shape), tuple(b.shape))
    stacked = F.concat([F.reshape(F.broadcast_to(v, shape), (1,) + shape) for v in (a, b)],
                       axis=0)
    pick = xp.broadcast_to(xp.asarray(~condition.astype(bool), dtype=xp.intp), shape)
    grid = xp.meshgrid(*[xp.arange(n) for n in shape], indexing='ij', sparse=True)
    return F.get_item(stacked, (pick,) + tuple(grid))


@_op('Where', inputs=(3, 3))
def _where(node: NodeSpec) -> Runner:
    def run(condition: Any, a: Any, b: Any) -> Any:
        if _data(condition).dtype != np.bool_:
            raise TypeError(f'load: {node.where}: the condition must be bool, got '
                            f'{_data(condition).dtype}')
        if _data(a).dtype != _data(b).dtype:
            raise TypeError(f'load: {node.where}: the two values must have one dtype, got '
                            f'{_data(a).dtype} and {_data(b).dtype}')
        return _select(condition, a, b)
    return run


@_op('Max', 'Min', inputs=(1, 1 << 30))
def _max_min(node: NodeSpec) -> Runner:
    larger = node.op_type == 'Max'

    def run(*xs: Any) -> Any:
        y = xs[0]
        for x in xs[1:]:
            if _data(x).dtype != _data(y).dtype:
                raise TypeError(f'load: {node.where}: the inputs must have one dtype, got '
                                f'{_data(y).dtype} and {_data(x).dtype}')
            a, b = _data(y), _data(x)
            # Ties (and nan) take the first input, as np.maximum/minimum do for values.
            keep = (a >= b) if larger else (a <= b)
            y = _select(keep | (a != a), y, x)
        return y
    return run


@_op('LeakyRelu', attrs=('alpha',))
def _leaky_relu(node: NodeSpec) -> Runner:
    slope = float(node.attr('alpha', 0.01))
    return lambda x: F.leaky_relu(x, slope=slope)


@_op('Clip', inputs=(1, 3))
def _clip(node: NodeSpec) -> Runner:
    def run(x: Any, low: Any = None, high: Any = None) -> Any:
        dtype = _data(x).dtype
        # A missing bound is the dtype's own limit: ±inf would make integers float64.
        info = np.iinfo(dtype) if dtype.kind in 'iu' else None
        low = (info.min if info else -np.inf) if low is None else _data(low).item()
        high = (info.max if info else np.inf) if high is None else _data(high).item()
        y = F.clip(x, low, high)
        return y if y.dtype == dtype else F.cast(y, dtype)
    return run


@_op('Cast', attrs=('to', 'saturate'))
def _cast(node: NodeSpec) -> Runner:
    from onnx import helper
    to = node.attr('to')
    try:
        dtype = np.dtype(helper.tensor_dtype_to_np_dtype(to))
    except (KeyError, TypeError, ValueError):
        raise node.refuse('to', to, 'numeric types only') from None
    if dtype.kind not in 'biuf':
        raise node.refuse('to', to, 'bool, integer and float types only')
    return lambda x: F.cast(x, dtype)


# =============================================================================
# Shapes
# =============================================================================
@_op('Identity')
def _identity(node: NodeSpec) -> Runner:
    return lambda x: x


@_op('Reshape', attrs=('allowzero',), inputs=(2, 2))
def _reshape(node: NodeSpec) -> Runner:
    allowzero = bool(node.attr('allowzero', 0))

    def run(x: Any, shape: Any) -> Any:
        target = _ints(shape)
        if not allowzero:   # 0 copies the input's size on that axis
            if any(n == 0 and i >= x.ndim for i, n in enumerate(target)):
                raise node.error(f'shape {target} copies an axis (0) that x of shape '
                                 f'{tuple(x.shape)} does not have')
            target = [x.shape[i] if n == 0 else n for i, n in enumerate(target)]
        if target.count(-1) > 1 or any(n < -1 for n in target):
            raise node.error(f'shape {target} is not a valid shape')
        return F.reshape(x, tuple(target))
    return run


@_op('Flatten', attrs=('axis',))
def _flatten(node: NodeSpec) -> Runner:
    axis = int(node.attr('axis', 1))

    def run(x: Any) -> Any:
        if not -x.ndim <= axis <= x.ndim:
            raise node.error(f'axis {axis} is out of range for x of shape {tuple(x.shape)}')
        a = axis + x.ndim if axis < 0 else axis
        return F.reshape(x, (math.prod(x.shape[:a]), math.prod(x.shape[a:])))
    return run


@_op('Transpose', attrs=('perm',))
def _transpose(node: NodeSpec) -> Runner:
    perm = node.attr('perm')
    return lambda x: F.transpose(x, None if perm is None else tuple(perm))


@_op('Squeeze', attrs=('axes',), inputs=(1, 2))
def _squeeze(node: NodeSpec) -> Runner:
    attr_axes = node.attr('axes')

    def run(x: Any, axes: Any = None) -> Any:
        given = attr_axes if axes is None else _ints(axes)
        if given is None:
            keep = [n for n in x.shape if n != 1]
        else:
            drop = {_axis(node, a, x.ndim) for a in given}
            if any(x.shape[a] != 1 for a in drop):
                raise node.error(f'cannot squeeze axes {sorted(drop)} of x of shape '
                                 f'{tuple(x.shape)}: their size is not 1')
            keep = [n for i, n in enumerate(x.shape) if i not in drop]
        return F.reshape(x, tuple(keep))
    return run


@_op('Unsqueeze', attrs=('axes',), inputs=(1, 2))
def _unsqueeze(node: NodeSpec) -> Runner:
    attr_axes = node.attr('axes')

    def run(x: Any, axes: Any = None) -> Any:
        given = attr_axes if axes is None else _ints(axes)
        if given is None:
            raise node.error('Unsqueeze needs axes')
        rank = x.ndim + len(given)
        new = {_axis(node, a, rank) for a in given}
        if len(new) != len(given):
            raise node.error(f'repeated axis in {list(given)}')
        sizes = iter(x.shape)
        return F.reshape(x, tuple(1 if i in new else next(sizes) for i in range(rank)))
    return run


@_op('Expand', inputs=(2, 2))
def _expand(node: NodeSpec) -> Runner:
    def run(x: Any, shape: Any) -> Any:
        target = _ints(shape)
        check_size(node, target, _data(x).dtype, charged=0)   # charged below, as out
        try:
            out = np.broadcast_shapes(tuple(x.shape), tuple(target))
        except ValueError:
            raise node.error(f'x of shape {tuple(x.shape)} does not broadcast with '
                             f'{target}') from None
        check_size(node, out, _data(x).dtype)
        return F.broadcast_to(x, out)
    return run


@_op('Pad', attrs=('mode',), inputs=(2, 4))
def _pad_op(node: NodeSpec) -> Runner:
    mode = node.attr('mode', 'constant')
    if mode != 'constant':
        raise node.refuse('mode', mode, 'only constant')

    def run(x: Any, pads: Any, value: Any = None, axes: Any = None) -> Any:
        amounts = _ints(pads)
        axes = list(range(x.ndim)) if axes is None else [_axis(node, a, x.ndim)
                                                         for a in _ints(axes)]
        if len(amounts) != 2 * len(axes) or len(set(axes)) != len(axes):
            raise node.error(f'pads {amounts} must hold two values for each of the axes '
                             f'{axes} of x of shape {tuple(x.shape)}')
        begins, ends = amounts[:len(axes)], amounts[len(axes):]
        if any(x.shape[a] + b + e < 0 for a, b, e in zip(axes, begins, ends)):
            raise node.error(f'pads {amounts} remove more than x of shape {tuple(x.shape)} '
                             'holds')
        fill = 0 if value is None else _data(value).reshape(-1)
        if value is not None and fill.size != 1:
            raise node.error(f'constant_value must hold one value, got shape {fill.shape}')
        fill = fill if value is None else fill[0].item()
        # Negative pads crop.
        index = [slice(None)] * x.ndim
        for a, b, e in zip(axes, begins, ends):
            index[a] = slice(max(-b, 0), x.shape[a] - max(-e, 0))
        if any(p < 0 for p in amounts):
            x = F.get_item(x, tuple(index))
        grow = [max(b, 0) for b in begins], [max(e, 0) for e in ends]
        _charge_padding(node, x, grow[0], grow[1], axes)
        return _pad(x, grow[0], grow[1], fill, axes)
    return run


@_op('Shape', attrs=('start', 'end'))
def _shape(node: NodeSpec) -> Runner:
    start, end = node.attr('start', 0), node.attr('end')
    return lambda x: np.array(tuple(x.shape)[start:end], dtype=np.int64)


@_op('ConstantOfShape', attrs=('value',))
def _constant_of_shape(node: NodeSpec) -> Runner:
    value = node.attr('value')
    fill = np.zeros(1, np.float32) if value is None else node.read_tensor(value, node.where)
    if fill.size != 1:
        raise node.error(f'value must hold one element, got shape {fill.shape}')

    def run(shape: Any) -> np.ndarray:
        target = _ints(shape)
        check_size(node, target, fill.dtype)
        return np.full(target, fill.reshape(()), dtype=fill.dtype)
    return run


@_op('Constant', attrs=('value', 'value_float', 'value_floats', 'value_int', 'value_ints',
                        'sparse_value', 'value_string', 'value_strings'), inputs=(0, 0))
def _constant(node: NodeSpec) -> Runner:
    if len(node.attrs) != 1:
        raise node.error(f'Constant needs exactly one value attribute, got {sorted(node.attrs)}')
    (name, value), = node.attrs.items()
    if name == 'value':
        array = node.read_tensor(value, node.where)
    elif name in ('value_float', 'value_floats'):
        array = np.array(value, dtype=np.float32)
    elif name in ('value_int', 'value_ints'):
        array = np.array(value, dtype=np.int64)
    else:
        raise node.refuse(name, '...', 'only value, value_float(s) and value_int(s)')
    return lambda: array


# =============================================================================
# Reductions, products, softmax
# =============================================================================
def _reduce_builder(fn: Callable) -> Callable[[NodeSpec], Runner]:
    def builder(node: NodeSpec) -> Runner:
        keepdims = bool(node.attr('keepdims', 1))
        empty_is_noop = bool(node.attr('noop_with_empty_axes', 0))
        attr_axes = node.attr('axes')

        def run(x: Any, axes: Any = None) -> Any:
            given = attr_axes if axes is None else _ints(axes)
            if not given:
                if empty_is_noop:
                    return x
                return fn(x, axis=None, keepdims=keepdims)
            return fn(x, axis=tuple(_axis(node, a, x.ndim) for a in given),
                      keepdims=keepdims)
        return run
    return builder


def _int_mean(x: Any, axis: Any = None, keepdims: bool = False) -> Any:
    """ReduceMean of integers as onnxruntime computes it: the sum divided by the count,
    truncated toward zero, in x's dtype (no gradient: a constant)."""
    data = _data(x)
    xp = get_array_module(data)
    total = xp.sum(data, axis=axis, keepdims=keepdims, dtype=np.int64)
    count = data.size // max(total.size, 1) if data.size else 0
    return _int_div(total, xp.asarray(max(count, 1), dtype=np.int64)).astype(data.dtype)


def _keeping_dtype(fn: Callable) -> Callable:
    """fn, with integer and bool reductions cast back to x's dtype (NumPy's sum makes
    int32 int64; ONNX keeps the input's type) and integer means as onnxruntime's."""
    def reduce(x: Any, axis: Any = None, keepdims: bool = False) -> Any:
        dtype = _data(x).dtype
        if dtype.kind in 'iub' and fn is F.average:
            return _int_mean(x, axis=axis, keepdims=keepdims)
        y = fn(x, axis=axis, keepdims=keepdims)
        return y if _data(y).dtype == dtype else F.cast(y, dtype)
    return reduce


for _name, _fn in (('ReduceSum', F.sum), ('ReduceMean', F.average), ('ReduceMax', F.max),
                   ('ReduceMin', F.min)):
    _op(_name, attrs=('axes', 'keepdims', 'noop_with_empty_axes'), inputs=(1, 2))(
        _reduce_builder(_keeping_dtype(_fn)))


@_op('MatMul', inputs=(2, 2))
def _matmul(node: NodeSpec) -> Runner:
    return F.matmul


@_op('Gemm', attrs=('alpha', 'beta', 'transA', 'transB'), inputs=(2, 3))
def _gemm(node: NodeSpec) -> Runner:
    alpha = float(node.attr('alpha', 1.0))
    beta = float(node.attr('beta', 1.0))
    trans_a, trans_b = bool(node.attr('transA', 0)), bool(node.attr('transB', 0))

    def run(A: Any, B: Any, C: Any = None) -> Any:
        if A.ndim != 2 or B.ndim != 2:
            raise node.error(f'A and B must be matrices, got shapes {tuple(A.shape)} and '
                             f'{tuple(B.shape)}')
        W = F.transpose(B) if trans_b else B
        if (not trans_a and alpha == 1.0 and beta == 1.0 and A.shape[1] == W.shape[0]
                and (C is None or tuple(C.shape) == (W.shape[1],))):
            return F.linear(A, W, C)   # the usual x W + b of a dense layer: one fused op
        y = F.matmul(F.transpose(A) if trans_a else A, W)
        if alpha != 1.0:
            y = y * alpha
        if C is not None:
            y = y + (C if beta == 1.0 else C * beta)
        return y
    return run


@_op('Softmax', 'LogSoftmax', attrs=('axis',))
def _softmax(node: NodeSpec) -> Runner:
    axis = int(node.attr('axis', -1))
    fn = F.softmax if node.op_type == 'Softmax' else F.log_softmax

    def run(x: Any) -> Any:
        return fn(x, axis=_axis(node, axis, x.ndim))
    return run


@_op('SoftmaxCrossEntropyLoss', attrs=('reduction', 'ignore_index'), inputs=(2, 3),
     outputs=2)
def _softmax_cross_entropy(node: NodeSpec) -> Runner:
    reduction = node.attr('reduction', 'mean')
    if reduction not in ('mean', 'sum', 'none'):
        raise node.refuse('reduction', reduction, 'mean, sum or none')
    if 'ignore_index' in node.attrs:
        raise node.refuse('ignore_index', node.attr('ignore_index'), 'no ignored class')
    if len(node.inputs) == 3 and node.inputs[2]:
        raise NotImplementedError(f'load: {node.where}: input 2 (weights) of '
                                  'SoftmaxCrossEntropyLoss is not supported')
    with_log_prob = len(node.outputs) > 1 and bool(node.outputs[1])

    def run(scores: Any, labels: Any, weights: Any = None) -> Any:
        _need_rank(node, scores, (2,), 'scores (N, C)')
        t = _data(labels)
        N, C = scores.shape
        if t.shape != (N,) or t.dtype.kind not in 'iu':
            raise node.error(f'labels must be integers of shape ({N},), got {t.dtype} '
                             f'{t.shape}')
        if t.size and (t.min() < 0 or t.max() >= C):
            raise node.error(f'labels must be in [0, {C}), got {t.min()} to {t.max()}')
        log_prob = F.log_softmax(scores, axis=1)
        loss = -F.get_item(log_prob, (np.arange(N), t.astype(np.intp)))
        if reduction == 'sum':
            loss = F.sum(loss)
        elif reduction == 'mean':
            loss = F.average(loss)
        return (loss, log_prob) if with_log_prob else loss
    return run


# =============================================================================
# Joining and indexing
# =============================================================================
@_op('Concat', attrs=('axis',), inputs=(1, 1 << 30))
def _concat(node: NodeSpec) -> Runner:
    axis = int(node.attr('axis'))
    return lambda *xs: F.concat(xs, axis=_axis(node, axis, xs[0].ndim))


@_op('Split', attrs=('axis', 'split', 'num_outputs'), inputs=(1, 2), outputs=None)
def _split(node: NodeSpec) -> Runner:
    axis = int(node.attr('axis', 0))
    count = len(node.outputs)

    def run(x: Any, split: Any = None) -> tuple:
        a = _axis(node, axis, x.ndim)
        sizes = node.attr('split') if split is None else _ints(split)
        if sizes is None:   # equal parts, the last one smaller (opset 18's num_outputs)
            part = -(-x.shape[a] // count)
            sizes = [min(part, x.shape[a] - k * part) for k in range(count)]
        if len(sizes) != count or sum(sizes) != x.shape[a] or min(sizes) < 0:
            raise node.error(f'split {list(sizes)} does not cut axis {a} of x of shape '
                             f'{tuple(x.shape)} into {count} parts')
        starts = np.cumsum([0] + list(sizes))
        return tuple(F.get_item(x, (slice(None),) * a + (slice(int(s), int(s) + n),))
                     for s, n in zip(starts, sizes))
    return run


@_op('Slice', inputs=(3, 5))
def _slice(node: NodeSpec) -> Runner:
    def run(x: Any, starts: Any, ends: Any, axes: Any = None, steps: Any = None) -> Any:
        starts, ends = _ints(starts), _ints(ends)
        axes = list(range(len(starts))) if axes is None else _ints(axes)
        steps = [1] * len(starts) if steps is None else _ints(steps)
        if not len(starts) == len(ends) == len(axes) == len(steps):
            raise node.error(f'starts {starts}, ends {ends}, axes {axes} and steps {steps} '
                             'differ in length')
        index = [slice(None)] * x.ndim
        for start, end, axis, step in zip(starts, ends, axes, steps):
            if step == 0:
                raise node.error('a step of 0')
            # ONNX clamps starts and ends as Python's slices do, huge ends included.
            index[_axis(node, axis, x.ndim)] = slice(start, end, step)
        return F.get_item(x, tuple(index))
    return run


@_op('Gather', attrs=('axis',), inputs=(2, 2))
def _gather(node: NodeSpec) -> Runner:
    axis = int(node.attr('axis', 0))

    def run(x: Any, indices: Any) -> Any:
        a = _axis(node, axis, x.ndim)
        ids = _data(indices)
        if ids.dtype.kind not in 'iu':
            raise TypeError(f'load: {node.where}: indices must be integers, got {ids.dtype}')
        n = x.shape[a]
        if ids.size and (ids.min() < -n or ids.max() >= n):
            raise node.error(f'indices must be in [{-n}, {n}) for axis {a} of x of shape '
                             f'{tuple(x.shape)}, got {ids.min()} to {ids.max()}')
        return F.get_item(x, (slice(None),) * a + (ids.astype(np.intp),))
    return run


@_op('GatherND', attrs=('batch_dims',), inputs=(2, 2))
def _gather_nd(node: NodeSpec) -> Runner:
    if node.attr('batch_dims', 0) != 0:
        raise node.refuse('batch_dims', node.attr('batch_dims'), 'only 0')

    def run(x: Any, indices: Any) -> Any:
        ids = _data(indices)
        if ids.dtype.kind not in 'iu':
            raise TypeError(f'load: {node.where}: indices must be integers, got {ids.dtype}')
        if ids.ndim == 0 or not 1 <= ids.shape[-1] <= x.ndim:
            raise node.error(f'indices of shape {ids.shape} ({ids.dtype}) do not index x of '
                             f'shape {tuple(x.shape)}')
        for k in range(ids.shape[-1]):
            n = x.shape[k]
            if ids.size and (ids[..., k].min() < -n or ids[..., k].max() >= n):
                raise node.error(f'indices of axis {k} must be in [{-n}, {n})')
        return F.get_item(x, tuple(ids[..., k].astype(np.intp) for k in range(ids.shape[-1])))
    return run


# =============================================================================
# Convolutions and pooling (2-D: x of shape (N, C, H, W))
# =============================================================================
@_op('Conv', attrs=('auto_pad', 'dilations', 'group', 'kernel_shape', 'pads', 'strides'),
     inputs=(2, 3))
def _conv(node: NodeSpec) -> Runner:
    _auto_pad(node)
    _ones_only(node, 'dilations')
    group = int(node.attr('group', 1))
    stride = _pair_attr(node, 'strides', 1)
    pad = _symmetric_pads(node)

    def run(x: Any, W: Any, b: Any = None) -> Any:
        _need_rank(node, x, (4,), '2-D convolutions (x of shape (N, C, H, W))')
        _charge_padding(node, x, pad, pad, (2, 3))
        if group == 1:
            return F.conv2d(x, W, b, stride=stride, pad=pad)
        if x.shape[1] % group or W.shape[0] % group:
            raise node.error(f'group {group} does not divide the channels of x '
                             f'{tuple(x.shape)} and W {tuple(W.shape)}')
        return F.concat([F.conv2d(xg, Wg, _group_bias(b, group, g), stride=stride, pad=pad)
                         for g, (xg, Wg) in enumerate(_channel_groups(x, W, group, 0))],
                        axis=1)
    return run


@_op('ConvTranspose', attrs=('auto_pad', 'dilations', 'group', 'kernel_shape',
                             'output_padding', 'output_shape', 'pads', 'strides'),
     inputs=(2, 3))
def _conv_transpose(node: NodeSpec) -> Runner:
    if node.attr('auto_pad', 'NOTSET') != 'NOTSET':
        raise node.refuse('auto_pad', node.attr('auto_pad'), 'only NOTSET')
    _ones_only(node, 'dilations')
    group = int(node.attr('group', 1))
    stride = _pair_attr(node, 'strides', 1)
    extra = _pair_attr(node, 'output_padding', 0)
    output_shape = node.attr('output_shape')
    pad = None if output_shape is not None else _symmetric_pads(node)

    def run(x: Any, W: Any, b: Any = None) -> Any:
        _need_rank(node, x, (4,), '2-D transposed convolutions (x of shape (N, C, H, W))')
        full = [stride[i] * (x.shape[2 + i] - 1) + extra[i] + W.shape[2 + i]
                for i in range(2)]
        if output_shape is not None:
            out = list(output_shape)[-2:]
            total = [f - o for f, o in zip(full, out)]
            if any(t < 0 or t % 2 for t in total):
                raise NotImplementedError(
                    f'load: {node.where}: attribute output_shape={list(output_shape)} is '
                    f'not supported: it needs the pads {total}, which are not the same at '
                    'both ends')
            padding = (total[0] // 2, total[1] // 2)
        else:
            padding = pad
            out = [f - 2 * p for f, p in zip(full, padding)]
        # The output's size comes from the file's strides, pads and output_shape.
        check_size(node, (x.shape[0], W.shape[1] * group) + tuple(full), _data(x).dtype)
        if group == 1:
            return F.deconv2d(x, W, b, stride=stride, pad=padding, outsize=tuple(out))
        if x.shape[1] % group or W.shape[0] % group:
            raise node.error(f'group {group} does not divide the channels of x '
                             f'{tuple(x.shape)} and W {tuple(W.shape)}')
        return F.concat([F.deconv2d(xg, Wg, _group_bias(b, group, g), stride=stride,
                                    pad=padding, outsize=tuple(out))
                         for g, (xg, Wg) in enumerate(_channel_groups(x, W, group, 0))],
                        axis=1)
    return run


@_op('Col2Im', attrs=('dilations', 'pads', 'strides'), inputs=(3, 3))
def _col2im(node: NodeSpec) -> Runner:
    _ones_only(node, 'dilations')
    stride = _pair_attr(node, 'strides', 1)
    begins, ends = _pads(node)

    def run(x: Any, image_shape: Any, block_shape: Any) -> Any:
        image, block = _ints(image_shape), _ints(block_shape)
        if len(image) != 2 or len(block) != 2:
            raise NotImplementedError(f'load: {node.where}: only 2-D Col2Im is supported, '
                                      f'got image_shape {image} and block_shape {block}')
        if min(image + block) < 1:
            raise node.error(f'image_shape {image} and block_shape {block} must be positive')
        # ONNX's (N, C*KH*KW, L), channel-major, is F.col2im's (N, C, KH, KW, OH, OW).
        (KH, KW), (H, W) = block, image
        padded = [n + b + e for n, b, e in zip(image, begins, ends)]
        outs = [(p - k) // s + 1 for p, k, s in zip(padded, block, stride)]
        if x.ndim != 3 or x.shape[1] % (KH * KW) or min(outs) < 1 \
                or x.shape[2] != outs[0] * outs[1]:
            raise node.error(f'x of shape {tuple(x.shape)} is not (N, C*{KH}*{KW}, '
                             f'{max(outs[0], 0) * max(outs[1], 0)}) for image_shape {image}, '
                             f'block_shape {block}, strides {list(stride)} and pads '
                             f'{begins + ends}')
        N, C = x.shape[0], x.shape[1] // (KH * KW)
        check_size(node, (N, C, padded[0], padded[1]), _data(x).dtype)
        col = F.reshape(x, (N, C, KH, KW, outs[0], outs[1]))
        if begins == ends:
            return F.col2im(col, (N, C, H, W), (KH, KW), stride, tuple(begins),
                            to_matrix=False)
        # Uneven pads: the padded image, then its inside.
        y = F.col2im(col, (N, C, padded[0], padded[1]), (KH, KW), stride, 0,
                     to_matrix=False)
        return F.get_item(y, (slice(None), slice(None), slice(begins[0], begins[0] + H),
                              slice(begins[1], begins[1] + W)))
    return run


def _pool_geometry(node: NodeSpec, x: Any, kernel: tuple[int, int], stride: tuple[int, int],
                   begins: list[int], ends: list[int],
                   ceil_mode: bool) -> tuple[list[int], list[int]]:
    """(output size, padding needed at the end) of each spatial axis. ceil_mode rounds the
    output size up, except that no window may start in the end padding (as onnxruntime
    and PyTorch do)."""
    outs, needed = [], []
    for i in range(2):
        size = x.shape[2 + i]
        span = size + begins[i] + ends[i] - kernel[i]
        if span < 0:
            raise node.error(f'kernel {kernel} is larger than the padded input of shape '
                             f'{tuple(x.shape)}')
        out = (-(-span // stride[i]) if ceil_mode else span // stride[i]) + 1
        if ceil_mode and (out - 1) * stride[i] >= size + begins[i]:
            out -= 1
        outs.append(out)
        needed.append(max((out - 1) * stride[i] + kernel[i] - size - begins[i], 0))
    return outs, needed


def _pad(x: Any, begins: Sequence[int], ends: Sequence[int], value: Any,
         axes: Sequence[int] | None = None) -> Any:
    """x with value added before and after each of axes (default: the last len(begins)
    axes, e.g. the spatial axes of (N, C, H, W)), by F.concat of constant blocks made from
    x's shape at run time on x's device: differentiable in x. Pads are non-negative."""
    dtype = _data(x).dtype
    xp = get_array_module(_data(x))  # the blocks on x's device
    if axes is None:
        axes = range(x.ndim - len(begins), x.ndim)
    for axis, before, after in zip(axes, begins, ends):
        parts = []
        for n in (before, after):
            shape = list(x.shape)
            shape[axis] = n
            parts.append(xp.full(shape, value, dtype=dtype) if n else None)
        pieces = [p for p in (parts[0], x, parts[1]) if p is not None]
        if len(pieces) > 1:
            x = F.concat(pieces, axis=axis)
    return x


_POOL_ATTRS = ('auto_pad', 'ceil_mode', 'dilations', 'kernel_shape', 'pads', 'strides')


def _pool_args(node: NodeSpec) -> tuple[tuple[int, int], tuple[int, int], list[int],
                                        list[int], bool]:
    _auto_pad(node)
    _ones_only(node, 'dilations')
    if node.attr('kernel_shape') is None:
        raise node.error(f'{node.op_type} needs kernel_shape')
    kernel = _pair_attr(node, 'kernel_shape', 1)
    stride = _pair_attr(node, 'strides', 1)
    begins, ends = _pads(node)
    if any(p >= k for p, k in zip(begins + ends, kernel + kernel)):
        raise node.error(f'pads {node.attr("pads")} must be smaller than kernel_shape '
                         f'{list(kernel)}')
    return kernel, stride, begins, ends, bool(node.attr('ceil_mode', 0))


@_op('MaxPool', attrs=_POOL_ATTRS + ('storage_order',))
def _max_pool(node: NodeSpec) -> Runner:
    kernel, stride, begins, ends, ceil_mode = _pool_args(node)

    def run(x: Any) -> Any:
        _need_rank(node, x, (4,), '2-D pooling (x of shape (N, C, H, W))')
        _, needed = _pool_geometry(node, x, kernel, stride, begins, ends, ceil_mode)
        if begins == ends == needed:
            _charge_padding(node, x, begins, ends, (2, 3))
            return F.pooling(x, kernel, stride=stride, pad=tuple(begins))
        # -inf never wins a window (each holds at least one element of x).
        _charge_padding(node, x, begins, needed, (2, 3))
        x = _pad(x, begins, needed, -np.inf)
        return F.pooling(x, kernel, stride=stride, pad=0)
    return run


@_op('AveragePool', attrs=_POOL_ATTRS + ('count_include_pad',))
def _average_pool(node: NodeSpec) -> Runner:
    kernel, stride, begins, ends, ceil_mode = _pool_args(node)
    count_pad = bool(node.attr('count_include_pad', 0))

    def run(x: Any) -> Any:
        _need_rank(node, x, (4,), '2-D pooling (x of shape (N, C, H, W))')
        _, needed = _pool_geometry(node, x, kernel, stride, begins, ends, ceil_mode)
        no_pads = not any(begins) and not any(needed)
        if no_pads or (count_pad and begins == ends == needed):
            _charge_padding(node, x, begins, begins, (2, 3))
            return F.average_pooling(x, kernel, stride=stride, pad=tuple(begins))
        # Sum over each window divided by the number of elements it counts: x's, plus the
        # declared pads with count_include_pad, never the extra end padding of ceil_mode.
        H, W = x.shape[2:]
        counted = np.zeros((1, 1, begins[0] + H + needed[0], begins[1] + W + needed[1]),
                           dtype=_data(x).dtype)
        if count_pad:
            counted[:, :, :begins[0] + H + min(ends[0], needed[0]),
                    :begins[1] + W + min(ends[1], needed[1])] = 1
        else:
            counted[:, :, begins[0]:begins[0] + H, begins[1]:begins[1] + W] = 1
        counts = F.average_pooling(counted, kernel, stride=stride).data
        _charge_padding(node, x, begins, needed, (2, 3))
        sums = F.average_pooling(_pad(x, begins, needed, 0.0), kernel, stride=stride)
        return sums / counts
    return run


@_op('GlobalAveragePool', 'GlobalMaxPool')
def _global_pool(node: NodeSpec) -> Runner:
    fn = F.average if node.op_type == 'GlobalAveragePool' else F.max

    def run(x: Any) -> Any:
        if x.ndim < 3:
            raise node.error(f'x must be (N, C, ...) with spatial axes, got {tuple(x.shape)}')
        return fn(x, axis=tuple(range(2, x.ndim)), keepdims=True)
    return run


# =============================================================================
# Normalisation and regularisation
# =============================================================================
@_op('BatchNormalization', attrs=('epsilon', 'momentum', 'training_mode'), inputs=(5, 5))
def _batch_norm(node: NodeSpec) -> Runner:
    eps = float(node.attr('epsilon', 1e-5))
    # ONNX: running = momentum * running + (1 - momentum) * batch; F.batch_norm's decay
    # is that momentum (PyTorch's momentum 0.1 is exported as 0.9).
    decay = float(node.attr('momentum', 0.9))

    def run(x: Any, scale: Any, bias: Any, mean: Any, var: Any) -> Any:
        # mean and var are the arrays of the model's running statistics: F.batch_norm
        # updates them in place in training and uses them in test mode. The loader
        # says whether they are the model's own (``owned_statistics``); if not, copies.
        owned = getattr(node, 'owned_statistics', False)
        mean, var = (_data(mean), _data(var)) if owned else (_data(mean).copy(),
                                                             _data(var).copy())
        if x.ndim in (2, 4):
            return F.batch_norm(x, scale, bias, mean, var, decay=decay, eps=eps)
        if x.ndim < 2:
            raise node.error(f'x must be (N, C, ...), got {tuple(x.shape)}')
        shape = tuple(x.shape)   # (N, C, D1, ...) normalised as (N, C, D1 * ..., 1)
        y = F.batch_norm(F.reshape(x, shape[:2] + (-1, 1)), scale, bias, mean, var,
                         decay=decay, eps=eps)
        return F.reshape(y, shape)
    return run


@_op('Dropout', attrs=('ratio', 'seed'), inputs=(1, 3))
def _dropout(node: NodeSpec) -> Runner:
    def run(x: Any, ratio: Any = None, training_mode: Any = None) -> Any:
        # Dropout follows zerograd's mode, as F.dropout does: on in training (to fine-tune
        # as the model was trained), identity under test_mode(). training_mode is ignored.
        if not Config.train:
            return x
        r = node.attr('ratio', 0.5) if ratio is None else float(_data(ratio))
        return F.dropout(x, r) if r > 0 else x
    return run
