"""The gpt4free classes of :mod:`llmclients.compat.g4f`: :class:`CompatProvider`,
the face of one llmclients provider (gpt4free's class attributes, its model
rules, its two calls, the keywords it passes on or ignores), and the three
providers over it.
"""

from __future__ import annotations

import warnings
from typing import Any, ClassVar, Dict, FrozenSet, Iterator, List, Mapping, Optional, Type

from ... import errors
from ..._core.messages import normalize_messages
from ..._core.provider import Provider
from ..._core.values import Message, Messages
from ...providers.allenai import MODEL_HOSTS, STREAM_PATH, VISION_MODELS
from ...providers.allenai import AllenAI as _AllenAIClient
from ...providers.aura import Aura as _AuraClient
from ...providers.autonomous import ENDPOINTS
from ...providers.autonomous import AutonomousAI as _AutonomousAIClient
from ._call import Call, with_media
from ._results import AsyncResult, Chunk, Conversation, IgnoredArgumentWarning


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
    ) -> Call:
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
    ) -> Call:
        """The call, taking from ``kwargs`` what the provider uses; the rest is ignored."""
        return Call(cls.core, client_options, messages, model, cls._options(kwargs))

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
    ) -> Call:
        return Call(cls.core, client_options, messages, model, {"stream": stream})


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
    ) -> Call:
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
            messages = with_media(messages, media)
        conversation = kwargs.pop("conversation", None)
        if conversation is None:
            conversation = Conversation(model)
        elif not isinstance(conversation, Conversation):
            raise errors.InvalidRequestError(
                f"conversation must be a llmclients.compat.g4f.Conversation, not {type(conversation).__name__}"
            )
        return_conversation = bool(kwargs.pop("return_conversation", True))
        return Call(
            cls.core, client_options, messages, model, cls._options(kwargs), conversation, return_conversation
        )
