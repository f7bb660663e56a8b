"""zerograd.onnx.load: each op against onnxruntime, gradients, training, the checks of
untrusted files, and a CNN exported from PyTorch."""
from __future__ import annotations

import io
import os
import warnings

import numpy as np
import pytest

onnx = pytest.importorskip('onnx')
ort = pytest.importorskip('onnxruntime')

from onnx import TensorProto, helper, numpy_helper  # noqa: E402

import zerograd  # noqa: E402
import zerograd.functions as F  # noqa: E402
import zerograd.onnx  # noqa: E402
from zerograd.optimizers import SGD  # noqa: E402

NEWEST = zerograd.onnx.newest_opset()
OPSETS = sorted({17, 18, NEWEST})
BEFORE_18 = [17]                            # ReduceMax/Min/Mean axes as an attribute
FROM_18 = sorted({18, NEWEST})              # ... as an input
INT64_MAX, INT64_MIN = 2 ** 63 - 1, -2 ** 63

rng = np.random.default_rng(0)


def f32(*shape):
    return rng.standard_normal(shape).astype(np.float32)


def positive(*shape):
    return rng.uniform(0.5, 2.0, shape).astype(np.float32)


def i64(values):
    return np.array(values, dtype=np.int64)


class X:
    """A graph input."""
    def __init__(self, array):
        self.array = array


class I:  # noqa: E742
    """An initializer."""
    def __init__(self, array):
        self.array = array


def make_model(nodes, inputs, initializers, outputs, opset):
    """A model of nodes; inputs / initializers: {name: array}; outputs: names."""
    graph = helper.make_graph(
        nodes, 'test',
        [helper.make_tensor_value_info(name, helper.np_dtype_to_tensor_dtype(a.dtype),
                                       a.shape) for name, a in inputs.items()],
        [helper.make_empty_tensor_value_info(name) for name in outputs],
        [numpy_helper.from_array(a, name) for name, a in initializers.items()])
    opsets = [helper.make_opsetid('', opset)]
    return helper.make_model(graph, opset_imports=opsets,
                             ir_version=helper.find_min_ir_version_for(opsets))


def single(op, args, outputs=1, **attrs):
    """(nodes, inputs, initializers, outputs) of one node whose arguments are X(...),
    I(...) or None (an optional input left out)."""
    inputs, initializers, names = {}, {}, []
    for k, arg in enumerate(args):
        if arg is None:
            names.append('')
            continue
        name = f'in{k}'
        (inputs if isinstance(arg, X) else initializers)[name] = arg.array
        names.append(name)
    outs = [f'out{k}' for k in range(outputs)]
    return [helper.make_node(op, names, outs, **attrs)], inputs, initializers, outs


def run_both(parts, opset):
    """The outputs of onnxruntime and of zerograd's load (in test mode)."""
    nodes, inputs, initializers, outputs = parts
    model = make_model(nodes, inputs, initializers, outputs, opset)
    session = ort.InferenceSession(model.SerializeToString(),
                                   providers=['CPUExecutionProvider'])
    expected = session.run(None, inputs)
    loaded = zerograd.onnx.load(model.SerializeToString())
    with zerograd.test_mode():
        ys = loaded(*inputs.values())
    ys = ys if isinstance(ys, tuple) else (ys,)
    return expected, [y.data for y in ys]


def assert_same(expected, actual):
    assert len(expected) == len(actual)
    for e, a in zip(expected, actual):
        assert a.dtype == e.dtype, (a.dtype, e.dtype)
        assert a.shape == e.shape, (a.shape, e.shape)
        np.testing.assert_allclose(a, e, rtol=1e-5, atol=1e-5)


