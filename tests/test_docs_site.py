"""The API reference (docs/api): it builds with warnings as errors, and its checks (the
local extension docs/api/_ext/apicheck.py) fail a build that leaves something out."""
import os
import subprocess
import sys
import textwrap

import pytest

pytest.importorskip('sphinx')
pytest.importorskip('myst_parser')

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SITE = os.path.join(ROOT, 'docs', 'api')


def _build(source, out):
    """The CI command: -W (a warning fails), --keep-going (report them all), -n (nitpicky:
    a broken cross-reference is a warning). Returns (exit status, warnings)."""
    command = [sys.executable, '-m', 'sphinx', '-W', '--keep-going', '-n', '-q',
               '-b', 'html', str(source), str(out)]
    result = subprocess.run(command, capture_output=True, text=True, timeout=600)
    return result.returncode, result.stderr


def _read(path):
    with open(path, encoding='utf-8') as file:
        return file.read()


@pytest.mark.slow
def test_the_api_reference_builds_with_warnings_as_errors(tmp_path):
    status, warnings = _build(SITE, tmp_path)
    assert status == 0, warnings
    assert warnings == ''
    layers = _read(tmp_path / 'reference' / 'zerograd.layers.html')
    assert 'id="zerograd.layers.Linear"' in layers
    assert 'id="zerograd.layers.Layer.params"' in layers
    # the package's re-exports are documented where they are defined, once
    assert 'id="zerograd.functions.math.tanh"' in _read(
        tmp_path / 'reference' / 'zerograd.functions.math.html')
    assert 'id="zerograd.functions.tanh"' not in _read(
        tmp_path / 'reference' / 'zerograd.functions.html')
    # the guides: the README's links to docs/*.md go to the site's pages, and the steps
    # page's line links into core_simple.py go to the reference's entries
    readme = _read(tmp_path / 'readme.html')
    assert 'href="differences.html"' in readme
    assert 'href="steps.html"' in readme
    assert (tmp_path / '_images' / 'mnist-mlp-curves.png').exists()
    steps = _read(tmp_path / 'steps.html')
    assert ('href="reference/zerograd.core_simple.html'
            '#zerograd.core_simple.Variable.backward"') in steps
    for page in ('differences', 'reliability', 'onnx', 'distributed'):
        assert (tmp_path / f'{page}.html').exists()


CONF = '''
import sys
sys.path.insert(0, {root!r})
sys.path.insert(0, {ext!r})
extensions = ['sphinx.ext.autodoc', 'myst_parser', 'apicheck']
autodoc_default_options = {{'members': True, 'undoc-members': True}}
apicheck_packages = ['fakepkg']
apicheck_pages = ['../*.md']
'''

INDEX = '''
Fake
====

.. toctree::

   included

.. automodule:: fakepkg
.. automodule:: fakepkg.good
'''

GOOD = '''
"""A documented module."""


def documented(x):
    """A docstring."""
    return x


class Base:
    """A documented base class."""

    def forward(self, x):
        """Documented once, here."""
        return x


class Child(Base):
    """Inherits forward's docstring."""

    def forward(self, x):
        return x + 1

    def _private(self):
        return None
'''

BAD = '''
"""A module with undocumented public names."""


def undocumented(x):
    return x


class Thing:
    """The class is documented, two of its members are not."""

    def method(self):
        return 1

    @property
    def size(self):
        return 2
'''


def _fake_site(tmp_path, bad_names=True):
    """A package fakepkg and its site laid out as the real one: pages in docs/, the site in
    docs/api. With bad_names, a module without docstrings, a module and a page left out."""
    package = tmp_path / 'fakepkg'
    package.mkdir()
    (package / '__init__.py').write_text('"""A fake package."""\n')
    (package / 'good.py').write_text(GOOD)
    (package / '_private.py').write_text('def helper():\n    return 1\n')
    docs = tmp_path / 'docs'
    site = docs / 'api'
    site.mkdir(parents=True)
    (site / 'conf.py').write_text(CONF.format(root=str(tmp_path),
                                              ext=os.path.join(SITE, '_ext')))
    (docs / 'guide.md').write_text('# A guide\n\nText.\n')
    (site / 'included.md').write_text('```{include} ../guide.md\n```\n')
    index = INDEX
    if bad_names:
        (package / 'bad.py').write_text(BAD)
        (package / 'missing.py').write_text('"""Not in the site."""\n')
        (docs / 'forgotten.md').write_text('# Not included\n')
        index += '.. automodule:: fakepkg.bad\n'
    (site / 'index.rst').write_text(index)
    return site


def test_a_complete_fake_site_builds_clean_with_the_extension(tmp_path):
    status, warnings = _build(_fake_site(tmp_path, bad_names=False), tmp_path / 'html')
    assert status == 0, warnings
    assert warnings == ''


def test_missing_docstrings_modules_and_pages_fail_the_build(tmp_path):
    status, warnings = _build(_fake_site(tmp_path), tmp_path / 'html')
    assert status != 0
    assert 'public function fakepkg.bad.undocumented has no docstring' in warnings
    assert 'public method fakepkg.bad.Thing.method has no docstring' in warnings
    assert 'public property fakepkg.bad.Thing.size has no docstring' in warnings
    assert 'module fakepkg.missing is not in the API reference' in warnings
    assert 'forgotten.md is not in the site' in warnings
    # documented, inherited or private: no warning
    assert 'fakepkg.good' not in warnings
    assert '_private' not in warnings
    assert 'guide.md' not in warnings
    assert len([line for line in warnings.splitlines() if 'WARNING' in line]) == 5, warnings
