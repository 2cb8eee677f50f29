"""An emulator of AutonomousAI's chat API (``chatgpt.autonomous.ai/api/v1/ai``).

It serves ``POST /api/v1/ai/chat`` (agents ``llama`` and ``qwen_coder``),
``/chat-hermes`` (``hermes``), ``/chat-vision`` (``vision``) and ``/summary``
(``summary``). A request's JSON body must carry ``messages`` (padded standard
base64 of a JSON list of ``{"role", "content"}``), ``threadId``, ``stream`` and
``aiAgent``. The ``vision`` agent also takes a ``content`` that is a list of
OpenAI content parts (``text`` and ``image_url``), the only place an image can
go in this protocol; the other agents refuse one (an assumption: nothing public
shows what the real server does). ``stream: true`` is answered with ``chat.completion.chunk`` events
and ``data: [DONE]``; ``stream: false`` with one JSON object
``{"choices": [{"message": {...}}]}``.

Where the finish reason goes is unknown for the real server, so it is a
setting: ``finish_reason_at="choices"`` (OpenAI's place, the default) or
``"top"`` (a top-level ``finish_reason`` key, which gpt4free reads).

The real server's error statuses and bodies are unknown: the emulator answers
a wrong path with 404, and a request it cannot use (wrong agent for the path,
bad base64, messages that are not JSON, missing fields) with 400, each with a
JSON ``{"error": {"message": ...}}`` body.
"""

from __future__ import annotations

import base64
import json
import time
from typing import Any, Dict, Iterable, List, Optional

from ._server import DeltaEvent, Emulator, RecordedRequest, Rejection, Reply
from .wire import WireSample

BASE_PATH = "/api/v1/ai"
#: The agent each path serves (stated here, not taken from the client, so that
#: the emulator checks the client's table instead of sharing its mistakes).
ENDPOINTS = {
    "llama": "chat",
    "qwen_coder": "chat",
    "hermes": "chat-hermes",
    "vision": "chat-vision",
    "summary": "summary",
}
FIELDS = ("messages", "threadId", "stream", "aiAgent")


def _error(status: int, message: str) -> Rejection:
    # Assumed shape: nothing public shows the real server's error bodies.
    return Rejection(status, {"error": {"message": message}})


def _parts(content: Any) -> bool:
    """Whether ``content`` is a non-empty list of well-formed text and image_url parts."""

    def good(part: Any) -> bool:
        if not isinstance(part, dict):
            return False
        if part.get("type") == "text":
            return isinstance(part.get("text"), str)
        image = part.get("image_url")
        return (
            part.get("type") == "image_url" and isinstance(image, dict) and isinstance(image.get("url"), str)
        )

    return isinstance(content, list) and bool(content) and all(good(part) for part in content)


def _text_of(content: Any) -> str:
    if isinstance(content, list):
        return "\n".join(part["text"] for part in content if part["type"] == "text")
    return str(content)


