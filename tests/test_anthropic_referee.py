"""The official ``anthropic`` client as the referee of the emulator: pointed at
the same scripted replies, it must accept the bytes, and its final message
(text, thinking, tool inputs, usage, stop reason) must equal llmclients' result."""

from __future__ import annotations

import json
from typing import Any, Dict, List

import pytest

import llmclients
from llmclients import errors
from llmclients.testing import AnthropicEmulator, Reply
from llmclients.testing.anthropic import (
    error_event,
    message_start,
    redacted_thinking_block,
    reply_events,
    serialize,
    text_block,
    thinking_block,
    tool_use_block,
)

anthropic = pytest.importorskip("anthropic")

ARGUMENTS = '{"city": "Zürich 🌧", "units": "celsius", "days": [1, 2, 3]}'
USAGE = {"input_tokens": 12, "cache_read_input_tokens": 300, "cache_creation_input_tokens": 40, "output_tokens": 77}


def split_everywhere(text: str) -> List[str]:
    """``text`` one character a fragment, with empty fragments between."""
    return [piece for char in text for piece in (char, "")]


SCRIPTS: Dict[str, List[Dict[str, Any]]] = {
    "text": reply_events([text_block(0, ["Hello", ", wörld", " 🌧", ""])]),
    "usage with caches": reply_events([text_block(0, ["cached"])], usage=USAGE),
    "thinking": reply_events(
        [thinking_block(0, ["Let me ", "think."]), redacted_thinking_block(1), text_block(2, ["Done."])],
        usage=USAGE,
    ),
    "tool call split anywhere": reply_events(
        [text_block(0, ["Checking."]), tool_use_block(1, "toolu_01", "get_weather", split_everywhere(ARGUMENTS))],
        stop_reason="tool_use",
    ),
    "several calls, empty inputs": reply_events(
        [
            tool_use_block(0, "toolu_01", "get_weather", ['{"city":', ' "Oslo"}']),
            tool_use_block(1, "toolu_02", "now", ["", ""]),
            tool_use_block(2, "toolu_03", "now", []),
            tool_use_block(3, "toolu_04", "get_weather", ["", '{"city": "Rome"}', ""]),
        ],
        stop_reason="tool_use",
    ),
    "stop sequence and max tokens": reply_events([text_block(0, ["cut"])], stop_reason="max_tokens"),
}


def official(emulator: AnthropicEmulator) -> Any:
    client = anthropic.Anthropic(api_key="k", base_url=emulator.url, max_retries=0)
    with client.messages.stream(
        model="claude-sonnet-4-5", max_tokens=1024, messages=[{"role": "user", "content": "Hi"}]
    ) as stream:
        return stream.get_final_message()


def ours(emulator: AnthropicEmulator) -> llmclients.Completion:
    with llmclients.Anthropic(base_url=emulator.base_url, api_key="k", max_retries=0) as client:
        return client.complete("Hi")


@pytest.mark.parametrize("framing", ["chunked", "split inside characters"])
@pytest.mark.parametrize("script", list(SCRIPTS))
def test_the_official_client_reads_what_llmclients_reads(script: str, framing: str) -> None:
    events = SCRIPTS[script]
    if framing == "chunked":
        reply = Reply(events=events)
    else:
        wire = b"".join(serialize(event) for event in events)
        reply = Reply(raw=[wire[n : n + 7] for n in range(0, len(wire), 7)])  # inside characters, lines, events
    with AnthropicEmulator(api_key="k") as emulator:
        emulator.enqueue(reply, reply)
        message = official(emulator)
        completion = ours(emulator)
    blocks = message.content
    assert completion.text == "".join(block.text for block in blocks if block.type == "text")
    assert completion.reasoning == "".join(block.thinking for block in blocks if block.type == "thinking")
    calls = [block for block in blocks if block.type == "tool_use"]
    assert [(call.id, call.name) for call in completion.tool_calls] == [(call.id, call.name) for call in calls]
    assert [json.loads(call.arguments) for call in completion.tool_calls] == [call.input for call in calls]
    usage = message.usage
    cache_read = usage.cache_read_input_tokens or 0
    prompt = usage.input_tokens + cache_read + (usage.cache_creation_input_tokens or 0)
    assert completion.usage == (prompt, usage.output_tokens, prompt + usage.output_tokens)
    assert (completion.usage.cached_tokens or 0) == cache_read
    assert completion.extra["stop_reason"] == message.stop_reason
    assert completion.response_id == message.id
    # The thinking blocks kept for the next turn are the official client's, field for field.
    kept = completion.message_fields.get("thinking_blocks", [])
    theirs = [block.model_dump(exclude_none=True) for block in blocks if block.type in ("thinking", "redacted_thinking")]
    assert kept == theirs


def test_both_refuse_an_error_event() -> None:
    events = [message_start(), *text_block(0, ["Half"])[:2], error_event("overloaded_error")]
    with AnthropicEmulator(api_key="k") as emulator:
        emulator.enqueue(Reply(events=events), Reply(events=events))
        with pytest.raises(anthropic.APIStatusError) as theirs:
            official(emulator)
        with pytest.raises(errors.ServerError) as mine:
            ours(emulator)
    assert theirs.value.type == mine.value.type == "overloaded_error"  # theirs says status 200; ours 529
    assert mine.value.status_code == 529 and mine.value.partial_text == "Half"


def test_both_see_the_api_error_body() -> None:
    with AnthropicEmulator(api_key="k") as emulator:
        with pytest.raises(anthropic.AuthenticationError) as theirs:
            anthropic.Anthropic(api_key="wrong", base_url=emulator.url, max_retries=0).messages.create(
                model="m", max_tokens=5, messages=[{"role": "user", "content": "Hi"}]
            )
        client = llmclients.Anthropic(base_url=emulator.base_url, api_key="wrong")
        with client, pytest.raises(errors.AuthenticationError) as mine:
            client.complete("Hi")
    assert theirs.value.body["error"]["type"] == mine.value.type == "authentication_error"
