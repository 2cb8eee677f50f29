"""The Ollama provider against its emulator: the request it builds from
OpenAI-shaped messages and options, the reply it reads, its errors, the
context cut it warns about, OLLAMA_HOST, and the emulator's own refusals."""

from __future__ import annotations

import asyncio
import base64
import json
import warnings
from typing import Any, Dict, List

import pytest
import requests

import llmclients
from llmclients import errors
from llmclients.aio import AsyncClient
from llmclients.providers.ollama import cut_sizes, host_url
from llmclients.testing import OllamaEmulator, Reply
from llmclients.testing.ollama import done_line, error_line, text_lines, thinking_lines, tool_call_line

PNG = bytes.fromhex(
    "89504e470d0a1a0a0000000d4948445200000001000000010806000000"
    "1f15c4890000000d49444154789c6360000000000200019ef1a8c40000000049454e44ae426082"
)
WEATHER_TOOL = {
    "type": "function",
    "function": {
        "name": "weather",
        "description": "The weather in a city",
        "parameters": {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]},
    },
}


@pytest.fixture
def client(ollama_emulator: OllamaEmulator) -> llmclients.Ollama:
    return llmclients.Ollama(base_url=ollama_emulator.base_url, model="llama3.2", max_retries=2)


def sent(emulator: OllamaEmulator) -> Dict[str, Any]:
    body: Dict[str, Any] = emulator.last_request.json()
    return body


# --- the request ------------------------------------------------------------------------------


def test_a_text_reply_streams_with_usage_durations_and_reason(client, ollama_emulator):
    ollama_emulator.enqueue(
        Reply(deltas=["Hello", ", wörld 🎉"], usage={"prompt_tokens": 26, "completion_tokens": 2})
    )
    with client.stream("Hi") as stream:
        assert list(stream) == ["Hello", ", wörld 🎉"]
    assert stream.text == "Hello, wörld 🎉"
    assert stream.finish_reason == "stop"
    assert stream.usage == (26, 2, 28)
    assert stream.extra["done_reason"] == "stop"
    assert stream.extra["total_duration"] == 2_310_000_000
    assert set(stream.extra) >= {"load_duration", "prompt_eval_duration", "eval_duration"}
    assert stream.model == "llama3.2"
    request = ollama_emulator.last_request
    assert request.path == "/api/chat"
    assert request.headers["Accept"] == "application/x-ndjson"
    assert "Authorization" not in request.headers
    assert request.json() == {
        "model": "llama3.2",
        "messages": [{"role": "user", "content": "Hi"}],
        "stream": True,
    }


def test_options_go_where_ollama_reads_them(client, ollama_emulator):
    client.complete(
        "Hi",
        temperature=0.2,
        top_p=0.9,
        top_k=40,
        seed=7,
        stop="END",
        max_tokens=100,
        num_ctx=8192,
        keep_alive="10m",
        think=True,
        options={"repeat_penalty": 1.1},
        truncate=False,
    )
    body = sent(ollama_emulator)
    assert body["options"] == {
        "repeat_penalty": 1.1,
        "temperature": 0.2,
        "top_p": 0.9,
        "top_k": 40,
        "seed": 7,
        "num_ctx": 8192,
        "num_predict": 100,
        "stop": ["END"],
    }
    assert body["keep_alive"] == "10m"
    assert body["think"] is True
    assert body["truncate"] is False


@pytest.mark.parametrize(
    ("effort", "think"), [("low", "low"), ("medium", "medium"), ("high", "high"), ("none", False)]
)
def test_reasoning_effort_is_think(client, ollama_emulator, effort, think):
    client.complete("Hi", reasoning_effort=effort)
    assert sent(ollama_emulator)["think"] == think


def test_think_and_reasoning_effort_together_are_refused(client, ollama_emulator):
    with pytest.raises(errors.InvalidRequestError, match="not both"):
        client.complete("Hi", think=True, reasoning_effort="high")
    with pytest.raises(errors.InvalidRequestError, match="think must be"):
        client.complete("Hi", think="very")
    assert not ollama_emulator.requests


