"""What messages may show: URLs without credentials or query
(:func:`redact_url`; :func:`check_credentials` refuses a URL's credentials
beside a key), errors with every secret the client knows masked
(:func:`secrets_in`, :func:`mask`, :func:`mask_error`), and excerpts of what a
server sent, on one line and cut short (:func:`excerpt`)."""

from __future__ import annotations

import base64
import re
from typing import Iterable, Mapping, Optional, Tuple, TypeVar
from urllib.parse import unquote, urlsplit, urlunsplit

from .. import errors

__all__ = [
    "MASK",
    "MIN_SECRET_LENGTH",
    "check_credentials",
    "excerpt",
    "mask",
    "mask_error",
    "redact_url",
    "secrets_in",
]


def redact_url(url: str) -> str:
    """``url`` without credentials or query string, fit for messages and logs."""
    try:
        parts = urlsplit(url)
    except ValueError:  # "Invalid IPv6 URL"
        return "<an invalid URL>"
    host = parts.hostname or ""
    if ":" in host:
        host = f"[{host}]"
    if parts.port:
        host = f"{host}:{parts.port}"
    return urlunsplit((parts.scheme, host, parts.path, "", ""))


def excerpt(text: str, limit: int, mark: str = "…") -> str:
    """``text`` on one line (each run of whitespace one space), and when that
    is longer than ``limit`` characters, cut to ``limit`` with ``mark`` last."""
    text = " ".join(text.split())
    return text if len(text) <= limit else text[: limit - len(mark)] + mark


MASK = "***"
#: Shorter strings are not masked: replacing them would garble every message.
MIN_SECRET_LENGTH = 4
#: Header names whose values are credentials (matched anywhere in the name):
#: Authorization, Proxy-Authorization, api-key, x-api-key, Cookie, X-Auth-Token...
#: (A pattern: re compiles and caches it when the first client is made, not at import.)
_CREDENTIAL_HEADER = r"(?i)auth|key|token|secret|cookie|passw|session|credential|signature"

_E = TypeVar("_E", bound=errors.LLMClientError)


def secrets_in(
    keys: Iterable[Optional[str]] = (),
    headers: Optional[Mapping[str, str]] = None,
    urls: Iterable[Optional[str]] = (),
) -> Tuple[str, ...]:
    """Every string a message must not show: the ``keys``, the values of
    credential-like ``headers`` (and the token in ``Bearer <token>`` or a
    cookie's values), and the password of any ``user:pass@`` in ``urls``
    (with its Basic-auth form), longest first."""
    found = set(keys)
    for name, value in (headers or {}).items():
        if re.search(_CREDENTIAL_HEADER, name) and isinstance(value, str):
            found.add(value)
            found.add(value.split()[-1] if value.split() else "")
            found.update(part.partition("=")[2].strip() for part in value.split(";"))
    for url in urls:
        parts = urlsplit(url or "")
        if parts.password:
            password = unquote(parts.password)
            userinfo = f"{unquote(parts.username or '')}:{password}"
            found.update((parts.password, password, base64.b64encode(userinfo.encode()).decode()))
    kept = {secret for secret in found if secret and len(secret) >= MIN_SECRET_LENGTH}
    return tuple(sorted(kept, key=len, reverse=True))


def mask(text: str, secrets: Iterable[str]) -> str:
    """``text`` with each of ``secrets`` (as :func:`secrets_in` gives them) replaced by ``***``."""
    for secret in secrets:
        if secret in text:
            text = text.replace(secret, MASK)
    return text


def mask_error(error: _E, secrets: Tuple[str, ...]) -> _E:
    """``error`` with ``secrets`` masked in its message and every text attribute
    but the reply's own text (``partial_text``, ``text``), and in the messages
    of the exceptions it was raised from, which a traceback shows; returned
    for ``raise``."""
    if not secrets:
        return error
    for name, value in vars(error).items():
        if isinstance(value, str) and name not in ("partial_text", "text"):
            setattr(error, name, mask(value, secrets))
    cause: Optional[BaseException] = error
    for _ in range(10):  # a chain is short; a loop of causes must not hang us
        if cause is None:
            break
        cause.args = tuple(mask(arg, secrets) if isinstance(arg, str) else arg for arg in cause.args)
        cause = cause.__cause__ or cause.__context__
    return error


def check_credentials(base_url: str, api_key: Optional[str]) -> None:
    """Refuse ``user:pass@`` in ``base_url`` beside ``api_key``: requests would
    send the Basic auth of the URL instead of the key, without a word."""
    parts = urlsplit(base_url)
    if api_key and (parts.username or parts.password):
        raise errors.InvalidRequestError(
            f"base_url {redact_url(base_url)!r} carries credentials (user:pass@) and api_key is set: "
            "the service would get the URL's Basic auth, not the key. Drop user:pass@ from "
            "base_url, or leave api_key unset to authenticate with Basic auth"
        )
