"""asyncio wrappers around the blocking clients.

::

    from llmclients.aio import AsyncClient

    aclient = AsyncClient(llmclients.OpenAICompatible(base_url=...))
    async with aclient.stream("Write a haiku") as stream:
        async for text in stream:
            print(text, end="")
    reply = await aclient.complete("Hi")
    conv = aclient.conversation()
    await conv.send("Hi")

Options, return values, attributes and exception types are the blocking API's.
A request is sent when its stream is first awaited (``await``, ``async with``
or ``async for``); errors that the blocking ``stream()`` raises at once are
raised there.

Threading model
---------------
A stream is opened on a **daemon thread**, which sends the request
(``requests`` blocks until the response headers arrive) and reads up to the
first delta: until then a failed attempt may be retried, which means waiting.
Then, if the body is chunked (as streamed replies are) and the loop can watch
sockets, the thread hands the stream to the **event loop** and is free: the
loop watches the socket (``add_reader``) and, whenever it is readable, reads
what has arrived through the same body reader and decoders, without blocking
(:meth:`~llmclients.stream.Stream.set_nonblocking`); the read, idle and total
timeouts run on loop timers. A body the loop cannot read so (close-delimited
or sized, or a loop without ``add_reader``, as on Windows' proactor) is read by
its thread to the end.

The threads are shared by all clients and loops, and reused. Sending a
request is CPU work under the GIL, and more threads at it take the GIL from
the loop, whose deltas then wait: :data:`OPENERS` (one) stream at a time is
sent, until its response headers arrive. Waiting for the first delta is
not, and happens on as many threads as streams wait for theirs. No stream
waits behind a slow server: when no stream has been sent for :data:`STALL`
seconds while some wait, every waiting stream gets a thread of its own. So
there are as many threads as the streams being opened (or read by a thread)
at once need, never more than ``max_streams`` per client, and idle ones end
after :data:`THREAD_IDLE` seconds.

Why not a thread per stream throughout: every delta was then a thread
wake-up and a hand-off of the GIL to the loop, which cost more CPU than the
delta itself (measured: 200 paced streams took 1.0–1.2 s of CPU that way, 0.65–0.7 s
read by the loop). Why not an executor: a pool of N workers (the default
executor has ``min(32, cpus + 4)``) makes stream N+1 wait until one of the
first N *ends*.

Bounds:

* **streams**: at most ``max_streams`` (default :data:`DEFAULT_MAX_STREAMS`)
  open at once per :class:`AsyncClient`, so busy on at most that many threads. A
  stream opened beyond that waits, without blocking the loop, first come
  first served, until another stream has ended; ``max_streams=None`` removes
  the bound.
* **memory**: between the reader and the consumer sit at most ``buffer_size``
  deltas (default :data:`DEFAULT_BUFFER_SIZE`). When they are not taken, the
  reader (the thread, or the loop, which stops watching the socket) waits
  before reading on, so a slow consumer slows the reading (and, through TCP,
  the server) instead of the reply piling up in memory.

A thread's hand-off is batched: it appends to the buffer under a lock and
wakes the loop only when the consumer is waiting on an empty buffer; a
consumer that wakes takes every delta buffered meanwhile; and the wake-ups of
all the streams of one loop that arrive while it is busy share one
``call_soon_threadsafe``.

Cancellation
------------
Closing an :class:`AsyncStream` — ``aclose()``, leaving ``async with``,
dropping the stream (as a ``break`` out of ``async for stream ...`` does),
cancelling the task that awaits it, an ``asyncio.wait_for`` timeout — returns
at once and stops the reading. A stream the loop reads is closed there and
then (its socket unwatched first). A stream its thread reads: the buffer is
dropped, and the loop shuts the stream's socket down, which wakes a thread
blocked in ``recv``; the thread then closes its
:class:`~llmclients.stream.Stream` itself. (``Stream.close()`` must not be
called from the loop then: closing the generator that another thread is
running raises ``ValueError``.) The socket is shut down only while the
response still owns its connection, never once it has gone back to the pool
where another request may be using it.

Until the response headers have arrived the socket is inside ``requests``:
a stream cancelled then releases its caller at once; its thread finishes the
request (within the client's connect and read timeouts, and its total) and
then closes the response without reading it. A stream cancelled before a thread took it sends
no request at all.

Event loops
-----------
A stream belongs to the loop that opened it. Nothing here starts, runs or
nests a loop, so it works inside one that is already running (Jupyter). The
threads are daemons and never block interpreter exit. A stream dropped with
its loop is closed like any dropped stream; one still referenced stops reading:
the loop's reading ends with the loop, and a thread stops once it finds the
loop closed (when it would wake it, or, with its buffer full, within
:data:`LOOP_CHECK_INTERVAL`).

Many concurrent streams to one host need as many connections: a client's own
session keeps its ``pool_size`` (100) per host for reuse, and closes those
beyond it as their streams end. A ``session`` you pass in keeps requests' 10
unless you mount an ``HTTPAdapter(pool_maxsize=...)`` on it; set
``session.trust_env = False`` on it unless you need requests to read proxies
and ``~/.netrc`` from the environment: it does so on every request.

``benchmarks/bench_aio.py`` measures throughput, delay and cancellation.
"""

