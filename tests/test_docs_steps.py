"""docs/steps.md, the book map: the sixty steps in the book's order, each with a snippet
that runs.

Every ```python block of the document is a doctest. The blocks of one section run together
(in one namespace, in a fresh temporary folder) as the test of that step, so a failure
names the step: ``test_step_snippets[step-42]``. The document is found next to this file
(``../docs/steps.md``), so the tests pass from any working directory.
"""
from __future__ import annotations

import doctest
import pathlib
import re

import numpy as np
import pytest

DOC = pathlib.Path(__file__).resolve().parent.parent / 'docs' / 'steps.md'
CORE_SIMPLE = DOC.parent.parent / 'zerograd' / 'core_simple.py'
N_STEPS = 60

HEADING = re.compile(r'^## Step (\d+): (\S.*)$', re.MULTILINE)
SECTION = re.compile(r'^## ', re.MULTILINE)  # any second-level heading ends a section
BLOCK = re.compile(r'^```python[ \t]*\n(.*?)^```[ \t]*$', re.MULTILINE | re.DOTALL)

# NumPy's default print options, so that another test's np.set_printoptions cannot change
# what the snippets print.
PRINT_OPTIONS = dict(precision=8, threshold=1000, edgeitems=3, linewidth=75,
                     suppress=False, nanstr='nan', infstr='inf', sign='-',
                     floatmode='maxprec')


def _read() -> str:
    return DOC.read_text(encoding='utf-8')


def _line_of(text: str, offset: int) -> int:
    """1-based line number of a character offset."""
    return text.count('\n', 0, offset) + 1


def _sections(text: str) -> list[dict]:
    """Each '## Step N: title' section: its number, title, first line and python blocks
    (each as (source, line of its first source line))."""
    sections = []
    for match in HEADING.finditer(text):
        start = match.end()
        following = SECTION.search(text, start)
        end = following.start() if following else len(text)
        blocks = [(block.group(1), _line_of(text, block.start(1)))
                  for block in BLOCK.finditer(text, start, end)]
        sections.append({'step': int(match.group(1)), 'title': match.group(2).strip(),
                         'line': _line_of(text, match.start()), 'body': text[start:end],
                         'blocks': blocks})
    return sections


def _intro_blocks(text: str) -> list[tuple[str, int]]:
    """The python blocks before the first step."""
    first = HEADING.search(text)
    end = first.start() if first else len(text)
    return [(block.group(1), _line_of(text, block.start(1)))
            for block in BLOCK.finditer(text, 0, end)]


def _run_blocks(name: str, blocks: list[tuple[str, int]]) -> None:
    """Run the blocks as doctests sharing one namespace; fail with doctest's report."""
    parser = doctest.DocTestParser()
    runner = doctest.DocTestRunner(
        optionflags=doctest.ELLIPSIS | doctest.NORMALIZE_WHITESPACE, verbose=False)
    globs: dict = {'__name__': f'steps_md_{name}'}
    report: list[str] = []
    for source, line in blocks:
        test = parser.get_doctest(source, globs, f'docs/steps.md {name}', str(DOC), line - 1)
        runner.run(test, out=report.append, clear_globs=False)
        globs = test.globs  # get_doctest copies globs: the next block goes on from here
    results = runner.summarize(verbose=False)
    if results.failed:
        pytest.fail(f'{name} of docs/steps.md: {results.failed} of {results.attempted} '
                    'examples failed\n' + ''.join(report), pytrace=False)


@pytest.fixture
def sandbox(tmp_path, monkeypatch):
    """A fresh folder as the working directory, NumPy's default print options, and the
    global random state restored afterwards (snippets call np.random.seed)."""
    monkeypatch.chdir(tmp_path)
    state = np.random.get_state()
    try:
        with np.printoptions(**PRINT_OPTIONS):
            yield tmp_path
    finally:
        np.random.set_state(state)


# -- the structure -----------------------------------------------------------------------
def test_document_exists():
    assert DOC.is_file(), f'{DOC} is missing'


def test_sixty_steps_in_order():
    numbers = [section['step'] for section in _sections(_read())]
    assert numbers == list(range(1, N_STEPS + 1))