class AutonomousAIEmulator(Emulator):
    """Stands in for ``chatgpt.autonomous.ai``; point a client at :attr:`base_url`."""

    provider = "autonomous"
    content_type = "text/event-stream; charset=utf-8"
    wire = WireSample(
        text_event=b'data: {"choices": [{"index": 0, "delta": {"content": "%s"}}]}\n\n',
        epilogue=b"data: [DONE]\n\n",
        garbage=b"data: {not json\n\n",
        keepalive=b": ping\n\n",  # the service sends none; the decoder must skip one all the same
        cut=900,
        content_types=(None, "text/plain"),
    )
    base_path = BASE_PATH

    def __init__(
        self, *, finish_reason_at: str = "choices", ignore_stream: bool = False, **kwargs: Any
    ) -> None:
        """``ignore_stream=True`` answers ``stream: true`` as ``stream: false`` (one JSON object)."""
        super().__init__(**kwargs)
        if finish_reason_at not in ("choices", "top"):
            raise ValueError('finish_reason_at must be "choices" or "top"')
        self.finish_reason_at = finish_reason_at
        self.ignore_stream = ignore_stream

    # --- what the server accepts ------------------------------------------------------

    def check(self, request: RecordedRequest) -> None:
        path = request.path.split("?")[0]
        endpoint = path[len(BASE_PATH) + 1 :] if path.startswith(BASE_PATH + "/") else None
        if request.method != "POST" or endpoint not in ENDPOINTS.values():
            raise _error(404, f"Cannot {request.method} {path}")
        try:
            body = request.json()
        except ValueError:
            raise _error(400, "the body is not JSON") from None
        if not isinstance(body, dict):
            raise _error(400, "the body is not a JSON object")
        missing = [name for name in FIELDS if name not in body]
        if missing:
            raise _error(400, f"missing fields: {', '.join(missing)}")
        if not isinstance(body["stream"], bool) or not isinstance(body["threadId"], str):
            raise _error(400, "stream must be a boolean and threadId a string")
        if not isinstance(body["aiAgent"], str) or ENDPOINTS.get(body["aiAgent"]) != endpoint:
            raise _error(400, f"aiAgent {body['aiAgent']!r} is not served by {path}")
        self.messages_of(request)

    @staticmethod
    def messages_of(request: RecordedRequest) -> List[Dict[str, Any]]:
        """The message list a request carries, decoded; :class:`Rejection` if it is bad."""
        body = request.json()
        field = body.get("messages")
        if not isinstance(field, str):
            raise _error(400, "messages must be a base64 string")
        try:
            messages = json.loads(base64.b64decode(field, validate=True).decode("utf-8"))
        except ValueError:  # bad base64 (binascii.Error), not UTF-8, or not JSON
            raise _error(400, "messages is not base64 of a JSON message list") from None
        if (
            not isinstance(messages, list)
            or not messages
            or not all(isinstance(m, dict) and isinstance(m.get("role"), str) for m in messages)
        ):
            raise _error(400, "messages must be a non-empty list of {role, content} objects")
        for message in messages:
            content = message.get("content")
            if isinstance(content, list) and body.get("aiAgent") != "vision":
                raise _error(400, "content parts (a list) are taken by the vision agent only")
            if not isinstance(content, str) and not _parts(content):
                raise _error(400, "content must be a string or a list of text and image_url parts")
        return messages

    # --- what it answers ----------------------------------------------------------------

    def make_default_reply(self, request: RecordedRequest) -> Reply:
        prompt = _text_of(self.messages_of(request)[-1]["content"])
        agent = request.json()["aiAgent"]
        return Reply(
            text=f"Hello from the AutonomousAI emulator ({agent}). You said: {prompt}",
            delay=0.03,
        )

    def reply_headers(self, reply: Reply, request: RecordedRequest) -> Dict[str, str]:
        if not request.json()["stream"] or self.ignore_stream:
            return {"Content-Type": "application/json"}
        return {"Content-Type": self.content_type, "Cache-Control": "no-cache"}

    def events(self, reply: Reply, request: RecordedRequest) -> Iterable[bytes]:
        body = request.json()
        agent, pieces = body["aiAgent"], reply.pieces()
        if not body["stream"] or self.ignore_stream:
            choice = {"index": 0, "message": {"role": "assistant", "content": "".join(pieces)}}
            yield json.dumps({"choices": [{**choice, "finish_reason": reply.finish_reason}]}).encode()
            return
        created = int(time.time())

        def chunk(delta: Dict[str, Any], finish: Optional[str] = None) -> bytes:
            data: Dict[str, Any] = {
                "id": f"chatcmpl-{body['threadId']}",
                "object": "chat.completion.chunk",
                "created": created,
                "model": agent,
                "choices": [{"index": 0, "delta": delta, "finish_reason": None}],
            }
            if finish and self.finish_reason_at == "choices":
                data["choices"][0]["finish_reason"] = finish
            elif finish:
                data["finish_reason"] = finish
            return b"data: " + json.dumps(data, ensure_ascii=False).encode() + b"\n\n"

        yield chunk({"role": "assistant", "content": ""})
        for piece in pieces:
            yield DeltaEvent(chunk({"content": piece}))
        if reply.finish_reason:
            yield chunk({}, reply.finish_reason)
        yield b"data: [DONE]\n\n"
