"""The CI check that no module of llmclients reads another's underscore names
(.ci/check_privates.py): it passes on the package, and it catches each kind of read."""

from __future__ import annotations

import ast
import importlib.util
import os
from pathlib import Path
from types import ModuleType

import pytest

ROOT = Path(__file__).resolve().parent.parent


def load_check() -> ModuleType:
    spec = importlib.util.spec_from_file_location("check_privates", ROOT / ".ci" / "check_privates.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_no_module_reads_another_s_private_names(capsys: pytest.CaptureFixture[str]) -> None:
    check = load_check()
    cwd = os.getcwd()
    os.chdir(ROOT)
    try:
        assert check.main() == 0, capsys.readouterr().out
    finally:
        os.chdir(cwd)


@pytest.mark.parametrize(
    "source",
    [
        "from .transport import _describe",
        "def f(stream):\n    return stream._parts",
        "def f(raw):\n    return getattr(raw, '_fp', None)",
    ],
)
def test_the_check_catches_a_private_read(source: str) -> None:
    assert [name for _, name in load_check().reads(ast.parse(source))] != []


@pytest.mark.parametrize(
    "source",
    [
        "class A:\n    def f(self):\n        return self._x",
        "class A:\n    def __init__(self):\n        self._x = 1\n    def same(self, other):\n        return other._x",
        "def f(x):\n    return x.__class__",
    ],
)
def test_the_check_lets_a_module_read_its_own_names(source: str) -> None:
    assert list(load_check().reads(ast.parse(source))) == []
