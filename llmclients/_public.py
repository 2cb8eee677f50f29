"""The public/private line: the module a public name shows (:func:`expose`),
and the import paths of 0.1, which still work (:data:`MOVED`).

Public names live in private modules (``llmclients._core``,
``llmclients._http``) and are imported from public ones (``llmclients``,
``llmclients.aio``, ...): :func:`expose` makes their reprs, tracebacks and
pickles name the public module, as httpx does. The modules that 0.1 had at
the top level moved behind the line in 0.2.0; an import of an old path still
gets the module (and a ``DeprecationWarning`` naming the public place), so
code and pickles written against 0.1 keep working.
"""

from __future__ import annotations

import importlib
import importlib.machinery
import sys
import warnings
from types import FunctionType, ModuleType
from typing import TYPE_CHECKING, Any, Mapping, Optional, Sequence, cast

if TYPE_CHECKING:
    import importlib.abc

__all__ = ["MOVED", "expose", "install"]

#: An import path of 0.1 -> the private module that holds its code now.
MOVED: Mapping[str, str] = {
    "llmclients.body": "llmclients._http.body",
    "llmclients.config": "llmclients._http.config",
    "llmclients.decoding": "llmclients._core.framing",
    "llmclients.failures": "llmclients._http.error_table",
    "llmclients.fallback": "llmclients._core.fallback",
    "llmclients.masking": "llmclients._http.masking",
    "llmclients.media": "llmclients._core.content_type",
    "llmclients.preparing": "llmclients._http.preparing",
    "llmclients.prompt": "llmclients.providers._prompt",
    "llmclients.provider": "llmclients._core.provider",
    "llmclients.reading": "llmclients._core.state",
    "llmclients.redirects": "llmclients._http.redirects",
    "llmclients.repl": "llmclients.cli._repl",
    "llmclients.status": "llmclients._http.status_errors",
    "llmclients.stream": "llmclients._core.stream",
    "llmclients.transport": "llmclients._http.transport",
    "llmclients.types": "llmclients._core.values",
    "llmclients.watchdog": "llmclients._http.watchdog",
}


def expose(names: Mapping[str, Any], public: str, exported: Sequence[str]) -> None:
    """Make each class and function of ``exported`` that a private module
    defines show ``public`` as its module."""
    for name in exported:
        value = names.get(name)
        module = getattr(value, "__module__", "") or ""
        if isinstance(value, (type, FunctionType)) and "._" in module:
            value.__module__ = public


# The import system needs only these methods, not importlib.abc's bases
# (importing importlib.abc would take longer than the rest of llmclients).
class _Alias:
    """Loads an old path as the module that holds its code now."""

    def __init__(self, target: str) -> None:
        self.target = target

    def create_module(self, spec: importlib.machinery.ModuleSpec) -> Optional[ModuleType]:
        warnings.warn(
            f"{spec.name} moved to the private {self.target} in llmclients 0.2.0: "
            "import its public names from llmclients (or llmclients.providers.kit)",
            DeprecationWarning,
            stacklevel=2,
        )
        return importlib.import_module(self.target)

    def exec_module(self, module: ModuleType) -> None:
        """The module ran when it was first imported under its own name."""


class _Finder:
    def find_spec(self, name: str, path: Any = None, target: Any = None) -> Optional[importlib.machinery.ModuleSpec]:
        if not name.startswith("llmclients."):
            return None
        for old, new in MOVED.items():
            if name == old or name.startswith(old + "."):
                loader = cast("importlib.abc.Loader", _Alias(new + name[len(old):]))  # a loader in all but its base
                return importlib.machinery.ModuleSpec(name, loader)
        return None


def install() -> None:
    """Let the import paths of :data:`MOVED` (and the modules under them) be imported; once.

    First in ``sys.meta_path``: the path finder would otherwise load a module
    under an old package path (``llmclients.body.dechunk``) a second time."""
    if not any(isinstance(finder, _Finder) for finder in sys.meta_path):
        sys.meta_path.insert(0, _Finder())