# =============================================================================
# Every op against onnxruntime
# =============================================================================
def _cases():
    c = []

    def add(case_id, parts, opsets=OPSETS):
        c.extend(pytest.param(parts, opset, id=f'{case_id}-opset{opset}') for opset in opsets)

    for op in ('Neg', 'Sin', 'Cos', 'Tanh', 'Exp', 'Abs', 'Relu', 'Sigmoid', 'Identity'):
        add(op, single(op, [X(f32(2, 3))]))
    for op in ('Log', 'Sqrt'):
        add(op, single(op, [X(positive(2, 3))]))
    for op in ('Add', 'Sub', 'Mul'):
        add(f'{op}-broadcast', single(op, [X(f32(2, 3)), I(f32(3))]))
        add(f'{op}-two-inputs', single(op, [X(f32(2, 3)), X(f32(2, 1))]))
    add('Div', single('Div', [X(f32(2, 3)), I(positive(2, 3))]))
    add('Div-constant-first', single('Div', [I(f32(1, 3)), X(positive(2, 3))]))
    add('Pow-float-exponent', single('Pow', [X(positive(2, 3)), I(np.array(1.5, np.float32))]))
    add('Pow-int-exponent', single('Pow', [X(f32(2, 3)), I(i64(3))]))
    add('LeakyRelu', single('LeakyRelu', [X(f32(2, 3))], alpha=0.1))
    add('Clip', single('Clip', [X(f32(3, 4)), I(np.array(-0.5, np.float32)),
                                I(np.array(0.5, np.float32))]))
    add('Clip-max-only', single('Clip', [X(f32(3, 4)), None, I(np.array(0.2, np.float32))]))
    add('Clip-no-bounds', single('Clip', [X(f32(3, 4))]))
    add('Cast-double', single('Cast', [X(f32(2, 3))], to=TensorProto.DOUBLE))
    add('Cast-int64', single('Cast', [X(3 * f32(2, 3))], to=TensorProto.INT64))
    add('Reshape-0-and-minus-1', single('Reshape', [X(f32(2, 3, 4)), I(i64([0, -1]))]))
    add('Reshape-allowzero', single('Reshape', [X(f32(2, 3, 4)), I(i64([4, 6]))], allowzero=1))
    for axis in (0, 1, 2, -1):
        add(f'Flatten-axis{axis}', single('Flatten', [X(f32(2, 3, 4))], axis=axis))
    add('Transpose', single('Transpose', [X(f32(2, 3, 4))], perm=[1, 0, 2]))
    add('Transpose-default', single('Transpose', [X(f32(2, 3, 4))]))
    add('Expand', single('Expand', [X(f32(3, 1)), I(i64([2, 3, 4]))]))
    add('Expand-both-ways', single('Expand', [X(f32(2, 1, 4)), I(i64([3, 1]))]))
    add('ReduceSum', single('ReduceSum', [X(f32(2, 3, 4)), I(i64([1]))], keepdims=0))
    add('ReduceSum-all', single('ReduceSum', [X(f32(2, 3, 4))]))
    add('ReduceSum-two-axes', single('ReduceSum', [X(f32(2, 3, 4)), I(i64([-1, 0]))]))
    add('ReduceSum-noop', single('ReduceSum', [X(f32(2, 3)), I(i64([]))],
                                 noop_with_empty_axes=1))
    for op in ('ReduceMean', 'ReduceMax', 'ReduceMin'):
        add(f'{op}-axes-attribute', single(op, [X(f32(2, 3, 4))], axes=[1], keepdims=0),
            BEFORE_18)
        add(f'{op}-axes-input', single(op, [X(f32(2, 3, 4)), I(i64([0, 2]))]), FROM_18)
        add(f'{op}-all', single(op, [X(f32(2, 3, 4))], keepdims=0))
    add('MatMul', single('MatMul', [X(f32(2, 3)), I(f32(3, 4))]))
    add('MatMul-batched', single('MatMul', [X(f32(2, 2, 3)), I(f32(3, 4))]))
    add('Gemm-transB', single('Gemm', [X(f32(2, 3)), I(f32(4, 3)), I(f32(4))], transB=1))
    add('Gemm-transA-alpha-beta', single('Gemm', [X(f32(3, 2)), I(f32(3, 4)), I(f32(1, 4))],
                                         transA=1, alpha=0.5, beta=2.0))
    add('Gemm-no-C', single('Gemm', [X(f32(2, 3)), I(f32(3, 4))]))
    add('Gemm-scalar-C', single('Gemm', [X(f32(2, 3)), I(f32(3, 4)), I(f32())], beta=0.5))
    add('Softmax', single('Softmax', [X(f32(2, 3, 4))]))
    add('Softmax-axis1', single('Softmax', [X(f32(2, 3, 4))], axis=1))
    add('LogSoftmax-axis0', single('LogSoftmax', [X(f32(2, 3))], axis=0))
    add('Concat', single('Concat', [X(f32(2, 3)), I(f32(2, 2))], axis=1))
    add('Concat-negative-axis', single('Concat', [X(f32(2, 3)), X(f32(2, 1))], axis=-1))
    add('Split-sizes', single('Split', [X(f32(2, 5)), I(i64([2, 3]))], outputs=2, axis=1))
    add('Split-num-outputs', single('Split', [X(f32(5, 2))], outputs=2, num_outputs=2),
        FROM_18)
    add('Slice', single('Slice', [X(f32(4, 5)), I(i64([1])), I(i64([3]))]))
    add('Slice-negative-step-huge-end',
        single('Slice', [X(f32(4, 5)), I(i64([-1])), I(i64([INT64_MIN])), I(i64([1])),
                         I(i64([-2]))]))
    add('Slice-huge-end-two-axes',
        single('Slice', [X(f32(4, 5, 2)), I(i64([1, -3])), I(i64([INT64_MAX, -1])),
                         I(i64([0, 1])), I(i64([2, 1]))]))
    add('Gather-ids-input', single('Gather', [I(f32(5, 3)), X(i64([[0, 4], [2, 2]]))]))
    add('Gather-axis1-negative', single('Gather', [X(f32(2, 4, 3)), I(i64([-1, 0]))], axis=1))
    add('Gather-scalar-index', single('Gather', [X(f32(4, 3)), I(i64(2))]))
    add('GatherND', single('GatherND', [X(f32(3, 4, 2)), I(i64([[0, 1], [2, 3]]))]))
    add('Squeeze', single('Squeeze', [X(f32(2, 1, 3, 1)), I(i64([1]))]))
    add('Squeeze-all', single('Squeeze', [X(f32(2, 1, 3, 1))]))
    add('Unsqueeze', single('Unsqueeze', [X(f32(2, 3)), I(i64([0, -1]))]))
    add('Conv', single('Conv', [X(f32(2, 3, 7, 7)), I(f32(4, 3, 3, 3)), I(f32(4))],
                       pads=[1, 1, 1, 1], strides=[2, 2]))
    add('Conv-no-bias-rectangular', single('Conv', [X(f32(1, 2, 6, 5)), I(f32(3, 2, 3, 2))]))
    add('Conv-valid', single('Conv', [X(f32(1, 2, 5, 5)), I(f32(3, 2, 3, 3))],
                             auto_pad='VALID'))
    add('Conv-group2', single('Conv', [X(f32(1, 4, 5, 5)), I(f32(6, 2, 3, 3)), I(f32(6))],
                              group=2, pads=[1, 1, 1, 1]))
    add('ConvTranspose', single('ConvTranspose', [X(f32(1, 3, 4, 4)), I(f32(3, 2, 3, 3)),
                                                  I(f32(2))],
                                strides=[2, 2], pads=[1, 1, 1, 1], output_padding=[1, 1]))
    add('ConvTranspose-output-shape', single('ConvTranspose', [X(f32(1, 3, 4, 4)),
                                                               I(f32(3, 2, 3, 3))],
                                             strides=[2, 2], output_shape=[7, 7]))
    add('ConvTranspose-group2', single('ConvTranspose', [X(f32(1, 4, 3, 3)),
                                                         I(f32(4, 1, 2, 2))], group=2))
    add('MaxPool', single('MaxPool', [X(f32(2, 3, 6, 6))], kernel_shape=[2, 2],
                          strides=[2, 2]))
    add('MaxPool-pads', single('MaxPool', [X(f32(1, 2, 5, 5))], kernel_shape=[3, 3],
                               strides=[2, 2], pads=[1, 1, 1, 1]))
    add('MaxPool-ceil', single('MaxPool', [X(f32(1, 2, 6, 6))], kernel_shape=[3, 3],
                               strides=[2, 2], ceil_mode=1))
    add('MaxPool-ceil-pads', single('MaxPool', [X(f32(1, 2, 6, 7))], kernel_shape=[3, 3],
                                    strides=[2, 2], pads=[1, 1, 1, 1], ceil_mode=1))
    add('MaxPool-asymmetric-pads', single('MaxPool', [X(f32(1, 2, 5, 5))],
                                          kernel_shape=[2, 2], pads=[0, 1, 1, 0]))
    add('AveragePool', single('AveragePool', [X(f32(2, 3, 6, 6))], kernel_shape=[2, 2],
                              strides=[2, 2]))
    add('AveragePool-pads-counted', single('AveragePool', [X(f32(1, 2, 5, 5))],
                                           kernel_shape=[3, 3], strides=[2, 2],
                                           pads=[1, 1, 1, 1], count_include_pad=1))
    add('AveragePool-pads-not-counted', single('AveragePool', [X(f32(1, 2, 5, 5))],
                                               kernel_shape=[3, 3], strides=[2, 2],
                                               pads=[1, 1, 1, 1]))
    add('AveragePool-ceil', single('AveragePool', [X(f32(1, 2, 6, 6))], kernel_shape=[3, 3],
                                   strides=[2, 2], ceil_mode=1))
    add('AveragePool-ceil-pads-counted', single('AveragePool', [X(f32(1, 2, 6, 7))],
                                                kernel_shape=[3, 3], strides=[2, 2],
                                                pads=[1, 1, 1, 1], ceil_mode=1,
                                                count_include_pad=1))
    add('GlobalAveragePool', single('GlobalAveragePool', [X(f32(2, 3, 4, 5))]))
    add('GlobalMaxPool', single('GlobalMaxPool', [X(f32(2, 3, 4, 5))]))
    bn_args = [I(positive(3)), I(f32(3)), I(f32(3)), I(positive(3))]
    add('BatchNormalization', single('BatchNormalization', [X(f32(2, 3, 4, 4))] + bn_args,
                                     epsilon=1e-3))
    add('BatchNormalization-2d', single('BatchNormalization', [X(f32(4, 3))] + bn_args))
    add('BatchNormalization-3d', single('BatchNormalization', [X(f32(2, 3, 5))] + bn_args))
    add('Dropout', single('Dropout', [X(f32(2, 3)), I(np.array(0.3, np.float32))]))
    add('Constant', single('Constant', [], value=numpy_helper.from_array(f32(2, 3))))
    add('Constant-ints', single('Constant', [], value_ints=[1, 2, 3]))
    add('Shape', single('Shape', [X(f32(2, 3, 4))], start=1))
    add('ConstantOfShape', single('ConstantOfShape', [I(i64([2, 3]))],
                                  value=numpy_helper.from_array(np.array([1.5], np.float32))))
    labels = X(i64([0, 3, 1, 4]))
    for reduction in ('mean', 'sum', 'none'):
        add(f'SoftmaxCrossEntropyLoss-{reduction}',
            single('SoftmaxCrossEntropyLoss', [X(f32(4, 5)), labels], reduction=reduction))
    add('SoftmaxCrossEntropyLoss-log-prob',
        single('SoftmaxCrossEntropyLoss', [X(f32(4, 5)), labels], outputs=2))
    # The chain PyTorch writes for x.view(x.size(0), -1): shape arithmetic on constants.
    view = [helper.make_node('Shape', ['x'], ['s']),
            helper.make_node('Gather', ['s', 'zero'], ['n'], axis=0),
            helper.make_node('Unsqueeze', ['n', 'zero1'], ['n1']),
            helper.make_node('Concat', ['n1', 'minus1'], ['shape'], axis=0),
            helper.make_node('Reshape', ['x', 'shape'], ['y'])]
    add('view-chain', (view, {'x': f32(2, 3, 4)},
                       {'zero': i64(0), 'zero1': i64([0]), 'minus1': i64([-1])}, ['y']))

    # Integers keep their dtype, as ONNX: Div truncates toward zero, Clip, ReduceSum and
    # ReduceMean stay int32 (the mean truncated, as onnxruntime computes it).
    int_div = [helper.make_node('Cast', ['x'], ['xi'], to=TensorProto.INT64),
               helper.make_node('Div', ['xi', 'two'], ['q']),
               helper.make_node('Cast', ['q'], ['y'], to=TensorProto.FLOAT),
               helper.make_node('Div', ['xi', 'xi'], ['one'])]
    add('Div-int-of-a-variable-truncates',
        (int_div, {'x': np.array([[-7.5, 7.2, 5.9, -3.1]], np.float32)}, {'two': i64(2)},
         ['y', 'one']))
    int32 = np.array([[-3, -2, 1], [0, 1, 1], [7, -9, 100]], np.int32)
    add('Clip-int-min-only', single('Clip', [X(int32), I(np.array(0, np.int32))]))
    add('Clip-int-max-only', single('Clip', [X(int32), None, I(np.array(1, np.int32))]))
    add('ReduceSum-int32', single('ReduceSum', [X(int32), I(i64([1]))]))
    add('ReduceMean-int32-truncates', single('ReduceMean', [X(int32)], axes=[1]), BEFORE_18)
    add('ReduceMean-int32-truncates', single('ReduceMean', [X(int32), I(i64([1]))]), FROM_18)
    add('ReduceMean-int32-all', single('ReduceMean', [X(int32)], keepdims=0))

    # Ops that zerograd.onnx.export writes.
    ties = np.array([[0.5, -1.0, 2.0], [0.0, 3.0, -2.0]], np.float32)
    for op in ('Greater', 'Less', 'Equal'):
        add(op, single(op, [X(ties), I(np.array([0.5, 3.0, -2.0], np.float32))]))
    where = [helper.make_node('Greater', ['x', 'zero'], ['positive']),
             helper.make_node('Where', ['positive', 'x', 'b'], ['y'])]
    add('Where-broadcast', (where, {'x': f32(2, 3)},
                            {'zero': np.zeros((), np.float32), 'b': f32(3)}, ['y']))
    for op in ('Max', 'Min'):
        add(f'{op}-broadcast', single(op, [X(ties), I(np.array([0.5, 3.0, -2.0], np.float32))]))
        add(f'{op}-three-inputs', single(op, [X(f32(2, 3)), X(f32(2, 1)), I(f32(3))]))
        add(f'{op}-int', single(op, [X(int32), I(np.array(0, np.int32))]))
    add('Pad', single('Pad', [X(f32(1, 2, 3, 3)), I(i64([0, 0, 1, 2, 0, 0, 2, 1]))]))
    add('Pad-value-and-negative', single('Pad', [X(f32(2, 4)), I(i64([1, -1, -1, 2])),
                                                 I(np.array(1.5, np.float32))]))
    add('Pad-axes', single('Pad', [X(f32(2, 3, 4)), I(i64([1, 0, 0, 3])), None,
                                   I(i64([-1, 0]))]), FROM_18)
    add('Pad-int', single('Pad', [X(int32), I(i64([1, 1, 0, 0])), I(np.array(7, np.int32))]))
    for stride, pads in ((1, [0, 0, 0, 0]), (2, [1, 1, 1, 1]), (1, [1, 0, 0, 2])):
        # image 5 x 6, blocks 3 x 2
        out = [(5 + pads[0] + pads[2] - 3) // stride + 1,
               (6 + pads[1] + pads[3] - 2) // stride + 1]
        add(f'Col2Im-stride{stride}-pads{"".join(map(str, pads))}',
            single('Col2Im', [X(f32(2, 2 * 3 * 2, out[0] * out[1])), I(i64([5, 6])),
                              I(i64([3, 2]))], strides=[stride, stride], pads=pads), FROM_18)
    return c


@pytest.mark.parametrize('parts, opset', _cases())
def test_each_op_matches_onnxruntime(parts, opset):
    assert_same(*run_both(parts, opset))


def test_where_max_min_and_pad_pass_their_gradients_to_the_values_they_pick():
    x = np.array([[1.0, -2.0, np.inf], [0.5, -np.inf, 3.0]])
    c = np.array([0.5, -1.0, 2.0])
    for op, picked in (('Max', x >= c), ('Min', x <= c)):
        model = zerograd.onnx.load(make_model(*single(op, [X(x), I(c)]), 17))
        y = model(zerograd.Variable(x))
        np.testing.assert_array_equal(y.data, np.maximum(x, c) if op == 'Max'
                                      else np.minimum(x, c))
        y.backward()   # ties go to the first input
        np.testing.assert_array_equal(model.inputs[0]().grad.data, picked * 1.0)
        np.testing.assert_array_equal(model.in1.grad.data, (~picked).sum(axis=0))
    pad = zerograd.onnx.load(make_model(*single('Pad', [X(x), I(i64([1, -1, 0, 2]))]), 17))
    xv = zerograd.Variable(x)
    y = pad(xv)
    assert y.shape == (3, 4)
    y.backward()
    np.testing.assert_array_equal(xv.grad.data, [[0, 1, 1], [0, 1, 1]])


def test_float_indices_are_a_type_error_in_gather_and_gather_nd():
    for op in ('Gather', 'GatherND'):
        model = zerograd.onnx.load(make_model(
            *single(op, [X(f32(3, 2)), I(np.array([[1.0]], np.float32))]), 17))
        with pytest.raises(TypeError, match=rf'\({op}\): indices must be integers, got '
                                            'float32'):
            model(f32(3, 2))


def test_what_export_writes_for_leaky_relu_im2col_and_col2im_loads_back():
    cases = [(lambda x: F.leaky_relu(x, slope=0.2), rng.standard_normal((2, 5)), 17),
             (lambda x: F.im2col(x, 3, stride=2, pad=1), f32(2, 3, 5, 6), 17),
             (lambda x: F.im2col(x, 2, pad=1, to_matrix=False), f32(1, 2, 3, 4), 17),
             (lambda x: F.col2im(x, (2, 3, 5, 6), 3, stride=2, pad=1), f32(2 * 3 * 3, 27), 18),
             (lambda x: F.col2im(x, (1, 2, 4, 4), 2, to_matrix=False), f32(1, 2, 2, 2, 3, 3),
              18)]
    for fn, x, opset in cases:
        expected = fn(x)
        # col2im's input_shape is a Python tuple: fixed sizes
        proto = zerograd.onnx.export(fn, x, opset=opset,
                                     dynamic_axes={} if opset == 18 else None)
        ops = {node.op_type for node in proto.graph.node}
        model = zerograd.onnx.load(proto)
        with zerograd.test_mode():
            y = model(x)
        assert y.dtype == expected.dtype and y.shape == expected.shape, ops
        np.testing.assert_allclose(y.data, expected.data, rtol=1e-5, atol=1e-6, err_msg=ops)
        xv = zerograd.Variable(x)
        model(xv).backward()   # differentiable: im2col's and col2im's adjoints
        gx = zerograd.Variable(x)
        fn(gx).backward()
        np.testing.assert_allclose(xv.grad.data, gx.grad.data, rtol=1e-5, atol=1e-6)


def test_pad_refuses_reflect_and_edge_modes():
    for mode in ('reflect', 'edge', 'wrap'):
        parts = single('Pad', [X(f32(2, 3)), I(i64([1, 1, 1, 1]))], mode=mode, name='p')
        with pytest.raises(NotImplementedError, match=rf"node 0 'p' \(Pad\): attribute "
                                                      rf"mode='{mode}' is not supported"):
            zerograd.onnx.load(make_model(*parts, 19))


def test_gather_of_ids_from_a_graph_input_gives_the_weight_rows_their_gradient():
    W = f32(5, 3)
    model = zerograd.onnx.load(make_model(
        [helper.make_node('Gather', ['W', 'ids'], ['y'])], {'ids': i64([0, 0, 2])},
        {'W': W}, ['y'], 17))
    y = model(i64([0, 0, 2]))
    np.testing.assert_array_equal(y.data, W[[0, 0, 2]])
    y.backward()
    expected = np.zeros_like(W)
    expected[0], expected[2] = 2, 1
    np.testing.assert_array_equal(model.W.grad.data, expected)


# =============================================================================
# The Model: parameters, gradients, training
# =============================================================================
def _mlp_model(dtype=np.float32, opset=17):
    W1, b1 = rng.standard_normal((3, 4)).astype(dtype), rng.standard_normal(4).astype(dtype)
    W2 = rng.standard_normal((2, 4)).astype(dtype)
    nodes = [helper.make_node('MatMul', ['x', 'layer1.W'], ['h']),
             helper.make_node('Add', ['h', 'layer1.b'], ['a']),
             helper.make_node('Tanh', ['a'], ['t']),
             helper.make_node('Gemm', ['t', 'fc.weight'], ['y'], transB=1),
             helper.make_node('ReduceSum', ['y', 'axes'], ['s'], keepdims=0)]
    return make_model(nodes, {'x': np.zeros((2, 3), dtype)},
                      {'layer1.W': W1, 'layer1.b': b1, 'fc.weight': W2,
                       'axes': i64([1])}, ['y', 's'], opset)


def test_float_initializers_become_named_parameters_and_integers_stay_constants():
    model = zerograd.onnx.load(_mlp_model())
    assert isinstance(model, zerograd.models.Model)
    assert sorted(model.named_params()) == ['fc_weight', 'layer1_W', 'layer1_b']
    assert sorted(model.onnx_names) == ['fc.weight', 'layer1.W', 'layer1.b']
    assert model.onnx_names['fc.weight'] is model.fc_weight
    assert all(isinstance(p, zerograd.Parameter) for p in model.params())
    assert model.input_names == ['x'] and model.output_names == ['y', 's']
    y, s = model(f32(2, 3))
    assert y.shape == (2, 2) and s.shape == (2,)


def test_parameter_names_are_identifiers_and_unique():
    nodes = [helper.make_node('Add', ['x', 'a.b'], ['t']),
             helper.make_node('Add', ['t', 'a_b'], ['u']),
             helper.make_node('Add', ['u', 'forward'], ['v']),
             helper.make_node('Add', ['v', '0/w'], ['y'])]
    inits = {name: f32(3) for name in ('a.b', 'a_b', 'forward', '0/w')}
    model = zerograd.onnx.load(make_model(nodes, {'x': f32(3)}, inits, ['y'], 17))
    names = sorted(model.named_params())
    assert len(set(names)) == 4 and all(n.isidentifier() for n in names)
    assert callable(model.forward)
    np.testing.assert_allclose(model(np.zeros(3, np.float32)).data,
                               sum(inits.values()), rtol=1e-6)


def test_initializers_named_as_model_attributes_are_parameters_and_train():
    taken = ('inputs', 'outputs', 'input_names', 'output_names', 'opset', 'onnx_names',
             'forward', 'params')
    nodes, previous = [], 'x'
    for k, name in enumerate(taken):
        nodes.append(helper.make_node('Mul' if k % 2 else 'Add', [previous, name], [f't{k}']))
        previous = f't{k}'
    nodes.append(helper.make_node('ReduceSum', [previous], ['y'], keepdims=0))
    inits = {name: positive(3) for name in taken}
    model = zerograd.onnx.load(make_model(nodes, {'x': f32(3)}, inits, ['y'], 17))
    assert model.input_names == ['x'] and model.output_names == ['y']
    assert model.opset == 17 and callable(model.forward) and callable(model.params)
    params = list(model.params())
    assert len(params) == len(taken)
    assert all(any(p is model.onnx_names[name] for p in params) for name in taken)
    before = {name: model.onnx_names[name].data.copy() for name in taken}
    optimizer = SGD(lr=0.1).setup(model)
    for _ in range(2):   # the second step runs after Layer.__call__ set inputs/outputs
        model.cleargrads()
        model(f32(3)).backward()
        optimizer.update()
    for name in taken:
        assert not np.array_equal(model.onnx_names[name].data, before[name]), name


def _central_difference(fn, array, eps=1e-6):
    grad = np.zeros_like(array)
    flat, g = array.reshape(-1), grad.reshape(-1)
    for k in range(flat.size):
        original = flat[k]
        flat[k] = original + eps
        plus = fn()
        flat[k] = original - eps
        minus = fn()
        flat[k] = original
        g[k] = (plus - minus) / (2 * eps)
    return grad


def _check_gradients(model, inputs, untrained=()):
    def loss():
        ys = model(*inputs)
        ys = ys if isinstance(ys, tuple) else (ys,)
        return sum(float((y.data * weight).sum()) for y, weight in zip(ys, weights))

    with zerograd.test_mode():
        inputs_v = [zerograd.Variable(x) for x in inputs]
        ys = model(*inputs_v)
        ys = ys if isinstance(ys, tuple) else (ys,)
        weights = [rng.standard_normal(y.shape) for y in ys]
        total = sum(F.sum(y * w) for y, w in zip(ys, weights))
        model.cleargrads()
        total.backward()
        for name, param in model.onnx_names.items():
            if name in untrained:
                assert param.grad is None, name
                continue
            expected = _central_difference(loss, param.data)
            np.testing.assert_allclose(param.grad.data, expected, rtol=1e-5, atol=1e-6,
                                       err_msg=name)
        for x, v in zip(inputs, inputs_v):
            np.testing.assert_allclose(v.grad.data, _central_difference(loss, x),
                                       rtol=1e-5, atol=1e-6)


def test_gradients_of_a_loaded_mlp_match_central_differences():
    _check_gradients(zerograd.onnx.load(_mlp_model(np.float64)), [rng.standard_normal((2, 3))])


def test_gradients_through_conv_ceil_pooling_and_batch_norm_match_central_differences():
    nodes = [helper.make_node('Conv', ['x', 'conv.W', 'conv.b'], ['c'], pads=[1, 1, 1, 1]),
             helper.make_node('MaxPool', ['c'], ['p'], kernel_shape=[2, 2], strides=[2, 2],
                              ceil_mode=1),
             helper.make_node('BatchNormalization', ['p', 'bn.g', 'bn.b', 'bn.m', 'bn.v'],
                              ['n']),
             helper.make_node('AveragePool', ['n'], ['y'], kernel_shape=[2, 2],
                              pads=[1, 1, 1, 1])]
    inits = {'conv.W': rng.standard_normal((2, 1, 3, 3)), 'conv.b': rng.standard_normal(2),
             'bn.g': rng.uniform(0.5, 2, 2), 'bn.b': rng.standard_normal(2),
             'bn.m': rng.standard_normal(2), 'bn.v': rng.uniform(0.5, 2, 2)}
    model = zerograd.onnx.load(make_model(nodes, {'x': np.zeros((2, 1, 5, 5))}, inits,
                                          ['y'], 17))
    _check_gradients(model, [rng.standard_normal((2, 1, 5, 5))], untrained=('bn.m', 'bn.v'))


def test_one_sgd_step_changes_the_parameters_by_their_gradients():
    model = zerograd.onnx.load(_mlp_model())
    before = {name: p.data.copy() for name, p in model.onnx_names.items()}
    y, _ = model(f32(2, 3))
    loss = F.average(y * y)
    model.cleargrads()
    loss.backward()
    grads = {name: p.grad.data.copy() for name, p in model.onnx_names.items()}
    SGD(lr=0.1).setup(model).update()
    for name, p in model.onnx_names.items():
        assert np.abs(grads[name]).max() > 0
        np.testing.assert_allclose(p.data, before[name] - 0.1 * grads[name], rtol=1e-6)


def test_batch_norm_in_training_uses_batch_statistics_and_updates_the_running_ones():
    mean, var = f32(3), positive(3)
    parts = single('BatchNormalization', [X(f32(4, 3, 2, 2)), I(positive(3)), I(f32(3)),
                                          I(mean.copy()), I(var.copy())], momentum=0.8)
    model = zerograd.onnx.load(make_model(*parts, 17))
    x = f32(4, 3, 2, 2)
    y = model(x)                                     # Config.train is True
    gamma, beta = model.onnx_names['in1'].data, model.onnx_names['in2'].data
    mu, sigma2 = x.mean(axis=(0, 2, 3)), x.var(axis=(0, 2, 3))
    expected = (gamma[:, None, None] * (x - mu[:, None, None])
                / np.sqrt(sigma2[:, None, None] + 1e-5) + beta[:, None, None])
    np.testing.assert_allclose(y.data, expected, rtol=1e-4, atol=1e-5)
    np.testing.assert_allclose(model.onnx_names['in3'].data, 0.8 * mean + 0.2 * mu, rtol=1e-5)
    unbiased = sigma2 * 16 / 15
    np.testing.assert_allclose(model.onnx_names['in4'].data, 0.8 * var + 0.2 * unbiased,
                               rtol=1e-5)
    assert model.onnx_names['in3'].grad is None   # running statistics are not trained


def test_running_statistics_read_through_identity_are_the_models_own_copies():
    # PyTorch's exporter writes Identity(bn.weight) -> bn.running_var when the two hold
    # equal values (a fresh BatchNorm2d): training must update the statistic, not bn.weight.
    nodes = [helper.make_node('Identity', ['bn.weight'], ['bn.running_var']),
             helper.make_node('Identity', ['bn.bias'], ['bn.running_mean']),
             helper.make_node('BatchNormalization', ['x', 'bn.weight', 'bn.bias',
                                                     'bn.running_mean', 'bn.running_var'],
                              ['y'])]
    model = zerograd.onnx.load(make_model(
        nodes, {'x': f32(4, 3)}, {'bn.weight': np.ones(3, np.float32),
                                  'bn.bias': np.zeros(3, np.float32)}, ['y'], 17))
    x = f32(4, 3)
    model(x)
    np.testing.assert_array_equal(model.onnx_names['bn.weight'].data, np.ones(3))
    np.testing.assert_array_equal(model.onnx_names['bn.bias'].data, np.zeros(3))
    np.testing.assert_allclose(model.onnx_names['bn.running_mean'].data, 0.1 * x.mean(axis=0),
                               rtol=1e-5, atol=1e-7)
    np.testing.assert_allclose(model.onnx_names['bn.running_var'].data,
                               0.9 + 0.1 * x.var(axis=0, ddof=1), rtol=1e-5)


def test_several_graph_outputs_are_a_tuple_and_inputs_are_checked():
    model = zerograd.onnx.load(_mlp_model())
    assert isinstance(model(f32(2, 3)), tuple)
    with pytest.raises(TypeError, match=r"takes 1 inputs \['x'\], got 2"):
        model(f32(2, 3), f32(2, 3))
    with pytest.raises(ValueError, match=r"input 0 \('x'\) must have shape \(2, 3\)"):
        model(f32(2, 4))
    with pytest.raises(TypeError, match='input 0 .* must be float32, as the graph declares, '
                                        'got int64'):
        model(np.zeros((2, 3), np.int64))


def test_inputs_of_another_dtype_than_declared_are_refused_as_onnxruntime_does():
    model = zerograd.onnx.load(make_model(*single('Relu', [X(f32(2, 3))]), 17))
    for given in (np.zeros((2, 3)), zerograd.Variable(np.zeros((2, 3))),
                  np.zeros((2, 3), np.float16)):
        with pytest.raises(TypeError, match=r"input 0 \('in0'\) must be float32, as the "
                                            r'graph declares, got float(64|16)'):
            model(given)
    ids = zerograd.onnx.load(make_model(*single('Gather', [I(f32(5, 3)), X(i64([1]))]), 17))
    with pytest.raises(TypeError, match='must be int64, as the graph declares, got int32'):
        ids(np.array([1], np.int32))


def test_dropout_drops_in_training_and_is_the_identity_in_test_mode():
    parts = single('Dropout', [X(np.ones((50, 40), np.float32)),
                               I(np.array(0.5, np.float32))])
    model = zerograd.onnx.load(make_model(*parts, 17))
    x = np.ones((50, 40), np.float32)
    with zerograd.test_mode():
        np.testing.assert_array_equal(model(x).data, x)
    y = model(x).data
    assert set(np.unique(y)) == {0.0, 2.0}


def test_a_model_from_a_file_path_matches_onnxruntime(tmp_path):
    path = tmp_path / 'mlp.onnx'
    onnx.save_model(_mlp_model(), str(path))
    x = f32(2, 3)
    expected = ort.InferenceSession(str(path), providers=['CPUExecutionProvider']).run(
        None, {'x': x})
    with zerograd.test_mode():
        actual = zerograd.onnx.load(path)(x)
    assert_same(expected, [y.data for y in actual])


def test_external_data_inside_the_folder_is_read(tmp_path):
    nodes = [helper.make_node('Gemm', ['x', 'fc.weight', 'fc.bias'], ['y'], transB=1)]
    model = make_model(nodes, {'x': f32(2, 3)}, {'fc.weight': f32(4, 3), 'fc.bias': f32(4)},
                       ['y'], 17)
    path = tmp_path / 'ext.onnx'
    onnx.save_model(model, str(path), save_as_external_data=True, location='weights.bin',
                    size_threshold=0)
    assert (tmp_path / 'weights.bin').exists()
    x = f32(2, 3)
    expected = ort.InferenceSession(str(path), providers=['CPUExecutionProvider']).run(
        None, {'x': x})
    with zerograd.test_mode():
        actual = zerograd.onnx.load(str(path))(x)
    assert_same(expected, [actual.data])


# =============================================================================
# Untrusted files
# =============================================================================
def _external_model(tmp_path, location, offset=0, length=None, data=None):
    """A model whose one initializer W (3, 4) float32 is external, at location."""
    tensor = TensorProto(name='W', data_type=TensorProto.FLOAT, dims=[3, 4])
    tensor.data_location = TensorProto.EXTERNAL
    entries = {'location': location, 'offset': str(offset)}
    if length is not None:
        entries['length'] = str(length)
    for key, value in entries.items():
        tensor.external_data.add(key=key, value=value)
    graph = helper.make_graph([helper.make_node('MatMul', ['x', 'W'], ['y'])], 'g',
                              [helper.make_tensor_value_info('x', TensorProto.FLOAT, [2, 3])],
                              [helper.make_empty_tensor_value_info('y')], [tensor])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid('', 17)],
                              ir_version=8)
    path = tmp_path / 'model' / 'm.onnx'
    path.parent.mkdir(exist_ok=True)
    path.write_bytes(model.SerializeToString())
    return path


