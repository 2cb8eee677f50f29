"""Batch jobs: many records answered concurrently, within rate limits, resumable.

::

    from llmclients.batch import run

    with llmclients.OpenAICompatible(base_url=...) as client:
        job = run(client, "questions.jsonl", concurrency=16, rpm=600, output="answers.jsonl")
        for result in job:          # in completion order; each is already in answers.jsonl
            ...
        print(job.stats.summary())

Input (:func:`read_records`) is JSONL, one record per line: ``id`` (optional:
a stable hash of the record stands in), ``messages`` or ``prompt``, and any
call options (``model``, ``temperature``, ``tools``, ...); or plain text, one
prompt per line. Output (:class:`ResultFile`) is JSONL, one line per finished
record, appended and flushed line by line; a rerun with the same ``output``
skips the ids answered there and retries the ones that failed.

Rate limits are two token buckets (:class:`Pacer`): requests and tokens per
minute. Tokens are estimated before a call and corrected from its ``usage``
after. A 429 pauses every worker for ``Retry-After`` (or a backoff), not
just the one that met it. The workers are threads over the one client, so
its connections are reused.
"""

from __future__ import annotations

import hashlib
import json
import os
import random
import re
import sys
import tempfile
import threading
import time
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from dataclasses import dataclass, field
from typing import (
    Any,
    Callable,
    Dict,
    Generator,
    Iterable,
    Iterator,
    List,
    Mapping,
    Optional,
    Set,
    Tuple,
    Union,
)

from . import errors
from .types import Messages

#: Record keys that are not call options.
_RECORD_KEYS = ("id", "messages", "prompt")
#: File suffixes read as JSONL; any other file is plain text, one prompt per line.
JSONL_SUFFIXES = (".jsonl", ".ndjson", ".json")

PathLike = Union[str, "os.PathLike[str]"]


class BadRecordError(errors.InvalidRequestError):
    """A line of the input is not a record; ``line`` is its number (from 1)."""

    def __init__(self, message: str, *, line: int) -> None:
        super().__init__(f"line {line}: {message}")
        self.line = line


# --- records ---------------------------------------------------------------------------


@dataclass
class Record:
    """One request of a batch: its ``id``, ``messages`` (or a prompt) and call ``options``."""

    id: str
    messages: Messages
    options: Dict[str, Any] = field(default_factory=dict)
    #: The input line it came from (0: not from a file).
    line: int = 0


