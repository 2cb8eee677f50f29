"""Decoding ``Transfer-Encoding: chunked`` from the socket file in bulk (:class:`Dechunker`)."""

from __future__ import annotations

import http.client
import select
import socket
import ssl
from typing import Any, Callable, Dict, Iterator, List, Optional, Tuple

from ... import errors
from .inflate import INFLATERS
from .sockets import ERROR_BODY_LIMIT, READ_SIZE, WOULD_BLOCK, Read

__all__ = ["Dechunker", "can_dechunk"]

#: Content-encodings that :class:`Dechunker` can pass on, for the body to undo.
_UNDONE_HERE = frozenset(("", "identity", *INFLATERS))

_HEX_DIGITS = b"0123456789abcdefABCDEF"


def _chunk_size(line: bytes) -> int:
    """The size on a chunk-size line: hex digits only (``int(x, 16)`` would also
    take ``0x10``, ``1_0``, ``+10`` and `` 10``), then any chunk extensions."""
    digits = line.split(b";", 1)[0].rstrip(b" \t")  # whitespace may precede an extension
    if not digits or digits.translate(None, _HEX_DIGITS):
        raise errors.MalformedStreamError(f"invalid chunk-size line {bytes(line[:40])!r}")
    return int(digits, 16)


def can_dechunk(raw: Any) -> bool:
    original = getattr(raw, "_fp", None)
    return (
        isinstance(original, http.client.HTTPResponse)
        and getattr(original, "fp", None) is not None
        and hasattr(original.fp, "read1")
        and getattr(raw, "chunk_left", 0) is None
        and raw.headers.get("Content-Encoding", "").strip().lower() in _UNDONE_HERE
    )


class Dechunker:
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
        #: Whether :meth:`_whole_chunks` may find chunks with no CRLF in their data.
        self._bulk = True

    def set_nonblocking(self) -> Optional[socket.socket]:
        """Make reads return at once; the socket, or None if there is none to do it on."""
        sock = self._socket
        if self.sock is not None or self._finished or sock is None:
            return self.sock  # already non-blocking (a second call), or cannot be
        self._timeout = sock.gettimeout()
        sock.settimeout(0)
        self.sock = sock
        return sock

    def chunks(self, before_read: Optional[Callable[[], None]] = None) -> Iterator[Read]:
        """The body's data as it arrives; :data:`WOULD_BLOCK` where a non-blocking read would wait."""
        while not self._finished:
            if self._drained:
                # Nothing more can have arrived unseen: let the caller wait for
                # the socket rather than fail a read (two system calls) first.
                self._drained = False
                yield WOULD_BLOCK
            if before_read is not None:
                before_read()
            data = self._read()
            if data is None:
                yield WOULD_BLOCK
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
        if whole_chunks_follow and self._bulk:
            pos = self._whole_chunks(buf, pos, pieces)
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

    def _whole_chunks(self, buf: bytes, pos: int, pieces: List[bytes]) -> int:
        """Take the whole chunks from ``pos`` at once, where each has a size
        line seen before and no CRLF in its data (one event a chunk, as servers
        write them): ``buf`` split at CRLF, and the pieces accepted only if each
        data piece is as long as its size line says, which makes it exactly
        that chunk's data. Returns where the rest starts (``pos``, having taken
        none, for a size not seen yet, the last chunk, or data holding a CRLF).
        """
        parts = buf[pos:].split(b"\r\n")
        count = (len(parts) - 1) // 2 * 2  # the (size line, data) pairs each followed by CRLF
        if count < 4:
            return pos
        sizes = list(map(self._sizes.get, parts[0:count:2]))
        if 0 in sizes or None in sizes:
            return pos  # the last chunk, or a size the loop must check first
        if sizes != list(map(len, parts[1:count:2])):
            self._bulk = False  # data with CRLF in it (SSE with CRLF line ends): every read would miss
            return pos
        pieces.extend(parts[1:count:2])
        return pos + sum(map(len, parts[:count])) + 2 * count

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
