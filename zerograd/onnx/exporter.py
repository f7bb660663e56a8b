"""``zerograd.onnx.export``: trace one forward, then write each recorded Function as ONNX nodes.

The trace is the graph define-by-run already records: ``model(*args)`` runs once in test
mode, and the walk goes from the outputs to the inputs through each Variable's creator, as
backward does. Each Function class has a converter (``register_converter``) that writes its
nodes with the helpers of ``ExportContext``.

Dynamic axes (the batch axis by default) are found by tracing twice: once with ``args``
and once with every dynamic axis one longer. A size that changes between the two traces
is a dynamic one, so a Reshape writes ``-1`` (or ``0``) there instead of the traced batch
size, and a constant whose shape changes (made from the input's size inside forward) is
an error instead of a file that is silently wrong at another batch size.
"""
from __future__ import annotations

import os
from typing import Any, Callable, NamedTuple, Sequence

import numpy as np

import zerograd
from zerograd.core import Function, Parameter, Variable, using_config

MIN_OPSET = 17
_WHO = 'zerograd.onnx.export'  # how errors begin
_CONVERTERS: dict[type, Callable] = {}
# Functions that only appear in backward graphs, and the forward op they belong to.
_BACKWARD_ONLY: dict[type, str] = {}


def require_onnx() -> Any:
    """The onnx package, or an ImportError that says how to install it."""
    try:
        import onnx
        import onnx.checker  # noqa: F401
        import onnx.helper  # noqa: F401
        import onnx.numpy_helper  # noqa: F401
    except ImportError:
        raise ImportError("zerograd.onnx needs the onnx package: pip install 'zerograd[onnx]'"
                          ) from None
    return onnx


def newest_opset() -> int:
    """The newest ONNX opset both the onnx package and onnxruntime (when installed) know."""
    onnx = require_onnx()
    newest = onnx.defs.onnx_opset_version()
    try:
        import onnxruntime  # noqa: F401
    except ImportError:
        return newest
    for opset in range(newest, MIN_OPSET - 1, -1):
        if _runtime_accepts(opset):
            return opset
    return MIN_OPSET


def _runtime_accepts(opset: int) -> bool:
    import onnxruntime as ort
    helper = require_onnx().helper
    x = helper.make_tensor_value_info('x', 1, [1])
    graph = helper.make_graph([helper.make_node('Identity', ['x'], ['y'])], 'probe', [x],
                              [helper.make_tensor_value_info('y', 1, [1])])
    model = _make_model(graph, opset)
    try:
        ort.InferenceSession(model.SerializeToString(), providers=['CPUExecutionProvider'])
    except Exception:  # noqa: BLE001 (onnxruntime raises its own classes)
        return False
    return True


def register_converter(function_class: type, converter: Callable) -> None:
    """Export ``function_class`` with ``converter(ctx, f, xs, ys)``.

    ctx: the ``ExportContext``; f: the traced Function (its attributes, ``f.inputs``);
    xs / ys: the ONNX names of its inputs / outputs. The converter writes nodes whose
    outputs are exactly ys, with ``ctx.node(...)``."""
    if not (isinstance(function_class, type) and issubclass(function_class, Function)):
        raise TypeError(f'register_converter: function_class must be a subclass of '
                        f'zerograd.Function, got {function_class!r}')
    if not callable(converter):
        raise TypeError(f'register_converter: converter must be callable, got '
                        f'{type(converter).__name__}')
    _CONVERTERS[function_class] = converter


def converter(function_class: type) -> Callable:
    """Decorator: register the function below as the converter of function_class."""
    def register(fn: Callable) -> Callable:
        register_converter(function_class, fn)
        return fn
    return register


def refuse_backward_only(function_class: type, forward: str) -> None:
    """Mark a Function that only backward passes record (refused with that reason)."""
    _BACKWARD_ONLY[function_class] = forward


def converter_for(function_class: type) -> Callable | None:
    """The converter registered for the class or its nearest base class, or None."""
    for cls in function_class.__mro__:
        if cls is Function:
            return None
        if cls in _CONVERTERS:
            return _CONVERTERS[cls]
    return None


def describe(f: Function) -> str:
    """'Conv2d (inputs (2, 1, 28, 28) float32, (30, 1, 3, 3) float32)' for messages."""
    shapes = ', '.join(f'{x.shape} {x.dtype}' for x in f.inputs)
    return f'{type(f).__name__} (inputs {shapes})'


