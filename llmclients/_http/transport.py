"""HTTP for every provider: one call's deadline and retry accounting (:class:`Budget`), and the session that
sends requests (:class:`Transport`), which a provider describes as a
:class:`~llmclients._http.request.Request`. The call that drives them is
:class:`llmclients._core.call.Call`.

The layers below: :mod:`llmclients._http.body` reads the body and owns the socket,
:mod:`llmclients._http.error_table` maps what requests and urllib3 raise to
llmclients' errors, :mod:`llmclients._http.status_errors` turns error statuses into typed
errors, :mod:`llmclients._http.redirects` decides redirects and
:mod:`llmclients._http.masking` keeps secrets out of messages.
"""

from __future__ import annotations

import logging
import os
import time
import urllib.request
from typing import (
    Any,
    Callable,
    Dict,
    Iterable,
    Mapping,
    Optional,
    Union,
)
from urllib.parse import urlsplit

import requests
from urllib3.util.retry import RequestHistory

from .. import errors
from .config import Retry, Timeout, TimeoutLike
from .deadline import Deadline
from .masking import mask_error, redact_url, secrets_in
from .preparing import Preparer
from .request import Request
from .status_errors import error_body, refused_by_proxy, status_error
from .watchdog import WATCHDOG, InterruptibleAdapter

__all__ = [
    "DEFAULT_MAX_RETRIES",
    "DEFAULT_POOL_SIZE",
    "DEFAULT_TIMEOUT",
    "MAX_RETRY_WAIT",
    "USER_AGENT",
    "Budget",
    "Request",
    "Transport",
    "redact_url",
]

logger = logging.getLogger("llmclients")

DEFAULT_TIMEOUT = Timeout()
DEFAULT_MAX_RETRIES = 2
#: Connections to one host that a client's own session keeps open for reuse
#: (requests keeps 10; openai-python 100). More may be open at once: those
#: beyond it are closed when their responses end.
DEFAULT_POOL_SIZE = 100
#: Never wait longer than this before one retry; past it the error is raised.
MAX_RETRY_WAIT = 60.0
USER_AGENT = "llmclients (python-requests)"


#: Failures that would fail the same way again (subclasses of ConnectError).
_NEVER_RETRIED = (errors.CertificateError, errors.ProxyAuthenticationError)


class Budget:
    """One call's time limits and retry allowance, shared by its attempts."""

    def __init__(self, timeout: Timeout, retry: Retry, statuses: Iterable[int] = ()) -> None:
        self.deadline = Deadline(timeout)
        self.retry = retry
        #: The statuses retried: the retry's ``status_forcelist`` and the provider's own.
        self.statuses = frozenset((*(retry.status_forcelist or ()), *statuses))
        self.waited = 0.0

    def retry_delay(self, request: Request, exc: errors.LLMClientError) -> Optional[float]:
        """Seconds to wait before trying ``request`` again after ``exc``, or
        None if it must not be retried (not retryable, retries used up, or the
        wait would break the budget or the deadline)."""
        if isinstance(exc, _NEVER_RETRIED):
            return None
        if isinstance(exc, errors.HTTPStatusError):
            # x-should-retry, where the service sent it, decides over the status.
            verdict = exc.should_retry
            if verdict is False or (verdict is None and exc.status_code not in self.statuses):
                return None
        retry = _counted(self.retry, request, exc)
        if retry is None:
            return None
        self.retry = retry
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


