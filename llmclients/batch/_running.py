"""Batch runs: :func:`run` answers records concurrently and yields their results.

:class:`BatchRun` is the iterator it returns (worker threads over one
client, the output file, the progress bar, a graceful :meth:`~BatchRun.stop`),
:class:`Stats` its counts, and :func:`retryable` and :func:`retry_after` the
retry policy (which :mod:`llmclients.celery` shares).
"""

from __future__ import annotations

import contextvars
import os
import random
import sys
import threading
import time
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from dataclasses import dataclass, field
from typing import Any, Generator, Iterable, Iterator, Mapping, Optional, Set, Union

from .. import errors
from ._pacing import Pacer, estimate_tokens
from ._records import PathLike, Record, as_records, count_records
from ._results import Result, ResultFile, answered_ids

__all__ = ["BatchRun", "Stats", "retry_after", "retryable", "run"]


def retryable(exc: errors.LLMClientError) -> bool:
    """Whether another attempt may succeed: rate limits, 5xx, timeouts, broken
    connections and streams; not bad requests, credentials or certificates."""
    if isinstance(exc, errors.FallbackError):
        return any(retryable(error) for _, error in exc.errors)
    if isinstance(
        exc, (errors.CertificateError, errors.ProxyAuthenticationError, errors.InvalidResponseError)
    ):
        return False
    if isinstance(exc, errors.HTTPStatusError):
        return isinstance(exc, (errors.RateLimitError, errors.ServerError)) or exc.status_code == 408
    return isinstance(exc, (errors.TransportError, errors.StreamInterruptedError, errors.ProviderError))


def retry_after(exc: errors.LLMClientError) -> Optional[float]:
    """The pause a 429 asks of the whole run, or None if ``exc`` is no 429."""
    if isinstance(exc, errors.FallbackError):
        waits = [retry_after(error) for _, error in exc.errors]
        known = [wait for wait in waits if wait is not None]
        # Only when every client is rate limited does the whole run wait.
        return min(known) if known and len(known) == len(waits) else None
    if isinstance(exc, errors.RateLimitError):
        return exc.retry_after if exc.retry_after is not None else 0.0
    return None


@dataclass
class Stats:
    """Counts of a run so far."""

    total: Optional[int] = None
    skipped: int = 0
    done: int = 0
    failed: int = 0
    tokens: int = 0
    #: The answers' costs added up (``usage.cost``: reported, or from the client's ``prices``); None if none had one.
    cost: Optional[float] = None
    retries: int = 0
    started: float = field(default_factory=time.monotonic)

    @property
    def elapsed(self) -> float:
        return time.monotonic() - self.started

    def summary(self) -> str:
        # The rate of answers only: failures that come back at once would make it absurd.
        rate = f"{self.done / self.elapsed:.1f} req/s, " if self.done and self.elapsed > 0 else ""
        cost = "" if self.cost is None else f"cost {self.cost:.6g}, "
        return (
            f"{self.done} answered, {self.failed} failed, {self.skipped} already answered; "
            f"{self.tokens:,} tokens, {cost}{self.retries} retries, {rate}{self.elapsed:.1f} s"
        )


