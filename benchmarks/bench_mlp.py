"""MNIST-shaped MLP training: 784-1000-1000-10, ReLU, softmax cross-entropy, SGD lr 0.1,
batch 100, float32; time per 10,000 samples (100 steps), against PyTorch in the same run.

    python benchmarks/bench_mlp.py [--profile | --pieces]

--profile: cProfile of one epoch. --pieces: where an epoch's time goes, forward, backward
and update timed by hand, against the GEMMs alone, alternating in one process.
"""
import harness  # noqa: F401  (sets the thread limits first)

import sys  # noqa: E402

import numpy as np  # noqa: E402

import zerograd.functions as F  # noqa: E402
from zerograd import optimizers  # noqa: E402
from zerograd.models import MLP  # noqa: E402

SAMPLES = 10_000
BATCH = 100
rng = np.random.default_rng(0)
X = rng.random((SAMPLES, 784), dtype=np.float32)
T = rng.integers(0, 10, SAMPLES)


def make_zerograd():
    np.random.seed(0)
    model = MLP((1000, 1000, 10), activation=F.relu)
    optimizer = optimizers.SGD(lr=0.1).setup(model)

    def epoch():
        for i in range(0, SAMPLES, BATCH):
            x, t = X[i:i + BATCH], T[i:i + BATCH]
            loss = F.softmax_cross_entropy(model(x), t)
            model.cleargrads()
            loss.backward()
            optimizer.update()
        assert model.l0.W.data.dtype == np.float32
    return epoch


def make_torch(torch):
    torch.manual_seed(0)
    model = torch.nn.Sequential(torch.nn.Linear(784, 1000), torch.nn.ReLU(),
                                torch.nn.Linear(1000, 1000), torch.nn.ReLU(),
                                torch.nn.Linear(1000, 10))
    optimizer = torch.optim.SGD(model.parameters(), lr=0.1)
    Xt, Tt = torch.from_numpy(X), torch.from_numpy(T)

    def epoch():
        for i in range(0, SAMPLES, BATCH):
            loss = torch.nn.functional.cross_entropy(model(Xt[i:i + BATCH]), Tt[i:i + BATCH])
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
    return epoch


def make_gemm_only():
    """The same epoch's matrix products alone, in NumPy float32: per batch the 3 forward
    products and the 5 backward ones (gW = x.T @ gy for each layer, gx = gy @ W.T for the
    two hidden layers' inputs). The floor for any framework that calls the same BLAS."""
    sizes = (784, 1000, 1000, 10)
    Ws = [(rng.standard_normal((i, o), dtype=np.float32) / np.float32(np.sqrt(i)))
          for i, o in zip(sizes, sizes[1:])]

    def epoch():
        for i in range(0, SAMPLES, BATCH):
            hs = [X[i:i + BATCH]]
            for W in Ws:  # forward
                hs.append(hs[-1] @ W)
            gy = hs[3]
            for k in (2, 1, 0):  # backward
                gW = hs[k].T @ gy
                if k > 0:
                    gy = gy @ Ws[k].T
        assert gW.dtype == np.float32
    return epoch


def pieces(rounds=5):
    """Per epoch: seconds in forward (with the loss), backward, update, and the GEMMs alone
    (make_gemm_only), rounds alternating; medians and ranges, and minor page faults."""
    import resource
    import statistics
    import time
    np.random.seed(0)
    model = MLP((1000, 1000, 10), activation=F.relu)
    optimizer = optimizers.SGD(lr=0.1).setup(model)
    gemm = make_gemm_only()
    clock = time.perf_counter

    def epoch():
        spent = dict.fromkeys(('forward', 'backward', 'update'), 0.0)
        faults = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
        for i in range(0, SAMPLES, BATCH):
            t0 = clock()
            loss = F.softmax_cross_entropy(model(X[i:i + BATCH]), T[i:i + BATCH])
            t1 = clock()
            model.cleargrads()
            loss.backward()
            t2 = clock()
            optimizer.update()
            t3 = clock()
            spent['forward'] += t1 - t0
            spent['backward'] += t2 - t1
            spent['update'] += t3 - t2
        spent['minor faults'] = resource.getrusage(resource.RUSAGE_SELF).ru_minflt - faults
        return spent
    epoch()
    gemm()
    runs = {}
    for _ in range(rounds):
        for name, value in epoch().items():
            runs.setdefault(name, []).append(value)
        runs.setdefault('GEMMs alone', []).append(harness.timed(gemm))
    runs['epoch / GEMMs'] = [(f + b + u) / g for f, b, u, g in zip(
        runs['forward'], runs['backward'], runs['update'], runs['GEMMs alone'])]
    print(harness.machine())
    for name, values in runs.items():
        print(f'  {name:14s} median {statistics.median(values):9.4g}   range '
              f'{min(values):.4g}-{max(values):.4g}')


def main():
    if '--pieces' in sys.argv:
        pieces()
        return
    if '--profile' in sys.argv:
        import cProfile
        import pstats
        epoch = make_zerograd()
        epoch()
        cProfile.runctx('epoch()', globals(), {'epoch': epoch}, '/tmp/bench_mlp.prof')
        pstats.Stats('/tmp/bench_mlp.prof').sort_stats('tottime').print_stats(15)
        return
    sides = {'zerograd': make_zerograd()}
    torch = harness.import_torch()
    if torch is not None:
        sides['torch'] = make_torch(torch)
    times = harness.compare(sides, repeats=5, warmup=1)
    print(harness.machine())
    harness.report(f'MLP 784-1000-1000-10, {SAMPLES} samples, batch {BATCH}', times)


if __name__ == '__main__':
    main()
