"""Undoing ``gzip`` and ``deflate`` in bounded steps (:class:`Inflater`)."""

from __future__ import annotations

import zlib
from typing import Iterator

from .sockets import WOULD_BLOCK, Read

__all__ = ["INFLATERS", "MAX_INFLATE", "Inflater"]


#: The most one step of decompression may produce. zlib inflates zeros about
#: 1000-fold, so a compressed body inflated a whole read at a time (64 KiB
#: in, 64 MiB out) fills memory faster than any limit downstream could act.
MAX_INFLATE = 1024 * 1024

_GZIP = 16 + zlib.MAX_WBITS
#: The content-encodings :class:`Body` undoes itself, and the zlib window bits of each.
INFLATERS = {"gzip": _GZIP, "x-gzip": _GZIP, "deflate": zlib.MAX_WBITS}


class Inflater:
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

    def inflate(self, chunks: Iterator[Read]) -> Iterator[Read]:
        """The inflated bytes of ``chunks``; :data:`WOULD_BLOCK` is passed on at once."""
        for data in chunks:
            if data is WOULD_BLOCK:
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
