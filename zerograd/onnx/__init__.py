"""ONNX export and import: ``zerograd.onnx.export(model, args)``, ``zerograd.onnx.load(path)``.

Needs the optional extra ``zerograd[onnx]`` (onnx and onnxruntime), imported only when a
function here runs, so ``import zerograd.onnx`` costs nothing without it.

==================  =======================================================================
``exporter``        tracing, the graph walk, dynamic axes, ``register_converter``
``export_ops``      converters of the tensor ops (arithmetic, math, array, reduction,
                    linalg, activation, loss)
``export_nn``       converters of the network ops (conv, pooling, batch norm, LSTM)
``loader``          ``load``: a file checked as untrusted input, run as a zerograd Model
``load_ops``        the ONNX ops ``load`` runs, each with zerograd functions
==================  =======================================================================
"""
from zerograd.onnx.exporter import (MIN_OPSET, ExportContext, converter, export,  # noqa: F401
                                    newest_opset, register_converter, require_onnx,
                                    write_model)
from zerograd.onnx import export_ops  # noqa: F401,E402 (registers the converters)
from zerograd.onnx import export_nn  # noqa: F401,E402
from zerograd.onnx.loader import load  # noqa: F401,E402
