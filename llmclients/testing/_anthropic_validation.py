"""What Anthropic's Messages API refuses with a 400, as :class:`~llmclients.testing.anthropic.AnthropicEmulator` checks it.

:func:`validate` raises :class:`Invalid` with the API's message
(``invalid_request_error``) for: a body without ``model``, ``max_tokens`` or
``messages``, keys the API does not take, a ``max_tokens`` below 1, thinking
budgets out of bounds (and sampling or a forced tool the API does not allow
with thinking on), a ``system`` that is not a str or text blocks, malformed
``tools`` and ``tool_choice``, roles other than ``user`` and ``assistant``,
empty turns, malformed blocks and images, ``tool_result`` blocks that answer
no ``tool_use`` of the turn before (or ``tool_use`` left unanswered), thinking
blocks sent back changed (their ``signature`` is the emulator's own:
:func:`~llmclients.testing.anthropic.sign`), and a tool loop's last assistant
turn without its thinking block when thinking is on.
"""

from __future__ import annotations

from typing import Any, Dict, List, Mapping

from ._anthropic_events import sign

__all__ = ["Invalid", "validate"]

#: The request keys the API takes (any other is "Extra inputs are not permitted").
_KEYS = frozenset(
    {
        "model",
        "messages",
        "max_tokens",
        "system",
        "stream",
        "metadata",
        "stop_sequences",
        "temperature",
        "top_p",
        "top_k",
        "tools",
        "tool_choice",
        "thinking",
        "service_tier",
        "container",
        "mcp_servers",
        "output_config",
    }
)
_BLOCK_TYPES = frozenset(
    {"text", "image", "document", "tool_use", "tool_result", "thinking", "redacted_thinking", "search_result"}
)
_IMAGE_TYPES = ("image/jpeg", "image/png", "image/gif", "image/webp")


class Invalid(Exception):
    """A request the API refuses: ``message`` is its wording."""

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


def validate(body: Any) -> None:
    """Raise :class:`Invalid` with the API's message for a request it refuses."""
    if not isinstance(body, dict):
        raise Invalid("Input should be a valid dictionary or object to extract fields from")
    for key in ("model", "messages", "max_tokens"):
        if key not in body:
            raise Invalid(f"{key}: Field required")
    extra = sorted(set(body) - _KEYS)
    if extra:
        raise Invalid(f"{extra[0]}: Extra inputs are not permitted")
    max_tokens = body["max_tokens"]
    if not isinstance(max_tokens, int) or isinstance(max_tokens, bool) or max_tokens < 1:
        raise Invalid("max_tokens: Input should be a valid integer greater than or equal to 1")
    thinking = body.get("thinking")
    if thinking is not None:
        _validate_thinking(thinking, max_tokens)
    _validate_system(body.get("system"))
    for n, tool in enumerate(body.get("tools") or ()):
        if not isinstance(tool, dict) or not isinstance(tool.get("name"), str):
            raise Invalid(f"tools.{n}.name: Field required")
        if "type" not in tool and not isinstance(tool.get("input_schema"), dict):
            raise Invalid(f"tools.{n}.custom.input_schema: Field required")
    choice = body.get("tool_choice")
    if choice is not None and (not isinstance(choice, dict) or choice.get("type") not in ("auto", "any", "tool", "none")):
        raise Invalid("tool_choice: Input tag does not match any of the expected tags: 'auto', 'any', 'tool', 'none'")
    if choice is not None and choice["type"] == "tool" and not isinstance(choice.get("name"), str):
        raise Invalid("tool_choice.tool.name: Field required")
    messages = body["messages"]
    if not isinstance(messages, list) or not messages:
        raise Invalid("messages: at least one message is required")
    thinking_on = isinstance(thinking, dict) and thinking.get("type") in ("enabled", "adaptive")
    if thinking_on:
        _validate_with_thinking(body)
    last_assistant = max((n for n, m in enumerate(messages) if isinstance(m, dict) and m.get("role") == "assistant"), default=-1)
    for n, message in enumerate(messages):
        _validate_message(n, message, messages, thinking_on and n == last_assistant)