# =============================================================================
# The graph walk
# =============================================================================
def _functions(outputs: Sequence[Variable]) -> list[Function]:
    """The Functions behind outputs, each after the Functions of its inputs; the order is
    fixed by the graph (inputs in order), so two traces of one model line up."""
    order: list[Function] = []
    done: set[int] = set()
    stack: list[tuple[Function, bool]] = [(y.creator, False) for y in reversed(outputs)
                                          if y.creator is not None]
    while stack:
        f, expanded = stack.pop()
        if id(f) in done:
            continue
        if expanded:
            done.add(id(f))
            order.append(f)
            continue
        stack.append((f, True))
        for x in reversed(f.inputs):
            if x.creator is not None and id(x.creator) not in done:
                stack.append((x.creator, False))
    return order


def _outputs_of(f: Function) -> list[Variable | None]:
    return [ref() for ref in f.outputs]


def _as_outputs(result: Any) -> list[Variable]:
    items = list(result) if isinstance(result, (list, tuple)) else [result]
    if not items or not all(isinstance(y, Variable) for y in items):
        kinds = ', '.join(type(y).__name__ for y in items) or 'nothing'
        raise TypeError(f'{_WHO}: the model must return a Variable or a tuple of Variables, '
                        f'got {kinds}')
    return items


