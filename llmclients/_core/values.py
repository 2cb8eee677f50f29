"""The values of a call: the messages it sends (:data:`Message`,
:data:`Messages`) and what a reply is read into: :class:`ToolCall`,
:class:`Choice` and :class:`Completion`, with its :class:`Usage` (from
:mod:`.usage`) and :class:`Timings` (from :mod:`.timings`); and
:func:`parse_json`, which reads a reply's text or a tool call's arguments as JSON;
and :class:`Record`, the base of the events that observers and readers see."""

# Annotations are evaluated here (no ``from __future__ import annotations``):
# typing.NamedTuple would otherwise compile each field's string at import.
import copy
import json
from typing import Any, Dict, List, Mapping, NamedTuple, Optional, Sequence, Tuple, Union

from ..errors import InvalidJSONError
from .timings import Timings
from .usage import Usage

__all__ = [
    "Choice",
    "Completion",
    "Message",
    "Messages",
    "Record",
    "ToolCall",
    "Usage",
    "assistant_message",
    "cut_off_calls",
    "parse_json",
]


#: One chat turn as the OpenAI API spells it: ``{"role": "user", "content": "Hi"}``;
#: ``content`` may also be a list of content parts, or None beside ``tool_calls``.
Message = Dict[str, Any]
#: What every ``stream()`` and ``complete()`` accepts: one user turn, or a list of turns.
Messages = Union[str, Sequence[Mapping[str, Any]]]


class Record:
    """Named fields (``__match_args__``, in order; the subclass sets them in
    ``__init__``), equal by value and shown by them. Events are these rather
    than NamedTuples: a NamedTuple class costs ten times as much to define,
    and every one is defined at ``import llmclients``."""

    __slots__: Tuple[str, ...] = ()
    __match_args__: Tuple[str, ...] = ()

    def __eq__(self, other: object) -> bool:
        if other.__class__ is not self.__class__:
            return NotImplemented
        return all(getattr(self, name) == getattr(other, name) for name in self.__match_args__)

    __hash__ = None  # type: ignore[assignment]

    def __repr__(self) -> str:
        fields = ", ".join(f"{name}={getattr(self, name)!r}" for name in self.__match_args__)
        return f"{type(self).__name__}({fields})"



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


