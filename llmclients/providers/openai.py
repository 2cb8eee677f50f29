"""OpenAI-compatible chat completions: Ollama, vLLM, llama.cpp, OpenRouter, ...

Protocol:

* ``POST {base_url}/chat/completions`` with a JSON body: ``model``,
  ``messages`` (a list of ``{"role", "content"}``), ``stream: true``,
  ``stream_options: {"include_usage": true}`` and the generation options;
  ``Authorization: Bearer <api_key>`` when there is a key.
* The answer is Server-Sent Events, one ``chat.completion.chunk`` JSON object
  per ``data:`` line: text in ``choices[0].delta.content``, the finish reason in
  ``choices[0].finish_reason``, token counts in a last chunk's ``usage`` (whose
  ``choices`` is empty), the model in ``model``; ``data: [DONE]`` ends it.
* An error inside the stream is an event with an ``error`` object.
"""

from __future__ import annotations

from typing import Any, Dict, List, Optional

from ..decoding import load_json
from ..errors import ProviderError, StreamInterruptedError
from ..provider import Provider
from ..stream import StreamState
from ..transport import Request
from ..types import Message, Usage


class OpenAICompatible(Provider):
    """Any server that speaks OpenAI's chat completions API, at ``base_url``."""

    name = "openai"
    label = "OpenAI-compatible"
    status = "works with any server that speaks the API (Ollama, vLLM, llama.cpp, OpenRouter, ...)"
    framing = "sse"
    options = frozenset(
        {
            "temperature",
            "top_p",
            "max_tokens",
            "stop",
            "seed",
            "presence_penalty",
            "frequency_penalty",
            "extra_body",
        }
    )

    def __init__(self, *, base_url: str, include_usage: bool = True, **kwargs: Any) -> None:
        """``include_usage=False`` leaves out ``stream_options`` for old servers that reject it."""
        super().__init__(base_url=base_url, **kwargs)
        self.include_usage = include_usage

    def build_request(
        self, messages: List[Message], model: str, options: Dict[str, Any], thread: Dict[str, Any]
    ) -> Request:
        body: Dict[str, Any] = {"model": model, "messages": messages, "stream": True}
        if self.include_usage:
            body["stream_options"] = {"include_usage": True}
        extra = options.pop("extra_body", None) or {}
        body.update(options)
        body.update(extra)
        headers = {"Accept": "text/event-stream"}
        if self.api_key:
            headers["Authorization"] = f"Bearer {self.api_key}"
        return Request("POST", f"{self.base_url}/chat/completions", headers=headers, json=body)

    def parse_event(self, data: str, state: StreamState) -> Optional[str]:
        if data == "[DONE]":
            state.done = True
            return None
        chunk = load_json(data)
        if "error" in chunk:
            raise _stream_error(chunk["error"])
        model = chunk.get("model")
        if model:
            state.model = model
        usage = chunk.get("usage")
        if usage:
            state.usage = Usage.from_dict(usage)
        choices = chunk.get("choices")
        if not choices:
            return None
        choice = choices[0]
        finish_reason = choice.get("finish_reason")
        if finish_reason:
            state.finish_reason = finish_reason
        delta = choice.get("delta")
        content = delta.get("content") if delta else None
        return content if isinstance(content, str) else None

    def finish(self, state: StreamState) -> None:
        if not state.done and state.finish_reason is None:
            raise StreamInterruptedError("the stream ended before its finish reason and data: [DONE]")


def _stream_error(error: Any) -> ProviderError:
    if isinstance(error, dict):
        message = str(error.get("message") or error)
        reason = error.get("code") or error.get("type")
        return ProviderError(
            f"the server reported an error: {message}", reason=str(reason) if reason else None
        )
    return ProviderError(f"the server reported an error: {error}")
