"""A local log of every reply, in SQLite: :class:`ReplyLog`.

Attach one and each chat call that ends — done, closed early, or failed —
becomes a row: provider, model, URL (no credentials), system and prompt text,
options (credentials masked), the reply, reasoning, tool calls, finish
reason, usage and cost, timings, the error and the text before it, the
conversation's id and the time::

    import llmclients
    from llmclients.replylog import ReplyLog

    log = ReplyLog()                      # <user data folder>/logs.db; or ReplyLog("replies.db")
    llmclients.observers.attach(log)      # every client; or Provider(observers=[log])
    ...
    log.rows(limit=5, query="invoice")    # the newest, full-text searched

``LLMCLIENTS_REPLY_LOG=1`` (or a path) does the same for a process that
makes clients, without a line of code. The library writes nothing unless
asked; the ``llmclients chat`` command logs by default (``llmclients logs``).

Rows are written by one thread per log, in batches, from a bounded queue
(a call hands its row over and goes on; a full queue makes it wait, never
drops a row); :meth:`ReplyLog.flush` waits until every row handed over is
written, and the log flushes itself at interpreter exit. The file is in
WAL mode with a busy timeout, so threads and processes writing one file at
once lose no row. A log that cannot be written warns once
(:class:`ReplyLogWarning`) and never breaks a call.
"""

from __future__ import annotations

import atexit
import os
import queue
import sqlite3
import sys
import threading
import warnings
from typing import Any, Dict, List, Optional, Union

from .._public import expose
from ..observers import EndEvent, Observer, attach
from ._rows import decoded, row_of
from ._store import SchemaError, connect, insert, select, sums

__all__ = [
    "ENVIRONMENT_VARIABLE",
    "ReplyLog",
    "ReplyLogWarning",
    "default_path",
    "from_environment",
    "shared",
    "user_dir",
]

#: The variable that turns the log on for every client a process makes: ``1`` (the default path) or a path.
ENVIRONMENT_VARIABLE = "LLMCLIENTS_REPLY_LOG"
_STOP = object()
#: The most rows written in one transaction.
_BATCH = 500


class ReplyLogWarning(UserWarning):
    """The reply log could not be written (warned once per log)."""


def user_dir() -> str:
    """llmclients' folder for the user's data: ``LLMCLIENTS_USER_PATH``, else
    ``$XDG_DATA_HOME/llmclients``, else the platform's place
    (``~/.local/share/llmclients``, ``~/Library/Application Support/llmclients``,
    ``%APPDATA%\\llmclients``)."""
    given = os.environ.get("LLMCLIENTS_USER_PATH")
    if given:
        return os.path.expanduser(given)
    xdg = os.environ.get("XDG_DATA_HOME")
    if xdg:
        return os.path.join(xdg, "llmclients")
    home = os.path.expanduser("~")
    if sys.platform == "win32":
        base = os.environ.get("APPDATA") or os.path.join(home, "AppData", "Roaming")
    elif sys.platform == "darwin":
        base = os.path.join(home, "Library", "Application Support")
    else:
        base = os.path.join(home, ".local", "share")
    return os.path.join(base, "llmclients")


def default_path() -> str:
    """Where the log is kept unless told otherwise: ``logs.db`` in :func:`user_dir`."""
    return os.path.join(user_dir(), "logs.db")


