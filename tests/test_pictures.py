"""The pictures say what they show in text: which data set and run, and which predictions
are wrong, without relying on red against green."""
import numpy as np
import pytest

from zerograd import training

matplotlib = pytest.importorskip('matplotlib')  # the `plot` extra draws the pictures


def _texts(monkeypatch) -> list[list[str]]:
    """Record the texts (suptitle, then each axes' title) of every figure saved."""
    from matplotlib.figure import Figure
    saved: list[list[str]] = []
    savefig = Figure.savefig

    def record(fig, *args, **kwargs):
        texts = [text.get_text() for text in fig.texts]
        saved.append(texts + [ax.get_title() for ax in fig.axes])
        return savefig(fig, *args, **kwargs)

    monkeypatch.setattr(Figure, 'savefig', record)
    return saved


def test_digits_marks_wrong_predictions_in_text_and_names_the_data(tmp_path, monkeypatch):
    saved = _texts(monkeypatch)
    labels = np.array([0, 1, 2, 3, 4, 5])
    predicted = np.array([0, 7, 2, 3, 9, 5])
    path = training.plot_digits(np.random.rand(6, 28, 28), labels, predicted,
                                str(tmp_path / 'digits.png'), cols=3,
                                title='MNIST test set, run zerograd-demo/')
    with open(path, 'rb') as file:
        assert file.read(4) == b'\x89PNG'
    (suptitle, *captions), = saved
    assert captions == ['0', '✗ 7 (true 1)', '2', '3', '✗ 9 (true 4)', '5']
    assert suptitle.startswith('MNIST test set, run zerograd-demo/\n')
    assert '2 of 6 wrong, shown as "✗ predicted (true label)"' in suptitle


def test_demo_digits_picture_names_its_data_set_and_run(tmp_path, monkeypatch):
    from zerograd import recipes
    saved = _texts(monkeypatch)
    out = tmp_path / 'zerograd-demo'
    out.mkdir()
    options = recipes.Options(out=str(out), quiet=True)
    np.random.seed(0)
    from zerograd.datasets import MNIST5k
    from zerograd.models import MLP
    test_set = MNIST5k(train=False)
    model = MLP((10,))
    recipes._digits_picture(model, test_set, options)
    (suptitle, *captions), = saved
    assert suptitle.startswith(f'MNIST5k test set: 50 of 1,000 digits, predicted by the run '
                               f'in {out}/\n')
    assert len(captions) == 50


# -----------------------------------------------------------------------------
# Every picture's title names its data and run
# -----------------------------------------------------------------------------
def test_curves_boundary_and_line_plots_take_a_title(tmp_path, monkeypatch):
    from zerograd.models import MLP
    saved = _texts(monkeypatch)
    history = training.History()
    history.append(epoch=1, train_loss=0.9, train_accuracy=0.5, test_loss=1.0,
                   test_accuracy=0.4)
    history.append(epoch=2, train_loss=0.7, train_accuracy=0.6, test_loss=0.8,
                   test_accuracy=0.5)
    training.plot_history(history, str(tmp_path / 'curves.png'),
                          title='Spiral (300 training and 300 test points)\nrun A')
    x = np.random.rand(20, 2).astype(np.float32)
    training.plot_decision_boundary(MLP((3,)), x, np.arange(20) % 3, str(tmp_path / 'b.png'),
                                    step=0.05, title='Spiral training set\nrun B')
    training.plot_curves(np.linspace(0, 1, 5), {'a': np.arange(5.0)}, str(tmp_path / 'c.png'),
                         title='100 noisy sine points\nrun C')
    training.plot_history(history, str(tmp_path / 'untitled.png'))
    curves, boundary, lines, untitled = saved
    assert curves == ['Spiral (300 training and 300 test points)\nrun A', '', '']
    assert boundary == ['Spiral training set\nrun B', '']
    assert lines == ['100 noisy sine points\nrun C', '']
    assert untitled == ['', '']  # no title asked, none drawn (the book's pictures)


def _recipe_titles(name, tmp_path, monkeypatch, **options):
    """The titles of the pictures a short run of the recipe ``name`` writes, by file."""
    from matplotlib.figure import Figure
    from zerograd import recipes
    monkeypatch.setenv('ZEROGRAD_OFFLINE', '1')
    monkeypatch.setenv('ZEROGRAD_DATA', str(tmp_path / 'no-data'))  # MNIST: the 5k digits
    titles = {}
    savefig = Figure.savefig

    def record(fig, path, *args, **kwargs):
        titles[str(path).rsplit('/', 1)[-1]] = fig._suptitle.get_text()
        return savefig(fig, path, *args, **kwargs)

    monkeypatch.setattr(Figure, 'savefig', record)
    out = str(tmp_path / f'zerograd-{name}')
    recipes.run(name, recipes.Options(out=out, quiet=True, log=lambda line: None, **options))
    return titles, out


def test_spiral_pictures_name_the_data_split_and_run(tmp_path, monkeypatch):
    titles, out = _recipe_titles('spiral', tmp_path, monkeypatch, epochs=2, seed=3)
    assert titles == {
        'decision_boundary.png': 'spiral: the classes the model predicts, over the Spiral '
                                 'training set (300 points)\n'
                                 f'zerograd train spiral --epochs 2 --seed 3, in {out}/',
        'curves.png': 'spiral: loss and accuracy per epoch on Spiral (300 training and 300 '
                      f'test points)\nzerograd train spiral --epochs 2 --seed 3, in {out}/',
    }


def test_mnist_curves_name_the_digits_they_were_trained_on(tmp_path, monkeypatch):
    titles, out = _recipe_titles('mnist-mlp', tmp_path, monkeypatch, epochs=1, batch_size=500)
    assert titles['curves.png'] == (
        'mnist-mlp: loss and accuracy per epoch on MNIST5k (4,000 training and 1,000 test '
        f'digits)\nzerograd train mnist-mlp --epochs 1 --batch-size 500, in {out}/')
    assert titles['digits.png'].startswith('MNIST5k test set: 50 of 1,000 digits')


def test_sine_pictures_name_their_data_and_run(tmp_path, monkeypatch):
    titles, out = _recipe_titles('sin-regression', tmp_path, monkeypatch, epochs=3)
    run = f'zerograd train sin-regression --epochs 3, in {out}/'
    assert titles == {
        'fit.png': 'sin-regression: the fit to its 100 training points (sin(2 pi x) + '
                   f'uniform noise)\n{run}',
        'curves.png': 'sin-regression: loss per epoch on 100 noisy sine points (training '
                      f'only, no test set)\n{run}',
    }
    titles, out = _recipe_titles('sin-lstm', tmp_path, monkeypatch, epochs=1)
    run = f'zerograd train sin-lstm --epochs 1, in {out}/'
    assert titles == {
        'prediction.png': 'sin-lstm: cos(x), never seen in training (SinCurve training set), '
                          f'predicted one point at a time\n{run}',
        'curves.png': 'sin-lstm: loss per epoch on SinCurve (999 training points, no test '
                      f'set)\n{run}',
    }