from __future__ import annotations

import asyncio
import itertools
import os
import threading
import time
import weakref
from collections import deque
from typing import (
    Any,
    AsyncIterator,
    Callable,
    Deque,
    Dict,
    Generator,
    List,
    Mapping,
    Optional,
    Set,
    Tuple,
    Union,
)

from .conversation import Conversation
from .events import Event, TextDelta
from .provider import Provider
from .providers import get_client
from .stream import Stream, completion_of
from .types import Choice, Completion, Message, Messages, ToolCall, Usage

__all__ = [
    "DEFAULT_BUFFER_SIZE",
    "DEFAULT_MAX_STREAMS",
    "AsyncClient",
    "AsyncConversation",
    "AsyncStream",
]

#: Streams one AsyncClient keeps open at once; more wait for a slot.
DEFAULT_MAX_STREAMS = 256
#: Deltas a reading thread may hold ahead of its consumer.
DEFAULT_BUFFER_SIZE = 64
#: Seconds between checks, by a thread waiting for room, that its loop still runs.
LOOP_CHECK_INTERVAL = 0.5
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

_thread_numbers = itertools.count(1)


def _resolve(waiter: asyncio.Future[None]) -> None:
    if not waiter.done():  # a cancelled waiter needs no result
        waiter.set_result(None)


class _Slots:
    """At most ``limit`` threads at once, waited for asynchronously.

    Not an ``asyncio.Semaphore``: that belongs to one loop, and a client may
    serve several (``asyncio.run`` per test, a loop per thread). ``release``
    is called by the reading threads.
    """

    def __init__(self, limit: Optional[int]) -> None:
        if limit is not None and limit < 1:
            raise ValueError("max_streams must be at least 1, or None")
        self.limit = limit
        self._free = limit or 0
        self._lock = threading.Lock()
        self._waiters: Deque[Tuple[asyncio.AbstractEventLoop, asyncio.Future[None]]] = deque()

    async def acquire(self) -> None:
        if self.limit is None:
            return
        loop = asyncio.get_running_loop()
        with self._lock:
            if self._free and not self._waiters:
                self._free -= 1
                return
            waiter: asyncio.Future[None] = loop.create_future()
            self._waiters.append((loop, waiter))
        try:
            await waiter
        except asyncio.CancelledError:
            with self._lock:
                granted = (loop, waiter) not in self._waiters
                if not granted:
                    self._waiters.remove((loop, waiter))
            if granted:  # release() chose us before the cancellation: pass the slot on
                self.release()
            raise

    def release(self) -> None:
        if self.limit is None:
            return
        with self._lock:
            while self._waiters:
                loop, waiter = self._waiters.popleft()
                try:
                    loop.call_soon_threadsafe(_resolve, waiter)
                    return
                except RuntimeError:  # its loop is closed: nobody is left to take the slot
                    continue
            self._free += 1


