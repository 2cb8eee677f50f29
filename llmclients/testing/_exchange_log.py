"""One line for each request an emulator receives and each reply it gives
(at INFO), and their bodies and events (at DEBUG): what ``llmclients
emulate`` shows on stderr. No header is logged, so no key."""

from __future__ import annotations

import json
import logging
from typing import Any, List, Optional

from ._replies import Reply

__all__ = ["log_event", "log_reply", "log_request", "summary"]

#: The most characters of one string (a prompt, an event) a log line shows.
SHORT = 80


def shorten(text: str, limit: int = SHORT) -> str:
    return text if len(text) <= limit else text[: limit - 3] + "..."


def summary(reply: Reply) -> str:
    """A reply in a few words: ``Reply(text='Hello th...', drop_after_deltas=2)``."""
    fields: List[str] = []
    for name, value in vars(reply).items():
        default = Reply.__dataclass_fields__[name].default
        if value is None or value == default or value == {}:
            continue
        shown = f"[{len(value)} events]" if name == "events" else shorten(repr(value), 40)
        fields.append(f"{name}={shown}")
    return f"Reply({', '.join(fields)})"


def _about(body: Any) -> str:
    """What a JSON request body asks, in a few words: model, how many messages, the last one."""
    if not isinstance(body, dict):
        return ""
    found = [f"model {body['model']}"] if isinstance(body.get("model"), str) else []
    messages = body.get("messages") if isinstance(body.get("messages"), list) else body.get("input")
    if isinstance(messages, list) and messages:
        last = messages[-1] if isinstance(messages[-1], dict) else {}
        content = last.get("content")
        said = content if isinstance(content, str) else json.dumps(content)
        count = f"{len(messages)} message{'s' * (len(messages) != 1)}"
        found.append(f"{count}, the last {last.get('role', '?')}: {shorten(said, 60)!r}")
    if body.get("stream"):
        found.append("stream")
    return ", ".join(found)


def log_request(log: logging.Logger, request: Any, number: int) -> None:
    """``request``: a :class:`~llmclients.testing.RecordedRequest` (whose module imports this one)."""
    if not log.isEnabledFor(logging.INFO):
        return
    try:
        about = _about(json.loads(request.body)) if request.body else ""
    except ValueError:
        about = ""
    size = f"{len(request.body)} bytes" + (
        f" of {request.expected_length}" if request.outcome == "incomplete" else ""
    )
    log.info(
        "request %d: %s %s (%s)%s", number, request.method, request.path, size, f": {about}" if about else ""
    )
    if log.isEnabledFor(logging.DEBUG) and request.body:
        log.debug("request %d body: %s", number, shorten(request.body.decode("utf-8", "replace"), 2000))


def log_reply(
    log: logging.Logger, request: Any, number: int, reply: Optional[Reply], source: str, seconds: float
) -> None:
    if not log.isEnabledFor(logging.INFO):
        return
    status = "-" if reply is None else str(reply.status)
    scripted = (reply is not None and source in ("default reply",)) or source.startswith("scripted")
    what = f"{source}: {summary(reply)}" if reply is not None and scripted else source
    log.info("reply %d: %s, %s, %s in %.2f s", number, status, what, request.outcome, seconds)


def log_event(log: logging.Logger, data: bytes) -> None:
    """One event as sent (before chunking and gzip), at DEBUG."""
    log.debug("  event: %s", shorten(data.decode("utf-8", "replace").strip(), 300))
