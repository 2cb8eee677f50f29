"""Ollama's own chat API: ``POST {base_url}/api/chat``, streamed as NDJSON.

Protocol (ollama/ollama ``api/types.go``, ``docs/api.md``, ``server/routes.go``):

* The request is JSON: ``model``, ``messages``, ``stream: true``, ``tools``
  (OpenAI's shape, as Ollama takes them), ``think`` (a bool, or a level
  ``"low"``/``"medium"``/``"high"`` that only gpt-oss takes), ``format``
  (``"json"`` or a JSON Schema), ``keep_alive`` and ``options``, where the
  sampling settings go (``temperature``, ``top_p``, ``top_k``, ``seed``,
  ``stop``, ``num_predict``, ``num_ctx``, ...). No key is needed locally;
  Ollama's cloud takes ``Authorization: Bearer``.
* A message is ``{"role", "content" (a str), "images" (base64, no data:
  prefix), "thinking", "tool_calls", "tool_name"}``. Roles are ``system``,
  ``user``, ``assistant`` and ``tool``; a tool call's ``function.arguments``
  is a JSON *object*, and a tool result names its tool (``tool_name``), not
  the call. Ollama wants image bytes: it fetches no URL.
* The answer is ``application/x-ndjson``, one ``ChatResponse`` a line:
  ``{"model", "created_at", "message": {"role", "content", "thinking"?,
  "tool_calls"?}, "done": false}``. Thinking comes first, in
  ``message.thinking``; tool calls come whole (never in fragments), each
  ``{"id"?, "function": {"index", "name", "arguments": {...}}}``.
* The last line says ``"done": true`` with ``done_reason`` (``stop``,
  ``length``; ``load``/``unload`` for requests without messages), the
  counts ``prompt_eval_count`` and ``eval_count`` and the durations
  (nanoseconds: ``total_duration``, ``load_duration``,
  ``prompt_eval_duration``, ``eval_duration``); counts and durations are
  left out when zero. There is no ``tool_calls`` done reason: a turn that
  called tools ends ``stop``. A body that ends without the done line was cut.
* An error after the status line is a line ``{"error": "..."}`` (with
  ``"status"`` when the runner gave one), and the body ends; before any line
  it is an error status with the same body.
* Ollama cuts a prompt longer than the context window (``num_ctx``) without
  an error (``truncate: false`` makes it refuse instead): it drops the
  oldest messages (system ones kept), which leaves no sign, then cuts the
  tokens that still do not fit from the front, keeping ``num_keep`` (4, one
  more with a BOS token). Its runners cut to exactly ``num_ctx`` tokens (the
  Go runners: ``runner/*/runner.go``, "truncating input prompt"), to
  ``num_ctx - 1``, or, where llama-server runs the model with context shift
  (``llm/llama_server.go``), to ``num_ctx - max((num_ctx - keep) // 2, 1)``,
  about half. The done line's ``prompt_eval_count`` counts the prompt as
  cut: one of those sizes is the only sign in the reply, and this client
  warns on it (:class:`~llmclients.errors.ContextTruncatedWarning`).

This module holds the provider and the reading of its lines. The mapping of
OpenAI-shaped messages, tools and options to Ollama's request is in
:mod:`llmclients.providers._ollama_messages`; the reading of ``OLLAMA_HOST``
(:func:`host_url`) and the sizes a cut prompt counts (:func:`cut_sizes`) are
in :mod:`llmclients.providers._ollama_host`, and can be imported from here.
"""

from __future__ import annotations

import json
import os
import re
from typing import TYPE_CHECKING, Any, Dict, FrozenSet, List, Mapping, Optional

from .._public import expose
from ._ollama_host import DEFAULT_KEEP, DEFAULT_PORT, context_asked, cut_sizes, host_url, warn_if_truncated
from ._ollama_messages import ollama_messages, request_fields
from .kit import (
    ClientOptions,
    ContextLengthError,
    HTTPStatusError,
    InvalidRequestError,
    MalformedStreamError,
    Message,
    OnComplete,
    Provider,
    ProviderError,
    RateLimitError,
    Request,
    ServerError,
    Stream,
    StreamInterruptedError,
    StreamState,
    Usage,
    load_json,
)

if TYPE_CHECKING:
    from typing_extensions import Unpack

__all__ = ["DEFAULT_PORT", "Ollama", "cut_sizes", "host_url"]

expose(globals(), __name__, __all__)

#: The durations of the done line, in nanoseconds, kept in ``extra``.
_DURATIONS = ("total_duration", "load_duration", "prompt_eval_duration", "eval_duration")
#: Keys of the done line beside the counts and durations that say something about the reply.
_DONE_EXTRA = ("remote_model", "remote_host")
#: What an in-stream error says when the server is too busy to take the request.
_BUSY = re.compile(r"server busy|overloaded|maximum pending requests", re.I)
_CONTEXT_WORDS = re.compile(
    r"exceeds the context length|context length exceeded|longer than the context length", re.I
)
_MODEL_NOT_FOUND = re.compile(r"""model ["']?(.+?)["']? not found""")


