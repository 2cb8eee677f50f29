"""The tool loop (``Conversation.run``, ``run_stream`` and the asyncio ones)
and the cut-off tool call, on every provider that carries tools, over
loopback: each emulator is scripted with its own protocol's tool calls
(tests/tool_replies.py), and the requests it received are read back."""

from __future__ import annotations

import asyncio
import json
import pickle
import threading
from typing import Any, Dict, List

import pytest
from tool_replies import CUTTABLE, reply, tool_providers

import llmclients
from llmclients.aio import AsyncClient
from llmclients.testing import wire_sample

PROVIDERS = tool_providers()


def test_every_provider_that_carries_tools_is_scripted():
    from tool_replies import SCRIPTS

    assert set(PROVIDERS) <= set(SCRIPTS), "script the new provider's tool calls in tests/tool_replies.py"
    assert {"openai", "anthropic", "ollama", "responses"} <= set(PROVIDERS)


@pytest.fixture(params=PROVIDERS)
def provider(request):
    return request.param


@pytest.fixture
def emulator(llm_emulator, provider):
    return llm_emulator(provider)


@pytest.fixture
def client(emulator, provider):
    model = wire_sample(provider).model
    options = {"model": model} if model else {}
    with llmclients.get_client(provider, base_url=emulator.base_url, max_retries=0, **options) as client:
        yield client


class Tools:
    """Two tools that record their calls."""

    def __init__(self) -> None:
        self.calls: List[Any] = []
        self.barrier = None

    def functions(self):
        def get_weather(city: str) -> str:
            """The weather now in a city."""
            self._wait(city)
            self.calls.append(("get_weather", city))
            if city == "Atlantis":
                raise ValueError("no such city")
            return f"18 C in {city}"

        def local_time(city: str) -> Dict[str, str]:
            """The time now in a city."""
            self._wait(city)
            self.calls.append(("local_time", city))
            return {"city": city, "time": "12:00"}

        return [get_weather, local_time]

    def _wait(self, city: str) -> None:
        if self.barrier is not None and city == "Paris":
            self.barrier.wait()  # both Paris calls at once, or a BrokenBarrierError after its timeout


def args(**values: Any) -> str:
    return json.dumps(values)


def tool_messages(conv) -> List[Dict[str, Any]]:
    return [message for message in conv.messages if message["role"] == "tool"]


def test_three_steps_with_two_tools_run_in_parallel(emulator, client, provider):
    tools = Tools()
    tools.barrier = threading.Barrier(2, timeout=10)
    emulator.enqueue(
        reply(provider, calls=[("c1", "get_weather", args(city="Paris")), ("c2", "local_time", args(city="Paris"))]),
        reply(provider, "Checking London.", calls=[("c3", "get_weather", args(city="London"))]),
        reply(provider, "Paris: 18 C at noon; London: 18 C."),
    )
    conv = client.conversation(tools=tools.functions())
    final = conv.run("Weather and time in Paris, then London?", parallel=True)

    assert final.text == "Paris: 18 C at noon; London: 18 C."
    assert sorted(tools.calls[:2]) == [("get_weather", "Paris"), ("local_time", "Paris")]
    assert tools.calls[2] == ("get_weather", "London")
    assert [m["role"] for m in conv.messages] == ["user", "assistant", "tool", "tool", "assistant", "tool", "assistant"]
    assert [m["content"] for m in tool_messages(conv)] == [
        "18 C in Paris",
        '{"city": "Paris", "time": "12:00"}',
        "18 C in London",
    ]
    assert len(emulator.requests) == 3
    body = json.dumps(emulator.requests[2].json())
    assert "18 C in London" in body and "get_weather" in body  # the tools go with every turn


def test_a_tool_that_raises_is_an_error_result_flagged_where_the_protocol_has_a_flag(emulator, client, provider):
    tools = Tools()
    emulator.enqueue(
        reply(provider, calls=[("c1", "get_weather", args(city="Atlantis"))]),
        reply(provider, "Atlantis has no weather."),
    )
    conv = client.conversation(tools=tools.functions())
    seen = []
    final = conv.run("Weather in Atlantis?", after_call=lambda call, result: seen.append(result))

    assert final.text == "Atlantis has no weather."
    (result,) = seen
    assert result.is_error and isinstance(result.error, ValueError)
    assert result.content == "ValueError: no such city"
    body = emulator.last_request.json()
    assert "ValueError: no such city" in json.dumps(body)
    if provider == "anthropic":
        (block,) = [b for turn in body["messages"] for b in turn["content"] if isinstance(b, dict) and b["type"] == "tool_result"]
        assert block["is_error"] is True
    else:  # no flag in their protocol: it stays out of the request
        assert "is_error" not in json.dumps(body)


