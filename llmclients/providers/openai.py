"""OpenAI-compatible chat completions: Ollama, vLLM, llama.cpp, OpenRouter, ...

Protocol:

* ``POST {base_url}/chat/completions`` with a JSON body: ``model``,
  ``messages`` (roles ``system``, ``developer``, ``user``, ``assistant``,
  ``tool``; content a str or a list of content parts), ``stream: true``,
  ``stream_options: {"include_usage": true}`` and the generation options
  openai-python names (``tools``, ``response_format``, ``n``, ...);
  ``Authorization: Bearer <api_key>`` when there is a key.
* The answer is Server-Sent Events, one ``chat.completion.chunk`` JSON object
  per ``data:`` line; ``data: [DONE]`` ends it. Each chunk has ``choices``,
  each with its ``index`` and a ``delta`` that may hold:

  - ``content``: answer text;
  - ``reasoning_content`` (DeepSeek, llama.cpp) or ``reasoning`` (vLLM,
    OpenRouter, Ollama): the model's thinking; servers that send both send
    the same text twice, so the first one present is read;
  - ``refusal``: OpenAI's refusal text;
  - ``tool_calls``: fragments of calls, joined by their ``index`` (see
    :meth:`llmclients.events.ChoiceBuilder.add_tool_call` for the servers that
    number them oddly);

  and beside the delta ``finish_reason`` and ``logprobs``. A last chunk with
  empty ``choices`` carries ``usage``. The chunk's ``id`` is the reply's id;
  keys beyond OpenAI's own (``system_fingerprint``, llama.cpp's ``timings``,
  OpenRouter's ``provider``) are kept in ``extra``.
* A ``<think>…</think>`` block left inside ``content`` (a server started
  without a reasoning parser) is the server's text and stays in the text:
  only the server knows whether the model meant it as reasoning.
* An error inside the stream takes one of four shapes: a chunk with an
  ``error`` object (OpenAI), a flat ``{"object": "error", "message": ...}``
  (vLLM), an ``event: error`` event, or llama.cpp's ``error: {...}`` line
  followed by ``data: [DONE]``. All of them raise :class:`ProviderError`.
* A server that answers ``200 application/json`` instead of streaming sends a
  whole ``chat.completion`` object (each choice's ``message`` in place of a
  ``delta``): it is read as the same reply (:meth:`OpenAICompatible.parse_completion`).

The chunk reader is this module's functions (:func:`chunk_of`,
:func:`read_chunk`, :func:`read_completion`, :func:`check_finished`,
:func:`stream_error`); other providers whose services send OpenAI's chunks
(:mod:`~llmclients.providers.autonomous`) read them with these, and
:func:`list_models` reads OpenAI's model list for any provider.
"""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any, Dict, FrozenSet, List, Mapping, Optional, Set

from . import message_keys
from .kit import (
    ChoiceBuilder,
    ClientOptions,
    InvalidRequestError,
    MalformedStreamError,
    Message,
    Provider,
    ProviderError,
    Request,
    SSEEvent,
    StreamInterruptedError,
    StreamState,
    Usage,
    check_tools,
    error_message,
    load_json,
)

if TYPE_CHECKING:
    from typing_extensions import Unpack

#: The keys of an assistant message that OpenAI-compatible servers know (and a few take).
_ASSISTANT_KEYS = frozenset(
    {"role", "content", "name", "tool_calls", "function_call", "refusal", "audio", "reasoning_content", "reasoning"}
)
#: The keys of a tool result that OpenAI-compatible servers know.
_TOOL_KEYS = frozenset({"role", "content", "tool_call_id", "name"})
#: role -> the keys of its turns that servers know; other roles are sent as they are.
_KNOWN_KEYS: Mapping[Any, FrozenSet[str]] = {"assistant": _ASSISTANT_KEYS, "tool": _TOOL_KEYS}
#: The keys of a chunk that OpenAI itself sends; anything else goes to ``extra``.
_CHUNK_KEYS = frozenset({"id", "object", "created", "model", "choices", "usage"})
_EMPTY: Mapping[str, Any] = {}


