"""zerograd.onnx.export, op by op: every case of the op registry (tests/ops.py) exported,
checked by onnx.checker (full_check), run in onnxruntime and compared with zerograd's own
forward in test mode, at opsets 17, 18 and the newest onnxruntime runs. An op that cannot
be exported is in docs/onnx.md's table with its reason, and export refuses it with a
NotImplementedError naming the Function.
"""
import os
import re

import numpy as np
import pytest

onnx = pytest.importorskip('onnx')
ort = pytest.importorskip('onnxruntime')

import zerograd  # noqa: E402
import zerograd.functions as F  # noqa: E402
import zerograd.onnx as zonnx  # noqa: E402
from op_references import case_rng, make_array  # noqa: E402
from ops import DEVICE, GRAD, TORCH, NOT_DIFFERENTIABLE, ALIASES, OPS, case_id, cases  # noqa: E402

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
OPSETS = (17, 18, zonnx.newest_opset())
TOL = dict(rtol=1e-5, atol=1e-5)


def not_exported_table():
    """docs/onnx.md's table of functions export refuses: {name: reason}."""
    with open(os.path.join(ROOT, 'docs', 'onnx.md'), encoding='utf-8') as f:
        text = f.read()
    section = text.split('## Not exported', 1)[1].split('\n## ', 1)[0]
    rows = re.findall(r'^\| `([\w.]+)`[^|]*\| (.+?) \|$', section, flags=re.M)
    return dict(rows)


REFUSED = not_exported_table()


def limits_table():
    """docs/onnx.md's "Exported with limits": {(name, 'opset 17' or 'float64'), ...}."""
    with open(os.path.join(ROOT, 'docs', 'onnx.md'), encoding='utf-8') as f:
        text = f.read()
    section = text.split('## Exported with limits', 1)[1].split('\n## ', 1)[0]
    return set(re.findall(r'^\| `(\w+)` \| (opset \d+|float64|dynamic batch) \|', section,
                          flags=re.M))


LIMITS = limits_table()


def run_onnx(model_proto, arrays):
    session = ort.InferenceSession(model_proto.SerializeToString(),
                                   providers=['CPUExecutionProvider'])
    names = [i.name for i in session.get_inputs()]
    return session.run(None, dict(zip(names, arrays)))


def inputs_of(case, dtype=np.float32):
    rng = case_rng(case.id)
    return [make_array(shape, case.domain, rng).astype(dtype) for shape in case.shapes]


def expected(case, xs):
    with zerograd.test_mode():
        y = case.zerograd()(*[zerograd.Variable(x) for x in xs])
    return y.data


ALL_CASES = [c for c in cases(GRAD) + cases(TORCH) + cases(DEVICE)]
EXPORTED = [c for c in ALL_CASES if c.op not in REFUSED]
REFUSED_CASES = [c for c in ALL_CASES if c.op in REFUSED]


@pytest.mark.parametrize('opset', OPSETS)
@pytest.mark.parametrize('case', EXPORTED, ids=case_id)
def test_each_op_exports_and_matches_onnxruntime(case, opset):
    xs = inputs_of(case)
    if (case.op, f'opset {opset}') in LIMITS:
        with pytest.raises(NotImplementedError, match=f'opset {opset + 1}|opset 18'):
            zonnx.export(case.zerograd(), tuple(xs), opset=opset, dynamic_axes={})
        return
    want = expected(case, xs)
    model = zonnx.export(case.zerograd(), tuple(xs), opset=opset, dynamic_axes={})
    got, = run_onnx(model, xs)
    assert got.dtype == want.dtype and got.shape == want.shape
    np.testing.assert_allclose(got, want, **TOL)


@pytest.mark.parametrize('case', REFUSED_CASES, ids=case_id)
def test_each_op_in_the_table_is_refused_naming_its_function(case):
    xs = inputs_of(case)
    with pytest.raises(NotImplementedError, match=r'zerograd\.onnx\.export: \w+ \(inputs'):
        zonnx.export(case.zerograd(), tuple(xs), dynamic_axes={})


