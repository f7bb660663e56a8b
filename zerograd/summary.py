"""Model summaries and inline pictures for Jupyter.

- ``summary(model, x)`` (also ``model.summary(x)``) runs one forward and tabulates each
  layer call: its output shape and its own parameters, with totals and memory, as
  torchinfo and Keras do. ``print()`` it for the text table; Jupyter shows it as HTML.
- ``layer_table_html(model)`` is the layer tree as an HTML table, without a forward
  (``Layer._repr_html_``).
- ``graph_svg(y)`` is the picture of the graph behind a Variable (``Variable._repr_svg_``).

How the forward is watched: ``Layer.__call__`` tests one module-level list
(``layers._call_observers``); only while a summary runs is there something in it, so a
forward outside a summary pays one truth test of an empty list per layer call.
"""
from __future__ import annotations

import html
import shutil
import subprocess
import threading
import warnings
from typing import Any, NamedTuple

from zerograd import layers, utils
from zerograd.core import Parameter, Variable, no_grad, test_mode
from zerograd.layers import Layer


class SummaryRow(NamedTuple):
    """One layer call of the summarised forward (in call order, a layer before the layers
    it calls). ``params``/``trainable``: elements of the layer's own parameters (not its
    sublayers'), 0 for a layer called again (``repeated``)."""
    name: str                   # the attribute path from the model ('block1/conv'); '' for it
    type: str                   # the layer's class name
    depth: int                  # 0 for the model, 1 for what it calls, ...
    output_shape: Any           # a tuple, a list of tuples for several outputs, or None
    output_bytes: int
    params: int
    trainable: int
    repeated: bool


class Summary:
    """What ``summary`` found: ``rows`` (one ``SummaryRow`` per layer call) and the totals as attributes.

    total_params, trainable_params, non_trainable_params: elements of the model's
    parameters, each counted once (non-trainable: running statistics such as BatchNorm's).
    input_bytes, output_bytes (the outputs of the innermost layer calls: the activations
    a training forward keeps), param_bytes, total_bytes (their sum).
    ``str()`` is the text table; ``_repr_html_`` the same as an HTML table.
    """

    def __init__(self, model_name: str, rows: list[SummaryRow], total_params: int,
                 trainable_params: int, input_bytes: int, output_bytes: int,
                 param_bytes: int) -> None:
        self.model_name = model_name
        self.rows = rows
        self.total_params = total_params
        self.trainable_params = trainable_params
        self.non_trainable_params = total_params - trainable_params
        self.input_bytes = input_bytes
        self.output_bytes = output_bytes
        self.param_bytes = param_bytes
        self.total_bytes = input_bytes + output_bytes + param_bytes

    def _cells(self) -> list[tuple[int, str, str, str]]:
        """(depth, 'name (Type)', output shape, param count) per row, as text."""
        cells = []
        for row in self.rows:
            label = f'{row.name} ({row.type})' if row.name else row.type
            count = '(repeated)' if row.repeated else (f'{row.params:,}' if row.params
                                                       else '--')
            cells.append((row.depth, label, _shape_text(row.output_shape), count))
        return cells

    def _totals(self) -> list[tuple[str, str]]:
        mb = 1e6
        return [('Total params', f'{self.total_params:,}'),
                ('Trainable params', f'{self.trainable_params:,}'),
                ('Non-trainable params', f'{self.non_trainable_params:,}'),
                ('Input size (MB)', f'{self.input_bytes / mb:.2f}'),
                ('Outputs size (MB)', f'{self.output_bytes / mb:.2f}'),
                ('Params size (MB)', f'{self.param_bytes / mb:.2f}'),
                ('Estimated total size (MB)', f'{self.total_bytes / mb:.2f}')]

    def __str__(self) -> str:
        header = ('Layer (type)', 'Output shape', 'Param #')
        cells = [('  ' * depth + label, shape, count) for depth, label, shape, count
                 in self._cells()]
        widths = [max([len(header[i])] + [len(c[i]) for c in cells]) for i in range(3)]

        def line(texts: tuple[str, str, str]) -> str:
            return (f'{texts[0]:<{widths[0]}}   {texts[1]:<{widths[1]}}   '
                    f'{texts[2]:>{widths[2]}}').rstrip()
        rule = '=' * (sum(widths) + 6)
        lines = [rule, line(header), rule] + [line(c) for c in cells] + [rule]
        lines += [f'{name}: {value}' for name, value in self._totals()[:3]]
        lines.append('-' * len(rule))
        lines += [f'{name}: {value}' for name, value in self._totals()[3:]]
        lines.append(rule)
        return '\n'.join(lines)

    def __repr__(self) -> str:
        return str(self)

    def _repr_html_(self) -> str:
        """The table as HTML, for Jupyter."""
        body = [_html_row((_indent(depth, label), html.escape(shape), count), right=2)
                for depth, label, shape, count in self._cells()]
        totals = ''.join(f'<tr><th colspan="2" style="text-align:left">{name}</th>'
                         f'<td style="text-align:right">{value}</td></tr>'
                         for name, value in self._totals())
        return ('<table>\n<thead>' + _html_row(('Layer (type)', 'Output shape', 'Param #'),
                                               tag='th')
                + '</thead>\n<tbody>\n' + '\n'.join(body) + '\n</tbody>\n<tfoot>' + totals
                + '</tfoot>\n</table>')