class _Ids:
    """Stable ids for records that bring none: a hash of the record, and of its
    occurrence (the 2nd identical record is another record, with another id)."""

    def __init__(self) -> None:
        self._seen: Dict[str, int] = {}

    def __call__(self, content: Any) -> str:
        canonical = json.dumps(content, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
        digest = hashlib.sha256(canonical.encode("utf-8")).hexdigest()[:16]
        count = self._seen.get(digest, 0)
        self._seen[digest] = count + 1
        return digest if count == 0 else f"{digest}-{count + 1}"


def record_from(data: Any, ids: Callable[[Any], str], line: int = 0) -> Record:
    """A :class:`Record` from a JSON object (or a prompt string); :class:`BadRecordError` if it is none."""
    if isinstance(data, str):
        if not data.strip():
            raise BadRecordError("the prompt is empty", line=line)
        return Record(ids(data), data, line=line)
    if not isinstance(data, Mapping):
        raise BadRecordError(f"a record is a JSON object, not {type(data).__name__}", line=line)
    messages = data.get("messages", data.get("prompt"))
    if ("messages" in data) == ("prompt" in data):
        raise BadRecordError("a record has either 'messages' or 'prompt'", line=line)
    if not isinstance(messages, (str, list)) or not messages:
        raise BadRecordError("'messages' is a list of messages, 'prompt' a non-empty string", line=line)
    record_id = data.get("id")
    if record_id is None:
        record_id = ids({key: value for key, value in data.items() if key != "id"})
    elif isinstance(record_id, bool) or not isinstance(record_id, (str, int)) or record_id == "":
        raise BadRecordError(f"'id' is a non-empty string or an integer, not {record_id!r}", line=line)
    options = {key: value for key, value in data.items() if key not in _RECORD_KEYS}
    return Record(str(record_id), messages, options, line)


def read_records(
    path: PathLike,
    *,
    on_bad: str = "skip",
    report: Optional[Callable[[BadRecordError], None]] = None,
) -> Iterator[Record]:
    """The records of a JSONL file (``.jsonl``, ``.ndjson``, ``.json``) or of a
    text file (one prompt per line; blank lines and ``#`` comments skipped),
    read one line at a time.

    A bad line is passed to ``report`` (by default, printed on stderr with its
    number) and skipped, or with ``on_bad="raise"`` raised as
    :class:`BadRecordError`. Two records with the same ``id`` are an error too:
    the second would overwrite the first's answer.
    """
    if on_bad not in ("skip", "raise"):
        raise errors.InvalidRequestError(f"on_bad is 'skip' or 'raise', not {on_bad!r}")
    report = report or _print_bad_line
    jsonl = os.fspath(path).lower().endswith(JSONL_SUFFIXES)
    ids = _Ids()
    seen: Set[str] = set()
    with open(path, encoding="utf-8") as file:
        for number, line in enumerate(file, 1):
            text = line.strip()
            if not text or (not jsonl and text.startswith("#")):
                continue
            try:
                record = record_from(_parse_line(text, number) if jsonl else text, ids, number)
                if record.id in seen:
                    raise BadRecordError(f"the id {record.id!r} appears twice", line=number)
            except BadRecordError as exc:
                if on_bad == "raise":
                    raise
                report(exc)
                continue
            seen.add(record.id)
            yield record


def _parse_line(text: str, number: int) -> Any:
    try:
        return json.loads(text)
    except ValueError as exc:
        raise BadRecordError(f"not JSON ({exc})", line=number) from None


def _print_bad_line(exc: BadRecordError) -> None:
    print(f"llmclients.batch: skipped {exc}", file=sys.stderr)


def as_records(source: Union[PathLike, Iterable[Union[Record, Mapping[str, Any], str]]]) -> Iterator[Record]:
    """The records of ``source``: a file (:func:`read_records`), or records,
    record dicts and prompts, each given an id as a file's lines would be."""
    if isinstance(source, (str, os.PathLike)):
        yield from read_records(source)
        return
    ids = _Ids()
    for item in source:
        yield item if isinstance(item, Record) else record_from(item, ids)


# --- results ---------------------------------------------------------------------------


@dataclass
class Result:
    """What became of one record: its reply, or its ``error``, as one output line."""

    id: str
    text: str = ""
    finish_reason: Optional[str] = None
    usage: Optional[Dict[str, Any]] = None
    model: Optional[str] = None
    reasoning: str = ""
    tool_calls: List[Dict[str, Any]] = field(default_factory=list)
    #: None, or ``{"type", "message", "partial_text"}``.
    error: Optional[Dict[str, Any]] = None
    attempts: int = 0
    elapsed: float = 0.0

    @property
    def ok(self) -> bool:
        return self.error is None

    def fill(self, completion: Any) -> None:
        """Take the reply's fields from a :class:`~llmclients.Completion`; clear any error."""
        self.text = completion.text
        self.finish_reason = completion.finish_reason
        self.usage = completion.usage.to_dict() if completion.usage else None
        self.model = completion.model
        self.reasoning = completion.reasoning
        self.tool_calls = [call.to_dict() for call in completion.tool_calls]
        self.error = None

    def fail(self, exc: errors.LLMClientError) -> None:
        """Record ``exc`` as the error: its type, message and ``partial_text``."""
        self.error = {"type": type(exc).__name__, "message": str(exc), "partial_text": exc.partial_text}

    @property
    def tokens(self) -> int:
        return int((self.usage or {}).get("total_tokens") or 0)

    def to_dict(self) -> Dict[str, Any]:
        """The output line's object; ``reasoning`` and ``tool_calls`` only when present."""
        line: Dict[str, Any] = {
            "id": self.id,
            "text": self.text,
            "finish_reason": self.finish_reason,
            "usage": self.usage,
            "model": self.model,
        }
        if self.reasoning:
            line["reasoning"] = self.reasoning
        if self.tool_calls:
            line["tool_calls"] = self.tool_calls
        line.update(error=self.error, attempts=self.attempts, elapsed=round(self.elapsed, 3))
        return line


class ResultFile:
    """The output JSONL file: appended one whole line per ``write`` (a single
    ``write(2)`` on an ``O_APPEND`` descriptor, so a ``kill -9`` cannot leave
    half a line), and read back for resuming.

    A torn last line (from a crash of an older writer, or a full disk) is cut
    off when the file is opened, and skipped when it is read.
    """

    def __init__(self, path: PathLike) -> None:
        self.path = os.fspath(path)
        _cut_torn_tail(self.path)
        self._fd = os.open(self.path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)

    def write(self, result: Result) -> None:
        data = (json.dumps(result.to_dict(), ensure_ascii=False) + "\n").encode("utf-8")
        while data:
            data = data[os.write(self._fd, data) :]

    def close(self) -> None:
        if self._fd >= 0:
            os.close(self._fd)
            self._fd = -1

    def __enter__(self) -> ResultFile:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()


def _cut_torn_tail(path: str) -> None:
    """Truncate the file after its last newline: what follows is a torn line."""
    try:
        with open(path, "rb+") as file:
            end = file.seek(0, os.SEEK_END)
            position = end
            while position > 0:
                step = min(4096, position)
                file.seek(position - step)
                block = file.read(step)
                newline = block.rfind(b"\n")
                if newline >= 0:
                    position = position - step + newline + 1
                    break
                position -= step
            if position != end:
                file.truncate(position)
    except FileNotFoundError:
        pass


def iter_results(path: PathLike) -> Iterator[Tuple[int, Dict[str, Any]]]:
    """(byte offset, object) for each whole line of a result file; torn or
    foreign lines are skipped. Read one line at a time."""
    if not os.path.exists(path):
        return
    with open(path, "rb") as file:
        offset = 0
        for line in file:
            start, offset = offset, offset + len(line)
            if not line.endswith(b"\n"):
                break  # a torn last line
            try:
                data = json.loads(line)
            except ValueError:
                continue
            if isinstance(data, dict) and isinstance(data.get("id"), str):
                yield start, data


def answered_ids(path: PathLike) -> Set[str]:
    """The ids with a line without an error in the result file at ``path``."""
    return {data["id"] for _, data in iter_results(path) if data.get("error") is None}


def compact(path: PathLike) -> int:
    """Rewrite the result file with one line per id: its success if it has
    one, else its latest failure, in their order in the file. Returns the
    number of lines kept. Two passes over the file; only offsets are held."""
    path = os.fspath(path)
    keep: Dict[str, Tuple[int, bool]] = {}
    for offset, data in iter_results(path):
        ok = data.get("error") is None
        if ok or not keep.get(data["id"], (0, False))[1]:
            keep[data["id"]] = (offset, ok)
    offsets = {offset for offset, _ in keep.values()}
    directory = os.path.dirname(os.path.abspath(path))
    handle, temporary = tempfile.mkstemp(dir=directory, prefix=".compact-")
    try:
        with os.fdopen(handle, "wb") as out, open(path, "rb") as source:
            position = 0
            for line in source:
                if position in offsets:
                    out.write(line)
                position += len(line)
        os.chmod(temporary, os.stat(path).st_mode & 0o7777)
        os.replace(temporary, path)
    except BaseException:
        if os.path.exists(temporary):
            os.unlink(temporary)
        raise
    return len(keep)


# --- rate limits -----------------------------------------------------------------------


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


# --- the run -------------------------------------------------------------------------------


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
    retries: int = 0
    started: float = field(default_factory=time.monotonic)

    @property
    def elapsed(self) -> float:
        return time.monotonic() - self.started

    def summary(self) -> str:
        rate = (self.done + self.failed) / self.elapsed if self.elapsed > 0 else 0.0
        return (
            f"{self.done} answered, {self.failed} failed, {self.skipped} already answered; "
            f"{self.tokens:,} tokens, {self.retries} retries, {rate:.1f} req/s, {self.elapsed:.1f} s"
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
        the grace."""
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
                pending.add(pool.submit(self._answer, record))
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
        deadline: Optional[float] = None
        while pending:
            if self.stopped.is_set() and deadline is None:
                deadline = time.monotonic() + (self._grace or 0.0)
            if deadline is not None and time.monotonic() >= deadline:
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


def count_records(path: PathLike) -> int:
    """How many lines of the input may be records (for a progress bar's total), without parsing them."""
    jsonl = os.fspath(path).lower().endswith(JSONL_SUFFIXES)
    with open(path, "rb") as file:
        return sum(1 for line in file if line.strip() and (jsonl or not line.lstrip().startswith(b"#")))


__all__ = [
    "BadRecordError",
    "BatchRun",
    "Pacer",
    "Record",
    "Result",
    "ResultFile",
    "Stats",
    "TokenBucket",
    "answered_ids",
    "as_records",
    "compact",
    "count_records",
    "estimate_tokens",
    "iter_results",
    "parse_duration",
    "read_records",
    "record_from",
    "retry_after",
    "retryable",
    "run",
]
