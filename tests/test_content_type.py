"""A reply's Content-Type against what each provider expects, over loopback.

Status 200 with an HTML page (a challenge, a captive portal) or one JSON
document where a stream was asked for, for every provider and body framing;
and the sloppy labels real servers use, which must keep working. The providers
are the registry's, their bytes and labels their emulators' wire samples.
"""

from __future__ import annotations

import asyncio
import json

import pytest

import llmclients
from llmclients import ReasoningDelta, ToolCallDelta, errors
from llmclients.aio import AsyncClient
from llmclients.providers import get_client
from llmclients.testing import (
    EMULATORS,
    AllenAIEmulator,
    AutonomousAIEmulator,
    OpenAIEmulator,
    Reply,
    emulator_for,
    wire_sample,
)
from llmclients.testing import openai as emulated

PROVIDERS = list(EMULATORS)
CHALLENGE = (
    "<!DOCTYPE html><html><head><title>Just a moment...</title></head>"
    "<body><div id='cf-please-wait'>Checking your browser</div>" + "<p>padding</p>" * 2000 + "</body></html>"
)
PORTAL = (
    "<!DOCTYPE html><html><head><title>Hotel Wi-Fi</title></head>"
    "<body><form>Room number: <input name=room></form>" + "<p>terms</p>" * 2000 + "</body></html>"
)
@pytest.fixture(params=PROVIDERS)
def provider(request):
    return request.param


@pytest.fixture
def emulator(provider):
    with emulator_for(provider) as running:
        yield running


def client_for(emulator, **kwargs):
    return get_client(emulator.provider, base_url=emulator.base_url, max_retries=2, **kwargs)


def complete(emulator, messages="Hi", **options):
    with client_for(emulator) as client:
        return client.complete(messages, model=wire_sample(emulator.provider).model, **options)


def page_reply(page, framing, **headers):
    """``page`` with status 200: sized (``body``), or as a streamed body in ``framing``."""
    headers.setdefault("Content-Type", "text/html; charset=UTF-8")
    if framing == "length":
        return Reply(body=page, headers=headers)
    return Reply(raw=[page[:100].encode(), page[100:].encode()], framing=framing, headers=headers)


# --- HTML ---------------------------------------------------------------------------------


@pytest.mark.parametrize("framing", ["length", "chunked", "close"])
def test_a_challenge_page_with_status_200_is_blocked(emulator, framing):
    emulator.enqueue(page_reply(CHALLENGE, framing))
    with pytest.raises(errors.BlockedError) as caught:
        complete(emulator)
    assert caught.value.status_code == 200
    assert "bot check" in str(caught.value)
    assert "Just a moment" not in str(caught.value) + repr(caught.value)
    assert len(emulator.requests) == 1  # a challenge is not retried
    assert emulator.wait_idle(), "the connection was left open"


def test_the_cf_mitigated_header_is_a_challenge_whatever_the_body(emulator):
    emulator.enqueue(Reply(raw=b"<p>?</p>", headers={"cf-mitigated": "challenge"}))
    with pytest.raises(errors.BlockedError):
        complete(emulator)


@pytest.mark.parametrize("framing", ["length", "chunked", "close"])
def test_a_captive_portal_page_names_its_type_and_is_not_echoed(emulator, framing):
    emulator.enqueue(page_reply(PORTAL, framing))
    with pytest.raises(errors.MalformedStreamError) as caught:
        complete(emulator)
    message = str(caught.value) + repr(caught.value)
    assert type(caught.value) is errors.MalformedStreamError
    assert "HTML page (text/html)" in message
    assert "Wi-Fi portal" in message
    assert "Room number" not in message and "Hotel" not in message and "<" not in message
    assert caught.value.partial_text == ""
    assert len(emulator.requests) == 1
    assert emulator.wait_idle(), "the connection was left open"


def test_a_page_cut_short_is_still_a_page(emulator):
    reply = page_reply(PORTAL, "chunked", **{"Content-Type": "application/xhtml+xml"})
    reply.drop_after = 300
    emulator.enqueue(reply)
    with pytest.raises(errors.MalformedStreamError, match=r"application/xhtml\+xml"):
        complete(emulator)


def test_a_page_that_stalls_is_still_a_page(emulator):
    emulator.enqueue(
        Reply(raw=[PORTAL[:500].encode()], stall=5, stall_after=1, headers={"Content-Type": "text/html"})
    )
    client = get_client(emulator.provider, base_url=emulator.base_url, timeout=llmclients.Timeout(read=0.5))
    with client, pytest.raises(errors.MalformedStreamError, match="text/html"):
        client.complete("Hi", model=wire_sample(emulator.provider).model)


