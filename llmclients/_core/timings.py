"""How long a call took: :class:`Timings`, which every stream and reply carries."""

# Annotations are evaluated here (no ``from __future__ import annotations``):
# typing.NamedTuple would otherwise compile each field's string at import.
from typing import Any, Dict, Mapping, NamedTuple, Optional

__all__ = ["Timings"]


class Timings(NamedTuple):
    """How long a call took: seconds from its start (when ``stream()`` was
    called), None for a point it did not reach.

    ``headers``: to the response headers of the attempt that answered
    (retries and their waits included); ``first_delta``: to the first delta
    (text, reasoning or a tool-call fragment); ``total``: to the call's end
    (None while the stream is open); ``deltas``: the deltas read;
    ``deltas_per_second``: the deltas after the first over the time from the
    first to the end (None before the end, or with fewer than two).
    """

    headers: Optional[float] = None
    first_delta: Optional[float] = None
    total: Optional[float] = None
    deltas: int = 0
    deltas_per_second: Optional[float] = None

    @classmethod
    def measured(
        cls, started: float, headers: Optional[float], first: Optional[float], ended: Optional[float], deltas: int
    ) -> "Timings":
        """The timings of a call from its clock readings (``time.monotonic()``; None: not reached)."""
        rate = None
        if first is not None and ended is not None and deltas > 1 and ended > first:
            rate = (deltas - 1) / (ended - first)
        return cls(
            None if headers is None else headers - started,
            None if first is None else first - started,
            None if ended is None else ended - started,
            deltas,
            rate,
        )

    def to_dict(self) -> Dict[str, Any]:
        """Every field, by name (JSON-ready)."""
        return dict(zip(self._fields, self))

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> "Timings":
        """The timings :meth:`to_dict` gave (unknown keys ignored)."""
        return cls(**{name: data[name] for name in cls._fields if name in data})
