"""docs/notebooks/inline.ipynb runs in a real Jupyter kernel and shows a Variable's graph
(image/svg+xml) and a model's table (text/html)."""
import os

import pytest

nbformat = pytest.importorskip('nbformat')
nbclient = pytest.importorskip('nbclient')
pytest.importorskip('ipykernel')

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
NOTEBOOK = os.path.join(ROOT, 'docs', 'notebooks', 'inline.ipynb')


def _outputs(notebook, mime):
    return [output['data'][mime] for cell in notebook.cells if cell.cell_type == 'code'
            for output in cell.get('outputs', [])
            if output.get('output_type') in ('execute_result', 'display_data')
            and mime in output.get('data', {})]


def test_inline_notebook_shows_an_svg_graph_and_an_html_table(monkeypatch):
    # The kernel must import this checkout's zerograd: it runs in the repository root
    # with the root first on its path (and this Python, whatever 'python3' resolves to).
    monkeypatch.setenv('PYTHONPATH', os.pathsep.join(
        [ROOT] + [p for p in os.environ.get('PYTHONPATH', '').split(os.pathsep) if p]))
    notebook = nbformat.read(NOTEBOOK, as_version=4)
    # One more cell, in this test's copy only: which zerograd the kernel imported.
    notebook.cells.append(nbformat.v4.new_code_cell(
        "import os\nprint('zerograd from', os.path.dirname(os.path.dirname(zerograd.__file__)))"))
    client = nbclient.NotebookClient(notebook, timeout=120, kernel_name='python3',
                                     resources={'metadata': {'path': ROOT}})
    client.execute()
    errors = [output for cell in notebook.cells for output in cell.get('outputs', [])
              if output.get('output_type') == 'error']
    assert errors == []

    svgs = _outputs(notebook, 'image/svg+xml')
    assert len(svgs) == 1 and '<svg' in svgs[0]
    assert 'Tanh' in svgs[0] and 'Mul' in svgs[0]  # the graph of y = tanh(x) * x + 1

    tables = _outputs(notebook, 'text/html')
    assert len(tables) == 2 and all('<table' in table for table in tables)
    tree, summary = tables
    assert 'W: (8, ?, 3, 3) not created' in tree  # before the forward
    assert 'l0 (Conv2d)' in summary and '(1, 8, 8, 8)' in summary  # after it
    assert 'Total params' in summary

    printed = ''.join(output.get('text', '') for cell in notebook.cells
                      for output in cell.get('outputs', []) if output.get('name') == 'stdout')
    assert '(l0): Conv2d(W: (8, ?, 3, 3) not created, b: (8,))' in printed
    assert 'Total params: ' in printed

    numbers = _outputs(notebook, 'text/plain')
    assert any(text.startswith('(2.') for text in numbers)  # float(y), y.item()
    assert f'zerograd from {ROOT}\n' in printed  # this checkout's, not another copy
