"""``zerograd export RUN_DIR``: each recipe's output folder to an ONNX file that onnxruntime
runs as zerograd does; and its errors, one line each."""
import contextlib
import io
import json
import os
import shutil
import subprocess
import sys

import numpy as np
import pytest

import zerograd
import zerograd.functions as F
import zerograd.onnx
from zerograd import cli, datasets, recipes
from zerograd.models import MLP

onnx = pytest.importorskip('onnx')
ort = pytest.importorskip('onnxruntime')

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
TEXT = 'to be, or not to be: that is the question. whether tis nobler in the mind. ' * 4

# Each run as short as the command allows (one epoch; the recurrent ones with few steps).
COMMANDS = {
    'demo': ['demo', '--epochs', '1'],
    'mnist-mlp': ['train', 'mnist-mlp', '--epochs', '1'],
    'mnist-cnn': ['train', 'mnist-cnn', '--epochs', '1'],
    'spiral': ['train', 'spiral', '--epochs', '1'],
    'sin-regression': ['train', 'sin-regression', '--epochs', '1'],
    'sin-rnn': ['train', 'sin-rnn', '--epochs', '1', '--batch-size', '20'],
    'sin-lstm': ['train', 'sin-lstm', '--epochs', '1'],
    'char-lstm': ['train', 'char-lstm', '--epochs', '1', '--batch-size', '4', '--data', 'TEXT'],
}


def _few_digits(log=print, quiet=False, transform=None):
    """recipes.mnist_datasets on 200 training and 50 test digits of the embedded set:
    the folder a run writes is the same, the training much shorter."""
    kwargs = {} if transform is None else {'transform': transform}
    train, test = datasets.MNIST5k(train=True, **kwargs), datasets.MNIST5k(train=False, **kwargs)
    for dataset, size in ((train, 200), (test, 50)):
        index = np.linspace(0, len(dataset) - 1, size).astype(int)  # every class
        dataset.data, dataset.label = dataset.data[index], dataset.label[index]
    return train, test, 'MNIST5k'


@pytest.fixture(scope='module')
def run_folder(tmp_path_factory):
    """run_folder(recipe): the output folder of that recipe's run, trained once in this
    module (in process, offline, without pictures)."""
    base = tmp_path_factory.mktemp('runs')
    (base / 'text.txt').write_text(TEXT)
    folders = {}

    def trained(recipe):
        if recipe not in folders:
            folder = str(base / recipe)
            args = [str(base / 'text.txt') if a == 'TEXT' else a for a in COMMANDS[recipe]]
            with pytest.MonkeyPatch.context() as patch, \
                    contextlib.redirect_stdout(io.StringIO()) as out:
                patch.setenv('ZEROGRAD_OFFLINE', '1')
                patch.setenv('ZEROGRAD_DATA', str(base / 'no-data'))
                patch.setattr(recipes, 'mnist_datasets', _few_digits)
                patch.setattr(recipes, '_pictures_available', lambda: False)
                status = cli.main(args + ['--quiet', '--out', folder])
            assert status == 0, out.getvalue()
            folders[recipe] = folder
        return folders[recipe]
    return trained


# =============================================================================
# What each file must compute: the recipe's model, rebuilt here from its weights
# =============================================================================
def _model(recipe, folder):
    weights = os.path.join(folder, 'weights.npz')
    if recipe in ('demo', 'mnist-mlp'):
        model = MLP((1000, 1000, 10), activation=F.relu)
    elif recipe == 'spiral':
        model = MLP((10, 3))
    elif recipe == 'sin-regression':
        model = MLP((10, 1))
    elif recipe == 'mnist-cnn':
        model = recipes.MnistCNN()
    elif recipe == 'sin-rnn':
        model = recipes.SimpleRNN(100, 1)
    elif recipe == 'sin-lstm':
        model = recipes.BetterRNN(100, 1)
    else:
        with np.load(weights) as arrays:
            model = recipes.CharLSTM(arrays['embed/W'].shape[0])
    model.load_weights(weights)
    return model


FEATURES = {'demo': (784,), 'mnist-mlp': (784,), 'spiral': (2,), 'sin-regression': (1,),
            'mnist-cnn': (1, 28, 28)}


