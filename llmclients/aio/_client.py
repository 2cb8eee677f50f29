"""The public classes of :mod:`llmclients.aio`: :class:`AsyncClient`,
:class:`AsyncStream` and :class:`AsyncConversation`, and the slots that
bound a client's open streams (:class:`Slots`)."""

from __future__ import annotations

import asyncio
import threading
from collections import deque
from typing import Any, AsyncIterator, Callable, Deque, Dict, Generator, List, Mapping, Optional, Tuple, Union

from .._core.provider import Provider
from .._core.stream import ReplyView, Stream, completion_of
from .._core.tools import ToolResult
from .._core.values import Completion, Message, Messages, ToolCall
from ..conversation import Conversation
from ..events import Event, TextDelta
from ..providers import get_client
from ._channel import Channel, resolve
from ._pool import THREADS
from ._tools import AsyncToolLoopStream

__all__ = ["DEFAULT_BUFFER_SIZE", "DEFAULT_MAX_STREAMS", "AsyncClient", "AsyncConversation", "AsyncStream", "Slots"]

#: Streams one AsyncClient keeps open at once; more wait for a slot.
DEFAULT_MAX_STREAMS = 256
#: Deltas a reading thread may hold ahead of its consumer.
DEFAULT_BUFFER_SIZE = 64


class Slots:
    """At most ``limit`` threads at once, waited for asynchronously.

    Not an ``asyncio.Semaphore``: that belongs to one loop, and a client may
    serve several (``asyncio.run`` per test, a loop per thread). ``release``
    is called by the reading threads.
    """

    def __init__(self, limit: Optional[int]) -> None:
        if limit is not None and limit < 1:
            raise ValueError("max_streams must be at least 1, or None")
        self.limit = limit
        self._free = limit or 0
        self._lock = threading.Lock()
        self._waiters: Deque[Tuple[asyncio.AbstractEventLoop, asyncio.Future[None]]] = deque()

    async def acquire(self) -> None:
        if self.limit is None:
            return
        loop = asyncio.get_running_loop()
        with self._lock:
            if self._free and not self._waiters:
                self._free -= 1
                return
            waiter: asyncio.Future[None] = loop.create_future()
            self._waiters.append((loop, waiter))
        try:
            await waiter
        except asyncio.CancelledError:
            with self._lock:
                granted = (loop, waiter) not in self._waiters
                if not granted:
                    self._waiters.remove((loop, waiter))
            if granted:  # release() chose us before the cancellation: pass the slot on
                self.release()
            raise

    def release(self) -> None:
        if self.limit is None:
            return
        with self._lock:
            while self._waiters:
                loop, waiter = self._waiters.popleft()
                try:
                    loop.call_soon_threadsafe(resolve, waiter)
                    return
                except RuntimeError:  # its loop is closed: nobody is left to take the slot
                    continue
            self._free += 1


