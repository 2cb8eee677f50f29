"""The messages callers pass in (:data:`~llmclients._core.values.Messages`):
their check (:func:`normalize_messages`), the capabilities they need
(:func:`features_of`) and the content parts a caller builds (:func:`image_part`)."""

from __future__ import annotations

import os
from typing import Any, Dict, FrozenSet, List, Mapping, Optional, Sequence, Set, Union

from ..errors import InvalidMessagesError, InvalidRequestError
from .values import Message, Messages, ToolCall

__all__ = [
    "PART_CAPABILITIES",
    "ROLES",
    "check_tools",
    "content_text",
    "features_of",
    "image_part",
    "normalize_messages",
]



ROLES = ("system", "developer", "user", "assistant", "tool")

#: Content part type -> the capability a provider needs to carry it ("" for plain text).
PART_CAPABILITIES: Mapping[str, str] = {
    "text": "",
    "image_url": "images",
    "input_audio": "audio",
    "file": "files",
}
#: The key each content part type must hold, beside ``type``.
_PART_PAYLOAD = {"text": "text", "image_url": "image_url", "input_audio": "input_audio", "file": "file"}


def normalize_messages(messages: Messages) -> List[Message]:
    """Return ``messages`` as a fresh list of message dicts, checked.

    Roles are ``system``, ``developer``, ``user``, ``assistant`` and ``tool``.
    ``content`` is a str or a list of content parts (``text``, ``image_url``,
    ``input_audio``, ``file``); an assistant turn may have ``content: None``
    beside ``tool_calls``; a ``tool`` turn names its ``tool_call_id``. Other
    keys (``name``, a server's own) are kept as they are.

    Raises :class:`InvalidMessagesError` naming the item and key at fault, before
    anything is sent.
    """
    if isinstance(messages, str):
        if not messages:
            raise InvalidMessagesError("messages is an empty string; send some text")
        return [{"role": "user", "content": messages}]
    if isinstance(messages, (bytes, bytearray)) or not isinstance(messages, Sequence):
        raise InvalidMessagesError(
            f"messages must be a str or a list of {{'role', 'content'}} dicts, not {type(messages).__name__}"
        )
    if not messages:
        raise InvalidMessagesError("messages is an empty list; send at least one message")
    return [_checked_message(index, item) for index, item in enumerate(messages)]


def _checked_message(index: int, item: Any) -> Message:
    where = f"messages[{index}]"
    if not isinstance(item, Mapping):
        raise InvalidMessagesError(
            f"{where} must be a dict with 'role' and 'content', not {type(item).__name__}"
        )
    if "role" not in item:
        raise InvalidMessagesError(f"{where} has no 'role' key")
    role = item["role"]
    if role not in ROLES:
        raise InvalidMessagesError(f"{where}['role'] is {role!r}; expected one of {', '.join(ROLES)}")
    message = dict(item)
    tool_calls = message.get("tool_calls")
    if tool_calls is not None:
        if role != "assistant":
            raise InvalidMessagesError(f"{where} has 'tool_calls', which only an assistant message may have")
        message["tool_calls"] = _checked_tool_calls(where, tool_calls)
    if role == "tool" and not isinstance(message.get("tool_call_id"), str):
        raise InvalidMessagesError(f"{where} is a tool result and needs a 'tool_call_id' (a str)")
    if "content" not in message:
        if not tool_calls:
            raise InvalidMessagesError(f"{where} has no 'content' key")
        message["content"] = None
    content = message["content"]
    if content is None:
        if not tool_calls:
            raise InvalidMessagesError(
                f"{where}['content'] is None; only an assistant message with tool_calls may have no content"
            )
    elif isinstance(content, list):
        message["content"] = [
            _checked_part(f"{where}['content'][{n}]", part) for n, part in enumerate(content)
        ]
    elif not isinstance(content, str):
        raise InvalidMessagesError(
            f"{where}['content'] must be a str or a list of content parts, not {type(content).__name__}"
        )
    return message


