"""The threads of :mod:`llmclients.aio`: they open streams (and read those the
loop cannot), reused, a few at a time. Internal to the package.

A job is anything with ``run()`` and ``fail(error)`` (a
:class:`~llmclients.aio._channel.Channel`): the pool knows nothing else of
it, and the channel reports its response's arrival through a callback
(:meth:`Threads.opened`), so the two modules do not import each other.
"""

from __future__ import annotations

import itertools
import os
import threading
import time
from collections import deque
from typing import Deque, List, Optional, Protocol, Set, Tuple

__all__ = ["OPENERS", "STALL", "THREADS", "THREAD_IDLE", "THREAD_NAME", "Job", "Threads", "thread_numbers"]

#: Streams sent at once (each from when a thread takes it until its response
#: headers arrive), unless they stall (see STALL).
OPENERS = 1
#: Seconds without a stream taken to be sent, while some wait, after which
#: every waiting stream gets a thread of its own. Not less: a burst of streams
#: keeps the threads from the GIL for tens of milliseconds (measured with 0.02:
#: 200 streams opened at once started 29 threads, which slowed each other).
STALL = 0.05
#: Seconds an idle thread waits for work before it ends.
THREAD_IDLE = 0.2
#: The threads are named THREAD_NAME-<n>, the one that starts them THREAD_NAME-launcher.
THREAD_NAME = "llmclients-aio"

thread_numbers = itertools.count(1)


class Job(Protocol):
    """What a thread runs: a stream's channel."""

    def run(self) -> None: ...

    def fail(self, error: BaseException) -> None: ...


class Threads:
    """The threads that open streams (and read those the loop cannot): reused,
    :data:`OPENERS` at a time sending requests, and one for every waiting
    stream when they stall.

    Sending a request is most of a millisecond of ``requests`` under the
    GIL, in three or four stretches between system calls; each stretch takes
    the GIL from the loop reading the streams already open. Measured with 200
    streams opened at once (``benchmarks/bench_aio.py``), the p99 delay of
    the deltas was 60–130 ms with a thread apiece sending, 27–54 ms with
    three or four senders, 33–57 ms with two and 3–22 ms with one, for the
    same wall time within noise (1.46–1.69× the benchmark's floor with one
    sender, 1.55–1.74× with two, alternated in one session after the
    push-style decoders; before them two senders had looked 10% faster).
    So a stream is *opening* from the moment a thread
    takes it until its response headers arrive, and only :data:`OPENERS`
    streams open at once. The wait for the
    first delta (the model's time to its first token) is not CPU work: a
    thread waiting for it has stopped opening, and the next stream goes to
    an idle thread, or a new one.

    No stream waits behind a slow server, either: when no stream has been
    taken for :data:`STALL` seconds while some wait (the servers are slow to
    send their headers), every waiting stream gets a thread of its own.
    Threads are started by a *launcher* thread, never by the loop:
    ``Thread.start()`` waits for the new thread to run, which under the GIL
    can mean through its request's set-up. Idle threads, and the launcher,
    end after :data:`THREAD_IDLE` seconds.
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._work = threading.Condition(self._lock)  # idle workers wait here
        self._launch = threading.Condition(self._lock)  # the launcher waits here
        self._jobs: Deque[Tuple[float, Job]] = deque()  # (when submitted, stream to open)
        self._opening: Set[Job] = set()  # taken, and their headers not yet here
        self._workers = 0
        self._idle = 0
        self._taken_at = 0.0  # when a stream was last taken
        self._launching = False

    @property
    def busy(self) -> int:
        """Threads opening or reading a stream."""
        with self._lock:
            return self._workers - self._idle

    def submit(self, job: Job) -> None:
        """Open ``job``'s stream on a thread; never blocks."""
        with self._lock:
            self._jobs.append((time.monotonic(), job))
            if self._idle and len(self._opening) < OPENERS:
                self._work.notify()
                return
            if self._launching:
                self._launch.notify()
                return
            self._launching = True
        try:
            threading.Thread(target=self._launcher, name=f"{THREAD_NAME}-launcher", daemon=True).start()
        except BaseException:
            with self._lock:
                self._launching = False
                self._jobs.pop()
            raise

    def opened(self, job: Job) -> None:
        """``job``'s response headers arrived (or it ended): the next stream may open."""
        with self._lock:
            if job not in self._opening:
                return
            self._opening.discard(job)
            if self._jobs:
                if self._idle:
                    self._work.notify()
                else:
                    self._launch.notify()

    def _take(self) -> Job:
        job = self._jobs.popleft()[1]
        self._opening.add(job)
        self._taken_at = time.monotonic()
        return job

    def _launcher(self) -> None:
        while True:
            with self._lock:
                jobs = self._to_start()
                if jobs is None:
                    self._launching = False
                    return
                self._workers += len(jobs)
            for job in jobs:
                self._start_worker(job)

    def _to_start(self) -> Optional[List[Job]]:
        """Wait until threads are wanted: the streams to give them; None after
        :data:`THREAD_IDLE` seconds without."""
        idle_since = time.monotonic()
        while True:
            now = time.monotonic()
            if not self._jobs:
                if now - idle_since >= THREAD_IDLE:
                    return None
                self._launch.wait(THREAD_IDLE - (now - idle_since))
                continue
            idle_since = now
            if len(self._opening) < OPENERS and not self._idle:
                return [self._take() for _ in range(min(len(self._jobs), OPENERS - len(self._opening)))]
            stalled = now - max(self._taken_at, self._jobs[0][0])
            if stalled >= STALL:
                return [self._take() for _ in range(len(self._jobs))]
            self._launch.wait(STALL - stalled)

    def _start_worker(self, job: Job) -> None:
        name = f"{THREAD_NAME}-{next(thread_numbers)}"
        try:
            threading.Thread(target=self._worker, args=(job,), name=name, daemon=True).start()
        except BaseException as exc:  # "can't start new thread": its consumer gets the error
            with self._lock:
                self._workers -= 1
            self.opened(job)
            job.fail(exc)

    def _worker(self, job: Optional[Job]) -> None:
        try:
            while job is not None:
                try:
                    job.run()
                finally:
                    self.opened(job)
                job = self._next()
        except BaseException:  # run() reports its errors to its consumer: this is a bug
            with self._lock:
                self._workers -= 1
            raise

    def _next(self) -> Optional[Job]:
        """The next stream to open, once one may; None (the thread ends) after
        :data:`THREAD_IDLE` seconds without."""
        with self._lock:
            self._idle += 1
            idle_until = time.monotonic() + THREAD_IDLE
            while not (self._jobs and len(self._opening) < OPENERS):
                left = idle_until - time.monotonic()
                if left <= 0:
                    self._idle -= 1
                    self._workers -= 1
                    return None
                self._work.wait(left)
            self._idle -= 1
            return self._take()

    def _after_fork(self) -> None:
        # The child has none of the parent's threads, and its jobs belong to the parent's loops.
        self.__init__()  # type: ignore[misc]


THREADS = Threads()
if hasattr(os, "register_at_fork"):  # not on Windows
    os.register_at_fork(after_in_child=THREADS._after_fork)
