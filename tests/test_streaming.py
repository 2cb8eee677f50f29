"""Streaming over real HTTP on loopback, against the OpenAI-compatible emulator."""

import json
import socket
import time

import pytest

import llmclients
from llmclients import errors
from llmclients.testing import OpenAIEmulator, Reply

FRAMINGS = ["chunked", "close", "length"]
TEXT = "Bonjour, Привет, 日本語 and 🎉 at the end."


@pytest.fixture
def emulator():
    with OpenAIEmulator() as emulator:
        yield emulator


@pytest.fixture
def client(emulator):
    with llmclients.OpenAICompatible(base_url=emulator.base_url, model="m", max_retries=0) as client:
        yield client


@pytest.mark.parametrize("framing", FRAMINGS)
@pytest.mark.parametrize("gzip", [False, True])
def test_streams_every_delta_in_every_framing(emulator, client, framing, gzip):
    emulator.enqueue(Reply(deltas=["Bon", "jour", ", ", "Привет", " 🎉"], framing=framing, gzip=gzip))
    with client.stream("Hi") as stream:
        deltas = list(stream)
    assert deltas == ["Bon", "jour", ", ", "Привет", " 🎉"]
    assert stream.text == "Bonjour, Привет 🎉"
    assert stream.finish_reason == "stop"
    assert stream.usage is not None and stream.usage.completion_tokens == 5
    assert stream.model == "m"
    assert stream.done


def sse_body(deltas, done=True):
    events = [
        b"data: "
        + json.dumps({"choices": [{"index": 0, "delta": {"content": d}}]}, ensure_ascii=False).encode()
        + b"\n\n"
        for d in deltas
    ]
    if done:
        events.append(
            b'data: {"choices": [{"index": 0, "delta": {}, "finish_reason": "stop"}]}\n\ndata: [DONE]\n\n'
        )
    return b"".join(events)


@pytest.mark.parametrize("framing", ["chunked", "close"])
def test_multibyte_characters_split_at_every_byte_boundary(emulator, client, framing):
    body = sse_body([TEXT])
    for cut in range(len(body) + 1):
        emulator.enqueue(Reply(raw=[body[:cut], body[cut:]], framing=framing))
        assert client.complete("Hi").text == TEXT


def test_a_delta_arrives_while_the_server_is_still_writing(emulator, client):
    # The server stalls for 5 s after the role chunk and the first delta: the
    # delta must reach the caller long before that, in a close-delimited body.
    emulator.enqueue(Reply(deltas=["first", "second"], framing="close", stall=5, stall_after=2))
    started = time.monotonic()
    with client.stream("Hi") as stream:
        assert next(stream) == "first"
        assert time.monotonic() - started < 2.5
    assert emulator.wait_idle()


@pytest.mark.parametrize("how", ["with", "close", "break", "drop"])
def test_stopping_early_closes_the_connection_at_once(emulator, client, how):
    emulator.enqueue(Reply(text="word " * 200, delay=0.02))
    if how == "with":
        with client.stream("Hi") as stream:
            next(stream)
    elif how == "close":
        stream = client.stream("Hi")
        next(stream)
        stream.close()
        stream.close()  # twice is harmless
    elif how == "break":
        for _ in client.stream("Hi"):
            break
    else:
        stream = client.stream("Hi")
        next(stream)
        del stream
    assert emulator.wait_idle()
    assert emulator.last_request.outcome == "client closed"


def test_a_stream_never_iterated_is_closed_when_dropped(emulator, client):
    emulator.enqueue(Reply(text="word " * 100, delay=0.02))
    client.stream("Hi")
    assert emulator.wait_idle()


@pytest.mark.usefixtures("patient_reuse")
def test_chunked_streams_reuse_the_connection(emulator, client):
    for _ in range(3):
        assert client.complete("Hi").text
    assert len(emulator.requests) == 3
    assert emulator.connections_accepted == 1


def test_drop_mid_stream_raises_interrupted_with_partial_text(emulator, client):
    body = sse_body(["Hello", " wor"], done=False)
    emulator.enqueue(
        Reply(raw=body + b'data: {"choices": [{"ind', framing="chunked", drop_after=len(body) + 60)
    )
    with pytest.raises(errors.StreamInterruptedError) as caught:
        client.complete("Hi")
    assert caught.value.partial_text == "Hello wor"
    assert "after 9 characters" in str(caught.value)


@pytest.mark.parametrize("reset", [False, True])
def test_close_delimited_body_cut_before_done_raises_interrupted(emulator, client, reset):
    body = sse_body(["Hello"], done=False)
    emulator.enqueue(Reply(raw=body + b"data: {", framing="close", drop_after=len(body) + 7, reset=reset))
    with pytest.raises(errors.StreamInterruptedError) as caught:
        client.complete("Hi")
    assert caught.value.partial_text == "Hello"