def test_response_format_is_format(client, ollama_emulator):
    schema = {"type": "object", "properties": {"answer": {"type": "string"}}, "required": ["answer"]}
    client.complete(
        "Hi", response_format={"type": "json_schema", "json_schema": {"name": "a", "schema": schema}}
    )
    assert sent(ollama_emulator)["format"] == schema
    client.complete("Hi", response_format={"type": "json_object"})
    assert sent(ollama_emulator)["format"] == "json"
    client.complete("Hi", format="json")
    assert sent(ollama_emulator)["format"] == "json"
    client.complete("Hi", response_format={"type": "text"})
    assert "format" not in sent(ollama_emulator)
    with pytest.raises(errors.InvalidRequestError):
        client.complete("Hi", response_format={"type": "json_schema"})


def test_an_option_ollama_does_not_have_is_refused(client):
    with pytest.raises(errors.InvalidRequestError, match="does not take 'n'"):
        client.complete("Hi", n=2)


def test_the_clients_num_ctx_goes_with_every_call_that_sets_none(ollama_emulator):
    client = llmclients.Ollama(base_url=ollama_emulator.base_url, model="llama3.2", num_ctx=16384)
    client.complete("Hi")
    assert sent(ollama_emulator)["options"] == {"num_ctx": 16384}
    client.complete("Hi", num_ctx=2048)
    assert sent(ollama_emulator)["options"] == {"num_ctx": 2048}
    with pytest.raises(errors.InvalidRequestError):
        llmclients.Ollama(num_ctx=0)


def test_messages_become_ollamas(client, ollama_emulator):
    messages = [
        {"role": "system", "content": "Be brief."},
        {"role": "developer", "content": [{"type": "text", "text": "Use metric units."}]},
        {
            "role": "user",
            "content": [
                {"type": "text", "text": "What is this?"},
                llmclients.image_part(PNG),
                {"type": "text", "text": "And the weather?"},
            ],
        },
        {
            "role": "assistant",
            "content": None,
            "thinking": "The user wants weather.",
            "tool_calls": [
                {
                    "id": "call_a",
                    "type": "function",
                    "function": {"name": "weather", "arguments": '{"city": "Paris"}'},
                },
                {"id": "call_b", "type": "function", "function": {"name": "clock", "arguments": ""}},
            ],
        },
        {"role": "tool", "tool_call_id": "call_b", "content": "noon"},
        {"role": "tool", "tool_call_id": "call_a", "content": [{"type": "text", "text": "sunny"}]},
    ]
    client.complete(messages, tools=[WEATHER_TOOL])
    body = sent(ollama_emulator)
    assert body["messages"] == [
        {"role": "system", "content": "Be brief."},
        {"role": "system", "content": "Use metric units."},
        {
            "role": "user",
            "content": "What is this?\nAnd the weather?",
            "images": [base64.b64encode(PNG).decode()],
        },
        {
            "role": "assistant",
            "content": "",
            "thinking": "The user wants weather.",
            "tool_calls": [
                {"id": "call_a", "function": {"name": "weather", "arguments": {"city": "Paris"}}},
                {"id": "call_b", "function": {"name": "clock", "arguments": {}}},
            ],
        },
        {"role": "tool", "tool_call_id": "call_b", "tool_name": "clock", "content": "noon"},
        {"role": "tool", "tool_call_id": "call_a", "tool_name": "weather", "content": "sunny"},
    ]
    assert body["tools"] == [WEATHER_TOOL]


def test_a_remote_image_url_is_refused_before_sending(client, ollama_emulator):
    messages = [{"role": "user", "content": [llmclients.image_part("https://example.com/cat.png")]}]
    with pytest.raises(errors.InvalidMessagesError, match="Ollama takes the image's bytes"):
        client.complete(messages)
    assert not ollama_emulator.requests