def _checked_part(where: str, part: Any) -> Dict[str, Any]:
    if not isinstance(part, Mapping):
        raise InvalidMessagesError(f"{where} must be a content part dict, not {type(part).__name__}")
    kind = part.get("type")
    if kind not in _PART_PAYLOAD:
        raise InvalidMessagesError(f"{where}['type'] is {kind!r}; expected one of {', '.join(_PART_PAYLOAD)}")
    payload = part.get(_PART_PAYLOAD[kind])
    if kind == "text":
        if not isinstance(payload, str):
            raise InvalidMessagesError(f"{where}['text'] must be a str")
    elif not isinstance(payload, Mapping):
        raise InvalidMessagesError(f"{where} is a {kind} part and needs a {_PART_PAYLOAD[kind]!r} dict")
    elif kind == "image_url" and not isinstance(payload.get("url"), str):
        raise InvalidMessagesError(f"{where}['image_url'] needs a 'url' (an http(s) or data: URL)")
    elif kind == "input_audio" and not (isinstance(payload.get("data"), str) and payload.get("format")):
        raise InvalidMessagesError(f"{where}['input_audio'] needs 'data' (base64) and 'format'")
    return dict(part)


def _checked_tool_calls(where: str, calls: Any) -> List[Dict[str, Any]]:
    if not isinstance(calls, list):
        raise InvalidMessagesError(f"{where}['tool_calls'] must be a list")
    checked = []
    for n, call in enumerate(calls):
        at = f"{where}['tool_calls'][{n}]"
        if isinstance(call, ToolCall):
            call = call.to_dict()
        if not isinstance(call, Mapping) or not isinstance(call.get("id"), str):
            raise InvalidMessagesError(f"{at} needs an 'id' (a str)")
        function = call.get("function")
        if not isinstance(function, Mapping) or not isinstance(function.get("name"), str):
            raise InvalidMessagesError(f"{at}['function'] needs a 'name' (a str)")
        if not isinstance(function.get("arguments"), str):
            raise InvalidMessagesError(f"{at}['function']['arguments'] must be a JSON str")
        checked.append(dict(call))
    return checked


def check_tools(tools: Any) -> List[Any]:
    """``tools`` in OpenAI's shape (``{"type": "function", "function": {"name", ...}}``),
    checked before sending: servers refuse a wrong one with a terse 400."""
    if not isinstance(tools, list):
        raise InvalidRequestError("tools must be a list of {'type': 'function', 'function': {...}} dicts")
    for index, tool in enumerate(tools):
        function = tool.get("function") if isinstance(tool, Mapping) else None
        if not isinstance(function, Mapping) or not isinstance(function.get("name"), str):
            raise InvalidRequestError(f"tools[{index}] needs a 'function' dict with a 'name' (a str)")
        if tool.get("type", "function") != "function":
            raise InvalidRequestError(f"tools[{index}]['type'] is {tool.get('type')!r}; expected 'function'")
    return tools


def features_of(messages: Sequence[Message]) -> FrozenSet[str]:
    """The capabilities (``tools``, ``images``, ``audio``, ``files``) that ``messages`` need."""
    needed: Set[str] = set()
    for message in messages:
        if message["role"] == "tool" or message.get("tool_calls"):
            needed.add("tools")
        content = message.get("content")
        if isinstance(content, list):
            needed.update(PART_CAPABILITIES[part["type"]] for part in content)
    needed.discard("")
    return frozenset(needed)


def content_text(content: Any) -> str:
    """The text of a message's content: a str as it is, the text parts of a list joined by newlines."""
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        return "\n".join(part["text"] for part in content if part.get("type") == "text")
    return ""


def image_part(
    image: Union[str, bytes, os.PathLike[str]],
    *,
    mime_type: Optional[str] = None,
    detail: Optional[str] = None,
) -> Dict[str, Any]:
    """An ``image_url`` content part for a file path, raw bytes or a URL.

    Paths and bytes become a ``data:`` URL (base64), which every provider that
    takes images accepts; an ``http(s)://`` or ``data:`` URL is used as it is.
    ``mime_type`` is guessed from the path or the bytes when not given.
    """
    if isinstance(image, str) and image.startswith(("http://", "https://", "data:")):
        url = image
    else:
        from .images import data_url, sniff_image  # here: a program without images never needs them

        if isinstance(image, (bytes, bytearray)):
            data = bytes(image)
        else:
            import mimetypes  # only here: its tables cost import time

            with open(image, "rb") as file:
                data = file.read()
            mime_type = mime_type or mimetypes.guess_type(os.fspath(image))[0]
        mime_type = mime_type or sniff_image(data)
        if not mime_type:
            raise InvalidMessagesError("cannot tell the image's type from its bytes; pass mime_type=")
        url = data_url(data, mime_type)
    part: Dict[str, Any] = {"type": "image_url", "image_url": {"url": url}}
    if detail is not None:
        part["image_url"]["detail"] = detail
    return part


