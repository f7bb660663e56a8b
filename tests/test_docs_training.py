"""docs/training.md runs as printed: its Python blocks, in order, as one script, and what
they print and build is what the page says."""
import os
import re

import numpy as np
import pytest

DOC = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), 'docs',
                   'training.md')


@pytest.fixture(scope='module')
def page(tmp_path_factory):
    """The page's blocks run in an empty folder: (namespace, printed lines, folder)."""
    import contextlib
    import io
    with open(DOC, encoding='utf-8') as file:
        blocks = re.findall(r'```python\n(.*?)```', file.read(), re.S)
    assert len(blocks) == 9
    folder = tmp_path_factory.mktemp('training-page')
    namespace, printed = {}, io.StringIO()
    here = os.getcwd()
    os.chdir(folder)
    try:
        with contextlib.redirect_stdout(printed):
            for i, block in enumerate(blocks):
                exec(compile(block, f'{DOC} (block {i + 1})', 'exec'), namespace)
    finally:
        os.chdir(here)
    return namespace, printed.getvalue().splitlines(), folder


def test_the_pytorch_names_train_and_count_like_the_books(page):
    namespace, lines, _ = page
    loss = namespace['loss']
    assert lines[0] == f'last batch loss {loss.item():.4f}' and float(loss) == loss.item()
    assert lines[1] == '183'


def test_the_summary_counts_what_the_page_says(page):
    namespace, lines, _ = page
    assert namespace['info'].total_params == namespace['info'].trainable_params == 1370
    assert '1370' in lines
    assert '  (l2): MaxPool2d(kernel_size=2, stride=2, pad=0)' in repr(namespace['net'])


def test_the_schedule_and_the_callbacks_did_their_work(page):
    namespace, lines, folder = page
    assert '0.100' in lines  # warmed up to the base rate
    history = namespace['history']
    assert f'{len(history)} [1.0, 0.5]' in lines
    assert (folder / 'runs' / 'spiral' / 'best.npz').exists()
    rows = (folder / 'runs' / 'spiral' / 'log.csv').read_text().splitlines()
    assert len(rows) == len(history) + 1 and rows[0].startswith('epoch,')
    best = namespace['callbacks'][2]
    assert best.best == max(history['test_accuracy'])


def test_the_initializer_and_layers_give_what_the_page_says(page):
    namespace, lines, _ = page
    assert abs(namespace['layer'].W.data.std() - np.sqrt(2 / 512)) < 0.002
    assert '(4, 16)' in lines and '0.000' in lines


def test_background_loading_gives_the_same_batches(page):
    _, lines, _ = page
    assert lines[-1] == 'True'