def test_a_percent_encoded_data_url_is_sent_as_base64(client, ollama_emulator):
    part = {"type": "image_url", "image_url": {"url": "data:image/svg+xml,%3Csvg%2F%3E"}}
    client.complete([{"role": "user", "content": [part]}])
    assert sent(ollama_emulator)["messages"][0]["images"] == [base64.b64encode(b"<svg/>").decode()]


def test_tool_call_arguments_that_are_not_an_object_are_refused(client, ollama_emulator):
    call = {"id": "c", "type": "function", "function": {"name": "f", "arguments": "[1, 2"}}
    with pytest.raises(errors.InvalidMessagesError, match="not a JSON object"):
        client.complete([{"role": "user", "content": "Hi"}, {"role": "assistant", "tool_calls": [call]}])
    assert not ollama_emulator.requests


def test_an_api_key_is_a_bearer_token(ollama_emulator):
    ollama_emulator.api_key = "sk-cloud"
    client = llmclients.Ollama(base_url=ollama_emulator.base_url, model="llama3.2", api_key="sk-cloud")
    assert client.complete("Hi").text
    assert ollama_emulator.last_request.headers["Authorization"] == "Bearer sk-cloud"
    bare = llmclients.Ollama(base_url=ollama_emulator.base_url, model="llama3.2")
    with pytest.raises(errors.AuthenticationError):
        bare.complete("Hi")


# --- the reply ----------------------------------------------------------------------------------


def test_thinking_is_reasoning_and_goes_back_with_the_turn(client, ollama_emulator):
    ollama_emulator.enqueue(
        Reply(events=thinking_lines(["Let me ", "think."]) + text_lines(["Four."])), Reply(text="Six.")
    )
    conversation = client.conversation()
    reply = conversation.send("2+2?")
    assert reply.reasoning == "Let me think."
    assert reply.text == "Four."
    conversation.send("And 3+3?")
    assistant = sent(ollama_emulator)["messages"][1]
    assert assistant == {"role": "assistant", "content": "Four.", "thinking": "Let me think."}


def test_whole_tool_calls_get_ids_and_end_as_tool_calls(client, ollama_emulator):
    ollama_emulator.enqueue(
        Reply(
            events=[
                tool_call_line([(None, "weather", {"city": "Paris"})]),
                tool_call_line(
                    [("call_x7", "weather", {"city": "Oslo, Norway", "unit": "°C"}), (None, "clock", {})]
                ),
                done_line("stop"),
            ]
        )
    )
    with client.stream("Weather?", tools=[WEATHER_TOOL]) as stream:
        assert list(stream) == []
    assert stream.finish_reason == "tool_calls"
    assert stream.extra["done_reason"] == "stop"
    assert [(call.id, call.name, json.loads(call.arguments)) for call in stream.tool_calls] == [
        ("call_0", "weather", {"city": "Paris"}),
        ("call_x7", "weather", {"city": "Oslo, Norway", "unit": "°C"}),
        ("call_2", "clock", {}),
    ]


def test_tool_call_events_arrive_whole(client, ollama_emulator):
    ollama_emulator.enqueue(Reply(events=[tool_call_line([(None, "weather", {"city": "Paris"})])]))
    with client.stream("Weather?", tools=[WEATHER_TOOL]) as stream:
        events = list(stream.events())
    calls = [event for event in events if isinstance(event, llmclients.ToolCallDelta)]
    assert [(call.id, call.name, call.arguments) for call in calls] == [
        ("call_0", "weather", '{"city": "Paris"}')
    ]


def test_a_tool_loop_sends_the_result_under_the_tools_name(client, ollama_emulator):
    ollama_emulator.enqueue(
        Reply(events=[tool_call_line([(None, "weather", {"city": "Paris"})])]), Reply(text="Sunny in Paris.")
    )
    conversation = client.conversation(tools=[WEATHER_TOOL])
    first = conversation.send("Weather in Paris?")
    conversation.add_tool_results({first.tool_calls[0].id: "sunny"})
    second = conversation.send()
    assert second.text == "Sunny in Paris."
    messages = sent(ollama_emulator)["messages"]
    assert messages[1] == {
        "role": "assistant",
        "content": "",
        "tool_calls": [{"id": "call_0", "function": {"name": "weather", "arguments": {"city": "Paris"}}}],
    }
    assert messages[2] == {
        "role": "tool",
        "tool_call_id": "call_0",
        "tool_name": "weather",
        "content": "sunny",
    }


