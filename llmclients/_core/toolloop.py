"""The tool loop of a conversation (:class:`ToolLoopStream`): send, run the
calls the reply asks for, send again, until the model answers without tools.

:meth:`Conversation.run <llmclients.conversation.Conversation.run>` reads one
to its end; :meth:`~llmclients.conversation.Conversation.run_stream` hands it
over, to watch. The asyncio loop (:mod:`llmclients.aio`) follows the same
steps with the helpers at the end of this module.
"""

from __future__ import annotations

import contextvars
from concurrent.futures import Future, ThreadPoolExecutor
from typing import Any, Callable, Dict, Generator, Iterator, List, Optional, Protocol, Sequence, Union

from ..errors import CancelToolCall, InvalidRequestError, ToolCallCutOffError, ToolLoopLimitError
from ..events import LoopEvent, ToolEnd, ToolStart
from .stream import Stream
from .tools import Prepared, Toolbox, ToolResult, error_result, run_prepared, tool_message
from .values import Completion, Message, Messages, ToolCall

__all__ = [
    "LoopConversation",
    "ToolLoopStream",
    "calls_to_run",
    "check_max_steps",
    "check_nothing_pending",
    "cut_off_error",
    "limit_error",
    "not_run",
    "refused",
]

#: Threads at most for the calls of one reply, with ``parallel=True``.
MAX_THREADS = 8


class LoopConversation(Protocol):
    """What the loop needs of a conversation (:class:`~llmclients.conversation.Conversation` is one)."""

    messages: List[Message]
    toolbox: Toolbox

    @property
    def pending_tool_calls(self) -> List[ToolCall]: ...

    def stream(self, message: Optional[Messages] = None, **options: Any) -> Stream: ...


def check_max_steps(max_steps: int) -> None:
    if isinstance(max_steps, bool) or not isinstance(max_steps, int) or max_steps < 1:
        raise InvalidRequestError(f"max_steps must be an int of at least 1, not {max_steps!r}")


def check_nothing_pending(pending: Sequence[ToolCall], message: Optional[Messages]) -> None:
    """A new message while calls wait for results: the service would refuse the history."""
    if message is not None and pending:
        raise InvalidRequestError(
            f"{len(pending)} tool call(s) of the last reply have no result ({', '.join(c.name for c in pending)}): "
            "run() with no message runs them first, or answer them with add_tool_results()"
        )


def refused(call: ToolCall, cancel: CancelToolCall) -> ToolResult:
    """The result of a call that ``before_call`` refused: the reason it gave."""
    return ToolResult(call, str(cancel) or "the user refused this call", True, None, cancel)


def not_run(calls: Sequence[ToolCall], max_steps: int) -> List[ToolResult]:
    """The answers to the calls of the reply that reached ``max_steps``."""
    why = f"not run: the tool loop stopped after max_steps={max_steps} replies"
    return [error_result(call, why) for call in calls]


def calls_to_run(
    conversation: LoopConversation, reply: Optional[Completion], steps: int, max_steps: int, owner: Any
) -> Optional[List[ToolCall]]:
    """The calls the loop runs next; None once the model answered without any.
    After ``max_steps`` replies the calls are answered "not run" and
    :class:`~llmclients.ToolLoopLimitError` is raised, unless the last reply
    was cut off (whose whole calls still run before its own error)."""
    calls = conversation.pending_tool_calls
    cut = reply.incomplete_tool_calls if reply is not None else []
    if not calls and not cut:
        return None
    if steps >= max_steps and not cut:
        for result in not_run(calls, max_steps):
            conversation.messages.append(tool_message(result))
        raise limit_error(reply, owner, max_steps)
    return calls


def limit_error(reply: Optional[Completion], conversation: Any, max_steps: int) -> ToolLoopLimitError:
    names = ", ".join(call.name for call in reply.tool_calls) if reply is not None else ""
    return ToolLoopLimitError(
        f"the tool loop stopped after max_steps={max_steps} replies, each asking for tools "
        f"(the last for {names}); its calls were answered as not run. run() goes on from here",
        reply=reply,
        conversation=conversation,
    )


def cut_off_error(reply: Completion, conversation: Any) -> ToolCallCutOffError:
    call = reply.incomplete_tool_calls[-1]
    return ToolCallCutOffError(
        f"the token limit (finish_reason='length') cut off the call of {call.name!r} after "
        f"{len(call.arguments)} characters of arguments ({call.arguments[:40]!r}); raise max_tokens "
        "and run() again. The cut call is left out of the conversation; its whole calls were run",
        reply=reply,
        conversation=conversation,
    )


