"""Rich replies over loopback: tool calls, reasoning, several choices, metadata,
error events, structured output, tool loops; and request shapes with responses."""

from __future__ import annotations

import asyncio
import base64
import json
import warnings

import pytest
import responses
from hypothesis import given, settings
from hypothesis import strategies as st

import llmclients
from llmclients import ReasoningDelta, TextDelta, ToolCall, ToolCallDelta
from llmclients._core.framing import iter_sse
from llmclients._core.state import StreamState
from llmclients.aio import AsyncClient
from llmclients.testing import Reply
from llmclients.testing import openai as emulated


def chunk(delta=None, finish=None, index=0, **top):
    data = {"id": "chatcmpl-1", "object": "chat.completion.chunk", "created": 1, "model": "m"}
    data["choices"] = [{"index": index, "delta": delta or {}, "finish_reason": finish}]
    data.update(top)
    return b"data: " + json.dumps(data, ensure_ascii=False).encode() + b"\n\n"


DONE = b"data: [DONE]\n\n"
WEATHER = '{"city": "Paris", "unit": "°C"}'


def fragments(arguments, size=5):
    return [arguments[i : i + size] for i in range(0, len(arguments), size)]


def openai_shape():
    """OpenAI: id, type and name on an index's first fragment only."""
    first = {"index": 0, "id": "call_1", "type": "function", "function": {"name": "weather", "arguments": ""}}
    rest = [{"index": 0, "function": {"arguments": piece}} for piece in fragments(WEATHER)]
    return [chunk({"role": "assistant", "tool_calls": [first]})] + [chunk({"tool_calls": [f]}) for f in rest]


def whole_shape():
    """Groq and Ollama: each call whole, in one chunk."""
    calls = [
        {
            "index": 0,
            "id": "call_1",
            "type": "function",
            "function": {"name": "weather", "arguments": WEATHER},
        },
        {"index": 1, "id": "call_2", "type": "function", "function": {"name": "time", "arguments": "{}"}},
    ]
    return [chunk({"tool_calls": calls})]


def offset_shape():
    """A first index above 0."""
    first = {"index": 3, "id": "call_1", "function": {"name": "weather", "arguments": WEATHER[:7]}}
    return [
        chunk({"tool_calls": [first]}),
        chunk({"tool_calls": [{"index": 3, "function": {"arguments": WEATHER[7:]}}]}),
    ]


def no_index_shape():
    """No ``index``: a new id starts a call, fragments without one continue it."""
    return [
        chunk({"tool_calls": [{"id": "call_1", "function": {"name": "weather", "arguments": WEATHER[:9]}}]}),
        chunk({"tool_calls": [{"function": {"arguments": WEATHER[9:]}}]}),
        chunk({"tool_calls": [{"id": "call_2", "function": {"name": "time", "arguments": "{}"}}]}),
    ]


def parallel_shape():
    """Two calls' fragments interleaved."""
    a, b = fragments(WEATHER, 4), fragments("{}", 1)
    out = [
        chunk(
            {"tool_calls": [{"index": 0, "id": "call_1", "function": {"name": "weather", "arguments": ""}}]}
        ),
        chunk({"tool_calls": [{"index": 1, "id": "call_2", "function": {"name": "time", "arguments": ""}}]}),
    ]
    for i in range(max(len(a), len(b))):
        parts = [{"index": 0, "function": {"arguments": a[i]}}] if i < len(a) else []
        parts += [{"index": 1, "function": {"arguments": b[i]}}] if i < len(b) else []
        out.append(chunk({"tool_calls": parts}))
    return out


def same_index_shape():
    """Servers that number every call 0: a new id at a taken index is a new call."""
    return [
        chunk(
            {
                "tool_calls": [
                    {"index": 0, "id": "call_1", "function": {"name": "weather", "arguments": WEATHER}}
                ]
            }
        ),
        chunk(
            {"tool_calls": [{"index": 0, "id": "call_2", "function": {"name": "time", "arguments": "{}"}}]}
        ),
    ]


