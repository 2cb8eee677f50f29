"""The public surface, pinned (as httpx's test_exported_members.py does): the
``__all__`` of every public module, that is every module whose dotted path
has no part that starts with an underscore (``llmclients._core.call`` is
private; moving code between private modules is not an API change). A change
here is a change of the API: make it on purpose, and say so in the README's
"Changes"."""

from __future__ import annotations

import importlib
import inspect
import pickle
import pkgutil
import sys
from typing import Dict, List

import pytest

import llmclients
from llmclients._public import MOVED

EXPORTED: Dict[str, List[str]] = {
    "llmclients": [
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
    ],
    "llmclients.aio": [
        "AsyncClient",
        "AsyncConversation",
        "AsyncStream",
        "AsyncToolLoopStream",
        "DEFAULT_BUFFER_SIZE",
        "DEFAULT_MAX_STREAMS",
        "THREAD_NAME",
    ],
    "llmclients.batch": [
        "BadRecordError",
        "BatchRun",
        "Pacer",
        "Record",
        "Result",
        "ResultFile",
        "Stats",
        "TokenBucket",
        "answered_ids",
        "as_records",
        "compact",
        "count_records",
        "estimate_tokens",
        "iter_results",
        "parse_duration",
        "read_records",
        "record_from",
        "retry_after",
        "retryable",
        "run",
    ],
    "llmclients.celery": ["RedisTokenBucket", "TASK_PREFIX", "batch_task", "results", "submit", "task_id"],
    "llmclients.cli": [
        "CHECK_PROMPT",
        "CHECK_TIMEOUT",
        "COMMANDS",
        "EMULATOR_MODEL",
        "ENVIRONMENT",
        "EXIT_INTERRUPTED",
        "EXIT_OK",
        "EXIT_SERVICE",
        "EXIT_SIGINT",
        "EXIT_SIGTERM",
        "EXIT_SOME_FAILED",
        "EXIT_TIMEOUT",
        "EXIT_USAGE",
        "Terminated",
        "UsageError",
        "check_conversation_file",
        "conversation_for",
        "load_conversation",
        "main",
        "one_line",
        "open_client",
        "options_from_args",
        "redact",
        "save_conversation",
    ],
    "llmclients.compat.g4f": [
        "AllenAI",
        "AsyncResult",
        "Aura",
        "AutonomousAI",
        "CompatProvider",
        "Conversation",
        "FinishReason",
        "IgnoredArgumentWarning",
        "Messages",
    ],
    "llmclients.conversation": ["Conversation", "ConversationClient", "STATE_VERSION", "ToolLoopStream"],
    "llmclients.errors": [
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
    ],
    "llmclients.events": [
        "Event",
        "LoopEvent",
        "ReasoningDelta",
        "RefusalDelta",
        "TextDelta",
        "ToolCallDelta",
        "ToolEnd",
        "ToolStart",
    ],
    "llmclients.observers": [
        "CallInfo",
        "EndEvent",
        "FirstDeltaEvent",
        "Observer",
        "RequestEvent",
        "ResponseEvent",
        "RetryEvent",
        "attach",
        "attached",
        "detach",
        "in_conversation",
    ],
    "llmclients.otel": [
        "CAPTURE_CONTENT_VARIABLE",
        "context_headers",
        "instrument",
        "instrumented",
        "remote_context",
        "uninstrument",
    ],
    "llmclients.providers": [
        "BUILTIN",
        "PROVIDERS",
        "ProviderEntry",
        "entries",
        "get_client",
        "get_entry",
        "get_provider_class",
        "message_keys",
        "provider_names",
        "register",
    ],
    "llmclients.providers.anthropic": [
        "API_VERSION",
        "Anthropic",
        "DEFAULT_MAX_TOKENS",
        "ERROR_TYPES",
        "FINISH_REASONS",
        "THINKING_BUDGETS",
        "to_anthropic",
    ],
    "llmclients.providers.kit": [
        "AuthenticationError",
        "BlockedError",
        "CLASS_DEFAULT",
        "Choice",
        "ChoiceBuilder",
        "ClassDefault",
        "ClientOptions",
        "Completion",
        "ContextLengthError",
        "ContextTruncatedWarning",
        "DEFAULT_MAX_REPLY_SIZE",
        "DEFAULT_MAX_RETRIES",
        "DEFAULT_TIMEOUT",
        "Decoder",
        "Event",
        "HTTPStatusError",
        "InvalidMessagesError",
        "InvalidRequestError",
        "LLMClientError",
        "MAX_EVENT_SIZE",
        "MalformedStreamError",
        "Message",
        "Messages",
        "ModelNotFoundError",
        "NDJSONDecoder",
        "NotFoundError",
        "OnComplete",
        "PART_CAPABILITIES",
        "Provider",
        "ProviderEntry",
        "ProviderError",
        "ROLES",
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
    ],
    "llmclients.providers.ollama": ["DEFAULT_PORT", "Ollama", "cut_sizes", "host_url"],
    "llmclients.replylog": [
        "ENVIRONMENT_VARIABLE",
        "ReplyLog",
        "ReplyLogWarning",
        "default_path",
        "from_environment",
        "shared",
        "user_dir",
    ],
    "llmclients.testing": [
        "AllenAIEmulator",
        "AnthropicEmulator",
        "AuraEmulator",
        "AutonomousAIEmulator",
        "DeltaEvent",
        "Emulator",
        "OllamaEmulator",
        "OpenAIEmulator",
        "RecordedRequest",
        "Rejection",
        "Reply",
        "ResponsesEmulator",
        "WireSample",
        "emulator_class",
        "emulator_for",
        "wire_sample",
    ],
    "llmclients.testing.anthropic": [
        "AnthropicEmulator",
        "DEFAULT_MODEL",
        "error_body",
        "error_event",
        "message_delta",
        "message_start",
        "message_stop",
        "ping",
        "redacted_thinking_block",
        "reply_events",
        "serialize",
        "sign",
        "text_block",
        "thinking_block",
        "tool_use_block",
    ],
    "llmclients.testing.ollama": [
        "DEFAULT_MODEL",
        "OllamaEmulator",
        "done_line",
        "error_line",
        "text_lines",
        "thinking_lines",
        "tool_call_line",
    ],
    "llmclients.testing.openai": [
        "BOM",
        "DEFAULT_MODEL",
        "OPENROUTER_PROCESSING",
        "OpenAIEmulator",
        "SplitChunk",
        "TOOL_CALL_SHAPES",
        "choices_chunks",
        "error_event",
        "exceed_context_error",
        "llamacpp_final_chunks",
        "llamacpp_timings",
        "reasoning_chunks",
        "text_chunks",
        "tool_call_chunks",
        "usage_chunk",
        "with_system_fingerprint",
    ],
    "llmclients.testing.responses": [
        "DEFAULT_MODEL",
        "Failed",
        "Output",
        "ResponsesEmulator",
        "error_event",
        "failed",
        "function_call",
        "message",
        "reasoning",
    ],
    "llmclients.testing.wire": ["WireSample"],
}


