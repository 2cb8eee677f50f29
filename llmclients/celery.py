"""Batches on Celery, for when one machine is not enough: one record per task.

``pip install -e '.[celery]'`` in a clone. In the module the workers import::

    from celery import Celery
    import llmclients
    from llmclients.celery import RedisTokenBucket, batch_task

    app = Celery("answers", broker="redis://localhost:6379/0", backend="redis://localhost:6379/1")
    answer = batch_task(
        app,
        lambda: llmclients.OpenAICompatible(base_url=..., model="llama3.2"),
        bucket=RedisTokenBucket("redis://localhost:6379/0", rpm=600),  # across every node
    )

Then ``celery -A tasks worker --concurrency 8`` on each machine, and, to send a batch::

    sent, skipped = submit(answer, "questions.jsonl")        # skips the ids already answered
    for result in results(answer, "questions.jsonl"): ...    # the results kept by the backend

How it behaves:

* **one record per task**, ``acks_late`` and ``reject_on_worker_lost``: a
  worker that dies mid-stream leaves its record in the queue, and another
  worker answers it (with a redis broker, once its ``visibility_timeout``
  has passed: set it above your longest call);
* the task's id is the record's (``llmclients-batch-<id>``): a task that is
  delivered again after its answer was stored returns that answer without
  asking again (and writes its line to ``output`` if the worker that stored
  it died before writing it), and :func:`submit` skips the ids answered
  without error;
* a **429** becomes ``self.retry(countdown=Retry-After)``, and does not count
  against ``max_attempts``; other failures that may pass (5xx, timeouts,
  broken streams) are retried with backoff up to ``max_attempts``; the rest
  are returned as a result with its ``error``;
* **one client per worker process**, made by ``make_client`` on the first
  task of that process, after the prefork fork: a client made in the parent
  (at import, say) is never used by a child, whose connections are its own;
* with :mod:`llmclients.otel` instrumented, :func:`submit` sends the
  caller's trace context in each task's headers, and the worker's call is a
  child of the span that submitted it;
* a rate across every node is a :class:`RedisTokenBucket` (``bucket=``):
  Celery's own ``rate_limit`` holds per worker node, not across nodes;
* the result is :class:`llmclients.batch.Result`'s dict (``elapsed``: the
  seconds its attempts took, waits for the bucket included), stored in the result
  backend, and appended to ``output`` (a JSONL file) when the workers share a
  file system: just after it is stored, so :func:`results` may return a
  moment before the last line is in the file.
"""

from __future__ import annotations

import os
import random
import sys
import threading
import time
from contextlib import nullcontext
from typing import Any, Callable, ContextManager, Dict, Iterable, Iterator, Mapping, Optional, Tuple, Union

from celery import Celery, Task

from . import errors
from .batch import PathLike, Record, Result, ResultFile, answered_ids, as_records, retry_after, retryable

#: The prefix of a task's id; the record's id follows.
TASK_PREFIX = "llmclients-batch-"


def task_id(record_id: str) -> str:
    return f"{TASK_PREFIX}{record_id}"


class _PerProcess:
    """A value made once per process by ``make``: a child of a fork makes its
    own, never using its parent's (whose sockets it would share)."""

    def __init__(self, make: Callable[[], Any]) -> None:
        self.make = make
        self._pid = -1
        self._value: Any = None
        self._lock = threading.Lock()

    def get(self) -> Any:
        with self._lock:
            if self._pid != os.getpid():
                self._value, self._pid = self.make(), os.getpid()
            return self._value


# One atomic step of the bucket, in redis's clock (the same for every node):
# refill for the time since the last step, take ``cost`` tokens, and return
# how long the caller must wait for them (0 if they were there). Tokens may
# go below zero: a caller's wait is reserved, so callers are served in order.
_RESERVE = """
local rate, capacity, cost = tonumber(ARGV[1]), tonumber(ARGV[2]), tonumber(ARGV[3])
local clock = redis.call('TIME')
local now = tonumber(clock[1]) + tonumber(clock[2]) / 1000000
local state = redis.call('HMGET', KEYS[1], 'tokens', 'at')
local tokens = tonumber(state[1]) or capacity
local at = tonumber(state[2]) or now
tokens = math.min(capacity, tokens + math.max(0, now - at) * rate) - cost
redis.call('HSET', KEYS[1], 'tokens', tostring(tokens), 'at', tostring(now))
redis.call('PEXPIRE', KEYS[1], math.ceil((capacity - tokens) / rate * 1000) + 1000)
if tokens >= 0 then return '0' end
return tostring(-tokens / rate)
"""


