"""Decoders: a body's bytes, in reads split anywhere, to the protocol's events.

Each decoder is pushed the reads as they arrive and hands back the events
they complete, as httpx-sse's and openai-python's SSE decoders do:

* :class:`SSEDecoder` — Server-Sent Events: the ``data`` of each message
  event as a ``str``, an :class:`SSEEvent` for an event of any other type;
* :class:`NDJSONDecoder` — one JSON document per line; the lines, undecoded;
* :class:`TextDecoder` — a raw text body; the text as it arrives;
* :class:`WholeDecoder` — a body that is one document (a non-streamed JSON
  answer); the document once, at the end.

``feed(data)`` returns the events that ``data`` completes, ``end()`` those
the end of the body completes. A decoder knows nothing of sockets: who reads
the body decides when to feed it, and a read that found nothing is simply not
fed. :func:`iter_sse`, :func:`iter_ndjson`, :func:`iter_text` and
:func:`iter_whole` run a decoder over an iterable of reads.

All of them decode UTF-8 strictly and incrementally (a character split across
reads is joined), accept CR, LF and CRLF line ends, and refuse a line or event
larger than ``max_size`` bytes with :class:`~llmclients.errors.OversizedEventError`
instead of buffering without bound. Bytes that are not UTF-8 lose nothing: the
events before them are returned, and :attr:`~SSEDecoder.error` holds the
:class:`~llmclients.errors.DecodingError` that must end the body.
"""

from __future__ import annotations

import codecs
import json
import json.scanner
import re
from typing import Any, Callable, Dict, Iterable, Iterator, List, NamedTuple, Optional, Protocol, Tuple, Union

from ..errors import DecodingError, OversizedEventError

