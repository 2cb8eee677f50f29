"""An emulator of Anthropic's Messages API (``POST /v1/messages``, ``GET /v1/models``).

It answers ``stream: true`` with the API's named events — ``message_start``,
``content_block_start``, ``content_block_delta``\\ s, ``content_block_stop``,
``message_delta`` (the stop reason and the cumulative usage),
``message_stop`` — and ``stream: false`` with one ``message`` object. It
refuses what the API refuses, with the API's error body
(``{"type": "error", "error": {"type", "message"}, "request_id"}``): a wrong
path (404 ``not_found_error``), a missing or wrong ``x-api-key`` when
``api_key`` is set (401 ``authentication_error``), no ``anthropic-version``
header, a body without ``model``, ``max_tokens`` or ``messages``, keys the
API does not take, roles other than ``user`` and ``assistant``, empty
turns, malformed blocks, ``tool_result`` blocks that answer no ``tool_use``
of the turn before (or ``tool_use`` left unanswered), thinking budgets out
of bounds, and thinking blocks sent back changed (their ``signature`` is the
emulator's own: :func:`sign`) or missing from a tool loop's turn with
thinking on (400 ``invalid_request_error``, the API's wording).

``Reply(events=[...])`` sends the events given, whole, and nothing else:
dicts (each an event, named by its ``type``) and bytes (sent as they are,
each its own write: a cut body, an event split inside a character). The
builders make them: :func:`message_start`, :func:`text_block`,
:func:`thinking_block`, :func:`redacted_thinking_block`,
:func:`tool_use_block` (its input in fragments split anywhere),
:func:`message_delta`, :func:`message_stop`, :func:`ping`,
:func:`error_event`; :func:`reply_events` a whole reply of them. An error
status is ``Reply(status=529, body=error_body("overloaded_error", ...),
headers={"retry-after-ms": ..., "x-should-retry": ...})``.

The builders are in :mod:`llmclients.testing._anthropic_events`, and what the
emulator refuses with a 400 in :mod:`llmclients.testing._anthropic_validation`;
the builders are imported from here.
"""

from __future__ import annotations

import json
from typing import Any, Dict, Iterable, Iterator, List, Mapping, Optional, Sequence

from .._public import expose
from ._anthropic_events import (
    DEFAULT_MODEL,
    REQUEST_ID,
    assemble,
    error_body,
    error_event,
    message_delta,
    message_start,
    message_stop,
    ping,
    redacted_thinking_block,
    reply_events,
    serialize,
    sign,
    text_block,
    thinking_block,
    tool_use_block,
)
from ._anthropic_validation import Invalid, validate
from ._server import DeltaEvent, Emulator, RecordedRequest, Rejection, Reply, ToolCallScript
from .wire import WireSample

