"""The native Anthropic Messages provider against its emulator: the request it
builds from OpenAI-shaped messages, the events it reads (text, thinking with
signatures, tool calls in fragments), usage and finish reasons in OpenAI's
sense, in-stream errors retried as their status, and the emulator's refusals."""

from __future__ import annotations

import asyncio
import json
import subprocess
import sys
from typing import Any, List

import pytest
import requests

import llmclients
from llmclients import errors
from llmclients.aio import AsyncClient
from llmclients.testing import AnthropicEmulator, Reply
from llmclients.testing.anthropic import (
    error_body,
    error_event,
    message_delta,
    message_start,
    message_stop,
    ping,
    redacted_thinking_block,
    reply_events,
    serialize,
    sign,
    text_block,
    thinking_block,
    tool_use_block,
)

KEY = "sk-ant-test"
WEATHER = {
    "type": "function",
    "function": {
        "name": "get_weather",
        "description": "The weather in a city",
        "parameters": {"type": "object", "properties": {"city": {"type": "string"}}},
    },
}
PNG = "data:image/png;base64,iVBORw0KGgo="


@pytest.fixture
def emulator():
    with AnthropicEmulator(api_key=KEY) as running:
        yield running


def client_for(emulator: AnthropicEmulator, **kwargs: Any) -> llmclients.Anthropic:
    client = llmclients.Anthropic(base_url=emulator.base_url, api_key=KEY, **kwargs)
    client.transport.sleep = lambda seconds: None
    return client


def body_of(emulator: AnthropicEmulator, n: int = -1) -> Any:
    return emulator.requests[n].json()


# --- the request ------------------------------------------------------------------------------


def test_a_plain_call(emulator):
    with client_for(emulator) as client:
        completion = client.complete([{"role": "system", "content": "Be brief."}, {"role": "user", "content": "Hi"}])
    assert completion.text.endswith("You said: Hi")
    assert completion.finish_reason == "stop"
    request = emulator.last_request
    assert request.path == "/v1/messages"
    assert request.headers["x-api-key"] == KEY
    assert request.headers["anthropic-version"] == "2023-06-01"
    assert request.json() == {
        "model": "claude-sonnet-4-5",
        "messages": [{"role": "user", "content": "Hi"}],
        "system": "Be brief.",
        "max_tokens": 4096,
        "stream": True,
    }


def test_a_base_url_ending_in_v1_is_accepted(emulator):
    with llmclients.Anthropic(base_url=emulator.base_url + "/v1/", api_key=KEY) as client:
        assert client.complete("Hi").text
    assert emulator.last_request.path == "/v1/messages"


def test_options_are_sent_as_the_api_names_them(emulator):
    with client_for(emulator) as client:
        client.complete(
            [{"role": "developer", "content": "One."}, {"role": "system", "content": "Two."}, {"role": "user", "content": "Hi"}],
            temperature=0.2,
            top_p=0.9,
            top_k=5,
            stop="END",
            max_tokens=100,
            tools=[WEATHER],
            tool_choice={"type": "function", "function": {"name": "get_weather"}},
            parallel_tool_calls=False,
            user="u-1",
        )
    body = body_of(emulator)
    assert body["system"] == [{"type": "text", "text": "One."}, {"type": "text", "text": "Two."}]
    assert body["max_tokens"] == 100
    assert body["stop_sequences"] == ["END"]
    assert (body["temperature"], body["top_p"], body["top_k"]) == (0.2, 0.9, 5)
    assert body["tools"] == [
        {
            "name": "get_weather",
            "input_schema": {"type": "object", "properties": {"city": {"type": "string"}}},
            "description": "The weather in a city",
        }
    ]
    assert body["tool_choice"] == {"type": "tool", "name": "get_weather", "disable_parallel_tool_use": True}
    assert body["metadata"] == {"user_id": "u-1"}


@pytest.mark.parametrize(
    ("given", "sent"),
    [("auto", {"type": "auto"}), ("required", {"type": "any"}), ("none", {"type": "none"})],
)
def test_tool_choice_words(emulator, given, sent):
    with client_for(emulator) as client:
        client.complete("Hi", tools=[WEATHER], tool_choice=given)
    assert body_of(emulator)["tool_choice"] == sent


