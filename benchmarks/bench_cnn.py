"""MNIST-shaped CNN training: batch 32 of 1x28x28, conv 3x3 1->32, ReLU, conv 3x3 32->64,
ReLU, max-pool 2 (stride 2), Linear 9216->10, softmax cross-entropy, SGD lr 0.01, float32;
forward + backward + update, milliseconds per step, against PyTorch in the same run.

Both sides start from the same weights (drawn here, copied into torch's layers) and see the
same batches. The zerograd model is built from F.conv2d / F.pooling / F.linear on
Parameters, so the benchmark measures the functions, not a layer's bookkeeping;
``LayersCNN`` is the same network from L.Conv2d / L.Linear, as the recipes build it.

    python benchmarks/bench_cnn.py [--profile]
    python benchmarks/bench_cnn.py --alone zerograd|layers|torch REPEATS [--quick]

``--alone``: one side in this fresh process (only its framework imported, glibc's default
allocator settings): one warm-up run, then REPEATS runs; prints one JSON object with the
seconds of each run and its minor page faults per step (``getrusage``'s ru_minflt):
fresh pages the kernel had to hand over, ~4 KB each, which a step that reuses its memory
does not take.
"""
import harness  # noqa: F401  (sets the thread limits first)

import json  # noqa: E402
import resource  # noqa: E402
import sys  # noqa: E402

import numpy as np  # noqa: E402

import zerograd.functions as F  # noqa: E402
import zerograd.layers as L  # noqa: E402
from zerograd import Parameter, optimizers  # noqa: E402
from zerograd.layers import Layer  # noqa: E402

BATCH = 32
STEPS = 10  # steps per timed run (one pass over the batches below)
LR = 0.01
rng = np.random.default_rng(0)
X = rng.random((BATCH * STEPS, 1, 28, 28), dtype=np.float32)
T = rng.integers(0, 10, BATCH * STEPS)


def _init(shape, fan_in):
    return (rng.standard_normal(shape, dtype=np.float32)
            * np.float32(np.sqrt(1.0 / fan_in)))


# The initial weights of both sides; zerograd's Linear weight is (in, out), torch's (out, in).
WEIGHTS = dict(W1=_init((32, 1, 3, 3), 9), b1=np.zeros(32, np.float32),
               W2=_init((64, 32, 3, 3), 288), b2=np.zeros(64, np.float32),
               W3=_init((9216, 10), 9216), b3=np.zeros(10, np.float32))


class CNN(Layer):
    """The benchmark's network on zerograd's functions."""

    def __init__(self):
        super().__init__()
        for name, value in WEIGHTS.items():
            setattr(self, name, Parameter(value.copy(), name=name))

    def forward(self, x):
        h = F.relu(F.conv2d(x, self.W1, self.b1))
        h = F.relu(F.conv2d(h, self.W2, self.b2))
        h = F.pooling(h, 2, stride=2)
        return F.linear(F.reshape(h, (len(x), -1)), self.W3, self.b3)


class LayersCNN(Layer):
    """The same network from the layers API (as the recipes build it), from WEIGHTS."""

    def __init__(self):
        super().__init__()
        self.conv1 = L.Conv2d(32, 3, in_channels=1)
        self.conv2 = L.Conv2d(64, 3, in_channels=32)
        self.fc = L.Linear(10, in_size=9216)
        for layer, W, b in [(self.conv1, 'W1', 'b1'), (self.conv2, 'W2', 'b2'),
                            (self.fc, 'W3', 'b3')]:
            layer.W.data[...] = WEIGHTS[W]
            layer.b.data[...] = WEIGHTS[b]

    def forward(self, x):
        h = F.relu(self.conv1(x))
        h = F.relu(self.conv2(h))
        h = F.pooling(h, 2, stride=2)
        return self.fc(F.reshape(h, (len(x), -1)))


def make_zerograd(model_class=None):
    model = (model_class or CNN)()
    optimizer = optimizers.SGD(lr=LR).setup(model)

    def run():
        for i in range(0, len(X), BATCH):
            loss = F.softmax_cross_entropy(model(X[i:i + BATCH]), T[i:i + BATCH])
            model.cleargrads()
            loss.backward()
            optimizer.update()
        W2 = model.conv2.W if model_class is LayersCNN else model.W2
        assert W2.data.dtype == W2.grad.dtype == np.float32
        assert np.isfinite(loss.data)
    return run


