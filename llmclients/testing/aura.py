"""An emulator of openchat.team's ``/api/chat`` route (imoneoi/openchat-ui).

It does what the route does: read the JSON body ``{model, messages, key,
prompt, temperature}``, refuse a ``model.id`` it has no tokenizer for with
HTTP 500 ``Error`` (the route's catch-all answer), trim the history to
``model.tokenLimit`` from the oldest message on, and answer with the reply as
raw UTF-8 text (no Content-Type, no events), ending the body when the reply
ends. Paths other than ``/api/chat`` get Next.js's HTML 404 page.

What the route would have forwarded upstream is recorded in :attr:`AuraEmulator.upstream`
(the system prompt after defaulting, the messages kept, how many were dropped).

The emulator is stricter than the route in two ways, to catch client mistakes:
a ``messages`` list with a ``system`` role, and a body without one of the five
fields, are refused with the same 500 ``Error`` (the route would default
``key``, ``prompt`` and ``temperature``, and pass a system message upstream).
Tokens are counted as whitespace-separated words: a stand-in for the real
tokenizers that keeps truncation easy to reason about in tests.
"""

from __future__ import annotations

from typing import Any, Dict, Iterable, List

from .server import Emulator, RecordedRequest, Rejection, Reply

#: Model ids the route has a tokenizer for (openchat-ui 0a98709, its last version).
MODEL_IDS = ("openchat_3.6", "openchat_v3.2_mistral")
FIELDS = ("model", "messages", "key", "prompt", "temperature")
#: Tokens the route keeps free for the reply when it trims the history.
RESERVED_TOKENS = 768
#: The route's fallback for an empty ``prompt`` (``utils/app/const.ts``).
DEFAULT_SYSTEM_PROMPT = (
    "You are ChatGPT, a large language model trained by OpenAI. "
    "Follow the user's instructions carefully. Respond using markdown."
)
DEFAULT_TEMPERATURE = 1.0

NOT_FOUND_PAGE = (
    '<!DOCTYPE html><html><head><meta charSet="utf-8"/>'
    "<title>404: This page could not be found</title></head>"
    "<body><h1>404</h1><h2>This page could not be found.</h2></body></html>"
)


def _route_error() -> Rejection:
    # The route catches every error and answers `new Response('Error', {status: 500})`.
    return Rejection(500, "Error", {"Content-Type": "text/plain;charset=UTF-8"})


class AuraEmulator(Emulator):
    """Stands in for ``https://openchat.team``; point a client at :attr:`base_url`."""

    provider = "aura"
    base_path = ""

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        #: One entry per accepted request: what the route sent upstream.
        self.upstream: List[Dict[str, Any]] = []

    @staticmethod
    def count_tokens(text: str) -> int:
        return len(text.split())

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
        prompt = body["prompt"] or DEFAULT_SYSTEM_PROMPT
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
            "temperature": DEFAULT_TEMPERATURE if temperature is None else temperature,
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

    def events(self, reply: Reply, request: RecordedRequest) -> Iterable[bytes]:
        # Raw text, one write per upstream delta; the finish reason is never sent.
        for piece in reply.pieces():
            if piece:
                yield piece.encode("utf-8")