class _Waker:
    """Resolves one loop's waiters in batches: one ``call_soon_threadsafe`` for
    every delta that arrives while the loop is busy, not one per delta.

    Each ``call_soon_threadsafe`` writes to the loop's self-pipe: a system call
    and a hand-off of the GIL, which under load cost more than the delta.
    """

    def __init__(self, loop: asyncio.AbstractEventLoop) -> None:
        # Weak: the registry of wakers must not keep closed loops alive.
        self._loop = weakref.ref(loop)
        self._lock = threading.Lock()
        self._pending: List[asyncio.Future[None]] = []

    def wake(self, waiter: asyncio.Future[None]) -> bool:
        """Resolve ``waiter`` soon, from any thread; False if the loop is closed."""
        with self._lock:
            self._pending.append(waiter)
            if len(self._pending) > 1:
                return True  # the batch is already scheduled
        loop = self._loop()
        try:
            if loop is None:
                raise RuntimeError("the loop is gone")
            loop.call_soon_threadsafe(self._run)
        except RuntimeError:  # the loop is closed
            with self._lock:
                self._pending.clear()
            return False
        return True

    def _run(self) -> None:
        with self._lock:
            pending, self._pending = self._pending, []
        for waiter in pending:
            _resolve(waiter)


_wakers: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, _Waker] = weakref.WeakKeyDictionary()
_wakers_lock = threading.Lock()


def _waker_of(loop: asyncio.AbstractEventLoop) -> _Waker:
    with _wakers_lock:
        waker = _wakers.get(loop)
        if waker is None:
            waker = _wakers[loop] = _Waker(loop)
        return waker


class _Threads:
    """The threads that open streams (and read those the loop cannot): reused,
    :data:`OPENERS` at a time sending requests, and one for every waiting
    stream when they stall.

    Sending a request is about a millisecond of ``requests`` under the GIL,
    in three or four stretches between system calls; each stretch takes the
    GIL from the loop reading the streams already open. Measured with 200
    streams opened at once (``benchmarks/bench_aio.py``), the p99 delay of
    the deltas was 60–130 ms with a thread apiece sending, 14–56 ms with two
    senders and 8–37 ms with one, for about the same wall time. So a stream
    is *opening* from the moment a thread takes it until its response headers
    arrive, and only :data:`OPENERS` streams open at once. The wait for the
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
        self._jobs: Deque[Tuple[float, _Channel]] = deque()  # (when submitted, stream to open)
        self._opening: Set[_Channel] = set()  # taken, and their headers not yet here
        self._workers = 0
        self._idle = 0
        self._taken_at = 0.0  # when a stream was last taken
        self._launching = False

    @property
    def busy(self) -> int:
        """Threads opening or reading a stream."""
        with self._lock:
            return self._workers - self._idle

    def submit(self, channel: _Channel) -> None:
        """Open ``channel``'s stream on a thread; never blocks."""
        with self._lock:
            self._jobs.append((time.monotonic(), channel))
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

    def opened(self, channel: _Channel) -> None:
        """``channel``'s response headers arrived (or it ended): the next stream may open."""
        with self._lock:
            if channel not in self._opening:
                return
            self._opening.discard(channel)
            if self._jobs:
                if self._idle:
                    self._work.notify()
                else:
                    self._launch.notify()

    def _take(self) -> _Channel:
        channel = self._jobs.popleft()[1]
        self._opening.add(channel)
        self._taken_at = time.monotonic()
        return channel

    def _launcher(self) -> None:
        while True:
            with self._lock:
                channels = self._to_start()
                if channels is None:
                    self._launching = False
                    return
                self._workers += len(channels)
            for channel in channels:
                self._start_worker(channel)

    def _to_start(self) -> Optional[List[_Channel]]:
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

    def _start_worker(self, channel: _Channel) -> None:
        name = f"{THREAD_NAME}-{next(_thread_numbers)}"
        try:
            threading.Thread(target=self._worker, args=(channel,), name=name, daemon=True).start()
        except BaseException as exc:  # "can't start new thread": its consumer gets the error
            with self._lock:
                self._workers -= 1
            self.opened(channel)
            channel.fail(exc)

    def _worker(self, channel: Optional[_Channel]) -> None:
        try:
            while channel is not None:
                try:
                    channel.run()
                finally:
                    self.opened(channel)
                channel = self._next()
        except BaseException:  # run() reports its errors to its consumer: this is a bug
            with self._lock:
                self._workers -= 1
            raise

    def _next(self) -> Optional[_Channel]:
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


