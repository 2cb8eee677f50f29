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

Scripting other stream shapes
-----------------------------

``Reply(events=[...])`` replaces the text with the given events, each either

* a ``dict``: one chunk. The envelope keys it lacks (``id``, ``object:
  "chat.completion.chunk"``, ``created``, ``model`` -- the request's) are
  filled in and it is sent as ``data: <json>\\n\\n``. A :class:`SplitChunk` is
  sent the same way but in two writes, split inside its first multi-byte
  UTF-8 character;
* ``bytes``: sent verbatim -- error field lines, ``event: error`` blocks, a
  :data:`BOM`, comments, a chunk without an envelope.

After them comes ``data: [DONE]\\n\\n`` **only if** ``reply.finish_reason`` is
not None (it is ``"stop"`` by default: pass ``finish_reason=None`` to end the
stream without it, e.g. after :func:`error_event` ``("field")``, which sends
its own). Nothing else is added: no role chunk, no usage chunk. Each item is
one write (and, with chunked framing, one HTTP chunk), so ``delay``,
``stall_after``, ``drop_after``, ``gzip`` and the framings act on them as on
the text events. A ``stream: false`` request with scripted events gets the
``chat.completion`` the chunks add up to (content, reasoning, tool calls,
finish reasons, usage).

The builders below return such lists; join them with ``+``::

    emulator.enqueue(Reply(events=[BOM] + text_chunks(["Hel", "lo"], finish_reason=None)
                           + llamacpp_final_chunks(5, 2)))

Validation
----------

A 400 ``invalid_request_error`` whose ``param`` names the offending path, for:
roles other than system/developer/user/assistant/tool; user, system and
developer content that is not a str or a list of parts (user: ``text``,
``image_url`` with ``url``, ``input_audio`` with ``data`` and a ``format`` of
wav/mp3, ``file`` with ``file_data`` or ``file_id``; system and developer:
``text`` only); assistant content missing or null without ``tool_calls``;
malformed ``tool_calls`` (each ``{id, type: "function", function: {name,
arguments: str}}``); tool messages without a ``tool_call_id`` that answers the
assistant message before them, and assistant tool calls left unanswered;
``tools`` that are not a list of ``{type: "function", function: {name
matching ^[a-zA-Z0-9_-]{1,64}$, parameters: object}}``; a ``tool_choice``
other than none/auto/required/``{type: "function", function: {name}}``, or one
without ``tools``; an ``n`` that is not an integer from 1 to 128; a
``response_format`` whose type is not text/json_object/json_schema, or a
json_schema one without ``json_schema.name``. The messages follow OpenAI's
wording, which writes paths as ``messages[2].content`` in type and value
errors but ``messages.[2].role`` in its checks of the tool-call sequence.
"""

from __future__ import annotations

import json
import re
import time
from typing import Any, Dict, Iterable, Iterator, List, Mapping, Optional, Sequence, Tuple, Union

from .server import Emulator, RecordedRequest, Rejection, Reply

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

DEFAULT_MODEL = "emulator-1"

#: One scripted event: a chunk (dict) or verbatim bytes.
Event = Union[Dict[str, Any], bytes]
#: A tool call to script: (id, function name, arguments as a JSON string).
ToolCall = Tuple[str, str, str]


# =====================================================================================
# Builders: lists of events for Reply(events=...)
# =====================================================================================

#: A UTF-8 byte order mark: the SSE standard has parsers drop one at the very start of a stream.
BOM = b"\xef\xbb\xbf"

#: The SSE comment OpenRouter sends while a request waits for its upstream provider.
OPENROUTER_PROCESSING = b": OPENROUTER PROCESSING\n\n"


class SplitChunk(Dict[str, Any]):
    """A chunk sent in two writes, split inside its first multi-byte UTF-8 character.

    The emulator serialises it like any chunk (non-ASCII characters as raw
    UTF-8), then cuts the bytes after the lead byte of the first multi-byte
    character: with chunked framing the two halves are two HTTP chunks, paced
    by ``delay``. A chunk with only ASCII goes in one write. ``SplitChunk(chunk)``
    wraps any chunk a builder made.
    """


def _choice(
    delta: Dict[str, Any], index: int = 0, finish: Optional[str] = None, logprobs: Any = None
) -> Dict[str, Any]:
    return {"index": index, "delta": delta, "logprobs": logprobs, "finish_reason": finish}


def _chunk(choice: Dict[str, Any], split: bool = False) -> Dict[str, Any]:
    chunk = {"choices": [choice]}
    return SplitChunk(chunk) if split else chunk


def _finish(index: int, reason: str) -> Dict[str, Any]:
    return _chunk(_choice({}, index, reason))


def _logprob_entry(token: str, position: int, top: int) -> Dict[str, Any]:
    logprob = -round(0.01 * (position + 1), 4)
    alternatives = [
        {"token": token, "logprob": logprob, "bytes": list(token.encode("utf-8"))},
        *(
            {"token": f"alt{k}", "logprob": round(logprob - k, 4), "bytes": list(f"alt{k}".encode())}
            for k in range(1, top)
        ),
    ]
    return {
        "token": token,
        "logprob": logprob,
        "bytes": list(token.encode("utf-8")),
        "top_logprobs": alternatives[:top],
    }


def text_chunks(
    pieces: Iterable[str],
    *,
    index: int = 0,
    role: bool = True,
    finish_reason: Optional[str] = "stop",
    logprobs: bool = False,
    top_logprobs: int = 1,
) -> List[Event]:
    """Text as OpenAI streams it: a role chunk, a chunk per piece, a finish chunk.

    The role chunk is ``{"role": "assistant", "content": ""}``; each piece is
    ``{"content": piece}``; the finish chunk has an empty delta and
    ``finish_reason`` (left out when None, e.g. to append
    :func:`llamacpp_final_chunks`); ``role=False`` leaves out the role chunk.
    With ``logprobs`` each piece's choice carries ``logprobs: {"content":
    [{token, logprob, bytes, top_logprobs}], "refusal": None}`` as OpenAI sends
    for ``logprobs: true`` (one token per piece; ``top_logprobs`` entries, the
    token itself first, then made-up ``altN`` tokens).
    """
    events: List[Event] = []
    if role:
        events.append(_chunk(_choice({"role": "assistant", "content": ""}, index)))
    for position, piece in enumerate(pieces):
        lp = (
            {"content": [_logprob_entry(piece, position, top_logprobs)], "refusal": None}
            if logprobs
            else None
        )
        events.append(_chunk(_choice({"content": piece}, index, None, lp)))
    if finish_reason is not None:
        events.append(_finish(index, finish_reason))
    return events


def reasoning_chunks(
    pieces: Iterable[str],
    *,
    key: str = "reasoning_content",
    then_text: Iterable[str] = (),
    null_content: bool = False,
    index: int = 0,
    finish_reason: Optional[str] = "stop",
) -> List[Event]:
    """A model's reasoning streamed before its answer, in a delta field of its own.

    ``key="reasoning_content"`` is DeepSeek's API and llama.cpp's server (with
    ``--reasoning-format deepseek``, its default); ``key="reasoning"`` is vLLM
    (which renamed ``reasoning_content`` to it), OpenRouter and Ollama's
    ``/v1``. Each piece is ``{key: piece}`` (with ``"content": None`` too if
    ``null_content``, as DeepSeek sends); then ``then_text`` pieces come as
    ``{"content": piece}`` (with ``key: None`` if ``null_content``), then the
    finish chunk (left out when ``finish_reason`` is None).
    """
    if key not in ("reasoning_content", "reasoning"):
        raise ValueError(f"key must be 'reasoning_content' or 'reasoning', not {key!r}")
    first: Dict[str, Any] = {"role": "assistant", "content": None if null_content else ""}
    events: List[Event] = [_chunk(_choice(first, index))]
    for piece in pieces:
        delta: Dict[str, Any] = {"content": None, key: piece} if null_content else {key: piece}
        events.append(_chunk(_choice(delta, index)))
    for piece in then_text:
        delta = {"content": piece, key: None} if null_content else {"content": piece}
        events.append(_chunk(_choice(delta, index)))
    if finish_reason is not None:
        events.append(_finish(index, finish_reason))
    return events


#: The shapes :func:`tool_call_chunks` can give a stream of tool calls.
TOOL_CALL_SHAPES = (
    "openai",
    "whole",
    "together",
    "offset",
    "no_index",
    "no_index_whole",
    "same_index",
    "parallel",
    "split_utf8",
)
#: Shapes whose calls each arrive complete, in one entry: shape -> the index each gets.
_WHOLE = {"whole": "count", "together": "count", "no_index_whole": "none", "same_index": "zero"}


def _fragments(text: str, size: int, split_utf8: bool = False) -> List[str]:
    """``text`` in pieces of at most ``size`` characters; with ``split_utf8`` a
    new piece also starts at each non-ASCII character, so pieces end just
    before one (mid-string, in JSON arguments)."""
    pieces: List[str] = []
    current = ""
    for char in text:
        if current and (len(current) >= size or (split_utf8 and ord(char) > 0x7F)):
            pieces.append(current)
            current = ""
        current += char
    if current:
        pieces.append(current)
    return pieces


def _call_entry(
    position: Optional[int], call_id: Optional[str], name: Optional[str], arguments: str
) -> Dict[str, Any]:
    entry: Dict[str, Any] = {} if position is None else {"index": position}
    if call_id is not None:
        entry["id"] = call_id
        entry["type"] = "function"
    function: Dict[str, Any] = {} if name is None else {"name": name}
    function["arguments"] = arguments
    entry["function"] = function
    return entry


def tool_call_chunks(
    calls: Sequence[ToolCall],
    *,
    shape: str = "openai",
    fragment: int = 8,
    content: Iterable[str] = (),
    index: int = 0,
    finish_reason: Optional[str] = "tool_calls",
) -> List[Event]:
    """Tool calls streamed in one of the shapes servers use; ``calls`` are (id, name, arguments).

    Text ``content`` pieces, if given, come first (after a role chunk). The
    stream ends with a finish chunk, ``finish_reason: "tool_calls"`` (left out
    when None; Gemini's endpoint sends ``"stop"`` there). Fragments are at most
    ``fragment`` characters of arguments.

    ``"openai"``
        OpenAI's: the role chunk (``"content": null``) also carries the first
        call's header (``{"index", "id", "type": "function", "function":
        {"name", "arguments": ""}}``); then its arguments in fragments
        (``{"index", "function": {"arguments"}}``); then the next call's
        header, and so on. ``index`` on every fragment; ``id``, ``type`` and
        ``name`` only on the first of each call.
    ``"whole"``
        after a role chunk, each call complete (``index``, ``id``, ``name``,
        all the ``arguments``) in a chunk of its own: Ollama's ``/v1`` since it
        added ``index`` (0.4.7), Groq.
    ``"together"``
        every call complete in one chunk's ``tool_calls`` list: servers that
        hand over a finished message's calls at once.
    ``"offset"``
        as ``"openai"`` but the indices start at 1 -- proxies that translate
        Anthropic's stream and pass on its content-block index (reported of
        CLIProxyAPI and bedrock-access-gateway): a client must not take the
        index for a position in a list.
    ``"no_index"``
        as ``"openai"`` (a header with an ``id``, then fragments) with no
        ``index`` key at all -- Gemini's OpenAI-compatible endpoint when it
        splits arguments, Ollama's ``/v1`` before 0.4.7: a fragment belongs to
        the call whose ``id`` came last.
    ``"no_index_whole"``
        as ``"whole"`` with no ``index`` key: Gemini's OpenAI-compatible
        endpoint's usual shape.
    ``"same_index"``
        as ``"whole"`` but every call has ``index: 0``: Ollama's ``/v1`` with
        several calls (ollama#15457); only the ``id`` tells the calls apart.
    ``"parallel"``
        all headers first, then the calls' fragments interleaved round-robin
        (index 0, 1, 0, 1, ...): allowed by the index design, which no server
        promises to avoid; a client must join by index, not by order.
    ``"split_utf8"``
        as ``"openai"``, but each non-ASCII character starts a new fragment
        (so the fragment before ends mid-JSON-string next to it) and every
        chunk that holds one is a :class:`SplitChunk`: its bytes go in two
        writes, cut inside the character. A JSON event cannot split a
        character, so the cut is at the transport: with the default chunked
        framing each half is an HTTP chunk (paced by ``delay``), and a client
        that decodes each network read on its own breaks; with ``"length"``
        framing the halves are joined again. Needs arguments with non-ASCII
        characters (else ValueError).
    """
    if shape not in TOOL_CALL_SHAPES:
        raise ValueError(f"shape must be one of {TOOL_CALL_SHAPES}, not {shape!r}")
    if fragment < 1:
        raise ValueError("fragment must be at least 1")
    split = shape == "split_utf8"
    if split and not any(ord(char) > 0x7F for _, _, arguments in calls for char in arguments):
        raise ValueError("shape 'split_utf8' needs arguments with non-ASCII characters")
    events: List[Event] = []
    content = list(content)
    role_sent = bool(content)
    if content:
        events.extend(text_chunks(content, index=index, finish_reason=None))

    def send(*entries: Dict[str, Any], split_chunk: bool = False) -> None:
        """A chunk carrying these tool call entries (and the role, if not yet sent)."""
        nonlocal role_sent
        delta: Dict[str, Any] = {}
        if not role_sent:
            delta = {"role": "assistant", "content": None}
            role_sent = True
        delta["tool_calls"] = list(entries)
        events.append(_chunk(_choice(delta, index), split_chunk))

    if (shape in _WHOLE or shape == "parallel") and not role_sent:
        role = {"role": "assistant", "content": None if shape == "parallel" else ""}
        events.append(_chunk(_choice(role, index)))
        role_sent = True
    if shape in _WHOLE:
        numbering = _WHOLE[shape]
        entries = [
            _call_entry({"count": i, "zero": 0, "none": None}[numbering], cid, name, args)
            for i, (cid, name, args) in enumerate(calls)
        ]
        if shape == "together":
            send(*entries)
        else:
            for entry in entries:
                send(entry)
    elif shape == "parallel":
        for i, (cid, name, _) in enumerate(calls):
            send(_call_entry(i, cid, name, ""))
        queues = [_fragments(args, fragment) for _, _, args in calls]
        longest = max((len(q) for q in queues), default=0)
        for step in range(longest):
            for i, queue in enumerate(queues):
                if step < len(queue):
                    send(_call_entry(i, None, None, queue[step]))
    else:  # openai, offset, no_index, split_utf8: one call after the other, in fragments
        first = 1 if shape == "offset" else 0
        for i, (cid, name, args) in enumerate(calls):
            position = None if shape == "no_index" else first + i
            send(_call_entry(position, cid, name, ""))
            for piece in _fragments(args, fragment, split):
                has_multibyte = any(ord(char) > 0x7F for char in piece)
                send(_call_entry(position, None, None, piece), split_chunk=split and has_multibyte)
    if finish_reason is not None:
        events.append(_finish(index, finish_reason))
    return events


def choices_chunks(
    texts_per_choice: Sequence[Union[str, Sequence[str]]], *, finish_reason: Optional[str] = "stop"
) -> List[Event]:
    """``n`` > 1 choices as OpenAI streams them: one choice per chunk, interleaved by index.

    Each entry is a choice's text (a str, cut into words as ``Reply.text``
    is) or its list of pieces. First a role chunk per choice, then the pieces
    round-robin (choice 0, 1, ..., 0, 1, ...), each choice's finish chunk right
    after its last piece (no finish chunks when ``finish_reason`` is None).
    """
    pieces = [Reply(text=t).pieces() if isinstance(t, str) else list(t) for t in texts_per_choice]
    events: List[Event] = [
        _chunk(_choice({"role": "assistant", "content": ""}, i)) for i in range(len(pieces))
    ]
    longest = max((len(p) for p in pieces), default=0)
    for step in range(longest):
        for i, choice_pieces in enumerate(pieces):
            if step < len(choice_pieces):
                events.append(_chunk(_choice({"content": choice_pieces[step]}, i)))
            if step == len(choice_pieces) - 1 and finish_reason is not None:
                events.append(_finish(i, finish_reason))
    if finish_reason is not None:
        events.extend(_finish(i, finish_reason) for i, p in enumerate(pieces) if not p)
    return events


def usage_chunk(
    prompt: int,
    completion: int,
    *,
    cached: Optional[int] = None,
    reasoning: Optional[int] = None,
    cost: Optional[float] = None,
) -> Dict[str, Any]:
    """The closing chunk of ``stream_options: {"include_usage": true}``: no choices, a ``usage``.

    ``usage`` has ``prompt_tokens``, ``completion_tokens``, ``total_tokens``;
    ``cached`` adds ``prompt_tokens_details.cached_tokens`` and ``reasoning``
    ``completion_tokens_details.reasoning_tokens`` (OpenAI; DeepSeek and
    OpenRouter send the same); ``cost`` adds OpenRouter's ``usage.cost`` (in
    credits, i.e. US dollars). Returns one chunk: put it in a list.
    """
    usage: Dict[str, Any] = {
        "prompt_tokens": prompt,
        "completion_tokens": completion,
        "total_tokens": prompt + completion,
    }
    if cached is not None:
        usage["prompt_tokens_details"] = {"cached_tokens": cached}
    if reasoning is not None:
        usage["completion_tokens_details"] = {"reasoning_tokens": reasoning}
    if cost is not None:
        usage["cost"] = cost
    return {"choices": [], "usage": usage}


def with_system_fingerprint(events: Iterable[Event], fingerprint: str = "fp_emulator") -> List[Event]:
    """The events with ``system_fingerprint`` added to every chunk, as OpenAI sends it
    (llama.cpp puts its build there, e.g. ``"b6000-1a2b3c4d"``). Bytes pass unchanged."""
    out: List[Event] = []
    for event in events:
        if isinstance(event, dict):
            copy = type(event)(event)
            copy["system_fingerprint"] = fingerprint
            out.append(copy)
        else:
            out.append(event)
    return out


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
    events: List[Event] = [_finish(index, finish_reason)]
    if include_usage:
        events.append(usage_chunk(prompt_n, predicted_n))
    last = events[-1]
    assert isinstance(last, dict)
    last["timings"] = llamacpp_timings(
        prompt_n, predicted_n, prompt_ms=prompt_ms, predicted_ms=predicted_ms, cache_n=cache_n
    )
    return events


#: The forms :func:`error_event` can take.
ERROR_FORMS = ("event", "flat", "field", "data")


def _sse_json(prefix: bytes, data: Any, compact: bool = False) -> bytes:
    separators = (",", ":") if compact else (", ", ": ")
    return prefix + json.dumps(data, ensure_ascii=False, separators=separators).encode("utf-8") + b"\n\n"


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
            _sse_json(
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
        return [_sse_json(b"data: ", body)]
    if form == "field":
        body = {"code": 500 if code is None else code, "message": message, "type": type or "server_error"}
        return [_sse_json(b"error: ", body, compact=True), b"data: [DONE]\n\n"]
    if form == "event":
        return [_sse_json(b"event: error\ndata: ", {"message": message}, compact=True)]
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


# =====================================================================================
# Validation: what OpenAI refuses with a 400
# =====================================================================================

ROLES = ("system", "assistant", "user", "tool", "developer")
_PART_TYPES = {
    "user": ("text", "image_url", "input_audio", "file"),
    "system": ("text",),
    "developer": ("text",),
    "tool": ("text",),
    "assistant": ("text", "refusal"),
}
_NAME = re.compile(r"^[a-zA-Z0-9_-]+$")
#: Optional fields of a tool's function: (key, Python type, OpenAI's name for it).
_FUNCTION_FIELDS: Tuple[Tuple[str, type, str], ...] = (
    ("parameters", dict, "an object"),
    ("description", str, "a string"),
    ("strict", bool, "a boolean"),
)


class _Invalid(Exception):
    def __init__(self, message: str, param: Optional[str], code: Optional[str] = None) -> None:
        super().__init__(message)
        self.message, self.param, self.code = message, param, code


def _type_name(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, int):
        return "an integer"
    if isinstance(value, float):
        return "a decimal"
    if isinstance(value, str):
        return "a string"
    if isinstance(value, list):
        return "an array"
    return "an object"


def _missing(path: str) -> _Invalid:
    return _Invalid(f"Missing required parameter: '{path}'.", path, "missing_required_parameter")


def _bad_type(path: str, expected: str, value: Any) -> _Invalid:
    return _Invalid(
        f"Invalid type for '{path}': expected {expected}, but got {_type_name(value)} instead.",
        path,
        "invalid_type",
    )


def _bad_value(path: str, value: Any, supported: Sequence[str]) -> _Invalid:
    quoted = [f"'{s}'" for s in supported]
    listed = (
        quoted[0]
        if len(quoted) == 1
        else ", ".join(quoted[:-1]) + (", and " if len(quoted) > 2 else " and ") + quoted[-1]
    )
    return _Invalid(f"Invalid value: '{value}'. Supported values are: {listed}.", path, "invalid_value")


def _empty_array(path: str) -> _Invalid:
    return _Invalid(
        f"Invalid '{path}': empty array. Expected an array with minimum length 1, but got an empty array instead.",
        path,
        "empty_array",
    )


def _need(obj: Mapping[str, Any], key: str, path: str) -> Any:
    if key not in obj:
        raise _missing(f"{path}.{key}")
    return obj[key]


def _need_str(obj: Mapping[str, Any], key: str, path: str) -> str:
    value = _need(obj, key, path)
    if not isinstance(value, str):
        raise _bad_type(f"{path}.{key}", "a string", value)
    return value


def _need_object(obj: Mapping[str, Any], key: str, path: str) -> Mapping[str, Any]:
    value = _need(obj, key, path)
    if not isinstance(value, dict):
        raise _bad_type(f"{path}.{key}", "an object", value)
    return value


def _check_name(name: str, path: str) -> None:
    if not name:
        raise _Invalid(
            f"Invalid '{path}': string too short. Expected a string with minimum length 1, "
            "but got an empty string instead.",
            path,
            "empty_string",
        )
    if len(name) > 64:
        raise _Invalid(
            f"Invalid '{path}': string too long. Expected a string with maximum length 64, "
            f"but got a string with length {len(name)} instead.",
            path,
            "string_above_max_length",
        )
    if not _NAME.match(name):
        raise _Invalid(
            f"Invalid '{path}': string does not match pattern. "
            "Expected a string that matches the pattern '^[a-zA-Z0-9_-]+$'.",
            path,
            "invalid_value",
        )


def _check_part(part: Any, role: str, path: str) -> None:
    if not isinstance(part, dict):
        raise _bad_type(path, "an object", part)
    kind = _need(part, "type", path)
    if kind not in _PART_TYPES[role]:
        raise _bad_value(f"{path}.type", kind, _PART_TYPES[role])
    if kind == "text":
        _need_str(part, "text", path)
    elif kind == "refusal":
        _need_str(part, "refusal", path)
    elif kind == "image_url":
        image = _need_object(part, "image_url", path)
        _need_str(image, "url", f"{path}.image_url")
        detail = image.get("detail")
        if detail is not None and detail not in ("auto", "low", "high"):
            raise _bad_value(f"{path}.image_url.detail", detail, ("auto", "low", "high"))
    elif kind == "input_audio":
        audio = _need_object(part, "input_audio", path)
        _need_str(audio, "data", f"{path}.input_audio")
        audio_format = _need(audio, "format", f"{path}.input_audio")
        if audio_format not in ("wav", "mp3"):
            raise _bad_value(f"{path}.input_audio.format", audio_format, ("wav", "mp3"))
    elif kind == "file":
        file = _need_object(part, "file", path)
        if "file_data" not in file and "file_id" not in file:
            raise _missing(f"{path}.file.file_data")


def _check_content(message: Mapping[str, Any], role: str, path: str, optional: bool) -> None:
    if "content" not in message:
        if optional:
            return
        raise _missing(f"{path}.content")
    content = message["content"]
    if content is None:
        if optional:
            return
        legacy = path.replace("messages[", "messages.[")
        raise _Invalid("Invalid value for 'content': expected a string, got null.", f"{legacy}.content")
    if isinstance(content, str):
        return
    if not isinstance(content, list):
        raise _bad_type(f"{path}.content", "one of a string or array of objects", content)
    if not content and role != "assistant":
        raise _empty_array(f"{path}.content")
    for j, part in enumerate(content):
        _check_part(part, role, f"{path}.content[{j}]")


def _check_tool_calls(calls: Any, path: str) -> List[str]:
    if not isinstance(calls, list):
        raise _bad_type(path, "an array", calls)
    if not calls:
        raise _empty_array(path)
    ids = []
    for k, call in enumerate(calls):
        here = f"{path}[{k}]"
        if not isinstance(call, dict):
            raise _bad_type(here, "an object", call)
        ids.append(_need_str(call, "id", here))
        kind = _need(call, "type", here)
        if kind != "function":
            raise _bad_value(f"{here}.type", kind, ("function",))
        function = _need_object(call, "function", here)
        _need_str(function, "name", f"{here}.function")
        _need_str(function, "arguments", f"{here}.function")
    return ids


def _check_messages(messages: Any) -> None:
    if not isinstance(messages, list):
        raise _bad_type("messages", "an array", messages)
    if not messages:
        raise _empty_array("messages")
    # The run of tool answers after an assistant message with tool_calls:
    # (that message's position, the ids still unanswered), or None outside one.
    run: Optional[Tuple[int, List[str], List[str]]] = None
    for i, message in enumerate(messages):
        path = f"messages[{i}]"
        if not isinstance(message, dict):
            raise _bad_type(path, "an object", message)
        role = _need(message, "role", path)
        if role not in ROLES:
            raise _bad_value(f"{path}.role", role, ROLES)
        if "name" in message and not isinstance(message["name"], str):
            raise _bad_type(f"{path}.name", "a string", message["name"])
        tool_ids: List[str] = []
        if role == "assistant":
            if message.get("tool_calls") is not None:
                tool_ids = _check_tool_calls(message["tool_calls"], f"{path}.tool_calls")
            _check_content(message, role, path, optional=bool(tool_ids) or bool(message.get("function_call")))
        else:
            _check_content(message, role, path, optional=False)
        if role == "tool":
            call_id = _need_str(message, "tool_call_id", path)
            if run is None:
                raise _Invalid(
                    "Invalid parameter: messages with role 'tool' must be a response to a preceeding "
                    "message with 'tool_calls'.",
                    f"messages.[{i}].role",
                )
            if call_id not in run[1]:
                raise _Invalid(
                    f"Invalid parameter: 'tool_call_id' of '{call_id}' not found in 'tool_calls' of previous message.",
                    f"messages.[{i}].tool_call_id",
                )
            if call_id in run[2]:
                run[2].remove(call_id)
            continue
        _check_answered(run)
        run = (i, tool_ids, list(tool_ids)) if tool_ids else None
    _check_answered(run)


def _check_answered(run: Optional[Tuple[int, List[str], List[str]]]) -> None:
    if run is not None and run[2]:
        raise _Invalid(
            "An assistant message with 'tool_calls' must be followed by tool messages responding to each "
            f"'tool_call_id'. The following tool_call_ids did not have response messages: {', '.join(run[2])}",
            f"messages.[{run[0]}].role",
        )


def _check_tools(body: Mapping[str, Any]) -> None:
    tools = body.get("tools")
    if tools is not None:
        if not isinstance(tools, list):
            raise _bad_type("tools", "an array", tools)
        if not tools:
            raise _empty_array("tools")
        for i, tool in enumerate(tools):
            path = f"tools[{i}]"
            if not isinstance(tool, dict):
                raise _bad_type(path, "an object", tool)
            kind = _need(tool, "type", path)
            if kind != "function":
                raise _bad_value(f"{path}.type", kind, ("function",))
            function = _need_object(tool, "function", path)
            _check_name(_need_str(function, "name", f"{path}.function"), f"{path}.function.name")
            for key, kind_of, expected in _FUNCTION_FIELDS:
                value = function.get(key)
                if value is not None and not isinstance(value, kind_of):
                    raise _bad_type(f"{path}.function.{key}", expected, value)
    choice = body.get("tool_choice")
    if choice is None:
        return
    if not tools:
        raise _Invalid(
            "Invalid value for 'tool_choice': 'tool_choice' is only allowed when 'tools' are specified.",
            "tool_choice",
        )
    if isinstance(choice, str):
        if choice not in ("none", "auto", "required"):
            raise _bad_value("tool_choice", choice, ("none", "auto", "required"))
    elif isinstance(choice, dict):
        kind = _need(choice, "type", "tool_choice")
        if kind != "function":
            raise _bad_value("tool_choice.type", kind, ("function",))
        _need_str(_need_object(choice, "function", "tool_choice"), "name", "tool_choice.function")
    else:
        raise _bad_type("tool_choice", "one of a string or object", choice)


def _check_options(body: Mapping[str, Any]) -> None:
    n = body.get("n")
    if n is not None:
        if not isinstance(n, int) or isinstance(n, bool):
            raise _bad_type("n", "an integer", n)
        if n < 1:
            raise _Invalid(
                f"Invalid 'n': integer below minimum value. Expected a value >= 1, but got {n} instead.",
                "n",
                "integer_below_min_value",
            )
        if n > 128:
            raise _Invalid(
                f"Invalid 'n': integer above maximum value. Expected a value <= 128, but got {n} instead.",
                "n",
                "integer_above_max_value",
            )
    response_format = body.get("response_format")
    if response_format is not None:
        if not isinstance(response_format, dict):
            raise _bad_type("response_format", "an object", response_format)
        kind = _need(response_format, "type", "response_format")
        if kind not in ("text", "json_object", "json_schema"):
            raise _bad_value("response_format.type", kind, ("json_object", "json_schema", "text"))
        if kind == "json_schema":
            schema = _need_object(response_format, "json_schema", "response_format")
            name = _need_str(schema, "name", "response_format.json_schema")
            _check_name(name, "response_format.json_schema.name")
            if schema.get("schema") is not None and not isinstance(schema["schema"], dict):
                raise _bad_type("response_format.json_schema.schema", "an object", schema["schema"])


def _validate(body: Mapping[str, Any]) -> None:
    """Raise :class:`_Invalid` for a chat completions body OpenAI answers with a 400."""
    _check_messages(body["messages"])
    _check_tools(body)
    _check_options(body)


# =====================================================================================
# The emulator
# =====================================================================================


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
            _validate(body)
        except _Invalid as invalid:
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
                yield from _serialize(item, envelope)
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
            yield from _serialize(chunk, envelope)
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


def _serialize(item: Event, envelope: Mapping[str, Any]) -> Iterator[bytes]:
    """One scripted event as the bytes to write (two writes for a :class:`SplitChunk`)."""
    if isinstance(item, bytes):
        yield item
        return
    data = _sse_json(b"data: ", {**{k: v for k, v in envelope.items() if k not in item}, **item})
    if isinstance(item, SplitChunk):
        lead = next((i for i, byte in enumerate(data) if byte >= 0xC0), None)
        if lead is not None:
            yield data[: lead + 1]
            yield data[lead + 1 :]
            return
    yield data


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
