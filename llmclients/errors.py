"""Every exception llmclients raises, in one hierarchy.

::

    LLMClientError                      base of everything below; .partial_text
    ├── InvalidRequestError             bad input caught before any request (also ValueError),
    │   │                               a URL without a scheme or of one requests cannot send,
    │   │                               a socks5:// proxy without PySocks
    │   ├── InvalidMessagesError        a message, content part or tool call of the wrong shape
    │   ├── UnsupportedFeatureError     the provider cannot carry tools/images/...; .feature
    │   ├── ModelNotFoundError          unknown model; .valid_models lists the ids
    │   ├── SchemaError                 a function or type has no JSON Schema (also TypeError);
    │   │                               .function, .parameter
    │   └── BadRecordError              (in llmclients.batch) a batch input line that is no record; .line
    ├── TransportError                  the HTTP exchange itself failed
    │   ├── ConnectError                no connection (refused, DNS, reset before the response)
    │   │   ├── CertificateError        the server's TLS certificate failed verification (not retried)
    │   │   └── ProxyError              the proxy refused or failed
    │   │       └── ProxyAuthenticationError  the proxy wants other credentials (not retried)
    │   ├── InvalidResponseError        the status line or headers are not valid HTTP (not retried)
    │   └── RequestTimeoutError         a time limit ran out (also builtins.TimeoutError)
    │       ├── ConnectTimeout          connecting took longer than `connect`
    │       ├── ReadTimeout             no byte arrived for `read` seconds
    │       ├── IdleTimeout             no text delta for `idle` seconds (pings don't count)
    │       └── TotalTimeout            the whole call (headers, body, retries) exceeded `total` (600 s)
    ├── HTTPStatusError                 the service answered 4xx/5xx; .status_code, .body_excerpt,
    │   │                               .code/.type/.param (an OpenAI-style error body), .request_id,
    │   │                               .rate_limits (the x-ratelimit-* headers)
    │   ├── ContextLengthError          the prompt does not fit the model's context; .prompt_tokens, .context_tokens
    │   ├── BlockedError                a bot check (Cloudflare challenge page) stood in the way, whatever its status
    │   ├── AuthenticationError         401 and 403
    │   ├── NotFoundError               404
    │   ├── RateLimitError              429 (.retry_after, on every status error, from Retry-After)
    │   ├── RedirectError               a 3xx not followed (another origin, https→http, or a method
    │   │                               change); .location, and the message says what base_url to set
    │   └── ServerError                 5xx (and Anthropic's 529 "overloaded")
    ├── StreamError                     the response started but its body went wrong
    │   ├── StreamInterruptedError      the connection broke before the stream's end
    │   ├── MalformedStreamError        bytes that are not the protocol (bad JSON, bad framing, an HTML page)
    │   │   ├── DecodingError           invalid UTF-8 or a content-encoding that fails
    │   │   └── OversizedEventError     one line or event larger than the decoder's limit
    │   ├── ReplyTooLargeError          the reply grew past the client's max_reply_size
    │   └── ProviderError               the service reported an error inside the stream (or a 200's JSON); .reason
    ├── InvalidJSONError                a reply or tool call's arguments are not the JSON asked for; .text
    │   └── StructuredOutputError       a reply does not fit its response_format type; .problems
    └── ToolLoopError                   Conversation.run() stopped before the model answered; .reply
        ├── ToolLoopLimitError          max_steps replies in a row asked for tools
        └── ToolCallCutOffError         the token limit cut a tool call short: raise max_tokens
    FallbackError                       every client of a Fallback failed; .errors

    CancelToolCall                      (raised by a before_call hook) refuse one tool call; not an error

    ReasoningCutOffWarning              (a warning) the token limit ended a reply while it was still reasoning
    ContextTruncatedWarning             (a warning) the server cut the prompt to fit its context window (Ollama's num_ctx)

Retries (see :class:`llmclients.Retry`) happen only before the first text
delta; an error after it is raised with ``partial_text`` and never retried.
Failures that would fail the same way again are never retried: a certificate
that fails verification, proxy credentials refused, a malformed response head,
a bad URL.

Every error raised while a stream is iterated carries ``partial_text``: the text
already yielded to the caller, so that nothing received is lost.

Messages never contain API keys, ``Authorization`` headers, cookies or proxy
credentials: the text of an error body is reduced to a short excerpt, HTML
pages are never echoed, and a client's secrets are masked as ``***`` wherever
text from the server (an error body, an in-stream error, a malformed event)
goes into a message.

Every error pickles with its attributes (``partial_text`` included), so it
crosses a ``multiprocessing`` pool or a task queue whole.
"""