ONE = [ToolCall("call_1", "weather", WEATHER)]
TWO = [ToolCall("call_1", "weather", WEATHER), ToolCall("call_2", "time", "{}")]
SHAPES = {
    "openai": (openai_shape, ONE),
    "whole": (whole_shape, TWO),
    "offset": (offset_shape, ONE),
    "no_index": (no_index_shape, TWO),
    "parallel": (parallel_shape, TWO),
    "same_index": (same_index_shape, TWO),
}


def finished(events, reason="tool_calls"):
    return [*events, chunk({}, reason), DONE]


@pytest.fixture
def client(openai_emulator):
    with llmclients.OpenAICompatible(base_url=openai_emulator.base_url, model="m") as client:
        yield client


@pytest.mark.parametrize("shape", sorted(SHAPES))
def test_tool_calls_are_assembled_from_every_shape_servers_send(openai_emulator, client, shape):
    build, expected = SHAPES[shape]
    openai_emulator.enqueue(Reply(raw=finished(build())))
    reply = client.complete(
        "Weather in Paris?", tools=[{"type": "function", "function": {"name": "weather"}}]
    )
    assert reply.tool_calls == expected
    assert reply.finish_reason == "tool_calls"
    assert reply.text == ""
    assert reply.tool_calls[0].parsed() == {"city": "Paris", "unit": "°C"}


def test_arguments_split_inside_a_multibyte_character_on_the_wire(openai_emulator, client):
    body = b"".join(finished(openai_shape()))
    cut = body.index("°".encode()) + 1  # between the two bytes of "°"
    openai_emulator.enqueue(Reply(raw=[body[:cut], body[cut:]], delay=0.01))
    assert client.complete("x").tool_calls == ONE


def test_tool_call_events_come_in_order_with_their_fragments(openai_emulator, client):
    openai_emulator.enqueue(Reply(raw=finished(parallel_shape())))
    with client.stream("x") as stream:
        events = list(stream.events())
    assert all(isinstance(event, ToolCallDelta) for event in events)
    assert [(e.index, e.id, e.name) for e in events[:2]] == [(0, "call_1", "weather"), (1, "call_2", "time")]
    assert "".join(e.arguments for e in events if e.index == 0) == WEATHER
    assert stream.tool_calls == TWO


@settings(max_examples=60, deadline=None)
@given(shape=st.sampled_from(sorted(SHAPES)), data=st.data())
def test_any_split_of_any_tool_call_stream_gives_the_same_calls(shape, data):
    build, expected = SHAPES[shape]
    body = b"".join(finished(build()))
    cuts = sorted(data.draw(st.lists(st.integers(0, len(body)), max_size=8)))
    pieces = [body[a:b] for a, b in zip([0, *cuts], [*cuts, len(body)]) if body[a:b]]
    provider = llmclients.OpenAICompatible(base_url="http://127.0.0.1:9")
    state = StreamState()
    for event in iter_sse(pieces):
        provider.parse_event(event, state)
        if state.done:
            break
    assert state.done and state.first.tool_calls == expected


@pytest.mark.parametrize("key", ["reasoning_content", "reasoning"])
def test_reasoning_is_kept_apart_from_the_text_under_both_names(openai_emulator, client, key):
    events = [
        chunk({key: "Let me "}),
        chunk({key: "think."}),
        chunk({"content": "42"}),
        chunk({}, "stop"),
        DONE,
    ]
    openai_emulator.enqueue(Reply(raw=events))
    with client.stream("x") as stream:
        assert list(stream.events()) == [ReasoningDelta("Let me "), ReasoningDelta("think."), TextDelta("42")]
    assert (stream.text, stream.reasoning) == ("42", "Let me think.")
    openai_emulator.enqueue(Reply(raw=events))
    with client.stream("x") as stream:
        assert list(stream) == ["42"]  # the text iterator is as it was
    assert stream.reasoning == "Let me think."


def test_a_server_sending_both_reasoning_keys_is_read_once(openai_emulator, client):
    openai_emulator.enqueue(
        Reply(raw=[chunk({"reasoning_content": "a", "reasoning": "a"}), chunk({}, "stop"), DONE])
    )
    assert client.complete("x").reasoning == "a"


