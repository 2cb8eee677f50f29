"""OpenAI's Responses API: OpenAI, vLLM, LM Studio, Ollama (0.13.3+), llama.cpp.

Protocol:

* ``POST {base_url}/responses`` with a JSON body: ``model``, ``input`` (a list
  of items), ``stream: true``, ``store`` and the generation options. With a
  key, ``Authorization: Bearer <api_key>``.
* Messages become input items. Leading ``system`` and ``developer`` messages
  are joined into ``instructions``; a later one stays in its place as a
  message item of its role. ``user`` content becomes ``input_text``,
  ``input_image`` (the ``image_url``'s URL, ``data:`` URLs included) and
  ``input_file`` parts; an assistant's text becomes ``output_text``, its
  ``tool_calls`` ``function_call`` items (``call_id``, ``name``,
  ``arguments``); a ``tool`` message a ``function_call_output`` item linked by
  ``call_id``. Tools are flat (``{"type": "function", "name", "parameters",
  ...}``), ``max_tokens`` is ``max_output_tokens``, ``response_format`` is
  ``text.format`` and ``reasoning_effort`` is ``reasoning.effort``.
* ``store`` is sent ``false`` unless the caller asks for ``store=True``: the
  API stores every reply server-side by default, and llmclients resends the
  history, so nothing needs storing.
* The answer is named Server-Sent Events whose JSON repeats the name as its
  ``type``: ``response.created``, ``response.output_item.added`` (an output
  item: a message, a reasoning item, a function call with its ``call_id``),
  ``response.output_text.delta`` (text), ``response.reasoning_summary_text.delta``
  and ``response.reasoning_text.delta`` (reasoning), ``response.refusal.delta``,
  ``response.function_call_arguments.delta`` (a call's arguments, by its
  ``item_id``), their ``.done`` events with the whole, and one terminal event:
  ``response.completed`` (``stop``, or ``tool_calls`` when a call came),
  ``response.incomplete`` (``incomplete_details.reason``: ``length`` for
  ``max_output_tokens``, else ``content_filter``) or ``response.failed``
  (``response.error``). Usage is on the terminal response only. Other events
  (built-in tools' progress) are skipped.
* An ``error`` event, nested (``{"error": {...}}``, as OpenAI sends it) or flat
  (``{"code", "message"}``, as the reference and other servers do), and
  ``response.failed`` raise the typed error their code says: a rate limit or a
  server error before the first delta is retried as HTTP 429 or 5xx would be.
* llama.cpp's server sends no ``sequence_number`` and no ``output_index``: a
  call's fragments are joined by ``item_id``, else ``output_index``, else they
  continue the last call added.

The messages and options become the request's items and fields in
:mod:`llmclients.providers._responses_input`; this module holds the provider
and the reading of its stream.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Callable, Dict, FrozenSet, List, Mapping, Optional

from ._responses_input import input_items, request_options
from .kit import (
    ContextLengthError,
    LLMClientError,
    Message,
    Provider,
    ProviderError,
    RateLimitError,
    Request,
    ServerError,
    SSEEvent,
    StreamInterruptedError,
    StreamState,
    Usage,
    error_message,
    load_json,
)
from .openai import list_models

if TYPE_CHECKING:
    from typing_extensions import Unpack

    from .kit import ClientOptions

_EMPTY: Mapping[str, Any] = {}
#: Error codes (or types) that say what an HTTP status would: retried as that status is.
_RATE_LIMITED = frozenset({"rate_limit_exceeded", "rate_limit_error", "too_many_requests"})
_SERVER_ERRORS = {
    "server_error": 500,
    "internal_error": 500,
    "api_error": 500,
    "server_is_overloaded": 503,
    "overloaded": 503,
    "overloaded_error": 503,
    "service_unavailable": 503,
}
_CONTEXT_OVERFLOW = frozenset({"context_length_exceeded", "exceed_context_size_error"})


class OpenAIResponses(Provider):
    """Any server that speaks OpenAI's Responses API, at ``base_url``."""

    name = "responses"
    label = "OpenAI Responses"
    status = "works with any server that speaks the API (OpenAI, vLLM, LM Studio, Ollama, llama.cpp)"
    event_format = "sse"
    capabilities = frozenset({"tools", "images", "files", "reasoning"})
    lists_models = True
    #: openai-python retries every 5xx: an in-stream ``server_error`` is a 500.
    retry_statuses = frozenset({500})
    options = frozenset(
        {
            "extra_body",
            "include",
            "max_output_tokens",
            "max_tokens",
            "max_tool_calls",
            "metadata",
            "parallel_tool_calls",
            "prompt_cache_key",
            "reasoning",
            "reasoning_effort",
            "response_format",
            "safety_identifier",
            "service_tier",
            "store",
            "temperature",
            "tool_choice",
            "tools",
            "top_logprobs",
            "top_p",
            "truncation",
            "user",
            "verbosity",
        }
    )

    def __init__(self, **options: Unpack[ClientOptions]) -> None:
        """A client of the server at ``base_url`` (``.../v1``; required).

        ``api_key`` goes in ``Authorization: Bearer`` (leave it None for a local
        server); ``model`` is the default for calls (there is no built-in one).
        The other arguments are every client's: see
        :class:`~llmclients._core.provider.Provider`.
        """
        super().__init__(**options)

    def served_models(self) -> List[str]:
        """The ids of the models the server serves (``GET {base_url}/models``), in its order."""
        return list_models(self)

    def features_of_options(self, options: Mapping[str, Any]) -> FrozenSet[str]:
        needed = set()
        if {"tools", "tool_choice", "parallel_tool_calls", "max_tool_calls"} & set(options):
            needed.add("tools")
        if {"reasoning_effort", "reasoning"} & set(options):
            needed.add("reasoning")
        return frozenset(needed)

    def build_request(
        self, messages: List[Message], model: str, options: Dict[str, Any], thread: Dict[str, Any]
    ) -> Request:
        instructions, items = input_items(messages)
        body: Dict[str, Any] = {"model": model, "input": items, "stream": True, "store": False}
        if instructions:
            body["instructions"] = instructions
        extra = options.pop("extra_body", None) or {}
        body.update(request_options(options))
        body.update(extra)
        headers = {"Accept": "text/event-stream"}
        if self.api_key:
            headers["Authorization"] = f"Bearer {self.api_key}"
        return Request("POST", f"{self.base_url}/responses", headers=headers, json=body)

    def parse_event(self, data: Any, state: StreamState) -> Optional[str]:
        name = None
        if data.__class__ is SSEEvent:
            name, data = data
        if data == "[DONE]":  # some gateways end with it; the terminal event came before
            return None
        event = load_json(data)
        if event.__class__ is not dict:
            raise ValueError("an event is not a JSON object")
        kind = event.get("type") or name
        if kind == "response.output_text.delta":  # nearly every event
            delta = event.get("delta")
            return delta if delta.__class__ is str else None
        read = _READERS.get(kind or "")
        if read is None:
            return None  # pings, built-in tools' progress, events added later
        read(event, state)
        return None

    def parse_completion(self, document: Any, state: StreamState) -> Optional[str]:
        """A whole Response object, from a server that did not stream."""
        if not isinstance(document, dict) or not isinstance(document.get("output"), list):
            raise ValueError("it has no output: not a Response object")
        text = read_output(document["output"], state)
        _read_terminal(document, state)
        return text

    def finish(self, state: StreamState) -> None:
        if not state.done:
            raise StreamInterruptedError(
                "the stream ended before response.completed, response.incomplete or response.failed"
            )