from __future__ import annotations

import builtins
from typing import Any, Dict, Optional, Sequence, Tuple, Type, TypeVar

__all__ = [
    "AuthenticationError",
    "BlockedError",
    "CancelToolCall",
    "CertificateError",
    "ConnectError",
    "ConnectTimeout",
    "ContextLengthError",
    "ContextTruncatedWarning",
    "DecodingError",
    "FallbackError",
    "HTTPStatusError",
    "IdleTimeout",
    "InvalidJSONError",
    "InvalidMessagesError",
    "InvalidRequestError",
    "InvalidResponseError",
    "LLMClientError",
    "MalformedStreamError",
    "ModelNotFoundError",
    "NotFoundError",
    "OversizedEventError",
    "ProviderError",
    "ProxyAuthenticationError",
    "ProxyError",
    "RateLimitError",
    "ReadTimeout",
    "ReasoningCutOffWarning",
    "RedirectError",
    "ReplyTooLargeError",
    "RequestTimeoutError",
    "SchemaError",
    "ServerError",
    "StreamError",
    "StreamInterruptedError",
    "StructuredOutputError",
    "ToolCallCutOffError",
    "ToolLoopError",
    "ToolLoopLimitError",
    "TotalTimeout",
    "TransportError",
    "UnsupportedFeatureError",
]


_B = TypeVar("_B", bound=BaseException)


class LLMClientError(Exception):
    """Base class of every llmclients error."""

    #: The text yielded to the caller before the error; "" if none was.
    partial_text: str = ""

    def __init__(self, message: str, *, partial_text: str = "") -> None:
        super().__init__(message)
        self.message = message
        self.partial_text = partial_text

    def __str__(self) -> str:
        if self.partial_text:
            return f"{self.message} (after {len(self.partial_text)} characters of text)"
        return self.message

    def __reduce__(self) -> Tuple[Any, ...]:
        # Exception's own pickling calls cls(*self.args), which fails for any
        # subclass whose __init__ takes other (or keyword-only) arguments, and
        # drops attributes set after it. Rebuild from args and __dict__ instead,
        # for every subclass alike.
        return (_restore, (type(self), self.args, self.__dict__))

    def reworded(self: _E, message: str) -> _E:
        """The same error, every attribute kept, with ``message`` (a provider
        explaining what a bare status means for its service)."""
        new = _restore(type(self), (message,), self.__dict__)
        new.message = message
        return new


_E = TypeVar("_E", bound="LLMClientError")


def _restore(cls: Type[_B], args: Tuple[Any, ...], state: Dict[str, Any]) -> _B:
    """Unpickle an error without calling its ``__init__``."""
    error = cls.__new__(cls, *args)
    error.args = args
    error.__dict__.update(state)
    return error


class InvalidRequestError(LLMClientError, ValueError):
    """The call's arguments are wrong; nothing was sent."""


class InvalidMessagesError(InvalidRequestError):
    """``messages`` is neither a string nor a list of role/content dicts."""


class UnsupportedFeatureError(InvalidRequestError):
    """The provider cannot carry what the call asks for (tools, images, ...); nothing was sent."""

    def __init__(self, message: str, *, feature: str) -> None:
        super().__init__(message)
        self.feature = feature


class ModelNotFoundError(InvalidRequestError):
    """The provider has no model of that name."""

    def __init__(self, model: str, provider: str, valid_models: Sequence[str]) -> None:
        self.model = model
        self.provider = provider
        self.valid_models = list(valid_models)
        super().__init__(f"{provider} has no model {model!r}; valid models: {', '.join(self.valid_models)}")


class SchemaError(InvalidRequestError, TypeError):
    """A function (a tool) or a type (a ``response_format``) cannot be described
    as JSON Schema; nothing was sent. ``function`` and ``parameter`` name what,
    when it is a function's parameter."""

    def __init__(self, message: str, *, function: Optional[str] = None, parameter: Optional[str] = None) -> None:
        super().__init__(message)
        self.function = function
        self.parameter = parameter


