"""The body layer: the one owner of a response's socket.

:class:`Body` reads a streamed body promptly (content-decoded, in bounded
steps) and is, with its modules, the only code in llmclients that looks
under urllib3's response: it finds the socket (:mod:`.sockets`), de-chunks
(:mod:`.dechunk`), inflates (:mod:`.inflate`), hands the connection back to
the pool, and can :meth:`~Body.interrupt` a read blocked in another thread.

``requests`` offers no way to read a streamed body that is both prompt and fast:
``iter_lines()`` and ``iter_content(n)`` wait for ``n`` bytes, so on a body
without ``Content-Length`` they hold an event back until the next one arrives,
and ``iter_content(None)`` waits for the body to end. :class:`Body` reads
what the socket has, whatever the framing:

What its reads raise becomes llmclients' errors through the one table in
:mod:`llmclients._http.error_table`.

* close-delimited or sized bodies: urllib3's ``read1`` (one ``recv``, decoded);
* chunked bodies: a de-chunker over the same buffered socket file that urllib3's
  own ``read_chunked`` reads, which takes every chunk already received in one
  pass instead of one chunk per call, and hands the connection back to the pool
  at the end exactly as urllib3 does. Bodies it does not cover (an unusual
  content-encoding, a response that is not backed by a socket) go through
  urllib3's ``stream()``.

A chunked body can also be read without blocking, for an event loop that
watches its socket (:meth:`Body.set_nonblocking`, used by :mod:`llmclients.aio`):
where a read would wait, iterating yields :data:`WOULD_BLOCK`, a signal that
stops at :class:`~llmclients._core.stream.Stream`, never data.
"""

from __future__ import annotations

import logging
import socket
import time
from typing import Callable, Iterator, Optional

import requests

from ... import errors
from ..deadline import Deadline
from .dechunk import Dechunker, can_dechunk
from .inflate import INFLATERS, MAX_INFLATE, Inflater
from .sockets import (
    ERROR_BODY_LIMIT,
    READ_SIZE,
    WOULD_BLOCK,
    Read,
    ReleaseGuard,
    Waiting,
    shutdown,
    socket_of,
)

__all__ = [
    "ERROR_BODY_LIMIT",
    "MAX_INFLATE",
    "READ_SIZE",
    "WOULD_BLOCK",
    "Body",
    "Read",
    "Waiting",
    "shutdown",
    "socket_of",
]


logger = logging.getLogger("llmclients")


