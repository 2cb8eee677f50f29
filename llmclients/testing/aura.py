"""An emulator of openchat.team's ``/api/chat`` route (imoneoi/openchat-ui).

It does what the route does at openchat-ui 0a98709 (its last commit;
``pages/api/chat.ts``, ``utils/server/index.ts``): read the JSON body
``{model, messages, key, prompt, temperature}``, refuse a ``model.id`` it has
no tokenizer for with HTTP 500 ``Error`` (the route's catch-all answer), trim
the history to ``model.tokenLimit`` from the oldest message on, ask its
upstream (an OpenAI-style SSE stream, modelled here) and pass on each
``delta.content`` as raw UTF-8 text (no Content-Type, no events). Paths other
than ``/api/chat`` get Next.js's HTML 404 page.

What the route does with its upstream's stream, modelled event by event:

* the chunk with a ``finish_reason`` ends the body cleanly, and its own text is
  lost (``text_in_finish_chunk=True`` puts the reply's last delta there);
* an event that is not JSON also ends the body cleanly, the text so far
  looking complete (a :class:`Reply` with ``finish_reason=UPSTREAM_NOT_JSON``);
* an upstream that breaks off leaves the body open with no more bytes, for
  ever on the real route; here for ``hang`` seconds, after which the
  connection is dropped (``finish_reason=UPSTREAM_CUT``);
* each upstream read is decoded on its own (a non-streaming ``TextDecoder``):
  a character split across two reads becomes U+FFFD, twice or more
  (``upstream_read_size=n`` cuts the upstream bytes into reads of n).

``locked_llama3_tokenizer=True`` answers every ``openchat_3.6`` request with
the 500, as the route does with the llama3-tokenizer-js 1.1.3 that
``package-lock.json`` pins (it is called with a boolean where it wants an
options object); off by default, as openchat.team may have run a patched
build. ``code_defaults=True`` uses the code's fallbacks for an empty
``prompt`` and a null ``temperature`` ("You are ChatGPT…", 1) instead of what
its docker-compose deployment sets (the "curious user" prompt, 0.7).

What the route would have forwarded upstream is recorded in :attr:`AuraEmulator.upstream`
(the system prompt after defaulting, the messages kept, how many were dropped).

The emulator differs from the route in these ways:

* it is stricter, to catch client mistakes: a ``messages`` list with a
  ``system`` role, and a body without one of the five fields, are refused
  with the same 500 ``Error`` (the route would default ``key``, ``prompt``
  and ``temperature``, and pass a system message upstream);
* tokens are counted with :func:`llmclients.providers.aura.estimate_tokens`,
  not with the mistral or llama3 tokenizer: within about 7% of mistral's
  count on average, about 18% above llama3's, so which messages are kept
  near the limit can differ from the real route's choice by a message; pass
  ``tokenizer=`` (text -> token count) to count otherwise;
* after an upstream cut the body stays open ``hang`` seconds (default 30),
  not for ever, and then the connection is dropped.
"""

from __future__ import annotations

import json
import threading
from typing import Any, Callable, Dict, Iterable, Iterator, List, Optional

from ..providers.aura import estimate_tokens
from ._server import DeltaEvent, Dropped, Emulator, Handler, RecordedRequest, Rejection, Reply
from .wire import WireSample

#: Model ids the route has a tokenizer for (openchat-ui 0a98709 ``types/openai.ts``).
MODEL_IDS = ("openchat_3.6", "openchat_v3.2_mistral")
FIELDS = ("model", "messages", "key", "prompt", "temperature")
#: Tokens the route keeps free for the reply when it trims the history.
RESERVED_TOKENS = 768
#: The code's fallbacks for an empty ``prompt`` / null ``temperature`` (``utils/app/const.ts``).
CODE_SYSTEM_PROMPT = (
    "You are ChatGPT, a large language model trained by OpenAI. "
    "Follow the user's instructions carefully. Respond using markdown."
)
CODE_TEMPERATURE = 1.0
#: What openchat-ui's ``docker-compose.yml`` sets instead (NEXT_PUBLIC_DEFAULT_*).
DEPLOYMENT_SYSTEM_PROMPT = (
    "A chat between a curious user and an AI assistant. The AI assistant works step by step "
    "to ensure correct and helpful answers are provided to the user, and responds using Markdown."
)
DEPLOYMENT_TEMPERATURE = 0.7