def test_external_data_outside_the_folder_is_refused(tmp_path):
    secret = tmp_path / 'secret.bin'
    secret.write_bytes(np.zeros(12, np.float32).tobytes())
    for location in ('../secret.bin', str(secret), 'sub/../../secret.bin'):
        path = _external_model(tmp_path, location)
        with pytest.raises(ValueError, match="relative path inside the model's folder"):
            zerograd.onnx.load(path)


def test_external_data_through_a_symbolic_link_out_of_the_folder_is_refused(tmp_path):
    secret = tmp_path / 'secret.bin'
    secret.write_bytes(np.zeros(12, np.float32).tobytes())
    path = _external_model(tmp_path, 'link.bin')
    os.symlink(secret, path.parent / 'link.bin')
    with pytest.raises(ValueError, match="outside the model's folder"):
        zerograd.onnx.load(path)


def test_external_data_beyond_its_file_or_of_the_wrong_length_is_refused(tmp_path):
    path = _external_model(tmp_path, 'w.bin', offset=8)
    (path.parent / 'w.bin').write_bytes(np.zeros(12, np.float32).tobytes())
    with pytest.raises(ValueError, match=r'offset 8, length 48 does not fit.*holds 48'):
        zerograd.onnx.load(path)
    path = _external_model(tmp_path, 'w.bin', length=4)
    with pytest.raises(ValueError, match='length 4 does not fit: the tensor takes 48 bytes'):
        zerograd.onnx.load(path)
    path = _external_model(tmp_path, 'missing.bin')
    with pytest.raises(ValueError, match="external data file 'missing.bin' does not exist"):
        zerograd.onnx.load(path)