class BatchRun:
    """The iterator :func:`run` returns: results as they finish, ``stats``
    meanwhile, and :meth:`stop` (for a signal handler, or another thread)."""

    def __init__(
        self,
        client: Any,
        records: Iterable[Record],
        *,
        concurrency: int,
        pacer: Pacer,
        max_attempts: int,
        backoff: float,
        output: Optional[ResultFile],
        skip: Set[str],
        progress: Any,
    ) -> None:
        self.client = client
        self.records = records
        self.concurrency = concurrency
        self.pacer = pacer
        self.max_attempts = max_attempts
        self.backoff = backoff
        self.output = output
        self.skip = skip
        self.progress = progress
        self.stats = Stats()
        self.stopped = pacer.stop
        self._grace: Optional[float] = None
        #: When stop() was first called (monotonic): the grace counts from there.
        self._stopped_at: Optional[float] = None
        #: Set when the grace runs out: the calls in flight are interrupted.
        self._abort = threading.Event()
        self._in_flight: Set[Any] = set()  # the streams being read, to interrupt
        self._in_flight_lock = threading.Lock()
        self._results: Generator[Result, None, None] = self._generate()

    def __iter__(self) -> BatchRun:
        return self

    def __next__(self) -> Result:
        return next(self._results)

    def stop(self, grace: float = 30.0) -> None:
        """Send nothing more; let the calls in flight finish for ``grace``
        seconds, then interrupt them (they end as failures, retried next run),
        even those whose server sends nothing more. A second call shortens
        the grace, still counted from the first (a second Ctrl-C)."""
        if self._stopped_at is None:
            self._stopped_at = time.monotonic()
        self._grace = grace if self._grace is None else min(grace, self._grace)
        self.stopped.set()

    def close(self) -> None:
        """Stop at once (no grace) and release the output file."""
        self.stop(0.0)
        self._results.close()
        # A run never iterated has not reached the generator's own cleanup.
        if self.output is not None:
            self.output.close()
        if self.progress is not None:
            self.progress.close()

    # --- the loop ----------------------------------------------------------------------

    def _generate(self) -> Generator[Result, None, None]:
        pending: Set[Future[Optional[Result]]] = set()
        pool = ThreadPoolExecutor(self.concurrency, thread_name_prefix="llmclients-batch")
        try:
            for record in self.records:
                if self.stopped.is_set():
                    break
                if record.id in self.skip:
                    self.stats.skipped += 1
                    self._show(None)
                    continue
                while len(pending) >= self.concurrency and not self.stopped.is_set():
                    finished, pending = wait(pending, timeout=0.2, return_when=FIRST_COMPLETED)
                    yield from self._finish(finished)
                if self.stopped.is_set():
                    break
                # Each record in a copy of the caller's context (a trace's span, a request id).
                pending.add(pool.submit(contextvars.copy_context().run, self._answer, record))
            yield from self._drain(pending)
        finally:
            self.stopped.set()
            self._abort_in_flight()
            pool.shutdown(wait=True)
            if self.output is not None:
                self.output.close()
            if self.progress is not None:
                self.progress.close()

    def _drain(self, pending: Set[Future[Optional[Result]]]) -> Iterator[Result]:
        while pending:
            # Read at every turn: a later stop() may have shortened the grace.
            stopped_at, grace = self._stopped_at, self._grace or 0.0
            if stopped_at is not None and time.monotonic() >= stopped_at + grace:
                self._abort_in_flight()
            finished, pending = wait(pending, timeout=0.2, return_when=FIRST_COMPLETED)
            yield from self._finish(finished)

    def _finish(self, finished: Iterable[Future[Optional[Result]]]) -> Iterator[Result]:
        for future in finished:
            result = future.result()
            if result is None:
                continue
            if self.output is not None:
                self.output.write(result)
            if result.ok:
                self.stats.done += 1
            else:
                self.stats.failed += 1
            self.stats.tokens += result.tokens
            if result.cost is not None:
                self.stats.cost = (self.stats.cost or 0.0) + result.cost
            self.stats.retries += result.attempts - 1
            self._show(result)
            yield result

    def _show(self, result: Optional[Result]) -> None:
        if self.progress is None:
            return
        self.progress.update(1)
        if result is not None:
            self.progress.set_postfix_str(
                f"failed {self.stats.failed}  tokens {_short(self.stats.tokens)}", False
            )

    # --- one record (in a worker thread) -----------------------------------------------------

    def _answer(self, record: Record) -> Optional[Result]:
        started = time.monotonic()
        result = Result(record.id)
        estimate = estimate_tokens(record)
        while True:
            if not self.pacer.acquire(estimate):
                if result.attempts == 0:
                    return None  # never sent: no line, the next run sends it
                break
            result.attempts += 1
            try:
                self._call(record, result)
            except errors.LLMClientError as exc:
                result.fail(exc)
                self.pacer.observe(getattr(exc, "rate_limits", None))
                self.pacer.correct(estimate, 0)
                if self.stopped.is_set() or result.attempts >= self.max_attempts or not retryable(exc):
                    break
                self._wait_before_retry(exc, result.attempts)
                continue
            self.pacer.correct(estimate, result.tokens or estimate_tokens(record) + len(result.text) // 4)
            break
        result.elapsed = time.monotonic() - started
        return result

    def _abort_in_flight(self) -> None:
        """End the grace: wake every stream blocked in a read (the reading
        thread then raises and closes it)."""
        with self._in_flight_lock:
            self._abort.set()
            streams = list(self._in_flight)
        for stream in streams:
            stream.interrupt()

    def _call(self, record: Record, result: Result) -> None:
        with self.client.stream(record.messages, **record.options) as stream:
            with self._in_flight_lock:
                aborted = self._abort.is_set()
                self._in_flight.add(stream)
            try:
                # Iterated here, not by completion(), to see the end of the
                # grace between deltas too (a stream without a socket to interrupt).
                for _ in stream:
                    if aborted or self._abort.is_set():
                        raise errors.StreamInterruptedError(
                            "the batch was stopped and its grace period ran out", partial_text=stream.text
                        )
            finally:
                with self._in_flight_lock:
                    self._in_flight.discard(stream)
            completion = stream.completion()
            self.pacer.observe(stream.rate_limits)
        result.fill(completion)

    def _wait_before_retry(self, exc: errors.LLMClientError, attempts: int) -> None:
        delay = min(60.0, self.backoff * 2 ** (attempts - 1)) * random.uniform(0.75, 1.25)
        pause = retry_after(exc)
        if pause is not None:
            # A 429 holds every worker, not just this one.
            self.pacer.pause(max(pause, delay))
            return
        self.stopped.wait(delay)


def _short(count: int) -> str:
    for size, suffix in ((1_000_000, "M"), (1_000, "k")):
        if count >= size:
            return f"{count / size:.1f}{suffix}"
    return str(count)


def _progress_bar(enabled: Optional[bool], total: Optional[int]) -> Any:
    """A tqdm bar on stderr (``tqdm.auto``: a widget in a notebook), or None:
    when ``enabled`` is False, when tqdm is not installed, or (``enabled``
    None) when stderr is not a terminal and this is not a notebook."""
    if enabled is False:
        return None
    try:
        from tqdm.auto import tqdm
    except ImportError:
        return None
    if enabled is None and not (sys.stderr.isatty() or "ipykernel" in sys.modules):
        return None
    return tqdm(total=total, unit="req", file=sys.stderr, smoothing=0.1, dynamic_ncols=True)


def run(
    client: Any,
    records: Union[PathLike, Iterable[Union[Record, Mapping[str, Any], str]]],
    *,
    concurrency: int = 8,
    rpm: Optional[float] = None,
    tpm: Optional[float] = None,
    max_attempts: int = 3,
    backoff: float = 1.0,
    output: Optional[PathLike] = None,
    total: Optional[int] = None,
    progress: Optional[bool] = None,
) -> BatchRun:
    """Answer ``records`` with ``client`` (any client, or a :class:`~llmclients.Fallback`),
    ``concurrency`` at a time; iterate the returned :class:`BatchRun` for the
    :class:`Result` of each, in completion order.

    ``records`` is a path (see :func:`read_records`), or an iterable of
    :class:`Record`, of dicts shaped as a JSONL line, or of prompt strings; it
    is read as the run goes, not loaded whole. ``rpm`` and ``tpm`` cap requests
    and tokens per minute. A record is tried up to ``max_attempts`` times when
    its failure may pass (:func:`retryable`), waiting ``backoff`` seconds,
    doubling each time, or as long as a 429 says (the whole run waits then).

    With ``output``, each result is appended to that JSONL file as it comes,
    and the ids already answered there without error are skipped: a rerun
    sends only what is missing or failed. ``progress`` shows a tqdm bar on
    stderr (by default: on a terminal or in a notebook, if tqdm is installed);
    ``total`` is its length (counted when ``records`` is a path).

    ``x-ratelimit-remaining-*`` / ``x-ratelimit-reset-*`` response headers
    are honoured from every stream and status error (their ``rate_limits``).

    Give the client ``pool_size=concurrency`` (requests keeps 10 connections
    per host otherwise) and ``retry=Retry(total=0)``: the batch retries
    itself, and pauses every worker on a 429 where the client would pause one.
    """
    if concurrency < 1 or max_attempts < 1:
        raise errors.InvalidRequestError("concurrency and max_attempts must be at least 1")
    if total is None and progress is not False and isinstance(records, (str, os.PathLike)):
        total = count_records(records)
    skip = answered_ids(output) if output is not None else set()
    result_file = ResultFile(output) if output is not None else None
    return BatchRun(
        client,
        as_records(records),
        concurrency=concurrency,
        pacer=Pacer(rpm, tpm),
        max_attempts=max_attempts,
        backoff=backoff,
        output=result_file,
        skip=skip,
        progress=_progress_bar(progress, total),
    )