def test_reasoning_deltas_restart_the_idle_clock(openai_emulator):
    events = [chunk({"reasoning_content": f"r{i} "}) for i in range(8)] + [
        chunk({"content": "done"}, "stop"),
        DONE,
    ]
    openai_emulator.enqueue(Reply(raw=events, delay=0.25))
    client = llmclients.OpenAICompatible(
        base_url=openai_emulator.base_url, model="m", timeout=llmclients.Timeout(idle=1)
    )
    with client:
        reply = client.complete("x")
    assert reply.text == "done" and reply.reasoning.startswith("r0 r1")


def test_keepalives_still_do_not_restart_the_idle_clock(openai_emulator):
    openai_emulator.enqueue(
        Reply(
            raw=[chunk({"reasoning_content": "r"}), chunk({}, "stop"), DONE],
            stall=3,
            stall_after=1,
            keepalive=0.1,
        )
    )
    client = llmclients.OpenAICompatible(
        base_url=openai_emulator.base_url, model="m", timeout=llmclients.Timeout(idle=0.5)
    )
    with client, pytest.raises(llmclients.IdleTimeout):
        client.complete("x")


def test_a_reply_cut_while_reasoning_warns(openai_emulator, client):
    openai_emulator.enqueue(Reply(raw=[chunk({"reasoning_content": "hmm"}), chunk({}, "length"), DONE]))
    with pytest.warns(llmclients.ReasoningCutOffWarning, match="still reasoning"):
        reply = client.complete("x")
    assert reply.truncated and reply.text == "" and reply.reasoning == "hmm"


def test_several_choices_are_never_spliced(openai_emulator, client):
    events = []
    for a, b in zip(["Write ", "a ", "haiku"], ["Roses ", "are ", "red"]):
        events += [chunk({"content": a}, index=0), chunk({"content": b}, index=1)]
    events += [chunk({}, "stop", index=0), chunk({}, "length", index=1), DONE]
    openai_emulator.enqueue(Reply(raw=events))
    with client.stream("x", n=2) as stream:
        texts = list(stream)
    assert texts == ["Write ", "a ", "haiku"]
    choices = stream.completion().choices
    assert [(c.index, c.text, c.finish_reason) for c in choices] == [
        (0, "Write a haiku", "stop"),
        (1, "Roses are red", "length"),
    ]
    assert json.loads(openai_emulator.last_request.body)["n"] == 2


def test_reply_metadata_is_kept(openai_emulator, client):
    logprob = {"token": "Hi", "logprob": -0.1, "bytes": [72, 105], "top_logprobs": []}
    usage = {
        "prompt_tokens": 10,
        "completion_tokens": 5,
        "total_tokens": 15,
        "prompt_tokens_details": {"cached_tokens": 8},
        "completion_tokens_details": {"reasoning_tokens": 3},
        "cost": 0.0012,
    }
    events = [
        chunk({"content": "Hi"}, system_fingerprint="fp_1"),
        chunk({}, "stop", timings={"predicted_n": 5, "predicted_ms": 12.5}),
        b"data: "
        + json.dumps(
            {"id": "chatcmpl-1", "object": "chat.completion.chunk", "choices": [], "usage": usage}
        ).encode()
        + b"\n\n",
        DONE,
    ]
    events[0] = events[0].replace(
        b'"finish_reason": null}',
        b'"finish_reason": null, "logprobs": {"content": [' + json.dumps(logprob).encode() + b"]}}",
    )
    openai_emulator.enqueue(Reply(raw=events, headers={"x-request-id": "req_123"}))
    reply = client.complete("x", logprobs=True, top_logprobs=2)
    assert reply.response_id == "chatcmpl-1"
    assert reply.request_id == "req_123"
    assert reply.extra == {"system_fingerprint": "fp_1", "timings": {"predicted_n": 5, "predicted_ms": 12.5}}
    assert reply.logprobs == [logprob]
    assert reply.usage == llmclients.Usage(10, 5, 15, cached_tokens=8, reasoning_tokens=3, cost=0.0012)
    assert reply.usage.raw == usage


