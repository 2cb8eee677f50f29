"""What particular servers send, as scripted events for
:class:`~llmclients.testing.openai.OpenAIEmulator`: llama.cpp server's final
chunks and ``timings``, the in-stream error of each server's kind, and
llama.cpp's answer to a prompt longer than its context.

They return lists of :data:`~llmclients.testing._openai_events.Event`, to join
with the other builders of :mod:`llmclients.testing._openai_events` for
``Reply(events=...)``; import them from :mod:`llmclients.testing.openai`.
"""

from __future__ import annotations

from typing import Any, Dict, List, Optional, Union

from ._openai_events import Event, finish_chunk, sse_json, usage_chunk

__all__ = ["ERROR_FORMS", "error_event", "exceed_context_error", "llamacpp_final_chunks", "llamacpp_timings"]

#: The forms :func:`error_event` can take.
ERROR_FORMS = ("event", "flat", "field", "data")


def llamacpp_timings(
    prompt_n: int,
    predicted_n: int,
    *,
    prompt_ms: float = 12.5,
    predicted_ms: float = 40.0,
    cache_n: int = 0,
) -> Dict[str, Any]:
    """llama.cpp server's ``timings`` object (``result_timings::to_json``):
    ``cache_n``, ``prompt_n``, ``prompt_ms``, ``prompt_per_token_ms``,
    ``prompt_per_second``, ``predicted_n``, ``predicted_ms``,
    ``predicted_per_token_ms``, ``predicted_per_second``."""

    def per_token(ms: float, n: int) -> float:
        return ms / n if n else 0.0

    def per_second(ms: float, n: int) -> float:
        return 1e3 / ms * n if ms else 0.0

    return {
        "cache_n": cache_n,
        "prompt_n": prompt_n,
        "prompt_ms": prompt_ms,
        "prompt_per_token_ms": per_token(prompt_ms, prompt_n),
        "prompt_per_second": per_second(prompt_ms, prompt_n),
        "predicted_n": predicted_n,
        "predicted_ms": predicted_ms,
        "predicted_per_token_ms": per_token(predicted_ms, predicted_n),
        "predicted_per_second": per_second(predicted_ms, predicted_n),
    }


def llamacpp_final_chunks(
    prompt_n: int,
    predicted_n: int,
    *,
    include_usage: bool = False,
    finish_reason: str = "stop",
    index: int = 0,
    prompt_ms: float = 12.5,
    predicted_ms: float = 40.0,
    cache_n: int = 0,
) -> List[Event]:
    """The end of a llama.cpp server chat stream (``to_json_oaicompat_chat_stream``).

    A finish chunk (empty delta), then, with ``include_usage``, a
    ``choices: []`` chunk with ``usage``; the last of them carries
    :func:`llamacpp_timings`. Put after :func:`text_chunks` with
    ``finish_reason=None``.
    """
    events: List[Event] = [finish_chunk(index, finish_reason)]
    if include_usage:
        events.append(usage_chunk(prompt_n, predicted_n))
    last = events[-1]
    assert isinstance(last, dict)
    last["timings"] = llamacpp_timings(
        prompt_n, predicted_n, prompt_ms=prompt_ms, predicted_ms=predicted_ms, cache_n=cache_n
    )
    return events


def error_event(
    form: str,
    message: str = "The server had an error while processing your request.",
    *,
    type: Optional[str] = None,
    code: Union[int, str, None] = None,
) -> List[Event]:
    """An error in the middle of a stream, as a real server sends it.

    ``"data"``
        ``data: {"error": {"message", "type", "param": null, "code"}}`` --
        OpenAI (type ``server_error`` by default), and newer vLLM and llama.cpp
        (whose ``error`` objects have a numeric ``code``).
    ``"flat"``
        ``data: {"object": "error", "message", "type", "param": null,
        "code"}`` -- vLLM before it nested its ``ErrorResponse`` under
        ``error`` (type ``BadRequestError``, code 400 by default).
    ``"field"``
        ``error: {"code", "message", "type"}`` then ``data: [DONE]`` --
        older llama.cpp server builds (``server_sent_event(sink, "error",
        ...)``: an SSE *field* named ``error``, which the SSE standard says
        to ignore; newer builds send the ``"data"`` form); code 500, type
        ``server_error`` by default. It sends its own ``[DONE]``: script it
        with ``finish_reason=None``.
    ``"event"``
        ``event: error`` and ``data: {"message"}`` (no ``error`` key): a named
        SSE event, as some gateways send (not checked against a specific
        server).
    """
    if form == "data":
        return [
            sse_json(
                b"data: ",
                {"error": {"message": message, "type": type or "server_error", "param": None, "code": code}},
                compact=True,
            )
        ]
    if form == "flat":
        body = {
            "object": "error",
            "message": message,
            "type": type or "BadRequestError",
            "param": None,
            "code": 400 if code is None else code,
        }
        return [sse_json(b"data: ", body)]
    if form == "field":
        body = {"code": 500 if code is None else code, "message": message, "type": type or "server_error"}
        return [sse_json(b"error: ", body, compact=True), b"data: [DONE]\n\n"]
    if form == "event":
        return [sse_json(b"event: error\ndata: ", {"message": message}, compact=True)]
    raise ValueError(f"form must be one of {ERROR_FORMS}, not {form!r}")


def exceed_context_error(n_prompt_tokens: int, n_ctx: int) -> Dict[str, Any]:
    """llama.cpp server's answer to a prompt longer than its context, for
    ``Reply(status=400, body=...)``: ``{"error": {"code": 400, "message":
    "request (N tokens) exceeds the available context size (M tokens), try
    increasing it", "type": "exceed_context_size_error", "n_prompt_tokens",
    "n_ctx"}}``."""
    return {
        "error": {
            "code": 400,
            "message": (
                f"request ({n_prompt_tokens} tokens) exceeds the available context size "
                f"({n_ctx} tokens), try increasing it"
            ),
            "type": "exceed_context_size_error",
            "n_prompt_tokens": n_prompt_tokens,
            "n_ctx": n_ctx,
        }
    }
