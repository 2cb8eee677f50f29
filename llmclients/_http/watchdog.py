"""``Timeout.total`` while ``requests`` holds the socket: one shared thread
that shuts down the socket of a call whose total ran out.

``requests`` (through urllib3 and http.client) applies its timeouts to each
socket operation, so a server that sends its status line and headers one byte
at a time restarts the read timeout with every byte and holds the call as long
as it likes. Once the headers are here, :class:`~llmclients._http.body.Body`
bounds each read by what is left of the total; before that the only way into
a ``recv`` that another library is blocked in is to shut its socket down
(``shutdown(SHUT_RDWR)`` wakes it, for TLS sockets too). The request then
fails, and the transport reports the failure as
:class:`~llmclients.errors.TotalTimeout` since the total has run out.

One daemon thread serves every call of every client. It sleeps until the
nearest deadline in a heap; a call adds its deadline on entry and marks it done
on exit, so the happy path costs a lock, a heap push and a flag, and wakes no
thread: only a deadline earlier than the time the thread will wake anyway
notifies it, and the entries of calls that ended are dropped as it passes
them (or all at once, when they outnumber the others).

The sockets are found by a connection class mixed into the urllib3 pools of the
client's own adapter (:class:`InterruptibleAdapter`): it hands each new socket,
and the socket of each pooled connection it sends on, to the calling thread's
:class:`Guard`. A new socket is handed over as a duplicate of its file
descriptor, because TLS wrapping takes the original's, and the duplicate
reaches the same connection throughout the handshake. This is the one place
besides :mod:`llmclients._http.body` that finds sockets: before the headers arrive
there is no response for the body layer to look under, only the connection
being opened.

The thread starts with the first call that has a total, and no thread of it
is alive at ``fork()``: a hook stops it before every fork and starts it again
after, in the parent, if calls are in flight (in the child, the parent's
guards are dropped). So a process that has used a client forks as a
single-threaded one would (Python 3.12+ warns of a fork with threads alive):
a fork waits for the thread to end, a moment at most. The parent's thread
starts again with its next call, or at once if calls are in flight, whose
deadlines still hold (one that passed during the fork fires then).
"""

from __future__ import annotations

import functools
import heapq
import itertools
import os
import socket
import threading
import time
from typing import Any, List, Optional, Tuple

import requests
import urllib3

from .body import shutdown

__all__ = [
    "WATCHDOG",
    "Guard",
    "InterruptibleAdapter",
    "Watchdog",
]


class Guard:
    """One call's deadline while its request is in ``requests``' hands; a
    context manager (:meth:`Watchdog.guard`). A guard without a deadline
    (``at`` None) does nothing."""

    __slots__ = ("_owned", "_sockets", "_watchdog", "at", "done", "fired")

    def __init__(self, watchdog: Watchdog, at: Optional[float]) -> None:
        self._watchdog = watchdog
        self.at = at
        #: Out of the heap's reckoning: the call finished, or the guard fired.
        self.done = False
        #: The deadline passed while the call was inside: its sockets were shut down.
        self.fired = False
        self._sockets: List[socket.socket] = []
        self._owned: List[socket.socket] = []

    def __enter__(self) -> Guard:
        if self.at is not None:
            self._watchdog._arm(self)
        return self

    def __exit__(self, *exc_info: object) -> None:
        if self.at is not None:
            self._watchdog._disarm(self)

    def adopt(self, sock: socket.socket, *, owned: bool = False) -> None:
        """Shut ``sock`` down when the deadline passes (at once if it has);
        an ``owned`` socket is closed when the call leaves the guard."""
        self._sockets.append(sock)
        if owned:
            self._owned.append(sock)
        # Appended before the check: a firing either sees the socket or has set ``fired``.
        if self.fired:
            shutdown(sock)

    def _fire(self) -> None:
        self.fired = True
        for sock in list(self._sockets):
            shutdown(sock)

    def _release(self) -> None:
        for sock in self._owned:
            sock.close()
        # The heap may hold the guard a while yet: not the connection's socket.
        self._sockets.clear()
        self._owned.clear()