def _validate_with_thinking(body: Mapping[str, Any]) -> None:
    """What the API refuses beside thinking: sampling it does not allow, a forced tool."""
    if body.get("temperature") not in (None, 1, 1.0):
        raise Invalid("`temperature` may only be set to 1 when thinking is enabled. Please consult our documentation at https://docs.claude.com/en/docs/build-with-claude/extended-thinking#feature-compatibility")
    if body.get("top_k") is not None:
        raise Invalid("`top_k` must be unset when thinking is enabled. Please consult our documentation at https://docs.claude.com/en/docs/build-with-claude/extended-thinking#feature-compatibility")
    choice = body.get("tool_choice")
    if isinstance(choice, dict) and choice.get("type") in ("any", "tool"):
        raise Invalid("Thinking may not be enabled when tool_choice forces tool use.")


def _validate_thinking(thinking: Any, max_tokens: int) -> None:
    if not isinstance(thinking, dict) or thinking.get("type") not in ("enabled", "disabled", "adaptive"):
        raise Invalid("thinking: Input tag does not match any of the expected tags: 'enabled', 'disabled', 'adaptive'")
    if thinking["type"] != "enabled":
        return
    budget = thinking.get("budget_tokens")
    if not isinstance(budget, int) or isinstance(budget, bool):
        raise Invalid("thinking.enabled.budget_tokens: Field required")
    if budget < 1024:
        raise Invalid("thinking.enabled.budget_tokens: Input should be greater than or equal to 1024")
    if max_tokens <= budget:
        raise Invalid("`max_tokens` must be greater than `thinking.budget_tokens`.")


def _validate_system(system: Any) -> None:
    if system is None or isinstance(system, str):
        return
    if not isinstance(system, list):
        raise Invalid("system: Input should be a valid list")
    for n, block in enumerate(system):
        if not isinstance(block, dict) or block.get("type") != "text" or not isinstance(block.get("text"), str):
            raise Invalid(f"system.{n}: Input should be a text block")


def _validate_message(n: int, message: Any, messages: List[Any], final_with_thinking: bool) -> None:
    """One turn; ``final_with_thinking``: the last assistant turn of a request with thinking on."""
    where = f"messages.{n}"
    if not isinstance(message, dict):
        raise Invalid(f"{where}: Input should be a valid dictionary")
    role = message.get("role")
    if role == "system":
        raise Invalid(
            'messages: Unexpected role "system". The Messages API accepts a top-level `system` parameter, '
            'not "system" as an input message role.'
        )
    if role not in ("user", "assistant"):
        raise Invalid(f"{where}.role: Input should be 'user' or 'assistant'")
    content = message.get("content")
    last = n == len(messages) - 1
    if isinstance(content, str):
        if not content and not (last and role == "assistant"):
            raise Invalid(f"{where}: all messages must have non-empty content except for the optional final assistant message")
        return
    if not isinstance(content, list):
        raise Invalid(f"{where}.content: Input should be a valid string or list")
    if not content and not (last and role == "assistant"):
        raise Invalid(f"{where}: all messages must have non-empty content except for the optional final assistant message")
    for m, block in enumerate(content):
        _validate_block(f"{where}.content.{m}", block, role)
    if role == "assistant":
        _validate_thinking_blocks(where, content, final_with_thinking)
        uses = [block["id"] for block in content if block["type"] == "tool_use"]
        following = messages[n + 1] if n + 1 < len(messages) else None
        answered = {
            block.get("tool_use_id")
            for block in (following or {}).get("content") or ()
            if isinstance(following, dict) and isinstance(block, dict) and block.get("type") == "tool_result"
        }
        missing = [id for id in uses if id not in answered]
        if missing and following is not None:
            raise Invalid(
                f"{where}: `tool_use` ids were found without `tool_result` blocks immediately after: "
                f"{', '.join(missing)}. Each `tool_use` block must have a corresponding `tool_result` block "
                "in the next message."
            )
    else:
        before = messages[n - 1] if n else {}
        previous = before.get("content") if isinstance(before, dict) else None
        called = {
            block.get("id")
            for block in (previous if isinstance(previous, list) else ())
            if isinstance(block, dict) and block.get("type") == "tool_use"
        }
        for m, block in enumerate(content):
            if block["type"] == "tool_result" and block.get("tool_use_id") not in called:
                raise Invalid(
                    f"{where}.content.{m}: unexpected `tool_use_id` found in `tool_result` blocks: "
                    f"{block.get('tool_use_id')}. Each `tool_result` block must have a corresponding "
                    "`tool_use` block in the previous message."
                )


