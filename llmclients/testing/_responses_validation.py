"""What the Responses API emulator refuses with a 400, and OpenAI's error body.

:func:`check_body` checks a request's JSON body as OpenAI's API does (a JSON
object, a ``model``, only the fields the API knows, well-formed input items,
tools and text format, each ``function_call_output`` after its call,
``max_output_tokens`` of at least 16) and raises the
:class:`~llmclients.testing._server.Rejection` it would answer with;
:func:`error_body` is that answer's body. The emulator is
:mod:`llmclients.testing.responses`.
"""

from __future__ import annotations

from typing import Any, Dict, Mapping, Optional, Sequence

from ._server import Rejection

__all__ = ["check_body", "error_body"]

#: The request fields the API knows (response_create_params.py).
_FIELDS = frozenset(
    {
        "background", "conversation", "include", "input", "instructions", "max_output_tokens",
        "max_tool_calls", "metadata", "model", "parallel_tool_calls", "previous_response_id", "prompt",
        "prompt_cache_key", "prompt_cache_retention", "reasoning", "safety_identifier", "service_tier",
        "store", "stream", "stream_options", "temperature", "text", "tool_choice", "tools", "top_logprobs",
        "top_p", "truncation", "user",
    }
)  # fmt: skip
_ITEM_TYPES = ("message", "function_call", "function_call_output", "reasoning", "item_reference")
_ROLES = ("user", "assistant", "system", "developer")
_INPUT_PARTS = ("input_text", "input_image", "input_file")
_OUTPUT_PARTS = ("output_text", "refusal")
_FORMATS = ("text", "json_schema", "json_object")


def error_body(message: str, code: Optional[str] = None, param: Optional[str] = None,
               type_: str = "invalid_request_error") -> Dict[str, Any]:  # fmt: skip
    """OpenAI's error body: ``{"error": {"message", "type", "param", "code"}}``."""
    return {"error": {"message": message, "type": type_, "param": param, "code": code}}


def _invalid(message: str, param: Optional[str], code: str = "invalid_value") -> Rejection:
    return Rejection(400, error_body(message, code=code, param=param))


def _missing(param: str) -> Rejection:
    return _invalid(f"Missing required parameter: '{param}'.", param, "missing_required_parameter")


def _one_of(value: Any, allowed: Sequence[str], param: str) -> None:
    if value not in allowed:
        supported = ", ".join(f"'{a}'" for a in allowed)
        raise _invalid(f"Invalid value: '{value}'. Supported values are: {supported}.", param)


def check_body(body: Any) -> None:
    """Raise the :class:`~llmclients.testing._server.Rejection` OpenAI answers a
    request body with (400): not a JSON object, no ``model``, an unknown field, a
    malformed input item, tool or text format, ``max_output_tokens`` below 16."""
    if not isinstance(body, dict):
        raise Rejection(400, error_body("The request body must be a JSON object."))
    if "model" not in body:
        raise _missing("model")
    for key in body:
        if key not in _FIELDS:
            raise _invalid(f"Unknown parameter: '{key}'.", key, "unknown_parameter")
    _check_input(body.get("input"))
    _check_tools(body.get("tools"))
    _check_text(body.get("text"))
    tokens = body.get("max_output_tokens")
    if tokens is not None and (not isinstance(tokens, int) or tokens < 16):
        raise _invalid(
            f"Invalid 'max_output_tokens': integer below minimum value. Expected a value >= 16, "
            f"but got {tokens} instead.",
            "max_output_tokens",
            "integer_below_min_value",
        )


def _check_input(items: Any) -> None:
    if items is None or isinstance(items, str):
        return
    if not isinstance(items, list):
        raise _invalid("Invalid type for 'input': expected one of a string or array of input items.", "input",
                       "invalid_type")  # fmt: skip
    calls = set()
    for n, item in enumerate(items):
        where = f"input[{n}]"
        if not isinstance(item, dict):
            raise _invalid(f"Invalid type for '{where}': expected an object.", where, "invalid_type")
        kind = item.get("type", "message")
        _one_of(kind, _ITEM_TYPES, f"{where}.type")
        if kind == "message":
            _check_message(item, where)
        elif kind == "function_call":
            for key in ("call_id", "name", "arguments"):
                if not isinstance(item.get(key), str):
                    raise _missing(f"{where}.{key}")
            calls.add(item["call_id"])
        elif kind == "function_call_output":
            if not isinstance(item.get("call_id"), str):
                raise _missing(f"{where}.call_id")
            if "output" not in item:
                raise _missing(f"{where}.output")
            if item["call_id"] not in calls:
                raise _invalid(
                    f"No tool call found for function call output with call_id {item['call_id']}.", "input"
                )


def _check_message(item: Mapping[str, Any], where: str) -> None:
    if "role" not in item:
        raise _missing(f"{where}.role")
    _one_of(item["role"], _ROLES, f"{where}.role")
    content = item.get("content")
    if isinstance(content, str):
        return
    if not isinstance(content, list):
        raise _missing(f"{where}.content")
    allowed = _OUTPUT_PARTS if item["role"] == "assistant" else _INPUT_PARTS
    for m, part in enumerate(content):
        at = f"{where}.content[{m}]"
        if not isinstance(part, dict):
            raise _invalid(f"Invalid type for '{at}': expected an object.", at, "invalid_type")
        _one_of(part.get("type"), allowed, f"{at}.type")
        if part["type"] in ("input_text", "output_text") and not isinstance(part.get("text"), str):
            raise _missing(f"{at}.text")
        if part["type"] == "input_image" and not (part.get("image_url") or part.get("file_id")):
            raise _invalid(f"Invalid '{at}': an input_image needs an image_url or a file_id.", at)
        if part["type"] == "input_image" and part.get("image_url") is not None and not isinstance(
            part["image_url"], str
        ):
            raise _invalid(f"Invalid type for '{at}.image_url': expected a string.", f"{at}.image_url",
                           "invalid_type")  # fmt: skip


def _check_tools(tools: Any) -> None:
    if tools is None:
        return
    if not isinstance(tools, list):
        raise _invalid("Invalid type for 'tools': expected an array.", "tools", "invalid_type")
    for n, tool in enumerate(tools):
        if not isinstance(tool, dict) or "type" not in tool:
            raise _missing(f"tools[{n}].type")
        if tool["type"] == "function" and not isinstance(tool.get("name"), str):
            raise _missing(f"tools[{n}].name")  # what the API says to a chat completions tool


def _check_text(text: Any) -> None:
    if text is None:
        return
    fmt = text.get("format") if isinstance(text, dict) else None
    if fmt is None:
        return
    _one_of(fmt.get("type") if isinstance(fmt, dict) else None, _FORMATS, "text.format.type")
    if fmt["type"] == "json_schema":
        for key in ("name", "schema"):
            if key not in fmt:
                raise _missing(f"text.format.{key}")