# --- the stream ---------------------------------------------------------------------


def _created(event: Mapping[str, Any], state: StreamState) -> None:
    response = event.get("response") or _EMPTY
    if isinstance(response.get("id"), str):
        state.response_id = response["id"]
    if response.get("model"):
        state.model = response["model"]


def _item_added(event: Mapping[str, Any], state: StreamState) -> None:
    item = event.get("item") or _EMPTY
    if item.get("type") == "function_call":
        wire = _new_call(event, item, state)
        state.first.add_tool_call(wire, item.get("call_id") or item.get("id"), item.get("name"), item.get("arguments"))


def _new_call(event: Mapping[str, Any], item: Mapping[str, Any], state: StreamState) -> int:
    """The index a new call's fragments join by: its ``output_index``, or the
    next number when the server sends none (llama.cpp)."""
    notes = state.notes
    wire = event.get("output_index")
    if not isinstance(wire, int):
        wire = -1 - len(notes.get("wires", ()))  # never an output_index
    if isinstance(item.get("id"), str):
        notes.setdefault("items", {})[item["id"]] = wire
    notes.setdefault("wires", set()).add(wire)
    notes["last"] = wire
    notes["calls"] = True
    return wire


def _call_of(event: Mapping[str, Any], state: StreamState) -> Optional[int]:
    """The index of the call an event is about: by ``item_id``, else
    ``output_index``, else the last call added (None if none was)."""
    notes = state.notes
    wire = notes.get("items", _EMPTY).get(event.get("item_id"))
    if wire is None:
        wire = event.get("output_index")
    if not isinstance(wire, int):
        wire = notes.get("last")
    return wire if isinstance(wire, int) else None