__all__ = [
    "DEFAULT_MODEL",
    "AnthropicEmulator",
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

expose(globals(), __name__, __all__)

#: The stop reason for each finish reason a ``Reply`` names.
_STOP_REASONS = {
    "stop": "end_turn",
    "length": "max_tokens",
    "tool_calls": "tool_use",
    "content_filter": "refusal",
}


class AnthropicEmulator(Emulator):
    """Stands in for Anthropic's API; ``Reply.events`` takes event dicts and bytes."""

    provider = "anthropic"
    content_type = "text/event-stream; charset=utf-8"
    keepalive_bytes = b'event: ping\ndata: {"type": "ping"}\n\n'
    base_path = ""
    wire = WireSample(
        text_event=(
            b'event: content_block_delta\ndata: {"type":"content_block_delta","index":0,'
            b'"delta":{"type":"text_delta","text":"%s"}}\n\n'
        ),
        prologue=serialize(message_start(usage={"input_tokens": 3, "output_tokens": 1})) + serialize(text_block(0, [])[0]),
        epilogue=(
            serialize({"type": "content_block_stop", "index": 0})
            + serialize(message_delta("end_turn", {"output_tokens": 5}))
            + serialize(message_stop())
        ),
        garbage=b"event: content_block_delta\ndata: {not json\n\n",
        keepalive=b'event: ping\ndata: {"type": "ping"}\n\n',
        cut=1400,
        content_types=(None, "text/plain; charset=utf-8", "application/octet-stream"),
    )

    def __init__(self, *, api_key: Optional[str] = None, models: Sequence[str] = (), **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.api_key = api_key
        self.models = list(models)

    def check(self, request: RecordedRequest) -> None:
        path = request.path.split("?")[0]
        if (request.method, path) not in (("POST", "/v1/messages"), ("GET", "/v1/models")):
            raise Rejection(404, error_body("not_found_error", "Not found"))
        key = request.headers.get("x-api-key")
        bearer = request.headers.get("Authorization")
        if self.api_key is not None:
            if key is None and bearer is None:
                raise Rejection(401, error_body("authentication_error", "x-api-key header is required"))
            if key != self.api_key and bearer != f"Bearer {self.api_key}":
                raise Rejection(401, error_body("authentication_error", "invalid x-api-key"))
        if not request.headers.get("anthropic-version"):
            raise Rejection(400, error_body("invalid_request_error", "anthropic-version: header is required"))
        if request.method == "GET":
            return
        try:
            body = request.json()
        except ValueError:
            raise Rejection(
                400, error_body("invalid_request_error", "There was an error parsing the body of your request")
            ) from None
        try:
            validate(body)
        except Invalid as invalid:
            raise Rejection(400, error_body("invalid_request_error", invalid.message)) from None
        if self.models and body["model"] not in self.models:
            raise Rejection(404, error_body("not_found_error", f"model: {body['model']}"))

    def fixed_reply(self, request: RecordedRequest) -> Optional[Reply]:
        if request.method == "GET":
            return Reply(body=self.model_list(request.path), headers={"request-id": REQUEST_ID})
        return None

    def model_list(self, path: str = "/v1/models") -> Dict[str, Any]:
        """A page of ``GET /v1/models``: ``limit`` entries after ``after_id``."""
        from urllib.parse import parse_qs, urlsplit

        query = parse_qs(urlsplit(path).query)
        names = self.models or [DEFAULT_MODEL]
        after = (query.get("after_id") or [""])[0]
        start = names.index(after) + 1 if after in names else 0
        limit = int((query.get("limit") or ["20"])[0])
        page = names[start : start + limit]
        return {
            "data": [
                {"type": "model", "id": name, "display_name": name, "created_at": "2025-09-29T00:00:00Z"}
                for name in page
            ],
            "has_more": start + limit < len(names),
            "first_id": page[0] if page else None,
            "last_id": page[-1] if page else None,
        }

    def rich_reply(
        self, text: List[str], reasoning: List[str], tool_calls: List[ToolCallScript], fields: Dict[str, Any]
    ) -> Reply:
        """A thinking block, a text block and a ``tool_use`` block a call, in that order."""
        blocks: List[List[Dict[str, Any]]] = []
        if reasoning:
            blocks.append(thinking_block(0, reasoning))
        if text:
            blocks.append(text_block(len(blocks), text))
        for call_id, name, arguments in tool_calls:
            blocks.append(tool_use_block(len(blocks), call_id, name, [arguments]))
        stop = "tool_use" if tool_calls else "end_turn"
        return Reply(events=reply_events(blocks, stop_reason=stop), **fields)

    def make_default_reply(self, request: RecordedRequest) -> Reply:
        messages = request.json().get("messages") or [{}]
        last = messages[-1] if isinstance(messages[-1], dict) else {}
        text = _text_of(last.get("content"))
        return Reply(
            text=f"This is the llmclients emulator speaking Anthropic's Messages protocol. You said: {text}",
            delay=0.03,
        )

    def reply_headers(self, reply: Reply, request: RecordedRequest) -> Dict[str, str]:
        headers = {"request-id": REQUEST_ID}
        if not request.json().get("stream"):
            return {**headers, "Content-Type": "application/json"}
        return {**headers, "Content-Type": self.content_type, "Cache-Control": "no-cache"}

    def events(self, reply: Reply, request: RecordedRequest) -> Iterable[bytes]:
        for item in reply.events or ():
            if not isinstance(item, (dict, bytes)):
                raise TypeError(f"Reply.events items must be dicts (events) or bytes, not {type(item).__name__}")
        return self._events(reply, request.json())

    def _events(self, reply: Reply, body: Mapping[str, Any]) -> Iterator[bytes]:
        events = self._reply_events(reply, body)
        if not body.get("stream"):
            yield json.dumps(assemble(events)).encode()
            return
        for event in events:
            if isinstance(event, bytes):
                yield event
            elif (event.get("delta") or {}).get("type") == "text_delta":  # a content_block_delta of text
                yield DeltaEvent(serialize(event))
            else:
                yield serialize(event)

    def _reply_events(self, reply: Reply, body: Mapping[str, Any]) -> List[Any]:
        if reply.events is not None:
            return list(reply.events)
        pieces = reply.pieces()
        prompt = sum(len(_text_of(m.get("content")).split()) for m in body.get("messages") or () if isinstance(m, dict))
        usage = dict(reply.usage or {"input_tokens": prompt, "output_tokens": len(pieces)})
        stop = _STOP_REASONS.get(reply.finish_reason or "stop", reply.finish_reason or "end_turn")
        return reply_events([text_block(0, pieces)], stop_reason=stop, usage=usage, model=body.get("model") or DEFAULT_MODEL)


def _text_of(content: Any) -> str:
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        return " ".join(str(block.get("text", "")) for block in content if isinstance(block, dict) and block.get("type") == "text")
    return ""
