"""Train a variational autoencoder on MNIST (the book's VAE example): after every epoch,
print the mean loss and save reconstructions of test digits, 64 digits decoded from
N(0, 1) noise and, with a 2-D latent space, the manifold of digits it has learned.

    python examples/vae.py [--epochs 10] [--batch-size 100] [--hidden 400] [--latent 2]
                           [--out vae-out] [--data-root DIR] [--max-batches N] [--seed 0]

Encoder: x (N, 784) -> Linear(hidden) + ReLU -> mean (N, latent) and log variance
(N, latent). A code is drawn with the reparameterisation trick, z = mean + exp(log_var / 2)
* eps with eps ~ N(0, 1), so the gradient flows through mean and log_var. Decoder:
z -> Linear(hidden) + ReLU -> Linear(784) + sigmoid, the probability of each pixel.

Loss per digit (the negative evidence lower bound), averaged over the batch:
binary cross-entropy between the digit and the decoder's probabilities, summed over the
784 pixels, plus the KL divergence of N(mean, exp(log_var)) from N(0, 1),
-1/2 sum(1 + log_var - mean^2 - exp(log_var)). The cross-entropy is computed from the
decoder's scores before the sigmoid (``F.sigmoid_cross_entropy``): the same value as
``F.binary_cross_entropy`` of the probabilities, without the clipping that a saturated
sigmoid would need. Adam. Full MNIST is read from the data folder (``--data-root``,
default ``$ZEROGRAD_DATA`` or ``~/.zerograd``) or downloaded; when neither works, the 5,000
digits that ship with zerograd are used. Pictures need matplotlib; without it the
training still runs.

On full MNIST an epoch takes a few seconds. With ``--latent 2`` the test loss is about 163
after 3 epochs and the reconstructions are blurred towards the nearest typical digit, but
the manifold picture shows the whole code space; ``--latent 20`` reaches about 113 in
2 epochs with sharp reconstructions.
"""
import argparse
import os
import time

import numpy as np

import zerograd
import zerograd.functions as F
import zerograd.layers as L
from zerograd import DataLoader, optimizers
from zerograd.datasets import MNIST, MNIST5k
from zerograd.models import Model


class Encoder(Model):
    """Digits x (N, 784) -> (mean, log_var), each (N, latent)."""

    def __init__(self, hidden: int, latent: int) -> None:
        super().__init__()
        self.fc = L.Linear(hidden)
        self.fc_mean = L.Linear(latent)
        self.fc_log_var = L.Linear(latent)

    def forward(self, x):
        h = F.relu(self.fc(x))
        return self.fc_mean(h), self.fc_log_var(h)


class Decoder(Model):
    """Codes z (N, latent) -> pixel scores (N, 784); ``F.sigmoid`` of them are the
    probabilities, the decoded image."""

    def __init__(self, hidden: int) -> None:
        super().__init__()
        self.fc1 = L.Linear(hidden)
        self.fc2 = L.Linear(28 * 28)

    def forward(self, z):
        return self.fc2(F.relu(self.fc1(z)))


class VAE(Model):
    def __init__(self, hidden: int, latent: int) -> None:
        super().__init__()
        self.encoder = Encoder(hidden, latent)
        self.decoder = Decoder(hidden)

    def forward(self, x):
        """Encode, draw one code per digit, decode: (scores, mean, log_var)."""
        mean, log_var = self.encoder(x)
        eps = np.random.randn(*mean.shape).astype(mean.dtype)
        z = mean + F.exp(log_var / 2) * eps  # reparameterisation: random only through eps
        return self.decoder(z), mean, log_var

    def decode(self, z):
        """Codes (N, latent) -> images (N, 1, 28, 28) in [0, 1], as an array."""
        with zerograd.no_grad():
            return F.sigmoid(self.decoder(z)).data.reshape(-1, 1, 28, 28)

    def reconstruct(self, x):
        """Digits (N, 784) -> their reconstructions from the mean code (no sampling)."""
        with zerograd.no_grad():
            mean, _ = self.encoder(x)
        return self.decode(mean.data)


