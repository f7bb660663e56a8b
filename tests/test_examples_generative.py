"""The GAN and VAE examples run as a reader would run them (a few batches of the 5,000
digits that ship with zerograd), print finite losses and save their pictures."""
import importlib.util
import math
import os
import re
import subprocess
import sys

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
HAS_MATPLOTLIB = importlib.util.find_spec('matplotlib') is not None
PNG_SIGNATURE = b'\x89PNG\r\n\x1a\n'


def run_example(name, *args, tmp_path):
    """Run examples/NAME offline, with an empty data folder (so MNIST5k is used), in
    tmp_path; returns its stdout."""
    data = tmp_path / 'empty-data'
    data.mkdir()
    env = dict(os.environ, PYTHONPATH=ROOT, ZEROGRAD_OFFLINE='1', ZEROGRAD_DATA=str(data))
    result = subprocess.run([sys.executable, os.path.join(ROOT, 'examples', name), *args],
                            cwd=tmp_path, env=env, capture_output=True, text=True, timeout=300,
                            check=False)
    assert result.returncode == 0, result.stdout + result.stderr
    assert 'MNIST5k' in result.stdout  # the fallback, said in one line
    return result.stdout


def check_pictures(out, folder, names):
    """The PNGs exist and are PNGs, or the run said why there are none."""
    if not HAS_MATPLOTLIB:
        assert 'no pictures: matplotlib is not installed' in out
        return
    for name in names:
        path = folder / name
        assert path.is_file(), f'{name} was not written; output:\n{out}'
        assert path.read_bytes()[:8] == PNG_SIGNATURE, name
        assert f'{path.name}' in out  # announced


def test_gan_example(tmp_path):
    out = run_example('gan.py', '--epochs', '2', '--max-batches', '3', '--batch-size', '32',
                      '--hidden', '16', '--out', 'pictures', tmp_path=tmp_path)
    lines = re.findall(r'^epoch (\d+)  discriminator loss (\S+)  generator loss (\S+)', out,
                       re.MULTILINE)
    assert [int(epoch) for epoch, _, _ in lines] == [1, 2], out
    for _, dis_loss, gen_loss in lines:
        assert math.isfinite(float(dis_loss)) and float(dis_loss) > 0
        assert math.isfinite(float(gen_loss)) and float(gen_loss) > 0
    assert '(3 batches,' in out  # --max-batches stops the epoch
    check_pictures(out, tmp_path / 'pictures', ['gan-epoch-001.png', 'gan-epoch-002.png'])


def test_vae_example_loss_falls(tmp_path):
    out = run_example('vae.py', '--epochs', '2', '--max-batches', '20', '--out', 'pictures',
                      tmp_path=tmp_path)
    lines = re.findall(r'^epoch (\d+)  loss (\S+) \(reconstruction (\S+) \+ KL (\S+)\)  '
                       r'test loss (\S+)', out, re.MULTILINE)
    assert [int(line[0]) for line in lines] == [1, 2], out
    losses = [[float(value) for value in line[1:]] for line in lines]
    for loss, reconstruction, kl, test_loss in losses:
        assert all(math.isfinite(v) for v in (loss, reconstruction, kl, test_loss))
        assert loss == pytest.approx(reconstruction + kl, abs=2e-4)  # printed to 4 decimals
        assert kl >= 0
    # An untrained decoder scores 784 log 2 = 543 nats per digit; 20 batches of Adam
    # already bring the loss far below that, and the second epoch below the first.
    assert losses[0][0] < 543
    assert losses[1][0] < losses[0][0]
    assert losses[1][3] < losses[0][3]  # the test loss falls too
    names = [f'vae-{kind}-{epoch:03d}.png' for epoch in (1, 2)
             for kind in ('reconstructions', 'samples', 'manifold')]
    check_pictures(out, tmp_path / 'pictures', names)


def test_vae_example_latent_20_has_no_manifold(tmp_path):
    out = run_example('vae.py', '--epochs', '1', '--max-batches', '2', '--latent', '20',
                      '--hidden', '200', '--out', 'pictures', tmp_path=tmp_path)
    assert re.search(r'^epoch 1  loss \d', out, re.MULTILINE), out
    check_pictures(out, tmp_path / 'pictures',
                   ['vae-reconstructions-001.png', 'vae-samples-001.png'])
    assert not (tmp_path / 'pictures' / 'vae-manifold-001.png').exists()

