"""The template every provider fills in, and everything providers share.

A provider subclass declares its service — URL, models, default model,
aliases, capabilities, event format, accepted options — and implements two methods:

* :meth:`Provider.build_request`: messages and options to a :class:`Request`;
* :meth:`Provider.parse_event`: one decoded event to a text delta, noting the
  finish reason, usage or model in the :class:`StreamState`.

It may override :meth:`Provider.finish` to check how a stream ended. It never
touches ``requests``: sending, retrying, reading and decoding happen here and in
:mod:`llmclients._http.transport`.
"""

from __future__ import annotations

import os
from typing import (
    TYPE_CHECKING,
    Any,
    Callable,
    ClassVar,
    Dict,
    FrozenSet,
    List,
    Mapping,
    Optional,
    Sequence,
    Tuple,
    TypeVar,
    Union,
)

import requests

from .. import errors
from .._http.config import CLASS_DEFAULT, ClassDefault, Retry, Timeout, TimeoutLike
from .._http.masking import check_credentials
from .._http.transport import (
    DEFAULT_MAX_RETRIES,
    DEFAULT_TIMEOUT,
    Request,
    Transport,
    redact_url,
)
from ..observers import Observer
from .call import Call
from .messages import features_of, normalize_messages
from .options import ClassSignature
from .state import DEFAULT_MAX_REPLY_SIZE, OnComplete, StreamState
from .stream import Stream
from .values import Completion, Message, Messages

if TYPE_CHECKING:
    from ..conversation import Conversation
    from .prices import PriceTable

__all__ = ["Provider"]


_P = TypeVar("_P", bound="Provider")