def vae_loss(x, scores, mean, log_var):
    """(reconstruction, KL): both summed over a digit and averaged over the batch."""
    # sigmoid_cross_entropy sums over all N x 784 entries and divides by N
    reconstruction = F.sigmoid_cross_entropy(scores, x)
    kl = -0.5 * F.sum(1 + log_var - mean ** 2 - F.exp(log_var)) / len(x)
    return reconstruction, kl


def load_mnist(root):
    """MNIST's training and test sets from ``root`` (or downloaded); MNIST5k when that
    fails. Digits are float32 (784,) in [0, 1], the default transform."""
    try:
        return (MNIST(train=True, root=root, timeout=5.0),
                MNIST(train=False, root=root, timeout=5.0))
    except (OSError, ValueError) as error:  # not cached and not downloadable, or corrupt
        print(f'full MNIST is not available ({type(error).__name__}); using the 5,000 digits '
              'that ship with zerograd (MNIST5k)')
        return MNIST5k(train=True), MNIST5k(train=False)


def evaluate(model, dataset, batch_size):
    """Mean loss per digit over a whole dataset (one sampled code per digit)."""
    total = 0.0
    with zerograd.no_grad():
        for start in range(0, len(dataset), batch_size):
            x, _ = dataset[start:start + batch_size]
            reconstruction, kl = vae_loss(x, *model(x))
            total += float((reconstruction + kl).data) * len(x)
    return total / len(dataset)


# -- pictures (matplotlib's Figure, no pyplot) ---------------------------------------------
def _figure(width, height):
    try:
        from matplotlib.figure import Figure
    except ImportError:
        return None
    return Figure(figsize=(width, height), dpi=100)


def tile(images, cols):
    """Images (N, 1, H, W) tiled row by row into one array (rows H, cols W)."""
    N, _, H, W = images.shape
    rows = (N + cols - 1) // cols
    grid = np.ones((rows * H, cols * W), dtype=np.float32)
    for k in range(N):
        r, c = divmod(k, cols)
        grid[r * H:(r + 1) * H, c * W:(c + 1) * W] = images[k, 0]
    return grid


def save_grid(grid, path, title, scale=0.6 / 28, axes_labels=None):
    """One grey picture (values in [0, 1]) with a title; ``axes_labels`` ((x0, x1),
    (y0, y1)) draws axes with those limits. False when matplotlib is missing."""
    margin = 0.55 if axes_labels else 0.0  # inches left of and below the picture
    width, height = grid.shape[1] * scale, grid.shape[0] * scale
    figure = _figure(width + margin, height + margin + 0.3)
    if figure is None:
        return False
    total_width, total_height = width + margin, height + margin + 0.3
    axes = figure.add_axes((margin / total_width, margin / total_height,
                            width / total_width, height / total_height))
    if axes_labels:
        (x0, x1), (y0, y1) = axes_labels
        axes.imshow(grid, cmap='gray', vmin=0, vmax=1, interpolation='nearest',
                    extent=(x0, x1, y0, y1))
        axes.set_xlabel('z[0]')
        axes.set_ylabel('z[1]')
    else:
        axes.imshow(grid, cmap='gray', vmin=0, vmax=1, interpolation='nearest')
        axes.axis('off')
    figure.suptitle(title, fontsize=10)
    figure.savefig(path)
    return True


