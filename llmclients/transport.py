"""HTTP for every provider: one ``requests.Session``, retries before the first
delta (:class:`Call`), status errors, and a body reader that hands on every
byte at once (:class:`Body`).

``requests`` offers no way to read a streamed body that is both prompt and fast:
``iter_lines()`` and ``iter_content(n)`` wait for ``n`` bytes, so on a body
without ``Content-Length`` they hold an event back until the next one arrives,
and ``iter_content(None)`` waits for the body to end. :class:`Body` reads
what the socket has, whatever the framing:

* close-delimited or sized bodies: urllib3's ``read1`` (one ``recv``, decoded);
* chunked bodies: a de-chunker over the same buffered socket file that urllib3's
  own ``read_chunked`` reads, which takes every chunk already received in one
  pass instead of one chunk per call, and hands the connection back to the pool
  at the end exactly as urllib3 does. Bodies it does not cover (an unusual
  content-encoding, a response that is not backed by a socket) go through
  urllib3's ``stream()``.

A chunked body can also be read without blocking, for an event loop that
watches its socket (:meth:`Body.set_nonblocking`, used by :mod:`llmclients.aio`).
"""

from __future__ import annotations

import base64
import email.utils
import http.client
import json
import logging
import os
import re
import select
import socket
import ssl
import sys
import time
import urllib.request
import zlib
from typing import (
    Any,
    Callable,
    Dict,
    Iterable,
    Iterator,
    List,
    Mapping,
    Optional,
    Tuple,
    Type,
    TypeVar,
    Union,
)
from urllib.parse import unquote, urljoin, urlsplit, urlunsplit

import requests
import urllib3

from . import errors
from .config import Deadline, Retry, Timeout, TimeoutLike
from .watchdog import WATCHDOG, InterruptibleAdapter

logger = logging.getLogger("llmclients")

DEFAULT_TIMEOUT = Timeout()
DEFAULT_MAX_RETRIES = 2
#: Connections to one host that a client's own session keeps open for reuse
#: (requests keeps 10; openai-python 100). More may be open at once: those
#: beyond it are closed when their responses end.
DEFAULT_POOL_SIZE = 100
READ_SIZE = 65536
#: Never wait longer than this before one retry; past it the error is raised.
MAX_RETRY_WAIT = 60.0
ERROR_BODY_LIMIT = 65536
EXCERPT_LENGTH = 300
USER_AGENT = "llmclients (python-requests)"


class Request:
    """One HTTP request as a provider describes it; the transport sends it.

    ``framing`` names the response body's framing when it differs from the
    provider's usual one.
    """

    __slots__ = ("data", "files", "framing", "headers", "json", "method", "redirects", "url")

    def __init__(
        self,
        method: str,
        url: str,
        headers: Optional[Dict[str, str]] = None,
        json: Any = None,
        data: Any = None,
        files: Any = None,
        framing: Optional[str] = None,
        redirects: int = 0,
    ) -> None:
        self.method = method
        self.url = url
        self.headers = headers if headers is not None else {}
        self.json = json
        self.data = data
        self.files = files
        self.framing = framing
        #: How many redirects led to this request (see :func:`redirected_request`).
        self.redirects = redirects

    def __repr__(self) -> str:
        return f"<Request {self.method} {redact_url(self.url)}>"


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


# --- secrets ---------------------------------------------------------------------

MASK = "***"
#: Shorter strings are not masked: replacing them would garble every message.
MIN_SECRET_LENGTH = 4
#: Header names whose values are credentials (matched anywhere in the name):
#: Authorization, Proxy-Authorization, api-key, x-api-key, Cookie, X-Auth-Token...
_CREDENTIAL_HEADER = re.compile(r"auth|key|token|secret|cookie|passw|session|credential|signature", re.I)

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
        if _CREDENTIAL_HEADER.search(name) and isinstance(value, str):
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


# --- redirects -------------------------------------------------------------------

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
        return Request(
            request.method,
            target,
            headers=request.headers,
            json=request.json,
            data=request.data,
            files=request.files,
            framing=request.framing,
            redirects=request.redirects + 1,
        )
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


#: Failures that would fail the same way again (subclasses of ConnectError).
_NEVER_RETRIED = (errors.CertificateError, errors.ProxyAuthenticationError)


