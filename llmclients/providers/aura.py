"""Aura: OpenChat's public chat at https://openchat.team (the openchat-ui server).

Protocol (the server's source is public: imoneoi/openchat-ui, a Chatbot UI fork):

* ``POST {base_url}/api/chat`` with a JSON body::

      {"model": {"id", "name", "maxLength", "tokenLimit"},
       "messages": [{"role": "user" | "assistant", "content"}, ...],
       "key": "", "prompt": <system prompt>, "temperature": <number>}

  ``model.id`` must be one the server has a tokenizer for (``openchat_3.6``,
  ``openchat_v3.2_mistral``), or the route answers HTTP 500 ``Error``. System
  messages travel in ``prompt``, never in ``messages``; an empty ``prompt``
  makes the server use its own default. ``key: ""`` means the server's key.
* ``model.tokenLimit`` is trusted from the client: the server keeps messages
  from the newest back while they fit in it (with 768 tokens reserved) and
  silently drops the older ones. The reply itself is capped at 1000 tokens
  server-side, whatever the client asks.
* The answer is HTTP 200 with a body of raw UTF-8 text — the reply itself, no
  events, no JSON — that ends when the reply ends. No finish reason, usage or
  id is ever sent, so a clean end is reported as ``"stop"`` (a 1000-token
  cut-off looks the same). A chunked body that breaks off raises
  :class:`~llmclients.errors.StreamInterruptedError` with the text so far.
* The server keeps nothing: every turn resends the whole history.
"""

from __future__ import annotations

from typing import Any, ClassVar, Dict, List, Mapping, Optional

from ..errors import InvalidMessagesError, InvalidRequestError
from ..provider import Provider
from ..stream import StreamState
from ..transport import Request
from ..types import Message, content_text

#: The ``model`` object for each id the server knows, as its own UI sends it
#: (``tokenLimit`` is filled in per request).
MODELS: Mapping[str, Mapping[str, Any]] = {
    "openchat_3.6": {"id": "openchat_3.6", "name": "OpenChat 3.6 (latest)", "maxLength": 24576},
    "openchat_v3.2_mistral": {
        "id": "openchat_v3.2_mistral",
        "name": "OpenChat 3.5 (latest)",
        "maxLength": 24576,
    },
}

DEFAULT_TEMPERATURE = 0.5
DEFAULT_TOKEN_LIMIT = 8192


class Aura(Provider):
    """OpenChat 3.6 and OpenChat 3.5 ("Aura") as openchat.team served them.

    Status: believed dead — gpt4free marked it not working on 2024-09-24 and
    removed it on 2025-12-11; from March 2024 it already needed a real browser
    to get past openchat.team's Cloudflare check. Tested against
    :class:`~llmclients.testing.AuraEmulator`.

    Options:

    ``temperature``
        sampling temperature (default 0.5);
    ``max_tokens``
        sent as ``model.tokenLimit`` (default 8192): the *context* budget the
        server trims the history to, not a cap on the reply's length (the
        server caps replies at 1000 tokens itself).
    """

    name = "aura"
    label = "Aura (OpenChat)"
    default_base_url = "https://openchat.team"
    status = (
        "not working: gpt4free disabled it 2024-09-24 and removed it 2025-12-11; "
        "openchat.team answered scripts with a Cloudflare check from 2024-03"
    )
    models = tuple(MODELS)
    default_model = "openchat_3.6"
    model_aliases: ClassVar[Mapping[str, str]] = {
        "openchat-3.6": "openchat_3.6",
        "openchat-3.5": "openchat_v3.2_mistral",
    }
    framing = "text"
    stream_types = frozenset({"text/plain"})  # `new Response(stream)` sets none; a host may add this
    options = frozenset({"temperature", "max_tokens"})

    def build_request(
        self, messages: List[Message], model: str, options: Dict[str, Any], thread: Dict[str, Any]
    ) -> Request:
        # openchat-ui knows user and assistant turns of plain text; system (and
        # developer) instructions go to its `prompt`.
        instructions = [m for m in messages if m["role"] in ("system", "developer")]
        turns = [
            {"role": m["role"], "content": content_text(m["content"])}
            for m in messages
            if m["role"] not in ("system", "developer")
        ]
        if not turns:
            raise InvalidMessagesError("Aura needs at least one user or assistant message")
        body = {
            "model": {**MODELS[model], "tokenLimit": _token_limit(options)},
            "messages": turns,
            "key": "",
            "prompt": "\n".join(content_text(m["content"]) for m in instructions),
            "temperature": _temperature(options),
        }
        return Request("POST", f"{self.base_url}/api/chat", json=body)

    def parse_event(self, data: str, state: StreamState) -> Optional[str]:
        return data  # the body is the reply's text itself

    def finish(self, state: StreamState) -> None:
        # The body ended cleanly (a broken chunked body raised before this).
        state.finish_reason = "stop"


def _temperature(options: Mapping[str, Any]) -> float:
    value = options.get("temperature", DEFAULT_TEMPERATURE)
    if isinstance(value, bool) or not isinstance(value, (int, float)) or value < 0:
        raise InvalidRequestError(f"temperature must be a number of 0 or more, not {value!r}")
    return float(value)


def _token_limit(options: Mapping[str, Any]) -> int:
    value = options.get("max_tokens", DEFAULT_TOKEN_LIMIT)
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise InvalidRequestError(f"max_tokens must be a positive int, not {value!r}")
    return value
