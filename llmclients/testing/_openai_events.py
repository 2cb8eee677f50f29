"""Scripted events for :class:`~llmclients.testing.openai.OpenAIEmulator`.

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
stream without it, e.g. after
:func:`~llmclients.testing._openai_servers.error_event` ``("field")``, which
sends its own). Nothing else is added: no role chunk, no usage chunk. Each
item is one write (and, with chunked framing, one HTTP chunk), so ``delay``,
``stall_after``, ``drop_after``, ``gzip`` and the framings act on them as on
the text events. A ``stream: false`` request with scripted events gets the
``chat.completion`` the chunks add up to (content, reasoning, tool calls,
finish reasons, usage).

The builders below return such lists, and so do those of what particular
servers send (llama.cpp's final chunks, each server's in-stream errors), in
:mod:`llmclients.testing._openai_servers`; join them with ``+``::

    emulator.enqueue(Reply(events=[BOM] + text_chunks(["Hel", "lo"], finish_reason=None)
                           + llamacpp_final_chunks(5, 2)))
"""

from __future__ import annotations

import json
from typing import Any, Dict, Iterable, Iterator, List, Mapping, Optional, Sequence, Tuple, Union

from ._replies import DeltaEvent
from ._server import Reply

__all__ = [
    "BOM",
    "OPENROUTER_PROCESSING",
    "TOOL_CALL_SHAPES",
    "Event",
    "SplitChunk",
    "choices_chunks",
    "finish_chunk",
    "reasoning_chunks",
    "serialize",
    "sse_json",
    "text_chunks",
    "tool_call_chunks",
    "usage_chunk",
    "with_system_fingerprint",
]

#: One scripted event: a chunk (dict) or verbatim bytes.
Event = Union[Dict[str, Any], bytes]
#: A tool call to script: (id, function name, arguments as a JSON string).
ToolCall = Tuple[str, str, str]


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


def finish_chunk(index: int, reason: str) -> Dict[str, Any]:
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
    ``llamacpp_final_chunks``); ``role=False`` leaves out the role chunk.
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
        events.append(finish_chunk(index, finish_reason))
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
        events.append(finish_chunk(index, finish_reason))
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
        events.append(finish_chunk(index, finish_reason))
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
                events.append(finish_chunk(i, finish_reason))
    if finish_reason is not None:
        events.extend(finish_chunk(i, finish_reason) for i, p in enumerate(pieces) if not p)
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


def sse_json(prefix: bytes, data: Any, compact: bool = False) -> bytes:
    """``prefix`` and ``data`` as JSON (UTF-8, not escaped), ending the event."""
    separators = (",", ":") if compact else (", ", ": ")
    return prefix + json.dumps(data, ensure_ascii=False, separators=separators).encode("utf-8") + b"\n\n"


def serialize(item: Event, envelope: Mapping[str, Any]) -> Iterator[bytes]:
    """One scripted event as the bytes to write (two writes for a :class:`SplitChunk`)."""
    if isinstance(item, bytes):
        yield item
        return
    data = sse_json(b"data: ", {**{k: v for k, v in envelope.items() if k not in item}, **item})
    if _has_text(item):
        data = DeltaEvent(data)
    if isinstance(item, SplitChunk):
        lead = next((i for i, byte in enumerate(data) if byte >= 0xC0), None)
        if lead is not None:
            yield data[: lead + 1]
            yield data[lead + 1 :]
            return
    yield data


def _has_text(chunk: Mapping[str, Any]) -> bool:
    """Whether a chunk carries a piece of an answer's text (a text delta)."""
    choices = chunk.get("choices")
    return isinstance(choices, list) and any(
        isinstance(choice, dict) and isinstance(choice.get("delta"), dict) and choice["delta"].get("content")
        for choice in choices
    )
