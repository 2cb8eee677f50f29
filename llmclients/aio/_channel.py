"""One stream's channel between its reading thread and the event loop
(:class:`Channel`), and the waker that resolves the loop's futures from
threads (:class:`Waker`). Internal to :mod:`llmclients.aio`; it uses only
:class:`~llmclients._core.stream.Stream`'s public face.
"""

from __future__ import annotations

import asyncio
import contextvars
import threading
import time
import weakref
from collections import deque
from typing import Any, Callable, Deque, List, Optional, Tuple, TypeVar, Union

from .._core.stream import Stream
from ..events import Event

__all__ = ["LOOP_CHECK_INTERVAL", "Cancelled", "Channel", "Waker", "can_watch_sockets", "resolve", "waker_of"]

_T = TypeVar("_T")

#: Seconds between checks, by a thread waiting for room, that its loop still runs.
LOOP_CHECK_INTERVAL = 0.5


def resolve(waiter: asyncio.Future[None]) -> None:
    if not waiter.done():  # a cancelled waiter needs no result
        waiter.set_result(None)


class Waker:
    """Runs callbacks in one loop's thread, from other threads, in batches:
    one ``call_soon_threadsafe`` for everything that arrives while the loop is
    busy (deltas, responses, streams handed over), not one each.

    Each ``call_soon_threadsafe`` writes to the loop's self-pipe: a system call
    and a hand-off of the GIL, which under load cost more than the delta.
    """

    def __init__(self, loop: asyncio.AbstractEventLoop) -> None:
        # Weak: the registry of wakers must not keep closed loops alive.
        self._loop = weakref.ref(loop)
        self._lock = threading.Lock()
        self._pending: List[Tuple[Callable[[Any], None], Any]] = []

    def wake(self, waiter: asyncio.Future[None]) -> bool:
        """Resolve ``waiter`` soon, from any thread; False if the loop is closed."""
        return self.call(resolve, waiter)

    def call(self, callback: Callable[[_T], None], arg: _T) -> bool:
        """Run ``callback(arg)`` soon in the loop's thread, after those called
        before it; False if the loop is closed."""
        with self._lock:
            self._pending.append((callback, arg))
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
        for callback, arg in pending:
            try:
                callback(arg)
            except Exception as exc:  # as the loop reports a failed callback; the others still run
                loop = self._loop()
                if loop is not None:
                    loop.call_exception_handler({"message": f"{callback!r} failed", "exception": exc})


_wakers: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, Waker] = weakref.WeakKeyDictionary()
_wakers_lock = threading.Lock()


def waker_of(loop: asyncio.AbstractEventLoop) -> Waker:
    with _wakers_lock:
        waker = _wakers.get(loop)
        if waker is None:
            waker = _wakers[loop] = Waker(loop)
        return waker


class Channel:
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
        on_opened: Callable[[Channel], None],
    ) -> None:
        self.loop = loop
        self.limit = limit
        # The thread opens the stream in the caller's context (a trace's span,
        # a request id): observers and logging filters see what the task saw.
        self._context = contextvars.copy_context()
        self._waker = waker_of(loop)
        self._open_stream = open_stream
        self._on_exit = on_exit
        #: Told when the response has arrived (the pool then opens the next stream).
        self._on_opened = on_opened
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
        self._watches_sockets = can_watch_sockets(loop)
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
        self._context.run(self._run)

    def _run(self) -> None:
        stream: Optional[Stream] = None
        try:
            with self._cond:
                if self.cancelled or self.loop.is_closed():  # while it waited for a thread: send nothing
                    raise Cancelled()
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
        self._on_opened(self)
        if cancelled:  # closed while the request was under way: read nothing
            raise Cancelled()
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
                raise Cancelled()
            self.pumping = True
        # With the first delta's wake-up, when the loop has not run it yet.
        if not self._waker.call(self._start_pump, sock.fileno()):  # the loop is closed: nobody will read on
            with self._cond:
                self.pumping = False
                self.cancelled = True
            raise Cancelled()
        return True

    def _end(self, error: Optional[BaseException]) -> None:
        with self._cond:
            self.finished = True
            if not isinstance(error, Cancelled):
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
                try:
                    text = next(stream)
                except BlockingIOError:  # nothing has arrived yet
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
            resolve(waiter)

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


class Cancelled(Exception):
    """Ends a thread whose stream was closed before its response arrived."""


def can_watch_sockets(loop: asyncio.AbstractEventLoop) -> bool:
    """False for loops without ``add_reader`` (the proactor loop on Windows)."""
    proactor = getattr(asyncio, "ProactorEventLoop", None)
    return not (proactor is not None and isinstance(loop, proactor))