class Call:
    """One call's time limits and retry allowance, shared by its attempts."""

    def __init__(self, timeout: Timeout, retry: Retry) -> None:
        self.deadline = Deadline(timeout)
        self.retry = retry
        self.waited = 0.0

    def retry_delay(self, request: Request, exc: errors.LLMClientError) -> Optional[float]:
        """Seconds to wait before trying ``request`` again after ``exc``, or
        None if it must not be retried (not retryable, retries used up, or the
        wait would break the budget or the deadline)."""
        if isinstance(exc, _NEVER_RETRIED):
            return None
        if isinstance(exc, errors.HTTPStatusError):
            if exc.status_code not in (self.retry.status_forcelist or ()):
                return None
            failure: Dict[str, Any] = {"response": urllib3.HTTPResponse(status=exc.status_code)}
        elif isinstance(exc, (errors.ConnectError, errors.ConnectTimeout)):
            failure = {"error": urllib3.exceptions.ConnectTimeoutError(str(exc))}
        elif isinstance(exc, errors.StreamInterruptedError):
            failure = {"error": urllib3.exceptions.ProtocolError(str(exc))}
        else:
            return None
        try:
            self.retry = self.retry.increment(request.method, redact_url(request.url), **failure)
        except urllib3.exceptions.MaxRetryError:
            return None
        except (urllib3.exceptions.HTTPError, OSError):  # a kind of failure this Retry does not retry
            return None
        delay = self.retry.get_backoff_time()
        retry_after = exc.retry_after if isinstance(exc, errors.HTTPStatusError) else None
        if retry_after is not None and self.retry.respect_retry_after_header:
            delay = max(delay, retry_after)
        budget = self.retry.budget
        if delay > MAX_RETRY_WAIT or (budget is not None and self.waited + delay > budget):
            return None
        left = self.deadline.remaining()
        if left is not None and delay >= left:
            return None
        self.waited += delay
        return delay


