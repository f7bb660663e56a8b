"""zerograd on the GPU (CuPy) against zerograd on the CPU (NumPy) and against PyTorch on the
same GPU: one epoch of bench_mlp.py's MNIST-shaped MLP (784-1000-1000-10, ReLU, SGD lr 0.1,
batch 100, 10,000 float32 samples) and bench_cnn.py's CNN training step (batch 32).

Every side starts from the same weights (drawn on the host, then moved) and sees the same
batches; GPU runs end with a device synchronisation, so a run's time includes all of its
kernels. Rows:

* zerograd CPU / GPU: the data already on the device (as torch's is);
* zerograd GPU, DataLoader(gpu=True): the book's way, each batch copied to the GPU as it
  is served (MLP only);
* torch CPU (2 threads, as every benchmark here) and torch GPU (only when the installed
  torch build has CUDA; otherwise the table says so).

    python benchmarks/bench_gpu.py [--json FILE]      # needs CuPy and a GPU (~1 min)
    python benchmarks/bench_gpu.py --stand-in --quick # a smoke run of the code paths on the
                                                      # CPU with zerograd.testing_strict
                                                      # (timings meaningless)
"""
import harness  # noqa: F401  (sets the thread limits first)

import argparse  # noqa: E402
import contextlib  # noqa: E402
import json  # noqa: E402
import statistics  # noqa: E402

import numpy as np  # noqa: E402

import bench_cnn  # noqa: E402
import zerograd.functions as F  # noqa: E402
from zerograd import cuda, optimizers  # noqa: E402
from zerograd.dataloaders import DataLoader  # noqa: E402
from zerograd.models import MLP  # noqa: E402
from zerograd.recipes import _ArrayDataset  # noqa: E402


# bench_mlp.py's workload: 10,000 MNIST-shaped samples, batch 100.
SAMPLES = 10_000
BATCH = 100
_rng = np.random.default_rng(0)
X = _rng.random((SAMPLES, 784), dtype=np.float32)
T = _rng.integers(0, 10, SAMPLES)


def _synchronize() -> None:
    cuda._cupy().cuda.Device().synchronize()


# =============================================================================
# MLP epoch
# =============================================================================
def zerograd_mlp(samples: int, gpu: bool, loader: bool = False):
    np.random.seed(0)
    model = MLP((1000, 1000, 10), activation=F.relu)
    x_all, t_all = X[:samples], T[:samples]
    model(x_all[:1])  # the weights, drawn on the host: the same for every side
    if gpu:
        model.to_gpu()
    optimizer = optimizers.SGD(lr=0.1).setup(model)
    if loader:
        batches = DataLoader(_ArrayDataset(x_all, t_all), BATCH, shuffle=False, gpu=gpu)
    else:
        if gpu:
            x_all, t_all = cuda.as_cupy(x_all), cuda.as_cupy(t_all)
        batches = [(x_all[i:i + BATCH], t_all[i:i + BATCH]) for i in range(0, samples, BATCH)]

    def epoch():
        for x, t in batches:
            loss = F.softmax_cross_entropy(model(x), t)
            model.cleargrads()
            loss.backward()
            optimizer.update()
        if gpu:
            _synchronize()
    epoch.model = model
    return epoch


def torch_mlp(torch, samples: int, device: str):
    torch.manual_seed(0)
    nn = torch.nn
    model = nn.Sequential(nn.Linear(784, 1000), nn.ReLU(), nn.Linear(1000, 1000), nn.ReLU(),
                          nn.Linear(1000, 10)).to(device)
    optimizer = torch.optim.SGD(model.parameters(), lr=0.1)
    x_all = torch.from_numpy(X[:samples]).to(device)
    t_all = torch.from_numpy(T[:samples]).to(device)

    def epoch():
        for i in range(0, samples, BATCH):
            loss = nn.functional.cross_entropy(model(x_all[i:i + BATCH]), t_all[i:i + BATCH])
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
        if device == 'cuda':
            torch.cuda.synchronize()
    return epoch


# =============================================================================
# CNN step
# =============================================================================
def zerograd_cnn(steps: int, gpu: bool):
    n = bench_cnn.BATCH * steps
    X, T = bench_cnn.X[:n], bench_cnn.T[:n]
    model = bench_cnn.CNN()
    if gpu:
        model.to_gpu()
        X, T = cuda.as_cupy(X), cuda.as_cupy(T)
    optimizer = optimizers.SGD(lr=bench_cnn.LR).setup(model)

    def run():
        for i in range(0, n, bench_cnn.BATCH):
            loss = F.softmax_cross_entropy(model(X[i:i + bench_cnn.BATCH]),
                                           T[i:i + bench_cnn.BATCH])
            model.cleargrads()
            loss.backward()
            optimizer.update()
        if gpu:
            _synchronize()
    return run


