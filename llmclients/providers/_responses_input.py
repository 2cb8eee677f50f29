"""OpenAI-shaped messages, tools and options in the Responses API's shape.

:func:`input_items` turns a call's messages into ``instructions`` and the
``input`` items (message items, ``function_call`` and ``function_call_output``
items, ``input_text``/``input_image``/``input_file`` parts);
:func:`request_options` turns its options into the request's fields (flat
tools, ``tool_choice``, ``max_output_tokens``, ``text.format``,
``reasoning.effort``). :mod:`llmclients.providers.responses` sends them.
"""

from __future__ import annotations

from typing import Any, Dict, List, Mapping, Tuple

from .kit import InvalidRequestError, Message, content_text

__all__ = ["input_items", "request_options"]


def input_items(messages: List[Message]) -> Tuple[str, List[Dict[str, Any]]]:
    """``instructions`` (the leading system and developer messages) and the input items."""
    start = 0
    while start < len(messages) and messages[start]["role"] in ("system", "developer"):
        start += 1
    instructions = "\n\n".join(content_text(message["content"]) for message in messages[:start])
    items: List[Dict[str, Any]] = []
    for message in messages[start:]:
        items.extend(_items_of(message))
    return instructions, items


def _items_of(message: Message) -> List[Dict[str, Any]]:
    role, content = message["role"], message.get("content")
    if role == "tool":
        return [
            {"type": "function_call_output", "call_id": message["tool_call_id"], "output": content_text(content)}
        ]
    items: List[Dict[str, Any]] = []
    if role == "assistant":
        text = content_text(content)
        if text:
            items.append(
                {"type": "message", "role": "assistant", "content": [{"type": "output_text", "text": text}]}
            )
        for call in message.get("tool_calls") or ():
            function = call["function"]
            items.append(
                {
                    "type": "function_call",
                    "call_id": call["id"],
                    "name": function["name"],
                    "arguments": function["arguments"],
                }
            )
        return items
    parts = content if isinstance(content, str) else [_input_part(part) for part in content or ()]
    return [{"type": "message", "role": role, "content": parts}]


def _input_part(part: Mapping[str, Any]) -> Dict[str, Any]:
    kind = part["type"]
    if kind == "text":
        return {"type": "input_text", "text": part["text"]}
    if kind == "image_url":
        image = part["image_url"]
        return {"type": "input_image", "image_url": image["url"], "detail": image.get("detail") or "auto"}
    if kind == "file":
        return {"type": "input_file", **part["file"]}
    raise InvalidRequestError(f"the Responses API takes no {kind} content parts")


def request_options(options: Mapping[str, Any]) -> Dict[str, Any]:
    """The body's fields for the options of a call, in the Responses API's shape."""
    body: Dict[str, Any] = {}
    text: Dict[str, Any] = {}
    reasoning: Dict[str, Any] = dict(options.get("reasoning") or {})
    for key, value in options.items():
        if key == "tools":
            body["tools"] = [_flat_tool(index, tool) for index, tool in enumerate(value)]
        elif key == "tool_choice":
            body["tool_choice"] = _tool_choice(value)
        elif key in ("max_tokens", "max_output_tokens"):
            body["max_output_tokens"] = value
        elif key == "response_format":
            text["format"] = _text_format(value)
        elif key == "verbosity":
            text["verbosity"] = value
        elif key == "reasoning_effort":
            reasoning["effort"] = value
        elif key != "reasoning":
            body[key] = value
    if text:
        body["text"] = text
    if reasoning:
        body["reasoning"] = reasoning
    return body


def _flat_tool(index: int, tool: Any) -> Dict[str, Any]:
    """A chat-completions tool ``{"type": "function", "function": {...}}`` flattened;
    a tool already flat (or built in, ``{"type": "web_search"}``) as it is."""
    if not isinstance(tool, Mapping):
        raise InvalidRequestError(f"tools[{index}] must be a dict, not {type(tool).__name__}")
    function = tool.get("function")
    if function is None:
        return dict(tool)
    if not isinstance(function, Mapping) or not isinstance(function.get("name"), str):
        raise InvalidRequestError(f"tools[{index}] needs a 'function' dict with a 'name' (a str)")
    return {"type": "function", **function}


def _tool_choice(choice: Any) -> Any:
    """``{"type": "function", "function": {"name": N}}`` -> ``{"type": "function", "name": N}``."""
    if isinstance(choice, Mapping) and isinstance(choice.get("function"), Mapping):
        return {"type": "function", "name": choice["function"].get("name")}
    return choice


def _text_format(response_format: Any) -> Dict[str, Any]:
    if not isinstance(response_format, Mapping) or "type" not in response_format:
        raise InvalidRequestError(
            "response_format must be a dict such as {'type': 'json_object'} or "
            "{'type': 'json_schema', 'json_schema': {...}}"
        )
    if response_format["type"] == "json_schema" and "json_schema" in response_format:
        return {"type": "json_schema", **response_format["json_schema"]}
    return dict(response_format)
