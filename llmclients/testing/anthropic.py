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
builders below make them: :func:`message_start`, :func:`text_block`,
:func:`thinking_block`, :func:`redacted_thinking_block`,
:func:`tool_use_block` (its input in fragments split anywhere),
:func:`message_delta`, :func:`message_stop`, :func:`ping`,
:func:`error_event`; :func:`reply_events` a whole reply of them. An error
status is ``Reply(status=529, body=error_body("overloaded_error", ...),
headers={"retry-after-ms": ..., "x-should-retry": ...})``.
"""

from __future__ import annotations

import hashlib
import json
from typing import Any, Dict, Iterable, Iterator, List, Mapping, Optional, Sequence

from .._public import expose
from ._server import Emulator, RecordedRequest, Rejection, Reply
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

DEFAULT_MODEL = "claude-sonnet-4-5"
#: The stop reason for each finish reason a ``Reply`` names.
_STOP_REASONS = {
    "stop": "end_turn",
    "length": "max_tokens",
    "tool_calls": "tool_use",
    "content_filter": "refusal",
}
#: The request keys the API takes (any other is "Extra inputs are not permitted").
_KEYS = frozenset(
    {
        "model",
        "messages",
        "max_tokens",
        "system",
        "stream",
        "metadata",
        "stop_sequences",
        "temperature",
        "top_p",
        "top_k",
        "tools",
        "tool_choice",
        "thinking",
        "service_tier",
        "container",
        "mcp_servers",
        "output_config",
    }
)
_BLOCK_TYPES = frozenset(
    {"text", "image", "document", "tool_use", "tool_result", "thinking", "redacted_thinking", "search_result"}
)
_IMAGE_TYPES = ("image/jpeg", "image/png", "image/gif", "image/webp")
_REQUEST_ID = "req_emulator"


# --- events ---------------------------------------------------------------------------------


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
    return {"type": "error", "error": {"type": type, "message": message or _MESSAGES.get(type, type)}, "request_id": _REQUEST_ID}


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


# --- the server -------------------------------------------------------------------------------


class _Invalid(Exception):
    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


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
            _validate(body)
        except _Invalid as invalid:
            raise Rejection(400, error_body("invalid_request_error", invalid.message)) from None
        if self.models and body["model"] not in self.models:
            raise Rejection(404, error_body("not_found_error", f"model: {body['model']}"))

    def fixed_reply(self, request: RecordedRequest) -> Optional[Reply]:
        if request.method == "GET":
            return Reply(body=self.model_list(request.path), headers={"request-id": _REQUEST_ID})
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

    def make_default_reply(self, request: RecordedRequest) -> Reply:
        messages = request.json().get("messages") or [{}]
        last = messages[-1] if isinstance(messages[-1], dict) else {}
        text = _text_of(last.get("content"))
        return Reply(
            text=f"This is the llmclients emulator speaking Anthropic's Messages protocol. You said: {text}",
            delay=0.03,
        )

    def reply_headers(self, reply: Reply, request: RecordedRequest) -> Dict[str, str]:
        headers = {"request-id": _REQUEST_ID}
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
            yield json.dumps(_assemble(events)).encode()
            return
        for event in events:
            yield event if isinstance(event, bytes) else serialize(event)

    def _reply_events(self, reply: Reply, body: Mapping[str, Any]) -> List[Any]:
        if reply.events is not None:
            return list(reply.events)
        pieces = reply.pieces()
        prompt = sum(len(_text_of(m.get("content")).split()) for m in body.get("messages") or () if isinstance(m, dict))
        usage = dict(reply.usage or {"input_tokens": prompt, "output_tokens": len(pieces)})
        stop = _STOP_REASONS.get(reply.finish_reason or "stop", reply.finish_reason or "end_turn")
        return reply_events([text_block(0, pieces)], stop_reason=stop, usage=usage, model=body.get("model") or DEFAULT_MODEL)


def _assemble(events: Sequence[Any]) -> Dict[str, Any]:
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


def _text_of(content: Any) -> str:
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        return " ".join(str(block.get("text", "")) for block in content if isinstance(block, dict) and block.get("type") == "text")
    return ""


# --- validation -------------------------------------------------------------------------------


def _validate(body: Any) -> None:
    """Raise :class:`_Invalid` with the API's message for a request it refuses."""
    if not isinstance(body, dict):
        raise _Invalid("Input should be a valid dictionary or object to extract fields from")
    for key in ("model", "messages", "max_tokens"):
        if key not in body:
            raise _Invalid(f"{key}: Field required")
    extra = sorted(set(body) - _KEYS)
    if extra:
        raise _Invalid(f"{extra[0]}: Extra inputs are not permitted")
    max_tokens = body["max_tokens"]
    if not isinstance(max_tokens, int) or isinstance(max_tokens, bool) or max_tokens < 1:
        raise _Invalid("max_tokens: Input should be a valid integer greater than or equal to 1")
    thinking = body.get("thinking")
    if thinking is not None:
        _validate_thinking(thinking, max_tokens)
    _validate_system(body.get("system"))
    for n, tool in enumerate(body.get("tools") or ()):
        if not isinstance(tool, dict) or not isinstance(tool.get("name"), str):
            raise _Invalid(f"tools.{n}.name: Field required")
        if "type" not in tool and not isinstance(tool.get("input_schema"), dict):
            raise _Invalid(f"tools.{n}.custom.input_schema: Field required")
    choice = body.get("tool_choice")
    if choice is not None and (not isinstance(choice, dict) or choice.get("type") not in ("auto", "any", "tool", "none")):
        raise _Invalid("tool_choice: Input tag does not match any of the expected tags: 'auto', 'any', 'tool', 'none'")
    if choice is not None and choice["type"] == "tool" and not isinstance(choice.get("name"), str):
        raise _Invalid("tool_choice.tool.name: Field required")
    messages = body["messages"]
    if not isinstance(messages, list) or not messages:
        raise _Invalid("messages: at least one message is required")
    thinking_on = isinstance(thinking, dict) and thinking.get("type") in ("enabled", "adaptive")
    if thinking_on:
        _validate_with_thinking(body)
    last_assistant = max((n for n, m in enumerate(messages) if isinstance(m, dict) and m.get("role") == "assistant"), default=-1)
    for n, message in enumerate(messages):
        _validate_message(n, message, messages, thinking_on and n == last_assistant)


