"""Newton's method with the second derivative from double backprop (the book's step 33),
and the graph of the 4th derivative of tanh (step 35).

    python examples/newton.py [--graph tanh.png]
"""
import argparse

import numpy as np

import zerograd.functions as F
from zerograd import Variable
from zerograd.utils import plot_dot_graph


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    parser.add_argument('--graph', help="draw the tanh graph here (needs Graphviz's dot)")
    args = parser.parse_args()

    x = Variable(np.array(2.0))
    for i in range(8):
        print(i, x)
        y = x ** 4 - 2 * x ** 2
        x.cleargrad()
        y.backward(create_graph=True)
        gx = x.grad
        x.cleargrad()
        gx.backward()
        x.data = x.data - gx.data / x.grad.data

    if args.graph:
        x = Variable(np.array(1.0), name='x')
        y = F.tanh(x)
        y.backward(create_graph=True)
        for _ in range(3):
            gx = x.grad
            x.cleargrad()
            gx.backward(create_graph=True)
        gx = x.grad
        gx.name = 'gx4'
        print('saved', plot_dot_graph(gx, verbose=False, to_file=args.graph))


if __name__ == '__main__':
    main()