def test_external_data_in_a_model_given_as_bytes_is_refused(tmp_path):
    path = _external_model(tmp_path, 'w.bin')
    with pytest.raises(ValueError, match='load the model from its path'):
        zerograd.onnx.load(path.read_bytes())


def _model_with_tensor(tensor):
    graph = helper.make_graph([helper.make_node('Add', ['x', tensor.name], ['y'])], 'g',
                              [helper.make_tensor_value_info('x', TensorProto.FLOAT, None)],
                              [helper.make_empty_tensor_value_info('y')], [tensor])
    return helper.make_model(graph, opset_imports=[helper.make_opsetid('', 17)],
                             ir_version=8)


def test_absurd_or_inconsistent_initializer_dims_are_refused_before_allocating():
    huge = TensorProto(name='W', data_type=TensorProto.FLOAT, dims=[2 ** 20, 2 ** 20])
    with pytest.raises(ValueError, match=r"tensor 'W' of dims \[1048576, 1048576\] would "
                                         r'take 4398046511104 bytes, more than'):
        zerograd.onnx.load(_model_with_tensor(huge))
    negative = TensorProto(name='W', data_type=TensorProto.FLOAT, dims=[-1, 3])
    with pytest.raises(ValueError, match=r'negative dims \[-1, 3\]'):
        zerograd.onnx.load(_model_with_tensor(negative))
    short = TensorProto(name='W', data_type=TensorProto.FLOAT, dims=[1000, 1000],
                        raw_data=b'\0' * 16)
    with pytest.raises(ValueError, match='needs 4000000 bytes, the file holds 16'):
        zerograd.onnx.load(_model_with_tensor(short))
    few = TensorProto(name='W', data_type=TensorProto.FLOAT, dims=[100], float_data=[1.0])
    with pytest.raises(ValueError, match='needs 100 values, the file holds 1'):
        zerograd.onnx.load(_model_with_tensor(few))
    empty_but_huge = TensorProto(name='W', data_type=TensorProto.FLOAT, dims=[0, 2 ** 62])
    with pytest.raises(ValueError, match=r"load: .*tensor 'W' of dims \[0, 4611686018427387904\] "
                                         'is too large: the dims other than 0'):
        zerograd.onnx.load(_model_with_tensor(empty_but_huge))


