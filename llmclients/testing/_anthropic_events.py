"""The events of Anthropic's Messages stream, built for :class:`~llmclients.testing.anthropic.AnthropicEmulator`.

``Reply(events=[...])`` sends the events given, whole, and nothing else:
dicts (each an event, named by its ``type``) and bytes (sent as they are,
each its own write). The builders here make them: :func:`message_start`,
:func:`text_block`, :func:`thinking_block`, :func:`redacted_thinking_block`,
:func:`tool_use_block` (its input in fragments split anywhere),
:func:`message_delta`, :func:`message_stop`, :func:`ping`,
:func:`error_event`; :func:`reply_events` a whole reply of them;
:func:`error_body` the body of an error status; :func:`serialize` one event
on the wire; :func:`sign` the emulator's signature of a thinking block; and
:func:`assemble` the ``message`` object a stream of them adds up to (the
answer to ``stream: false``). The public ones are exported from
:mod:`llmclients.testing.anthropic`.
"""

from __future__ import annotations

import hashlib
import json
from typing import Any, Dict, List, Mapping, Optional, Sequence

__all__ = [
    "DEFAULT_MODEL",
    "REQUEST_ID",
    "assemble",
    "error_body",
    "error_event",
    "message_delta",
    "message_start",
    "message_stop",
    "ping",
    "redacted_thinking_block",
    "reply_events",
    "serialize",
    "sign",
    "text_block",
    "thinking_block",
    "tool_use_block",
]

DEFAULT_MODEL = "claude-sonnet-4-5"
#: The ``request-id`` of every answer, and of every error body.
REQUEST_ID = "req_emulator"


def serialize(event: Mapping[str, Any]) -> bytes:
    """One event on the wire: ``event: <type>`` and its JSON ``data:`` line."""
    return f"event: {event['type']}\ndata: {json.dumps(event, ensure_ascii=False)}\n\n".encode()


def sign(thinking: str) -> str:
    """The emulator's signature of a thinking block's text: the API checks a
    block sent back against its own, and so does the emulator."""
    return "sig-" + hashlib.sha256(thinking.encode()).hexdigest()[:32]


def message_start(
    model: str = DEFAULT_MODEL, usage: Optional[Mapping[str, Any]] = None, id: str = "msg_emulator"
) -> Dict[str, Any]:
    message: Dict[str, Any] = {
        "id": id,
        "type": "message",
        "role": "assistant",
        "model": model,
        "content": [],
        "stop_reason": None,
        "stop_sequence": None,
    }
    if usage is not None:  # the API always sends it; some servers do not
        message["usage"] = dict(usage)
    return {"type": "message_start", "message": message}


def text_block(index: int, pieces: Sequence[str]) -> List[Dict[str, Any]]:
    """A text block: its start, a ``text_delta`` a piece, its stop."""
    deltas = [
        {"type": "content_block_delta", "index": index, "delta": {"type": "text_delta", "text": piece}}
        for piece in pieces
    ]
    return [
        {"type": "content_block_start", "index": index, "content_block": {"type": "text", "text": ""}},
        *deltas,
        {"type": "content_block_stop", "index": index},
    ]


def thinking_block(index: int, pieces: Sequence[str], signature: Optional[str] = None) -> List[Dict[str, Any]]:
    """A thinking block: ``thinking_delta``\\ s, then its ``signature_delta``
    (by default :func:`sign` of the whole text) just before its stop."""
    start = {"type": "thinking", "thinking": "", "signature": ""}
    deltas = [
        {"type": "content_block_delta", "index": index, "delta": {"type": "thinking_delta", "thinking": piece}}
        for piece in pieces
    ]
    signature = sign("".join(pieces)) if signature is None else signature
    return [
        {"type": "content_block_start", "index": index, "content_block": start},
        *deltas,
        {"type": "content_block_delta", "index": index, "delta": {"type": "signature_delta", "signature": signature}},
        {"type": "content_block_stop", "index": index},
    ]


def redacted_thinking_block(index: int, data: str = "EmwKAhgBEgy3va3pzix/LafPsn4aDFIT") -> List[Dict[str, Any]]:
    """A thinking block the safety systems encrypted: whole in its start."""
    return [
        {"type": "content_block_start", "index": index, "content_block": {"type": "redacted_thinking", "data": data}},
        {"type": "content_block_stop", "index": index},
    ]