#: ``Reply.finish_reason`` values for the upstream's failures (see the module's doc).
UPSTREAM_CUT = "upstream cut"
UPSTREAM_NOT_JSON = "upstream not json"

NOT_FOUND_PAGE = (
    '<!DOCTYPE html><html><head><meta charSet="utf-8"/>'
    "<title>404: This page could not be found</title></head>"
    "<body><h1>404</h1><h2>This page could not be found.</h2></body></html>"
)


def _route_error() -> Rejection:
    # The route catches every error and answers `new Response('Error', {status: 500})`.
    return Rejection(500, "Error", {"Content-Type": "text/plain;charset=UTF-8"})


class AuraEmulator(Emulator):
    """Stands in for ``https://openchat.team``; point a client at :attr:`base_url`.

    Options (see the module's doc): ``locked_llama3_tokenizer``,
    ``code_defaults``, ``tokenizer``, ``text_in_finish_chunk``,
    ``upstream_read_size``, ``hang``.
    """

    provider = "aura"
    # The reply's raw text: no framing, so nothing is garbage and there is no keep-alive.
    wire = WireSample(
        text_event=b"%s", cut=60, content_types=(None, "text/plain;charset=UTF-8", "application/octet-stream")
    )
    base_path = ""

    def __init__(
        self,
        *,
        locked_llama3_tokenizer: bool = False,
        code_defaults: bool = False,
        tokenizer: Optional[Callable[[str], int]] = None,
        text_in_finish_chunk: bool = False,
        upstream_read_size: Optional[int] = None,
        hang: float = 30.0,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        self.locked_llama3_tokenizer = locked_llama3_tokenizer
        self.system_prompt = CODE_SYSTEM_PROMPT if code_defaults else DEPLOYMENT_SYSTEM_PROMPT
        self.temperature = CODE_TEMPERATURE if code_defaults else DEPLOYMENT_TEMPERATURE
        self.count_tokens = tokenizer or estimate_tokens
        self.text_in_finish_chunk = text_in_finish_chunk
        self.upstream_read_size = upstream_read_size
        self.hang = hang
        #: One entry per accepted request: what the route sent upstream.
        self.upstream: List[Dict[str, Any]] = []
        self._serving = threading.local()  # the connection a handler thread is answering

    # --- what the route accepts ---------------------------------------------------------

    def check(self, request: RecordedRequest) -> None:
        if request.path.split("?")[0] != "/api/chat":
            raise Rejection(404, NOT_FOUND_PAGE, {"Content-Type": "text/html; charset=utf-8"})
        try:
            body = request.json()
        except ValueError:
            raise _route_error() from None
        if not isinstance(body, dict) or any(name not in body for name in FIELDS):
            raise _route_error()
        model, messages = body["model"], body["messages"]
        if not isinstance(model, dict) or model.get("id") not in MODEL_IDS:
            raise _route_error()  # no tokenizer for that id
        if self.locked_llama3_tokenizer and model["id"] == "openchat_3.6":
            raise _route_error()  # llama3-tokenizer-js 1.1.3 throws on encode(text, false)
        if not isinstance(model.get("tokenLimit"), int) or not isinstance(body["prompt"], str):
            raise _route_error()
        if not isinstance(messages, list) or not all(
            isinstance(m, dict)
            and m.get("role") in ("user", "assistant")
            and isinstance(m.get("content"), str)
            for m in messages
        ):
            raise _route_error()
        with self._lock:
            self.upstream.append(self.forward(body))

    def forward(self, body: Dict[str, Any]) -> Dict[str, Any]:
        """What the route sends upstream for ``body``: the history trimmed to ``tokenLimit``."""
        prompt = body["prompt"] or self.system_prompt
        budget = body["model"]["tokenLimit"] - RESERVED_TOKENS - self.count_tokens(prompt)
        kept: List[Dict[str, Any]] = []
        # Newest first; stop at the first message that does not fit (older ones go too).
        for message in reversed(body["messages"]):
            cost = self.count_tokens(message["content"])
            if cost > budget:
                break
            budget -= cost
            kept.insert(0, message)
        temperature = body["temperature"]
        return {
            "model": body["model"]["id"],
            "prompt": prompt,
            "temperature": self.temperature if temperature is None else temperature,
            "messages": kept,
            "dropped": len(body["messages"]) - len(kept),
            "max_tokens": 1000,  # hard-coded by the route
        }

    # --- what it answers ------------------------------------------------------------------

    def make_default_reply(self, request: RecordedRequest) -> Reply:
        kept = self.forward(request.json())["messages"]
        said = kept[-1]["content"] if kept else "nothing that fits in tokenLimit"
        return Reply(text=f"Hello from the Aura (OpenChat) emulator. You said: {said}", delay=0.03)

    def reply_headers(self, reply: Reply, request: RecordedRequest) -> Dict[str, str]:
        return {}  # `new Response(stream)`: the route sets no Content-Type

    def _send_stream(self, handler: Handler, reply: Reply, request: RecordedRequest) -> None:
        # events() needs the connection to hang on it (and to notice the client leave).
        self._serving.handler = handler
        super()._send_stream(handler, reply, request)

    def events(self, reply: Reply, request: RecordedRequest) -> Iterable[bytes]:
        # What the route writes for each upstream read; the finish reason is never sent.
        parser = _SSEParser()
        for read in self._upstream_reads(reply):
            for data in parser.feed(read.decode("utf-8", "replace")):
                try:
                    chunk = json.loads(data)
                except ValueError:
                    return  # the route ends its body cleanly on an event it cannot parse
                choice = chunk["choices"][0]
                if choice.get("finish_reason") is not None:
                    return  # ... and on the finish chunk, whose own text it drops
                text = choice["delta"].get("content")
                if text:
                    yield DeltaEvent(text.encode("utf-8"))
        # The upstream broke off: the real route never ends its body. Hang (until the
        # client leaves or the emulator stops, which end the exchange at once), then drop.
        handler = self._serving.handler
        self._sleep(handler, self.hang)
        raise Dropped(handler.connection, reset=False)

    def _upstream_reads(self, reply: Reply) -> Iterator[bytes]:
        """The upstream's SSE body as the route reads it: one read per event, or cut
        into ``upstream_read_size`` bytes."""
        events = list(self._upstream_events(reply))
        if self.upstream_read_size is None:
            yield from events
            return
        body, size = b"".join(events), self.upstream_read_size
        for start in range(0, len(body), size):
            yield body[start : start + size]

    def _upstream_events(self, reply: Reply) -> Iterator[bytes]:
        pieces = reply.pieces()
        last = pieces.pop() if self.text_in_finish_chunk and pieces else None
        yield _sse({"choices": [{"index": 0, "delta": {"role": "assistant"}, "finish_reason": None}]})
        for piece in pieces:
            yield _sse({"choices": [{"index": 0, "delta": {"content": piece}, "finish_reason": None}]})
        if reply.finish_reason == UPSTREAM_CUT:
            return
        if reply.finish_reason == UPSTREAM_NOT_JSON:
            yield b"data: Internal Server Error\n\n"
            return
        delta = {} if last is None else {"content": last}
        yield _sse(
            {"choices": [{"index": 0, "delta": delta, "finish_reason": reply.finish_reason or "stop"}]}
        )
        yield b"data: [DONE]\n\n"


def _sse(chunk: Dict[str, Any]) -> bytes:
    return b"data: " + json.dumps(chunk, ensure_ascii=False).encode("utf-8") + b"\n\n"


class _SSEParser:
    """The ``data`` of each complete SSE event in the text fed so far (eventsource-parser's job)."""

    def __init__(self) -> None:
        self._buffer = ""

    def feed(self, text: str) -> List[str]:
        self._buffer += text
        *complete, self._buffer = self._buffer.split("\n\n")
        found = []
        for event in complete:
            data = [line[5:].lstrip(" ") for line in event.split("\n") if line.startswith("data:")]
            if data:
                found.append("\n".join(data))
        return found