_threads = _Threads()
if hasattr(os, "register_at_fork"):  # not on Windows
    os.register_at_fork(after_in_child=_threads._after_fork)


class _Channel:
    """One stream's reading thread, and what it shares with the event loop.

    Every attribute the two sides share is read and written under ``_cond``.
    The thread side is :meth:`run`; the loop side is :meth:`opened`,
    :meth:`take` and :meth:`cancel` (which any thread may call).
    """

    def __init__(
        self,
        loop: asyncio.AbstractEventLoop,
        open_stream: Callable[[], Stream],
        limit: int,
        on_exit: Callable[[], None],
    ) -> None:
        self.loop = loop
        self.limit = limit
        self._waker = _waker_of(loop)
        self._open_stream = open_stream
        self._on_exit = on_exit
        self._cond = threading.Condition(threading.Lock())
        self.items: Deque[Union[str, Event]] = deque()
        #: The blocking stream, once its response has arrived.
        self.stream: Optional[Stream] = None
        #: True once the thread has put its last delta (or its error).
        self.finished = False
        self.error: Optional[BaseException] = None
        self.cancelled = False
        self._waiter: Optional[asyncio.Future[None]] = None
        self._room_wanted = False  # the thread waits for the consumer to take a delta
        # Once the loop reads the stream (see _hand_over), only the loop's thread
        # touches what follows.
        self.pumping = False
        self._watches_sockets = _can_watch_sockets(loop)
        self._fd = -1
        self._watching = False
        self._timer: Optional[asyncio.TimerHandle] = None
        self._timer_at = 0.0
        self._in_pump = False
        self._pump_ended = False

    # --- the reading thread ----------------------------------------------------------

    def fail(self, error: BaseException) -> None:
        """The stream could not be given a thread: its consumer gets ``error``."""
        self._end(error)
        self._on_exit()

    def run(self) -> None:
        stream: Optional[Stream] = None
        try:
            with self._cond:
                if self.cancelled or self.loop.is_closed():  # while it waited for a thread: send nothing
                    raise _Cancelled()
            stream = self._open_stream()
            # Every event goes through the buffer: its reader may want events()
            # even if it asks only after the stream has begun.
            stream.state.emit = True
            self._attach(stream)
            for text in stream:
                if not self._put(text) or self._hand_over(stream):
                    return
            self._end(None)
        except BaseException as exc:  # whatever ended the thread, its consumer must learn of it
            self._end(exc)
        finally:
            if not self.pumping:
                if stream is not None:
                    stream.close()
                self._on_exit()

    def _attach(self, stream: Stream) -> None:
        """Publish the opened stream and the socket that cancel() shuts down."""
        with self._cond:
            self.stream = stream
            cancelled = self.cancelled
            waiter = self._take_waiter()
        _threads.opened(self)
        if cancelled:  # closed while the request was under way: read nothing
            raise _Cancelled()
        self._wake(waiter)

    def _put(self, text: str) -> bool:
        """Buffer one delta, waiting while the buffer is full; False once cancelled."""
        with self._cond:
            while len(self.items) >= self.limit and not self.cancelled:
                if self.loop.is_closed():  # nobody will ever take these deltas
                    self.cancelled = True
                    break
                self._room_wanted = True
                self._cond.wait(LOOP_CHECK_INTERVAL)
                self._room_wanted = False
            if self.cancelled:
                return False
            self.items.append(text)
            waiter = self._take_waiter()
        return self._wake(waiter)

    def _hand_over(self, stream: Stream) -> bool:
        """After the first delta (retries are over): let the loop read the rest,
        when its socket is readable and without blocking; False if it cannot."""
        set_nonblocking = getattr(stream, "set_nonblocking", None)
        sock = set_nonblocking() if self._watches_sockets and set_nonblocking is not None else None
        if sock is None:
            return False
        with self._cond:
            if self.cancelled:
                raise _Cancelled()
            self.pumping = True
        try:
            self.loop.call_soon_threadsafe(self._start_pump, sock.fileno())
        except RuntimeError:  # the loop is closed: nobody will read on
            with self._cond:
                self.pumping = False
                self.cancelled = True
            raise _Cancelled() from None
        return True

    def _end(self, error: Optional[BaseException]) -> None:
        with self._cond:
            self.finished = True
            if not isinstance(error, _Cancelled):
                self.error = error
            waiter = self._take_waiter()
        self._wake(waiter)

    def _take_waiter(self) -> Optional[asyncio.Future[None]]:
        waiter, self._waiter = self._waiter, None
        return waiter

    def _wake(self, waiter: Optional[asyncio.Future[None]]) -> bool:
        if waiter is None or self._waker.wake(waiter):
            return True
        with self._cond:  # the loop is closed: nobody will take what we read
            self.cancelled = True
        return False

    # --- the event loop: reading a stream handed over --------------------------------

    def _start_pump(self, fd: int) -> None:
        if self._pump_ended:  # cancelled meanwhile
            return
        self._fd = fd
        self._pump()

    def _pump(self) -> None:
        """Take the deltas that have arrived, then wait for the socket again
        (or the stream's next timeout); stop watching while the buffer is full."""
        stream = self.stream
        if stream is None or self._pump_ended:
            return
        error: Optional[BaseException] = None
        ended = False
        self._in_pump = True
        try:
            while True:
                if len(self.items) >= self.limit:
                    self._unwatch()
                    self._room_wanted = True
                    break
                text = next(stream)
                if not text:
                    self._watch(stream.wake_at)
                    break
                self.items.append(text)
        except StopIteration:
            ended = True
        except BaseException as exc:  # the consumer raises it
            ended, error = True, exc
        finally:
            self._in_pump = False
        if ended:
            self._end_pump(error)
        waiter = self._take_waiter()
        if waiter is not None:
            _resolve(waiter)

    def _watch(self, wake_at: Optional[float]) -> None:
        if not self._watching:
            self.loop.add_reader(self._fd, self._pump)
            self._watching = True
        # One timer at a time: a later deadline lets it fire early, and the
        # pump then sets the next one.
        if wake_at is not None and (self._timer is None or wake_at < self._timer_at):
            if self._timer is not None:
                self._timer.cancel()
            self._timer_at = wake_at
            self._timer = self.loop.call_at(self.loop.time() + wake_at - time.monotonic(), self._on_timer)

    def _on_timer(self) -> None:
        self._timer = None
        self._pump()

    def _unwatch(self) -> None:
        if self._watching:
            self.loop.remove_reader(self._fd)
            self._watching = False

    def _end_pump(self, error: Optional[BaseException]) -> None:
        """The stream ended, failed or was cancelled: stop watching, close it."""
        if self._pump_ended:
            return
        if self._in_pump:  # finalised from inside its own read: close it just after
            self.loop.call_soon(self._end_pump, error)
            return
        self._unwatch()  # before the socket closes: its number may be reused at once
        if self._timer is not None:
            self._timer.cancel()
        self._close_pumped(error)

    def _close_pumped(self, error: Optional[BaseException]) -> None:
        self._pump_ended = True
        with self._cond:
            self.finished = True
            if not self.cancelled:
                self.error = error
        if self.stream is not None:
            self.stream.close()
        self._on_exit()

    # --- the event loop --------------------------------------------------------------

    async def opened(self) -> Stream:
        """Wait for the response; raise what the blocking ``stream()`` raised."""
        while True:
            with self._cond:
                if self.stream is not None:
                    return self.stream
                if self.finished:
                    error, self.error = self.error, None
                    raise error or RuntimeError("the stream was closed before its response arrived")
                waiter = self._waiter = self.loop.create_future()
            await waiter

    def take(self) -> Tuple[Union[str, Event, None], Optional[asyncio.Future[None]]]:
        """``(delta, None)``; ``(None, None)`` at the reply's end; or, while the
        buffer is empty, ``(None, future)``: await it and take again. Raises the
        thread's error, once.

        Not a coroutine: a consumer that keeps up takes a delta per call
        without the cost of one.
        """
        with self._cond:
            if self.items:
                if self._room_wanted:
                    if self.pumping:
                        self._room_wanted = False
                        self.loop.call_soon(self._pump)
                    else:
                        self._cond.notify()
                return self.items.popleft(), None
            if self.finished:
                error, self.error = self.error, None
                if error is not None:
                    raise error
                return None, None
            waiter = self._waiter = self.loop.create_future()
            return None, waiter

    @property
    def buffered(self) -> int:
        with self._cond:
            return len(self.items)

    def cancel(self) -> None:
        """Stop reading and close the connection; returns at once, from any thread."""
        with self._cond:
            if self.cancelled:
                return
            self.cancelled = True
            self.items.clear()
            self._cond.notify()  # a thread waiting for room
            pumping = self.pumping
            if not pumping and self.stream is not None and not self.finished:
                self.stream.interrupt()
        if pumping:
            self._stop_pump()

    def _stop_pump(self) -> None:
        """Close a stream the loop reads, in the loop's thread."""
        try:
            in_loop = asyncio.get_running_loop() is self.loop
        except RuntimeError:
            in_loop = False
        if in_loop:
            self._end_pump(None)
            return
        try:
            self.loop.call_soon_threadsafe(self._end_pump, None)
        except RuntimeError:  # the loop is closed, so not reading: close it from here
            self._close_pumped(None)


