"""From an exchange's reads to a reply's deltas: the loop every
:class:`~llmclients.stream.Stream` runs (:func:`deltas`), what it learns from
the events (:class:`StreamState`), what it reads (:class:`Exchange`), and
the memory it lets a reply take (``max_reply_size``).

Each read of the body goes to the exchange's decoder whole; the events it
completes go one by one to the provider's ``parse_event``, which writes what
they carry into the :class:`StreamState` and returns choice 0's text. A
failure before the first delta opens the exchange again, as the call's retry
policy allows; after it, never (the deltas were shown).
"""

from __future__ import annotations

import sys
import warnings
from typing import (
    TYPE_CHECKING,
    Any,
    Callable,
    Dict,
    Generator,
    Iterable,
    Iterator,
    List,
    Optional,
    Tuple,
    Union,
)

from . import errors
from .body import WOULD_BLOCK, Read, Waiting
from .decoding import Decoder
from .events import ChoiceBuilder, Event, ToolCallDelta
from .masking import excerpt, mask_error
from .types import Usage

if TYPE_CHECKING:
    from .body import Body

__all__ = [
    "DEFAULT_MAX_REPLY_SIZE",
    "Exchange",
    "Finish",
    "OnComplete",
    "ParseEvent",
    "Reopen",
    "StreamState",
    "deltas",
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
        "model",
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


#: A decoded event: the data of an SSE message event or an NDJSON line, or a
#: :class:`~llmclients.decoding.SSEEvent` for an event of another type.
ParseEvent = Callable[[Any, StreamState], Optional[str]]
Finish = Callable[[StreamState], None]
OnComplete = Callable[[str, StreamState], None]


class Exchange:
    """One HTTP exchange of a call: the response, its body reader (which hands
    the connection back once the protocol has ended), the decoder (a class of
    :mod:`llmclients.decoding`) of its event format, and the thread state the
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


#: Opens the call's exchange again after a failure before the first delta; None
#: when the call's retry policy allows no new attempt.
Reopen = Callable[[errors.LLMClientError], Optional[Exchange]]


def deltas(
    current: List[Exchange],
    reopen: Reopen,
    parse_event: ParseEvent,
    finish: Finish,
    state: StreamState,
    parts: List[str],
    provider: str,
    on_complete: Optional[OnComplete],
    secrets: Tuple[str, ...],
    max_reply_size: Optional[int],
) -> Iterator[Union[str, Event, Waiting]]:
    """The deltas of the exchange in ``current[0]`` (choice 0's text, and
    the other events once ``state.emit`` is on), opening it again through
    ``reopen`` while nothing has been shown; :data:`WOULD_BLOCK` where a
    non-blocking read found nothing. Any error carries the text so far in
    ``partial_text``, with the call's secrets masked."""
    try:
        while True:
            try:
                exchange = current[0]
                yield from _read(
                    _batches(exchange.body.reads(), exchange.decoder),
                    exchange.parse_event or parse_event,
                    state,
                    parts,
                    provider,
                    max_reply_size,
                )
                break
            except errors.StreamInterruptedError as exc:
                if parts or state.progress[0]:
                    raise  # deltas were shown: a retry would show them twice
                current[0].response.close()
                again = reopen(exc)
                if again is None:
                    raise
                current[0] = again
                state.__init__(state.model, current[0].thread)  # type: ignore[misc]
        finish(state)
        state.done = True
        current[0].body.release()
        _warn_if_cut_while_reasoning(state, parts)
        if on_complete is not None:
            on_complete("".join(parts), state)
    except errors.LLMClientError as exc:
        # In-stream errors and malformed-event excerpts quote what the server
        # sent, which may echo the key: mask it here, where every one passes.
        mask_error(exc, secrets)
        exc.partial_text = "".join(parts)
        raise
    finally:
        current[0].response.close()


def _batches(
    reads: Iterable[Read], new_decoder: Callable[[], Decoder]
) -> Generator[Union[List[Any], Waiting], None, None]:
    """The events of each read, a list a read; :data:`WOULD_BLOCK` where a
    non-blocking read found nothing."""
    decoder = new_decoder()  # held by this frame alone: closing it frees an event of up to 8 MiB
    for chunk in reads:
        if chunk is WOULD_BLOCK:
            yield chunk
            continue
        events = decoder.feed(chunk)
        del chunk  # let the read go while its events are parsed
        if events:
            yield events
        if decoder.error is not None:
            raise decoder.error
    yield decoder.end()


def _read(
    batches: Generator[Union[List[Any], Waiting], None, None],
    parse_event: ParseEvent,
    state: StreamState,
    parts: List[str],
    provider: str,
    max_reply_size: Optional[int],
) -> Iterator[Union[str, Event, Waiting]]:
    pending, size_of = state.pending, _size_of
    # Memory the reply may still take. Its pieces are counted as Python holds
    # them: 1 to 4 bytes a character (a limit in characters would let emoji
    # take four times the memory), and some 50 for each piece (a flood of tiny
    # deltas costs more than their text).
    room = sys.maxsize if max_reply_size is None else max_reply_size
    try:
        for batch in batches:
            if batch is WOULD_BLOCK:
                yield batch
                continue
            for data in batch:
                try:
                    text = parse_event(data, state)
                except errors.LLMClientError:
                    raise
                except (ValueError, LookupError, TypeError, AttributeError) as exc:
                    raise errors.MalformedStreamError(
                        f"{provider} sent an event that does not follow its protocol "
                        f"({type(exc).__name__}: {exc}): {_excerpt(str(data))}"
                    ) from exc
                if pending:
                    room -= _cost(pending)
                    if room < 0:
                        del batch, data, text  # the error's traceback keeps this frame
                        raise _too_large(max_reply_size)
                    if state.emit:
                        yield from pending
                    pending.clear()
                if text:
                    cost = size_of(text)
                    room -= cost
                    if room < 0:
                        text = text[: len(text) * (room + cost) // cost]  # what fits: the reply up to the limit
                        if text:
                            parts.append(text)
                            yield text
                        del batch, data, text  # the error's traceback keeps this frame
                        raise _too_large(max_reply_size)
                    parts.append(text)
                    yield text
                if state.done:
                    return
    finally:
        # The decoder may still hold an event or two of up to 8 MiB each: let
        # them go before the text (as large, after ReplyTooLargeError) is copied.
        batches.close()


#: The memory a ``str`` takes: what ``sys.getsizeof`` reports, at a quarter of
#: its cost (it looks the method up by name each time).
_size_of = str.__sizeof__


def _cost(events: List[Any]) -> int:
    """The memory the pieces of these events take."""
    size = 0
    for event in events:
        piece = event.arguments if event.__class__ is ToolCallDelta else event.text
        size += _size_of(piece or "")
    return size


def _too_large(limit: Optional[int]) -> errors.ReplyTooLargeError:
    return errors.ReplyTooLargeError(
        f"the reply grew past max_reply_size ({limit} bytes); the connection was closed. "
        "Pass a larger max_reply_size to the client (or None for no limit) if the reply is genuine"
    )


def _warn_if_cut_while_reasoning(state: StreamState, parts: List[str]) -> None:
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


def _excerpt(data: str, limit: int = 120) -> str:
    return repr(excerpt(data, limit + 1))
