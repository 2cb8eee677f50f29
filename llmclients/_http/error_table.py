"""The one error table: what requests, urllib3, http.client, PySocks, zlib
and the socket raise, mapped to llmclients' classes, most specific first
(as httpx's ``map_httpcore_exceptions`` does).

:func:`translate` serves both places where such errors are met: sending a
request (``requests`` raises its own classes, with urllib3's, http.client's
and PySocks' inside) and reading a body (:class:`~llmclients._http.body.Body` meets
urllib3's, http.client's, zlib's and the socket's bare). Retry decisions are
then made on llmclients' classes alone (:class:`~llmclients._http.transport.Call`).

Every exception class of ``requests.exceptions`` and ``urllib3.exceptions``
is mapped (``tests/test_failures.py`` checks each), but for those
:data:`NOT_MAPPED` names with its reason.
"""

from __future__ import annotations

import http.client
import re
import socket
import ssl
import sys
import time
import zlib
from typing import Callable, Iterator, List, Mapping, Optional, Tuple, Type, Union
from urllib.parse import urlsplit

import requests
import urllib3

from .. import errors
from .deadline import Deadline

__all__ = ["NOT_MAPPED", "reason", "translate"]


class Failure:
    """One exception, with what the messages of its llmclients error need."""

    __slots__ = ("_causes", "deadline", "exc", "where")

    def __init__(self, exc: BaseException, deadline: Deadline, where: str) -> None:
        self.exc = exc
        self.deadline = deadline
        #: The request's URL, redacted.
        self.where = where
        self._causes: Optional[List[BaseException]] = None

    @property
    def causes(self) -> List[BaseException]:
        """``exc`` and the errors inside it (see :func:`_causes`)."""
        if self._causes is None:
            self._causes = list(_causes(self.exc))
        return self._causes


Test = Callable[[Failure], bool]
Build = Callable[[Failure], errors.LLMClientError]
Kinds = Union[Type[BaseException], Tuple[Type[BaseException], ...]]


def translate(exc: BaseException, deadline: Deadline, where: str = "") -> Optional[errors.LLMClientError]:
    """The llmclients error for ``exc`` (None if the table does not know it:
    then it is a bug to be seen as it is)."""
    failure = Failure(exc, deadline, where)
    for test, build in _TABLE:
        if test(failure):
            return build(failure)
    return None


def reason(exc: BaseException) -> str:
    """The innermost cause of a requests/urllib3 error, in one line."""
    while True:
        inner = getattr(exc, "reason", None) or (exc.args[0] if exc.args else None)
        if isinstance(inner, BaseException) and inner is not exc:
            exc = inner
            continue
        break
    text = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
    # urllib3 puts the pool's repr in front: keep what follows it.
    return text.rsplit("): ", 1)[-1] if "HTTPConnectionPool" in text else text


# --- tests -----------------------------------------------------------------------


def _raised(kinds: Kinds) -> Test:
    return lambda failure: isinstance(failure.exc, kinds)


def _caused_by(test: Callable[[BaseException], bool]) -> Test:
    """A request failed with an error inside that passes ``test``."""
    return lambda failure: isinstance(failure.exc, requests.exceptions.RequestException) and any(
        test(cause) for cause in failure.causes
    )


def _total_ran_out(failure: Failure) -> bool:
    """A request failed after the total ran out: whatever broke it (the
    watchdog's shutdown, a socket timeout) was the total's doing."""
    total_at = failure.deadline.total_at
    return isinstance(failure.exc, requests.exceptions.RequestException) and (
        total_at is not None and time.monotonic() >= total_at
    )


def _through_proxy(failure: Failure) -> bool:
    return isinstance(failure.exc, requests.exceptions.ProxyError) or _caused_by(_is_socks_error)(failure)


def _is_socks_error(exc: BaseException, name: str = "ProxyError") -> bool:
    """Whether ``exc`` is PySocks' ``name`` error (imported only if it was used)."""
    socks = sys.modules.get("socks")
    kind = getattr(socks, name, None) if socks is not None else None
    return isinstance(kind, type) and isinstance(exc, kind)


def _is_invalid_head(exc: BaseException) -> bool:
    """http.client's errors for a status line or headers that are not HTTP
    (a line over 64 KiB, more than 100 headers, garbage), which a retry would
    only meet again; not a connection closed before the response, also a
    ``BadStatusLine``."""
    if isinstance(exc, http.client.RemoteDisconnected):
        return False
    return isinstance(exc, (http.client.LineTooLong, http.client.BadStatusLine)) or type(exc) is http.client.HTTPException


def _is_certificate_error(exc: BaseException) -> bool:
    return isinstance(exc, ssl.SSLCertVerificationError)


def _causes(exc: BaseException) -> Iterator[BaseException]:
    """``exc`` and the errors inside it: requests wraps urllib3's, which wrap
    http.client's, socket's and PySocks' (as ``reason``, an argument, or a cause)."""
    seen: List[BaseException] = []
    todo = [exc]
    while todo and len(seen) < 16:
        current = todo.pop()
        if any(current is known for known in seen):
            continue
        seen.append(current)
        yield current
        inner = (getattr(current, "reason", None), current.__cause__, current.__context__, *current.args[:1])
        todo.extend(e for e in inner if isinstance(e, BaseException))


# --- errors ----------------------------------------------------------------------


