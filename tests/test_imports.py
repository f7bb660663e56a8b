"""Every module of zerograd imports on its own and in any order: the package has no import
cycle, and its modules depend downward only (core <- functions.* <- layers <- models).

``import zerograd.X`` runs ``zerograd/__init__.py`` first, which imports the modules in one
fixed order, and that hides a cycle that breaks in another order (functions.py and
functions_conv.py once imported each other and worked only in __init__'s order). So the
runs below put an empty package object in place of ``zerograd`` (and of
``zerograd.functions`` when only its own modules are imported): each module then imports
exactly what it imports itself. Each run is a fresh interpreter, started without a shell;
the first module it imports is imported alone, the rest follow in a seeded random order.
A static check of the module-level imports names the cycle if there is one.
"""
import ast
import os
import random
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
PACKAGE = os.path.join(ROOT, 'zerograd')


def _module_files() -> dict[str, str]:
    """{module name: file} for every module of the package (``__main__`` runs the CLI)."""
    files = {}
    for folder, _, names in os.walk(PACKAGE):
        for file_name in names:
            if not file_name.endswith('.py') or file_name == '__main__.py':
                continue
            path = os.path.join(folder, file_name)
            parts = os.path.relpath(path, ROOT)[:-3].split(os.sep)
            if parts[-1] == '__init__':
                parts = parts[:-1]
            files['.'.join(parts)] = path
    return dict(sorted(files.items()))


FILES = _module_files()
MODULES = list(FILES)
FUNCTIONS = [name for name in MODULES if name.startswith('zerograd.functions.')]
OTHERS = [name for name in MODULES if name not in FUNCTIONS and name != 'zerograd']

# Run in the child: stand empty packages in for the packages named in argv[1], then import
# the modules of argv[2:] in order.
CHILD = '''
import importlib, importlib.machinery, os, sys, types
root = os.getcwd()
for name in filter(None, sys.argv[1].split(',')):
    path = os.path.join(root, *name.split('.'))
    package = types.ModuleType(name)
    package.__path__ = [path]
    package.__spec__ = importlib.machinery.ModuleSpec(name, None, is_package=True)
    package.__spec__.submodule_search_locations = [path]
    sys.modules[name] = package
    if '.' in name:
        parent, child = name.rsplit('.', 1)
        setattr(sys.modules[parent], child, package)
for name in sys.argv[2:]:
    importlib.import_module(name)
'''


def _import_in_fresh_interpreter(empty_packages: list[str], names: list[str]) -> str | None:
    """None if the modules import in this order, else the order and the child's traceback."""
    env = dict(os.environ, PYTHONPATH=ROOT)
    result = subprocess.run([sys.executable, '-c', CHILD, ','.join(empty_packages), *names],
                            cwd=ROOT, env=env, capture_output=True, text=True, timeout=120)
    if result.returncode == 0:
        return None
    return f'importing {names} (empty {empty_packages}) failed:\n{result.stderr}'


def _orders(first: list[str], rest: list[str], seed: int) -> list[list[str]]:
    """For each module of first: that module, then all of rest but it, shuffled."""
    rng = random.Random(seed)
    orders = []
    for name in first:
        others = [other for other in rest if other != name]
        rng.shuffle(others)
        orders.append([name] + others)
    return orders


def _run_all(runs: list[tuple[list[str], list[str]]]) -> list[str]:
    with ThreadPoolExecutor(max_workers=2) as pool:
        results = pool.map(lambda run: _import_in_fresh_interpreter(*run), runs)
    return [failure for failure in results if failure is not None]


def test_the_tree_has_the_modules_this_test_expects():
    # The subprocess runs below read this list: an empty one would pass vacuously.
    assert 'zerograd.core' in MODULES and 'zerograd.functions_conv' in MODULES
    assert {'zerograd.functions.math', 'zerograd.functions.conv',
            'zerograd.functions.fused'} <= set(FUNCTIONS)


def test_each_module_imports_alone_and_in_any_order():
    """Each module first in a fresh interpreter with an empty ``zerograd`` package, then
    every other module in a random order; then the package itself the usual way."""
    runs = [(['zerograd'], order) for order in _orders(OTHERS, OTHERS + FUNCTIONS, seed=0)]
    runs.append(([], ['zerograd'] + random.Random(1).sample(MODULES, len(MODULES))))
    failures = _run_all(runs)
    assert not failures, '\n\n'.join(failures)


