"""The byte-level work every line-based decoder shares: reads joined into
lines, a buffer split into its complete units (events or lines) and decoded.

:class:`LineJoiner` holds back reads without a line end; :func:`complete_units`
splits a buffer at a unit's end (LF only in one decode and one split, CR
anywhere by the regex) and refuses a unit over ``max_size`` bytes with
:class:`~llmclients.errors.OversizedEventError`; :func:`utf8` decodes one
unit strictly. The decoders are in :mod:`llmclients._core.framing` and
:mod:`llmclients._core.sse`.
"""

from __future__ import annotations

import re
from typing import List, Optional, Tuple

from ..errors import DecodingError, OversizedEventError

__all__ = ["MAX_EVENT_SIZE", "LineJoiner", "complete_units", "too_big", "utf8"]


#: The default limit for one line or event: far above any real delta.
MAX_EVENT_SIZE = 8 * 1024 * 1024


def utf8(data: bytes, what: str) -> str:
    """``data`` decoded, or the :class:`~llmclients.errors.DecodingError` that says where it is not UTF-8."""
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise DecodingError(
            f"{what} is not valid UTF-8: byte {data[exc.start : exc.start + 1]!r} at offset {exc.start}"
        ) from None


def too_big(size: int, max_size: int, what: str) -> OversizedEventError:
    """The error for a unit of ``what`` over ``max_size`` bytes."""
    return OversizedEventError(f"{what} exceeds {max_size} bytes (got at least {size})")


class LineJoiner:
    """Holds back reads that hold no line end and joins them to the next that
    does: a long line then costs one join, not one per read."""

    __slots__ = ("_held", "_max_size", "_size", "_what")

    def __init__(self, max_size: int, what: str) -> None:
        self._held: List[bytes] = []
        self._size = 0
        self._max_size = max_size
        self._what = what

    def join(self, data: bytes) -> bytes:
        """``data`` joined to what was held, if it ends a line; else b"" (held)."""
        if b"\n" in data or b"\r" in data:
            if not self._held:
                return data
            self._held.append(data)
            data = b"".join(self._held)
            self._held.clear()
            self._size = 0
            return data
        if data:
            self._held.append(data)
            self._size += len(data)
            if self._size > self._max_size:
                raise too_big(self._size, self._max_size, self._what)
        return b""

    def rest(self) -> bytes:
        """What is held at the end of the body."""
        data = b"".join(self._held)
        self._held.clear()
        return data


def complete_units(
    buf: bytes, pattern: re.Pattern[bytes], separator: str, max_size: int, what: str
) -> Tuple[List[str], bytes, Optional[DecodingError]]:
    """Split ``buf`` into its complete units (events or lines), decoded, and the
    unfinished rest; with the error for the first unit that is not UTF-8.

    A unit, complete or not, over ``max_size`` bytes raises
    :class:`~llmclients.errors.OversizedEventError`. Only a buffer longer than
    that can hold one, so the units are measured only then: a read of ordinary
    events pays one length check, not one per event.

    LF only, the common case, takes one decode and one split for all the units
    of a read; a CR anywhere takes the regex and a decode per unit.
    """
    if len(buf) > max_size:
        check_sizes(buf, pattern, max_size, what)
    if b"\r" in buf:
        units = pattern.split(buf)
        rest = units.pop()
        decoded, bad = decode_each(units, what)
        return decoded, rest, bad
    end = buf.rfind(separator.encode())
    if end < 0:
        return [], buf, None
    rest = buf[end + len(separator) :]
    try:  # decoded in place: a copy of the bytes first would be one more event in memory
        return str(memoryview(buf)[:end], "utf-8").split(separator), rest, None
    except UnicodeDecodeError:
        decoded, bad = decode_each(buf[:end].split(separator.encode()), what)
        return decoded, rest, bad


def check_sizes(buf: bytes, pattern: re.Pattern[bytes], max_size: int, what: str) -> None:
    """Raise if a unit of ``buf`` (its unfinished rest included) is over ``max_size`` bytes.

    A complete unit counts too: an event of 9 MiB whose last piece arrives in
    one read with its end (as an inflater hands over 1 MiB at a time) was never
    held unfinished long enough to be caught by the unfinished bytes' limit.
    """
    start = 0
    for match in pattern.finditer(buf):
        if match.start() - start > max_size:
            raise too_big(match.start() - start, max_size, what)
        start = match.end()
    if len(buf) - start > max_size:
        raise too_big(len(buf) - start, max_size, what)


def decode_each(units: List[bytes], what: str) -> Tuple[List[str], Optional[DecodingError]]:
    """The units up to the first that is not UTF-8, and the error for that one."""
    decoded: List[str] = []
    for unit in units:
        try:
            decoded.append(utf8(unit, what))
        except DecodingError as exc:
            return decoded, exc
    return decoded, None
