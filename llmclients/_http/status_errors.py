"""Error statuses: the typed error for each (bot checks, context overflow,
a proxy's refusal included), read from the status, the headers and an
excerpt of the body."""

from __future__ import annotations

import email.utils
import http.client
import json
import re
import time
from typing import TYPE_CHECKING, Any, Dict, Mapping, Optional, Tuple, Type
from urllib.parse import urlsplit

import requests

from .. import errors
from .body import ERROR_BODY_LIMIT, Body
from .deadline import Deadline
from .masking import excerpt, mask, mask_error, redact_url

if TYPE_CHECKING:
    from .request import Request

__all__ = [
    "EXCERPT_LENGTH",
    "body_excerpt",
    "error_body",
    "error_facts",
    "error_message",
    "is_bot_check",
    "parse_retry_after",
    "rate_limits_of",
    "refused_by_proxy",
    "request_id_of",
    "retry_after_of",
    "should_retry_of",
    "status_error",
]

EXCERPT_LENGTH = 300


def error_body(response: requests.Response, deadline: Deadline) -> bytes:
    """Up to ``ERROR_BODY_LIMIT`` bytes of an error status's body, read under
    the call's deadline like any body; the response is closed."""
    data = b""
    try:
        for chunk in Body(response, deadline):
            data += chunk
            if len(data) >= ERROR_BODY_LIMIT:
                break
    except errors.TotalTimeout:
        raise
    except errors.LLMClientError:  # the body of an error is a courtesy; its status says enough
        pass
    finally:
        response.close()
    return data[:ERROR_BODY_LIMIT]


def refused_by_proxy(response: requests.Response, url: str, proxy: Optional[str]) -> bool:
    """Whether an error status is a proxy's refusal of its credentials.

    407 always is. Without a proxy, a 401 is the service's. But tinyproxy
    answers wrong credentials with ``401`` and a
    ``WWW-Authenticate`` challenge, which a client would take for the
    service's. Over https the proxy can only refuse the tunnel (a
    ``ProxyError``), so a 401 inside it is the service's; on plain http a 401
    is the proxy's when it says so: a ``Proxy-Authenticate`` header, or the
    proxy's own ``Server`` header (a service behind the proxy sends its own).
    """
    if response.status_code == 407:
        return True
    if response.status_code != 401 or not proxy or urlsplit(url).scheme != "http":
        return False
    headers = response.headers
    return "Proxy-Authenticate" in headers or headers.get("Server", "").lower().startswith("tinyproxy")


_STATUS_CLASSES = {
    401: errors.AuthenticationError,
    403: errors.AuthenticationError,
    404: errors.NotFoundError,
    429: errors.RateLimitError,
}


def status_error(
    response: requests.Response, body: bytes, request: Request, secrets: Tuple[str, ...] = ()
) -> errors.HTTPStatusError:
    """The typed error for an error status, with a short excerpt of its body."""
    code = response.status_code
    blocked = is_bot_check(response.headers, body)
    if blocked:
        excerpt = "blocked by a bot check (a Cloudflare-style challenge page that only a browser passes)"
    else:
        excerpt = body_excerpt(body, response.headers.get("Content-Type", ""))
    excerpt = mask(excerpt, secrets)
    reason = response.reason or http.client.responses.get(code, "")
    message = f"HTTP {code} {reason} from {request.method} {redact_url(request.url)}"
    if excerpt:
        message += f": {excerpt}"
    facts = {} if blocked else error_facts(body)
    if blocked:
        cls: Type[errors.HTTPStatusError] = errors.BlockedError
    elif _is_context_overflow(code, facts, excerpt):
        cls = errors.ContextLengthError
    else:
        cls = _STATUS_CLASSES.get(code) or (errors.ServerError if code >= 500 else errors.HTTPStatusError)
    error = cls(
        message,
        status_code=code,
        body_excerpt=excerpt,
        code=facts.get("code"),
        type=facts.get("type"),
        param=facts.get("param"),
        request_id=request_id_of(response.headers),
    )
    error.retry_after = retry_after_of(response.headers)
    error.should_retry = should_retry_of(response.headers)
    error.rate_limits = rate_limits_of(response.headers)
    if isinstance(error, errors.ContextLengthError):
        error.prompt_tokens, error.context_tokens = _context_counts(facts, excerpt)
    return mask_error(error, secrets)


def retry_after_of(headers: Mapping[str, str]) -> Optional[float]:
    """Seconds to wait before a retry: ``retry-after-ms`` (Anthropic's and
    OpenAI's, in milliseconds) if it is a number, else ``Retry-After``."""
    millis = headers.get("retry-after-ms")
    if millis:
        try:
            return max(0.0, float(millis) / 1000)
        except ValueError:
            pass
    return parse_retry_after(headers.get("Retry-After"))


def should_retry_of(headers: Mapping[str, str]) -> Optional[bool]:
    """``x-should-retry``: True or False where the service says, which wins
    over what the status would mean; None where it is absent or neither."""
    value = headers.get("x-should-retry", "").strip().lower()
    return True if value == "true" else False if value == "false" else None


def rate_limits_of(headers: Mapping[str, str]) -> Dict[str, str]:
    """The ``x-ratelimit-*`` response headers (OpenAI's, Groq's: ``remaining``
    and ``reset`` of requests and tokens), names lower-cased."""
    return {name.lower(): value for name, value in headers.items() if name.lower().startswith("x-ratelimit-")}


