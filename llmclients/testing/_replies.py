"""What an emulator is scripted with and what it records: :class:`Reply`,
:class:`RecordedRequest`, :class:`Rejection`, and :class:`DeltaEvent`, the
mark on the bytes of a text delta by which a reply's faults count deltas.

:func:`cut_events` works out where a fault given in the reply's own units
(``drop_after_deltas``, ``drop_after_events``, ``drop_mid_event``) cuts the
body; ``_server`` sends it.
"""

from __future__ import annotations

import json
import re
import threading
from dataclasses import dataclass, field
from email.message import Message as _Headers
from typing import Any, Dict, List, Optional, Sequence, Tuple, Union

__all__ = [
    "FRAMINGS",
    "DeltaEvent",
    "RecordedRequest",
    "Rejection",
    "Reply",
    "ScriptError",
    "cut_events",
    "failure",
]

#: Framings a reply body can take.
FRAMINGS = ("chunked", "close", "length")


class DeltaEvent(bytes):
    """The bytes of one event that carries a piece of the answer's text.

    An emulator yields each text delta of a stream wrapped in it
    (``yield DeltaEvent(data)``), so that ``Reply(drop_after_deltas=N)`` can
    count them; it is sent as the plain bytes it holds."""


class ScriptError(Exception):
    """A reply scripts something its own body cannot do (a cut past its end)."""


@dataclass
class Reply:
    """What the emulator answers to one request.

    A normal reply streams ``text`` (split into word-sized deltas) or the given
    ``deltas``, ``delay`` seconds apart, in the chosen ``framing``. The fault
    fields turn it into something else:

    ``status`` / ``body`` / ``headers``
        answer with this status (and body: bytes, str, or a dict sent as JSON)
        instead of a stream;
    ``raw``
        send these bytes as the body instead of the protocol's events: one
        ``bytes``, or a list of them, each its own write (and its own chunk);
    ``drop_after``
        close the connection after this many bytes of the body as sent on the
        wire (a chunked body then lacks its last chunk); with ``reset`` the
        close is a TCP reset;
    ``drop_after_deltas`` / ``drop_after_events`` / ``drop_mid_event``
        the same cut, in the reply's own units: close the connection right
        after the N-th text delta (0: just before the first one), or after N
        events of any kind (0: right after the headers); with
        ``drop_mid_event``, first send the first half of the event that
        follows, so the stream ends inside an event. A cut the reply never
        reaches (3 deltas, ``drop_after_deltas=5``) is a mistake in the
        script: the request is answered 500 saying so, and recorded as
        "bad script";
    ``stall`` / ``stall_after`` / ``keepalive``
        pause ``stall`` seconds after ``stall_after`` events (0: right after
        the headers), sending the protocol's keep-alive every ``keepalive``
        seconds meanwhile, if set;
    ``head_delay``
        wait this long before sending the status line;
    ``close_before_headers``
        close the connection (a reset, with ``reset``) without answering.

    ``events``
        protocol events to send instead of text (each emulator says what it
        takes); pacing, framing, gzip and the faults above act on them as on
        any other events.
    """

    text: Optional[str] = None
    deltas: Optional[Sequence[str]] = None
    delay: float = 0.0
    framing: str = "chunked"
    finish_reason: Optional[str] = "stop"
    gzip: bool = False
    status: int = 200
    body: Union[bytes, str, Dict[str, Any], List[Any], None] = None
    headers: Dict[str, str] = field(default_factory=dict)
    raw: Union[bytes, Sequence[bytes], None] = None
    drop_after: Optional[int] = None
    reset: bool = False
    stall: float = 0.0
    stall_after: int = 0
    keepalive: Optional[float] = None
    usage: Optional[Dict[str, int]] = None
    head_delay: float = 0.0
    close_before_headers: bool = False
    #: Protocol events to send instead of text (each emulator says what it takes).
    events: Optional[Sequence[Any]] = None
    drop_after_deltas: Optional[int] = None
    drop_after_events: Optional[int] = None
    drop_mid_event: bool = False

    def __post_init__(self) -> None:
        if self.framing not in FRAMINGS:
            raise ValueError(f"framing must be one of {FRAMINGS}, not {self.framing!r}")
        cuts = [
            name
            for name in ("drop_after", "drop_after_deltas", "drop_after_events")
            if getattr(self, name) is not None
        ]
        if len(cuts) > 1:
            raise ValueError(f"a reply is cut in one place: give one of {', '.join(cuts)}")
        if cuts and getattr(self, cuts[0]) < 0:
            raise ValueError(f"{cuts[0]} must be 0 or more")
        if self.drop_mid_event and not self.cuts_in_units():
            raise ValueError("drop_mid_event goes with drop_after_deltas or drop_after_events")

    def pieces(self) -> List[str]:
        """The text deltas this reply streams."""
        if self.deltas is not None:
            return list(self.deltas)
        return re.findall(r"\s*\S+\s*|\s+", self.text or "")

    def cuts_in_units(self) -> bool:
        """Whether a fault cuts the body by deltas or events (not by bytes)."""
        return self.drop_after_deltas is not None or self.drop_after_events is not None


