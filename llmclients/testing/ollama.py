"""An emulator of Ollama's own chat API (``POST /api/chat``, NDJSON), as ``ollama serve`` speaks it.

It answers ``stream`` (the default) with ``application/x-ndjson``: one
``ChatResponse`` a line (``{"model", "created_at", "message": {"role",
"content"}, "done": false}``), then the done line with ``done_reason``, the
counts (``prompt_eval_count``, ``eval_count``) and the durations in
nanoseconds; ``stream: false`` with the same reply as one JSON object. Its
counts are words: a prompt longer than the context window (``num_ctx`` in
``options``, else :attr:`OllamaEmulator.num_ctx`) counts exactly that many,
as Ollama's Go runners cut it to fit (about half, with ``context_shift``, as
its llama-server route does), or is refused with ``truncate: false`` (400
``the input length exceeds the context length``).

``Reply(events=...)`` scripts other shapes: dicts (lines, built with
:func:`text_lines`, :func:`thinking_lines`, :func:`tool_call_line`,
:func:`error_line`, :func:`done_line`; ``model`` and ``created_at`` are filled
in, and a ``message``'s ``role`` and ``content``) and bytes (sent as they
are). A done line follows unless a line was one, or an error, or the reply's
``finish_reason`` is None (a body cut before its end).

It refuses what Ollama refuses, with its statuses and bodies (ollama/ollama
``server/routes.go``: gin's, with ``{"error": "..."}``): another path or
method (404 ``404 page not found``, text), an empty body (400 ``missing
request body``), a body that is not JSON or whose fields have the wrong JSON
type (400, with Go's ``encoding/json`` wording: a message's ``content`` must
be a string, ``images`` base64 strings, a tool call's ``arguments`` an
object), no model (400 ``model is required``), a ``think`` other than a bool
or a level, ``think`` for a model in ``no_thinking`` (400 ``"x" does not
support thinking``), ``top_logprobs`` outside 0..20, a model outside ``models`` when
that is set (404 ``model "x" not found, try pulling it first``), and without
the key when ``api_key`` is set (401, as Ollama's cloud). ``GET /api/tags``
lists ``models``; ``GET /`` says ``Ollama is running``.

The 400s for a body that is not JSON or whose fields have the wrong JSON
type, in Go's wording, are worded in
:mod:`llmclients.testing._ollama_validation`.
"""

from __future__ import annotations

import json
import time
from datetime import datetime, timezone
from typing import Any, Dict, Iterable, Iterator, List, Mapping, Optional, Sequence, Tuple, Union

from .._public import expose
from ._ollama_validation import go_syntax_error, type_error
from ._server import DeltaEvent, Emulator, RecordedRequest, Rejection, Reply, ToolCallScript
from .wire import WireSample

__all__ = [
    "DEFAULT_MODEL",
    "OllamaEmulator",
    "done_line",
    "error_line",
    "text_lines",
    "thinking_lines",
    "tool_call_line",
]

expose(globals(), __name__, __all__)

DEFAULT_MODEL = "llama3.2"
#: The line every stream of the wire sample starts its lines with.
_SAMPLE_HEAD = b'{"model":"llama3.2","created_at":"2026-08-21T10:00:00.000000000Z",'
_NOT_FOUND = "404 page not found"
Line = Union[Dict[str, Any], bytes]


# --- builders of scripted lines -----------------------------------------------------------


def text_lines(pieces: Iterable[str]) -> List[Dict[str, Any]]:
    """One line of answer text a piece."""
    return [{"message": {"content": piece}} for piece in pieces]


def thinking_lines(pieces: Iterable[str]) -> List[Dict[str, Any]]:
    """One line of thinking a piece, as Ollama streams it before the answer (``content`` empty)."""
    return [{"message": {"content": "", "thinking": piece}} for piece in pieces]


