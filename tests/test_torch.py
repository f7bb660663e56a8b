"""zerograd against PyTorch: forward values, first derivatives (random upstream gradient)
and second derivatives (the gradient of sum(gx * v) with respect to every input and to the
upstream gradient), in float64 and float32, for every case of the op registry (ops.py)
that is marked for PyTorch, broadcasting shapes included. Then what the registry's one
call per case cannot say: third derivatives, batch norm's running statistics after two
steps, and the grid of convolution settings.

The harness (inputs, both frameworks' derivatives, the comparison) is torch_compare.py;
the PyTorch references are op_references.TH.
"""
import numpy as np
import pytest

torch = pytest.importorskip('torch')
pytest.register_assert_rewrite('torch_compare')

import ops  # noqa: E402
import zerograd.functions as F  # noqa: E402
from op_references import TH, case_rng, make_array  # noqa: E402
from torch_compare import (  # noqa: E402
    assert_matches_torch, make_inputs, to_numpy, torch_derivatives, zerograd_derivatives)
from zerograd import Variable  # noqa: E402

CASES = ops.cases(ops.TORCH)


@pytest.mark.parametrize('dtype', [np.float64, np.float32], ids=['float64', 'float32'])
@pytest.mark.parametrize('case', CASES, ids=ops.case_id)
def test_against_torch(case, dtype):
    fn = case.torch()
    xs, gy, vs = make_inputs(case.id, (fn, case.shapes, case.domain), dtype, F)
    ours = zerograd_derivatives(fn, F, xs, gy, vs, plain_first=case.torch_plain_first)
    theirs = torch_derivatives(fn, TH, xs, gy, vs)
    assert isinstance(ours[0], Variable)
    assert_matches_torch(case.id, dtype, ours, theirs, ops.TORCH_TOLERANCE[case.torch_tol][dtype])


def test_every_op_with_a_torch_reference_is_compared():
    compared = {c.op for c in CASES}
    with_reference = {name for name, entry in ops.OPS.items() if entry.torch is not None}
    without = {'cast': 'run on the device only', 'dropout': 'PyTorch draws another mask',
               'linear_simple': 'the composed oracle of linear, compared with it in '
                                'test_functions_linalg.py',
               'sigmoid_simple': 'the composed oracle of sigmoid',
               'softmax_simple': 'the composed oracle of softmax',
               'mean_squared_error_simple': 'the composed oracle of mean_squared_error',
               'softmax_cross_entropy_simple': 'the composed oracle of softmax_cross_entropy',
               'rsub': None, 'rdiv': None}
    assert with_reference - compared <= set(without)
    assert {'rsub', 'rdiv', 'lstm_cell', 'linear_pair'} <= compared


# Third derivatives: d/dx of sum(d/dx of sum(d/dx of sum(f(x)))), recorded with create_graph.
THIRD_ORDER = {
    'tanh': (lambda m, x: m.tanh(x), 'any'),
    'sin': (lambda m, x: m.sin(x), 'any'),
    'log': (lambda m, x: m.log(x), 'pos'),
    'sqrt': (lambda m, x: m.sqrt(x), 'pos'),
    'x ** 2.5': (lambda m, x: x ** 2.5, 'pos'),
    '2 ** x': (lambda m, x: 2 ** x, 'any'),
    '2.0 / x': (lambda m, x: 2.0 / x, 'nonzero'),
    'x ** x': (lambda m, x: x ** x, 'pos'),
    'exp(x[index]) * x.sum(0)': (
        lambda m, x: m.exp(m.get_item(x, np.array([0, 0, 1]))) * m.sum(x, 0), 'any'),
    'exp(x @ x.T)': (lambda m, x: m.exp(m.matmul(x, m.transpose(x)) / 4), 'any'),
}


@pytest.mark.parametrize('case_id', list(THIRD_ORDER))
def test_third_derivative_against_torch(case_id):
    fn, domain = THIRD_ORDER[case_id]
    data = make_array((2, 3), domain, case_rng(case_id))

    x = Variable(data.copy())
    g = fn(F, x).sum()
    for _ in range(2):
        x.cleargrad()
        g.backward(create_graph=True)
        g = x.grad.sum()
    x.cleargrad()
    g.backward()

    t = torch.tensor(data, requires_grad=True)
    tg = fn(TH, t).sum()
    for _ in range(2):
        tg = torch.autograd.grad(tg, t, create_graph=True)[0].sum()
    expected = torch.autograd.grad(tg, t)[0]

    np.testing.assert_allclose(x.grad.data, to_numpy(expected), rtol=1e-9, atol=1e-12)


@pytest.mark.parametrize('dtype', [np.float64, np.float32], ids=['float64', 'float32'])
@pytest.mark.parametrize('shape', [(6, 3), (4, 3, 2, 2), (2, 3)],
                         ids=['(N, C)', '(N, C, H, W)', 'N=2'])
def test_batch_norm_running_stats_against_torch(shape, dtype):
    """Two training steps: zerograd's decay 0.9 is torch's momentum 0.1, and both keep
    the unbiased variance m / (m - 1) in the running variance."""
    rng = np.random.default_rng(12)
    gamma, beta = rng.uniform(0.5, 1.5, 3).astype(dtype), rng.standard_normal(3).astype(dtype)
    mean, var = rng.standard_normal(3).astype(dtype), rng.uniform(0.5, 2.0, 3).astype(dtype)
    t_mean, t_var = torch.tensor(mean), torch.tensor(var)
    tol = ops.TORCH_TOLERANCE['nn'][dtype]
    for step in range(2):
        x = rng.normal(1.0, 2.0, size=shape).astype(dtype)
        y = F.batch_norm(x, gamma, beta, mean, var)
        ty = torch.nn.functional.batch_norm(torch.tensor(x), t_mean, t_var, torch.tensor(gamma),
                                            torch.tensor(beta), training=True, momentum=0.1,
                                            eps=2e-5)
        np.testing.assert_allclose(y.data, to_numpy(ty), **tol, err_msg=f'step {step}: output')
        np.testing.assert_allclose(mean, to_numpy(t_mean), **tol, err_msg=f'step {step}: mean')
        np.testing.assert_allclose(var, to_numpy(t_var), **tol, err_msg=f'step {step}: var')
    assert mean.dtype == var.dtype == dtype


def test_the_convolution_grid_covers_strides_pads_shapes_and_kernels():
    ids = [c.id for c in CASES]
    for op in ('conv2d', 'deconv2d', 'pooling', 'average_pooling'):
        op_ids = [case_id for case_id in ids if case_id.startswith(op + ' k=')]
        for stride in (1, 2, 3):
            for pad in (0, 1, 2):
                assert any(f's={stride} p={pad} ' in case_id for case_id in op_ids), \
                    (op, stride, pad)
        assert any('k=(2, 3)' in case_id for case_id in op_ids), op
        for shape in ops.TORCH_CONV_SHAPES:
            assert any(str(shape) in case_id for case_id in op_ids), (op, shape)
    assert any('outsize=(' in case_id for case_id in ids)
