"""The body layer: the one owner of a response's socket.

:class:`Body` reads a streamed body promptly (content-decoded, in bounded
steps) and is the only code in llmclients that looks under urllib3's
response: it finds the socket (:func:`socket_of`), de-chunks, inflates, hands
the connection back to the pool, and can :meth:`~Body.interrupt` a read
blocked in another thread.

``requests`` offers no way to read a streamed body that is both prompt and fast:
``iter_lines()`` and ``iter_content(n)`` wait for ``n`` bytes, so on a body
without ``Content-Length`` they hold an event back until the next one arrives,
and ``iter_content(None)`` waits for the body to end. :class:`Body` reads
what the socket has, whatever the framing:

What its reads raise becomes llmclients' errors through the one table in
:mod:`llmclients.failures`.

* close-delimited or sized bodies: urllib3's ``read1`` (one ``recv``, decoded);
* chunked bodies: a de-chunker over the same buffered socket file that urllib3's
  own ``read_chunked`` reads, which takes every chunk already received in one
  pass instead of one chunk per call, and hands the connection back to the pool
  at the end exactly as urllib3 does. Bodies it does not cover (an unusual
  content-encoding, a response that is not backed by a socket) go through
  urllib3's ``stream()``.

A chunked body can also be read without blocking, for an event loop that
watches its socket (:meth:`Body.set_nonblocking`, used by :mod:`llmclients.aio`).
"""

from __future__ import annotations

import http.client
import logging
import select
import socket
import ssl
import threading
import time
import weakref
import zlib
from typing import Any, Callable, Dict, Iterator, List, Optional, Tuple

import requests

from . import errors
from .config import Deadline
from .failures import translate

__all__ = [
    "ERROR_BODY_LIMIT",
    "MAX_INFLATE",
    "READ_SIZE",
    "Body",
    "shutdown",
    "socket_of",
]


logger = logging.getLogger("llmclients")

READ_SIZE = 65536
#: The most of an error status's body that is read (and of a trailer section).
ERROR_BODY_LIMIT = 65536


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


class _ReleaseGuard:
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

#: The most one step of decompression may produce. zlib inflates zeros about
#: 1000-fold, so a compressed body inflated a whole read at a time (64 KiB
#: in, 64 MiB out) fills memory faster than any limit downstream could act.
MAX_INFLATE = 1024 * 1024

_GZIP = 16 + zlib.MAX_WBITS
#: The content-encodings :class:`Body` undoes itself, and the zlib window bits of each.
_INFLATERS = {"gzip": _GZIP, "x-gzip": _GZIP, "deflate": zlib.MAX_WBITS}
#: Content-encodings that :class:`_Dechunker` can pass on, for Body to undo.
_UNDONE_HERE = frozenset(("", "identity", *_INFLATERS))


class _Inflater:
    """Undoes ``gzip`` or ``deflate``, never more than :data:`MAX_INFLATE` bytes at a time.

    A gzip body may hold several members, one after another (``cat a.gz
    b.gz``): each is inflated in turn, and bytes after the first member that
    are not gzip (padding) are ignored, as urllib3 and gzip(1) do. ``deflate``
    is zlib-wrapped by the standard and raw from some servers: both are read.
    """

    def __init__(self, wbits: int) -> None:
        self._wbits = wbits
        self._zlib = zlib.decompressobj(wbits)
        self._begun = False  # zlib took a first read: deflate is no longer retried raw
        self._members = 1

    def inflate(self, chunks: Iterator[bytes]) -> Iterator[bytes]:
        """The inflated bytes of ``chunks``; an empty chunk is passed on at once."""
        for data in chunks:
            if not data:
                yield data
            else:
                yield from self._pieces(data)

    def _pieces(self, data: bytes) -> Iterator[bytes]:
        while True:
            if self._zlib.eof:
                if self._wbits != _GZIP or not data:
                    return  # nothing follows the end of a deflate stream
                self._zlib = zlib.decompressobj(_GZIP)  # the next member
                self._members += 1
            try:
                out = self._zlib.decompress(data, MAX_INFLATE)
            except zlib.error:
                if self._members > 1:
                    return  # trailing garbage after a complete member
                if self._wbits != zlib.MAX_WBITS or self._begun:
                    raise
                self._wbits = -zlib.MAX_WBITS  # deflate without its zlib wrapper
                self._zlib = zlib.decompressobj(self._wbits)
                continue
            self._begun = True
            # Input left over stays in zlib's unconsumed_tail (or unused_data
            # past a member's end); output left over is taken by the next call.
            data = self._zlib.unused_data if self._zlib.eof else self._zlib.unconsumed_tail
            if out:
                yield out
            if not data and len(out) < MAX_INFLATE:
                return


