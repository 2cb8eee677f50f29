"""Aura: OpenChat's public chat at https://openchat.team (the openchat-ui server).

Protocol (the server's source is public: imoneoi/openchat-ui, a Chatbot UI
fork; facts below are from its last commit, 0a98709, unless stated):

* ``POST {base_url}/api/chat`` with a JSON body::

      {"model": {"id", "name", "maxLength", "tokenLimit"},
       "messages": [{"role": "user" | "assistant", "content"}, ...],
       "key": "", "prompt": <system prompt>, "temperature": <number>}

  ``model.id`` must be one the server has a tokenizer for (``openchat_3.6``,
  ``openchat_v3.2_mistral``; ``types/openai.ts``), or the route answers HTTP
  500 ``Error``. System messages travel in ``prompt``, never in
  ``messages``; an empty ``prompt`` makes the server use its own default.
  ``key: ""`` means the server's key.
* ``openchat_3.6`` fails on that code as written: ``pages/api/chat.ts`` calls
  ``tokenizer.encode(text, false)``, and llama3-tokenizer-js 1.1.3 (the
  version ``package-lock.json`` pins) wants an options object there, so every
  request for it gets the 500 before any model is asked. Whether
  openchat.team ran a patched build cannot be known. ``openchat_v3.2_mistral``
  works on the code as written: it is the default here.
* ``model.tokenLimit`` is trusted from the client. It is not a reply length:
  the route keeps messages from the newest back while
  ``tokens(prompt) + tokens(kept) + 768 <= tokenLimit`` and silently drops the
  rest — all of them if the newest does not fit, and the model then answers
  an empty conversation. The reply itself is capped at 1000 tokens
  server-side (``utils/server/index.ts``), whatever the client asks.
* The answer is HTTP 200 with a body of raw UTF-8 text — the reply itself, no
  events, no JSON — that ends when the reply ends. No finish reason, usage or
  id is ever sent, so a clean end is reported as ``"stop"``. What the client
  cannot tell from it: a 1000-token cut-off; an upstream event the route
  could not parse (it ends the body cleanly, so the text so far looks
  complete); text the upstream sent in its finish chunk (the route drops it).
  An upstream that breaks off mid-reply leaves the route's body open with no
  more bytes: the idle timeout (15 s by default here, see
  :data:`DEFAULT_TIMEOUT`) turns that into :class:`~llmclients.errors.IdleTimeout`
  with the text so far. A body that breaks off (a proxy in front of the route
  giving up) raises :class:`~llmclients.errors.StreamInterruptedError`.
* The server keeps nothing: every turn resends the whole history.
"""

from __future__ import annotations

import math
import re
from typing import Any, ClassVar, Dict, List, Mapping, Optional

from .. import errors
from .kit import (
    InvalidMessagesError,
    InvalidRequestError,
    Message,
    OnComplete,
    Provider,
    Request,
    Stream,
    StreamState,
    Timeout,
    content_text,
)

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
#: The id that openchat-ui's code as written serves (see the module's doc).
WORKING_MODEL = "openchat_v3.2_mistral"

DEFAULT_TEMPERATURE = 0.5
DEFAULT_TOKEN_LIMIT = 8192
#: Tokens the route keeps out of ``tokenLimit`` for the reply (``pages/api/chat.ts``).
RESERVED_TOKENS = 768
#: What the server's default system prompt costs when ``prompt`` is empty: the
#: docker-compose deployment's prompt is 37 tokens to mistral-tokenizer-js (35 to
#: llama3's), and the live route counted about 2 more.
DEFAULT_PROMPT_TOKENS = 39
#: How far :func:`estimate_tokens` may fall short of the route's tokenizers, as a
#: share of its count: the largest shortfall on the 42 texts of
#: ``tests/data/aura_tokens.json`` is 35% (a Russian sentence; "What is 2+2?" 17%).
ESTIMATE_MARGIN = 0.35

#: The route never ends its body when its upstream breaks off: 15 s without text
#: is an :class:`~llmclients.errors.IdleTimeout` rather than a 120 s read timeout.
#: The idle clock starts with the response, whose headers the route sends only
#: once its upstream has answered, so a slow start does not count against it.
DEFAULT_TIMEOUT = Timeout(connect=10.0, read=120.0, idle=15.0)

#: Runs of ASCII letters, runs of other letters, single digits, runs of one other character.
_PIECES = re.compile(r"[A-Za-z]+|[^\W\d_]+|\d|(\S)\1*")


def estimate_tokens(text: str) -> int:
    """About how many tokens openchat-ui's tokenizers make of ``text``.

    A run of ASCII letters costs one token per 6 letters, other scripts one
    per 3 letters (one per character for Chinese, Japanese, Korean), a digit
    one (mistral's tokenizer splits numbers into digits), a run of one
    punctuation character one per 8. On the 42 texts of
    ``tests/data/aura_tokens.json`` (English prose and docs, code, Russian,
    French, Japanese) it is within 9% of mistral-tokenizer-js 1.0.0
    (``openchat_v3.2_mistral``) on average, text by text, and 1.00x in total;
    it counts 16% more than llama3-tokenizer-js 1.1.3 (``openchat_3.6``),
    whose vocabulary is larger.
    """
    count = 0
    for match in _PIECES.finditer(text):
        piece = match.group(0)
        first = piece[0]
        if first.isdigit():
            count += 1
        elif not first.isalpha():
            count += math.ceil(len(piece) / 8)
        elif first.isascii():
            count += math.ceil(len(piece) / 6)
        else:
            wide = sum(1 for char in piece if _is_cjk(char))
            count += wide + math.ceil((len(piece) - wide) / 3)
    return count


