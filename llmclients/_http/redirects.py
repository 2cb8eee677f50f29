"""Redirects: which are followed (same-origin 307/308), and the error that
says where to point ``base_url`` for the others."""

from __future__ import annotations

import http.client
from typing import TYPE_CHECKING, Optional, Tuple
from urllib.parse import urljoin, urlsplit

import requests

from .. import errors
from .masking import mask, redact_url
from .status_errors import request_id_of

if TYPE_CHECKING:
    from .request import Request

__all__ = ["MAX_REDIRECTS", "redirected_request"]


#: Same-origin 307/308 redirects followed for one request, at most.
MAX_REDIRECTS = 5


def redirected_request(
    response: requests.Response,
    request: Request,
    base_url: Optional[str] = None,
    secrets: Tuple[str, ...] = (),
) -> Optional[Request]:
    """What to send after ``response``, if it is a redirect (None if it is not).

    Only a 307 or 308 to the same origin (scheme, host and port) is followed,
    with the same method, headers and body, at most :data:`MAX_REDIRECTS`
    times: nothing the client adds — the key, ``headers=``, the prompt — may
    reach another origin, travel over plain http after https, or turn into a
    GET. Anything else raises :class:`~llmclients.errors.RedirectError`, which
    names the target and the ``base_url`` to set instead (``base_url`` is the
    client's, to work that out).
    """
    code = response.status_code
    if not 300 <= code < 400:
        return None
    location = response.headers.get("Location")
    response.close()  # a redirect's body says nothing the status does not
    target = urljoin(request.url, location) if location else ""
    if target and not _redirect_refusal(code, request, target):
        return request.redirected(target)
    reason = response.reason or http.client.responses.get(code, "")
    message = f"HTTP {code} {reason} from {request.method} {redact_url(request.url)}"
    if target:
        why = _redirect_refusal(code, request, target)
        fix = _fix(request.url, target, base_url)
        message += f" redirects to {redact_url(target)}, which is not followed: {why}; {fix}"
    else:
        message += " is a redirect without a Location header"
    raise errors.RedirectError(
        mask(message, secrets), location=target, status_code=code, request_id=request_id_of(response.headers)
    )


def _redirect_refusal(code: int, request: Request, target: str) -> str:
    """Why a redirect to ``target`` is not followed; "" if it is."""
    origin, to = urlsplit(request.url), urlsplit(target)
    if origin.scheme == "https" and to.scheme != "https":
        return "it leads from https to plain http, where the key and the prompt would travel in clear text"
    if (origin.scheme, origin.hostname, origin.port) != (to.scheme, to.hostname, to.port):
        return "it leads to another origin, which must not get the API key, the headers or the prompt"
    if code not in (307, 308) and request.method != "GET":
        return f"a {code} turns a {request.method} into a GET"
    if code not in (307, 308):
        return "only 307 and 308 are followed"
    if request.redirects >= MAX_REDIRECTS:
        return f"it is redirect number {request.redirects + 1}, past the limit of {MAX_REDIRECTS}"
    return ""


def _fix(url: str, target: str, base_url: Optional[str]) -> str:
    """How to send to ``target`` directly: the ``base_url`` under which the
    request's path leads there, or else what to point ``base_url`` at."""
    url, target = redact_url(url), redact_url(target)
    base = redact_url(base_url or "")
    added = url[len(base) :] if base_url and url.startswith(base) else ""
    moved = target[: -len(added)] if added and target.endswith(added) else ""
    if moved and moved != base:
        return f"if the service now lives there, set base_url to {moved!r}"
    if added:
        return f"if the service now lives there, point base_url at it (requests go to base_url + {added!r})"
    return "if the service now lives there, point base_url at it"
