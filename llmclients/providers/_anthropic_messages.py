"""OpenAI-shaped messages, tools and options as Anthropic's Messages API takes them: the request's mapping.

:func:`to_anthropic` turns the messages into the top-level ``system`` and the
turns (roles ``user`` and ``assistant``, content blocks: ``text``, ``image``,
``tool_use``, ``tool_result``, the kept thinking blocks); :func:`request_options`
turns the call's options into the body's keys (``max_tokens``, ``thinking``
from ``reasoning_effort``, ``stop_sequences``, ``tools``, ``tool_choice``,
``metadata.user_id``, ``output_config.format`` from ``response_format``). :class:`~llmclients.providers.anthropic.Anthropic`
builds its request with them; the protocol is described in
:mod:`llmclients.providers.anthropic`, which exports the public names.
"""

from __future__ import annotations

import json
from typing import Any, Dict, List, Mapping, Optional, Tuple

from .kit import InvalidMessagesError, InvalidRequestError, Message, content_text

__all__ = ["DEFAULT_MAX_TOKENS", "THINKING_BUDGETS", "request_options", "to_anthropic"]

#: ``max_tokens`` when the caller gives none (the API requires it); with
#: thinking on, the thinking budget is added to it.
DEFAULT_MAX_TOKENS = 4096
#: ``reasoning_effort`` -> ``thinking.budget_tokens`` (the API's least is 1024);
#: ``"none"`` sends no ``thinking``.
THINKING_BUDGETS: Mapping[str, int] = {"minimal": 1024, "low": 2048, "medium": 8192, "high": 24576}


def to_anthropic(messages: List[Message]) -> Tuple[List[Dict[str, Any]], List[Dict[str, Any]]]:
    """OpenAI-shaped ``messages`` as Anthropic's: the ``system`` text blocks, and the turns.

    Consecutive turns of one role are merged into one (the API merges them
    too); a user turn's ``tool_result`` blocks come first in it, as the API
    wants them right after the ``tool_use`` they answer.
    """
    system: List[Dict[str, Any]] = []
    turns: List[Dict[str, Any]] = []
    for position, message in enumerate(messages):
        role = message["role"]
        where = f"messages[{position}]"
        if role in ("system", "developer"):
            text = content_text(message["content"])
            if text:
                system.append({"type": "text", "text": text})
            continue
        if role == "assistant":
            blocks = _assistant_blocks(message, where)
            role_here = "assistant"
        elif role == "tool":
            blocks = [_tool_result(message, where)]
            role_here = "user"
        else:
            blocks = _blocks(message["content"], where)
            role_here = "user"
        if not blocks:
            continue  # an empty turn: the API refuses one
        if turns and turns[-1]["role"] == role_here:
            turns[-1]["content"] += blocks
        else:
            turns.append({"role": role_here, "content": blocks})
    for turn in turns:
        content = turn["content"]
        if turn["role"] == "user":
            content.sort(key=lambda block: block["type"] != "tool_result")  # stable: their order kept
        if len(content) == 1 and content[0]["type"] == "text" and set(content[0]) == {"type", "text"}:
            turn["content"] = content[0]["text"]  # the plain shape, as people write it
    return system, turns


def _blocks(content: Any, where: str) -> List[Dict[str, Any]]:
    """A message's content (a str or content parts) as text and image blocks."""
    if isinstance(content, str):
        return [{"type": "text", "text": content}] if content else []
    blocks = []
    for n, part in enumerate(content or ()):
        if part["type"] == "text":
            if part["text"]:
                blocks.append({"type": "text", "text": part["text"]})
        elif part["type"] == "image_url":
            blocks.append(_image(part["image_url"]["url"], f"{where}['content'][{n}]"))
        else:  # features_of refused them before: the provider has no such capability
            raise InvalidMessagesError(f"{where}['content'][{n}] is a {part['type']} part, which Anthropic cannot carry")
    return blocks


def _image(url: str, where: str) -> Dict[str, Any]:
    if not url.startswith("data:"):
        return {"type": "image", "source": {"type": "url", "url": url}}
    header, comma, data = url[len("data:") :].partition(",")
    media_type, _, encoding = header.partition(";")
    if not comma or encoding != "base64" or not media_type:
        raise InvalidMessagesError(f"{where} is a data: URL that is not data:<type>;base64,...")
    return {"type": "image", "source": {"type": "base64", "media_type": media_type, "data": data}}


def _assistant_blocks(message: Message, where: str) -> List[Dict[str, Any]]:
    """The thinking blocks kept from the reply (unchanged, first), its text, its tool calls."""
    blocks: List[Dict[str, Any]] = [dict(block) for block in message.get("thinking_blocks") or ()]
    blocks += _blocks(message.get("content"), where)
    for n, call in enumerate(message.get("tool_calls") or ()):
        function = call["function"]
        try:
            arguments = json.loads(function["arguments"]) if function["arguments"].strip() else {}
        except ValueError:
            raise InvalidMessagesError(f"{where}['tool_calls'][{n}]['function']['arguments'] is not JSON") from None
        if not isinstance(arguments, dict):
            raise InvalidMessagesError(f"{where}['tool_calls'][{n}]['function']['arguments'] is not a JSON object")
        blocks.append({"type": "tool_use", "id": call["id"], "name": function["name"], "input": arguments})
    return blocks


def _tool_result(message: Message, where: str) -> Dict[str, Any]:
    content = message["content"]
    result: Dict[str, Any] = {"type": "tool_result", "tool_use_id": message["tool_call_id"]}
    if isinstance(content, str):
        result["content"] = content
    elif content:
        result["content"] = _blocks(content, where)
    if message.get("is_error"):
        result["is_error"] = True
    return result


