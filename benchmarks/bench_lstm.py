"""The LSTM workload (``recipes.BetterRNN`` on SinCurve: hidden 100, BPTT 30, batch 30,
Adam, float32) against its own arithmetic in bare NumPy: the floor under any engine.

    python benchmarks/bench_lstm.py [--rounds 5] [--check]

``numpy_epoch`` computes what zerograd computes for the same model and data (each step's
four gates x Wx + b + h Wh, the cell, the fc read-out and the mean squared error; every
30 steps backward through them and Adam's fused update) with plain arrays: no Functions,
Variables, layers or checks, nothing recorded. It starts from zerograd's weights, and its
epoch loss is checked against zerograd's. The three epochs (zerograd, torch as in
``workloads.make_lstm``, bare NumPy) are timed in turn, one process, medians printed with
the ratios to torch. What zerograd spends above the bare epoch is its engine, layers and
checks; what the bare epoch spends is NumPy's own (float32 tanh at about 7 ns an element
here, a (30, 100) x (100, 100) product at about 22 us).
"""
import harness  # noqa: F401  (sets the thread limits first)

import argparse  # noqa: E402
import math  # noqa: E402
import statistics  # noqa: E402
import time  # noqa: E402

import numpy as np  # noqa: E402

import workloads  # noqa: E402

BETA1, BETA2, EPS, ALPHA = 0.9, 0.999, 1e-8, 0.001  # Adam's defaults, as the workload's


def _sigmoid(a):
    y = np.tanh(a * 0.5)  # zerograd's sigmoid: 0.5 tanh(0.5 a) + 0.5
    y *= 0.5
    y += 0.5
    return y


def weights_of(model):
    """The model's arrays (copies), by name: Wx, b, Wh (four gates each, f i o u), W, bo."""
    lstm = model.rnn
    gates = ('f', 'i', 'o', 'u')
    return {'Wx': [getattr(lstm, 'x2' + g).W.data.copy() for g in gates],
            'b': [getattr(lstm, 'x2' + g).b.data.copy() for g in gates],
            'Wh': [getattr(lstm, 'h2' + g).W.data.copy() for g in gates],
            'W': model.fc.W.data.copy(), 'bo': model.fc.b.data.copy()}


class NumpyLSTM:
    """BetterRNN's training in bare NumPy: ``epoch(loader)`` returns the summed loss over
    the steps divided by their count (fit_bptt's train_loss)."""

    def __init__(self, weights: dict, bptt: int) -> None:
        self.p = weights
        self.bptt = bptt
        self.flat = [*weights['Wx'], *weights['b'], *weights['Wh'], weights['W'],
                     weights['bo']]
        self.m = [np.zeros_like(a) for a in self.flat]
        self.v = [np.zeros_like(a) for a in self.flat]
        self.scratch = [(np.empty_like(a), np.empty_like(a)) for a in self.flat]
        self.t = 0

    def epoch(self, loader) -> float:
        Wx, b, Wh, W, bo = (self.p[k] for k in ('Wx', 'b', 'Wh', 'W', 'bo'))
        h = c = None
        steps, total, count = [], 0.0, 0
        for x, t in loader:
            if h is None:  # the first step: no h, no c (c = i u)
                a = [x * Wx[k] + b[k] for k in range(4)]  # x (N, 1): the k=1 products
                f, i, o, u = _sigmoid(a[0]), _sigmoid(a[1]), _sigmoid(a[2]), np.tanh(a[3])
                c_new = i * u
            else:
                a = [x * Wx[k] + b[k] + h @ Wh[k] for k in range(4)]
                f, i, o, u = _sigmoid(a[0]), _sigmoid(a[1]), _sigmoid(a[2]), np.tanh(a[3])
                c_new = f * c + i * u
            tc = np.tanh(c_new)
            h_new = o * tc
            y = h_new @ W
            y += bo
            diff = y - t
            total += float((diff * diff).sum() / diff.dtype.type(len(diff)))
            steps.append((x, h, c, f, i, o, u, tc, h_new, diff))
            h, c = h_new, c_new
            count += 1
            if count % self.bptt == 0 or count == len(loader):
                self._backward_and_update(steps)
                steps = []
        return total / count

    def _backward_and_update(self, steps: list) -> None:
        Wx, Wh, W = self.p['Wx'], self.p['Wh'], self.p['W']
        gWx = [np.zeros_like(a) for a in Wx]
        gb = [np.zeros_like(a) for a in self.p['b']]
        gWh = [np.zeros_like(a) for a in Wh]
        gW, gbo = np.zeros_like(W), np.zeros_like(self.p['bo'])
        gh_next = gc_next = None
        for x, h, c, f, i, o, u, tc, h_new, diff in reversed(steps):
            gy = diff * (2.0 / len(diff))
            gW += h_new.T @ gy
            gbo += gy.sum(axis=0)
            gh = gy @ W.T
            if gh_next is not None:
                gh += gh_next
            gc = gh * o * (1 - tc * tc)
            if gc_next is not None:
                gc += gc_next
            gao = gh * tc * o * (1 - o)
            gai = gc * u * i * (1 - i)
            gau = gc * i * (1 - u * u)
            if h is None:  # the first step: f unused, no h or c before it
                ga = (None, gai, gao, gau)
                gh_next = gc_next = None
            else:
                ga = (gc * c * f * (1 - f), gai, gao, gau)
                gc_next = gc * f
                gh_next = ga[0] @ Wh[0].T
                for k in range(1, 4):
                    gh_next += ga[k] @ Wh[k].T
            for k in range(4):
                if ga[k] is None:
                    continue
                gWx[k] += x.T @ ga[k]
                gb[k] += ga[k].sum(axis=0)
                if h is not None:
                    gWh[k] += h.T @ ga[k]
        self._adam([*gWx, *gb, *gWh, gW, gbo])

    def _adam(self, grads: list) -> None:
        """Adam's fused update, as zerograd's: the same 12 operations in place."""
        self.t += 1
        lr = ALPHA * math.sqrt(1 - BETA2 ** self.t) / (1 - BETA1 ** self.t)
        for p, g, m, v, (s1, s2) in zip(self.flat, grads, self.m, self.v, self.scratch):
            np.subtract(g, m, out=s1)
            np.multiply(s1, 1 - BETA1, out=s1)
            np.add(m, s1, out=m)
            np.multiply(g, g, out=s1)
            np.subtract(s1, v, out=s1)
            np.multiply(s1, 1 - BETA2, out=s1)
            np.add(v, s1, out=v)
            np.multiply(m, lr, out=s1)
            np.sqrt(v, out=s2)
            np.add(s2, EPS, out=s2)
            np.divide(s1, s2, out=s1)
            np.subtract(p, s1, out=p)