def test_the_table_and_the_registry_cover_every_public_function():
    """Each public function of zerograd.functions is exported by a registry case or listed
    in docs/onnx.md with its reason; each listed name is a real public name."""
    public = {n for n in dir(F) if not n.startswith('_') and n[0].islower()
              and callable(getattr(F, n))}
    with_cases = {c.op for c in EXPORTED}
    missing = public - with_cases - set(REFUSED) - set(ALIASES)
    assert not missing, f'neither exported by a case nor in docs/onnx.md: {sorted(missing)}'
    unknown = set(REFUSED) - public - {n for n in OPS if n[0].isupper()}
    assert not unknown, f'docs/onnx.md lists names that are not public functions: {unknown}'
    # a name with export cases must not also be listed as refused
    assert not (set(REFUSED) & with_cases)
    for name in NOT_DIFFERENTIABLE:  # the non-ops are listed with their reason
        assert name in REFUSED, name


def test_every_forward_function_class_has_a_converter_or_is_refused_as_backward_only():
    from zerograd.core import Function
    from zerograd.onnx import exporter
    seen, stack = set(), [Function]
    while stack:
        for sub in stack.pop().__subclasses__():
            if sub not in seen:
                seen.add(sub)
                stack.append(sub)
    ours = [c for c in seen if c.__module__.startswith(('zerograd.functions', 'zerograd.arith'))
            and not c.__name__.startswith('_With') and c.__name__ != '_Arithmetic']
    missing = [c.__name__ for c in ours if exporter.converter_for(c) is None
               and c not in exporter._BACKWARD_ONLY and c.__name__ not in REFUSED]
    assert not missing, f'Functions with no converter and no reason: {sorted(missing)}'


# =============================================================================
# Dynamic batch, dtypes, names, errors
# =============================================================================
def test_a_reshape_of_the_batch_writes_minus_one_not_the_traced_size():
    def model(x):
        return F.reshape(x, (x.shape[0], -1)) * 2.0

    x = np.arange(24, dtype=np.float32).reshape(2, 3, 4)
    proto = zonnx.export(model, x)
    shape = [onnx.numpy_helper.to_array(i) for i in proto.graph.initializer
             if i.name.startswith('shape')]
    assert [list(s) for s in shape] == [[-1, 12]]
    for n in (1, 5):
        xn = np.random.default_rng(n).standard_normal((n, 3, 4)).astype(np.float32)
        got, = run_onnx(proto, [xn])
        np.testing.assert_allclose(got, xn.reshape(n, 12) * 2, **TOL)


def test_a_constant_made_from_the_batch_size_is_refused_not_baked_in():
    def model(x):
        return x + np.ones((x.shape[0], 3), dtype=np.float32)  # a constant of batch size

    with pytest.raises(ValueError, match=r'constant of shape \(2, 3\) that becomes \(3, 3\)'):
        zonnx.export(model, np.zeros((2, 3), np.float32))
    # with fixed sizes it is just a constant
    proto = zonnx.export(model, np.zeros((2, 3), np.float32), dynamic_axes={})
    got, = run_onnx(proto, [np.full((2, 3), 2, np.float32)])
    np.testing.assert_array_equal(got, np.full((2, 3), 3, np.float32))


def test_embed_id_reads_its_ids_from_the_graph_input():
    W = zerograd.Parameter(np.random.default_rng(0).standard_normal((7, 3)).astype(np.float32))

    def model(ids):
        return F.embed_id(ids, W)

    proto = zonnx.export(model, np.array([[1, 2], [3, 6]]))
    assert proto.graph.input[0].type.tensor_type.elem_type == onnx.TensorProto.INT64
    for n in (1, 4):
        ids = np.random.default_rng(n).integers(0, 7, size=(n, 2))
        got, = run_onnx(proto, [ids])
        np.testing.assert_array_equal(got, W.data[ids])


