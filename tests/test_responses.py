"""OpenAI's Responses API: the request llmclients builds, the stream it reads,
and the emulator checked by the official client (``openai``'s
``client.responses.stream``): on the same bytes, both must give the same text,
reasoning, tool calls and usage."""

from __future__ import annotations

import json
import subprocess
import sys
from typing import Any, Dict, List, Tuple

import pytest
import requests

import llmclients
from llmclients import errors
from llmclients.testing import Reply, ResponsesEmulator
from llmclients.testing.responses import error_event, failed, function_call, message, reasoning

openai = pytest.importorskip("openai")

WEATHER = {
    "type": "function",
    "function": {
        "name": "get_weather",
        "description": "The weather in a city",
        "parameters": {"type": "object", "properties": {"city": {"type": "string"}}},
    },
}


def client_of(emulator: ResponsesEmulator, **kwargs: Any) -> llmclients.OpenAIResponses:
    client = llmclients.OpenAIResponses(base_url=emulator.base_url, model="gpt-test", **kwargs)
    client.transport.sleep = lambda seconds: None
    return client


# --- the official client as referee ------------------------------------------------------

SCRIPTS: Dict[str, Reply] = {
    "text": Reply(deltas=["Hel", "lo, ", "wörld ", "🎉"]),
    "reasoning summary then text": Reply(
        events=[reasoning(["Think", "ing…"]), message(["The answer", " is 4."])]
    ),
    "raw reasoning then text": Reply(events=[reasoning(["step ", "one"], raw=True), message(["done"])]),
    "a call split inside words, empty fragments": Reply(
        events=[function_call("get_weather", ["", '{"ci', 'ty": "Zü', "", 'rich 🌧"}', ""], "call_a")],
        finish_reason="tool_calls",
    ),
    "text and several calls": Reply(
        events=[
            message(["Let me look."]),
            function_call("get_weather", ['{"city": ', '"Paris"}'], "call_1"),
            function_call("get_weather", ['{"city": "Ky', 'iv"}'], "call_2"),
        ],
        finish_reason="tool_calls",
    ),
    "usage with cached and reasoning tokens": Reply(
        deltas=["ok"],
        usage={
            "input_tokens": 120,
            "input_tokens_details": {"cached_tokens": 100},
            "output_tokens": 30,
            "output_tokens_details": {"reasoning_tokens": 25},
            "total_tokens": 150,
        },
    ),
}


def official(emulator: ResponsesEmulator) -> Tuple[str, str, List[Tuple[str, str, str]], Any]:
    """What openai-python makes of the next scripted reply: text, reasoning, calls, usage."""
    client = openai.OpenAI(base_url=emulator.base_url, api_key="sk-test", max_retries=0)
    with client.responses.stream(model="gpt-test", input="Hi") as stream:
        for _ in stream:
            pass
        final = stream.get_final_response()
    thoughts = []
    calls = []
    for item in final.output:
        if item.type == "reasoning":
            thoughts += [part.text for part in item.summary] + [part.text for part in item.content or ()]
        elif item.type == "function_call":
            calls.append((item.call_id, item.name, item.arguments))
    return final.output_text, "\n\n".join(thoughts), calls, final.usage


@pytest.mark.parametrize("name", list(SCRIPTS))
def test_the_official_client_and_llmclients_agree(name: str) -> None:
    with ResponsesEmulator() as emulator:
        emulator.enqueue(SCRIPTS[name], SCRIPTS[name])
        text, thoughts, calls, usage = official(emulator)
        completion = client_of(emulator).complete("Hi")
    assert completion.text == text
    assert completion.reasoning == thoughts
    assert [(call.id, call.name, call.arguments) for call in completion.tool_calls] == calls
    assert completion.finish_reason == ("tool_calls" if calls else "stop")
    assert completion.usage.prompt_tokens == usage.input_tokens
    assert completion.usage.completion_tokens == usage.output_tokens
    assert completion.usage.total_tokens == usage.total_tokens
    assert completion.usage.cached_tokens == usage.input_tokens_details.cached_tokens
    assert completion.usage.reasoning_tokens == usage.output_tokens_details.reasoning_tokens
    for call in completion.tool_calls:
        call.parsed()  # each call's whole arguments are JSON


def body_of(emulator: ResponsesEmulator, reply: Reply) -> bytes:
    """The bytes the emulator streams for ``reply``."""
    emulator.enqueue(reply)
    answer = requests.post(f"{emulator.base_url}/responses", json={"model": "m", "input": "Hi", "stream": True})
    return answer.content


