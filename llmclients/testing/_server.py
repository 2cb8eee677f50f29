"""A real HTTP/1.1 server on loopback that plays scripted replies.

:class:`Emulator` is the machinery every provider's emulator shares: a
threaded server on 127.0.0.1 (or ``::1``), a queue of :class:`Reply` scripts,
the body's framing (chunked, close-delimited or sized), pacing, gzip, faults,
and a record of every request received (:class:`RecordedRequest`). A
subclass supplies the protocol: which requests the real server accepts
(:class:`Rejection`), and the bytes of each event. The server, its handler
and the socket writes are in ``_serving``.
"""

from __future__ import annotations

import gzip as _gzip
import json
import logging
import ssl
import threading
import time
import zlib
from collections import deque
from email.message import Message as _Headers
from http.server import ThreadingHTTPServer
from typing import Any, ClassVar, Deque, Dict, Iterable, List, Optional, Sequence, Tuple

from ._exchange_log import log_event, log_reply, log_request, summary
from ._replies import (
    FRAMINGS,
    DeltaEvent,
    RecordedRequest,
    Rejection,
    Reply,
    ScriptError,
    cut_events,
    failure,
)
from ._serving import (
    ClientGone,
    Connections,
    Dropped,
    Handler,
    IPv6Server,
    Server,
    chunk,
    close_socket,
    pause,
    send,
    write_head,
)
from .wire import WireSample

__all__ = ["FRAMINGS", "DeltaEvent", "Dropped", "Emulator", "Handler", "RecordedRequest", "Rejection", "Reply"]

#: Each request and reply, one line each at INFO (``llmclients emulate`` shows them);
#: bodies and events at DEBUG.
log = logging.getLogger("llmclients.testing")

#: A tool call for :meth:`Emulator.reply_with`: (id, function name, arguments as a JSON string).
ToolCallScript = Tuple[str, str, str]


