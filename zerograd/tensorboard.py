"""TensorBoard logging for ``training.fit``: scalars, histograms and the model graph.

``pip install 'zerograd[tensorboard]'`` (tensorboardX writes the event files; it is
imported only when a logger is made), then::

    logger = TensorBoardLogger('runs/spiral', example_input=x[:1])
    training.fit(model, optimizer, loader, epochs=10, callbacks=[logger])

and ``tensorboard --logdir runs``. What is written, and under which names:

- at the end of each epoch, at step = the epoch (1, 2, ...): every number of the record as a
  scalar, ``train_X`` as ``X/train`` and ``test_X`` as ``X/test`` (``loss/train``,
  ``accuracy/test``: TensorBoard puts a metric's curves in one section), any other under
  its own name (``samples_per_second``, ``lr``); ``epoch`` is the step, not a scalar. The
  optimizer's learning rate as ``lr`` when the record has none. A histogram of each
  parameter under its ``named_params()`` key (``l0/W``) and of its gradient (the last
  batch's) as ``l0/W/grad`` when it has one;
- every ``batch_every`` updates: ``batch/loss`` at step = the update count, in the run
  ``batches`` (the sub-folder ``log_dir/batches``), so that it has a step axis of its own;
- once: the graph, one node per Function (op: its class name, e.g. ``Linear``, named
  ``l0/Linear`` inside the layer whose parameters it reads), per parameter (``l0/W``, op
  ``Parameter``) and per input (``input``, op ``Input``).

A resume (``fit(..., resume=True)``) writes new event files into the same ``log_dir``;
each run of the logger marks a restart at its first epoch (a ``SessionLog.START``, as
TensorFlow does), so TensorBoard drops the points of the epochs trained again instead of
drawing both. Data-parallel: only rank 0 of ``comm`` writes.
"""
from __future__ import annotations

import itertools
import os
import time
from typing import Any, Mapping, Sequence

import numpy as np

from zerograd import cuda
from zerograd.callbacks import Callback
from zerograd.core import Parameter, Variable, test_mode

INSTALL_HINT = "pip install 'zerograd[tensorboard]'"

# Event files are named by the second they are opened in; two writers opened in the same
# second (a quick resume, a test) would share a name and the second would overwrite the
# first. A nanosecond suffix keeps the names apart and in the order they were written
# (TensorBoard reads a folder's files in name order).
_SEQUENCE = itertools.count()


def _import_tensorboardx() -> Any:
    try:
        import tensorboardX
    except ImportError as error:
        raise ImportError(f'TensorBoardLogger needs tensorboardX: {INSTALL_HINT}') from error
    return tensorboardX


def _scalar_tag(name: str) -> str:
    """'train_loss' -> 'loss/train', 'test_accuracy' -> 'accuracy/test', others unchanged:
    TensorBoard then draws a section per metric with the train and test curves side by side."""
    for split in ('train', 'test'):
        if name.startswith(split + '_') and len(name) > len(split) + 1:
            return f'{name[len(split) + 1:]}/{split}'
    return name


def _is_number(value: Any) -> bool:
    return isinstance(value, (int, float, np.integer, np.floating)) and \
        not isinstance(value, (bool, np.bool_))


def _learning_rate(optimizer: Any) -> float | None:
    """The optimizer's learning rate (``lr``, or Adam's ``alpha``), or None."""
    hyperparams = getattr(optimizer, 'hyperparams', None)
    values = hyperparams() if callable(hyperparams) else {}
    for name in ('lr', 'alpha'):
        if _is_number(values.get(name)):
            return float(values[name])
    return None


# =============================================================================
# The graph: zerograd's own computational graph as a TensorFlow GraphDef
# =============================================================================
def _dtype_enum(dtype: Any) -> int:
    from tensorboardX.proto import types_pb2
    names = {'float16': 'DT_HALF', 'float32': 'DT_FLOAT', 'float64': 'DT_DOUBLE',
             'int8': 'DT_INT8', 'int16': 'DT_INT16', 'int32': 'DT_INT32',
             'int64': 'DT_INT64', 'uint8': 'DT_UINT8', 'bool': 'DT_BOOL'}
    return getattr(types_pb2, names.get(np.dtype(dtype).name, 'DT_INVALID'))


