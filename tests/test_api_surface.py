"""The Python API as a newcomer meets it: signatures, JSON-ready replies, resumed conversations."""

from __future__ import annotations

import inspect
import json
import subprocess
import sys

import pytest

import llmclients
from llmclients.testing import AuraEmulator, OpenAIEmulator, Reply
from llmclients.testing.openai import tool_call_chunks, usage_chunk

EVERY_CLIENT_ARGUMENT = [
    "base_url",
    "api_key",
    "model",
    "timeout",
    "retry",
    "proxy",
    "headers",
    "max_retries",
    "session",
    "pool_size",
    "verify",
    "max_reply_size",
]


@pytest.mark.parametrize("cls", [llmclients.OpenAICompatible, llmclients.AllenAI, llmclients.Aura])
def test_every_client_signature_shows_every_argument(cls):
    parameters = inspect.signature(cls).parameters
    assert [name for name in parameters if name in EVERY_CLIENT_ARGUMENT] == EVERY_CLIENT_ARGUMENT
    assert not any(p.kind is inspect.Parameter.VAR_KEYWORD for p in parameters.values())
    assert cls.__init__.__doc__


def test_import_loads_no_call_machinery_until_a_provider_class_is_used():
    # A library or a command that imports llmclients without calling pays for no more.
    code = (
        "import sys, llmclients\n"
        "loaded = [m for m in ('requests', 'urllib3', 'llmclients._core.call', 'llmclients._http.transport') if m in sys.modules]\n"
        "assert not loaded, loaded\n"
        "from llmclients import Provider, Stream\n"
        "assert issubclass(llmclients.OpenAICompatible, Provider) and 'requests' in sys.modules\n"
        "assert repr(Stream) == \"<class 'llmclients.Stream'>\", repr(Stream)\n"
    )
    subprocess.run([sys.executable, "-c", code], check=True, timeout=60)


def test_a_client_is_made_without_importing_inspect():
    # inspect takes longer to import than a provider; only a signature needs it.
    code = (
        "import sys, llmclients\n"
        "llmclients.OpenAICompatible(base_url='http://127.0.0.1:9/v1')\n"
        "assert 'inspect' not in sys.modules, 'imported'\n"
        "import inspect\n"
        "assert 'base_url' in inspect.signature(llmclients.OpenAICompatible).parameters\n"
    )
    subprocess.run([sys.executable, "-c", code], check=True, timeout=60)


def test_openai_arguments_reach_the_client():
    client = llmclients.OpenAICompatible(
        base_url="http://127.0.0.1:9/v1", api_key="k", model="m", max_retries=0, include_usage=False
    )
    assert (client.api_key, client.model, client.include_usage) == ("k", "m", False)
    assert "include_usage" in inspect.signature(llmclients.OpenAICompatible).parameters


def test_a_completion_is_json_ready_with_every_attribute():
    weather = ("call_1", "weather", '{"city": "Paris"}')
    with OpenAIEmulator() as emulator:
        emulator.enqueue(
            Reply(events=[*tool_call_chunks([weather], content=["Let me look."]), usage_chunk(5, 7)])
        )
        client = llmclients.OpenAICompatible(base_url=emulator.base_url, model="m")
        reply = client.complete("Weather?")
    data = json.loads(json.dumps(reply.to_dict()))
    assert data["text"] == "Let me look."
    assert data["finish_reason"] == "tool_calls"
    assert data["usage"] == {"prompt_tokens": 5, "completion_tokens": 7, "total_tokens": 12}
    assert data["tool_calls"] == [
        {
            "id": "call_1",
            "type": "function",
            "function": {"name": "weather", "arguments": '{"city": "Paris"}'},
        }
    ]
    assert data["provider"] == "openai" and data["model"] == "m"
    # Every attribute but the class a typed response_format names, and the instance made of it.
    assert set(data) == set(llmclients.Completion.__slots__) - {"output_type", "_parsed"}


def test_usage_to_dict_leaves_out_unknown_counts_and_raw():
    usage = llmclients.Usage.from_dict({"prompt_tokens": 3, "completion_tokens": 4, "total_tokens": 7})
    assert usage.to_dict() == {"prompt_tokens": 3, "completion_tokens": 4, "total_tokens": 7}


def test_a_resumed_conversation_honours_a_new_model():
    with OpenAIEmulator() as emulator:
        client = llmclients.OpenAICompatible(base_url=emulator.base_url)
        conv = client.conversation(model="small", temperature=0.5)
        conv.send("Hi")
        resumed = client.conversation(state=conv.to_dict(), model="large", top_p=0.9)
        resumed.send("And now?")
        body = emulator.last_request.json()
    assert resumed.model == "large" and body["model"] == "large"
    assert (body["temperature"], body["top_p"]) == (0.5, 0.9)
    assert [m["content"] for m in body["messages"]] == ["Hi", body["messages"][1]["content"], "And now?"]


def test_a_resumed_conversation_refuses_new_messages():
    client = llmclients.OpenAICompatible(base_url="http://127.0.0.1:9/v1", model="m")
    state = client.conversation().to_dict()
    with pytest.raises(llmclients.InvalidRequestError, match="resumes a conversation"):
        client.conversation(state=state, system="Be brief.")


def test_served_models_lists_the_server_s_models_and_leaves_the_script_alone():
    with OpenAIEmulator(models=["qwen2.5", "llama3.2"], api_key="k") as emulator:
        emulator.enqueue(Reply(text="scripted"))
        client = llmclients.OpenAICompatible(base_url=emulator.base_url, api_key="k", model="qwen2.5")
        assert client.served_models() == ["qwen2.5", "llama3.2"]
        assert emulator.last_request.headers["Authorization"] == "Bearer k"
        assert client.complete("Hi").text == "scripted"


def test_served_models_from_a_server_without_a_list_raises_typed_errors():
    with OpenAIEmulator(api_key="k") as emulator:
        with pytest.raises(llmclients.AuthenticationError):
            llmclients.OpenAICompatible(base_url=emulator.base_url, api_key="wrong").served_models()
        with pytest.raises(llmclients.NotFoundError):
            llmclients.OpenAICompatible(base_url=emulator.base_url + "/nope", api_key="k").served_models()


def test_compat_aura_says_it_carries_system_messages_and_history_as_documented():
    from llmclients.compat import g4f

    assert g4f.Aura.supports_system_message is True and g4f.Aura.supports_message_history is True
    # ... because the protocol carries both: the system text in `prompt`, the turns in `messages`.
    with AuraEmulator() as emulator:
        history = [
            {"role": "system", "content": "Be brief."},
            {"role": "user", "content": "Hi"},
            {"role": "assistant", "content": "Hello."},
            {"role": "user", "content": "Again"},
        ]
        llmclients.Aura(base_url=emulator.base_url).complete(history)
        body = emulator.last_request.json()
    assert body["prompt"] == "Be brief."
    assert [turn["content"] for turn in body["messages"]] == ["Hi", "Hello.", "Again"]