class TransportError(LLMClientError):
    """The HTTP exchange failed below the level of HTTP statuses."""


class ConnectError(TransportError):
    """No usable connection: refused, unresolvable, or reset before a response."""


class CertificateError(ConnectError):
    """The server's TLS certificate failed verification; not retried, as it
    would fail the same way. Pass ``verify=`` a CA bundle that signs it."""


class ProxyError(ConnectError):
    """The proxy could not be reached or refused the tunnel."""


class ProxyAuthenticationError(ProxyError):
    """The proxy refused its credentials (407, a tinyproxy 401, a SOCKS5 login
    refused); not retried."""


class InvalidResponseError(TransportError):
    """The response's status line or headers are not valid HTTP: a line over
    64 KiB, more than 100 headers. Not retried: the server sends it again."""


class RequestTimeoutError(TransportError, builtins.TimeoutError):
    """A time limit ran out."""


class ConnectTimeout(RequestTimeoutError):
    """Connecting took longer than the connect timeout."""


class ReadTimeout(RequestTimeoutError):
    """No byte arrived within the read timeout."""


class IdleTimeout(RequestTimeoutError):
    """No text delta arrived within the idle timeout, whatever else did."""


class TotalTimeout(RequestTimeoutError):
    """The call as a whole ran past its total timeout."""


class HTTPStatusError(LLMClientError):
    """The service answered with an error status."""

    should_retry: Optional[bool] = None

    def __init__(
        self,
        message: str,
        *,
        status_code: int,
        body_excerpt: str = "",
        partial_text: str = "",
        code: Optional[str] = None,
        type: Optional[str] = None,
        param: Optional[str] = None,
        request_id: Optional[str] = None,
    ) -> None:
        super().__init__(message, partial_text=partial_text)
        self.status_code = status_code
        self.body_excerpt = body_excerpt
        #: ``code``, ``type`` and ``param`` of an OpenAI-style JSON error body, when it has them.
        self.code = code
        self.type = type
        self.param = param
        #: The ``x-request-id`` (or ``request-id``) response header: what a service's support asks for.
        self.request_id = request_id
        #: Seconds the service asked to wait (``retry-after-ms``, else ``Retry-After``), or None.
        self.retry_after: Optional[float] = None
        #: What the service said of retrying (``x-should-retry: true|false``,
        #: Anthropic's and OpenAI's): it overrides the status; None if it said nothing.
        self.should_retry: Optional[bool] = None
        #: The ``x-ratelimit-*`` response headers, names lower-cased (empty if none).
        self.rate_limits: Dict[str, str] = {}


class ContextLengthError(HTTPStatusError):
    """The prompt (with the tokens asked for) does not fit the model's context window.

    Recognised from OpenAI (``code: context_length_exceeded``), llama.cpp
    (``type: exceed_context_size_error``), vLLM (its "maximum context length"
    message) and Anthropic ("prompt is too long", and the stop reason
    ``model_context_window_exceeded``). ``prompt_tokens`` and ``context_tokens`` hold the counts when the
    server gave them.
    """

    prompt_tokens: Optional[int] = None
    context_tokens: Optional[int] = None


class BlockedError(HTTPStatusError):
    """A bot check (a Cloudflare challenge page, say) answered instead of the service."""


class AuthenticationError(HTTPStatusError):
    """401 Unauthorized or 403 Forbidden: missing, wrong or insufficient credentials."""


class NotFoundError(HTTPStatusError):
    """404: the endpoint (or the model behind it) does not exist."""


class RateLimitError(HTTPStatusError):
    """429 Too Many Requests; ``retry_after`` says how long to wait, if the service said."""


class RedirectError(HTTPStatusError):
    """A redirect that is not followed: to another origin (scheme, host or port),
    from https to http, one that would turn the POST into a GET (301/302/303),
    or too many hops. ``location`` is where it led; the message says what
    ``base_url`` to set instead. Same-origin 307/308 are followed."""

    def __init__(self, message: str, *, location: str = "", **kwargs: Any) -> None:
        super().__init__(message, **kwargs)
        #: The absolute URL the redirect led to.
        self.location = location


class ServerError(HTTPStatusError):
    """5xx: the service failed."""


