"""Weight files (save_weights / load_weights and the .npz reader under checkpoints): what a
layer accepts for a weight, headers checked before any data is read, names, temporary
files and permissions."""
import io
import os
import signal
import struct
import subprocess
import sys
import time
import warnings
import zipfile

import numpy as np
import pytest

import zerograd.layers as L
from zerograd.models import MLP

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def write(path, **arrays):
    np.savez(path, **{key.replace('__', '/'): value for key, value in arrays.items()})
    return str(path)


def mlp(created=True):
    np.random.seed(0)
    model = MLP((4, 3))
    if created:
        model(np.ones((1, 2), dtype=np.float32))
    return model


def unchanged(model, before):
    return all(np.array_equal(p.data, before[key]) if before[key] is not None else p.data is None
               for key, p in model.named_params().items())


def snapshot(model):
    return {key: None if p.data is None else p.data.copy()
            for key, p in model.named_params().items()}


# -- weights a layer has not created yet ----------------------------------------------------
@pytest.mark.parametrize('W, match', [
    (np.ones((3, 9), np.float32), r"different shapes: \['W: file \(3, 9\), the layer makes "
                                  r"\(in_size, 4\)'\]"),
    (np.array(1.0, np.float32), r"different shapes: \['W: file \(\), the layer makes "
                                r"\(in_size, 4\)'\]"),
    (np.ones((0, 4), np.float32), r"different shapes: \['W: file \(0, 4\), the layer makes "
                                  r"\(in_size, 4\)'\]"),
    (np.ones((3, 4), np.complex64), r"wrong dtypes: \['W: file complex64, the layer takes a "
                                    r'real float'),
    (np.ones((3, 4), np.int64), r"wrong dtypes: \['W: file int64"),
    (np.ones((3, 4), bool), r"wrong dtypes: \['W: file bool"),
    (np.full((3, 4), np.nan, np.float32), r"not finite \(nan or inf\): \['W'\]"),
    (np.full((3, 4), 1e300), r"values too large: \['W: largest \|value\| 1e\+300 does not "
                             r"fit float32'\]"),
])
def test_a_lazy_weight_must_be_what_the_layer_makes(tmp_path, W, match):
    layer = L.Linear(4, nobias=True)  # W (in_size, 4), in_size learnt from the first input
    path = write(tmp_path / 'w.npz', W=W)
    with warnings.catch_warnings():
        warnings.simplefilter('error')  # a clear error, never only a NumPy warning
        with pytest.raises(ValueError, match=r'Linear.load_weights\(.*w.npz.*\): the file does '
                                             r'not match the model; ' + match):
            layer.load_weights(path)
    assert layer.W.data is None


def test_a_lazy_weight_is_made_in_the_layers_dtype(tmp_path):
    W = np.random.default_rng(0).standard_normal((3, 4))  # float64, as a file may hold
    layer = L.Linear(4, nobias=True)
    layer.load_weights(write(tmp_path / 'w.npz', W=W))
    assert layer.W.data.dtype == np.float32
    np.testing.assert_array_equal(layer.W.data, W.astype(np.float32))
    assert layer(np.ones((2, 3), np.float32)).shape == (2, 4)
    wide = L.Linear(4, nobias=True, dtype=np.float64)
    wide.load_weights(write(tmp_path / 'w64.npz', W=W))
    np.testing.assert_array_equal(wide.W.data, W)


def test_lazy_conv_and_batchnorm_weights_have_the_layers_shape(tmp_path):
    conv = L.Conv2d(8, kernel_size=3)  # W (OC, C, KH, KW) = (8, in_channels, 3, 3)
    with pytest.raises(ValueError, match=r"W: file \(8, 2, 5, 5\), the layer makes "
                                         r"\(8, in_channels, 3, 3\)"):
        conv.load_weights(write(tmp_path / 'c.npz', W=np.ones((8, 2, 5, 5), np.float32),
                                b=np.zeros(8, np.float32)))
    conv.load_weights(write(tmp_path / 'c.npz', W=np.ones((8, 2, 3, 3), np.float32),
                            b=np.zeros(8, np.float32)))
    assert conv(np.ones((1, 2, 4, 4), np.float32)).shape == (1, 8, 2, 2)
    deconv = L.Deconv2d(4, kernel_size=2)  # W (C, OC, KH, KW)
    with pytest.raises(ValueError, match=r"the layer makes \(in_channels, 4, 2, 2\)"):
        deconv.load_weights(write(tmp_path / 'd.npz', W=np.ones((3, 2, 2, 2), np.float32),
                                  b=np.zeros(4, np.float32)))

    bn = L.BatchNorm()  # four vectors of one size C
    arrays = {name: np.ones(3, np.float32) for name in ('avg_mean', 'avg_var', 'gamma')}
    with pytest.raises(ValueError, match=r"beta: file \(4,\), the layer makes \(C,\)"):
        bn.load_weights(write(tmp_path / 'bn.npz', beta=np.ones(4, np.float32), **arrays))
    assert bn.gamma.data is None
    bn.load_weights(write(tmp_path / 'bn.npz', beta=np.ones(3, np.float32), **arrays))
    assert bn.beta.data.shape == (3,)


