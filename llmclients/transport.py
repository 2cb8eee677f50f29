"""HTTP for every provider: one ``requests.Session``, retries before the first
delta (:class:`Call`) and status errors. The body is read by
:mod:`llmclients.body`.
"""

from __future__ import annotations

import base64
import email.utils
import http.client
import json
import logging
import os
import re
import ssl
import sys
import time
import urllib.request
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
from .body import ERROR_BODY_LIMIT, Body, reason
from .config import Deadline, Retry, Timeout, TimeoutLike
from .watchdog import WATCHDOG, InterruptibleAdapter

logger = logging.getLogger("llmclients")

DEFAULT_TIMEOUT = Timeout()
DEFAULT_MAX_RETRIES = 2
#: Connections to one host that a client's own session keeps open for reuse
#: (requests keeps 10; openai-python 100). More may be open at once: those
#: beyond it are closed when their responses end.
DEFAULT_POOL_SIZE = 100
#: Never wait longer than this before one retry; past it the error is raised.
MAX_RETRY_WAIT = 60.0
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
                f"TLS failed for {where}: {reason(exc)} (pass verify= a CA bundle that signs its certificate)"
            )
        if isinstance(exc, requests.exceptions.SSLError):
            return errors.ConnectError(f"TLS failed for {where}: {reason(exc)}")
        head = [c for c in causes if _is_invalid_head(c)]
        if head:
            problem = f"{type(head[0]).__name__}: {str(head[0])[:80]!r}"  # never the whole line
            return errors.InvalidResponseError(f"{where} sent a response head that is not valid HTTP ({problem})")
        if isinstance(exc, requests.exceptions.ConnectionError):
            return errors.ConnectError(f"could not connect to {where}: {reason(exc)}")
        return errors.TransportError(f"request to {where} failed: {reason(exc)}")


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
    why = str(socks_errors[-1]) if socks_errors else (refused.group(0) if refused else reason(exc))
    return errors.ProxyError(f"the proxy failed for {where}: {why}")


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