def test_both_read_a_body_split_inside_multibyte_characters() -> None:
    reply = Reply(
        events=[message(["Grüße ", "🎉"]), function_call("get_weather", ['{"city": "Zürich 🌧"}'], "call_z")],
        finish_reason="tool_calls",
    )
    with ResponsesEmulator() as emulator:
        body = body_of(emulator, reply)
        splits = [at + 1 for at, byte in enumerate(body) if byte >= 0xC0]  # after each lead byte
        pieces = [body[a:b] for a, b in zip([0] + splits, splits + [len(body)])]
        assert len(pieces) > 4
        emulator.enqueue(Reply(raw=pieces), Reply(raw=pieces))
        text, _, calls, _ = official(emulator)
        completion = client_of(emulator).complete("Hi")
    assert completion.text == text == "Grüße 🎉"
    assert [(call.id, call.name, call.arguments) for call in completion.tool_calls] == calls
    assert completion.tool_calls[0].parsed() == {"city": "Zürich 🌧"}


def test_the_official_client_accepts_the_request_llmclients_sends_and_the_emulator_its() -> None:
    with ResponsesEmulator() as emulator:
        client = openai.OpenAI(base_url=emulator.base_url, api_key="sk-test", max_retries=0)
        with client.responses.stream(
            model="gpt-test",
            instructions="Be brief.",
            input=[{"role": "user", "content": [{"type": "input_text", "text": "Hi"}]}],
            tools=[{"type": "function", "name": "f", "parameters": {"type": "object"}, "strict": False}],
            max_output_tokens=64,
            store=False,
        ) as stream:
            assert stream.get_final_response().status == "completed"
        official_body = emulator.last_request.json()
        client_of(emulator).complete(
            [{"role": "system", "content": "Be brief."}, {"role": "user", "content": "Hi"}],
            tools=[WEATHER],
            max_tokens=64,
        )
        ours = emulator.last_request.json()
    assert set(ours) <= set(official_body) | {"tools"}
    assert ours["tools"][0].keys() >= {"type", "name", "parameters"}


# --- the request ----------------------------------------------------------------------------

PNG = "data:image/png;base64,iVBORw0KGgo="


def test_messages_become_input_items() -> None:
    messages = [
        {"role": "system", "content": "You are terse."},
        {"role": "developer", "content": "Use metric units."},
        {
            "role": "user",
            "content": [
                {"type": "text", "text": "What is here?"},
                {"type": "image_url", "image_url": {"url": PNG, "detail": "low"}},
            ],
        },
        {
            "role": "assistant",
            "content": "Let me check.",
            "tool_calls": [
                {"id": "call_1", "type": "function", "function": {"name": "get_weather", "arguments": "{}"}}
            ],
        },
        {"role": "tool", "tool_call_id": "call_1", "content": "sunny"},
        {"role": "system", "content": "Answer in one word."},
    ]
    with ResponsesEmulator() as emulator:
        client_of(emulator).complete(messages, tools=[WEATHER])
        body = emulator.last_request.json()
    assert body["instructions"] == "You are terse.\n\nUse metric units."
    assert body["store"] is False and body["stream"] is True
    assert body["input"] == [
        {
            "type": "message",
            "role": "user",
            "content": [
                {"type": "input_text", "text": "What is here?"},
                {"type": "input_image", "image_url": PNG, "detail": "low"},
            ],
        },
        {"type": "message", "role": "assistant", "content": [{"type": "output_text", "text": "Let me check."}]},
        {"type": "function_call", "call_id": "call_1", "name": "get_weather", "arguments": "{}"},
        {"type": "function_call_output", "call_id": "call_1", "output": "sunny"},
        {"type": "message", "role": "system", "content": "Answer in one word."},
    ]
    assert body["tools"] == [
        {
            "type": "function",
            "name": "get_weather",
            "description": "The weather in a city",
            "parameters": {"type": "object", "properties": {"city": {"type": "string"}}},
        }
    ]