def test_each_functions_module_imports_alone_and_in_any_order():
    """The modules of zerograd.functions with an empty ``zerograd.functions`` too (its
    __init__ imports them all in one order): each needs only what it imports."""
    runs = [(['zerograd', 'zerograd.functions'], order)
            for order in _orders(FUNCTIONS, FUNCTIONS, seed=2)]
    failures = _run_all(runs)
    assert not failures, '\n\n'.join(failures)


def _imported_modules(name: str, path: str) -> set[str]:
    """The package's modules that the module-level code of ``name`` imports (imports inside
    functions run at call time and cannot make an import cycle). ``import zerograd`` in a
    module of the package only binds the package that is already being imported; a name
    taken from a package (``from zerograd.functions import sum``) needs its __init__."""
    with open(path, encoding='utf-8') as file:
        tree = ast.parse(file.read())
    imported = set()
    for node in tree.body:
        for statement in ast.walk(node):
            if isinstance(statement, (ast.FunctionDef, ast.AsyncFunctionDef, ast.Lambda)):
                break
            if isinstance(statement, ast.Import):
                for alias in statement.names:
                    if alias.name in FILES and not name.startswith(alias.name + '.'):
                        imported.add(alias.name)
            elif isinstance(statement, ast.ImportFrom) and statement.module in FILES:
                for alias in statement.names:
                    submodule = f'{statement.module}.{alias.name}'
                    imported.add(submodule if submodule in FILES else statement.module)
    imported.discard(name)
    return imported


def _find_cycle(graph: dict[str, set[str]]) -> list[str] | None:
    """One cycle of the graph as a path [a, b, ..., a], or None (iterative DFS)."""
    state = {}  # name -> 1 while on the path, 2 when done
    for start in graph:
        if state.get(start):
            continue
        path, stack = [start], [iter(sorted(graph[start]))]
        state[start] = 1
        while stack:
            for target in stack[-1]:
                if state.get(target) == 1:
                    return path[path.index(target):] + [target]
                if not state.get(target):
                    state[target] = 1
                    path.append(target)
                    stack.append(iter(sorted(graph[target])))
                    break
            else:
                state[path.pop()] = 2
                stack.pop()
    return None


def test_module_level_imports_form_no_cycle():
    graph = {name: _imported_modules(name, path) for name, path in FILES.items()}
    cycle = _find_cycle(graph)
    assert cycle is None, f'import cycle: {" -> ".join(cycle)}'


def test_the_cycle_finder_finds_a_cycle():
    assert _find_cycle({'a': {'b'}, 'b': {'c'}, 'c': {'a'}, 'd': set()}) == ['a', 'b', 'c', 'a']
    assert _find_cycle({'a': {'b', 'c'}, 'b': {'c'}, 'c': set()}) is None


@pytest.mark.parametrize('low, high', [('zerograd.functions.array', 'zerograd.functions.math'),
                                       ('zerograd.functions.fused', 'zerograd.functions.linalg'),
                                       ('zerograd.functions', 'zerograd.layers'),
                                       ('zerograd.layers', 'zerograd.models')])
def test_modules_depend_downward(low, high):
    """A low module never imports a high one, even indirectly."""
    graph = {name: _imported_modules(name, path) for name, path in FILES.items()}
    seen, todo = set(), [low]
    while todo:
        name = todo.pop()
        if name not in seen:
            seen.add(name)
            todo.extend(graph[name])
    assert high not in seen


def test_no_function_is_written_twice_in_the_functions_package():
    """One helper, one place (``_shaped`` was written in functions.py and again in
    functions_conv.py): the modules of the functions package define disjoint names."""
    where = {}
    for name, path in FILES.items():
        if not name.startswith('zerograd.functions'):
            continue
        with open(path, encoding='utf-8') as file:
            for node in ast.parse(file.read()).body:
                if isinstance(node, (ast.FunctionDef, ast.ClassDef)):
                    where.setdefault(node.name, []).append(name)
    assert {name: modules for name, modules in where.items() if len(modules) > 1} == {}