class _Cancelled(Exception):
    """Ends a thread whose stream was closed before its response arrived."""


def _can_watch_sockets(loop: asyncio.AbstractEventLoop) -> bool:
    """False for loops without ``add_reader`` (the proactor loop on Windows)."""
    proactor = getattr(asyncio, "ProactorEventLoop", None)
    return not (proactor is not None and isinstance(loop, proactor))


class AsyncStream:
    """An async iterator of ``str`` deltas: the asyncio face of a :class:`~llmclients.stream.Stream`.

    Await it, or enter it with ``async with``, to send the request and wait
    for the response; ``async for`` does so itself. Once the stream is
    exhausted, :attr:`text`, :attr:`finish_reason`, :attr:`usage`,
    :attr:`model` and the rest of :class:`~llmclients.stream.Stream`'s
    attributes describe the reply; :meth:`events` yields the typed events. Errors raised while iterating carry
    ``partial_text``: the text this iterator has yielded.

    One consumer at a time, as with an async generator.
    """

    def __init__(
        self, open_stream: Callable[[], Stream], *, provider: str, slots: _Slots, buffer_size: int
    ) -> None:
        if buffer_size < 1:
            raise ValueError("buffer_size must be at least 1")
        self.provider = provider
        self._open_stream = open_stream
        self._slots = slots
        self._buffer_size = buffer_size
        self._channel: Optional[_Channel] = None
        self._stream: Optional[Stream] = None
        self._parts: List[str] = []
        self._closed = False
        self._done = False

    async def _open(self) -> Stream:
        if self._stream is not None:
            return self._stream
        if self._closed:
            raise RuntimeError("this stream is closed")
        if self._channel is None:
            await self._slots.acquire()
            loop = asyncio.get_running_loop()
            channel = _Channel(loop, self._open_stream, self._buffer_size, self._slots.release)
            try:
                _threads.submit(channel)
            except BaseException:
                self._slots.release()
                raise
            self._channel = channel
        try:
            self._stream = await self._channel.opened()
        except BaseException:
            self._close()
            raise
        return self._stream

    def __await__(self) -> Generator[Any, None, AsyncStream]:
        return self._opened_self().__await__()

    async def _opened_self(self) -> AsyncStream:
        await self._open()
        return self

    async def __aenter__(self) -> AsyncStream:
        return await self._opened_self()

    async def __aexit__(self, *exc_info: object) -> None:
        self._close()

    def __aiter__(self) -> AsyncStream:
        return self

    async def __anext__(self) -> str:
        while True:
            item = await self._next_item()
            if isinstance(item, str):
                return item

    async def events(self) -> AsyncIterator[Event]:
        """Every delta as a typed event, in arrival order (see :mod:`llmclients.events`)."""
        while True:
            try:
                item = await self._next_item()
            except StopAsyncIteration:
                return
            yield TextDelta(item) if isinstance(item, str) else item

    async def _next_item(self) -> Union[str, Event]:
        if self._closed:
            raise StopAsyncIteration
        if self._stream is None:
            await self._open()
        channel = self._channel
        assert channel is not None
        try:
            item, waiter = channel.take()
            while waiter is not None:
                await waiter
                item, waiter = channel.take()
        except BaseException:
            # Cancelled while waiting, or the reply failed: either way it is over.
            self._close()
            raise
        if item is None:
            self._done = True
            self._close()
            raise StopAsyncIteration
        if isinstance(item, str):
            self._parts.append(item)
        return item

    async def aclose(self) -> None:
        """Stop reading and close the connection. Safe to call twice."""
        self._close()

    def _close(self) -> None:
        self._closed = True
        if self._channel is not None:
            self._channel.cancel()

    def __del__(self) -> None:
        if getattr(self, "_channel", None) is not None:
            self._close()

    async def completion(self) -> Completion:
        """Read the rest of the stream and return the whole reply."""
        async for _ in self:
            pass
        return completion_of(self)

    @property
    def text(self) -> str:
        """All text yielded so far."""
        return "".join(self._parts)

    def _of_stream(self, name: str, default: Any) -> Any:
        return getattr(self._stream, name) if self._stream is not None else default

    @property
    def finish_reason(self) -> Optional[str]:
        return self._of_stream("finish_reason", None)  # type: ignore[no-any-return]

    @property
    def usage(self) -> Optional[Usage]:
        return self._of_stream("usage", None)  # type: ignore[no-any-return]

    @property
    def model(self) -> Optional[str]:
        return self._of_stream("model", None)  # type: ignore[no-any-return]

    @property
    def reasoning(self) -> str:
        return self._of_stream("reasoning", "")  # type: ignore[no-any-return]

    @property
    def refusal(self) -> str:
        return self._of_stream("refusal", "")  # type: ignore[no-any-return]

    @property
    def tool_calls(self) -> List[ToolCall]:
        return self._of_stream("tool_calls", [])  # type: ignore[no-any-return]

    @property
    def logprobs(self) -> List[Any]:
        return self._of_stream("logprobs", [])  # type: ignore[no-any-return]

    @property
    def choices(self) -> List[Choice]:
        choices: List[Choice] = self._of_stream("choices", [])
        if choices:
            choices[0].text = self.text  # what this iterator yielded, as for .text
        return choices

    @property
    def response_id(self) -> Optional[str]:
        return self._of_stream("response_id", None)  # type: ignore[no-any-return]

    @property
    def request_id(self) -> Optional[str]:
        return self._of_stream("request_id", None)  # type: ignore[no-any-return]

    @property
    def extra(self) -> Dict[str, Any]:
        return self._of_stream("extra", {})  # type: ignore[no-any-return]

    @property
    def done(self) -> bool:
        """True once this iterator has yielded the whole reply."""
        return self._done

    @property
    def buffered(self) -> int:
        """Deltas read by the thread and not yet taken (at most ``buffer_size``)."""
        return self._channel.buffered if self._channel is not None else 0

    def __repr__(self) -> str:
        state = "done" if self._done else "closed" if self._closed else "open"
        return f"<AsyncStream {self.provider} model={self.model!r} {state}, {len(self.text)} chars>"


