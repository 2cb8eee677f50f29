"""What a call learns from a reply's events (:class:`StreamState`), what it
reads them from (:class:`Exchange`), what it needs of the provider
(:class:`Service`), and the memory it lets a reply take
(``max_reply_size``). The loop that reads is :meth:`llmclients._core.call.Call.deltas`.

Each read of the body goes to the exchange's decoder whole; the events it
completes go one by one to the provider's ``parse_event``, which writes what
they carry into the :class:`StreamState` and returns choice 0's text.
"""

from __future__ import annotations

import warnings
from typing import (
    TYPE_CHECKING,
    Any,
    Callable,
    Dict,
    FrozenSet,
    List,
    Optional,
    Protocol,
)

from .. import errors
from ..events import ToolCallDelta
from .choices import ChoiceBuilder
from .timings import Timings
from .values import Choice, Completion, Message, Usage

if TYPE_CHECKING:
    from .._http.body import Body
    from .._http.transport import Request
    from ..errors import HTTPStatusError
    from .framing import Decoder

__all__ = [
    "DEFAULT_MAX_REPLY_SIZE",
    "Exchange",
    "Finish",
    "OnComplete",
    "ParseEvent",
    "Service",
    "StreamState",
    "cut_while_reasoning",
    "memory_of",
    "str_size",
    "too_large",
]


#: The default ``max_reply_size``: 12 MiB, some 220,000 deltas of a token
#: each (a delta takes some 55 bytes), near twice the longest reply any model
#: writes. The pieces kept to that size, the copy of them an error carries in
#: ``partial_text`` and an event of up to 8 MiB being decoded stay under
#: 100 MB of memory, whatever the server sends (``benchmarks/bench_bomb.py``).
DEFAULT_MAX_REPLY_SIZE = 12 * 1024 * 1024


class StreamState:
    """What a provider learns from the events besides choice 0's text.

    A provider's ``parse_event`` writes here; :class:`Stream` reads it.
    ``thread`` is the conversation's server-side state (ids the service
    gave out), which a provider updates as events tell it; a
    :class:`~llmclients.conversation.Conversation` keeps it once the turn ends.
    Reasoning, tool calls, refusals, logprobs and the other choices' text go
    to :meth:`choice`'s builders; ``response_id`` and ``extra`` (top-level keys
    the server added) describe the reply.
    """

    __slots__ = (
        "_choices",
        "done",
        "emit",
        "extra",
        "finish_reason",
        "first",
        "message_fields",
        "model",
        "notes",
        "pending",
        "progress",
        "response_id",
        "thread",
        "usage",
    )

    def __init__(self, model: Optional[str] = None, thread: Optional[Dict[str, Any]] = None) -> None:
        self.done = False
        self.finish_reason: Optional[str] = None
        self.usage: Optional[Usage] = None
        self.model = model
        self.thread: Dict[str, Any] = thread if thread is not None else {}
        self.response_id: Optional[str] = None
        self.extra: Dict[str, Any] = {}
        #: Keys for the assistant message that continues the conversation: what
        #: the service needs back unchanged (Anthropic's thinking blocks, say).
        self.message_fields: Dict[str, Any] = {}
        #: The provider's own notes while it reads this reply (which call a
        #: fragment belongs to, the content blocks open by index, say): never
        #: shown, gone with the state.
        self.notes: Dict[Any, Any] = {}
        #: Events not yet handed on; yielded only while ``emit`` (an events() reader) is on.
        self.pending: List[Any] = []
        self.emit = False
        #: Deltas other than choice 0's text, counted for the idle clock.
        self.progress = [0]
        self.first = ChoiceBuilder(0, self.pending, self.progress)
        self._choices: Dict[int, ChoiceBuilder] = {0: self.first}

    def choice(self, index: int) -> ChoiceBuilder:
        """The builder of choice ``index`` (created on first use)."""
        builder = self._choices.get(index)
        if builder is None:
            builder = self._choices[index] = ChoiceBuilder(index, self.pending, self.progress)
        return builder

    def choices(self) -> List[ChoiceBuilder]:
        return [self._choices[index] for index in sorted(self._choices)]

    def choice_list(self, text: str) -> List[Choice]:
        """Every answer of the reply so far; choice 0's text is ``text``."""
        choices = [builder.choice(text if builder.index == 0 else None) for builder in self.choices()]
        choices[0].finish_reason = self.finish_reason  # choice 0's lives in the state itself
        return choices

    def reply(
        self, text: str, provider: str, request_id: Optional[str], timings: Optional[Timings] = None
    ) -> Completion:
        """The reply as read so far, choice 0's text being ``text``: whole once :attr:`done`."""
        first = self.first
        choices = self.choice_list(text)
        return Completion(
            text=text,
            finish_reason=self.finish_reason,
            usage=self.usage,
            model=self.model,
            provider=provider,
            reasoning="".join(first.reasoning),
            refusal="".join(first.refusal),
            tool_calls=first.tool_calls,
            logprobs=first.logprobs,
            response_id=self.response_id,
            request_id=request_id,
            extra=self.extra,
            choices=choices if len(choices) > 1 else (),
            message_fields=self.message_fields,
            timings=timings,
        )