def request_id_of(headers: Mapping[str, str]) -> Optional[str]:
    """The ``x-request-id`` (or ``request-id``) header: what a service's support asks for."""
    return headers.get("x-request-id") or headers.get("request-id") or None


def error_facts(body: bytes) -> Dict[str, Any]:
    """``code``, ``type`` and ``param`` (as str) of an OpenAI-style JSON error
    body, and the token counts llama.cpp adds (``n_prompt_tokens``, ``n_ctx``)."""
    try:
        data = json.loads(body)
    except ValueError:
        return {}
    inner = data.get("error", data) if isinstance(data, dict) else None
    if not isinstance(inner, dict):
        return {}
    facts: Dict[str, Any] = {}
    for key in ("code", "type", "param"):
        value = inner.get(key)
        if value is not None and not isinstance(value, (dict, list)):
            facts[key] = str(value)
    for key in ("n_prompt_tokens", "n_ctx"):
        if isinstance(inner.get(key), int):
            facts[key] = inner[key]
    return facts


# Patterns, not compiled ones: re compiles (and caches) them at the first
# error that needs them, rather than at every import.
#: Anthropic: "prompt is too long: 208310 tokens > 200000 maximum".
_ANTHROPIC_CONTEXT = r"prompt is too long: (\d+) tokens > (\d+) maximum"
#: vLLM: "This model's maximum context length is 4096 tokens. However, you
#: requested 5000 tokens (4000 in the messages, 1000 in the completion)..."
_VLLM_CONTEXT = r"(?s)maximum context length is (\d+) tokens.*?(?:requested|resulted in) (\d+) tokens"


def _is_context_overflow(status: int, facts: Mapping[str, Any], excerpt: str) -> bool:
    if status not in (400, 413, 422):
        return False
    if facts.get("code") == "context_length_exceeded" or facts.get("type") == "exceed_context_size_error":
        return True
    lowered = excerpt.lower()
    # vLLM's, OpenAI's, Anthropic's and Ollama's (truncate: false) wordings.
    return "maximum context length" in excerpt or any(
        words in lowered
        for words in (
            "context length exceeded",
            "exceeds the context length",
            "longer than the context length",
            "prompt is too long",
        )
    )


def _context_counts(facts: Mapping[str, Any], excerpt: str) -> Tuple[Optional[int], Optional[int]]:
    """(prompt tokens, context size), as far as the server told them."""
    if "n_ctx" in facts:
        return facts.get("n_prompt_tokens"), facts["n_ctx"]
    match = re.search(_VLLM_CONTEXT, excerpt)
    if match:
        return int(match.group(2)), int(match.group(1))
    match = re.search(_ANTHROPIC_CONTEXT, excerpt)
    if match:
        return int(match.group(1)), int(match.group(2))
    return None, None


#: Text found only in bot-check pages (Cloudflare's, CloudFront's), lower-cased.
_BOT_CHECK_MARKERS = (
    b"<title>just a moment...</title>",
    b"attention required! | cloudflare",
    b"cf-please-wait",
    b"cf-spinner-please-wait",
    b"cf-chl-",
    b"challenge-platform",
    b"generated by cloudfront",
)


def is_bot_check(headers: Mapping[str, str], body: bytes) -> bool:
    """True when the answer is a bot check rather than the service's own."""
    if headers.get("cf-mitigated", "").strip().lower() == "challenge":
        return True
    start = body[:16384].lower()
    return any(marker in start for marker in _BOT_CHECK_MARKERS)


def body_excerpt(body: bytes, content_type: str = "") -> str:
    """One readable line from an error body: a JSON error's message, or the
    start of the text. HTML is never echoed."""
    text = body.decode("utf-8", "replace").strip()
    if not text:
        return ""
    lowered = text[:200].lower()
    if "html" in content_type.lower() or lowered.startswith(("<!doctype", "<html")):
        return "(an HTML page, not shown)"
    try:
        message = _json_error_message(json.loads(text))
    except ValueError:
        message = None
    return excerpt(message or text, EXCERPT_LENGTH)


def _json_error_message(data: Any) -> Optional[str]:
    if isinstance(data, dict):
        inner = data.get("error", data)
        if isinstance(inner, dict):
            return error_message(inner)
        if isinstance(inner, str):
            detail = data.get("message")
            return f"{inner}: {detail}" if detail else inner
        return error_message(data)
    return None


def error_message(error: Mapping[str, Any]) -> Optional[str]:
    """The text of a JSON error object: its ``message`` (OpenAI, vLLM,
    llama.cpp) or its ``detail`` (FastAPI); None when it has neither."""
    message = error.get("message") or error.get("detail")
    return str(message) if message else None


def parse_retry_after(value: Optional[str]) -> Optional[float]:
    """Seconds from a ``Retry-After`` header: delta-seconds or an HTTP date;
    None if it is neither.

    Not urllib3's ``Retry.parse_retry_after``: it takes whole seconds only and
    raises on anything else, while services send fractions ("1.5") and a
    malformed header must not fail the call."""
    if not value:
        return None
    value = value.strip()
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    return max(0.0, when.timestamp() - time.time())