def test_sizes_are_matched_within_a_layer_only(tmp_path):
    # Each lazy Linear learns its own in_size: 2 for l0 and 4 for l1 are both accepted.
    model = MLP((4, 3))
    model.load_weights(write(tmp_path / 'w.npz', l0__W=np.ones((2, 4), np.float32),
                             l0__b=np.zeros(4, np.float32), l1__W=np.ones((4, 3), np.float32),
                             l1__b=np.zeros(3, np.float32)))
    assert model.l0.W.shape == (2, 4) and model.l1.W.shape == (4, 3)
    assert model(np.ones((5, 2), np.float32)).shape == (5, 3)


@pytest.mark.parametrize('W, match', [
    (np.full((2, 4), 1e300), r"values too large: \['l0/W: largest \|value\| 1e\+300 does not "
                             r"fit float32'\]"),
    (np.ones((2, 4), np.complex128) * 1j, r"wrong dtypes: \['l0/W: file complex128, model "
                                          r"float32'\]"),
    (np.full((2, 4), -np.inf, np.float32), r"not finite \(nan or inf\): \['l0/W'\]"),
    (np.ones((2, 4), np.int32), r"wrong dtypes: \['l0/W: file int32, model float32'\]"),
])
def test_a_created_weight_takes_only_values_that_fit(tmp_path, W, match):
    model = mlp()
    before = snapshot(model)
    arrays = {key.replace('/', '__'): value for key, value in before.items()}
    arrays['l0__W'] = W
    with warnings.catch_warnings():
        warnings.simplefilter('error')
        with pytest.raises(ValueError, match='MLP.load_weights.*' + match):
            model.load_weights(write(tmp_path / 'w.npz', **arrays))
    assert unchanged(model, before)


def test_a_float64_file_into_float32_weights_is_cast(tmp_path):
    model = mlp()
    arrays = {key.replace('/', '__'): value.astype(np.float64) + 0.5
              for key, value in snapshot(model).items()}
    model.load_weights(write(tmp_path / 'w.npz', **arrays))
    assert model.l0.W.dtype == np.float32
    np.testing.assert_array_equal(model.l0.W.data, arrays['l0__W'].astype(np.float32))


# -- headers before data --------------------------------------------------------------------
def npy_bytes(shape, descr='<f8', data=b''):
    """An .npy file whose header declares ``shape`` (whatever data follows)."""
    buffer = io.BytesIO()
    np.lib.format.write_array_header_1_0(
        buffer, {'descr': descr, 'fortran_order': False, 'shape': shape})
    return buffer.getvalue() + data


def test_a_header_declaring_a_huge_array_is_refused_before_allocation(tmp_path):
    path = tmp_path / 'huge.npz'
    with zipfile.ZipFile(path, 'w', zipfile.ZIP_DEFLATED) as archive:
        archive.writestr('l0/W.npy', npy_bytes((10**13,), data=b'\0' * 64))
    start = time.perf_counter()
    with pytest.raises(ValueError, match=r"MLP.load_weights: .*huge.npz.* is corrupt: 'l0/W' "
                                         r'declares shape \(10000000000000,\) float64 '
                                         r'\(80000000000000 bytes\) but its member holds 64'):
        mlp(created=False).load_weights(str(path))
    assert time.perf_counter() - start < 5


def test_a_member_declaring_more_than_its_compressed_bytes_can_hold(tmp_path):
    # The zip's own size fields forged as well (local header and central directory).
    path = tmp_path / 'forged.npz'
    payload = npy_bytes((10**9,), data=b'\0' * 64)
    with zipfile.ZipFile(path, 'w', zipfile.ZIP_DEFLATED) as archive:
        archive.writestr('l0/W.npy', payload)
    raw = bytearray(path.read_bytes())
    forged = len(payload) - 64 + 8 * 10**9 & 0xFFFFFFFF or 1
    struct.pack_into('<I', raw, 22, forged)  # local file header: uncompressed size
    central = raw.index(b'PK\x01\x02')
    struct.pack_into('<I', raw, central + 24, forged)  # central directory: the same
    path.write_bytes(bytes(raw))
    with pytest.raises(ValueError, match=r"forged.npz.* is corrupt: 'l0/W' declares \d+ bytes, "
                                         r'more than its \d+ compressed bytes can hold'):
        mlp(created=False).load_weights(str(path))


