"""Anthropic's Messages API, natively: Claude, and the servers that speak it (llama.cpp's llama-server, Ollama, LM Studio).

Protocol:

* ``POST {base_url}/v1/messages`` (``base_url`` ``https://api.anthropic.com``;
  one ending in ``/v1`` is accepted) with ``x-api-key: <api_key>`` and
  ``anthropic-version: 2023-06-01``, and a JSON body: ``model``,
  ``max_tokens`` (required by the API: :data:`DEFAULT_MAX_TOKENS` when the
  caller gives none), ``messages`` (roles ``user`` and ``assistant`` only,
  content a str or a list of blocks), a top-level ``system``, ``stream:
  true`` and the options.
* OpenAI-shaped messages are translated (:func:`to_anthropic`): ``system``
  and ``developer`` messages become ``system``; ``image_url`` parts become
  ``image`` blocks (``base64`` for ``data:`` URLs, ``url`` otherwise); an
  assistant's ``tool_calls`` become ``tool_use`` blocks, and ``tool`` messages
  ``tool_result`` blocks gathered into one user message; turns of the same
  role in a row are merged, as the API would merge them. Tools become
  ``{name, description, input_schema}``, ``tool_choice`` Anthropic's,
  ``response_format`` (a ``json_schema``, or a type) ``output_config.format``
  (the API's structured output: the reply's text is the JSON). That
  mapping is in :mod:`llmclients.providers._anthropic_messages` (its names,
  :func:`to_anthropic`, :data:`DEFAULT_MAX_TOKENS` and
  :data:`THINKING_BUDGETS`, are exported from here); this module holds the
  provider and the reading of the stream.
* The answer is Server-Sent Events whose ``type`` names them:
  ``message_start`` (id, model, the input side of ``usage``), then for each
  content block ``content_block_start``, ``content_block_delta``\\ s and
  ``content_block_stop``, addressed by ``index``; ``message_delta`` (the
  ``stop_reason`` and the usage so far: **cumulative**, so it is assigned,
  never added) and ``message_stop``, the end. ``ping`` and event types not
  known here are skipped (and do not count as progress for the idle clock).
* Deltas: ``text_delta`` is text; ``thinking_delta`` is reasoning, and the
  block's ``signature`` arrives whole in a ``signature_delta``;
  ``input_json_delta`` fragments are a tool call's input, joined per block
  and checked once at the block's stop (none, or only empty ones, mean
  ``{}``). ``thinking`` and ``redacted_thinking`` blocks are kept, in
  Anthropic's own shape and order, in the reply's ``message_fields`` as
  ``thinking_blocks``, and sent back unchanged before the text and tool
  calls of that assistant turn: the API refuses a tool loop's next turn
  without them.
* ``stop_reason`` becomes OpenAI's words (:data:`FINISH_REASONS`); the
  service's own stays in ``extra["stop_reason"]`` (and ``stop_sequence``).
  ``model_context_window_exceeded`` raises :class:`ContextLengthError`.
  ``usage`` counts every input token as ``prompt_tokens``
  (``input_tokens`` + ``cache_read_input_tokens`` +
  ``cache_creation_input_tokens``), the cache reads as ``cached_tokens``.
* An ``error`` event raises the error its ``error.type`` means as a status
  (:data:`ERROR_TYPES`: ``overloaded_error`` a 529 :class:`ServerError`,
  ``rate_limit_error`` a :class:`RateLimitError`, ...), with ``.type`` set:
  before the first delta it is retried as that status would be. A body that
  ends without ``message_stop`` raises :class:`StreamInterruptedError`.
"""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any, Dict, FrozenSet, List, Mapping, Optional, Tuple, Type
from urllib.parse import urlencode

from .._public import expose
from ._anthropic_messages import DEFAULT_MAX_TOKENS, THINKING_BUDGETS, request_options, to_anthropic
from .kit import (
    AuthenticationError,
    ContextLengthError,
    HTTPStatusError,
    MalformedStreamError,
    Message,
    NotFoundError,
    Provider,
    ProviderError,
    RateLimitError,
    Request,
    ServerError,
    SSEEvent,
    StreamInterruptedError,
    StreamState,
    Usage,
    load_json,
)

if TYPE_CHECKING:
    from typing_extensions import Unpack

    from .kit import ClientOptions

__all__ = [
    "API_VERSION",
    "DEFAULT_MAX_TOKENS",
    "ERROR_TYPES",
    "FINISH_REASONS",
    "THINKING_BUDGETS",
    "Anthropic",
    "to_anthropic",
]

