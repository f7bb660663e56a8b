"""The LSTM workload (``recipes.BetterRNN`` on SinCurve: hidden 100, BPTT 30, batch 30,
Adam, float32) against its own arithmetic in bare NumPy: the floor under any engine.

    python benchmarks/bench_lstm.py [--rounds 5] [--check] [--steps [H N]]

``numpy_epoch`` computes what zerograd computes for the same model and data (each step's
four gates x Wx + b + h Wh, the cell, the fc read-out and the mean squared error; every
30 steps backward through them and Adam's fused update) with plain arrays: no Functions,
Variables, layers or checks, nothing recorded. It starts from zerograd's weights, and its
epoch loss is checked against zerograd's. The three epochs (zerograd, torch as in
``workloads.make_lstm``, bare NumPy) are timed in turn, one process, medians printed with
the ratios to torch. What zerograd spends above the bare epoch is its engine, layers and
checks; what the bare epoch spends is NumPy's own (float32 tanh at about 7 ns an element
here, a (30, 100) x (100, 100) product at about 22 us).

``--steps`` takes one 30-step window apart instead (hidden H = 100, batch N = 30 unless
given; ``--steps 4 2`` leaves little but the engine): microseconds per step at each layer
of the stack, forward (the two ops' arithmetic on arrays, + the two Functions, + lstm_step's
checks, + the LSTM layer, + the fc read-out, + the model's call) and backward (the
Functions' backward methods alone, called in turn without the engine; the whole
``loss.backward()``), and what a whole window costs zerograd above the bare loop.
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


def _best_per_step(run, start, steps: int, rounds: int) -> float:
    """The least time, in microseconds a step, of ``run(start())`` over rounds."""
    best = math.inf
    for _ in range(rounds):
        state = start()
        begin = time.perf_counter()
        run(state)
        best = min(best, time.perf_counter() - begin)
    return best / steps * 1e6


def window_parts(H: int, N: int, rounds: int = 200) -> dict:
    """One BPTT window of BetterRNN(H) on a batch of N, taken apart (see the module's
    docstring): {part: microseconds per step}, also printed."""
    import zerograd
    import zerograd.functions as F
    from zerograd.functions.rnn import LSTMOutput, LSTMStep
    from zerograd.recipes import BetterRNN
    T = workloads.LSTM_BPTT
    rng = np.random.default_rng(0)
    xs = [rng.random((N, 1), dtype=np.float32) for _ in range(T)]
    ts = [rng.random((N, 1), dtype=np.float32) for _ in range(T)]
    np.random.seed(0)
    model = BetterRNN(H, 1)
    model(xs[0])  # the lazy weights drawn
    lstm, fc = model.rnn, model.fc
    gates = ('f', 'i', 'o', 'u')
    Wxs = [getattr(lstm, 'x2' + g).W for g in gates]
    bs = [getattr(lstm, 'x2' + g).b for g in gates]
    Whs = [getattr(lstm, 'h2' + g).W for g in gates]
    arrays = [p.data for p in (*Wxs, *bs, *Whs)]

    def first_step():  # every window starts from a second step's state (h and c made)
        model.reset_state()
        model(xs[0])
        return lstm.h, lstm.c

    def forward(step):
        def run(state):
            h, c = state
            for x in xs:
                h, c = step(x, h, c)
        return run

    def on_arrays(x, h, c):
        h, c = (v.data if isinstance(v, zerograd.Variable) else v for v in (h, c))
        c, ao = LSTMStep(False).forward(x, h, c, *arrays)
        return LSTMOutput().forward(c, ao), c

    def two_functions(x, h, c):
        c, ao = LSTMStep(False)(x, h, c, *Wxs, *bs, *Whs)
        return LSTMOutput()(c, ao), c

    def lstm_step(x, h, c):
        c, h = F.lstm_step(x, h, c, Wxs, bs, Whs)
        return h, c

    def lstm_layer(x, h, c):
        lstm(x)
        return lstm.h, lstm.c

    def layer_and_fc(x, h, c):
        fc(lstm(x))
        return lstm.h, lstm.c

    def whole_model(x, h, c):
        model(x)
        return lstm.h, lstm.c

    parts = {}
    for name, step in (('forward: the arithmetic on arrays', on_arrays),
                       ('forward: + LSTMStep and LSTMOutput as Functions', two_functions),
                       ('forward: + lstm_step\'s checks', lstm_step),
                       ('forward: + the LSTM layer', lstm_layer),
                       ('forward: + the fc layer', layer_and_fc),
                       ('forward: + the model\'s call', whole_model)):
        parts[name] = _best_per_step(forward(step), first_step, T, rounds)

    def window():
        first_step()
        model.cleargrads()
        loss = 0
        for x, t in zip(xs, ts):
            loss = loss + F.mean_squared_error(model(x), t)
        return loss

    def methods_alone(calls):  # each Function's backward in turn, ones as gradients
        with zerograd.no_grad():
            for f, gys in calls:
                f.backward(*gys)

    def backward_calls(loss):
        """[(f, ones for each output)] for every Function of loss's graph."""
        found, seen, todo = [], set(), [loss.creator]
        while todo:
            f = todo.pop()
            if f is not None and f not in seen:
                seen.add(f)
                outputs = [ref() for ref in f.outputs]
                found.append((f, [zerograd.Variable(np.ones(y.shape, y.dtype))
                                  for y in outputs]))
                todo.extend(x.creator for x in f.inputs)
        return found

    parts['backward: the Functions\' methods alone'] = _best_per_step(
        methods_alone, lambda: backward_calls(window()), T, rounds)
    parts['backward: loss.backward()'] = _best_per_step(
        lambda loss: loss.backward(), window, T, rounds)

    bare = NumpyLSTM(weights_of(model), T)
    optimizer = zerograd.optimizers.Adam().setup(model)
    batches = list(zip(xs, ts))

    def zerograd_window(_):  # fit_bptt's loop for one window
        model.reset_state()
        loss = 0
        for x, t in batches:
            loss = loss + F.mean_squared_error(model(x), t)
        model.cleargrads()
        loss.backward()
        loss.unchain_backward()
        optimizer.update()

    parts['window, zerograd (forward, backward, unchain, Adam)'] = _best_per_step(
        zerograd_window, lambda: None, T, rounds)
    parts['window, bare NumPy'] = _best_per_step(lambda _: bare.epoch(batches),
                                                 lambda: None, T, rounds)
    print(f'BetterRNN({H}), batch {N}, one {T}-step window; microseconds per step, best '
          f'of {rounds}:')
    for name, us in parts.items():
        print(f'  {name:55s} {us:8.1f}')
    return parts


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument('--rounds', type=int, default=None,
                        help='rounds of 3 epochs a side (default 5); with --steps, the '
                             'runs of which the best is taken (default 200)')
    parser.add_argument('--check', action='store_true',
                        help='only compare the two epochs\' losses (no timing, no torch)')
    parser.add_argument('--steps', nargs='*', type=int, metavar='H N',
                        help='take one window apart (hidden size and batch: 100 30)')
    args = parser.parse_args()
    if args.steps is not None:
        if len(args.steps) not in (0, 2):
            parser.error('--steps takes no values or two: H N')
        window_parts(*(args.steps or (workloads.LSTM_HIDDEN, workloads.LSTM_BATCH)),
                     rounds=args.rounds or 200)
        return
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
    for _ in range(args.rounds or 5):
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
