"""README.md and pyproject.toml tell a new user the truth.

- Every ```python block of the README runs as written, each on its own (a reader copies one
  block, not the page), in a fresh temporary folder; a ``print(...)  # variable(...)`` line
  prints what its comment says. MNIST is the only thing replaced: the blocks train on
  ``zerograd.datasets.MNIST``, which here is the first digits of the embedded MNIST5k (same
  shapes, dtypes and transform), so they run in seconds without downloading anything.
- The install commands work on a stock Debian/Ubuntu Python, which refuses ``pip install``
  outside a virtual environment: every ``pip`` the README or ``.ci/run`` runs is a virtual
  environment's.
- Each extra of pyproject.toml installs something zerograd's code uses (nothing is
  advertised before it exists), and the ``book`` extra keeps NumPy below the version that
  refuses ``float()`` of the (1, 1) arrays the book's steps 59 and 60 convert.
"""
from __future__ import annotations

import contextlib
import importlib.util
import io
import pathlib
import re
import shutil
import warnings

import numpy as np
import pytest

import zerograd.datasets
import zerograd.layers as L

ROOT = pathlib.Path(__file__).resolve().parent.parent
README = ROOT / 'README.md'
PYPROJECT = ROOT / 'pyproject.toml'
CI_RUN = ROOT / '.ci' / 'run'
STEPS = ROOT / 'docs' / 'steps.md'

# The first NumPy that refuses float() of an array with ndim > 0 (deprecated since 1.25):
# 2.3.5 converts np.ones((1, 1)) with a DeprecationWarning, 2.4.0 raises TypeError.
NUMPY_REFUSING_FLOAT_OF_1X1 = (2, 4)

BLOCK = re.compile(r'^```(\w*)[ \t]*\n(.*?)^```[ \t]*$', re.MULTILINE | re.DOTALL)
# print(x.grad)      # variable(1.94...) = dy/dx at x = 1
PRINT_CLAIM = re.compile(r'^\s*print\(.*\)\s*#\s*(variable\(.*?\))(?:\s|$)')
MNIST_DIGITS = {True: 600, False: 200}  # training and test digits the blocks train on


def _blocks(language: str) -> list[tuple[int, str]]:
    """(line of the first source line, source) of each ```language block of the README."""
    text = README.read_text(encoding='utf-8')
    return [(text.count('\n', 0, match.start(2)) + 1, match.group(2))
            for match in BLOCK.finditer(text) if match.group(1) == language]


PYTHON_BLOCKS = _blocks('python')


class SmallMNIST(zerograd.datasets.MNIST5k):
    """Stands in for MNIST in the README's blocks: its first digits, MNIST's interface."""

    def __init__(self, train: bool = True, root=None, timeout: float = 30.0,
                 **transforms) -> None:
        super().__init__(train=train, **transforms)
        self.data = self.data[:MNIST_DIGITS[train]]
        self.label = self.label[:MNIST_DIGITS[train]]


@pytest.fixture
def sandbox(tmp_path, monkeypatch):
    """A fresh working folder, MNIST replaced by SmallMNIST, NumPy's random state kept."""
    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr(zerograd.datasets, 'MNIST', SmallMNIST)
    state = np.random.get_state()
    try:
        yield tmp_path
    finally:
        np.random.set_state(state)


def _expected_failure(source: str) -> tuple[type, str] | None:
    """The documented error a block ends with when an optional tool is missing here (the
    block then runs up to that line): the pictures need matplotlib, graphs Graphviz."""
    if 'plot_dot_graph' in source and shutil.which('dot') is None:
        return RuntimeError, "Graphviz's `dot` program was not found"
    if 'zerograd.onnx' in source and (importlib.util.find_spec('onnx') is None
                                      or importlib.util.find_spec('onnxruntime') is None):
        return ImportError, r"pip install 'zerograd\[onnx\]'|onnxruntime"
    if 'plot_history' in source and importlib.util.find_spec('matplotlib') is None:
        return ImportError, r"pip install 'zerograd\[plot\]'"
    return None


def test_the_readme_has_python_blocks():
    assert len(PYTHON_BLOCKS) >= 4  # the first example, training, GPU, writing an op


@pytest.mark.parametrize('line, source', PYTHON_BLOCKS,
                         ids=[f'README.md:{line}' for line, _ in PYTHON_BLOCKS])
def test_readme_python_block_runs_as_written(line, source, sandbox):
    code = compile(source, f'README.md:{line}', 'exec')
    out = io.StringIO()
    failure = _expected_failure(source)
    with contextlib.redirect_stdout(out):
        if failure is None:
            exec(code, {'__name__': f'readme_{line}'})
        else:
            with pytest.raises(failure[0], match=failure[1]):
                exec(code, {'__name__': f'readme_{line}'})
            return
    printed = out.getvalue().splitlines()
    claims = [m.group(1) for m in map(PRINT_CLAIM.match, source.splitlines()) if m]
    assert [line for line in printed if line.startswith('variable(')] == claims
    # The files it says it writes are there: to_file='graph.png', out='run', 'mlp.npz', ...
    named = set(re.findall(r"""['"]([\w.-]+\.(?:png|npz))['"]|out=['"]([\w.-]+)['"]""",
                           source))
    missing = [name for pair in named for name in pair if name and not (sandbox / name).exists()]
    assert missing == []


