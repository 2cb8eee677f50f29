"""The values callers pass in and get back: messages, content parts, usage,
tool calls, completions."""

from __future__ import annotations

import copy
import json
import os
from typing import Any, Dict, FrozenSet, List, Mapping, NamedTuple, Optional, Sequence, Set, Tuple, Union

from .errors import InvalidJSONError, InvalidMessagesError
from .images import data_url, sniff_image

__all__ = [
    "PART_CAPABILITIES",
    "ROLES",
    "Choice",
    "Completion",
    "Message",
    "Messages",
    "ToolCall",
    "Usage",
    "content_text",
    "features_of",
    "image_part",
    "normalize_messages",
    "parse_json",
]


#: One chat turn as the OpenAI API spells it: ``{"role": "user", "content": "Hi"}``;
#: ``content`` may also be a list of content parts, or None beside ``tool_calls``.
Message = Dict[str, Any]
#: What every ``stream()`` and ``complete()`` accepts: one user turn, or a list of turns.
Messages = Union[str, Sequence[Mapping[str, Any]]]

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


class _Counts(NamedTuple):
    """The three counts every service reports: :class:`Usage`'s tuple face."""

    prompt_tokens: Optional[int] = None
    completion_tokens: Optional[int] = None
    total_tokens: Optional[int] = None


#: The counts beyond the three, kept as attributes of a :class:`Usage`.
_MORE_FIELDS = ("cached_tokens", "reasoning_tokens", "cost", "raw")


class Usage(_Counts):
    """Token counts, when the service reports them.

    As a tuple it is ``(prompt_tokens, completion_tokens, total_tokens)``, as
    in 0.1: ``prompt, completion, total = usage`` unpacks it, ``usage[0]`` and
    ``len(usage)`` work, and it equals that 3-tuple. ``cached_tokens``
    (``prompt_tokens_details``), ``reasoning_tokens``
    (``completion_tokens_details``) and ``cost`` (OpenRouter) are attributes,
    read where a server sends them; ``raw`` is the usage object as it arrived.
    Two usages are equal when all their counts are; ``raw``, a record of the
    wire, is not part of the value.
    """

    cached_tokens: Optional[int]
    reasoning_tokens: Optional[int]
    cost: Optional[float]
    raw: Optional[Mapping[str, Any]]

    def __new__(
        cls,
        prompt_tokens: Optional[int] = None,
        completion_tokens: Optional[int] = None,
        total_tokens: Optional[int] = None,
        cached_tokens: Optional[int] = None,
        reasoning_tokens: Optional[int] = None,
        cost: Optional[float] = None,
        raw: Optional[Mapping[str, Any]] = None,
    ) -> Usage:
        self = super().__new__(cls, prompt_tokens, completion_tokens, total_tokens)
        more = self.__dict__
        more["cached_tokens"] = cached_tokens
        more["reasoning_tokens"] = reasoning_tokens
        more["cost"] = cost
        more["raw"] = raw
        return self

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Usage:
        def count(source: Any, key: str) -> Optional[int]:
            value = source.get(key) if isinstance(source, Mapping) else None
            return value if isinstance(value, int) and not isinstance(value, bool) else None

        cost = data.get("cost")
        return cls(
            count(data, "prompt_tokens"),
            count(data, "completion_tokens"),
            count(data, "total_tokens"),
            count(data.get("prompt_tokens_details"), "cached_tokens"),
            count(data.get("completion_tokens_details"), "reasoning_tokens"),
            float(cost) if isinstance(cost, (int, float)) and not isinstance(cost, bool) else None,
            dict(data),
        )

    def _all(self) -> Tuple[Any, ...]:
        """Every field, in order, ``raw`` last."""
        return (*self, *(self.__dict__.get(name) for name in _MORE_FIELDS))

    # Immutable, as the NamedTuple it was.
    def __setattr__(self, name: str, value: Any) -> None:
        raise AttributeError(f"can't set attribute {name!r} of a Usage; use _replace()")

    def __delattr__(self, name: str) -> None:
        raise AttributeError(f"can't delete attribute {name!r} of a Usage")

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, tuple):
            return NotImplemented
        if isinstance(other, Usage):
            return self._all()[:6] == other._all()[:6]
        return tuple.__eq__(self, other)

    def __ne__(self, other: object) -> bool:
        equal = self.__eq__(other)
        return equal if equal is NotImplemented else not equal

    # The 3-tuple's hash: equal to a tuple it equals, and alike for equal usages.
    def __hash__(self) -> int:
        return tuple.__hash__(self)

    def __repr__(self) -> str:
        fields = ", ".join(f"{name}={value!r}" for name, value in zip(self._every, self._all()))
        return f"Usage({fields})"

    def __reduce__(self) -> Tuple[Any, Tuple[Any, ...]]:
        return (Usage, self._all())

    def __copy__(self) -> Usage:
        return self

    def __deepcopy__(self, memo: Dict[int, Any]) -> Usage:
        fields = list(self._all())
        fields[-1] = copy.deepcopy(fields[-1], memo)
        return Usage(*fields)

    def _replace(self, **changes: Any) -> Usage:
        """A copy with ``changes``, to any field (the three counts and the attributes)."""
        unknown = set(changes) - set(self._every)
        if unknown:
            raise ValueError(f"Got unexpected field names: {sorted(unknown)!r}")
        return Usage(*(changes.get(name, value) for name, value in zip(self._every, self._all())))

    _every = ("prompt_tokens", "completion_tokens", "total_tokens", *_MORE_FIELDS)

    def to_dict(self) -> Dict[str, Any]:
        """The counts that are known, as JSON-ready values (``raw`` left out)."""
        return {
            name: value
            for name, value in zip(self._every, self._all())
            if value is not None and name != "raw"
        }