def save_pictures(model, originals, noise, out, epoch):
    """Reconstructions, samples and (latent 2) the manifold; returns the paths written,
    or None when matplotlib is missing."""
    if _figure(1, 1) is None:
        return None
    paths = []
    # Reconstructions: a row of originals above the row of their reconstructions.
    cols = len(originals)
    pairs = np.concatenate([originals.reshape(-1, 1, 28, 28), model.reconstruct(originals)])
    path = os.path.join(out, f'vae-reconstructions-{epoch:03d}.png')
    save_grid(tile(pairs, cols), path, f'VAE, epoch {epoch}: test digits (top) and their '
              'reconstructions (bottom)', scale=0.9 / 28)
    paths.append(path)

    path = os.path.join(out, f'vae-samples-{epoch:03d}.png')
    save_grid(tile(model.decode(noise), 8), path, f'VAE, epoch {epoch}: z ~ N(0, 1)')
    paths.append(path)

    if noise.shape[1] == 2:
        # Decode a 15 x 15 grid of codes over [-2.5, 2.5]^2; z[1] grows upwards.
        values = np.linspace(-2.5, 2.5, 15, dtype=np.float32)
        z = np.array([(z0, z1) for z1 in values[::-1] for z0 in values], dtype=np.float32)
        path = os.path.join(out, f'vae-manifold-{epoch:03d}.png')
        save_grid(tile(model.decode(z), 15), path, f'VAE, epoch {epoch}: decoded latent grid',
                  scale=0.4 / 28, axes_labels=((-2.5, 2.5), (-2.5, 2.5)))
        paths.append(path)
    return paths


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    parser.add_argument('--epochs', type=int, default=10)
    parser.add_argument('--batch-size', type=int, default=100)
    parser.add_argument('--hidden', type=int, default=400, help='hidden units of both MLPs')
    parser.add_argument('--latent', type=int, default=2, help='size of the code z')
    parser.add_argument('--lr', type=float, default=0.001, help="Adam's alpha")
    parser.add_argument('--out', default='vae-out', help='folder for the pictures')
    parser.add_argument('--data-root', default=None,
                        help='data folder holding mnist/ (default: $ZEROGRAD_DATA or ~/.zerograd)')
    parser.add_argument('--max-batches', type=int, default=None,
                        help='stop each epoch after this many batches (quick runs)')
    parser.add_argument('--seed', type=int, default=0)
    args = parser.parse_args()
    if min(args.epochs, args.batch_size, args.hidden, args.latent) < 1 \
            or (args.max_batches is not None and args.max_batches < 1) or not args.lr > 0:
        parser.error('--epochs, --batch-size, --hidden, --latent and --max-batches must be '
                     '>= 1, --lr > 0')

    np.random.seed(args.seed)
    os.makedirs(args.out, exist_ok=True)
    train_set, test_set = load_mnist(args.data_root)
    print(f'{type(train_set).__name__}: {len(train_set):,} training and {len(test_set):,} '
          'test digits')
    loader = DataLoader(train_set, args.batch_size)
    model = VAE(args.hidden, args.latent)
    optimizer = optimizers.Adam(alpha=args.lr).setup(model)
    # Fixed for every epoch's pictures: 16 test digits spread over the set, 64 codes.
    originals, _ = test_set[np.linspace(0, len(test_set) - 1, 16).astype(int)]
    noise = np.random.randn(64, args.latent).astype(np.float32)
    pictures = True

    for epoch in range(1, args.epochs + 1):
        start = time.perf_counter()
        sum_reconstruction = sum_kl = 0.0
        count = 0
        for x, _ in loader:
            reconstruction, kl = vae_loss(x, *model(x))
            loss = reconstruction + kl
            model.cleargrads()
            loss.backward()
            optimizer.update()
            sum_reconstruction += float(reconstruction.data)
            sum_kl += float(kl.data)
            count += 1
            if args.max_batches is not None and count >= args.max_batches:
                break
        seconds = time.perf_counter() - start
        test_loss = evaluate(model, test_set, 1000)
        print(f'epoch {epoch}  loss {(sum_reconstruction + sum_kl) / count:.4f} '
              f'(reconstruction {sum_reconstruction / count:.4f} + KL {sum_kl / count:.4f})  '
              f'test loss {test_loss:.4f}  ({count} batches, {seconds:.1f} s)', flush=True)

        if pictures:
            paths = save_pictures(model, originals, noise, args.out, epoch)
            if paths is None:
                pictures = False
                print("no pictures: matplotlib is not installed (pip install 'zerograd[plot]')")
            else:
                print(f'saved {", ".join(paths)}')


if __name__ == '__main__':
    main()
