"""The value objects a client takes: :class:`Timeout` and :class:`Retry`, and
the :class:`Deadline` that enforces a timeout over one call."""

from __future__ import annotations

import time
from typing import Any, Optional, Tuple, Union

import urllib3

from . import errors

__all__ = [
    "CLASS_DEFAULT",
    "DEFAULT_TOTAL",
    "ClassDefault",
    "Deadline",
    "Retry",
    "Timeout",
    "TimeoutLike",
]


#: Seconds a call may take in all unless its :class:`Timeout` says otherwise.
DEFAULT_TOTAL = 600.0


class Timeout:
    """Time limits of one call, in seconds; ``None`` means no limit.

    ``connect``
        to open the connection;
    ``read``
        between any two bytes (what a socket timeout is);
    ``idle``
        between two text deltas: SSE comments, keep-alive pings and empty
        chunks do not reset it, so a server that only pings still times out;
    ``total``
        for the whole call, from the request to the stream's end: connecting,
        TLS, sending, the wait for the response headers however slowly they
        come, the body, retries and their waits. By default
        :data:`DEFAULT_TOTAL` (600 s, openai-python's default), so that a
        server that drips bytes cannot hold a cron job forever; ``None``
        switches it off.

    A number means ``Timeout(connect=n, read=n)``; a pair ``(connect, read)``;
    both keep the default ``total``. ``timeout=None`` means no limit at all.
    """

    __slots__ = ("connect", "idle", "read", "total")

    def __init__(
        self,
        connect: Optional[float] = 10.0,
        read: Optional[float] = 120.0,
        idle: Optional[float] = None,
        total: Optional[float] = DEFAULT_TOTAL,
    ) -> None:
        for name, value in (("connect", connect), ("read", read), ("idle", idle), ("total", total)):
            if value is not None and value <= 0:
                raise errors.InvalidRequestError(f"Timeout {name} must be positive or None, not {value!r}")
        self.connect = connect
        self.read = read
        self.idle = idle
        self.total = total

    @classmethod
    def coerce(cls, value: TimeoutLike) -> Timeout:
        if isinstance(value, Timeout):
            return value
        if value is None:
            return cls(None, None, total=None)
        if isinstance(value, tuple):
            connect, read = value
            return cls(connect, read)
        return cls(float(value), float(value))

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Timeout):
            return NotImplemented
        return all(getattr(self, name) == getattr(other, name) for name in self.__slots__)

    __hash__ = None  # type: ignore[assignment]

    def __repr__(self) -> str:
        return f"Timeout(connect={self.connect}, read={self.read}, idle={self.idle}, total={self.total})"


TimeoutLike = Union[None, float, Tuple[Optional[float], Optional[float]], Timeout]


class ClassDefault:
    """The default of a client's ``timeout=``: its class's ``default_timeout``
    (a provider whose server misbehaves in a known way sets its own)."""

    __slots__ = ()

    def __repr__(self) -> str:
        return "<the client class's default_timeout>"


CLASS_DEFAULT = ClassDefault()