class Provider:
    """A blocking client for one LLM service. Subclasses are the providers.

    Every client takes the same keyword arguments:

    ``base_url``
        where the service lives (each provider has a default but the
        OpenAI-compatible one, which needs it); ``user:pass@`` in it sends
        HTTP Basic auth, and is refused together with ``api_key``;
    ``api_key``
        sent as the service expects; never shown in reprs, logs or errors;
    ``model``
        the model used when a call names none;
    ``timeout``
        a :class:`~llmclients.Timeout` (``connect``, ``read``, ``idle``,
        ``total``), seconds, or a ``(connect, read)`` pair; by default the
        class's :attr:`default_timeout` (``Timeout()``: connect 10 s, read
        120 s, total 600 s; Aura adds an idle limit of 15 s);
    ``retry``
        a :class:`~llmclients.Retry`; by default ``Retry(total=max_retries)``;
    ``proxy``
        a proxy URL for every request (``HTTP(S)_PROXY`` are honoured without it);
    ``headers``
        extra HTTP headers for every request;
    ``max_retries``
        retries of connection failures, 429, 502/503/504 and resets before the
        first delta (a shorthand for ``retry``);
    ``session``
        a ``requests.Session`` to reuse (the client then does not close it);
    ``pool_size``
        connections to one host kept open for reuse, by the client's own
        session (default :data:`~llmclients._http.transport.DEFAULT_POOL_SIZE`, 100);
        more may be open at once;
    ``verify``
        TLS verification: True (the default), or a CA bundle path;
    ``max_reply_size``
        the most memory, in bytes, that a reply's text, reasoning, refusal and
        tool-call arguments may take as Python holds them (1 to 4 bytes a
        character, some 50 more for each delta); default
        :data:`~llmclients._core.state.DEFAULT_MAX_REPLY_SIZE`, 12 MiB. Past it the
        stream raises :class:`~llmclients.errors.ReplyTooLargeError`; None
        removes the limit;
    ``observers``
        :class:`~llmclients.observers.Observer` objects that see every call's
        lifecycle (request, response, retry, first delta, end); also
        :attr:`observers`, a list to add to;
    ``prices``
        ``{model: (input, output[, cached_input])}``, per million tokens: what
        fills in ``usage.cost`` where the service reports none (none built in).

    A client is a context manager; :meth:`close` releases its connections.
    One client may be shared by threads. It cannot be pickled (it holds the
    key): pickle a conversation's :meth:`~Conversation.to_dict` instead.
    """

    #: Name in the registry (:func:`llmclients.get_client`).
    name: ClassVar[str] = ""
    #: Human name of the service.
    label: ClassVar[str] = ""
    #: Where the live service is, and whether it still answers.
    default_base_url: ClassVar[Optional[str]] = None
    status: ClassVar[str] = ""
    #: Model ids the service knows; empty means "any name the server accepts".
    models: ClassVar[Tuple[str, ...]] = ()
    default_model: ClassVar[Optional[str]] = None
    model_aliases: ClassVar[Mapping[str, str]] = {}
    supports_system_message: ClassVar[bool] = True
    supports_message_history: ClassVar[bool] = True
    #: The format of the events in the response body: "sse", "ndjson" or
    #: "text" (its HTTP framing, chunked or not, is the body layer's affair).
    event_format: ClassVar[str] = "sse"
    #: The media types the stream comes in. A JSON type not among them means one
    #: whole reply instead of a stream (:meth:`parse_completion`); HTML is never
    #: the reply. Other types, or none, are read in :attr:`event_format` (see :mod:`llmclients._core.content_type`).
    stream_types: ClassVar[FrozenSet[str]] = frozenset({"text/event-stream"})
    #: Generation options ``stream()`` accepts as keyword arguments.
    options: ClassVar[FrozenSet[str]] = frozenset()
    #: What the service can carry beyond plain text: "tools" (tool definitions,
    #: tool calls and results), "images", "audio", "files" (content parts) and
    #: "reasoning" (reasoning options). See :meth:`capabilities_for`.
    capabilities: ClassVar[FrozenSet[str]] = frozenset()
    #: The keys of its own this provider reads in assistant and tool turns:
    #: what it adds to the turns it answers (:attr:`StreamState.message_fields`),
    #: what its service needs back, and flags such as a tool result's
    #: ``is_error``. A provider that sends messages as they are leaves out other providers'.
    message_keys: ClassVar[FrozenSet[str]] = frozenset()
    #: True when the server lists the models it serves (:meth:`served_models`).
    lists_models: ClassVar[bool] = False
    #: The ``timeout`` a client gets when it is given none.
    default_timeout: ClassVar[Timeout] = DEFAULT_TIMEOUT
    #: Statuses this service answers when it is busy, retried like 429 and
    #: 502/503/504 (Anthropic's 529 "overloaded", say), on top of the retry's.
    retry_statuses: ClassVar[FrozenSet[int]] = frozenset()
    #: The environment variable the command line reads this service's key
    #: from (``ANTHROPIC_API_KEY``, say), before ``LLMCLIENTS_API_KEY``; None: that one only.
    api_key_env: ClassVar[Optional[str]] = None
    #: What ``inspect.signature(cls)`` and ``help()`` show: every argument, a
    #: subclass's ``**options`` (:class:`ClientOptions`) spelled out.
    __signature__ = ClassSignature()

    def __init__(
        self,
        *,
        base_url: Optional[str] = None,
        api_key: Optional[str] = None,
        model: Optional[str] = None,
        timeout: Union[TimeoutLike, ClassDefault] = CLASS_DEFAULT,
        retry: Optional[Retry] = None,
        proxy: Optional[str] = None,
        headers: Optional[Mapping[str, str]] = None,
        max_retries: int = DEFAULT_MAX_RETRIES,
        session: Optional[requests.Session] = None,
        pool_size: Optional[int] = None,
        verify: Union[bool, str] = True,
        max_reply_size: Optional[int] = DEFAULT_MAX_REPLY_SIZE,
        observers: Sequence[Observer] = (),
        prices: Optional[Mapping[str, Sequence[float]]] = None,
    ) -> None:
        """A client of the service; every argument is described in the class's docstring
        (``help(llmclients.Provider)``)."""
        if max_reply_size is not None and (
            not isinstance(max_reply_size, int) or isinstance(max_reply_size, bool) or max_reply_size < 1
        ):
            raise errors.InvalidRequestError(
                f"max_reply_size must be a positive int or None, not {max_reply_size!r}"
            )
        base_url = base_url or self.default_base_url
        if not base_url:
            raise errors.InvalidRequestError(f"{type(self).__name__} needs a base_url")
        self.base_url = base_url.rstrip("/")
        check_credentials(self.base_url, api_key)
        self.api_key = api_key
        self.model = self.resolve_model(model) if model else None
        self.max_reply_size = max_reply_size
        #: What sees every call of this client (:mod:`llmclients.observers`); a list to add to.
        self.observers: List[Observer] = list(observers)
        self.prices: PriceTable = {}
        if prices is not None:
            from .prices import check_prices  # here: only a client given prices= needs them

            self.prices = check_prices(prices)  # each model's cached-input price filled in
        if os.environ.get("LLMCLIENTS_REPLY_LOG"):
            from ..replylog import from_environment  # sqlite3 only for those who ask for the log

            from_environment()
        self._transport = Transport(
            timeout=self.default_timeout if isinstance(timeout, ClassDefault) else timeout,
            retry=retry,
            proxy=proxy,
            headers=headers,
            max_retries=max_retries,
            session=session,
            pool_size=pool_size,
            verify=verify,
            secrets=(api_key,),
            base_url=self.base_url,
            retry_statuses=self.retry_statuses,
        )

    @property
    def transport(self) -> Transport:
        """The HTTP layer this client sends through: its ``timeout`` and
        ``retry`` are the client's, and its ``sleep`` waits between retries
        (a test may replace it: ``client.transport.sleep = waits.append``)."""
        return self._transport

    # --- what a provider implements ---------------------------------------------

    def build_request(
        self, messages: List[Message], model: str, options: Dict[str, Any], thread: Dict[str, Any]
    ) -> Request:
        """The HTTP request that asks for a reply to ``messages`` (the whole history).

        ``thread`` is what the service keeps per conversation (ids it gave
        out); empty for a first turn. A provider may write to it; the
        conversation keeps the changes once the turn has succeeded.
        """
        raise NotImplementedError

    def parse_event(self, data: str, state: StreamState) -> Optional[str]:
        """The text delta in one event ("" or None if it has none).

        Sets ``state.done`` at the protocol's end, and ``state.finish_reason``,
        ``state.usage``, ``state.model`` when the event tells them.
        """
        raise NotImplementedError

    def parse_completion(self, document: Any, state: StreamState) -> Optional[str]:
        """The text of a whole JSON reply that came where a stream was asked for.

        Notes the rest in ``state`` as :meth:`parse_event` does, and sets
        ``state.done``. Raises ValueError if ``document`` is not a reply of the
        service (JSON errors never get here); by default the service has none.
        """
        raise ValueError("the service sends no such reply")

    def finish(self, state: StreamState) -> None:
        """Called when the body ended: raise if the protocol's end is missing."""

    def capabilities_for(self, model: str) -> FrozenSet[str]:
        """What the service can carry for ``model`` (by default :attr:`capabilities`)."""
        return self.capabilities

    def features_of_options(self, options: Mapping[str, Any]) -> FrozenSet[str]:
        """The capabilities that ``options`` need (tools, reasoning, ...)."""
        return frozenset()

    def served_models(self) -> List[str]:
        """The ids of the models the server serves, asked of it (where
        :attr:`lists_models`); else the models this provider knows."""
        return list(self.models)

    def explain_status_error(self, exc: errors.HTTPStatusError) -> errors.HTTPStatusError:
        """The error to raise for an error status; a provider may reword it
        (a retired endpoint, a captcha demand)."""
        return exc

    # --- what callers use ------------------------------------------------------------

    def stream(self, messages: Messages, *, model: Optional[str] = None, **options: Any) -> Stream:
        """Send ``messages`` and return a :class:`Stream` of text deltas.

        The request is sent now: bad arguments, connection failures and error
        statuses raise here, before any iteration. ``response_format`` may be
        a dataclass, a ``TypedDict`` or a pydantic model class: the provider
        asks for JSON of its schema, and :attr:`Stream.parsed` is the instance.
        """
        return self.open_stream(normalize_messages(messages), model, options)

    def open_stream(
        self,
        messages: List[Message],
        model: Optional[str],
        options: Dict[str, Any],
        thread: Optional[Dict[str, Any]] = None,
        on_complete: Optional[OnComplete] = None,
    ) -> Stream:
        """:meth:`stream` for callers that hold a conversation's ``thread``."""
        self._check_options(options)
        output_type = None
        response_format = options.get("response_format")
        if response_format is not None and not isinstance(response_format, Mapping):
            from .schemas import output_format  # a type: what describes it loads only now

            output_type, format_dict = output_format(response_format)
            options = dict(options, response_format=format_dict)
        resolved = self.resolve_model(model)
        self._check_capabilities(messages, options, resolved)
        given = {key: value for key, value in options.items() if value is not None}
        call = self.new_call(
            "chat",
            model=resolved,
            options=given,
            messages=messages,
            thread=thread,
            on_complete=on_complete,
            output_type=output_type,
        )
        return Stream(call.open())

    def new_call(self, operation: str, **details: Any) -> Call:
        """A :class:`~llmclients._core.call.Call` of this client (its transport,
        observers and reply limit): what every request goes through."""
        return Call(
            self,
            self._transport,
            self.observers,
            operation=operation,
            max_reply_size=self.max_reply_size,
            prices=self.prices,
            **details,
        )

    def complete(self, messages: Messages, *, model: Optional[str] = None, **options: Any) -> Completion:
        """Send ``messages`` and return the whole reply as a :class:`Completion`."""
        with self.stream(messages, model=model, **options) as stream:
            return stream.completion()

    def resolve_model(self, model: Optional[str]) -> str:
        """The service's id for ``model``: an alias resolved, the default for None.

        Raises :class:`~llmclients.errors.ModelNotFoundError` for a name the
        provider does not know (providers with an open model list accept any).
        """
        if not model:
            model = getattr(self, "model", None) or self.default_model
            if not model:
                raise errors.InvalidRequestError(
                    f"{type(self).__name__} has no default model; pass model=..."
                )
        model = self.model_aliases.get(model, model)
        if self.models and model not in self.models:
            raise errors.ModelNotFoundError(
                model, self.label or self.name, list(self.models) + sorted(self.model_aliases)
            )
        return model

    def conversation(
        self,
        messages: Optional[Messages] = None,
        *,
        model: Optional[str] = None,
        state: Optional[Mapping[str, Any]] = None,
        system: Optional[str] = None,
        tool_functions: Optional[Mapping[str, Callable[..., Any]]] = None,
        **options: Any,
    ) -> Conversation:
        """A multi-turn conversation: new (with a ``system`` prompt, seeded with
        ``messages``), or resumed from ``state`` (a ``to_dict()``). ``options``
        (``tools=...``, ``temperature=...``) go with every turn; ``tools`` may
        hold functions, which ``conversation.run()`` calls, and
        ``tool_functions`` (``{name: function}``) the functions of tool dicts.

        With ``state``, ``model`` switches the resumed conversation to that
        model and ``options`` are added to the saved ones; ``messages`` and
        ``system``, which start a conversation, are refused.
        """
        from ..conversation import Conversation

        self._check_options(options)
        if state is not None:
            if messages is not None or system is not None:
                raise errors.InvalidRequestError(
                    "state= resumes a conversation: messages and system start a new one, not both"
                )
            conversation = Conversation.from_dict(self, state, tool_functions, **options)
            if model:
                conversation.model = self.resolve_model(model)
            return conversation
        return Conversation(
            self, messages=messages, model=model, system=system, options=options, tool_functions=tool_functions
        )

    def close(self) -> None:
        """Release the client's connections (a session passed in is left open)."""
        self._transport.close()

    def __enter__(self: _P) -> _P:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def __reduce_ex__(self, protocol: Any) -> Any:
        raise TypeError(
            f"a {type(self).__name__} client cannot be pickled: it holds the API key, proxy "
            "credentials and open connections. Create the client where it is used, and pass "
            "a conversation as conversation.to_dict()"
        )

    def __repr__(self) -> str:
        fields = [f"base_url={redact_url(self.base_url)!r}"]
        if self.model:
            fields.append(f"model={self.model!r}")
        if self.api_key:
            fields.append("api_key=<hidden>")
        return f"{type(self).__name__}({', '.join(fields)})"

    # --- shared steps -------------------------------------------------------------------

    def _check_capabilities(self, messages: List[Message], options: Mapping[str, Any], model: str) -> None:
        """Refuse, before sending, what the service cannot carry: never strip it silently."""
        missing = (features_of(messages) | self.features_of_options(options)) - self.capabilities_for(model)
        if missing:
            feature = sorted(missing)[0]
            can = ", ".join(sorted(self.capabilities_for(model))) or "text only"
            raise errors.UnsupportedFeatureError(
                f"{self.label or self.name} cannot carry {feature} with model {model!r} "
                f"(it takes: {can}); nothing was sent",
                feature=feature,
            )

    def _check_options(self, options: Mapping[str, Any]) -> None:
        unknown = sorted(set(options) - self.options)
        if unknown:
            # A service without structured output: say what works instead of sending a prompt it would ignore.
            hint = "; it has no structured output: ask for JSON in the prompt and read reply.json()"
            raise errors.InvalidRequestError(
                f"{type(self).__name__} does not take {', '.join(map(repr, unknown))}; "
                f"its options are: {', '.join(sorted(self.options)) or 'none'}"
                + (hint if "response_format" in unknown else "")
            )


# Set here, not by expose(): llmclients loads this lazily (see its _LAZY).
Provider.__module__ = "llmclients"