def test_options_take_the_responses_shape() -> None:
    schema = {"type": "object", "properties": {"n": {"type": "integer"}}}
    with ResponsesEmulator(api_key="sk-k") as emulator:
        client_of(emulator, api_key="sk-k").complete(
            "Hi",
            tools=[WEATHER],
            tool_choice={"type": "function", "function": {"name": "get_weather"}},
            parallel_tool_calls=False,
            max_tokens=100,
            response_format={"type": "json_schema", "json_schema": {"name": "n", "schema": schema, "strict": True}},
            reasoning_effort="low",
            temperature=0.2,
            top_p=0.9,
            metadata={"run": "1"},
            store=True,
        )
        body = emulator.last_request.json()
        assert emulator.last_request.headers["Authorization"] == "Bearer sk-k"
        client_of(emulator, api_key="sk-k").complete("Hi", response_format={"type": "json_object"})
        plain = emulator.last_request.json()
    assert body["tool_choice"] == {"type": "function", "name": "get_weather"}
    assert body["max_output_tokens"] == 100 and "max_tokens" not in body
    assert body["text"] == {"format": {"type": "json_schema", "name": "n", "schema": schema, "strict": True}}
    assert body["reasoning"] == {"effort": "low"}
    assert body["store"] is True and body["parallel_tool_calls"] is False
    assert (body["temperature"], body["top_p"], body["metadata"]) == (0.2, 0.9, {"run": "1"})
    assert plain["text"] == {"format": {"type": "json_object"}}


def test_what_the_service_cannot_carry_is_refused_before_sending() -> None:
    with ResponsesEmulator() as emulator:
        client = client_of(emulator)
        with pytest.raises(errors.InvalidRequestError):
            client.complete("Hi", stop=["x"])
        audio = {"type": "input_audio", "input_audio": {"data": "AAAA", "format": "wav"}}
        with pytest.raises(errors.UnsupportedFeatureError):
            client.complete([{"role": "user", "content": [audio]}])
        assert not emulator.requests


# --- the stream -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("finish", "reason", "service"),
    [("length", "length", "max_output_tokens"), ("content_filter", "content_filter", "content_filter")],
)
def test_an_incomplete_response_says_why(finish: str, reason: str, service: str) -> None:
    with ResponsesEmulator() as emulator:
        emulator.enqueue(Reply(deltas=["cut", " short"], finish_reason=finish))
        completion = client_of(emulator).complete("Hi")
    assert completion.text == "cut short"
    assert completion.finish_reason == reason
    assert completion.extra == {"status": "incomplete", "incomplete_reason": service}


@pytest.mark.parametrize("nested", [True, False], ids=["nested", "flat"])
@pytest.mark.parametrize(
    ("code", "expected"),
    [("rate_limit_exceeded", errors.RateLimitError), ("server_error", errors.ServerError)],
)
def test_an_error_event_before_text_is_retried_as_its_status(nested: bool, code: str, expected: type) -> None:
    with ResponsesEmulator() as emulator:
        emulator.enqueue(Reply(events=[error_event(code, "try again", nested=nested)]), Reply(deltas=["fine"]))
        assert client_of(emulator).complete("Hi").text == "fine"
        assert len(emulator.requests) == 2
        emulator.enqueue(*[Reply(events=[error_event(code, "try again", nested=nested)])] * 3)
        with pytest.raises(expected) as raised:
            client_of(emulator, max_retries=0).complete("Hi")
    assert raised.value.code == code and "try again" in str(raised.value)


@pytest.mark.parametrize("nested", [True, False], ids=["nested", "flat"])
def test_an_error_event_after_text_raises_with_the_text(nested: bool) -> None:
    with ResponsesEmulator() as emulator:
        emulator.enqueue(Reply(events=[message(["half ", "way"]), error_event("server_error", "boom", nested=nested)]))
        with client_of(emulator).stream("Hi") as stream:
            given = []
            with pytest.raises(errors.ServerError) as raised:
                for text in stream:
                    given.append(text)
    assert raised.value.partial_text == "".join(given) == "half way"
    assert len(emulator.requests) == 1


def test_a_failed_response_raises_its_error() -> None:
    with ResponsesEmulator() as emulator:
        emulator.enqueue(*[Reply(events=[failed("server_error", "the model broke")])] * 2, Reply(deltas=["ok"]))
        assert client_of(emulator).complete("Hi").text == "ok"  # retried twice before the first delta
        emulator.enqueue(Reply(events=[message(["so far"]), failed("invalid_prompt", "flagged")]))
        with pytest.raises(errors.ProviderError) as raised:
            client_of(emulator).complete("Hi")
    assert raised.value.reason == "invalid_prompt" and raised.value.partial_text == "so far"