class Body:
    """A response body read promptly: iterate it for bytes (content-decoded,
    never more than :data:`MAX_INFLATE` of them at once).

    Iterating raises :class:`~llmclients.errors.StreamInterruptedError` when
    the body breaks off, :class:`~llmclients.errors.ReadTimeout` when no byte
    arrives in time and :class:`~llmclients.errors.DecodingError` for a bad
    content-encoding. After the protocol's own end (``[DONE]``, say) call
    :meth:`release`: the connection goes back to the pool if the rest of the
    body is already here.

    After :meth:`set_nonblocking` it yields ``b""`` where a read would wait.
    :meth:`interrupt` wakes a read blocked in another thread.
    """

    def __init__(self, response: requests.Response, deadline: Deadline) -> None:
        self._raw = response.raw
        self._deadline = deadline
        wbits = _INFLATERS.get(self._raw.headers.get("Content-Encoding", "").strip().lower())
        #: Undoes gzip and deflate in bounded steps; urllib3 decodes what else it knows.
        self._inflater = _Inflater(wbits) if wbits is not None else None
        self._sock = socket_of(self._raw)
        self._dechunker = (
            _Dechunker(self._raw, self._sock) if self._raw.chunked and _can_dechunk(self._raw) else None
        )
        self._guard: Optional[_ReleaseGuard] = None
        if self._sock is not None:
            # Every hand-back goes through release_conn, urllib3's own included.
            self._guard = self._raw.release_conn = _ReleaseGuard(self._raw)  # type: ignore[method-assign]
        self._nonblocking = False
        self._waiting_since: Optional[float] = None
        #: While a non-blocking read waits: when its timeout is due (monotonic time), or None.
        self.wake_at: Optional[float] = None

    def set_nonblocking(self) -> Optional[socket.socket]:
        """Read without waiting from now on, for an event loop to drive.

        Returns the socket to watch for readability, or None when this body
        cannot be read so (it is not chunked, or not on a socket) and stays
        blocking. Then each read takes what has arrived; where a read would
        wait, the iterator yields ``b""``: iterate again once the socket is
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
        deadline = self._deadline
        check = deadline.enforced_while_reading
        try:
            # Idle and total limits: each read may wait only until the nearest
            # deadline, and bytes that carry no text (pings) do not postpone it.
            for chunk in self._chunks(self._set_read_timeout if check else None):
                if not chunk:
                    self._note_wait()
                elif check:
                    deadline.check()
                yield chunk
        except errors.LLMClientError:
            raise
        except Exception as exc:  # what urllib3, http.client, zlib and the socket raise
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

    def _chunks(self, before_read: Optional[Callable[[], None]] = None) -> Iterator[bytes]:
        chunks = self._received(before_read)
        return chunks if self._inflater is None else self._inflater.inflate(chunks)

    def _received(self, before_read: Optional[Callable[[], None]]) -> Iterator[bytes]:
        """The body as it arrives, still content-encoded if :attr:`_inflater` is to undo it."""
        raw = self._raw
        # urllib3 would inflate a whole read (or chunk) at once: gzip and
        # deflate are left to the inflater.
        decode = self._inflater is None
        if self._dechunker is not None:
            for chunk in self._dechunker.chunks(before_read):
                if chunk:
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


_HEX_DIGITS = b"0123456789abcdefABCDEF"


def _chunk_size(line: bytes) -> int:
    """The size on a chunk-size line: hex digits only (``int(x, 16)`` would also
    take ``0x10``, ``1_0``, ``+10`` and `` 10``), then any chunk extensions."""
    digits = line.split(b";", 1)[0].rstrip(b" \t")  # whitespace may precede an extension
    if not digits or digits.translate(None, _HEX_DIGITS):
        raise errors.MalformedStreamError(f"invalid chunk-size line {bytes(line[:40])!r}")
    return int(digits, 16)


def _can_dechunk(raw: Any) -> bool:
    original = getattr(raw, "_fp", None)
    return (
        isinstance(original, http.client.HTTPResponse)
        and getattr(original, "fp", None) is not None
        and hasattr(original.fp, "read1")
        and getattr(raw, "chunk_left", 0) is None
        and raw.headers.get("Content-Encoding", "").strip().lower() in _UNDONE_HERE
    )


class _Dechunker:
    """Decodes ``Transfer-Encoding: chunked`` from the socket file in bulk
    (the data, still content-encoded)."""

    #: How long :meth:`finish_if_arrived` waits for a last chunk still in flight.
    GRACE = 0.05

    def __init__(self, raw: Any, sock: Optional[socket.socket] = None) -> None:
        self._raw = raw
        self._fp = raw._fp.fp
        #: The connection's socket (None when there is none to wait on).
        self._socket = sock
        #: The socket, once reads are non-blocking; and its timeout before, to restore.
        self.sock: Optional[socket.socket] = None
        self._timeout: Optional[float] = None
        self._drained = False  # the last non-blocking read took all there was
        self._buf = b""
        self._left = 0  # bytes of the current chunk's data not yet read
        self._crlf_due = False  # the CRLF after a chunk's data is not yet read
        self._finished = False
        #: Chunk-size lines seen, and their sizes: a server repeats a few, and
        #: a lookup costs less than checking and converting the hex again.
        self._sizes: Dict[bytes, int] = {}

    def set_nonblocking(self) -> Optional[socket.socket]:
        """Make reads return at once; the socket, or None if there is none to do it on."""
        sock = self._socket
        if self.sock is not None or self._finished or sock is None:
            return self.sock  # already non-blocking (a second call), or cannot be
        self._timeout = sock.gettimeout()
        sock.settimeout(0)
        self.sock = sock
        return sock

    def chunks(self, before_read: Optional[Callable[[], None]] = None) -> Iterator[bytes]:
        """The body's data as it arrives; ``b""`` where a non-blocking read would wait."""
        while not self._finished:
            if self._drained:
                # Nothing more can have arrived unseen: let the caller wait for
                # the socket rather than fail a read (two system calls) first.
                self._drained = False
                yield b""
            if before_read is not None:
                before_read()
            data = self._read()
            if data is None:
                yield b""
                continue
            if not data:
                raise errors.StreamInterruptedError(
                    "the connection closed before the chunked body's last chunk"
                )
            out = self._feed(data)
            if out:
                yield out

    def _read(self) -> Optional[bytes]:
        """What has arrived: b"" at the end of the connection, None if a
        non-blocking read found nothing yet."""
        if self.sock is None:
            return self._fp.read1(READ_SIZE)  # type: ignore[no-any-return]
        try:
            data: bytes = self._fp.read1(READ_SIZE)
        except (ssl.SSLWantReadError, ssl.SSLWantWriteError):
            return None
        # A short read emptied the socket (and the file's buffer, which read1
        # of this size always empties); TLS may still hold decrypted bytes.
        self._drained = 0 < len(data) < READ_SIZE and not getattr(self.sock, "pending", int)()
        if data or isinstance(self.sock, ssl.SSLSocket):
            return data
        # A plain socket's file returns b"" both at the end and when nothing
        # has arrived; a peek tells them apart.
        try:
            return self._read() if self.sock.recv(1, socket.MSG_PEEK) else b""
        except BlockingIOError:
            return None

    def finish_if_arrived(self) -> None:
        """After the protocol's end: read the last chunk if it is here (or
        arrives within a moment; at once if reads are non-blocking), then
        give the connection back."""
        sock = self._socket
        grace = 0 if self.sock is not None else self.GRACE
        while not self._finished and sock is not None:
            pending = getattr(sock, "pending", lambda: 0)()  # bytes TLS already decrypted
            if not pending and not select.select([sock], [], [], grace)[0]:
                return
            data = self._read()
            if not data:
                return
            self._feed(data)

    def _feed(self, data: bytes) -> bytes:
        buf = self._buf + data if self._buf else data
        pieces: List[bytes] = []
        pos, whole_chunks_follow = self._resume(buf, pieces)
        end = len(buf)
        append, find, sizes = pieces.append, buf.find, self._sizes
        while whole_chunks_follow and pos < end:  # whole chunks, the common case, in a tight loop
            eol = find(b"\r\n", pos)
            if eol < 0:
                if end - pos > 1024:
                    raise errors.MalformedStreamError("a chunk-size line is longer than 1 KiB")
                break
            line = buf[pos:eol]
            size = sizes.get(line)
            if size is None:
                size = _chunk_size(line)
                if len(sizes) < 256:
                    sizes[line] = size
            start = eol + 2
            stop = start + size
            if size == 0:
                pos, self._finished = start, True
                break
            if stop + 2 <= end:
                if buf[stop : stop + 2] != b"\r\n":
                    raise errors.MalformedStreamError("a chunk's data is not followed by CRLF")
                append(buf[start:stop])
                pos = stop + 2
            elif stop > end:  # the chunk's data goes on in the next read
                append(buf[start:end])
                self._left, pos = stop - end, end
            else:  # its data is here, its CRLF not yet
                append(buf[start:stop])
                self._crlf_due, pos = True, stop
                break
        self._buf = buf[pos:]
        if self._finished:
            self._finish()
        return b"".join(pieces)

    def _resume(self, buf: bytes, pieces: List[bytes]) -> Tuple[int, bool]:
        """Finish the chunk an earlier read began. Returns where the unread
        bytes of ``buf`` start, and whether whole chunks may follow there."""
        pos = 0
        if self._left:
            take = min(self._left, len(buf))
            pieces.append(buf[:take])
            self._left -= take
            if self._left:
                return len(buf), False
            pos, self._crlf_due = take, True
        if self._crlf_due:
            if len(buf) - pos < 2:
                return pos, False
            if buf[pos : pos + 2] != b"\r\n":
                raise errors.MalformedStreamError("a chunk's data is not followed by CRLF")
            self._crlf_due = False
            pos += 2
        return pos, True

    def _finish(self) -> None:
        """Read the trailer section, then give the connection back as urllib3
        does; if the trailers are cut short (or not here yet, when reads are
        non-blocking), keep it, and it is closed with the response."""
        rest = self._buf
        while rest[:2] != b"\r\n" and b"\r\n\r\n" not in rest:
            more = self._read()
            if not more or len(rest) > ERROR_BODY_LIMIT:
                return
            rest += more
        if self.sock is not None:
            self.sock.settimeout(self._timeout)  # the next request expects a blocking socket
        self._raw._fp.close()
        self._raw.release_conn()
