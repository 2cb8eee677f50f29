"""The template every provider fills in, and everything providers share.

A provider subclass declares its service — URL, models, default model,
aliases, capabilities, framing, accepted options — and implements two methods:

* :meth:`Provider.build_request`: messages and options to a :class:`Request`;
* :meth:`Provider.parse_event`: one decoded event to a text delta, noting the
  finish reason, usage or model in the :class:`StreamState`.

It may override :meth:`Provider.finish` to check how a stream ended. It never
touches ``requests``: sending, retrying, reading and decoding happen here and in
:mod:`llmclients.transport`.
"""

from __future__ import annotations

import copy
from typing import (
    TYPE_CHECKING,
    Any,
    ClassVar,
    Dict,
    FrozenSet,
    List,
    Mapping,
    Optional,
    Tuple,
    TypeVar,
    Union,
)

import requests

from . import decoding, errors, media
from .config import Retry, TimeoutLike
from .stream import Exchange, OnComplete, Stream, StreamState
from .transport import (
    DEFAULT_MAX_RETRIES,
    DEFAULT_TIMEOUT,
    Body,
    Request,
    Transport,
    redact_url,
)
from .types import Completion, Message, Messages, features_of, normalize_messages

if TYPE_CHECKING:
    from .conversation import Conversation

_P = TypeVar("_P", bound="Provider")

_DECODERS = {
    "sse": decoding.iter_sse,
    "ndjson": decoding.iter_ndjson,
    "text": decoding.iter_text,
    "whole": decoding.iter_whole,
}


class Provider:
    """A blocking client for one LLM service. Subclasses are the providers.

    Every client takes the same keyword arguments:

    ``base_url``
        where the service lives (each provider has a default but the
        OpenAI-compatible one, which needs it);
    ``api_key``
        sent as the service expects; never shown in reprs, logs or errors;
    ``model``
        the model used when a call names none;
    ``timeout``
        a :class:`~llmclients.Timeout` (``connect``, ``read``, ``idle``,
        ``total``), seconds, or a ``(connect, read)`` pair;
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
        session (default :data:`~llmclients.transport.DEFAULT_POOL_SIZE`, 100);
        more may be open at once;
    ``verify``
        TLS verification: True (the default), or a CA bundle path.

    A client is a context manager; :meth:`close` releases its connections.
    One client may be shared by threads.
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
    #: How the response body is framed: "sse", "ndjson" or "text".
    framing: ClassVar[str] = "sse"
    #: The media types the stream comes in. A JSON type not among them means one
    #: whole reply instead of a stream (:meth:`parse_completion`); HTML is never
    #: the reply. Other types, or none, are read in :attr:`framing` (see :mod:`llmclients.media`).
    stream_types: ClassVar[FrozenSet[str]] = frozenset({"text/event-stream"})
    #: Generation options ``stream()`` accepts as keyword arguments.
    options: ClassVar[FrozenSet[str]] = frozenset()
    #: What the service can carry beyond plain text: "tools" (tool definitions,
    #: tool calls and results), "images", "audio", "files" (content parts) and
    #: "reasoning" (reasoning options). See :meth:`capabilities_for`.
    capabilities: ClassVar[FrozenSet[str]] = frozenset()

    def __init__(
        self,
        *,
        base_url: Optional[str] = None,
        api_key: Optional[str] = None,
        model: Optional[str] = None,
        timeout: TimeoutLike = DEFAULT_TIMEOUT,
        retry: Optional[Retry] = None,
        proxy: Optional[str] = None,
        headers: Optional[Mapping[str, str]] = None,
        max_retries: int = DEFAULT_MAX_RETRIES,
        session: Optional[requests.Session] = None,
        pool_size: Optional[int] = None,
        verify: Union[bool, str] = True,
    ) -> None:
        base_url = base_url or self.default_base_url
        if not base_url:
            raise errors.InvalidRequestError(f"{type(self).__name__} needs a base_url")
        self.base_url = base_url.rstrip("/")
        self.api_key = api_key
        self.model = self.resolve_model(model) if model else None
        self._transport = Transport(
            timeout=timeout,
            retry=retry,
            proxy=proxy,
            headers=headers,
            max_retries=max_retries,
            session=session,
            pool_size=pool_size,
            verify=verify,
            secrets=(api_key or "",),
        )

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

    def explain_status_error(self, exc: errors.HTTPStatusError) -> errors.HTTPStatusError:
        """The error to raise for an error status; a provider may reword it
        (a retired endpoint, a captcha demand)."""
        return exc

    # --- what callers use ------------------------------------------------------------

    def stream(self, messages: Messages, *, model: Optional[str] = None, **options: Any) -> Stream:
        """Send ``messages`` and return a :class:`Stream` of text deltas.

        The request is sent now: bad arguments, connection failures and error
        statuses raise here, before any iteration.
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
        resolved = self.resolve_model(model)
        self._check_capabilities(messages, options, resolved)
        given = {key: value for key, value in options.items() if value is not None}
        pristine = {} if thread is None else thread  # each attempt starts from its own copy
        call = self._transport.new_call()
        requests_sent: List[Request] = []

        def exchange(thread: Dict[str, Any]) -> Exchange:
            request = self.build_request(messages, resolved, given, thread)
            requests_sent.append(request)
            try:
                response = self._transport.open(request, call)
            except errors.HTTPStatusError as exc:
                explained = self.explain_status_error(exc)
                if explained is exc:
                    raise
                raise explained from exc
            call.deadline.on_delta()  # the idle clock starts with the response
            body = Body(response, call.deadline)
            try:
                whole = media.check(response, body, request, self)
            except errors.LLMClientError:
                response.close()
                raise
            if whole:
                reader = media.completion_reader(self, whole)
                return Exchange(response, decoding.iter_whole(iter(body)), body, thread, reader)
            events = _DECODERS[request.framing or self.framing](iter(body))
            return Exchange(response, events, body, thread)

        def reopen(failure: errors.LLMClientError) -> Optional[Exchange]:
            if not self._transport.wait_to_retry(requests_sent[-1], call, failure):
                return None
            return exchange(copy.deepcopy(pristine))

        stream = Stream(
            exchange=exchange(copy.deepcopy(pristine)),
            reopen=reopen,
            parse_event=self.parse_event,
            finish=self.finish,
            provider=self.name,
            model=resolved,
            on_complete=on_complete,
        )
        call.deadline.watch(stream.progress())
        return stream

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
        **options: Any,
    ) -> Conversation:
        """A multi-turn conversation: new (with a ``system`` prompt, seeded with
        ``messages``), or resumed from ``state`` (a ``to_dict()``). ``options``
        (``tools=...``, ``temperature=...``) go with every turn."""
        from .conversation import Conversation

        if state is not None:
            return Conversation.from_dict(self, state)
        self._check_options(options)
        return Conversation(self, messages=messages, model=model, system=system, options=options)

    def close(self) -> None:
        """Release the client's connections (a session passed in is left open)."""
        self._transport.close()

    def __enter__(self: _P) -> _P:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

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
            raise errors.InvalidRequestError(
                f"{type(self).__name__} does not take {', '.join(map(repr, unknown))}; "
                f"its options are: {', '.join(sorted(self.options)) or 'none'}"
            )
