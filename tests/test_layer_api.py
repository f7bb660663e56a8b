"""PyTorch's everyday names beside the book's: Variable.item()/float()/int(),
Layer.parameters()/named_parameters()/zero_grad()/state_dict()/load_state_dict(), a layer's
own train()/eval() mode, and print(model)."""
import timeit

import numpy as np
import pytest

import zerograd
import zerograd.functions as F
import zerograd.layers as L
import zerograd.optimizers as O
from zerograd import Layer, Parameter, Variable
from zerograd.models import MLP, VGG16, Sequential


# -----------------------------------------------------------------------------
# Variable as a Python number
# -----------------------------------------------------------------------------
@pytest.mark.parametrize('shape', [(), (1,), (1, 1, 1)])
def test_item_float_int_of_a_one_element_variable(shape):
    v = Variable(np.full(shape, -2.75, dtype=np.float32))
    assert v.item() == -2.75 and type(v.item()) is float
    assert float(v) == -2.75 and type(float(v)) is float
    assert int(v) == -2 and type(int(v)) is int  # truncated toward zero, as int(-2.75)
    assert Variable(np.array(7, dtype=np.int64)).item() == 7
    assert type(Variable(np.array(7, dtype=np.int64)).item()) is int


def test_loss_item_after_backward():
    x = Variable(np.array([1.0, 2.0, 3.0]))
    loss = F.sum(x * x)
    loss.backward()
    assert loss.item() == 14.0 and float(loss) == 14.0


@pytest.mark.parametrize('convert', [lambda v: v.item(), float, int])
def test_item_float_int_of_several_elements_name_the_shape(convert):
    v = Variable(np.zeros((2, 3)), name='h')
    with pytest.raises(ValueError, match=r"only a one-element Variable.*\(2, 3\)"):
        convert(v)
    with pytest.raises(ValueError, match=r'\(0,\)'):
        convert(Variable(np.zeros(0)))


def test_item_of_a_variable_without_data_says_it_has_none():
    # The AttributeError of v.size (as of v.shape): hasattr-style, naming Variable(None).
    with pytest.raises(AttributeError, match='Variable\\(None\\)'):
        Variable(None).item()


def test_variable_is_not_an_index():
    # Only float() and int(): a Variable is not silently usable as a list index.
    with pytest.raises(TypeError):
        [1, 2, 3][Variable(np.array(1))]


# -----------------------------------------------------------------------------
# parameters(), named_parameters(), zero_grad()
# -----------------------------------------------------------------------------
class Net(Layer):
    def __init__(self):
        super().__init__()
        self.fc = L.Linear(4, in_size=3)
        self.bn = L.BatchNorm()
        self.out = L.Linear(2, in_size=4)
        self.scale = Parameter(np.ones(1, dtype=np.float32), name='scale')

    def forward(self, x):
        return self.out(F.relu(self.bn(self.fc(x)))) * self.scale


def _x(seed=0, shape=(6, 3)):
    return np.random.default_rng(seed).standard_normal(shape).astype(np.float32)


def test_named_parameters_use_the_weight_file_keys_without_running_statistics():
    net = Net()
    net(_x())
    names = [key for key, _ in net.named_parameters()]
    assert names == ['fc/W', 'fc/b', 'bn/gamma', 'bn/beta', 'out/W', 'out/b', 'scale']
    assert set(names) < set(net.named_params())  # the book's: running statistics too
    assert set(net.named_params()) - set(names) == {'bn/avg_mean', 'bn/avg_var'}
    for key, param in net.named_parameters():
        assert net.named_params()[key] is param
    assert [id(p) for p in net.parameters()] == [id(p) for _, p in net.named_parameters()]


def test_parameters_give_a_shared_parameter_once():
    shared = L.Linear(3, in_size=3)
    model = Sequential(shared, shared)
    assert len(list(model.params())) == 4  # the book's: as registered
    assert [k for k, _ in model.named_parameters()] == ['l0/W', 'l0/b']


def test_parameters_match_torch_modules_counts():
    torch = pytest.importorskip('torch')
    net = Net()
    net(_x())
    reference = torch.nn.Sequential(torch.nn.Linear(3, 4), torch.nn.BatchNorm1d(4),
                                    torch.nn.Linear(4, 2))
    ours = sum(p.size for p in net.parameters()) - net.scale.size
    assert ours == sum(p.numel() for p in reference.parameters())