class StreamError(LLMClientError):
    """The response began, but its body did not complete as the protocol says."""


class StreamInterruptedError(StreamError):
    """The connection broke, or the body ended, before the stream's end."""


class MalformedStreamError(StreamError):
    """The body does not follow the provider's protocol."""


class DecodingError(MalformedStreamError):
    """The body is not valid UTF-8, or its content-encoding cannot be decoded."""


class OversizedEventError(MalformedStreamError):
    """One line or event exceeded the decoder's size limit."""


class ReplyTooLargeError(StreamError):
    """The reply grew past the client's ``max_reply_size``; ``partial_text`` holds
    the text yielded up to that point, and the connection is closed."""


class ProviderError(StreamError):
    """The service reported an error inside the stream."""

    def __init__(self, message: str, *, reason: Optional[str] = None, partial_text: str = "") -> None:
        super().__init__(message, partial_text=partial_text)
        #: The server's code or type for the error, when it gave one.
        self.reason = reason


class InvalidJSONError(LLMClientError, ValueError):
    """A reply (``Completion.json()``) or a tool call's arguments are not valid JSON,
    or were cut off by the token limit; ``text`` holds what arrived."""

    def __init__(self, message: str, *, text: str = "") -> None:
        super().__init__(message)
        self.text = text


class StructuredOutputError(InvalidJSONError):
    """A reply asked for as a type (``response_format=City``) is not an instance
    of it: not JSON, cut off by the token limit (``finish_reason`` "length"), a
    refusal, or JSON that does not fit. ``text`` holds the reply, ``problems``
    what does not fit (one line each, with its place: ``$.population``)."""

    def __init__(self, message: str, *, text: str = "", problems: Sequence[str] = ()) -> None:
        super().__init__(message, text=text)
        self.problems = list(problems)


class ToolLoopError(LLMClientError):
    """:meth:`Conversation.run() <llmclients.conversation.Conversation.run>`
    stopped before the model answered without tools.

    ``reply`` is the last reply; ``conversation`` the conversation, which
    keeps every turn so far, none of its calls left unanswered: ``send()``
    and ``run()`` go on from it. A pickled error leaves ``conversation``
    out (it holds its client); keep ``conversation.to_dict()`` instead.
    """

    def __init__(self, message: str, *, reply: Any = None, conversation: Any = None) -> None:
        super().__init__(message)
        #: The last :class:`~llmclients.Completion` of the loop.
        self.reply = reply
        #: The :class:`~llmclients.conversation.Conversation` (or its asyncio face).
        self.conversation = conversation

    def __reduce__(self) -> Tuple[Any, ...]:
        return (_restore, (type(self), self.args, {**self.__dict__, "conversation": None}))


class ToolLoopLimitError(ToolLoopError):
    """Each of ``max_steps`` replies asked for tools. The calls of the last one
    were not run: each is answered so, and ``run()`` goes on for more steps."""


class ToolCallCutOffError(ToolLoopError):
    """The token limit ended a reply in the middle of a tool call. The cut
    call is left out of the conversation (its whole calls were run); raise
    ``max_tokens`` and ``run()`` again, or ``send()`` a new turn."""


class CancelToolCall(Exception):
    """Raised by a ``before_call`` hook of :meth:`Conversation.run()
    <llmclients.conversation.Conversation.run>` to refuse one tool call: the
    call is not run, the message (the reason) is sent back as its result,
    and the loop goes on. Not an error of llmclients', so not an
    :class:`LLMClientError`."""


class ReasoningCutOffWarning(UserWarning):
    """The token limit ended a reply while the model was still reasoning: its text is empty."""


class ContextTruncatedWarning(UserWarning):
    """The server cut the prompt to fit the model's context window and answered
    anyway, without an error: the model never saw the start of it. Ollama does
    this to any prompt longer than ``num_ctx``; raise ``num_ctx`` to keep it whole."""


class FallbackError(LLMClientError):
    """Every client of a :class:`~llmclients.Fallback` failed before its first delta."""

    def __init__(self, failures: Sequence[Tuple[str, LLMClientError]]) -> None:
        self.errors = list(failures)
        lines = "; ".join(f"{name}: {type(exc).__name__}: {exc}" for name, exc in self.errors)
        super().__init__(f"all {len(self.errors)} clients failed — {lines}")
