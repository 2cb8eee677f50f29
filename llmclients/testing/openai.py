"""An emulator of OpenAI's chat completions API, as OpenAI-compatible servers speak it.

It accepts ``POST /v1/chat/completions`` with a JSON body, answers ``stream:
true`` with ``chat.completion.chunk`` events (a role chunk, one chunk per
delta, a finish chunk, a usage chunk when ``stream_options.include_usage`` is
set, then ``data: [DONE]``), and ``stream: false`` with one
``chat.completion`` object. It refuses what such servers refuse, with OpenAI's
error body: a wrong path (404), a body that is not JSON or lacks ``model`` or
``messages`` (400), a missing or wrong key when ``api_key`` is set (401), a
model outside ``models`` when that is set (404 ``model_not_found``).
"""

from __future__ import annotations

import json
import time
from typing import Any, Dict, Iterable, List, Optional, Sequence

from .server import Emulator, RecordedRequest, Rejection, Reply

DEFAULT_MODEL = "emulator-1"


def _error(message: str, type_: str = "invalid_request_error", code: Optional[str] = None) -> Dict[str, Any]:
    return {"error": {"message": message, "type": type_, "param": None, "code": code}}


class OpenAIEmulator(Emulator):
    """Stands in for any OpenAI-compatible server."""

    provider = "openai"
    content_type = "text/event-stream; charset=utf-8"
    keepalive_bytes = b": keep-alive\n\n"
    base_path = "/v1"

    def __init__(self, *, api_key: Optional[str] = None, models: Sequence[str] = (), **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.api_key = api_key
        self.models = list(models)

    def check(self, request: RecordedRequest) -> None:
        if request.method != "POST" or request.path.split("?")[0] != "/v1/chat/completions":
            raise Rejection(
                404, _error(f"Unknown request URL: {request.method} {request.path}", code="unknown_url")
            )
        if self.api_key is not None and request.headers.get("Authorization") != f"Bearer {self.api_key}":
            raise Rejection(401, _error("Incorrect API key provided.", code="invalid_api_key"))
        try:
            body = request.json()
        except ValueError:
            raise Rejection(400, _error("We could not parse the JSON body of your request.")) from None
        if not isinstance(body, dict):
            raise Rejection(400, _error("The request body must be a JSON object."))
        for key in ("model", "messages"):
            if key not in body:
                raise Rejection(400, _error(f"you must provide a {key} parameter"))
        messages = body["messages"]
        if (
            not isinstance(messages, list)
            or not messages
            or not all(
                isinstance(m, dict) and isinstance(m.get("role"), str) and "content" in m for m in messages
            )
        ):
            raise Rejection(400, _error("'messages' must be a non-empty list of {role, content} objects"))
        if self.models and body["model"] not in self.models:
            raise Rejection(
                404,
                _error(f"The model `{body['model']}` does not exist.", code="model_not_found"),
            )

    def make_default_reply(self, request: RecordedRequest) -> Reply:
        prompt = request.json()["messages"][-1]["content"]
        return Reply(
            text=f"This is the llmclients emulator speaking the OpenAI chat completions protocol. You said: {prompt}",
            delay=0.03,
        )

    def events(self, reply: Reply, request: RecordedRequest) -> Iterable[bytes]:
        body = request.json()
        model = body.get("model") or DEFAULT_MODEL
        pieces = reply.pieces()
        if not body.get("stream"):
            yield json.dumps(self._whole(model, "".join(pieces), reply)).encode()
            return
        created = int(time.time())

        def chunk(delta: Dict[str, Any], finish: Optional[str] = None, **extra: Any) -> bytes:
            data = {
                "id": "chatcmpl-emulator",
                "object": "chat.completion.chunk",
                "created": created,
                "model": model,
                "choices": [{"index": 0, "delta": delta, "finish_reason": finish}],
                **extra,
            }
            return b"data: " + json.dumps(data, ensure_ascii=False).encode() + b"\n\n"

        yield chunk({"role": "assistant", "content": ""})
        for piece in pieces:
            yield chunk({"content": piece})
        if reply.finish_reason:
            yield chunk({}, reply.finish_reason)
        if (body.get("stream_options") or {}).get("include_usage"):
            usage = reply.usage or _usage(body["messages"], pieces)
            usage_chunk = json.loads(chunk({})[6:])
            usage_chunk["choices"] = []
            usage_chunk["usage"] = usage
            yield b"data: " + json.dumps(usage_chunk).encode() + b"\n\n"
        yield b"data: [DONE]\n\n"

    def reply_headers(self, reply: Reply, request: RecordedRequest) -> Dict[str, str]:
        if not request.json().get("stream"):
            return {"Content-Type": "application/json"}
        return {"Content-Type": self.content_type, "Cache-Control": "no-cache"}

    def _whole(self, model: str, text: str, reply: Reply) -> Dict[str, Any]:
        return {
            "id": "chatcmpl-emulator",
            "object": "chat.completion",
            "created": int(time.time()),
            "model": model,
            "choices": [
                {
                    "index": 0,
                    "message": {"role": "assistant", "content": text},
                    "finish_reason": reply.finish_reason,
                }
            ],
            "usage": reply.usage or _usage([], reply.pieces()),
        }


def _usage(messages: List[Dict[str, Any]], pieces: List[str]) -> Dict[str, int]:
    prompt = sum(len(str(m.get("content", "")).split()) for m in messages)
    completion = len(pieces)
    return {"prompt_tokens": prompt, "completion_tokens": completion, "total_tokens": prompt + completion}