def test_unsupported_ops_are_refused_before_any_tensor_is_read(tmp_path):
    tensor = TensorProto(name='W', data_type=TensorProto.FLOAT, dims=[2 ** 20, 2 ** 20])
    graph = helper.make_graph([helper.make_node('Einsum', ['x', 'W'], ['y'], equation='i,i')],
                              'g', [helper.make_tensor_value_info('x', TensorProto.FLOAT, None)],
                              [helper.make_empty_tensor_value_info('y')], [tensor])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid('', 17)],
                              ir_version=8)
    with pytest.raises(NotImplementedError, match="op type 'Einsum' is not supported"):
        zerograd.onnx.load(model)
    path = _external_model(tmp_path, '../outside.bin')
    model = onnx.load(str(path), load_external_data=False)
    model.graph.node[0].attribute.append(helper.make_attribute('mystery', 1))
    with pytest.raises(NotImplementedError, match="attribute 'mystery' is not supported"):
        zerograd.onnx.load(model)


def test_external_data_errors_name_the_location_and_what_is_wrong(tmp_path):
    path = _external_model(tmp_path, 'w\x00.bin')
    with pytest.raises(ValueError, match=r"external data location 'w\\x00.bin' holds a NUL"):
        zerograd.onnx.load(path)
    path = _external_model(tmp_path, 'w.bin', offset='eight')
    (path.parent / 'w.bin').write_bytes(np.zeros(12, np.float32).tobytes())
    with pytest.raises(ValueError, match="external data offset 'eight' must be an integer$"):
        zerograd.onnx.load(path)


