"""What a provider's stream looks like on the wire, for tests that build bodies by hand.

Every emulator class carries one :class:`WireSample` as its ``wire``. The
tests that run against every registered provider (faults, content types,
deadlines, memory bounds) and ``benchmarks/`` take their bytes from it, so a
provider registered with an emulator is covered by them without a line of
theirs changing. A third-party emulator fills it in the same way::

    class ToyEmulator(Emulator):
        provider = "toy"
        wire = WireSample(
            text_event=b'{"text": "%s"}\\n',
            epilogue=b'{"done": true}\\n',
            garbage=b"{not json\\n",
            keepalive=b"\\n",
            cut=300,
        )
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Optional, Tuple

__all__ = ["WireSample"]


@dataclass(frozen=True)
class WireSample:
    """The facts of one provider's stream that hand-built bodies need.

    ``text_event``
        the bytes of one text delta, with ``%s`` where the delta's UTF-8
        goes (as is: give text that needs no escaping in the protocol's
        syntax, a JSON string's say); :meth:`text` fills it in;
    ``prologue``
        what the stream sends before its first delta (b"" if nothing);
    ``epilogue``
        what ends the stream properly after its last delta (b"" when the end
        of the body is the end);
    ``garbage``
        one event the provider must refuse as malformed
        (:class:`~llmclients.errors.MalformedStreamError`), or None when any
        bytes are text (a raw text body);
    ``keepalive``
        what a keep-alive looks like in the stream's framing, which the
        client must skip (whether or not the service sends one), or None
        when the framing has no room for one;
    ``cut``
        a byte offset into the emulator's body (as sent, chunked) of a reply
        of a few short deltas and a couple of hundred more, past which some
        text has come: a connection dropped there breaks a stream that
        already gave text;
    ``model``
        the model to ask for, when the provider has no default model;
    ``content_types``
        the Content-Types (None: no header at all) that real servers label
        this stream with, besides the emulator's own, and which must still be
        read as the stream.
    """

    text_event: bytes
    prologue: bytes = b""
    epilogue: bytes = b""
    garbage: Optional[bytes] = None
    keepalive: Optional[bytes] = None
    cut: int = 0
    model: Optional[str] = None
    content_types: Tuple[Optional[str], ...] = ()

    def __post_init__(self) -> None:
        if self.text_event.count(b"%s") != 1 or b"%" in self.text_event.replace(b"%s", b""):
            raise ValueError("text_event holds exactly one %s, and no other %")

    def text(self, delta: bytes) -> bytes:
        """One text delta ``delta`` (UTF-8, or any bytes for a malformed one) as an event."""
        return self.text_event % delta

    def body(self, *deltas: bytes) -> bytes:
        """A whole stream of ``deltas`` that ends properly: prologue, events, epilogue."""
        return self.prologue + b"".join(map(self.text, deltas)) + self.epilogue