def tool_use_block(index: int, id: str, name: str, fragments: Sequence[str]) -> List[Dict[str, Any]]:
    """A tool call: its start (``input: {}``), an ``input_json_delta`` a
    fragment (split anywhere, empty ones too), its stop."""
    deltas = [
        {"type": "content_block_delta", "index": index, "delta": {"type": "input_json_delta", "partial_json": piece}}
        for piece in fragments
    ]
    start = {"type": "tool_use", "id": id, "name": name, "input": {}}
    return [
        {"type": "content_block_start", "index": index, "content_block": start},
        *deltas,
        {"type": "content_block_stop", "index": index},
    ]


def message_delta(stop_reason: Optional[str] = "end_turn", usage: Optional[Mapping[str, Any]] = None,
                  stop_sequence: Optional[str] = None) -> Dict[str, Any]:
    """The stop reason, and the usage so far (cumulative: the API's counts are totals, not increments)."""
    return {
        "type": "message_delta",
        "delta": {"stop_reason": stop_reason, "stop_sequence": stop_sequence},
        "usage": dict(usage) if usage is not None else {"output_tokens": 1},
    }


def message_stop() -> Dict[str, Any]:
    return {"type": "message_stop"}


def ping() -> Dict[str, Any]:
    return {"type": "ping"}


def error_event(type: str, message: str = "") -> Dict[str, Any]:
    """An ``error`` event (``overloaded_error``, ``rate_limit_error``, ``api_error``, ...)."""
    return {"type": "error", "error": {"type": type, "message": message or _MESSAGES.get(type, type)}}


def error_body(type: str, message: str = "") -> Dict[str, Any]:
    """The body of an error status, as the API sends it."""
    return {"type": "error", "error": {"type": type, "message": message or _MESSAGES.get(type, type)}, "request_id": REQUEST_ID}


_MESSAGES = {"overloaded_error": "Overloaded", "rate_limit_error": "Rate limited", "api_error": "Internal server error"}


def reply_events(
    blocks: Sequence[List[Dict[str, Any]]],
    *,
    stop_reason: str = "end_turn",
    usage: Optional[Mapping[str, Any]] = None,
    model: str = DEFAULT_MODEL,
) -> List[Dict[str, Any]]:
    """A whole reply: ``message_start`` (with the input side of ``usage``),
    the ``blocks`` (from the builders above), a ``ping``, ``message_delta``
    (with the whole ``usage``) and ``message_stop``."""
    usage = dict(usage or {"input_tokens": 10, "output_tokens": 5})
    start_usage = dict(usage, output_tokens=1)
    events = [message_start(model, start_usage), ping()]
    for block in blocks:
        events += block
    return [*events, message_delta(stop_reason, usage), message_stop()]


def assemble(events: Sequence[Any]) -> Dict[str, Any]:
    """The ``message`` object that streamed ``events`` add up to (``stream: false``)."""
    message: Dict[str, Any] = {}
    blocks: Dict[int, Dict[str, Any]] = {}
    inputs: Dict[int, str] = {}
    for event in events:
        if not isinstance(event, dict):
            continue
        kind = event["type"]
        if kind == "message_start":
            message = dict(event["message"])
        elif kind == "content_block_start":
            blocks[event["index"]] = dict(event["content_block"])
        elif kind == "content_block_delta":
            block, delta = blocks[event["index"]], event["delta"]
            if delta["type"] == "text_delta":
                block["text"] += delta["text"]
            elif delta["type"] == "thinking_delta":
                block["thinking"] += delta["thinking"]
            elif delta["type"] == "signature_delta":
                block["signature"] = delta["signature"]
            elif delta["type"] == "input_json_delta":
                inputs[event["index"]] = inputs.get(event["index"], "") + delta["partial_json"]
        elif kind == "message_delta":
            message.update(event["delta"])
            message["usage"] = {**(message.get("usage") or {}), **event["usage"]}
    for index, text in inputs.items():
        blocks[index]["input"] = json.loads(text) if text else {}
    message["content"] = [blocks[index] for index in sorted(blocks)]
    return message
