"""Export, then load: the loaded Model gives the original's outputs and gradients (inputs
and every parameter), at the traced batch size and others, and trains like it."""
import numpy as np
import pytest

pytest.importorskip('onnx')
pytest.importorskip('onnxruntime')

import zerograd  # noqa: E402
import zerograd.functions as F  # noqa: E402
import zerograd.layers as L  # noqa: E402
import zerograd.onnx as zonnx  # noqa: E402
from zerograd import optimizers  # noqa: E402
from zerograd.models import MLP, Model  # noqa: E402

TOL = dict(rtol=1e-5, atol=1e-5)


class SmallCNN(Model):
    """conv, batch norm, ReLU, max pooling, average pooling, linear: the book's CNN parts."""

    def __init__(self):
        super().__init__()
        self.conv1 = L.Conv2d(4, kernel_size=3, pad=1)
        self.bn1 = L.BatchNorm()
        self.conv2 = L.Conv2d(6, kernel_size=3, stride=2)
        self.fc = L.Linear(3)

    def forward(self, x):
        x = F.pooling(F.relu(self.bn1(self.conv1(x))), 2, 2)
        x = F.average_pooling(F.relu(self.conv2(x)), 1)
        return self.fc(F.flatten(x))


class Tagger(Model):
    """Embedding ids, an LSTM over two steps, scores: ids (N, 2) -> (N, 5)."""

    def __init__(self):
        super().__init__()
        self.embed = L.EmbedID(7, 4)
        self.lstm = L.LSTM(6, in_size=4)
        self.fc = L.Linear(5)

    def forward(self, ids):
        self.lstm.reset_state()
        h = None
        for t in range(ids.shape[1]):
            h = self.lstm(self.embed(ids[:, t]))
        return F.log_softmax(self.fc(h))


def _mlp():
    return MLP((8, 3), activation=F.tanh)


def _float_input(shape):
    return lambda n, rng: rng.standard_normal((n,) + shape).astype(np.float32)


MODELS = {
    'mlp': (_mlp, _float_input((5,))),
    'cnn': (SmallCNN, _float_input((2, 8, 8))),
    'embed-lstm': (Tagger, lambda n, rng: rng.integers(0, 7, size=(n, 2))),
}


def _trained(name):
    """A model with its parameters made (one call) and non-trivial batch norm statistics."""
    np.random.seed(0)
    make, draw = MODELS[name]
    model = make()
    rng = np.random.default_rng(1)
    model(draw(3, rng))  # parameters created; running statistics moved off 0 and 1
    return model, draw


def _outputs_and_grads(model, x, names):
    """The output, the input's gradient (floats only) and the parameters' gradients of
    sum(y * w) in test mode."""
    x = zerograd.Variable(x)
    model.cleargrads()
    with zerograd.test_mode():
        y = model(x)
    w = np.random.default_rng(2).standard_normal(y.shape).astype(y.dtype)
    F.sum(y * w).backward()
    params = {path: p for path, p in names.items()}
    grads = {path: p.grad.data for path, p in params.items() if p.grad is not None}
    return y.data, (None if x.grad is None else x.grad.data), grads


@pytest.mark.parametrize('name', sorted(MODELS))
def test_export_then_load_gives_the_same_outputs_and_gradients(name, tmp_path):
    model, draw = _trained(name)
    path = tmp_path / f'{name}.onnx'
    zonnx.export(model, draw(2, np.random.default_rng(3)), path)
    loaded = zonnx.load(str(path))
    assert set(loaded.onnx_names) >= {k for k, p in model.named_params().items()
                                       if not k.endswith(('avg_mean', 'avg_var'))}
    for n in (1, 2, 5):
        x = draw(n, np.random.default_rng(10 + n))
        want_y, want_gx, want_g = _outputs_and_grads(model, x, model.named_params())
        got_y, got_gx, got_g = _outputs_and_grads(
            loaded, x, {k: loaded.onnx_names[k] for k in model.named_params()})
        assert got_y.dtype == want_y.dtype and got_y.shape == want_y.shape
        np.testing.assert_allclose(got_y, want_y, **TOL)
        if want_gx is not None:
            np.testing.assert_allclose(got_gx, want_gx, **TOL)
        assert sorted(got_g) == sorted(want_g)
        for key in want_g:
            np.testing.assert_allclose(got_g[key], want_g[key], err_msg=key, **TOL)


def test_a_loaded_model_trains_as_the_original_does(tmp_path):
    model, draw = _trained('mlp')
    path = tmp_path / 'mlp.onnx'
    zonnx.export(model, draw(2, np.random.default_rng(3)), path)
    loaded = zonnx.load(str(path))
    x = draw(4, np.random.default_rng(4))
    t = np.array([0, 2, 1, 2])
    for m in (model, loaded):
        optimizer = optimizers.SGD(lr=0.1).setup(m)
        for _ in range(3):
            loss = F.softmax_cross_entropy(m(x), t)
            m.cleargrads()
            loss.backward()
            optimizer.update()
    for key, p in model.named_params().items():
        np.testing.assert_allclose(loaded.onnx_names[key].data, p.data, err_msg=key, **TOL)
    with zerograd.test_mode():
        np.testing.assert_allclose(loaded(x).data, model(x).data, **TOL)
