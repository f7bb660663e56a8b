"""Train a DCGAN on MNIST (the book's GAN example): after every epoch, print the mean
discriminator and generator losses and save 64 digits generated from a fixed noise batch.

    python examples/gan.py [--epochs 5] [--batch-size 128] [--hidden 100] [--out gan-out]
                           [--data-root DIR] [--max-batches N] [--seed 0]

The generator turns noise z (N, hidden) into images (N, 1, 28, 28) in [0, 1]; the
discriminator scores images (N, 1): high for "real". Both are trained with Adam
(alpha 0.0002, beta1 0.5) on the sigmoid cross-entropy of the scores. Full MNIST is read
from the data folder (``--data-root``, default ``$ZEROGRAD_DATA`` or ``~/.zerograd``) or
downloaded; when neither works, the 5,000 digits that ship with zerograd are used.
Pictures (``gan-epoch-001.png``, ...) need matplotlib; without it the training still runs.

On 2 CPU cores a batch of 128 takes 0.6 to 0.9 s (an epoch of full MNIST is 469 batches).
The first couple of hundred batches give grey noise with faint blobs; by about 400 batches
(``--epochs 2 --max-batches 200``) the background is black and most of the 64 pictures are
pen strokes, many of them recognisable digits.
"""
import argparse
import os
import time

import numpy as np

import zerograd
import zerograd.functions as F
import zerograd.layers as L
from zerograd import DataLoader, optimizers, transforms
from zerograd.datasets import MNIST, MNIST5k
from zerograd.models import Model


class Generator(Model):
    """Noise z (N, hidden) -> images (N, 1, 28, 28) in [0, 1]."""

    def __init__(self) -> None:
        super().__init__()
        self.fc1 = L.Linear(1024)
        self.bn1 = L.BatchNorm()
        self.fc2 = L.Linear(128 * 7 * 7)
        self.bn2 = L.BatchNorm()
        self.deconv3 = L.Deconv2d(64, kernel_size=4, stride=2, pad=1)    # 7x7 -> 14x14
        self.bn3 = L.BatchNorm()
        self.deconv4 = L.Deconv2d(1, kernel_size=4, stride=2, pad=1)     # 14x14 -> 28x28

    def forward(self, z):
        h = F.relu(self.bn1(self.fc1(z)))
        h = F.relu(self.bn2(self.fc2(h)))
        h = F.reshape(h, (-1, 128, 7, 7))
        h = F.relu(self.bn3(self.deconv3(h)))
        return F.sigmoid(self.deconv4(h))


class Discriminator(Model):
    """Images (N, 1, 28, 28) -> scores (N, 1); sigmoid(score) is P(real)."""

    def __init__(self) -> None:
        super().__init__()
        self.conv1 = L.Conv2d(64, kernel_size=5, stride=2, pad=2)    # 28x28 -> 14x14
        self.conv2 = L.Conv2d(128, kernel_size=5, stride=2, pad=2)   # 14x14 -> 7x7
        self.bn2 = L.BatchNorm()
        self.fc3 = L.Linear(1024)
        self.bn3 = L.BatchNorm()
        self.fc4 = L.Linear(1)

    def forward(self, x):
        h = F.leaky_relu(self.conv1(x))
        h = F.leaky_relu(self.bn2(self.conv2(h)))
        h = F.flatten(h)
        h = F.leaky_relu(self.bn3(self.fc3(h)))
        return self.fc4(h)


def init_weights(model, example, std=0.02):
    """Create the lazy parameters with one forward pass on ``example`` (in test mode, so the
    batch-norm statistics stay untouched), then redraw every weight as N(0, std^2), the
    DCGAN paper's initialisation; biases and batch-norm parameters keep their defaults."""
    with zerograd.no_grad(), zerograd.test_mode():
        model(example)
    for name, param in model.named_params().items():
        if name.split('/')[-1] == 'W':
            param.data = (np.random.randn(*param.shape) * std).astype(param.dtype)


def load_mnist(root, transform):
    """The MNIST training set from ``root`` (or downloaded); MNIST5k when that fails."""
    try:
        return MNIST(train=True, transform=transform, root=root, timeout=5.0)
    except (OSError, ValueError) as error:  # not cached and not downloadable, or corrupt
        print(f'full MNIST is not available ({type(error).__name__}); using the 5,000 digits '
              'that ship with zerograd (MNIST5k)')
        return MNIST5k(train=True, transform=transform)