def test_length_is_length(client, ollama_emulator):
    ollama_emulator.enqueue(Reply(text="cut short", finish_reason="length"))
    reply = client.complete("Hi", max_tokens=2)
    assert reply.finish_reason == "length"


def test_absent_counts_are_not_zero(client, ollama_emulator):
    ollama_emulator.enqueue(Reply(events=text_lines(["a"]) + [done_line("stop", None, None)]))
    assert client.complete("Hi").usage is None
    ollama_emulator.enqueue(Reply(events=text_lines(["a"]) + [done_line("stop", None, 1)]))
    assert client.complete("Hi").usage == (None, 1, 1)


def test_a_reply_that_did_not_stream_is_read_whole(client, ollama_emulator):
    whole = {
        "model": "llama3.2",
        "created_at": "2026-08-21T10:00:00Z",
        "message": {"role": "assistant", "content": "All at once.", "thinking": "hm"},
        "done": True,
        "done_reason": "stop",
        "prompt_eval_count": 5,
        "eval_count": 3,
    }
    ollama_emulator.enqueue(
        Reply(raw=json.dumps(whole).encode(), headers={"Content-Type": "application/json"})
    )
    reply = client.complete("Hi")
    assert (reply.text, reply.reasoning, reply.usage) == ("All at once.", "hm", (5, 3, 8))


def test_async_client_and_fallback_take_it_unchanged(client, ollama_emulator):
    async def run() -> str:
        reply = await AsyncClient(client).complete("Hi")
        return reply.text

    assert "You said: Hi" in asyncio.run(run())
    ollama_emulator.enqueue(Reply(status=503, body={"error": "server busy"}), Reply(text="From the second."))
    down = llmclients.Ollama(base_url=ollama_emulator.base_url, model="llama3.2", max_retries=0)
    fallback = llmclients.Fallback([down, client])
    assert fallback.complete("Hi").text == "From the second."


# --- errors --------------------------------------------------------------------------------------


def test_an_error_line_before_text_raises(client, ollama_emulator):
    ollama_emulator.enqueue(Reply(events=[error_line("llama runner process has terminated: exit status 2")]))
    with pytest.raises(errors.ProviderError, match="runner process has terminated") as caught:
        client.complete("Hi")
    assert caught.value.partial_text == ""
    assert len(ollama_emulator.requests) == 1  # not a status that says try again


def test_an_error_line_after_text_keeps_the_text(client, ollama_emulator):
    ollama_emulator.enqueue(
        Reply(
            events=text_lines(["Half ", "a "])
            + [error_line("an error was encountered while running the model")]
        )
    )
    given: List[str] = []
    with pytest.raises(errors.ProviderError) as caught:
        for text in client.stream("Hi"):
            given.append(text)
    assert caught.value.partial_text == "Half a " == "".join(given)


def test_a_busy_error_line_before_text_is_retried(client, ollama_emulator):
    waits: List[float] = []
    client.transport.sleep = waits.append
    ollama_emulator.enqueue(
        Reply(events=[error_line("server busy, please try again.  maximum pending requests exceeded")]),
        Reply(events=[error_line("model overloaded", status=503)]),
        Reply(text="At last."),
    )
    assert client.complete("Hi").text == "At last."
    assert len(waits) == 2


def test_a_busy_error_line_raises_a_server_error_when_retries_run_out(ollama_emulator):
    client = llmclients.Ollama(base_url=ollama_emulator.base_url, model="llama3.2", max_retries=0)
    ollama_emulator.enqueue(Reply(events=[error_line("server busy, please try again.")]))
    with pytest.raises(errors.ServerError) as caught:
        client.complete("Hi")
    assert caught.value.status_code == 503