# =============================================================================
# What a converter sees
# =============================================================================
class ExportContext:
    """The graph being written: nodes, initializers, names; and what the second trace says
    about each Variable's axes (``varying``) and each Function (``twin``)."""

    def __init__(self, opset: int, twins: dict[int, Any] | None = None,
                 params: dict[str, Parameter] | None = None) -> None:
        self.opset = opset
        self.nodes: list[Any] = []
        self.initializers: list[Any] = []
        self._names: dict[int, str] = {}       # id(Variable or array) -> ONNX name
        self._used: set[str] = set()
        self._constants: dict[int, str] = {}   # id(array) -> initializer name
        self._keep: list[Any] = []             # keeps the ids above unique
        self._twins: dict[int, Any] = twins or {}  # id(Function or Variable) -> its twin
        # id(param.data) -> the parameter's path: its initializer's name
        self._array_names = {id(p.data): path for path, p in (params or {}).items()
                             if p.data is not None}

    # -- names
    def unique(self, hint: str) -> str:
        """A name not used yet in the graph, from hint."""
        name, k = hint, 1
        while name in self._used:
            name, k = f'{hint}_{k}', k + 1
        self._used.add(name)
        return name

    def name_of(self, x: Variable) -> str:
        """The ONNX name of x; a leaf met the first time (a parameter, a constant) gets
        its initializer here."""
        key = id(x)
        if key not in self._names:
            if x.creator is not None:  # every creator is converted before its outputs' users
                raise AssertionError(f'{_WHO}: the walk reached a Variable before its creator')
            self._names[key] = self.constant(x.data, x.name or 'const')
        return self._names[key]

    # -- nodes and initializers
    def node(self, op_type: str, inputs: Sequence[str], outputs: Sequence[str] | int = 1,
             **attrs: Any) -> list[str]:
        """Add a node; outputs: their names, or how many to name. Returns the names."""
        helper = require_onnx().helper
        if isinstance(outputs, int):
            outputs = [self.unique(f'{op_type}_{len(self.nodes)}') for _ in range(outputs)]
        attrs = {k: v for k, v in attrs.items() if v is not None}
        self.nodes.append(helper.make_node(op_type, list(inputs), list(outputs),
                                           name=self.unique(f'{op_type}_node{len(self.nodes)}'),
                                           **attrs))
        return list(outputs)

    def op(self, op_type: str, *inputs: str, **attrs: Any) -> str:
        """Add a one-output node and return its output's name."""
        return self.node(op_type, inputs, 1, **attrs)[0]

    def constant(self, array: Any, hint: str = 'const') -> str:
        """An initializer holding array (its dtype kept; a parameter's array keeps the
        parameter's path as its name); the same array object gives the same name."""
        key = id(array)
        if key in self._constants:
            return self._constants[key]
        numpy_helper = require_onnx().numpy_helper
        data = zerograd.cuda.as_numpy(array) if not isinstance(array, np.ndarray) else array
        data = np.asarray(data)
        if data.dtype.kind not in 'biuf':
            raise TypeError(f'zerograd.onnx.export: a constant of dtype {data.dtype} has no '
                            'ONNX type here')
        name = self._array_names.get(key) or self.unique(hint)
        if name in self._array_names.values():
            self._used.add(name)
        if not data.flags.c_contiguous:  # (np.ascontiguousarray would make a 0-d array 1-d)
            data = data.copy(order='C')
        self.initializers.append(numpy_helper.from_array(data, name))
        self._constants[key] = name
        self._keep.append(array)
        return name

    def int64s(self, values: Sequence[int], hint: str = 'ints') -> str:
        """A 1-D int64 initializer (shapes, axes, starts...)."""
        return self.constant(np.array(list(values), dtype=np.int64), hint)

    def scalar(self, value: Any, dtype: Any, hint: str = 'scalar') -> str:
        """A 0-d initializer of the given dtype."""
        return self.constant(np.array(value, dtype=dtype), hint)

    # -- opset-dependent forms
    def reduce(self, op_type: str, x: str, axes: Sequence[int] | None, keepdims: bool,
               output: str | None = None) -> str:
        """ReduceSum/Max/Min/Mean over axes (None: all); axes is an input from opset 13
        (ReduceSum) or 18 (the others), an attribute before."""
        outputs = [output] if output else 1
        axes_as_input = op_type == 'ReduceSum' or self.opset >= 18
        if axes is None:
            return self.node(op_type, [x], outputs, keepdims=int(keepdims))[0]
        if not axes:  # over no axis: x itself (ONNX reads empty axes as all of them)
            return self.node('Identity', [x], outputs)[0]
        if axes_as_input:
            return self.node(op_type, [x, self.int64s(axes, 'axes')], outputs,
                             keepdims=int(keepdims))[0]
        return self.node(op_type, [x], outputs, axes=list(axes), keepdims=int(keepdims))[0]

    def squeeze(self, x: str, axes: Sequence[int], output: str | None = None) -> str:
        """A Squeeze node removing ``axes`` of x; returns the output's name."""
        return self.node('Squeeze', [x, self.int64s(axes, 'axes')], [output] if output else 1)[0]

    def unsqueeze(self, x: str, axes: Sequence[int], output: str | None = None) -> str:
        """An Unsqueeze node inserting ``axes`` into x; returns the output's name."""
        return self.node('Unsqueeze', [x, self.int64s(axes, 'axes')],
                         [output] if output else 1)[0]

    def identity(self, x: str, output: str) -> None:
        """An Identity node copying x to the value named ``output``."""
        self.node('Identity', [x], [output])

    # -- what the second trace says
    def same_constant(self, f: Function, value: Any, twin_value: Any) -> None:
        """Refuse a constant of f that differs between the two traces: forward made it
        from the input's size, so the file would hold the traced one at every size."""
        _same_constant(f, value, twin_value)

    def twin(self, obj: Any) -> Any:
        """The same Function or Variable in the second trace (itself without one)."""
        return self._twins.get(id(obj), obj)

    def varying(self, x: Variable) -> tuple[bool, ...]:
        """For each axis of x: does its size change with the dynamic axes of the inputs?"""
        other = self.twin(x)
        return tuple(a != b for a, b in zip(x.shape, other.shape))

    def reshape_target(self, x: Variable, y: Variable) -> list[int]:
        """Reshape's target for x -> y that holds at every size of the dynamic axes: the
        traced size where a size is fixed, 0 (copy x's) or -1 where it changes."""
        moving = self.varying(y)
        if not any(moving):
            return list(y.shape)
        target = list(y.shape)
        left = [i for i, m in enumerate(moving) if m]
        x_moving = self.varying(x)
        if len(left) > 1:  # keep the axes that are x's own, unchanged, as 0
            for i in list(left):
                if i < x.ndim and x_moving[i] and x.shape[i] == y.shape[i] \
                        and self.twin(x).shape[i] == self.twin(y).shape[i]:
                    target[i] = 0
                    left.remove(i)
        if len(left) > 1:
            raise NotImplementedError(
                f'zerograd.onnx.export: a reshape from {x.shape} to {y.shape} changes '
                f'{len(left)} sizes with the dynamic axes (axes {left}); ONNX can infer one. '
                'Export with fewer dynamic axes (dynamic_axes=...)')
        if left:
            target[left[0]] = -1
        return target


