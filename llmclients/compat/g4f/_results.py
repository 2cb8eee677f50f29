"""What gpt4free's generators yield, as :mod:`llmclients.compat.g4f` gives it:
text, then AllenAI's :class:`Conversation`, then a :class:`FinishReason`;
the :class:`AsyncResult` that ``create_async_generator`` returns; and the
warning for an ignored keyword.
"""

from __future__ import annotations

import uuid
from typing import (
    TYPE_CHECKING,
    Any,
    AsyncGenerator,
    Coroutine,
    Dict,
    Generator,
    List,
    Mapping,
    NoReturn,
    Optional,
    Union,
)

from ... import errors
from ..._core.values import Message
from ...conversation import STATE_VERSION
from ...providers.allenai import AllenAI as _AllenAIClient


class IgnoredArgumentWarning(UserWarning):
    """A gpt4free keyword argument that the service has no use for was ignored."""


class FinishReason:
    """gpt4free's ``FinishReason``: why the reply ended (``"stop"``, ``"length"``...).

    The last item every generator yields. ``str()`` of it is ``""``, so that
    ``print(chunk, end="")`` loops print only the text.
    """

    __slots__ = ("reason",)

    def __init__(self, reason: str) -> None:
        self.reason = reason

    def get_dict(self) -> Dict[str, Any]:
        return {"reason": self.reason}

    def __str__(self) -> str:
        return ""

    def __repr__(self) -> str:
        return f"FinishReason({self.reason!r})"

    def __eq__(self, other: object) -> bool:
        return isinstance(other, FinishReason) and other.reason == self.reason

    def __hash__(self) -> int:
        return hash(("FinishReason", self.reason))


class Conversation:
    """gpt4free's AllenAI ``Conversation``: what olmo-api needs to continue a thread.

    ``x_anonymous_user_id`` is the anonymous identity (only a thread's creator
    may continue it), ``parent`` the id of the last assistant reply (None
    before the first turn), ``messages`` the turns so far: each user turn's
    text as sent and the whole reply (gpt4free kept only the reply's last
    chunk). Pass it back as ``conversation=`` to continue; the server then
    gets only the new user message(s).

    :meth:`to_dict` gives the state of an ``llmclients.AllenAI`` conversation
    (``llmclients.AllenAI().conversation(state=conv.to_dict())`` continues the
    thread natively); :meth:`from_dict` takes one back. ``str()`` is ``""``,
    as gpt4free's ``JsonConversation``.
    """

    def __init__(
        self,
        model: str,
        *,
        x_anonymous_user_id: Optional[str] = None,
        parent: Optional[str] = None,
        messages: Optional[List[Message]] = None,
    ) -> None:
        self.model = model
        self.messages: List[Message] = list(messages or [])
        self.parent = parent
        self.x_anonymous_user_id = x_anonymous_user_id or str(uuid.uuid4())

    @property
    def thread(self) -> Dict[str, Any]:
        """The llmclients ``thread`` of the conversation (what olmo-api keeps)."""
        thread: Dict[str, Any] = {"anonymous_user_id": self.x_anonymous_user_id}
        if self.parent:
            thread["parent"] = self.parent
        return thread

    def get_dict(self) -> Dict[str, Any]:
        """The public attributes, as gpt4free's ``JsonMixin.get_dict()``."""
        return {
            "model": self.model,
            "messages": self.messages,
            "parent": self.parent,
            "x_anonymous_user_id": self.x_anonymous_user_id,
        }

    def to_dict(self) -> Dict[str, Any]:
        """The state of the same conversation in llmclients (``Conversation.to_dict()``)."""
        return {
            "version": STATE_VERSION,
            "provider": _AllenAIClient.name,
            "model": self.model,
            "messages": [dict(message) for message in self.messages],
            "thread": self.thread,
        }

    @classmethod
    def from_dict(cls, state: Mapping[str, Any]) -> Conversation:
        """The conversation of an llmclients AllenAI conversation's ``to_dict()``."""
        if not isinstance(state, Mapping) or state.get("version") != STATE_VERSION:
            raise errors.InvalidRequestError("not a conversation state from Conversation.to_dict()")
        if state.get("provider") != _AllenAIClient.name:
            raise errors.InvalidRequestError(
                f"this conversation belongs to provider {state.get('provider')!r}, not 'allenai'"
            )
        thread = state.get("thread") or {}
        return cls(
            state["model"],
            x_anonymous_user_id=thread.get("anonymous_user_id"),
            parent=thread.get("parent"),
            messages=state.get("messages") or [],
        )

    def __str__(self) -> str:
        return ""

    def __repr__(self) -> str:
        return f"Conversation(model={self.model!r}, parent={self.parent!r}, {len(self.messages)} messages)"


#: What the generators yield: text, then AllenAI's conversation, then the finish reason.
Chunk = Union[str, Conversation, FinishReason]


def _await_message(call: str) -> str:
    return (
        f"{call}(...) is an async generator, not a coroutine: do not await it, iterate it:\n"
        f"    async for chunk in {call}(model=..., messages=...):\n"
        f'        print(chunk, end="")\n'
        f"(gpt4free refused the await too: \"object async_generator can't be used in "
        f"'await' expression\"). Without asyncio, use a plain for loop over "
        f"{call.rpartition('.')[0] or call}.create_completion(...)."
    )


class AsyncResult(AsyncGenerator[Chunk, None]):
    """What ``create_async_generator`` returns: an async generator of :data:`Chunk`.

    It works in ``async for`` and has ``asend``, ``athrow`` and ``aclose``.
    ``await`` on it raises ``TypeError`` with the right form, ``async for``:
    awaiting an async generator is a mistake that gpt4free answered with
    "object async_generator can't be used in 'await' expression".
    """

    __slots__ = ("_agen", "_call")

    def __init__(self, agen: AsyncGenerator[Chunk, None], call: str) -> None:
        self._agen = agen
        self._call = call

    def __aiter__(self) -> AsyncResult:
        return self

    def __anext__(self) -> Coroutine[Any, Any, Chunk]:
        return self._agen.__anext__()

    def asend(self, value: None) -> Coroutine[Any, Any, Chunk]:
        return self._agen.asend(value)

    async def athrow(self, typ: Any, val: Any = None, tb: Any = None) -> Chunk:
        if val is None and tb is None:  # the one-argument form (the others are deprecated)
            return await self._agen.athrow(typ)
        return await self._agen.athrow(typ, val, tb)

    def aclose(self) -> Coroutine[Any, Any, None]:
        return self._agen.aclose()

    if not TYPE_CHECKING:  # so that type checkers flag `await` on it as the error it is

        def __await__(self) -> Generator[Any, None, NoReturn]:
            raise TypeError(_await_message(self._call))

    def __repr__(self) -> str:
        return f"<AsyncResult of {self._call}()>"