class AsyncStream(ReplyView):
    """An async iterator of ``str`` deltas: the asyncio face of a :class:`~llmclients._core.stream.Stream`.

    Await it, or enter it with ``async with``, to send the request and wait
    for the response; ``async for`` does so itself. Once the stream is
    exhausted, :attr:`text`, :attr:`finish_reason`, :attr:`usage`,
    :attr:`model` and the rest of :class:`~llmclients._core.stream.Stream`'s
    attributes describe the reply; :meth:`events` yields the typed events. Errors raised while iterating carry
    ``partial_text``: the text this iterator has yielded.

    One consumer at a time, as with an async generator.
    """

    def __init__(
        self, open_stream: Callable[[], Stream], *, provider: str, slots: Slots, buffer_size: int
    ) -> None:
        if buffer_size < 1:
            raise ValueError("buffer_size must be at least 1")
        self.provider = provider
        self._open_stream = open_stream
        self._slots = slots
        self._buffer_size = buffer_size
        self._channel: Optional[Channel] = None
        self._stream: Optional[Stream] = None
        self._parts: List[str] = []
        self._closed = False
        self._done = False

    async def _open(self) -> Stream:
        if self._stream is not None:
            return self._stream
        if self._closed:
            raise RuntimeError("this stream is closed")
        if self._channel is None:
            await self._slots.acquire()
            loop = asyncio.get_running_loop()
            channel = Channel(loop, self._open_stream, self._buffer_size, self._slots.release, THREADS.opened)
            try:
                THREADS.submit(channel)
            except BaseException:
                self._slots.release()
                raise
            self._channel = channel
        try:
            self._stream = await self._channel.opened()
            self._call = self._stream.call
        except BaseException:
            self._close()
            raise
        return self._stream

    def __await__(self) -> Generator[Any, None, AsyncStream]:
        return self._opened_self().__await__()

    async def _opened_self(self) -> AsyncStream:
        await self._open()
        return self

    async def __aenter__(self) -> AsyncStream:
        return await self._opened_self()

    async def __aexit__(self, *exc_info: object) -> None:
        self._close()

    def __aiter__(self) -> AsyncStream:
        return self

    async def __anext__(self) -> str:
        while True:
            item = await self._next_item()
            if isinstance(item, str):
                return item

    async def events(self) -> AsyncIterator[Event]:
        """Every delta as a typed event, in arrival order (see :mod:`llmclients.events`)."""
        while True:
            try:
                item = await self._next_item()
            except StopAsyncIteration:
                return
            yield TextDelta(item) if isinstance(item, str) else item

    async def _next_item(self) -> Union[str, Event]:
        if self._closed:
            raise StopAsyncIteration
        if self._stream is None:
            await self._open()
        channel = self._channel
        assert channel is not None
        try:
            item, waiter = channel.take()
            while waiter is not None:
                await waiter
                item, waiter = channel.take()
        except BaseException:
            # Cancelled while waiting, or the reply failed: either way it is over.
            self._close()
            raise
        if item is None:
            self._done = True
            self._close()
            raise StopAsyncIteration
        if isinstance(item, str):
            self._parts.append(item)
        return item

    async def aclose(self) -> None:
        """Stop reading and close the connection. Safe to call twice."""
        self._close()

    def _close(self) -> None:
        self._closed = True
        if self._channel is not None:
            self._channel.cancel()

    def __del__(self) -> None:
        if getattr(self, "_channel", None) is not None:
            self._close()

    async def completion(self) -> Completion:
        """Read the rest of the stream and return the whole reply."""
        async for _ in self:
            pass
        return completion_of(self)

    @property
    def text(self) -> str:
        """All text this iterator has yielded (the thread may have read more)."""
        return "".join(self._parts)

    @property
    def done(self) -> bool:
        """True once this iterator has yielded the whole reply."""
        return self._done

    @property
    def buffered(self) -> int:
        """Deltas read by the thread and not yet taken (at most ``buffer_size``)."""
        return self._channel.buffered if self._channel is not None else 0

    def __repr__(self) -> str:
        state = "done" if self._done else "closed" if self._closed else "open"
        return f"<AsyncStream {self.provider} model={self.model!r} {state}, {len(self.text)} chars>"


class AsyncConversation:
    """The asyncio face of a :class:`~llmclients.conversation.Conversation`.

    A turn is committed when its reply has been read whole by the thread,
    as in the blocking API.
    """

    def __init__(self, aclient: AsyncClient, conversation: Conversation) -> None:
        self.aclient = aclient
        #: The blocking conversation that keeps the turns.
        self.conversation = conversation

    @property
    def messages(self) -> List[Message]:
        return self.conversation.messages

    @property
    def model(self) -> str:
        return self.conversation.model

    @property
    def id(self) -> str:
        """The conversation's id (:attr:`Conversation.id <llmclients.Conversation>`)."""
        return self.conversation.id

    @property
    def thread(self) -> Dict[str, Any]:
        return self.conversation.thread

    def stream(self, message: Optional[Messages] = None, **options: Any) -> AsyncStream:
        """Send the next user turn (text or messages; none after tool results) and stream the reply."""
        conversation = self.conversation
        return self.aclient._wrap(lambda: conversation.stream(message, **options))

    async def send(self, message: Optional[Messages] = None, **options: Any) -> Completion:
        """Send the next user turn (or, with none, the tool results) and return the whole reply."""
        async with self.stream(message, **options) as stream:
            return await stream.completion()

    async def run(
        self,
        message: Optional[Messages] = None,
        *,
        max_steps: int = 8,
        before_call: Optional[Callable[[ToolCall], Any]] = None,
        after_call: Optional[Callable[[ToolCall, ToolResult], Any]] = None,
        parallel: bool = False,
        **options: Any,
    ) -> Completion:
        """The tool loop (see :meth:`~llmclients.conversation.Conversation.run`):
        coroutine functions are awaited, others run in a thread; ``parallel``
        gathers a reply's calls. The hooks may be coroutine functions."""
        loop = self.run_stream(
            message, max_steps=max_steps, before_call=before_call, after_call=after_call, parallel=parallel, **options
        )
        async for _ in loop:
            pass
        assert loop.reply is not None  # the loop ends on a reply, or raises
        return loop.reply

    def run_stream(
        self,
        message: Optional[Messages] = None,
        *,
        max_steps: int = 8,
        before_call: Optional[Callable[[ToolCall], Any]] = None,
        after_call: Optional[Callable[[ToolCall, ToolResult], Any]] = None,
        parallel: bool = False,
        **options: Any,
    ) -> AsyncToolLoopStream:
        """:meth:`run`, to watch with ``async for`` (see
        :meth:`~llmclients.conversation.Conversation.run_stream`)."""
        return AsyncToolLoopStream(
            self,
            message,
            max_steps=max_steps,
            before_call=before_call,
            after_call=after_call,
            parallel=parallel,
            options=options,
        )

    @property
    def pending_tool_calls(self) -> List[ToolCall]:
        return self.conversation.pending_tool_calls

    def add_tool_results(self, results: Mapping[str, Any]) -> None:
        """See :meth:`~llmclients.conversation.Conversation.add_tool_results`."""
        self.conversation.add_tool_results(results)

    def to_dict(self) -> Dict[str, Any]:
        """A JSON-serialisable state; ``aclient.conversation(state=...)`` resumes it."""
        return self.conversation.to_dict()

    def __repr__(self) -> str:
        return f"<AsyncConversation {self.conversation!r}>"