expose(globals(), __name__, __all__)

#: The ``anthropic-version`` header: the API's one stable version.
API_VERSION = "2023-06-01"
#: Anthropic's stop reasons in OpenAI's words; others (``pause_turn``: send
#: the turn back to let a server tool go on) are kept as the service says them.
FINISH_REASONS: Mapping[str, str] = {
    "end_turn": "stop",
    "stop_sequence": "stop",
    "max_tokens": "length",
    "tool_use": "tool_calls",
    "refusal": "content_filter",
}
#: An ``error`` event's ``error.type`` -> the status it stands for, and its error class.
ERROR_TYPES: Mapping[str, Tuple[int, Type[HTTPStatusError]]] = {
    "invalid_request_error": (400, HTTPStatusError),
    "authentication_error": (401, AuthenticationError),
    "billing_error": (402, HTTPStatusError),
    "permission_error": (403, AuthenticationError),
    "not_found_error": (404, NotFoundError),
    "request_too_large": (413, HTTPStatusError),
    "rate_limit_error": (429, RateLimitError),
    "api_error": (500, ServerError),
    "timeout_error": (504, ServerError),
    "overloaded_error": (529, ServerError),
}
_MODEL_PAGES = 50


class Anthropic(Provider):
    """Anthropic's Messages API (``POST /v1/messages``), with ``x-api-key``."""

    name = "anthropic"
    label = "Anthropic"
    default_base_url = "https://api.anthropic.com"
    status = "works (the Messages API; also llama.cpp's llama-server, Ollama and LM Studio at /v1/messages)"
    default_model = "claude-sonnet-4-5"
    event_format = "sse"
    capabilities = frozenset({"tools", "images", "reasoning"})
    options = frozenset(
        {
            "extra_body",
            "max_completion_tokens",
            "max_tokens",
            "metadata",
            "parallel_tool_calls",
            "reasoning_effort",
            "response_format",
            "service_tier",
            "stop",
            "temperature",
            "thinking",
            "tool_choice",
            "tools",
            "top_k",
            "top_p",
            "user",
        }
    )
    lists_models = True
    #: thinking blocks go back in assistant turns; ``is_error`` marks a tool turn an error (the tool loop sets it).
    message_keys = frozenset({"thinking_blocks", "is_error"})
    #: 529 "overloaded" is retried as 429 and 502/503/504 are.
    retry_statuses = frozenset({529})
    #: The variable the command line reads the key from (else ``LLMCLIENTS_API_KEY``).
    api_key_env = "ANTHROPIC_API_KEY"

    def __init__(self, **options: Unpack[ClientOptions]) -> None:
        """A client of the Messages API at ``base_url`` (default
        ``https://api.anthropic.com``; a trailing ``/v1`` is accepted).

        ``api_key`` goes in ``x-api-key``; every other argument is every
        client's: see :class:`~llmclients._core.provider.Provider`.
        """
        super().__init__(**options)
        root = self.base_url
        self._root = root[: -len("/v1")] if root.endswith("/v1") else root

    def features_of_options(self, options: Mapping[str, Any]) -> FrozenSet[str]:
        needed = set()
        if {"tools", "tool_choice", "parallel_tool_calls"} & set(options):
            needed.add("tools")
        if {"reasoning_effort", "thinking"} & set(options):
            needed.add("reasoning")
        return frozenset(needed)

    def request_headers(self, accept: str) -> Dict[str, str]:
        """The API's headers: the key, its version, and what the answer is to be."""
        headers = {"Accept": accept, "anthropic-version": API_VERSION}
        if self.api_key:
            headers["x-api-key"] = self.api_key
        return headers

    def build_request(
        self, messages: List[Message], model: str, options: Dict[str, Any], thread: Dict[str, Any]
    ) -> Request:
        system, turns = to_anthropic(messages)
        body: Dict[str, Any] = {"model": model, "messages": turns}
        if system:
            body["system"] = system[0]["text"] if len(system) == 1 else system
        extra = options.pop("extra_body", None) or {}
        body.update(request_options(options))
        body["stream"] = True
        body.update(extra)
        return Request("POST", f"{self._root}/v1/messages", headers=self.request_headers("text/event-stream"), json=body)

    def parse_event(self, data: Any, state: StreamState) -> Optional[str]:
        event = load_json(data.data if data.__class__ is SSEEvent else data)
        kind = event.get("type") if event.__class__ is dict else None
        if kind is None:
            if data.__class__ is not SSEEvent:
                raise ValueError("an event is not a JSON object with a type")
            kind = data.event  # the SDK takes the event's name where its data has no type
        if kind == "content_block_delta":
            delta = event["delta"]
            part = delta.get("type")
            if part == "text_delta":  # nearly every event of a reply
                text = delta["text"]
                return text if text.__class__ is str else str(text)
            if part == "input_json_delta":  # nearly every event of a tool call
                fragment = delta.get("partial_json")
                if fragment:
                    state.first.add_tool_arguments(event["index"], fragment)
                return None
            _read_delta(event["index"], delta, state)
            return None
        reader = _READERS.get(kind)
        return reader(event, state) if reader is not None else None  # ping, and types not known here

    def parse_completion(self, document: Any, state: StreamState) -> Optional[str]:
        """A whole ``message`` object, from a server that did not stream: read
        as the events that would have built it."""
        if not isinstance(document, dict) or document.get("type") != "message":
            raise ValueError("it is not a message object")
        content = document.get("content") or []
        _message_start({"message": dict(document, content=[])}, state)
        texts = []
        for index, block in enumerate(content):
            texts.append(_block_start({"index": index, "content_block": block}, state) or "")
            _block_stop({"index": index}, state)
        _message_delta({"delta": document, "usage": document.get("usage") or {}}, state)
        _message_stop({}, state)
        return "".join(texts)

    def finish(self, state: StreamState) -> None:
        if not state.done:
            raise StreamInterruptedError("the stream ended before its message_stop event")

    def served_models(self) -> List[str]:
        """The ids of the models the API serves (``GET {base_url}/v1/models``, every page), newest first.

        Raises as a call does: a typed error for no connection, a timeout or
        an error status, and :class:`MalformedStreamError` for a body that is
        not Anthropic's ``{"data": [{"id": ...}], "has_more", "last_id"}``.
        """
        ids: List[str] = []
        after: Optional[str] = None
        for _ in range(_MODEL_PAGES):
            query = urlencode({"limit": 1000, **({"after_id": after} if after else {})})
            request = Request("GET", f"{self._root}/v1/models?{query}", headers=self.request_headers("application/json"))
            with self.new_call("models") as call:
                page = _model_page(call.fetch_json(request, "model list"), request)
            ids += [entry["id"] for entry in page["data"] if isinstance(entry.get("id"), str)]
            after = page.get("last_id")
            if not page.get("has_more") or not after:
                break
        return ids