def test_parameters_are_initializers_named_by_their_paths():
    from zerograd.models import MLP
    model = MLP((4, 2))
    proto = zonnx.export(model, np.zeros((3, 5), np.float32))
    assert sorted(i.name for i in proto.graph.initializer) == ['l0/W', 'l0/b', 'l1/W', 'l1/b']
    W = next(i for i in proto.graph.initializer if i.name == 'l0/W')
    np.testing.assert_array_equal(onnx.numpy_helper.to_array(W), model.l0.W.data)


def test_inputs_and_outputs_have_a_dynamic_batch_axis_by_default():
    from zerograd.models import MLP
    proto = zonnx.export(MLP((4, 2)), np.zeros((3, 5), np.float32))
    dims = [d.dim_param or d.dim_value for d in proto.graph.input[0].type.tensor_type.shape.dim]
    assert dims == ['batch', 5]
    dims = [d.dim_param or d.dim_value for d in proto.graph.output[0].type.tensor_type.shape.dim]
    assert dims == ['batch', 2]
    static = zonnx.export(MLP((4, 2)), np.zeros((3, 5), np.float32), dynamic_axes={})
    assert [d.dim_value for d in static.graph.input[0].type.tensor_type.shape.dim] == [3, 5]


def test_names_opset_and_ir_version_are_as_asked(tmp_path):
    from zerograd.models import MLP
    path = tmp_path / 'm.onnx'
    proto = zonnx.export(MLP((2,)), np.zeros((1, 3), np.float32), path, opset=18,
                         input_names=['x'], output_names=['scores'])
    assert [i.name for i in proto.graph.input] == ['x']
    assert [o.name for o in proto.graph.output] == ['scores']
    assert proto.opset_import[0].version == 18
    assert proto.ir_version == onnx.helper.find_min_ir_version_for(proto.opset_import)
    assert onnx.load(str(path)) == proto
    assert os.listdir(tmp_path) == ['m.onnx']  # no temporary left


def test_several_outputs_and_an_output_that_is_an_input():
    def model(x, y):
        return x * y, x

    x, y = np.ones((2, 3), np.float32), np.full((2, 3), 3, np.float32)
    proto = zonnx.export(model, (x, y))
    got = run_onnx(proto, [x, y])
    np.testing.assert_array_equal(got[0], x * y)
    np.testing.assert_array_equal(got[1], x)


def test_float64_and_int_inputs_keep_their_dtypes():
    def model(x):
        return F.tanh(x) * 2

    x = np.linspace(-1, 1, 6).reshape(2, 3)
    got, = run_onnx(zonnx.export(model, x), [x])
    assert got.dtype == np.float64
    np.testing.assert_allclose(got, np.tanh(x) * 2, rtol=1e-12)

    def count(x):
        return F.sin(x)  # an int input: computed in float64, as zerograd does

    xi = np.arange(6).reshape(2, 3)
    got, = run_onnx(zonnx.export(count, xi), [xi])
    assert got.dtype == np.float64
    np.testing.assert_allclose(got, np.sin(xi), rtol=1e-12)


def test_export_leaves_train_mode_and_state_as_they_were():
    import zerograd.layers as L

    class Steps(zerograd.Model):
        def __init__(self):
            super().__init__()
            self.rnn = L.RNN(3)

        def forward(self, x):
            self.rnn.reset_state()
            return self.rnn(x[:, 0]) + self.rnn(x[:, 1])

    model = Steps()
    model.rnn(np.zeros((2, 4), np.float32))  # a state of batch 2
    h = model.rnn.h
    assert zerograd.Config.train
    proto = zonnx.export(model, np.ones((2, 2, 4), np.float32))
    assert zerograd.Config.train and model.rnn.h is h
    x = np.random.default_rng(0).standard_normal((5, 2, 4)).astype(np.float32)
    with zerograd.test_mode():
        want = model(x).data
    got, = run_onnx(proto, [x])
    np.testing.assert_allclose(got, want, **TOL)