def test_an_over_long_prompt_refused_in_the_stream_is_a_context_error(client, ollama_emulator):
    ollama_emulator.enqueue(
        Reply(events=[error_line("the input length exceeds the context length", status=400)])
    )
    with pytest.raises(errors.ContextLengthError):
        client.complete("Hi", truncate=False)


def test_an_over_long_prompt_refused_with_a_status_is_a_context_error(client, ollama_emulator):
    ollama_emulator.enqueue(Reply(status=400, body={"error": "the input length exceeds the context length"}))
    with pytest.raises(errors.ContextLengthError):
        client.complete("Hi", truncate=False)


def test_a_body_without_its_done_line_is_interrupted(client, ollama_emulator):
    ollama_emulator.enqueue(Reply(deltas=["Half ", "a "], finish_reason=None))
    given: List[str] = []
    with pytest.raises(errors.StreamInterruptedError, match="done") as caught:
        for text in client.stream("Hi"):
            given.append(text)
    assert caught.value.partial_text == "Half a "


def test_a_missing_model_says_to_pull_it(ollama_emulator):
    ollama_emulator.models = ["llama3.2"]
    client = llmclients.Ollama(base_url=ollama_emulator.base_url, model="qwen3:8b")
    with pytest.raises(errors.NotFoundError) as caught:
        client.complete("Hi")
    assert "ollama pull qwen3:8b" in str(caught.value)
    assert 'model "qwen3:8b" not found' in str(caught.value)
    assert caught.value.status_code == 404


def test_think_for_a_model_that_does_not_think_says_so(ollama_emulator):
    ollama_emulator.no_thinking = ["gemma3"]
    client = llmclients.Ollama(base_url=ollama_emulator.base_url, model="gemma3")
    with pytest.raises(errors.HTTPStatusError, match="Leave think and reasoning_effort out") as caught:
        client.complete("Hi", reasoning_effort="low")
    assert caught.value.status_code == 400 and '"gemma3" does not support thinking' in str(caught.value)
    assert client.complete("Hi", think=False).text


def test_a_think_level_for_a_model_without_levels_says_so(client, ollama_emulator):
    ollama_emulator.enqueue(
        Reply(status=400, body={"error": 'think value "high" is not supported for this model'})
    )
    with pytest.raises(errors.HTTPStatusError, match="other models take think=True"):
        client.complete("Hi", think="high")


# --- the context window ----------------------------------------------------------------------------


def test_a_prompt_cut_to_num_ctx_warns(client, ollama_emulator):
    with pytest.warns(llmclients.ContextTruncatedWarning, match="num_ctx") as caught:
        for _ in client.stream("word " * 500, num_ctx=64):
            pass
    assert caught[0].filename == __file__  # where the caller iterates
    assert ollama_emulator.last_request.json()["options"] == {"num_ctx": 64}


def test_a_prompt_that_fits_does_not_warn(client, ollama_emulator):
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        client.complete("word " * 10, num_ctx=64)
        client.complete("word " * 10)


def test_a_prompt_cut_to_the_default_context_warns(client, ollama_emulator):
    with pytest.warns(llmclients.ContextTruncatedWarning, match="4096 tokens"):
        client.complete("word " * 5000)  # the emulator's context, as Ollama's default: 4096


def test_a_prompt_cut_to_about_half_by_llama_server_warns(client, ollama_emulator):
    ollama_emulator.context_shift = True
    # The emulator keeps num_keep and a BOS token, as llama-server does for most models.
    with pytest.warns(llmclients.ContextTruncatedWarning, match="counts 2051 after the cut"):
        client.complete("word " * 5000, num_ctx=4096)
    with pytest.warns(llmclients.ContextTruncatedWarning, match="4096 tokens; the prompt counts 2053"):
        client.complete("word " * 5000, options={"num_keep": 8})  # the server's default context


