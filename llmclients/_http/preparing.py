"""Requests prepared the way ``requests.Session.request`` prepares them, with
what the session merges into them done once per (method, URL, headers):
:class:`Preparer`. Used by :mod:`llmclients._http.transport`.

``Session.prepare_request`` merges the session's headers, params, auth,
cookies and hooks into every request, and parses its URL: about 0.15 ms of
the 0.8 ms of CPU that sending a stream's request costs, spent again for
every request of a batch to the same endpoint. A :class:`Preparer` keeps the
result without a body (a *template*) and gives each request a copy with its
own body. It does so only while the copy cannot differ from what requests
would prepare: the body is JSON (or absent), and the session has no cookies,
params or auth, none of it from ``~/.netrc`` when it trusts the environment,
and no hooks. Its headers are part of the key, so changing them takes
effect at the next request. Any other request is prepared by requests.

:meth:`Preparer.settings` does the same for ``merge_environment_settings``
(proxies, ``verify``, ``cert``) of a session that does not trust the
environment; one that does reads it on every request, as requests does.
"""

from __future__ import annotations

from typing import Any, Callable, Dict, Hashable, Mapping, Optional, Tuple, TypeVar

import requests
from requests.utils import get_netrc_auth

__all__ = ["MAX_TEMPLATES", "Preparer"]

#: Templates one Preparer keeps; past it, it forgets them all and starts again
#: (a client talks to a handful of endpoints, so this only bounds odd cases).
MAX_TEMPLATES = 64


class Preparer:
    """Prepares requests for sending with ``session.send`` (see the module's docstring)."""

    def __init__(self) -> None:
        self._templates: Dict[Hashable, requests.PreparedRequest] = {}
        self._settings: Dict[Hashable, Dict[str, Any]] = {}

    def prepare(
        self,
        session: requests.Session,
        method: str,
        url: str,
        headers: Mapping[str, str],
        json: Any = None,
        data: Any = None,
        files: Any = None,
    ) -> requests.PreparedRequest:
        """The request ``session.request`` would send: the session's settings merged in."""
        key = self._key(session, method, url, headers) if data is None and files is None else None
        if key is None:
            return session.prepare_request(
                requests.Request(method.upper(), url, headers=dict(headers), json=json, data=data or {}, files=files)
            )
        template = _kept(
            self._templates,
            key,
            lambda: session.prepare_request(requests.Request(method.upper(), url, headers=dict(headers))),
        )
        prepared = template.copy()  # its own headers: the body's Content-Length and -Type go there
        prepared.prepare_body(None, None, json)
        return prepared

    @staticmethod
    def _key(
        session: requests.Session, method: str, url: str, headers: Mapping[str, str]
    ) -> Optional[Tuple[Hashable, ...]]:
        """What a template depends on; None when a request must be prepared afresh.

        Without hooks and auth, nothing adds to a request's hooks, which its
        copies share with the template (``PreparedRequest.copy`` does not copy them).
        """
        if session.cookies or session.params or session.auth is not None or any(session.hooks.values()):
            return None
        if session.trust_env and get_netrc_auth(url):
            return None
        return (method, url, tuple(headers.items()), tuple(session.headers.items()))

    def settings(
        self, session: requests.Session, url: str, proxies: Optional[Mapping[str, str]], verify: Any
    ) -> Dict[str, Any]:
        """What ``session.request`` passes to ``session.send`` for ``url``: the
        proxies, ``stream``, ``verify`` and ``cert`` merged with the session's."""
        def merge() -> Dict[str, Any]:
            return dict(session.merge_environment_settings(url, dict(proxies or {}), True, verify, None))

        if session.trust_env:  # the environment may change between requests
            return merge()
        key = (
            tuple((proxies or {}).items()),
            verify,
            tuple(session.proxies.items()),
            session.stream,
            session.verify,
            session.cert,
        )
        merged = _kept(self._settings, key, merge)
        return {**merged, "proxies": dict(merged["proxies"])}  # requests may add to what it is given


_V = TypeVar("_V")


def _kept(cache: Dict[Hashable, _V], key: Hashable, make: Callable[[], _V]) -> _V:
    """``cache[key]``, made first if missing; a full cache is emptied, not grown."""
    value = cache.get(key)
    if value is None:
        if len(cache) >= MAX_TEMPLATES:
            cache.clear()
        value = cache[key] = make()
    return value