def _session(path):
    return ort.InferenceSession(str(path), providers=['CPUExecutionProvider'])


def _signature(values):
    return [(v.name, v.type, v.shape) for v in values]


def _check_feedforward(path, recipe, model, classes):
    session = _session(path)
    assert _signature(session.get_inputs()) == [('x', 'tensor(float)',
                                                 ['batch', *FEATURES[recipe]])]
    assert _signature(session.get_outputs()) == [('y', 'tensor(float)', ['batch', classes])]
    rng = np.random.default_rng(0)
    for n in (1, 3):
        x = rng.random((n,) + FEATURES[recipe], dtype=np.float32)
        with zerograd.test_mode(), zerograd.no_grad():
            expected = model(x).data
        (y,) = session.run(None, {'x': x})
        assert y.dtype == expected.dtype == np.float32 and y.shape == expected.shape == (n, classes)
        np.testing.assert_allclose(y, expected, rtol=1e-5, atol=1e-5)


def _check_steps(path, model, layer, draw):
    """Two steps at batch sizes 1 and 3, the state threaded through: the file from zero
    state, the model from reset_state()."""
    session = _session(path)
    cell = isinstance(layer, zerograd.layers.LSTM)
    states = ['h', 'c'] if cell else ['h']
    H = layer.hidden_size
    x_type = 'tensor(int64)' if isinstance(model, recipes.CharLSTM) else 'tensor(float)'
    x_shape = ['batch'] if isinstance(model, recipes.CharLSTM) else ['batch', 1]
    assert _signature(session.get_inputs()) == [('x', x_type, x_shape)] + [
        (name, 'tensor(float)', ['batch', H]) for name in states]
    assert [v.name for v in session.get_outputs()] == ['y'] + [f'{s}_next' for s in states]
    rng = np.random.default_rng(1)
    for n in (1, 3):
        model.reset_state()
        state = {name: np.zeros((n, H), dtype=np.float32) for name in states}
        for _ in range(2):
            x = draw(rng, n)
            with zerograd.test_mode(), zerograd.no_grad():
                expected = [model(x).data, layer.h.data] + ([layer.c.data] if cell else [])
            got = session.run(None, {'x': x, **state})
            for g, e in zip(got, expected):
                assert g.dtype == e.dtype == np.float32 and g.shape == e.shape
                np.testing.assert_allclose(g, e, rtol=1e-5, atol=1e-5)
            state = dict(zip(states, got[1:]))


def _export(folder, *args):
    """cli.main(['export', folder, ...]) in process: (status, stdout, stderr)."""
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        status = cli.main(['export', str(folder), *args])
    return status, out.getvalue(), err.getvalue()


# =============================================================================
# Each recipe's folder
# =============================================================================
@pytest.mark.parametrize('recipe, classes', [
    ('spiral', 3), ('sin-regression', 1), ('mnist-mlp', 10),
    ('mnist-cnn', 10)])
def test_export_of_a_feedforward_recipe_matches_its_model_at_batch_1_and_3(
        run_folder, tmp_path, recipe, classes):
    folder = run_folder(recipe)
    before = sorted(os.listdir(folder))
    path = tmp_path / f'{recipe}.onnx'
    status, out, err = _export(folder, '-o', str(path))
    assert (status, err) == (0, '')
    shape = ', '.join(map(str, FEATURES[recipe]))
    assert out == (f'wrote {path} ({recipe}, ONNX opset 17): inputs x (N, {shape}) float32; '
                   f'outputs y (N, {classes}) float32\n')
    assert sorted(os.listdir(folder)) == before  # the run's folder is left as it was
    proto = onnx.load(str(path))
    onnx.checker.check_model(proto, full_check=True)
    assert [(o.domain, o.version) for o in proto.opset_import] == [('', 17)]
    assert {p.key: p.value for p in proto.metadata_props} == {'zerograd_recipe': recipe}
    _check_feedforward(path, recipe, _model(recipe, folder), classes)


def test_run_json_records_the_recipe_after_the_weights(run_folder):
    for recipe in ('spiral', 'sin-rnn'):
        folder = run_folder(recipe)
        with open(os.path.join(folder, 'run.json')) as file:
            assert json.load(file) == {'zerograd_run': 1, 'recipe': recipe, 'model': {}}