@pytest.mark.parametrize(
    ("options", "thinking", "max_tokens"),
    [
        ({"reasoning_effort": "low"}, {"type": "enabled", "budget_tokens": 2048}, 2048 + 4096),
        ({"reasoning_effort": "high", "max_tokens": 30000}, {"type": "enabled", "budget_tokens": 24576}, 30000),
        ({"thinking": 5000}, {"type": "enabled", "budget_tokens": 5000}, 5000 + 4096),
        ({"thinking": {"type": "enabled", "budget_tokens": 1024}}, {"type": "enabled", "budget_tokens": 1024}, 5120),
        ({"reasoning_effort": "none"}, None, 4096),
    ],
)
def test_thinking_options(emulator, options, thinking, max_tokens):
    with client_for(emulator) as client:
        client.complete("Hi", **options)
    body = body_of(emulator)
    assert body.get("thinking") == thinking
    assert body["max_tokens"] == max_tokens


def test_max_tokens_below_the_thinking_budget_is_refused_before_sending(emulator):
    with client_for(emulator) as client, pytest.raises(errors.InvalidRequestError, match="thinking budget"):
        client.complete("Hi", reasoning_effort="medium", max_tokens=1000)
    assert emulator.requests == []


def test_images_become_image_blocks(emulator):
    content = [
        {"type": "text", "text": "What is this?"},
        {"type": "image_url", "image_url": {"url": PNG}},
        {"type": "image_url", "image_url": {"url": "https://example.com/cat.jpg"}},
    ]
    with client_for(emulator) as client:
        client.complete([{"role": "user", "content": content}])
    assert body_of(emulator)["messages"][0]["content"] == [
        {"type": "text", "text": "What is this?"},
        {"type": "image", "source": {"type": "base64", "media_type": "image/png", "data": "iVBORw0KGgo="}},
        {"type": "image", "source": {"type": "url", "url": "https://example.com/cat.jpg"}},
    ]


def test_a_tool_loop_sends_tool_use_and_tool_result_blocks(emulator):
    messages = [
        {"role": "user", "content": "Weather in Paris and Rome?"},
        {
            "role": "assistant",
            "content": "Checking.",
            "tool_calls": [
                {"id": "toolu_1", "type": "function", "function": {"name": "get_weather", "arguments": '{"city": "Paris"}'}},
                {"id": "toolu_2", "type": "function", "function": {"name": "get_weather", "arguments": ""}},
            ],
        },
        {"role": "tool", "tool_call_id": "toolu_1", "content": "sunny"},
        {"role": "tool", "tool_call_id": "toolu_2", "content": [{"type": "text", "text": "rain"}]},
        {"role": "user", "content": "And so?"},
    ]
    with client_for(emulator) as client:
        client.complete(messages, tools=[WEATHER])
    assert body_of(emulator)["messages"][1:] == [
        {
            "role": "assistant",
            "content": [
                {"type": "text", "text": "Checking."},
                {"type": "tool_use", "id": "toolu_1", "name": "get_weather", "input": {"city": "Paris"}},
                {"type": "tool_use", "id": "toolu_2", "name": "get_weather", "input": {}},
            ],
        },
        {
            "role": "user",
            "content": [
                {"type": "tool_result", "tool_use_id": "toolu_1", "content": "sunny"},
                {"type": "tool_result", "tool_use_id": "toolu_2", "content": [{"type": "text", "text": "rain"}]},
                {"type": "text", "text": "And so?"},
            ],
        },
    ]


def test_audio_is_refused_before_sending(emulator):
    audio = {"type": "input_audio", "input_audio": {"data": "AAAA", "format": "wav"}}
    with client_for(emulator) as client, pytest.raises(errors.UnsupportedFeatureError):
        client.complete([{"role": "user", "content": [audio]}])


# --- the reply ------------------------------------------------------------------------------------