def _arguments_delta(event: Mapping[str, Any], state: StreamState) -> None:
    delta = event.get("delta")
    if delta:
        state.first.add_tool_call(_call_of(event, state), None, None, delta)


def _arguments_done(event: Mapping[str, Any], state: StreamState) -> None:
    # The whole arguments: trusted over the fragments (a server may send fewer deltas).
    arguments = event.get("arguments")
    if arguments.__class__ is str and state.notes.get("calls"):
        state.first.set_tool_call_arguments(_call_of(event, state), arguments)


def _item_done(event: Mapping[str, Any], state: StreamState) -> None:
    item = event.get("item") or _EMPTY
    if item.get("type") != "function_call":
        return
    notes, wire = state.notes, event.get("output_index")
    known = item.get("id") in notes.get("items", _EMPTY) or wire in notes.get("wires", ())
    if not known and (isinstance(wire, int) or item.get("id") or not notes.get("calls")):
        _item_added(event, state)  # a call the server sent only whole
        return
    _arguments_done({"item_id": item.get("id"), "output_index": wire, "arguments": item.get("arguments")}, state)


def _reasoning_delta(event: Mapping[str, Any], state: StreamState) -> None:
    delta = event.get("delta")
    if delta.__class__ is str and delta:
        state.first.add_reasoning(delta)


def _summary_part(event: Mapping[str, Any], state: StreamState) -> None:
    # The summary's parts are paragraphs: keep them apart in the reasoning text.
    if state.first.reasoning and event.get("summary_index"):
        state.first.add_reasoning("\n\n")


def _refusal_delta(event: Mapping[str, Any], state: StreamState) -> None:
    delta = event.get("delta")
    if delta.__class__ is str and delta:
        state.first.add_refusal(delta)


def _terminal(event: Mapping[str, Any], state: StreamState) -> None:
    response = event.get("response") or _EMPTY
    if not response.get("status"):  # a server that leaves the status out: the event says it
        response = dict(response, status=str(event.get("type", ""))[len("response.") :])
    _read_terminal(response, state)


def _read_terminal(response: Mapping[str, Any], state: StreamState) -> None:
    """The end of a reply: its id, model, usage and finish reason; a failed one raises."""
    if isinstance(response.get("id"), str):
        state.response_id = response["id"]
    if response.get("model"):
        state.model = response["model"]
    if isinstance(response.get("usage"), Mapping):
        state.usage = usage_of(response["usage"])
    status = response.get("status")
    state.extra["status"] = status
    if status == "failed":
        raise stream_error(response.get("error") or {"message": "the response failed"})
    if status == "incomplete":
        reason = (response.get("incomplete_details") or _EMPTY).get("reason")
        state.extra["incomplete_reason"] = reason
        state.finish_reason = "length" if reason in ("max_output_tokens", "max_tokens") else "content_filter"
    else:
        state.finish_reason = "tool_calls" if state.notes.get("calls") else "stop"
    state.done = True


