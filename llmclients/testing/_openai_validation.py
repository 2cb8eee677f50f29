"""What OpenAI refuses with a 400, as :class:`~llmclients.testing.openai.OpenAIEmulator` checks it.

A 400 ``invalid_request_error`` whose ``param`` names the offending path, for:
roles other than system/developer/user/assistant/tool; user, system and
developer content that is not a str or a list of parts (user: ``text``,
``image_url`` with ``url``, ``input_audio`` with ``data`` and a ``format`` of
wav/mp3, ``file`` with ``file_data`` or ``file_id``; system and developer:
``text`` only); assistant content missing or null without ``tool_calls``;
malformed ``tool_calls`` (each ``{id, type: "function", function: {name,
arguments: str}}``); tool messages without a ``tool_call_id`` that answers the
assistant message before them, and assistant tool calls left unanswered;
``tools`` that are not a list of ``{type: "function", function: {name
matching ^[a-zA-Z0-9_-]{1,64}$, parameters: object}}``; a ``tool_choice``
other than none/auto/required/``{type: "function", function: {name}}``, or one
without ``tools``; an ``n`` that is not an integer from 1 to 128; a
``response_format`` whose type is not text/json_object/json_schema, or a
json_schema one without ``json_schema.name``. The messages follow OpenAI's
wording, which writes paths as ``messages[2].content`` in type and value
errors but ``messages.[2].role`` in its checks of the tool-call sequence.
"""

from __future__ import annotations

import re
from typing import Any, List, Mapping, Optional, Sequence, Tuple

__all__ = ["ROLES", "Invalid", "validate"]

ROLES = ("system", "assistant", "user", "tool", "developer")
_PART_TYPES = {
    "user": ("text", "image_url", "input_audio", "file"),
    "system": ("text",),
    "developer": ("text",),
    "tool": ("text",),
    "assistant": ("text", "refusal"),
}
_NAME = re.compile(r"^[a-zA-Z0-9_-]+$")
#: Optional fields of a tool's function: (key, Python type, OpenAI's name for it).
_FUNCTION_FIELDS: Tuple[Tuple[str, type, str], ...] = (
    ("parameters", dict, "an object"),
    ("description", str, "a string"),
    ("strict", bool, "a boolean"),
)


class Invalid(Exception):
    def __init__(self, message: str, param: Optional[str], code: Optional[str] = None) -> None:
        super().__init__(message)
        self.message, self.param, self.code = message, param, code


def _type_name(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, int):
        return "an integer"
    if isinstance(value, float):
        return "a decimal"
    if isinstance(value, str):
        return "a string"
    if isinstance(value, list):
        return "an array"
    return "an object"


def _missing(path: str) -> Invalid:
    return Invalid(f"Missing required parameter: '{path}'.", path, "missing_required_parameter")


def _bad_type(path: str, expected: str, value: Any) -> Invalid:
    return Invalid(
        f"Invalid type for '{path}': expected {expected}, but got {_type_name(value)} instead.",
        path,
        "invalid_type",
    )


def _bad_value(path: str, value: Any, supported: Sequence[str]) -> Invalid:
    quoted = [f"'{s}'" for s in supported]
    listed = (
        quoted[0]
        if len(quoted) == 1
        else ", ".join(quoted[:-1]) + (", and " if len(quoted) > 2 else " and ") + quoted[-1]
    )
    return Invalid(f"Invalid value: '{value}'. Supported values are: {listed}.", path, "invalid_value")


def _empty_array(path: str) -> Invalid:
    return Invalid(
        f"Invalid '{path}': empty array. Expected an array with minimum length 1, but got an empty array instead.",
        path,
        "empty_array",
    )


def _need(obj: Mapping[str, Any], key: str, path: str) -> Any:
    if key not in obj:
        raise _missing(f"{path}.{key}")
    return obj[key]


def _need_str(obj: Mapping[str, Any], key: str, path: str) -> str:
    value = _need(obj, key, path)
    if not isinstance(value, str):
        raise _bad_type(f"{path}.{key}", "a string", value)
    return value


def _need_object(obj: Mapping[str, Any], key: str, path: str) -> Mapping[str, Any]:
    value = _need(obj, key, path)
    if not isinstance(value, dict):
        raise _bad_type(f"{path}.{key}", "an object", value)
    return value