class Ollama(Provider):
    """A local (or remote) Ollama server, through its own ``/api/chat``."""

    name = "ollama"
    label = "Ollama"
    default_base_url = f"http://localhost:{DEFAULT_PORT}"
    status = "any Ollama server (ollama serve), with its native think, num_ctx, keep_alive and format"
    event_format = "ndjson"
    stream_types = frozenset({"application/x-ndjson"})
    capabilities = frozenset({"tools", "images", "reasoning"})
    lists_models = True
    message_keys = frozenset({"thinking"})
    #: What ``stream()`` takes: OpenAI's names where Ollama has the setting,
    #: Ollama's own for the rest, and ``options`` for any other runner
    #: setting (``repeat_penalty``, ``num_gpu``, ...), sent as given.
    options = frozenset(
        {
            "format",
            "keep_alive",
            "logprobs",
            "max_tokens",
            "num_ctx",
            "options",
            "reasoning_effort",
            "response_format",
            "seed",
            "shift",
            "stop",
            "temperature",
            "think",
            "tools",
            "top_k",
            "top_logprobs",
            "top_p",
            "truncate",
        }
    )

    def __init__(self, *, num_ctx: Optional[int] = None, **options: Unpack[ClientOptions]) -> None:
        """A client of the Ollama server at ``base_url``; without one, at
        ``OLLAMA_HOST`` (read as :func:`host_url` says), else at
        ``http://localhost:11434``. A trailing ``/api`` is dropped.

        ``num_ctx`` is the context window asked for on every call that sets
        none: Ollama's own default is small (2048 to 8192 tokens, by version)
        and it cuts longer prompts without an error. ``api_key`` is sent as
        ``Authorization: Bearer`` (Ollama's cloud). The other arguments are
        every client's: see :class:`~llmclients._core.provider.Provider`.
        """
        base_url = options.get("base_url")
        if not base_url and os.environ.get("OLLAMA_HOST"):
            base_url = host_url(os.environ["OLLAMA_HOST"])
        if base_url:
            options["base_url"] = re.sub(r"/api/?$", "", base_url.rstrip("/"))
        super().__init__(**options)
        if num_ctx is not None and (not isinstance(num_ctx, int) or isinstance(num_ctx, bool) or num_ctx < 1):
            raise InvalidRequestError(f"num_ctx must be a positive int, not {num_ctx!r}")
        self.num_ctx = num_ctx

    def features_of_options(self, options: Mapping[str, Any]) -> FrozenSet[str]:
        needed = set()
        if options.get("tools"):
            needed.add("tools")
        if "think" in options or "reasoning_effort" in options:
            needed.add("reasoning")
        return frozenset(needed)

    # --- the request -------------------------------------------------------------------

    def open_stream(
        self,
        messages: List[Message],
        model: Optional[str],
        options: Dict[str, Any],
        thread: Optional[Dict[str, Any]] = None,
        on_complete: Optional[OnComplete] = None,
    ) -> Stream:
        # The done line does not say how large the context was: the request
        # does. The check runs where the reply has ended, before the caller's.
        context = context_asked(options, self.num_ctx)
        keep = (options.get("options") or {}).get("num_keep", DEFAULT_KEEP)

        def check(text: str, state: StreamState) -> None:
            warn_if_truncated(state, context, keep if isinstance(keep, int) else DEFAULT_KEEP)
            if on_complete is not None:
                on_complete(text, state)

        return super().open_stream(messages, model, options, thread, check)

    def build_request(
        self, messages: List[Message], model: str, options: Dict[str, Any], thread: Dict[str, Any]
    ) -> Request:
        body: Dict[str, Any] = {"model": model, "messages": ollama_messages(messages), "stream": True}
        body.update(request_fields(options, self.num_ctx))
        headers = {"Accept": "application/x-ndjson"}
        if self.api_key:
            headers["Authorization"] = f"Bearer {self.api_key}"
        return Request("POST", f"{self.base_url}/api/chat", headers=headers, json=body)

    # --- the reply -----------------------------------------------------------------------

    def parse_event(self, data: Any, state: StreamState) -> Optional[str]:
        line = load_json(data)
        if not isinstance(line, dict):
            raise ValueError("a line is not a JSON object")
        return read_line(line, state)

    def parse_completion(self, document: Any, state: StreamState) -> Optional[str]:
        """The whole ``ChatResponse`` of a server (or proxy) that did not
        stream: one line that is also the last."""
        if not isinstance(document, dict) or not ("message" in document or "error" in document):
            raise ValueError("it has no message: not an Ollama chat response")
        text = read_line(document, state)
        if not state.done:
            raise ValueError("it is not done: not a whole Ollama chat response")
        return text

    def finish(self, state: StreamState) -> None:
        if not state.done:
            raise StreamInterruptedError('the stream ended before its last line ("done": true)')

    def explain_status_error(self, exc: HTTPStatusError) -> HTTPStatusError:
        found = _MODEL_NOT_FOUND.search(exc.body_excerpt)
        if exc.status_code == 404 and found:
            model = found.group(1)
            return exc.reworded(
                f"{exc.message}. The server has no model {model!r}: fetch it there with "
                f"`ollama pull {model}`, or pick one that `ollama list` shows"
            )
        if exc.status_code == 400 and "does not support thinking" in exc.body_excerpt:
            return exc.reworded(f"{exc.message}. Leave think and reasoning_effort out for this model")
        if exc.status_code == 400 and "think value" in exc.body_excerpt:
            return exc.reworded(
                f"{exc.message}. Levels (low, medium, high) are for gpt-oss; other models take think=True"
            )
        return exc

    def served_models(self) -> List[str]:
        """The names of the models the server has (``GET {base_url}/api/tags``), in its order.

        Raises as a call does: a typed error for no connection, a timeout or an
        error status, and :class:`MalformedStreamError` for a body that is not
        ``{"models": [{"name": ...}, ...]}``.
        """
        headers = {"Accept": "application/json"}
        if self.api_key:
            headers["Authorization"] = f"Bearer {self.api_key}"
        request = Request("GET", f"{self.base_url}/api/tags", headers=headers)
        with self.new_call("models") as call:
            return _model_names(call.fetch_json(request, "model list"), request)