def test_text_usage_and_stop_reason(emulator):
    usage = {"input_tokens": 5, "cache_read_input_tokens": 100, "cache_creation_input_tokens": 7, "output_tokens": 3}
    emulator.enqueue(Reply(events=reply_events([text_block(0, ["Hel", "lo ", "wörld"])], usage=usage)))
    with client_for(emulator) as client, client.stream("Hi") as stream:
        assert list(stream) == ["Hel", "lo ", "wörld"]
    assert stream.finish_reason == "stop"
    assert stream.extra["stop_reason"] == "end_turn"
    assert stream.response_id == "msg_emulator"
    assert stream.usage == (112, 3, 115)
    assert stream.usage.cached_tokens == 100
    assert stream.usage.raw == usage


def test_usage_in_message_delta_is_cumulative(emulator):
    events = [
        message_start(usage={"input_tokens": 10, "output_tokens": 1}),
        *text_block(0, ["a"]),
        message_delta(None, {"output_tokens": 5}),
        message_delta("max_tokens", {"output_tokens": 9, "input_tokens": 10}),
        message_stop(),
    ]
    emulator.enqueue(Reply(events=events))
    with client_for(emulator) as client:
        completion = client.complete("Hi")
    assert completion.usage == (10, 9, 19)
    assert completion.finish_reason == "length"


@pytest.mark.parametrize(
    ("stop_reason", "finish_reason"),
    [("stop_sequence", "stop"), ("refusal", "content_filter"), ("pause_turn", "pause_turn"), ("tool_use", "tool_calls")],
)
def test_stop_reasons_in_openai_words(emulator, stop_reason, finish_reason):
    emulator.enqueue(Reply(events=reply_events([text_block(0, ["x"])], stop_reason=stop_reason)))
    with client_for(emulator) as client:
        completion = client.complete("Hi")
    assert completion.finish_reason == finish_reason


def test_no_usage_in_message_start_is_fine(emulator):
    events = [message_start(usage=None), *text_block(0, ["ok"]), message_delta("end_turn", {"output_tokens": 2}), message_stop()]
    emulator.enqueue(Reply(events=events))
    with client_for(emulator) as client:
        assert client.complete("Hi").usage == (0, 2, 2)


def test_pings_and_unknown_events_are_skipped(emulator):
    events = reply_events([text_block(0, ["a", "b"])])
    events.insert(2, {"type": "brand_new_event", "whatever": 1})
    events.insert(4, ping())
    events.insert(5, {"type": "content_block_delta", "index": 0, "delta": {"type": "citations_delta", "citation": {}}})
    emulator.enqueue(Reply(events=events))
    with client_for(emulator) as client:
        assert client.complete("Hi").text == "ab"


def test_tool_calls_split_anywhere(emulator):
    arguments = '{"city": "Zürich 🌧", "days": [1, 2]}'
    fragments = ["", arguments[:3], "", arguments[3:12], arguments[12:13], arguments[13:], ""]
    blocks = [
        text_block(0, ["Let me check."]),
        tool_use_block(1, "toolu_A", "get_weather", fragments),
        tool_use_block(2, "toolu_B", "now", ["", ""]),
        tool_use_block(3, "toolu_C", "now", []),
    ]
    emulator.enqueue(Reply(events=reply_events(blocks, stop_reason="tool_use")))
    with client_for(emulator) as client:
        completion = client.complete("Weather?", tools=[WEATHER])
    assert completion.text == "Let me check."
    assert completion.finish_reason == "tool_calls"
    assert [(call.id, call.name) for call in completion.tool_calls] == [
        ("toolu_A", "get_weather"),
        ("toolu_B", "now"),
        ("toolu_C", "now"),
    ]
    assert json.loads(completion.tool_calls[0].arguments) == json.loads(arguments)
    assert [call.arguments for call in completion.tool_calls[1:]] == ["{}", "{}"]