def test_sin_rnn_exports_one_step_with_the_hidden_state_as_input_and_output(
        run_folder, tmp_path):
    folder = run_folder('sin-rnn')
    path = tmp_path / 'rnn.onnx'
    status, out, err = _export(folder, '-o', str(path))
    assert (status, err) == (0, '')
    assert out == (f'wrote {path} (sin-rnn, ONNX opset 17): inputs x (N, 1) float32, '
                   'h (N, 100) float32; outputs y (N, 1) float32, h_next (N, 100) float32\n')
    model = _model('sin-rnn', folder)
    _check_steps(path, model, model.rnn,
                 lambda rng, n: rng.uniform(-1, 1, (n, 1)).astype(np.float32))
    assert model.rnn.h is not None  # the model ran; export did not touch it


def test_sin_lstm_exports_one_step_with_h_and_c_as_inputs_and_outputs(run_folder, tmp_path):
    folder = run_folder('sin-lstm')
    path = tmp_path / 'lstm.onnx'
    assert _export(folder, '-o', str(path))[0] == 0
    model = _model('sin-lstm', folder)
    _check_steps(path, model, model.rnn,
                 lambda rng, n: rng.uniform(-1, 1, (n, 1)).astype(np.float32))


def test_char_lstm_exports_int64_ids_and_its_vocabulary(run_folder, tmp_path):
    folder = run_folder('char-lstm')
    path = tmp_path / 'chars.onnx'
    status, out, _ = _export(folder, '-o', str(path))
    assert status == 0
    text = datasets.CharText(os.path.join(os.path.dirname(folder), 'text.txt'))
    V = len(text.id_to_char)
    assert out.endswith(f'inputs x (N,) int64, h (N, 128) float32, c (N, 128) float32; '
                        f'outputs y (N, {V}) float32, h_next (N, 128) float32, '
                        'c_next (N, 128) float32\n')
    vocabulary = ''.join(text.id_to_char[i] for i in range(V))
    metadata = {p.key: p.value for p in onnx.load(str(path)).metadata_props}
    assert metadata == {'zerograd_recipe': 'char-lstm', 'vocabulary': json.dumps(vocabulary)}
    model = _model('char-lstm', folder)
    _check_steps(path, model, model.lstm, lambda rng, n: rng.integers(0, V, n, dtype=np.int64))


def test_char_lstm_run_json_holds_the_vocabulary_in_id_order(run_folder):
    folder = run_folder('char-lstm')
    text = datasets.CharText(os.path.join(os.path.dirname(folder), 'text.txt'))
    with open(os.path.join(folder, 'run.json')) as file:
        record = json.load(file)
    vocabulary = ''.join(text.id_to_char[i] for i in range(len(text.id_to_char)))
    assert record == {'zerograd_run': 1, 'recipe': 'char-lstm',
                      'model': {'vocab_size': len(vocabulary), 'vocabulary': vocabulary}}
    assert set(vocabulary) == set(TEXT)


def test_python_m_zerograd_export_of_the_demo_folder(run_folder, tmp_path):
    folder = run_folder('demo')
    with open(os.path.join(folder, 'run.json')) as file:
        assert json.load(file)['recipe'] == 'demo'
    environment = dict(os.environ, PYTHONPATH=ROOT)
    result = subprocess.run([sys.executable, '-m', 'zerograd', 'export', folder, '-o',
                             'demo.onnx'], cwd=tmp_path, env=environment,
                            capture_output=True, text=True, timeout=300)
    assert (result.returncode, result.stderr) == (0, '')
    assert result.stdout == ('wrote demo.onnx (demo, ONNX opset 17): inputs x (N, 784) '
                             'float32; outputs y (N, 10) float32\n')
    _check_feedforward(tmp_path / 'demo.onnx', 'demo', _model('demo', folder), 10)


def test_without_o_the_file_goes_into_the_run_folder(run_folder, tmp_path):
    folder = tmp_path / 'spiral'
    shutil.copytree(run_folder('spiral'), folder)
    status, out, _ = _export(folder)
    assert status == 0 and out.startswith(f'wrote {folder / "model.onnx"} (spiral,')
    _check_feedforward(folder / 'model.onnx', 'spiral', _model('spiral', folder), 3)