def _is_cjk(char: str) -> bool:
    # CJK radicals to unified ideographs (kana included), and Hangul syllables.
    return "\u2e80" <= char <= "\u9fff" or "\uac00" <= char <= "\ud7a3"


class Aura(Provider):
    """OpenChat 3.5 and OpenChat 3.6 ("Aura") as openchat.team served them.

    Status: believed dead — gpt4free marked it not working on 2024-09-24 and
    removed it on 2025-12-11; from March 2024 it already needed a real browser
    to get past openchat.team's Cloudflare check. Tested against
    :class:`~llmclients.testing.AuraEmulator`.

    The default timeout has an ``idle`` limit of 15 s (:data:`DEFAULT_TIMEOUT`):
    the route holds its body open forever when its upstream breaks off.

    Options:

    ``temperature``
        sampling temperature (default 0.5);
    ``max_tokens``
        **not a reply length**: sent as ``model.tokenLimit`` (default 8192),
        the budget the server trims the history to, 768 tokens of it kept for
        the reply. A budget too small for the last message (with the system
        prompt) is refused before sending, since the server would drop every
        message. The server caps replies at 1000 tokens itself.
    """

    name = "aura"
    label = "Aura (OpenChat)"
    default_base_url = "https://openchat.team"
    status = (
        "not working: gpt4free disabled it 2024-09-24 and removed it 2025-12-11; "
        "openchat.team answered scripts with a Cloudflare check from 2024-03"
    )
    models = (WORKING_MODEL, "openchat_3.6")
    default_model = WORKING_MODEL
    model_aliases: ClassVar[Mapping[str, str]] = {
        "openchat-3.6": "openchat_3.6",
        "openchat-3.5": "openchat_v3.2_mistral",
    }
    event_format = "text"
    stream_types = frozenset({"text/plain"})  # `new Response(stream)` sets none; a host may add this
    options = frozenset({"temperature", "max_tokens"})
    default_timeout = DEFAULT_TIMEOUT

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
        prompt = "\n".join(content_text(m["content"]) for m in instructions)
        token_limit = _token_limit(options)
        _check_budget(token_limit, prompt, turns[-1]["content"])
        body = {
            "model": {**MODELS[model], "tokenLimit": token_limit},
            "messages": turns,
            "key": "",
            "prompt": prompt,
            "temperature": _temperature(options),
        }
        return Request("POST", f"{self.base_url}/api/chat", json=body)

    def open_stream(
        self,
        messages: List[Message],
        model: Optional[str],
        options: Dict[str, Any],
        thread: Optional[Dict[str, Any]] = None,
        on_complete: Optional[OnComplete] = None,
    ) -> Stream:
        try:
            return super().open_stream(messages, model, options, thread, on_complete)
        except errors.ServerError as exc:
            # The route's bare 500 "Error" says nothing; for openchat_3.6 its cause is known.
            if exc.status_code != 500 or self.resolve_model(model) != "openchat_3.6":
                raise
            raise exc.reworded(
                f"{exc.message} — openchat-ui's code as published answers every openchat_3.6 request "
                f"this way (its locked llama3 tokenizer is called wrongly); try model={WORKING_MODEL!r}",
            ) from exc

    def parse_event(self, data: str, state: StreamState) -> Optional[str]:
        return data  # the body is the reply's text itself

    def finish(self, state: StreamState) -> None:
        # The body ended cleanly (a broken chunked body raised before this). The
        # route also ends cleanly after an upstream event it cannot parse: that
        # looks the same and is reported the same.
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


def minimum_token_limit(prompt: str, last: str) -> int:
    """The smallest ``max_tokens`` (``tokenLimit``) with which the route keeps the
    last message: what it reserves, the system prompt (``""``: the server's
    default) and the message, each estimated text with :data:`ESTIMATE_MARGIN`
    on top, so that a tokenizer that counts more than the estimate still keeps it."""
    estimated = (estimate_tokens(prompt) if prompt else 0) + estimate_tokens(last)
    known = 0 if prompt else DEFAULT_PROMPT_TOKENS
    return RESERVED_TOKENS + known + estimated + math.ceil(estimated * ESTIMATE_MARGIN)


def _check_budget(token_limit: int, prompt: str, last: str) -> None:
    """Refuse a ``tokenLimit`` with which the route would forward no message at all."""
    needed = minimum_token_limit(prompt, last)
    if token_limit >= needed:
        return
    raise InvalidRequestError(
        f"Aura's max_tokens is not the reply's length: it is sent as tokenLimit, the budget "
        f"openchat.team trims the conversation to, and it keeps {RESERVED_TOKENS} tokens of it "
        f"for the reply (replies are capped at 1000 tokens server-side). max_tokens={token_limit} "
        f"cannot hold the last message with the system prompt (about {needed} tokens in all, with "
        f"a margin for the server's tokenizer), so the server would send the model no message at "
        f"all. Use at least {needed}, or leave max_tokens out (default {DEFAULT_TOKEN_LIMIT})"
    )
