"""The SQLite file of the reply log: its schema and migrations
(:func:`connect`), writing rows (:func:`insert`) and reading them back
(:func:`select`, :func:`sums`).

The file is in WAL mode, so readers never wait for a writer and writers wait
for each other (``busy_timeout``) rather than fail; each batch of rows is one
transaction. ``PRAGMA user_version`` is the schema's version: a file made by
an older llmclients is migrated forward when opened, one made by a newer one
is refused (:class:`SchemaError`).
"""

from __future__ import annotations

import os
import sqlite3
import time
from typing import Any, Dict, List, Mapping, Optional, Sequence, Tuple

__all__ = ["COLUMNS", "SCHEMA_VERSION", "SchemaError", "connect", "insert", "select", "sums"]

#: Seconds a writer waits for another process's transaction before giving up.
BUSY_TIMEOUT = 30.0

#: The columns of a row, in order (``id`` comes first, given by SQLite).
COLUMNS = (
    "time",
    "provider",
    "model",
    "requested_model",
    "url",
    "conversation",
    "system",
    "prompt",
    "options",
    "reply",
    "reasoning",
    "tool_calls",
    "finish_reason",
    "prompt_tokens",
    "completion_tokens",
    "total_tokens",
    "cached_tokens",
    "reasoning_tokens",
    "cost",
    "timings",
    "duration",
    "outcome",
    "error_type",
    "error",
    "partial_text",
    "response_id",
    "request_id",
)

#: Each version's migration from the one before, statement by statement
#: (index 0 makes version 1).
_MIGRATIONS: Tuple[Tuple[str, ...], ...] = (
    (
        """CREATE TABLE IF NOT EXISTS replies (
            id INTEGER PRIMARY KEY,
            time TEXT NOT NULL,                -- the call's start, ISO 8601 in UTC
            provider TEXT, model TEXT, requested_model TEXT,
            url TEXT,                          -- the request's URL, no credentials, no query
            conversation TEXT,
            system TEXT, prompt TEXT,          -- the system text, and the turn's new messages
            options TEXT,                      -- JSON, credentials masked
            reply TEXT, reasoning TEXT,
            tool_calls TEXT,                   -- JSON: [{id, type, function: {name, arguments}}]
            finish_reason TEXT,
            prompt_tokens INTEGER, completion_tokens INTEGER, total_tokens INTEGER,
            cached_tokens INTEGER, reasoning_tokens INTEGER, cost REAL,
            timings TEXT,                      -- JSON: Timings.to_dict()
            duration REAL,
            outcome TEXT,                      -- done, closed or error
            error_type TEXT, error TEXT, partial_text TEXT,
            response_id TEXT, request_id TEXT
        )""",
        "CREATE INDEX IF NOT EXISTS replies_time ON replies (time)",
        "CREATE INDEX IF NOT EXISTS replies_conversation ON replies (conversation)",
        "CREATE INDEX IF NOT EXISTS replies_model ON replies (model)",
    ),
)
#: Full-text search over the system text, prompts and replies, kept in step by triggers.
_SEARCH = (
    """CREATE VIRTUAL TABLE IF NOT EXISTS replies_fts USING fts5(
        system, prompt, reply, content='replies', content_rowid='id'
    )""",
    """CREATE TRIGGER IF NOT EXISTS replies_ai AFTER INSERT ON replies BEGIN
        INSERT INTO replies_fts (rowid, system, prompt, reply) VALUES (new.id, new.system, new.prompt, new.reply);
    END""",
    """CREATE TRIGGER IF NOT EXISTS replies_ad AFTER DELETE ON replies BEGIN
        INSERT INTO replies_fts (replies_fts, rowid, system, prompt, reply)
        VALUES ('delete', old.id, old.system, old.prompt, old.reply);
    END""",
    """CREATE TRIGGER IF NOT EXISTS replies_au AFTER UPDATE ON replies BEGIN
        INSERT INTO replies_fts (replies_fts, rowid, system, prompt, reply)
        VALUES ('delete', old.id, old.system, old.prompt, old.reply);
        INSERT INTO replies_fts (rowid, system, prompt, reply) VALUES (new.id, new.system, new.prompt, new.reply);
    END""",
)
SCHEMA_VERSION = len(_MIGRATIONS)
_INSERT = f"INSERT INTO replies ({', '.join(COLUMNS)}) VALUES ({', '.join('?' * len(COLUMNS))})"


class SchemaError(Exception):
    """The file's schema is newer than this llmclients knows."""


def connect(path: str) -> sqlite3.Connection:
    """A connection to the log at ``path`` (its folder made, 0700), its schema
    brought up to date; raises :class:`sqlite3.Error` or :class:`OSError` when
    the file cannot be opened or written, :class:`SchemaError` when it is newer."""
    folder = os.path.dirname(os.path.abspath(path))
    os.makedirs(folder, mode=0o700, exist_ok=True)
    # SQLite may answer "database is locked" at once, without waiting out the
    # busy timeout, where waiting could deadlock; seen once, in the test of
    # eight processes opening one new log on a loaded machine. Such an open
    # is tried again, within the timeout.
    give_up = time.monotonic() + BUSY_TIMEOUT
    while True:
        try:
            return _open(path)
        except sqlite3.OperationalError as exc:
            if "locked" not in str(exc) or time.monotonic() > give_up:
                raise
        time.sleep(0.05)


