"""OpenAI-shaped messages, tools and options as Ollama's ``/api/chat`` request takes them.

The mapping :class:`~llmclients.providers.ollama.Ollama` sends through:
:func:`ollama_messages` (system and developer turns as ``system``, text parts
joined, images as base64 ``images``, tool calls' arguments as objects, tool
results named by their tool) and :func:`request_fields` (the sampling
settings in ``options``, ``max_tokens`` as ``num_predict``,
``reasoning_effort`` as ``think``, ``response_format`` as ``format``, the
tools checked). What they refuse raises
:class:`~llmclients.errors.InvalidMessagesError` or
:class:`~llmclients.errors.InvalidRequestError` before anything is sent.
"""

from __future__ import annotations

import base64
import json
from typing import Any, Dict, List, Mapping, Optional
from urllib.parse import unquote_to_bytes

from .kit import InvalidMessagesError, InvalidRequestError, Message, check_tools, content_text

__all__ = ["ollama_messages", "request_fields"]

#: The settings that go in the request's ``options`` object, as Ollama names them.
_SAMPLING = ("temperature", "top_p", "top_k", "seed", "num_ctx")
#: OpenAI's ``reasoning_effort`` as Ollama's ``think``.
_EFFORT_TO_THINK: Mapping[str, Any] = {
    "none": False,
    "minimal": "low",
    "low": "low",
    "medium": "medium",
    "high": "high",
    "xhigh": "high",
}
_THINK_LEVELS = ("low", "medium", "high", "max")


# --- messages: OpenAI's shape to Ollama's --------------------------------------------------


def ollama_messages(messages: List[Message]) -> List[Dict[str, Any]]:
    """OpenAI-shaped messages (checked) as Ollama's: system and developer
    turns as ``system``, text parts joined, images as base64 ``images``,
    tool calls with their arguments as objects, tool results named by their tool."""
    names: Dict[str, str] = {}  # tool call id -> its function's name, from the turns so far
    converted = []
    for index, message in enumerate(messages):
        role = message["role"]
        out: Dict[str, Any] = {"role": "system" if role == "developer" else role}
        content = message.get("content")
        out["content"] = content_text(content)
        images = _images(index, content)
        if images:
            out["images"] = images
        if role == "assistant":
            if isinstance(message.get("thinking"), str) and message["thinking"]:
                out["thinking"] = message["thinking"]  # sent back as the reply gave it
            if message.get("tool_calls"):
                out["tool_calls"] = [
                    _tool_call(index, n, call, names) for n, call in enumerate(message["tool_calls"])
                ]
        elif role == "tool":
            out["tool_call_id"] = message["tool_call_id"]
            name = names.get(message["tool_call_id"]) or message.get("name")
            if name:
                out["tool_name"] = name
        converted.append(out)
    return converted


def _images(index: int, content: Any) -> List[str]:
    """The base64 of the ``image_url`` parts of a message's content."""
    if not isinstance(content, list):
        return []
    images = []
    for n, part in enumerate(content):
        if part["type"] != "image_url":
            continue
        url = part["image_url"]["url"]
        if not url.startswith("data:"):
            raise InvalidMessagesError(
                f"messages[{index}]['content'][{n}] is an image URL ({url[:60]!r}); Ollama takes the "
                "image's bytes, not a link: download it and pass llmclients.image_part(path or bytes)"
            )
        header, comma, payload = url.partition(",")
        if not comma:
            raise InvalidMessagesError(f"messages[{index}]['content'][{n}] is a data: URL without a comma")
        if header.endswith(";base64"):
            images.append(payload)
        else:  # a percent-encoded data: URL, rare but valid
            images.append(base64.b64encode(unquote_to_bytes(payload)).decode("ascii"))
    return images


def _tool_call(index: int, n: int, call: Mapping[str, Any], names: Dict[str, str]) -> Dict[str, Any]:
    function = call["function"]
    names[call["id"]] = function["name"]
    text = function["arguments"]
    try:
        arguments = json.loads(text) if text.strip() else {}
    except ValueError:
        arguments = None
    if not isinstance(arguments, dict):
        raise InvalidMessagesError(
            f"messages[{index}]['tool_calls'][{n}]['function']['arguments'] is not a JSON object "
            f"({text[:60]!r}): Ollama takes a tool call's arguments as an object"
        )
    return {"id": call["id"], "function": {"name": function["name"], "arguments": arguments}}


# --- options: OpenAI's names to Ollama's ----------------------------------------------------


def request_fields(options: Dict[str, Any], num_ctx: Optional[int]) -> Dict[str, Any]:
    """The request's fields beside ``model``, ``messages`` and ``stream``."""
    fields: Dict[str, Any] = {}
    runner = dict(options.pop("options", None) or {})
    for name in _SAMPLING:
        if name in options:
            runner[name] = options.pop(name)
    if "max_tokens" in options:
        runner["num_predict"] = options.pop("max_tokens")
    if "stop" in options:
        stop = options.pop("stop")
        runner["stop"] = [stop] if isinstance(stop, str) else list(stop)
    if num_ctx is not None:
        runner.setdefault("num_ctx", num_ctx)
    if runner:
        fields["options"] = runner
    think = _think(options)
    if think is not None:
        fields["think"] = think
    output_format = _format(options)
    if output_format is not None:
        fields["format"] = output_format
    tools = options.pop("tools", None)
    if tools:
        fields["tools"] = check_tools(tools)
    fields.update(options)  # keep_alive, truncate, shift, logprobs, top_logprobs: as Ollama names them
    return fields


def _think(options: Dict[str, Any]) -> Any:
    think = options.pop("think", None)
    effort = options.pop("reasoning_effort", None)
    if effort is not None:
        if think is not None:
            raise InvalidRequestError(
                "pass think or reasoning_effort, not both: they are one setting for Ollama"
            )
        if effort not in _EFFORT_TO_THINK:
            raise InvalidRequestError(
                f"reasoning_effort is {effort!r}; expected one of {', '.join(_EFFORT_TO_THINK)}"
            )
        return _EFFORT_TO_THINK[effort]
    if think is not None and not isinstance(think, bool) and think not in _THINK_LEVELS:
        raise InvalidRequestError(
            f"think must be True, False or one of {', '.join(_THINK_LEVELS)}; not {think!r}"
        )
    return think


def _format(options: Dict[str, Any]) -> Any:
    """Ollama's ``format``: ``"json"`` or a JSON Schema, from ``format`` or OpenAI's ``response_format``."""
    output_format = options.pop("format", None)
    response_format = options.pop("response_format", None)
    if response_format is None:
        return output_format
    if output_format is not None:
        raise InvalidRequestError("pass format or response_format, not both: they are one setting for Ollama")
    kind = response_format.get("type") if isinstance(response_format, Mapping) else None
    if kind == "json_object":
        return "json"
    if kind == "json_schema":
        schema = (response_format.get("json_schema") or {}).get("schema")
        if isinstance(schema, Mapping):
            return dict(schema)
        raise InvalidRequestError("response_format json_schema needs {'json_schema': {'schema': {...}}}")
    if kind == "text":
        return None
    raise InvalidRequestError(
        "response_format must be {'type': 'json_object'}, {'type': 'json_schema', 'json_schema': "
        f"{{'schema': {{...}}}}}} or {{'type': 'text'}}, not {response_format!r}"
    )