def test_the_stream_call_raises_before_any_iteration(emulator):
    emulator.enqueue(page_reply(PORTAL, "chunked"))
    with client_for(emulator) as client, pytest.raises(errors.MalformedStreamError):
        client.stream("Hi", model=wire_sample(emulator.provider).model)


# --- JSON where a stream was asked for ---------------------------------------------------


def test_a_json_error_in_a_200_is_a_provider_error_with_its_message(emulator):
    emulator.enqueue(Reply(body={"error": {"message": "monthly quota used up", "code": "quota_exceeded"}}))
    with pytest.raises(errors.ProviderError) as caught:
        complete(emulator)
    assert "monthly quota used up" in str(caught.value)
    assert "application/json" in str(caught.value)
    assert caught.value.reason == "quota_exceeded"


def test_a_vllm_style_flat_error_in_a_200_is_a_provider_error(emulator):
    emulator.enqueue(
        Reply(body={"object": "error", "message": "model is loading", "type": "ServiceUnavailable"})
    )
    with pytest.raises(errors.ProviderError, match="model is loading"):
        complete(emulator)


def test_the_api_key_in_a_json_error_is_masked():
    with OpenAIEmulator() as emulator, client_for(emulator, api_key="sk-secret-123") as client:
        emulator.enqueue(Reply(body={"error": {"message": "key sk-secret-123 is over quota"}}))
        with pytest.raises(errors.ProviderError) as caught:
            client.complete("Hi", model="m")
    assert "sk-secret-123" not in str(caught.value)
    assert "***" in str(caught.value)


@pytest.mark.parametrize(
    "body, why",
    [
        ({"status": "ok"}, "not a reply"),
        ([1, 2, 3], "not a reply"),
        ("<not json>", "not valid JSON"),
    ],
)
def test_json_that_is_not_a_reply_is_a_clear_error(emulator, body, why):
    raw = body if isinstance(body, str) else json.dumps(body)
    emulator.enqueue(Reply(body=raw, headers={"Content-Type": "application/json; charset=utf-8"}))
    with pytest.raises(errors.MalformedStreamError) as caught:
        complete(emulator)
    assert "one JSON document (application/json) where a stream was asked for" in str(caught.value)
    assert why in str(caught.value)
    assert "status" not in str(caught.value)  # the document is not echoed


def test_an_aura_json_body_is_never_yielded_as_text():
    with emulator_for("aura") as emulator:
        emulator.enqueue(Reply(raw=b'{"text": "Hi"}', headers={"Content-Type": "application/problem+json"}))
        with pytest.raises(errors.MalformedStreamError, match=r"application/problem\+json"):
            complete(emulator)


RICH = (
    emulated.reasoning_chunks(["Think", "ing."], then_text=[])[:-1]
    + emulated.tool_call_chunks(
        [("call_1", "weather", '{"city": "Paris"}'), ("call_2", "time", "{}")],
        content=["Let me ", "check."],
    )
    + [emulated.usage_chunk(12, 34, reasoning=5)]
)


def rich_completions(**options):
    """The same scripted reply, streamed and then sent whole (``chat.completion``)."""
    results = []
    for ignore_stream in (False, True):
        with OpenAIEmulator(ignore_stream=ignore_stream) as emulator:
            emulator.enqueue(Reply(events=RICH))
            with client_for(emulator) as client:
                results.append(client.complete("Weather?", model="m", **options))
            assert emulator.wait_idle()
    return results


def test_an_openai_completion_is_read_as_the_streamed_reply_would_be():
    streamed, whole = rich_completions()
    assert whole.text == streamed.text == "Let me check."
    assert whole.reasoning == streamed.reasoning == "Thinking."
    assert whole.tool_calls == streamed.tool_calls
    assert [call.name for call in whole.tool_calls] == ["weather", "time"]
    assert whole.tool_calls[0].arguments == '{"city": "Paris"}'
    assert whole.finish_reason == streamed.finish_reason == "tool_calls"
    assert whole.usage == streamed.usage
    assert whole.usage.completion_tokens == 34
    assert whole.response_id == streamed.response_id == "chatcmpl-emulator"
    assert whole.model == streamed.model


def test_an_openai_completion_with_several_choices_and_extras():
    with OpenAIEmulator(ignore_stream=True) as emulator:
        events = emulated.with_system_fingerprint(emulated.choices_chunks(["one answer", "another answer"]))
        emulator.enqueue(Reply(events=events))
        with client_for(emulator) as client:
            completion = client.complete("Hi", model="m", n=2)
    assert completion.text == "one answer"
    assert [choice.text for choice in completion.choices] == ["one answer", "another answer"]
    assert [choice.finish_reason for choice in completion.choices] == ["stop", "stop"]
    assert completion.extra["system_fingerprint"] == "fp_emulator"


