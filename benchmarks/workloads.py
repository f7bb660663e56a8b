"""The workloads of issue 6, each for zerograd and PyTorch, built on the benchmark scripts'
own functions (``bench_overhead``, ``bench_mlp``, ``bench_cnn``, ``bench_deep_chain``) plus
two new ones (LSTM on SinCurve, MNIST with its DataLoader).

A workload is a ``Workload``: its name, unit, target ratio (zerograd / torch) and a
``make(torch, quick)`` that returns ``(sides, scale)``: ``sides`` maps 'zerograd' and
'torch' to functions of no arguments (one timed run each), ``scale`` divides a run's
seconds into the unit shown. ``quick`` shrinks the sizes for a smoke run: its timings mean
nothing. A workload measured in processes of its own has ``measure`` instead of ``make``;
its values need not be seconds (page faults per step, bytes of peak memory), and its
target may be absolute (``target_abs``: zerograd's value itself, e.g. at most 256 page
faults per step) instead of a ratio.
"""
from __future__ import annotations

import json
import os
import resource
import statistics
import subprocess
import sys
from dataclasses import dataclass
from typing import Any, Callable

import harness  # noqa: F401  (the thread limits, before NumPy)

import numpy as np  # noqa: E402

import bench_cnn  # noqa: E402
import bench_deep_chain  # noqa: E402
import bench_mlp  # noqa: E402
import bench_overhead  # noqa: E402

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
# The shared data folder (full MNIST's four IDX files in its mnist/ folder), if present.
SHARED_DATA = os.path.join(REPO, '..', 'shared', 'data')


@dataclass
class Workload:
    name: str
    unit: str
    target: float | None  # ratio zerograd / torch to reach (lower is better), or None
    make: Callable[[Any, bool], tuple[dict, float]] | None
    repeats: int = 7
    warmup: int = 1
    note: str = ''
    # Instead of make: measure(quick, repeats) -> (values by side, scale), for a workload
    # measured in processes of its own; each value divided by scale is in the unit shown.
    measure: Callable[[bool, int], tuple[dict, float]] | None = None
    # An absolute target instead of a ratio: met when zerograd's value (in the unit shown)
    # is at most this; the ratio to torch is still shown. target is then None.
    target_abs: float | None = None


# -----------------------------------------------------------------------------
# per-op overhead: bench_overhead's 198-op chain on 1 float32 element
# -----------------------------------------------------------------------------
def make_overhead(torch, quick):
    n = bench_overhead.N_OPS // 3 * 3
    return ({'zerograd': bench_overhead.zerograd_chain,
             'torch': bench_overhead.make_torch(torch)}, n / 1e6)


# -----------------------------------------------------------------------------
# MLP 784-1000-1000-10, SGD, batch 100: bench_mlp, one epoch of 10,000 samples
# -----------------------------------------------------------------------------
def make_mlp(torch, quick):
    if quick:  # bench_mlp's makers read its module globals
        bench_mlp.SAMPLES = 300
        bench_mlp.X, bench_mlp.T = bench_mlp.X[:300], bench_mlp.T[:300]
    return {'zerograd': bench_mlp.make_zerograd(), 'torch': bench_mlp.make_torch(torch)}, 1.0


def make_mlp_gemm(torch, quick):
    """zerograd's MLP epoch against the same epoch's matrix products alone (NumPy)."""
    sides, scale = make_mlp(torch, quick)
    return {'zerograd': sides['zerograd'], 'torch': bench_mlp.make_gemm_only()}, scale


# -----------------------------------------------------------------------------
# CNN step: bench_cnn, ms per step of batch 32
# -----------------------------------------------------------------------------
def make_cnn(torch, quick):
    if quick:
        n = 2 * bench_cnn.BATCH
        bench_cnn.X, bench_cnn.T = bench_cnn.X[:n], bench_cnn.T[:n]
    else:
        bench_cnn.check_same_network(torch)
    steps = len(bench_cnn.X) // bench_cnn.BATCH
    return ({'zerograd': bench_cnn.make_zerograd(), 'torch': bench_cnn.make_torch(torch)},
            steps / 1e3)


# The fresh-process runs, by (zerograd side, quick, repeats): the time row and the
# page-fault row of a side read the same processes.
_CNN_ALONE_RUNS: dict[tuple, dict] = {}


