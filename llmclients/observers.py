"""Observers: what sees a call's lifecycle, for logs, traces, metrics and usage records.

A client's ``observers`` (``Provider(observers=[...])``, or
``client.observers.append(...)``) each see every call the client makes;
:func:`attach` adds an observer that sees every call of every client in the
process (what an instrumentation such as :mod:`llmclients.otel` uses), after
the client's own. Each sees a call's events in this order::

    on_request     a request is about to be sent (again on every attempt)
    on_response    its response headers arrived (status, request id, time)
    on_retry       an attempt failed and another is scheduled (why, delay)
    on_first_delta the first delta arrived (text, reasoning or a tool call)
    on_end         the call ended: done, closed early, or error; exactly once

Subclass :class:`Observer` and override what you need; every method gets one
event whose ``call`` (a :class:`CallInfo`) is the same object for
every event of a call, so an observer may keep what it opened (a span, a
timer) in ``event.call.notes`` until ``on_end``. Events are delivered in the
thread that does the work (for :mod:`llmclients.aio`, a worker thread that
runs in a copy of the caller's :mod:`contextvars` context).

A call made while :func:`in_conversation` is active (every turn of a
:class:`~llmclients.Conversation` is) names that conversation in
``CallInfo.conversation_id``.

An observer that raises never breaks the call: its error is logged on the
``llmclients`` logger and the call goes on. Observers see no secret: URLs
are redacted, and headers, where keys travel, are not in any event; an
observer that records what was asked or answered passes it through
:meth:`CallInfo.mask` first.

An observer may add headers to a request (a trace context's
``traceparent``): :class:`RequestEvent`'s ``headers`` starts empty on each
attempt, and what an observer puts in it is sent with that attempt, except
a header the request has already (its own, and the keys, always win).
"""

from __future__ import annotations

import contextlib
import itertools
import logging
import threading
import time
from contextvars import ContextVar
from types import MappingProxyType
from typing import Any, Dict, Iterator, Mapping, Optional, Sequence, Tuple

from ._core.values import Completion, Message, Record, Usage
from ._http.masking import mask

__all__ = [
    "CallInfo",
    "EndEvent",
    "FirstDeltaEvent",
    "Observer",
    "RequestEvent",
    "ResponseEvent",
    "RetryEvent",
    "attach",
    "attached",
    "detach",
    "in_conversation",
]

logger = logging.getLogger("llmclients")
_call_ids = itertools.count(1)

# Replaced whole, never mutated: a call reads it once, without the lock.
_process_observers: Tuple[Observer, ...] = ()
_attaching = threading.Lock()
#: The conversation the calls made now belong to (:func:`in_conversation`).
_conversation: ContextVar[Optional[str]] = ContextVar("llmclients_conversation", default=None)


class CallInfo:
    """One call as observers see it: the same object in each of its events.

    ``operation`` is ``"chat"`` for a streamed reply and ``"models"`` for a
    model list; ``messages`` are the chat's messages as the caller gave them
    (normalised; what a log or a trace with content capture records), and
    ``options`` its options (``tools`` and ``response_format`` among them);
    ``url`` is the first request's, credentials redacted;
    ``started`` is on the monotonic clock, ``started_at`` on the wall clock;
    ``conversation_id`` names the conversation the call is a turn of (see
    :func:`in_conversation`), or is None.
    ``notes`` is the observers' own: a place to keep a span or a timer
    between events (key it by the observer)."""

    __slots__ = (
        "_secrets",
        "conversation_id",
        "id",
        "messages",
        "model",
        "notes",
        "operation",
        "options",
        "provider",
        "started",
        "started_at",
        "url",
    )

    def __init__(
        self,
        operation: str,
        provider: str,
        model: Optional[str],
        options: Mapping[str, Any],
        messages: Sequence[Message] = (),
        secrets: Sequence[str] = (),
    ) -> None:
        self.id = next(_call_ids)
        self.operation = operation
        self.provider = provider
        self.model = model
        self.options = dict(options)
        self.messages = tuple(messages)
        self.url = ""
        self.started = time.monotonic()
        self.started_at = time.time()
        self.conversation_id = _conversation.get()
        self.notes: Dict[Any, Any] = {}
        # What mask() hides (the client's keys): private, so that no observer reads them.
        self._secrets = tuple(secrets)

    def mask(self, text: str) -> str:
        """``text`` with the client's secrets (its API key, credential headers
        and passwords) replaced by ``***``, as in error messages: for an
        observer that records the messages or the reply."""
        return mask(text, self._secrets)

    def elapsed(self) -> float:
        """Seconds since the call started."""
        return time.monotonic() - self.started

    def __repr__(self) -> str:
        return f"<CallInfo #{self.id} {self.operation} {self.provider} model={self.model!r}>"


class RequestEvent(Record):
    """A request is about to be sent: ``attempt`` counts from 1.

    ``headers`` is empty, and an observer may add to it: what it adds is
    sent with this attempt, but never replaces a header the request has
    (which are not shown: keys travel in them)."""

    __slots__ = __match_args__ = ("call", "method", "url", "attempt", "headers")

    def __init__(self, call: CallInfo, method: str, url: str, attempt: int, headers: Dict[str, str]) -> None:
        self.call = call
        self.method = method
        self.url = url
        self.attempt = attempt
        self.headers = headers


