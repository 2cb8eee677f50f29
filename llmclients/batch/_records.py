"""Batch records: the input of a batch job, one :class:`Record` a request.

Reads JSONL (one record per line: ``id``, ``messages`` or ``prompt``, call
options) or plain text (one prompt per line) one line at a time, gives a
stable id to each record that brings none, and counts an input's lines for a
progress bar.
"""

from __future__ import annotations

import hashlib
import json
import os
import sys
from dataclasses import dataclass, field
from typing import Any, Callable, Dict, Iterable, Iterator, Mapping, Optional, Set, Union

from .. import errors
from .._core.values import Messages

__all__ = [
    "JSONL_SUFFIXES",
    "BadRecordError",
    "PathLike",
    "Record",
    "as_records",
    "count_records",
    "read_records",
    "record_from",
]

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


def count_records(path: PathLike) -> int:
    """How many lines of the input may be records (for a progress bar's total), without parsing them."""
    jsonl = os.fspath(path).lower().endswith(JSONL_SUFFIXES)
    with open(path, "rb") as file:
        return sum(1 for line in file if line.strip() and (jsonl or not line.lstrip().startswith(b"#")))