def _invalid_url(failure: Failure) -> errors.InvalidRequestError:
    where = failure.where
    if "SOCKS" in str(failure.exc):
        return errors.InvalidRequestError(
            "a socks5:// or socks5h:// proxy needs PySocks: pip install 'requests[socks]'"
        )
    scheme = urlsplit(where).scheme
    # Python 3.9's urlsplit takes "127.0.0.1" as the scheme of "127.0.0.1:8080/v1".
    if isinstance(failure.exc, requests.exceptions.MissingSchema) or not where.startswith(f"{scheme}://"):
        problem = "it has no scheme"
    else:
        problem = f"requests cannot send {scheme}://"
    return errors.InvalidRequestError(
        f"invalid URL {where!r}: {problem}; base_url must start with http:// or https://; nothing was sent"
    )


def _bad_url(failure: Failure) -> errors.InvalidRequestError:
    problem = str(failure.exc).rsplit("': ", 1)[-1]  # after the URL, which may hold credentials
    return errors.InvalidRequestError(f"invalid URL {failure.where!r}: {problem}; nothing was sent")


#: "Tunnel connection failed: 407 Proxy Authentication Required", as urllib3 words a refused CONNECT.
_TUNNEL_REFUSED = re.compile(r"Tunnel connection failed: (\d{3})[^'\"]*")


def _proxy_error(failure: Failure) -> errors.ProxyError:
    """A refused login (CONNECT answered 401 or 407, a SOCKS5 login refused)
    raises ProxyAuthenticationError; any other proxy failure ProxyError."""
    causes, where = failure.causes, failure.where
    refused = _TUNNEL_REFUSED.search(" ".join(str(c) for c in causes))
    socks_refused = [c for c in causes if _is_socks_error(c, "SOCKS5AuthError")]
    login_refused = str(socks_refused[0]) if socks_refused else None
    if refused and refused.group(1) in ("401", "407"):
        login_refused = refused.group(0)
    if login_refused is not None:
        return errors.ProxyAuthenticationError(
            f"the proxy refused its credentials for {where} ({login_refused}); "
            "check the user and password in the proxy URL"
        )
    socks_errors = [c for c in causes if _is_socks_error(c)]
    why = str(socks_errors[-1]) if socks_errors else (refused.group(0) if refused else reason(failure.exc))
    return errors.ProxyError(f"the proxy failed for {where}: {why}")


def _invalid_head(failure: Failure) -> errors.InvalidResponseError:
    head = next(c for c in failure.causes if _is_invalid_head(c))
    problem = f"{type(head).__name__}: {str(head)[:80]!r}"  # never the whole line
    return errors.InvalidResponseError(f"{failure.where} sent a response head that is not valid HTTP ({problem})")


def _decoding(failure: Failure) -> errors.DecodingError:
    return errors.DecodingError(f"the body's content-encoding could not be decoded: {failure.exc}")


def _interrupted(failure: Failure) -> errors.StreamInterruptedError:
    return errors.StreamInterruptedError(
        f"the connection broke before the response ended ({reason(failure.exc)})"
    )


_rq = requests.exceptions
_u3 = urllib3.exceptions

#: The classes of requests.exceptions and urllib3.exceptions (with their
#: subclasses) the table leaves out on purpose, and why: :func:`translate`
#: returns None for them.
NOT_MAPPED: Mapping[Type[BaseException], str] = {
    _rq.RequestsWarning: "a warning requests issues with warnings.warn (FileModeWarning, ...); never raised",
    _u3.HTTPWarning: "a warning urllib3 issues with warnings.warn (InsecureRequestWarning, ...); never raised",
}

#: (test, error), most specific first. requests' own classes come from
#: sending a request; the bare ones below them from reading a body.
_TABLE: Tuple[Tuple[Test, Build], ...] = (
    (_total_ran_out, lambda f: f.deadline.total_timed_out()),
    (_raised((_rq.MissingSchema, _rq.InvalidSchema)), _invalid_url),
    (_raised(_rq.InvalidURL), _bad_url),  # InvalidProxyURL too
    (_through_proxy, _proxy_error),
    (
        _raised(_rq.ConnectTimeout),
        lambda f: errors.ConnectTimeout(
            f"connecting to {f.where} took longer than {f.deadline.timeout.connect}s"
        ),
    ),
    (
        _raised(_rq.ReadTimeout),
        lambda f: errors.ReadTimeout(f"{f.where} sent no response within {f.deadline.timeout.read}s"),
    ),
    (
        _caused_by(_is_certificate_error),
        lambda f: errors.CertificateError(
            f"TLS failed for {f.where}: {reason(f.exc)} (pass verify= a CA bundle that signs its certificate)"
        ),
    ),
    (_raised(_rq.SSLError), lambda f: errors.ConnectError(f"TLS failed for {f.where}: {reason(f.exc)}")),
    (_caused_by(_is_invalid_head), _invalid_head),
    (
        _raised(_rq.ConnectionError),
        lambda f: errors.ConnectError(f"could not connect to {f.where}: {reason(f.exc)}"),
    ),
    (
        _raised(_rq.RequestException),
        lambda f: errors.TransportError(f"request to {f.where} failed: {reason(f.exc)}"),
    ),
    # Reading a body.
    (_raised((socket.timeout, _u3.ReadTimeoutError)), lambda f: f.deadline.read_timed_out()),
    (_raised((_u3.DecodeError, zlib.error)), _decoding),
    (_raised((_u3.HTTPError, http.client.HTTPException, OSError, ValueError)), _interrupted),
)
