"""An emulator of OpenAI's chat completions API, as OpenAI-compatible servers speak it.

It accepts ``POST /v1/chat/completions`` with a JSON body, answers ``stream:
true`` with ``chat.completion.chunk`` events (a role chunk, one chunk per
delta, a finish chunk, a usage chunk when ``stream_options.include_usage`` is
set, then ``data: [DONE]``), and ``stream: false`` with one
``chat.completion`` object. With ``n`` above 1 it streams that many choices,
interleaved. It refuses what OpenAI refuses, with OpenAI's error body
(``{"error": {"message", "type", "param", "code"}}``): a wrong path (404), a
missing or wrong key when ``api_key`` is set (401), a body that is not JSON or
breaks the API's rules (400, see *Validation* below), a model outside
``models`` when that is set (404 ``model_not_found``).

Scripting other stream shapes (``Reply(events=...)``) and the builders of
such events are in :mod:`llmclients.testing._openai_events` (what particular
servers send in :mod:`llmclients.testing._openai_servers`); what the emulator
refuses with a 400 is in :mod:`llmclients.testing._openai_validation`. The
builders can be imported from here too.
"""

from __future__ import annotations

import json
import time
from typing import Any, Dict, Iterable, Iterator, List, Mapping, Optional, Sequence, Tuple

from .._public import expose
from ._openai_events import (
    BOM,
    OPENROUTER_PROCESSING,
    TOOL_CALL_SHAPES,
    Event,
    SplitChunk,
    choices_chunks,
    reasoning_chunks,
    serialize,
    text_chunks,
    tool_call_chunks,
    usage_chunk,
    with_system_fingerprint,
)
from ._openai_servers import error_event, exceed_context_error, llamacpp_final_chunks, llamacpp_timings
from ._openai_validation import Invalid, validate
from ._server import Emulator, RecordedRequest, Rejection, Reply, ToolCallScript
from .wire import WireSample

__all__ = [
    "BOM",
    "DEFAULT_MODEL",
    "OPENROUTER_PROCESSING",
    "TOOL_CALL_SHAPES",
    "OpenAIEmulator",
    "SplitChunk",
    "choices_chunks",
    "error_event",
    "exceed_context_error",
    "llamacpp_final_chunks",
    "llamacpp_timings",
    "reasoning_chunks",
    "text_chunks",
    "tool_call_chunks",
    "usage_chunk",
    "with_system_fingerprint",
]

expose(globals(), __name__, __all__)

DEFAULT_MODEL = "emulator-1"


def _error(
    message: str,
    type_: str = "invalid_request_error",
    code: Optional[str] = None,
    param: Optional[str] = None,
) -> Dict[str, Any]:
    return {"error": {"message": message, "type": type_, "param": param, "code": code}}


def _text_of(content: Any) -> str:
    """A message content as plain text: a str as is, a list's text parts joined."""
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        return " ".join(
            str(part.get("text", ""))
            for part in content
            if isinstance(part, dict) and part.get("type") == "text"
        )
    return ""