def cut_off_calls(tool_calls: Sequence[ToolCall], finish_reason: Optional[str]) -> List[ToolCall]:
    """The calls of a reply that the token limit cut short: when it ended on
    ``length``, those whose arguments are not JSON (``{"city": "London``).
    A call whose arguments parse is whole, whatever ended the reply."""
    if finish_reason != "length":
        return []
    cut = []
    for call in tool_calls:
        try:
            json.loads(call.arguments or "{}")
        except ValueError:
            cut.append(call)
    return cut


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

    Besides ``text``: ``reasoning`` (the model's thinking, when the server sends it
    apart), ``tool_calls``, ``refusal``, ``finish_reason``, ``usage``, ``timings``
    (:class:`Timings`, or None), ``model``, ``provider``, ``response_id`` (the chunks'
    ``id``), ``request_id`` (the ``x-request-id`` / ``request-id`` header), ``logprobs``
    (the token entries, in order), ``extra`` (top-level keys the server added,
    such as ``system_fingerprint`` or llama.cpp's ``timings``), ``choices``
    (every answer when ``n`` > 1; the first is this one),
    ``message_fields`` (what the service needs back in the assistant turn that
    continues the conversation, kept by :meth:`message`) and ``output_type``
    (the class given as ``response_format``, whose instance :attr:`parsed` is).
    """

    __slots__ = (
        "_parsed",
        "choices",
        "extra",
        "finish_reason",
        "logprobs",
        "message_fields",
        "model",
        "output_type",
        "provider",
        "reasoning",
        "refusal",
        "request_id",
        "response_id",
        "text",
        "timings",
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
        message_fields: Optional[Mapping[str, Any]] = None,
        output_type: Optional[type] = None,
        timings: Optional[Timings] = None,
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
        self.message_fields = dict(message_fields or {})
        self.output_type = output_type
        self.timings = timings
        self._parsed: Any = _UNPARSED

    def __getstate__(self) -> Any:
        """The fields but ``output_type`` (a class, perhaps a local one) and the
        instance made of it: an unpickled reply's :attr:`parsed` is plain JSON."""
        return None, {name: getattr(self, name) for name in _PICKLED}

    def __setstate__(self, state: Any) -> None:
        """A pickle made before a field existed loads with its default."""
        self.message_fields = {}
        self.output_type = None
        self.timings = None
        self._parsed = _UNPARSED
        for part in state if isinstance(state, tuple) else (state,):
            for name, value in (part or {}).items():
                setattr(self, name, value)

    @property
    def truncated(self) -> bool:
        """True when the token limit cut the reply short (``finish_reason == "length"``)."""
        return self.finish_reason == "length"

    @property
    def incomplete_tool_calls(self) -> List[ToolCall]:
        """The tool calls the token limit cut off (their arguments are not whole
        JSON). They stay in :attr:`tool_calls`, as they arrived, but a
        conversation leaves them out of its history: raise ``max_tokens``."""
        return cut_off_calls(self.tool_calls, self.finish_reason)

    def json(self) -> Any:
        """The reply's text parsed as JSON (for ``response_format`` replies).

        Raises :class:`~llmclients.errors.InvalidJSONError` when the model
        refused, when the token limit cut the reply, or when the text is not JSON;
        its ``text`` holds what arrived.
        """
        if self.refusal:
            raise InvalidJSONError(f"the model refused instead of answering: {self.refusal}", text=self.text)
        return parse_json(self.text, "the reply", self.finish_reason)

    @property
    def parsed(self) -> Any:
        """The reply as an instance of ``output_type`` (``response_format=City``:
        a ``City``), made once; without one (a dict ``response_format``, or
        after pickling), :meth:`json`.

        Raises :class:`~llmclients.errors.StructuredOutputError` (an
        :class:`~llmclients.errors.InvalidJSONError`) for a refusal, a reply
        cut off by the token limit, text that is not JSON, or JSON that does
        not fit the type; its ``text`` is the reply, ``problems`` what does not fit.
        """
        if self.output_type is None:
            return self.json()
        if self._parsed is _UNPARSED:
            from .schemas import parse_reply  # only for a typed reply: it loads inspect

            self._parsed = parse_reply(self.output_type, self.text, self.finish_reason, self.refusal)
        return self._parsed

    def message(self) -> Message:
        """The reply as the assistant message that continues a conversation."""
        return assistant_message(self.text, self.tool_calls, self.message_fields)

    def to_dict(self) -> Dict[str, Any]:
        """The whole reply as JSON-ready values, for a log line or a queue.

        Every attribute, by name; ``usage`` and ``timings`` are their ``to_dict()``
        (or None), tool calls in OpenAI's message shape (``id``, ``type``, ``function``:
        ``name``, ``arguments``), ``choices`` one dict each. ``output_type`` is
        left out (a class is no JSON value): :attr:`parsed`'s data is :meth:`json`.
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
            "message_fields": copy.deepcopy(self.message_fields),
            "timings": self.timings.to_dict() if self.timings is not None else None,
        }

    def __str__(self) -> str:
        return self.text

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Completion):
            return NotImplemented
        return all(getattr(self, name) == getattr(other, name) for name in _COMPARED)

    __hash__ = None  # type: ignore[assignment]

    def __repr__(self) -> str:
        shown = ["text", "finish_reason", "usage", "model", "provider"]
        shown += [name for name in ("reasoning", "tool_calls", "refusal") if getattr(self, name)]
        fields = ", ".join(f"{name}={getattr(self, name)!r}" for name in shown)
        return f"Completion({fields})"


#: A :attr:`Completion.parsed` not made yet.
_UNPARSED: Any = object()
#: The fields that make a :class:`Completion`: what it compares and pickles (the
#: output type and the instance made of it are left out: see ``__getstate__``).
_PICKLED = tuple(name for name in Completion.__slots__ if name not in ("_parsed", "output_type"))
_COMPARED = tuple(name for name in _PICKLED if name != "timings")  # a measure of the call, as Usage.raw


def assistant_message(text: str, tool_calls: Sequence[ToolCall], fields: Mapping[str, Any]) -> Message:
    """The assistant turn of a reply: its text (None beside tool calls, when
    there is none), its tool calls in OpenAI's shape, and the ``fields`` a
    provider keeps for the service (:attr:`Completion.message_fields`)."""
    message: Message = {"role": "assistant", "content": text or (None if tool_calls else "")}
    if tool_calls:
        message["tool_calls"] = [call.to_dict() for call in tool_calls]
    message.update(copy.deepcopy(dict(fields)))
    return message