def _validate_with_thinking(body: Mapping[str, Any]) -> None:
    """What the API refuses beside thinking: sampling it does not allow, a forced tool."""
    if body.get("temperature") not in (None, 1, 1.0):
        raise _Invalid("`temperature` may only be set to 1 when thinking is enabled. Please consult our documentation at https://docs.claude.com/en/docs/build-with-claude/extended-thinking#feature-compatibility")
    if body.get("top_k") is not None:
        raise _Invalid("`top_k` must be unset when thinking is enabled. Please consult our documentation at https://docs.claude.com/en/docs/build-with-claude/extended-thinking#feature-compatibility")
    choice = body.get("tool_choice")
    if isinstance(choice, dict) and choice.get("type") in ("any", "tool"):
        raise _Invalid("Thinking may not be enabled when tool_choice forces tool use.")


def _validate_thinking(thinking: Any, max_tokens: int) -> None:
    if not isinstance(thinking, dict) or thinking.get("type") not in ("enabled", "disabled", "adaptive"):
        raise _Invalid("thinking: Input tag does not match any of the expected tags: 'enabled', 'disabled', 'adaptive'")
    if thinking["type"] != "enabled":
        return
    budget = thinking.get("budget_tokens")
    if not isinstance(budget, int) or isinstance(budget, bool):
        raise _Invalid("thinking.enabled.budget_tokens: Field required")
    if budget < 1024:
        raise _Invalid("thinking.enabled.budget_tokens: Input should be greater than or equal to 1024")
    if max_tokens <= budget:
        raise _Invalid("`max_tokens` must be greater than `thinking.budget_tokens`.")


def _validate_system(system: Any) -> None:
    if system is None or isinstance(system, str):
        return
    if not isinstance(system, list):
        raise _Invalid("system: Input should be a valid list")
    for n, block in enumerate(system):
        if not isinstance(block, dict) or block.get("type") != "text" or not isinstance(block.get("text"), str):
            raise _Invalid(f"system.{n}: Input should be a text block")