def _shape_attr(variables: Sequence[Variable | None]) -> Any:
    """The ``_output_shapes`` attribute: TensorBoard shows these shapes on the edges."""
    from tensorboardX.proto.attr_value_pb2 import AttrValue
    from tensorboardX.proto.tensor_shape_pb2 import TensorShapeProto
    shapes = []
    for v in variables:
        if v is None or v.data is None:
            shapes.append(TensorShapeProto(unknown_rank=True))
        else:
            shapes.append(TensorShapeProto(dim=[TensorShapeProto.Dim(size=int(n))
                                                for n in v.shape]))
    return AttrValue(list=AttrValue.ListValue(shape=shapes))


def _functions(outputs: Sequence[Variable]) -> list[Any]:
    """Every Function behind ``outputs``, inputs before the functions that use them (by
    generation, then in the order found): a walk without recursion, so any depth works."""
    found, seen = [], set()
    pending = [v.creator for v in outputs if v.creator is not None]
    while pending:
        f = pending.pop()
        if id(f) in seen:
            continue
        seen.add(id(f))
        found.append(f)
        pending.extend(x.creator for x in f.inputs if x.creator is not None)
    order = {id(f): i for i, f in enumerate(found)}
    return sorted(found, key=lambda f: (f.generation, -order[id(f)]))


def graph_def(outputs: Variable | Sequence[Variable],
              named_params: Mapping[str, Parameter] | None = None) -> Any:
    """The graph that computed ``outputs`` as a TensorFlow ``GraphDef`` (tensorboardX's
    proto), for TensorBoard's graph page.

    One node per Function (``op`` its class name, e.g. ``Linear``; named ``l0/Linear`` when
    it reads parameters of layer ``l0``, so each layer is a box of its own), one per
    parameter (named by its key in ``named_params``, op ``Parameter``), one per other leaf
    (``input``, ``input_1``, ... op ``Input``); edges from each input's creator. Each node's
    ``_output_shapes`` gives the shapes TensorBoard prints on the edges.
    """
    _import_tensorboardx()
    from tensorboardX.proto.attr_value_pb2 import AttrValue
    from tensorboardX.proto.graph_pb2 import GraphDef
    from tensorboardX.proto.node_def_pb2 import NodeDef
    from tensorboardX.proto.versions_pb2 import VersionDef

    if isinstance(outputs, Variable):
        outputs = [outputs]
    outputs = list(outputs)
    for v in outputs:
        if not isinstance(v, Variable):
            raise TypeError(f'graph_def: outputs must be Variables, got {type(v).__name__}')
    keys = {id(param): key for key, param in (named_params or {}).items()}
    nodes, names, used = [], {}, set()

    def unique(name: str) -> str:
        # TensorFlow's convention: ReLU, ReLU_1, ReLU_2, ...
        candidate, n = name, 0
        while candidate in used:
            n += 1
            candidate = f'{name}_{n}'
        used.add(candidate)
        return candidate

    def source(x: Variable) -> str:
        """The name of the node (and output, ``:k`` after the first) that gives ``x``."""
        if x.creator is not None:
            f = x.creator
            index = next((i for i, ref in enumerate(f.outputs) if ref() is x), 0)
            return names[id(f)] + (f':{index}' if index else '')
        if id(x) not in names:  # a leaf: a parameter, the input, a constant
            key = keys.get(id(x))
            if key is not None:
                names[id(x)] = unique(key)
                op = 'Parameter'
            else:
                names[id(x)] = unique('input' if x.name is None else x.name)
                op = 'Input'
            attr = {'_output_shapes': _shape_attr([x])}
            if x.data is not None:
                attr['dtype'] = AttrValue(type=_dtype_enum(x.dtype))
            nodes.append(NodeDef(name=names[id(x)], op=op, attr=attr))
        return names[id(x)]

    for f in _functions(outputs):
        inputs = [source(x) for x in f.inputs]
        # A function that reads parameters goes into their layer's scope ('l0/Linear').
        layers = {keys[id(x)].rpartition('/')[0] for x in f.inputs if id(x) in keys}
        layers.discard('')
        op = type(f).__name__
        names[id(f)] = unique(f'{layers.pop()}/{op}' if len(layers) == 1 else op)
        nodes.append(NodeDef(name=names[id(f)], op=op, input=inputs,
                             attr={'_output_shapes': _shape_attr([ref() for ref in f.outputs])}))
    for v in outputs:  # an output that is a leaf (an identity model) still gets its node
        source(v)
    return GraphDef(node=nodes, versions=VersionDef(producer=22))


