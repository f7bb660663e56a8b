"""The examples in the package's docstrings run (doctest)."""
import doctest
import importlib
import pkgutil

import pytest

import zerograd

# walk_packages: the modules of subpackages (zerograd.functions.conv, ...) too.
MODULES = sorted(name for _, name, _ in pkgutil.walk_packages(zerograd.__path__, 'zerograd.')
                 if name != 'zerograd.__main__')


@pytest.mark.parametrize('name', ['zerograd'] + MODULES)
def test_docstring_examples(name):
    module = importlib.import_module(name)
    failures, _ = doctest.testmod(module, optionflags=doctest.NORMALIZE_WHITESPACE)
    assert failures == 0


def test_every_public_name_has_a_docstring():
    missing = []
    for name in MODULES:
        module = importlib.import_module(name)
        for attr in getattr(module, '__all__', None) or dir(module):
            obj = getattr(module, attr)
            if attr.startswith('_') or getattr(obj, '__module__', None) != name:
                continue
            if callable(obj) and not (obj.__doc__ or '').strip():
                missing.append(f'{name}.{attr}')
    assert missing == []


def test_every_test_named_in_the_reliability_table_exists():
    """docs/reliability.md's table names a test for each fault: each one must be real."""
    import ast
    import os
    import re
    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    with open(os.path.join(root, 'docs', 'reliability.md'), encoding='utf-8') as file:
        text = file.read()
    named = re.findall(r'`tests/(test_\w+\.py)::(\w+)`', text)
    assert len(named) >= 60
    missing = []
    for file_name, test_name in named:
        with open(os.path.join(root, 'tests', file_name), encoding='utf-8') as file:
            tree = ast.parse(file.read())
        functions = {node.name for node in ast.walk(tree) if isinstance(node, ast.FunctionDef)}
        if test_name not in functions:
            missing.append(f'{file_name}::{test_name}')
    assert missing == []
