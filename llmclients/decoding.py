"""Decoders: a body's bytes, in chunks split anywhere, to the protocol's events.

Each decoder is a function ``decode(chunks) -> Iterator[str]`` over the byte
chunks a :class:`llmclients.transport.Body` yields:

* :func:`iter_sse` — Server-Sent Events; yields each event's ``data``, ends after
  ``data: [DONE]``;
* :func:`iter_ndjson` — one JSON document per line; yields the lines;
* :func:`iter_text` — a raw text body; yields the text as it arrives;
* :func:`iter_whole` — a body that is one document (a non-streamed JSON
  answer); yields it once, at the end.

All of them decode UTF-8 strictly and incrementally (a character split across
reads is joined, invalid bytes raise :class:`~llmclients.errors.DecodingError`),
accept CR, LF and CRLF line ends, and refuse a line or event larger than
``max_size`` bytes with :class:`~llmclients.errors.OversizedEventError` instead
of buffering without bound.
"""

from __future__ import annotations

import codecs
import json
import re
from typing import Any, Callable, Iterable, Iterator, List, Optional, Tuple

from .errors import DecodingError, OversizedEventError

#: The default limit for one line or event: far above any real delta.
MAX_EVENT_SIZE = 8 * 1024 * 1024

Decoder = Callable[[Iterable[bytes]], Iterator[str]]

# An event ends at an empty line. Line ends are CRLF, LF or a lone CR; "\r(?!\n)"
# keeps a CRLF from being read as CR + LF.
_EVENT_END = re.compile(rb"(?:\r\n|\r(?!\n)|\n)(?:\r\n|\r(?!\n)|\n)")
_LINE_END = re.compile(rb"\r\n|\r(?!\n)|\n")


_raw_decode = json.JSONDecoder().raw_decode


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
        if b"\n" in chunk or b"\r" in chunk:
            if held:
                held.append(chunk)
                chunk = b"".join(held)
                held, size = [], 0
            yield chunk
        else:
            held.append(chunk)
            size += len(chunk)
            if size > max_size:
                raise _too_big(size, max_size, what)
    if held:
        yield b"".join(held)


def _split(buf: bytes, pattern: re.Pattern[bytes], plain: bytes) -> List[bytes]:
    # The common case, LF only, takes bytes.split; a CR anywhere takes the regex.
    # A CR that ends the buffer counts as a line end: if an LF follows in the
    # next read it becomes an empty line, which both formats skip.
    return buf.split(plain) if b"\r" not in buf else pattern.split(buf)


def iter_sse(chunks: Iterable[bytes], max_size: int = MAX_EVENT_SIZE) -> Iterator[str]:
    """Yield the ``data`` of each Server-Sent Event, up to and including ``[DONE]``.

    Events are parsed by sseclient-py. The one shape that carries nearly every
    token, a single ``data: ...`` line, is read directly: it gives exactly what
    sseclient-py would, at a fraction of the cost per event. As the SSE
    specification says, an event cut off by the end of the body is not
    dispatched; a caller that needs the stream's end looks for ``[DONE]``.
    """
    buf = b""
    for chunk in _joined_at_line_ends(chunks, max_size, "an SSE event"):
        buf = buf + chunk if buf else chunk
        if b"\r" in buf:
            raw_blocks = _EVENT_END.split(buf)
            buf = raw_blocks.pop()
            blocks, bad = _decode_each(raw_blocks)
        else:
            # LF only, the common case: decode every complete event in one call.
            end = buf.rfind(b"\n\n")
            complete, buf = (buf[:end], buf[end + 2 :]) if end >= 0 else (b"", buf)
            blocks, bad = _decode_all(complete)
        if len(buf) > max_size:
            raise _too_big(len(buf), max_size, "an SSE event")
        for block in blocks:
            if block[:6] == "data: " and "\n" not in block and "\r" not in block:
                data = block[6:]
            else:
                parsed = _parse_event(block.encode())
                if parsed is None:
                    continue
                data = parsed
            yield data
            if data == "[DONE]":
                return
        if bad is not None:
            raise bad
    if _parse_event(buf) == "[DONE]":  # a last event without its blank line
        yield "[DONE]"


def _decode_all(complete: bytes) -> Tuple[List[str], Optional[DecodingError]]:
    if not complete:
        return [], None
    try:
        return complete.decode("utf-8").split("\n\n"), None
    except UnicodeDecodeError:
        return _decode_each(complete.split(b"\n\n"))


def _decode_each(blocks: List[bytes]) -> Tuple[List[str], Optional[DecodingError]]:
    """The events up to the first that is not UTF-8, and the error for that one."""
    decoded: List[str] = []
    for block in blocks:
        try:
            decoded.append(_utf8(block, "an SSE event"))
        except DecodingError as exc:
            return decoded, exc
    return decoded, None


def _parse_event(block: bytes) -> str | None:
    """The ``data`` of one event block, as sseclient-py parses it; None if it has none."""
    from sseclient import SSEClient  # only the rare multi-line events need it

    try:
        for event in SSEClient(iter([block + b"\n\n"])).events():
            return str(event.data)
    except UnicodeDecodeError:
        _utf8(block, "an SSE event")
    return None


def iter_ndjson(chunks: Iterable[bytes], max_size: int = MAX_EVENT_SIZE) -> Iterator[str]:
    """Yield each non-blank line of a newline-delimited JSON body (undecoded)."""
    buf = b""
    for chunk in _joined_at_line_ends(chunks, max_size, "an NDJSON line"):
        buf = buf + chunk if buf else chunk
        lines = _split(buf, _LINE_END, b"\n")
        buf = lines.pop()
        if len(buf) > max_size:
            raise _too_big(len(buf), max_size, "an NDJSON line")
        for line in lines:
            if line.strip():
                yield _utf8(line, "an NDJSON line")
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
            if text:
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
        size += len(chunk)
        if size > max_size:
            raise _too_big(size, max_size, "the body")
        parts.append(chunk)
    body = b"".join(parts)
    if body.strip():
        yield _utf8(body, "the body")
