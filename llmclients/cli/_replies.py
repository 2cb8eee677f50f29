"""The log of the replies the command got: ``chat`` writes it (unless
``--no-log`` or ``llmclients logs off``), ``llmclients logs`` reads it
(:mod:`llmclients.replylog`; ``<user data folder>/logs.db``)."""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import sqlite3
import sys
import warnings
from typing import Any, Dict, Iterator, List, Optional

from .. import observers
from ..replylog import ReplyLog, ReplyLogWarning, default_path, shared, user_dir
from ._common import EXIT_OK, UsageError

__all__ = ["chat_log", "logs_command"]

#: The file whose presence turns the command's log off (``llmclients logs off``).
OFF_MARKER = "logs-off"


def logging_on() -> bool:
    return not os.path.exists(os.path.join(user_dir(), OFF_MARKER))


@contextlib.contextmanager
def chat_log(args: argparse.Namespace) -> Iterator[None]:
    """Log every reply of the block (unless ``--no-log`` or the log is off), all written when it ends."""
    if getattr(args, "no_log", False) or not logging_on():
        yield
        return
    log = _opened()
    if log.broken:  # said so already; the chat goes on
        yield
        return
    observers.attach(log)
    try:
        yield
    finally:
        observers.detach(log)
        log.close()


def _opened() -> ReplyLog:
    """The command's log; a log that cannot be written is said in one line on stderr, not a warning's two."""
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always", ReplyLogWarning)
        log = shared(default_path())
    for warning in caught:
        print(f"llmclients: {warning.message}", file=sys.stderr)
    return log


def logs_command(args: argparse.Namespace) -> int:
    if args.action == "path":
        print(default_path())
    elif args.action in ("on", "off"):
        _switch(args.action == "on")
        print(f"the reply log is {args.action}: {default_path()}")
    else:
        _list(args)
    return EXIT_OK


def _switch(on: bool) -> None:
    marker = os.path.join(user_dir(), OFF_MARKER)
    if on:
        with contextlib.suppress(FileNotFoundError):
            os.remove(marker)
    else:
        os.makedirs(user_dir(), mode=0o700, exist_ok=True)
        with open(marker, "w", encoding="utf-8") as file:
            file.write("llmclients chat does not log its replies while this file exists (llmclients logs on)\n")


def _list(args: argparse.Namespace) -> None:
    if args.count < 0:
        raise UsageError("-n must be 0 (every reply) or more")
    if not os.path.exists(default_path()):
        print("[]" if args.json else f"no replies logged yet ({default_path()})")
        return
    found = dict(query=args.query, model=args.model, conversation=args.conversation)
    try:
        log = _opened()
        rows = list(reversed(log.rows(args.count or None, **found)))  # the newest last, as a terminal reads
        totals = log.totals(**found)
    except (sqlite3.Error, OSError) as exc:
        raise UsageError(f"the reply log {default_path()} cannot be read: {exc}") from None
    if args.json:
        print(json.dumps(rows, ensure_ascii=False, indent=2))
        return
    for row in rows:
        print(_shown(row))
    print(_totals(totals))
    if not logging_on():
        print("(the log is off: llmclients logs on)")


def _shown(row: Dict[str, Any]) -> str:
    head: List[str] = [f"# {row['time']}", str(row["provider"]), str(row["model"])]
    if row["conversation"]:
        head.append(f"conversation {row['conversation']}")
    if row["duration"] is not None:
        head.append(f"{row['duration']:.2f} s")
    if row["total_tokens"] is not None:
        head.append(f"{row['total_tokens']} tokens")
    if row["cost"] is not None:
        head.append(f"cost {row['cost']:.6g}")
    lines = ["  ".join(head)]
    if row["system"]:
        lines.append(f"system: {row['system']}")
    lines += [f"> {line}" for line in (row["prompt"] or "").splitlines()] or ["> "]
    lines.append(row["reply"] or "")
    if row["error_type"]:
        lines.append(f"[{row['error_type']}: {row['error']}]")
    return "\n".join(lines) + "\n"


def _totals(totals: Dict[str, Any]) -> str:
    cost: Optional[float] = totals["cost"]
    count = totals["replies"]
    return (
        f"{count} repl{'y' if count == 1 else 'ies'}, {totals['total_tokens']:,} tokens "
        f"({totals['prompt_tokens']:,} prompt, {totals['completion_tokens']:,} completion)"
        + ("" if cost is None else f", cost {cost:.6g}")
    )