def test_events_split_inside_a_character_across_writes(emulator):
    events = reply_events([text_block(0, ["Grüße 🌧"]), tool_use_block(1, "toolu_A", "get_weather", ['{"city": "Zürich"}'])])
    wire = b"".join(serialize(event) for event in events)
    cut = wire.index("ü".encode()) + 1  # inside the two bytes of ü
    rain = wire.index("🌧".encode()) + 2
    emulator.enqueue(Reply(raw=[wire[:cut], wire[cut:rain], wire[rain:]]))
    with client_for(emulator) as client:
        completion = client.complete("Hi")
    assert completion.text == "Grüße 🌧"
    assert json.loads(completion.tool_calls[0].arguments) == {"city": "Zürich"}


def test_tool_input_that_is_not_json_once_whole_is_malformed(emulator):
    events = reply_events([tool_use_block(0, "toolu_A", "get_weather", ['{"city": ', '"Par'])], stop_reason="tool_use")
    emulator.enqueue(Reply(events=events))
    with client_for(emulator) as client, pytest.raises(errors.MalformedStreamError, match="get_weather"):
        client.complete("Hi")


# --- thinking ------------------------------------------------------------------------------------


def thinking_reply() -> Reply:
    blocks = [
        thinking_block(0, ["Paris is ", "in France."]),
        redacted_thinking_block(1, "ENCRYPTED=="),
        text_block(2, ["Checking."]),
        tool_use_block(3, "toolu_1", "get_weather", ['{"city":', ' "Paris"}']),
    ]
    return Reply(events=reply_events(blocks, stop_reason="tool_use"))


def test_thinking_is_reasoning_and_its_blocks_are_kept(emulator):
    emulator.enqueue(thinking_reply())
    with client_for(emulator) as client:
        completion = client.complete("Weather?", tools=[WEATHER], reasoning_effort="low")
    assert completion.reasoning == "Paris is in France."
    assert completion.message_fields == {
        "thinking_blocks": [
            {"type": "thinking", "thinking": "Paris is in France.", "signature": sign("Paris is in France.")},
            {"type": "redacted_thinking", "data": "ENCRYPTED=="},
        ]
    }


def test_a_tool_loop_sends_the_thinking_blocks_back_byte_for_byte(emulator):
    emulator.enqueue(thinking_reply(), Reply(text="Sunny in Paris."))
    with client_for(emulator) as client:
        conversation = client.conversation(tools=[WEATHER], reasoning_effort="low")
        conversation.send("Weather in Paris?")
        [call] = conversation.pending_tool_calls
        conversation.add_tool_results({call.id: "sunny"})
        assert conversation.send().text == "Sunny in Paris."
    first = emulator.requests[0].text
    second = emulator.requests[1].text
    thinking = json.dumps({"type": "thinking", "thinking": "Paris is in France.", "signature": sign("Paris is in France.")})
    redacted = json.dumps({"type": "redacted_thinking", "data": "ENCRYPTED=="})
    assert thinking not in first and thinking + ", " + redacted in second
    assistant = json.loads(second)["messages"][1]
    assert [block["type"] for block in assistant["content"]] == ["thinking", "redacted_thinking", "text", "tool_use"]


def test_the_emulator_refuses_a_changed_signature_and_a_missing_thinking_block(emulator):
    emulator.enqueue(thinking_reply())
    with client_for(emulator) as client:
        completion = client.complete("Weather?", tools=[WEATHER], reasoning_effort="low")
        turn = completion.message()
        result = {"role": "tool", "tool_call_id": "toolu_1", "content": "sunny"}
        turn["thinking_blocks"][0]["thinking"] += " (edited)"
        with pytest.raises(errors.HTTPStatusError, match="Invalid `signature`") as caught:
            client.complete([{"role": "user", "content": "Weather?"}, turn, result], tools=[WEATHER], reasoning_effort="low")
        assert caught.value.type == "invalid_request_error"
        del turn["thinking_blocks"]
        with pytest.raises(errors.HTTPStatusError, match="must start with a thinking block"):
            client.complete([{"role": "user", "content": "Weather?"}, turn, result], tools=[WEATHER], reasoning_effort="low")