class AsyncConversation:
    """The asyncio face of a :class:`~llmclients.conversation.Conversation`.

    A turn is committed when its reply has been read whole by the thread,
    as in the blocking API.
    """

    def __init__(self, aclient: AsyncClient, conversation: Conversation) -> None:
        self.aclient = aclient
        #: The blocking conversation that keeps the turns.
        self.conversation = conversation

    @property
    def messages(self) -> List[Message]:
        return self.conversation.messages

    @property
    def model(self) -> str:
        return self.conversation.model

    @property
    def thread(self) -> Dict[str, Any]:
        return self.conversation.thread

    def stream(self, message: Optional[Messages] = None, **options: Any) -> AsyncStream:
        """Send the next user turn (text or messages; none after tool results) and stream the reply."""
        conversation = self.conversation
        return self.aclient._wrap(lambda: conversation.stream(message, **options))

    async def send(self, message: Optional[Messages] = None, **options: Any) -> Completion:
        """Send the next user turn (or, with none, the tool results) and return the whole reply."""
        async with self.stream(message, **options) as stream:
            return await stream.completion()

    @property
    def pending_tool_calls(self) -> List[ToolCall]:
        return self.conversation.pending_tool_calls

    def add_tool_results(self, results: Mapping[str, Any]) -> None:
        """See :meth:`~llmclients.conversation.Conversation.add_tool_results`."""
        self.conversation.add_tool_results(results)

    def to_dict(self) -> Dict[str, Any]:
        """A JSON-serialisable state; ``aclient.conversation(state=...)`` resumes it."""
        return self.conversation.to_dict()

    def __repr__(self) -> str:
        return f"<AsyncConversation {self.conversation!r}>"