class OpenAICompatible(Provider):
    """Any server that speaks OpenAI's chat completions API, at ``base_url``."""

    name = "openai"
    label = "OpenAI-compatible"
    status = "works with any server that speaks the API (Ollama, vLLM, llama.cpp, OpenRouter, ...)"
    event_format = "sse"
    capabilities = frozenset({"tools", "images", "audio", "files", "reasoning"})
    #: The request parameters of openai-python's ``chat.completions.create``
    #: (less ``model``, ``messages`` and ``stream``), and ``extra_body`` for the rest.
    options = frozenset(
        {
            "audio",
            "extra_body",
            "frequency_penalty",
            "function_call",
            "functions",
            "logit_bias",
            "logprobs",
            "max_completion_tokens",
            "max_tokens",
            "metadata",
            "modalities",
            "n",
            "parallel_tool_calls",
            "prediction",
            "presence_penalty",
            "prompt_cache_key",
            "reasoning_effort",
            "response_format",
            "safety_identifier",
            "seed",
            "service_tier",
            "stop",
            "store",
            "stream_options",
            "temperature",
            "tool_choice",
            "tools",
            "top_logprobs",
            "top_p",
            "user",
            "verbosity",
            "web_search_options",
        }
    )

    def __init__(self, *, include_usage: bool = True, **options: Unpack[ClientOptions]) -> None:
        """A client of the server at ``base_url`` (``.../v1``; required).

        ``api_key`` goes in ``Authorization: Bearer`` (leave it None for a local
        server); ``model`` is the default for calls (there is no built-in one).
        ``timeout``, ``retry``, ``proxy``, ``headers``, ``max_retries``,
        ``session``, ``pool_size``, ``verify`` and ``max_reply_size`` are every client's: see
        :class:`~llmclients._core.provider.Provider`. ``include_usage=False`` leaves
        out ``stream_options`` for old servers that reject it.
        """
        super().__init__(**options)
        self.include_usage = include_usage

    lists_models = True

    def served_models(self) -> List[str]:
        """The ids of the models the server serves (``GET {base_url}/models``), in its order.

        Raises as a call does: a typed error for no connection, a timeout or
        an error status, and :class:`MalformedStreamError` for a body that is
        not OpenAI's ``{"data": [{"id": ...}, ...]}``.
        """
        return list_models(self)

    def features_of_options(self, options: Mapping[str, Any]) -> FrozenSet[str]:
        needed = set()
        if {"tools", "tool_choice", "parallel_tool_calls", "functions", "function_call"} & set(options):
            needed.add("tools")
        if "reasoning_effort" in options:
            needed.add("reasoning")
        return frozenset(needed)

    def build_request(
        self, messages: List[Message], model: str, options: Dict[str, Any], thread: Dict[str, Any]
    ) -> Request:
        _check_options(options)
        body: Dict[str, Any] = {"model": model, "messages": _own(messages), "stream": True}
        stream_options = dict(options.pop("stream_options", None) or {})
        if self.include_usage:
            stream_options.setdefault("include_usage", True)
        if stream_options:
            body["stream_options"] = stream_options
        extra = options.pop("extra_body", None) or {}
        body.update(options)
        body.update(extra)
        headers = {"Accept": "text/event-stream"}
        if self.api_key:
            headers["Authorization"] = f"Bearer {self.api_key}"
        return Request("POST", f"{self.base_url}/chat/completions", headers=headers, json=body)

    def parse_event(self, data: Any, state: StreamState) -> Optional[str]:
        if data.__class__ is SSEEvent:
            if data.event == "error":
                raise stream_error(_json_or_text(data.data))
            return None  # other named events (pings) carry nothing for us
        chunk = chunk_of(data, state)
        if chunk is None:
            return None
        if "error" in chunk or chunk.get("object") == "error":
            raise stream_error(chunk)
        return read_chunk(chunk, state)

    def parse_completion(self, document: Any, state: StreamState) -> Optional[str]:
        """A ``chat.completion`` object: the whole reply, from a server that did not stream.

        It is read as one chunk whose choices carry their ``message`` as the
        delta, so text, reasoning, tool calls, usage and finish reasons land
        where a stream puts them.
        """
        if not isinstance(document, dict) or not isinstance(document.get("choices"), list):
            raise ValueError("it has no choices: not a chat.completion object")
        return read_completion(document, state)

    def finish(self, state: StreamState) -> None:
        check_finished(state)