def cnn_alone_runs(zerograd_side, quick, repeats):
    """The CNN step, each side in a fresh process of its own (``bench_cnn.py --alone``:
    only its framework imported, glibc's default allocator settings), 3 rounds alternating
    the sides: {'times': seconds per run by side, 'faults': minor page faults per step of
    each run by side}. Run once per key, then remembered. zerograd_side: 'zerograd'
    (functions on Parameters) or 'layers'."""
    key = (zerograd_side, quick, repeats)
    if key not in _CNN_ALONE_RUNS:
        script = os.path.join(os.path.dirname(os.path.abspath(__file__)), 'bench_cnn.py')
        rounds = 1 if quick else 3
        times, faults = {'zerograd': [], 'torch': []}, {'zerograd': [], 'torch': []}
        for _ in range(rounds):
            for side, arg in (('zerograd', zerograd_side), ('torch', 'torch')):
                proc = subprocess.run([sys.executable, script, '--alone', arg,
                                       str(max(1, repeats // rounds)),
                                       *(['--quick'] if quick else [])],
                                      capture_output=True, text=True, timeout=600,
                                      check=False)
                if proc.returncode != 0:
                    raise RuntimeError(f'bench_cnn.py --alone {arg} failed:\n{proc.stderr}')
                result = json.loads(proc.stdout.strip().splitlines()[-1])
                times[side] += result['times']
                faults[side] += result['faults']
        _CNN_ALONE_RUNS[key] = {'times': times, 'faults': faults}
    return _CNN_ALONE_RUNS[key]


def measure_cnn_alone(zerograd_side):
    """The fresh-process CNN step's time (ms per step)."""
    def measure(quick, repeats):
        steps = (2 if quick else len(bench_cnn.X) // bench_cnn.BATCH)
        return cnn_alone_runs(zerograd_side, quick, repeats)['times'], steps / 1e3
    return measure


def measure_cnn_faults(zerograd_side):
    """The same processes' minor page faults per step (``ru_minflt``: fresh pages from the
    kernel). Give the Workload the time row's repeats, so that it reads the same runs."""
    def measure(quick, repeats):
        return cnn_alone_runs(zerograd_side, quick, repeats)['faults'], 1.0
    return measure


# Issue 16: a steady-state step touches at most 1 MB of fresh pages.
PAGE_SIZE = resource.getpagesize()
FAULTS_TARGET = 2**20 // PAGE_SIZE  # 256 pages of 4 KiB


# -----------------------------------------------------------------------------
# 10,000-op chain on 1,000 float32: bench_deep_chain's forwards (time only)
# -----------------------------------------------------------------------------
def _deep_inputs(torch, quick):
    if quick:
        bench_deep_chain.N_OPS = 300
    import zerograd
    x_zg = zerograd.Variable(bench_deep_chain.make_input(np))
    x_t = torch.from_numpy(bench_deep_chain.make_input(np)).requires_grad_()
    return zerograd, x_zg, x_t


def make_deep_chain(torch, quick):
    zerograd, x_zg, x_t = _deep_inputs(torch, quick)

    def zerograd_side():
        x_zg.cleargrad()
        y, _ = bench_deep_chain.zerograd_forward(x_zg)
        y.backward()
        del y

    def torch_side():
        x_t.grad = None
        y = bench_deep_chain.torch_forward(torch, x_t)
        y.backward(torch.ones_like(y))
        del y
    return {'zerograd': zerograd_side, 'torch': torch_side}, 1e-3


def measure_deep_chain_alone(quick, repeats):
    """The fwd+bwd chain, each side in a fresh process that imports only its own framework
    (benchmarks/alone.py), 3 rounds alternating the sides, repeats // 3 runs per process."""
    script = os.path.join(os.path.dirname(os.path.abspath(__file__)), 'alone.py')
    n_ops = ['300'] if quick else []
    rounds = 1 if quick else 3
    times = {'zerograd': [], 'torch': []}
    for _ in range(rounds):
        for side in times:
            proc = subprocess.run([sys.executable, script, side,
                                   str(max(1, repeats // rounds)), *n_ops],
                                  capture_output=True, text=True, timeout=600, check=False)
            if proc.returncode != 0:
                raise RuntimeError(f'alone.py {side} failed:\n{proc.stderr}')
            times[side] += json.loads(proc.stdout.strip().splitlines()[-1])
    return times, 1e-3


def measure_chain_memory(mode):
    """The chain's peak memory, forward + backward, each measurement in a fresh process
    (``bench_deep_chain.run_child``, started through its small launcher so that this
    process's size does not leak into the child's ``ru_maxrss``): the peak RSS above the
    RSS just before the workload, bytes. mode: 'grad' (after a warm-up on a 3-op chain)
    or 'coldgrad' (the first forward + backward of the process). repeats processes per
    side, alternating (1 with --quick, on a 3,000-op chain)."""
    def measure(quick, repeats):
        n_ops = 3000 if quick else bench_deep_chain.N_OPS
        peaks, hwm, hidden = {'zerograd': [], 'torch': []}, {'zerograd': [], 'torch': []}, []
        for _ in range(1 if quick else repeats):
            for side in peaks:
                result = bench_deep_chain.run_child(side, mode, n_ops)
                peaks[side].append(result['peak_increase'])
                hwm[side].append(result['hwm_increase'])
                if result['peak_hidden']:
                    hidden.append(side)
        print('    VmHWM cross-check (median): ' + ', '.join(
            f'{side} +{statistics.median(values) / 1e6:.2f} MB' for side, values in hwm.items()
            if None not in values) + (f'; WARNING: ru_maxrss did not rise in {hidden}: an '
                                      'earlier peak hides the workload\'s' if hidden else ''),
            flush=True)
        return peaks, 1e6
    return measure


def make_deep_chain_nograd(torch, quick):
    zerograd, x_zg, x_t = _deep_inputs(torch, quick)

    def zerograd_side():
        with zerograd.no_grad():
            bench_deep_chain.zerograd_forward(x_zg)

    def torch_side():
        with torch.no_grad():
            bench_deep_chain.torch_forward(torch, x_t)
    return {'zerograd': zerograd_side, 'torch': torch_side}, 1e-3


# -----------------------------------------------------------------------------
# LSTM (hidden 100, BPTT 30, batch 30), one epoch on SinCurve
# -----------------------------------------------------------------------------
LSTM_HIDDEN, LSTM_BPTT, LSTM_BATCH = 100, 30, 30


def _sin_curve():
    from zerograd import datasets
    np.random.seed(0)
    ds = datasets.SinCurve(train=True)
    # float32 on both sides (SinCurve is float64, torch's layers are float32)
    ds.data, ds.label = ds.data.astype(np.float32), ds.label.astype(np.float32)
    return ds


def make_lstm(torch, quick):
    """zerograd: recipes.BetterRNN (the book's step 60 model) trained by
    ``training.fit_bptt`` with Adam. torch: ``nn.LSTMCell`` + ``nn.Linear`` in the same
    loop (the loss summed over 30 steps, backward, the state detached, Adam step). Both read
    the same batches from the same ``SeqDataLoader`` (999 points, 34 steps, 2 updates)."""
    from zerograd import optimizers, training
    from zerograd.dataloaders import SeqDataLoader
    from zerograd.recipes import BetterRNN
    ds = _sin_curve()
    loader = SeqDataLoader(ds, batch_size=LSTM_BATCH)
    np.random.seed(0)
    model = BetterRNN(LSTM_HIDDEN, 1)
    optimizer = optimizers.Adam().setup(model)

    def zerograd_epoch():
        training.fit_bptt(model, optimizer, loader, 1, LSTM_BPTT, quiet=True)

    torch.manual_seed(0)
    cell, fc = torch.nn.LSTMCell(1, LSTM_HIDDEN), torch.nn.Linear(LSTM_HIDDEN, 1)
    t_optimizer = torch.optim.Adam(list(cell.parameters()) + list(fc.parameters()))
    mse = torch.nn.functional.mse_loss

    def torch_epoch():
        state, loss, count, steps = None, 0, 0, len(loader)
        for x, t in loader:
            state = cell(torch.from_numpy(x), state)
            loss = loss + mse(fc(state[0]), torch.from_numpy(t))
            count += 1
            if count % LSTM_BPTT == 0 or count == steps:
                t_optimizer.zero_grad()
                loss.backward()
                state = (state[0].detach(), state[1].detach())  # unchain_backward
                t_optimizer.step()
                loss = 0
    return {'zerograd': zerograd_epoch, 'torch': torch_epoch}, 1.0


# -----------------------------------------------------------------------------
# MNIST MLP epoch with DataLoader and the MNIST transform (data pipeline included)
# -----------------------------------------------------------------------------
MNIST_HIDDEN, MNIST_BATCH = 1000, 100


def mnist_dataset(quick):
    """Full MNIST's training set (60,000) from the shared data folder when it is there,
    else the embedded MNIST5k (4,000); a few hundred items for --quick."""
    from zerograd import datasets
    if not quick and datasets.MNIST.available(SHARED_DATA):
        ds, label = datasets.MNIST(train=True, root=SHARED_DATA), 'MNIST'
    else:
        ds, label = datasets.MNIST5k(train=True), 'MNIST5k'
    if quick:
        ds.data, ds.label = ds.data[:300], ds.label[:300]
    return ds, label


def make_mnist(torch, quick):
    """zerograd: ``datasets.MNIST`` with its default transform (Flatten, ToFloat,
    Normalize(0, 255), applied item by item) through ``DataLoader(shuffle=True)``, MLP
    784-1000-10 ReLU, SGD lr 0.1, batch 100 (the book's step 51). torch: what a PyTorch
    user writes for the same data: a ``torch.utils.data.Dataset`` over the same uint8
    array whose ``__getitem__`` does the same per-item transform in torch
    (``from_numpy(img).reshape(-1).float() / 255``), ``torch.utils.data.DataLoader``
    (batch 100, shuffle, default collate, no worker processes), and the same network."""
    import zerograd.functions as F
    from zerograd import optimizers
    from zerograd.dataloaders import DataLoader
    from zerograd.models import MLP
    ds, _ = mnist_dataset(quick)
    loader = DataLoader(ds, batch_size=MNIST_BATCH, shuffle=True)
    np.random.seed(0)
    model = MLP((MNIST_HIDDEN, 10), activation=F.relu)
    optimizer = optimizers.SGD(lr=0.1).setup(model)

    def zerograd_epoch():
        for x, t in loader:
            loss = F.softmax_cross_entropy(model(x), t)
            model.cleargrads()
            loss.backward()
            optimizer.update()

    data, labels = ds.data, ds.label

    class TorchMNIST(torch.utils.data.Dataset):
        def __len__(self):
            return len(data)

        def __getitem__(self, i):
            return torch.from_numpy(data[i]).reshape(-1).float() / 255.0, int(labels[i])

    t_loader = torch.utils.data.DataLoader(TorchMNIST(), batch_size=MNIST_BATCH, shuffle=True)
    torch.manual_seed(0)
    nn = torch.nn
    t_model = nn.Sequential(nn.Linear(784, MNIST_HIDDEN), nn.ReLU(), nn.Linear(MNIST_HIDDEN, 10))
    t_optimizer = torch.optim.SGD(t_model.parameters(), lr=0.1)

    def torch_epoch():
        for x, t in t_loader:
            loss = nn.functional.cross_entropy(t_model(x), t)
            t_optimizer.zero_grad()
            loss.backward()
            t_optimizer.step()
    return {'zerograd': zerograd_epoch, 'torch': torch_epoch}, 1.0


# The targets are issue 16's (per-op 0.7, MLP 0.9, GEMM floor 1.15, CNN 1.2 in any process,
# at most 1 MB of fresh pages per CNN step, the chain 1.1 beside torch's objects, the
# chain's peak memory 1.0, LSTM 0.85); issue 6's were 0.8, 0.95, 1.15, 1.2, 1.0, 1.0.
WORKLOADS = [
    Workload('per-op overhead (198-op chain, 1 elem, fwd+bwd+free)', 'us/op', 0.7,
             make_overhead, repeats=30, warmup=2),
    Workload('MLP 784-1000-1000-10 SGD epoch (10k samples, batch 100)', 's', 0.9,
             make_mlp, repeats=5),
    Workload('MLP epoch against its GEMMs alone (NumPy; torch column = GEMMs)', 's', 1.15,
             make_mlp_gemm, repeats=5),
    Workload('CNN step (batch 32, 2 convs, pool, linear)', 'ms/step', 1.2,
             make_cnn, repeats=9),
    Workload('CNN step, each side in a fresh process', 'ms/step', 1.2,
             None, repeats=9, measure=measure_cnn_alone('zerograd')),
    Workload('CNN minor page faults per step, fresh process', 'faults/step', None,
             None, repeats=9, measure=measure_cnn_faults('zerograd'),
             target_abs=FAULTS_TARGET),
    Workload('CNN step, layers API (L.Conv2d, L.Linear), fresh process', 'ms/step', 1.2,
             None, repeats=9, measure=measure_cnn_alone('layers')),
    Workload('CNN minor page faults per step, layers API, fresh process', 'faults/step',
             None, None, repeats=9, measure=measure_cnn_faults('layers'),
             target_abs=FAULTS_TARGET),
    Workload('10,000-op chain on 1,000 elem, fwd+bwd', 'ms', 1.1,
             make_deep_chain, repeats=9),
    Workload('10,000-op chain on 1,000 elem, fwd+bwd, each side alone', 'ms', 1.0,
             None, repeats=9, measure=measure_deep_chain_alone),
    Workload('10,000-op chain on 1,000 elem, no_grad fwd', 'ms', 1.0,
             make_deep_chain_nograd, repeats=9),
    Workload('10,000-op chain, peak memory (steady state)', 'MB', 1.0, None,
             repeats=bench_deep_chain.MEMORY_REPEATS, measure=measure_chain_memory('grad')),
    Workload('10,000-op chain, peak memory (first run)', 'MB', 1.0, None,
             repeats=bench_deep_chain.MEMORY_REPEATS,
             measure=measure_chain_memory('coldgrad')),
    Workload('LSTM h100 BPTT30 batch30, SinCurve epoch', 's', 0.85, make_lstm, repeats=15),
    Workload('MNIST MLP 784-1000-10 epoch, DataLoader+transform', 's', 1.0,
             make_mnist, repeats=3),
]
