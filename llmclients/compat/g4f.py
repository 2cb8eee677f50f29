"""gpt4free's calling conventions over llmclients' providers.

Code written for gpt4free's ``AutonomousAI``, ``Aura`` and ``AllenAI``
providers runs with its import line changed::

    # before
    from g4f.Provider.not_working.AutonomousAI import AutonomousAI
    # after
    from llmclients.compat.g4f import AutonomousAI

    async for chunk in AutonomousAI.create_async_generator(model="llama", messages=messages):
        print(chunk, end="")

What works as in gpt4free
-------------------------
* The classes are used without instantiation (an instance works too).
  ``create_async_generator(model, messages, proxy=None, stream=True, **kwargs)``
  is an async generator of ``str`` deltas ending with a :class:`FinishReason`;
  AllenAI yields its :class:`Conversation` just before it (unless
  ``return_conversation=False``). ``str()`` of both is ``""``, so a
  ``print(chunk, end="")`` loop prints only the text.
* ``create_completion(model, messages, stream=True, **kwargs)`` is the same as
  a plain generator, for scripts without asyncio. It runs no event loop at all,
  so it also works inside a running one (Jupyter), where gpt4free's needed
  ``nest_asyncio``.
* ``get_model(name)``: ``""`` gives ``default_model``, an alias its model id,
  an unknown name raises :class:`~llmclients.errors.ModelNotFoundError` with
  gpt4free's message ("Model is not supported: ... Valid models: [...]").
* The class attributes ``url``, ``working``, ``supports_stream``,
  ``supports_system_message``, ``supports_message_history``,
  ``default_model``, ``models``, ``model_aliases`` (and AutonomousAI's
  ``api_endpoints``, AllenAI's ``api_endpoint`` and ``model_hosts``).
  ``working`` tells the truth about the live service: it is False for all three.

What differs
------------
* **Never await** ``create_async_generator(...)``: it is an async generator,
  not a coroutine (in gpt4free too). ``await`` on it raises a ``TypeError``
  that shows the ``async for`` form.
* Arguments are checked when the method is called (a bad model or message
  list raises there); the request is sent when iteration begins.
* Errors are llmclients' typed exceptions (:mod:`llmclients.errors`), not
  gpt4free's: ``MissingAuthError`` -> ``AuthenticationError``,
  ``RateLimitError`` -> ``RateLimitError``, ``ResponseStatusError`` ->
  ``HTTPStatusError``, ``ModelNotSupportedError`` -> ``ModelNotFoundError``...
* gpt4free's Aura ignored ``model``; here it picks one of ``Aura.models``
  (``""`` for the default) and an unknown name raises, as for the others.
  AllenAI's :class:`Conversation` keeps each whole reply (gpt4free kept the
  reply's last chunk), and a message list given with a conversation that has
  no reply yet is sent whole (gpt4free sent only its last user message).

Keyword arguments each class uses:

- all: ``proxy``; ``timeout`` (seconds) becomes the client's timeout;
- AutonomousAI: ``stream`` (default True here: gpt4free's default False
  asked for one JSON answer, which its parser then dropped, yielding nothing);
- Aura: ``temperature``, ``max_tokens`` (the context budget, sent as
  ``tokenLimit``); ``stream`` changes nothing (the reply always streams);
- AllenAI: ``temperature``, ``top_p``, ``private``, ``max_tokens`` (which
  gpt4free dropped), ``conversation``, ``return_conversation`` (default
  True); ``host`` may only name the model's own host (olmo-api refuses any
  other); ``media``, gpt4free's list of ``(data, filename)`` pairs, where
  ``data`` is ``bytes``, a ``pathlib.Path`` (any ``os.PathLike``), an open
  binary file or a ``data:`` URL, as gpt4free's ``to_bytes`` took them (not
  a path as a plain ``str``, nor a PIL image): the images go with the last
  user message as ``image_url`` parts, for the vision model only
  (``olmo-4-synthetic``), and start a new thread, as in gpt4free.

Any other keyword (``temperature`` for AutonomousAI, Aura's ``webdriver``,
``api_key``...) is ignored, as gpt4free ignored it, but with an
:class:`IgnoredArgumentWarning` pointing at the call; ``None`` and ``False``
values pass silently.

Where requests go
-----------------
To the live service by default (each class's provider's ``default_base_url``).
gpt4free has no parameter for this; here each class has a ``base_url``
attribute, ``None`` by default, to point it elsewhere — an emulator in tests::

    monkeypatch.setattr(g4f.AutonomousAI, "base_url", autonomous_emulator.base_url)

or for good, in a subclass: ``class LocalAI(AutonomousAI): base_url = "http://..."``.

Threads
-------
``create_async_generator`` never blocks the event loop: the blocking client
opens each stream in a thread of :mod:`llmclients.aio`'s pool, and the event
loop reads it on once its first delta has arrived (a thread reads it only
where the loop cannot watch its socket).
"""

