"""What the call offers providers beyond text: an in-stream error that says
what an error status would is retried like that status before the first delta;
fields a provider keeps for the service go back in the assistant turn."""

from __future__ import annotations

import pickle
from typing import Any, Iterator, Optional

import pytest

import llmclients
from llmclients import errors
from llmclients.providers.kit import StreamState
from llmclients.testing import OpenAIEmulator, Reply

OVERLOADED = b'data: {"overloaded": true}\n\n'
TEXT = b'data: {"choices": [{"index": 0, "delta": {"content": "%s"}}]}\n\n'
DONE = b'data: {"choices": [{"index": 0, "delta": {}, "finish_reason": "stop"}]}\n\ndata: [DONE]\n\n'


class Busy(llmclients.OpenAICompatible):
    """An OpenAI-compatible service that says "overloaded" inside its stream, as Anthropic's does."""

    retry_statuses = frozenset({529})

    def parse_event(self, data: Any, state: StreamState) -> Optional[str]:
        if isinstance(data, str) and "overloaded" in data:
            raise errors.ServerError("overloaded_error: the service is busy", status_code=529)
        text = super().parse_event(data, state)
        if text:
            state.message_fields["signature"] = f"signed:{text}"
        return text


@pytest.fixture
def emulator() -> Iterator[OpenAIEmulator]:
    with OpenAIEmulator() as emulator:
        yield emulator


def busy(emulator: OpenAIEmulator) -> Busy:
    client = Busy(base_url=emulator.base_url, model="m", retry=llmclients.Retry(total=2, backoff_factor=0))
    client.transport.sleep = lambda seconds: None
    return client


def test_an_overloaded_event_before_the_first_delta_is_retried(emulator: OpenAIEmulator) -> None:
    emulator.enqueue(Reply(raw=OVERLOADED), Reply(raw=TEXT % b"fine" + DONE))
    with busy(emulator) as client:
        assert client.complete("Hi").text == "fine"
    assert len(emulator.requests) == 2


def test_an_overloaded_event_after_text_raises_with_the_text(emulator: OpenAIEmulator) -> None:
    emulator.enqueue(Reply(raw=TEXT % b"half " + OVERLOADED), Reply(raw=TEXT % b"never" + DONE))
    with busy(emulator) as client, client.stream("Hi") as stream, pytest.raises(errors.ServerError) as raised:
        for _ in stream:
            pass
    assert raised.value.partial_text == "half " and raised.value.status_code == 529
    assert len(emulator.requests) == 1


def test_an_in_stream_error_of_a_status_never_retried_raises_at_once(emulator: OpenAIEmulator) -> None:
    class Refusing(Busy):
        def parse_event(self, data: Any, state: StreamState) -> Optional[str]:
            raise errors.ContextLengthError("prompt is too long", status_code=400)

    emulator.enqueue(Reply(raw=OVERLOADED))
    with Refusing(base_url=emulator.base_url, model="m") as client, pytest.raises(errors.ContextLengthError):
        client.complete("Hi")
    assert len(emulator.requests) == 1


def test_message_fields_go_back_in_the_next_turn(emulator: OpenAIEmulator) -> None:
    emulator.enqueue(Reply(raw=TEXT % b"one" + DONE), Reply(raw=TEXT % b"two" + DONE))
    with busy(emulator) as client:
        conversation = client.conversation()
        reply = conversation.send("Hi")
        assert reply.message_fields == {"signature": "signed:one"}
        assert reply.message() == {"role": "assistant", "content": "one", "signature": "signed:one"}
        conversation.send("Again")
    sent = emulator.requests[-1].json()["messages"]
    assert sent[1] == {"role": "assistant", "content": "one", "signature": "signed:one"}
    assert conversation.messages[-1]["signature"] == "signed:two"


def test_a_completion_pickled_before_message_fields_loads() -> None:
    completion = llmclients.Completion("hi", "stop", None, "m", "openai")
    state = completion.__reduce_ex__(2)
    old_state = (None, {name: getattr(completion, name) for name in completion.__slots__ if name != "message_fields"})
    rebuilt = pickle.loads(pickle.dumps(completion))
    assert rebuilt == completion
    restored = state[0](*state[1])
    restored.__setstate__(old_state)
    assert restored.message_fields == {} and restored.text == "hi"