__all__ = [
    "DECODERS",
    "MAX_EVENT_SIZE",
    "Decoder",
    "NDJSONDecoder",
    "SSEDecoder",
    "SSEEvent",
    "SSEItem",
    "TextDecoder",
    "WholeDecoder",
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


# json's own scanner (the C one, where there is one) called directly: what
# JSONDecoder.raw_decode does, less its Python frame, which cost a delta as much
# as a provider's helper function does.
_scan_once: Callable[[str, int], Tuple[Any, int]] = json.scanner.make_scanner(json.JSONDecoder())  # type: ignore[arg-type]
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
        value, end = _scan_once(data, 0)
        if end == len(data):
            return value
    except (StopIteration, ValueError):  # StopIteration: no JSON value at the start
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


class _LineJoiner:
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
                raise _too_big(self._size, self._max_size, self._what)
        return b""

    def rest(self) -> bytes:
        """What is held at the end of the body."""
        data = b"".join(self._held)
        self._held.clear()
        return data


def _complete_units(
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
        _check_sizes(buf, pattern, max_size, what)
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


def _check_sizes(buf: bytes, pattern: re.Pattern[bytes], max_size: int, what: str) -> None:
    """Raise if a unit of ``buf`` (its unfinished rest included) is over ``max_size`` bytes.

    A complete unit counts too: an event of 9 MiB whose last piece arrives in
    one read with its end (as an inflater hands over 1 MiB at a time) was never
    held unfinished long enough to be caught by the unfinished bytes' limit.
    """
    start = 0
    for match in pattern.finditer(buf):
        if match.start() - start > max_size:
            raise _too_big(match.start() - start, max_size, what)
        start = match.end()
    if len(buf) - start > max_size:
        raise _too_big(len(buf) - start, max_size, what)


def _decode_each(units: List[bytes], what: str) -> Tuple[List[str], Optional[DecodingError]]:
    """The units up to the first that is not UTF-8, and the error for that one."""
    decoded: List[str] = []
    for unit in units:
        try:
            decoded.append(_utf8(unit, what))
        except DecodingError as exc:
            return decoded, exc
    return decoded, None


class Decoder(Protocol):
    """What every decoder offers; see the module's docstring."""

    #: Set by :meth:`feed` when ``data`` held bytes that are not UTF-8: the
    #: events before them were returned, and the body must end with this error.
    error: Optional[DecodingError]

    def feed(self, data: bytes) -> List[Any]: ...

    def end(self) -> List[Any]: ...


class SSEDecoder:
    """Server-Sent Events: a message event's ``data`` as a ``str``, any other
    event as an :class:`SSEEvent`.

    The rules are the WHATWG ones: one leading BOM is dropped; lines end with
    CR, LF or CRLF; ``data`` lines join with newlines; comments, ``id`` and
    ``retry`` carry nothing for us; an event whose data is empty is not
    dispatched, nor is one cut off by the end of the body. The events that
    carry nearly every token are read directly: a lone ``data: ...`` line
    (OpenAI's chunks) and ``event: NAME`` with one ``data:`` line (Anthropic's
    and the Responses API's named events), in either order, with ``id:`` lines,
    any line ends and the space after the colon or not. Every other event
    (comments inside it, several ``data`` lines, ``retry``, a field without a
    colon, ...) is parsed by sseclient-py, which gives the same events more
    slowly. Protocol markers such as ``[DONE]`` are the provider's to read.

    An event over ``max_size`` bytes raises
    :class:`~llmclients.errors.OversizedEventError`, whether it is still
    arriving or came whole in one read.
    """

    __slots__ = ("_at_start", "_buf", "_lines", "error", "max_size")

    def __init__(self, max_size: int = MAX_EVENT_SIZE) -> None:
        self.max_size = max_size
        self.error: Optional[DecodingError] = None
        self._lines = _LineJoiner(max_size, "an SSE event")
        self._buf = b""  # the start of an event not yet ended
        self._at_start = True

    def feed(self, data: bytes) -> List[SSEItem]:
        data = self._lines.join(data)
        if not data:
            return []
        if self._at_start:
            data = self._without_bom(data)
            if not data:
                return []
        blocks, self._buf, self.error = _complete_units(
            self._buf + data if self._buf else data, _EVENT_END, "\n\n", self.max_size, "an SSE event"
        )
        del data  # let this read go before the events are parsed (see _LineJoiner)
        items: List[SSEItem] = []
        for block in blocks:
            if "\r" not in block:
                # The two shapes that carry nearly every token, read inline:
                # OpenAI's lone `data: ...` line, and Anthropic's and the
                # Responses API's `event: NAME` + `data: ...`.
                if block[:6] == "data: ":
                    if "\n" not in block:
                        if len(block) > 6:  # an event with empty data carries nothing
                            items.append(block[6:])
                        continue
                elif block[:7] == "event: ":
                    end = block.find("\n")
                    if end > 0 and block[end + 1 : end + 7] == "data: " and block.find("\n", end + 1) < 0:
                        if len(block) > end + 7:
                            name, value = block[7:end], block[end + 7 :]
                            items.append(SSEEvent(name, value) if name and name != "message" else value)
                        continue
            event = _simple_event(block)
            if isinstance(event, _Unusual):
                event = _parse_event(block.encode())
            if event:
                items.append(event)
        return items

    def end(self) -> List[SSEItem]:
        # OpenAI-style servers that close right after `data: [DONE]` without its
        # blank line are common enough to forgive; any other cut event is lost.
        rest = self._buf + self._lines.rest()
        self._buf = b""
        if len(rest) > self.max_size:
            raise _too_big(len(rest), self.max_size, "an SSE event")
        return ["[DONE]"] if rest and _parse_event(rest) == "[DONE]" else []

    def _without_bom(self, data: bytes) -> bytes:
        data, self._buf = self._buf + data, b""
        if len(data) < len(_BOM) and _BOM.startswith(data):
            self._buf = data  # a BOM split across reads
            return b""
        self._at_start = False
        return data[len(_BOM) :] if data.startswith(_BOM) else data


class _Unusual:
    """What :func:`_simple_event` returns for a block it leaves to sseclient-py."""


_UNUSUAL = _Unusual()


def _simple_event(block: str) -> Union[SSEItem, _Unusual, None]:
    """A block of ``event:``, ``id:`` and one ``data:`` line, in any order and
    with any line ends, read as sseclient-py reads it; :data:`_UNUSUAL` for any
    other block (comments, several data lines, ``retry``, a field without a
    colon, llama.cpp's ``error:`` line, a BOM...), which is its to parse."""
    if "\r" in block:
        block = block.replace("\r\n", "\n").replace("\r", "\n")
    name, data = "", None
    for line in block.split("\n"):
        if not line:  # a CRLF split across reads leaves its LF at the start of the next block
            continue
        field, colon, value = line.partition(":")
        if not colon:
            return _UNUSUAL
        if value[:1] == " ":
            value = value[1:]
        if field == "data" and data is None:
            data = value
        elif field == "event":
            name = value  # the last one counts
        elif field != "id":  # an id carries nothing for us
            return _UNUSUAL
    if not data:  # an event with empty data carries nothing
        return None
    return SSEEvent(name, data) if name and name != "message" else data


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


class NDJSONDecoder:
    """Newline-delimited JSON: each non-blank line, undecoded."""

    __slots__ = ("_buf", "_lines", "error", "max_size")

    def __init__(self, max_size: int = MAX_EVENT_SIZE) -> None:
        self.max_size = max_size
        self.error: Optional[DecodingError] = None
        self._lines = _LineJoiner(max_size, "an NDJSON line")
        self._buf = b""  # the start of a line not yet ended

    def feed(self, data: bytes) -> List[str]:
        data = self._lines.join(data)
        if not data:
            return []
        lines, self._buf, self.error = _complete_units(
            self._buf + data if self._buf else data, _LINE_END, "\n", self.max_size, "an NDJSON line"
        )
        del data  # let this read go (see SSEDecoder.feed)
        return [line for line in lines if line and not line.isspace()]

    def end(self) -> List[str]:
        rest = self._buf + self._lines.rest()
        self._buf = b""
        if len(rest) > self.max_size:
            raise _too_big(len(rest), self.max_size, "an NDJSON line")
        return [_utf8(rest, "an NDJSON line")] if rest.strip() else []


class TextDecoder:
    """A raw UTF-8 text body, as it arrives, characters split across reads joined."""

    __slots__ = ("_decoder", "_offset", "error", "max_size")

    def __init__(self, max_size: int = MAX_EVENT_SIZE) -> None:
        self.max_size = max_size  # nothing is buffered beyond a split character
        self.error: Optional[DecodingError] = None
        self._decoder = codecs.getincrementaldecoder("utf-8")("strict")
        self._offset = 0  # bytes decoded before this read, for the error's message

    def feed(self, data: bytes) -> List[str]:
        text = self._decode(data, final=False)
        self._offset += len(data)
        return [text] if text else []

    def end(self) -> List[str]:
        text = self._decode(b"", final=True)
        return [text] if text else []

    def _decode(self, data: bytes, final: bool) -> str:
        try:
            return self._decoder.decode(data, final)
        except UnicodeDecodeError as exc:
            raise DecodingError(
                f"the body is not valid UTF-8: byte {exc.object[exc.start : exc.start + 1]!r} "
                f"near offset {self._offset + exc.start}"
            ) from None


class WholeDecoder:
    """A body that is one document: the whole of it, once, at the end."""

    __slots__ = ("_parts", "_size", "error", "max_size")

    def __init__(self, max_size: int = MAX_EVENT_SIZE) -> None:
        self.max_size = max_size
        self.error: Optional[DecodingError] = None
        self._parts: List[bytes] = []
        self._size = 0

    def feed(self, data: bytes) -> List[str]:
        self._size += len(data)
        if self._size > self.max_size:
            raise _too_big(self._size, self.max_size, "the body")
        self._parts.append(data)
        return []

    def end(self) -> List[str]:
        body = b"".join(self._parts)
        self._parts.clear()
        return [_utf8(body, "the body")] if body.strip() else []


def _decoded(decoder: Decoder, chunks: Iterable[bytes]) -> Iterator[Any]:
    """The events ``decoder`` makes of ``chunks``, one at a time."""
    for chunk in chunks:
        yield from decoder.feed(chunk)
        if decoder.error is not None:
            raise decoder.error
    yield from decoder.end()


def iter_sse(chunks: Iterable[bytes], max_size: int = MAX_EVENT_SIZE) -> Iterator[SSEItem]:
    """Each Server-Sent Event of ``chunks`` (see :class:`SSEDecoder`)."""
    return _decoded(SSEDecoder(max_size), chunks)


def iter_ndjson(chunks: Iterable[bytes], max_size: int = MAX_EVENT_SIZE) -> Iterator[str]:
    """Each non-blank line of a newline-delimited JSON body (see :class:`NDJSONDecoder`)."""
    return _decoded(NDJSONDecoder(max_size), chunks)


def iter_text(chunks: Iterable[bytes], max_size: int = MAX_EVENT_SIZE) -> Iterator[str]:
    """A raw UTF-8 text body as it arrives (see :class:`TextDecoder`)."""
    return _decoded(TextDecoder(max_size), chunks)


def iter_whole(chunks: Iterable[bytes], max_size: int = MAX_EVENT_SIZE) -> Iterator[str]:
    """The whole body once, when it has ended (see :class:`WholeDecoder`)."""
    return _decoded(WholeDecoder(max_size), chunks)


#: The decoder of each event format (:attr:`Provider.event_format`).
DECODERS: Dict[str, Callable[[], Decoder]] = {
    "sse": SSEDecoder,
    "ndjson": NDJSONDecoder,
    "text": TextDecoder,
    "whole": WholeDecoder,
}