class _Recorder:
    """Watches layer calls of the thread that made it: a row per call, in call order."""

    def __init__(self) -> None:
        self.thread = threading.get_ident()
        self.calls: list[list] = []  # [layer, depth, outputs]
        self.stack: list[int] = []

    def enter(self, layer: Layer) -> None:
        if threading.get_ident() == self.thread:
            self.stack.append(len(self.calls))
            self.calls.append([layer, len(self.stack) - 1, None])

    def exit(self, layer: Layer, outputs: Any) -> None:
        if threading.get_ident() == self.thread:
            self.calls[self.stack.pop()][2] = outputs


def summary(model: Layer, *inputs: Any, depth: int | None = None) -> Summary:
    """Run ``model(*inputs)`` once and return its ``Summary``: per layer call its output
    shape and own parameter count (trainable and total), then totals and memory. Show it
    with ``print(summary(model, x))``; Jupyter shows it as an HTML table.

    The forward runs under ``no_grad()`` and ``test_mode()``: no graph is kept, dropout
    draws nothing and BatchNorm's running statistics do not change. Lazy layers create
    their weights in it (drawn as a first training call would), so the counts are those of
    the model that this input makes. A stateful layer (RNN, LSTM) keeps the state the
    forward leaves; call ``reset_state()`` after it if that matters.
    depth: show only rows that deep (0: the model alone); None: all. The totals are the
    whole model's either way.

    >>> import numpy as np
    >>> import zerograd.layers as L
    >>> from zerograd.models import Sequential
    >>> result = summary(Sequential(L.Linear(4), L.Linear(2)), np.zeros((1, 3), np.float32))
    >>> result.total_params, result.rows[1].name, result.rows[1].output_shape
    (26, 'l0', (1, 4))
    """
    if not isinstance(model, Layer):
        raise TypeError(f'summary: model must be a Layer or Model, got {type(model).__name__}')
    if depth is not None and (not isinstance(depth, int) or depth < 0):
        raise ValueError(f'summary: depth must be None or an int >= 0, got {depth!r}')
    recorder = _Recorder()
    layers._call_observers.append(recorder)
    try:
        with no_grad(), test_mode():
            model(*inputs)
    finally:
        layers._call_observers.remove(recorder)

    names = {id(layer): key for key, layer in _layer_tree(model)}
    seen: set[int] = set()
    rows = []
    for i, (layer, call_depth, outputs) in enumerate(recorder.calls):
        repeated = id(layer) in seen
        seen.add(id(layer))
        own = [(key, obj) for key, obj in layer._repr_items() if isinstance(obj, Parameter)]
        counts = [_size(obj) for _, obj in own]
        trainable = [n for (key, _), n in zip(own, counts) if key not in layer._buffer_names]
        innermost = i + 1 == len(recorder.calls) or recorder.calls[i + 1][1] <= call_depth
        rows.append(SummaryRow(names.get(id(layer), ''), type(layer).__name__, call_depth,
                               _output_shapes(outputs),
                               _output_bytes(outputs) if innermost else 0,
                               0 if repeated else sum(counts),
                               0 if repeated else sum(trainable), repeated))
    output_bytes = sum(row.output_bytes for row in rows)
    if depth is not None:
        rows = [row for row in rows if row.depth <= depth]
    unique = {id(p): p for p in model.params()}
    trainable_ids = {id(p) for p in model.parameters()}
    return Summary(type(model).__name__, rows,
                   total_params=sum(_size(p) for p in unique.values()),
                   trainable_params=sum(_size(p) for k, p in unique.items()
                                        if k in trainable_ids),
                   input_bytes=_output_bytes(inputs), output_bytes=output_bytes,
                   param_bytes=sum(p.data.nbytes for p in unique.values()
                                   if p.data is not None))