class Body:
    """A response body read promptly: iterate it, or its :meth:`reads`, for
    bytes (content-decoded, never more than :data:`MAX_INFLATE` of them at once).

    Reading raises :class:`~llmclients.errors.StreamInterruptedError` when
    the body breaks off, :class:`~llmclients.errors.ReadTimeout` when no byte
    arrives in time and :class:`~llmclients.errors.DecodingError` for a bad
    content-encoding. After the protocol's own end (``[DONE]``, say) call
    :meth:`release`: the connection goes back to the pool if the rest of the
    body is already here.

    After :meth:`set_nonblocking`, :meth:`reads` yields :data:`WOULD_BLOCK` where a read would wait.
    :meth:`interrupt` wakes a read blocked in another thread.
    """

    def __init__(self, response: requests.Response, deadline: Deadline) -> None:
        self._raw = response.raw
        self._deadline = deadline
        wbits = INFLATERS.get(self._raw.headers.get("Content-Encoding", "").strip().lower())
        #: Undoes gzip and deflate in bounded steps; urllib3 decodes what else it knows.
        self._inflater = Inflater(wbits) if wbits is not None else None
        self._sock = socket_of(self._raw)
        self._dechunker = (
            Dechunker(self._raw, self._sock) if self._raw.chunked and can_dechunk(self._raw) else None
        )
        self._guard: Optional[ReleaseGuard] = None
        if self._sock is not None:
            # Every hand-back goes through release_conn, urllib3's own included.
            self._guard = self._raw.release_conn = ReleaseGuard(self._raw)  # type: ignore[method-assign]
        self._nonblocking = False
        self._waiting_since: Optional[float] = None
        #: While a non-blocking read waits: when its timeout is due (monotonic time), or None.
        self.wake_at: Optional[float] = None

    def set_nonblocking(self) -> Optional[socket.socket]:
        """Read without waiting from now on, for an event loop to drive.

        Returns the socket to watch for readability, or None when this body
        cannot be read so (it is not chunked, or not on a socket) and stays
        blocking. Then each read takes what has arrived; where a read would
        wait, :meth:`reads` yields :data:`WOULD_BLOCK`: read on once the socket is
        readable, or at :attr:`wake_at`, when the read, idle or total timeout
        is due and the next step raises it.
        """
        sock = self._dechunker.set_nonblocking() if self._dechunker is not None else None
        self._nonblocking = sock is not None
        return sock

    def interrupt(self) -> bool:
        """Wake a read blocked in another thread, which then raises
        :class:`~llmclients.errors.StreamInterruptedError`; thread-safe.

        urllib3's ``HTTPResponse.shutdown()`` contract: the socket is shut down
        (not closed, so its number cannot be reused under the reader), and
        nothing is done once the connection has gone back to the pool, where
        another request may be using it. Returns whether it shut the socket down.
        """
        guard = self._guard
        if guard is None or self._sock is None:
            return False
        with guard.lock:
            if guard.released or guard.interrupted:
                return False
            guard.interrupted = True
            shutdown(self._sock)
        return True

    def __iter__(self) -> Iterator[bytes]:
        """The body's bytes, read blocking (an error status's body, a page sniffed)."""
        for chunk in self.reads():
            if chunk is WOULD_BLOCK:
                raise RuntimeError("a non-blocking body is read with Body.reads()")
            yield chunk

    def reads(self) -> Iterator[Read]:
        """The body's bytes as they arrive, and :data:`WOULD_BLOCK` where a
        non-blocking read found nothing."""
        deadline = self._deadline
        check = deadline.enforced_while_reading
        try:
            # Idle and total limits: each read may wait only until the nearest
            # deadline, and bytes that carry no text (pings) do not postpone it.
            for chunk in self._chunks(self._set_read_timeout if check else None):
                if chunk is WOULD_BLOCK:
                    self._note_wait()
                elif check:
                    deadline.check()
                yield chunk
        except errors.LLMClientError:
            raise
        except Exception as exc:  # what urllib3, http.client, zlib and the socket raise
            # Loaded at the first failure: a body read whole never needs the table.
            from ..error_table import translate

            error = translate(exc, deadline)
            if error is None:
                raise
            raise error from None

    def _set_read_timeout(self) -> None:
        if self._sock is not None and not self._nonblocking:
            timeout = self._deadline.read_timeout()
            if timeout != self._sock.gettimeout():  # mostly unchanged; setting it is a system call
                self._sock.settimeout(timeout)

    def _note_wait(self) -> None:
        """A non-blocking read found nothing: raise the timeout now due, or
        note when it will be (a chunk with data restarts the clock)."""
        now = time.monotonic()
        if self._waiting_since is None:
            self._waiting_since = now
        self.wake_at = self._deadline.expires_at(self._waiting_since)
        if self.wake_at is not None and now >= self.wake_at:
            raise self._deadline.read_timed_out()

    def _chunks(self, before_read: Optional[Callable[[], None]] = None) -> Iterator[Read]:
        chunks = self._received(before_read)
        return chunks if self._inflater is None else self._inflater.inflate(chunks)

    def _received(self, before_read: Optional[Callable[[], None]]) -> Iterator[Read]:
        """The body as it arrives, still content-encoded if :attr:`_inflater` is to undo it."""
        raw = self._raw
        # urllib3 would inflate a whole read (or chunk) at once: gzip and
        # deflate are left to the inflater.
        decode = self._inflater is None
        if self._dechunker is not None:
            for chunk in self._dechunker.chunks(before_read):
                if chunk is not WOULD_BLOCK:
                    self._waiting_since = None
                yield chunk
        elif raw.chunked:
            yield from raw.stream(None, decode_content=decode)
        elif hasattr(type(raw), "read1"):
            read1 = raw.read1
            while True:
                if before_read is not None:
                    before_read()
                data = read1(READ_SIZE, decode_content=decode)
                if not data:
                    return
                yield data
        else:  # urllib3 < 2 has no read1; its stream() waits for a buffer to fill
            yield from raw.stream(READ_SIZE, decode_content=decode)

    def release(self) -> None:
        """Hand the connection back for reuse if the body has fully arrived."""
        try:
            if self._dechunker is not None:
                self._dechunker.finish_if_arrived()
            elif getattr(self._raw, "length_remaining", None) == 0:
                self._raw.drain_conn()
        except Exception:  # reuse is an optimisation: the caller closes the response anyway
            logger.debug("could not keep the connection for reuse", exc_info=True)
