"""``zerograd.onnx.load``: an ONNX file, checked as untrusted input, as a trainable Model.

A file is read in three steps, each refusing what it cannot trust before anything large
is allocated:

1. parse the protobuf without following its external-data references (bytes that are not
   an ONNX model are a ValueError naming the file);
2. check the graph: the ai.onnx opset in the supported range, every node reading only
   names defined before it (graph inputs, initializers, earlier nodes: this refuses cycles
   and unsorted graphs), no name defined twice, every graph output defined, every op and
   attribute supported (all before any tensor data is read);
3. read each tensor: dims non-negative, at most ``MAX_BYTES`` bytes, the data in the file
   exactly that size; external data only from a file inside the model's folder (no
   absolute path, no '..', no symbolic link out of it), within that file's length.

At run time the arrays whose sizes the file sets (ConstantOfShape, Expand, Pad, Col2Im,
ConvTranspose's output, the pads of Conv and pooling) are checked before they are made:
each at most ``MAX_BYTES``, all of one forward together at most ``MAX_RUN_BYTES``.

The Model's parameters are the float initializers (attribute names made from the ONNX
names, ``model.onnx_names`` maps back); integer initializers (shapes, axes, indices) stay
NumPy constants. BatchNormalization's mean and var are Parameters too, as in
``layers.BatchNorm``: saved with the weights, never given a gradient, updated in training.
"""
from __future__ import annotations

import math
import os
import re
from typing import Any, Sequence

import numpy as np

from zerograd import cuda
from zerograd.core import Parameter, Variable, no_grad
from zerograd.models import Model
from zerograd.onnx import load_ops
from zerograd.onnx.exporter import require_onnx
from zerograd.onnx.load_ops import MAX_BYTES, NodeSpec, RunBudget, describe_node

MIN_LOAD_OPSET = 13   # Softmax's axis, Squeeze's and ReduceSum's axes inputs since 13
_DEFAULT_DOMAINS = ('', 'ai.onnx')


def _where(source: Any) -> str:
    if isinstance(source, (str, os.PathLike)):
        return repr(os.fspath(source))
    return f'the {type(source).__name__} given'


# =============================================================================
# 1. Parsing
# =============================================================================
def _parse(source: Any) -> tuple[Any, str | None, str]:
    """(ModelProto, the folder external data is read from or None, a name for messages)."""
    onnx = require_onnx()
    where = _where(source)
    if isinstance(source, onnx.ModelProto):
        model = onnx.ModelProto()
        model.CopyFrom(source)   # never change the caller's model
        return model, None, where
    if isinstance(source, (bytes, bytearray, memoryview)):
        data, folder = bytes(source), None
    elif isinstance(source, (str, os.PathLike)):
        path = os.fspath(source)
        with open(path, 'rb') as f:
            data = f.read()
        folder = os.path.dirname(os.path.abspath(path))
    else:
        raise TypeError(f'load: expected a path, bytes or an onnx.ModelProto, got '
                        f'{type(source).__name__}')
    model = onnx.ModelProto()
    try:
        model.ParseFromString(data)
    except Exception as error:  # noqa: BLE001 (protobuf's DecodeError, or others)
        raise ValueError(f'load: {where} is not an ONNX model (the protobuf does not '
                         f'parse: {error})') from None
    # Many byte strings parse as a protobuf with unknown fields: a model has a graph.
    if not model.HasField('graph') or model.ir_version <= 0 or not model.opset_import:
        raise ValueError(f'load: {where} is not an ONNX model (no graph, IR version or '
                         'opset)')
    return model, folder, where


# =============================================================================
# 2. The graph
# =============================================================================
def _opset(model: Any, where: str) -> int:
    versions = [o.version for o in model.opset_import if o.domain in _DEFAULT_DOMAINS]
    if not versions:
        raise ValueError(f'load: {where} imports no ai.onnx opset')
    opset = versions[0]
    newest = require_onnx().defs.onnx_opset_version()
    if not MIN_LOAD_OPSET <= opset <= newest:
        raise NotImplementedError(f'load: {where} uses ai.onnx opset {opset}; opsets '
                                  f'{MIN_LOAD_OPSET} to {newest} are supported')
    return opset