class AsyncClient:
    """Wraps any blocking client for use with asyncio.

    ``max_streams`` bounds the streams open at once (so the threads) and
    ``buffer_size`` the deltas each holds ahead of its consumer: see the
    module's documentation. :meth:`aclose` (or ``async with``) closes the
    wrapped client.
    """

    def __init__(
        self,
        client: Provider,
        *,
        max_streams: Optional[int] = DEFAULT_MAX_STREAMS,
        buffer_size: int = DEFAULT_BUFFER_SIZE,
    ) -> None:
        if buffer_size < 1:
            raise ValueError("buffer_size must be at least 1")
        self.client = client
        self.buffer_size = buffer_size
        self._slots = _Slots(max_streams)

    @classmethod
    def from_name(
        cls,
        name: str,
        *,
        max_streams: Optional[int] = DEFAULT_MAX_STREAMS,
        buffer_size: int = DEFAULT_BUFFER_SIZE,
        **kwargs: Any,
    ) -> AsyncClient:
        """Wrap a new client of the provider registered as ``name``."""
        return cls(get_client(name, **kwargs), max_streams=max_streams, buffer_size=buffer_size)

    @property
    def max_streams(self) -> Optional[int]:
        return self._slots.limit

    def stream(self, messages: Messages, *, model: Optional[str] = None, **options: Any) -> AsyncStream:
        """An :class:`AsyncStream` of the reply; the request is sent when it is first awaited."""
        client = self.client
        return self._wrap(lambda: client.stream(messages, model=model, **options))

    async def complete(
        self, messages: Messages, *, model: Optional[str] = None, **options: Any
    ) -> Completion:
        """Send ``messages`` and return the whole reply as a :class:`Completion`."""
        async with self.stream(messages, model=model, **options) as stream:
            return await stream.completion()

    def conversation(
        self,
        messages: Optional[Messages] = None,
        *,
        model: Optional[str] = None,
        state: Optional[Mapping[str, Any]] = None,
        system: Optional[str] = None,
        **options: Any,
    ) -> AsyncConversation:
        """A multi-turn conversation: new (``system``, seeded with ``messages``),
        or resumed from ``state`` (a ``to_dict()``); ``options`` go with every turn."""
        conversation = self.client.conversation(messages, model=model, state=state, system=system, **options)
        return AsyncConversation(self, conversation)

    def _wrap(self, open_stream: Callable[[], Stream]) -> AsyncStream:
        return AsyncStream(
            open_stream, provider=self.client.name, slots=self._slots, buffer_size=self.buffer_size
        )

    async def aclose(self) -> None:
        """Close the wrapped client's connections."""
        self.client.close()

    async def __aenter__(self) -> AsyncClient:
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.aclose()

    def __repr__(self) -> str:
        return f"AsyncClient({self.client!r}, max_streams={self.max_streams})"
