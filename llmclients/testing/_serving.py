"""The socket side of an emulator: the threaded HTTP/1.1 server on loopback,
its request handler, the bookkeeping of open connections, and writing to and
pausing on one connection.

It knows nothing of replies or protocols: :class:`~llmclients.testing.Emulator`
(``llmclients/testing/_server.py``) decides what to answer, and hands the
bytes to :func:`send`.
"""

from __future__ import annotations

import select
import socket
import struct
import threading
import time
from email.message import Message
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, Callable, ClassVar, Dict, Set


class ClientGone(Exception):
    """The client closed the connection (or the emulator is stopping)."""


class Dropped(ClientGone):
    """A fault drops the connection: the exchange is recorded as "dropped"
    first and the socket closed after, so a client that sees the close always
    finds the outcome already written."""

    def __init__(self, sock: socket.socket, *, reset: bool) -> None:
        super().__init__()
        self.sock = sock
        self.reset = reset


#: What a handler calls with each request: (handler, method, path, headers, body).
Receiver = Callable[["Handler", str, str, Message, bytes], None]


class Connections:
    """The open connections of one server, and who answers their requests.

    ``lock`` is the emulator's own (it guards its queue and record too), so a
    count read under it agrees with them."""

    def __init__(self, lock: threading.Lock, receive: Receiver) -> None:
        self.lock = lock
        self.receive = receive
        self.idle = threading.Condition(lock)
        self.open: Set[socket.socket] = set()
        #: How many TCP connections the server has accepted.
        self.accepted = 0
        self.stopping = threading.Event()

    def opened(self, sock: socket.socket) -> None:
        with self.lock:
            self.open.add(sock)
            self.accepted += 1

    def closed(self, sock: socket.socket) -> None:
        with self.idle:
            self.open.discard(sock)
            self.idle.notify_all()

    def close_all(self) -> None:
        with self.lock:
            for sock in list(self.open):
                close_socket(sock, reset=False)

    def count(self) -> int:
        with self.lock:
            return len(self.open)

    def wait_idle(self, timeout: float) -> bool:
        """Wait until no connection is open; True if that happened in time."""
        deadline = time.monotonic() + timeout
        with self.idle:
            while self.open:
                left = deadline - time.monotonic()
                if left <= 0:
                    return False
                self.idle.wait(left)
        return True


def close_socket(sock: socket.socket, *, reset: bool) -> None:
    try:
        if reset:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        else:
            sock.shutdown(socket.SHUT_RDWR)
    except OSError:
        pass
    try:
        sock.close()
    except OSError:
        pass


def chunk(data: bytes) -> bytes:
    """``data`` as one HTTP/1.1 chunk."""
    return b"%x\r\n%s\r\n" % (len(data), data)


def send(handler: Handler, data: bytes) -> None:
    if not data:
        return
    try:
        handler.connection.sendall(data)
    except OSError:
        raise ClientGone() from None


def write_head(handler: Handler, status: int, headers: Dict[str, str]) -> None:
    handler.send_response(status)
    for name, value in headers.items():
        handler.send_header(name, value)
    handler.end_headers()
    handler.flush_headers()


def pause(handler: Handler, seconds: float, stopping: threading.Event) -> None:
    """Pause, but notice at once when the client hangs up or the server stops."""
    deadline = time.monotonic() + seconds
    sock = handler.connection
    while not stopping.is_set():
        left = deadline - time.monotonic()
        if left <= 0:
            return
        readable, _, _ = select.select([sock], [], [], min(left, 0.05))
        if readable:
            try:
                # The socket's own bytes, also under TLS (whose recv takes no flags).
                if not socket.socket.recv(sock, 1, socket.MSG_PEEK):
                    raise ClientGone()
            except OSError:
                raise ClientGone() from None
            time.sleep(min(left, 0.01))  # bytes from the client: not a hang-up
    raise ClientGone()


class Server(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True
    # socketserver's backlog of 5 drops the SYNs of simultaneous connects
    # beyond it, and the clients retry only a second later.
    request_queue_size = 256


class IPv6Server(Server):
    address_family = socket.AF_INET6


class Handler(BaseHTTPRequestHandler):
    """Reads each request and passes it on; an emulator subclasses it with its :class:`Connections`."""

    connections: ClassVar[Connections]
    protocol_version = "HTTP/1.1"
    # Without TCP_NODELAY each small event can wait ~40 ms for the client's delayed ACK.
    disable_nagle_algorithm = True
    server_version = "llmclients-emulator"
    sys_version = ""

    def setup(self) -> None:
        super().setup()
        self.connections.opened(self.connection)

    def finish(self) -> None:
        try:
            super().finish()
        except OSError:
            pass
        self.connections.closed(self.connection)

    def handle_one_request(self) -> None:
        try:
            super().handle_one_request()
        except OSError:
            self.close_connection = True

    def _handle(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length) if length else b""
        self.connections.receive(self, self.command, self.path, self.headers, body)

    do_GET = do_POST = do_PUT = do_DELETE = _handle

    def log_message(self, format: str, *args: Any) -> None:  # quiet: tests read .requests
        pass