def test_absurd_run_time_shapes_are_refused_before_allocating():
    parts = single('Expand', [X(f32(1, 1)), I(i64([2 ** 31, 2 ** 31]))])
    model = zerograd.onnx.load(make_model(*parts, 17))
    with pytest.raises(ValueError, match=r'Expand\): shape .* would take .* bytes, more '
                                         r'than the 4294967296 allowed'):
        model(f32(1, 1))
    parts = single('ConstantOfShape', [X(i64([2 ** 40]))])
    model = zerograd.onnx.load(make_model(*parts, 17))
    with pytest.raises(ValueError, match=r'ConstantOfShape\): shape .* would take'):
        model(i64([2 ** 40]))


def test_the_file_run_time_allocations_have_a_total_budget_per_forward(monkeypatch):
    from zerograd.onnx import load_ops
    # Each ConstantOfShape is under MAX_BYTES; ten of them are not under MAX_RUN_BYTES.
    nodes = [helper.make_node('ConstantOfShape', ['shape'], [f'c{k}'], name=f'c{k}')
             for k in range(10)]
    nodes.append(helper.make_node('Concat', [f'c{k}' for k in range(10)], ['y'], axis=0))
    model = zerograd.onnx.load(make_model(nodes, {}, {'shape': i64([2 ** 30])}, ['y'], 17))
    monkeypatch.setattr(load_ops, 'MAX_RUN_BYTES', 2 * 4 * 2 ** 30)
    allocated = []
    real_full = np.full   # replaced while the big model runs: the test allocates nothing
    monkeypatch.setattr(load_ops.np, 'full', lambda shape, *a, **k: allocated.append(shape)
                        or real_full(1, *a, **k))   # the sizes asked for, not the memory
    with pytest.raises(ValueError, match=r"node 2 'c2' \(ConstantOfShape\): shape "
                                         r'\(1073741824,\) of float32 would bring the arrays '
                                         r'whose sizes the file sets to 12884901888 bytes in '
                                         r'this forward, more than the 8589934592 allowed'):
        model()
    assert len(allocated) == 2   # refused before the third was made
    # The budget is per forward: small ones run again and again.
    monkeypatch.setattr(load_ops.np, 'full', real_full)
    monkeypatch.setattr(load_ops, 'MAX_RUN_BYTES', 10 * 4 * 3)
    small = zerograd.onnx.load(make_model(nodes, {}, {'shape': i64([3])}, ['y'], 17))
    for _ in range(3):
        assert small().shape == (30,)
    monkeypatch.setattr(load_ops, 'MAX_RUN_BYTES', 10 * 4 * 3 - 1)
    with pytest.raises(ValueError, match=r"node 9 'c9'.* more than the 119 allowed"):
        small()
    # Pad, Conv pads, Col2Im and Expand count too.
    monkeypatch.setattr(load_ops, 'MAX_RUN_BYTES', 1000)
    cases = [single('Pad', [X(f32(1, 1)), I(i64([0, 0, 0, 300]))]),
             single('Conv', [X(f32(1, 1, 2, 2)), I(f32(1, 1, 1, 1))], pads=[8, 8, 8, 8]),
             single('Expand', [X(f32(1, 1)), I(i64([30, 10]))]),
             single('Col2Im', [X(f32(1, 1, 1)), I(i64([20, 20])), I(i64([20, 20]))])]
    cases[-1][1]['in0'] = f32(1, 400, 1)
    for parts in cases:
        opset = 18 if parts[0][0].op_type == 'Col2Im' else 17
        model = zerograd.onnx.load(make_model(*parts, opset))
        with pytest.raises(ValueError, match=rf'\({parts[0][0].op_type}\): .* more than the '
                                             '1000 allowed'):
            model(*parts[1].values())