@pytest.mark.parametrize(
    "error_event",
    [
        b'event: error\ndata: {"message": "the model crashed"}\n\n',
        b'data: {"object": "error", "message": "the model crashed", "type": "InternalServerError", "code": 500}\n\n',
        b'error: {"code": 500, "message": "the model crashed", "type": "server_error"}\n\ndata: [DONE]\n\n',
        b'data: {"error": {"message": "the model crashed", "type": "server_error"}}\n\n',
    ],
    ids=["event-type", "vllm-flat", "llamacpp-field", "openai"],
)
def test_every_error_event_form_raises_with_the_text_so_far(openai_emulator, client, error_event):
    openai_emulator.enqueue(
        Reply(raw=[chunk({"content": "Half an "}), error_event, chunk({"content": "answer"}, "stop"), DONE])
    )
    with pytest.raises(llmclients.ProviderError, match="the model crashed") as caught:
        client.complete("x")
    assert caught.value.partial_text == "Half an "


def test_a_leading_bom_does_not_lose_the_first_event(openai_emulator, client):
    openai_emulator.enqueue(
        Reply(raw=[b"\xef\xbb\xbf" + chunk({"content": "first"}), chunk({}, "stop"), DONE])
    )
    assert client.complete("x").text == "first"


@pytest.mark.parametrize(
    ("body", "prompt_tokens", "context_tokens"),
    [
        (
            {
                "error": {
                    "message": "too long",
                    "type": "invalid_request_error",
                    "param": "messages",
                    "code": "context_length_exceeded",
                }
            },
            None,
            None,
        ),
        (
            {
                "error": {
                    "code": 400,
                    "message": "the request exceeds the available context size",
                    "type": "exceed_context_size_error",
                    "n_prompt_tokens": 5000,
                    "n_ctx": 4096,
                }
            },
            5000,
            4096,
        ),
        (
            {
                "object": "error",
                "message": "This model's maximum context length is 4096 tokens. However, you requested 5000 tokens (4000 in the messages, 1000 in the completion).",
                "type": "BadRequestError",
                "param": None,
                "code": 400,
            },
            5000,
            4096,
        ),
    ],
    ids=["openai", "llamacpp", "vllm"],
)
def test_context_overflow_is_its_own_error_with_the_counts(
    openai_emulator, client, body, prompt_tokens, context_tokens
):
    openai_emulator.enqueue(Reply(status=400, body=body, headers={"x-request-id": "req_9"}))
    with pytest.raises(llmclients.ContextLengthError) as caught:
        client.complete("x")
    error = caught.value
    assert (error.prompt_tokens, error.context_tokens) == (prompt_tokens, context_tokens)
    assert error.status_code == 400 and error.request_id == "req_9"


def test_status_errors_carry_code_type_and_param(openai_emulator, client):
    body = {
        "error": {
            "message": "bad tool",
            "type": "invalid_request_error",
            "param": "tools[0].function.name",
            "code": "invalid_value",
        }
    }
    openai_emulator.enqueue(Reply(status=400, body=body))
    with pytest.raises(llmclients.HTTPStatusError) as caught:
        client.complete("x")
    assert (caught.value.code, caught.value.type, caught.value.param) == (
        "invalid_value",
        "invalid_request_error",
        "tools[0].function.name",
    )
    assert not isinstance(caught.value, llmclients.ContextLengthError)


def test_structured_output_parses_or_says_why_not(openai_emulator, client):
    schema = {"type": "json_schema", "json_schema": {"name": "city", "schema": {"type": "object"}}}
    openai_emulator.enqueue(Reply(deltas=['{"city": ', '"Paris"}']))
    assert client.complete("x", response_format=schema).json() == {"city": "Paris"}
    assert json.loads(openai_emulator.last_request.body)["response_format"] == schema
    openai_emulator.enqueue(Reply(deltas=['{"city": "Par'], finish_reason="length"))
    with pytest.raises(llmclients.InvalidJSONError, match="cut off by the token limit") as caught:
        client.complete("x", response_format=schema).json()
    assert caught.value.text == '{"city": "Par'
    openai_emulator.enqueue(Reply(deltas=["Sure! Here it is"]))
    with pytest.raises(llmclients.InvalidJSONError, match="not valid JSON"):
        client.complete("x").json()


