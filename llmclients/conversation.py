"""Multi-turn conversations that survive a round trip through JSON."""

from __future__ import annotations

import copy
import json
import os
from typing import Any, Callable, Dict, List, Mapping, Optional, Protocol

from ._core.messages import normalize_messages
from ._core.state import OnComplete, StreamState
from ._core.stream import Stream
from ._core.toolloop import ToolLoopStream
from ._core.tools import Toolbox, ToolResult
from ._core.values import (
    Completion,
    Message,
    Messages,
    ToolCall,
    assistant_message,
    cut_off_calls,
)
from ._public import expose
from .errors import InvalidMessagesError, InvalidRequestError
from .observers import in_conversation

__all__ = [
    "STATE_VERSION",
    "Conversation",
    "ConversationClient",
    "ToolLoopStream",
]

expose(globals(), __name__, __all__)


class ConversationClient(Protocol):
    """What a conversation needs of its client (every :class:`~llmclients.Provider` is one)."""

    @property
    def name(self) -> str: ...

    def resolve_model(self, model: Optional[str]) -> str: ...

    def open_stream(
        self,
        messages: List[Message],
        model: Optional[str],
        options: Dict[str, Any],
        thread: Optional[Dict[str, Any]] = None,
        on_complete: Optional[OnComplete] = None,
    ) -> Stream: ...


#: Version 2 keeps ``options`` (tools, ...); version 1 states, without them, still load.
STATE_VERSION = 2
_LOADABLE = (1, 2)


