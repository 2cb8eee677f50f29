"""One call to a service, from its request to its end: :class:`Call`.

A call builds its request from the provider, sends it (retrying connection
failures and busy statuses, with their waits), checks the response's type,
reads the body's events into deltas (:meth:`Call.deltas`, the loop every
:class:`~llmclients._core.stream.Stream` runs) and ends exactly once: done,
closed early, or with an error. Its observers (:mod:`llmclients.observers`)
see each of those steps.

A failure before the first delta opens the exchange again, as the call's
retry policy allows; after it, never (the deltas were shown).
"""

from __future__ import annotations

import copy
import json
import logging
import sys
import time
from typing import (
    TYPE_CHECKING,
    Any,
    Callable,
    Dict,
    Generator,
    Iterable,
    Iterator,
    List,
    Mapping,
    Optional,
    Sequence,
    Union,
)

import requests

from .. import errors
from .._http.body import WOULD_BLOCK, Body, Read, Waiting
from .._http.masking import excerpt, mask_error, redact_url
from .._http.request import Request
from .._http.status_errors import request_id_of
from .._http.transport import Budget, Transport
from ..events import Event
from ..observers import (
    CallInfo,
    EndEvent,
    FirstDeltaEvent,
    Observer,
    RequestEvent,
    ResponseEvent,
    RetryEvent,
    attached,
    notify,
)
from . import content_type, framing
from .framing import Decoder
from .state import (
    Exchange,
    OnComplete,
    ParseEvent,
    Service,
    StreamState,
    cut_while_reasoning,
    memory_of,
    str_size,
    too_large,
)
from .timings import Timings
from .values import Message

if TYPE_CHECKING:
    from .prices import PriceTable

__all__ = ["Call"]

logger = logging.getLogger("llmclients")

_RETRIED = (errors.ConnectError, errors.ConnectTimeout, errors.HTTPStatusError)
#: The most of a one-document answer (a model list) read; a longer one is cut.
DOCUMENT_LIMIT = 8 * 1024 * 1024