# =============================================================================
# export
# =============================================================================
def _input_arrays(args: Sequence[Any]) -> list[Any]:
    arrays = []
    for i, a in enumerate(args):
        data = a.data if isinstance(a, Variable) else a
        if zerograd.cuda._is_cupy_array(data):  # a model on the GPU traces on the GPU
            arrays.append(data)
        elif isinstance(data, (np.ndarray, np.generic)):
            arrays.append(np.asarray(data))
        else:
            raise TypeError(f'zerograd.onnx.export: args[{i}] must be an ndarray or a '
                            f'Variable, got {type(a).__name__}')
    return arrays


def _grown(array: np.ndarray, axes: Sequence[int]) -> np.ndarray:
    """array one longer on each of axes (its last slice repeated): the second trace."""
    xp = zerograd.cuda.get_array_module(array)
    for axis in axes:
        array = xp.concatenate([array, xp.take(array, xp.array([-1]), axis=axis)], axis=axis)
    return array


def _names(given: Sequence[str] | None, n: int, stem: str, what: str) -> list[str]:
    if given is None:
        return [stem] if n == 1 else [f'{stem}{i}' for i in range(n)]
    given = list(given)
    if len(given) != n or not all(isinstance(s, str) and s for s in given):
        raise ValueError(f"zerograd.onnx.export: {what} must be {n} non-empty strings, got "
                         f'{given!r}')
    if len(set(given)) != n:
        raise ValueError(f'zerograd.onnx.export: {what} repeat a name: {given!r}')
    return given


def _dynamic_axes(dynamic_axes: Any, inputs: list[str], outputs: list[str],
                  arrays: list[np.ndarray]) -> dict[str, dict[int, str]]:
    """{name: {axis: dim name}}; the default: axis 0 of every input with an axis."""
    if dynamic_axes is None:
        return {name: {0: 'batch'} for name, a in zip(inputs, arrays) if a.ndim > 0}
    if not isinstance(dynamic_axes, dict):
        raise TypeError('zerograd.onnx.export: dynamic_axes must be a dict {name: [axes]} or '
                        f'{{name: {{axis: dim name}}}}, got {type(dynamic_axes).__name__}')
    result = {}
    for name, axes in dynamic_axes.items():
        if name not in inputs and name not in outputs:
            raise ValueError(f'zerograd.onnx.export: dynamic_axes names {name!r}, which is '
                             f'not an input or output name ({inputs + outputs})')
        if isinstance(axes, dict):
            result[name] = {int(a): str(d) for a, d in axes.items()}
        else:
            result[name] = {int(a): f'{name}_dim{int(a)}' for a in axes}
        if name in inputs:
            ndim = arrays[inputs.index(name)].ndim
            for a in result[name]:
                if not 0 <= a < ndim:
                    raise ValueError(f'zerograd.onnx.export: dynamic axis {a} of {name!r} is '
                                     f'out of range for its {ndim} axes')
    return result


def _layers(model: Any) -> list[Any]:
    """model and every Layer inside it."""
    layers, stack = [], [model]
    while stack:
        layer = stack.pop()
        if isinstance(layer, zerograd.Layer):
            layers.append(layer)
            stack.extend(layer.__dict__[n] for n in layer._params
                         if isinstance(layer.__dict__.get(n), zerograd.Layer))
    return layers


def _state(model: Any) -> list[tuple[Any, dict]]:
    """Each layer's non-parameter Variables (an RNN's h and c), to put back after tracing."""
    return [(layer, {k: v for k, v in layer.__dict__.items()
                     if k != '_params' and not isinstance(v, (Parameter, zerograd.Layer))
                     and (v is None or isinstance(v, Variable))})
            for layer in _layers(model)]


def _restore(state: list[tuple[Any, dict]]) -> None:
    for layer, saved in state:
        for k, v in list(layer.__dict__.items()):
            if isinstance(v, Variable) and not isinstance(v, Parameter) and k not in saved:
                object.__setattr__(layer, k, None)
        for k, v in saved.items():
            object.__setattr__(layer, k, v)