def test_context_overflow_is_a_context_length_error() -> None:
    overflow = error_event("context_length_exceeded", "Your input exceeds the context window of this model.")
    with ResponsesEmulator() as emulator:
        emulator.enqueue(Reply(events=[overflow]))
        with pytest.raises(errors.ContextLengthError):
            client_of(emulator).complete("Hi")
        body = {"error": {"message": "too long", "type": "invalid_request_error", "param": "input",
                          "code": "context_length_exceeded"}}  # fmt: skip
        emulator.enqueue(Reply(status=400, body=body))
        with pytest.raises(errors.ContextLengthError):
            client_of(emulator).complete("Hi")
        assert len(emulator.requests) == 2


def test_429_and_503_are_retried_with_their_headers() -> None:
    busy = {"error": {"message": "slow down", "type": "requests", "param": None, "code": "rate_limit_exceeded"}}
    with ResponsesEmulator() as emulator:
        emulator.enqueue(
            Reply(status=429, body=busy, headers={"Retry-After": "0", "x-ratelimit-remaining-requests": "0"}),
            Reply(status=503, body="unavailable"),
            Reply(deltas=["finally"]),
        )
        assert client_of(emulator).complete("Hi").text == "finally"
        emulator.enqueue(Reply(status=429, body=busy, headers={"x-ratelimit-remaining-requests": "0"}))
        with pytest.raises(errors.RateLimitError) as raised:
            client_of(emulator, max_retries=0).complete("Hi")
    assert raised.value.code == "rate_limit_exceeded"
    assert raised.value.rate_limits == {"x-ratelimit-remaining-requests": "0"}


def test_a_body_without_a_terminal_event_is_interrupted() -> None:
    with ResponsesEmulator() as emulator:
        emulator.enqueue(Reply(deltas=["never", " ends"], finish_reason=None))
        with pytest.raises(errors.StreamInterruptedError) as raised:
            client_of(emulator, max_retries=0).complete("Hi")
    assert raised.value.partial_text == "never ends"


def test_llama_server_events_without_sequence_or_output_index() -> None:
    reply = Reply(
        events=[
            reasoning(["hmm"], raw=True),
            message(["Two calls:"]),
            function_call("get_weather", ['{"city"', ': "Oslo"}'], "c1"),
            function_call("get_weather", ["", '{"city": "Rome"}'], "c2"),
        ],
        finish_reason="tool_calls",
    )
    with ResponsesEmulator(llama_server=True) as emulator:
        body = body_of(emulator, reply).decode()
        assert "sequence_number" not in body and "output_index" not in body
        emulator.enqueue(reply)
        completion = client_of(emulator).complete("Hi")
    assert (completion.text, completion.reasoning) == ("Two calls:", "hmm")
    assert [(c.id, c.parsed()) for c in completion.tool_calls] == [
        ("c1", {"city": "Oslo"}),
        ("c2", {"city": "Rome"}),
    ]


def test_fragments_without_ids_continue_the_last_call_and_done_is_trusted() -> None:
    events = [
        {"type": "response.output_item.added", "item": {"type": "function_call", "call_id": "c9", "name": "f"}},
        {"type": "response.function_call_arguments.delta", "delta": '{"a": '},
        {"type": "response.function_call_arguments.done", "arguments": '{"a": 1}'},
    ]
    with ResponsesEmulator(llama_server=True) as emulator:
        emulator.enqueue(Reply(events=events, finish_reason="stop"))
        completion = client_of(emulator).complete("Hi")
    assert [(c.id, c.name, c.arguments) for c in completion.tool_calls] == [("c9", "f", '{"a": 1}')]
    assert completion.finish_reason == "tool_calls"


def test_events_are_typed_and_the_reply_names_its_id_and_model() -> None:
    with ResponsesEmulator() as emulator:
        emulator.enqueue(Reply(events=[reasoning(["r"]), message(["t"]), function_call("f", ["{}"])],
                               finish_reason="tool_calls"))  # fmt: skip
        with client_of(emulator).stream("Hi", model="gpt-other") as stream:
            kinds = [type(event).__name__ for event in stream.events()]
            assert stream.response_id == "resp_emulator" and stream.model == "gpt-other"
    assert kinds[:2] == ["ReasoningDelta", "TextDelta"] and "ToolCallDelta" in kinds