class Call:
    """One call: its request, attempts, exchange, deltas and end.

    ``operation`` is ``"chat"`` (a streamed reply: :meth:`open`, then
    :meth:`deltas`) or another name for a one-document request
    (:meth:`send`, then :meth:`end`). ``thread`` is the conversation's
    server-side state; each attempt builds its request from its own copy.
    """

    def __init__(
        self,
        service: Service,
        transport: Transport,
        observers: Sequence[Observer],
        *,
        operation: str = "chat",
        messages: Optional[List[Message]] = None,
        model: Optional[str] = None,
        options: Optional[Mapping[str, Any]] = None,
        thread: Optional[Dict[str, Any]] = None,
        on_complete: Optional[OnComplete] = None,
        max_reply_size: Optional[int] = None,
        output_type: Optional[type] = None,
        prices: Optional[PriceTable] = None,
    ) -> None:
        self.service = service
        #: The type the reply is asked for as (``response_format=City``), or None.
        self.output_type = output_type
        self.transport = transport
        self.observers = (*observers, *attached())
        self.info = CallInfo(operation, service.name, model, options or {}, messages or (), transport.secrets)
        self.messages = messages or []
        self.model = model
        self.options = dict(options or {})
        self.on_complete = on_complete
        self.max_reply_size = max_reply_size
        self.prices = prices
        self.budget: Budget = transport.new_budget()
        self.state = StreamState(model)
        #: Choice 0's text deltas so far.
        self.parts: List[str] = []
        self.exchange: Optional[Exchange] = None
        self.attempts = 0
        self.ended = False
        self._pristine = {} if thread is None else thread
        self._request: Optional[Request] = None
        self.headers_at: Optional[float] = None
        self.first_at: Optional[float] = None
        self.ended_at: Optional[float] = None

    # --- opening ---------------------------------------------------------------------

    def open(self) -> Call:
        """Send the request and wait for the response headers; the call ends
        with the error if that fails."""
        try:
            self.exchange = self._exchange()
        except BaseException as exc:
            self.end_with(exc)
            raise
        self.state = StreamState(self.model, self.exchange.thread)
        return self

    def adopt(self, exchange: Exchange) -> Call:
        """Read ``exchange``, opened elsewhere (a body a test made by hand),
        as this call's; it is never opened again."""
        self.exchange = exchange
        self.state = StreamState(self.model, exchange.thread)
        return self

    def send(self, request: Request) -> requests.Response:
        """Send ``request``, retrying as the call's budget allows; the response
        has a status below 400 and its body unread."""
        while True:
            self.attempts += 1
            if not self.info.url:
                self.info.url = redact_url(request.url)
            sent = request
            if self.observers:
                added: Dict[str, str] = {}
                self._notify("on_request", RequestEvent(self.info, request.method, redact_url(request.url), self.attempts, added))
                if added:
                    sent = request.adding_headers(added)
            try:
                response = self.transport.send(sent, self.budget.deadline)
            except _RETRIED as exc:
                if not self._wait_to_retry(request, exc):
                    raise
                continue
            self.headers_at = time.monotonic()
            if self.observers:
                elapsed = self.headers_at - self.info.started
                headers = ResponseEvent(self.info, response.status_code, request_id_of(response.headers), self.attempts, elapsed)
                self._notify("on_response", headers)
            return response

    def fetch_json(self, request: Request, what: str) -> Any:
        """Send ``request`` (as :meth:`send` does) and return its body, one JSON
        document of at most :data:`DOCUMENT_LIMIT` bytes; ``what`` names it in
        the :class:`~llmclients.errors.MalformedStreamError` a cut, undecodable
        or non-JSON body raises."""
        response = self.send(request)
        try:
            body = response.raw.read(DOCUMENT_LIMIT, decode_content=True)
        except Exception as exc:  # a body cut or undecodable: the document is not there
            raise errors.MalformedStreamError(f"the {what} from {request!r} broke off: {exc}") from None
        finally:
            response.close()
        try:
            return json.loads(body)
        except ValueError:  # a longer body is cut, and then is not JSON either
            raise errors.MalformedStreamError(f"{request!r} did not answer with a {what} (not JSON)") from None

    def _exchange(self) -> Exchange:
        thread = copy.deepcopy(self._pristine)
        # build_request may take options out of the dict it gets: each attempt gets its own.
        request = self.service.build_request(self.messages, self.model or "", dict(self.options), thread)
        self._request = request
        if logger.isEnabledFor(logging.DEBUG):
            logger.debug("request body: %s", request.loggable_body())
        try:
            response = self.send(request)
        except errors.HTTPStatusError as exc:
            explained = self.service.explain_status_error(exc)
            if explained is exc:
                raise
            raise explained from exc
        self.budget.deadline.on_delta()  # the idle clock starts with the response
        body = Body(response, self.budget.deadline)
        try:
            whole = content_type.check(response, body, request, self.service, secrets=self.transport.secrets)
        except errors.LLMClientError:
            response.close()
            raise
        if whole:
            return Exchange(response, body, framing.WholeDecoder, thread, content_type.completion_reader(self.service, whole, secrets=self.transport.secrets))
        return Exchange(response, body, framing.DECODERS[request.event_format or self.service.event_format], thread)

    def _reopen(self, failure: errors.LLMClientError) -> bool:
        """Open the exchange again after ``failure`` before the first delta; False if no retry is left."""
        if self._request is None or not self._wait_to_retry(self._request, failure):
            return False
        self.exchange = self._exchange()
        emit = self.state.emit  # an events() reader still reads
        self.state = StreamState(self.model, self.exchange.thread)
        self.state.emit = emit
        return True

    def _wait_to_retry(self, request: Request, failure: errors.LLMClientError) -> bool:
        delay = self.transport.retry_delay(request, self.budget, failure)
        if delay is None:
            return False
        if self.observers:
            reason = f"HTTP {failure.status_code}" if isinstance(failure, errors.HTTPStatusError) else type(failure).__name__
            self._notify("on_retry", RetryEvent(self.info, self.attempts, failure, reason, delay))
        self.transport.sleep(delay)
        return True

    # --- reading -----------------------------------------------------------------------

    @property
    def current(self) -> Exchange:
        """The exchange being read (the last one opened)."""
        if self.exchange is None:
            raise RuntimeError("the call has not been opened")
        return self.exchange

    def deltas(self) -> Iterator[Union[str, Event, Waiting]]:
        """The deltas of the reply (choice 0's text, and the other events once
        ``state.emit`` is on), opening the exchange again while nothing has
        been shown; :data:`WOULD_BLOCK` where a non-blocking read found
        nothing. Any error carries the text so far in ``partial_text``, with
        the call's secrets masked. The call ends when this does."""
        parts = self.parts
        try:
            while True:
                exchange = self.current
                try:
                    yield from self._read(_batches(exchange.body.reads(), exchange.decoder), exchange.parse_event)
                    break
                except (errors.StreamInterruptedError, errors.HTTPStatusError) as exc:
                    # A cut body, or an in-stream error that says what an error status
                    # would (Anthropic's overloaded_error): retried as the status is.
                    if parts or self.state.progress[0]:
                        raise  # deltas were shown: a retry would show them twice
                    exchange.response.close()
                    if not self._reopen(exc):
                        raise
            state = self.state
            self.service.finish(state)
            state.done = True
            self.current.body.release()
            cut_while_reasoning(state, parts)
            if self.on_complete is not None:
                self.on_complete("".join(parts), state)
            self.end("done")
        except errors.LLMClientError as exc:
            # In-stream errors and malformed-event excerpts quote what the server
            # sent, which may echo the key: mask it here, where every one passes.
            mask_error(exc, self.transport.secrets)
            exc.partial_text = "".join(parts)
            self.end_with(exc)
            raise
        except GeneratorExit:
            self.end("closed")
            raise
        except BaseException as exc:
            self.end_with(exc)
            raise
        finally:
            self.current.response.close()

    def _read(
        self, batches: Generator[Union[List[Any], Waiting], None, None], parse_event: Optional[ParseEvent]
    ) -> Iterator[Union[str, Event, Waiting]]:
        state, parts, provider, limit = self.state, self.parts, self.service.name, self.max_reply_size
        parse_event = parse_event or self.service.parse_event
        pending, size_of, progress = state.pending, str_size, state.progress
        deadline = self.budget.deadline
        idle = deadline.timeout.idle is not None
        seen = len(parts) + progress[0]
        # Memory the reply may still take. Its pieces are counted as Python holds
        # them: 1 to 4 bytes a character (a limit in characters would let emoji
        # take four times the memory), and some 50 for each piece (a flood of tiny
        # deltas costs more than their text).
        room = sys.maxsize if limit is None else limit
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
                        if self.first_at is None:
                            self._first_delta()
                        room -= memory_of(pending)
                        if room < 0:
                            del batch, data, text  # the error's traceback keeps this frame
                            raise too_large(limit)
                        if state.emit:
                            yield from pending
                        pending.clear()
                    if text:
                        if self.first_at is None:
                            self._first_delta()
                        cost = size_of(text)
                        room -= cost
                        if room < 0:
                            text = text[: len(text) * (room + cost) // cost]  # what fits: the reply up to the limit
                            if text:
                                parts.append(text)
                                yield text
                            del batch, data, text  # the error's traceback keeps this frame
                            raise too_large(limit)
                        parts.append(text)
                        yield text
                    if state.done:
                        return
                if idle and len(parts) + progress[0] != seen:
                    seen = len(parts) + progress[0]
                    deadline.on_delta()  # deltas came: the idle clock restarts
        finally:
            # The decoder may still hold an event or two of up to 8 MiB each: let
            # them go before the text (as large, after ReplyTooLargeError) is copied.
            batches.close()

    def _first_delta(self) -> None:
        self.first_at = time.monotonic()
        if self.observers:
            self._notify("on_first_delta", FirstDeltaEvent(self.info, self.first_at - self.info.started))

    def timings(self) -> Timings:
        """How long the call has taken so far (:class:`~llmclients.Timings`)."""
        deltas = len(self.parts) + self.state.progress[0]
        return Timings.measured(self.info.started, self.headers_at, self.first_at, self.ended_at, deltas)

    # --- ending ---------------------------------------------------------------------------

    def close(self) -> None:
        """Stop: close the connection; the call ends "closed" unless it has ended."""
        if self.exchange is not None:
            self.exchange.response.close()
        self.end("closed")

    def end_with(self, error: BaseException) -> None:
        """End the call with ``error``."""
        self.end("error", error)

    def end(self, outcome: str, error: Optional[BaseException] = None) -> None:
        """End the call (the first end counts; later ones do nothing)."""
        if self.ended:
            return
        self.ended = True
        self.ended_at = time.monotonic()
        if self.prices:
            from .prices import priced  # here: only a client given prices= needs them

            self.state.usage = priced(self.state.usage, (self.model, self.state.model), self.prices)
        if not self.observers:
            return
        state = self.state
        text = "".join(self.parts)
        response = self.exchange.response if self.exchange is not None else None
        request_id = request_id_of(response.headers) if response is not None else None
        event = EndEvent(
            self.info,
            outcome,
            self.ended_at - self.info.started,
            self.attempts,
            error=error,
            finish_reason=state.finish_reason,
            usage=state.usage,
            response_id=state.response_id,
            request_id=request_id,
            model=state.model,
            text_length=len(text),
            partial_text=text if error is not None else "",
            extra=dict(state.extra),
            reply=state.reply(text, self.service.name, request_id, self.timings()) if self.info.operation == "chat" else None,
        )
        self._notify("on_end", event)

    def _notify(self, method: str, event: Any) -> None:
        notify(self.observers, method, event)

    def __enter__(self) -> Call:
        return self

    def __exit__(self, kind: Optional[type], error: Optional[BaseException], tb: Any) -> None:
        """A one-document call ends here: "done", or with the error that left the block."""
        if error is None:
            self.end("done")
        else:
            if isinstance(error, errors.LLMClientError):
                mask_error(error, self.transport.secrets)
            self.end_with(error)


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


def _excerpt(data: str, limit: int = 120) -> str:
    return repr(excerpt(data, limit + 1))
