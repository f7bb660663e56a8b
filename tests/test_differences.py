"""docs/differences.md lists every place where zerograd deliberately differs from the
book's DeZero, each with the test that holds zerograd to it; it covers every "Fix" of the
API contract (shared/API.md), and the README links it."""
from __future__ import annotations

import pathlib
import re

ROOT = pathlib.Path(__file__).resolve().parent.parent
DOC = ROOT / 'docs' / 'differences.md'
API = ROOT.parent / 'shared' / 'API.md'  # the contract, beside the checkout when present

ROW = re.compile(r'^\|(?!\s*(?:---|the book))(.*)\|\s*$', re.MULTILINE)
TEST = re.compile(r'`(tests/[\w/]+\.py)::(\w+)`')

# Each "Fix" of API.md (in its order) and words that a "Fix:" row of the document must say.
API_FIXES = [
    ('a Python scalar never changes the dtype', 'a Python scalar operand never changes'),
    ('backward() on a leaf', "sets the leaf's grad"),
    ('the engine checks count and shapes', 'the engine checks the count and each shape'),
    ('batched N-D matmul', 'for batched N-D inputs'),
    ('labels (N, 1) and MSE (N,) vs (N, 1)', '(N, 1) is a `ValueError`'),
    ('labels (N, 1) and MSE (N,) vs (N, 1)', 'would broadcast to more elements'),
    ("conv2d's weight gradient, double backward", "double backward works through conv2d"),
    ('max pooling at any order', 'max pooling is differentiable at any order'),
    ('average pooling, non-square kernels', 'non-square kernels work'),
    ('deterministic registration order', 'registration order is assignment order'),
    ('Linear W float32 on NumPy 2', 'W is really float32'),
    ("RNN's hidden-to-hidden weights", 'hidden x hidden'),
    ('weights saved atomically', 'a temporary file, renamed when complete'),
    ('lazy weights not created', 'a clear error'),
    ('load checks keys and shapes', 'every key and shape is checked'),
    ('allow_pickle=False', '`allow_pickle=False`'),
    ('SqueezeNet works', 'a working SqueezeNet'),
    ('FreezeParam works', 'frozen parameters are not updated'),
    ("the spiral's private generator", 'private generator'),
    ('CIFAR100 label lists complete', 'both label lists'),
    ('ImageNet labels parsed safely', 'parsed as data, never run'),
    ('a new for loop is a new epoch', 'each new `for` loop starts a new epoch'),
    ("gradient_check keeps x's dtype", 'x is left as it was'),
    ('pair and the conv sizes check their values', 'a bad value raises with a message'),
]
N_API_FIX_MARKERS = 18  # "Fix" in API.md: some carry several fixes (listed separately above)


def _rows() -> list[list[str]]:
    return [[cell.strip() for cell in match.group(1).split('|')]
            for match in ROW.finditer(DOC.read_text(encoding='utf-8'))]


def test_every_row_says_book_zerograd_why_and_names_a_test_that_exists():
    rows = _rows()
    assert len(rows) >= len(API_FIXES)
    problems = []
    for book, zerograd, why, test in rows:
        if not (book and zerograd and why):
            problems.append(f'incomplete row: {book!r}')
        match = TEST.fullmatch(test)
        if match is None:
            problems.append(f'{book!r}: no test named (`tests/FILE.py::TEST`)')
            continue
        path, name = ROOT / match.group(1), match.group(2)
        if not path.is_file() or not re.search(rf'^\s*def {name}\(', path.read_text(), re.M):
            problems.append(f'{book!r}: {match.group(0)} does not exist')
    assert problems == []


def test_every_fix_of_the_api_contract_is_listed():
    fixes = ' '.join(zerograd for book, zerograd, *_ in _rows() if book.startswith('Fix:'))
    missing = [what for what, words in API_FIXES if words not in fixes]
    assert missing == []
    if API.is_file():  # a new Fix in the contract needs a row (and a line above)
        assert len(re.findall(r'\bFix[:/]', API.read_text(encoding='utf-8'))) == N_API_FIX_MARKERS


def test_the_readme_links_the_differences():
    assert '(docs/differences.md)' in (ROOT / 'README.md').read_text(encoding='utf-8')
