"""Fallback: several clients behind one, tried in order until one answers."""

from __future__ import annotations

import itertools
from typing import Any, Iterator, List, Optional, Sequence, Tuple

from ..errors import FallbackError, InvalidRequestError, LLMClientError
from ..events import Event, TextDelta
from .provider import Provider
from .state import StreamState
from .stream import ReplyView, Stream
from .values import Completion, Messages

__all__ = [
    "Fallback",
    "FallbackStream",
]


class Fallback:
    """Tries each client in turn; behaves like a client.

    The next client is tried only when the current one fails before its first
    text delta: once text has been yielded, an error is raised as it is (with
    ``partial_text``), since switching would show the caller a second answer.
    When every client fails, :class:`~llmclients.errors.FallbackError` lists
    each one's failure. ``model`` and the options go to every client, so name
    a model only when all of them know it.
    """

    def __init__(self, clients: Sequence[Provider]) -> None:
        if not clients:
            raise InvalidRequestError("Fallback needs at least one client")
        self.clients = list(clients)

    def stream(self, messages: Messages, *, model: Optional[str] = None, **options: Any) -> FallbackStream:
        failures: List[Tuple[str, LLMClientError]] = []
        for client in self.clients:
            try:
                stream = client.stream(messages, model=model, **options)
                first = _first_delta(stream)
            except LLMClientError as exc:
                failures.append((client.name, exc))
                continue
            return FallbackStream(stream, first)
        raise FallbackError(failures)

    def complete(self, messages: Messages, *, model: Optional[str] = None, **options: Any) -> Completion:
        with self.stream(messages, model=model, **options) as stream:
            return stream.completion()

    def close(self) -> None:
        for client in self.clients:
            client.close()

    def __enter__(self) -> Fallback:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"Fallback({self.clients!r})"


def _first_delta(stream: Stream) -> Optional[str]:
    """Read up to the first delta (None: the stream ended without text)."""
    try:
        return next(stream)
    except StopIteration:
        return None
    except LLMClientError:
        stream.close()
        raise


# Set here, not by expose(): llmclients loads this lazily (see its _LAZY).
Fallback.__module__ = "llmclients"


class FallbackStream(ReplyView):
    """The :class:`~llmclients._core.stream.Stream` of the client that answered;
    ``provider`` names it."""

    def __init__(self, stream: Stream, first: Optional[str]) -> None:
        self.stream = stream
        self.provider = stream.provider
        self._call = stream.call
        self._first = first

    def __iter__(self) -> Iterator[str]:
        # The held-back first delta, then the stream itself: no extra step per delta.
        first, self._first = self._first, None
        return itertools.chain([first] if first is not None else [], self.stream)

    def __next__(self) -> str:
        if self._first is not None:
            first, self._first = self._first, None
            return first
        return next(self.stream)

    def events(self) -> Iterator[Event]:
        """The deltas as typed events (:meth:`Stream.events`), from the first
        text delta on: what came before it was read while choosing the client."""
        first, self._first = self._first, None
        if first is not None:
            yield TextDelta(first)
        yield from self.stream.events()

    @property
    def state(self) -> StreamState:
        return self.stream.state

    def interrupt(self) -> bool:
        """:meth:`Stream.interrupt`."""
        return self.stream.interrupt()

    def __enter__(self) -> FallbackStream:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def close(self) -> None:
        self.stream.close()

    def completion(self) -> Completion:
        for _ in self:
            pass
        return self.stream.completion()

    def __repr__(self) -> str:
        return f"<FallbackStream of {self.stream!r}>"