class Conversation:
    """The turns so far, and what the service keeps about them.

    Each :meth:`send` or :meth:`stream` adds the new user turn and, once the
    reply has arrived whole, the assistant's turn — its text and its tool
    calls. When the reply asks for tools, answer with :meth:`add_tool_results`
    and call :meth:`send` with no message: the model goes on from the results.
    A turn that fails leaves the conversation as it was, so it can be retried.

    ``options`` (``tools``, ``tool_choice``, ``temperature``, ...) are sent
    with every turn; a turn's own keyword arguments override them.
    :meth:`to_dict` gives a JSON-serialisable state that
    ``client.conversation(state=...)`` resumes (a Django view keeps it in
    ``request.session``). ``id`` names the conversation (a random hex string,
    kept in the state): observers see it as ``CallInfo.conversation_id``, and
    the reply log records it.

    ``tools`` may hold functions beside tool dicts: each is sent as the tool
    its signature and docstring describe, and :meth:`run` calls it when the
    model asks; ``tool_functions`` (``{name: function}``) names the function
    of a dict tool. Functions are code, not state: the saved state keeps
    their tool dicts, and a resumed conversation is given the functions again.
    """

    def __init__(
        self,
        client: ConversationClient,
        *,
        messages: Optional[Messages] = None,
        model: Optional[str] = None,
        thread: Optional[Mapping[str, Any]] = None,
        system: Optional[str] = None,
        options: Optional[Mapping[str, Any]] = None,
        tool_functions: Optional[Mapping[str, Callable[..., Any]]] = None,
        id: Optional[str] = None,
    ) -> None:
        self.client = client
        self.id = id if isinstance(id, str) and id else os.urandom(16).hex()
        self.model = client.resolve_model(model)
        self.messages: List[Message] = normalize_messages(messages) if messages else []
        if system is not None:
            self.messages.insert(0, {"role": "system", "content": system})
        #: Options sent with every turn.
        self.options: Dict[str, Any] = dict(options or {})
        #: The tools :meth:`run` runs: their dicts (in ``options["tools"]``) and functions.
        self.toolbox = Toolbox(self.options.get("tools") or [], tool_functions)
        if self.options.get("tools") is not None:  # None sends no tools, as in any call
            self.options["tools"] = self.toolbox.specs
        #: What the service keeps server-side for this conversation (ids).
        self.thread: Dict[str, Any] = dict(thread or {})

    def stream(self, message: Optional[Messages] = None, **options: Any) -> Stream:
        """Send the next user turn (text or messages) and stream the reply.

        With no message, the history is sent as it is: after
        :meth:`add_tool_results`, that asks the model to go on.
        """
        if message is None:
            if not self.messages or self.messages[-1]["role"] == "assistant":
                raise InvalidRequestError("nothing to send: give a message, or add tool results first")
            history = list(self.messages)
        else:
            history = self.messages + normalize_messages(message)

        def commit(text: str, state: StreamState) -> None:
            # A call the token limit cut off (``{"city": "London``) is dropped
            # from the history, not answered: an answer would send the broken
            # call back, which servers refuse (llama.cpp's with a 500, every
            # later turn; Anthropic's and Ollama's want an object), and no
            # result can stand for a call that was never made whole.
            cut = cut_off_calls(state.first.tool_calls, state.finish_reason)
            calls = [call for call in state.first.tool_calls if call not in cut]
            reply = assistant_message(text, calls, state.message_fields)
            self.messages = history + [reply]
            self.thread = state.thread

        merged = {**self.options, **options}
        with in_conversation(self.id):
            return self.client.open_stream(history, self.model, merged, copy.deepcopy(self.thread), commit)

    def send(self, message: Optional[Messages] = None, **options: Any) -> Completion:
        """Send the next user turn (or, with none, the tool results) and return the whole reply."""
        with self.stream(message, **options) as stream:
            return stream.completion()

    def run(
        self,
        message: Optional[Messages] = None,
        *,
        max_steps: int = 8,
        before_call: Optional[Callable[[ToolCall], Any]] = None,
        after_call: Optional[Callable[[ToolCall, ToolResult], Any]] = None,
        parallel: bool = False,
        **options: Any,
    ) -> Completion:
        """Send ``message``, run the tool calls the reply asks for, send their
        results, and so on until a reply asks for none: that reply is returned,
        and the conversation keeps every turn.

        With no message, the loop goes on where it is: pending calls are run
        first (a conversation saved mid-loop resumes so). The calls of a reply
        run in its order, in threads only with ``parallel=True`` (then
        ``before_call`` is asked about each first, in order, and the calls it
        lets through run together; results are added in order). A function's
        return value is sent as text (a str as it is, anything else as JSON);
        an exception it raises is sent as an error result, and the loop goes on.
        ``before_call(call)`` may refuse a call by raising
        :class:`~llmclients.CancelToolCall` (its message is the call's result);
        any other exception from it, or from ``after_call(call, result)``,
        stops the loop and reaches the caller, with the results so far kept.
        A call to no tool, or with arguments that are not a JSON object that
        fits the tool's parameters, is answered with an error saying why.

        Raises :class:`~llmclients.ToolLoopLimitError` when ``max_steps``
        replies in a row asked for tools, and
        :class:`~llmclients.ToolCallCutOffError` when the token limit cut a
        call short; both keep the last reply, and the conversation goes on.
        """
        loop = self.run_stream(
            message, max_steps=max_steps, before_call=before_call, after_call=after_call, parallel=parallel, **options
        )
        for _ in loop:
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
    ) -> ToolLoopStream:
        """:meth:`run`, to watch: iterate the :class:`ToolLoopStream` for every
        reply's events as they arrive (``text``, ...) and each call's
        ``tool_start`` and ``tool_end``; then ``.reply`` is the final reply."""
        return ToolLoopStream(
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
        """The last reply's tool calls that have no result yet."""
        answered = set()
        for message in reversed(self.messages):
            if message["role"] == "tool":
                answered.add(message["tool_call_id"])
            elif message["role"] == "assistant":
                return [
                    ToolCall(call["id"], call["function"]["name"], call["function"]["arguments"])
                    for call in message.get("tool_calls") or ()
                    if call["id"] not in answered
                ]
            else:
                break
        return []

    def add_tool_results(self, results: Mapping[str, Any]) -> None:
        """Add a ``tool`` message for each ``{tool_call_id: result}``.

        A result that is not a str is sent as JSON. Every id must be one of
        :attr:`pending_tool_calls`, so that a typo fails here and not as a 400
        from the server.
        """
        pending = {call.id for call in self.pending_tool_calls}
        unknown = sorted(set(results) - pending)
        if unknown:
            raise InvalidMessagesError(
                f"no pending tool call has the id {unknown[0]!r}; pending: {', '.join(sorted(pending)) or 'none'}"
            )
        for call_id, result in results.items():
            content = result if isinstance(result, str) else json.dumps(result, ensure_ascii=False)
            self.messages.append({"role": "tool", "tool_call_id": call_id, "content": content})

    def to_dict(self) -> Dict[str, Any]:
        """A JSON-serialisable state; ``client.conversation(state=...)`` resumes it.

        A class given as ``response_format`` is saved as the ``json_schema``
        format it sends (a class is no JSON value): the resumed conversation
        asks for the same JSON, and its replies' ``parsed`` is that JSON, not an instance.
        """
        options = copy.deepcopy(self.options)
        response_format = options.get("response_format")
        if response_format is not None and not isinstance(response_format, Mapping):
            from ._core.schemas import output_format  # only a typed response_format needs it

            options["response_format"] = output_format(response_format)[1]
        return {
            "version": STATE_VERSION,
            "provider": self.client.name,
            "model": self.model,
            "messages": copy.deepcopy(self.messages),
            "thread": copy.deepcopy(self.thread),
            "options": options,
            "id": self.id,
        }

    @classmethod
    def from_dict(
        cls,
        client: ConversationClient,
        state: Mapping[str, Any],
        tool_functions: Optional[Mapping[str, Callable[..., Any]]] = None,
        **options: Any,
    ) -> Conversation:
        """Resume a :meth:`to_dict` state; ``options`` are added to the saved
        ones (``tools=`` with the functions, say)."""
        if not isinstance(state, Mapping) or state.get("version") not in _LOADABLE:
            raise InvalidRequestError("not a conversation state from Conversation.to_dict()")
        if state.get("provider") != client.name:
            raise InvalidRequestError(
                f"this conversation belongs to provider {state.get('provider')!r}, not {client.name!r}"
            )
        return cls(
            client,
            messages=state["messages"] or None,
            model=state["model"],
            thread=state["thread"],
            options={**(state.get("options") or {}), **options},
            tool_functions=tool_functions,
            id=state.get("id"),
        )

    def __reduce_ex__(self, protocol: Any) -> Any:
        raise TypeError(
            "a Conversation cannot be pickled: it holds its client, with the API key and "
            "connections. Pickle (or json.dumps) conversation.to_dict() instead, and resume it "
            "with client.conversation(state=...)"
        )

    def __repr__(self) -> str:
        return f"<Conversation {self.client.name} model={self.model!r} {len(self.messages)} messages>"
