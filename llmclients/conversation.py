"""Multi-turn conversations that survive a round trip through JSON."""

from __future__ import annotations

import copy
from typing import TYPE_CHECKING, Any, Dict, List, Mapping, Optional

from .errors import InvalidRequestError
from .stream import Stream, StreamState
from .types import Completion, Message, Messages, normalize_messages

if TYPE_CHECKING:
    from .provider import Provider

STATE_VERSION = 1


class Conversation:
    """The turns so far, and what the service keeps about them.

    Each :meth:`send` or :meth:`stream` adds the new user turn and, once the
    reply has arrived whole, the assistant's turn. A turn that fails leaves the
    conversation as it was, so it can be retried. :meth:`to_dict` gives a
    JSON-serialisable state that ``client.conversation(state=...)`` resumes
    (a Django view keeps it in ``request.session``).
    """

    def __init__(
        self,
        client: Provider,
        *,
        messages: Optional[Messages] = None,
        model: Optional[str] = None,
        thread: Optional[Mapping[str, Any]] = None,
    ) -> None:
        self.client = client
        self.model = client.resolve_model(model)
        self.messages: List[Message] = normalize_messages(messages) if messages else []
        #: What the service keeps server-side for this conversation (ids).
        self.thread: Dict[str, Any] = dict(thread or {})

    def stream(self, message: Messages, **options: Any) -> Stream:
        """Send the next user turn (text or messages) and stream the reply."""
        new = normalize_messages(message)
        history = self.messages + new

        def commit(text: str, state: StreamState) -> None:
            self.messages = history + [{"role": "assistant", "content": text}]
            self.thread = state.thread

        return self.client.open_stream(history, self.model, options, copy.deepcopy(self.thread), commit)

    def send(self, message: Messages, **options: Any) -> Completion:
        """Send the next user turn and return the whole reply."""
        with self.stream(message, **options) as stream:
            return stream.completion()

    def to_dict(self) -> Dict[str, Any]:
        """A JSON-serialisable state; ``client.conversation(state=...)`` resumes it."""
        return {
            "version": STATE_VERSION,
            "provider": self.client.name,
            "model": self.model,
            "messages": copy.deepcopy(self.messages),
            "thread": copy.deepcopy(self.thread),
        }

    @classmethod
    def from_dict(cls, client: Provider, state: Mapping[str, Any]) -> Conversation:
        if not isinstance(state, Mapping) or state.get("version") != STATE_VERSION:
            raise InvalidRequestError("not a conversation state from Conversation.to_dict()")
        if state.get("provider") != client.name:
            raise InvalidRequestError(
                f"this conversation belongs to provider {state.get('provider')!r}, not {client.name!r}"
            )
        return cls(client, messages=state["messages"] or None, model=state["model"], thread=state["thread"])

    def __repr__(self) -> str:
        return f"<Conversation {self.client.name} model={self.model!r} {len(self.messages)} messages>"
