"""The ``zerograd`` command (also ``python -m zerograd``).

    zerograd demo [--out DIR]   the book's Newton's method and a picture of a graph
"""
from __future__ import annotations

import argparse
import os
import sys

import numpy as np


def newton_demo() -> list[float]:
    """Minimise x^4 - 2x^2 from x = 2 with Newton's method, the second derivative coming
    from ``backward(create_graph=True)`` (the book's step 33). Returns the 8 iterates."""
    from zerograd import Variable
    x = Variable(np.array(2.0))
    iterates = []
    for _ in range(8):
        iterates.append(float(x.data))
        y = x ** 4 - 2 * x ** 2
        x.cleargrad()
        y.backward(create_graph=True)
        gx = x.grad
        x.cleargrad()
        gx.backward()
        gx2 = x.grad
        x.data = x.data - gx.data / gx2.data
    return iterates


def tanh_graph(order: int = 4):
    """The graph of the ``order``-th derivative of tanh at x = 1 (the book's step 35)."""
    import zerograd.functions as F
    from zerograd import Variable
    x = Variable(np.array(1.0), name='x')
    y = F.tanh(x)
    y.name = 'y'
    y.backward(create_graph=True)
    for _ in range(order - 1):
        gx = x.grad
        x.cleargrad()
        gx.backward(create_graph=True)
    gx = x.grad
    gx.name = f'gx{order}'
    return gx


def demo(out: str) -> int:
    """Print the Newton run and draw the tanh graph into the folder ``out``."""
    from zerograd import utils
    print("Newton's method on y = x^4 - 2x^2 from x = 2 (second derivative by double backprop):")
    for i, x in enumerate(newton_demo()):
        print(f'  {i} {x!r}')
    os.makedirs(out, exist_ok=True)
    gx = tanh_graph(4)
    path = os.path.join(out, 'tanh_4th_derivative.png')
    dot_path = os.path.join(out, 'tanh_4th_derivative.dot')
    with open(dot_path, 'w') as file:
        file.write(utils.get_dot_graph(gx, verbose=False))
    try:
        utils.plot_dot_graph(gx, verbose=False, to_file=path)
    except RuntimeError as error:
        print(f'The graph is in {dot_path}; no picture: {error}')
        return 0
    print(f'The graph of the 4th derivative of tanh: {path}')
    return 0


def main(argv: list[str] | None = None) -> int:
    """The ``zerograd`` command; returns the exit status."""
    parser = argparse.ArgumentParser(prog='zerograd', description=__doc__.split('\n')[0])
    commands = parser.add_subparsers(dest='command', metavar='COMMAND')
    demo_parser = commands.add_parser('demo', help="the book's Newton's method and a graph picture")
    demo_parser.add_argument('--out', default='zerograd-demo', help='output folder')
    args = parser.parse_args(argv)
    if args.command == 'demo':
        return demo(args.out)
    parser.print_help()
    return 2


if __name__ == '__main__':
    sys.exit(main())