def _graph_model(nodes, outputs=('y',), opset=17, domain=''):
    graph = helper.make_graph(nodes, 'g',
                              [helper.make_tensor_value_info('x', TensorProto.FLOAT, None)],
                              [helper.make_empty_tensor_value_info(o) for o in outputs])
    return helper.make_model(graph, opset_imports=[helper.make_opsetid(domain, opset)],
                             ir_version=8)


def test_cycles_unsorted_and_undefined_inputs_are_refused():
    cycle = [helper.make_node('Relu', ['b'], ['a'], name='first'),
             helper.make_node('Relu', ['a'], ['b']),
             helper.make_node('Relu', ['b'], ['y'])]
    with pytest.raises(ValueError, match=r"node 0 'first' \(Relu\) reads 'b', which no graph "
                                         r'input, initializer or earlier node defines'):
        zerograd.onnx.load(_graph_model(cycle))
    unsorted = [helper.make_node('Relu', ['a'], ['y']), helper.make_node('Relu', ['x'], ['a'])]
    with pytest.raises(ValueError, match="reads 'a', which no graph input"):
        zerograd.onnx.load(_graph_model(unsorted))
    undefined = [helper.make_node('Add', ['x', 'nowhere'], ['y'])]
    with pytest.raises(ValueError, match="reads 'nowhere'"):
        zerograd.onnx.load(_graph_model(undefined))


def test_names_defined_twice_and_undefined_outputs_are_refused():
    twice = [helper.make_node('Relu', ['x'], ['y']), helper.make_node('Relu', ['x'], ['y'])]
    with pytest.raises(ValueError, match=r"node 1 \(unnamed, output \['y'\]\) \(Relu\) "
                                         r"defines 'y', which is already defined"):
        zerograd.onnx.load(_graph_model(twice))
    with pytest.raises(ValueError, match="graph output 'z' is not defined"):
        zerograd.onnx.load(_graph_model([helper.make_node('Relu', ['x'], ['y'])], ('y', 'z')))