# =============================================================================
# The logger
# =============================================================================
class TensorBoardLogger(Callback):
    """A ``fit`` callback writing TensorBoard event files into ``log_dir``.

    Args:
        log_dir: the folder (made if missing; a resume writes into the same one).
        histograms: write each parameter's weights and gradients at each epoch's end.
        graph: write the model graph (from ``example_input``, or by ``add_graph``).
        batch_every: write the batch loss every that many updates (0: never).
        example_input: an input batch (``(N, ...)`` array); ``on_train_begin`` runs the
            model on it once to write the graph (at the end of the first epoch instead
            when the model still has lazy parameters, so their creation keeps its place
            in the random sequence).
        comm: a ``zerograd.distributed`` communicator: only its rank 0 writes.

    The names of what is written are in the module's docstring. Event files are flushed
    at the end of every epoch (a crash loses nothing written before) and closed at the end
    of training.
    """

    def __init__(self, log_dir: str, histograms: bool = True, graph: bool = True,
                 batch_every: int = 0, example_input: Any = None, comm: Any = None) -> None:
        if not isinstance(log_dir, (str, os.PathLike)):
            raise TypeError(f'TensorBoardLogger: log_dir must be a path, got {log_dir!r}')
        if isinstance(batch_every, bool) or not isinstance(batch_every, (int, np.integer)) \
                or batch_every < 0:
            raise ValueError(f'TensorBoardLogger: batch_every must be an int >= 0, '
                             f'got {batch_every!r}')
        self._tensorboardx = _import_tensorboardx()  # early: the error comes before training
        self.log_dir = os.fspath(log_dir)
        self.histograms, self.graph = bool(histograms), bool(graph)
        self.batch_every = int(batch_every)
        self.example_input = example_input
        self.writes = comm is None or comm.rank == 0
        self.model: Any = None
        self.optimizer: Any = None
        self._writers: dict[str, Any] = {}
        self._graph_pending = False
        self._restart_marked: set[str] = set()

    # -- writers ----------------------------------------------------------------
    def _writer(self, run: str = '') -> Any:
        """The SummaryWriter of ``log_dir`` (run '') or of its sub-folder ``run``."""
        writer = self._writers.get(run)
        if writer is None:
            writer = self._tensorboardx.SummaryWriter(
                os.path.join(self.log_dir, run) if run else self.log_dir,
                filename_suffix=f'.{time.time_ns()}{next(_SEQUENCE):06d}')
            self._writers[run] = writer
        return writer

    def _mark_restart(self, run: str, step: int) -> None:
        """Once per writer: a SessionLog.START at ``step``, so TensorBoard forgets the
        points of an earlier run at steps >= ``step`` (those trained again after a resume)."""
        if run in self._restart_marked:
            return
        self._restart_marked.add(run)
        from tensorboardX.proto.event_pb2 import Event, SessionLog
        self._writer(run).file_writer.add_event(
            Event(step=int(step), session_log=SessionLog(status=SessionLog.START)))

    def flush(self) -> None:
        """Write everything pending to the event files."""
        for writer in self._writers.values():
            writer.flush()

    def close(self) -> None:
        """Flush and close the event files (a later write opens new ones)."""
        for writer in self._writers.values():
            writer.close()
        self._writers.clear()
        self._restart_marked.clear()

    # -- the graph ----------------------------------------------------------------
    def add_graph(self, model: Any, x: Any) -> None:
        """Run ``model`` once on the batch ``x`` and write the graph it builds.

        The forward runs in test mode (dropout off, batch norm's statistics untouched, as
        PyTorch's add_graph traces in eval mode), and NumPy's random state and recurrent
        layers' states are put back afterwards, so training goes on exactly as without it.
        Lazy layers create their parameters here.
        """
        if not callable(model):
            raise TypeError(f'TensorBoardLogger.add_graph: model must be callable, got '
                            f'{type(model).__name__}')
        if not self.writes:
            return
        from zerograd import training  # not at import: training is above callbacks
        random_state = np.random.get_state()
        recurrent = training._recurrent_state(model) if hasattr(model, '_params') else None
        try:
            with test_mode():
                y = model(x)
        finally:
            np.random.set_state(random_state)
            if recurrent is not None:
                training._set_recurrent_state(model, recurrent)
        outputs = list(y) if isinstance(y, (tuple, list)) else [y]
        if not all(isinstance(v, Variable) for v in outputs):
            raise TypeError(f'TensorBoardLogger.add_graph: the model returned '
                            f'{type(y).__name__}, not Variables')
        named = model.named_params() if hasattr(model, 'named_params') else None
        # FileWriter.add_onnx_graph writes any GraphDef as it is; SummaryWriter.add_graph
        # would trace a torch model instead.
        self._writer().file_writer.add_onnx_graph(graph_def(outputs, named))
        self._writer().flush()

    def _all_params_created(self) -> bool:
        return all(p.data is not None for p in getattr(self.model, 'params', lambda: [])())

    # -- the callback protocol ------------------------------------------------------
    def on_train_begin(self, model: Any, optimizer: Any) -> None:
        """Keep the model and optimizer; write the graph when ``example_input`` is given."""
        self.model, self.optimizer = model, optimizer
        self._graph_pending = self.graph and self.example_input is not None
        if self._graph_pending and self._all_params_created():
            self.add_graph(model, self.example_input)
            self._graph_pending = False

    def on_epoch_start(self, epoch: int) -> None:
        """Mark the start of this run at ``epoch`` (see the module: resumes)."""
        if self.writes:
            self._mark_restart('', epoch)

    def on_batch_end(self, iteration: int, loss: float) -> None:
        """Every ``batch_every`` updates: ``batch/loss`` at step ``iteration``."""
        if not self.writes or self.batch_every == 0 or iteration % self.batch_every:
            return
        self._mark_restart('batches', iteration)
        self._writer('batches').add_scalar('batch/loss', float(loss), int(iteration))

    def on_epoch_end(self, epoch: int, record: dict[str, float]) -> None:
        """The record's numbers as scalars, the histograms; then flush."""
        if not self.writes:
            return
        writer = self._writer()
        self._mark_restart('', epoch)
        for name, value in record.items():
            if name != 'epoch' and _is_number(value):
                writer.add_scalar(_scalar_tag(name), float(value), int(epoch))
        if 'lr' not in record:
            lr = _learning_rate(self.optimizer)
            if lr is not None:
                writer.add_scalar('lr', lr, int(epoch))
        if self.histograms and self.model is not None:
            self._write_histograms(writer, epoch)
        if self._graph_pending:
            self.add_graph(self.model, self.example_input)
            self._graph_pending = False
        self.flush()

    def _write_histograms(self, writer: Any, epoch: int) -> None:
        for key, param in self.model.named_params().items():
            if param.data is None:  # a lazy layer not run yet
                continue
            writer.add_histogram(key, cuda.as_numpy(param.data), int(epoch))
            if param.grad is not None:
                writer.add_histogram(f'{key}/grad', cuda.as_numpy(param.grad.data), int(epoch))

    def on_train_end(self) -> None:
        """Flush and close the event files."""
        self.close()