# --- errors -------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("kind", "cls", "status"),
    [
        ("overloaded_error", errors.ServerError, 529),
        ("rate_limit_error", errors.RateLimitError, 429),
        ("api_error", errors.ServerError, 500),
        ("authentication_error", errors.AuthenticationError, 401),
        ("invalid_request_error", errors.HTTPStatusError, 400),
    ],
)
def test_an_error_event_before_text_raises_as_its_status(emulator, kind, cls, status):
    emulator.enqueue(Reply(events=[message_start(), ping(), error_event(kind, "nope")]))
    with client_for(emulator, max_retries=0) as client, pytest.raises(cls) as caught:
        client.complete("Hi")
    assert (caught.value.status_code, caught.value.type) == (status, kind)
    assert caught.value.partial_text == ""


@pytest.mark.parametrize("kind", ["overloaded_error", "rate_limit_error"])
def test_an_error_event_before_text_is_retried(emulator, kind):
    emulator.enqueue(Reply(events=[message_start(), error_event(kind)]), Reply(text="Fine now."))
    with client_for(emulator) as client:
        assert client.complete("Hi").text == "Fine now."
    assert len(emulator.requests) == 2


def test_an_api_error_event_is_not_retried_as_500_is_not(emulator):
    emulator.enqueue(Reply(events=[message_start(), error_event("api_error")]), Reply(text="never"))
    with client_for(emulator) as client, pytest.raises(errors.ServerError):
        client.complete("Hi")
    assert len(emulator.requests) == 1


@pytest.mark.parametrize("kind", ["overloaded_error", "rate_limit_error", "api_error"])
def test_an_error_event_after_text_raises_with_the_text(emulator, kind):
    events = [message_start(), *text_block(0, ["Half ", "a reply"])[:3], error_event(kind)]
    emulator.enqueue(Reply(events=events), Reply(text="never"))
    with client_for(emulator) as client, pytest.raises(errors.HTTPStatusError) as caught:
        client.complete("Hi")
    assert caught.value.partial_text == "Half a reply"
    assert caught.value.type == kind
    assert len(emulator.requests) == 1


def test_an_unknown_error_type_is_a_provider_error(emulator):
    emulator.enqueue(Reply(events=[message_start(), error_event("brand_new_error", "hm")]))
    with client_for(emulator) as client, pytest.raises(errors.ProviderError) as caught:
        client.complete("Hi")
    assert caught.value.reason == "brand_new_error"


@pytest.mark.parametrize("cut", [1, 3, 5])
def test_a_body_without_message_stop_is_interrupted(emulator, cut):
    events = reply_events([text_block(0, ["a", "b"])])[:-cut]
    emulator.enqueue(Reply(events=events))
    with client_for(emulator, max_retries=0) as client, pytest.raises(errors.StreamInterruptedError):
        client.complete("Hi")


def test_529_is_retried_after_retry_after_ms(emulator):
    waits: List[float] = []
    overloaded = Reply(status=529, body=error_body("overloaded_error"), headers={"retry-after-ms": "1500"})
    emulator.enqueue(overloaded, Reply(text="ok"))
    with client_for(emulator) as client:
        client.transport.sleep = waits.append
        assert client.complete("Hi").text == "ok"
    assert waits == [1.5]


def test_529_with_its_type_when_retries_run_out(emulator):
    busy = Reply(status=529, body=error_body("overloaded_error"), headers={"request-id": "req_1"})
    emulator.enqueue(busy, busy, busy)
    with client_for(emulator) as client, pytest.raises(errors.ServerError) as caught:
        client.complete("Hi")
    assert (caught.value.status_code, caught.value.type, caught.value.request_id) == (529, "overloaded_error", "req_1")
    assert len(emulator.requests) == 3


def test_x_should_retry_false_is_not_retried(emulator):
    emulator.enqueue(Reply(status=429, body=error_body("rate_limit_error"), headers={"x-should-retry": "false"}))
    with client_for(emulator) as client, pytest.raises(errors.RateLimitError) as caught:
        client.complete("Hi")
    assert caught.value.should_retry is False
    assert len(emulator.requests) == 1