def test_bad_arguments_are_clear_errors():
    from zerograd.models import MLP
    model, x = MLP((2,)), np.zeros((1, 3), np.float32)
    with pytest.raises(ValueError, match='opset must be from 17'):
        zonnx.export(model, x, opset=12)
    with pytest.raises(TypeError, match='opset must be an int'):
        zonnx.export(model, x, opset='17')
    with pytest.raises(TypeError, match=r'args\[0\] must be an ndarray or a Variable'):
        zonnx.export(model, [[1.0, 2.0, 3.0]])
    with pytest.raises(ValueError, match='input_names must be 1 non-empty strings'):
        zonnx.export(model, x, input_names=['a', 'b'])
    with pytest.raises(ValueError, match="dynamic_axes names 'y'"):
        zonnx.export(model, x, dynamic_axes={'y': [0]})
    with pytest.raises(TypeError, match='model must return a Variable'):
        zonnx.export(lambda x: 3, x)
    with pytest.raises(TypeError, match='must be callable'):
        zonnx.export(3, x)


def test_a_function_without_converter_names_itself_and_its_shapes():
    class Twice(zerograd.Function):
        def forward(self, x):
            return 2 * x

    with pytest.raises(NotImplementedError,
                       match=r'no ONNX converter for Twice \(inputs \(2, 3\) float32\)'):
        zonnx.export(lambda x: Twice()(x), np.zeros((2, 3), np.float32))


def test_register_converter_exports_a_users_function():
    class Twice(zerograd.Function):
        def forward(self, x):
            return 2 * x

    def convert(ctx, f, xs, ys):
        ctx.node('Add', [xs[0], xs[0]], ys)

    zonnx.register_converter(Twice, convert)
    x = np.arange(6, dtype=np.float32).reshape(2, 3)
    got, = run_onnx(zonnx.export(lambda v: Twice()(v) + 1, x), [x])
    np.testing.assert_array_equal(got, 2 * x + 1)
    with pytest.raises(TypeError, match='subclass of zerograd.Function'):
        zonnx.register_converter(int, convert)
    with pytest.raises(TypeError, match='converter must be callable'):
        zonnx.register_converter(Twice, 3)


def test_a_backward_graph_is_refused_as_backward_only():
    x = zerograd.Variable(np.linspace(0.1, 1, 6).reshape(2, 3))

    def grad_of_tanh(v):
        y = F.tanh(v)
        v.cleargrad()
        y.backward(create_graph=True)
        return v.grad

    with pytest.raises(NotImplementedError, match=r'TanhGrad .* backward-only .* tanh'):
        zonnx.export(grad_of_tanh, x, dynamic_axes={})
    with pytest.raises(NotImplementedError, match=r'TanhGrad .* backward-only .* tanh'):
        zonnx.export(grad_of_tanh, x)  # with a dynamic batch too


def test_import_zerograd_imports_neither_onnx_nor_onnxruntime():
    import subprocess
    import sys
    code = 'import sys, zerograd; print("onnx" in sys.modules, "onnxruntime" in sys.modules)'
    out = subprocess.run([sys.executable, '-c', code], cwd=ROOT, capture_output=True, text=True,
                         check=True, timeout=120).stdout
    assert out.split() == ['False', 'False']


def test_without_onnx_installed_export_says_which_extra_to_install(monkeypatch):
    import sys
    monkeypatch.setitem(sys.modules, 'onnx', None)  # import onnx now raises ImportError
    with pytest.raises(ImportError, match=r"pip install 'zerograd\[onnx\]'"):
        zonnx.export(lambda x: x * 2, np.zeros((1, 2), np.float32))