def _trace(model: Callable, arrays: list[np.ndarray]
           ) -> tuple[list[Variable], list[Variable], list[Function]]:
    inputs = [Variable(a) for a in arrays]
    with using_config('enable_backprop', True), using_config('train', False):
        result = model(*inputs)
    outputs = _as_outputs(result)
    return inputs, outputs, _functions(outputs)


def export(model: Callable, args: Any, f: Any = None, *, opset: int = MIN_OPSET,
           input_names: Sequence[str] | None = None,
           output_names: Sequence[str] | None = None, dynamic_axes: Any = None,
           check: bool = True) -> Any:
    """Trace ``model(*args)`` in test mode and return it as an ``onnx.ModelProto``.

    model: a Model, a Layer or any function of Variables. args: an array or Variable, or a
    tuple of them (the graph's inputs; the batch axis, axis 0, is dynamic by default).
    f: a path or a binary file to write the model to (None: not written).
    opset: the ONNX opset, from 17 to ``newest_opset()``.
    dynamic_axes: {name: [axes]} or {name: {axis: 'dim name'}}; ``{}`` makes every size
    fixed. check: run ``onnx.checker.check_model(full_check=True)`` on the result.
    Parameters become initializers named by their paths (``'conv1/W'``); the model, its
    parameters, statistics, states and train mode are as they were before.
    """
    onnx = require_onnx()
    arrays = _check_arguments(model, args, opset, onnx)
    in_names = _names(input_names, len(arrays), 'input', 'input_names')
    trace = _trace_twice(model, arrays, in_names, output_names, dynamic_axes)
    params = model.named_params() if isinstance(model, zerograd.Layer) else {}
    ctx = ExportContext(int(opset), trace.twins, params)
    _convert(ctx, trace)
    graph = onnx.helper.make_graph(ctx.nodes, 'zerograd', *_inputs_and_outputs(ctx, trace),
                                   ctx.initializers)
    model_proto = _make_model(graph, int(opset))
    if check:
        onnx.checker.check_model(model_proto, full_check=True)
    if f is not None:
        write_model(model_proto, f)
    return model_proto


def _check_arguments(model: Any, args: Any, opset: Any, onnx: Any) -> list[Any]:
    """The input arrays of args, after checking model, args and opset."""
    if not callable(model):
        raise TypeError(f'{_WHO}: model must be callable (a Model, a Layer or a function), '
                        f'got {type(model).__name__}')
    if isinstance(opset, bool) or not isinstance(opset, (int, np.integer)):
        raise TypeError(f'{_WHO}: opset must be an int, got {type(opset).__name__}')
    newest = onnx.defs.onnx_opset_version()
    if not MIN_OPSET <= opset <= newest:
        raise ValueError(f'{_WHO}: opset must be from {MIN_OPSET} to {newest} (the newest this '
                         f'onnx {onnx.__version__} knows), got {opset}')
    args = tuple(args) if isinstance(args, (tuple, list)) else (args,)
    if not args:
        raise ValueError(f'{_WHO}: args is empty; pass the example inputs of model')
    arrays = _input_arrays(args)
    for a in arrays:
        if a.dtype.kind not in 'biuf':
            raise TypeError(f'{_WHO}: an input of dtype {a.dtype} has no ONNX type')
    return arrays


class _Trace(NamedTuple):
    """The traced graph: its inputs and outputs (Variables and names), its Functions in
    order, the dynamic axes {name: {axis: dim name}}, and each Function's and Variable's
    twin in the second trace (empty when every size is fixed)."""
    inputs: list[Variable]
    in_names: list[str]
    outputs: list[Variable]
    out_names: list[str]
    functions: list[Function]
    dynamic: dict[str, dict[int, str]]
    twins: dict[int, Any]


