"""The package's layers: no module imports, directly or through others, a
module that imports it back.

Import cycles are what made the engine import GAL while GAL imported the
engine: each side then has to import the other inside a function, and which
one loads first decides whether the program starts. Imports inside
functions count here too, so a cycle cannot be hidden that way.
"""
import ast
import os
import os.path as osp
from typing import Dict, List, Set

import pytest

PACKAGE = osp.join(osp.dirname(osp.dirname(osp.abspath(__file__))),
                   'prunedet')


def _modules() -> Dict[str, str]:
    found = {}
    root = osp.dirname(PACKAGE)
    for folder, _, files in os.walk(PACKAGE):
        for file in files:
            if file.endswith('.py'):
                path = osp.join(folder, file)
                name = osp.relpath(path, root)[:-3].replace(os.sep, '.')
                found[name.removesuffix('.__init__')] = path
    return found


def _imports(name: str, path: str, modules: Dict[str, str]) -> Set[str]:
    """Every prunedet module that importing ``name`` (or calling any of its
    functions) loads, packages' ``__init__`` included."""
    package = name if path.endswith('__init__.py') else name.rsplit('.', 1)[0]
    targets = set()
    for node in ast.walk(ast.parse(open(path).read())):
        if isinstance(node, ast.Import):
            targets.update(a.name for a in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ''
            if node.level:
                up = package.rsplit('.', node.level - 1)[0] \
                    if node.level > 1 else package
                base = f'{up}.{base}' if base else up
            targets.add(base)
            targets.update(f'{base}.{a.name}' for a in node.names)
    loaded = set()
    for target in targets:
        parts = target.split('.')
        for i in range(1, len(parts) + 1):
            module = '.'.join(parts[:i])
            # a module's own packages are loaded before it: not an edge
            if module in modules and not name.startswith(module + '.') \
                    and module != name:
                loaded.add(module)
    return loaded


def _cycles(edges: Dict[str, Set[str]]) -> List[List[str]]:
    """Strongly connected components of more than one module (Tarjan)."""
    index, low, stack, on_stack, found = {}, {}, [], set(), []

    def visit(v):
        index[v] = low[v] = len(index)
        stack.append(v)
        on_stack.add(v)
        for w in edges[v]:
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on_stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            component = []
            while True:
                w = stack.pop()
                on_stack.discard(w)
                component.append(w)
                if w == v:
                    break
            if len(component) > 1:
                found.append(sorted(component))

    for v in edges:
        if v not in index:
            visit(v)
    return found


def test_the_checker_finds_a_cycle_hidden_in_a_function():
    edges = {'a': {'b'}, 'b': {'c'}, 'c': {'a'}, 'd': {'a'}}
    assert _cycles(edges) == [['a', 'b', 'c']]


def test_no_module_of_prunedet_imports_itself_back():
    modules = _modules()
    assert 'prunedet.engine.runner_model' in modules
    edges = {m: _imports(m, p, modules) for m, p in modules.items()}
    assert 'prunedet.pruning.surgery' in edges['prunedet.gal.removal']
    cycles = _cycles(edges)
    if cycles:
        pytest.fail('import cycles (move what both sides need to the layer '
                    f'below): {cycles}')
