"""One call's :class:`Deadline`: a :class:`~llmclients._http.config.Timeout`
applied to it on the monotonic clock (connect, read, idle and total), and the
timeout error due when one of them has passed."""

from __future__ import annotations

import time
from typing import Optional

from .. import errors
from .config import Timeout

__all__ = ["Deadline"]


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