class ToolCall(NamedTuple):
    """A function call the model asked for. ``arguments`` is the JSON text as sent."""

    id: str
    name: str
    arguments: str
    type: str = "function"

    def parsed(self) -> Any:
        """The arguments as Python values; :class:`~llmclients.errors.InvalidJSONError` if they are not JSON."""
        return parse_json(self.arguments or "{}", f"the arguments of tool call {self.name!r}")

    def to_dict(self) -> Dict[str, Any]:
        """The call as an assistant message's ``tool_calls`` item."""
        return {
            "id": self.id,
            "type": self.type,
            "function": {"name": self.name, "arguments": self.arguments},
        }


def parse_json(text: str, what: str, finish_reason: Optional[str] = None) -> Any:
    """``json.loads(text)``, or an :class:`InvalidJSONError` that says why not."""
    if finish_reason == "length":
        raise InvalidJSONError(
            f"{what} was cut off by the token limit (finish_reason='length') after "
            f"{len(text)} characters; raise max_tokens",
            text=text,
        )
    try:
        return json.loads(text)
    except ValueError as exc:
        raise InvalidJSONError(f"{what} is not valid JSON: {exc}", text=text) from None


class Choice:
    """One of several answers (``n`` > 1): its index, text, reasoning, tool calls, finish reason."""

    __slots__ = ("finish_reason", "index", "logprobs", "reasoning", "refusal", "text", "tool_calls")

    def __init__(
        self,
        index: int,
        text: str = "",
        *,
        reasoning: str = "",
        refusal: str = "",
        tool_calls: Sequence[ToolCall] = (),
        finish_reason: Optional[str] = None,
        logprobs: Sequence[Any] = (),
    ) -> None:
        self.index = index
        self.text = text
        self.reasoning = reasoning
        self.refusal = refusal
        self.tool_calls = list(tool_calls)
        self.finish_reason = finish_reason
        self.logprobs = list(logprobs)

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Choice):
            return NotImplemented
        return all(getattr(self, name) == getattr(other, name) for name in self.__slots__)

    __hash__ = None  # type: ignore[assignment]

    def __repr__(self) -> str:
        return f"Choice(index={self.index}, text={self.text!r}, finish_reason={self.finish_reason!r})"

    def to_dict(self) -> Dict[str, Any]:
        """The answer as JSON-ready values."""
        return {
            "index": self.index,
            "text": self.text,
            "reasoning": self.reasoning,
            "refusal": self.refusal,
            "tool_calls": [call.to_dict() for call in self.tool_calls],
            "finish_reason": self.finish_reason,
            "logprobs": copy.deepcopy(self.logprobs),
        }