def test_x_should_retry_true_retries_what_the_status_would_not(emulator):
    conflict = Reply(status=409, body=error_body("api_error", "conflict"), headers={"x-should-retry": "true"})
    emulator.enqueue(conflict, Reply(text="ok"))
    with client_for(emulator) as client:
        assert client.complete("Hi").text == "ok"


def test_a_prompt_too_long_is_a_context_length_error(emulator):
    message = "prompt is too long: 208310 tokens > 200000 maximum"
    emulator.enqueue(Reply(status=400, body=error_body("invalid_request_error", message)))
    with client_for(emulator) as client, pytest.raises(errors.ContextLengthError) as caught:
        client.complete("Hi")
    assert (caught.value.prompt_tokens, caught.value.context_tokens) == (208310, 200000)
    assert caught.value.type == "invalid_request_error"


def test_the_context_window_filled_is_a_context_length_error(emulator):
    events = reply_events([text_block(0, ["long"])], stop_reason="model_context_window_exceeded")
    emulator.enqueue(Reply(events=events))
    with client_for(emulator) as client, pytest.raises(errors.ContextLengthError) as caught:
        client.complete("Hi")
    assert caught.value.partial_text == "long"


def test_a_whole_message_where_a_stream_was_asked_for(emulator):
    message = {
        "id": "msg_1",
        "type": "message",
        "role": "assistant",
        "model": "claude-x",
        "content": [
            {"type": "thinking", "thinking": "Hmm.", "signature": "s"},
            {"type": "text", "text": "Hello"},
            {"type": "tool_use", "id": "toolu_1", "name": "get_weather", "input": {"city": "Oslo"}},
        ],
        "stop_reason": "tool_use",
        "stop_sequence": None,
        "usage": {"input_tokens": 4, "output_tokens": 6},
    }
    emulator.enqueue(Reply(body=message))
    with client_for(emulator) as client:
        completion = client.complete("Hi")
    assert (completion.text, completion.reasoning, completion.finish_reason) == ("Hello", "Hmm.", "tool_calls")
    assert json.loads(completion.tool_calls[0].arguments) == {"city": "Oslo"}
    assert completion.usage == (4, 6, 10)


# --- what the emulator refuses, as the API does ------------------------------------------------------


def post(emulator: AnthropicEmulator, body: Any, **headers: str) -> requests.Response:
    headers = {"x-api-key": KEY, "anthropic-version": "2023-06-01", **headers}
    return requests.post(f"{emulator.url}/v1/messages", json=body, headers=headers, timeout=5)


@pytest.mark.parametrize(
    ("body", "message"),
    [
        ({"model": "m", "messages": [{"role": "user", "content": "Hi"}]}, "max_tokens: Field required"),
        ({"model": "m", "max_tokens": 5, "messages": [{"role": "system", "content": "Hi"}]}, 'Unexpected role "system"'),
        ({"model": "m", "max_tokens": 5, "messages": [{"role": "user", "content": ""}]}, "non-empty content"),
        ({"model": "m", "max_tokens": 5, "messages": [{"role": "user", "content": "Hi"}], "n": 2}, "n: Extra inputs"),
        (
            {"model": "m", "max_tokens": 5, "messages": [{"role": "user", "content": [{"type": "tool_result", "tool_use_id": "x"}]}]},
            "unexpected `tool_use_id`",
        ),
        (
            {"model": "m", "max_tokens": 2000, "thinking": {"type": "enabled", "budget_tokens": 4000}, "messages": [{"role": "user", "content": "Hi"}]},
            "must be greater than `thinking.budget_tokens`",
        ),
        (
            {"model": "m", "max_tokens": 5000, "thinking": {"type": "enabled", "budget_tokens": 1024}, "temperature": 0.5, "messages": [{"role": "user", "content": "Hi"}]},
            "`temperature` may only be set to 1",
        ),
        (
            {"model": "m", "max_tokens": 5000, "thinking": {"type": "enabled", "budget_tokens": 1024}, "tool_choice": {"type": "any"}, "messages": [{"role": "user", "content": "Hi"}]},
            "forces tool use",
        ),
    ],
)
def test_bad_requests_get_the_api_error_body(emulator, body, message):
    response = post(emulator, body)
    assert response.status_code == 400
    error = response.json()
    assert error["type"] == "error" and error["error"]["type"] == "invalid_request_error"
    assert message in error["error"]["message"]