@pytest.mark.parametrize('opset', [18, 'newest'])
def test_opset_option_writes_that_opset(run_folder, tmp_path, opset):
    opset = zerograd.onnx.newest_opset() if opset == 'newest' else opset
    for recipe, check in (('spiral', lambda p, m: _check_feedforward(p, 'spiral', m, 3)),
                          ('sin-rnn', lambda p, m: _check_steps(
                              p, m, m.rnn, lambda rng, n: rng.random((n, 1), np.float32)))):
        path = tmp_path / f'{recipe}.onnx'
        status, out, _ = _export(run_folder(recipe), '-o', str(path), '--opset', str(opset))
        assert status == 0 and f'ONNX opset {opset})' in out
        assert [o.version for o in onnx.load(str(path)).opset_import] == [opset]
        check(path, _model(recipe, run_folder(recipe)))


# =============================================================================
# Errors: one line on stderr, exit status 1 (2 for usage), no file written
# =============================================================================
def _one_line_error(status, out, err, expected_status=1):
    assert status == expected_status and out == ''
    assert len(err.splitlines()) == 1 and 'Traceback' not in err
    return err.strip()


def test_a_folder_that_is_not_a_run_is_one_line(tmp_path):
    (tmp_path / 'empty').mkdir()
    (tmp_path / 'file').write_text('x')
    out = str(tmp_path / 'm.onnx')
    err = _one_line_error(*_export(tmp_path / 'missing', '-o', out))
    assert err == f'zerograd: error: zerograd export: {tmp_path / "missing"}: no such folder'
    err = _one_line_error(*_export(tmp_path / 'file', '-o', out))
    assert err.startswith(f'zerograd: error: zerograd export: {tmp_path / "file"} is not a '
                          'folder')
    err = _one_line_error(*_export(tmp_path / 'empty', '-o', out))
    assert err == (f'zerograd: error: zerograd export: {tmp_path / "empty"} is not the output '
                   'folder of zerograd demo or zerograd train (it holds no run.json, '
                   'weights.npz or checkpoint.npz)')
    assert sorted(os.listdir(tmp_path)) == ['empty', 'file']


def test_a_folder_from_before_run_json_says_it_records_no_recipe(run_folder, tmp_path):
    folder = tmp_path / 'old'
    shutil.copytree(run_folder('spiral'), folder)
    os.remove(folder / 'run.json')
    err = _one_line_error(*_export(folder, '-o', str(tmp_path / 'm.onnx')))
    assert err.startswith(f'zerograd: error: zerograd export: {folder} records no recipe '
                          f'({folder / "run.json"} is missing')
    assert 'zerograd.onnx.export' in err and not (tmp_path / 'm.onnx').exists()


@pytest.mark.parametrize('content, message', [
    ('{"zerograd_run": 1, "recipe": "nope", "model": {}}',
     "names the recipe 'nope', which this zerograd does not know; the recipes are: demo, "
     'char-lstm, '),
    ('{"recipe": ', 'cannot be read: Expecting value'),
    ('["spiral"]', 'is not a run description'),
    ('{"zerograd_run": 1, "recipe": "char-lstm", "model": {"vocab_size": 0}}',
     'records vocab_size 0 for char-lstm; it must be an int >= 1'),
])
def test_a_bad_run_json_is_one_line_naming_it(run_folder, tmp_path, content, message):
    folder = tmp_path / 'run'
    shutil.copytree(run_folder('spiral'), folder)
    (folder / 'run.json').write_text(content)
    err = _one_line_error(*_export(folder, '-o', str(tmp_path / 'm.onnx')))
    assert err.startswith('zerograd: error: zerograd export: ') and message in err
    assert str(folder / 'run.json') in err


def test_a_run_without_weights_says_how_to_finish_it(run_folder, tmp_path):
    for recipe, command in (('spiral', 'zerograd train spiral'), ('demo', 'zerograd demo')):
        folder = tmp_path / recipe
        os.makedirs(folder)
        shutil.copy(os.path.join(run_folder(recipe), 'run.json'), folder)
        err = _one_line_error(*_export(folder, '-o', str(tmp_path / 'm.onnx')))
        assert err == (f'zerograd: error: zerograd export: {folder} holds no trained weights '
                       f'({folder / "weights.npz"} is missing; finish the run with {command} '
                       f'--resume --out {folder})')