class ReplyLog(Observer):
    """An observer that writes a row to the SQLite file at ``path`` (default
    :func:`default_path`) for every chat call that ends. See the module's docstring.

    The file is opened, and its schema made or migrated, here: a path that
    cannot be written warns once and the log then does nothing.
    """

    def __init__(self, path: Union[str, os.PathLike[str], None] = None, *, queue_size: int = 10_000) -> None:
        self.path = os.path.abspath(os.fspath(path) if path is not None else default_path())
        self.queue_size = queue_size
        self._lock = threading.Lock()
        self._queue: Optional[queue.Queue[Any]] = None
        self._writer: Optional[threading.Thread] = None
        self._pid = 0
        self._warned = False
        self.broken = False
        try:
            connect(self.path).close()
        except (sqlite3.Error, OSError, SchemaError) as exc:
            self.broken = True
            self._warn(f"the reply log {self.path} cannot be written, nothing will be logged: {exc}")

    def on_end(self, event: EndEvent) -> None:
        if event.call.operation != "chat" or self.broken:
            return
        row = row_of(event)
        self._started_queue().put(row)  # waits while the queue is full: no row is dropped

    def _started_queue(self) -> queue.Queue[Any]:
        with self._lock:
            # A forked child has the queue but not the thread: it starts its own.
            if self._queue is None or self._pid != os.getpid():
                self._pid = os.getpid()
                self._queue = queue.Queue(self.queue_size)
                self._writer = threading.Thread(
                    target=self._write, args=(self._queue,), name="llmclients-replylog", daemon=True
                )
                self._writer.start()
                atexit.register(self.close)
            return self._queue

    def _write(self, rows: queue.Queue[Any]) -> None:
        connection: Optional[sqlite3.Connection] = None
        stop = False
        while not stop:
            batch = [rows.get()]
            while len(batch) < _BATCH:
                try:
                    batch.append(rows.get_nowait())
                except queue.Empty:
                    break
            stop = any(row is _STOP for row in batch)
            written = [row for row in batch if row is not _STOP]
            try:
                if written:
                    connection = connection or connect(self.path)
                    insert(connection, written)
            except Exception as exc:  # a full disk, a lock held too long: warn, go on
                self._warn(f"{len(written)} replies could not be written to the reply log {self.path}: {exc}")
            finally:
                for _ in batch:
                    rows.task_done()
        if connection is not None:
            connection.close()

    def flush(self) -> None:
        """Wait until every row handed over so far is written."""
        with self._lock:
            pending = self._queue if self._pid == os.getpid() else None
        if pending is not None:
            pending.join()

    def close(self) -> None:
        """Write what is left and stop the writer thread (a later call starts it again)."""
        with self._lock:
            pending, writer = self._queue, self._writer
            if self._pid != os.getpid():
                pending = writer = None
            self._queue = self._writer = None
        if pending is not None and writer is not None:
            pending.put(_STOP)
            writer.join()
        atexit.unregister(self.close)

    def rows(
        self,
        limit: Optional[int] = None,
        *,
        query: Optional[str] = None,
        model: Optional[str] = None,
        conversation: Optional[str] = None,
    ) -> List[Dict[str, Any]]:
        """The newest rows, newest first: ``query`` searches the system text,
        prompts and replies (every word must occur: SQLite FTS5), ``model``
        is the model asked for or answering, ``conversation`` a conversation's id.
        Each row is a dict by column, ``options``, ``tool_calls`` and ``timings`` as values."""
        self.flush()
        connection = connect(self.path)
        try:
            return [decoded(row) for row in select(connection, limit, query, model, conversation)]
        finally:
            connection.close()

    def totals(
        self, *, query: Optional[str] = None, model: Optional[str] = None, conversation: Optional[str] = None
    ) -> Dict[str, Any]:
        """How many rows match (as in :meth:`rows`), with their tokens and cost
        added up: ``replies``, ``prompt_tokens``, ``completion_tokens``,
        ``total_tokens``, ``cost`` (None when no row has one)."""
        self.flush()
        connection = connect(self.path)
        try:
            return sums(connection, query, model, conversation)
        finally:
            connection.close()

    def _warn(self, message: str) -> None:
        with self._lock:
            if self._warned:
                return
            self._warned = True
        warnings.warn(message, ReplyLogWarning, stacklevel=3)

    def __repr__(self) -> str:
        return f"<ReplyLog {self.path}>"


_shared: Dict[str, ReplyLog] = {}
_sharing = threading.Lock()


def from_environment() -> Optional[ReplyLog]:
    """Attach the log ``LLMCLIENTS_REPLY_LOG`` asks for (``1`` for
    :func:`default_path`, or a path; ``0`` or empty for none) to every client
    of the process, once per path, and return it. Every client calls this when
    it is made, while the variable is set."""
    value = os.environ.get(ENVIRONMENT_VARIABLE, "").strip()
    if value.lower() in ("", "0", "off", "false", "no"):
        return None
    log = shared(default_path() if value.lower() in ("1", "on", "true", "yes") else value)
    attach(log)
    return log


def shared(path: Union[str, os.PathLike[str]]) -> ReplyLog:
    """The process's one :class:`ReplyLog` of ``path`` (made on first use):
    attached twice, it is still one observer, and writes each row once."""
    key = os.path.abspath(os.fspath(path))
    with _sharing:
        log = _shared.get(key)
        if log is None:
            log = _shared[key] = ReplyLog(key)
        return log


expose(globals(), __name__, __all__)
