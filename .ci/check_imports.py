"""No import circles among llmclients' modules, counting every import.

An import inside a function, or under ``if TYPE_CHECKING:``, still ties two
modules together: it only hides the circle from the interpreter. So every
``import`` and ``from ... import`` anywhere in a module counts as an arrow
to the module it names (``from . import errors`` names ``llmclients.errors``;
``from .call import Call`` names ``llmclients._core.call``, or, for a package,
its ``__init__``), a package's ``__init__`` importing its own modules included.

Prints each circle (the modules of one strongly connected component) and
exits 1 if there is any. Run from the repository's root:
``python .ci/check_imports.py``.
"""

from __future__ import annotations

import ast
import sys
from pathlib import Path
from typing import Dict, Iterator, List, Set

PACKAGE = "llmclients"


def modules(root: Path) -> Dict[str, Path]:
    """Every module of the package under ``root``: dotted name -> file."""
    found = {}
    for path in sorted((root / PACKAGE).rglob("*.py")):
        parts = list(path.relative_to(root).with_suffix("").parts)
        if parts[-1] == "__init__":
            parts.pop()
        found[".".join(parts)] = path
    return found


def imported(name: str, path: Path, known: Set[str]) -> Iterator[str]:
    """The package's modules that module ``name`` (at ``path``) imports."""
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"), str(path))):
        if isinstance(node, ast.Import):
            for alias in node.names:
                yield from _nearest(alias.name, known)
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")[: len(package.split(".")) - node.level + 1]
                source = ".".join(base + ([node.module] if node.module else []))
            else:
                source = node.module or ""
            for alias in node.names:
                submodule = f"{source}.{alias.name}"
                yield from [submodule] if submodule in known else _nearest(source, known)


def _nearest(dotted: str, known: Set[str]) -> Iterator[str]:
    """``dotted`` or the nearest package above it that is one of ours."""
    while dotted:
        if dotted in known:
            yield dotted
            return
        dotted = dotted.rpartition(".")[0]


def graph(root: Path) -> Dict[str, Set[str]]:
    """Module -> the modules it imports."""
    found = modules(root)
    known = set(found)
    return {name: set(imported(name, path, known)) - {name} for name, path in found.items()}


def circles(edges: Dict[str, Set[str]]) -> List[List[str]]:
    """The strongly connected components of more than one module (Tarjan's algorithm)."""
    index: Dict[str, int] = {}
    low: Dict[str, int] = {}
    stack: List[str] = []
    on_stack: Set[str] = set()
    found: List[List[str]] = []

    def visit(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        on_stack.add(node)
        for target in sorted(edges.get(node, ())):
            if target not in index:
                visit(target)
                low[node] = min(low[node], low[target])
            elif target in on_stack:
                low[node] = min(low[node], index[target])
        if low[node] == index[node]:
            component = []
            while True:
                member = stack.pop()
                on_stack.discard(member)
                component.append(member)
                if member == node:
                    break
            if len(component) > 1:
                found.append(sorted(component))

    sys.setrecursionlimit(max(sys.getrecursionlimit(), 10 * len(edges) + 100))
    for node in sorted(edges):
        if node not in index:
            visit(node)
    return found


def main(root: Path = Path(".")) -> int:
    edges = graph(root)
    found = circles(edges)
    for component in found:
        members = set(component)
        print(f"import circle among {len(component)} modules:")
        for name in component:
            print(f"  {name} -> {', '.join(sorted(edges[name] & members))}")
    if not found:
        print(f"no import circles among {len(edges)} modules")
    return 1 if found else 0


if __name__ == "__main__":
    sys.exit(main())