def save_grid(images, path, title):
    """Tile images (64, 1, 28, 28) in [0, 1] into an 8 x 8 grid and write it as a PNG
    (matplotlib's Figure, no pyplot). Returns False when matplotlib is missing."""
    try:
        from matplotlib.figure import Figure
    except ImportError:
        return False
    N, _, H, W = images.shape
    cols = 8
    rows = (N + cols - 1) // cols
    grid = np.ones((rows * H, cols * W), dtype=np.float32)
    for k in range(N):
        r, c = divmod(k, cols)
        grid[r * H:(r + 1) * H, c * W:(c + 1) * W] = images[k, 0]
    figure = Figure(figsize=(cols * 0.6, rows * 0.6 + 0.3), dpi=100)
    axes = figure.add_axes((0, 0, 1, rows * 0.6 / (rows * 0.6 + 0.3)))
    axes.imshow(grid, cmap='gray', vmin=0, vmax=1, interpolation='nearest')
    axes.axis('off')
    figure.suptitle(title, fontsize=10)
    figure.savefig(path)
    return True


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    parser.add_argument('--epochs', type=int, default=5)
    parser.add_argument('--batch-size', type=int, default=128)
    parser.add_argument('--hidden', type=int, default=100, help='size of the noise vector z')
    parser.add_argument('--out', default='gan-out', help='folder for the pictures')
    parser.add_argument('--data-root', default=None,
                        help='data folder holding mnist/ (default: $ZEROGRAD_DATA or ~/.zerograd)')
    parser.add_argument('--max-batches', type=int, default=None,
                        help='stop each epoch after this many batches (quick runs)')
    parser.add_argument('--seed', type=int, default=0)
    args = parser.parse_args()
    if args.epochs < 1 or args.batch_size < 2 or args.hidden < 1 \
            or (args.max_batches is not None and args.max_batches < 1):
        parser.error('--epochs, --hidden and --max-batches must be >= 1, --batch-size >= 2 '
                     '(batch norm needs two images)')

    np.random.seed(args.seed)
    os.makedirs(args.out, exist_ok=True)
    # Images as (1, 28, 28) float32 in [0, 1], the range of the generator's sigmoid.
    image = transforms.Compose([transforms.ToFloat(), transforms.Normalize(0., 255.)])
    train_set = load_mnist(args.data_root, image)
    print(f'{type(train_set).__name__}: {len(train_set):,} training digits')
    loader = DataLoader(train_set, args.batch_size)

    gen, dis = Generator(), Discriminator()
    init_weights(gen, np.zeros((2, args.hidden), dtype=np.float32))
    init_weights(dis, np.zeros((2, 1, 28, 28), dtype=np.float32))
    opt_gen = optimizers.Adam(alpha=0.0002, beta1=0.5).setup(gen)
    opt_dis = optimizers.Adam(alpha=0.0002, beta1=0.5).setup(dis)
    fixed_z = np.random.randn(64, args.hidden).astype(np.float32)  # the same 64 every epoch
    pictures = True

    for epoch in range(1, args.epochs + 1):
        start = time.perf_counter()
        sum_dis = sum_gen = 0.0
        count = 0
        for x, _ in loader:
            N = len(x)
            if N < 2:  # batch norm cannot normalise a single image
                continue
            z = np.random.randn(N, args.hidden).astype(np.float32)
            fake = gen(z)

            # Discriminator: real images -> 1, generated ones -> 0. ``fake.data`` cuts the
            # graph, so this step does not backpropagate into the generator.
            loss_dis = (F.sigmoid_cross_entropy(dis(x), np.ones(N, dtype=np.int32))
                        + F.sigmoid_cross_entropy(dis(fake.data), np.zeros(N, dtype=np.int32)))
            dis.cleargrads()
            loss_dis.backward()
            opt_dis.update()

            # Generator: make the (just updated) discriminator score its images as real.
            loss_gen = F.sigmoid_cross_entropy(dis(fake), np.ones(N, dtype=np.int32))
            gen.cleargrads()
            dis.cleargrads()
            loss_gen.backward()
            opt_gen.update()

            sum_dis += float(loss_dis.data)
            sum_gen += float(loss_gen.data)
            count += 1
            if args.max_batches is not None and count >= args.max_batches:
                break
        seconds = time.perf_counter() - start
        print(f'epoch {epoch}  discriminator loss {sum_dis / count:.4f}  '
              f'generator loss {sum_gen / count:.4f}  ({count} batches, {seconds:.1f} s)',
              flush=True)

        if pictures:
            with zerograd.no_grad(), zerograd.test_mode():
                images = gen(fixed_z).data
            path = os.path.join(args.out, f'gan-epoch-{epoch:03d}.png')
            pictures = save_grid(images, path, f'DCGAN, epoch {epoch}')
            if pictures:
                print(f'saved {path}')
            else:
                print("no pictures: matplotlib is not installed (pip install 'zerograd[plot]')")


if __name__ == '__main__':
    main()