def test_only_the_last_tool_turn_needs_its_thinking_block(emulator):
    def turn(n):
        call = {"type": "tool_use", "id": f"toolu_{n}", "name": "f", "input": {}}
        return [
            {"role": "assistant", "content": [call]},
            {"role": "user", "content": [{"type": "tool_result", "tool_use_id": f"toolu_{n}", "content": "ok"}]},
        ]

    thinking = {"type": "enabled", "budget_tokens": 1024}
    body = {"model": "m", "max_tokens": 5000, "thinking": thinking, "stream": True}
    signed = {"type": "thinking", "thinking": "t", "signature": sign("t")}
    first, last = turn(1), turn(2)
    last[0]["content"].insert(0, signed)
    assert post(emulator, {**body, "messages": [{"role": "user", "content": "Hi"}, *first, *last]}).status_code == 200
    response = post(emulator, {**body, "messages": [{"role": "user", "content": "Hi"}, *last, *first]})
    assert "must start with a thinking block" in response.json()["error"]["message"]


def test_a_missing_or_wrong_key_is_401(emulator):
    body = {"model": "m", "max_tokens": 5, "messages": [{"role": "user", "content": "Hi"}]}
    assert post(emulator, body, **{"x-api-key": "wrong"}).json()["error"] == {"type": "authentication_error", "message": "invalid x-api-key"}
    with llmclients.Anthropic(base_url=emulator.base_url) as client, pytest.raises(errors.AuthenticationError) as caught:
        client.complete("Hi")
    assert caught.value.type == "authentication_error"


def test_the_model_list_is_read_page_by_page():
    names = [f"claude-{n}" for n in range(1005)]
    with AnthropicEmulator(models=names) as emulator, llmclients.Anthropic(base_url=emulator.base_url) as client:
        assert client.served_models() == names
        assert len(emulator.requests) == 2


# --- the rest of the house, unchanged -------------------------------------------------------------------


def test_events_asyncio_and_fallback(emulator):
    emulator.enqueue(thinking_reply())
    with client_for(emulator) as client, client.stream("Hi", reasoning_effort="low") as stream:
        kinds = [type(event).__name__ for event in stream.events()]
    assert kinds[0] == "ReasoningDelta" and "TextDelta" in kinds and "ToolCallDelta" in kinds

    async def main() -> str:
        return (await AsyncClient(client_for(emulator)).complete("Hi")).text

    assert asyncio.run(main()).endswith("You said: Hi")
    emulator.enqueue(*[Reply(status=529, body=error_body("overloaded_error"))] * 3)
    backup = client_for(emulator)
    fallback = llmclients.Fallback([client_for(emulator), backup])
    assert fallback.complete("Hi").text.endswith("You said: Hi")


def test_the_command_line_reads_anthropic_api_key(emulator):
    env = {"ANTHROPIC_API_KEY": KEY, "LLMCLIENTS_API_KEY": "", "NO_PROXY": "127.0.0.1"}
    import os

    result = subprocess.run(
        [sys.executable, "-m", "llmclients", "chat", "-p", "anthropic", "--base-url", emulator.base_url, "Hi"],
        capture_output=True,
        encoding="utf-8",
        env={**os.environ, **env},
        timeout=60,
    )
    assert result.returncode == 0, result.stderr
    assert "You said: Hi" in result.stdout
    assert emulator.last_request.headers["x-api-key"] == KEY
    models = subprocess.run(
        [sys.executable, "-m", "llmclients", "models", "-p", "anthropic", "--base-url", emulator.base_url],
        capture_output=True,
        encoding="utf-8",
        env={**os.environ, **env},
        timeout=60,
    )
    assert "claude-sonnet-4-5" in models.stdout, models.stderr