@pytest.mark.parametrize(
    ("context", "keep", "sizes"),
    [
        (4096, 4, {4096, 4095, 2050, 2051}),  # logged: limit=2050 keep=4 (a BOS: 2051 keep=5)
        (2048, 4, {2048, 2047, 1026, 1027}),
        (2, 4, {2, 1}),
    ],
)
def test_the_sizes_ollama_cuts_a_prompt_to(context, keep, sizes):
    assert cut_sizes(context, keep) == sizes


def test_truncate_false_makes_ollama_refuse_an_over_long_prompt(client, ollama_emulator):
    with pytest.raises(errors.ContextLengthError, match="exceeds the context length"):
        client.complete("word " * 500, num_ctx=64, truncate=False)


def test_the_warning_can_be_an_error(client, ollama_emulator):
    with warnings.catch_warnings():
        warnings.simplefilter("error", llmclients.ContextTruncatedWarning)
        with pytest.raises(llmclients.ContextTruncatedWarning):
            client.complete("word " * 500, options={"num_ctx": 32})


# --- where the server is -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("host", "url"),
    [
        # ollama-python's own table (ollama/_client.py _parse_host)
        ("", "http://127.0.0.1:11434"),
        ("1.2.3.4", "http://1.2.3.4:11434"),
        (":56789", "http://127.0.0.1:56789"),
        ("1.2.3.4:56789", "http://1.2.3.4:56789"),
        ("http://1.2.3.4", "http://1.2.3.4:80"),
        ("https://1.2.3.4", "https://1.2.3.4:443"),
        ("https://1.2.3.4:56789", "https://1.2.3.4:56789"),
        ("example.com", "http://example.com:11434"),
        ("example.com:56789", "http://example.com:56789"),
        ("example.com/", "http://example.com:11434"),
        ("example.com:56789/path/", "http://example.com:56789/path"),
        ("https://example.com:56789/path", "https://example.com:56789/path"),
        ("[0001:002:003:0004::1]", "http://[0001:002:003:0004::1]:11434"),
        ("[0001:002:003:0004::1]:56789", "http://[0001:002:003:0004::1]:56789"),
        ("https://[0001:002:003:0004::1]", "https://[0001:002:003:0004::1]:443"),
        # where a server listens is not where to connect
        ("0.0.0.0", "http://127.0.0.1:11434"),
        ("0.0.0.0:8080", "http://127.0.0.1:8080"),
        ("[::]:11434", "http://[::1]:11434"),
    ],
)
def test_ollama_host_is_read_as_ollama_python_reads_it(host, url):
    assert host_url(host) == url


def test_ollama_host_is_the_base_url_when_none_is_given(monkeypatch, ollama_emulator):
    monkeypatch.setenv("OLLAMA_HOST", f"127.0.0.1:{ollama_emulator.port}")
    client = llmclients.Ollama(model="llama3.2")
    assert client.base_url == f"http://127.0.0.1:{ollama_emulator.port}"
    assert client.complete("Hi").text
    assert llmclients.Ollama(base_url="http://elsewhere:1/api/").base_url == "http://elsewhere:1"
    monkeypatch.delenv("OLLAMA_HOST")
    assert llmclients.Ollama().base_url == "http://localhost:11434"
    assert llmclients.get_client("ollama").base_url == "http://localhost:11434"


def test_the_models_are_the_servers(ollama_emulator):
    ollama_emulator.models = ["qwen3:8b", "llama3.2:latest"]
    client = llmclients.Ollama(base_url=ollama_emulator.base_url)
    assert client.lists_models
    assert client.served_models() == ["qwen3:8b", "llama3.2:latest"]
    assert ollama_emulator.last_request.path == "/api/tags"


def test_a_model_list_that_is_not_ollamas_is_malformed(ollama_emulator):
    client = llmclients.Ollama(base_url=ollama_emulator.base_url)
    ollama_emulator.fixed_reply = lambda request: Reply(body={"data": []})  # type: ignore[method-assign]
    with pytest.raises(errors.MalformedStreamError, match="models"):
        client.served_models()