def _check_graph(graph: Any, where: str) -> None:
    """Every name defined once, before it is read; graph outputs defined."""
    if len(graph.sparse_initializer):
        raise NotImplementedError(f'load: {where}: sparse initializers are not supported')
    defined: set[str] = set()
    for tensor in graph.initializer:
        if not tensor.name or tensor.name in defined:
            raise ValueError(f'load: {where}: initializer name {tensor.name!r} is empty or '
                             'repeated')
        defined.add(tensor.name)
    initializers = set(defined)
    for value in graph.input:
        if value.name in initializers:
            continue   # an initializer listed as an input too (IR < 4): a constant
        if not value.name or value.name in defined:
            raise ValueError(f'load: {where}: graph input name {value.name!r} is empty or '
                             'repeated')
        defined.add(value.name)
    for index, node in enumerate(graph.node):
        what = describe_node(node, index)
        if node.domain not in _DEFAULT_DOMAINS:
            raise NotImplementedError(f'load: {where}: {what} is in domain {node.domain!r}; '
                                      'only ai.onnx ops are supported')
        for name in node.input:
            if name and name not in defined:
                raise ValueError(f'load: {where}: {what} reads {name!r}, which no graph '
                                 'input, initializer or earlier node defines (a cycle, an '
                                 'unsorted graph or a missing tensor)')
        for name in node.output:
            if name and name in defined:
                raise ValueError(f'load: {where}: {what} defines {name!r}, which is '
                                 'already defined')
            defined.add(name)
    if not graph.output:
        raise ValueError(f'load: {where}: the graph has no output')
    for value in graph.output:
        if value.name not in defined:
            raise ValueError(f'load: {where}: graph output {value.name!r} is not defined '
                             'by any input, initializer or node')


# =============================================================================
# 3. Tensors
# =============================================================================
def _tensor_dtype(tensor: Any, what: str) -> np.dtype:
    onnx = require_onnx()
    T = onnx.TensorProto
    supported = (T.FLOAT, T.DOUBLE, T.FLOAT16, T.INT8, T.INT16, T.INT32, T.INT64, T.UINT8,
                 T.UINT16, T.UINT32, T.UINT64, T.BOOL)
    if tensor.data_type not in supported:
        name = T.DataType.Name(tensor.data_type) if tensor.data_type in \
            T.DataType.values() else str(tensor.data_type)
        raise NotImplementedError(f'load: {what} has data type {name}, which is not '
                                  'supported (bool, integers, float16/32/64)')
    return np.dtype(onnx.helper.tensor_dtype_to_np_dtype(tensor.data_type))


def _typed_count(tensor: Any) -> int:
    """How many values the typed field of tensor (not raw_data) holds."""
    T = require_onnx().TensorProto
    field = {T.FLOAT: 'float_data', T.DOUBLE: 'double_data', T.INT64: 'int64_data',
             T.UINT32: 'uint64_data', T.UINT64: 'uint64_data'}.get(tensor.data_type,
                                                                   'int32_data')
    return len(getattr(tensor, field))