from __future__ import annotations

import mimetypes
import os
import uuid
import warnings
from pathlib import Path
from typing import (
    TYPE_CHECKING,
    Any,
    AsyncGenerator,
    ClassVar,
    Coroutine,
    Dict,
    FrozenSet,
    Generator,
    Iterator,
    List,
    Mapping,
    NoReturn,
    Optional,
    Type,
    Union,
)

from .. import errors
from .._core.images import data_url, sniff_image
from .._core.messages import normalize_messages
from .._core.provider import Provider
from .._core.values import Message, Messages
from ..aio import AsyncClient
from ..conversation import STATE_VERSION
from ..providers._prompt import format_prompt, last_user_message
from ..providers.allenai import MODEL_HOSTS, STREAM_PATH, VISION_MODELS, new_turn_images
from ..providers.allenai import AllenAI as _AllenAIClient
from ..providers.aura import Aura as _AuraClient
from ..providers.autonomous import ENDPOINTS
from ..providers.autonomous import AutonomousAI as _AutonomousAIClient

__all__ = [
    "AllenAI",
    "AsyncResult",
    "Aura",
    "AutonomousAI",
    "CompatProvider",
    "Conversation",
    "FinishReason",
    "IgnoredArgumentWarning",
    "Messages",
]


class IgnoredArgumentWarning(UserWarning):
    """A gpt4free keyword argument that the service has no use for was ignored."""


# --- what the generators yield ---------------------------------------------------------


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


# --- one call ---------------------------------------------------------------------------


class _Call:
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


def _with_media(messages: List[Message], media: Any) -> List[Message]:
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


# --- the providers ------------------------------------------------------------------------


def _working(core: Type[Provider]) -> bool:
    """Whether the live service answers, as the provider's ``status`` tells."""
    return not core.status.lower().startswith(("not working", "retired", "dead"))


def _meaningful(value: Any) -> bool:
    """Whether ignoring a keyword with this value changes anything worth a warning."""
    return value is not None and value is not False


