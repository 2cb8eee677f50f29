"""A call's end as a row of the reply log (:func:`row_of`), and a row as
JSON-ready values again (:func:`decoded`)."""

from __future__ import annotations

import json
import re
from datetime import datetime, timezone
from typing import Any, Dict, Mapping, Optional, Sequence

from ..observers import EndEvent

__all__ = ["JSON_COLUMNS", "decoded", "masked", "row_of"]

#: Columns that hold JSON text.
JSON_COLUMNS = ("options", "tool_calls", "timings")
MASK = "***"
#: Option names whose values are credentials (``api_key``, ``x-api-key``,
#: ``Authorization``, ``access_token``...); ``max_tokens`` is not one.
_SECRET_KEY = re.compile(
    r"(?i)(^|[_-])(api[_-]?key|key|authorization|auth|access[_-]?token|token|secret|password|passwd|cookie|credentials?)$"
)
#: Values that carry a credential whatever their key: ``Bearer ...``, ``Basic ...``.
_SECRET_VALUE = re.compile(r"(?i)^\s*(bearer|basic)\s+\S+")


def row_of(event: EndEvent) -> Dict[str, Any]:
    """The row for a chat call's end: what was asked, what came back, and how it
    went; every text passed through ``CallInfo.mask`` (the client's keys as ``***``)."""
    call, reply = event.call, event.reply
    usage = event.usage
    row: Dict[str, Any] = {
        "time": datetime.fromtimestamp(call.started_at, timezone.utc).isoformat(timespec="milliseconds"),
        "provider": call.provider,
        "model": event.model or call.model,
        "requested_model": call.model,
        "url": call.url,
        "conversation": call.conversation_id,
        "system": "\n\n".join(_text(m) for m in call.messages if m.get("role") in ("system", "developer")),
        "prompt": "\n\n".join(_text(m) for m in _new_turn(call.messages)),
        "options": _json(masked(call.options)),
        "finish_reason": event.finish_reason,
        "duration": event.duration,
        "outcome": event.outcome,
        "error_type": event.error_type,
        "error": None if event.error is None else str(event.error),
        "partial_text": event.partial_text or None,
        "response_id": event.response_id,
        "request_id": event.request_id,
    }
    if reply is not None:
        row["reply"] = reply.text
        row["reasoning"] = reply.reasoning or None
        row["tool_calls"] = _json([tool_call.to_dict() for tool_call in reply.tool_calls]) if reply.tool_calls else None
        row["timings"] = _json(reply.timings.to_dict()) if reply.timings is not None else None
        usage = reply.usage  # priced by the client's table, where it has one
    for name in _TEXTS:
        if row.get(name):
            row[name] = call.mask(row[name])
    if usage is not None:
        row.update(usage.to_dict())
    return row


#: The columns whose text may quote a key (a prompt that pastes one, an echo of the request).
_TEXTS = ("system", "prompt", "options", "reply", "reasoning", "tool_calls", "error", "partial_text")


def _new_turn(messages: Sequence[Mapping[str, Any]]) -> Sequence[Mapping[str, Any]]:
    """The messages after the last assistant turn, system messages left out: what this turn sent anew."""
    start = 0
    for index, message in enumerate(messages):
        if message.get("role") == "assistant":
            start = index + 1
    return [message for message in messages[start:] if message.get("role") not in ("system", "developer")]


def _text(message: Mapping[str, Any]) -> str:
    """A message's text; an image or another non-text part is shown as ``[image_url]`` (its type)."""
    content = message.get("content")
    if isinstance(content, str):
        return content
    if isinstance(content, (list, tuple)):
        return "".join(
            str(part.get("text", "")) if part.get("type") == "text" else f"[{part.get('type')}]"
            for part in content
            if isinstance(part, Mapping)
        )
    return ""


def masked(value: Any) -> Any:
    """``value`` (options, as JSON-ready values) with every credential replaced by ``***``."""
    if isinstance(value, Mapping):
        return {key: MASK if _SECRET_KEY.search(str(key)) else masked(item) for key, item in value.items()}
    if isinstance(value, (list, tuple)):
        return [masked(item) for item in value]
    if isinstance(value, str) and _SECRET_VALUE.match(value):
        return MASK
    return value


def _json(value: Any) -> str:
    return json.dumps(value, ensure_ascii=False, default=repr)


def decoded(row: Mapping[str, Any]) -> Dict[str, Any]:
    """A row read back, its JSON columns as values again."""
    result = dict(row)
    for name in JSON_COLUMNS:
        text: Optional[str] = result.get(name)
        result[name] = json.loads(text) if text else None
    return result