def _external_bytes(tensor: Any, nbytes: int, folder: str | None, what: str) -> bytes:
    """The bytes of an external tensor, from a file inside folder, after every check."""
    info = {entry.key: entry.value for entry in tensor.external_data}
    location = info.get('location', '')
    if '\x00' in location:
        raise ValueError(f'load: {what}: external data location {location!r} holds a NUL '
                         'byte')
    if folder is None:
        raise ValueError(f'load: {what} keeps its data in an external file '
                         f'({location!r}); load the model from its path')
    parts = re.split(r'[\\/]', location)
    if (not location or os.path.isabs(location) or re.match(r'^[A-Za-z]:', location)
            or location.startswith(('/', '\\')) or '..' in parts):
        raise ValueError(f'load: {what}: external data location {location!r} must be a '
                         "relative path inside the model's folder (no '..', not absolute)")
    root = os.path.realpath(folder)
    target = os.path.realpath(os.path.join(root, location))   # symbolic links resolved
    if os.path.commonpath([root, target]) != root:
        raise ValueError(f'load: {what}: external data location {location!r} leads to '
                         f"{target!r}, outside the model's folder {root!r}")
    if not os.path.isfile(target):
        raise ValueError(f'load: {what}: external data file {location!r} does not exist '
                         f'in {root!r}')
    numbers = {}
    for key, default in (('offset', 0), ('length', nbytes)):
        try:
            numbers[key] = int(info.get(key, default))
        except ValueError:
            raise ValueError(f'load: {what}: external data {key} {info[key]!r} must be an '
                             'integer') from None
    offset, length = numbers['offset'], numbers['length']
    size = os.path.getsize(target)
    if offset < 0 or length != nbytes or offset + length > size:
        raise ValueError(f'load: {what}: external data at offset {offset}, length {length} '
                         f'does not fit: the tensor takes {nbytes} bytes and '
                         f'{location!r} holds {size}')
    with open(target, 'rb') as f:
        f.seek(offset)
        data = f.read(length)
    if len(data) != length:
        raise ValueError(f'load: {what}: {location!r} ended early')
    return data


def read_tensor(tensor: Any, what: str, folder: str | None = None) -> np.ndarray:
    """The array of a TensorProto, checked before allocating: dims non-negative, at most
    MAX_BYTES bytes, and the data in the file (or external file) exactly that size."""
    what = f'{what}: tensor {tensor.name!r}' if tensor.name else what
    dims = [int(d) for d in tensor.dims]
    if any(d < 0 for d in dims):
        raise ValueError(f'load: {what} has negative dims {dims}')
    dtype = _tensor_dtype(tensor, what)
    count = math.prod(dims)          # Python ints: no overflow
    nbytes = count * dtype.itemsize
    if nbytes > MAX_BYTES:
        raise ValueError(f'load: {what} of dims {dims} would take {nbytes} bytes, more than '
                         f'the {MAX_BYTES} allowed')
    if math.prod(max(d, 1) for d in dims) * dtype.itemsize > MAX_BYTES:
        # Empty, but NumPy refuses to make it too: its other dims must fit as well.
        raise ValueError(f'load: {what} of dims {dims} is too large: the dims other than 0 '
                         f'would take more than the {MAX_BYTES} bytes allowed')
    T = require_onnx().TensorProto
    if tensor.data_location == T.EXTERNAL:
        data = _external_bytes(tensor, nbytes, folder, what)
        return np.frombuffer(data, dtype=dtype.newbyteorder('<')).astype(dtype).reshape(dims)
    if tensor.HasField('raw_data'):
        if len(tensor.raw_data) != nbytes:
            raise ValueError(f'load: {what} of dims {dims} ({dtype}) needs {nbytes} bytes, '
                             f'the file holds {len(tensor.raw_data)}')
    elif _typed_count(tensor) != count:
        raise ValueError(f'load: {what} of dims {dims} needs {count} values, the file holds '
                         f'{_typed_count(tensor)}')
    array = require_onnx().numpy_helper.to_array(tensor)
    return np.array(array, dtype=dtype)   # a writable copy of our own


# =============================================================================
# The Model
# =============================================================================
_SAFE = re.compile(r'[^0-9A-Za-z_]')


def _elem_dtype(value_info: Any) -> np.dtype | None:
    onnx = require_onnx()
    if not value_info.type.HasField('tensor_type'):
        return None
    try:
        return np.dtype(onnx.helper.tensor_dtype_to_np_dtype(
            value_info.type.tensor_type.elem_type))
    except (KeyError, TypeError, ValueError):
        return None


def _declared_shape(value_info: Any) -> tuple | None:
    """The declared dims of a graph input: ints for fixed sizes, names for free ones."""
    tensor_type = value_info.type.tensor_type
    if not tensor_type.HasField('shape'):
        return None
    return tuple(d.dim_value if d.HasField('dim_value') else (d.dim_param or '?')
                 for d in tensor_type.shape.dim)


