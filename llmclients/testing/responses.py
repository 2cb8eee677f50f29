"""An emulator of OpenAI's Responses API (``POST /v1/responses``, named SSE events).

It answers ``stream: true`` as OpenAI does: ``response.created``,
``response.in_progress``, then each output item (``response.output_item.added``,
its parts and deltas, their ``.done`` events, ``response.output_item.done``),
then one terminal event, ``response.completed`` (or ``response.incomplete``
for ``Reply(finish_reason="length")`` and ``"content_filter"``) carrying the
whole response with its ``output`` and ``usage``; every event has its
``sequence_number``. ``stream: false`` gets the whole response object.

Scripting (``Reply(events=[...])``), in order:

* :func:`message` (text deltas), :func:`reasoning` (a summary's deltas, or with
  ``raw=True`` ``response.reasoning_text.delta`` as open models send),
  :func:`function_call` (a call's arguments in the fragments given, empty ones
  and splits inside a word included): output items, numbered as they come;
* :func:`error_event` (an ``error`` event, nested as OpenAI sends it or flat as
  the reference and other servers do) and any other event as a dict;
* :func:`failed` ends the reply with ``response.failed``;
* bytes go out as they are (a cut event, a keep-alive).

``Reply(finish_reason=None)`` ends the body without a terminal event, as
does an ``error`` event scripted last (the API ends the stream there).
``ResponsesEmulator(llama_server=True)`` leaves out ``sequence_number`` and
``output_index``, as llama.cpp's server does (it also ends a reply cut by
``max_output_tokens`` with ``response.completed``: script that with
``finish_reason="stop"``).

It refuses what OpenAI refuses, with OpenAI's error body (``{"error":
{"message", "type", "param", "code"}}``): another path (404), a missing or
wrong key when ``api_key`` is set (401), a body that is not a JSON object, a
missing ``model``, an unknown field, a malformed input item, tool or text
format, a ``function_call_output`` without its call (400), a model outside
``models`` (404). The 400s are checked in
:mod:`llmclients.testing._responses_validation`.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any, Dict, Iterable, Iterator, List, Mapping, Optional, Sequence

from .._public import expose
from ._responses_validation import check_body, error_body
from ._server import DeltaEvent, Emulator, RecordedRequest, Rejection, Reply, ToolCallScript
from .wire import WireSample

__all__ = [
    "DEFAULT_MODEL",
    "Failed",
    "Output",
    "ResponsesEmulator",
    "error_event",
    "failed",
    "function_call",
    "message",
    "reasoning",
]

expose(globals(), __name__, __all__)

DEFAULT_MODEL = "emulator-1"
RESPONSE_ID = "resp_emulator"



@dataclass
class Output:
    """One output item to stream: ``kind`` is "message", "reasoning",
    "raw_reasoning" or "function_call"; ``pieces`` its deltas."""

    kind: str
    pieces: Sequence[str]
    name: str = ""
    call_id: str = ""


@dataclass
class Failed:
    """Ends the reply with ``response.failed`` carrying ``error``."""

    error: Dict[str, Any] = field(default_factory=dict)


def message(pieces: Sequence[str]) -> Output:
    """An assistant message whose text streams in ``pieces``."""
    return Output("message", list(pieces))


def reasoning(pieces: Sequence[str], *, raw: bool = False) -> Output:
    """A reasoning item: its summary in ``pieces``, or with ``raw`` its
    reasoning text (``response.reasoning_text.delta``)."""
    return Output("raw_reasoning" if raw else "reasoning", list(pieces))


def function_call(name: str, fragments: Sequence[str], call_id: str = "") -> Output:
    """A function call whose arguments stream in ``fragments`` (split anywhere, empty ones too)."""
    return Output("function_call", list(fragments), name=name, call_id=call_id)


def error_event(code: str, message: str, *, nested: bool = True, param: Optional[str] = None) -> Dict[str, Any]:
    """An ``error`` event: nested (``{"error": {...}}``) as OpenAI's API sends
    it, or flat (``{"code", "message", "param"}``) as its reference says."""
    if nested:
        error = {"type": "invalid_request_error" if code != "server_error" else "server_error",
                 "code": code, "message": message, "param": param}  # fmt: skip
        return {"type": "error", "error": error}
    return {"type": "error", "code": code, "message": message, "param": param}


def failed(code: str, message: str) -> Failed:
    """``response.failed`` with ``response.error`` ``{code, message}``."""
    return Failed({"code": code, "message": message})


class ResponsesEmulator(Emulator):
    """Stands in for a server of OpenAI's Responses API; ``Reply.events`` takes
    :class:`Output` items, :class:`Failed`, event dicts and bytes."""

    provider = "responses"
    content_type = "text/event-stream; charset=utf-8"
    keepalive_bytes = b": keep-alive\n\n"
    base_path = "/v1"
    wire = WireSample(
        prologue=b'event: response.created\ndata: {"type": "response.created", "response": '
        b'{"id": "resp_emulator", "object": "response", "status": "in_progress", "model": "emulator-1", '
        b'"output": []}}\n\n',
        text_event=b'event: response.output_text.delta\ndata: {"type": "response.output_text.delta", '
        b'"item_id": "msg_0", "output_index": 0, "content_index": 0, "delta": "%s"}\n\n',
        epilogue=b'event: response.completed\ndata: {"type": "response.completed", "response": '
        b'{"id": "resp_emulator", "object": "response", "status": "completed", "model": "emulator-1", '
        b'"output": [], "usage": {"input_tokens": 1, "output_tokens": 1, "total_tokens": 2}}}\n\n',
        garbage=b"event: response.output_text.delta\ndata: {not json\n\n",
        keepalive=b": keep-alive\n\n",
        cut=2600,
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
        llama_server: bool = False,
        **kwargs: Any,
    ) -> None:
        """``llama_server=True`` sends events as llama.cpp's server does: without
        ``sequence_number`` and ``output_index``."""
        super().__init__(**kwargs)
        self.api_key = api_key
        self.models = list(models)
        self.llama_server = llama_server

    # --- requests -----------------------------------------------------------------------

    def check(self, request: RecordedRequest) -> None:
        route = (request.method, request.path.split("?")[0])
        if route not in (("POST", "/v1/responses"), ("GET", "/v1/models")):
            raise Rejection(
                404, error_body(f"Unknown request URL: {request.method} {request.path}", code="unknown_url")
            )
        if self.api_key is not None and request.headers.get("Authorization") != f"Bearer {self.api_key}":
            raise Rejection(401, error_body("Incorrect API key provided.", code="invalid_api_key"))
        if request.method == "GET":
            return
        try:
            body = request.json()
        except ValueError:
            raise Rejection(400, error_body("We could not parse the JSON body of your request.")) from None
        check_body(body)
        if self.models and body["model"] not in self.models:
            raise Rejection(404, error_body(f"The model `{body['model']}` does not exist.", code="model_not_found"))

    def fixed_reply(self, request: RecordedRequest) -> Optional[Reply]:
        if request.method == "GET":
            names = self.models or [DEFAULT_MODEL]
            return Reply(body={"object": "list", "data": [
                {"id": name, "object": "model", "created": 0, "owned_by": "llmclients"} for name in names
            ]})  # fmt: skip
        return None

    def rich_reply(
        self, text: List[str], reasoning: List[str], tool_calls: List[ToolCallScript], fields: Dict[str, Any]
    ) -> Reply:
        """A reasoning item, a message and a ``function_call`` item a call, in that order."""
        items = [Output("reasoning", reasoning)] if reasoning else []
        items += [message(text)] if text else []
        items += [function_call(name, [arguments], call_id) for call_id, name, arguments in tool_calls]
        return Reply(events=items, **fields)

    def make_default_reply(self, request: RecordedRequest) -> Reply:
        items = request.json().get("input")
        said = items if isinstance(items, str) else ""
        if isinstance(items, list) and items and isinstance(items[-1], dict):
            last = items[-1]
            if last.get("type") == "function_call_output":
                said = f"The tool returned: {last.get('output')}"
            else:
                said = _text_of(last.get("content"))
        return Reply(
            text=f"This is the llmclients emulator speaking the OpenAI Responses protocol. You said: {said}",
            delay=0.03,
        )

    # --- replies ------------------------------------------------------------------------

    def reply_headers(self, reply: Reply, request: RecordedRequest) -> Dict[str, str]:
        if not request.json().get("stream"):
            return {"Content-Type": "application/json"}
        return {"Content-Type": self.content_type, "Cache-Control": "no-cache"}

    def events(self, reply: Reply, request: RecordedRequest) -> Iterable[bytes]:
        for item in reply.events or ():
            if not isinstance(item, (Output, Failed, dict, bytes)):
                raise TypeError(
                    "Reply.events items must be Output (message(), reasoning(), function_call()), "
                    f"Failed, event dicts or bytes, not {type(item).__name__}"
                )
        body = request.json()
        script = _Script(body, reply, self.llama_server)
        if body.get("stream"):
            return script.events()
        return [json.dumps(script.whole()).encode()]


class _Script:
    """One reply's events, numbered, and the response they add up to."""

    def __init__(self, body: Mapping[str, Any], reply: Reply, llama_server: bool) -> None:
        self.body = body
        self.reply = reply
        self.llama_server = llama_server
        self.sequence = 0
        self.output: List[Dict[str, Any]] = []
        self.written = 0

    def whole(self) -> Dict[str, Any]:
        for _ in self.events():
            pass
        return self.response("completed" if self.reply.finish_reason != "length" else "incomplete")

    def events(self) -> Iterator[bytes]:
        yield self.event({"type": "response.created", "response": self.response("in_progress")})
        yield self.event({"type": "response.in_progress", "response": self.response("in_progress")})
        items: Sequence[Any] = self.reply.events if self.reply.events is not None else [
            message(self.reply.pieces())
        ]  # fmt: skip
        for item in items:
            if isinstance(item, bytes):
                yield item
            elif isinstance(item, Output):
                yield from self.item(item)
            elif isinstance(item, Failed):
                response = self.response("failed", error=item.error)
                yield self.event({"type": "response.failed", "response": response})
                return
            else:
                yield self.event(dict(item))
        finish = self.reply.finish_reason
        if finish is None or (items and isinstance(items[-1], dict) and items[-1].get("type") == "error"):
            return  # a body cut before its terminal event, or ended by an error event
        if finish in ("length", "content_filter"):
            reason = "max_output_tokens" if finish == "length" else "content_filter"
            response = self.response("incomplete", incomplete_details={"reason": reason})
            yield self.event({"type": "response.incomplete", "response": response})
        else:
            yield self.event({"type": "response.completed", "response": self.response("completed")})

    def item(self, item: Output) -> Iterator[bytes]:
        index = len(self.output)
        joined = "".join(item.pieces)
        self.written += sum(1 for piece in item.pieces if piece)
        if item.kind == "message":
            item_id = f"msg_{index}"
            done = {"id": item_id, "type": "message", "role": "assistant", "status": "completed",
                    "content": [{"type": "output_text", "text": joined, "annotations": []}]}  # fmt: skip
            at = {"item_id": item_id, "output_index": index, "content_index": 0}
            yield self.added(index, dict(done, status="in_progress", content=[]))
            part = {"type": "output_text", "text": "", "annotations": []}
            yield self.event({"type": "response.content_part.added", **at, "part": part})
            for piece in item.pieces:
                delta = {"type": "response.output_text.delta", **at, "delta": piece, "logprobs": []}
                yield DeltaEvent(self.event(delta))
            yield self.event({"type": "response.output_text.done", **at, "text": joined, "logprobs": []})
            yield self.event({"type": "response.content_part.done", **at, "part": done["content"][0]})
        elif item.kind == "function_call":
            item_id = f"fc_{index}"
            done = {"id": item_id, "type": "function_call", "status": "completed", "name": item.name,
                    "call_id": item.call_id or f"call_{index}", "arguments": joined}  # fmt: skip
            at = {"item_id": item_id, "output_index": index}
            yield self.added(index, dict(done, status="in_progress", arguments=""))
            for piece in item.pieces:
                yield self.event({"type": "response.function_call_arguments.delta", **at, "delta": piece})
            yield self.event(
                {"type": "response.function_call_arguments.done", **at, "name": item.name, "arguments": joined}
            )
        else:
            item_id = f"rs_{index}"
            raw = item.kind == "raw_reasoning"
            text = {"type": "reasoning_text" if raw else "summary_text", "text": joined}
            done = {"id": item_id, "type": "reasoning", "summary": [] if raw else [text]}
            if raw:
                done["content"] = [text]
            yield self.added(index, dict(done, summary=[], **({"content": []} if raw else {})))
            if raw:
                at = {"item_id": item_id, "output_index": index, "content_index": 0}
                for piece in item.pieces:
                    yield self.event({"type": "response.reasoning_text.delta", **at, "delta": piece})
                yield self.event({"type": "response.reasoning_text.done", **at, "text": joined})
            else:
                at = {"item_id": item_id, "output_index": index, "summary_index": 0}
                empty = {"type": "summary_text", "text": ""}
                yield self.event({"type": "response.reasoning_summary_part.added", **at, "part": empty})
                for piece in item.pieces:
                    yield self.event({"type": "response.reasoning_summary_text.delta", **at, "delta": piece})
                yield self.event({"type": "response.reasoning_summary_text.done", **at, "text": joined})
                yield self.event({"type": "response.reasoning_summary_part.done", **at, "part": text})
        self.output.append(done)
        yield self.event({"type": "response.output_item.done", "output_index": index, "item": done})

    def added(self, index: int, item: Dict[str, Any]) -> bytes:
        return self.event({"type": "response.output_item.added", "output_index": index, "item": item})

    def event(self, event: Dict[str, Any]) -> bytes:
        if self.llama_server:
            event.pop("output_index", None)
        elif "sequence_number" not in event:
            event["sequence_number"] = self.sequence
        self.sequence += 1
        data = json.dumps(event, ensure_ascii=False)
        return f"event: {event.get('type', 'message')}\ndata: {data}\n\n".encode()

    def response(self, status: str, **more: Any) -> Dict[str, Any]:
        response: Dict[str, Any] = {
            "id": RESPONSE_ID,
            "object": "response",
            "created_at": 0,
            "status": status,
            "model": self.body.get("model") or DEFAULT_MODEL,
            "output": list(self.output) if status != "in_progress" else [],
            "parallel_tool_calls": True,
            "tool_choice": "auto",
            "tools": [],
            "error": None,
            "incomplete_details": None,
            "store": self.body.get("store", True),
        }
        response.update(more)
        if status not in ("in_progress", "failed"):
            response["usage"] = self.reply.usage or self.usage()
        return response

    def usage(self) -> Dict[str, Any]:
        items = self.body.get("input")
        prompt = len(items.split()) if isinstance(items, str) else sum(
            len(_text_of(item.get("content")).split()) for item in items or () if isinstance(item, dict)
        )  # fmt: skip
        return {
            "input_tokens": prompt,
            "input_tokens_details": {"cached_tokens": 0},
            "output_tokens": self.written,
            "output_tokens_details": {"reasoning_tokens": 0},
            "total_tokens": prompt + self.written,
        }


def _text_of(content: Any) -> str:
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        return " ".join(str(part.get("text", "")) for part in content if isinstance(part, dict))
    return ""
