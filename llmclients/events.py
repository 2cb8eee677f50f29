"""The typed events of a reply, and how a stream assembles them.

``stream.events()`` yields these, in the order they arrived::

    TextDelta(text, choice)                  a piece of the answer
    ReasoningDelta(text, choice)             a piece of the model's thinking
    RefusalDelta(text, choice)               a piece of a refusal (OpenAI's ``delta.refusal``)
    ToolCallDelta(index, id, name, arguments, choice)
                                             a fragment of tool call number ``index``:
                                             ``id`` and ``name`` on its first fragment,
                                             then pieces of the ``arguments`` JSON

Each has a ``type`` ("text", "reasoning", "refusal", "tool_call") for code
that dispatches on strings. ``choice`` is the answer's index when a call asks
for several (``n``); it is 0 otherwise.

A provider's ``parse_event`` reports everything but choice 0's text through the
:class:`ChoiceBuilder` methods of its :class:`~llmclients.reading.StreamState`;
the builders keep the whole reply (reasoning, tool calls, logprobs) whether or
not anyone reads the events.
"""

from __future__ import annotations

import json
from typing import Any, ClassVar, Dict, List, Optional, Tuple, Union

from .types import Choice, ToolCall

__all__ = [
    "ChoiceBuilder",
    "Event",
    "ReasoningDelta",
    "RefusalDelta",
    "TextDelta",
    "ToolCallDelta",
]


class _Event:
    """What every event shares: a ``type`` name, equality by value, a readable repr."""

    __slots__: Tuple[str, ...] = ()
    __match_args__: Tuple[str, ...] = ()
    type: ClassVar[str] = ""

    def __eq__(self, other: object) -> bool:
        if other.__class__ is not self.__class__:
            return NotImplemented
        return all(getattr(self, name) == getattr(other, name) for name in self.__match_args__)

    __hash__ = None  # type: ignore[assignment]

    def __repr__(self) -> str:
        fields = ", ".join(f"{name}={getattr(self, name)!r}" for name in self.__match_args__)
        return f"{type(self).__name__}({fields})"


class _Piece(_Event):
    """An event that carries a piece of text."""

    __slots__ = ("choice", "text")
    __match_args__ = ("text", "choice")

    def __init__(self, text: str, choice: int = 0) -> None:
        self.text = text
        self.choice = choice


class TextDelta(_Piece):
    """A piece of the answer's text."""

    __slots__ = ()
    type = "text"


class ReasoningDelta(_Piece):
    """A piece of the model's reasoning (``reasoning_content`` or ``reasoning``)."""

    __slots__ = ()
    type = "reasoning"


class RefusalDelta(_Piece):
    """A piece of the model's refusal to answer."""

    __slots__ = ()
    type = "refusal"


class ToolCallDelta(_Event):
    """A fragment of a tool call: ``index`` counts the reply's calls from 0."""

    __slots__ = ("arguments", "choice", "id", "index", "name")
    __match_args__ = ("index", "id", "name", "arguments", "choice")
    type = "tool_call"

    def __init__(
        self, index: int, id: Optional[str], name: Optional[str], arguments: str, choice: int = 0
    ) -> None:
        self.index = index
        self.id = id
        self.name = name
        self.arguments = arguments
        self.choice = choice


Event = Union[TextDelta, ReasoningDelta, RefusalDelta, ToolCallDelta]


class _PendingCall:
    __slots__ = ("arguments", "id", "name", "wire_index")

    def __init__(self, wire_index: Optional[int], id: Optional[str], name: Optional[str]) -> None:
        self.wire_index = wire_index
        self.id = id or ""
        self.name = name or ""
        self.arguments: List[str] = []


class ChoiceBuilder:
    """Everything but the text of choice 0, assembled as it arrives.

    ``pending`` is shared by all the choices of a stream: the events not yet
    handed to an ``events()`` reader; ``progress`` counts every delta, for the
    idle clock.
    """

    __slots__ = (
        "_by_wire",
        "_calls",
        "finish_reason",
        "index",
        "logprobs",
        "pending",
        "progress",
        "reasoning",
        "refusal",
        "text",
    )

    def __init__(self, index: int, pending: List[Any], progress: List[int]) -> None:
        self.index = index
        self.pending = pending
        self.progress = progress
        self.text: List[str] = []  # choice 0's text lives in the stream itself
        self.reasoning: List[str] = []
        self.refusal: List[str] = []
        self.logprobs: List[Any] = []
        self.finish_reason: Optional[str] = None
        self._calls: List[_PendingCall] = []
        self._by_wire: Dict[int, int] = {}  # the server's index -> the call's position

    # Each add_* method notes its event inline: these run once per delta.

    def add_text(self, text: str) -> None:
        self.text.append(text)
        self.pending.append(TextDelta(text, self.index))
        self.progress[0] += 1

    def add_reasoning(self, text: str) -> None:
        self.reasoning.append(text)
        self.pending.append(ReasoningDelta(text, self.index))
        self.progress[0] += 1

    def add_refusal(self, text: str) -> None:
        self.refusal.append(text)
        self.pending.append(RefusalDelta(text, self.index))
        self.progress[0] += 1

    def add_logprobs(self, entries: List[Any]) -> None:
        self.logprobs.extend(entries)

    def add_tool_call(
        self, wire_index: Optional[int], id: Optional[str], name: Optional[str], arguments: Any
    ) -> None:
        """One fragment as the server sent it.

        Fragments join by their ``index``; a fragment without one continues
        the last call, unless it brings an ``id`` not seen yet (servers that
        send each call whole and leave ``index`` out). A new ``id`` at an index
        already taken is a new call too: some servers number every call 0.
        """
        if arguments.__class__ is not str:
            # Some servers send the arguments as an object, not as JSON text.
            arguments = "" if arguments is None else json.dumps(arguments, ensure_ascii=False)
        calls = self._calls
        position = self._position(wire_index, id)
        if position < 0:
            position = len(calls)
            calls.append(_PendingCall(wire_index, id, name))
            if wire_index is not None:
                self._by_wire[wire_index] = position
        elif name:
            call = calls[position]
            if name != call.name:
                call.name = call.name + name if call.name else name
        if arguments:
            calls[position].arguments.append(arguments)
        self.pending.append(ToolCallDelta(position, id or None, name or None, arguments, self.index))
        self.progress[0] += 1

    def _position(self, wire_index: Optional[int], id: Optional[str]) -> int:
        """Where the fragment's call is in the reply, or -1 for a new call."""
        if wire_index is None:
            position = len(self._calls) - 1
        else:
            position = self._by_wire.get(wire_index, -1)
        if position >= 0 and id and self._calls[position].id and id != self._calls[position].id:
            return -1
        return position

    @property
    def tool_calls(self) -> List[ToolCall]:
        return [ToolCall(call.id, call.name, "".join(call.arguments)) for call in self._calls]

    def choice(self, text: Optional[str] = None) -> Choice:
        return Choice(
            self.index,
            "".join(self.text) if text is None else text,
            reasoning="".join(self.reasoning),
            refusal="".join(self.refusal),
            tool_calls=self.tool_calls,
            finish_reason=self.finish_reason,
            logprobs=self.logprobs,
        )
