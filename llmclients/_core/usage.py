"""Token counts, as a reply reports them (:class:`Usage`)."""

# Annotations are evaluated here (no ``from __future__ import annotations``):
# typing.NamedTuple would otherwise compile each field's string at import.
import copy
from typing import Any, Dict, Mapping, NamedTuple, Optional, Tuple

__all__ = ["Usage"]


class _Counts(NamedTuple):
    """The three counts every service reports: :class:`Usage`'s tuple face."""

    prompt_tokens: Optional[int] = None
    completion_tokens: Optional[int] = None
    total_tokens: Optional[int] = None


#: The counts beyond the three, kept as attributes of a :class:`Usage`.
_MORE_FIELDS = ("cached_tokens", "reasoning_tokens", "cost", "raw")


class Usage(_Counts):
    """Token counts, when the service reports them.

    As a tuple it is ``(prompt_tokens, completion_tokens, total_tokens)``, as
    in 0.1: ``prompt, completion, total = usage`` unpacks it, ``usage[0]`` and
    ``len(usage)`` work, and it equals that 3-tuple. ``cached_tokens``
    (``prompt_tokens_details``), ``reasoning_tokens``
    (``completion_tokens_details``) and ``cost`` (OpenRouter) are attributes,
    read where a server sends them; ``raw`` is the usage object as it arrived.
    Two usages are equal when all their counts are; ``raw``, a record of the
    wire, is not part of the value.
    """

    cached_tokens: Optional[int]
    reasoning_tokens: Optional[int]
    cost: Optional[float]
    raw: Optional[Mapping[str, Any]]

    def __new__(
        cls,
        prompt_tokens: Optional[int] = None,
        completion_tokens: Optional[int] = None,
        total_tokens: Optional[int] = None,
        cached_tokens: Optional[int] = None,
        reasoning_tokens: Optional[int] = None,
        cost: Optional[float] = None,
        raw: Optional[Mapping[str, Any]] = None,
    ) -> "Usage":
        self = super().__new__(cls, prompt_tokens, completion_tokens, total_tokens)
        more = self.__dict__
        more["cached_tokens"] = cached_tokens
        more["reasoning_tokens"] = reasoning_tokens
        more["cost"] = cost
        more["raw"] = raw
        return self

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> "Usage":
        def count(source: Any, key: str) -> Optional[int]:
            value = source.get(key) if isinstance(source, Mapping) else None
            return value if isinstance(value, int) and not isinstance(value, bool) else None

        cost = data.get("cost")
        return cls(
            count(data, "prompt_tokens"),
            count(data, "completion_tokens"),
            count(data, "total_tokens"),
            count(data.get("prompt_tokens_details"), "cached_tokens"),
            count(data.get("completion_tokens_details"), "reasoning_tokens"),
            float(cost) if isinstance(cost, (int, float)) and not isinstance(cost, bool) else None,
            dict(data),
        )

    def _all(self) -> Tuple[Any, ...]:
        """Every field, in order, ``raw`` last."""
        return (*self, *(self.__dict__.get(name) for name in _MORE_FIELDS))

    # Immutable, as the NamedTuple it was.
    def __setattr__(self, name: str, value: Any) -> None:
        raise AttributeError(f"can't set attribute {name!r} of a Usage; use _replace()")

    def __delattr__(self, name: str) -> None:
        raise AttributeError(f"can't delete attribute {name!r} of a Usage")

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, tuple):
            return NotImplemented
        if isinstance(other, Usage):
            return self._all()[:6] == other._all()[:6]
        return tuple.__eq__(self, other)

    def __ne__(self, other: object) -> bool:
        equal = self.__eq__(other)
        return equal if equal is NotImplemented else not equal

    # The 3-tuple's hash: equal to a tuple it equals, and alike for equal usages.
    def __hash__(self) -> int:
        return tuple.__hash__(self)

    def __repr__(self) -> str:
        fields = ", ".join(f"{name}={value!r}" for name, value in zip(self._every, self._all()))
        return f"Usage({fields})"

    def __reduce__(self) -> Tuple[Any, Tuple[Any, ...]]:
        return (Usage, self._all())

    def __copy__(self) -> "Usage":
        return self

    def __deepcopy__(self, memo: Dict[int, Any]) -> "Usage":
        fields = list(self._all())
        fields[-1] = copy.deepcopy(fields[-1], memo)
        return Usage(*fields)

    def _replace(self, **changes: Any) -> "Usage":
        """A copy with ``changes``, to any field (the three counts and the attributes)."""
        unknown = set(changes) - set(self._every)
        if unknown:
            raise ValueError(f"Got unexpected field names: {sorted(unknown)!r}")
        return Usage(*(changes.get(name, value) for name, value in zip(self._every, self._all())))

    _every = ("prompt_tokens", "completion_tokens", "total_tokens", *_MORE_FIELDS)

    def to_dict(self) -> Dict[str, Any]:
        """The counts that are known, as JSON-ready values (``raw`` left out)."""
        return {
            name: value
            for name, value in zip(self._every, self._all())
            if value is not None and name != "raw"
        }