class Completion:
    """A whole reply. ``str(completion)`` is its text.

    Besides ``text``: ``reasoning`` (the model's thinking, when the server
    sends it apart), ``tool_calls``, ``refusal``, ``finish_reason``, ``usage``,
    ``model``, ``provider``, ``response_id`` (the chunks' ``id``),
    ``request_id`` (the ``x-request-id`` / ``request-id`` header), ``logprobs``
    (the token entries, in order), ``extra`` (top-level keys the server added,
    such as ``system_fingerprint`` or llama.cpp's ``timings``) and ``choices``
    (every answer when ``n`` > 1; the first is this one).
    """

    __slots__ = (
        "choices",
        "extra",
        "finish_reason",
        "logprobs",
        "model",
        "provider",
        "reasoning",
        "refusal",
        "request_id",
        "response_id",
        "text",
        "tool_calls",
        "usage",
    )

    def __init__(
        self,
        text: str,
        finish_reason: Optional[str],
        usage: Optional[Usage],
        model: Optional[str],
        provider: str,
        *,
        reasoning: str = "",
        refusal: str = "",
        tool_calls: Sequence[ToolCall] = (),
        logprobs: Sequence[Any] = (),
        response_id: Optional[str] = None,
        request_id: Optional[str] = None,
        extra: Optional[Mapping[str, Any]] = None,
        choices: Sequence[Choice] = (),
    ) -> None:
        self.text = text
        self.finish_reason = finish_reason
        self.usage = usage
        self.model = model
        self.provider = provider
        self.reasoning = reasoning
        self.refusal = refusal
        self.tool_calls = list(tool_calls)
        self.logprobs = list(logprobs)
        self.response_id = response_id
        self.request_id = request_id
        self.extra = dict(extra or {})
        self.choices = list(choices)

    @property
    def truncated(self) -> bool:
        """True when the token limit cut the reply short (``finish_reason == "length"``)."""
        return self.finish_reason == "length"

    def json(self) -> Any:
        """The reply's text parsed as JSON (for ``response_format`` replies).

        Raises :class:`~llmclients.errors.InvalidJSONError` when the model
        refused, when the token limit cut the reply, or when the text is not JSON;
        its ``text`` holds what arrived.
        """
        if self.refusal:
            raise InvalidJSONError(f"the model refused instead of answering: {self.refusal}", text=self.text)
        return parse_json(self.text, "the reply", self.finish_reason)

    def message(self) -> Message:
        """The reply as the assistant message that continues a conversation."""
        message: Message = {"role": "assistant", "content": self.text or (None if self.tool_calls else "")}
        if self.tool_calls:
            message["tool_calls"] = [call.to_dict() for call in self.tool_calls]
        return message

    def to_dict(self) -> Dict[str, Any]:
        """The whole reply as JSON-ready values, for a log line or a queue.

        Every attribute, by name; ``usage`` is :meth:`Usage.to_dict` (or
        None), tool calls are in OpenAI's message shape (``id``, ``type``,
        ``function``: ``name``, ``arguments``), ``choices`` one dict each.
        """
        return {
            "text": self.text,
            "finish_reason": self.finish_reason,
            "usage": self.usage.to_dict() if self.usage else None,
            "model": self.model,
            "provider": self.provider,
            "reasoning": self.reasoning,
            "refusal": self.refusal,
            "tool_calls": [call.to_dict() for call in self.tool_calls],
            "logprobs": copy.deepcopy(self.logprobs),
            "response_id": self.response_id,
            "request_id": self.request_id,
            "extra": copy.deepcopy(self.extra),
            "choices": [choice.to_dict() for choice in self.choices],
        }

    def __str__(self) -> str:
        return self.text

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Completion):
            return NotImplemented
        return all(getattr(self, name) == getattr(other, name) for name in self.__slots__)

    __hash__ = None  # type: ignore[assignment]

    def __repr__(self) -> str:
        shown = ["text", "finish_reason", "usage", "model", "provider"]
        shown += [name for name in ("reasoning", "tool_calls", "refusal") if getattr(self, name)]
        fields = ", ".join(f"{name}={getattr(self, name)!r}" for name in shown)
        return f"Completion({fields})"