class OnnxModel(Model):
    """A Model running an ONNX graph with zerograd functions (made by ``load``).

    ``forward(*inputs)`` takes the graph's inputs in order (ndarrays or Variables) and
    returns a Variable, or a tuple for several graph outputs. Parameters are the float
    initializers; ``onnx_names`` maps each ONNX name to its Parameter. Batch norm uses
    batch statistics in training and its running statistics under ``test_mode()``;
    Dropout drops in training and is the identity under ``test_mode()``.
    """

    def __init__(self, model: Any, folder: str | None, where: str) -> None:
        super().__init__()
        graph = model.graph
        # The model's own attributes first: _attribute_name keeps parameters off them.
        self.opset = _opset(model, where)
        _check_graph(graph, where)
        self.onnx_names: dict[str, Parameter] = {}
        self._constants: dict[str, np.ndarray] = {}
        initializers = {t.name for t in graph.initializer}
        self._inputs = [v for v in graph.input if v.name not in initializers]
        self.input_names = [v.name for v in self._inputs]
        self.output_names = [v.name for v in graph.output]
        self._budget = RunBudget()

        def read(tensor: Any, what: str) -> np.ndarray:
            return read_tensor(tensor, f'{where}: {what}', folder)

        # Every op and attribute name checked before any tensor of the file is read.
        specs = [NodeSpec(proto, index, self.opset, read, self._budget)
                 for index, proto in enumerate(graph.node)]
        for spec in specs:
            load_ops.check(spec)
        self._nodes: list[tuple[NodeSpec, Any]] = [(spec, load_ops.build(spec))
                                                   for spec in specs]
        for tensor in graph.initializer:
            array = read_tensor(tensor, f'{where}: initializer', folder)
            if array.dtype.kind == 'f':
                param = Parameter(array, name=tensor.name)
                setattr(self, self._attribute_name(tensor.name), param)
                self.onnx_names[tensor.name] = param
            else:
                self._constants[tensor.name] = array
        self._running: dict[str, Parameter] = {}
        self._own_running_statistics(graph)

    def _own_running_statistics(self, graph: Any) -> None:
        """Give each BatchNormalization running statistics it may update in place.

        An initializer that only this node reads is used as it is. One that others read
        too, or that reaches the node through Identity nodes (PyTorch's exporter writes
        ``Identity(bn.weight) -> bn.running_var`` when the two hold equal values), is
        copied into a Parameter of the node's own, named by the node's input: updating it
        must not change the weight. Statistics computed at run time are copied at each
        call (``spec.owned_statistics`` False), so nothing else is changed in place."""
        consumers: dict[str, int] = {}
        for name in [n for node in graph.node for n in node.input] + self.output_names:
            consumers[name] = consumers.get(name, 0) + 1
        producer = {out: node for node in graph.node for out in node.output}
        for spec, _ in self._nodes:
            if spec.op_type != 'BatchNormalization':
                continue
            spec.owned_statistics = True
            for slot in (3, 4):
                name = spec.inputs[slot]
                if name in self.onnx_names and consumers[name] == 1:
                    continue
                source = name
                while source in producer and producer[source].op_type == 'Identity':
                    source = producer[source].input[0]
                if source not in self.onnx_names:
                    spec.owned_statistics = False
                    continue
                param = Parameter(self.onnx_names[source].data.copy(), name=name)
                setattr(self, self._attribute_name(name), param)
                onnx_name = name if name not in self.onnx_names else f'{name} ({spec.where})'
                self.onnx_names[onnx_name] = param
                key = f'{onnx_name} (running statistic of {spec.where})'
                self._running[key] = param
                spec.inputs[slot] = key

    # Attributes Layer.__call__ writes later (a parameter there would be overwritten).
    _RESERVED = frozenset({'inputs', 'outputs'})

    def _taken(self, name: str) -> bool:
        return (name in self.__dict__ or hasattr(type(self), name)
                or name in self._RESERVED)

    def _attribute_name(self, onnx_name: str) -> str:
        """A Python identifier from an ONNX name ('conv1.weight' -> 'conv1_weight'),
        unique, and no attribute that the model, its class or Layer.__call__ uses."""
        base = _SAFE.sub('_', onnx_name) or 'param'
        if base[0].isdigit() or base.startswith('_') or self._taken(base):
            base = 'p_' + base.lstrip('_')
        name, k = base, 1
        while self._taken(name):
            name, k = f'{base}_{k}', k + 1
        return name

    def _check_input(self, value_info: Any, x: Any, position: int) -> Any:
        what = f'OnnxModel: input {position} ({value_info.name!r})'
        if not isinstance(x, Variable):
            if not isinstance(x, np.ndarray) and not cuda._is_cupy_array(x):
                raise TypeError(f'{what} must be an ndarray or a Variable, got '
                                f'{type(x).__name__}')
        data = x.data if isinstance(x, Variable) else x
        dtype = _elem_dtype(value_info)
        if dtype is not None and data.dtype != dtype:
            # As onnxruntime: no silent conversion (float64 into a float32 graph would
            # compute in float64; int32 ids into int64 would change what Div or Cast do).
            raise TypeError(f'{what} must be {dtype}, as the graph declares, got '
                            f'{data.dtype}')
        shape = _declared_shape(value_info)
        if shape is not None and (len(shape) != data.ndim or any(
                isinstance(n, int) and n != m for n, m in zip(shape, data.shape))):
            declared = '(' + ', '.join(str(n) for n in shape) + ')'
            raise ValueError(f'{what} must have shape {declared}, got {data.shape}')
        # Float inputs are Variables (their gradient can be asked for); ids and other
        # integer inputs stay arrays, so the nodes that only read them run as constants.
        if data.dtype.kind == 'f' and not isinstance(x, Variable):
            return Variable(x)
        return x

    def forward(self, *inputs: Any) -> Any:
        if len(inputs) != len(self._inputs):
            raise TypeError(f'OnnxModel: the graph takes {len(self._inputs)} inputs '
                            f'{self.input_names}, got {len(inputs)}')
        self._budget.used = 0   # the file's run-time allocations, counted per forward
        values: dict[str, Any] = dict(self._constants)
        values.update(self.onnx_names)
        values.update(self._running)
        for position, (value_info, x) in enumerate(zip(self._inputs, inputs)):
            values[value_info.name] = self._check_input(value_info, x, position)
        for spec, run in self._nodes:
            xs = [values[name] if name else None for name in spec.inputs]
            while xs and xs[-1] is None:
                xs.pop()   # trailing optional inputs left out
            outputs = _run(spec, run, xs)
            for name, y in zip(spec.outputs, outputs):
                if name:
                    values[name] = y
        ys = tuple(values[name] if isinstance(values[name], Variable)
                   else Variable(np.asarray(values[name])) for name in self.output_names)
        return ys if len(ys) > 1 else ys[0]