def _trace_twice(model: Callable, arrays: list[Any], in_names: list[str],
                 output_names: Sequence[str] | None, dynamic_axes: Any) -> _Trace:
    """Trace model once, and again with each dynamic axis one longer; the model's state
    (RNN h and c) is put back before each trace and after."""
    state = _state(model)
    twins: dict[int, Any] = {}
    try:
        inputs, outputs, functions = _trace(model, arrays)
        _refuse_backward_only(functions)
        out_names = _names(output_names, len(outputs), 'output', 'output_names')
        dynamic = _dynamic_axes(dynamic_axes, in_names, out_names, arrays)
        if any(dynamic.get(name) for name in in_names):
            _restore(state)
            grown = [_grown(a, sorted(dynamic.get(name, {}))) for name, a in zip(in_names, arrays)]
            try:
                inputs2, outputs2, functions2 = _trace(model, grown)
            except Exception as error:
                sizes = ', '.join(f'{name} {tuple(g.shape)}' for name, g in zip(in_names, grown))
                raise type(error)(
                    f'{_WHO}: the second trace, at {sizes} (every dynamic axis one longer, to '
                    f'find which sizes move), failed: {error}. Pass dynamic_axes={{}} for fixed '
                    'sizes') from error
            if not _same_graph(functions, functions2):
                # The first trace may have created lazy parameters, which some layers
                # take another path once they exist (an RNN's fused step): trace again.
                _restore(state)
                inputs, outputs, functions = _trace(model, arrays)
            twins = _match(inputs, outputs, functions, inputs2, outputs2, functions2)
    finally:
        _restore(state)
    return _Trace(inputs, in_names, outputs, out_names, functions, dynamic, twins)


def _convert(ctx: ExportContext, trace: _Trace) -> None:
    """Write every traced Function's nodes into ctx, outputs named as asked."""
    names = ctx._names
    for name, x in zip(trace.in_names, trace.inputs):
        names[id(x)] = name
        ctx._used.add(name)
    ctx._used.update(trace.out_names)
    output_ids = {id(y): name for y, name in zip(trace.outputs, trace.out_names)}
    for func in trace.functions:
        cls = type(func)
        converter = converter_for(cls)
        if converter is None:
            raise NotImplementedError(
                f'{_WHO}: no ONNX converter for {describe(func)}; write one and register '
                'it with zerograd.onnx.register_converter')
        xs = [ctx.name_of(x) for x in func.inputs]
        ys = []
        for k, y in enumerate(_outputs_of(func)):
            if y is not None and id(y) in output_ids and id(y) not in names:
                names[id(y)] = output_ids[id(y)]
            elif y is None or id(y) not in names:
                stem = f'{cls.__name__}_{len(ctx.nodes)}'
                name = ctx.unique(f'{stem}_y{k}' if len(func.outputs) > 1 else stem)
                if y is not None:
                    names[id(y)] = name
                ys.append(name)
                continue
            ys.append(names[id(y)])
        converter(ctx, func, xs, ys)

    for y, name in zip(trace.outputs, trace.out_names):  # an output that is an input...
        if names.get(id(y)) != name:
            ctx.identity(ctx.name_of(y), name)
    used = {name for node in ctx.nodes for name in node.input}
    for name in trace.in_names:
        if name not in used:  # its values were read as constants: the file would ignore it
            raise ValueError(
                f"{_WHO}: the input {name!r} does not reach the outputs through recorded ops: "
                "forward used its values as a constant (x.data, or NumPy on it), so the file "
                'would give the traced answer for any input. Compute with zerograd functions '
                'on the Variable, or leave the input out')


def _inputs_and_outputs(ctx: ExportContext, trace: _Trace) -> tuple[list, list]:
    """The graph's declared inputs and outputs, dynamic sizes named."""
    known = [(d, x.shape[a], ctx.twin(x).shape[a]) for name, x in zip(trace.in_names, trace.inputs)
             for a, d in trace.dynamic.get(name, {}).items()]

    def moved(y: Variable) -> dict[int, tuple[int, int]]:
        return {i: (n, ctx.twin(y).shape[i]) for i, n in enumerate(y.shape)
                if ctx.varying(y)[i]}

    return ([_value_info(name, x, trace.dynamic.get(name, {}))
             for name, x in zip(trace.in_names, trace.inputs)],
            [_value_info(name, y, trace.dynamic.get(name, {}), moved(y), known)
             for name, y in zip(trace.out_names, trace.outputs)])


def _refuse_backward_only(functions: list[Function]) -> None:
    """A backward graph is refused as such, before anything else is said of it."""
    for func in functions:
        cls = type(func)
        if cls in _BACKWARD_ONLY and converter_for(cls) is None:
            raise NotImplementedError(
                f'{_WHO}: {describe(func)} is a backward-only Function (part of the '
                f'gradient of {_BACKWARD_ONLY[cls]}); ONNX export traces forward passes '
                'only, so export the forward computation')


