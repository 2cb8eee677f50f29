"""Decoders: a body's bytes, in chunks split anywhere, to the protocol's events.

Each decoder is a function ``decode(chunks) -> Iterator[str]`` over the byte
chunks a :class:`llmclients.body.Body` yields:

* :func:`iter_sse` — Server-Sent Events: the ``data`` of each message event as
  a ``str``, an :class:`SSEEvent` for an event of any other type;
* :func:`iter_ndjson` — one JSON document per line; yields the lines;
* :func:`iter_text` — a raw text body; yields the text as it arrives;
* :func:`iter_whole` — a body that is one document (a non-streamed JSON
  answer); yields it once, at the end.

All of them decode UTF-8 strictly and incrementally (a character split across
reads is joined, invalid bytes raise :class:`~llmclients.errors.DecodingError`),
accept CR, LF and CRLF line ends, and refuse a line or event larger than
``max_size`` bytes with :class:`~llmclients.errors.OversizedEventError` instead
of buffering without bound.

An empty chunk means that a non-blocking read found nothing yet: each decoder
passes it on at once as an empty event (no event is ever empty otherwise), so
that whoever drives the stream can wait for the socket.
"""

from __future__ import annotations

import codecs
import json
import re
from typing import Any, Iterable, Iterator, List, NamedTuple, Optional, Tuple, Union

from .errors import DecodingError, OversizedEventError

__all__ = [
    "MAX_EVENT_SIZE",
    "SSEEvent",
    "SSEItem",
    "iter_ndjson",
    "iter_sse",
    "iter_text",
    "iter_whole",
    "load_json",
]


#: The default limit for one line or event: far above any real delta.
MAX_EVENT_SIZE = 8 * 1024 * 1024


# An event ends at an empty line. Line ends are CRLF, LF or a lone CR; "\r(?!\n)"
# keeps a CRLF from being read as CR + LF.
_EVENT_END = re.compile(rb"(?:\r\n|\r(?!\n)|\n)(?:\r\n|\r(?!\n)|\n)")
_LINE_END = re.compile(rb"\r\n|\r(?!\n)|\n")


_raw_decode = json.JSONDecoder().raw_decode
_BOM = b"\xef\xbb\xbf"


class SSEEvent(NamedTuple):
    """A Server-Sent Event whose type is not the default ``message``: an
    ``event: error`` block, say, or llama.cpp's ``error: {...}`` line (type
    ``"error"``; the specification would ignore that field, but it is how
    llama.cpp reports a failure)."""

    event: str
    data: str


#: What :func:`iter_sse` yields: a message event's data, or another event.
SSEItem = Union[str, SSEEvent]


def load_json(data: str) -> Any:
    """``json.loads`` for one event's data, minus the layers that cost per event.

    Anything but a lone JSON document (leading space, trailing text) takes
    ``json.loads``, which accepts or rejects it exactly as it always does.
    """
    try:
        value, end = _raw_decode(data)
        if end == len(data):
            return value
    except ValueError:
        pass
    return json.loads(data)


def _utf8(data: bytes, what: str) -> str:
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise DecodingError(
            f"{what} is not valid UTF-8: byte {data[exc.start : exc.start + 1]!r} at offset {exc.start}"
        ) from None


def _too_big(size: int, max_size: int, what: str) -> OversizedEventError:
    return OversizedEventError(f"{what} exceeds {max_size} bytes (got at least {size})")


def _joined_at_line_ends(chunks: Iterable[bytes], max_size: int, what: str) -> Iterator[bytes]:
    """``chunks``, with those that hold no line end held back and joined to the
    next that does: a long line then costs one join, not one per read."""
    held: List[bytes] = []
    size = 0
    for chunk in chunks:
        if not chunk:
            yield chunk
        elif b"\n" in chunk or b"\r" in chunk:
            if not held:
                yield chunk
                continue
            # Handed on with no name here left holding it: a line of up to
            # max_size must not stay in memory while the next one arrives.
            held.append(chunk)
            held[:] = [b"".join(held)]
            size = 0
            yield held.pop()
        else:
            held.append(chunk)
            size += len(chunk)
            if size > max_size:
                raise _too_big(size, max_size, what)
    if held:
        yield b"".join(held)


def _complete_units(
    buf: bytes, pattern: re.Pattern[bytes], separator: str, what: str
) -> Tuple[List[str], bytes, Optional[DecodingError]]:
    """Split ``buf`` into its complete units (events or lines), decoded, and the
    unfinished rest; with the error for the first unit that is not UTF-8.

    LF only, the common case, takes one decode and one split for all the units
    of a read; a CR anywhere takes the regex and a decode per unit.
    """
    if b"\r" in buf:
        units = pattern.split(buf)
        rest = units.pop()
        decoded, bad = _decode_each(units, what)
        return decoded, rest, bad
    end = buf.rfind(separator.encode())
    if end < 0:
        return [], buf, None
    rest = buf[end + len(separator) :]
    try:  # decoded in place: a copy of the bytes first would be one more event in memory
        return str(memoryview(buf)[:end], "utf-8").split(separator), rest, None
    except UnicodeDecodeError:
        decoded, bad = _decode_each(buf[:end].split(separator.encode()), what)
        return decoded, rest, bad


