"""The tool loop of an :class:`~llmclients.aio.AsyncConversation`
(:class:`AsyncToolLoopStream`): the steps of
:class:`~llmclients._core.toolloop.ToolLoopStream`, awaited. A coroutine
function is awaited on the event loop; any other function runs in a thread
(in a copy of the caller's context), so that it never blocks the loop.
``before_call`` and ``after_call`` may be coroutine functions too.
"""

from __future__ import annotations

import asyncio
import inspect
from typing import Any, AsyncGenerator, AsyncIterator, Callable, Dict, List, Optional, Protocol, Union

from .._core.toolloop import (
    calls_to_run,
    check_max_steps,
    check_nothing_pending,
    cut_off_error,
    refused,
)
from .._core.tools import Prepared, Toolbox, ToolResult, error_result, tool_message, value_result
from .._core.values import Completion, Messages, ToolCall
from ..conversation import Conversation
from ..errors import CancelToolCall
from ..events import LoopEvent, ToolEnd, ToolStart

__all__ = ["AsyncLoopConversation", "AsyncToolLoopStream"]


class _Stream(Protocol):
    async def __aenter__(self) -> _Stream: ...

    async def __aexit__(self, *exc_info: object) -> None: ...

    def events(self) -> AsyncIterator[Any]: ...

    async def completion(self) -> Completion: ...


class AsyncLoopConversation(Protocol):
    """What the loop needs of an asyncio conversation (:class:`~llmclients.aio.AsyncConversation` is one)."""

    conversation: Conversation

    def stream(self, message: Optional[Messages] = None, **options: Any) -> Any: ...


async def _maybe_await(value: Any) -> Any:
    return await value if inspect.isawaitable(value) else value


def _is_coroutine_function(function: Callable[..., Any]) -> bool:
    # An object whose __call__ is a coroutine function is one too.
    return inspect.iscoroutinefunction(function) or inspect.iscoroutinefunction(type(function).__call__)


async def _run(job: Prepared) -> ToolResult:
    """Await a coroutine function; run any other in a thread (``to_thread``
    copies the context), awaiting what it returns if that is awaitable."""
    try:
        if _is_coroutine_function(job.function):
            value = await job.function(**job.arguments)
        else:
            value = await asyncio.to_thread(job.function, **job.arguments)
            if inspect.isawaitable(value):
                value = await value
    except Exception as exc:  # the model reads what went wrong; the loop goes on
        return error_result(job.call, exc)
    return value_result(job.call, value)


class AsyncToolLoopStream:
    """``async for`` it for the loop's events (see
    :class:`~llmclients._core.toolloop.ToolLoopStream`); then :attr:`reply`
    is the final reply and :attr:`replies` every reply of the loop. To stop
    early, leave an ``async with`` block around it, or ``await aclose()``."""

    def __init__(
        self,
        aconversation: AsyncLoopConversation,
        message: Optional[Messages],
        *,
        max_steps: int,
        before_call: Optional[Callable[[ToolCall], Any]],
        after_call: Optional[Callable[[ToolCall, ToolResult], Any]],
        parallel: bool,
        options: Dict[str, Any],
    ) -> None:
        check_max_steps(max_steps)
        aconversation.conversation.toolbox.check_runnable()
        self.aconversation = aconversation
        self.conversation = aconversation.conversation
        self.max_steps = max_steps
        self.before_call = before_call
        self.after_call = after_call
        self.parallel = parallel
        self.options = options
        self.reply: Optional[Completion] = None
        self.replies: List[Completion] = []
        self._events = self._loop(message)

    def __aiter__(self) -> AsyncToolLoopStream:
        return self

    async def __anext__(self) -> LoopEvent:
        return await self._events.__anext__()

    async def aclose(self) -> None:
        """Stop the loop; a reply being read is dropped. Safe to call twice."""
        await self._events.aclose()

    async def __aenter__(self) -> AsyncToolLoopStream:
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.aclose()

    @property
    def _toolbox(self) -> Toolbox:
        return self.conversation.toolbox

    async def _loop(self, message: Optional[Messages]) -> AsyncGenerator[LoopEvent, None]:
        conversation = self.conversation
        reply: Optional[Completion] = None
        check_nothing_pending(conversation.pending_tool_calls, message)
        if message is not None or not conversation.pending_tool_calls:
            async for event in self._turn(message):
                yield event
            reply = self.replies[-1]
        while True:
            calls = calls_to_run(conversation, reply, len(self.replies), self.max_steps, self.aconversation)
            if calls is None:
                self.reply = reply
                return
            async for event in self._calls(calls):
                yield event
            if reply is not None and reply.incomplete_tool_calls:
                raise cut_off_error(reply, self.aconversation)
            async for event in self._turn(None):
                yield event
            reply = self.replies[-1]

    async def _turn(self, message: Optional[Messages]) -> AsyncIterator[LoopEvent]:
        stream: _Stream = self.aconversation.stream(message, **self.options)
        async with stream:
            async for event in stream.events():
                yield event
            self.replies.append(await stream.completion())

    async def _admit(self, call: ToolCall) -> Union[Prepared, ToolResult]:
        prepared = self._toolbox.prepare(call)
        if isinstance(prepared, Prepared) and self.before_call is not None:
            try:
                await _maybe_await(self.before_call(call))
            except CancelToolCall as cancel:
                return refused(call, cancel)
        return prepared

    async def _calls(self, calls: List[ToolCall]) -> AsyncIterator[LoopEvent]:
        if not (self.parallel and len(calls) > 1):
            for call in calls:
                yield ToolStart(call)
                admitted = await self._admit(call)
                yield await self._finish(await _run(admitted) if isinstance(admitted, Prepared) else admitted)
            return
        admitted_all = []
        for call in calls:
            yield ToolStart(call)
            admitted_all.append(await self._admit(call))
        jobs = [job for job in admitted_all if isinstance(job, Prepared)]
        done = dict(zip(map(id, jobs), await asyncio.gather(*map(_run, jobs))))
        for item in admitted_all:
            yield await self._finish(done[id(item)] if isinstance(item, Prepared) else item)

    async def _finish(self, result: ToolResult) -> ToolEnd:
        self.conversation.messages.append(tool_message(result))
        if self.after_call is not None:
            await _maybe_await(self.after_call(result.call, result))
        return ToolEnd(result)