def _value_info(name: str, x: Variable, dims: dict[int, str],
                sizes: dict[int, tuple[int, int]] | None = None,
                known: Sequence[tuple[str, int, int]] = ()) -> Any:
    """The declared type of an input or output. dims: its named axes; sizes (outputs):
    {axis: (size, size in the second trace)} of the axes that move, each named as the
    input axis of the same sizes in both traces (``batch``), else ``<name>_dim<axis>``
    (2N after a concat, say, is not N)."""
    helper = require_onnx().helper
    shape: list[Any] = list(x.shape)
    for i, moved in (sizes or {}).items():
        shape[i] = next((d for d, a, b in known if (a, b) == moved), f'{name}_dim{i}')
    for i, d in dims.items():
        shape[i] = d
    elem = helper.np_dtype_to_tensor_dtype(np.dtype(x.dtype))
    return helper.make_tensor_value_info(name, elem, shape)


def _match(inputs: list[Variable], outputs: list[Variable], functions: list[Function],
           inputs2: list[Variable], outputs2: list[Variable], functions2: list[Function]
           ) -> dict[int, Any]:
    """Pair each Function and Variable of the first trace with the second's."""
    if len(outputs) != len(outputs2) or not _same_graph(functions, functions2):
        raise ValueError(f'{_WHO}: the model records a different graph when a dynamic axis '
                         'changes size (its forward branches on the input\'s shape); export '
                         'it with dynamic_axes={} (fixed sizes)')
    twins: dict[int, Any] = {}
    for a, b in zip(inputs, inputs2):
        twins[id(a)] = b
    for a, b in zip(outputs, outputs2):
        twins[id(a)] = b
    for fa, fb in zip(functions, functions2):
        twins[id(fa)] = fb
        for xa, xb in zip(fa.inputs, fb.inputs):
            if xa.ndim != xb.ndim:
                raise ValueError(f'{_WHO}: an input of {describe(fa)} changes its number of axes '
                                 'with the dynamic axes; export with dynamic_axes={}')
            if xa.creator is None and id(xa) not in twins and xa is not xb:
                _same_constant(fa, xa.data, xb.data)
            twins.setdefault(id(xa), xb)
        for ya, yb in zip(_outputs_of(fa), _outputs_of(fb)):
            if ya is not None and yb is not None:
                twins[id(ya)] = yb
    return twins


def _same_constant(f: Function, value: Any, twin_value: Any) -> None:
    a, b = zerograd.cuda.as_numpy(np.asarray(value) if np.isscalar(value) else value), \
        zerograd.cuda.as_numpy(np.asarray(twin_value) if np.isscalar(twin_value) else twin_value)
    if a.shape != b.shape:
        change = f'of shape {a.shape} that becomes {b.shape}'
    elif not np.array_equal(a, b, equal_nan=a.dtype.kind == 'f'):
        change = (f'{_brief(a)} that becomes {_brief(b)}' if a.size == 1
                  else f'of shape {a.shape} whose values change')
    else:
        return
    raise ValueError(
        f'{_WHO}: {describe(f)} uses a constant {change} when the batch (dynamic) size '
        "changes: forward made it from the input's size (x.shape, len(x)), so the file "
        'would be wrong at other sizes. Compute it from the input with functions, or '
        'export with dynamic_axes={}')


def _brief(a: np.ndarray) -> str:
    return repr(a.reshape(()).item())


def _same_graph(functions: list[Function], functions2: list[Function]) -> bool:
    return len(functions) == len(functions2) and all(
        type(a) is type(b) and len(a.inputs) == len(b.inputs)
        for a, b in zip(functions, functions2))


def _make_model(graph: Any, opset: int) -> Any:
    helper = require_onnx().helper
    opsets = [helper.make_opsetid('', opset)]
    model = helper.make_model(graph, opset_imports=opsets, producer_name='zerograd',
                              producer_version=zerograd.__version__)
    # The lowest IR version that has this opset: a newer stamp makes older runtimes refuse.
    model.ir_version = helper.find_min_ir_version_for(opsets)
    return model


def write_model(model_proto: Any, f: Any) -> None:
    """Write to a path through a temporary file (never half a file), or to a binary file."""
    data = model_proto.SerializeToString()
    if hasattr(f, 'write'):
        f.write(data)
        return
    zerograd.utils.atomic_write(os.fspath(f), data)