def same_start():
    """zerograd's first epoch and the bare one's from the same weights: (the bare
    NumpyLSTM, its loader, zerograd's epoch loss, the bare epoch's loss); an
    AssertionError if the losses differ by more than float32 rounding."""
    from zerograd import optimizers, training
    from zerograd.dataloaders import SeqDataLoader
    from zerograd.recipes import BetterRNN
    loader = SeqDataLoader(workloads._sin_curve(), batch_size=workloads.LSTM_BATCH)
    np.random.seed(0)
    model = BetterRNN(workloads.LSTM_HIDDEN, 1)
    model(next(iter(loader))[0])  # the lazy weights drawn
    bare = NumpyLSTM(weights_of(model), workloads.LSTM_BPTT)
    optimizer = optimizers.Adam().setup(model)
    history = training.fit_bptt(model, optimizer, loader, 1, workloads.LSTM_BPTT, quiet=True)
    z_loss, b_loss = history['train_loss'][0], bare.epoch(loader)
    if not math.isclose(z_loss, b_loss, rel_tol=1e-5):
        raise AssertionError(f'the bare epoch is not zerograd\'s: loss {b_loss} against '
                             f'{z_loss}')
    return bare, loader, z_loss, b_loss


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument('--rounds', type=int, default=5)
    parser.add_argument('--check', action='store_true',
                        help='only compare the two epochs\' losses (no timing, no torch)')
    args = parser.parse_args()
    bare, loader, z_loss, b_loss = same_start()
    print(f'epoch loss from the same weights: zerograd {z_loss:.7g}, bare NumPy {b_loss:.7g}')
    if args.check:
        return
    torch = harness.import_torch()
    if torch is None:
        raise SystemExit('bench_lstm.py compares against PyTorch: install torch==2.13.0')
    sides, _ = workloads.make_lstm(torch, False)
    sides['numpy'] = lambda: bare.epoch(loader)
    times = {name: [] for name in sides}
    for name in sides:
        sides[name]()  # warm-up
    for _ in range(args.rounds):
        for name, run in sides.items():
            for _ in range(3):
                start = time.perf_counter()
                run()
                times[name].append(time.perf_counter() - start)
    t = statistics.median(times['torch'])
    for name in ('zerograd', 'torch', 'numpy'):
        z = statistics.median(times[name])
        print(f'{name:9s} {z * 1e3:7.2f} ms/epoch   {z / t:.2f}x torch')


if __name__ == '__main__':
    main()