def test_a_three_turn_tool_loop_survives_json(openai_emulator, client):
    tools = [{"type": "function", "function": {"name": "weather", "parameters": {"type": "object"}}}]
    openai_emulator.enqueue(
        Reply(raw=finished(openai_shape())),
        Reply(raw=finished(whole_shape())),
        Reply(deltas=["It is ", "sunny."]),
    )
    conv = client.conversation(system="Be brief.", tools=tools)
    reply = conv.send("What is the weather in Paris?")
    turns = 0
    while reply.tool_calls and turns < 3:
        conv.add_tool_results({call.id: {"ok": call.name} for call in reply.tool_calls})
        conv = client.conversation(state=json.loads(json.dumps(conv.to_dict())))
        reply = conv.send()
        turns += 1
    assert reply.text == "It is sunny." and turns == 2
    sent = json.loads(openai_emulator.last_request.body)
    assert sent["tools"] == tools
    assert [m["role"] for m in sent["messages"]] == [
        "system",
        "user",
        "assistant",
        "tool",
        "assistant",
        "tool",
        "tool",
    ]
    assert sent["messages"][2] == {"role": "assistant", "content": None, "tool_calls": [ONE[0].to_dict()]}
    assert sent["messages"][6] == {"role": "tool", "tool_call_id": "call_2", "content": '{"ok": "time"}'}
    assert conv.messages[-1] == {"role": "assistant", "content": "It is sunny."}


def test_tool_results_for_unknown_calls_are_refused(openai_emulator, client):
    openai_emulator.enqueue(Reply(raw=finished(openai_shape())))
    conv = client.conversation()
    conv.send("x")
    with pytest.raises(llmclients.InvalidMessagesError, match="call_X"):
        conv.add_tool_results({"call_X": "?"})


def test_a_state_saved_by_version_1_still_loads(client):
    state = {
        "version": 1,
        "provider": "openai",
        "model": "m",
        "messages": [{"role": "user", "content": "Hi"}, {"role": "assistant", "content": "Hello"}],
        "thread": {},
    }
    conv = client.conversation(state=state)
    assert conv.messages == state["messages"] and conv.options == {}


def test_async_streams_give_the_same_events(openai_emulator, client):
    openai_emulator.enqueue(
        Reply(
            raw=[
                chunk({"reasoning": "hm"}),
                *openai_shape(),
                chunk({"content": "ok"}),
                chunk({}, "tool_calls"),
                DONE,
            ]
        )
    )

    async def main():
        async with AsyncClient(client).stream("x") as stream:
            return stream, [event async for event in stream.events()]

    stream, events = asyncio.run(main())
    assert events[0] == ReasoningDelta("hm") and events[-1] == TextDelta("ok")
    assert sum(isinstance(e, ToolCallDelta) for e in events) == len(openai_shape())
    assert (stream.text, stream.reasoning, stream.tool_calls) == ("ok", "hm", ONE)


# --- capabilities and request shapes ------------------------------------------------------


def test_a_text_only_provider_refuses_images_and_tools_before_sending(llm_emulator):
    with llm_emulator("aura") as emulator, llmclients.Aura(base_url=emulator.base_url) as aura:
        image = llmclients.image_part(b"\x89PNG\r\n\x1a\n0000")
        with pytest.raises(llmclients.UnsupportedFeatureError, match="images") as caught:
            aura.complete([{"role": "user", "content": [{"type": "text", "text": "What?"}, image]}])
        assert caught.value.feature == "images"
        with pytest.raises(llmclients.UnsupportedFeatureError, match="tools"):
            aura.complete([{"role": "tool", "tool_call_id": "c", "content": "1"}])
        assert emulator.requests == []


