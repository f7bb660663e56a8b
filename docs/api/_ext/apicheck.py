"""Sphinx extension: make the API reference fail when it is incomplete.

Three checks, each a Sphinx warning (so ``-W`` turns it into a failed build):

- every public name autodoc documents has a docstring: a module, a module-level function
  or class, a public method of a public class, a public property (an inherited docstring
  counts: ``Tanh.forward`` is documented by ``Function.forward``);
- every public module of the packages in ``apicheck_packages`` has its ``automodule``
  somewhere in the site (public: no name component starts with an underscore);
- every Markdown page matching ``apicheck_pages`` (globs relative to the configuration
  folder) is included in some page of the site.

It also fixes the links of the Markdown pages included from outside the site's folder
(``include-read``): the README's ``docs/NAME.md`` becomes the site's page ``NAME.md``, and
the steps page's ``../zerograd/core_simple.py#L54`` line links, which name their object in
the link text, become links to that object's entry in the reference.
"""
from __future__ import annotations

import glob
import importlib
import os
import pkgutil
import re
from typing import Any

from sphinx.application import Sphinx
from sphinx.environment import BuildEnvironment
from sphinx.util import logging

logger = logging.getLogger(__name__)

# The kinds of autodoc entry that must carry a docstring. Data and attributes are not
# among them: autodoc shows their values, and many are self-explaining constants.
CHECKED_KINDS = {'module', 'function', 'class', 'exception', 'method', 'property',
                 'decorator'}


def _is_public(full_name: str) -> bool:
    return not any(part.startswith('_') for part in full_name.split('.'))


def check_docstring(app: Sphinx, what: str, name: str, obj: Any, options: Any,
                    lines: list[str]) -> None:
    """autodoc-process-docstring: warn when a public entry has no docstring."""
    if what not in CHECKED_KINDS or not _is_public(name):
        return
    if any(line.strip() for line in lines):
        return
    kind = 'module' if what == 'module' else 'public ' + what
    logger.warning('%s %s has no docstring', kind, name, type='apicheck',
                   subtype='docstring', location=app.env.docname)


def public_modules(package: str) -> list[str]:
    """The package and its public modules and subpackages, at any depth, by name."""
    root = importlib.import_module(package)
    names = [package]
    for info in pkgutil.walk_packages(root.__path__, package + '.'):
        if _is_public(info.name):
            names.append(info.name)
    return sorted(names)


def check_consistency(app: Sphinx, env: BuildEnvironment) -> None:
    """env-check-consistency: every public module and every Markdown page is in the site."""
    documented = set(env.get_domain('py').modules)
    for package in app.config.apicheck_packages:
        for module in public_modules(package):
            if module not in documented:
                logger.warning('module %s is not in the API reference: add a page with '
                               '".. automodule:: %s" to a toctree', module, module,
                               type='apicheck', subtype='module')

    included = set()
    for deps in env.dependencies.values():
        for dep in deps:
            included.add(os.path.normpath(os.path.join(app.srcdir, dep)))
    for pattern in app.config.apicheck_pages:
        for path in sorted(glob.glob(os.path.join(app.confdir, pattern))):
            path = os.path.normpath(path)
            if path not in included:
                logger.warning('page %s is not in the site: add a page with '
                               '```{include} %s``` to a toctree', path,
                               os.path.relpath(path, app.srcdir), type='apicheck',
                               subtype='page')


def public_bases(app: Sphinx, name: str, obj: Any, options: Any, bases: list) -> None:
    """autodoc-process-bases: show a private base class (``_ConvBase``) as its public
    bases, which have entries to link to."""
    shown: list = []
    pending = list(bases)
    while pending:
        base = pending.pop(0)
        if getattr(base, '__name__', '').startswith('_') and base.__module__.startswith(
                tuple(app.config.apicheck_packages)):
            pending[:0] = list(base.__bases__)
        elif base not in shown:
            shown.append(base)
    bases[:] = shown


# [`Variable.backward`](../zerograd/core_simple.py#L106): the object is in the link text.
SOURCE_LINK = re.compile(r'\[`([\w.]+)`\]\(\.\./zerograd/(\w+)\.py#L\d+\)')
README_DOC_LINK = re.compile(r'\]\(docs/([\w-]+\.md)')


def _source_link(match: re.Match) -> str:
    text, module = match.group(1), match.group(2)
    # The reference documents public names only: `Variable.__init__` goes to Variable,
    # `_operand` to its module.
    parts = text.split('.')
    while parts and parts[-1].startswith('_'):
        parts.pop()
    target = '.'.join([f'zerograd.{module}'] + parts)
    return f'[`{text}`]({target})'


def fix_links(app: Sphinx, relative_path: Any, parent_docname: str,
              content: list[str]) -> None:
    """include-read: point the included pages' repository links into the site."""
    path = os.path.normpath(os.path.join(app.srcdir, str(relative_path)))
    text = content[0]
    if os.path.basename(path) == 'README.md':
        text = README_DOC_LINK.sub(r'](\1', text)
    text = SOURCE_LINK.sub(_source_link, text)
    content[0] = text


def setup(app: Sphinx) -> dict[str, Any]:
    app.add_config_value('apicheck_packages', [], 'env', types=[list])
    app.add_config_value('apicheck_pages', [], 'env', types=[list])
    app.connect('autodoc-process-docstring', check_docstring)
    app.connect('env-check-consistency', check_consistency)
    app.connect('autodoc-process-bases', public_bases)
    app.connect('include-read', fix_links)
    return {'version': '1', 'parallel_read_safe': True, 'parallel_write_safe': True}
