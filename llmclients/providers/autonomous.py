"""AutonomousAI: the anonymous chat of autonomous.ai (``www.autonomous.ai/anon/``).

Protocol (known only from gpt4free's client and two third-party clients; no
server source is public, so the response details are partly inferred):

* ``POST {base_url}/{endpoint}`` where ``base_url`` is
  ``https://chatgpt.autonomous.ai/api/v1/ai`` and the endpoint depends on the
  model: ``chat`` for ``llama`` and ``qwen_coder``, ``chat-hermes`` for
  ``hermes``, ``chat-vision`` for ``vision``, ``summary`` for ``summary``.
* A JSON body of four fields: ``messages`` — the standard, padded base64 of the
  UTF-8 ``json.dumps`` of the whole OpenAI-style message list (system messages
  and history included); ``threadId`` — an opaque string; ``stream`` — a bool;
  ``aiAgent`` — the model id. Browser-like headers (``origin``/``referer``
  www.autonomous.ai, ``country-code``, ``time-zone``); no cookies, no key.
* ``stream: true`` answers with Server-Sent Events, one OpenAI
  ``chat.completion.chunk`` per ``data:`` line (text in
  ``choices[0].delta.content``), ended by ``data: [DONE]``. The finish reason
  comes either in ``choices[0].finish_reason`` or in a top-level
  ``finish_reason`` key: which one the server uses is unknown, so both are read.
* ``stream: false`` answers with one JSON object,
  ``{"choices": [{"message": {"content": ...}}]}``.
* Images, for the ``vision`` agent only (*inferred*: no client is known to
  have sent one, and no server source is public): the message list inside
  ``messages`` is the only place they can go, so OpenAI content parts
  (``{"type": "image_url", "image_url": {"url": ...}}`` beside ``{"type":
  "text", ...}``) are carried there as they are. Whether the server fetches
  ``http(s)`` URLs or wants ``data:`` URLs is unknown; both are passed on.

The service keeps no conversation: every turn resends the whole history. Its
chunks are read by the OpenAI provider's chunk reader
(:mod:`~llmclients.providers.openai`), less the top-level finish reason.
"""

from __future__ import annotations

import base64
import json
import uuid
from typing import Any, ClassVar, Dict, FrozenSet, List, Mapping, Optional

from .kit import (
    InvalidRequestError,
    Message,
    Provider,
    ProviderError,
    Request,
    StreamState,
)
from .openai import check_finished, chunk_of, read_chunk, read_completion

#: The path under ``base_url`` that serves each model (the ``aiAgent``).
ENDPOINTS: Mapping[str, str] = {
    "llama": "chat",
    "qwen_coder": "chat",
    "hermes": "chat-hermes",
    "vision": "chat-vision",
    "summary": "summary",
}

#: What the site's own page and gpt4free send; none of it is a secret.
HEADERS: Mapping[str, str] = {
    "accept": "*/*",
    "accept-language": "en-US,en;q=0.9",
    "country-code": "US",
    "origin": "https://www.autonomous.ai",
    "referer": "https://www.autonomous.ai/",
    "time-zone": "America/New_York",
    "user-agent": (
        "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) "
        "Chrome/131.0.0.0 Safari/537.36"
    ),
}