def _check_name(name: str, path: str) -> None:
    if not name:
        raise Invalid(
            f"Invalid '{path}': string too short. Expected a string with minimum length 1, "
            "but got an empty string instead.",
            path,
            "empty_string",
        )
    if len(name) > 64:
        raise Invalid(
            f"Invalid '{path}': string too long. Expected a string with maximum length 64, "
            f"but got a string with length {len(name)} instead.",
            path,
            "string_above_max_length",
        )
    if not _NAME.match(name):
        raise Invalid(
            f"Invalid '{path}': string does not match pattern. "
            "Expected a string that matches the pattern '^[a-zA-Z0-9_-]+$'.",
            path,
            "invalid_value",
        )


def _check_part(part: Any, role: str, path: str) -> None:
    if not isinstance(part, dict):
        raise _bad_type(path, "an object", part)
    kind = _need(part, "type", path)
    if kind not in _PART_TYPES[role]:
        raise _bad_value(f"{path}.type", kind, _PART_TYPES[role])
    if kind == "text":
        _need_str(part, "text", path)
    elif kind == "refusal":
        _need_str(part, "refusal", path)
    elif kind == "image_url":
        image = _need_object(part, "image_url", path)
        _need_str(image, "url", f"{path}.image_url")
        detail = image.get("detail")
        if detail is not None and detail not in ("auto", "low", "high"):
            raise _bad_value(f"{path}.image_url.detail", detail, ("auto", "low", "high"))
    elif kind == "input_audio":
        audio = _need_object(part, "input_audio", path)
        _need_str(audio, "data", f"{path}.input_audio")
        audio_format = _need(audio, "format", f"{path}.input_audio")
        if audio_format not in ("wav", "mp3"):
            raise _bad_value(f"{path}.input_audio.format", audio_format, ("wav", "mp3"))
    elif kind == "file":
        file = _need_object(part, "file", path)
        if "file_data" not in file and "file_id" not in file:
            raise _missing(f"{path}.file.file_data")


def _check_content(message: Mapping[str, Any], role: str, path: str, optional: bool) -> None:
    if "content" not in message:
        if optional:
            return
        raise _missing(f"{path}.content")
    content = message["content"]
    if content is None:
        if optional:
            return
        legacy = path.replace("messages[", "messages.[")
        raise Invalid("Invalid value for 'content': expected a string, got null.", f"{legacy}.content")
    if isinstance(content, str):
        return
    if not isinstance(content, list):
        raise _bad_type(f"{path}.content", "one of a string or array of objects", content)
    if not content and role != "assistant":
        raise _empty_array(f"{path}.content")
    for j, part in enumerate(content):
        _check_part(part, role, f"{path}.content[{j}]")


def _check_tool_calls(calls: Any, path: str) -> List[str]:
    if not isinstance(calls, list):
        raise _bad_type(path, "an array", calls)
    if not calls:
        raise _empty_array(path)
    ids = []
    for k, call in enumerate(calls):
        here = f"{path}[{k}]"
        if not isinstance(call, dict):
            raise _bad_type(here, "an object", call)
        ids.append(_need_str(call, "id", here))
        kind = _need(call, "type", here)
        if kind != "function":
            raise _bad_value(f"{here}.type", kind, ("function",))
        function = _need_object(call, "function", here)
        _need_str(function, "name", f"{here}.function")
        _need_str(function, "arguments", f"{here}.function")
    return ids


def _check_messages(messages: Any) -> None:
    if not isinstance(messages, list):
        raise _bad_type("messages", "an array", messages)
    if not messages:
        raise _empty_array("messages")
    # The run of tool answers after an assistant message with tool_calls:
    # (that message's position, the ids still unanswered), or None outside one.
    run: Optional[Tuple[int, List[str], List[str]]] = None
    for i, message in enumerate(messages):
        path = f"messages[{i}]"
        if not isinstance(message, dict):
            raise _bad_type(path, "an object", message)
        role = _need(message, "role", path)
        if role not in ROLES:
            raise _bad_value(f"{path}.role", role, ROLES)
        if "name" in message and not isinstance(message["name"], str):
            raise _bad_type(f"{path}.name", "a string", message["name"])
        tool_ids: List[str] = []
        if role == "assistant":
            if message.get("tool_calls") is not None:
                tool_ids = _check_tool_calls(message["tool_calls"], f"{path}.tool_calls")
            _check_content(message, role, path, optional=bool(tool_ids) or bool(message.get("function_call")))
        else:
            _check_content(message, role, path, optional=False)
        if role == "tool":
            call_id = _need_str(message, "tool_call_id", path)
            if run is None:
                raise Invalid(
                    "Invalid parameter: messages with role 'tool' must be a response to a preceeding "
                    "message with 'tool_calls'.",
                    f"messages.[{i}].role",
                )
            if call_id not in run[1]:
                raise Invalid(
                    f"Invalid parameter: 'tool_call_id' of '{call_id}' not found in 'tool_calls' of previous message.",
                    f"messages.[{i}].tool_call_id",
                )
            if call_id in run[2]:
                run[2].remove(call_id)
            continue
        _check_answered(run)
        run = (i, tool_ids, list(tool_ids)) if tool_ids else None
    _check_answered(run)