class ResponseEvent(Record):
    """Response headers arrived with a status below 400 (an error status ends
    in :class:`RetryEvent` or :class:`EndEvent`); ``elapsed`` is seconds since
    the call started."""

    __slots__ = __match_args__ = ("call", "status", "request_id", "attempt", "elapsed")

    def __init__(self, call: CallInfo, status: int, request_id: Optional[str], attempt: int, elapsed: float) -> None:
        self.call = call
        self.status = status
        self.request_id = request_id
        self.attempt = attempt
        self.elapsed = elapsed


class RetryEvent(Record):
    """Attempt ``attempt`` failed with ``error`` and another is sent after ``delay`` seconds."""

    __slots__ = __match_args__ = ("call", "attempt", "error", "reason", "delay")

    def __init__(self, call: CallInfo, attempt: int, error: BaseException, reason: str, delay: float) -> None:
        self.call = call
        self.attempt = attempt
        self.error = error
        self.reason = reason
        self.delay = delay


class FirstDeltaEvent(Record):
    """The first delta of the reply arrived, ``elapsed`` seconds after the call started."""

    __slots__ = __match_args__ = ("call", "elapsed")

    def __init__(self, call: CallInfo, elapsed: float) -> None:
        self.call = call
        self.elapsed = elapsed


class EndEvent(Record):
    """The call ended, exactly once.

    ``outcome`` is ``"done"`` (the protocol's end was read), ``"closed"`` (the
    caller stopped reading first: ``break``, ``close()``, a dropped stream) or
    ``"error"`` (``error`` says which; ``partial_text`` the text received
    before it). ``duration`` is seconds since the call started;
    ``attempts`` counts the requests sent; ``finish_reason``, ``usage``,
    ``response_id``, ``model`` and ``extra`` are the reply's, ``request_id``
    the answering response's; ``text_length`` counts the characters of choice
    0's text. ``reply`` is the reply as read (whole when ``outcome`` is
    ``"done"``, what came before the end otherwise; None for a model list):
    its text, reasoning and tool calls.
    """

    __slots__ = __match_args__ = (
        "call",
        "outcome",
        "duration",
        "attempts",
        "error",
        "finish_reason",
        "usage",
        "response_id",
        "request_id",
        "model",
        "text_length",
        "partial_text",
        "extra",
        "reply",
    )

    def __init__(
        self,
        call: CallInfo,
        outcome: str,
        duration: float,
        attempts: int,
        *,
        error: Optional[BaseException] = None,
        finish_reason: Optional[str] = None,
        usage: Optional[Usage] = None,
        response_id: Optional[str] = None,
        request_id: Optional[str] = None,
        model: Optional[str] = None,
        text_length: int = 0,
        partial_text: str = "",
        extra: Mapping[str, Any] = MappingProxyType({}),
        reply: Optional[Completion] = None,
    ) -> None:
        self.call = call
        self.outcome = outcome
        self.duration = duration
        self.attempts = attempts
        self.error = error
        self.finish_reason = finish_reason
        self.usage = usage
        self.response_id = response_id
        self.request_id = request_id
        self.model = model
        self.text_length = text_length
        self.partial_text = partial_text
        self.extra = extra
        self.reply = reply

    @property
    def error_type(self) -> Optional[str]:
        """The error's class name (``"RateLimitError"``), or None."""
        return None if self.error is None else type(self.error).__name__


class Observer:
    """Sees the lifecycle of a client's calls; every method does nothing
    until overridden. See the module's docstring for the order."""

    def on_request(self, event: RequestEvent) -> None:
        """A request is about to be sent."""

    def on_response(self, event: ResponseEvent) -> None:
        """Its response headers arrived."""

    def on_retry(self, event: RetryEvent) -> None:
        """An attempt failed; another is scheduled."""

    def on_first_delta(self, event: FirstDeltaEvent) -> None:
        """The first delta arrived."""

    def on_end(self, event: EndEvent) -> None:
        """The call ended (exactly once per call)."""


def notify(observers: Sequence[Observer], method: str, event: Any) -> None:
    """Hand ``event`` to each observer's ``method``; an observer that raises is logged, never raised."""
    for observer in observers:
        try:
            getattr(observer, method)(event)
        except Exception:
            logger.exception("observer %r failed in %s; the call goes on", observer, method)


def attach(observer: Observer) -> None:
    """Let ``observer`` see every call of every client in this process, from
    the next call on (calls already open keep the observers they began
    with). Attaching the same object twice has no further effect."""
    global _process_observers
    with _attaching:
        if not any(seen is observer for seen in _process_observers):
            _process_observers = (*_process_observers, observer)


def detach(observer: Observer) -> None:
    """Undo :func:`attach`; an observer that is not attached is ignored."""
    global _process_observers
    with _attaching:
        _process_observers = tuple(seen for seen in _process_observers if seen is not observer)


@contextlib.contextmanager
def in_conversation(conversation_id: Optional[str]) -> Iterator[None]:
    """The calls started in this block (in this thread, or a task or thread
    that copies its :mod:`contextvars` context) are turns of the conversation
    ``conversation_id``: their ``CallInfo.conversation_id`` says so. Every
    :class:`~llmclients.Conversation` turn runs in one, with the conversation's
    ``id``; use it for conversations kept by your own code."""
    token = _conversation.set(conversation_id)
    try:
        yield
    finally:
        _conversation.reset(token)


def attached() -> Tuple[Observer, ...]:
    """The observers :func:`attach` added, in the order they were added."""
    return _process_observers
