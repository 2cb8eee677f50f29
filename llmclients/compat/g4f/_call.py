"""One gpt4free call of :mod:`llmclients.compat.g4f` in llmclients' terms
(:class:`Call`: a blocking or an async stream, a conversation kept up to
date), and gpt4free's ``media`` turned into image parts.
"""

from __future__ import annotations

import mimetypes
import os
from pathlib import Path
from typing import Any, AsyncGenerator, Dict, Iterator, List, Mapping, Optional, Type

from ... import errors
from ..._core.images import data_url, sniff_image
from ..._core.provider import Provider
from ..._core.values import Message
from ...aio import AsyncClient
from ...providers._prompt import format_prompt, last_user_message
from ...providers.allenai import new_turn_images
from ._results import Chunk, Conversation, FinishReason


class Call:
    """One call's arguments, checked and translated to llmclients' terms."""

    def __init__(
        self,
        core: Type[Provider],
        client_options: Dict[str, Any],
        messages: List[Message],
        model: str,
        options: Dict[str, Any],
        conversation: Optional[Conversation] = None,
        return_conversation: bool = False,
    ) -> None:
        self.core = core
        self.client_options = client_options
        self.messages = messages
        self.model = model
        self.options = options
        self.conversation = conversation
        self.return_conversation = return_conversation

    def _client(self) -> Provider:
        return self.core(**self.client_options)

    def _state(self, conversation: Conversation) -> Dict[str, Any]:
        # No stored history: the request is built from the caller's messages, as in gpt4free.
        return {**conversation.to_dict(), "model": self.model, "messages": []}

    def _record(self, conversation: Conversation, thread: Mapping[str, Any], reply: str) -> None:
        """Update ``conversation`` after a turn that succeeded."""
        # What was sent: the new text of a follow-up, else the whole list folded (as AllenAI
        # does, also when images start a new thread).
        follow_up = conversation.parent and not new_turn_images(self.messages)
        sent = last_user_message(self.messages) if follow_up else format_prompt(self.messages)
        conversation.parent = thread.get("parent") or conversation.parent
        conversation.x_anonymous_user_id = thread.get("anonymous_user_id") or conversation.x_anonymous_user_id
        conversation.messages.extend(
            [{"role": "user", "content": sent}, {"role": "assistant", "content": reply}]
        )

    def _ending(self, finish_reason: Optional[str]) -> Iterator[Chunk]:
        if self.conversation is not None and self.return_conversation:
            yield self.conversation
        # The core raised if the stream broke off: an end without a stated reason is a stop.
        yield FinishReason(finish_reason or "stop")

    def blocking(self) -> Iterator[Chunk]:
        client = self._client()
        try:
            conversation = self.conversation
            if conversation is None:
                stream = client.stream(self.messages, model=self.model, **self.options)
                with stream:
                    yield from stream
            else:
                turn = client.conversation(state=self._state(conversation))
                stream = turn.stream(self.messages, **self.options)
                with stream:
                    yield from stream
                self._record(conversation, turn.thread, stream.text)
            yield from self._ending(stream.finish_reason)
        finally:
            client.close()

    async def streaming(self) -> AsyncGenerator[Chunk, None]:
        client = self._client()
        aclient = AsyncClient(client, max_streams=None)
        try:
            conversation = self.conversation
            if conversation is None:
                stream = aclient.stream(self.messages, model=self.model, **self.options)
                async with stream:
                    async for text in stream:
                        yield text
            else:
                turn = aclient.conversation(state=self._state(conversation))
                stream = turn.stream(self.messages, **self.options)
                async with stream:
                    async for text in stream:
                        yield text
                self._record(conversation, turn.thread, stream.text)
            for chunk in self._ending(stream.finish_reason):
                yield chunk
        finally:
            client.close()


# --- gpt4free's media ----------------------------------------------------------------------


def with_media(messages: List[Message], media: Any) -> List[Message]:
    """``messages`` with ``media`` as image parts before the last user message's text.

    gpt4free's ``render_messages`` put the media first, then the text.
    """
    if not isinstance(media, (list, tuple)) or not all(
        isinstance(item, (list, tuple)) and len(item) == 2 for item in media
    ):
        raise errors.InvalidRequestError("media must be a list of (data, filename) pairs, as in gpt4free")
    if not messages or messages[-1]["role"] != "user":
        raise errors.InvalidRequestError("media goes with the last message, which must be the user's")
    images = [
        {"type": "image_url", "image_url": {"url": _data_url(data, filename, number)}}
        for number, (data, filename) in enumerate(media, 1)
    ]
    last: Any = messages[-1]["content"]
    text = last if isinstance(last, list) else [{"type": "text", "text": last}]
    new_last: Any = {**messages[-1], "content": images + text}
    return [*messages[:-1], new_last]


def _data_url(data: Any, filename: Optional[str], number: int) -> str:
    """One media item as a ``data:`` URL; the forms gpt4free's ``to_bytes`` read."""
    if isinstance(data, str):
        if data.startswith(("data:", "http://", "https://")):
            return data  # the provider decodes a data: URL, and refuses a web one before sending
        raise errors.InvalidRequestError(
            f"media item {number} is a str but not a data: URL; for a file, pass pathlib.Path({data!r})"
        )
    if isinstance(data, (bytes, bytearray)):
        raw = bytes(data)
    elif isinstance(data, os.PathLike):
        raw = Path(data).read_bytes()
    elif hasattr(data, "read"):
        if hasattr(data, "seek"):
            data.seek(0)  # gpt4free rewound an open file before reading it
        raw = data.read()
    else:
        raise errors.InvalidRequestError(
            f"media item {number} is a {type(data).__name__}; pass bytes, a path, an open file or a data: URL"
        )
    return data_url(raw, _image_type(raw, filename, number))


def _image_type(data: bytes, filename: Optional[str], number: int) -> str:
    """The image's type: from its first bytes as gpt4free's ``is_accepted_format``
    (but a JPEG's are ``FF D8 FF``, where gpt4free took any ``FF D8``), else its name."""
    sniffed = sniff_image(data)
    if sniffed:
        return sniffed
    guessed = mimetypes.guess_type(filename or "")[0]
    if guessed and guessed.startswith("image/"):
        return guessed
    raise errors.InvalidRequestError(
        f"media item {number} ({filename or 'no name'}) is not a JPEG, PNG, GIF or WebP image"
    )