# --- the reply's lines -------------------------------------------------------------------------


def read_line(line: Dict[str, Any], state: StreamState) -> Optional[str]:
    """One ``ChatResponse`` line: its text, the rest noted in ``state``."""
    if "error" in line:
        raise stream_error(line)
    message = line.get("message")
    text = None
    if message:
        content = message.get("content")
        if content.__class__ is str:
            text = content
        if "thinking" in message or "tool_calls" in message:
            _read_message(message, state)
    if line.get("logprobs"):
        state.first.add_logprobs(line["logprobs"])
    if line.get("done"):
        _read_done(line, state)
    return text


def _read_message(message: Mapping[str, Any], state: StreamState) -> None:
    thinking = message.get("thinking")
    if thinking.__class__ is str and thinking:
        state.first.add_reasoning(thinking)
    for call in message.get("tool_calls") or ():
        # Each call comes whole: a new call at the next place, its id the
        # server's or one made up (older servers send none).
        position = len(state.first.tool_calls)
        function = call.get("function") or {}
        arguments = function.get("arguments")
        state.first.add_tool_call(
            position,
            call.get("id") or f"call_{position}",
            function.get("name") or "",
            {} if arguments is None else arguments,
        )


def _read_done(line: Mapping[str, Any], state: StreamState) -> None:
    """The last line: finish reason (in OpenAI's words), usage, durations."""
    state.done = True
    if line.get("model"):
        state.model = line["model"]
    reason = line.get("done_reason")
    if reason is not None:
        state.extra["done_reason"] = reason
    if reason == "length":
        state.finish_reason = "length"
    elif state.first.tool_calls:
        state.finish_reason = "tool_calls"  # Ollama has no such reason: the calls say it
    else:
        state.finish_reason = "stop"
    prompt, completion = _count(line, "prompt_eval_count"), _count(line, "eval_count")
    if prompt is not None or completion is not None:
        raw = {key: line[key] for key in ("prompt_eval_count", "eval_count") if key in line}
        state.usage = Usage(prompt, completion, (prompt or 0) + (completion or 0), raw=raw)
    for key in _DURATIONS + _DONE_EXTRA:
        if key in line:
            state.extra[key] = line[key]
    if state.first.reasoning:
        # Sent back with the assistant turn: Ollama's templates want a tool turn's thinking.
        state.message_fields["thinking"] = "".join(state.first.reasoning)


def _count(line: Mapping[str, Any], key: str) -> Optional[int]:
    value = line.get(key)
    return value if isinstance(value, int) and not isinstance(value, bool) else None


def stream_error(line: Mapping[str, Any]) -> Exception:
    """The error for an ``{"error": ...}`` line: typed as the status it
    carries or implies (a busy server: 503, retried before the first delta),
    else a :class:`ProviderError`."""
    error = line.get("error")
    message = error if isinstance(error, str) else json.dumps(error)
    status = line.get("status") if isinstance(line.get("status"), int) else None
    if status is None and _BUSY.search(message):
        status = 503
    text = f"Ollama reported an error: {message}"
    if _CONTEXT_WORDS.search(message):
        return ContextLengthError(text, status_code=status or 400, body_excerpt=message)
    if status == 429:
        return RateLimitError(text, status_code=429, body_excerpt=message)
    if status is not None and status >= 500:
        return ServerError(text, status_code=status, body_excerpt=message)
    return ProviderError(text, reason=str(status) if status else None)


def _model_names(document: Any, request: Request) -> List[str]:
    """The model names of an ``/api/tags`` answer."""
    try:
        return [_name_of(entry) for entry in document["models"]]
    except (KeyError, TypeError, AttributeError):
        raise MalformedStreamError(
            f"{request!r} did not answer with a model list (Ollama's models: [{{name: ...}}])"
        ) from None


def _name_of(entry: Mapping[str, Any]) -> str:
    name = entry.get("name") or entry.get("model")
    if not isinstance(name, str):
        raise TypeError("a model without a name")
    return name
