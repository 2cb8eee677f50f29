"""The reply's Content-Type, checked where a stream opens: one rule for every provider.

A status 200 is not always the service's answer. A captive Wi-Fi portal, a
proxy or a bot check can stand in with an HTML page, and a server asked for a
stream may answer with one JSON document instead: the whole completion, or an
error. :func:`check` sorts a response before any of its body is parsed:

* an HTML page (``text/html``, ``application/xhtml+xml``): a bot check raises
  :class:`~llmclients.errors.BlockedError`, any other page
  :class:`~llmclients.errors.MalformedStreamError` naming the type; the page
  itself is never shown;
* a JSON type (``application/json``, ``*/*+json``) where the provider streams
  in another type (:attr:`Provider.stream_types`): the body is read whole, by
  :func:`completion_reader`, as the provider's non-streamed reply;
* anything else — the provider's own type, ``text/plain``, no Content-Type at
  all, any charset parameter — is read in the provider's event format, as before.
  Real servers label their streams loosely (openchat-ui sets no type, some
  OpenAI-compatible servers send SSE as ``text/plain``): only the two cases
  above are caught.

What the server sent is shown only with the client's secrets masked: both
functions take the transport's (:attr:`Transport.secrets
<llmclients._http.transport.Transport.secrets>`: the key, credential headers, proxy
and URL passwords).
"""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Callable, Optional, Tuple

from .. import errors
from .._http.masking import mask_error
from .._http.status_errors import body_excerpt, error_facts, is_bot_check, status_error

if TYPE_CHECKING:
    import requests

    from .._http.body import Body
    from .._http.transport import Request
    from .state import Service, StreamState

__all__ = [
    "HTML_TYPES",
    "PAGE_SNIFF_SIZE",
    "check",
    "completion_reader",
    "is_json",
    "media_type",
]


HTML_TYPES = frozenset({"text/html", "application/xhtml+xml"})
#: How much of an HTML page is read to tell a bot check from any other page.
PAGE_SNIFF_SIZE = 16384


def media_type(content_type: Optional[str]) -> str:
    """``text/event-stream; charset=utf-8`` -> ``text/event-stream``; "" for none."""
    return (content_type or "").split(";", 1)[0].strip().lower()


def is_json(kind: str) -> bool:
    return kind == "application/json" or kind.endswith("+json")


def check(
    response: requests.Response, body: Body, request: Request, provider: Service, *, secrets: Tuple[str, ...]
) -> Optional[str]:
    """Raise if the response is a page rather than the service's reply.

    Returns the media type when the body is one JSON document where a stream
    was asked for (read it with :func:`completion_reader`), else None.
    ``secrets`` are masked in what is raised.
    """
    if is_bot_check(response.headers, b""):  # Cloudflare's cf-mitigated header
        raise status_error(response, b"", request, secrets)
    kind = media_type(response.headers.get("Content-Type"))
    if kind in HTML_TYPES:
        page = _start_of(body)
        if is_bot_check(response.headers, page):
            raise status_error(response, page, request, secrets)
        raise errors.MalformedStreamError(
            f"{_name(provider)} answered with an HTML page ({kind}) instead of its reply: "
            "a captive Wi-Fi portal, a proxy's or a firewall's page? (the page is not shown; "
            "open the service's URL in a browser to see it)"
        )
    streamed = (request.event_format or provider.event_format) != "whole"
    if streamed and is_json(kind) and kind not in provider.stream_types:
        return kind
    return None


def completion_reader(
    provider: Service, kind: str, *, secrets: Tuple[str, ...]
) -> Callable[[str, StreamState], Optional[str]]:
    """Reads the whole JSON body (``kind``) that came where a stream was asked
    for: a JSON error raises :class:`~llmclients.errors.ProviderError` with its
    message (``secrets`` masked), a reply goes to :meth:`Provider.parse_completion`,
    anything else raises :class:`~llmclients.errors.MalformedStreamError`."""
    what = f"{_name(provider)} answered with one JSON document ({kind}) where a stream was asked for"

    def read(data: str, state: StreamState) -> Optional[str]:
        try:
            document = json.loads(data)
        except ValueError:
            raise errors.MalformedStreamError(f"{what}, and it is not valid JSON") from None
        if isinstance(document, dict) and (document.get("error") or document.get("object") == "error"):
            raw = data.encode("utf-8")
            facts = error_facts(raw)
            error = errors.ProviderError(
                f"{what}: an error: {body_excerpt(raw, kind)}", reason=facts.get("code") or facts.get("type")
            )
            raise mask_error(error, secrets)
        try:
            return provider.parse_completion(document, state)
        except (ValueError, LookupError, TypeError, AttributeError) as exc:
            raise errors.MalformedStreamError(f"{what}, and it is not a reply ({exc})") from None

    return read


def _start_of(body: Body) -> bytes:
    """The first bytes of the body, as far as they arrive: a page cut short or
    stalled is still a page, and says more than the failure to read all of it."""
    parts = []
    size = 0
    try:
        for chunk in body:
            parts.append(chunk)
            size += len(chunk)
            if size >= PAGE_SNIFF_SIZE:
                break
    except errors.LLMClientError:
        pass
    return b"".join(parts)[:PAGE_SNIFF_SIZE]


def _name(provider: Service) -> str:
    return provider.label or provider.name
