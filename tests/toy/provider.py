"""The toy service: ``POST {base_url}/chat`` with ``{"model", "messages", ...}``;
the answer is NDJSON, one ``{"text": "..."}`` line a delta, ended by
``{"done": true}``; an ``{"error": "..."}`` line reports a failure."""

from __future__ import annotations

from typing import Any, Dict, List, Optional

from llmclients.providers.kit import (
    Message,
    Provider,
    ProviderError,
    Request,
    StreamInterruptedError,
    StreamState,
    load_json,
)


class ToyProvider(Provider):
    name = "toy"
    label = "Toy"
    status = "a test's own service: only its emulator answers"
    models = ("toy-1",)
    default_model = "toy-1"
    event_format = "ndjson"
    stream_types = frozenset({"application/x-ndjson"})
    options = frozenset({"temperature"})

    def build_request(
        self, messages: List[Message], model: str, options: Dict[str, Any], thread: Dict[str, Any]
    ) -> Request:
        return Request("POST", f"{self.base_url}/chat", json={"model": model, "messages": messages, **options})

    def parse_event(self, data: str, state: StreamState) -> Optional[str]:
        line = load_json(data)
        if not isinstance(line, dict):
            raise ValueError("a line is not a JSON object")
        if "error" in line:
            raise ProviderError(f"Toy reported an error: {line['error']}")
        if line.get("done"):
            state.done, state.finish_reason = True, "stop"
            return None
        return str(line.get("text", ""))

    def finish(self, state: StreamState) -> None:
        if not state.done:
            raise StreamInterruptedError('the stream ended before its {"done": true} line')
