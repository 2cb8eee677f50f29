"""The HTTP request a provider describes and the transport sends (:class:`Request`)."""

from __future__ import annotations

import copy
import json
from typing import Any, Dict, Mapping, Optional

from .masking import redact_url

__all__ = ["LOGGED_STRING_LIMIT", "Request"]

#: Strings longer than this (an image's base64) are shortened in logged request bodies.
LOGGED_STRING_LIMIT = 200


class Request:
    """One HTTP request as a provider describes it; the transport sends it.

    ``event_format`` names the format of the response's events when it
    differs from the provider's usual one ("whole": one JSON document).
    """

    __slots__ = ("data", "event_format", "files", "headers", "json", "method", "redirects", "url")

    def __init__(
        self,
        method: str,
        url: str,
        headers: Optional[Dict[str, str]] = None,
        json: Any = None,
        data: Any = None,
        files: Any = None,
        event_format: Optional[str] = None,
        redirects: int = 0,
    ) -> None:
        self.method = method
        self.url = url
        self.headers = headers if headers is not None else {}
        self.json = json
        self.data = data
        self.files = files
        self.event_format = event_format
        #: How many redirects led to this request (see :func:`~llmclients._http.redirects.redirected_request`).
        self.redirects = redirects

    def redirected(self, url: str) -> Request:
        """This request, sent again to ``url`` after a redirect."""
        return Request(
            self.method,
            url,
            headers=self.headers,
            json=self.json,
            data=self.data,
            files=self.files,
            event_format=self.event_format,
            redirects=self.redirects + 1,
        )

    def adding_headers(self, added: Mapping[str, str]) -> Request:
        """This request with those of the ``added`` headers it lacks (names
        compared case-blind): its own, where keys travel, are never replaced."""
        own = {name.lower() for name in self.headers}
        fresh = {name: value for name, value in added.items() if name.lower() not in own}
        if not fresh:
            return self
        request = copy.copy(self)
        request.headers = {**self.headers, **fresh}
        return request

    def loggable_body(self) -> str:
        """The body as one line of JSON for a debug log, long strings
        shortened and files named only (headers, where keys travel, are not in it)."""

        def shorten(value: Any) -> Any:
            if isinstance(value, str) and len(value) > LOGGED_STRING_LIMIT:
                return f"{value[:LOGGED_STRING_LIMIT]}...({len(value) - LOGGED_STRING_LIMIT} more characters)"
            if isinstance(value, Mapping):
                return {key: shorten(item) for key, item in value.items()}
            if isinstance(value, (list, tuple)):
                return [shorten(item) for item in value]
            return value

        body: Dict[str, Any] = {}
        if self.json is not None:
            body = {"json": self.json}
        if self.data is not None:
            body["data"] = self.data
        if self.files:
            body["form"] = [_form_field(field) for field in self.files]
        # A JSON body (the usual case) is shown as sent; form data under its keys.
        shown = shorten(body["json"] if list(body) == ["json"] else body)
        return json.dumps(shown, ensure_ascii=False, default=repr)

    def __repr__(self) -> str:
        return f"<Request {self.method} {redact_url(self.url)}>"


def _form_field(field: Any) -> Any:
    """A multipart field as ``[name, value]``, a file as ``[name, "(file NAME)"]``."""
    try:
        name, (filename, value, *_) = field
    except (TypeError, ValueError):
        return repr(field)
    return [name, value if filename is None else f"(file {filename})"]
