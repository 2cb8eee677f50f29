"""What the body layer finds under urllib3's response: its socket
(:func:`socket_of`), the one way to wake a read blocked on it
(:func:`shutdown`), the guard that keeps waking and pooling apart
(:class:`ReleaseGuard`), and what one read gives (:data:`Read`).
"""

from __future__ import annotations

import enum
import socket
import threading
import weakref
from typing import Any, Optional, Union

__all__ = [
    "ERROR_BODY_LIMIT",
    "READ_SIZE",
    "WOULD_BLOCK",
    "Read",
    "ReleaseGuard",
    "Waiting",
    "shutdown",
    "socket_of",
]

#: The bytes one read of the socket asks for.
READ_SIZE = 65536
#: The most of an error status's body that is read (and of a trailer section).
ERROR_BODY_LIMIT = 65536


class Waiting(enum.Enum):
    """The type of :data:`WOULD_BLOCK`."""

    WOULD_BLOCK = "would block"


#: What a non-blocking :class:`Body` yields where a read would wait: not bytes,
#: so that no decoder can take it for data. :class:`~llmclients._core.stream.Stream`
#: turns it into ``BlockingIOError``; it never leaves llmclients.
WOULD_BLOCK = Waiting.WOULD_BLOCK

#: What iterating a :class:`Body` yields.
Read = Union[bytes, Waiting]


def socket_of(raw: Any) -> Optional[socket.socket]:
    """The socket an urllib3 response reads from, or None (a response not on a socket)."""
    # http.client's buffered socket file; still there for close-delimited bodies,
    # whose connection http.client has already detached from the socket.
    fp = getattr(getattr(raw, "_fp", None), "fp", None)
    sock = getattr(getattr(fp, "raw", None), "_sock", None)
    if not isinstance(sock, socket.socket):
        sock = getattr(getattr(raw, "_connection", None), "sock", None)
    return sock if isinstance(sock, socket.socket) else None


def shutdown(sock: socket.socket) -> None:
    """Wake whatever thread is blocked on ``sock``; the socket stays open."""
    # The plain socket method, also for an SSLSocket: SSLSocket.shutdown() drops
    # its SSL object, which the reading thread may be using at this moment.
    try:
        socket.socket.shutdown(sock, socket.SHUT_RDWR)
    except OSError:  # already closed or never connected: nothing left to wake
        pass


class ReleaseGuard:
    """Takes the place of ``release_conn`` on one urllib3 response, so that
    handing the connection back to the pool and :meth:`Body.interrupt` exclude
    each other: an interrupt must never shut down a socket that another
    request has just taken from the pool. It holds the response weakly (a
    strong reference from the response's own ``__dict__`` would be a cycle)."""

    __slots__ = ("__weakref__", "interrupted", "lock", "raw", "released")

    def __init__(self, raw: Any) -> None:
        self.raw = weakref.ref(raw)
        self.lock = threading.Lock()
        self.released = False
        self.interrupted = False

    def __call__(self) -> None:
        raw = self.raw()
        with self.lock:
            interrupted = self.interrupted
            self.released = not interrupted
        if raw is None:
            return
        connection = getattr(raw, "_connection", None)
        if interrupted and connection is not None:
            connection.close()  # a shut-down socket must not be reused
        type(raw).release_conn(raw)