def test_bytes_that_are_not_an_onnx_model_are_refused_naming_the_file(tmp_path):
    for content in (b'\xff\xfe garbage \x00\x01' * 10, b'hello world, not a model',
                    np.random.default_rng(1).bytes(256), b''):
        path = tmp_path / 'garbage.onnx'
        path.write_bytes(content)
        with pytest.raises(ValueError, match=f'load: {str(path)!r} is not an ONNX model'):
            zerograd.onnx.load(str(path))
    with pytest.raises(TypeError, match='expected a path, bytes or an onnx.ModelProto'):
        zerograd.onnx.load(42)


def test_unsupported_ops_domains_and_opsets_are_refused():
    node = helper.make_node('Einsum', ['x', 'x'], ['y'], name='mix', equation='i,i->')
    with pytest.raises(NotImplementedError,
                       match=r"node 0 'mix' \(Einsum\): op type 'Einsum' is not supported"):
        zerograd.onnx.load(_graph_model([node]))
    custom = helper.make_node('Relu', ['x'], ['y'], domain='com.example')
    model = _graph_model([custom])
    model.opset_import.append(helper.make_opsetid('com.example', 1))
    with pytest.raises(NotImplementedError, match="in domain 'com.example'"):
        zerograd.onnx.load(model)
    with pytest.raises(NotImplementedError, match='uses ai.onnx opset 11; opsets 13 to'):
        zerograd.onnx.load(_graph_model([helper.make_node('Relu', ['x'], ['y'])], opset=11))


def test_unsupported_attributes_are_refused_naming_node_op_and_attribute():
    cases = [
        (helper.make_node('Conv', ['x', 'x'], ['y'], name='c1', dilations=[2, 2]),
         r"node 0 'c1' \(Conv\): attribute dilations=\[2, 2\] is not supported"),
        (helper.make_node('Conv', ['x', 'x'], ['y'], name='c2', pads=[0, 0, 1, 1]),
         r"node 0 'c2' \(Conv\): attribute pads=\[0, 0, 1, 1\] is not supported"),
        (helper.make_node('Conv', ['x', 'x'], ['y'], name='c3', auto_pad='SAME_UPPER'),
         r"\(Conv\): attribute auto_pad='SAME_UPPER' is not supported"),
        (helper.make_node('Relu', ['x'], ['y'], name='r', mystery=1),
         r"node 0 'r' \(Relu\): attribute 'mystery' is not supported for Relu"),
        (helper.make_node('GatherND', ['x', 'x'], ['y'], batch_dims=1),
         r'\(GatherND\): attribute batch_dims=1 is not supported'),
        (helper.make_node('MaxPool', ['x'], ['y', 'indices'], kernel_shape=[2, 2]),
         r"output 1 \('indices'\) of MaxPool is not supported"),
        (helper.make_node('AveragePool', ['x'], ['y'], kernel_shape=[2, 2], dilations=[2, 2]),
         r'\(AveragePool\): attribute dilations=\[2, 2\] is not supported'),
        (helper.make_node('SoftmaxCrossEntropyLoss', ['x', 'x'], ['y'], ignore_index=0),
         r'attribute ignore_index=0 is not supported'),
    ]
    for node, message in cases:
        with pytest.raises(NotImplementedError, match=message):
            zerograd.onnx.load(_graph_model([node], outputs=[node.output[0]]))


def test_conv_transpose_output_shape_needing_uneven_pads_is_refused():
    parts = single('ConvTranspose', [X(f32(1, 3, 4, 4)), I(f32(3, 2, 3, 3))], strides=[2, 2],
                   output_shape=[8, 8], name='up')
    model = zerograd.onnx.load(make_model(*parts, 17))
    with pytest.raises(NotImplementedError, match=r"node 0 'up' \(ConvTranspose\): attribute "
                                                  r'output_shape=\[8, 8\] is not supported'):
        model(f32(1, 3, 4, 4))


def test_a_shape_error_at_run_time_names_the_node():
    model = zerograd.onnx.load(make_model(
        *single('Reshape', [X(f32(2, 3)), I(i64([4, -1]))]), 17))
    with pytest.raises(ValueError, match=r"load: node 0 .*\(Reshape\): reshape: cannot"):
        model(f32(2, 3))


# =============================================================================
# PyTorch interop
# =============================================================================
def test_a_cnn_exported_by_pytorch_matches_it_and_trains_as_it_does():
    torch = pytest.importorskip('torch')
    torch.manual_seed(0)

    class Net(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.conv = torch.nn.Conv2d(1, 4, 3, padding=1)
            self.pool = torch.nn.MaxPool2d(2, ceil_mode=True)
            self.bn = torch.nn.BatchNorm2d(4)
            self.fc = torch.nn.Linear(64, 3)

        def forward(self, x):
            x = self.bn(self.pool(torch.relu(self.conv(x))))   # no conv-bn fusion
            return self.fc(torch.flatten(x, 1))

    net = Net()
    with torch.no_grad():
        net.bn.weight.uniform_(0.5, 1.5)
        net.bn.bias.uniform_(-0.5, 0.5)
        net.bn.running_mean.uniform_(-0.2, 0.2)
        net.bn.running_var.uniform_(0.5, 1.5)
    net.eval()
    buffer = io.BytesIO()
    with warnings.catch_warnings():
        warnings.simplefilter('ignore', DeprecationWarning)   # the legacy exporter's
        torch.onnx.export(net, torch.randn(2, 1, 7, 7), buffer, dynamo=False,
                          opset_version=17, input_names=['x'], output_names=['y'],
                          dynamic_axes={'x': {0: 'batch'}, 'y': {0: 'batch'}})
    model = zerograd.onnx.load(buffer.getvalue())
    assert {'conv.weight', 'conv.bias', 'fc.weight', 'fc.bias', 'bn.weight', 'bn.bias',
            'bn.running_mean', 'bn.running_var'} <= set(model.onnx_names)

    for batch in (1, 2, 5):
        x = np.random.default_rng(batch).standard_normal((batch, 1, 7, 7)).astype(np.float32)
        with torch.no_grad():
            expected = net(torch.from_numpy(x)).numpy()
        with zerograd.test_mode():
            actual = model(x).data
        assert actual.dtype == expected.dtype and actual.shape == expected.shape
        np.testing.assert_allclose(actual, expected, rtol=1e-5, atol=1e-5)

    # One SGD step with the loss mean(y ** 2), in training mode on both sides.
    x = np.random.default_rng(7).standard_normal((5, 1, 7, 7)).astype(np.float32)
    net.train()
    optimizer = torch.optim.SGD(net.parameters(), lr=0.1)
    optimizer.zero_grad()
    (net(torch.from_numpy(x)) ** 2).mean().backward()
    optimizer.step()
    y = model(x)
    model.cleargrads()
    F.average(y * y).backward()
    SGD(lr=0.1).setup(model).update()
    state = net.state_dict()
    for name, param in model.onnx_names.items():
        np.testing.assert_allclose(param.data, state[name].numpy(), rtol=1e-5, atol=1e-5,
                                   err_msg=name)

