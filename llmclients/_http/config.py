"""The value objects a client takes: :class:`Timeout` and :class:`Retry`
(and :data:`CLASS_DEFAULT`, "the provider's own timeout"). One call's
deadline, which enforces a timeout, is :class:`~llmclients._http.deadline.Deadline`."""

from __future__ import annotations

from typing import Any, Optional, Tuple, Union

import urllib3

from .. import errors

__all__ = [
    "CLASS_DEFAULT",
    "DEFAULT_TOTAL",
    "ClassDefault",
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


# Set here, not by expose(): llmclients loads this lazily (see its _LAZY).
Timeout.__module__ = Retry.__module__ = "llmclients"