def test_every_step_has_prose_and_a_doctest_snippet():
    problems = []
    for section in _sections(_read()):
        step = section['step']
        if not any('>>>' in source for source, _ in section['blocks']):
            problems.append(f'step {step}: no ```python block with >>> examples')
        prose = BLOCK.sub('', section['body'])
        if 'zerograd' not in prose:
            problems.append(f'step {step}: the prose does not say where it lives in zerograd')
        if len(prose.split()) < 25:
            problems.append(f'step {step}: the prose is too short to explain the idea')
    assert problems == []


def test_no_python_block_outside_the_parsed_sections():
    text = _read()
    counted = len(_intro_blocks(text)) + sum(len(s['blocks']) for s in _sections(text))
    assert counted == len(BLOCK.findall(text))


# -- the links into core_simple.py ---------------------------------------------------------
# Steps 1-32 point at the lines of zerograd/core_simple.py that build them, as
# [`Variable.backward`](../zerograd/core_simple.py#L104): the link text names what the line
# defines (a top-level class, function or constant, or Class.method).
LINK = re.compile(r'\[`([A-Za-z_][\w.]*)`\]\(\.\./zerograd/core_simple\.py#L(\d+)\)')
SIMPLE_STEPS = range(1, 33)


def _definition(lines: list[str], number: int) -> str | None:
    """The name line ``number`` (1-based) of core_simple.py defines: 'name' for a
    top-level class, def or assignment, 'Class.name' for a method; None otherwise."""
    if not 1 <= number <= len(lines):
        return None
    line = lines[number - 1]
    top = re.match(r'(?:class|def) (\w+)|(\w+) = ', line)
    if top:
        return top.group(1) or top.group(2)
    method = re.match(r'    def (\w+)\(', line)
    if method:
        owner = next((m.group(1) for m in (re.match(r'class (\w+)', lines[i])
                                            for i in range(number - 2, -1, -1)) if m), None)
        return f'{owner}.{method.group(1)}' if owner else None
    return None


def test_every_link_into_core_simple_points_at_what_it_names():
    text = _read()
    lines = CORE_SIMPLE.read_text(encoding='utf-8').splitlines()
    links = LINK.findall(text)
    assert links, 'docs/steps.md has no links into zerograd/core_simple.py'
    assert text.count('core_simple.py#') == len(links), \
        'a link into core_simple.py is not of the form [`name`](../zerograd/core_simple.py#LN)'
    where = {_definition(lines, n): n for n in range(len(lines), 0, -1)}  # first wins
    wrong = [f'[`{name}`] points at L{number} ({_definition(lines, int(number))}); '
             f'{name} is defined at L{where.get(name, "(nowhere)")}'
             for name, number in links if _definition(lines, int(number)) != name]
    assert wrong == []


def test_steps_1_to_32_link_into_core_simple():
    unlinked = [s['step'] for s in _sections(_read())
                if s['step'] in SIMPLE_STEPS and not LINK.search(s['body'])]
    assert unlinked == []


def test_every_public_definition_of_core_simple_is_linked():
    lines = CORE_SIMPLE.read_text(encoding='utf-8').splitlines()
    public = {m.group(1) for m in (re.match(r'(?:class|def) ([A-Za-z]\w*)', line)
                                   for line in lines) if m}
    linked = {name for name, _ in LINK.findall(_read())}
    assert sorted(public - linked) == []


def test_the_link_checker_tells_a_definition_from_a_wrong_line():
    lines = ['class Variable:', '    x = 1', '    def backward(self):', 'def add(a, b):',
             'Config = 3']
    assert [_definition(lines, n) for n in range(0, 7)] == \
        [None, 'Variable', None, 'Variable.backward', 'add', 'Config', None]


# -- the snippets ------------------------------------------------------------------------
def test_intro_snippets(sandbox):
    blocks = _intro_blocks(_read())
    if blocks:
        _run_blocks('intro', blocks)


@pytest.mark.parametrize('step', range(1, N_STEPS + 1), ids=lambda step: f'step-{step}')
def test_step_snippets(step, sandbox):
    sections = [s for s in _sections(_read()) if s['step'] == step]
    assert len(sections) == 1, f'docs/steps.md must have exactly one "## Step {step}:" section'
    section = sections[0]
    assert section['blocks'], f'step {step} ({section["title"]}) has no ```python block'
    _run_blocks(f'step {step} ({section["title"]})', section['blocks'])