class CompatProvider:
    """The gpt4free face of one llmclients provider; the base of the three classes.

    Used as gpt4free's providers are: through classmethods, without an instance.
    """

    #: The llmclients provider behind the class.
    core: ClassVar[Type[Provider]]
    #: Where requests go; None: the live service (the core's ``default_base_url``).
    base_url: ClassVar[Optional[str]] = None

    url: ClassVar[str] = ""
    label: ClassVar[str] = ""
    working: ClassVar[bool] = False
    #: The core's ``status``: why ``working`` is what it is.
    status: ClassVar[str] = ""
    needs_auth: ClassVar[bool] = False
    supports_stream: ClassVar[bool] = True
    supports_system_message: ClassVar[bool] = True
    supports_message_history: ClassVar[bool] = True
    default_model: ClassVar[str] = ""
    models: ClassVar[List[str]] = []
    model_aliases: ClassVar[Dict[str, str]] = {}

    #: gpt4free keywords that are llmclients options of the same name.
    _passed_on: ClassVar[FrozenSet[str]] = frozenset()
    #: Why a keyword is ignored, when there is more to say than "no such option".
    _ignored_because: ClassVar[Mapping[str, str]] = {}
    #: Entries of gpt4free's ``model_aliases`` that the core does not need.
    _gpt4free_aliases: ClassVar[Mapping[str, str]] = {}

    def __init_subclass__(cls, **kwargs: Any) -> None:
        """What gpt4free's class attributes say of the service, taken from ``core``."""
        super().__init_subclass__(**kwargs)
        core = cls.core
        cls.label = core.label
        cls.working = _working(core)
        cls.status = core.status
        cls.supports_system_message = core.supports_system_message
        cls.supports_message_history = core.supports_message_history
        cls.default_model = core.default_model or ""
        cls.models = list(core.models)
        cls.model_aliases = {**core.model_aliases, **cls._gpt4free_aliases}

    # --- models ----------------------------------------------------------------------

    @classmethod
    def get_models(cls, **kwargs: Any) -> List[str]:
        return cls.models

    @classmethod
    def get_model(cls, model: str, **kwargs: Any) -> str:
        """gpt4free's rules: empty -> the default, an alias -> its id, unknown -> an error.

        Raises :class:`llmclients.ModelNotFoundError` (a ``ValueError``), with
        gpt4free's message, for a name that is neither a model nor an alias.
        """
        if not model:
            return cls.default_model
        if model in cls.model_aliases:
            return cls.model_aliases[model]
        if cls.models and model not in cls.get_models(**kwargs):
            exc = errors.ModelNotFoundError(model, cls.__name__, cls.models)
            exc.message = f"Model is not supported: {model} in: {cls.__name__} Valid models: {cls.models}"
            exc.args = (exc.message,)
            raise exc
        return model

    # --- calls -------------------------------------------------------------------------

    @classmethod
    def create_async_generator(
        cls,
        model: str,
        messages: Messages,
        proxy: Optional[str] = None,
        stream: bool = True,
        **kwargs: Any,
    ) -> AsyncResult:
        """An async generator of the reply: ``str`` deltas, then a :class:`FinishReason`.

        Iterate it with ``async for``; never ``await`` it. Arguments are
        checked now; the request is sent when iteration begins, from a thread,
        so the event loop is never blocked.
        """
        call = cls._checked(model, messages, proxy, stream, kwargs)
        return AsyncResult(call.streaming(), f"{cls.__name__}.create_async_generator")

    @classmethod
    def create_completion(
        cls,
        model: str,
        messages: Messages,
        stream: bool = True,
        proxy: Optional[str] = None,
        **kwargs: Any,
    ) -> Iterator[Chunk]:
        """The same as :meth:`create_async_generator`, as a plain (blocking) generator."""
        call = cls._checked(model, messages, proxy, stream, kwargs)
        return call.blocking()

    @classmethod
    def _checked(
        cls, model: str, messages: Messages, proxy: Optional[str], stream: bool, kwargs: Dict[str, Any]
    ) -> _Call:
        kwargs = dict(kwargs)
        resolved = cls.get_model(model)
        normalized = normalize_messages(messages)
        client_options: Dict[str, Any] = {
            "base_url": cls.base_url or cls.core.default_base_url,
            "proxy": proxy,
        }
        timeout = kwargs.pop("timeout", None)
        if timeout is not None:
            client_options["timeout"] = timeout
        call = cls._call(resolved, normalized, stream, kwargs, client_options)
        ignored = sorted(name for name, value in kwargs.items() if _meaningful(value))
        for name in ignored:
            why = cls._ignored_because.get(name, "the service has no such option; gpt4free ignored it too")
            # stacklevel 3: the caller of create_async_generator / create_completion
            warnings.warn(f"{cls.__name__} ignores {name}= ({why})", IgnoredArgumentWarning, stacklevel=3)
        return call

    @classmethod
    def _call(
        cls,
        model: str,
        messages: List[Message],
        stream: bool,
        kwargs: Dict[str, Any],
        client_options: Dict[str, Any],
    ) -> _Call:
        """The call, taking from ``kwargs`` what the provider uses; the rest is ignored."""
        return _Call(cls.core, client_options, messages, model, cls._options(kwargs))

    @classmethod
    def _options(cls, kwargs: Dict[str, Any]) -> Dict[str, Any]:
        taken = {name: kwargs.pop(name) for name in sorted(cls._passed_on & set(kwargs))}
        return {name: value for name, value in taken.items() if value is not None}


class AutonomousAI(CompatProvider):
    """gpt4free's ``AutonomousAI`` (autonomous.ai's anonymous chat), over :class:`llmclients.AutonomousAI`.

    Keywords: ``stream`` (default True: Server-Sent Events; False asks for one
    JSON answer, yielded as one chunk), ``proxy``, ``timeout``. Sampling
    options (``temperature``, ``max_tokens``...) are ignored with a warning:
    the service has none.
    """

    core = _AutonomousAIClient
    url = "https://www.autonomous.ai/anon/"
    #: Model id -> the URL that serves it (on the live service).
    api_endpoints: ClassVar[Dict[str, str]] = {
        model: f"{_AutonomousAIClient.default_base_url}/{path}" for model, path in ENDPOINTS.items()
    }

    @classmethod
    def _call(
        cls,
        model: str,
        messages: List[Message],
        stream: bool,
        kwargs: Dict[str, Any],
        client_options: Dict[str, Any],
    ) -> _Call:
        return _Call(cls.core, client_options, messages, model, {"stream": stream})


