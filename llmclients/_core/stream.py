"""The iterator a caller holds while a reply streams in (:class:`Stream`), and
the reply's accessors it shares with the asyncio and fallback streams
(:class:`ReplyView`). The loop it runs is :meth:`llmclients._core.call.Call.deltas`."""

from __future__ import annotations

import errno
from typing import TYPE_CHECKING, Any, Dict, Iterator, List, Optional

from .._http.body import WOULD_BLOCK
from .._http.status_errors import rate_limits_of, request_id_of
from ..events import Event, TextDelta
from .call import Call
from .state import StreamState
from .timings import Timings
from .values import Choice, Completion, ToolCall, Usage

if TYPE_CHECKING:
    import socket

__all__ = ["ReplyView", "Stream", "completion_of"]


class ReplyView:
    """What a reply's stream tells once read: :attr:`text`, :attr:`reasoning`,
    :attr:`tool_calls`, :attr:`finish_reason`, :attr:`usage`, :attr:`model`
    and the reply's metadata, read from its :class:`~llmclients._core.call.Call`
    (before the call is open, each is empty)."""

    provider: str
    _call: Optional[Call] = None

    @property
    def text(self) -> str:
        """All text yielded so far."""
        return "".join(self._call.parts) if self._call is not None else ""

    @property
    def reasoning(self) -> str:
        """The model's reasoning so far, when the server sends it apart from the text."""
        return "".join(self._call.state.first.reasoning) if self._call is not None else ""

    @property
    def refusal(self) -> str:
        """The model's refusal, if it refused (``delta.refusal``); "" otherwise."""
        return "".join(self._call.state.first.refusal) if self._call is not None else ""

    @property
    def tool_calls(self) -> List[ToolCall]:
        """The tool calls assembled so far (whole once the stream has ended)."""
        return self._call.state.first.tool_calls if self._call is not None else []

    @property
    def logprobs(self) -> List[Any]:
        """The token log-probability entries (``logprobs.content``), when asked for."""
        return self._call.state.first.logprobs if self._call is not None else []

    @property
    def choices(self) -> List[Choice]:
        """Every answer when the call asked for several (``n``); the first is the stream's own."""
        return self._call.state.choice_list(self.text) if self._call is not None else []

    @property
    def finish_reason(self) -> Optional[str]:
        return self._call.state.finish_reason if self._call is not None else None

    @property
    def usage(self) -> Optional[Usage]:
        return self._call.state.usage if self._call is not None else None

    @property
    def model(self) -> Optional[str]:
        return self._call.state.model if self._call is not None else None

    @property
    def response_id(self) -> Optional[str]:
        """The reply's id as the server gave it (the chunks' ``id``)."""
        return self._call.state.response_id if self._call is not None else None

    @property
    def request_id(self) -> Optional[str]:
        """The ``x-request-id`` (or ``request-id``) response header, for the service's support."""
        return request_id_of(self._call.current.response.headers) if self._call is not None else None

    @property
    def rate_limits(self) -> Dict[str, str]:
        """The ``x-ratelimit-*`` response headers (``remaining`` and ``reset`` of
        requests and tokens, as OpenAI and Groq send them), names lower-cased."""
        return rate_limits_of(self._call.current.response.headers) if self._call is not None else {}

    @property
    def extra(self) -> Dict[str, Any]:
        """Top-level keys the server added to its events (``system_fingerprint``, llama.cpp's ``timings``)."""
        return self._call.state.extra if self._call is not None else {}

    @property
    def message_fields(self) -> Dict[str, Any]:
        """What the service needs back in the assistant turn that continues the
        conversation (see :meth:`Completion.message`)."""
        return self._call.state.message_fields if self._call is not None else {}

    @property
    def output_type(self) -> Optional[type]:
        """The class given as ``response_format`` (a dataclass, TypedDict or pydantic model), or None."""
        return self._call.output_type if self._call is not None else None

    @property
    def parsed(self) -> Any:
        """The reply as an instance of :attr:`output_type` (see :attr:`Completion.parsed`),
        from the text so far: read it once the stream has ended."""
        return completion_of(self).parsed

    @property
    def done(self) -> bool:
        """True once the stream reached its protocol's end."""
        return self._call.state.done if self._call is not None else False

    @property
    def timings(self) -> Timings:
        """How long the call took (:class:`~llmclients.Timings`): seconds to the
        response headers, to the first delta and to the end, and deltas per
        second; ``total`` is None while the stream is open."""
        return self._call.timings() if self._call is not None else Timings()