def _check_answered(run: Optional[Tuple[int, List[str], List[str]]]) -> None:
    if run is not None and run[2]:
        raise Invalid(
            "An assistant message with 'tool_calls' must be followed by tool messages responding to each "
            f"'tool_call_id'. The following tool_call_ids did not have response messages: {', '.join(run[2])}",
            f"messages.[{run[0]}].role",
        )


def _check_tools(body: Mapping[str, Any]) -> None:
    tools = body.get("tools")
    if tools is not None:
        if not isinstance(tools, list):
            raise _bad_type("tools", "an array", tools)
        if not tools:
            raise _empty_array("tools")
        for i, tool in enumerate(tools):
            path = f"tools[{i}]"
            if not isinstance(tool, dict):
                raise _bad_type(path, "an object", tool)
            kind = _need(tool, "type", path)
            if kind != "function":
                raise _bad_value(f"{path}.type", kind, ("function",))
            function = _need_object(tool, "function", path)
            _check_name(_need_str(function, "name", f"{path}.function"), f"{path}.function.name")
            for key, kind_of, expected in _FUNCTION_FIELDS:
                value = function.get(key)
                if value is not None and not isinstance(value, kind_of):
                    raise _bad_type(f"{path}.function.{key}", expected, value)
    choice = body.get("tool_choice")
    if choice is None:
        return
    if not tools:
        raise Invalid(
            "Invalid value for 'tool_choice': 'tool_choice' is only allowed when 'tools' are specified.",
            "tool_choice",
        )
    if isinstance(choice, str):
        if choice not in ("none", "auto", "required"):
            raise _bad_value("tool_choice", choice, ("none", "auto", "required"))
    elif isinstance(choice, dict):
        kind = _need(choice, "type", "tool_choice")
        if kind != "function":
            raise _bad_value("tool_choice.type", kind, ("function",))
        _need_str(_need_object(choice, "function", "tool_choice"), "name", "tool_choice.function")
    else:
        raise _bad_type("tool_choice", "one of a string or object", choice)


def _check_options(body: Mapping[str, Any]) -> None:
    n = body.get("n")
    if n is not None:
        if not isinstance(n, int) or isinstance(n, bool):
            raise _bad_type("n", "an integer", n)
        if n < 1:
            raise Invalid(
                f"Invalid 'n': integer below minimum value. Expected a value >= 1, but got {n} instead.",
                "n",
                "integer_below_min_value",
            )
        if n > 128:
            raise Invalid(
                f"Invalid 'n': integer above maximum value. Expected a value <= 128, but got {n} instead.",
                "n",
                "integer_above_max_value",
            )
    response_format = body.get("response_format")
    if response_format is not None:
        if not isinstance(response_format, dict):
            raise _bad_type("response_format", "an object", response_format)
        kind = _need(response_format, "type", "response_format")
        if kind not in ("text", "json_object", "json_schema"):
            raise _bad_value("response_format.type", kind, ("json_object", "json_schema", "text"))
        if kind == "json_schema":
            schema = _need_object(response_format, "json_schema", "response_format")
            name = _need_str(schema, "name", "response_format.json_schema")
            _check_name(name, "response_format.json_schema.name")
            if schema.get("schema") is not None and not isinstance(schema["schema"], dict):
                raise _bad_type("response_format.json_schema.schema", "an object", schema["schema"])


def validate(body: Mapping[str, Any]) -> None:
    """Raise :class:`Invalid` for a chat completions body OpenAI answers with a 400."""
    _check_messages(body["messages"])
    _check_tools(body)
    _check_options(body)