class AsyncClient:
    """Wraps any blocking client for use with asyncio.

    ``max_streams`` bounds the streams open at once (so the threads) and
    ``buffer_size`` the deltas each holds ahead of its consumer: see the
    module's documentation. :meth:`aclose` (or ``async with``) closes the
    wrapped client.
    """

    def __init__(
        self,
        client: Provider,
        *,
        max_streams: Optional[int] = DEFAULT_MAX_STREAMS,
        buffer_size: int = DEFAULT_BUFFER_SIZE,
    ) -> None:
        if buffer_size < 1:
            raise ValueError("buffer_size must be at least 1")
        self.client = client
        self.buffer_size = buffer_size
        self._slots = Slots(max_streams)

    @classmethod
    def from_name(
        cls,
        name: str,
        *,
        max_streams: Optional[int] = DEFAULT_MAX_STREAMS,
        buffer_size: int = DEFAULT_BUFFER_SIZE,
        **kwargs: Any,
    ) -> AsyncClient:
        """Wrap a new client of the provider registered as ``name``."""
        return cls(get_client(name, **kwargs), max_streams=max_streams, buffer_size=buffer_size)

    @property
    def max_streams(self) -> Optional[int]:
        return self._slots.limit

    def stream(self, messages: Messages, *, model: Optional[str] = None, **options: Any) -> AsyncStream:
        """An :class:`AsyncStream` of the reply; the request is sent when it is first awaited."""
        client = self.client
        return self._wrap(lambda: client.stream(messages, model=model, **options))

    async def complete(
        self, messages: Messages, *, model: Optional[str] = None, **options: Any
    ) -> Completion:
        """Send ``messages`` and return the whole reply as a :class:`Completion`."""
        async with self.stream(messages, model=model, **options) as stream:
            return await stream.completion()

    def conversation(
        self,
        messages: Optional[Messages] = None,
        *,
        model: Optional[str] = None,
        state: Optional[Mapping[str, Any]] = None,
        system: Optional[str] = None,
        tool_functions: Optional[Mapping[str, Callable[..., Any]]] = None,
        **options: Any,
    ) -> AsyncConversation:
        """A multi-turn conversation: new (``system``, seeded with ``messages``),
        or resumed from ``state`` (a ``to_dict()``); ``options`` go with every
        turn (``tools`` may hold functions and coroutine functions: see :meth:`AsyncConversation.run`)."""
        conversation = self.client.conversation(
            messages, model=model, state=state, system=system, tool_functions=tool_functions, **options
        )
        return AsyncConversation(self, conversation)

    def _wrap(self, open_stream: Callable[[], Stream]) -> AsyncStream:
        return AsyncStream(
            open_stream, provider=self.client.name, slots=self._slots, buffer_size=self.buffer_size
        )

    async def aclose(self) -> None:
        """Close the wrapped client's connections."""
        self.client.close()

    async def __aenter__(self) -> AsyncClient:
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.aclose()

    def __repr__(self) -> str:
        return f"AsyncClient({self.client!r}, max_streams={self.max_streams})"