#: A decoded event: the data of an SSE message event or an NDJSON line, or a
#: :class:`~llmclients._core.sse.SSEEvent` for an event of another type.
ParseEvent = Callable[[Any, StreamState], Optional[str]]
Finish = Callable[[StreamState], None]
OnComplete = Callable[[str, StreamState], None]


class Exchange:
    """One HTTP exchange of a call: the response, its body reader (which hands
    the connection back once the protocol has ended), the decoder (a class of
    :mod:`llmclients._core.framing`) of its event format, and the thread state the
    request was built from. ``parse_event``, if given, reads its events
    instead of the provider's (a whole JSON reply that came where a stream
    was asked for)."""

    __slots__ = ("body", "decoder", "parse_event", "response", "thread")

    def __init__(
        self,
        response: Any,
        body: Body,
        decoder: Callable[[], Decoder],
        thread: Dict[str, Any],
        parse_event: Optional[ParseEvent] = None,
    ) -> None:
        self.response = response
        self.body = body
        self.decoder = decoder
        self.thread = thread
        self.parse_event = parse_event


class Service(Protocol):
    """What a call needs of its provider: the request to send and how to read
    the events that answer it (:class:`~llmclients._core.provider.Provider` is one)."""

    @property
    def name(self) -> str: ...

    @property
    def label(self) -> str: ...

    @property
    def event_format(self) -> str: ...

    @property
    def stream_types(self) -> FrozenSet[str]: ...

    def build_request(
        self, messages: List[Message], model: str, options: Dict[str, Any], thread: Dict[str, Any]
    ) -> Request: ...

    def parse_event(self, data: Any, state: StreamState) -> Optional[str]: ...

    def parse_completion(self, document: Any, state: StreamState) -> Optional[str]: ...

    def finish(self, state: StreamState) -> None: ...

    def explain_status_error(self, exc: HTTPStatusError) -> HTTPStatusError: ...


def cut_while_reasoning(state: StreamState, parts: List[str]) -> None:
    """Warn (:class:`~llmclients.errors.ReasoningCutOffWarning`) when the token
    limit ended the reply while the model was still reasoning."""
    # An empty answer with finish "length" looks like a success; it is a model
    # that spent its whole token budget thinking.
    if state.finish_reason == "length" and not parts and state.first.reasoning:
        warnings.warn(
            errors.ReasoningCutOffWarning(
                "the token limit ended the reply while the model was still reasoning "
                f"({sum(map(len, state.first.reasoning))} characters of reasoning, no answer); "
                "raise max_tokens or lower reasoning_effort"
            ),
            stacklevel=4,
        )


#: The memory a ``str`` takes: what ``sys.getsizeof`` reports, at a quarter of
#: its cost (it looks the method up by name each time).
str_size = str.__sizeof__


def memory_of(events: List[Any]) -> int:
    """The memory the pieces of these events take."""
    size = 0
    for event in events:
        piece = event.arguments if event.__class__ is ToolCallDelta else event.text
        size += str_size(piece or "")
    return size


def too_large(limit: Optional[int]) -> errors.ReplyTooLargeError:
    """The error of a reply past ``max_reply_size``."""
    return errors.ReplyTooLargeError(
        f"the reply grew past max_reply_size ({limit} bytes); the connection was closed. "
        "Pass a larger max_reply_size to the client (or None for no limit) if the reply is genuine"
    )