def _counted(retry: Retry, request: Request, exc: errors.LLMClientError) -> Optional[Retry]:
    """``retry`` with one more failure counted, as urllib3's ``Retry.increment``
    counts it (total, then connect, read or status); None when this kind of
    failure is not retried or the counts run out."""
    error: Optional[errors.LLMClientError] = exc
    status: Optional[int] = None
    if isinstance(exc, errors.HTTPStatusError):
        kind, status, error = "status", exc.status_code, None
    elif isinstance(exc, (errors.ConnectError, errors.ConnectTimeout)):
        kind = "connect"
    elif isinstance(exc, errors.StreamInterruptedError):
        kind = "read"
    else:
        return None
    left = getattr(retry, kind)
    if retry.total is False or left is False:
        return None
    allowed = retry.allowed_methods
    if kind == "read" and allowed and request.method.upper() not in allowed:
        return None
    changes: Dict[str, Any] = {"total": None if retry.total is None else retry.total - 1}
    if left is not None:
        changes[kind] = left - 1
    entry = RequestHistory(request.method, redact_url(request.url), error, status, None)
    counted = retry.new(history=(*retry.history, entry), **changes)
    return None if counted.is_exhausted() else counted


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
        retry_statuses: Iterable[int] = (),
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
        self._preparer = Preparer()
        #: The client's base_url, to tell where to point it when a redirect is not followed.
        self.base_url = base_url
        #: What no message may show: ``secrets`` (the API key), credential
        #: headers, and passwords in the proxy's, the environment's proxies'
        #: and the base_url's URLs.
        environment = urllib.request.getproxies().values()
        self.secrets = secrets_in(secrets, self.headers, (proxy, base_url, *environment))
        #: Waits between attempts; ``time.sleep`` unless given (a test may replace it).
        self.sleep = sleep
        #: Statuses retried besides the retry's ``status_forcelist`` (the provider's).
        self.retry_statuses = frozenset(retry_statuses)

    def close(self) -> None:
        if self._owns_session:
            _close_pooled_connections(self.session)
            self.session.close()

    def new_budget(self) -> Budget:
        """The deadline and retry allowance of a new call."""
        return Budget(self.timeout, self.retry, self.retry_statuses)

    def retry_delay(self, request: Request, budget: Budget, exc: errors.LLMClientError) -> Optional[float]:
        """Seconds to wait before trying ``request`` again after ``exc`` (logged),
        or None if it must not be; the caller waits with :attr:`sleep`."""
        delay = budget.retry_delay(request, exc)
        if delay is not None:
            logger.info(
                "retrying %s %s after %s (retry %d) in %.2fs",
                request.method,
                redact_url(request.url),
                _describe(exc),
                len(budget.retry.history),
                delay,
            )
        return delay

    def send(self, request: Request, deadline: Deadline) -> requests.Response:
        """Send ``request`` once (following the redirects that
        :func:`~llmclients._http.redirects.redirected_request` allows) and return the
        response with its body unread; an error status raises its typed error."""
        if logger.isEnabledFor(logging.DEBUG):
            logger.debug("%s %s", request.method, redact_url(request.url))
        self._forget_parent_connections()
        deadline.check()
        proxies = self.proxies or self._proxies_from_environment(request.url)
        # requests' timeouts bound each socket operation, not the call: the
        # watchdog shuts the socket down if the total runs out meanwhile.
        with WATCHDOG.guard(deadline.total_at) as guard:
            try:
                response = self._send(request, deadline, proxies)
            except requests.exceptions.RequestException as exc:
                # Loaded at the first failure: a call that succeeds never needs the table.
                from .error_table import translate

                error = translate(exc, deadline, redact_url(request.url))
                if error is None:
                    raise
                raise mask_error(error, self.secrets) from None
        if guard.fired:  # a head the shutdown cut short may still parse
            response.close()
            raise deadline.total_timed_out()
        if 300 <= response.status_code < 400:
            from .redirects import redirected_request  # here: most services never redirect

            redirect = redirected_request(response, request, self.base_url, self.secrets)
            if redirect is not None:
                return self.send(redirect, deadline)
        if response.status_code >= 400:
            raise self._status_error(response, request, deadline, proxies)
        return response

    def _send(self, request: Request, deadline: Deadline, proxies: Optional[Dict[str, str]]) -> requests.Response:
        """What ``session.request`` does, with the request prepared by a :class:`~llmclients._http.preparing.Preparer`."""
        session = self.session
        headers = {"User-Agent": USER_AGENT, **request.headers, **self.headers}
        prepared = self._preparer.prepare(
            session, request.method, request.url, headers, request.json, request.data, request.files
        )
        settings = self._preparer.settings(session, prepared.url or request.url, proxies, self.verify)
        return session.send(
            prepared,
            timeout=(deadline.connect_timeout(), deadline.read_timeout()),
            allow_redirects=False,  # redirected_request decides
            **settings,
        )

    def _status_error(
        self,
        response: requests.Response,
        request: Request,
        deadline: Deadline,
        proxies: Optional[Dict[str, str]],
    ) -> errors.LLMClientError:
        body = error_body(response, deadline)
        proxy = requests.utils.select_proxy(request.url, proxies) if proxies else None
        if refused_by_proxy(response, request.url, proxy):
            where = f"the proxy {redact_url(proxy)}" if proxy else "a proxy"
            return errors.ProxyAuthenticationError(
                f"{where} refused its credentials (HTTP {response.status_code}) for "
                f"{redact_url(request.url)}; check the user and password in the proxy URL"
            )
        return status_error(response, body, request, self.secrets)

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