# =============================================================================
# The layer tree without a forward (Layer._repr_html_)
# =============================================================================
def _layer_tree(model: Layer, prefix: str = '') -> list[tuple[str, Layer]]:
    """(key path, layer) of the model and every registered sublayer, depth first."""
    result = [(prefix, model)]
    for key, obj in model._repr_items():
        if isinstance(obj, Layer):
            result += _layer_tree(obj, f'{prefix}/{key}' if prefix else key)
    return result


def layer_table_html(model: Layer) -> str:
    """The layer tree of ``model`` as an HTML ``<table>``: per layer (and plain function
    of a Sequential) its parameters' shapes ('W: (?, 100) not created' for lazy ones) and
    the elements of those created; totals of the whole tree. Nothing is run."""
    rows: list[str] = []
    total = trainable = 0
    not_created = 0
    seen: set[int] = set()

    def visit(layer: Layer, label: str, depth: int) -> None:
        nonlocal total, trainable, not_created
        params = [(key, obj) for key, obj in layer._repr_items() if isinstance(obj, Parameter)]
        count = 0
        for key, param in params:
            if param.data is None:
                not_created += 1
            elif id(param) not in seen:
                seen.add(id(param))
                count += param.data.size
                total += param.data.size
                if key not in layer._buffer_names:
                    trainable += param.data.size
        shapes = '<br>'.join(html.escape(layer._param_text(key, p)) for key, p in params)
        rows.append(_html_row((_indent(depth, label), html.escape(type(layer).__name__),
                               shapes, f'{count:,}' if params else '--'), right=3))
        for key, obj in layer._repr_items():
            if isinstance(obj, Layer):
                visit(obj, key, depth + 1)
            elif not isinstance(obj, Parameter):
                rows.append(_html_row((_indent(depth + 1, key),
                                       html.escape(layers._callable_name(obj)), '', '--'),
                                      right=3))

    visit(model, type(model).__name__, 0)
    footer = (f'<tr><th colspan="3" style="text-align:left">Total params</th>'
              f'<td style="text-align:right">{total:,}</td></tr>'
              f'<tr><th colspan="3" style="text-align:left">Trainable params</th>'
              f'<td style="text-align:right">{trainable:,}</td></tr>')
    if not_created:
        footer += (f'<tr><th colspan="3" style="text-align:left">Parameters not created yet '
                   f'(counted after the first forward)</th><td style="text-align:right">'
                   f'{not_created}</td></tr>')
    return ('<table>\n<thead>' + _html_row(('Layer', 'Type', 'Parameters', 'Param #'),
                                           tag='th')
            + '</thead>\n<tbody>\n' + '\n'.join(rows) + '\n</tbody>\n<tfoot>' + footer
            + '</tfoot>\n</table>')


