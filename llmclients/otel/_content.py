"""Content capture: a call's messages, reply, system instructions and tools
in the GenAI conventions' JSON shapes (messages of ``role`` and ``parts``),
each serialised once and passed through :meth:`CallInfo.mask`.

Images are recorded by their URL; an inline image (a ``data:`` URL) by its
media type only, without its bytes: a trace is no place for megabytes of
base64. Audio and files likewise keep only their type.
"""

from __future__ import annotations

import json
from typing import Any, Dict, List, Mapping, Optional

from ..observers import CallInfo, EndEvent

__all__ = ["input_attributes", "output_attributes"]


def input_attributes(call: CallInfo) -> Dict[str, str]:
    """``gen_ai.input.messages``, ``gen_ai.system_instructions`` (the system
    turns, apart from the history) and ``gen_ai.tool.definitions``."""
    system: List[Dict[str, Any]] = []
    history: List[Dict[str, Any]] = []
    for message in call.messages:
        if message.get("role") in ("system", "developer"):
            system.extend(parts_of(message.get("content")))
        else:
            history.append(input_message(message))
    attributes = {"gen_ai.input.messages": _json(call, history)}
    if system:
        attributes["gen_ai.system_instructions"] = _json(call, system)
    tools = call.options.get("tools")
    if isinstance(tools, list) and tools:
        attributes["gen_ai.tool.definitions"] = _json(call, [tool_definition(tool) for tool in tools])
    return attributes


def output_attributes(event: EndEvent) -> Dict[str, str]:
    """``gen_ai.output.messages``: each choice of the reply, as far as it came."""
    reply = event.reply
    if reply is None:
        return {}
    choices = reply.choices if len(reply.choices) > 1 else [reply]
    messages = []
    for choice in choices:
        parts: List[Dict[str, Any]] = []
        if choice.reasoning:
            parts.append({"type": "reasoning", "content": choice.reasoning})
        if choice.text:
            parts.append({"type": "text", "content": choice.text})
        for tool_call in choice.tool_calls:
            parts.append(_tool_call(tool_call.id, tool_call.name, tool_call.arguments))
        finish = choice.finish_reason or ("error" if event.error is not None else "")
        messages.append({"role": "assistant", "parts": parts, "finish_reason": finish})
    return {"gen_ai.output.messages": _json(event.call, messages)}


def input_message(message: Mapping[str, Any]) -> Dict[str, Any]:
    role = message.get("role", "user")
    parts = parts_of(message.get("content"))
    if role == "tool":
        parts = [{"type": "tool_call_response", "id": message.get("tool_call_id"), "response": _text_of(parts)}]
    for tool_call in message.get("tool_calls") or ():
        function = tool_call.get("function") or {}
        parts.append(_tool_call(tool_call.get("id"), function.get("name"), function.get("arguments")))
    shaped: Dict[str, Any] = {"role": role, "parts": parts}
    if message.get("name"):
        shaped["name"] = message["name"]
    return shaped


def parts_of(content: Any) -> List[Dict[str, Any]]:
    """A message's content as the conventions' parts."""
    if content is None:
        return []
    if isinstance(content, str):
        return [{"type": "text", "content": content}]
    parts = []
    for part in content:
        kind = part.get("type")
        if kind == "text":
            parts.append({"type": "text", "content": part.get("text", "")})
        elif kind == "image_url":
            parts.append(_image(str((part.get("image_url") or {}).get("url", ""))))
        else:  # audio, files: their type, not their bytes
            parts.append({"type": str(kind)})
    return parts


def tool_definition(tool: Any) -> Dict[str, Any]:
    """An OpenAI-shaped tool as the conventions' tool definition."""
    if not isinstance(tool, Mapping):
        return {"type": "function", "name": str(tool)}
    inner = tool.get("function")
    function: Mapping[str, Any] = inner if isinstance(inner, Mapping) else tool
    shaped = {"type": tool.get("type", "function"), "name": function.get("name")}
    for key in ("description", "parameters"):
        if function.get(key) is not None:
            shaped[key] = function[key]
    return shaped


def _tool_call(identifier: Optional[str], name: Optional[str], arguments: Any) -> Dict[str, Any]:
    if isinstance(arguments, str):
        try:
            arguments = json.loads(arguments)
        except ValueError:
            pass  # as sent: the model's JSON may be broken, and that is worth seeing
    return {"type": "tool_call", "id": identifier, "name": name, "arguments": arguments}


def _image(url: str) -> Dict[str, Any]:
    if url.startswith("data:"):
        return {"type": "blob", "modality": "image", "mime_type": url[5:].split(";", 1)[0].split(",", 1)[0]}
    return {"type": "uri", "modality": "image", "uri": url}


def _text_of(parts: List[Dict[str, Any]]) -> str:
    return "".join(part.get("content", "") for part in parts if part["type"] == "text")


def _json(call: CallInfo, value: Any) -> str:
    return call.mask(json.dumps(value, ensure_ascii=False, default=str))
