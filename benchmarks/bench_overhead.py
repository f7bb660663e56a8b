"""Per-op overhead: a 200-op chain on a 1-element float32 array, cycling sin(y), y * 1.0001,
y + 0.1; forward, backward and freeing the graph. Prints microseconds per op.

    python benchmarks/bench_overhead.py
"""
import harness  # noqa: F401  (sets the thread limits first)

import numpy as np  # noqa: E402

import zerograd  # noqa: E402
import zerograd.functions as F  # noqa: E402

N_OPS = 200


def zerograd_chain():
    x = zerograd.Variable(np.array([0.5], dtype=np.float32))
    y = x
    for i in range(N_OPS // 3):
        y = F.sin(y)
        y = y * 1.0001
        y = y + 0.1
    y.backward()
    del y  # the graph is freed here


def make_torch(torch):
    """The same chain on torch (a function of no arguments)."""
    def torch_chain():
        x = torch.tensor([0.5], dtype=torch.float32, requires_grad=True)
        y = x
        for i in range(N_OPS // 3):
            y = torch.sin(y)
            y = y * 1.0001
            y = y + 0.1
        y.backward()
        del y
    return torch_chain


def main():
    sides = {'zerograd': zerograd_chain}
    torch = harness.import_torch()
    if torch is not None:
        sides['torch'] = make_torch(torch)
    n = N_OPS // 3 * 3
    times = harness.compare(sides, repeats=30)
    print(harness.machine())
    harness.report(f'{n}-op chain, forward + backward + free, per op', times,
                   scale=n / 1e6, unit='us')


if __name__ == '__main__':
    main()