def test_a_whole_response_where_a_stream_was_asked_for() -> None:
    document = {
        "id": "resp_1",
        "object": "response",
        "status": "completed",
        "model": "gpt-test",
        "output": [
            {"type": "reasoning", "id": "rs", "summary": [{"type": "summary_text", "text": "thought"}]},
            {"type": "message", "id": "m", "role": "assistant",
             "content": [{"type": "output_text", "text": "whole", "annotations": []}]},
        ],
        "usage": {"input_tokens": 3, "output_tokens": 1, "total_tokens": 4},
    }
    with ResponsesEmulator() as emulator:
        emulator.enqueue(Reply(body=document))
        completion = client_of(emulator).complete("Hi")
    assert (completion.text, completion.reasoning, completion.finish_reason) == ("whole", "thought", "stop")
    assert tuple(completion.usage) == (3, 1, 4)


def test_a_tool_loop_sends_calls_and_results_back_linked_by_call_id() -> None:
    with ResponsesEmulator() as emulator:
        emulator.enqueue(
            Reply(events=[function_call("get_weather", ['{"city": "Oslo"}'], "call_w")], finish_reason="tool_calls"),
            Reply(deltas=["It is sunny."]),
        )
        conversation = client_of(emulator).conversation(tools=[WEATHER])
        first = conversation.send("Weather in Oslo?")
        assert first.finish_reason == "tool_calls"
        conversation.add_tool_results({first.tool_calls[0].id: "sunny"})
        assert conversation.send().text == "It is sunny."
        items = emulator.last_request.json()["input"]
    assert items[1] == {"type": "function_call", "call_id": "call_w", "name": "get_weather",
                        "arguments": '{"city": "Oslo"}'}  # fmt: skip
    assert items[2] == {"type": "function_call_output", "call_id": "call_w", "output": "sunny"}


def test_served_models_and_the_command_line() -> None:
    with ResponsesEmulator(models=["gpt-a", "gpt-b"]) as emulator:
        assert client_of(emulator).served_models() == ["gpt-a", "gpt-b"]
    result = subprocess.run(
        [sys.executable, "-m", "llmclients", "chat", "-p", "responses", "--emulate", "Hi"],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 0, result.stderr
    assert "OpenAI Responses protocol" in result.stdout


# --- the emulator refuses what the API refuses ----------------------------------------------


@pytest.mark.parametrize(
    ("body", "param", "code"),
    [
        ({"input": "Hi"}, "model", "missing_required_parameter"),
        ({"model": "m", "input": "Hi", "messages": []}, "messages", "unknown_parameter"),
        ({"model": "m", "input": [{"type": "nonsense"}]}, "input[0].type", "invalid_value"),
        ({"model": "m", "input": [{"role": "robot", "content": "x"}]}, "input[0].role", "invalid_value"),
        (
            {"model": "m", "input": [{"role": "user", "content": [{"type": "text", "text": "x"}]}]},
            "input[0].content[0].type",
            "invalid_value",
        ),
        ({"model": "m", "input": [{"type": "function_call_output", "call_id": "c", "output": "x"}]}, "input",
         "invalid_value"),
        ({"model": "m", "input": "Hi", "tools": [WEATHER]}, "tools[0].name", "missing_required_parameter"),
        ({"model": "m", "input": "Hi", "text": {"format": {"type": "json_schema"}}}, "text.format.name",
         "missing_required_parameter"),
    ],
)
def test_the_emulator_answers_a_bad_request_as_openai_does(body: Dict[str, Any], param: str, code: str) -> None:
    with ResponsesEmulator() as emulator:
        answer = requests.post(f"{emulator.base_url}/responses", data=json.dumps(body))
    assert answer.status_code == 400
    error = answer.json()["error"]
    assert set(error) == {"message", "type", "param", "code"}
    assert (error["param"], error["code"], error["type"]) == (param, code, "invalid_request_error")


def test_the_fixture_and_what_the_official_client_does_with_error_events(
    responses_emulator: ResponsesEmulator,
) -> None:
    """openai-python raises for OpenAI's nested error event, and passes the flat
    one on as an ordinary event (openai-python #2487); llmclients raises for both."""
    client = openai.OpenAI(base_url=responses_emulator.base_url, api_key="sk-test", max_retries=0)
    for nested in (True, False):
        responses_emulator.enqueue(*[Reply(events=[error_event("invalid_prompt", "no", nested=nested)])] * 2)
        with pytest.raises((openai.APIError, RuntimeError)), client.responses.stream(model="m", input="Hi") as stream:
            for _ in stream:
                pass
            stream.get_final_response()
        with pytest.raises(errors.ProviderError):
            client_of(responses_emulator).complete("Hi")
