"""Sphinx configuration of zerograd's API reference.

Build (as CI does; -W: a warning fails the build, -n: so does a broken cross-reference):

    python -m sphinx -W --keep-going -n -b html docs/api BUILD_DIR
"""
import os
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))
# This checkout's zerograd, not an installed copy; and the local extension.
sys.path.insert(0, ROOT)
sys.path.insert(0, os.path.join(HERE, '_ext'))

import zerograd  # noqa: E402

project = 'zerograd'
author = 'the zerograd authors'
copyright = 'the zerograd authors'
release = version = zerograd.__version__

extensions = [
    'sphinx.ext.autodoc',
    'sphinx.ext.napoleon',   # the "Args:" sections of some docstrings
    'myst_parser',           # the Markdown pages (README, docs/*.md)
    'apicheck',              # _ext/apicheck.py: a missing docstring or module fails
]

source_suffix = {'.rst': 'restructuredtext', '.md': 'markdown'}
exclude_patterns = ['_build', '_ext']
root_doc = 'index'

# Each module page is one `.. automodule::`: every public name defined there (autodoc
# leaves out what a module only imports), documented or not, so that apicheck sees the
# undocumented ones; in source order, as the modules read.
autodoc_default_options = {
    'members': True,
    'undoc-members': True,
    'show-inheritance': True,
    'member-order': 'bysource',
}
autodoc_inherit_docstrings = True
# Every module has `from __future__ import annotations`: the hints are strings. autodoc
# evaluates them in their module and shows them in the signature; the names they use
# resolve to the classes' entries here, or are in nitpick_ignore below.
autodoc_typehints = 'signature'
autodoc_typehints_format = 'short'
autodoc_preserve_defaults = True
python_use_unqualified_type_names = True

apicheck_packages = ['zerograd']
apicheck_pages = ['../../README.md', '../*.md']

myst_heading_anchors = 3

# No network while building, so no intersphinx: the names of other libraries in the
# signatures (numpy.ndarray, np.dtype, os.PathLike, contextlib.AbstractContextManager...)
# have no target here. A dotted name outside zerograd is ignored; a name inside zerograd
# must resolve. (The typing names resolve without it.)
nitpick_ignore_regex = [
    ('py:class', r'(?!zerograd\.)\w+\..*'),
]

html_theme = 'alabaster'
html_title = f'zerograd {release}'
html_static_path = []