def _validate_block(where: str, block: Any, role: str) -> None:
    if not isinstance(block, dict) or block.get("type") not in _BLOCK_TYPES:
        kind = block.get("type") if isinstance(block, dict) else None
        raise Invalid(f"{where}.type: Input tag '{kind}' found using 'type' does not match any of the expected tags")
    kind = block["type"]
    if kind == "text" and not isinstance(block.get("text"), str):
        raise Invalid(f"{where}.text.text: Field required")
    if kind == "image":
        _validate_image(where, block.get("source"))
    if kind in ("tool_use", "thinking", "redacted_thinking") and role != "assistant":
        raise Invalid(f"{where}: `{kind}` blocks can only be in `assistant` messages")
    if kind == "tool_result" and role != "user":
        raise Invalid(f"{where}: `tool_result` blocks can only be in `user` messages")
    if kind == "tool_use":
        if not isinstance(block.get("id"), str) or not isinstance(block.get("name"), str):
            raise Invalid(f"{where}.tool_use.id: Field required")
        if not isinstance(block.get("input"), dict):
            raise Invalid(f"{where}.tool_use.input: Input should be a valid dictionary")
    if kind == "thinking" and block.get("signature") != sign(str(block.get("thinking"))):
        raise Invalid(f"{where}: Invalid `signature` in `thinking` block")
    if kind == "redacted_thinking" and not isinstance(block.get("data"), str):
        raise Invalid(f"{where}.redacted_thinking.data: Field required")


def _validate_image(where: str, source: Any) -> None:
    if not isinstance(source, dict):
        raise Invalid(f"{where}.image.source: Field required")
    if source.get("type") == "base64":
        if source.get("media_type") not in _IMAGE_TYPES:
            raise Invalid(
                f"{where}.image.source.base64.media_type: Input should be 'image/jpeg', 'image/png', 'image/gif' or 'image/webp'"
            )
        if not isinstance(source.get("data"), str) or not source["data"]:
            raise Invalid(f"{where}.image.source.base64.data: Field required")
    elif source.get("type") == "url":
        if not isinstance(source.get("url"), str) or not source["url"].startswith(("http://", "https://")):
            raise Invalid(f"{where}.image.source.url.url: Input should be a valid URL")
    else:
        raise Invalid(f"{where}.image.source: Input tag does not match any of the expected tags: 'base64', 'url', 'file'")


def _validate_thinking_blocks(where: str, content: List[Dict[str, Any]], final_with_thinking: bool) -> None:
    """With thinking on, the last assistant turn, if it calls tools, starts
    with its thinking block: the API wants it back (earlier turns' it drops)."""
    if not final_with_thinking or not any(block["type"] == "tool_use" for block in content):
        return
    if content[0]["type"] not in ("thinking", "redacted_thinking"):
        raise Invalid(
            f"{where}.content.0.type: Expected `thinking` or `redacted_thinking`, but found `{content[0]['type']}`. "
            "When `thinking` is enabled, a final `assistant` message must start with a thinking block "
            "(preceeding the lastmost set of `tool_use` and `tool_result` blocks). To avoid this requirement, "
            "disable `thinking`."
        )