# --- the events ------------------------------------------------------------------------------
# state.notes holds, per open content block index, what the block's stop needs:
# ("tool", the call's position, the start block's input) or ("thinking", where
# its reasoning starts in state.first.reasoning, its signature); "usage",
# the counts so far; and "unparsed", a tool call whose input is not JSON.


def _message_start(event: Dict[str, Any], state: StreamState) -> None:
    message = event.get("message") or {}
    if isinstance(message.get("id"), str):
        state.response_id = message["id"]
    if message.get("model"):
        state.model = message["model"]
    _note_usage(message.get("usage"), state)  # absent in some streams: the SDK crashed on that once


def _block_start(event: Dict[str, Any], state: StreamState) -> Optional[str]:
    index, block = event["index"], event["content_block"]
    kind = block.get("type")
    if kind == "text":
        return block.get("text") or None
    if kind == "tool_use":
        state.notes[index] = ("tool", len(state.first.tool_calls), block.get("input"))
        state.first.add_tool_call(index, block.get("id"), block.get("name"), "")
    elif kind == "thinking":
        state.notes[index] = ("thinking", len(state.first.reasoning), block.get("signature") or "")
        if block.get("thinking"):
            state.first.add_reasoning(block["thinking"])
    elif kind == "redacted_thinking":
        _keep_thinking(state, dict(block))
    return None


def _read_delta(index: int, delta: Mapping[str, Any], state: StreamState) -> None:
    kind = delta.get("type")
    if kind == "thinking_delta":
        state.first.add_reasoning(delta["thinking"])
    elif kind == "signature_delta":
        note = state.notes.get(index)
        if note and note[0] == "thinking":
            state.notes[index] = (*note[:2], delta["signature"])  # assigned whole, just before the stop
    # citations_delta and types not known here carry nothing the reply keeps


