"""Classify the spiral dataset with an MLP (the book's steps 48-50): prints loss and
accuracy, and saves the decision boundary when matplotlib is installed.

    python examples/spiral.py [--epochs 300] [--plot spiral.png]
"""
import argparse

import numpy as np

import zerograd
import zerograd.functions as F
from zerograd import DataLoader, optimizers
from zerograd.datasets import Spiral
from zerograd.models import MLP


def evaluate(model, loader):
    sum_loss = sum_acc = 0.0
    with zerograd.no_grad():
        for x, t in loader:
            y = model(x)
            sum_loss += float(F.softmax_cross_entropy(y, t).data) * len(t)
            sum_acc += float(F.accuracy(y, t).data) * len(t)
    n = len(loader.dataset)
    return sum_loss / n, sum_acc / n


def plot_boundary(model, dataset, path):
    try:
        import matplotlib
        matplotlib.use('Agg')
        import matplotlib.pyplot as plt
    except ImportError:
        print("no plot: matplotlib is not installed (pip install 'zerograd[plot]')")
        return
    h = 0.01
    x_min, x_max = dataset.data[:, 0].min() - 0.1, dataset.data[:, 0].max() + 0.1
    y_min, y_max = dataset.data[:, 1].min() - 0.1, dataset.data[:, 1].max() + 0.1
    xx, yy = np.meshgrid(np.arange(x_min, x_max, h), np.arange(y_min, y_max, h))
    grid = np.c_[xx.ravel(), yy.ravel()].astype(np.float32)
    with zerograd.no_grad():
        predicted = np.argmax(model(grid).data, axis=1).reshape(xx.shape)
    plt.contourf(xx, yy, predicted, alpha=0.3)
    for label, marker in zip(range(3), 'ox^'):
        points = dataset.data[dataset.label == label]
        plt.scatter(points[:, 0], points[:, 1], marker=marker, s=30)
    plt.savefig(path)
    print(f'saved {path}')


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    parser.add_argument('--epochs', type=int, default=300)
    parser.add_argument('--batch-size', type=int, default=30)
    parser.add_argument('--hidden', type=int, default=10)
    parser.add_argument('--lr', type=float, default=1.0)
    parser.add_argument('--plot', default='spiral.png', help='decision-boundary PNG')
    args = parser.parse_args()

    np.random.seed(0)
    train_set, test_set = Spiral(train=True), Spiral(train=False)
    train_loader = DataLoader(train_set, args.batch_size)
    test_loader = DataLoader(test_set, args.batch_size, shuffle=False)
    model = MLP((args.hidden, 3))
    optimizer = optimizers.SGD(args.lr).setup(model)

    for epoch in range(args.epochs):
        for x, t in train_loader:
            loss = F.softmax_cross_entropy(model(x), t)
            model.cleargrads()
            loss.backward()
            optimizer.update()
        if (epoch + 1) % 50 == 0 or epoch + 1 == args.epochs:
            train_loss, train_acc = evaluate(model, train_loader)
            test_loss, test_acc = evaluate(model, test_loader)
            print(f'epoch {epoch + 1:3d}  train loss {train_loss:.4f} accuracy {train_acc:.4f}'
                  f'  test loss {test_loss:.4f} accuracy {test_acc:.4f}')
    if args.plot:
        plot_boundary(model, train_set, args.plot)


if __name__ == '__main__':
    main()