def request_options(options: Dict[str, Any]) -> Dict[str, Any]:
    """The call's options as the API names them."""
    body: Dict[str, Any] = {}
    max_tokens = options.pop("max_tokens", None)
    max_tokens = options.pop("max_completion_tokens", None) or max_tokens
    thinking = _thinking(options.pop("thinking", None), options.pop("reasoning_effort", None))
    budget = thinking.get("budget_tokens") if thinking else None
    if max_tokens is None:
        max_tokens = DEFAULT_MAX_TOKENS + (budget or 0)
    elif isinstance(budget, int) and max_tokens <= budget:
        raise InvalidRequestError(
            f"max_tokens ({max_tokens}) must be above the thinking budget ({budget}): "
            "Anthropic counts the thinking in max_tokens"
        )
    body["max_tokens"] = max_tokens
    if thinking:
        body["thinking"] = thinking
    stop = options.pop("stop", None)
    if stop is not None:
        body["stop_sequences"] = [stop] if isinstance(stop, str) else list(stop)
    tools = options.pop("tools", None)
    if tools is not None:
        body["tools"] = [_tool(tool, n) for n, tool in enumerate(tools)]
    choice = _tool_choice(options.pop("tool_choice", None), options.pop("parallel_tool_calls", None))
    if choice:
        body["tool_choice"] = choice
    output_format = _output_format(options.pop("response_format", None))
    if output_format:
        body["output_config"] = {"format": output_format}
    user = options.pop("user", None)
    if user is not None:
        options["metadata"] = {"user_id": user, **(options.get("metadata") or {})}
    body.update(options)  # temperature, top_p, top_k, metadata, service_tier: the API's own names
    return body


def _output_format(response_format: Any) -> Optional[Dict[str, Any]]:
    """OpenAI's ``response_format`` as Anthropic's ``output_config.format``:
    ``json_schema`` carries its schema over (the API wants every object closed,
    ``additionalProperties: false``, as a type's strict schema is); ``text`` is
    no format. ``json_object`` has no Anthropic form: it is refused, not sent."""
    if response_format is None:
        return None
    kind = response_format.get("type") if isinstance(response_format, Mapping) else None
    if kind == "text":
        return None
    schema = (response_format.get("json_schema") or {}).get("schema") if kind == "json_schema" else None
    if not isinstance(schema, Mapping):
        raise InvalidRequestError(
            "Anthropic takes response_format as {'type': 'json_schema', 'json_schema': {'schema': {...}}} "
            f"(or a dataclass, TypedDict or pydantic model class); {response_format!r} has no Anthropic form"
        )
    return {"type": "json_schema", "schema": dict(schema)}


def _thinking(thinking: Any, effort: Optional[str]) -> Optional[Dict[str, Any]]:
    """``thinking`` (Anthropic's dict, or a budget in tokens) or ``reasoning_effort`` (:data:`THINKING_BUDGETS`)."""
    if thinking is not None:
        if isinstance(thinking, bool) or not isinstance(thinking, (int, dict)):
            raise InvalidRequestError(
                "thinking must be a token budget (an int, 1024 or more) or Anthropic's dict, "
                f"{{'type': 'enabled', 'budget_tokens': ...}}; not {thinking!r}"
            )
        return {"type": "enabled", "budget_tokens": thinking} if isinstance(thinking, int) else dict(thinking)
    if effort is None or effort == "none":
        return None
    if effort not in THINKING_BUDGETS:
        raise InvalidRequestError(
            f"reasoning_effort is {effort!r}; Anthropic takes {', '.join(THINKING_BUDGETS)} or none"
        )
    return {"type": "enabled", "budget_tokens": THINKING_BUDGETS[effort]}


def _tool(tool: Any, n: int) -> Dict[str, Any]:
    """An OpenAI-shaped function tool as Anthropic's; Anthropic's own (a server tool) as it is."""
    if not isinstance(tool, Mapping):
        raise InvalidRequestError(f"tools[{n}] must be a dict")
    function = tool.get("function")
    if function is None and isinstance(tool.get("name"), str):
        return dict(tool)  # already Anthropic's: {name, input_schema}, or a server tool
    if not isinstance(function, Mapping) or not isinstance(function.get("name"), str):
        raise InvalidRequestError(f"tools[{n}] needs a 'function' dict with a 'name' (a str)")
    converted = {
        "name": function["name"],
        "input_schema": function.get("parameters") or {"type": "object", "properties": {}},
    }
    if function.get("description"):
        converted["description"] = function["description"]
    return converted


def _tool_choice(choice: Any, parallel: Optional[bool]) -> Optional[Dict[str, Any]]:
    """OpenAI's ``tool_choice`` (and ``parallel_tool_calls=False``) as Anthropic's."""
    converted: Optional[Dict[str, Any]]
    if choice is None:
        converted = {"type": "auto"} if parallel is False else None
    elif choice in ("auto", "none"):
        converted = {"type": choice}
    elif choice == "required":
        converted = {"type": "any"}
    elif isinstance(choice, Mapping) and isinstance((choice.get("function") or {}).get("name"), str):
        converted = {"type": "tool", "name": choice["function"]["name"]}
    elif isinstance(choice, Mapping) and choice.get("type") in ("auto", "any", "tool", "none"):
        converted = dict(choice)  # already Anthropic's
    else:
        raise InvalidRequestError(
            f"tool_choice is {choice!r}; expected 'auto', 'none', 'required' or "
            "{'type': 'function', 'function': {'name': ...}}"
        )
    if parallel is False and converted is not None and converted["type"] != "none":
        converted["disable_parallel_tool_use"] = True
    return converted
