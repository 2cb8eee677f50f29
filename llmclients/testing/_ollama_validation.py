"""What ``ollama serve`` refuses with a 400 for a body's JSON, as
:class:`~llmclients.testing.ollama.OllamaEmulator` checks it, in the words of
Go's ``encoding/json`` (Ollama's ``{"error": "..."}`` bodies carry them).

:func:`go_syntax_error` words a body that is not JSON (``unexpected EOF``,
``invalid character ...``); :func:`type_error` one whose fields have the wrong
JSON type (``json: cannot unmarshal ... into Go struct field ...``): a
message's ``content`` must be a string, ``images`` base64 strings, a tool
call's ``arguments`` an object; and a ``think`` other than a bool or a level,
or a ``format`` other than ``"json"`` or a schema.
"""

from __future__ import annotations

import base64
import binascii
import json
import re
from typing import Any, Optional

__all__ = ["go_syntax_error", "type_error"]

_THINK_LEVELS = ("high", "medium", "low", "max")


def go_syntax_error(text: str, exc: ValueError) -> str:
    position = getattr(exc, "pos", len(text))
    rest = text[position:].strip()
    if not rest:
        return "unexpected EOF"
    return f"invalid character {rest[0]!r} looking for beginning of value".replace('"', "'")


_JSON_TYPES = ((bool, "bool"), (str, "string"), ((int, float), "number"), (list, "array"), (dict, "object"))


def _json_type(value: Any) -> str:
    for kinds, name in _JSON_TYPES:
        if isinstance(value, kinds):
            return name
    return "null"


def _unmarshal(value: Any, field: str, go_type: str) -> str:
    return f"json: cannot unmarshal {_json_type(value)} into Go struct field {field} of type {go_type}"


def type_error(body: Any) -> Optional[str]:
    """What Go's decoder says of a body whose fields have the wrong JSON type; None if none has."""
    if not isinstance(body, dict):
        return f"json: cannot unmarshal {_json_type(body)} into Go value of type api.ChatRequest"
    simple = {
        "model": (str, "string"),
        "stream": (bool, "bool"),
        "options": (dict, "map[string]interface {}"),
        "top_logprobs": (int, "int"),
        "logprobs": (bool, "bool"),
        "truncate": (bool, "bool"),
        "shift": (bool, "bool"),
    }
    for key, (kind, go_type) in simple.items():
        value = body.get(key)
        if value is not None and (not isinstance(value, kind) or (kind is int and isinstance(value, bool))):
            return _unmarshal(value, f"ChatRequest.{key}", go_type)
    think = body.get("think")
    if think is not None and not isinstance(think, bool) and think not in _THINK_LEVELS:
        return f'invalid think value: {json.dumps(think)} (must be "high", "medium", "low", true, or false)'
    output_format = body.get("format")
    if isinstance(output_format, str) and output_format not in ("", "json"):
        return f'invalid format: {json.dumps(output_format)}; expected "json" or a valid JSON schema'
    tools = body.get("tools")
    if tools is not None and not isinstance(tools, list):
        return _unmarshal(tools, "ChatRequest.tools", "api.Tools")
    messages = body.get("messages")
    if messages is None:
        return None
    if not isinstance(messages, list):
        return _unmarshal(messages, "ChatRequest.messages", "[]api.Message")
    for message in messages:
        problem = _message_error(message)
        if problem:
            return problem
    return None


def _message_error(message: Any) -> Optional[str]:
    if not isinstance(message, dict):
        return _unmarshal(message, "ChatRequest.messages", "api.Message")
    for key in ("role", "content", "thinking", "tool_name", "tool_call_id"):
        if message.get(key) is not None and not isinstance(message[key], str):
            return _unmarshal(message[key], f"Message.messages.{key}", "string")
    images = message.get("images")
    if images is not None:
        if not isinstance(images, list):
            return _unmarshal(images, "Message.messages.images", "[]api.ImageData")
        for image in images:
            if not isinstance(image, str):
                return _unmarshal(image, "Message.messages.images", "api.ImageData")
            bad = _base64_error(image)
            if bad:
                return bad
    calls = message.get("tool_calls")
    if calls is not None:
        if not isinstance(calls, list):
            return _unmarshal(calls, "Message.messages.tool_calls", "[]api.ToolCall")
        for call in calls:
            function = call.get("function") if isinstance(call, dict) else None
            if not isinstance(function, dict):
                return _unmarshal(function, "ToolCall.messages.tool_calls.function", "api.ToolCallFunction")
            arguments = function.get("arguments")
            if arguments is not None and not isinstance(arguments, dict):
                return _unmarshal(
                    arguments,
                    "ToolCallFunction.messages.tool_calls.function.arguments",
                    "api.ToolCallFunctionArguments",
                )
    return None


_BASE64 = re.compile(r"[^A-Za-z0-9+/=]")


def _base64_error(data: str) -> Optional[str]:
    """Go's error for a ``[]byte`` field that is not standard base64."""
    bad = _BASE64.search(data)
    if bad:
        return f"illegal base64 data at input byte {bad.start()}"
    try:
        base64.b64decode(data, validate=True)
    except (binascii.Error, ValueError):
        return f"illegal base64 data at input byte {len(data) - len(data) % 4}"
    return None