class Transport:
    """Sends :class:`Request` objects over one ``requests.Session``."""

    def __init__(
        self,
        *,
        timeout: TimeoutLike = DEFAULT_TIMEOUT,
        retry: Optional[Retry] = None,
        proxy: Optional[str] = None,
        headers: Optional[Mapping[str, str]] = None,
        max_retries: int = DEFAULT_MAX_RETRIES,
        session: Optional[requests.Session] = None,
        pool_size: Optional[int] = None,
        verify: Union[bool, str] = True,
        secrets: Iterable[Optional[str]] = (),
        base_url: Optional[str] = None,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self.timeout = Timeout.coerce(timeout)
        self.retry = Retry.coerce(retry, max_retries)
        self.proxies = {"http": proxy, "https": proxy} if proxy else None
        self.headers = dict(headers or {})
        self.verify = verify
        if session is not None and pool_size is not None:
            raise errors.InvalidRequestError(
                "pool_size sizes the client's own session; for a session you pass, "
                "mount a requests.adapters.HTTPAdapter(pool_maxsize=...) on it"
            )
        if pool_size is not None and pool_size < 1:
            raise errors.InvalidRequestError("pool_size must be at least 1")
        self._owns_session = session is None
        self.session = session if session is not None else _new_session(pool_size or DEFAULT_POOL_SIZE)
        # requests reads the environment (proxies, CA bundle, ~/.netrc) again on
        # every request, scanning all of os.environ; a session of our own reads
        # the proxies once per host and the CA bundle once, instead.
        self._env_proxies: Optional[Dict[str, Dict[str, str]]] = None
        if self._owns_session:
            self.session.trust_env = False
            self._env_proxies = {}
            if verify is True:
                self.verify = os.environ.get("REQUESTS_CA_BUNDLE") or os.environ.get("CURL_CA_BUNDLE") or True
        self._pid = os.getpid()
        #: The client's base_url, to tell where to point it when a redirect is not followed.
        self.base_url = base_url
        #: What no message may show: ``secrets`` (the API key), credential
        #: headers, and passwords in the proxy's, the environment's proxies'
        #: and the base_url's URLs.
        environment = urllib.request.getproxies().values()
        self._secrets = secrets_in(secrets, self.headers, (proxy, base_url, *environment))
        self._sleep = sleep

    def close(self) -> None:
        if self._owns_session:
            _close_pooled_connections(self.session)
            self.session.close()

    def new_call(self) -> Call:
        return Call(self.timeout, self.retry)

    def open(self, request: Request, call: Call) -> requests.Response:
        """Send ``request`` and return the response with its body unread.

        Connection failures, 429 and 502/503/504 are retried as ``call.retry``
        allows; any other failure raises its typed error at once, and so do
        the connection failures that would repeat (``_NEVER_RETRIED``).
        """
        while True:
            try:
                return self._send_once(request, call.deadline)
            except (errors.ConnectError, errors.ConnectTimeout, errors.HTTPStatusError) as exc:
                if not self.wait_to_retry(request, call, exc):
                    raise

    def wait_to_retry(self, request: Request, call: Call, exc: errors.LLMClientError) -> bool:
        """Sleep before the next attempt after ``exc``; False if there is none."""
        delay = call.retry_delay(request, exc)
        if delay is None:
            return False
        logger.info(
            "retrying %s %s after %s (retry %d) in %.2fs",
            request.method,
            redact_url(request.url),
            _describe(exc),
            len(call.retry.history),
            delay,
        )
        self._sleep(delay)
        return True

    def _send_once(self, request: Request, deadline: Deadline) -> requests.Response:
        if logger.isEnabledFor(logging.DEBUG):
            logger.debug("%s %s", request.method, redact_url(request.url))
        self._forget_parent_connections()
        deadline.check()
        proxies = self.proxies or self._proxies_from_environment(request.url)
        # requests' timeouts bound each socket operation, not the call: the
        # watchdog shuts the socket down if the total runs out meanwhile.
        with WATCHDOG.guard(deadline.total_at) as guard:
            try:
                response = self.session.request(
                    request.method,
                    request.url,
                    headers={"User-Agent": USER_AGENT, **request.headers, **self.headers},
                    json=request.json,
                    data=request.data,
                    files=request.files,
                    stream=True,
                    timeout=(deadline.connect_timeout(), deadline.read_timeout()),
                    proxies=proxies,
                    verify=self.verify,
                    allow_redirects=False,  # redirected_request decides
                )
            except requests.exceptions.RequestException as exc:
                raise mask_error(self._transport_error(exc, request, deadline), self._secrets) from None
        if guard.fired:  # a head the shutdown cut short may still parse
            response.close()
            raise deadline.total_timed_out()
        redirect = redirected_request(response, request, self.base_url, self._secrets)
        if redirect is not None:
            return self._send_once(redirect, deadline)
        if response.status_code >= 400:
            raise self._status_error(response, request, deadline, proxies)
        return response

    def _status_error(
        self,
        response: requests.Response,
        request: Request,
        deadline: Deadline,
        proxies: Optional[Dict[str, str]],
    ) -> errors.LLMClientError:
        body = _error_body(response, deadline)
        proxy = requests.utils.select_proxy(request.url, proxies) if proxies else None
        if _refused_by_proxy(response, request.url, proxy):
            where = f"the proxy {redact_url(proxy)}" if proxy else "a proxy"
            return errors.ProxyAuthenticationError(
                f"{where} refused its credentials (HTTP {response.status_code}) for "
                f"{redact_url(request.url)}; check the user and password in the proxy URL"
            )
        return status_error(response, body, request, self._secrets)

    def _proxies_from_environment(self, url: str) -> Optional[Dict[str, str]]:
        """``HTTP(S)_PROXY`` / ``NO_PROXY`` for ``url``'s host, read once per host."""
        if self._env_proxies is None:
            return None  # a session passed in reads the environment itself, as it is set
        try:
            parts = urlsplit(url)
        except ValueError as exc:
            raise errors.InvalidRequestError(f"invalid URL {redact_url(url)}: {exc}; nothing was sent") from None
        key = f"{parts.scheme}://{parts.netloc}"
        proxies = self._env_proxies.get(key)
        if proxies is None:
            proxies = self._env_proxies[key] = requests.utils.get_environ_proxies(url)
        return proxies

    def _forget_parent_connections(self) -> None:
        """After ``os.fork()`` the child must not talk over the parent's sockets."""
        if os.getpid() == self._pid:
            return
        self._pid = os.getpid()
        # Closing a socket in the child closes its copy only: the parent's stays open.
        _close_pooled_connections(self.session)

    def _transport_error(
        self, exc: requests.exceptions.RequestException, request: Request, deadline: Deadline
    ) -> errors.LLMClientError:
        where = redact_url(request.url)
        try:
            # Once the total has run out, whatever broke the request (the
            # watchdog's shutdown, a socket timeout) was its doing.
            deadline.check()
        except errors.TotalTimeout as total:
            return total
        except errors.IdleTimeout:
            pass
        if isinstance(exc, (requests.exceptions.MissingSchema, requests.exceptions.InvalidSchema)):
            return _invalid_url(exc, where)
        if isinstance(exc, requests.exceptions.InvalidURL):  # InvalidProxyURL too
            problem = str(exc).rsplit("': ", 1)[-1]  # after the URL, which may hold credentials
            return errors.InvalidRequestError(f"invalid URL {where!r}: {problem}; nothing was sent")
        causes = list(_causes(exc))
        if isinstance(exc, requests.exceptions.ProxyError) or any(_is_socks_error(c) for c in causes):
            return _proxy_error(exc, causes, where)
        if isinstance(exc, requests.exceptions.ConnectTimeout):
            return errors.ConnectTimeout(f"connecting to {where} took longer than {self.timeout.connect}s")
        if isinstance(exc, requests.exceptions.ReadTimeout):
            return errors.ReadTimeout(f"{where} sent no response within {self.timeout.read}s")
        if any(isinstance(c, ssl.SSLCertVerificationError) for c in causes):
            return errors.CertificateError(
                f"TLS failed for {where}: {_reason(exc)} (pass verify= a CA bundle that signs its certificate)"
            )
        if isinstance(exc, requests.exceptions.SSLError):
            return errors.ConnectError(f"TLS failed for {where}: {_reason(exc)}")
        head = [c for c in causes if _is_invalid_head(c)]
        if head:
            problem = f"{type(head[0]).__name__}: {str(head[0])[:80]!r}"  # never the whole line
            return errors.InvalidResponseError(f"{where} sent a response head that is not valid HTTP ({problem})")
        if isinstance(exc, requests.exceptions.ConnectionError):
            return errors.ConnectError(f"could not connect to {where}: {_reason(exc)}")
        return errors.TransportError(f"request to {where} failed: {_reason(exc)}")


def _error_body(response: requests.Response, deadline: Deadline) -> bytes:
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


def _refused_by_proxy(response: requests.Response, url: str, proxy: Optional[str]) -> bool:
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


def _invalid_url(exc: requests.exceptions.RequestException, where: str) -> errors.InvalidRequestError:
    if "SOCKS" in str(exc):
        return errors.InvalidRequestError(
            "a socks5:// or socks5h:// proxy needs PySocks: pip install 'requests[socks]'"
        )
    scheme = urlsplit(where).scheme
    if isinstance(exc, requests.exceptions.MissingSchema) or not scheme:
        problem = "it has no scheme"
    else:
        problem = f"requests cannot send {scheme}://"
    return errors.InvalidRequestError(
        f"invalid URL {where!r}: {problem}; base_url must start with http:// or https://; nothing was sent"
    )


#: "Tunnel connection failed: 407 Proxy Authentication Required", as urllib3 words a refused CONNECT.
_TUNNEL_REFUSED = re.compile(r"Tunnel connection failed: (\d{3})[^'\"]*")


def _proxy_error(exc: BaseException, causes: List[BaseException], where: str) -> errors.ProxyError:
    """A refused login (CONNECT answered 401 or 407, a SOCKS5 login refused)
    raises ProxyAuthenticationError; any other proxy failure ProxyError."""
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
    reason = str(socks_errors[-1]) if socks_errors else (refused.group(0) if refused else _reason(exc))
    return errors.ProxyError(f"the proxy failed for {where}: {reason}")


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


def _new_session(pool_size: int) -> requests.Session:
    session = requests.Session()
    # Without pool_maxsize, streams beyond requests' 10 per host reconnect each
    # time, and urllib3 warns "Connection pool is full" as each one ends. The
    # adapter lets the watchdog interrupt a request when its total runs out.
    for prefix in ("https://", "http://"):
        session.mount(prefix, InterruptibleAdapter(pool_maxsize=pool_size))
    return session


def _close_pooled_connections(session: requests.Session) -> None:
    """Close the idle connections of every pool: urllib3 2's ``PoolManager.clear()``
    only forgets its pools, leaving their sockets open until garbage collection."""
    for adapter in session.adapters.values():
        managers = [getattr(adapter, "poolmanager", None), *getattr(adapter, "proxy_manager", {}).values()]
        for manager in managers:
            if manager is None:
                continue
            for key in list(manager.pools.keys()):
                pool = manager.pools.get(key)
                if pool is not None:
                    pool.close()
            manager.clear()


def _reason(exc: BaseException) -> str:
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


def _describe(exc: errors.LLMClientError) -> str:
    if isinstance(exc, errors.HTTPStatusError):
        return f"HTTP {exc.status_code}"
    return type(exc).__name__


# --- status errors ---------------------------------------------------------------

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
    error.retry_after = parse_retry_after(response.headers.get("Retry-After"))
    if isinstance(error, errors.ContextLengthError):
        error.prompt_tokens, error.context_tokens = _context_counts(facts, excerpt)
    return mask_error(error, secrets)


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


#: vLLM: "This model's maximum context length is 4096 tokens. However, you
#: requested 5000 tokens (4000 in the messages, 1000 in the completion)..."
_VLLM_CONTEXT = re.compile(
    r"maximum context length is (\d+) tokens.*?(?:requested|resulted in) (\d+) tokens", re.S
)


def _is_context_overflow(status: int, facts: Mapping[str, Any], excerpt: str) -> bool:
    if status not in (400, 413, 422):
        return False
    if facts.get("code") == "context_length_exceeded" or facts.get("type") == "exceed_context_size_error":
        return True
    return "maximum context length" in excerpt or "context length exceeded" in excerpt.lower()


def _context_counts(facts: Mapping[str, Any], excerpt: str) -> Tuple[Optional[int], Optional[int]]:
    """(prompt tokens, context size), as far as the server told them."""
    if "n_ctx" in facts:
        return facts.get("n_prompt_tokens"), facts["n_ctx"]
    match = _VLLM_CONTEXT.search(excerpt)
    if match:
        return int(match.group(2)), int(match.group(1))
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
    text = " ".join((message or text).split())
    return text if len(text) <= EXCERPT_LENGTH else text[: EXCERPT_LENGTH - 1] + "…"


def _json_error_message(data: Any) -> Optional[str]:
    if isinstance(data, dict):
        inner = data.get("error", data)
        if isinstance(inner, dict):
            message = inner.get("message") or inner.get("detail")
            return str(message) if message else None
        if isinstance(inner, str):
            detail = data.get("message")
            return f"{inner}: {detail}" if detail else inner
        detail = data.get("message") or data.get("detail")
        return str(detail) if detail else None
    return None


def parse_retry_after(value: Optional[str]) -> Optional[float]:
    """Seconds from a ``Retry-After`` header: delta-seconds or an HTTP date."""
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


# --- reading the body ------------------------------------------------------------

#: The most one step of decompression may produce. zlib inflates zeros about
#: 1000-fold, so a compressed body inflated a whole read at a time (64 KiB
#: in, 64 MiB out) fills memory faster than any limit downstream could act.
MAX_INFLATE = 1024 * 1024

_GZIP = 16 + zlib.MAX_WBITS
#: The content-encodings :class:`Body` undoes itself, and the zlib window bits of each.
_INFLATERS = {"gzip": _GZIP, "x-gzip": _GZIP, "deflate": zlib.MAX_WBITS}
#: Content-encodings that :class:`_Dechunker` can pass on, for Body to undo.
_UNDONE_HERE = frozenset(("", "identity", *_INFLATERS))


class _Inflater:
    """Undoes ``gzip`` or ``deflate``, never more than :data:`MAX_INFLATE` bytes at a time.

    A gzip body may hold several members, one after another (``cat a.gz
    b.gz``): each is inflated in turn, and bytes after the first member that
    are not gzip (padding) are ignored, as urllib3 and gzip(1) do. ``deflate``
    is zlib-wrapped by the standard and raw from some servers: both are read.
    """

    def __init__(self, wbits: int) -> None:
        self._wbits = wbits
        self._zlib = zlib.decompressobj(wbits)
        self._begun = False  # zlib took a first read: deflate is no longer retried raw
        self._members = 1

    def inflate(self, chunks: Iterator[bytes]) -> Iterator[bytes]:
        """The inflated bytes of ``chunks``; an empty chunk is passed on at once."""
        for data in chunks:
            if not data:
                yield data
            else:
                yield from self._pieces(data)

    def _pieces(self, data: bytes) -> Iterator[bytes]:
        while True:
            if self._zlib.eof:
                if self._wbits != _GZIP or not data:
                    return  # nothing follows the end of a deflate stream
                self._zlib = zlib.decompressobj(_GZIP)  # the next member
                self._members += 1
            try:
                out = self._zlib.decompress(data, MAX_INFLATE)
            except zlib.error:
                if self._members > 1:
                    return  # trailing garbage after a complete member
                if self._wbits != zlib.MAX_WBITS or self._begun:
                    raise
                self._wbits = -zlib.MAX_WBITS  # deflate without its zlib wrapper
                self._zlib = zlib.decompressobj(self._wbits)
                continue
            self._begun = True
            # Input left over stays in zlib's unconsumed_tail (or unused_data
            # past a member's end); output left over is taken by the next call.
            data = self._zlib.unused_data if self._zlib.eof else self._zlib.unconsumed_tail
            if out:
                yield out
            if not data and len(out) < MAX_INFLATE:
                return


class Body:
    """A response body read promptly: iterate it for bytes (content-decoded,
    never more than :data:`MAX_INFLATE` of them at once).

    Iterating raises :class:`~llmclients.errors.StreamInterruptedError` when
    the body breaks off, :class:`~llmclients.errors.ReadTimeout` when no byte
    arrives in time and :class:`~llmclients.errors.DecodingError` for a bad
    content-encoding. After the protocol's own end (``[DONE]``, say) call
    :meth:`release`: the connection goes back to the pool if the rest of the
    body is already here.

    After :meth:`set_nonblocking` it yields ``b""`` where a read would wait.
    """

    def __init__(self, response: requests.Response, deadline: Deadline) -> None:
        self._raw = response.raw
        self._deadline = deadline
        wbits = _INFLATERS.get(self._raw.headers.get("Content-Encoding", "").strip().lower())
        #: Undoes gzip and deflate in bounded steps; urllib3 decodes what else it knows.
        self._inflater = _Inflater(wbits) if wbits is not None else None
        self._dechunker = _Dechunker(self._raw) if self._raw.chunked and _can_dechunk(self._raw) else None
        self._sock = getattr(getattr(self._raw, "_connection", None), "sock", None)
        self._nonblocking = False
        self._waiting_since: Optional[float] = None
        #: While a non-blocking read waits: when its timeout is due (monotonic time), or None.
        self.wake_at: Optional[float] = None

    def set_nonblocking(self) -> Optional[socket.socket]:
        """Read without waiting from now on, for an event loop to drive.

        Returns the socket to watch for readability, or None when this body
        cannot be read so (it is not chunked, or not on a socket) and stays
        blocking. Then each read takes what has arrived; where a read would
        wait, the iterator yields ``b""``: iterate again once the socket is
        readable, or at :attr:`wake_at`, when the read, idle or total timeout
        is due and the next step raises it.
        """
        sock = self._dechunker.set_nonblocking() if self._dechunker is not None else None
        self._nonblocking = sock is not None
        return sock

    def __iter__(self) -> Iterator[bytes]:
        deadline = self._deadline
        check = deadline.enforced_while_reading
        try:
            # Idle and total limits: each read may wait only until the nearest
            # deadline, and bytes that carry no text (pings) do not postpone it.
            for chunk in self._chunks(self._set_read_timeout if check else None):
                if not chunk:
                    self._note_wait()
                elif check:
                    deadline.check()
                yield chunk
        except errors.LLMClientError:
            raise
        except (socket.timeout, urllib3.exceptions.ReadTimeoutError):
            raise deadline.read_timed_out() from None
        except (urllib3.exceptions.DecodeError, zlib.error) as exc:
            raise errors.DecodingError(f"the body's content-encoding could not be decoded: {exc}") from None
        except (urllib3.exceptions.HTTPError, http.client.HTTPException, OSError, ValueError) as exc:
            raise errors.StreamInterruptedError(
                f"the connection broke before the response ended ({_reason(exc)})"
            ) from None

    def _set_read_timeout(self) -> None:
        if self._sock is not None and not self._nonblocking:
            self._sock.settimeout(self._deadline.read_timeout())

    def _note_wait(self) -> None:
        """A non-blocking read found nothing: raise the timeout now due, or
        note when it will be (a chunk with data restarts the clock)."""
        now = time.monotonic()
        if self._waiting_since is None:
            self._waiting_since = now
        self.wake_at = self._deadline.expires_at(self._waiting_since)
        if self.wake_at is not None and now >= self.wake_at:
            raise self._deadline.read_timed_out()

    def _chunks(self, before_read: Optional[Callable[[], None]] = None) -> Iterator[bytes]:
        chunks = self._received(before_read)
        return chunks if self._inflater is None else self._inflater.inflate(chunks)

    def _received(self, before_read: Optional[Callable[[], None]]) -> Iterator[bytes]:
        """The body as it arrives, still content-encoded if :attr:`_inflater` is to undo it."""
        raw = self._raw
        # urllib3 would inflate a whole read (or chunk) at once: gzip and
        # deflate are left to the inflater.
        decode = self._inflater is None
        if self._dechunker is not None:
            for chunk in self._dechunker.chunks(before_read):
                if chunk:
                    self._waiting_since = None
                yield chunk
        elif raw.chunked:
            yield from raw.stream(None, decode_content=decode)
        elif hasattr(type(raw), "read1"):
            read1 = raw.read1
            while True:
                if before_read is not None:
                    before_read()
                data = read1(READ_SIZE, decode_content=decode)
                if not data:
                    return
                yield data
        else:  # urllib3 < 2 has no read1; its stream() waits for a buffer to fill
            yield from raw.stream(READ_SIZE, decode_content=decode)

    def release(self) -> None:
        """Hand the connection back for reuse if the body has fully arrived."""
        try:
            if self._dechunker is not None:
                self._dechunker.finish_if_arrived()
            elif getattr(self._raw, "length_remaining", None) == 0:
                self._raw.drain_conn()
        except Exception:  # reuse is an optimisation: the caller closes the response anyway
            logger.debug("could not keep the connection for reuse", exc_info=True)


_HEX_DIGITS = b"0123456789abcdefABCDEF"


def _chunk_size(line: bytes) -> int:
    """The size on a chunk-size line: hex digits only (``int(x, 16)`` would also
    take ``0x10``, ``1_0``, ``+10`` and `` 10``), then any chunk extensions."""
    digits = line.split(b";", 1)[0].rstrip(b" \t")  # whitespace may precede an extension
    if not digits or digits.translate(None, _HEX_DIGITS):
        raise errors.MalformedStreamError(f"invalid chunk-size line {bytes(line[:40])!r}")
    return int(digits, 16)


def _can_dechunk(raw: Any) -> bool:
    original = getattr(raw, "_fp", None)
    return (
        isinstance(original, http.client.HTTPResponse)
        and getattr(original, "fp", None) is not None
        and hasattr(original.fp, "read1")
        and getattr(raw, "chunk_left", 0) is None
        and raw.headers.get("Content-Encoding", "").strip().lower() in _UNDONE_HERE
    )


class _Dechunker:
    """Decodes ``Transfer-Encoding: chunked`` from the socket file in bulk
    (the data, still content-encoded)."""

    #: How long :meth:`finish_if_arrived` waits for a last chunk still in flight.
    GRACE = 0.05

    def __init__(self, raw: Any) -> None:
        self._raw = raw
        self._fp = raw._fp.fp
        #: The socket, once reads are non-blocking; and its timeout before, to restore.
        self.sock: Optional[socket.socket] = None
        self._timeout: Optional[float] = None
        self._drained = False  # the last non-blocking read took all there was
        self._buf = b""
        self._left = 0  # bytes of the current chunk's data not yet read
        self._crlf_due = False  # the CRLF after a chunk's data is not yet read
        self._finished = False
        #: Chunk-size lines seen, and their sizes: a server repeats a few, and
        #: a lookup costs less than checking and converting the hex again.
        self._sizes: Dict[bytes, int] = {}

    def set_nonblocking(self) -> Optional[socket.socket]:
        """Make reads return at once; the socket, or None if there is none to do it on."""
        sock = getattr(getattr(self._raw, "_connection", None), "sock", None)
        if self._finished or not isinstance(sock, socket.socket):
            return None
        self._timeout = sock.gettimeout()
        sock.settimeout(0)
        self.sock = sock
        return sock

    def chunks(self, before_read: Optional[Callable[[], None]] = None) -> Iterator[bytes]:
        """The body's data as it arrives; ``b""`` where a non-blocking read would wait."""
        while not self._finished:
            if self._drained:
                # Nothing more can have arrived unseen: let the caller wait for
                # the socket rather than fail a read (two system calls) first.
                self._drained = False
                yield b""
            if before_read is not None:
                before_read()
            data = self._read()
            if data is None:
                yield b""
                continue
            if not data:
                raise errors.StreamInterruptedError(
                    "the connection closed before the chunked body's last chunk"
                )
            out = self._feed(data)
            if out:
                yield out

    def _read(self) -> Optional[bytes]:
        """What has arrived: b"" at the end of the connection, None if a
        non-blocking read found nothing yet."""
        if self.sock is None:
            return self._fp.read1(READ_SIZE)  # type: ignore[no-any-return]
        try:
            data: bytes = self._fp.read1(READ_SIZE)
        except (ssl.SSLWantReadError, ssl.SSLWantWriteError):
            return None
        # A short read emptied the socket (and the file's buffer, which read1
        # of this size always empties); TLS may still hold decrypted bytes.
        self._drained = 0 < len(data) < READ_SIZE and not getattr(self.sock, "pending", int)()
        if data or isinstance(self.sock, ssl.SSLSocket):
            return data
        # A plain socket's file returns b"" both at the end and when nothing
        # has arrived; a peek tells them apart.
        try:
            return self._read() if self.sock.recv(1, socket.MSG_PEEK) else b""
        except BlockingIOError:
            return None

    def finish_if_arrived(self) -> None:
        """After the protocol's end: read the last chunk if it is here (or
        arrives within a moment; at once if reads are non-blocking), then
        give the connection back."""
        sock = getattr(self._raw._connection, "sock", None)
        grace = 0 if self.sock is not None else self.GRACE
        while not self._finished and sock is not None:
            pending = getattr(sock, "pending", lambda: 0)()  # bytes TLS already decrypted
            if not pending and not select.select([sock], [], [], grace)[0]:
                return
            data = self._read()
            if not data:
                return
            self._feed(data)

    def _feed(self, data: bytes) -> bytes:
        buf = self._buf + data if self._buf else data
        pieces: List[bytes] = []
        pos, whole_chunks_follow = self._resume(buf, pieces)
        end = len(buf)
        append, find, sizes = pieces.append, buf.find, self._sizes
        while whole_chunks_follow and pos < end:  # whole chunks, the common case, in a tight loop
            eol = find(b"\r\n", pos)
            if eol < 0:
                if end - pos > 1024:
                    raise errors.MalformedStreamError("a chunk-size line is longer than 1 KiB")
                break
            line = buf[pos:eol]
            size = sizes.get(line)
            if size is None:
                size = _chunk_size(line)
                if len(sizes) < 256:
                    sizes[line] = size
            start = eol + 2
            stop = start + size
            if size == 0:
                pos, self._finished = start, True
                break
            if stop + 2 <= end:
                if buf[stop : stop + 2] != b"\r\n":
                    raise errors.MalformedStreamError("a chunk's data is not followed by CRLF")
                append(buf[start:stop])
                pos = stop + 2
            elif stop > end:  # the chunk's data goes on in the next read
                append(buf[start:end])
                self._left, pos = stop - end, end
            else:  # its data is here, its CRLF not yet
                append(buf[start:stop])
                self._crlf_due, pos = True, stop
                break
        self._buf = buf[pos:]
        if self._finished:
            self._finish()
        return b"".join(pieces)

    def _resume(self, buf: bytes, pieces: List[bytes]) -> Tuple[int, bool]:
        """Finish the chunk an earlier read began. Returns where the unread
        bytes of ``buf`` start, and whether whole chunks may follow there."""
        pos = 0
        if self._left:
            take = min(self._left, len(buf))
            pieces.append(buf[:take])
            self._left -= take
            if self._left:
                return len(buf), False
            pos, self._crlf_due = take, True
        if self._crlf_due:
            if len(buf) - pos < 2:
                return pos, False
            if buf[pos : pos + 2] != b"\r\n":
                raise errors.MalformedStreamError("a chunk's data is not followed by CRLF")
            self._crlf_due = False
            pos += 2
        return pos, True

    def _finish(self) -> None:
        """Read the trailer section, then give the connection back as urllib3
        does; if the trailers are cut short (or not here yet, when reads are
        non-blocking), keep it, and it is closed with the response."""
        rest = self._buf
        while rest[:2] != b"\r\n" and b"\r\n\r\n" not in rest:
            more = self._read()
            if not more or len(rest) > ERROR_BODY_LIMIT:
                return
            rest += more
        if self.sock is not None:
            self.sock.settimeout(self._timeout)  # the next request expects a blocking socket
        self._raw._fp.close()
        self._raw.release_conn()