class Retry(urllib3.util.Retry):
    """When to try a call again: urllib3's ``Retry``, plus a time ``budget``.

    Only failures before the first text delta are retried — connection errors,
    429, 502, 503, 504, and a connection reset before any text — never after,
    which would show the caller text twice. Waits grow exponentially
    (``backoff_factor``, up to ``backoff_max``, with jitter) or follow
    ``Retry-After``. ``budget`` bounds the seconds all waits of one call may
    add up to; a ``Timeout.total`` deadline bounds them too.
    """

    DEFAULT_STATUSES = frozenset({429, 502, 503, 504})

    def __init__(
        self,
        total: int = 2,
        backoff_factor: float = 0.5,
        budget: Optional[float] = None,
        *,
        status_forcelist: Any = DEFAULT_STATUSES,
        backoff_max: float = 8.0,
        backoff_jitter: float = 0.25,
        allowed_methods: Any = None,  # the request is a POST: retrying it is safe before any text
        raise_on_status: bool = False,
        **kwargs: Any,
    ) -> None:
        super().__init__(
            total=total,
            backoff_factor=backoff_factor,
            status_forcelist=status_forcelist,
            backoff_max=backoff_max,
            backoff_jitter=backoff_jitter,
            allowed_methods=allowed_methods,
            raise_on_status=raise_on_status,
            **kwargs,
        )
        self.budget = budget

    def new(self, **kw: Any) -> Retry:
        kw.setdefault("budget", self.budget)
        retry: Retry = super().new(**kw)
        return retry

    @classmethod
    def coerce(cls, retry: Optional[Retry], max_retries: int) -> Retry:
        if retry is not None:
            return retry
        if max_retries < 0:
            raise errors.InvalidRequestError("max_retries must be 0 or more")
        return cls(total=max_retries)

    def __repr__(self) -> str:
        return f"Retry(total={self.total}, backoff_factor={self.backoff_factor}, budget={self.budget})"


class Deadline:
    """A :class:`Timeout` applied to one call, on the monotonic clock."""

    __slots__ = ("_idle_at", "_total_at", "timeout")

    def __init__(self, timeout: Timeout) -> None:
        self.timeout = timeout
        now = time.monotonic()
        self._total_at = now + timeout.total if timeout.total is not None else None
        self._idle_at: Optional[float] = None

    @property
    def enforced_while_reading(self) -> bool:
        """True when reads need more than the socket's own read timeout."""
        return self.timeout.idle is not None or self.timeout.total is not None

    @property
    def total_at(self) -> Optional[float]:
        """When ``total`` runs out (monotonic time), or None."""
        return self._total_at

    def remaining(self) -> Optional[float]:
        """Seconds left of ``total``, or None."""
        return None if self._total_at is None else self._total_at - time.monotonic()

    def connect_timeout(self) -> Optional[float]:
        return self._shorter(self.timeout.connect)

    def read_timeout(self) -> Optional[float]:
        """How long the next read may wait for a byte."""
        now = time.monotonic()
        read, total_at = self.timeout.read, self._total_at
        if self.timeout.idle is None and read is not None and (total_at is None or total_at - now > read):
            return read  # the common case, once per read: no idle clock, the total far off
        expires = self.expires_at(now)
        return None if expires is None else max(expires - now, 0.001)

    def expires_at(self, since: float) -> Optional[float]:
        """When a read that began waiting at ``since`` must give up (monotonic
        time), or None: the nearest of the read, idle and total deadlines."""
        read = self.timeout.read
        limits = [at for at in (self._idle_at, self._total_at) if at is not None]
        if read is not None:
            limits.append(since + read)
        return min(limits) if limits else None

    def on_delta(self) -> None:
        """Deltas arrived (or the body began): the idle clock restarts. The
        call tells it once per read that brought deltas, not once per delta."""
        if self.timeout.idle is not None:
            self._idle_at = time.monotonic() + self.timeout.idle

    def check(self) -> None:
        """Raise the timeout whose deadline has passed, if any."""
        now = time.monotonic()
        if self._total_at is not None and now >= self._total_at:
            raise self.total_timed_out()
        if self._idle_at is not None and now >= self._idle_at:
            raise errors.IdleTimeout(f"no text arrived for {self.timeout.idle}s (idle timeout)")

    def total_timed_out(self) -> errors.TotalTimeout:
        return errors.TotalTimeout(f"the call took longer than its total timeout of {self.timeout.total}s")

    def read_timed_out(self) -> errors.RequestTimeoutError:
        """The error for a read that timed out: idle or total if theirs passed, else read."""
        try:
            self.check()
        except errors.RequestTimeoutError as exc:
            return exc
        return errors.ReadTimeout(f"no data arrived for {self.timeout.read}s")

    def _shorter(self, limit: Optional[float]) -> Optional[float]:
        left = self.remaining()
        if left is None:
            return limit
        left = max(left, 0.001)
        return left if limit is None else min(limit, left)