class Watchdog:
    """The thread that fires the guards whose time has come."""

    #: Finished guards left in the heap before it is rebuilt without them.
    COMPACT_AFTER = 256

    def __init__(self) -> None:
        self._reset()

    def _reset(self) -> None:
        self._cond = threading.Condition(threading.Lock())
        self._heap: List[Tuple[float, int, Guard]] = []
        self._order = itertools.count()
        self._finished = 0  # guards in the heap marked done by their call
        self._thread: Optional[threading.Thread] = None
        self._wake_at = float("inf")  # when the thread will look at the heap next
        self._local = threading.local()
        self._forking = False  # between the hooks before and after a fork: no thread

    def current(self) -> Optional[Guard]:
        """The guard of the call this thread is sending, if any."""
        guard: Optional[Guard] = getattr(self._local, "guard", None)
        return guard

    def guard(self, at: Optional[float]) -> Guard:
        """``with watchdog.guard(at):`` shuts the sockets of the request sent
        within down at ``at`` (monotonic time)."""
        return Guard(self, at)

    def _arm(self, guard: Guard) -> None:
        assert guard.at is not None
        with self._cond:
            heapq.heappush(self._heap, (guard.at, next(self._order), guard))
            if self._thread is None:
                if not self._forking:  # else the hook after the fork starts it
                    self._start()
            elif guard.at < self._wake_at:
                self._cond.notify()  # the thread sleeps until a later time
        self._local.guard = guard

    def _disarm(self, guard: Guard) -> None:
        self._local.guard = None
        with self._cond:
            if not guard.done:
                guard.done = True
                self._finished += 1
                if self._finished > self.COMPACT_AFTER and 2 * self._finished > len(self._heap):
                    self._heap = [entry for entry in self._heap if not entry[2].done]
                    heapq.heapify(self._heap)
                    self._finished = 0
        # After the lock: a firing in progress has finished with the sockets.
        guard._release()

    def _start(self) -> None:
        """Start the thread; the lock is held."""
        self._thread = threading.Thread(target=self._run, name="llmclients-watchdog", daemon=True)
        self._thread.start()

    def _before_fork(self) -> None:
        """Stop the thread, and start none until :meth:`_after_fork_in_parent`."""
        with self._cond:
            self._forking = True
            thread, self._thread = self._thread, None
            self._cond.notify()
        if thread is not None:
            thread.join()

    def _after_fork_in_parent(self) -> None:
        # Started again only for calls in flight (whose threads make the
        # process multi-threaded anyway); else by the next call. Python 3.13
        # counts the threads for its warning after these hooks have run.
        with self._cond:
            self._forking = False
            if self._thread is None and any(not entry[2].done for entry in self._heap):
                self._start()

    def _run(self) -> None:
        with self._cond:
            while not self._forking:
                heap = self._heap
                while heap and heap[0][2].done:
                    heapq.heappop(heap)
                    self._finished -= 1
                self._wake_at = heap[0][0] if heap else float("inf")
                delay = self._wake_at - time.monotonic()
                if delay > 0:
                    self._cond.wait(delay if heap else None)
                    continue
                guard = heapq.heappop(heap)[2]
                guard.done = True
                guard._fire()


WATCHDOG = Watchdog()
if hasattr(os, "register_at_fork"):  # not on Windows
    # No thread at fork; a child starts afresh: its parent's guards are not its own.
    os.register_at_fork(
        before=WATCHDOG._before_fork,
        after_in_parent=WATCHDOG._after_fork_in_parent,
        after_in_child=WATCHDOG._reset,
    )


class InterruptibleAdapter(requests.adapters.HTTPAdapter):
    """An ``HTTPAdapter`` whose connections, direct or through a proxy, hand
    their sockets to the :data:`WATCHDOG`."""

    def init_poolmanager(self, *args: Any, **kwargs: Any) -> None:
        super().init_poolmanager(*args, **kwargs)
        _make_interruptible(self.poolmanager)

    def proxy_manager_for(self, proxy: str, **proxy_kwargs: Any) -> urllib3.PoolManager:
        known = proxy in self.proxy_manager
        manager: urllib3.PoolManager = super().proxy_manager_for(proxy, **proxy_kwargs)
        if not known:
            _make_interruptible(manager)
        return manager


# Set here, not by expose(): llmclients loads this lazily (see its _LAZY).
InterruptibleAdapter.__module__ = "llmclients"


def _make_interruptible(manager: Any) -> None:
    manager.pool_classes_by_scheme = {
        scheme: _interruptible_pool(pool_class) for scheme, pool_class in manager.pool_classes_by_scheme.items()
    }


@functools.cache
def _interruptible_pool(pool_class: Any) -> Any:
    connection_class = pool_class.ConnectionCls
    if issubclass(connection_class, _Interruptible):  # a manager patched twice (two threads, one proxy)
        return pool_class
    interruptible = type(connection_class.__name__, (_Interruptible, connection_class), {})
    return type(pool_class.__name__, (pool_class,), {"ConnectionCls": interruptible})


class _Interruptible(urllib3.connection.HTTPConnection):
    """Mixed into urllib3's connection classes (plain, TLS, SOCKS)."""

    def _new_conn(self) -> socket.socket:
        sock = super()._new_conn()
        guard = WATCHDOG.current()
        if guard is not None:
            guard.adopt(socket.fromfd(sock.fileno(), sock.family, sock.type), owned=True)
        return sock

    def request(self, *args: Any, **kwargs: Any) -> None:
        guard = WATCHDOG.current()
        if guard is not None and isinstance(self.sock, socket.socket):
            guard.adopt(self.sock)  # a pooled connection: its socket is not new
        super().request(*args, **kwargs)
