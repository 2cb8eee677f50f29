"""The public surface, pinned (as httpx's test_exported_members.py does): the
``__all__`` of every module that has one. A change here is a change of the
API: make it on purpose, and say so in the README."""

from __future__ import annotations

import importlib
import inspect
import pkgutil
from typing import Dict, List

import pytest

import llmclients

EXPORTED: Dict[str, List[str]] = {
    "llmclients": [
        "AllenAI",
        "Aura",
        "AuthenticationError",
        "AutonomousAI",
        "BlockedError",
        "CertificateError",
        "Choice",
        "Completion",
        "ConnectError",
        "ConnectTimeout",
        "ContextLengthError",
        "DecodingError",
        "Event",
        "Fallback",
        "FallbackError",
        "HTTPStatusError",
        "IdleTimeout",
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
        "OpenAICompatible",
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
        "ServerError",
        "Stream",
        "StreamError",
        "StreamInterruptedError",
        "TextDelta",
        "Timeout",
        "ToolCall",
        "ToolCallDelta",
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
        "DEFAULT_BUFFER_SIZE",
        "DEFAULT_MAX_STREAMS",
        "THREAD_NAME",
    ],
    "llmclients.aio.channel": [
        "Cancelled",
        "Channel",
        "LOOP_CHECK_INTERVAL",
        "Waker",
        "can_watch_sockets",
        "resolve",
        "waker_of",
    ],
    "llmclients.aio.client": [
        "AsyncClient",
        "AsyncConversation",
        "AsyncStream",
        "DEFAULT_BUFFER_SIZE",
        "DEFAULT_MAX_STREAMS",
        "Slots",
    ],
    "llmclients.aio.pool": [
        "Job",
        "OPENERS",
        "STALL",
        "THREADS",
        "THREAD_IDLE",
        "THREAD_NAME",
        "Threads",
        "thread_numbers",
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
    "llmclients.batch.pacing": ["Pacer", "TokenBucket", "estimate_tokens", "parse_duration"],
    "llmclients.batch.records": [
        "BadRecordError",
        "JSONL_SUFFIXES",
        "PathLike",
        "Record",
        "as_records",
        "count_records",
        "read_records",
        "record_from",
    ],
    "llmclients.batch.results": ["Result", "ResultFile", "answered_ids", "compact", "iter_results"],
    "llmclients.batch.running": ["BatchRun", "Stats", "retry_after", "retryable", "run"],
    "llmclients.body": [
        "Body",
        "ERROR_BODY_LIMIT",
        "MAX_INFLATE",
        "READ_SIZE",
        "Read",
        "WOULD_BLOCK",
        "Waiting",
        "shutdown",
        "socket_of",
    ],
    "llmclients.body.dechunk": [
        "Dechunker",
        "can_dechunk",
    ],
    "llmclients.body.inflate": [
        "INFLATERS",
        "Inflater",
        "MAX_INFLATE",
    ],
    "llmclients.body.sockets": [
        "ERROR_BODY_LIMIT",
        "READ_SIZE",
        "Read",
        "ReleaseGuard",
        "WOULD_BLOCK",
        "Waiting",
        "shutdown",
        "socket_of",
    ],
    "llmclients.celery": [
        "TASK_PREFIX",
        "batch_task",
        "results",
        "submit",
        "task_id",
    ],
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
    "llmclients.cli.batch": [
        "batch_command",
    ],
    "llmclients.cli.chat": [
        "chat_command",
        "options_from_args",
        "print_usage_error",
    ],
    "llmclients.cli.client": [
        "model_for",
        "open_client",
    ],
    "llmclients.cli.common": [
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
        "apply_environment",
        "describe",
        "env_setting",
        "exit_code",
        "explanation",
        "fail",
        "logger",
        "one_line",
        "positive_number",
        "provenance",
        "seconds",
    ],
    "llmclients.cli.conversations": [
        "check_conversation_file",
        "conversation_for",
        "load_conversation",
        "save_conversation",
    ],
    "llmclients.cli.info": [
        "CHECK_PROMPT",
        "EMULATOR_MODEL",
        "check_command",
        "emulate_command",
        "models_command",
        "providers_command",
    ],
    "llmclients.cli.logs": [
        "configure_logging",
        "redact",
    ],
    "llmclients.cli.parser": [
        "CHECK_TIMEOUT",
        "Parser",
        "build_parser",
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
    "llmclients.config": [
        "CLASS_DEFAULT",
        "ClassDefault",
        "DEFAULT_TOTAL",
        "Deadline",
        "Retry",
        "Timeout",
        "TimeoutLike",
    ],
    "llmclients.conversation": [
        "Conversation",
        "STATE_VERSION",
    ],
    "llmclients.decoding": [
        "Decoder",
        "MAX_EVENT_SIZE",
        "NDJSONDecoder",
        "SSEDecoder",
        "SSEEvent",
        "SSEItem",
        "TextDecoder",
        "WholeDecoder",
        "iter_ndjson",
        "iter_sse",
        "iter_text",
        "iter_whole",
        "load_json",
    ],
    "llmclients.errors": [
        "AuthenticationError",
        "BlockedError",
        "CertificateError",
        "ConnectError",
        "ConnectTimeout",
        "ContextLengthError",
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
        "ServerError",
        "StreamError",
        "StreamInterruptedError",
        "TotalTimeout",
        "TransportError",
        "UnsupportedFeatureError",
    ],
    "llmclients.events": [
        "ChoiceBuilder",
        "Event",
        "ReasoningDelta",
        "RefusalDelta",
        "TextDelta",
        "ToolCallDelta",
    ],
    "llmclients.failures": [
        "reason",
        "translate",
    ],
    "llmclients.fallback": [
        "Fallback",
        "FallbackStream",
    ],
    "llmclients.images": [
        "data_url",
        "sniff_image",
    ],
    "llmclients.masking": [
        "MASK",
        "MIN_SECRET_LENGTH",
        "mask",
        "mask_error",
        "redact_url",
        "secrets_in",
    ],
    "llmclients.preparing": ["MAX_TEMPLATES", "Preparer"],
    "llmclients.media": [
        "HTML_TYPES",
        "PAGE_SNIFF_SIZE",
        "check",
        "completion_reader",
        "is_json",
        "media_type",
    ],
    "llmclients.prompt": [
        "format_prompt",
        "last_user_message",
    ],
    "llmclients.provider": [
        "LOGGED_STRING_LIMIT",
        "Provider",
        "loggable_body",
    ],
    "llmclients.providers": [
        "PROVIDERS",
        "get_client",
        "get_provider_class",
        "provider_names",
    ],
    "llmclients.reading": [
        "DEFAULT_MAX_REPLY_SIZE",
        "Exchange",
        "Finish",
        "OnComplete",
        "ParseEvent",
        "Reopen",
        "StreamState",
        "deltas",
    ],
    "llmclients.redirects": [
        "MAX_REDIRECTS",
        "redirected_request",
    ],
    "llmclients.status": [
        "EXCERPT_LENGTH",
        "body_excerpt",
        "error_body",
        "error_facts",
        "is_bot_check",
        "parse_retry_after",
        "rate_limits_of",
        "refused_by_proxy",
        "request_id_of",
        "status_error",
    ],
    "llmclients.stream": [
        "Stream",
        "completion_of",
    ],
    "llmclients.testing": [
        "AllenAIEmulator",
        "AuraEmulator",
        "AutonomousAIEmulator",
        "Emulator",
        "OpenAIEmulator",
        "RecordedRequest",
        "Rejection",
        "Reply",
        "emulator_for",
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
    "llmclients.testing.openai_events": [
        "BOM",
        "Event",
        "OPENROUTER_PROCESSING",
        "SplitChunk",
        "TOOL_CALL_SHAPES",
        "choices_chunks",
        "error_event",
        "exceed_context_error",
        "llamacpp_final_chunks",
        "llamacpp_timings",
        "reasoning_chunks",
        "serialize",
        "text_chunks",
        "tool_call_chunks",
        "usage_chunk",
        "with_system_fingerprint",
    ],
    "llmclients.testing.openai_validation": [
        "Invalid",
        "ROLES",
        "validate",
    ],
    "llmclients.transport": [
        "Call",
        "DEFAULT_MAX_RETRIES",
        "DEFAULT_POOL_SIZE",
        "DEFAULT_TIMEOUT",
        "MAX_RETRY_WAIT",
        "Request",
        "Transport",
        "USER_AGENT",
        "redact_url",
    ],
    "llmclients.types": [
        "Choice",
        "Completion",
        "Message",
        "Messages",
        "PART_CAPABILITIES",
        "ROLES",
        "ToolCall",
        "Usage",
        "content_text",
        "features_of",
        "image_part",
        "normalize_messages",
        "parse_json",
    ],
    "llmclients.watchdog": [
        "Guard",
        "InterruptibleAdapter",
        "WATCHDOG",
        "Watchdog",
    ],
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
    from llmclients.providers import PROVIDERS
    from llmclients.testing import EMULATORS

    assert list(EMULATORS) == list(PROVIDERS)
    for name, target in PROVIDERS.items():
        assert EMULATORS[name].startswith(f"llmclients.testing.{name}:")
        assert getattr(llmclients, target.rpartition(":")[2]) is llmclients.get_provider_class(name)


def test_every_module_with_an_all_is_pinned() -> None:
    unpinned = []
    for info in pkgutil.walk_packages(llmclients.__path__, "llmclients."):
        if info.name.endswith("__main__"):  # importing it runs the command
            continue
        if hasattr(importlib.import_module(info.name), "__all__") and info.name not in EXPORTED:
            unpinned.append(info.name)
    assert unpinned == []