def test_stall_mid_stream_raises_read_timeout_with_partial_text(emulator):
    emulator.enqueue(Reply(deltas=["a", "b", "c"], stall=3, stall_after=3))
    client = llmclients.OpenAICompatible(base_url=emulator.base_url, model="m", timeout=(1, 0.3))
    started = time.monotonic()
    with pytest.raises(errors.ReadTimeout) as caught:
        client.complete("Hi")
    assert time.monotonic() - started < 2.5  # read=0.3; the stall lasts 3 s
    assert caught.value.partial_text == "ab"
    assert isinstance(caught.value, TimeoutError)


def test_stall_before_headers_raises_read_timeout(emulator):
    emulator.enqueue(Reply(head_delay=2))
    client = llmclients.OpenAICompatible(
        base_url=emulator.base_url, model="m", timeout=(1, 0.3), max_retries=0
    )
    with pytest.raises(errors.ReadTimeout):
        client.complete("Hi")


def test_error_status_from_the_emulator(emulator, client):
    emulator.enqueue(Reply(status=401, body={"error": {"message": "Incorrect API key provided."}}))
    with pytest.raises(errors.AuthenticationError, match="Incorrect API key"):
        client.stream("Hi")
    assert client.complete("Hi").text  # the error's connection was read to its end and reused
    assert emulator.connections_accepted == 1


def test_emulator_rejects_a_wrong_key(emulator):
    emulator.api_key = "right"
    with pytest.raises(errors.AuthenticationError):
        llmclients.OpenAICompatible(base_url=emulator.base_url, api_key="wrong", model="m").complete("Hi")
    reply = llmclients.OpenAICompatible(base_url=emulator.base_url, api_key="right", model="m").complete("Hi")
    assert reply.text.endswith("You said: Hi")


def test_emulator_rejects_an_unknown_model(emulator):
    emulator.models = ["llama3.2"]
    client = llmclients.OpenAICompatible(base_url=emulator.base_url, max_retries=0)
    with pytest.raises(errors.NotFoundError, match="does not exist"):
        client.complete("Hi", model="gpt-9")


def test_retry_on_503_then_success_over_http(emulator):
    emulator.enqueue(Reply(status=503, body="busy", headers={"Retry-After": "0"}))
    client = llmclients.OpenAICompatible(base_url=emulator.base_url, model="m", max_retries=1)
    assert client.complete("Hi").text.endswith("You said: Hi")
    assert len(emulator.requests) == 2


def test_missing_done_is_an_interruption(emulator, client):
    emulator.enqueue(Reply(raw=sse_body(["Hel", "lo"], done=False), framing="close"))
    with pytest.raises(errors.StreamInterruptedError) as caught:
        client.complete("Hi")
    assert caught.value.partial_text == "Hello"


def test_keepalive_comments_are_ignored(emulator, client):
    emulator.enqueue(Reply(deltas=["a", "b"], stall=0.3, stall_after=2, keepalive=0.05))
    assert client.complete("Hi").text == "ab"


def test_connection_refused_raises_connect_error():
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    client = llmclients.OpenAICompatible(base_url=f"http://127.0.0.1:{port}/v1", model="m", max_retries=0)
    with pytest.raises(errors.ConnectError, match=r"could not connect to http://127\.0\.0\.1"):
        client.complete("Hi")


def test_ipv6_loopback():
    if not socket.has_ipv6:
        pytest.skip("no IPv6")
    try:
        emulator = OpenAIEmulator(host="::1").start()
    except OSError:
        pytest.skip("::1 not available")
    with emulator:
        assert llmclients.OpenAICompatible(base_url=emulator.base_url, model="m").complete("Hi").text


def test_conversation_round_trip_through_json(emulator, client):
    conv = client.conversation([{"role": "system", "content": "Be brief."}])
    assert "My name is Ada." in conv.send("My name is Ada.").text
    state = json.loads(json.dumps(conv.to_dict()))
    resumed = client.conversation(state=state)
    assert "".join(resumed.stream("What is my name?")).endswith("What is my name?")
    sent = emulator.last_request.json()["messages"]
    assert [m["role"] for m in sent] == ["system", "user", "assistant", "user"]
    assert len(resumed.messages) == 5


def test_a_failed_turn_leaves_the_conversation_unchanged(emulator, client):
    conv = client.conversation()
    conv.send("one")
    emulator.enqueue(Reply(raw=sse_body(["x"], done=False), framing="close"))
    with pytest.raises(errors.StreamInterruptedError):
        conv.send("two")
    assert [m["content"] for m in conv.messages if m["role"] == "user"] == ["one"]
