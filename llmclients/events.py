"""The typed events of a reply.

``stream.events()`` yields these, in the order they arrived::

    TextDelta(text, choice)                  a piece of the answer
    ReasoningDelta(text, choice)             a piece of the model's thinking
    RefusalDelta(text, choice)               a piece of a refusal (OpenAI's ``delta.refusal``)
    ToolCallDelta(index, id, name, arguments, choice)
                                             a fragment of tool call number ``index``:
                                             ``id`` and ``name`` on its first fragment,
                                             then pieces of the ``arguments`` JSON

The tool loop (``conversation.run_stream()``) yields them for each reply,
and around each tool call it runs::

    ToolStart(call)                          the loop takes up this ToolCall: it checks
                                             it, asks ``before_call``, runs it
    ToolEnd(result)                          its ToolResult, now in the conversation

Each has a ``type`` ("text", "reasoning", "refusal", "tool_call", "tool_start", "tool_end") for code
that dispatches on strings. ``choice`` is the answer's index when a call asks
for several (``n``); it is 0 otherwise.

A provider's ``parse_event`` reports everything but choice 0's text through
the builders of its stream's state (:class:`~llmclients._core.choices.ChoiceBuilder`),
which keep the whole reply whether or not anyone reads the events.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, ClassVar, Optional, Union

from ._core.values import Record

if TYPE_CHECKING:
    from ._core.tools import ToolResult
    from ._core.values import ToolCall

__all__ = [
    "Event",
    "LoopEvent",
    "ReasoningDelta",
    "RefusalDelta",
    "TextDelta",
    "ToolCallDelta",
    "ToolEnd",
    "ToolStart",
]


class _Event(Record):
    """What every event shares: a ``type`` name, equality by value, a readable repr."""

    __slots__ = ()
    type: ClassVar[str] = ""


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


class ToolStart(_Event):
    """The tool loop takes up ``call`` (a :class:`~llmclients.ToolCall`): its
    check, ``before_call`` and its run come next."""

    __slots__ = ("call",)
    __match_args__ = ("call",)
    type = "tool_start"

    def __init__(self, call: ToolCall) -> None:
        self.call = call


class ToolEnd(_Event):
    """A tool call's :class:`~llmclients.ToolResult` (``result.call``, ``.content``,
    ``.is_error``), added to the conversation."""

    __slots__ = ("result",)
    __match_args__ = ("result",)
    type = "tool_end"

    def __init__(self, result: ToolResult) -> None:
        self.result = result


#: What the tool loop yields: every reply's events, and each call's start and end.
LoopEvent = Union[Event, ToolStart, ToolEnd]