def _open(path: str) -> sqlite3.Connection:
    # isolation_level=None: transactions are begun here, explicitly.
    connection = sqlite3.connect(path, timeout=BUSY_TIMEOUT, isolation_level=None, check_same_thread=False)
    try:
        connection.execute("PRAGMA journal_mode=WAL")
        connection.execute("PRAGMA synchronous=NORMAL")  # in WAL mode: durable at each checkpoint, never corrupt
        _migrate(connection)
    except BaseException:
        connection.close()
        raise
    return connection


def _migrate(connection: sqlite3.Connection) -> None:
    version = connection.execute("PRAGMA user_version").fetchone()[0]
    if version == SCHEMA_VERSION:
        return
    connection.execute("BEGIN IMMEDIATE")  # one process migrates; the others wait, then see it done
    try:
        version = connection.execute("PRAGMA user_version").fetchone()[0]
        if version > SCHEMA_VERSION:
            raise SchemaError(
                f"the log's schema is version {version}, newer than this llmclients knows ({SCHEMA_VERSION})"
            )
        for statements in _MIGRATIONS[version:]:
            for statement in statements:
                connection.execute(statement)
        if version == 0:
            _create_search(connection)
        connection.execute(f"PRAGMA user_version = {SCHEMA_VERSION}")
        connection.execute("COMMIT")
    except BaseException:
        connection.execute("ROLLBACK")
        raise


def _create_search(connection: sqlite3.Connection) -> None:
    connection.execute("SAVEPOINT search")
    try:
        for statement in _SEARCH:
            connection.execute(statement)
    except sqlite3.OperationalError:  # an SQLite built without FTS5: search falls back to LIKE
        connection.execute("ROLLBACK TO search")
    connection.execute("RELEASE search")


def insert(connection: sqlite3.Connection, rows: Sequence[Mapping[str, Any]]) -> None:
    """Write ``rows`` in one transaction."""
    connection.execute("BEGIN IMMEDIATE")
    try:
        connection.executemany(_INSERT, [tuple(row.get(name) for name in COLUMNS) for row in rows])
        connection.execute("COMMIT")
    except BaseException:
        connection.execute("ROLLBACK")
        raise


def _where(
    connection: sqlite3.Connection, query: Optional[str], model: Optional[str], conversation: Optional[str]
) -> Tuple[str, List[Any]]:
    clauses, values = [], []  # type: Tuple[List[str], List[Any]]
    if query and query.split():
        if _has_search(connection):
            clauses.append("id IN (SELECT rowid FROM replies_fts WHERE replies_fts MATCH ?)")
            values.append(_phrase(query))
        else:
            clauses.append("(prompt LIKE ? OR reply LIKE ? OR system LIKE ?)")
            values += [f"%{query}%"] * 3
    if model:
        clauses += ["(model = ? OR requested_model = ?)"]
        values += [model, model]
    if conversation:
        clauses.append("conversation = ?")
        values.append(conversation)
    return (" WHERE " + " AND ".join(clauses) if clauses else ""), values


def _phrase(query: str) -> str:
    """``query`` as FTS5 terms, each quoted: words are matched, never read as operators."""
    return " ".join('"' + word.replace('"', '""') + '"' for word in query.split())


def _has_search(connection: sqlite3.Connection) -> bool:
    found = connection.execute("SELECT 1 FROM sqlite_master WHERE name = 'replies_fts'").fetchone()
    return found is not None


def select(
    connection: sqlite3.Connection,
    limit: Optional[int] = None,
    query: Optional[str] = None,
    model: Optional[str] = None,
    conversation: Optional[str] = None,
) -> List[Dict[str, Any]]:
    """The newest rows that match, newest first (each a dict by column, ``id`` first)."""
    where, values = _where(connection, query, model, conversation)
    sql = f"SELECT id, {', '.join(COLUMNS)} FROM replies{where} ORDER BY id DESC"
    if limit is not None:
        sql += " LIMIT ?"
        values.append(limit)
    cursor = connection.execute(sql, values)
    return [dict(zip(("id", *COLUMNS), row)) for row in cursor.fetchall()]


def sums(
    connection: sqlite3.Connection,
    query: Optional[str] = None,
    model: Optional[str] = None,
    conversation: Optional[str] = None,
) -> Dict[str, Any]:
    """How many rows match, and their tokens and cost added up (cost None when none has one)."""
    where, values = _where(connection, query, model, conversation)
    sql = (
        "SELECT count(*), total(prompt_tokens), total(completion_tokens), total(total_tokens), sum(cost) "
        f"FROM replies{where}"
    )
    count, prompt, completion, total, cost = connection.execute(sql, values).fetchone()
    return {
        "replies": count,
        "prompt_tokens": int(prompt),
        "completion_tokens": int(completion),
        "total_tokens": int(total),
        "cost": cost,
    }
