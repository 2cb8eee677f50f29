"""The GenAI semantic conventions' names, and the attributes of a call's span
and metrics built from what its observers see."""

from __future__ import annotations

import os
from typing import Any, Dict, List, Mapping, Optional, Sequence, Tuple
from urllib.parse import urlsplit

from ..observers import CallInfo, EndEvent

__all__ = [
    "DURATION_BUCKETS",
    "ERROR_TYPE",
    "TOKEN_BUCKETS",
    "TOKEN_TYPE",
    "common_attributes",
    "end_attributes",
    "latest_conventions",
    "metric_attributes",
    "request_attributes",
    "span_name",
]

OPERATION = "gen_ai.operation.name"
PROVIDER = "gen_ai.provider.name"
#: The provider's attribute up to the conventions' v1.36.0, emitted beside
#: :data:`PROVIDER` unless ``OTEL_SEMCONV_STABILITY_OPT_IN`` asks for the latest only.
SYSTEM_V1_36 = "gen_ai.system"
REQUEST_MODEL = "gen_ai.request.model"
RESPONSE_MODEL = "gen_ai.response.model"
SERVER_ADDRESS = "server.address"
SERVER_PORT = "server.port"
ERROR_TYPE = "error.type"
TOKEN_TYPE = "gen_ai.token.type"

#: The conventions' advisory bucket boundaries: tokens, and seconds (both duration and time to first chunk).
TOKEN_BUCKETS = (1, 4, 16, 64, 256, 1024, 4096, 16384, 65536, 262144, 1048576, 4194304, 16777216, 67108864)
DURATION_BUCKETS = (0.01, 0.02, 0.04, 0.08, 0.16, 0.32, 0.64, 1.28, 2.56, 5.12, 10.24, 20.48, 40.96, 81.92)

#: Request options and the attribute each becomes (numbers as given).
_REQUEST_OPTIONS = (
    ("max_tokens", "gen_ai.request.max_tokens"),
    ("max_completion_tokens", "gen_ai.request.max_tokens"),
    ("max_output_tokens", "gen_ai.request.max_tokens"),
    ("temperature", "gen_ai.request.temperature"),
    ("top_p", "gen_ai.request.top_p"),
    ("top_k", "gen_ai.request.top_k"),
    ("seed", "gen_ai.request.seed"),
    ("frequency_penalty", "gen_ai.request.frequency_penalty"),
    ("presence_penalty", "gen_ai.request.presence_penalty"),
)

#: The conventions' names of providers, by registry name and by the host a
#: client of the OpenAI-compatible protocol talks to.
_PROVIDER_NAMES = {"openai": "openai", "responses": "openai", "anthropic": "anthropic"}
_HOST_PROVIDERS = {
    "api.openai.com": "openai",
    "api.anthropic.com": "anthropic",
    "api.groq.com": "groq",
    "api.deepseek.com": "deepseek",
    "api.mistral.ai": "mistral_ai",
    "api.x.ai": "x_ai",
    "api.perplexity.ai": "perplexity",
}
_DEFAULT_PORTS = {"http": 80, "https": 443}


def latest_conventions() -> bool:
    """True when ``OTEL_SEMCONV_STABILITY_OPT_IN`` names ``gen_ai_latest_experimental``."""
    values = os.environ.get("OTEL_SEMCONV_STABILITY_OPT_IN", "")
    return "gen_ai_latest_experimental" in (value.strip() for value in values.split(","))


def span_name(call: CallInfo) -> str:
    return f"{call.operation} {call.model}" if call.model else call.operation


def server_of(url: str) -> Tuple[Optional[str], Optional[int]]:
    """``server.address`` and ``server.port`` of a (redacted) URL."""
    try:
        parts = urlsplit(url)
        return parts.hostname, parts.port or _DEFAULT_PORTS.get(parts.scheme)
    except ValueError:
        return None, None


def provider_name(call: CallInfo, host: Optional[str]) -> str:
    return _HOST_PROVIDERS.get(host or "") or _PROVIDER_NAMES.get(call.provider, call.provider)


def common_attributes(call: CallInfo, latest: bool) -> Dict[str, Any]:
    """What the span and every metric share: the operation, provider, model and server."""
    host, port = server_of(call.url)
    attributes: Dict[str, Any] = {OPERATION: call.operation, PROVIDER: provider_name(call, host)}
    if not latest:
        attributes[SYSTEM_V1_36] = attributes[PROVIDER]
    if call.model:
        attributes[REQUEST_MODEL] = call.model
    if host:
        attributes[SERVER_ADDRESS] = host
        if port:
            attributes[SERVER_PORT] = port
    return attributes


def request_attributes(call: CallInfo, common: Mapping[str, Any]) -> Dict[str, Any]:
    """The span's attributes known when the request is sent, beside the ``common`` ones."""
    attributes = dict(common)
    options = call.options
    attributes["gen_ai.request.stream"] = options.get("stream") is not False
    for option, name in _REQUEST_OPTIONS:
        value = options.get(option)
        if isinstance(value, (int, float)) and not isinstance(value, bool) and name not in attributes:
            attributes[name] = value
    stop = options.get("stop")
    if isinstance(stop, str):
        attributes["gen_ai.request.stop_sequences"] = [stop]
    elif isinstance(stop, (list, tuple)) and all(isinstance(item, str) for item in stop):
        attributes["gen_ai.request.stop_sequences"] = list(stop)
    count = options.get("n")
    if isinstance(count, int) and count != 1:
        attributes["gen_ai.request.choice.count"] = count
    if options.get("response_format") is not None or options.get("format") is not None:
        attributes["gen_ai.output.type"] = "json"
    return attributes


def end_attributes(event: EndEvent, first_chunk: Optional[float]) -> Dict[str, Any]:
    """The span's attributes known at the call's end: the response, usage, error."""
    attributes: Dict[str, Any] = {"llmclients.outcome": event.outcome}
    if event.model:
        attributes[RESPONSE_MODEL] = event.model
    if event.response_id:
        attributes["gen_ai.response.id"] = event.response_id
    reasons = finish_reasons(event)
    if reasons:
        attributes["gen_ai.response.finish_reasons"] = reasons
    if first_chunk is not None:
        attributes["gen_ai.response.time_to_first_chunk"] = first_chunk
    usage = event.usage
    if usage is not None:
        for name, count in (
            ("gen_ai.usage.input_tokens", usage.prompt_tokens),
            ("gen_ai.usage.output_tokens", usage.completion_tokens),
            ("gen_ai.usage.cache_read.input_tokens", usage.cached_tokens),
            ("gen_ai.usage.reasoning.output_tokens", usage.reasoning_tokens),
        ):
            if count is not None:
                attributes[name] = count
    if event.error is not None:
        attributes[ERROR_TYPE] = event.error_type
    return attributes


def finish_reasons(event: EndEvent) -> List[str]:
    """Every choice's finish reason (one, unless the call asked for several)."""
    choices: Sequence[Any] = event.reply.choices if event.reply is not None else ()
    if len(choices) > 1:
        return [choice.finish_reason for choice in choices if choice.finish_reason]
    return [event.finish_reason] if event.finish_reason else []


def metric_attributes(common: Mapping[str, Any], event: EndEvent) -> Dict[str, Any]:
    """The conventions' attributes of a call's measurements."""
    attributes = dict(common)
    if event.model:
        attributes[RESPONSE_MODEL] = event.model
    if event.error is not None:
        attributes[ERROR_TYPE] = event.error_type
    return attributes