# -- installing on a stock Debian/Ubuntu Python -------------------------------------------
def test_readme_installs_only_into_a_virtual_environment():
    """`pip install` on Debian's python3 fails with externally-managed-environment: each
    pip the README runs is .venv's, and the quick start makes .venv first."""
    commands = [command for _, source in _blocks('sh') for command in source.splitlines()]
    pips = [command for command in commands if re.search(r'\bpip\b', command)]
    assert pips, 'the README shows no install command'
    bare = [command for command in pips
            if re.search(r'(^|[\s;&|])(pip3?|python3? -m pip) install', command)]
    assert bare == []
    quick_start = commands[0]
    assert quick_start.startswith('python3 -m venv .venv && .venv/bin/pip install ')
    assert '.venv/bin/zerograd demo' in quick_start
    text = README.read_text(encoding='utf-8')
    assert 'apt-get install python3-venv' in text  # when venv lacks ensurepip
    assert '.venv/bin/python -m pytest -q' in text


def test_ci_installs_only_into_virtual_environments():
    script = CI_RUN.read_text(encoding='utf-8')
    installs = [line.strip() for line in script.splitlines()
                if 'pip install' in line and not line.strip().startswith('#')]
    assert installs
    assert [line for line in installs
            if not re.match(r'("\$venv/bin/python"|\.venv/bin/python) -m pip install ', line)] == []
    assert 'python3 -m pytest' not in script  # the tests run in .venv, where pytest is


# -- the extras ---------------------------------------------------------------------------
def _extras() -> dict[str, list[str]]:
    """[project.optional-dependencies] of pyproject.toml (tomllib is Python 3.11+)."""
    text = PYPROJECT.read_text(encoding='utf-8')
    table = text.split('[project.optional-dependencies]', 1)[1].split('\n[', 1)[0]
    return {name: re.findall(r'"([^"]+)"', value)
            for name, value in re.findall(r'^(\w[\w-]*)\s*=\s*(\[.*?\])', table, re.M)}


# What each extra's distribution is imported as.
IMPORT_NAMES = {'matplotlib': 'matplotlib', 'Pillow': 'PIL', 'tqdm': 'tqdm',
                'cupy-cuda12x': 'cupy', 'onnx': 'onnx',
                'mpich': 'mpi4py'}  # MPICH is the MPI library that mpi4py loads


def test_every_extra_installs_something_the_code_imports():
    source = '\n'.join(path.read_text(encoding='utf-8')
                       for path in (ROOT / 'zerograd').rglob('*.py'))
    unused = []
    for extra, requirements in _extras().items():
        # The tests' tools; the book's own scripts' NumPy; the tools that run notebooks
        # and build the API reference (docs/api), which the package itself never imports.
        if extra in ('dev', 'book', 'notebook', 'docs'):
            continue
        for requirement in requirements:
            name = re.match(r'[A-Za-z0-9_.-]+', requirement).group(0)
            module = IMPORT_NAMES.get(name, name)
            if not re.search(rf'^\s*(import|from) {module}\b', source, re.M):
                unused.append(f'{extra}: {requirement} ({module} is never imported)')
    assert unused == []


def test_book_extra_keeps_numpy_below_the_version_refusing_float_of_1x1():
    extras = _extras()
    assert 'book' in extras
    bound = '.'.join(map(str, NUMPY_REFUSING_FLOAT_OF_1X1))
    assert f'numpy>=1.24,<{bound}' in extras['book']
    readme, steps = README.read_text(encoding='utf-8'), STEPS.read_text(encoding='utf-8')
    assert "'.[book]'" in readme and f'NumPy {bound} refuses `float()`' in readme
    step59 = steps.split('## Step 59:')[1].split('## Step 60:')[0]
    step60 = steps.split('## Step 60:')[1]
    assert f'NumPy {bound} refuses' in step59 and "'.[book]'" in step59
    assert 'book` extra' in step60


def test_float_of_a_1x1_prediction_works_exactly_below_the_book_extras_bound():
    """The book's steps 59-60 do float(y.data) on a (1, 1) output: fine below the bound,
    a TypeError from it on (so the bound is neither too low nor too high)."""
    np.random.seed(0)
    y = L.Linear(1)(np.array([[0.5]], dtype=np.float32))
    assert y.shape == (1, 1)
    numpy_version = tuple(int(part) for part in re.findall(r'\d+', np.__version__)[:2])
    with warnings.catch_warnings():
        warnings.simplefilter('ignore', DeprecationWarning)  # NumPy 1.25 to 2.3
        if numpy_version < NUMPY_REFUSING_FLOAT_OF_1X1:
            assert float(y.data) == float(y.data[0, 0])
        else:
            with pytest.raises(TypeError, match='0-dimensional'):
                float(y.data)
