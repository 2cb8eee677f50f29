"""The Server-Sent Events decoder, with its fast paths for the events that
carry nearly every token.

:class:`SSEDecoder` is pushed a body's reads and hands back each message
event's ``data`` as a ``str`` and any other event as an :class:`SSEEvent`
(see :mod:`llmclients._core.framing` for what every decoder shares). The
common shapes are read inline; :func:`_simple_event` reads the other simple
ones, and :func:`_parse_event` leaves the rest to sseclient-py.
"""

# Annotations are evaluated here (no ``from __future__ import annotations``):
# typing.NamedTuple would otherwise compile each field's string at import.
import re
from typing import List, NamedTuple, Optional, Union

from ..errors import DecodingError
from .lines import MAX_EVENT_SIZE, LineJoiner, complete_units, too_big, utf8

__all__ = ["SSEDecoder", "SSEEvent", "SSEItem"]


# An event ends at an empty line. Line ends are CRLF, LF or a lone CR; "\r(?!\n)"
# keeps a CRLF from being read as CR + LF.
_EVENT_END = re.compile(rb"(?:\r\n|\r(?!\n)|\n)(?:\r\n|\r(?!\n)|\n)")
_BOM = b"\xef\xbb\xbf"


class SSEEvent(NamedTuple):
    """A Server-Sent Event whose type is not the default ``message``: an
    ``event: error`` block, say, or llama.cpp's ``error: {...}`` line (type
    ``"error"``; the specification would ignore that field, but it is how
    llama.cpp reports a failure)."""

    event: str
    data: str


_new = tuple.__new__

#: What :func:`~llmclients._core.framing.iter_sse` yields: a message event's data, or another event.
SSEItem = Union[str, SSEEvent]


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
        self._lines = LineJoiner(max_size, "an SSE event")
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
        blocks, self._buf, self.error = complete_units(
            self._buf + data if self._buf else data, _EVENT_END, "\n\n", self.max_size, "an SSE event"
        )
        del data  # let this read go before the events are parsed (see LineJoiner)
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
                            # tuple.__new__: half the cost of the named tuple's own __new__, per token
                            items.append(_new(SSEEvent, (name, value)) if name and name != "message" else value)
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
            raise too_big(len(rest), self.max_size, "an SSE event")
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
        utf8(block, "an SSE event")
        raise
    for line in re.split(r"\r\n|\r|\n", text):  # compiled (and cached) by re if ever met
        if line.startswith("error:"):  # llama.cpp's error field (see SSEEvent)
            return SSEEvent("error", line[6:].lstrip(" "))
    for event in SSEClient(iter([block + b"\n\n"])).events():
        data = str(event.data)
        if not data:  # nothing to parse, whatever its type
            return None
        return data if event.event == "message" else SSEEvent(str(event.event), data)
    return None