def test_optimizer_never_changes_running_statistics_and_updates_parameters():
    net = Net()
    x = _x()
    net(x)  # creates everything
    with zerograd.test_mode():  # no statistics update from this forward
        loss = F.sum(net(x) ** 2)
    before = net.state_dict()
    net.zero_grad()
    loss.backward()
    assert net.bn.avg_mean.grad is None and net.bn.avg_var.grad is None
    O.SGD(lr=0.1).setup(net).update()
    after = net.state_dict()
    for key in ('bn/avg_mean', 'bn/avg_var'):
        np.testing.assert_array_equal(after[key], before[key])
    for key, _ in net.named_parameters():
        assert not np.array_equal(after[key], before[key]), key


def test_zero_grad_forgets_gradients_like_cleargrads():
    net = Net()
    F.sum(net(_x())).backward()
    assert all(p.grad is not None for p in net.parameters())
    net.zero_grad()
    assert all(p.grad is None for p in net.params())


# -----------------------------------------------------------------------------
# state_dict() / load_state_dict()
# -----------------------------------------------------------------------------
def test_state_dict_holds_copies_under_the_weight_file_keys(tmp_path):
    net = Net()
    net(_x())
    state = net.state_dict()
    assert list(state) == list(net.named_params())
    for key, param in net.named_params().items():
        np.testing.assert_array_equal(state[key], param.data)
        assert state[key] is not param.data and not np.shares_memory(state[key], param.data)
    state['fc/W'][...] = 0  # a copy: the model does not change
    assert np.abs(net.fc.W.data).sum() > 0
    net.save_weights(str(tmp_path / 'w.npz'))
    with np.load(tmp_path / 'w.npz') as file:
        assert sorted(file.files) == sorted(state)


def test_load_state_dict_round_trip_gives_the_same_outputs():
    net, other = Net(), Net()
    x = _x()
    net(x)
    other(_x(1))
    result = other.load_state_dict(net.state_dict())
    assert result.missing_keys == [] and result.unexpected_keys == []
    with zerograd.test_mode():
        np.testing.assert_array_equal(other(x).data, net(x).data)
    # Copies were loaded: changing the dict later does not reach the model.
    state = net.state_dict()
    other.load_state_dict(state)
    state['fc/W'][...] = 0
    np.testing.assert_array_equal(other.fc.W.data, net.fc.W.data)


def test_load_state_dict_fills_a_lazy_model_like_load_weights():
    source = MLP((5, 2))
    x = _x()
    y = source(x)
    lazy = MLP((5, 2))
    assert lazy.l0.W.data is None
    lazy.load_state_dict(source.state_dict())
    assert lazy.l0.W.data.shape == (3, 5) and lazy.l0.W.data.dtype == np.float32
    np.testing.assert_array_equal(lazy(x).data, y.data)


def test_load_state_dict_names_missing_unexpected_and_wrong_shapes_and_changes_nothing():
    net = Net()
    net(_x())
    before = net.state_dict()
    state = net.state_dict()
    del state['out/b']
    state['extra'] = np.zeros(2, np.float32)
    state['fc/W'] = np.zeros((2, 2), np.float32)
    with pytest.raises(ValueError) as info:
        net.load_state_dict(state)
    message = str(info.value)
    assert message.startswith('Net.load_state_dict: the state does not match the model')
    assert "missing from the state: ['out/b']" in message
    assert "not in the model: ['extra']" in message
    assert 'fc/W: state (2, 2), model (3, 4)' in message
    for key, value in net.state_dict().items():
        np.testing.assert_array_equal(value, before[key])


def test_load_state_dict_checks_dtypes_and_values():
    net = Net()
    net(_x())
    state = net.state_dict()
    state['fc/b'] = np.zeros(4, np.int64)
    with pytest.raises(ValueError, match=r'wrong dtypes.*fc/b: file int64, model float32'):
        net.load_state_dict(state)
    state = net.state_dict()
    state['fc/b'] = np.full(4, np.nan, np.float32)
    with pytest.raises(ValueError, match=r"not finite.*'fc/b'"):
        net.load_state_dict(state)


def test_load_state_dict_not_strict_loads_what_matches_and_reports_the_rest():
    net = Net()
    net(_x())
    W = np.arange(12, dtype=np.float32).reshape(3, 4)
    result = net.load_state_dict({'fc/W': W, 'head/W': np.zeros(1)}, strict=False)
    np.testing.assert_array_equal(net.fc.W.data, W)
    assert result.unexpected_keys == ['head/W']
    assert 'fc/W' not in result.missing_keys and 'out/b' in result.missing_keys
    with pytest.raises(ValueError, match='fc/W: state'):  # shapes still checked
        net.load_state_dict({'fc/W': np.zeros((1, 1), np.float32)}, strict=False)