def test_bad_messages_name_the_item_and_key():
    cases = [
        ([{"role": "assistant", "content": None}], "only an assistant message with tool_calls"),
        ([{"role": "tool", "content": "1"}], "tool_call_id"),
        ([{"role": "user", "content": [{"type": "image_url"}]}], "messages[0]['content'][0]"),
        ([{"role": "user", "content": [{"type": "video"}]}], "'video'"),
        (
            [
                {
                    "role": "assistant",
                    "content": None,
                    "tool_calls": [{"id": "c", "function": {"name": "f", "arguments": {}}}],
                }
            ],
            "arguments'] must be a JSON str",
        ),
    ]
    client = llmclients.OpenAICompatible(base_url="http://127.0.0.1:9", model="m")
    for messages, fragment in cases:
        with pytest.raises(llmclients.InvalidMessagesError) as caught:
            client.stream(messages)
        assert fragment in str(caught.value)


@responses.activate
def test_the_request_carries_tool_turns_parts_and_options_unchanged():
    responses.post(
        "http://api.test/v1/chat/completions",
        body=b"".join([chunk({"content": "ok"}, "stop"), DONE]),
        content_type="text/event-stream",
    )
    messages = [
        {"role": "developer", "content": "Be terse."},
        {
            "role": "user",
            "content": [
                {"type": "text", "text": "What is this?"},
                llmclients.image_part("https://example.test/cat.png"),
            ],
        },
        {"role": "assistant", "content": None, "tool_calls": [ONE[0].to_dict()]},
        {"role": "tool", "tool_call_id": "call_1", "content": "sunny"},
    ]
    options = {
        "tools": [{"type": "function", "function": {"name": "weather"}}],
        "tool_choice": "auto",
        "parallel_tool_calls": False,
        "max_completion_tokens": 50,
        "reasoning_effort": "low",
        "response_format": {"type": "json_object"},
        "user": "u1",
    }
    with llmclients.OpenAICompatible(base_url="http://api.test/v1", model="m") as client:
        assert client.complete(messages, **options).text == "ok"
    body = json.loads(responses.calls[0].request.body)
    assert body["messages"] == messages
    for key, value in options.items():
        assert body[key] == value


def test_image_part_makes_a_data_url_from_a_file(tmp_path):
    path = tmp_path / "cat.png"
    path.write_bytes(b"\x89PNG\r\n\x1a\nrest")
    part = llmclients.image_part(path, detail="low")
    assert part["image_url"]["url"] == "data:image/png;base64," + base64.b64encode(path.read_bytes()).decode()
    assert part["image_url"]["detail"] == "low"
    with pytest.raises(llmclients.InvalidMessagesError, match="mime_type"):
        llmclients.image_part(b"not an image")


def test_no_warning_for_an_ordinary_reply(openai_emulator, client):
    openai_emulator.enqueue(Reply(deltas=["fine"]))
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert client.complete("x").text == "fine"


@pytest.mark.parametrize("shape", sorted(emulated.TOOL_CALL_SHAPES))
def test_the_client_assembles_every_scripted_emulator_shape(openai_emulator, client, shape):
    calls = [
        ("call_a", "weather", '{"city": "Zürich", "unit": "°C"}'),
        ("call_b", "time", '{"tz": "Europe/Zürich"}'),
    ]
    openai_emulator.enqueue(Reply(events=emulated.tool_call_chunks(calls, shape=shape)))
    reply = client.complete("x", tools=[{"type": "function", "function": {"name": "weather"}}])
    assert reply.tool_calls == [ToolCall(*call) for call in calls]
    assert reply.finish_reason == "tool_calls"


def test_the_client_reads_scripted_reasoning_choices_and_usage(openai_emulator, client):
    openai_emulator.enqueue(
        Reply(events=emulated.reasoning_chunks(["a", "b"], key="reasoning", then_text=["c"])),
        Reply(events=emulated.choices_chunks([["x", "y"], ["p", "q"]])),
    )
    reply = client.complete("x")
    assert (reply.reasoning, reply.text) == ("ab", "c")
    reply = client.complete("x", n=2)
    assert [choice.text for choice in reply.choices] == ["xy", "pq"]
