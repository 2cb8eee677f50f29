"""``chat --tools FILE.py`` and ``--functions CODE``: the functions offered as
tools (:func:`load_functions`), and what the command does around each call
(:class:`ToolPrompts`): it shows the call on stderr, asks before running it
unless ``--yes``, and shows the result."""

from __future__ import annotations

import argparse
import runpy
import sys
from typing import IO, TYPE_CHECKING, Any, Callable, Dict, List, Optional

from .._core.values import ToolCall
from ..errors import CancelToolCall
from ._common import UsageError, one_line

if TYPE_CHECKING:  # the command's start-up loads no call machinery
    from .._core.tools import ToolResult

__all__ = ["ToolPrompts", "load_functions", "prompts_for"]

#: The module name the code of --tools and --functions runs under: the
#: functions it defines (not those it imports) are the tools.
_MODULE = "__llmclients_tools__"
#: How much of a result the command shows.
_SHOWN = 300


def load_functions(args: argparse.Namespace) -> List[Callable[..., Any]]:
    """The functions of every ``--tools`` file and ``--functions`` code, in order."""
    functions: List[Callable[..., Any]] = []
    for path in args.tools or ():
        functions += _defined(_run_file(path), f"--tools {path}")
    for code in args.functions or ():
        namespace: Dict[str, Any] = {"__name__": _MODULE}
        try:
            exec(compile(code, "<--functions>", "exec"), namespace)
        except Exception as exc:  # the user's code, run at their asking: say what it raised
            raise UsageError(f"--functions: {type(exc).__name__}: {exc}") from None
        functions += _defined(namespace, "--functions")
    return functions


def _run_file(path: str) -> Dict[str, Any]:
    try:
        return runpy.run_path(path, run_name=_MODULE)
    except OSError as exc:
        raise UsageError(f"--tools {path}: {exc.strerror or exc}") from None
    except Exception as exc:  # the user's code, run at their asking: say what it raised
        raise UsageError(f"--tools {path}: {type(exc).__name__}: {exc}") from None


def _defined(namespace: Dict[str, Any], where: str) -> List[Callable[..., Any]]:
    found = [
        value
        for name, value in namespace.items()
        if callable(value) and not name.startswith("_") and getattr(value, "__module__", None) == _MODULE
        and not isinstance(value, type)
    ]
    if not found:
        raise UsageError(f"{where} defines no function (names that start with _ are left out)")
    return found


class ToolPrompts:
    """``before_call`` and ``after_call`` of the command's tool loop.

    Each call is shown on ``err`` before it runs; without ``yes`` the user
    is asked on ``err`` and answers on ``read`` (a line; anything but y or
    yes, or the end of input, refuses the call, and the model is told so).
    """

    def __init__(self, *, yes: bool, read: Callable[[], str], err: Optional[IO[str]] = None) -> None:
        self.yes = yes
        self.read = read
        self.err = err or sys.stderr

    def before_call(self, call: ToolCall) -> None:
        self._say(f"the model calls {call.name}({call.arguments})")
        if self.yes:
            return
        self.err.write(f"Run {call.name}? [y/N] ")
        self.err.flush()
        answer = self.read()
        if answer.strip().lower() not in ("y", "yes"):
            raise CancelToolCall("the user did not allow this call")

    def after_call(self, call: ToolCall, result: ToolResult) -> None:
        outcome = "failed" if result.is_error else "returned"
        text = one_line(result.content)
        self._say(f"{call.name} {outcome}: {text[:_SHOWN]}{'...' if len(text) > _SHOWN else ''}")

    def _say(self, text: str) -> None:
        self.err.write(f"llmclients: {text}\n")
        self.err.flush()


def prompts_for(args: argparse.Namespace) -> ToolPrompts:
    """The prompts of ``chat``: they ask on the terminal; without one, ``--yes`` is needed."""
    if not args.yes and not sys.stdin.isatty():
        raise UsageError(
            "--tools and --functions run code the model asks for: without a terminal to ask "
            "before each call, give --yes to run every call"
        )
    return ToolPrompts(yes=args.yes, read=sys.stdin.readline)