class OpenAIEmulator(Emulator):
    """Stands in for any OpenAI-compatible server; ``Reply.events`` takes chunks and bytes."""

    provider = "openai"
    content_type = "text/event-stream; charset=utf-8"
    keepalive_bytes = b": keep-alive\n\n"
    base_path = "/v1"
    wire = WireSample(
        text_event=b'data: {"choices": [{"index": 0, "delta": {"content": "%s"}}]}\n\n',
        epilogue=b'data: {"choices": [{"delta": {}, "finish_reason": "stop"}]}\n\ndata: [DONE]\n\n',
        garbage=b"data: {not json\n\n",
        keepalive=b": keep-alive\n\n",
        cut=900,
        model=DEFAULT_MODEL,
        content_types=(
            None,
            "text/plain; charset=utf-8",
            "Text/Event-Stream; Charset=UTF-8",
            "application/octet-stream",
        ),
    )

    def __init__(
        self,
        *,
        api_key: Optional[str] = None,
        models: Sequence[str] = (),
        ignore_stream: bool = False,
        **kwargs: Any,
    ) -> None:
        """``ignore_stream=True`` answers every request with one ``chat.completion``
        (``application/json``), as servers and gateways that cannot stream do."""
        super().__init__(**kwargs)
        self.api_key = api_key
        self.models = list(models)
        self.ignore_stream = ignore_stream

    def check(self, request: RecordedRequest) -> None:
        route = (request.method, request.path.split("?")[0])
        if route not in (("POST", "/v1/chat/completions"), ("GET", "/v1/models")):
            raise Rejection(
                404, _error(f"Unknown request URL: {request.method} {request.path}", code="unknown_url")
            )
        if self.api_key is not None and request.headers.get("Authorization") != f"Bearer {self.api_key}":
            raise Rejection(401, _error("Incorrect API key provided.", code="invalid_api_key"))
        if request.method == "GET":
            return  # the model list: fixed_reply() answers it
        try:
            body = request.json()
        except ValueError:
            raise Rejection(400, _error("We could not parse the JSON body of your request.")) from None
        if not isinstance(body, dict):
            raise Rejection(400, _error("The request body must be a JSON object."))
        if "model" not in body:
            raise Rejection(400, _error("you must provide a model parameter"))
        if "messages" not in body:
            raise Rejection(
                400,
                _error(
                    "Missing required parameter: 'messages'.",
                    code="missing_required_parameter",
                    param="messages",
                ),
            )
        try:
            validate(body)
        except Invalid as invalid:
            raise Rejection(400, _error(invalid.message, code=invalid.code, param=invalid.param)) from None
        if self.models and body["model"] not in self.models:
            raise Rejection(
                404,
                _error(f"The model `{body['model']}` does not exist.", code="model_not_found"),
            )

    def fixed_reply(self, request: RecordedRequest) -> Optional[Reply]:
        if request.method == "GET":  # check() let only /v1/models through
            return Reply(body=self.model_list())
        return None

    def model_list(self) -> Dict[str, Any]:
        """What ``GET /v1/models`` answers: the ``models`` given, else the one
        model the command names for emulators (``emulator-1``), as a
        single-model server (llama.cpp) lists its own."""
        names = self.models or ["emulator-1"]
        return {
            "object": "list",
            "data": [
                {"id": name, "object": "model", "created": 0, "owned_by": "llmclients"} for name in names
            ],
        }

    def rich_reply(
        self, text: List[str], reasoning: List[str], tool_calls: List[ToolCallScript], fields: Dict[str, Any]
    ) -> Reply:
        """Reasoning (``reasoning_content`` deltas) before the text, and tool
        calls (OpenAI's fragments) after it."""
        finish = fields.pop("finish_reason", "tool_calls" if tool_calls else "stop")
        events: List[Event] = []
        if reasoning:
            events += reasoning_chunks(reasoning, then_text=text, finish_reason=None if tool_calls else finish)
        if tool_calls:
            content = [] if reasoning else text  # after reasoning, the text came with it
            events += tool_call_chunks(tool_calls, content=content, finish_reason=finish)
        return Reply(events=events, **fields)

    def make_default_reply(self, request: RecordedRequest) -> Reply:
        messages = request.json().get("messages") or [{}]
        last = messages[-1] if isinstance(messages[-1], dict) else {}
        text = _text_of(last.get("content"))
        said = f"The tool returned: {text}" if last.get("role") == "tool" else f"You said: {text}"
        return Reply(
            text=f"This is the llmclients emulator speaking the OpenAI chat completions protocol. {said}",
            delay=0.03,
        )

    def events(self, reply: Reply, request: RecordedRequest) -> Iterable[bytes]:
        # Checked here, before the status line goes out, not halfway through a 200.
        for item in reply.events or ():
            if not isinstance(item, (dict, bytes)):
                raise TypeError(
                    f"Reply.events items must be dicts (chunks) or bytes, not {type(item).__name__}"
                )
        return self._events(reply, request.json())

    def _events(self, reply: Reply, body: Mapping[str, Any]) -> Iterator[bytes]:
        model = body.get("model") or DEFAULT_MODEL
        created = int(time.time())
        if not body.get("stream") or self.ignore_stream:
            yield json.dumps(self._whole(body, model, created, reply)).encode()
            return
        envelope = {
            "id": "chatcmpl-emulator",
            "object": "chat.completion.chunk",
            "created": created,
            "model": model,
        }
        if reply.events is not None:
            for item in reply.events:
                yield from serialize(item, envelope)
            if reply.finish_reason is not None:
                yield b"data: [DONE]\n\n"
            return
        pieces = reply.pieces()
        n = body.get("n") or 1
        chunks: List[Event]
        if n == 1:
            chunks = text_chunks(pieces, finish_reason=reply.finish_reason or None)
        else:
            chunks = choices_chunks([pieces] * n, finish_reason=reply.finish_reason or None)
        if (body.get("stream_options") or {}).get("include_usage"):
            usage = reply.usage or _usage(body["messages"], pieces, n)
            chunks.append({"choices": [], "usage": usage})
        for chunk in chunks:
            yield from serialize(chunk, envelope)
        yield b"data: [DONE]\n\n"

    def reply_headers(self, reply: Reply, request: RecordedRequest) -> Dict[str, str]:
        if not request.json().get("stream") or self.ignore_stream:
            return {"Content-Type": "application/json"}
        return {"Content-Type": self.content_type, "Cache-Control": "no-cache"}

    def _whole(self, body: Mapping[str, Any], model: str, created: int, reply: Reply) -> Dict[str, Any]:
        extra: Dict[str, Any] = {}
        if reply.events is not None:
            chunks = [item for item in reply.events if isinstance(item, dict)]
            choices, extra = _assemble(chunks)
            usage = reply.usage or extra.pop("usage", None) or _usage(body["messages"], [], 1)
        else:
            pieces = reply.pieces()
            n = body.get("n") or 1
            choices = [
                {
                    "index": i,
                    "message": {"role": "assistant", "content": "".join(pieces)},
                    "logprobs": None,
                    "finish_reason": reply.finish_reason,
                }
                for i in range(n)
            ]
            usage = reply.usage or _usage(body["messages"], pieces, n)
        return {
            "id": "chatcmpl-emulator",
            "object": "chat.completion",
            "created": created,
            "model": model,
            "choices": choices,
            "usage": usage,
            **extra,
        }


