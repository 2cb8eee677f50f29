"""The HTTP request a provider describes and the transport sends (:class:`Request`)."""

from __future__ import annotations

from typing import Any, Dict, Optional

from .masking import redact_url

__all__ = ["Request"]


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
        #: How many redirects led to this request (see :func:`~llmclients.redirects.redirected_request`).
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

    def __repr__(self) -> str:
        return f"<Request {self.method} {redact_url(self.url)}>"
