"""Batch pacing: the rate limits a batch keeps (requests and tokens per minute).

:class:`TokenBucket` is one limit; :class:`Pacer` holds a run's two buckets
and the pause that stops every worker after a 429 or an exhausted
``x-ratelimit-*`` header; :func:`parse_duration` reads those headers' reset
values; :func:`estimate_tokens` guesses a call's tokens before it is made.
"""

from __future__ import annotations

import json
import re
import threading
import time
from typing import Mapping, Optional

from .. import errors
from ._records import Record

__all__ = ["Pacer", "TokenBucket", "estimate_tokens", "parse_duration"]


class TokenBucket:
    """``per_minute`` units a minute, at most one second's worth at once.

    ``take`` may drive the level below zero (a call larger than the bucket, or
    a correction after the fact): the debt is paid back before the next call.
    Not thread-safe by itself; :class:`Pacer` holds the lock.
    """

    def __init__(self, per_minute: float) -> None:
        if not per_minute > 0:
            raise errors.InvalidRequestError(f"a rate per minute must be positive, not {per_minute!r}")
        self.rate = per_minute / 60.0
        self.capacity = max(1.0, self.rate)
        # One unit to start with, not a full bucket: a minute's count stays
        # within per_minute from the first second on.
        self.level = 1.0
        self._updated = time.monotonic()

    def _refill(self, now: float) -> None:
        self.level = min(self.capacity, self.level + (now - self._updated) * self.rate)
        self._updated = now

    def wait_time(self, amount: float, now: float) -> float:
        """Seconds until ``amount`` (at most a full bucket) can be taken."""
        self._refill(now)
        missing = min(amount, self.capacity) - self.level
        return max(0.0, missing / self.rate)

    def take(self, amount: float) -> None:
        self.level -= amount

    def set_remaining(self, remaining: float, now: float) -> None:
        """The service says only ``remaining`` are left: never hold more than that."""
        self._refill(now)
        self.level = min(self.level, remaining)


_DURATION = re.compile(r"(\d+(?:\.\d+)?)(ms|h|m|s)")
_UNIT_SECONDS = {"h": 3600.0, "m": 60.0, "s": 1.0, "ms": 0.001}


def parse_duration(value: str) -> Optional[float]:
    """Seconds from a rate-limit reset value: ``6m0s``, ``1.5s``, ``200ms``,
    ``1h2m3s`` (OpenAI, Groq) or a bare number of seconds; None if neither."""
    value = value.strip()
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    parts = _DURATION.findall(value)
    if not parts or "".join(number + unit for number, unit in parts) != value:
        return None
    return sum(float(number) * _UNIT_SECONDS[unit] for number, unit in parts)


class Pacer:
    """The rate limits a batch keeps, shared by its workers: a request bucket,
    a token bucket, and a pause that holds every worker (after a 429, or when
    ``x-ratelimit-remaining-*`` reaches 0)."""

    def __init__(
        self,
        rpm: Optional[float] = None,
        tpm: Optional[float] = None,
        *,
        stop: Optional[threading.Event] = None,
    ) -> None:
        self.requests = TokenBucket(rpm) if rpm else None
        self.tokens = TokenBucket(tpm) if tpm else None
        self.stop = stop or threading.Event()
        self.paused_until = 0.0
        self._lock = threading.Lock()

    def acquire(self, tokens: int) -> bool:
        """Wait until a call estimated at ``tokens`` may go, and count it;
        False if the batch was stopped meanwhile."""
        while not self.stop.is_set():
            with self._lock:
                now = time.monotonic()
                delay = self.paused_until - now
                for bucket, amount in ((self.requests, 1), (self.tokens, tokens)):
                    if bucket is not None:
                        delay = max(delay, bucket.wait_time(amount, now))
                if delay <= 0:
                    if self.requests is not None:
                        self.requests.take(1)
                    if self.tokens is not None:
                        self.tokens.take(tokens)
                    return True
            self.stop.wait(delay)
        return False

    def correct(self, estimate: int, actual: int) -> None:
        """The call used ``actual`` tokens, not the ``estimate`` taken."""
        if self.tokens is not None:
            with self._lock:
                self.tokens.take(actual - estimate)

    def pause(self, seconds: float) -> None:
        """Hold every worker for ``seconds`` from now (a longer pause already set stays)."""
        with self._lock:
            self.paused_until = max(self.paused_until, time.monotonic() + seconds)

    def observe(self, headers: Optional[Mapping[str, str]]) -> None:
        """Honour ``x-ratelimit-remaining-requests/-tokens`` and
        ``x-ratelimit-reset-requests/-tokens`` response headers."""
        if not headers:
            return
        for kind, bucket in (("requests", self.requests), ("tokens", self.tokens)):
            remaining = _number(headers.get(f"x-ratelimit-remaining-{kind}"))
            if remaining is None:
                continue
            reset = parse_duration(headers.get(f"x-ratelimit-reset-{kind}") or "")
            if remaining <= 0 and reset:
                self.pause(reset)
            elif bucket is not None:
                with self._lock:
                    bucket.set_remaining(remaining, time.monotonic())


def _number(value: Optional[str]) -> Optional[float]:
    try:
        return float(value) if value is not None else None
    except ValueError:
        return None


def estimate_tokens(record: Record) -> int:
    """Tokens a call will take before it is made: about 4 characters a token
    of the messages, plus the completion's limit when the record sets one."""
    if isinstance(record.messages, str):
        size = len(record.messages)
    else:
        size = len(json.dumps(record.messages, ensure_ascii=False, default=str))
    limit = record.options.get("max_completion_tokens") or record.options.get("max_tokens") or 0
    return size // 4 + 1 + (limit if isinstance(limit, int) else 0)