def _block_stop(event: Dict[str, Any], state: StreamState) -> None:
    note = state.notes.pop(event["index"], None)
    if note is None:
        return
    if note[0] == "tool":
        _check_input(note, event["index"], state)
    else:
        thinking = "".join(state.first.reasoning[note[1] :])
        _keep_thinking(state, {"type": "thinking", "thinking": thinking, "signature": note[2]})


def _check_input(note: Tuple[Any, ...], index: int, state: StreamState) -> None:
    """The tool call's input, whole at last: parsed once; nothing means ``{}``."""
    _, position, start_input = note
    call = state.first.tool_calls[position]
    if not call.arguments:
        # No fragments (or empty ones): a call without arguments, or a server
        # that put the whole input in the start block.
        whole = json.dumps(start_input, ensure_ascii=False) if start_input else "{}"
        state.first.add_tool_call(index, None, None, whole)
        return
    try:
        json.loads(call.arguments)
    except ValueError:
        # Cut by max_tokens (the stop reason comes after the block's stop): the
        # reply keeps it as a cut-off call. Anything else ends malformed, at message_stop.
        state.notes["unparsed"] = call


def _keep_thinking(state: StreamState, block: Dict[str, Any]) -> None:
    """A thinking block as the API must get it back, in the order the blocks came."""
    state.message_fields.setdefault("thinking_blocks", []).append(block)


def _message_delta(event: Dict[str, Any], state: StreamState) -> None:
    delta = event.get("delta") or {}
    reason = delta.get("stop_reason")
    if reason:
        state.extra["stop_reason"] = reason
        if delta.get("stop_sequence") is not None:
            state.extra["stop_sequence"] = delta["stop_sequence"]
        if reason == "model_context_window_exceeded":
            raise ContextLengthError(
                "the reply filled the model's context window (stop_reason model_context_window_exceeded)",
                status_code=400,
                type=reason,
            )
        state.finish_reason = FINISH_REASONS.get(reason, reason)
    _note_usage(event.get("usage"), state)


def _message_stop(event: Dict[str, Any], state: StreamState) -> None:
    call = state.notes.get("unparsed")
    if call is not None and state.finish_reason != "length":
        raise MalformedStreamError(
            f"the input of tool call {call.name!r} is not JSON once whole: {call.arguments[:200]!r}"
        )
    state.done = True


def _note_usage(usage: Any, state: StreamState) -> None:
    """Usage so far: each count the event has replaces the one before (they are
    cumulative); in OpenAI's sense, every input token counts as a prompt token."""
    if not isinstance(usage, dict):
        return
    seen = state.notes.setdefault("usage", {})
    seen.update((key, value) for key, value in usage.items() if value is not None)
    counts = {key: value for key, value in seen.items() if isinstance(value, int) and not isinstance(value, bool)}
    cache_read = counts.get("cache_read_input_tokens")
    prompt = counts.get("input_tokens", 0) + (cache_read or 0) + counts.get("cache_creation_input_tokens", 0)
    completion = counts.get("output_tokens", 0)
    state.usage = Usage(prompt, completion, prompt + completion, cached_tokens=cache_read, raw=dict(seen))


def _error(event: Dict[str, Any], state: StreamState) -> None:
    """An ``error`` event: the error its type stands for as a status (retried as that status before any delta)."""
    error = event.get("error")
    if not isinstance(error, dict):
        raise ProviderError(f"Anthropic reported an error: {error!r}")
    kind = str(error.get("type") or "error")
    message = f"Anthropic reported {kind} in the stream: {error.get('message') or 'no message'}"
    status, cls = ERROR_TYPES.get(kind, (0, HTTPStatusError))
    if not status:
        raise ProviderError(message, reason=kind)
    if kind == "invalid_request_error" and "prompt is too long" in str(error.get("message")):
        cls = ContextLengthError
    request_id = event.get("request_id")
    raise cls(message, status_code=status, type=kind, request_id=request_id if isinstance(request_id, str) else None)


_READERS: Dict[str, Any] = {
    "message_start": _message_start,
    "content_block_start": _block_start,
    "content_block_stop": _block_stop,
    "message_delta": _message_delta,
    "message_stop": _message_stop,
    "error": _error,
}


def _model_page(page: Any, request: Request) -> Dict[str, Any]:
    """One page of ``GET /v1/models``, checked."""
    if isinstance(page, dict) and isinstance(page.get("data"), list) and all(isinstance(e, dict) for e in page["data"]):
        return page
    raise MalformedStreamError(f"{request!r} did not answer with a model list (Anthropic's data: [{{id: ...}}])")