def test_a_refused_call_sends_the_reason_and_the_loop_goes_on(emulator, client, provider):
    tools = Tools()
    emulator.enqueue(
        reply(provider, calls=[("c1", "get_weather", args(city="Paris")), ("c2", "local_time", args(city="Paris"))]),
        reply(provider, "It is noon."),
    )

    def ask(call):
        if call.name == "get_weather":
            raise llmclients.CancelToolCall("the user does not allow weather lookups")

    conv = client.conversation(tools=tools.functions())
    assert conv.run("Weather and time?", before_call=ask).text == "It is noon."
    assert tools.calls == [("local_time", "Paris")]
    refused, ran = tool_messages(conv)
    assert refused["content"] == "the user does not allow weather lookups" and refused["is_error"]
    assert "is_error" not in ran


def test_any_other_exception_from_before_call_stops_the_loop_and_the_conversation_goes_on(emulator, client, provider):
    tools = Tools()
    emulator.enqueue(reply(provider, calls=[("c1", "get_weather", args(city="Paris"))]), reply(provider, "18 C."))
    conv = client.conversation(tools=tools.functions())

    def broken(call):
        raise KeyError("oops")

    with pytest.raises(KeyError):
        conv.run("Weather in Paris?", before_call=broken)
    assert tools.calls == [] and [c.id for c in conv.pending_tool_calls] == ["c1"]
    assert conv.run().text == "18 C."  # no message: the pending call first, then the model
    assert tools.calls == [("get_weather", "Paris")]


def test_a_call_to_no_tool_gets_an_error_result(emulator, client, provider):
    tools = Tools()
    emulator.enqueue(reply(provider, calls=[("c1", "get_stock", args(symbol="ACME"))]), reply(provider, "I cannot."))
    conv = client.conversation(tools=tools.functions())
    assert conv.run("ACME's price?").text == "I cannot."
    (message,) = tool_messages(conv)
    assert message["is_error"]
    assert message["content"] == "there is no tool named 'get_stock'; the tools are: get_weather, local_time"


def test_arguments_that_do_not_fit_are_answered_so_and_the_model_corrects_itself(emulator, client, provider):
    tools = Tools()
    emulator.enqueue(
        reply(provider, calls=[("c1", "get_weather", args(town="Paris"))]),
        reply(provider, calls=[("c2", "get_weather", args(city="Paris"))]),
        reply(provider, "18 C in Paris."),
    )
    conv = client.conversation(tools=tools.functions())
    assert conv.run("Weather in Paris?").text == "18 C in Paris."
    assert tools.calls == [("get_weather", "Paris")]
    wrong, right = tool_messages(conv)
    assert wrong["is_error"] and "city" in wrong["content"] and "do not fit" in wrong["content"]
    assert right["content"] == "18 C in Paris"


@pytest.mark.parametrize("provider", ["openai", "responses"])
def test_arguments_that_are_not_json_are_answered_so(emulator, client, provider):
    tools = Tools()
    emulator.enqueue(
        reply(provider, calls=[("c1", "get_weather", '{"city": Paris}')]),
        reply(provider, calls=[("c2", "get_weather", args(city="Paris"))]),
        reply(provider, "18 C in Paris."),
    )
    conv = client.conversation(tools=tools.functions())
    assert conv.run("Weather in Paris?").text == "18 C in Paris."
    wrong = tool_messages(conv)[0]
    assert wrong["is_error"] and wrong["content"].startswith("the arguments are not valid JSON")


def test_max_steps_ends_the_loop_with_the_last_reply_and_the_conversation_goes_on(emulator, client, provider):
    tools = Tools()
    emulator.enqueue(
        reply(provider, calls=[("c1", "get_weather", args(city="Paris"))]),
        reply(provider, calls=[("c2", "get_weather", args(city="Paris"))]),
        reply(provider, "Enough."),
    )
    conv = client.conversation(tools=tools.functions())
    with pytest.raises(llmclients.ToolLoopLimitError, match="max_steps=2") as caught:
        conv.run("Weather in Paris?", max_steps=2)
    assert caught.value.conversation is conv
    assert [call.id for call in caught.value.reply.tool_calls] == ["c2"]
    assert tools.calls == [("get_weather", "Paris")]  # the last reply's call was not run...
    assert tool_messages(conv)[-1]["content"].startswith("not run")  # ...but answered
    assert conv.pending_tool_calls == []
    assert conv.send("Stop there.").text == "Enough."
    copy = pickle.loads(pickle.dumps(caught.value))
    assert copy.reply == caught.value.reply and copy.conversation is None


def cut_off_reply(provider):
    """As llama-server sent it: the token limit came in the middle of the last call."""
    calls = [("c1", "get_weather", args(city="Paris")), ("c2", "get_weather", '{"city": "London')]
    return reply(provider, calls=calls, finish="length")