def test_labels_given_as_an_input_stay_an_input_of_the_loss():
    x = np.random.default_rng(0).standard_normal((3, 4)).astype(np.float32)
    t = np.array([0, 3, 1])
    proto = zonnx.export(lambda x, t: F.softmax_cross_entropy(x, t), (x, t))
    for n in (2, 5):
        xn = np.random.default_rng(n).standard_normal((n, 4)).astype(np.float32)
        tn = np.random.default_rng(n).integers(0, 4, n)
        got, = run_onnx(proto, [xn, tn])
        np.testing.assert_allclose(got, F.softmax_cross_entropy(xn, tn).data, **TOL)
    t01 = np.array([[1.0], [0.0], [1.0]], np.float32)
    proto = zonnx.export(lambda x, t: F.sigmoid_cross_entropy(x, t), (x[:, :1], t01))
    t2 = np.array([[0.0], [1.0]], np.float32)
    got, = run_onnx(proto, [x[:2, :1], t2])
    np.testing.assert_allclose(got, F.sigmoid_cross_entropy(x[:2, :1], t2).data, **TOL)


def test_an_input_read_as_a_constant_is_refused_not_ignored():
    def model(x):
        return zerograd.Variable(x.data * 2) + 1  # .data: the graph loses the input

    with pytest.raises(ValueError, match="the input 'input' does not reach the outputs"):
        zonnx.export(model, np.ones((2, 3), np.float32), dynamic_axes={})


def test_the_file_is_written_whole_with_the_umasks_mode(tmp_path):
    import stat
    from zerograd.models import MLP
    path = tmp_path / 'm.onnx'
    old = os.umask(0o022)
    try:
        zonnx.export(MLP((2,)), np.zeros((1, 3), np.float32), str(path))
    finally:
        os.umask(old)
    assert stat.S_IMODE(os.stat(path).st_mode) == 0o644
    assert os.listdir(tmp_path) == ['m.onnx']


FLOAT64_LIMITED = sorted({name for name, limit in LIMITS if limit == 'float64'})


@pytest.mark.parametrize('name', FLOAT64_LIMITED)
def test_ops_without_float64_kernels_are_refused_in_float64_saying_so(name):
    case = next(c for c in EXPORTED if c.op == name)
    xs = inputs_of(case, np.float64)
    with pytest.raises(NotImplementedError, match=r'float64'):
        zonnx.export(case.zerograd(), tuple(xs), opset=18, dynamic_axes={})


def test_other_ops_export_in_float64_and_match():
    """One case of every other exported op in float64 (rtol 1e-12: the same arithmetic)."""
    seen = set()
    for case in EXPORTED:
        if case.op in seen or case.op in FLOAT64_LIMITED:
            continue
        seen.add(case.op)
        xs = inputs_of(case, np.float64)
        want = expected(case, xs)
        got, = run_onnx(zonnx.export(case.zerograd(), tuple(xs), opset=18, dynamic_axes={}), xs)
        assert got.dtype == want.dtype, case.id
        np.testing.assert_allclose(got, want, rtol=1e-10, atol=1e-12, err_msg=case.id)


# =============================================================================
# Sizes made from the batch size (found in review): refused or exported right
# =============================================================================
X2 = np.random.default_rng(0).standard_normal((2, 3)).astype(np.float32)
X5 = np.random.default_rng(1).standard_normal((5, 3)).astype(np.float32)


@pytest.mark.parametrize('fn', [lambda x: F.average(x), lambda x: F.mean(x, axis=0),
                                lambda x: F.mean(x, axis=1, keepdims=True)],
                         ids=['all', 'batch axis', 'axis 1'])
def test_average_exports_as_a_mean_over_the_sizes_given(fn):
    got, = run_onnx(zonnx.export(fn, X2), [X5])
    np.testing.assert_allclose(got, fn(X5).data, **TOL)