def _error(event: Mapping[str, Any], state: StreamState) -> None:
    raise stream_error(event)


_READERS: Dict[str, Callable[[Mapping[str, Any], StreamState], None]] = {
    "response.created": _created,
    "response.in_progress": _created,
    "response.queued": _created,
    "response.output_item.added": _item_added,
    "response.output_item.done": _item_done,
    "response.function_call_arguments.delta": _arguments_delta,
    "response.function_call_arguments.done": _arguments_done,
    "response.reasoning_summary_text.delta": _reasoning_delta,
    "response.reasoning_text.delta": _reasoning_delta,
    "response.reasoning_summary_part.added": _summary_part,
    "response.refusal.delta": _refusal_delta,
    "response.completed": _terminal,
    "response.incomplete": _terminal,
    "response.failed": _terminal,
    "error": _error,
}


def read_output(output: List[Any], state: StreamState) -> str:
    """The output items of a whole Response: the text returned, reasoning,
    refusals and calls noted in ``state``."""
    text: List[str] = []
    for position, item in enumerate(output):
        kind = item.get("type")
        if kind == "message":
            for part in item.get("content") or ():
                if part.get("type") == "output_text":
                    text.append(part.get("text") or "")
                elif part.get("type") == "refusal" and part.get("refusal"):
                    state.first.add_refusal(part["refusal"])
        elif kind == "reasoning":
            pieces = [part.get("text") or "" for part in item.get("summary") or ()]
            pieces += [part.get("text") or "" for part in item.get("content") or ()]
            if any(pieces):
                state.first.add_reasoning("\n\n".join(piece for piece in pieces if piece))
        elif kind == "function_call":
            _item_added({"output_index": position, "item": item}, state)
    return "".join(text)


def usage_of(usage: Mapping[str, Any]) -> Usage:
    """The Responses API's usage in OpenAI's sense (``input_tokens`` counts the cached ones)."""

    def count(source: Any, key: str) -> Optional[int]:
        value = source.get(key) if isinstance(source, Mapping) else None
        return value if isinstance(value, int) and not isinstance(value, bool) else None

    prompt, completion = count(usage, "input_tokens"), count(usage, "output_tokens")
    total = count(usage, "total_tokens")
    if total is None and prompt is not None and completion is not None:
        total = prompt + completion
    return Usage(
        prompt,
        completion,
        total,
        count(usage.get("input_tokens_details"), "cached_tokens"),
        count(usage.get("output_tokens_details"), "reasoning_tokens"),
        raw=dict(usage),
    )


def stream_error(error: Any) -> LLMClientError:
    """The typed error for an ``error`` event or a failed response's ``error``,
    nested (``{"error": {...}}``) or flat (``{"code", "message"}``) alike."""
    if isinstance(error, Mapping) and isinstance(error.get("error"), Mapping):
        # Field by field: what the nested object lacks, the flat shape may carry.
        inner = dict(error["error"])
        for key in ("code", "message", "param"):
            if inner.get(key) is None and error.get(key) is not None:
                inner[key] = error[key]
        error = inner
    if not isinstance(error, Mapping):
        return ProviderError(f"the server reported an error: {error}")
    message = error_message(error) or "no message"
    code = error.get("code")
    kind = error.get("type")
    code = str(code) if code is not None else None
    kind = str(kind) if kind is not None and kind != "error" else None
    said = f"the server reported an error in the stream: {message}" + (f" ({code or kind})" if code or kind else "")
    param = error.get("param") if isinstance(error.get("param"), str) else None
    words = {code, kind}
    cls: Optional[Callable[..., LLMClientError]] = None
    if words & _CONTEXT_OVERFLOW or "context length" in message.lower():
        cls, status = ContextLengthError, 400
    elif words & _RATE_LIMITED:
        cls, status = RateLimitError, 429
    else:
        status = _SERVER_ERRORS.get(code or "") or _SERVER_ERRORS.get(kind or "") or 0
        cls = ServerError if status else None
    if cls is None:
        return ProviderError(said, reason=code or kind)
    return cls(said, status_code=status, body_excerpt=message, code=code, type=kind, param=param)