def _assemble(chunks: Sequence[Dict[str, Any]]) -> Tuple[List[Dict[str, Any]], Dict[str, Any]]:
    """The choices of the ``chat.completion`` that streamed ``chunks`` add up to,
    and its other keys (``usage``, ``system_fingerprint``, ``timings``)."""
    messages: Dict[int, Dict[str, Any]] = {}
    finish: Dict[int, Optional[str]] = {}
    logprobs: Dict[int, List[Any]] = {}
    calls: Dict[int, Tuple[List[Dict[str, Any]], Dict[Any, Dict[str, Any]]]] = {}
    extra: Dict[str, Any] = {}
    for chunk in chunks:
        for key in ("usage", "system_fingerprint", "timings"):
            if chunk.get(key) is not None:
                extra[key] = chunk[key]
        for choice in chunk.get("choices") or ():
            i = choice.get("index", 0)
            message = messages.setdefault(i, {"role": "assistant", "content": None})
            finish.setdefault(i, None)
            delta = choice.get("delta") or {}
            for key in ("content", "reasoning_content", "reasoning", "refusal"):
                if isinstance(delta.get(key), str):
                    message[key] = (message.get(key) or "") + delta[key]
            for fragment in delta.get("tool_calls") or ():
                _add_fragment(calls.setdefault(i, ([], {})), fragment)
            if (choice.get("logprobs") or {}).get("content"):
                logprobs.setdefault(i, []).extend(choice["logprobs"]["content"])
            if choice.get("finish_reason"):
                finish[i] = choice["finish_reason"]
    choices = []
    for i in sorted(messages):
        message = messages[i]
        if i in calls:
            message["tool_calls"] = calls[i][0]
        choices.append(
            {
                "index": i,
                "message": message,
                "logprobs": {"content": logprobs[i], "refusal": None} if i in logprobs else None,
                "finish_reason": finish[i],
            }
        )
    return choices, extra


def _add_fragment(
    calls: Tuple[List[Dict[str, Any]], Dict[Any, Dict[str, Any]]], fragment: Mapping[str, Any]
) -> None:
    """Add a tool call fragment to ``calls`` (the calls so far, and the current one per index).

    A fragment belongs to the call at its ``index`` (or the last one, without
    an index) unless it brings an ``id`` other than that call's: then it
    starts a new call, as when a server gives every call the same index.
    """
    found, current = calls
    key = fragment.get("index")
    call = current.get(key)
    call_id = fragment.get("id")
    if call is None or (call_id is not None and call["id"] is not None and call_id != call["id"]):
        call = {"id": None, "type": "function", "function": {"name": "", "arguments": ""}}
        found.append(call)
        current[key] = call
    if call_id is not None:
        call["id"] = call_id
    function = fragment.get("function") or {}
    call["function"]["name"] += function.get("name") or ""
    call["function"]["arguments"] += function.get("arguments") or ""


def _usage(messages: List[Any], pieces: List[str], n: int = 1) -> Dict[str, int]:
    prompt = sum(len(_text_of(m.get("content")).split()) for m in messages if isinstance(m, dict))
    completion = len(pieces) * n
    return {"prompt_tokens": prompt, "completion_tokens": completion, "total_tokens": prompt + completion}