def torch_cnn(torch, steps: int, device: str):
    n = bench_cnn.BATCH * steps
    model = bench_cnn.torch_model(torch).to(device)
    optimizer = torch.optim.SGD(model.parameters(), lr=bench_cnn.LR)
    X = torch.from_numpy(bench_cnn.X[:n]).to(device)
    T = torch.from_numpy(bench_cnn.T[:n]).to(device)

    def run():
        for i in range(0, n, bench_cnn.BATCH):
            loss = torch.nn.functional.cross_entropy(model(X[i:i + bench_cnn.BATCH]),
                                                     T[i:i + bench_cnn.BATCH])
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
        if device == 'cuda':
            torch.cuda.synchronize()
    return run


# =============================================================================
# The run
# =============================================================================
def check_same_result(samples: int) -> float:
    """zerograd on the GPU and on the CPU, one epoch from the same weights: the largest
    difference of the first layer's weights afterwards, relative to their largest value
    (float32 rounding only)."""
    weights = []
    for gpu in (False, True):
        epoch = zerograd_mlp(samples, gpu)
        epoch()
        weights.append(cuda.as_numpy(epoch.model.l0.W.data))
    cpu, gpu = weights
    return float(np.max(np.abs(gpu - cpu)) / np.max(np.abs(cpu)))


def main(argv=None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('--quick', action='store_true', help='tiny sizes, 1 repeat')
    parser.add_argument('--stand-in', action='store_true',
                        help='use zerograd.testing_strict instead of CuPy (no GPU needed)')
    parser.add_argument('--json', metavar='FILE', help='also write the results as JSON')
    args = parser.parse_args(argv)
    context = contextlib.nullcontext()
    if args.stand_in:
        from zerograd.testing_strict import use_strict_device
        context = use_strict_device()
    with context:
        return _run(args)


def _run(args) -> dict:
    cuda.require_gpu('bench_gpu.py')
    _, gpu_name = cuda.gpu_status()
    samples = 300 if args.quick else SAMPLES
    steps = 2 if args.quick else bench_cnn.STEPS
    repeats, warmup = (1, 1) if args.quick else (5, 2)
    torch = harness.import_torch()
    torch_gpu = torch is not None and torch.cuda.is_available() and not args.stand_in
    if torch is None:
        torch_note = 'torch is not installed: no torch figures'
    elif not torch_gpu:
        torch_note = (f'torch {torch.__version__} has no usable CUDA device here: torch GPU '
                      'figures skipped')
    else:
        torch_note = f'torch {torch.__version__}, {torch.cuda.get_device_name(0)}'
    print(harness.machine())
    print(f'GPU: {gpu_name}')
    print(torch_note)
    difference = check_same_result(min(samples, 1000))
    print(f'zerograd GPU vs CPU, one MLP epoch from the same weights: largest relative '
          f'difference of l0.W {difference:.2g}')

    workloads = {
        f'MLP 784-1000-1000-10 epoch ({samples} samples, batch 100)': (
            's', 1.0,
            {'zerograd CPU': zerograd_mlp(samples, False),
             'zerograd GPU': zerograd_mlp(samples, True),
             'zerograd GPU, DataLoader(gpu=True)': zerograd_mlp(samples, True, loader=True)},
            lambda device: torch_mlp(torch, samples, device)),
        f'CNN step (batch {bench_cnn.BATCH}, bench_cnn.py)': (
            'ms/step', steps / 1000,
            {'zerograd CPU': zerograd_cnn(steps, False), 'zerograd GPU': zerograd_cnn(steps, True)},
            lambda device: torch_cnn(torch, steps, device)),
    }
    results = {'machine': harness.machine(), 'gpu': gpu_name, 'torch': torch_note,
               'gpu_cpu_difference': difference, 'workloads': {}}
    for title, (unit, scale, sides, make_torch) in workloads.items():
        if torch is not None:
            sides['torch CPU'] = make_torch('cpu')
            if torch_gpu:
                sides['torch GPU'] = make_torch('cuda')
        times = harness.compare(sides, repeats=repeats, warmup=warmup)
        medians = {name: statistics.median(values) / scale for name, values in times.items()}
        results['workloads'][title] = {'unit': unit, 'medians': medians}
        print(f'\n## {title}, median of {repeats}, {unit}')
        print('| side | median | speed-up over zerograd CPU | time / torch GPU\'s |')
        print('| --- | --- | --- | --- |')
        for name, value in medians.items():
            speedup = medians['zerograd CPU'] / value
            vs_torch = f'{value / medians["torch GPU"]:.2f}x' if 'torch GPU' in medians else '-'
            print(f'| {name} | {value:.4g} | {speedup:.2f}x | {vs_torch} |')
    if args.stand_in:
        print('\n(stand-in run: the "GPU" rows ran on the CPU; timings are meaningless)')
    if args.json:
        with open(args.json, 'w') as file:
            json.dump(results, file, indent=1)
    return results


if __name__ == '__main__':
    main()
