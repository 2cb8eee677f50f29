"""Decoders: a body's bytes, in reads split anywhere, to the protocol's events.

Each decoder is pushed the reads as they arrive and hands back the events
they complete, as httpx-sse's and openai-python's SSE decoders do:

* :class:`SSEDecoder` — Server-Sent Events: the ``data`` of each message
  event as a ``str``, an :class:`SSEEvent` for an event of any other type
  (in :mod:`llmclients._core.sse`, imported here);
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
:class:`~llmclients.errors.DecodingError` that must end the body. What the
line-based decoders share (joining reads into lines, splitting units, the
size limit) is in :mod:`llmclients._core.lines`.
"""

from __future__ import annotations

import codecs
import json
import json.scanner
import re
from typing import Any, Callable, Dict, Iterable, Iterator, List, Optional, Protocol, Tuple

from ..errors import DecodingError
from .lines import MAX_EVENT_SIZE, LineJoiner, complete_units, too_big, utf8
from .sse import SSEDecoder, SSEEvent, SSEItem

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


# A line ends with CRLF, LF or a lone CR; "\r(?!\n)" keeps a CRLF from being read as CR + LF.
_LINE_END = re.compile(rb"\r\n|\r(?!\n)|\n")

# json's own scanner (the C one, where there is one) called directly: what
# JSONDecoder.raw_decode does, less its Python frame, which cost a delta as much
# as a provider's helper function does.
_scan_once: Callable[[str, int], Tuple[Any, int]] = json.scanner.make_scanner(json.JSONDecoder())  # type: ignore[arg-type]


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


class Decoder(Protocol):
    """What every decoder offers; see the module's docstring."""

    #: Set by :meth:`feed` when ``data`` held bytes that are not UTF-8: the
    #: events before them were returned, and the body must end with this error.
    error: Optional[DecodingError]

    def feed(self, data: bytes) -> List[Any]: ...

    def end(self) -> List[Any]: ...


class NDJSONDecoder:
    """Newline-delimited JSON: each non-blank line, undecoded."""

    __slots__ = ("_buf", "_lines", "error", "max_size")

    def __init__(self, max_size: int = MAX_EVENT_SIZE) -> None:
        self.max_size = max_size
        self.error: Optional[DecodingError] = None
        self._lines = LineJoiner(max_size, "an NDJSON line")
        self._buf = b""  # the start of a line not yet ended

    def feed(self, data: bytes) -> List[str]:
        data = self._lines.join(data)
        if not data:
            return []
        lines, self._buf, self.error = complete_units(
            self._buf + data if self._buf else data, _LINE_END, "\n", self.max_size, "an NDJSON line"
        )
        del data  # let this read go (see SSEDecoder.feed)
        return [line for line in lines if line and not line.isspace()]

    def end(self) -> List[str]:
        rest = self._buf + self._lines.rest()
        self._buf = b""
        if len(rest) > self.max_size:
            raise too_big(len(rest), self.max_size, "an NDJSON line")
        return [utf8(rest, "an NDJSON line")] if rest.strip() else []


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
            raise too_big(self._size, self.max_size, "the body")
        self._parts.append(data)
        return []

    def end(self) -> List[str]:
        body = b"".join(self._parts)
        self._parts.clear()
        return [utf8(body, "the body")] if body.strip() else []


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