def test_weights_of_another_model_are_one_line_naming_the_difference(run_folder, tmp_path):
    folder = tmp_path / 'run'
    shutil.copytree(run_folder('spiral'), folder)
    shutil.copy(os.path.join(run_folder('sin-regression'), 'weights.npz'), folder)
    err = _one_line_error(*_export(folder, '-o', str(tmp_path / 'm.onnx')))
    assert 'the file does not match the model; different shapes' in err
    assert not (tmp_path / 'm.onnx').exists()


def test_an_rnn_without_its_hidden_to_hidden_weight_is_refused(run_folder, tmp_path):
    # A run whose RNN took one time step only: h2h's W was never drawn, and is not saved.
    folder = tmp_path / 'run'
    shutil.copytree(run_folder('sin-rnn'), folder)
    with np.load(folder / 'weights.npz') as arrays:
        kept = {key: arrays[key] for key in arrays.files if key != 'rnn/h2h/W'}
    np.savez(folder / 'weights.npz', **kept)
    err = _one_line_error(*_export(folder, '-o', str(tmp_path / 'm.onnx')))
    assert err == (f'zerograd: error: zerograd export: {folder / "weights.npz"} holds no '
                   'rnn/h2h/W: the run never took a second time step, so those weights were '
                   'never made or trained')
    assert not (tmp_path / 'm.onnx').exists()


def test_output_paths_that_cannot_be_written_are_refused_first(run_folder, tmp_path):
    folder = run_folder('spiral')
    err = _one_line_error(*_export(folder, '-o', str(tmp_path)))
    assert err == (f'zerograd: error: zerograd export: -o {tmp_path} is a folder; give a file '
                   'name (model.onnx)')
    missing = tmp_path / 'no' / 'm.onnx'
    err = _one_line_error(*_export(folder, '-o', str(missing)))
    assert err == (f'zerograd: error: zerograd export: -o {missing}: the folder '
                   f'{tmp_path / "no"} does not exist')
    assert os.listdir(tmp_path) == []


def test_opsets_outside_what_onnx_knows_are_refused(run_folder, tmp_path):
    folder, path = run_folder('spiral'), str(tmp_path / 'm.onnx')
    newest = onnx.defs.onnx_opset_version()
    for opset in (16, newest + 1):
        err = _one_line_error(*_export(folder, '-o', path, '--opset', str(opset)))
        assert err == (f'zerograd: error: zerograd export: --opset {opset}: zerograd writes '
                       f'opsets 17 to {newest} (the newest this onnx {onnx.__version__} knows)')
    err = _one_line_error(*_export(folder, '-o', path, '--opset', 'x'), expected_status=2)
    assert "argument --opset: expected a positive integer, got 'x'" in err
    assert os.listdir(tmp_path) == []


def test_without_onnx_the_error_names_the_extra_and_keeps_an_older_file(
        run_folder, tmp_path, monkeypatch):
    path = tmp_path / 'm.onnx'
    path.write_bytes(b'older')
    monkeypatch.setitem(sys.modules, 'onnx', None)  # import onnx raises ImportError
    err = _one_line_error(*_export(run_folder('spiral'), '-o', str(path)))
    assert err == ("zerograd: error: zerograd.onnx needs the onnx package: pip install "
                   "'zerograd[onnx]'")
    assert path.read_bytes() == b'older' and os.listdir(tmp_path) == ['m.onnx']


def test_a_model_that_cannot_be_converted_leaves_no_file(run_folder, tmp_path, monkeypatch):
    from zerograd.onnx import exporter
    monkeypatch.delitem(exporter._CONVERTERS, F.Linear)
    path = tmp_path / 'm.onnx'
    err = _one_line_error(*_export(run_folder('spiral'), '-o', str(path)))
    assert err.startswith('zerograd: error: zerograd.onnx.export: no ONNX converter for Linear')
    assert os.listdir(tmp_path) == []