def _validate_message(n: int, message: Any, messages: List[Any], final_with_thinking: bool) -> None:
    """One turn; ``final_with_thinking``: the last assistant turn of a request with thinking on."""
    where = f"messages.{n}"
    if not isinstance(message, dict):
        raise _Invalid(f"{where}: Input should be a valid dictionary")
    role = message.get("role")
    if role == "system":
        raise _Invalid(
            'messages: Unexpected role "system". The Messages API accepts a top-level `system` parameter, '
            'not "system" as an input message role.'
        )
    if role not in ("user", "assistant"):
        raise _Invalid(f"{where}.role: Input should be 'user' or 'assistant'")
    content = message.get("content")
    last = n == len(messages) - 1
    if isinstance(content, str):
        if not content and not (last and role == "assistant"):
            raise _Invalid(f"{where}: all messages must have non-empty content except for the optional final assistant message")
        return
    if not isinstance(content, list):
        raise _Invalid(f"{where}.content: Input should be a valid string or list")
    if not content and not (last and role == "assistant"):
        raise _Invalid(f"{where}: all messages must have non-empty content except for the optional final assistant message")
    for m, block in enumerate(content):
        _validate_block(f"{where}.content.{m}", block, role)
    if role == "assistant":
        _validate_thinking_blocks(where, content, final_with_thinking)
        uses = [block["id"] for block in content if block["type"] == "tool_use"]
        following = messages[n + 1] if n + 1 < len(messages) else None
        answered = {
            block.get("tool_use_id")
            for block in (following or {}).get("content") or ()
            if isinstance(following, dict) and isinstance(block, dict) and block.get("type") == "tool_result"
        }
        missing = [id for id in uses if id not in answered]
        if missing and following is not None:
            raise _Invalid(
                f"{where}: `tool_use` ids were found without `tool_result` blocks immediately after: "
                f"{', '.join(missing)}. Each `tool_use` block must have a corresponding `tool_result` block "
                "in the next message."
            )
    else:
        before = messages[n - 1] if n else {}
        previous = before.get("content") if isinstance(before, dict) else None
        called = {
            block.get("id")
            for block in (previous if isinstance(previous, list) else ())
            if isinstance(block, dict) and block.get("type") == "tool_use"
        }
        for m, block in enumerate(content):
            if block["type"] == "tool_result" and block.get("tool_use_id") not in called:
                raise _Invalid(
                    f"{where}.content.{m}: unexpected `tool_use_id` found in `tool_result` blocks: "
                    f"{block.get('tool_use_id')}. Each `tool_result` block must have a corresponding "
                    "`tool_use` block in the previous message."
                )


def _validate_block(where: str, block: Any, role: str) -> None:
    if not isinstance(block, dict) or block.get("type") not in _BLOCK_TYPES:
        kind = block.get("type") if isinstance(block, dict) else None
        raise _Invalid(f"{where}.type: Input tag '{kind}' found using 'type' does not match any of the expected tags")
    kind = block["type"]
    if kind == "text" and not isinstance(block.get("text"), str):
        raise _Invalid(f"{where}.text.text: Field required")
    if kind == "image":
        _validate_image(where, block.get("source"))
    if kind in ("tool_use", "thinking", "redacted_thinking") and role != "assistant":
        raise _Invalid(f"{where}: `{kind}` blocks can only be in `assistant` messages")
    if kind == "tool_result" and role != "user":
        raise _Invalid(f"{where}: `tool_result` blocks can only be in `user` messages")
    if kind == "tool_use":
        if not isinstance(block.get("id"), str) or not isinstance(block.get("name"), str):
            raise _Invalid(f"{where}.tool_use.id: Field required")
        if not isinstance(block.get("input"), dict):
            raise _Invalid(f"{where}.tool_use.input: Input should be a valid dictionary")
    if kind == "thinking" and block.get("signature") != sign(str(block.get("thinking"))):
        raise _Invalid(f"{where}: Invalid `signature` in `thinking` block")
    if kind == "redacted_thinking" and not isinstance(block.get("data"), str):
        raise _Invalid(f"{where}.redacted_thinking.data: Field required")


def _validate_image(where: str, source: Any) -> None:
    if not isinstance(source, dict):
        raise _Invalid(f"{where}.image.source: Field required")
    if source.get("type") == "base64":
        if source.get("media_type") not in _IMAGE_TYPES:
            raise _Invalid(
                f"{where}.image.source.base64.media_type: Input should be 'image/jpeg', 'image/png', 'image/gif' or 'image/webp'"
            )
        if not isinstance(source.get("data"), str) or not source["data"]:
            raise _Invalid(f"{where}.image.source.base64.data: Field required")
    elif source.get("type") == "url":
        if not isinstance(source.get("url"), str) or not source["url"].startswith(("http://", "https://")):
            raise _Invalid(f"{where}.image.source.url.url: Input should be a valid URL")
    else:
        raise _Invalid(f"{where}.image.source: Input tag does not match any of the expected tags: 'base64', 'url', 'file'")


def _validate_thinking_blocks(where: str, content: List[Dict[str, Any]], final_with_thinking: bool) -> None:
    """With thinking on, the last assistant turn, if it calls tools, starts
    with its thinking block: the API wants it back (earlier turns' it drops)."""
    if not final_with_thinking or not any(block["type"] == "tool_use" for block in content):
        return
    if content[0]["type"] not in ("thinking", "redacted_thinking"):
        raise _Invalid(
            f"{where}.content.0.type: Expected `thinking` or `redacted_thinking`, but found `{content[0]['type']}`. "
            "When `thinking` is enabled, a final `assistant` message must start with a thinking block "
            "(preceeding the lastmost set of `tool_use` and `tool_result` blocks). To avoid this requirement, "
            "disable `thinking`."
        )
