"""No module of llmclients reads another's underscore names.

Flags, in every module under ``llmclients/``: an import of an underscore
name, and an attribute ``x._name`` (or ``getattr(x, "_name")``) read on
anything but ``self`` or ``cls`` when the module itself defines no ``_name``
(a class may read the privates of its own kind, or its module's other
classes), except where ALLOWED says why. Dunder names are fine. Run from the repository's root: ``python .ci/check_privates.py``.
"""

from __future__ import annotations

import ast
import sys
from pathlib import Path
from typing import Iterator, Set, Tuple

#: (module, name): why that module may read that underscore name.
ALLOWED = {
    # The body layer is the one place that looks under urllib3's and
    # http.client's responses (llmclients/_http/body/__init__.py's docstring).
    ("llmclients/_http/body/dechunk.py", "_fp"): "urllib3's http.client response, to de-chunk its buffered socket file",
    ("llmclients/_http/body/sockets.py", "_fp"): "urllib3's http.client response, whose socket file holds the socket",
    ("llmclients/_http/body/sockets.py", "_sock"): "the socket under http.client's socket file (socket_of)",
    ("llmclients/_http/body/sockets.py", "_connection"): "urllib3's connection: its socket, and closing it after interrupt()",
    # The watchdog mixes itself into urllib3's connection class.
    ("llmclients/_http/watchdog.py", "_new_conn"): "urllib3's hook for a new socket, overridden in the mixin",
}


def _private(name: str) -> bool:
    return name.startswith("_") and not (name.startswith("__") and name.endswith("__"))


def defined(tree: ast.AST) -> Set[str]:
    """The underscore names a module defines: functions, classes, variables,
    attributes it assigns and ``__slots__`` entries."""
    names: Set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
            names.add(node.name)
        elif isinstance(node, ast.Name) and isinstance(node.ctx, ast.Store):
            names.add(node.id)
        elif isinstance(node, ast.Attribute) and isinstance(node.ctx, ast.Store):
            names.add(node.attr)
        elif isinstance(node, ast.Assign) and any(getattr(t, "id", "") == "__slots__" for t in node.targets):
            names.update(c.value for c in ast.walk(node.value) if isinstance(c, ast.Constant))
        elif isinstance(node, ast.AnnAssign) and isinstance(node.target, ast.Attribute):
            names.add(node.target.attr)
    return {name for name in names if _private(name)}


def reads(tree: ast.AST) -> Iterator[Tuple[int, str]]:
    """(line, name) of each underscore name ``tree`` reads from elsewhere."""
    own = defined(tree)
    for line, name in _underscore_reads(tree):
        if name not in own:
            yield line, name


def _underscore_reads(tree: ast.AST) -> Iterator[Tuple[int, str]]:
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom):
            for alias in node.names:
                if _private(alias.name):
                    yield node.lineno, alias.name
        elif isinstance(node, ast.Attribute) and _private(node.attr):
            owner = node.value
            on_self = isinstance(owner, ast.Name) and owner.id in ("self", "cls")
            on_super = isinstance(owner, ast.Call) and getattr(owner.func, "id", "") == "super"
            if not (on_self or on_super):
                yield node.lineno, node.attr
        elif isinstance(node, ast.Call) and getattr(node.func, "id", "") in ("getattr", "setattr", "hasattr"):
            on_self = isinstance(node.args[0], ast.Name) and node.args[0].id in ("self", "cls") if node.args else False
            if len(node.args) >= 2 and isinstance(node.args[1], ast.Constant) and not on_self:
                name = node.args[1].value
                if isinstance(name, str) and _private(name):
                    yield node.lineno, name


def main() -> int:
    found = 0
    for path in sorted(Path("llmclients").rglob("*.py")):
        module = path.as_posix()
        for line, name in reads(ast.parse(path.read_text(), module)):
            if (module, name) not in ALLOWED:
                print(f"{module}:{line}: reads another module's private name {name!r}")
                found += 1
    if found:
        print(f"{found} private reads; make the name public, or add it to ALLOWED in {__file__} with the reason")
    return 1 if found else 0


if __name__ == "__main__":
    sys.exit(main())