def test_load_state_dict_rejects_what_is_not_a_dict_of_arrays():
    net = Net()
    with pytest.raises(TypeError, match='Net.load_state_dict: state must be a dict'):
        net.load_state_dict([('fc/W', np.zeros((3, 4)))])
    with pytest.raises(TypeError, match="'fc/W': list"):
        net.load_state_dict({'fc/W': [[0.0] * 4] * 3})


def test_state_dict_of_a_lazy_model_asks_for_a_forward_first():
    with pytest.raises(ValueError, match=r"MLP.state_dict: parameter 'l0/W'.*not created"):
        MLP((3,)).state_dict()


# -----------------------------------------------------------------------------
# A layer's own mode: train()/eval()
# -----------------------------------------------------------------------------
def test_batchnorm_in_eval_mode_uses_and_keeps_its_running_statistics():
    bn = L.BatchNorm()
    x = _x(shape=(8, 4)) * 3 + 1
    bn(x)  # training: statistics move
    mean, var = bn.avg_mean.data.copy(), bn.avg_var.data.copy()
    bn.eval()
    y = bn(x)
    np.testing.assert_array_equal(bn.avg_mean.data, mean)
    np.testing.assert_array_equal(bn.avg_var.data, var)
    expected = (x - mean) / np.sqrt(var + 2e-5)  # gamma 1, beta 0
    np.testing.assert_allclose(y.data, expected, rtol=1e-5, atol=1e-5)
    with zerograd.test_mode():
        np.testing.assert_array_equal(y.data, bn.train()(x).data)
    assert bn.avg_mean.data is not None and not np.array_equal(bn(x).data, y.data)


def test_eval_of_one_sublayer_matches_the_global_test_mode_for_it_only():
    torch = pytest.importorskip('torch')
    np.random.seed(0)
    model = Sequential(L.Linear(4, in_size=3), L.BatchNorm(), F.relu, L.Linear(4, in_size=4),
                       L.BatchNorm())
    x = _x(shape=(8, 3))
    model(x)
    model(x * 2)
    state = model.state_dict()
    model.l1.eval()  # the first BatchNorm only
    y = model(x)
    first_stats = (state['l1/avg_mean'], state['l1/avg_var'])
    np.testing.assert_array_equal(model.l1.avg_mean.data, first_stats[0])
    assert not np.array_equal(model.l4.avg_mean.data, state['l4/avg_mean'])  # still trains
    assert model.training and not model.l1.training and model.l4.training

    # The same network in PyTorch, the same weights, with only the first norm in eval().
    reference = torch.nn.Sequential(torch.nn.Linear(3, 4), torch.nn.BatchNorm1d(4, eps=2e-5),
                                    torch.nn.ReLU(), torch.nn.Linear(4, 4),
                                    torch.nn.BatchNorm1d(4, eps=2e-5))
    with torch.no_grad():
        for i in (0, 3):
            reference[i].weight.copy_(torch.from_numpy(state[f'l{i}/W'].T))
            reference[i].bias.copy_(torch.from_numpy(state[f'l{i}/b']))
        reference[1].running_mean.copy_(torch.from_numpy(first_stats[0]))
        reference[1].running_var.copy_(torch.from_numpy(first_stats[1]))
    reference.train()
    reference[1].eval()
    expected = reference(torch.from_numpy(x)).detach().numpy()
    np.testing.assert_allclose(y.data, expected, rtol=1e-4, atol=1e-5)

    # The whole model under test_mode(): both norms use their statistics.
    with zerograd.test_mode():
        y_test = model(x)
    reference.eval()
    reference[4].running_mean.copy_(torch.from_numpy(model.l4.avg_mean.data))
    reference[4].running_var.copy_(torch.from_numpy(model.l4.avg_var.data))
    np.testing.assert_allclose(y_test.data, reference(torch.from_numpy(x)).detach().numpy(),
                               rtol=1e-4, atol=1e-5)


def test_eval_turns_off_dropout_inside_a_models_own_forward():
    class Dropper(Layer):
        def forward(self, x):
            return F.dropout(x, 0.5)

    x = np.ones((100,), dtype=np.float32)
    layer = Dropper()
    assert (layer(x).data == 0).any()
    np.testing.assert_array_equal(layer.eval()(x).data, x)
    assert zerograd.Config.train  # the global mode is untouched after the call