class Aura(CompatProvider):
    """gpt4free's ``Aura`` (OpenChat at openchat.team), over :class:`llmclients.Aura`.

    Keywords: ``temperature`` (default 0.5), ``max_tokens`` (the context
    budget the server trims the history to, default 8192), ``proxy``,
    ``timeout``. ``stream`` changes nothing (the reply always streams);
    ``webdriver`` is ignored with a warning.

    gpt4free's Aura ignored ``model`` and always asked for ``openchat_3.6``;
    here ``model`` picks one of :attr:`models` (``""`` for the default,
    ``openchat_v3.2_mistral``: openchat-ui's published code fails every
    ``openchat_3.6`` request), and an unknown name raises
    :class:`llmclients.ModelNotFoundError`.

    ``supports_system_message`` and ``supports_message_history`` are True
    where gpt4free left them False: its Aura did send system messages (as
    ``prompt``) and the whole history, as this one does, so True is what the
    service takes.
    """

    core = _AuraClient
    url = _AuraClient.default_base_url or ""

    _passed_on = frozenset({"temperature", "max_tokens"})
    _ignored_because: ClassVar[Mapping[str, str]] = {
        "webdriver": "llmclients drives no browser; requests go out as plain HTTP"
    }


class AllenAI(CompatProvider):
    """gpt4free's ``AllenAI`` (the Ai2 Playground), over :class:`llmclients.AllenAI`.

    Keywords: ``conversation`` (a :class:`Conversation` to continue),
    ``return_conversation`` (default True: the updated conversation is yielded
    just before the :class:`FinishReason`), ``temperature``, ``top_p``,
    ``max_tokens``, ``private``, ``host`` (only the model's own host, see
    :attr:`model_hosts`), ``proxy``, ``timeout``, ``media`` (images, as
    ``(data, filename)`` pairs, for the vision model: see the module's doc).

    Without a ``conversation`` the message list is folded into one prompt
    (olmo-api keeps the history itself); with one that has a ``parent``, only
    the trailing user message(s) are sent, as in gpt4free.
    """

    core = _AllenAIClient
    url = "https://playground.allenai.org"
    api_endpoint: ClassVar[str] = f"{_AllenAIClient.default_base_url}{STREAM_PATH}"
    #: Model id -> where olmo-api runs it (the ``host`` form field).
    model_hosts: ClassVar[Dict[str, str]] = dict(MODEL_HOSTS)

    _passed_on = frozenset({"temperature", "top_p", "max_tokens", "private"})
    # gpt4free's table listed this id as its own alias (f96ea67f AllenAI.py); code may read it.
    _gpt4free_aliases: ClassVar[Mapping[str, str]] = {"tulu-3-1-8b": "tulu-3-1-8b"}

    @classmethod
    def _call(
        cls,
        model: str,
        messages: List[Message],
        stream: bool,
        kwargs: Dict[str, Any],
        client_options: Dict[str, Any],
    ) -> _Call:
        host = kwargs.pop("host", None)
        if host is not None and host != cls.model_hosts[model]:
            raise errors.InvalidRequestError(
                f"AllenAI: olmo-api serves {model} from host {cls.model_hosts[model]!r}, not {host!r}, "
                f"and refuses any other (400 'model {model} is not available on {host}'); leave host out"
            )
        media = kwargs.pop("media", None)
        if media:
            if model not in VISION_MODELS:
                raise errors.InvalidRequestError(
                    f"AllenAI: media (images) needs the vision model ({', '.join(sorted(VISION_MODELS))}, "
                    f"alias olmo-4-synthetic); olmo-api refuses files for {model}"
                )
            messages = _with_media(messages, media)
        conversation = kwargs.pop("conversation", None)
        if conversation is None:
            conversation = Conversation(model)
        elif not isinstance(conversation, Conversation):
            raise errors.InvalidRequestError(
                f"conversation must be a llmclients.compat.g4f.Conversation, not {type(conversation).__name__}"
            )
        return_conversation = bool(kwargs.pop("return_conversation", True))
        return _Call(
            cls.core, client_options, messages, model, cls._options(kwargs), conversation, return_conversation
        )