class Stream(ReplyView):
    """An iterator of ``str`` deltas of the answer, each yielded as soon as its bytes arrive.

    Use it in a ``for`` loop or a ``with`` block. Leaving the block, calling
    :meth:`close`, or dropping the last reference to the stream closes the
    connection at once. :meth:`events` yields everything else too — reasoning,
    tool-call fragments, refusals — as typed events (:mod:`llmclients.events`).
    Once the stream is exhausted, :attr:`text`, :attr:`reasoning`,
    :attr:`tool_calls`, :attr:`finish_reason`, :attr:`usage`, :attr:`model`
    and the reply's metadata describe the reply, whichever way it was read.

    Any error raised while iterating is an :class:`~llmclients.errors.LLMClientError`
    whose ``partial_text`` holds the text already yielded. A reply whose
    pieces (text, reasoning, refusal and tool-call arguments) come to take
    more than ``max_reply_size`` bytes of memory raises
    :class:`~llmclients.errors.ReplyTooLargeError`. A connection that
    breaks before the first delta is opened again as the client's retry policy
    allows; after the first delta, never.
    """

    def __init__(self, call: Call) -> None:
        self.provider = call.service.name
        self._call: Call = call
        # The generator refers to the call, never to the stream: a cycle would
        # keep a dropped stream, and so its connection, alive until the next GC pass.
        self._iterator = call.deltas()

    @property
    def call(self) -> Call:
        """The call this stream reads (:mod:`llmclients._core.call`)."""
        return self._call

    @property
    def state(self) -> StreamState:
        """What the provider learnt from the events (:class:`~llmclients._core.state.StreamState`)."""
        return self._call.state

    def set_nonblocking(self) -> Optional[socket.socket]:
        """Never wait for the network from now on: for an event loop that drives the stream.

        Returns the socket to watch, or None if this stream cannot be read so
        (its body is not chunked, or not on a socket; or no delta has come
        yet, and a retry may still have to wait) and stays blocking. Then
        ``next()`` raises ``BlockingIOError`` when no delta has arrived: call
        it again once the socket is readable, or at :attr:`wake_at`, when a
        timeout is due (the call then raises it). Thread-safe only as far as
        ``next()`` is: one thread at a time.
        """
        if not self._call.parts and not self._call.state.progress[0]:
            return None
        return self._call.current.body.set_nonblocking()

    def interrupt(self) -> bool:
        """Wake a ``next()`` blocked in another thread, which then raises
        :class:`~llmclients.errors.StreamInterruptedError`; thread-safe, and
        returns at once. Does nothing (returns False) once the connection has
        gone back to the pool, or if the body is not read from a socket.
        Call :meth:`close` from the reading thread afterwards."""
        return self._call.current.body.interrupt()

    @property
    def wake_at(self) -> Optional[float]:
        """After ``next()`` raised ``BlockingIOError``: when (``time.monotonic()``) a timeout is due, or None."""
        return self._call.current.body.wake_at

    def __iter__(self) -> Stream:
        # The stream itself, not its generator: a `for` loop then keeps the
        # stream alive, and dropping the stream is what closes the connection.
        return self

    def __next__(self) -> str:
        item = next(self._iterator)
        if item is WOULD_BLOCK:
            raise _would_block()
        return item  # type: ignore[return-value]  # only str unless events() is on

    def events(self) -> Iterator[Event]:
        """Every delta as a typed event, in arrival order: text, reasoning,
        refusal and tool-call fragments (see :mod:`llmclients.events`)."""
        self.state.emit = True
        for item in self._iterator:
            if item is WOULD_BLOCK:
                raise _would_block()
            yield TextDelta(item) if isinstance(item, str) else item

    def __enter__(self) -> Stream:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def __del__(self) -> None:
        self.close()

    def close(self) -> None:
        """Stop reading and close the connection. Safe to call twice."""
        iterator = getattr(self, "_iterator", None)
        if iterator is not None:
            iterator.close()  # runs the generator's cleanup if it had started
        call = getattr(self, "_call", None)
        if call is not None:
            call.close()  # the call ends "closed" unless it ended already

    @property
    def parsed(self) -> Any:
        """Read the rest of the stream and return the reply as an instance of
        ``response_format`` (see :attr:`Completion.parsed`)."""
        return self.completion().parsed

    def completion(self) -> Completion:
        """Read the rest of the stream and return the whole reply."""
        for _ in self:
            pass
        return completion_of(self)

    def __repr__(self) -> str:
        state = "done" if self.state.done else "open"
        return f"<Stream {self.provider} model={self.model!r} {state}, {len(self.text)} chars>"


# Set here, not by expose(): llmclients loads this lazily (see its _LAZY).
Stream.__module__ = "llmclients"


def _would_block() -> BlockingIOError:
    return BlockingIOError(errno.EAGAIN, "no delta has arrived yet: wait for the socket, or until wake_at")


def completion_of(stream: ReplyView) -> Completion:
    """The :class:`Completion` of an ended stream (a :class:`Stream`, or the
    asyncio or fallback wrapper's)."""
    call = stream._call
    if call is None:
        return Completion(text="", finish_reason=None, usage=None, model=None, provider=stream.provider)
    reply = call.state.reply(stream.text, stream.provider, stream.request_id, call.timings())
    reply.output_type = call.output_type
    return reply