def tool_call_line(calls: Sequence[Tuple[Optional[str], str, Mapping[str, Any]]]) -> Dict[str, Any]:
    """One line with whole tool calls, each ``(id or None, name, arguments)``:
    Ollama sends no fragments, and older servers no ids."""
    tool_calls = []
    for index, (call_id, name, arguments) in enumerate(calls):
        call: Dict[str, Any] = {"function": {"index": index, "name": name, "arguments": dict(arguments)}}
        if call_id is not None:
            call["id"] = call_id
        tool_calls.append(call)
    return {"message": {"content": "", "tool_calls": tool_calls}}


def error_line(message: str, status: Optional[int] = None) -> Dict[str, Any]:
    """An error inside the stream (the body ends after it); ``status`` as the runner gives one."""
    line: Dict[str, Any] = {"error": message}
    if status is not None:
        line["status"] = status
    return line


def done_line(
    done_reason: str = "stop",
    prompt_eval_count: Optional[int] = 12,
    eval_count: Optional[int] = 4,
    **more: Any,
) -> Dict[str, Any]:
    """The last line: its reason, counts (None leaves one out, as Ollama leaves
    out zeros) and durations in nanoseconds (``more`` overrides any key)."""
    line: Dict[str, Any] = {
        "message": {"content": ""},
        "done": True,
        "done_reason": done_reason,
        "total_duration": 2_310_000_000,
        "load_duration": 1_050_000_000,
        "prompt_eval_duration": 310_000_000,
        "eval_duration": 950_000_000,
    }
    if prompt_eval_count is not None:
        line["prompt_eval_count"] = prompt_eval_count
    if eval_count is not None:
        line["eval_count"] = eval_count
    line.update(more)
    return line