def chunk_of(data: str, state: StreamState) -> Optional[Dict[str, Any]]:
    """The ``chat.completion.chunk`` in an event's data; None for ``[DONE]``,
    which ends the stream. ValueError for data that is not a JSON object."""
    if data == "[DONE]":
        state.done = True
        return None
    chunk = load_json(data)
    if not isinstance(chunk, dict):
        raise ValueError("an event is not a JSON object")
    return chunk


def check_finished(state: StreamState) -> None:
    """:class:`StreamInterruptedError` for a stream that ended before its
    finish reason and ``data: [DONE]``."""
    if not state.done and state.finish_reason is None:
        raise StreamInterruptedError("the stream ended before its finish reason and data: [DONE]")


def read_completion(document: Dict[str, Any], state: StreamState) -> Optional[str]:
    """A ``chat.completion`` object (its ``choices`` a list): the whole reply,
    read as one chunk whose choices carry their ``message`` as the delta."""
    choices = [_as_delta(choice) for choice in document["choices"]]
    text = read_chunk(dict(document, choices=choices), state)
    state.done = True
    return text


def read_chunk(chunk: Dict[str, Any], state: StreamState) -> Optional[str]:
    """A ``chat.completion.chunk``: choice 0's text, the rest noted in ``state``."""
    if state.response_id is None and isinstance(chunk.get("id"), str):
        state.response_id = chunk["id"]
    model = chunk.get("model")
    if model:
        state.model = model
    usage = chunk.get("usage")
    if usage:
        state.usage = Usage.from_dict(usage)
    if len(chunk) > 5:
        _note_extra(chunk, state)
    choices = chunk.get("choices")
    if not choices:
        return None
    if len(choices) == 1 and not choices[0].get("index"):
        return _read_first(choices[0], state)  # nearly every chunk: one choice, index 0
    text = None
    for choice in choices:
        index = choice.get("index") or 0
        if index == 0:
            text = _read_first(choice, state)
            continue
        builder = state.choice(index)
        delta = choice.get("delta") or {}
        _read_delta(delta, builder)
        content = delta.get("content")
        if content.__class__ is str and content:
            builder.add_text(content)
        if choice.get("logprobs"):
            _read_logprobs(choice["logprobs"], builder)
        builder.finish_reason = choice.get("finish_reason") or builder.finish_reason
    return text


def _as_delta(choice: Mapping[str, Any]) -> Dict[str, Any]:
    """A ``chat.completion`` choice as a chunk's: its ``message`` as the delta,
    each tool call numbered by its place (a whole call has no ``index``)."""
    message = dict(choice.get("message") or {})
    calls = message.get("tool_calls")
    if isinstance(calls, list):
        message["tool_calls"] = [dict(call, index=position) for position, call in enumerate(calls)]
    return dict(choice, delta=message)


def _read_first(choice: Mapping[str, Any], state: StreamState) -> Optional[str]:
    """Choice 0: its text is returned (the stream's own), the rest goes to the state."""
    delta = choice.get("delta") or _EMPTY
    content = delta.get("content")
    if len(delta) > 1 or content is None:
        _read_delta(delta, state.first)
    if choice.get("logprobs"):
        _read_logprobs(choice["logprobs"], state.first)
    finish_reason = choice.get("finish_reason")
    if finish_reason:
        state.finish_reason = finish_reason
    return content if content.__class__ is str else None


