"""Everything a provider's author uses, in one import.

A provider is a :class:`Provider` subclass that declares its service and
implements two methods: :meth:`~Provider.build_request` (messages and options
to a :class:`Request`) and :meth:`~Provider.parse_event` (one decoded event to a
text delta, noting the finish reason, usage or model in the
:class:`StreamState`). Sending, retries, reading, decoding, timeouts and the
:class:`Stream` are llmclients' affair. Here is a whole one, for a service that
streams NDJSON lines ``{"text": "..."}`` and ends with ``{"done": true}``::

    from typing import Any, Dict, List, Optional

    from llmclients.providers.kit import (
        Message, Provider, ProviderError, Request, StreamInterruptedError, StreamState, load_json,
    )


    class ToyProvider(Provider):
        name = "toy"
        label = "Toy"
        models = ("toy-1",)
        default_model = "toy-1"
        event_format = "ndjson"
        stream_types = frozenset({"application/x-ndjson"})
        options = frozenset({"temperature"})

        def build_request(
            self, messages: List[Message], model: str, options: Dict[str, Any], thread: Dict[str, Any]
        ) -> Request:
            body = {"model": model, "messages": messages, **options}
            return Request("POST", f"{self.base_url}/chat", json=body)

        def parse_event(self, data: str, state: StreamState) -> Optional[str]:
            line = load_json(data)
            if "error" in line:
                raise ProviderError(f"Toy reported an error: {line['error']}")
            if line.get("done"):
                state.done, state.finish_reason = True, "stop"
                return None
            return str(line.get("text", ""))

        def finish(self, state: StreamState) -> None:
            if not state.done:
                raise StreamInterruptedError("the stream ended before its done line")

Then register it, with its emulator (a :class:`llmclients.testing.Emulator`
subclass, whose ``wire`` sample lets the tests of every provider cover it)::

    register("toy", "toy_llm.provider:ToyProvider", emulator="toy_llm.emulator:ToyEmulator")

A provider with arguments of its own declares only those, and takes the
shared ones as ``**options`` (:class:`ClientOptions`); its signature, in
``help()`` and IDEs, still lists every one::

    def __init__(self, *, organization: Optional[str] = None, **options: Unpack[ClientOptions]) -> None:
        super().__init__(**options)
        self.organization = organization
"""

from __future__ import annotations

from .._core.choices import ChoiceBuilder
from .._core.framing import (
    MAX_EVENT_SIZE,
    Decoder,
    NDJSONDecoder,
    SSEDecoder,
    SSEEvent,
    TextDecoder,
    WholeDecoder,
    iter_ndjson,
    iter_sse,
    load_json,
)
from .._core.messages import (
    PART_CAPABILITIES,
    ROLES,
    check_tools,
    content_text,
    features_of,
    image_part,
    normalize_messages,
)
from .._core.options import ClientOptions
from .._core.provider import Provider
from .._core.state import DEFAULT_MAX_REPLY_SIZE, OnComplete, StreamState
from .._core.stream import Stream
from .._core.values import Choice, Completion, Message, Messages, ToolCall, Usage, parse_json
from .._http.config import CLASS_DEFAULT, ClassDefault, Retry, Timeout, TimeoutLike
from .._http.masking import excerpt
from .._http.request import Request
from .._http.status_errors import error_message
from .._http.transport import DEFAULT_MAX_RETRIES, DEFAULT_TIMEOUT
from .._public import expose
from ..errors import (
    AuthenticationError,
    BlockedError,
    ContextLengthError,
    ContextTruncatedWarning,
    HTTPStatusError,
    InvalidMessagesError,
    InvalidRequestError,
    LLMClientError,
    MalformedStreamError,
    ModelNotFoundError,
    NotFoundError,
    ProviderError,
    RateLimitError,
    ServerError,
    StreamInterruptedError,
    UnsupportedFeatureError,
)
from ..events import Event, ReasoningDelta, RefusalDelta, TextDelta, ToolCallDelta
from . import ProviderEntry, register
from ._prompt import format_prompt, last_user_message

__all__ = [
    "CLASS_DEFAULT",
    "DEFAULT_MAX_REPLY_SIZE",
    "DEFAULT_MAX_RETRIES",
    "DEFAULT_TIMEOUT",
    "MAX_EVENT_SIZE",
    "PART_CAPABILITIES",
    "ROLES",
    "AuthenticationError",
    "BlockedError",
    "Choice",
    "ChoiceBuilder",
    "ClassDefault",
    "ClientOptions",
    "Completion",
    "ContextLengthError",
    "ContextTruncatedWarning",
    "Decoder",
    "Event",
    "HTTPStatusError",
    "InvalidMessagesError",
    "InvalidRequestError",
    "LLMClientError",
    "MalformedStreamError",
    "Message",
    "Messages",
    "ModelNotFoundError",
    "NDJSONDecoder",
    "NotFoundError",
    "OnComplete",
    "Provider",
    "ProviderEntry",
    "ProviderError",
    "RateLimitError",
    "ReasoningDelta",
    "RefusalDelta",
    "Request",
    "Retry",
    "SSEDecoder",
    "SSEEvent",
    "ServerError",
    "Stream",
    "StreamInterruptedError",
    "StreamState",
    "TextDecoder",
    "TextDelta",
    "Timeout",
    "TimeoutLike",
    "ToolCall",
    "ToolCallDelta",
    "UnsupportedFeatureError",
    "Usage",
    "WholeDecoder",
    "check_tools",
    "content_text",
    "error_message",
    "excerpt",
    "features_of",
    "format_prompt",
    "image_part",
    "iter_ndjson",
    "iter_sse",
    "last_user_message",
    "load_json",
    "normalize_messages",
    "parse_json",
    "register",
]

expose(globals(), __name__, __all__)