class OllamaEmulator(Emulator):
    """Stands in for ``ollama serve``; ``Reply.events`` takes lines (dicts) and bytes."""

    provider = "ollama"
    content_type = "application/x-ndjson"
    base_path = ""
    wire = WireSample(
        text_event=_SAMPLE_HEAD + b'"message":{"role":"assistant","content":"%s"},"done":false}\n',
        epilogue=_SAMPLE_HEAD
        + b'"message":{"role":"assistant","content":""},"done":true,"done_reason":"stop",'
        b'"total_duration":1000,"prompt_eval_count":3,"eval_count":2}\n',
        garbage=b"{not json\n",
        keepalive=b"\n",
        cut=700,
        model=DEFAULT_MODEL,
        content_types=(None, "text/plain; charset=utf-8", "application/octet-stream"),
    )

    def __init__(
        self,
        *,
        api_key: Optional[str] = None,
        models: Sequence[str] = (),
        num_ctx: int = 4096,
        no_thinking: Sequence[str] = (),
        context_shift: bool = False,
        **kwargs: Any,
    ) -> None:
        """``models``: the models the server has (others get 404; empty: any
        name); ``num_ctx``: the context window of a request that sets none;
        ``no_thinking``: models without the thinking capability, which
        refuse ``think`` (but ``false``) with a 400, as Ollama does;
        ``context_shift``: cut an over-long prompt as Ollama's llama-server
        route does (to about half of ``num_ctx``), not to ``num_ctx`` as its
        Go runners do."""
        super().__init__(**kwargs)
        self.api_key = api_key
        self.models = list(models)
        self.num_ctx = num_ctx
        self.no_thinking = list(no_thinking)
        self.context_shift = context_shift

    # --- what Ollama accepts ------------------------------------------------------------

    def check(self, request: RecordedRequest) -> None:
        route = (request.method, request.path.split("?")[0])
        if route in (("GET", "/"), ("HEAD", "/"), ("GET", "/api/tags"), ("GET", "/api/version")):
            return
        if route != ("POST", "/api/chat"):
            raise Rejection(404, _NOT_FOUND)
        if self.api_key is not None and request.headers.get("Authorization") != f"Bearer {self.api_key}":
            raise Rejection(401, {"error": "unauthorized"})
        if not request.body.strip():
            raise Rejection(400, {"error": "missing request body"})
        try:
            body = json.loads(request.body)
        except ValueError as exc:
            raise Rejection(
                400, {"error": go_syntax_error(request.body.decode("utf-8", "replace"), exc)}
            ) from None
        problem = type_error(body)
        if problem:
            raise Rejection(400, {"error": problem})
        if body.get("top_logprobs", 0) < 0 or body.get("top_logprobs", 0) > 20:
            raise Rejection(400, {"error": "top_logprobs must be between 0 and 20"})
        if not body.get("model"):
            raise Rejection(400, {"error": "model is required"})
        if self.models and body["model"] not in self.models:
            raise Rejection(
                404, {"error": f"model {json.dumps(body['model'])} not found, try pulling it first"}
            )
        if body.get("truncate") is False and self._prompt_size(body) > self._context(body):
            raise Rejection(400, {"error": "the input length exceeds the context length"})
        if body["model"] in self.no_thinking and body.get("think") not in (None, False):
            raise Rejection(400, {"error": f"{json.dumps(body['model'])} does not support thinking"})

    def fixed_reply(self, request: RecordedRequest) -> Optional[Reply]:
        path = request.path.split("?")[0]
        if path == "/":
            return Reply(body="Ollama is running")
        if path == "/api/tags":
            return Reply(body=self.model_list())
        if path == "/api/version":
            return Reply(body={"version": "0.13.5"})
        return None

    def model_list(self) -> Dict[str, Any]:
        """What ``GET /api/tags`` answers: the ``models`` given, else the default one."""
        return {
            "models": [
                {
                    "name": name,
                    "model": name,
                    "modified_at": "2026-08-21T10:00:00.000000000Z",
                    "size": 2019393189,
                    "digest": "a80c4f17acd55265feec403c7aef86be0c25983ab279d83f3bcd3abbcb5b8b72",
                    "details": {
                        "parent_model": "",
                        "format": "gguf",
                        "family": "llama",
                        "families": ["llama"],
                        "parameter_size": "3.2B",
                        "quantization_level": "Q4_K_M",
                    },
                }
                for name in self.models or [DEFAULT_MODEL]
            ]
        }

    # --- what it answers ------------------------------------------------------------------

    def rich_reply(
        self, text: List[str], reasoning: List[str], tool_calls: List[ToolCallScript], fields: Dict[str, Any]
    ) -> Reply:
        """Thinking lines, text lines and one line with the tool calls, in that order."""
        lines: List[Line] = [*thinking_lines(reasoning), *text_lines(text)]
        if tool_calls:
            lines.append(tool_call_line([(call_id, name, json.loads(args)) for call_id, name, args in tool_calls]))
        return Reply(events=lines, **fields)

    def make_default_reply(self, request: RecordedRequest) -> Reply:
        messages = request.json().get("messages") or [{}]
        last = messages[-1] if isinstance(messages[-1], dict) else {}
        words = str(last.get("content") or "").split(" ")
        text = " ".join(words[:30]) + (" ..." if len(words) > 30 else "")  # a long prompt: its start
        images = len(last.get("images") or ())
        said = (
            f"The tool {last.get('tool_name', '')} returned: {text}"
            if last.get("role") == "tool"
            else f"You said: {text}"
        )
        if images:
            said += f" ({images} image{'s' if images > 1 else ''})"
        return Reply(
            text=f"This is the llmclients emulator speaking Ollama's chat protocol. {said}", delay=0.03
        )

    def events(self, reply: Reply, request: RecordedRequest) -> Iterable[bytes]:
        for item in reply.events or ():  # checked before the status line goes out
            if not isinstance(item, (dict, bytes)):
                raise TypeError(
                    f"Reply.events items must be dicts (lines) or bytes, not {type(item).__name__}"
                )
        return self._events(reply, request.json())

    def reply_headers(self, reply: Reply, request: RecordedRequest) -> Dict[str, str]:
        if request.json().get("stream") is False:
            return {"Content-Type": "application/json; charset=utf-8"}
        return {"Content-Type": self.content_type}

    def _events(self, reply: Reply, body: Mapping[str, Any]) -> Iterator[bytes]:
        model = body.get("model") or DEFAULT_MODEL
        lines = self._lines(reply, body)
        if body.get("stream") is False:
            yield json.dumps(_whole([line for line in lines if isinstance(line, dict)], model)).encode()
            return
        for line in lines:
            if isinstance(line, bytes):
                yield line
            elif (line.get("message") or {}).get("content"):
                yield DeltaEvent(_serialize(line, model))
            else:
                yield _serialize(line, model)

    def _lines(self, reply: Reply, body: Mapping[str, Any]) -> List[Line]:
        if not body.get("messages"):  # a request to load the model, not to chat
            return [done_line("load", None, None, total_duration=0, load_duration=0)]
        if reply.events is not None:
            lines: List[Line] = list(reply.events)
            pieces: List[str] = []
        else:
            pieces = reply.pieces()
            lines = list(text_lines(pieces))
        ended = any(isinstance(line, dict) and ("error" in line or line.get("done")) for line in lines)
        if reply.finish_reason is not None and not ended:
            prompt, completion = self._counts(reply, body, pieces)
            lines.append(done_line(reply.finish_reason, prompt or None, completion or None))
        return lines

    def _counts(self, reply: Reply, body: Mapping[str, Any], pieces: List[str]) -> Tuple[int, int]:
        """(prompt_eval_count, eval_count): the reply's usage, else words, the
        prompt cut to the context window as Ollama's runner cuts it."""
        if reply.usage:
            return reply.usage.get("prompt_tokens", 0), reply.usage.get("completion_tokens", 0)
        prompt, context = self._prompt_size(body), self._context(body)
        if prompt <= context:
            return prompt, len(pieces)
        if not self.context_shift:
            return context, len(pieces)  # the Go runners: the whole context
        keep = (body.get("options") or {}).get("num_keep", 4) + 1  # and a BOS token
        return context - max((context - keep) // 2, 1), len(pieces)  # llama-server: about half

    def _context(self, body: Mapping[str, Any]) -> int:
        context: int = (body.get("options") or {}).get("num_ctx") or self.num_ctx
        return context

    @staticmethod
    def _prompt_size(body: Mapping[str, Any]) -> int:
        """The prompt's tokens, as words (an image: 768, as Ollama counts one), and 10 for the template."""
        words = 10
        for message in body.get("messages") or ():
            words += len(str(message.get("content") or "").split()) + 768 * len(message.get("images") or ())
        return words


def _serialize(line: Mapping[str, Any], model: str) -> bytes:
    """A scripted line as Ollama writes it: the envelope first, then the line's keys."""
    if "error" in line and "message" not in line:
        return json.dumps(dict(line), ensure_ascii=False).encode() + b"\n"
    out: Dict[str, Any] = {"model": model, "created_at": _now()}
    message = line.get("message")
    if message is not None:
        out["message"] = {"role": "assistant", "content": "", **message}
    out.update((key, value) for key, value in line.items() if key != "message")
    out.setdefault("done", False)
    return json.dumps(out, ensure_ascii=False).encode() + b"\n"


def _whole(lines: List[Dict[str, Any]], model: str) -> Dict[str, Any]:
    """The one object ``stream: false`` answers: the lines' message joined, the last line's rest."""
    for line in lines:
        if "error" in line:
            return {"error": line["error"]}
    message: Dict[str, Any] = {"role": "assistant", "content": ""}
    thinking = ""
    calls: List[Any] = []
    last: Dict[str, Any] = {}
    for line in lines:
        part = line.get("message") or {}
        message["content"] += part.get("content", "")
        thinking += part.get("thinking", "")
        calls.extend(part.get("tool_calls") or ())
        last = line
    if thinking:
        message["thinking"] = thinking
    if calls:
        message["tool_calls"] = calls
    whole = {"model": model, "created_at": _now(), **{k: v for k, v in last.items() if k != "message"}}
    whole["message"] = message
    return whole


def _now() -> str:
    """RFC 3339 with nanoseconds, as Go's time.Time marshals itself."""
    now = time.time()
    stamp = datetime.fromtimestamp(now, timezone.utc).strftime("%Y-%m-%dT%H:%M:%S")
    return f"{stamp}.{int(now % 1 * 1e9):09d}Z"