class RedisTokenBucket:
    """A rate limit shared by every process of every worker node: a token
    bucket kept in redis (the broker you already run), taken from atomically
    by a Lua script.

    ``rpm`` requests a minute, at most ``burst`` at once (default: one
    second's worth, at least 1). Buckets with the same ``url`` and ``key``
    are one bucket. :meth:`acquire` waits for a token; each caller's wait is
    reserved in redis, so callers are served in the order they asked and the
    rate holds however many ask. Give it to :func:`batch_task` (``bucket=``),
    or call ``bucket.acquire()`` in a task of your own before each request.

    Limits: tokens are requests, not LLM tokens; a caller killed while it
    waits leaves its reserved slot unused; each process opens its own redis
    connection, on first use (after a fork). Needs redis-py (which
    ``celery[redis]`` installs) and redis 5 or newer.
    """

    def __init__(
        self, url: str, *, rpm: float, burst: Optional[float] = None, key: str = "llmclients:rate"
    ) -> None:
        if rpm <= 0:
            raise ValueError(f"rpm must be positive, not {rpm!r}")
        self.url, self.key, self.rpm = url, key, rpm
        self.burst = burst if burst is not None else max(1.0, rpm / 60)
        self._script = _PerProcess(self._load)

    def __repr__(self) -> str:
        return f"RedisTokenBucket(key={self.key!r}, rpm={self.rpm!r}, burst={self.burst!r})"

    def _load(self) -> Any:
        import redis  # celery[redis]'s; a bucket is the only user here

        return redis.Redis.from_url(self.url).register_script(_RESERVE)

    def reserve(self, cost: float = 1.0) -> float:
        """Take ``cost`` tokens; the seconds to wait before using them (0: now)."""
        return float(self._script.get()(keys=[self.key], args=[self.rpm / 60, self.burst, cost]))

    def acquire(self, cost: float = 1.0) -> float:
        """Wait until ``cost`` tokens are this caller's; the seconds waited."""
        wait = self.reserve(cost)
        if wait > 0:
            time.sleep(wait)
        return wait


def batch_task(
    app: Celery,
    make_client: Callable[[], Any],
    *,
    name: str = "llmclients.batch.answer",
    output: Optional[PathLike] = None,
    max_attempts: int = 3,
    backoff: float = 2.0,
    rate_limit: Optional[str] = None,
    bucket: Optional[RedisTokenBucket] = None,
) -> Task:
    """Register on ``app`` the task that answers one record, and return it.

    ``make_client`` makes this process's client (any client, or a
    :class:`~llmclients.Fallback`); give it ``retry=Retry(total=0)`` to leave
    retries to Celery. ``bucket`` (a :class:`RedisTokenBucket`) holds a rate
    across every node: each attempt takes a token before it sends.
    ``rate_limit`` is Celery's own (``"100/m"``), which each worker node
    applies on its own: N nodes send up to N times that rate.
    ``task.client()`` returns this process's client.
    """
    clients = _PerProcess(make_client)
    files = _PerProcess(lambda: ResultFile(output) if output is not None else None)

    def answer(self: Task, record: Dict[str, Any], failures: int = 0, elapsed: float = 0.0) -> Dict[str, Any]:
        started = time.monotonic()
        stored = _stored_success(self, self.request.id)
        if stored is not None:  # delivered again after its answer was stored
            _write_if_missing(files.get(), stored)
            return stored
        item = Record(record["id"], record["messages"], dict(record.get("options") or {}))
        result = Result(item.id, attempts=failures + self.request.retries + 1)
        try:
            if bucket is not None:
                bucket.acquire()
            with _trace_context_of(self.request):
                result.fill(clients.get().complete(item.messages, **item.options))
        except errors.LLMClientError as exc:
            result.fail(exc)
            # The time of the attempts so far goes with the retry: a retry is a new task run.
            spent = elapsed + time.monotonic() - started
            pause = retry_after(exc)
            if pause is not None:  # a rate limit: wait as asked, not a failure of the record
                kwargs = {"failures": failures, "elapsed": spent}
                raise self.retry(countdown=pause or backoff, kwargs=kwargs) from None
            if retryable(exc) and failures + 1 < max_attempts:
                countdown = backoff * 2**failures * random.uniform(0.75, 1.25)
                raise self.retry(countdown=countdown, kwargs={"failures": failures + 1, "elapsed": spent}) from None
        result.elapsed = elapsed + time.monotonic() - started
        value = result.to_dict()
        result_file = files.get()
        if result_file is not None:
            # Stored first: a worker killed between the two leaves a stored
            # answer, which the task delivered again returns and writes; never
            # a line only, which a redelivery would write a second time.
            self.backend.store_result(self.request.id, value, "SUCCESS", request=self.request)
            result_file.write(result)
        return value

    task: Task = app.task(
        answer,
        bind=True,
        name=name,
        shared=False,  # this app's task: Celery would otherwise add it to every app made later

        acks_late=True,
        reject_on_worker_lost=True,
        max_retries=None,
        rate_limit=rate_limit,
    )
    task.client = clients.get
    return task


