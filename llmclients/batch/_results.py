"""Batch results: what became of each record, and the JSONL file that keeps them.

:class:`Result` is one output line; :class:`ResultFile` appends whole lines
(a torn last line is cut off when it is opened); :func:`iter_results` and
:func:`answered_ids` read the file back for resuming, skipping torn lines;
:func:`compact` rewrites it with one line per id.
"""

from __future__ import annotations

import json
import os
import tempfile
from dataclasses import dataclass, field, fields
from typing import Any, Dict, Iterator, List, Mapping, Optional, Set, Tuple

from .. import errors
from ._records import PathLike

__all__ = ["Result", "ResultFile", "answered_ids", "compact", "iter_results"]


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
    #: The answering call's :meth:`~llmclients.Timings.to_dict`, or None.
    timings: Optional[Dict[str, Any]] = None

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
        self.timings = completion.timings.to_dict() if completion.timings is not None else None
        self.error = None

    def fail(self, exc: errors.LLMClientError) -> None:
        """Record ``exc`` as the error: its type, message and ``partial_text``."""
        self.error = {"type": type(exc).__name__, "message": str(exc), "partial_text": exc.partial_text}

    @property
    def tokens(self) -> int:
        return int((self.usage or {}).get("total_tokens") or 0)

    @property
    def cost(self) -> Optional[float]:
        cost = (self.usage or {}).get("cost")
        return float(cost) if isinstance(cost, (int, float)) else None

    @classmethod
    def from_dict(cls, line: Mapping[str, Any]) -> Result:
        """The result an output line's object (:meth:`to_dict`) describes."""
        return cls(**{name: line[name] for name in _FIELDS if name in line})

    def to_dict(self) -> Dict[str, Any]:
        """The output line's object; ``reasoning``, ``tool_calls`` and ``timings`` only when present."""
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
        if self.timings is not None:
            line["timings"] = self.timings
        return line


_FIELDS = tuple(spec.name for spec in fields(Result))


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
