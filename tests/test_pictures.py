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