def _write_if_missing(result_file: Optional[ResultFile], stored: Dict[str, Any]) -> None:
    """Write the line of an answer stored by a worker that died before writing it."""
    if result_file is not None and stored["id"] not in answered_ids(result_file.path):
        result_file.write(Result.from_dict(stored))


def _stored_success(task: Task, identifier: Optional[str]) -> Optional[Dict[str, Any]]:
    """The answer the result backend holds for ``identifier``, if it has one without an error."""
    if not identifier:
        return None
    meta = task.backend.get_task_meta(identifier)
    result = meta.get("result")
    if meta.get("status") == "SUCCESS" and isinstance(result, dict) and result.get("error") is None:
        return result
    return None


def _instrumentation() -> Any:
    """:mod:`llmclients.otel` if it is instrumented: looked up, not imported,
    so that a process that does not trace never imports OpenTelemetry."""
    otel = sys.modules.get("llmclients.otel")
    return otel if otel is not None and otel.instrumented() else None


def _trace_headers() -> Dict[str, Any]:
    """``apply_async``'s ``headers`` carrying the caller's trace context, when traced."""
    otel = _instrumentation()
    headers = otel.context_headers() if otel is not None else {}
    return {"headers": headers} if headers else {}


def _trace_context_of(request: Any) -> ContextManager[Any]:
    """The submitter's trace context, current while the task calls, when traced.
    A worker has a task's headers as attributes of ``request``; an eager
    call, in ``request.headers``."""
    otel = _instrumentation()
    if otel is None:
        return nullcontext()
    headers = dict(getattr(request, "headers", None) or {})
    for name in ("traceparent", "tracestate"):
        value = getattr(request, name, None)
        if value is not None:
            headers.setdefault(name, value)
    return otel.remote_context(headers)  # type: ignore[no-any-return]


def submit(
    task: Task,
    records: Union[PathLike, Iterable[Union[Record, Mapping[str, Any], str]]],
    *,
    skip_answered: bool = True,
) -> Tuple[int, int]:
    """Send one task per record (see :func:`llmclients.batch.read_records`);
    returns ``(sent, skipped)``. Records whose answer the result backend holds
    without an error are skipped: a second ``submit`` sends only what is
    missing or failed."""
    sent = skipped = 0
    for record in as_records(records):
        identifier = task_id(record.id)
        if skip_answered and _stored_success(task, identifier) is not None:
            skipped += 1
            continue
        payload = {"id": record.id, "messages": record.messages, "options": record.options}
        task.apply_async(args=[payload], task_id=identifier, **_trace_headers())
        sent += 1
    return sent, skipped


def results(
    task: Task,
    records: Union[PathLike, Iterable[Union[Record, Mapping[str, Any], str]]],
    *,
    timeout: Optional[float] = None,
) -> Iterator[Dict[str, Any]]:
    """The result of each record, in the records' order, waiting for each up to ``timeout``."""
    for record in as_records(records):
        pending = task.AsyncResult(task_id(record.id))
        try:
            value: Dict[str, Any] = pending.get(timeout=timeout)
        finally:
            _let_go(pending)
        yield value


def _let_go(pending: Any) -> None:
    """Drop ``pending``'s subscription now, while the backend answers: left to
    the garbage collector, Celery 5.6 unsubscribes then, from a redis that may
    be gone by that time, retrying for 20 s wherever the collection happens."""
    pending.backend.remove_pending_result(pending)
    pending.backend = None  # nothing left for AsyncResult.__del__ to do


__all__ = ["TASK_PREFIX", "RedisTokenBucket", "batch_task", "results", "submit", "task_id"]