def test_a_model_in_eval_mode_runs_its_sublayers_in_test_mode():
    model = Sequential(L.BatchNorm())
    x = _x(shape=(5, 2))
    model(x)
    mean = model.l0.avg_mean.data.copy()
    model.eval()
    model(x)
    np.testing.assert_array_equal(model.l0.avg_mean.data, mean)


# -----------------------------------------------------------------------------
# print(model)
# -----------------------------------------------------------------------------
def test_print_model_shows_the_tree_with_shapes_and_lazy_parameters():
    model = Sequential(L.Linear(100), F.relu, L.Linear(10, in_size=100), L.BatchNorm())
    assert repr(model) == (
        'Sequential(\n'
        '  (l0): Linear(W: (?, 100) not created, b: (100,))\n'
        '  (1): relu\n'
        '  (l2): Linear(W: (100, 10), b: (10,))\n'
        '  (l3): BatchNorm(avg_mean: (?,) not created (not trained), avg_var: (?,) not '
        'created (not trained), gamma: (?,) not created, beta: (?,) not created)\n'
        ')')
    model(np.zeros((2, 7), np.float32))
    assert '(l0): Linear(W: (7, 100), b: (100,))' in str(model)
    assert 'not created' not in str(model)


def test_print_nested_model_indents_each_level_and_shows_own_parameters():
    net = Net()
    outer = Sequential(net, F.tanh)
    assert str(outer) == (
        'Sequential(\n'
        '  (l0): Net(\n'
        '    (fc): Linear(W: (3, 4), b: (4,))\n'
        '    (bn): BatchNorm(avg_mean: (?,) not created (not trained), avg_var: (?,) not '
        'created (not trained), gamma: (?,) not created, beta: (?,) not created)\n'
        '    (out): Linear(W: (4, 2), b: (2,))\n'
        '    scale: (1,)\n'
        '  )\n'
        '  (1): tanh\n'
        ')')


def test_repr_of_a_layer_without_parameters_is_short():
    class Identity(Layer):
        def forward(self, x):
            return x

    assert repr(Identity()) == 'Identity()'
    assert repr(L.Conv2d(8, 3)) == 'Conv2d(W: (8, ?, 3, 3) not created, b: (8,))'
    assert repr(L.Linear(3, nobias=True, in_size=2)) == 'Linear(W: (2, 3))'


def test_print_a_layer_with_many_parameters_gives_each_a_line():
    class Flat(Layer):
        def __init__(self):
            super().__init__()
            for i in range(5):
                setattr(self, f'p{i}', Parameter(np.zeros(i + 1)))

    assert str(Flat()) == ('Flat(\n  p0: (1,)\n  p1: (2,)\n  p2: (3,)\n  p3: (4,)\n'
                           '  p4: (5,)\n)')


def test_print_vgg16_lists_its_sixteen_layers():
    lines = str(VGG16()).splitlines()
    assert lines[0] == 'VGG16(' and lines[-1] == ')' and len(lines) == 18
    assert lines[1] == '  (conv1_1): Conv2d(W: (64, ?, 3, 3) not created, b: (64,))'
    assert lines[16] == '  (fc8): Linear(W: (?, 1000) not created, b: (1000,))'


# -----------------------------------------------------------------------------
# The cost of watching layer calls
# -----------------------------------------------------------------------------
def test_layer_call_costs_no_more_than_before_the_summary_hook():
    class Identity(Layer):
        def forward(self, x):
            return x

    def old_call(self, *inputs):  # Layer.__call__ as it was, without the hook's test
        outputs = self.forward(*inputs)
        if not isinstance(outputs, tuple):
            outputs = (outputs,)
        self.__dict__['inputs'] = [L._weak(x) for x in inputs]
        self.__dict__['outputs'] = [L._weak(y) for y in outputs]
        return outputs if len(outputs) > 1 else outputs[0]

    class Old(Identity):
        __call__ = old_call

    x = np.zeros(1)
    new, old = Identity(), Old()
    # Interleaved, best of several, on a shared machine: the hook's test and one method
    # call must stay within noise of the old path (a generous bound, not a benchmark).
    new_times, old_times = [], []
    for _ in range(7):
        new_times.append(timeit.timeit(lambda: new(x), number=20000))
        old_times.append(timeit.timeit(lambda: old(x), number=20000))
    assert min(new_times) < 1.5 * min(old_times)
