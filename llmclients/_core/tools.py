"""The tools a conversation runs itself (:class:`Toolbox`) and what running
one call gives (:class:`ToolResult`): the parts of the tool loop that do not
depend on how it waits, shared by :mod:`llmclients._core.toolloop` and the
asyncio loop.

A call is checked before its function runs: a name that is no tool, arguments
that are not a JSON object, or do not fit the tool's parameters, are answered
with an error result that says why, so that the model can correct itself.
"""

from __future__ import annotations

import json
from typing import Any, Callable, Dict, List, Mapping, NamedTuple, Optional, Sequence, Tuple, Union

from ..errors import InvalidRequestError
from .values import Message, ToolCall

__all__ = ["Prepared", "ToolResult", "Toolbox", "error_result", "result_text", "run_prepared", "tool_message", "value_result"]


class ToolResult(NamedTuple):
    """What one tool call gave: the text sent back to the model (``content``),
    whether it is an error (``is_error``: the call raised, was refused, or
    could not be made), the function's return value (``value``) and the
    exception it raised, or the :class:`~llmclients.CancelToolCall` that
    refused it (``error``)."""

    call: ToolCall
    content: str
    is_error: bool = False
    value: Any = None
    error: Optional[BaseException] = None


# Set here, not by expose(): llmclients loads this lazily (see its _LAZY).
ToolResult.__module__ = "llmclients"


class Prepared(NamedTuple):
    """A call ready to run: its function and the keyword arguments."""

    call: ToolCall
    function: Callable[..., Any]
    arguments: Dict[str, Any]


def _jsonable(value: Any) -> Any:
    """``json.dumps``'s fallback for what functions commonly return."""
    import dataclasses  # here: with inspect, it would double the cost of importing this module
    import datetime

    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return dataclasses.asdict(value)
    if hasattr(value, "model_dump"):  # a pydantic model
        return value.model_dump(mode="json")
    if isinstance(value, (set, frozenset, tuple)):
        return list(value)
    if isinstance(value, (datetime.date, datetime.time)):
        return value.isoformat()
    return str(value)


def result_text(value: Any) -> str:
    """A return value as the text the model reads: a str as it is, else JSON."""
    if isinstance(value, str):
        return value
    return json.dumps(value, ensure_ascii=False, default=_jsonable)


def value_result(call: ToolCall, value: Any) -> ToolResult:
    return ToolResult(call, result_text(value), False, value)


def error_result(call: ToolCall, error: Union[BaseException, str]) -> ToolResult:
    """An error result: an exception's type and message, or a sentence."""
    if isinstance(error, BaseException):
        return ToolResult(call, f"{type(error).__name__}: {error}", True, None, error)
    return ToolResult(call, error, True)


def tool_message(result: ToolResult) -> Message:
    """The ``tool`` message of a result; ``is_error`` only when set (the
    providers whose protocol has the flag read it, the others leave it out)."""
    message: Message = {"role": "tool", "tool_call_id": result.call.id, "content": result.content}
    if result.is_error:
        message["is_error"] = True
    return message


def _function_spec(tool: Any) -> Optional[Tuple[str, Optional[Mapping[str, Any]]]]:
    """The name and parameters of a tool the program runs: OpenAI's function
    shape, or Anthropic's own (``name``, ``input_schema``); None for a tool
    the service runs itself (Anthropic's web search, say)."""
    if not isinstance(tool, Mapping):
        return None
    function = tool.get("function")
    if isinstance(function, Mapping) and isinstance(function.get("name"), str):
        schema = function.get("parameters")
    elif isinstance(tool.get("name"), str) and "input_schema" in tool:
        function, schema = tool, tool["input_schema"]
    else:
        return None
    return function["name"], schema if isinstance(schema, Mapping) else None


class Toolbox:
    """The tools of a conversation: the dicts sent (:attr:`specs`) and the
    functions that run them, by name (:attr:`functions`).

    ``tools`` holds tool dicts as every provider takes them and functions,
    whose tool dict is made from their signature and docstring (once: it is
    cached). ``functions`` names the function of a dict tool.
    """

    def __init__(self, tools: Sequence[Any] = (), functions: Optional[Mapping[str, Callable[..., Any]]] = None) -> None:
        self.specs: List[Any] = []
        self.functions: Dict[str, Callable[..., Any]] = {}
        self._schemas: Dict[str, Optional[Mapping[str, Any]]] = {}
        self._typed: Dict[str, bool] = {}  # name -> made from the function's hints
        if not isinstance(tools, (list, tuple)):
            raise InvalidRequestError("tools must be a list of functions or tool dicts")
        for tool in tools:
            if callable(tool) and not isinstance(tool, Mapping):
                self._add_function(tool)
            else:
                self.specs.append(tool)
                spec = _function_spec(tool)
                if spec is not None:
                    self._schemas[spec[0]] = spec[1]
        for name, function in (functions or {}).items():
            if not callable(function):
                raise InvalidRequestError(f"tool_functions[{name!r}] is not callable")
            self.functions[name] = function

    def _add_function(self, function: Callable[..., Any]) -> None:
        from .schemas import function_tool  # not before a function tool is given: it costs import time

        spec = function_tool(function)
        name = spec["function"]["name"]
        if name in self.functions:
            raise InvalidRequestError(f"two tools are named {name!r}")
        self.specs.append(spec)
        self.functions[name] = function
        self._schemas[name] = spec["function"].get("parameters")
        self._typed[name] = True

    def check_runnable(self) -> None:
        """Raise :class:`InvalidRequestError` naming a function tool that no function runs."""
        for name in self._schemas:
            if name not in self.functions:
                raise InvalidRequestError(
                    f"the tool {name!r} has no function to run it: give the function in tools=, "
                    "or name it in tool_functions="
                )

    def prepare(self, call: ToolCall) -> Union[Prepared, ToolResult]:
        """The call ready to run, or the error result that tells the model why it cannot be."""
        function = self.functions.get(call.name)
        if function is None:
            known = ", ".join(sorted(self.functions)) or "none"
            return error_result(call, f"there is no tool named {call.name!r}; the tools are: {known}")
        try:
            arguments = json.loads(call.arguments or "{}")
        except ValueError as exc:
            return error_result(
                call, f"the arguments are not valid JSON ({exc}): {call.arguments!r}; call {call.name} again with a JSON object"
            )
        if not isinstance(arguments, dict):
            return error_result(call, f"the arguments must be a JSON object, not {call.arguments!r}")
        problems = self._problems(call.name, arguments)
        if problems:
            return error_result(
                call, f"the arguments do not fit the parameters of {call.name}: {'; '.join(problems)}. Call it again with arguments that fit"
            )
        if self._typed.get(call.name):
            from .schemas import convert_arguments

            try:
                arguments = convert_arguments(function, arguments)
            except (TypeError, ValueError) as exc:
                return error_result(call, f"the arguments do not fit the parameters of {call.name}: {exc}")
        return Prepared(call, function, arguments)

    def _problems(self, name: str, arguments: Dict[str, Any]) -> List[str]:
        schema = self._schemas.get(name)
        if not schema:
            return []
        from .schemas import schema_problems

        return schema_problems(schema, arguments)


def run_prepared(job: Prepared) -> ToolResult:
    """Run a prepared call: its return value, or the exception it raised, as a result."""
    try:
        return value_result(job.call, job.function(**job.arguments))
    except Exception as exc:  # the model reads what went wrong; the loop goes on
        return error_result(job.call, exc)