def test_an_openai_completion_yields_its_typed_events():
    with OpenAIEmulator(ignore_stream=True) as emulator:
        emulator.enqueue(Reply(events=RICH))
        with client_for(emulator) as client, client.stream("Weather?", model="m") as stream:
            kinds = {type(event) for event in stream.events()}
            assert stream.done and stream.finish_reason == "tool_calls"
    assert {ReasoningDelta, ToolCallDelta} <= kinds


def test_a_completion_is_a_reply_of_a_conversation():
    with OpenAIEmulator(ignore_stream=True) as emulator, client_for(emulator) as client:
        chat = client.conversation(model="m")
        first = chat.send("Hello")
        chat.send("Again")
    assert first.text.startswith("This is the llmclients emulator")
    sent = emulator.last_request.json()["messages"]
    assert [m["role"] for m in sent] == ["user", "assistant", "user"]
    assert sent[1]["content"] == first.text


def test_an_autonomous_stream_false_answer_to_a_stream_request():
    with AutonomousAIEmulator(ignore_stream=True) as emulator, client_for(emulator) as client:
        completion = client.complete("Hi")
        assert emulator.last_request.json()["stream"] is True
    assert completion.text == "Hello from the AutonomousAI emulator (llama). You said: Hi"
    assert completion.finish_reason == "stop"


def test_an_allenai_final_message_alone_is_the_reply_and_continues_the_thread():
    with AllenAIEmulator(ignore_stream=True) as emulator, client_for(emulator) as client:
        chat = client.conversation()
        first = chat.send("Hi")
        chat.send("More")
        parent = emulator.form(emulator.last_request)["parent"]
    assert "You said: “Hi”" in first.text
    assert first.finish_reason == "stop"
    assert emulator.messages[parent]["role"] == "assistant"
    assert emulator.messages[parent]["content"] == first.text


def test_asyncio_callers_meet_the_same_errors_and_replies():
    async def main(emulator):
        async with AsyncClient(client_for(emulator)) as aclient:
            emulator.enqueue(page_reply(CHALLENGE, "chunked"))
            with pytest.raises(errors.BlockedError):
                await aclient.complete("Hi", model="m")
            emulator.enqueue(page_reply(PORTAL, "length"))
            with pytest.raises(errors.MalformedStreamError, match="text/html"):
                async for _ in aclient.stream("Hi", model="m"):
                    pass
            emulator.enqueue(Reply(events=RICH))
            return await aclient.complete("Weather?", model="m")

    with OpenAIEmulator(ignore_stream=True) as emulator:
        completion = asyncio.run(main(emulator))
    assert completion.text == "Let me check."
    assert [call.id for call in completion.tool_calls] == ["call_1", "call_2"]


# --- what real servers send, which must keep working ---------------------------------------


@pytest.mark.parametrize(
    "provider, content_type",
    [(name, label) for name in PROVIDERS for label in wire_sample(name).content_types],
)
def test_loosely_labelled_streams_are_read(provider, content_type):
    with emulator_for(provider) as emulator:
        reply = Reply(raw=wire_sample(provider).body(b"Hi"))
        emulator.enqueue(reply)
        # The emulator's own type is left out entirely for None.
        emulator.reply_headers = lambda reply, request: (
            {} if content_type is None else {"Content-Type": content_type}
        )
        assert complete(emulator).text == "Hi"


@pytest.mark.parametrize("content_type", ["application/jsonl", "application/x-ndjson", "text/plain", None])
def test_allenai_ndjson_under_other_labels_is_read(content_type):
    with AllenAIEmulator() as emulator:
        original = emulator.reply_headers
        emulator.reply_headers = lambda reply, request: (
            {} if content_type is None else {**original(reply, request), "Content-Type": content_type}
        )
        assert "You said" in complete(emulator).text


def test_html_written_by_the_model_is_aura_text():
    """Aura's body is the reply itself with no Content-Type: a model asked for a
    web page answers with HTML, which is text, not a portal."""
    page = "<!DOCTYPE html><html><body><h1>Hello</h1></body></html>"
    with emulator_for("aura") as emulator:
        emulator.enqueue(Reply(deltas=[page[:20], page[20:]]))
        assert complete(emulator, "Write me a web page").text == page


def test_autonomous_stream_false_still_takes_its_json():
    with AutonomousAIEmulator() as emulator, client_for(emulator) as client:
        assert client.complete("Hi", stream=False).text.endswith("You said: Hi")


def test_every_provider_declares_its_stream_types():
    for name in llmclients.provider_names():
        cls = llmclients.get_provider_class(name)
        assert cls.stream_types, name
        assert "text/html" not in cls.stream_types
