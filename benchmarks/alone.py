"""The 10,000-op chain (forward + backward) timed in a process of its own per side.

    python benchmarks/alone.py zerograd|torch REPEATS [N_OPS]

Prints one JSON list: the seconds of each run, after one warm-up run. The process imports
only its side's framework, so Python's cyclic GC walks only that side's objects: in one
process with torch loaded, each full collection triggered by zerograd's graph objects
also walks torch's ~150,000 objects (python -m benchmarks runs both ways).
"""
import harness  # noqa: F401  (the thread limits, before NumPy)

import json  # noqa: E402
import sys  # noqa: E402

import numpy as np  # noqa: E402

import bench_deep_chain  # noqa: E402


def main() -> None:
    side, repeats = sys.argv[1], int(sys.argv[2])
    if len(sys.argv) > 3:
        bench_deep_chain.N_OPS = int(sys.argv[3])
    if side == 'zerograd':
        import zerograd
        x = zerograd.Variable(bench_deep_chain.make_input(np))

        def run():
            x.cleargrad()
            y, _ = bench_deep_chain.zerograd_forward(x)
            y.backward()
    else:
        torch = harness.import_torch()
        x = torch.from_numpy(bench_deep_chain.make_input(np)).requires_grad_()

        def run():
            x.grad = None
            y = bench_deep_chain.torch_forward(torch, x)
            y.backward(torch.ones_like(y))
    times = [harness.timed(run) for _ in range(repeats + 1)][1:]  # the first: warm-up
    assert 'torch' not in sys.modules or side == 'torch'
    print(json.dumps(times))


if __name__ == '__main__':
    main()