class ToolLoopStream:
    """The tool loop as it goes: iterate it for :data:`~llmclients.events.LoopEvent`\\ s.

    Each reply's events (``text``, ``reasoning``, ``tool_call`` fragments) as
    they arrive, then for each call of a reply ``tool_start`` (:class:`ToolStart`:
    the call) and ``tool_end`` (:class:`ToolEnd`: its :class:`~llmclients.ToolResult`).
    Once it is exhausted, :attr:`reply` is the final answer; :attr:`replies`
    holds every reply of the loop. Stopping early (``break``, :meth:`close`)
    leaves the conversation with every turn it has finished: a reply cut
    short is not kept, a call that has run keeps its result.
    """

    def __init__(
        self,
        conversation: LoopConversation,
        message: Optional[Messages],
        *,
        max_steps: int,
        before_call: Optional[Callable[[ToolCall], Any]],
        after_call: Optional[Callable[[ToolCall, ToolResult], Any]],
        parallel: bool,
        options: Dict[str, Any],
    ) -> None:
        check_max_steps(max_steps)
        conversation.toolbox.check_runnable()
        self.conversation = conversation
        self.max_steps = max_steps
        self.before_call = before_call
        self.after_call = after_call
        self.parallel = parallel
        self.options = options
        #: The final reply, once the loop has ended.
        self.reply: Optional[Completion] = None
        #: Every reply of the loop, in order.
        self.replies: List[Completion] = []
        self._events = self._run(message)

    def __iter__(self) -> ToolLoopStream:
        return self

    def __next__(self) -> LoopEvent:
        return next(self._events)

    def close(self) -> None:
        """Stop the loop; a reply being read is dropped. Safe to call twice."""
        self._events.close()

    def __enter__(self) -> ToolLoopStream:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def _run(self, message: Optional[Messages]) -> Generator[LoopEvent, None, None]:
        conversation = self.conversation
        reply: Optional[Completion] = None
        check_nothing_pending(conversation.pending_tool_calls, message)
        if message is not None or not conversation.pending_tool_calls:
            reply = yield from self._turn(message)
        while True:
            calls = calls_to_run(conversation, reply, len(self.replies), self.max_steps, conversation)
            if calls is None:
                self.reply = reply
                return
            yield from self._calls(calls)
            if reply is not None and reply.incomplete_tool_calls:
                raise cut_off_error(reply, conversation)
            reply = yield from self._turn(None)

    def _turn(self, message: Optional[Messages]) -> Generator[LoopEvent, None, Completion]:
        with self.conversation.stream(message, **self.options) as stream:
            yield from stream.events()
            reply = stream.completion()
        self.replies.append(reply)
        return reply

    def _admit(self, call: ToolCall) -> Union[Prepared, ToolResult]:
        """The call ready to run; or its result, when it cannot be made or ``before_call`` refuses it."""
        prepared = self.conversation.toolbox.prepare(call)
        if isinstance(prepared, Prepared) and self.before_call is not None:
            try:
                self.before_call(call)
            except CancelToolCall as cancel:
                return refused(call, cancel)
        return prepared

    def _calls(self, calls: List[ToolCall]) -> Iterator[LoopEvent]:
        if self.parallel and len(calls) > 1:
            yield from self._parallel(calls)
            return
        for call in calls:
            yield ToolStart(call)
            admitted = self._admit(call)
            yield from self._finish(run_prepared(admitted) if isinstance(admitted, Prepared) else admitted)

    def _parallel(self, calls: List[ToolCall]) -> Iterator[LoopEvent]:
        """Ask ``before_call`` about each call in order, run the admitted ones in
        threads (each in a copy of this thread's context), answer in order."""
        admitted = []
        for call in calls:
            yield ToolStart(call)
            admitted.append(self._admit(call))
        jobs = [job for job in admitted if isinstance(job, Prepared)]
        if not jobs:
            for result in admitted:
                yield from self._finish(result)  # type: ignore[arg-type]  # no job: each is a result
            return
        with ThreadPoolExecutor(max_workers=min(len(jobs), MAX_THREADS)) as pool:
            running: Dict[int, Future[ToolResult]] = {
                id(job): pool.submit(contextvars.copy_context().run, run_prepared, job) for job in jobs
            }
            for item in admitted:
                yield from self._finish(running[id(item)].result() if isinstance(item, Prepared) else item)

    def _finish(self, result: ToolResult) -> Iterator[LoopEvent]:
        self.conversation.messages.append(tool_message(result))
        if self.after_call is not None:
            self.after_call(result.call, result)
        yield ToolEnd(result)