def _run(spec: NodeSpec, run: Any, xs: Sequence[Any]) -> tuple:
    """Run one node. A node whose inputs are all constants (shape arithmetic) runs
    without recording a graph, and its outputs stay constants."""
    constant = not any(isinstance(x, Variable) for x in xs)
    try:
        if constant:
            with no_grad():
                ys = run(*xs)
        else:
            ys = run(*xs)
    except (ValueError, TypeError, IndexError) as error:
        if str(error).startswith('load:'):
            raise
        try:   # the same error class, its message prefixed with the node
            named = type(error)(f'load: {spec.where}: {error}')
        except Exception:  # noqa: BLE001 (a class whose constructor takes other arguments)
            raise error from None
        raise named from error
    ys = ys if isinstance(ys, tuple) else (ys,)
    if constant:
        ys = tuple(y.data if isinstance(y, Variable) else y for y in ys)
    return ys


def load(source: Any) -> OnnxModel:
    """An ONNX model (a path, its bytes or an ``onnx.ModelProto``) as a zerograd Model.

    The file is untrusted input: it is checked before anything it describes is allocated
    (see the module docstring). An op or attribute that cannot run is a
    NotImplementedError naming the node, the op type and the attribute.

    >>> model = load('model.onnx')              # doctest: +SKIP
    >>> with zerograd.test_mode():              # doctest: +SKIP
    ...     y = model(x)
    """
    model, folder, where = _parse(source)
    return OnnxModel(model, folder, where)