def test_a_file_of_the_wrong_shapes_is_refused_before_its_data_is_read(tmp_path, monkeypatch):
    # 32 MB of zeros in 32 kB: refused from the headers, the data never decompressed.
    model = mlp()
    arrays = {key.replace('/', '__'): value for key, value in snapshot(model).items()}
    arrays['l0__W'] = np.zeros((2000, 2000))
    path = tmp_path / 'big.npz'
    np.savez_compressed(path, **{k.replace('__', '/'): v for k, v in arrays.items()})
    assert path.stat().st_size < 200_000

    def no_data(*args, **kwargs):
        raise AssertionError('array data read before the headers were checked')

    monkeypatch.setattr(np.lib.format, 'read_array', no_data)
    with pytest.raises(ValueError, match=r"different shapes: \['l0/W: file \(2000, 2000\), "
                                         r'model \(2, 4\)'):
        model.load_weights(str(path))


def test_arrays_larger_than_memory_are_refused(tmp_path, monkeypatch):
    model = mlp()
    path = tmp_path / 'w.npz'
    model.save_weights(path)
    monkeypatch.setattr(L, '_physical_memory', lambda: 100)
    with pytest.raises(ValueError, match=r"w.npz.* declares arrays of .* GiB in all, more than "
                                         r"this machine's memory"):
        mlp(created=False).load_weights(path)


# -- names, temporary files, permissions ------------------------------------------------------
def test_load_weights_accepts_the_name_save_weights_was_given(tmp_path):
    model = mlp()
    model.save_weights(str(tmp_path / 'w'))
    assert os.listdir(tmp_path) == ['w.npz']
    for name in (str(tmp_path / 'w'), tmp_path / 'w', str(tmp_path / 'w.npz')):
        other = mlp(created=False)
        other.load_weights(name)
        np.testing.assert_array_equal(other.l1.W.data, model.l1.W.data)


def dead_pid():
    """The id of a process that has exited (and been reaped)."""
    child = subprocess.run([sys.executable, '-c', 'import os; print(os.getpid())'],
                           capture_output=True, text=True, check=True)
    return int(child.stdout)


@pytest.mark.skipif(os.name != 'posix', reason='process ids are asked for on POSIX only')
def test_save_removes_temporaries_a_killed_save_left(tmp_path):
    # A save killed by SIGKILL in the middle of writing leaves its temporary file.
    code = ('import sys, time, numpy as np\n'
            'from zerograd.models import MLP\n'
            'model = MLP((4, 3)); model(np.ones((1, 2), np.float32))\n'
            'def stuck(file, **arrays):\n'
            '    file.write(b"half a file"); file.flush()\n'
            '    print("writing", flush=True); time.sleep(60)\n'
            'np.savez_compressed = stuck\n'
            'model.save_weights(sys.argv[1])\n')
    target = tmp_path / 'w.npz'
    child = subprocess.Popen([sys.executable, '-c', code, str(target)], stdout=subprocess.PIPE,
                             text=True, env=dict(os.environ, PYTHONPATH=ROOT))
    try:
        assert child.stdout.readline() == 'writing\n'
        left = os.listdir(tmp_path)
        assert len(left) == 1 and left[0].startswith(f'w.npz.{child.pid}.')
    finally:
        child.send_signal(signal.SIGKILL)
        child.wait(timeout=30)
        child.stdout.close()
    assert os.listdir(tmp_path) == left  # nothing could clean up after SIGKILL

    other_target = tmp_path / 'other.npz.123.abcd.tmp'  # another target's: not touched
    other_target.write_bytes(b'')
    live = subprocess.Popen([sys.executable, '-c', 'import time; time.sleep(60)'])
    try:
        in_progress = tmp_path / f'w.npz.{live.pid}.beef.tmp'  # a save still running
        in_progress.write_bytes(b'')
        stale = tmp_path / f'w.npz.{dead_pid()}.cafe.tmp'
        stale.write_bytes(b'')
        mlp().save_weights(target)
        assert sorted(os.listdir(tmp_path)) == sorted(['w.npz', in_progress.name,
                                                       other_target.name])
    finally:
        live.kill()
        live.wait(timeout=30)
    assert mlp(created=False).load_weights(target) is None


@pytest.mark.skipif(os.name != 'posix', reason='file modes are POSIX')
@pytest.mark.parametrize('umask, mode', [(0o022, 0o644), (0o077, 0o600), (0o002, 0o664)])
def test_files_are_written_with_the_umask(tmp_path, umask, mode):
    from zerograd import checkpoints
    model = mlp()
    old = os.umask(umask)
    try:
        model.save_weights(tmp_path / 'w.npz')
        checkpoints.save(tmp_path / 'ckpt.npz', model)
    finally:
        os.umask(old)
    assert (tmp_path / 'w.npz').stat().st_mode & 0o777 == mode
    assert (tmp_path / 'ckpt.npz').stat().st_mode & 0o777 == mode