class AutonomousAI(Provider):
    """AutonomousAI's free chat models (Llama 3.3 70B, Qwen 2.5 Coder 32B, Hermes 3, ...).

    Status: believed dead — gpt4free marked it not working on 2025-02-01 and
    removed it on 2025-05-25. The protocol is known only from third-party
    clients; this provider is tested against
    :class:`~llmclients.testing.AutonomousAIEmulator`.

    Options: ``stream`` (default True). ``stream=False`` asks for one JSON
    answer instead of events; the text then arrives all at once. The service
    has no documented sampling options, so ``temperature``, ``max_tokens`` and
    the like are refused rather than silently ignored.

    A conversation sends one random ``threadId`` for all its turns, as the
    site's own page does (gpt4free sent the model id; the server is not known
    to care).
    """

    name = "autonomous"
    label = "AutonomousAI"
    default_base_url = "https://chatgpt.autonomous.ai/api/v1/ai"
    status = (
        "not working: gpt4free disabled it 2025-02-01 and removed it 2025-05-25; "
        "the protocol is known only from third-party clients"
    )
    models = tuple(ENDPOINTS)
    default_model = "llama"
    model_aliases: ClassVar[Mapping[str, str]] = {
        "llama-3.3-70b": "llama",
        "qwen-2.5-coder-32b": "qwen_coder",
        "hermes-3": "hermes",
        "llama-3.2-90b": "vision",
        "llama-3.2-70b": "summary",
    }
    event_format = "sse"
    options = frozenset({"stream"})

    def capabilities_for(self, model: str) -> FrozenSet[str]:
        """Images for the ``vision`` agent (an inference from its name and endpoint); text otherwise."""
        return frozenset({"images"}) if self.model_aliases.get(model, model) == "vision" else frozenset()

    def build_request(
        self, messages: List[Message], model: str, options: Dict[str, Any], thread: Dict[str, Any]
    ) -> Request:
        stream = options.get("stream", True)
        if not isinstance(stream, bool):
            raise InvalidRequestError(f"stream must be True or False, not {stream!r}")
        # One id per conversation: the thread dict is kept between turns.
        thread_id = thread.setdefault("threadId", str(uuid.uuid4()))
        body = {
            "messages": encode_messages(messages),
            "threadId": thread_id,
            "stream": stream,
            "aiAgent": model,
        }
        return Request(
            "POST",
            f"{self.base_url}/{ENDPOINTS[model]}",
            headers=dict(HEADERS),
            json=body,
            # A non-streamed answer is one JSON document: parse it once, whole.
            event_format=None if stream else "whole",
        )

    def parse_event(self, data: str, state: StreamState) -> Optional[str]:
        chunk = chunk_of(data, state)
        return None if chunk is None else self._read_chunk(chunk, state)

    def parse_completion(self, document: Any, state: StreamState) -> Optional[str]:
        """The ``stream: false`` answer, when it comes although a stream was asked for."""
        if not isinstance(document, dict) or "message" not in (document.get("choices") or [{}])[0]:
            raise ValueError("it has no choices[0].message")
        return self._read_chunk(document, state)

    def _read_chunk(self, chunk: Dict[str, Any], state: StreamState) -> Optional[str]:
        if chunk.get("error"):
            # Not seen from this service, but OpenAI-shaped servers report errors so.
            raise ProviderError(f"AutonomousAI reported an error: {chunk['error']}")
        # The finish reason may sit in the choice (OpenAI) or at the top (as gpt4free reads it);
        # the reader takes the choice's, and keys it does not know go to the reply's extra.
        reason = chunk.pop("finish_reason", None)
        choice = (chunk.get("choices") or [{}])[0]
        if "message" in choice:  # the whole answer of a stream=False request
            text = read_completion(chunk, state)
        else:
            text = read_chunk(chunk, state)
        if reason and not choice.get("finish_reason"):
            state.finish_reason = str(reason)
        return text

    def finish(self, state: StreamState) -> None:
        check_finished(state)


def encode_messages(messages: List[Message]) -> str:
    """The ``messages`` field: padded standard base64 of the list as ASCII JSON.

    Content parts (a list instead of a string) are encoded as they are.
    """
    # json.dumps escapes non-ASCII, exactly as the known working clients did.
    return base64.b64encode(json.dumps(messages).encode("utf-8")).decode("ascii")


def decode_messages(field: str) -> Any:
    """The message list inside a ``messages`` field (the inverse of :func:`encode_messages`)."""
    return json.loads(base64.b64decode(field, validate=True).decode("utf-8"))
