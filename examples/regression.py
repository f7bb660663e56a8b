"""Sine regression with a two-layer MLP (the book's steps 43-46).

    python examples/regression.py [--plot fit.png]
"""
import argparse

import numpy as np

import zerograd.functions as F
from zerograd import optimizers
from zerograd.models import MLP


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    parser.add_argument('--iters', type=int, default=10000)
    parser.add_argument('--plot', help='save the fit to this PNG (needs matplotlib)')
    args = parser.parse_args()

    np.random.seed(0)
    x = np.random.rand(100, 1)
    y = np.sin(2 * np.pi * x) + np.random.rand(100, 1)
    model = MLP((10, 1))
    optimizer = optimizers.SGD(0.2).setup(model)
    for i in range(args.iters):
        loss = F.mean_squared_error(y, model(x))
        model.cleargrads()
        loss.backward()
        optimizer.update()
        if i % 1000 == 0:
            print(f'iteration {i:5d}  loss {float(loss.data):.6f}')
    print(f'final loss {float(loss.data):.6f}')

    if args.plot:
        try:
            import matplotlib
            matplotlib.use('Agg')
            import matplotlib.pyplot as plt
        except ImportError:
            print("no plot: matplotlib is not installed (pip install 'zerograd[plot]')")
            return
        t = np.linspace(0, 1, 200)[:, None]
        plt.scatter(x, y, s=10)
        plt.plot(t, model(t).data, color='r')
        plt.xlabel('x')
        plt.ylabel('y')
        plt.savefig(args.plot)
        print(f'saved {args.plot}')


if __name__ == '__main__':
    main()