def _decode_each(units: List[bytes], what: str) -> Tuple[List[str], Optional[DecodingError]]:
    """The units up to the first that is not UTF-8, and the error for that one."""
    decoded: List[str] = []
    for unit in units:
        try:
            decoded.append(_utf8(unit, what))
        except DecodingError as exc:
            return decoded, exc
    return decoded, None


def iter_sse(chunks: Iterable[bytes], max_size: int = MAX_EVENT_SIZE) -> Iterator[SSEItem]:
    """Yield each Server-Sent Event: a message event's ``data`` as a ``str``,
    any other event as an :class:`SSEEvent`.

    The rules are the WHATWG ones: one leading BOM is dropped; lines end with
    CR, LF or CRLF; ``data`` lines join with newlines; comments, ``id`` and
    ``retry`` carry nothing for us; an event whose data is empty is not
    dispatched, nor is one cut off by the end of the body. The one shape that
    carries nearly every token, a single ``data: ...`` line, is read directly;
    every other event is parsed by sseclient-py. Protocol markers such as
    ``[DONE]`` are the provider's to read.
    """
    buf = b""
    at_start = True
    for chunk in _joined_at_line_ends(chunks, max_size, "an SSE event"):
        if not chunk:
            yield ""
            continue
        if at_start:
            chunk, at_start = buf + chunk, False
            buf = b""
            if len(chunk) < len(_BOM) and _BOM.startswith(chunk):
                buf, at_start = chunk, True  # a BOM split across reads
                continue
            if chunk.startswith(_BOM):
                chunk = chunk[len(_BOM) :]
        blocks, buf, bad = _complete_units(buf + chunk if buf else chunk, _EVENT_END, "\n\n", "an SSE event")
        chunk = b""  # let this read go before the next arrives (see _joined_at_line_ends)
        if len(buf) > max_size:
            raise _too_big(len(buf), max_size, "an SSE event")
        for block in blocks:
            if block[:6] == "data: " and "\n" not in block and "\r" not in block:
                if len(block) > 6:  # an event with empty data carries nothing
                    yield block[6:]
                continue
            event = _parse_event(block.encode())
            if event:
                yield event
        if bad is not None:
            raise bad
        blocks, block = [], ""  # and its events
    # OpenAI-style servers that close right after `data: [DONE]` without its
    # blank line are common enough to forgive; any other cut event is lost.
    if _parse_event(buf) == "[DONE]":
        yield "[DONE]"


def _parse_event(block: bytes) -> Optional[SSEItem]:
    """One event block as sseclient-py parses it; None (or "") if it has no data."""
    from sseclient import SSEClient  # only the rare multi-line events need it

    try:
        text = block.decode("utf-8")
    except UnicodeDecodeError:
        _utf8(block, "an SSE event")
        raise
    for line in _LINE_SPLIT.split(text):
        if line.startswith("error:"):  # llama.cpp's error field (see SSEEvent)
            return SSEEvent("error", line[6:].lstrip(" "))
    for event in SSEClient(iter([block + b"\n\n"])).events():
        data = str(event.data)
        if not data:  # nothing to parse, whatever its type
            return None
        return data if event.event == "message" else SSEEvent(str(event.event), data)
    return None


_LINE_SPLIT = re.compile(r"\r\n|\r|\n")


def iter_ndjson(chunks: Iterable[bytes], max_size: int = MAX_EVENT_SIZE) -> Iterator[str]:
    """Yield each non-blank line of a newline-delimited JSON body (undecoded)."""
    buf = b""
    for chunk in _joined_at_line_ends(chunks, max_size, "an NDJSON line"):
        if not chunk:
            yield ""
            continue
        lines, buf, bad = _complete_units(buf + chunk if buf else chunk, _LINE_END, "\n", "an NDJSON line")
        if len(buf) > max_size:
            raise _too_big(len(buf), max_size, "an NDJSON line")
        for line in lines:
            if line and not line.isspace():
                yield line
        if bad is not None:
            raise bad
        chunk, lines, line = b"", [], ""  # let this read go (see iter_sse)
    if buf.strip():
        yield _utf8(buf, "an NDJSON line")


def iter_text(chunks: Iterable[bytes], max_size: int = MAX_EVENT_SIZE) -> Iterator[str]:
    """Yield a raw UTF-8 text body as it arrives, joining split characters."""
    decoder = codecs.getincrementaldecoder("utf-8")("strict")
    offset = 0
    try:
        for chunk in chunks:
            text = decoder.decode(chunk)
            offset += len(chunk)
            if text or not chunk:
                yield text
        text = decoder.decode(b"", final=True)
    except UnicodeDecodeError as exc:
        raise DecodingError(
            f"the body is not valid UTF-8: byte {exc.object[exc.start : exc.start + 1]!r} "
            f"near offset {offset + exc.start}"
        ) from None
    if text:
        yield text


def iter_whole(chunks: Iterable[bytes], max_size: int = MAX_EVENT_SIZE) -> Iterator[str]:
    """Yield the whole body once, when it has ended."""
    parts: List[bytes] = []
    size = 0
    for chunk in chunks:
        if not chunk:
            yield ""
            continue
        size += len(chunk)
        if size > max_size:
            raise _too_big(size, max_size, "the body")
        parts.append(chunk)
    body = b"".join(parts)
    if body.strip():
        yield _utf8(body, "the body")