def torch_model(torch):
    """The same network on torch.nn, starting from WEIGHTS."""
    nn = torch.nn
    model = nn.Sequential(nn.Conv2d(1, 32, 3), nn.ReLU(), nn.Conv2d(32, 64, 3), nn.ReLU(),
                          nn.MaxPool2d(2), nn.Flatten(), nn.Linear(9216, 10))
    with torch.no_grad():
        for layer, W, b in [(model[0], 'W1', 'b1'), (model[2], 'W2', 'b2'),
                            (model[6], 'W3', 'b3')]:
            weight = WEIGHTS[W].T if W == 'W3' else WEIGHTS[W]
            layer.weight.copy_(torch.from_numpy(np.ascontiguousarray(weight)))
            layer.bias.copy_(torch.from_numpy(WEIGHTS[b]))
    return model


def make_torch(torch):
    model = torch_model(torch)
    optimizer = torch.optim.SGD(model.parameters(), lr=LR)
    Xt, Tt = torch.from_numpy(X), torch.from_numpy(T)

    def run():
        for i in range(0, len(X), BATCH):
            loss = torch.nn.functional.cross_entropy(model(Xt[i:i + BATCH]), Tt[i:i + BATCH])
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
    return run


def check_same_network(torch):
    """From the same weights and batch both sides give the same loss and weight gradient:
    the two sides run the same network."""
    zg_model = CNN()
    zg_loss = F.softmax_cross_entropy(zg_model(X[:BATCH]), T[:BATCH])
    zg_loss.backward()
    th_model = torch_model(torch)
    th_loss = torch.nn.functional.cross_entropy(th_model(torch.from_numpy(X[:BATCH])),
                                                torch.from_numpy(T[:BATCH]))
    th_loss.backward()
    np.testing.assert_allclose(zg_loss.data, th_loss.item(), rtol=1e-4)
    np.testing.assert_allclose(zg_model.W2.grad.data, th_model[2].weight.grad.numpy(),
                               rtol=1e-3, atol=1e-5)


def minor_faults() -> int:
    return resource.getrusage(resource.RUSAGE_SELF).ru_minflt


def alone(side: str, repeats: int) -> dict:
    """One side's runs in this process: {'times': seconds per run, 'faults': minor page
    faults per step of each run}, after one warm-up run."""
    if side == 'torch':
        run = make_torch(harness.import_torch())
    else:
        run = make_zerograd(LayersCNN if side == 'layers' else CNN)
    run()
    steps = len(X) // BATCH
    times, faults = [], []
    for _ in range(repeats):
        before = minor_faults()
        times.append(harness.timed(run))
        faults.append((minor_faults() - before) / steps)
    assert side == 'torch' or 'torch' not in sys.modules
    return {'times': times, 'faults': faults}


def main():
    if '--alone' in sys.argv:
        global X, T
        i = sys.argv.index('--alone')
        side, repeats = sys.argv[i + 1], int(sys.argv[i + 2])
        if '--quick' in sys.argv:
            X, T = X[:2 * BATCH], T[:2 * BATCH]
        print(json.dumps(alone(side, repeats)))
        return
    if '--profile' in sys.argv:
        import cProfile
        import pstats
        run = make_zerograd()
        run()
        cProfile.runctx('run()', globals(), {'run': run}, '/tmp/bench_cnn.prof')
        pstats.Stats('/tmp/bench_cnn.prof').sort_stats('tottime').print_stats(20)
        return
    sides = {'zerograd': make_zerograd()}
    torch = harness.import_torch()
    if torch is not None:
        check_same_network(torch)
        sides['torch'] = make_torch(torch)
    times = harness.compare(sides, repeats=15, warmup=1)
    print(harness.machine())
    harness.report(f'CNN conv-relu-conv-relu-maxpool-linear, batch {BATCH}, '
                   f'ms per step ({STEPS} steps per run)', times, scale=STEPS / 1000, unit='ms')


if __name__ == '__main__':
    main()