class Emulator:
    """Base class of the protocol emulators; use one of the subclasses.

    Start it as a context manager (or with :meth:`start` / :meth:`stop`); point
    a client at :attr:`base_url`; script replies with :meth:`enqueue`; inspect
    :attr:`requests`. Requests beyond the queue get :attr:`default_reply` if
    one is set, else the emulator's echo of the prompt, unless it is
    ``strict`` (the pytest fixtures' emulators are): then, once anything was
    enqueued, a request with no scripted reply left is answered 500 saying
    so and recorded as "unscripted". :meth:`assert_all_replies_used` checks
    that every enqueued reply was asked for.
    """

    #: Registry name of the provider this emulator stands in for.
    provider: ClassVar[str] = ""
    content_type: ClassVar[str] = "application/octet-stream"
    #: The bytes of one keep-alive, or b"" if the protocol has none.
    keepalive_bytes: ClassVar[bytes] = b""
    #: Path under the server root that clients use as ``base_url``.
    base_path: ClassVar[str] = ""
    #: What the provider's stream looks like on the wire, for bodies built by
    #: hand (every subclass says: the tests of every provider read it).
    wire: ClassVar[WireSample]

    def __init__(
        self,
        *,
        host: str = "127.0.0.1",
        port: int = 0,
        default_reply: Optional[Reply] = None,
        ssl_context: Optional[ssl.SSLContext] = None,
        strict: bool = False,
    ) -> None:
        if host not in ("127.0.0.1", "::1", "localhost"):
            raise ValueError("emulators listen on loopback only")
        self.host = host
        self.port = port
        self.default_reply = default_reply
        #: Once a reply was enqueued, answer only from the script (see the class's docstring).
        self.strict = strict
        self._enqueued = 0
        #: With a server-side context (its certificate loaded), the emulator speaks HTTPS.
        self.ssl_context = ssl_context
        self.requests: List[RecordedRequest] = []
        #: perf_counter() after each event was written, for delivery measurements.
        self.write_times: List[float] = []
        self._queue: Deque[Reply] = deque()
        self._lock = threading.Lock()
        self._connections = Connections(self._lock, self._receive)
        self._server: Optional[ThreadingHTTPServer] = None
        self._thread: Optional[threading.Thread] = None

    # --- life cycle ---------------------------------------------------------------

    def start(self) -> Emulator:
        if self._server is not None:
            return self
        handler = type("Handler", (Handler,), {"connections": self._connections})
        server_class = IPv6Server if ":" in self.host else Server
        self._server = server_class((self.host, self.port), handler)
        self.port = self._server.server_address[1]
        if self.ssl_context is not None:
            # The handshake happens on the connection's first read, in its own
            # thread, not in accept() where it would hold up the others.
            self._server.socket = self.ssl_context.wrap_socket(
                self._server.socket, server_side=True, do_handshake_on_connect=False
            )
        self._thread = threading.Thread(
            target=self._server.serve_forever,
            kwargs={"poll_interval": 0.05},
            name=f"llmclients-emulator-{self.provider}",
            daemon=True,
        )
        self._thread.start()
        return self

    def stop(self) -> None:
        """Stop serving and close every open connection; returns within about a second."""
        if self._server is None:
            return
        self._connections.stopping.set()
        self._server.shutdown()
        self._connections.close_all()
        self._server.server_close()
        assert self._thread is not None
        self._thread.join(timeout=2)
        self._server = None

    def __enter__(self) -> Emulator:
        return self.start()

    def __exit__(self, *exc_info: object) -> None:
        self.stop()

    @property
    def url(self) -> str:
        """The server's root URL."""
        host = f"[{self.host}]" if ":" in self.host else self.host
        scheme = "https" if self.ssl_context is not None else "http"
        return f"{scheme}://{host}:{self.port}"

    @property
    def base_url(self) -> str:
        """What to pass as a client's ``base_url``."""
        return self.url + self.base_path

    # --- scripting and inspection -----------------------------------------------------

    def enqueue(self, *replies: Reply) -> None:
        """The next requests get these replies, in order."""
        with self._lock:
            self._queue.extend(replies)
            self._enqueued += len(replies)

    @property
    def unused_replies(self) -> List[Reply]:
        """The enqueued replies no request has taken yet."""
        with self._lock:
            return list(self._queue)

    def assert_all_replies_used(self) -> None:
        """Raise ``AssertionError`` if an enqueued reply was never asked for
        (as ``responses``' ``assert_all_requests_are_fired`` does)."""
        unused = self.unused_replies
        if unused:
            raise AssertionError(
                f"{len(unused)} of the {self._enqueued} replies scripted for the {self.provider} emulator "
                f"{'was' if len(unused) == 1 else 'were'} never asked for: {', '.join(map(summary, unused))}"
            )

    @property
    def last_request(self) -> RecordedRequest:
        return self.requests[-1]

    @property
    def open_connections(self) -> int:
        return self._connections.count()

    @property
    def connections_accepted(self) -> int:
        """How many TCP connections the server has accepted."""
        return self._connections.accepted

    def wait_idle(self, timeout: float = 5.0) -> bool:
        """Wait until no client connection is open; True if that happened in time.

        The default leaves room for a loaded machine: it returns as soon as
        the connections are closed, and only a test that fails waits it out."""
        return self._connections.wait_idle(timeout)

    # --- what a protocol subclass provides ------------------------------------------

    def check(self, request: RecordedRequest) -> None:
        """Raise :class:`Rejection` for a request the real server would refuse."""

    def events(self, reply: Reply, request: RecordedRequest) -> Iterable[bytes]:
        """The body of a normal reply, one event per item."""
        raise NotImplementedError

    def reply_headers(self, reply: Reply, request: RecordedRequest) -> Dict[str, str]:
        return {"Content-Type": self.content_type}

    def make_default_reply(self, request: RecordedRequest) -> Reply:
        """The reply to a request when nothing is queued."""
        return Reply(text="Hello from the llmclients emulator.", delay=0.02)

    def reply_with(
        self, *, reasoning: Optional[str] = None, tool_calls: Sequence[ToolCallScript] = (), **fields: Any
    ) -> Reply:
        """A :class:`Reply` (``fields`` are its fields) that also streams
        ``reasoning`` and ``tool_calls`` ((id, name, arguments as JSON) each) as
        this protocol does (:meth:`rich_reply`); ``ValueError`` from an
        emulator that cannot."""
        if not reasoning and not tool_calls:
            return Reply(**fields)
        text = Reply(text=fields.pop("text", None), deltas=fields.pop("deltas", None)).pieces()
        thinking = Reply(text=reasoning).pieces() if reasoning else []
        return self.rich_reply(text, thinking, list(tool_calls), fields)

    def rich_reply(
        self, text: List[str], reasoning: List[str], tool_calls: List[ToolCallScript], fields: Dict[str, Any]
    ) -> Reply:
        """For :meth:`reply_with`: the reply whose events stream ``reasoning``,
        ``text`` (pieces each) and ``tool_calls`` as this protocol does, with
        the other :class:`Reply` ``fields``. An emulator whose protocol carries
        them overrides it; this one raises ``ValueError``."""
        raise ValueError(f"the {self.provider} emulator cannot script reasoning or tool calls this way")

    def fixed_reply(self, request: RecordedRequest) -> Optional[Reply]:
        """The reply to a request that the queue does not script (a model
        list), or None: such requests leave the queued replies to the others."""
        return None

    # --- serving ------------------------------------------------------------------------

    def _next_reply(self, request: RecordedRequest) -> Tuple[Reply, str]:
        """The reply to ``request`` and where it came from, for the log."""
        with self._lock:
            if self._queue:
                number = self._enqueued - len(self._queue) + 1
                return self._queue.popleft(), f"scripted reply {number} of {self._enqueued}"
            unscripted = self.strict and self._enqueued and self.default_reply is None
            enqueued = self._enqueued
        if self.default_reply is not None:
            return self.default_reply, "default reply"
        if not unscripted:
            return self.make_default_reply(request), "echo"
        request.outcome = "unscripted"
        return failure(
            self.provider,
            "unscripted_request",
            f"no scripted reply left for {request.method} {request.path} (all {enqueued} enqueued replies "
            "were used). The emulator is strict, as the pytest fixtures' are: enqueue a Reply for every "
            "request, or set strict=False to answer the rest with the echo.",
        ), "unscripted"

    def _receive(self, handler: Handler, method: str, path: str, headers: _Headers, body: bytes) -> None:
        request = RecordedRequest(method, path, headers, body)
        if len(body) < request.expected_length:
            # The client went away between the head and the end of the body: record it, answer nothing.
            request.outcome = "incomplete"
            handler.close_connection = True
            with self._lock:
                self.requests.append(request)
            log_request(log, request, len(self.requests))
            log_reply(log, request, len(self.requests), None, "not answered", 0.0)
            request.ended.set()
            return
        self._serve(handler, request)

    def _serve(self, handler: Handler, request: RecordedRequest) -> None:
        with self._lock:
            self.requests.append(request)
            number = len(self.requests)
        started = time.monotonic()
        log_request(log, request, number)
        try:
            self.check(request)
            fixed = self.fixed_reply(request)
            reply, source = (fixed, "fixed reply") if fixed else self._next_reply(request)
        except Rejection as rejection:
            reply, source = rejection.reply, "rejected"
            request.outcome = "rejected"
        try:
            self._answer(handler, request, reply)
        except Dropped as dropped:
            request.outcome = "dropped"
            handler.close_connection = True
            close_socket(dropped.sock, reset=dropped.reset)
        except ClientGone:
            request.outcome = "client closed"
            handler.close_connection = True
        finally:
            log_reply(log, request, number, reply, source, time.monotonic() - started)
            request.ended.set()

    def _answer(self, handler: Handler, request: RecordedRequest, reply: Reply) -> None:
        if reply.close_before_headers:
            raise Dropped(handler.connection, reset=reply.reset)
        if reply.status != 200 or (reply.body is not None and reply.raw is None):
            self._send_plain(handler, reply)
        else:
            try:
                self._send_stream(handler, reply, request)
            except ScriptError as mistake:
                request.outcome = "bad script"
                self._send_plain(handler, failure(self.provider, "bad_script", str(mistake)))
        if request.outcome == "pending":
            request.outcome = "complete"

    def _send_plain(self, handler: Handler, reply: Reply) -> None:
        body = reply.body
        content_type = "text/plain; charset=utf-8"
        if isinstance(body, (dict, list)):
            body, content_type = json.dumps(body).encode(), "application/json"
        elif isinstance(body, str):
            body = body.encode()
        body = body or b""
        headers = {"Content-Type": content_type, "Content-Length": str(len(body)), **reply.headers}
        self._write_head(handler, reply.status, headers, reply)
        self._write(handler, body, reply)

    def _send_stream(self, handler: Handler, reply: Reply, request: RecordedRequest) -> None:
        headers = self.reply_headers(reply, request)
        if reply.gzip:
            headers["Content-Encoding"] = "gzip"
        events: Iterable[bytes]
        if reply.raw is None:
            events = self.events(reply, request)
        else:
            events = [reply.raw] if isinstance(reply.raw, bytes) else list(reply.raw)
        cut: Optional[bytes] = None  # with a cut in the reply's units: the bytes before the drop
        whole = events
        if reply.cuts_in_units():
            whole = list(events)
            events, cut = cut_events(reply, whole)
        if reply.framing == "length":
            body = b"".join(whole)
            if reply.gzip:
                body = _gzip.compress(body)
            headers["Content-Length"] = str(len(body))
            if cut is not None:  # what comes before the cut, in one write (compressed as far as it goes)
                cut = b"".join(events) + cut
                if reply.gzip:
                    compressor = zlib.compressobj(wbits=16 + zlib.MAX_WBITS)
                    cut = compressor.compress(cut) + compressor.flush(zlib.Z_SYNC_FLUSH)
            events, compress = ([body] if cut is None else []), None
        else:
            compress = zlib.compressobj(wbits=16 + zlib.MAX_WBITS) if reply.gzip else None
        if reply.framing == "chunked":
            headers["Transfer-Encoding"] = "chunked"
        elif reply.framing == "close":
            headers["Connection"] = "close"
            handler.close_connection = True
        headers.update(reply.headers)
        self._write_head(handler, 200, headers, reply)
        sent = [0]
        count = 0
        for event in events:
            if count == reply.stall_after and reply.stall:
                self._stall(handler, reply, compress, sent)
            if count and reply.delay:
                self._sleep(handler, reply.delay)
            self._emit(handler, reply, event, compress, sent)
            count += 1
        if cut is not None:
            self._emit(handler, reply, cut, compress, sent)
            raise Dropped(handler.connection, reset=reply.reset)
        if reply.stall and reply.stall_after >= count:
            self._stall(handler, reply, compress, sent)
        tail = compress.flush() if compress else b""
        if reply.framing == "chunked":
            tail = (chunk(tail) if tail else b"") + b"0\r\n\r\n"
        self._write(handler, tail, reply, sent)

    def _emit(self, handler: Handler, reply: Reply, event: bytes, compress: Any, sent: List[int]) -> None:
        if event and log.isEnabledFor(logging.DEBUG):
            log_event(log, event)
        if compress is not None:
            event = compress.compress(event) + compress.flush(zlib.Z_SYNC_FLUSH)
        if not event:
            return
        if reply.framing == "chunked":
            event = chunk(event)
        self._write(handler, event, reply, sent)
        self.write_times.append(time.perf_counter())

    def _stall(self, handler: Handler, reply: Reply, compress: Any, sent: List[int]) -> None:
        deadline = time.monotonic() + reply.stall
        while not self._connections.stopping.is_set():
            left = deadline - time.monotonic()
            if left <= 0:
                return
            step = min(left, reply.keepalive or left)
            self._sleep(handler, step)
            if reply.keepalive and self.keepalive_bytes and time.monotonic() < deadline:
                self._emit(handler, reply, self.keepalive_bytes, compress, sent)

    def _sleep(self, handler: Handler, seconds: float) -> None:
        """Pause, but notice at once when the client hangs up or the server stops."""
        pause(handler, seconds, self._connections.stopping)

    def _write_head(self, handler: Handler, status: int, headers: Dict[str, str], reply: Reply) -> None:
        if reply.head_delay:
            self._sleep(handler, reply.head_delay)
        write_head(handler, status, headers)

    def _write(self, handler: Handler, data: bytes, reply: Reply, sent: Optional[List[int]] = None) -> None:
        counter = sent if sent is not None else [0]
        if reply.drop_after is not None and counter[0] + len(data) >= reply.drop_after:
            data = data[: max(0, reply.drop_after - counter[0])]
            send(handler, data)
            raise Dropped(handler.connection, reset=reply.reset)
        send(handler, data)
        counter[0] += len(data)