@pytest.mark.parametrize('fn, what', [
    (lambda x: F.sum(x) / len(x), 'constant 2.0 that becomes 3.0'),
    (lambda x: F.exp(x) * (1.0 / x.shape[0]), 'constant 0.5 that becomes 0.333'),
    (lambda x: x[:x.shape[0] - 1], r'indexes with slice\(None, 1, None\)'),
    (lambda x: x[x.shape[0] - 1], 'indexes with 1, which becomes 2')],
    ids=['sum / len', 'times 1 / N', 'slice to N - 1', 'row N - 1'])
def test_numbers_computed_from_the_batch_size_are_refused(fn, what):
    with pytest.raises(ValueError, match=what):
        zonnx.export(fn, X2)


def test_negative_index_arrays_count_from_the_end_at_every_batch_size():
    for fn in (lambda x: x[np.array([-1]), :], lambda x: x[np.array([-1]), np.array([0])]):
        got, = run_onnx(zonnx.export(fn, X2), [X5])
        np.testing.assert_array_equal(got, fn(X5).data)


@pytest.mark.parametrize('dtype', [np.int32, np.bool_])
def test_int32_and_bool_sums_are_int64_as_numpy_makes_them(dtype):
    x = (np.arange(6).reshape(2, 3) % 2).astype(dtype)
    for fn in (lambda v: F.sum(v, axis=1), lambda v: F.sum_to(v, (1, 3))):
        got, = run_onnx(zonnx.export(fn, x), [x])
        want = fn(x).data
        assert got.dtype == want.dtype == np.int64
        np.testing.assert_array_equal(got, want)


def test_integer_relu_exports():
    x = np.array([[-2, 3], [4, -5]], dtype=np.int64)
    got, = run_onnx(zonnx.export(F.relu, x), [x])
    np.testing.assert_array_equal(got, np.maximum(x, 0))


def test_an_output_of_twice_the_batch_is_not_called_batch():
    proto = zonnx.export(lambda x: F.concat([x, x], axis=0), X2)
    dim = proto.graph.output[0].type.tensor_type.shape.dim[0]
    assert dim.dim_param == 'output_dim0'
    proto = zonnx.export(lambda x: x * 2, X2)
    assert proto.graph.output[0].type.tensor_type.shape.dim[0].dim_param == 'batch'


def test_a_failure_of_the_second_trace_says_it_was_the_second_trace():
    def model(x):
        return F.reshape(x, (2, 3)) * 1.0  # fixed to batch 2

    with pytest.raises(ValueError, match=r'the second trace, at input \(3, 3\).*dynamic_axes'):
        zonnx.export(model, X2)


_P43 = np.random.default_rng(5).uniform(0.1, 0.9, (4, 3)).astype(np.float32)
_LEN_CALLS = {  # the labels fixed (these read their values as constants)
    'binary_cross_entropy': (lambda p: F.binary_cross_entropy(p, (_P43 > 0.5) * 1.0), (_P43,)),
    'mean_squared_error_simple': (F.mean_squared_error_simple, (_P43, _P43[::-1].copy())),
    'softmax_cross_entropy_simple': (
        lambda x: F.softmax_cross_entropy_simple(x, np.array([0, 2, 1, 2])), (_P43,)),
}


@pytest.mark.parametrize('name', sorted({n for n, limit in LIMITS if limit == 'dynamic batch'}))
def test_ops_dividing_by_a_python_len_are_refused_with_a_dynamic_batch(name):
    fn, args = _LEN_CALLS[name]
    with pytest.raises((ValueError, NotImplementedError), match=r'dynamic_axes=\{\}'):
        zonnx.export(fn, args)
    proto = zonnx.export(fn, args, dynamic_axes={})  # fixed sizes: exported, and right
    got, = run_onnx(proto, list(args))
    np.testing.assert_allclose(got, fn(*args).data, **TOL)