# =============================================================================
# A Variable's graph as SVG (Variable._repr_svg_)
# =============================================================================
# Larger graphs are not drawn inline: dot's layout time grows fast, and a picture of
# thousands of boxes shows nothing (plot_dot_graph still writes them to a file).
MAX_GRAPH_FUNCTIONS = 300
_DOT_TIMEOUT_S = 20
_hinted = False


def _count_functions(output: Variable, limit: int) -> int:
    """The functions behind ``output``, counted up to limit + 1 (then it stops)."""
    funcs = [output.creator]
    seen = {output.creator}
    while funcs and len(seen) <= limit:
        for x in funcs.pop().inputs:
            if x.creator is not None and x.creator not in seen:
                seen.add(x.creator)
                funcs.append(x.creator)
    return len(seen)


def graph_svg(output: Variable) -> str | None:
    """The graph that computed ``output`` as SVG text (Graphviz's ``dot -Tsvg``, run
    without a shell), or None, so that Jupyter shows the repr instead:

    - for a leaf (no creator: an input, a parameter, a result computed under no_grad()),
      whose picture would be one ellipse; Jupyter asks every displayed Variable for it;
    - for a graph of more than ``MAX_GRAPH_FUNCTIONS`` functions (write those to a file
      with ``utils.plot_dot_graph``);
    - when ``dot`` is not installed (a warning says so, once) or fails.
    """
    global _hinted
    if not isinstance(output, Variable) or output.creator is None:
        return None
    if _count_functions(output, MAX_GRAPH_FUNCTIONS) > MAX_GRAPH_FUNCTIONS:
        return None
    dot = shutil.which('dot')
    if dot is None:
        if not _hinted:
            _hinted = True
            warnings.warn("zerograd: Graphviz's `dot` program was not found, so Variables "
                          'are shown as text; install graphviz (apt-get install graphviz, '
                          'brew install graphviz, conda install graphviz) to see their '
                          'graphs', RuntimeWarning, stacklevel=2)
        return None
    try:
        result = subprocess.run([dot, '-Tsvg'], input=utils.get_dot_graph(output),
                                capture_output=True, text=True, timeout=_DOT_TIMEOUT_S)
    except (OSError, subprocess.TimeoutExpired):
        return None
    return result.stdout if result.returncode == 0 and '<svg' in result.stdout else None


# =============================================================================
# Helpers
# =============================================================================
def _size(param: Parameter) -> int:
    return 0 if param.data is None else int(param.data.size)


def _arrays(outputs: Any) -> list[Any]:
    """The arrays in a layer's outputs (a Variable, an array, or a tuple/list of them)."""
    if isinstance(outputs, (tuple, list)):
        return [a for item in outputs for a in _arrays(item)]
    data = outputs.data if isinstance(outputs, Variable) else outputs
    return [data] if hasattr(data, 'shape') and hasattr(data, 'nbytes') else []


def _output_shapes(outputs: Any) -> Any:
    arrays = _arrays(outputs)
    if isinstance(outputs, (tuple, list)):
        return [tuple(a.shape) for a in arrays]
    return tuple(arrays[0].shape) if arrays else None


def _output_bytes(outputs: Any) -> int:
    return sum(int(a.nbytes) for a in _arrays(outputs))


def _shape_text(shape: Any) -> str:
    if shape is None:
        return '--'
    if isinstance(shape, list):
        return ', '.join(str(s) for s in shape)
    return str(shape)


def _indent(depth: int, text: str) -> str:
    return '&nbsp;&nbsp;' * depth + html.escape(text)


def _html_row(cells: tuple[str, ...], tag: str = 'td', right: int | None = None) -> str:
    """One <tr> of cells that are HTML already (escaped by the caller); the column
    ``right`` right-aligned (numbers)."""
    parts = []
    for i, cell in enumerate(cells):
        style = ' style="text-align:right"' if i == right else ' style="text-align:left"'
        parts.append(f'<{tag}{style}>{cell}</{tag}>')
    return '<tr>' + ''.join(parts) + '</tr>'