# --- the emulator refuses what Ollama refuses ---------------------------------------------------------


def post(emulator: OllamaEmulator, body: Any) -> requests.Response:
    data = body if isinstance(body, bytes) else json.dumps(body).encode()
    return requests.post(f"{emulator.url}/api/chat", data=data, timeout=5)


@pytest.mark.parametrize(
    ("body", "error"),
    [
        (b"", "missing request body"),
        (b"{oops", "invalid character 'o' looking for beginning of value"),
        (b'{"model": "m", "messages": [', "unexpected EOF"),
        ({"messages": [{"role": "user", "content": "Hi"}]}, "model is required"),
        ([1], "json: cannot unmarshal array into Go value of type api.ChatRequest"),
        (
            {"model": "m", "messages": [{"role": "user", "content": [{"type": "text", "text": "Hi"}]}]},
            "json: cannot unmarshal array into Go struct field Message.messages.content of type string",
        ),
        (
            {
                "model": "m",
                "messages": [{"role": "user", "content": "Hi", "images": ["data:image/png;base64,AAAA"]}],
            },
            "illegal base64 data at input byte 4",
        ),
        (
            {
                "model": "m",
                "messages": [
                    {
                        "role": "assistant",
                        "content": "",
                        "tool_calls": [{"function": {"name": "f", "arguments": "{}"}}],
                    }
                ],
            },
            "json: cannot unmarshal string into Go struct field "
            "ToolCallFunction.messages.tool_calls.function.arguments of type api.ToolCallFunctionArguments",
        ),
        (
            {"model": "m", "messages": [], "think": "very"},
            'invalid think value: "very" (must be "high", "medium", "low", true, or false)',
        ),
        ({"model": "m", "messages": [], "top_logprobs": 21}, "top_logprobs must be between 0 and 20"),
        (
            {"model": "m", "messages": [], "options": []},
            "json: cannot unmarshal array into Go struct field ChatRequest.options",
        ),
    ],
)
def test_the_emulator_refuses_bad_requests_in_ollamas_words(ollama_emulator, body, error):
    response = post(ollama_emulator, body)
    assert response.status_code == 400
    assert response.headers["Content-Type"] == "application/json"
    assert response.json()["error"].startswith(error)


def test_the_emulator_answers_other_paths_as_gin_does(ollama_emulator):
    response = requests.post(f"{ollama_emulator.url}/v1/api/chat", json={}, timeout=5)
    assert (response.status_code, response.text) == (404, "404 page not found")
    assert requests.get(f"{ollama_emulator.url}/api/chat", timeout=5).status_code == 404
    assert requests.get(ollama_emulator.url, timeout=5).text == "Ollama is running"


def test_the_emulator_answers_a_load_request_and_a_whole_reply(ollama_emulator):
    load = post(ollama_emulator, {"model": "m", "messages": []})
    assert json.loads(load.text.splitlines()[0])["done_reason"] == "load"
    ollama_emulator.enqueue(Reply(events=thinking_lines(["a", "b"]) + text_lines(["Hi", "!"])))
    whole = post(
        ollama_emulator, {"model": "m", "messages": [{"role": "user", "content": "Hi"}], "stream": False}
    )
    assert whole.headers["Content-Type"] == "application/json; charset=utf-8"
    reply = whole.json()
    assert reply["message"] == {"role": "assistant", "content": "Hi!", "thinking": "ab"}
    assert reply["done"] is True and reply["done_reason"] == "stop"


def test_the_emulator_counts_images_in_the_prompt(client, ollama_emulator):
    reply = client.complete(
        [{"role": "user", "content": [{"type": "text", "text": "What?"}, llmclients.image_part(PNG)]}]
    )
    assert reply.text.endswith("You said: What? (1 image)")
    assert reply.usage.prompt_tokens == 1 + 768 + 10
