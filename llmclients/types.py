"""The values callers pass in and get back: messages, usage, completions."""

from __future__ import annotations

from typing import Any, Dict, List, Mapping, NamedTuple, Optional, Sequence, Union

from .errors import InvalidMessagesError

#: One chat turn as the OpenAI API spells it: ``{"role": "user", "content": "Hi"}``.
Message = Dict[str, str]
#: What every ``stream()`` and ``complete()`` accepts: one user turn, or a list of turns.
Messages = Union[str, Sequence[Mapping[str, Any]]]

ROLES = ("system", "user", "assistant")


def normalize_messages(messages: Messages) -> List[Message]:
    """Return ``messages`` as a fresh list of ``{"role", "content"}`` dicts.

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
    result = []
    for index, item in enumerate(messages):
        if not isinstance(item, Mapping):
            raise InvalidMessagesError(
                f"messages[{index}] must be a dict with 'role' and 'content', not {type(item).__name__}"
            )
        for key in ("role", "content"):
            if key not in item:
                raise InvalidMessagesError(f"messages[{index}] has no {key!r} key")
        role, content = item["role"], item["content"]
        if role not in ROLES:
            raise InvalidMessagesError(
                f"messages[{index}]['role'] is {role!r}; expected one of {', '.join(ROLES)}"
            )
        if not isinstance(content, str):
            raise InvalidMessagesError(
                f"messages[{index}]['content'] must be a str, not {type(content).__name__}"
            )
        result.append({"role": role, "content": content})
    return result


class Usage(NamedTuple):
    """Token counts, when the service reports them."""

    prompt_tokens: Optional[int] = None
    completion_tokens: Optional[int] = None
    total_tokens: Optional[int] = None

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Usage:
        def count(key: str) -> Optional[int]:
            value = data.get(key)
            return value if isinstance(value, int) else None

        return cls(count("prompt_tokens"), count("completion_tokens"), count("total_tokens"))


class Completion:
    """A whole reply. ``str(completion)`` is its text."""

    __slots__ = ("finish_reason", "model", "provider", "text", "usage")

    def __init__(
        self,
        text: str,
        finish_reason: Optional[str],
        usage: Optional[Usage],
        model: Optional[str],
        provider: str,
    ) -> None:
        self.text = text
        self.finish_reason = finish_reason
        self.usage = usage
        self.model = model
        self.provider = provider

    def __str__(self) -> str:
        return self.text

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Completion):
            return NotImplemented
        return all(getattr(self, name) == getattr(other, name) for name in self.__slots__)

    __hash__ = None  # type: ignore[assignment]

    def __repr__(self) -> str:
        fields = ", ".join(f"{name}={getattr(self, name)!r}" for name in self.__slots__)
        return f"Completion({fields})"
