"""llmclients: blocking, streaming clients for LLM chat services.

::

    import llmclients

    client = llmclients.OpenAICompatible(base_url="http://localhost:11434/v1")
    for text in client.stream("Write a haiku about rain", model="llama3.2"):
        print(text, end="", flush=True)

``import llmclients`` loads the names a program writes its calls with (the
errors, messages, replies, events and the registry of providers); the
machinery that makes calls, and requests with it, loads with the first
provider class (``llmclients.OpenAICompatible``, ``get_client``), and
:class:`Provider`, :class:`Stream`, :class:`Retry`, :class:`Timeout`,
:class:`InterruptibleAdapter`, :class:`Fallback` and :class:`ToolResult`
when first used: a library or a command that imports llmclients but makes
no call in a run pays for no more.

Everything users import is here or in a public module (``llmclients.errors``,
``.events``, ``.observers``, ``.conversation``, ``.aio``, ``.batch``,
``.celery``, ``.testing``, ``.providers``, ``.providers.kit``,
``.compat.g4f``); the code lives in private packages: ``llmclients._http``
(sending a request, reading its bytes) and ``llmclients._core`` (from bytes
to deltas: one call, its stream and its values).
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any, List

from ._core.messages import image_part
from ._core.timings import Timings
from ._core.values import Choice, Completion, Message, Messages, ToolCall, Usage
from ._public import expose, install
from .errors import (
    AuthenticationError,
    BlockedError,
    CancelToolCall,
    CertificateError,
    ConnectError,
    ConnectTimeout,
    ContextLengthError,
    ContextTruncatedWarning,
    DecodingError,
    FallbackError,
    HTTPStatusError,
    IdleTimeout,
    InvalidJSONError,
    InvalidMessagesError,
    InvalidRequestError,
    InvalidResponseError,
    LLMClientError,
    MalformedStreamError,
    ModelNotFoundError,
    NotFoundError,
    OversizedEventError,
    ProviderError,
    ProxyAuthenticationError,
    ProxyError,
    RateLimitError,
    ReadTimeout,
    ReasoningCutOffWarning,
    RedirectError,
    ReplyTooLargeError,
    RequestTimeoutError,
    SchemaError,
    ServerError,
    StreamError,
    StreamInterruptedError,
    StructuredOutputError,
    ToolCallCutOffError,
    ToolLoopError,
    ToolLoopLimitError,
    TotalTimeout,
    TransportError,
    UnsupportedFeatureError,
)
from .events import Event, ReasoningDelta, RefusalDelta, TextDelta, ToolCallDelta, ToolEnd, ToolStart
from .observers import Observer
from .providers import entries, get_client, get_provider_class, provider_names

if TYPE_CHECKING:
    from ._core.fallback import Fallback
    from ._core.provider import Provider
    from ._core.stream import Stream
    from ._core.tools import ToolResult
    from ._http.config import Retry, Timeout
    from ._http.watchdog import InterruptibleAdapter
    from .providers.allenai import AllenAI
    from .providers.anthropic import Anthropic
    from .providers.aura import Aura
    from .providers.autonomous import AutonomousAI
    from .providers.ollama import Ollama
    from .providers.openai import OpenAICompatible
    from .providers.responses import OpenAIResponses

__version__ = "0.2.0"

__all__ = [
    "AllenAI",
    "Anthropic",
    "Aura",
    "AuthenticationError",
    "AutonomousAI",
    "BlockedError",
    "CancelToolCall",
    "CertificateError",
    "Choice",
    "Completion",
    "ConnectError",
    "ConnectTimeout",
    "ContextLengthError",
    "ContextTruncatedWarning",
    "DecodingError",
    "Event",
    "Fallback",
    "FallbackError",
    "HTTPStatusError",
    "IdleTimeout",
    "InterruptibleAdapter",
    "InvalidJSONError",
    "InvalidMessagesError",
    "InvalidRequestError",
    "InvalidResponseError",
    "LLMClientError",
    "MalformedStreamError",
    "Message",
    "Messages",
    "ModelNotFoundError",
    "NotFoundError",
    "Observer",
    "Ollama",
    "OpenAICompatible",
    "OpenAIResponses",
    "OversizedEventError",
    "Provider",
    "ProviderError",
    "ProxyAuthenticationError",
    "ProxyError",
    "RateLimitError",
    "ReadTimeout",
    "ReasoningCutOffWarning",
    "ReasoningDelta",
    "RedirectError",
    "RefusalDelta",
    "ReplyTooLargeError",
    "RequestTimeoutError",
    "Retry",
    "SchemaError",
    "ServerError",
    "Stream",
    "StreamError",
    "StreamInterruptedError",
    "StructuredOutputError",
    "TextDelta",
    "Timeout",
    "Timings",
    "ToolCall",
    "ToolCallCutOffError",
    "ToolCallDelta",
    "ToolEnd",
    "ToolLoopError",
    "ToolLoopLimitError",
    "ToolResult",
    "ToolStart",
    "TotalTimeout",
    "TransportError",
    "UnsupportedFeatureError",
    "Usage",
    "get_client",
    "get_provider_class",
    "image_part",
    "provider_names",
]

expose(globals(), __name__, __all__)
install()


#: Public names whose modules load on first use. Each of these classes sets
#: ``__module__ = "llmclients"`` in its own module, since expose() above never
#: sees it, and its module may load first from elsewhere (a provider, kit).
_LAZY = {
    "Fallback": "._core.fallback",
    "InterruptibleAdapter": "._http.watchdog",
    "Provider": "._core.provider",
    "Retry": "._http.config",  # a subclass of urllib3's: it imports urllib3
    "Stream": "._core.stream",
    "Timeout": "._http.config",
    "ToolResult": "._core.tools",
}


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        value = getattr(importlib.import_module(_LAZY[name], __name__), name)
        globals()[name] = value  # once: later reads find it without this function
        return value
    # Provider classes by their class name, from the one registry (llmclients.providers):
    # a provider registered later is reachable here too.
    for entry in entries():
        if entry.class_name == name:
            return entry.load()
    raise AttributeError(f"module 'llmclients' has no attribute {name!r}")


def __dir__() -> List[str]:
    return sorted(set(globals()) | set(__all__))
