"""The examples in the package's docstrings run (doctest)."""
import doctest
import importlib
import pkgutil

import pytest

import zerograd

MODULES = sorted(name for _, name, _ in pkgutil.iter_modules(zerograd.__path__, 'zerograd.')
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