@pytest.mark.parametrize("provider", CUTTABLE)
def test_a_call_cut_off_by_the_token_limit_leaves_the_conversation_going_on(emulator, client, provider):
    tools = Tools()
    emulator.enqueue(cut_off_reply(provider), reply(provider, "Just Paris, then: 18 C."))
    conv = client.conversation(tools=tools.functions())
    with pytest.raises(llmclients.ToolCallCutOffError, match="raise max_tokens") as caught:
        conv.run("Weather for my trip?", max_tokens=40)
    cut = caught.value.reply
    assert cut.truncated and [call.arguments for call in cut.incomplete_tool_calls] == ['{"city": "London']
    assert [call.id for call in cut.tool_calls] == ["c1", "c2"]  # as they arrived
    assert tools.calls == [("get_weather", "Paris")]  # the whole call ran
    assert conv.pending_tool_calls == []
    assert conv.send("Just Paris, then.").text == "Just Paris, then: 18 C."
    sent = json.dumps(emulator.last_request.json())
    assert "London" not in sent and "Paris" in sent  # no broken call goes back


@pytest.mark.parametrize("provider", CUTTABLE)
def test_a_cut_off_call_is_not_pending_after_a_plain_send(emulator, client, provider):
    emulator.enqueue(
        reply(provider, calls=[("c2", "get_weather", '{"city": "London')], finish="length"), reply(provider, "Hi.")
    )
    conv = client.conversation(tools=Tools().functions())
    cut = conv.send("Weather for my trip?")
    assert cut.truncated and len(cut.incomplete_tool_calls) == 1
    assert conv.pending_tool_calls == [] and "tool_calls" not in conv.messages[-1]
    assert conv.send("Never mind.").text == "Hi."
    assert "London" not in json.dumps(emulator.last_request.json())


def test_a_conversation_saved_mid_loop_resumes_where_it_stopped(emulator, client, provider):
    tools = Tools()
    emulator.enqueue(
        reply(provider, calls=[("c1", "get_weather", args(city="Paris")), ("c2", "local_time", args(city="Paris"))]),
        reply(provider, "18 C at noon."),
    )
    conv = client.conversation(tools=tools.functions())
    with conv.run_stream("Weather and time in Paris?") as loop:
        for event in loop:
            if event.type == "tool_end":
                break  # the first call has run; the second has not
    state = json.loads(json.dumps(conv.to_dict()))

    resumed = client.conversation(state=state, tools=tools.functions())
    assert [call.id for call in resumed.pending_tool_calls] == ["c2"]
    assert resumed.run().text == "18 C at noon."
    assert tools.calls == [("get_weather", "Paris"), ("local_time", "Paris")]  # each once
    assert [m["role"] for m in resumed.messages] == ["user", "assistant", "tool", "tool", "assistant"]


def test_run_stream_shows_each_turn_and_each_call(emulator, client, provider):
    tools = Tools()
    emulator.enqueue(
        reply(provider, "Let me look.", calls=[("c1", "get_weather", args(city="Paris"))]),
        reply(provider, "18 C."),
    )
    conv = client.conversation(tools=tools.functions())
    loop = conv.run_stream("Weather in Paris?")
    events = [(event.type, getattr(event, "text", None)) for event in loop if event.type != "tool_call"]
    starts = [event for event in events if event[0] == "tool_start"]
    assert len(starts) == 1
    assert "".join(text for kind, text in events[: events.index(starts[0])] if kind == "text") == "Let me look."
    assert events[-2][0] == "tool_end" or events[events.index(starts[0]) + 1][0] == "tool_end"
    assert "".join(text for kind, text in events if kind == "text") == "Let me look.18 C."
    assert loop.reply is not None and loop.reply.text == "18 C."
    assert [r.text for r in loop.replies] == ["Let me look.", "18 C."]