def cut_events(reply: Reply, events: List[bytes]) -> Tuple[List[bytes], bytes]:
    """The events ``reply`` sends whole before its cut, and the bytes sent after
    them before the connection drops (half an event with ``drop_mid_event``,
    else b""). Raises :class:`ScriptError` for a cut the body never reaches."""
    if reply.drop_after_events is not None:
        at = reply.drop_after_events
        if at > len(events):
            raise ScriptError(f"Reply(drop_after_events={at}) cuts a reply of {len(events)} events")
    else:
        wanted = reply.drop_after_deltas or 0
        marks = [i for i, event in enumerate(events) if isinstance(event, DeltaEvent)]
        if wanted > len(marks) or not marks:
            raise ScriptError(f"Reply(drop_after_deltas={wanted}) cuts a reply of {len(marks)} text deltas")
        at = marks[wanted - 1] + 1 if wanted else marks[0]
    if not reply.drop_mid_event:
        return events[:at], b""
    if at >= len(events):
        raise ScriptError(
            f"Reply(drop_mid_event=True): no event follows the cut (the reply has {len(events)})"
        )
    event = events[at]
    return events[:at], bytes(event[: max(1, len(event) // 2)])


@dataclass
class RecordedRequest:
    """One request as the emulator received it."""

    method: str
    path: str
    headers: _Headers
    body: bytes
    #: How the exchange ended: "complete", "client closed", "dropped", "rejected",
    #: "incomplete" (the body was shorter than its Content-Length: not answered),
    #: "unscripted" (strict, and no scripted reply left: answered 500),
    #: "bad script" (its reply could not be played: answered 500);
    #: "pending" while it runs. :meth:`wait` for it when the client may finish first.
    outcome: str = "pending"
    #: Set once the emulator has finished the exchange (:meth:`wait` waits for it).
    ended: threading.Event = field(default_factory=threading.Event, repr=False, compare=False)

    def wait(self, timeout: float = 5.0) -> str:
        """The outcome once the emulator has finished the exchange (the client
        can read the last byte before the emulator notes "complete"), or
        "pending" if it has not within *timeout* seconds."""
        self.ended.wait(timeout)
        return self.outcome

    @property
    def expected_length(self) -> int:
        """The body's length as its ``Content-Length`` announced it (0 without one)."""
        try:
            return int(self.headers.get("Content-Length") or 0)
        except ValueError:
            return 0

    def json(self) -> Any:
        """The body parsed as JSON; ``ValueError`` saying so when the body never
        came whole (the client closed the connection first)."""
        if self.outcome == "incomplete":
            raise ValueError(
                f"{self.method} {self.path}: the body is incomplete, {len(self.body)} of "
                f"{self.expected_length} bytes arrived before the client closed the connection"
            )
        return json.loads(self.body)

    @property
    def text(self) -> str:
        return self.body.decode("utf-8")


class Rejection(Exception):
    """Raised by :meth:`Emulator.check` for a request the real server refuses."""

    def __init__(
        self, status: int, body: Union[bytes, str, Dict[str, Any]], headers: Optional[Dict[str, str]] = None
    ) -> None:
        super().__init__(status)
        self.reply = Reply(status=status, body=body, headers=dict(headers or {}))


def failure(provider: str, kind: str, message: str) -> Reply:
    """The 500 an emulator answers when its script fails a request (``kind``:
    "unscripted_request", "bad_script"), in the error shape most clients read."""
    text = f"llmclients {provider} emulator: {message}"
    return Reply(status=500, body={"error": {"message": text, "type": kind}})