def _read_delta(delta: Mapping[str, Any], builder: ChoiceBuilder) -> None:
    """Everything in a delta but its ``content``."""
    reasoning = delta.get("reasoning_content") or delta.get("reasoning")
    if reasoning.__class__ is str:
        builder.add_reasoning(reasoning)
        if len(delta) == 1 or (len(delta) == 2 and "content" in delta):
            return  # a reasoning token, as nearly all of a thinking model's deltas are
    refusal = delta.get("refusal")
    if refusal.__class__ is str and refusal:
        builder.add_refusal(refusal)
    for fragment in delta.get("tool_calls") or ():
        function = fragment.get("function") or {}
        builder.add_tool_call(
            fragment.get("index"), fragment.get("id"), function.get("name"), function.get("arguments")
        )
    legacy = delta.get("function_call")  # the API before tool_calls: one call, no id
    if isinstance(legacy, dict):
        builder.add_tool_call(0, None, legacy.get("name"), legacy.get("arguments"))


def _read_logprobs(logprobs: Any, builder: ChoiceBuilder) -> None:
    if isinstance(logprobs, dict):
        entries = logprobs.get("content") or logprobs.get("refusal")
        if entries:
            builder.add_logprobs(entries)


def _note_extra(chunk: Mapping[str, Any], state: StreamState) -> None:
    for key in chunk.keys() - _CHUNK_KEYS:
        state.extra[key] = chunk[key]


def _check_options(options: Mapping[str, Any]) -> None:
    """The shapes servers reject with a terse 400, caught before sending."""
    if options.get("tools") is not None:
        check_tools(options["tools"])
    n = options.get("n")
    if n is not None and (not isinstance(n, int) or isinstance(n, bool) or n < 1):
        raise InvalidRequestError(f"n must be a positive int, not {n!r}")
    response_format = options.get("response_format")
    if response_format is not None and not (
        isinstance(response_format, Mapping) and "type" in response_format
    ):
        raise InvalidRequestError(
            "response_format must be a dict such as {'type': 'json_object'} or "
            "{'type': 'json_schema', 'json_schema': {...}}"
        )


def _json_or_text(data: str) -> Any:
    try:
        return json.loads(data)
    except ValueError:
        return data


def stream_error(error: Any) -> ProviderError:
    """A :class:`ProviderError` from any of the error shapes servers stream."""
    if isinstance(error, dict) and "error" in error:
        error = error["error"]
    if isinstance(error, dict):
        message = error_message(error) or str(error)
        reason = error.get("code") or error.get("type")
        return ProviderError(
            f"the server reported an error: {message}", reason=str(reason) if reason else None
        )
    return ProviderError(f"the server reported an error: {error}")


def list_models(client: Provider) -> List[str]:
    """``GET {base_url}/models`` of ``client`` (with its key as ``Authorization:
    Bearer``): the model ids in the server's order. Every provider whose server
    lists models OpenAI's way (:mod:`~llmclients.providers.responses`) asks with this."""
    headers = {"Accept": "application/json"}
    if client.api_key:
        headers["Authorization"] = f"Bearer {client.api_key}"
    request = Request("GET", f"{client.base_url}/models", headers=headers)
    with client.new_call("models") as call:
        document = call.fetch_json(request, "model list")
        try:
            return [entry["id"] for entry in document["data"] if isinstance(entry["id"], str)]
        except (KeyError, TypeError):
            raise MalformedStreamError(
                f"{request!r} did not answer with a model list (OpenAI's data: [{{id: ...}}])"
            ) from None


def _own(messages: List[Message]) -> List[Message]:
    """``messages`` without the keys other providers keep in their assistant
    and tool turns (Anthropic's thinking blocks and ``is_error``, Ollama's
    thinking): a history begun with another service goes on here, and OpenAI
    refuses unknown keys."""
    unusual: Set[str] = set()
    for message in messages:
        known = _KNOWN_KEYS.get(message.get("role"))
        if known is not None:
            unusual.update(key for key in message if key not in known)
    foreign = message_keys() & unusual if unusual else unusual  # the registry's classes load only then
    if not foreign:
        return messages
    return [
        {key: value for key, value in message.items() if key not in foreign}
        if message.get("role") in _KNOWN_KEYS
        else message
        for message in messages
    ]