def test_dict_tools_run_by_the_functions_named_for_them(emulator, client, provider):
    spec = {"type": "function", "function": {"name": "weather", "parameters": {
        "type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]}}}  # fmt: skip
    emulator.enqueue(reply(provider, calls=[("c1", "weather", args(city="Oslo"))]), reply(provider, "Cold."))
    conv = client.conversation(tools=[spec], tool_functions={"weather": lambda city: f"-5 C in {city}"})
    assert conv.run("Oslo?").text == "Cold."
    assert tool_messages(conv)[0]["content"] == "-5 C in Oslo"
    assert conv.to_dict()["options"]["tools"] == [spec]


def test_a_tool_dict_without_a_function_is_refused_before_any_request(openai_emulator):
    spec = {"type": "function", "function": {"name": "weather"}}
    client = llmclients.OpenAICompatible(base_url=openai_emulator.base_url, model="m")
    conv = client.conversation(tools=[spec])
    with pytest.raises(llmclients.InvalidRequestError, match="'weather' has no function"):
        conv.run("Hi")
    with pytest.raises(llmclients.InvalidRequestError, match="max_steps"):
        client.conversation().run("Hi", max_steps=0)
    assert openai_emulator.requests == []


def test_the_asyncio_loop_awaits_coroutines_and_runs_functions_in_threads(emulator, client, provider):
    emulator.enqueue(
        reply(provider, calls=[("c1", "get_weather", args(city="Paris")), ("c2", "local_time", args(city="Paris"))]),
        reply(provider, "18 C at noon."),
        reply(provider, calls=[("c3", "local_time", args(city="Rome"))]),
        reply(provider, "Noon in Rome."),
    )
    threads = []

    async def get_weather(city: str) -> str:
        """The weather now in a city."""
        await asyncio.sleep(0)
        threads.append(("get_weather", threading.current_thread() is threading.main_thread()))
        return f"18 C in {city}"

    def local_time(city: str) -> str:
        """The time now in a city."""
        threads.append(("local_time", threading.current_thread() is threading.main_thread()))
        return "12:00"

    async def main():
        conv = AsyncClient(client).conversation(tools=[get_weather, local_time])
        asked = []

        async def ask(call):
            asked.append(call.name)

        first = await conv.run("Paris?", before_call=ask, parallel=True)
        async with conv.run_stream("Rome?") as loop:
            events = [event.type async for event in loop]
        return conv, first, asked, events

    conv, first, asked, events = asyncio.run(main())
    assert first.text == "18 C at noon."
    assert asked == ["get_weather", "local_time"]
    assert sorted(threads) == [("get_weather", True), ("local_time", False), ("local_time", False)]
    assert events.count("tool_start") == events.count("tool_end") == 1
    assert conv.messages[-1]["content"] == "Noon in Rome."


def test_the_asyncio_loop_raises_the_same_typed_errors(llm_emulator):
    emulator = llm_emulator("openai")
    emulator.enqueue(reply("openai", "Hello."), *[reply("openai", calls=[(f"c{i}", "f", "{}")]) for i in range(2)])
    client = llmclients.OpenAICompatible(base_url=emulator.base_url, model="m", max_retries=0)
    emulator.enqueue(reply("openai", calls=[("c9", "f", '{"x": ')], finish="length"))

    async def main():
        conv = AsyncClient(client).conversation(tools=[{"type": "function", "function": {"name": "f"}}],
                                                tool_functions={"f": lambda: "ok"})
        await conv.send("Hi")
        with pytest.raises(llmclients.ToolLoopLimitError):
            await conv.run("Go", max_steps=1)
        with pytest.raises(llmclients.ToolCallCutOffError):
            await conv.run("Again")
        return conv

    conv = asyncio.run(main())
    assert conv.pending_tool_calls == []


def test_a_new_message_while_calls_wait_for_results_is_refused_before_sending(openai_emulator):
    openai_emulator.enqueue(reply("openai", calls=[("c1", "get_weather", args(city="Paris"))]))
    client = llmclients.OpenAICompatible(base_url=openai_emulator.base_url, model="m", max_retries=0)
    conv = client.conversation(tools=Tools().functions())
    conv.send("Weather?")
    with pytest.raises(llmclients.InvalidRequestError, match="run\\(\\) with no message runs them first"):
        conv.run("Something else?")
    assert len(openai_emulator.requests) == 1


def test_a_function_without_a_schema_is_refused_when_the_conversation_is_made():
    def lookup(query) -> str:  # no hint: no schema
        return query

    client = llmclients.OpenAICompatible(base_url="http://127.0.0.1:9/v1", model="m")
    with pytest.raises(llmclients.SchemaError, match="query"):
        client.conversation(tools=[lookup])


def test_return_values_go_back_as_text_and_exceptions_with_their_type():
    from dataclasses import dataclass

    from llmclients._core.tools import error_result, result_text

    @dataclass
    class Forecast:
        city: str
        days: tuple

    assert result_text("as is") == "as is"
    assert result_text({"a": [1, 2]}) == '{"a": [1, 2]}'
    assert result_text(Forecast("Paris", (1, 2))) == '{"city": "Paris", "days": [1, 2]}'
    assert result_text(None) == "null"
    call = llmclients.ToolCall("c", "f", "{}")
    assert error_result(call, KeyError("city")).content == "KeyError: 'city'"


def test_tools_none_sends_no_tools(openai_emulator):
    client = llmclients.OpenAICompatible(base_url=openai_emulator.base_url, model="m", max_retries=0)
    conv = client.conversation(tools=None)
    conv.send("Hi")
    assert "tools" not in openai_emulator.last_request.json()
    assert conv.run("Hi again").text