@pytest.mark.parametrize("name", sorted(EXPORTED))
def test_the_module_exports_what_is_pinned(name: str) -> None:
    module = importlib.import_module(name)
    assert sorted(module.__all__) == EXPORTED[name]
    assert len(set(module.__all__)) == len(module.__all__)  # nothing listed twice


@pytest.mark.parametrize("name", sorted(EXPORTED))
def test_every_exported_name_exists_and_is_public(name: str) -> None:
    module = importlib.import_module(name)
    for exported in module.__all__:
        assert not exported.startswith("_")
        assert hasattr(module, exported), f"{name}.__all__ names {exported}, which it does not define"


def test_the_package_exports_every_error_class() -> None:
    import llmclients
    from llmclients import errors

    classes = {
        name
        for name, value in vars(errors).items()
        if inspect.isclass(value) and issubclass(value, (errors.LLMClientError, Warning)) and not name.startswith("_")
    }
    assert classes <= set(llmclients.__all__)


def test_every_registered_provider_has_a_lazy_class_and_an_emulator() -> None:
    import llmclients
    import llmclients.testing
    from llmclients.providers import BUILTIN, PROVIDERS
    from llmclients.testing import EMULATORS

    assert list(EMULATORS) == list(PROVIDERS)
    assert list(PROVIDERS)[: len(BUILTIN)] == list(BUILTIN)
    for name in BUILTIN:  # the built-in ones' emulators live in the module of the same name
        assert EMULATORS[name].startswith(f"llmclients.testing.{name}:")
    for name, target in PROVIDERS.items():
        assert getattr(llmclients, target.rpartition(":")[2]) is llmclients.get_provider_class(name)
        emulator = EMULATORS[name].rpartition(":")[2]
        assert getattr(llmclients.testing, emulator) is llmclients.testing.emulator_class(name)


def public_modules() -> List[str]:
    names = ["llmclients"]
    for info in pkgutil.walk_packages(llmclients.__path__, "llmclients."):
        parts = info.name.split(".")
        if parts[-1] == "__main__" or any(part.startswith("_") for part in parts):
            continue  # importing __main__ runs the command; the rest is private
        names.append(info.name)
    return names


def test_every_public_module_is_pinned_and_only_those() -> None:
    public = public_modules()
    unpinned = [name for name in public if hasattr(importlib.import_module(name), "__all__") and name not in EXPORTED]
    assert unpinned == []
    assert sorted(set(EXPORTED) - set(public)) == []


@pytest.mark.parametrize("name", sorted(EXPORTED))
def test_public_names_show_a_public_module(name: str) -> None:
    """Reprs, tracebacks and pickles name where users import a class from, not the private module that holds it."""
    module = importlib.import_module(name)
    for exported in module.__all__:
        value = getattr(module, exported)
        if inspect.isclass(value) or inspect.isfunction(value):
            shown = value.__module__
            assert not any(part.startswith("_") for part in shown.split(".")), f"{name}.{exported} shows {shown}"


@pytest.mark.parametrize("old", sorted(MOVED))
def test_the_import_paths_of_0_1_still_work_with_a_warning(old: str, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delitem(sys.modules, old, raising=False)
    with pytest.warns(DeprecationWarning, match=f"{old} moved to the private {MOVED[old]} in llmclients 0.2.0"):
        module = importlib.import_module(old)
    assert module is importlib.import_module(MOVED[old])


def test_a_module_under_an_old_package_path_is_not_loaded_twice(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delitem(sys.modules, "llmclients.body", raising=False)
    monkeypatch.delitem(sys.modules, "llmclients.body.dechunk", raising=False)
    with pytest.warns(DeprecationWarning):
        old = importlib.import_module("llmclients.body.dechunk")
    assert old is importlib.import_module("llmclients._http.body.dechunk")


def test_a_pickle_that_names_a_0_1_module_still_loads(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delitem(sys.modules, "llmclients.types", raising=False)
    now = pickle.dumps(llmclients.Usage(3, 4, 7), protocol=0)
    assert b"cllmclients\nUsage\n" in now  # pickled under its public name
    then = now.replace(b"cllmclients\nUsage\n", b"cllmclients.types\nUsage\n")
    with pytest.warns(DeprecationWarning):
        assert pickle.loads(then) == llmclients.Usage(3, 4, 7) == (3, 4, 7)
