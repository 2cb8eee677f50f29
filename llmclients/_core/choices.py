"""How a stream assembles a reply beside choice 0's text (:class:`ChoiceBuilder`):
the reasoning, refusals, tool calls and logprobs of each choice, and the typed
events (:mod:`llmclients.events`) an ``events()`` reader is handed."""

from __future__ import annotations

import json
from typing import Any, Dict, List, Optional

from ..events import ReasoningDelta, RefusalDelta, TextDelta, ToolCallDelta
from .values import Choice, ToolCall

__all__ = ["ChoiceBuilder"]


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

    def add_tool_arguments(self, wire_index: int, fragment: str) -> None:
        """A piece of the arguments of the call begun at ``wire_index`` (whose
        id and name came with its start): :meth:`add_tool_call`'s path for the
        one event a long tool call repeats thousands of times (Anthropic's
        ``input_json_delta``)."""
        position = self._by_wire.get(wire_index, -1)
        if position < 0:
            self.add_tool_call(wire_index, None, None, fragment)
            return
        self._calls[position].arguments.append(fragment)
        self.pending.append(ToolCallDelta(position, None, None, fragment, self.index))
        self.progress[0] += 1

    def set_tool_call_arguments(self, wire_index: Optional[int], arguments: str) -> None:
        """Make the arguments of the call at ``wire_index`` exactly ``arguments``:
        for protocols whose closing event repeats a call's whole arguments
        (OpenAI's Responses API), which are trusted over the fragments. What is
        missing is added as one more fragment; a whole that contradicts the
        fragments replaces them."""
        position = self._position(wire_index, None)
        if position < 0:
            return
        call = self._calls[position]
        joined = "".join(call.arguments)
        if joined == arguments:
            return
        if arguments.startswith(joined):
            self.add_tool_call(wire_index, None, None, arguments[len(joined) :])
        else:
            call.arguments[:] = [arguments]

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
