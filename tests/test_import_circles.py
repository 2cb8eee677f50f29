"""The CI check that no two of llmclients' modules import each other, even
lazily or only for type checking (.ci/check_imports.py): it passes on the
package, and it finds each kind of circle."""

from __future__ import annotations

import importlib.util
from pathlib import Path
from types import ModuleType
from typing import Dict

import pytest

ROOT = Path(__file__).resolve().parent.parent


def load_check() -> ModuleType:
    spec = importlib.util.spec_from_file_location("check_imports", ROOT / ".ci" / "check_imports.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_llmclients_has_no_import_circle(capsys: pytest.CaptureFixture[str]) -> None:
    assert load_check().main(ROOT) == 0, capsys.readouterr().out


def write(root: Path, files: Dict[str, str]) -> Path:
    for name, source in files.items():
        path = root / "llmclients" / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(source, encoding="utf-8")
    return root


@pytest.mark.parametrize(
    "b_imports_a",
    [
        "from .a import thing",
        "from . import a",
        "import llmclients.a",
        "def later():\n    from .a import thing\n",
        "from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n    from .a import Thing\n",
    ],
    ids=["from-import", "module import", "absolute", "lazy", "TYPE_CHECKING"],
)
def test_the_check_finds_a_circle_however_it_is_imported(tmp_path: Path, b_imports_a: str) -> None:
    root = write(tmp_path, {"__init__.py": "", "a.py": "from .b import other\n", "b.py": b_imports_a})
    check = load_check()
    assert check.circles(check.graph(root)) == [["llmclients.a", "llmclients.b"]]
    assert check.main(root) == 1


def test_a_package_that_imports_a_module_importing_the_package_is_a_circle(tmp_path: Path) -> None:
    root = write(
        tmp_path,
        {"__init__.py": "", "ui/__init__.py": "from .chat import run\n", "ui/chat.py": "from .. import ui\n"},
    )
    check = load_check()
    assert check.circles(check.graph(root)) == [["llmclients.ui", "llmclients.ui.chat"]]


def test_layers_that_import_downwards_only_pass(tmp_path: Path) -> None:
    root = write(
        tmp_path,
        {"__init__.py": "from .top import api\n", "top.py": "from ._low import helper\n", "_low.py": "import json\n"},
    )
    check = load_check()
    assert check.circles(check.graph(root)) == []
    assert check.graph(root)["llmclients.top"] == {"llmclients._low"}
