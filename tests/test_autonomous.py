"""AutonomousAI over real HTTP on loopback, against its emulator."""

import base64
import json

import pytest
import responses

import llmclients
from llmclients import errors
from llmclients.providers.autonomous import AutonomousAI, decode_messages, encode_messages
from llmclients.testing import AutonomousAIEmulator, Reply

ENDPOINT_OF = {
    # every alias and id -> (aiAgent, path)
    "llama-3.3-70b": ("llama", "/api/v1/ai/chat"),
    "qwen-2.5-coder-32b": ("qwen_coder", "/api/v1/ai/chat"),
    "hermes-3": ("hermes", "/api/v1/ai/chat-hermes"),
    "llama-3.2-90b": ("vision", "/api/v1/ai/chat-vision"),
    "llama-3.2-70b": ("summary", "/api/v1/ai/summary"),
    "llama": ("llama", "/api/v1/ai/chat"),
    "qwen_coder": ("qwen_coder", "/api/v1/ai/chat"),
    "hermes": ("hermes", "/api/v1/ai/chat-hermes"),
    "vision": ("vision", "/api/v1/ai/chat-vision"),
    "summary": ("summary", "/api/v1/ai/summary"),
}
TEXT = "Bonjour, Привет, 日本語 and 🎉 at the end."


@pytest.fixture
def emulator():
    with AutonomousAIEmulator() as emulator:
        yield emulator


@pytest.fixture
def client(emulator):
    with llmclients.AutonomousAI(base_url=emulator.base_url, max_retries=0) as client:
        yield client


def sent_messages(request):
    return json.loads(base64.b64decode(request.json()["messages"], validate=True))


@pytest.mark.parametrize("model", sorted(ENDPOINT_OF))
def test_every_model_name_reaches_its_endpoint(emulator, client, model):
    emulator.enqueue(Reply(text="ok"))
    assert client.complete("Hi", model=model).text == "ok"
    agent, path = ENDPOINT_OF[model]
    assert emulator.last_request.path == path
    assert emulator.last_request.json()["aiAgent"] == agent


def test_default_model_is_llama_and_the_registry_finds_the_class(emulator):
    client = llmclients.get_client("autonomous", base_url=emulator.base_url)
    assert type(client) is llmclients.AutonomousAI
    emulator.enqueue(Reply(text="ok"))
    client.complete("Hi")
    assert emulator.last_request.json()["aiAgent"] == "llama"
    assert AutonomousAI.default_base_url == "https://chatgpt.autonomous.ai/api/v1/ai"


def test_unknown_model_and_unknown_options_fail_before_any_request(emulator, client):
    with pytest.raises(errors.ModelNotFoundError) as caught:
        client.stream("Hi", model="gpt-4")
    assert "llama-3.3-70b" in caught.value.valid_models
    with pytest.raises(errors.InvalidRequestError, match="temperature"):
        client.stream("Hi", temperature=0.3)
    with pytest.raises(errors.InvalidRequestError, match="stream"):
        client.stream("Hi", stream="no")
    assert emulator.requests == []


def test_body_is_the_four_fields_with_padded_standard_base64(emulator, client):
    emulator.enqueue(Reply(text="ok"))
    client.complete("Привет 👋 — ça va?")
    body = emulator.last_request.json()
    assert set(body) == {"messages", "threadId", "stream", "aiAgent"}
    assert body["stream"] is True
    field = body["messages"]
    assert len(field) % 4 == 0 and "-" not in field and "_" not in field
    # The JSON inside is ASCII (non-ASCII escaped), as the working clients sent it.
    assert base64.b64decode(field).isascii()
    assert sent_messages(emulator.last_request) == [{"role": "user", "content": "Привет 👋 — ça va?"}]


@pytest.mark.parametrize("text", ["", "a", "ab", "abc", "Привет", "👋🏽 emoji", '日本語\n"quotes" \\ slash'])
def test_base64_round_trip(text):
    messages = [{"role": "user", "content": text}]
    assert decode_messages(encode_messages(messages)) == messages


def test_system_message_and_history_are_encoded_in_order(emulator, client):
    messages = [
        {"role": "system", "content": "Answer in French."},
        {"role": "user", "content": "Hello"},
        {"role": "assistant", "content": "Bonjour"},
        {"role": "user", "content": "Translate: thank you"},
    ]
    emulator.enqueue(Reply(text="Merci"))
    assert client.complete(messages).text == "Merci"
    assert sent_messages(emulator.last_request) == messages


def test_headers_are_the_sites_own(emulator, client):
    emulator.enqueue(Reply(text="ok"))
    client.complete("Hi")
    headers = emulator.last_request.headers
    assert headers["origin"] == "https://www.autonomous.ai"
    assert headers["referer"] == "https://www.autonomous.ai/"
    assert headers["country-code"] == "US"
    assert headers["time-zone"] == "America/New_York"
    assert headers["content-type"] == "application/json"
    assert "Chrome/" in headers["user-agent"]


@pytest.mark.parametrize("place", ["choices", "top"])
@pytest.mark.parametrize("framing", ["chunked", "close"])
def test_streams_deltas_and_reads_the_finish_reason_in_either_place(place, framing):
    with AutonomousAIEmulator(finish_reason_at=place) as emulator:
        client = llmclients.AutonomousAI(base_url=emulator.base_url)
        emulator.enqueue(
            Reply(deltas=["Bon", "jour", ", ", "Привет", " 🎉"], finish_reason="length", framing=framing)
        )
        with client.stream("Hi") as stream:
            assert list(stream) == ["Bon", "jour", ", ", "Привет", " 🎉"]
        assert stream.finish_reason == "length"
        assert stream.done
        assert stream.model == "llama"


def test_stream_false_goes_through_complete(emulator, client):
    emulator.enqueue(Reply(text=TEXT, finish_reason="stop"))
    completion = client.complete("Hi", stream=False)
    assert emulator.last_request.json()["stream"] is False
    assert completion.text == TEXT
    assert completion.finish_reason == "stop"


def test_stream_false_answer_without_a_finish_reason_still_ends(emulator, client):
    emulator.enqueue(Reply(raw=json.dumps({"choices": [{"message": {"content": "whole"}}]}).encode()))
    completion = client.complete("Hi", stream=False)
    assert completion.text == "whole"
    assert completion.finish_reason is None


@pytest.mark.parametrize("framing", ["close", "chunked"])
def test_events_split_at_every_byte_boundary(emulator, client, framing):
    event = {"choices": [{"index": 0, "delta": {"content": TEXT}}]}
    body = (
        b"data: " + json.dumps(event, ensure_ascii=False).encode() + b"\n\n"
        b'data: {"choices": [{"index": 0, "delta": {}}], "finish_reason": "stop"}\n\n'
        b"data: [DONE]\n\n"
    )
    cuts = range(len(body) + 1)
    if framing == "chunked":  # slower per request: only the cuts inside a character
        cuts = [cut for cut in range(len(body)) if 0x80 <= body[cut] < 0xC0]
    for cut in cuts:
        emulator.enqueue(Reply(raw=[body[:cut], body[cut:]], framing=framing))
        completion = client.complete("Hi")
        assert (completion.text, completion.finish_reason) == (TEXT, "stop")


def test_data_prefix_inside_content_is_kept(emulator, client):
    emulator.enqueue(Reply(deltas=["the line was 'data: ", "[DONE]'"]))
    assert client.complete("Hi").text == "the line was 'data: [DONE]'"


def delta_events(*texts):
    return b"".join(
        b"data: " + json.dumps({"choices": [{"delta": {"content": t}}]}).encode() + b"\n\n" for t in texts
    )


def test_a_body_that_ends_before_done_raises_interrupted_with_partial_text(emulator, client):
    emulator.enqueue(Reply(raw=delta_events("Hello", " world"), framing="close"))
    with pytest.raises(errors.StreamInterruptedError) as caught:
        client.complete("Hi")
    assert caught.value.partial_text == "Hello world"


def test_a_chunked_body_cut_off_raises_interrupted_with_partial_text(emulator, client):
    body = delta_events("Hello", " world")
    on_the_wire = len(b"%x\r\n" % len(body)) + len(body) + 2
    emulator.enqueue(Reply(raw=[body, b"data: [DONE]\n\n"], drop_after=on_the_wire + 3))
    with pytest.raises(errors.StreamInterruptedError) as caught:
        client.complete("Hi")
    assert caught.value.partial_text == "Hello world"


def test_an_event_that_is_not_json_is_a_malformed_stream(emulator, client):
    emulator.enqueue(Reply(raw=b'data: {"choices": [{"delta": {"content": "a"}}]}\n\ndata: {oops\n\n'))
    with pytest.raises(errors.MalformedStreamError) as caught:
        client.complete("Hi")
    assert caught.value.partial_text == "a"


def test_conversation_keeps_one_thread_id_and_resends_history_after_json_round_trip(emulator, client):
    conversation = client.conversation([{"role": "system", "content": "Be brief."}], model="hermes-3")
    emulator.enqueue(Reply(text="Nice to meet you, Ada."), Reply(text="Ada."))
    assert conversation.send("My name is Ada.").text == "Nice to meet you, Ada."
    first_thread = emulator.last_request.json()["threadId"]

    state = json.loads(json.dumps(conversation.to_dict()))
    resumed = client.conversation(state=state)
    assert "".join(resumed.stream("What is my name?")) == "Ada."

    second = emulator.last_request
    assert second.path == "/api/v1/ai/chat-hermes"
    assert second.json()["threadId"] == first_thread
    assert sent_messages(second) == [
        {"role": "system", "content": "Be brief."},
        {"role": "user", "content": "My name is Ada."},
        {"role": "assistant", "content": "Nice to meet you, Ada."},
        {"role": "user", "content": "What is my name?"},
    ]
    assert len(resumed.messages) == 5


def test_separate_calls_get_separate_thread_ids(emulator, client):
    emulator.enqueue(Reply(text="a"), Reply(text="b"))
    client.complete("Hi")
    client.complete("Hi")
    first, second = (r.json()["threadId"] for r in emulator.requests)
    assert first != second


def test_cloudflare_challenge_is_one_readable_line(emulator, client):
    page = "<!DOCTYPE html><html><head><title>Just a moment...</title></head>\n<body>cf-chl</body></html>"
    emulator.enqueue(
        Reply(status=403, body=page, headers={"Content-Type": "text/html", "cf-mitigated": "challenge"})
    )
    with pytest.raises(errors.BlockedError) as caught:
        client.complete("Hi")
    message = str(caught.value)
    assert "\n" not in message and "<" not in message
    assert "blocked by a bot check" in message
    assert message.startswith("HTTP 403 ")
    assert "/api/v1/ai/chat" in message


def test_a_dead_endpoint_404_is_one_readable_line():
    with AutonomousAIEmulator() as emulator:
        client = llmclients.AutonomousAI(base_url=emulator.url + "/api/v2/ai")
        with pytest.raises(errors.NotFoundError) as caught:
            client.complete("Hi")
    message = str(caught.value)
    assert message.startswith("HTTP 404 Not Found from POST http://127.0.0.1:")
    assert "/api/v2/ai/chat" in message and "\n" not in message


# --- images: content parts inside the base64 list, for the vision agent -----------------

PARTS = [
    {"type": "text", "text": "What is in this picture?"},
    {"type": "image_url", "image_url": {"url": "data:image/png;base64,iVBORw0KGgo="}},
    {"type": "image_url", "image_url": {"url": "https://example.com/cat.jpg", "detail": "low"}},
]


def test_capabilities_are_images_for_the_vision_agent_only(client):
    assert client.capabilities_for("vision") == client.capabilities_for("llama-3.2-90b") == {"images"}
    assert all(
        client.capabilities_for(model) == frozenset() for model in AutonomousAI.models if model != "vision"
    )


def test_vision_carries_content_parts_as_they_are(emulator, client):
    history = [{"role": "system", "content": "Be brief."}, {"role": "user", "content": PARTS}]

    reply = client.complete(history, model="llama-3.2-90b").text

    assert sent_messages(emulator.last_request) == history  # parts, URLs and detail untouched
    assert emulator.last_request.path == "/api/v1/ai/chat-vision"
    assert reply.endswith("You said: What is in this picture?")


def test_images_for_a_text_agent_are_refused_before_any_request(emulator, client):
    with pytest.raises(errors.UnsupportedFeatureError):
        client.stream([{"role": "user", "content": PARTS}], model="llama")
    assert emulator.requests == []


@pytest.mark.parametrize(
    "agent, content, status, words",
    [
        ("vision", PARTS, 200, None),
        ("llama", PARTS, 400, "vision agent only"),
        ("vision", [], 400, "list of text and image_url parts"),
        ("vision", [{"type": "image_url", "image_url": "not an object"}], 400, "image_url parts"),
    ],
)
def test_emulator_takes_parts_for_the_vision_agent_only(emulator, agent, content, status, words):
    body = good_body(aiAgent=agent, messages=encode_messages([{"role": "user", "content": content}]))
    response = post(emulator, f"/api/v1/ai/{'chat-vision' if agent == 'vision' else 'chat'}", body)

    assert response.status_code == status
    if words:
        assert words in response.json()["error"]["message"]


# --- the emulator refuses what the client must never send ------------------------------


def post(emulator, path, body):
    import requests

    return requests.post(emulator.url + path, json=body, timeout=5)


def good_body(**changes):
    body = {"messages": encode_messages([{"role": "user", "content": "Hi"}]), "threadId": "t", "stream": True}
    body["aiAgent"] = "llama"
    body.update(changes)
    return body


@pytest.mark.parametrize(
    "path, body, status, words",
    [
        ("/api/v1/ai/chat-hermes", good_body(), 400, "not served"),
        ("/api/v1/ai/chat", good_body(aiAgent="hermes"), 400, "not served"),
        ("/api/v1/ai/chat", good_body(messages="not base64!"), 400, "base64"),
        ("/api/v1/ai/chat", good_body(messages=base64.b64encode(b"Hi").decode()), 400, "base64"),
        ("/api/v1/ai/chat", good_body(messages=encode_messages([])), 400, "non-empty"),
        (
            "/api/v1/ai/chat",
            {"messages": encode_messages([{"role": "user", "content": "x"}])},
            400,
            "missing",
        ),
        ("/api/v1/ai/chat", good_body(stream="yes"), 400, "boolean"),
        ("/api/v1/ai/nope", good_body(), 404, "Cannot"),
    ],
)
def test_emulator_rejects(emulator, path, body, status, words):
    response = post(emulator, path, body)
    assert response.status_code == status
    assert words in response.json()["error"]["message"]
    assert emulator.last_request.outcome == "rejected"


def test_emulator_default_reply_quotes_the_prompt(emulator, client):
    assert "You said: Привет" in client.complete("Привет").text


# --- request shape without a server -----------------------------------------------------


@responses.activate
def test_request_shape_against_the_live_url():
    sse = 'data: {"choices": [{"delta": {"content": "Hi"}}]}\n\ndata: [DONE]\n\n'
    responses.add(responses.POST, "https://chatgpt.autonomous.ai/api/v1/ai/summary", body=sse)
    assert llmclients.AutonomousAI().complete("Sum up", model="llama-3.2-70b").text == "Hi"
    body = json.loads(responses.calls[0].request.body)
    assert body["aiAgent"] == "summary"
    assert decode_messages(body["messages"]) == [{"role": "user", "content": "Sum up"}]


def test_status_is_stated():
    assert "not working" in AutonomousAI.status
    assert "2025" in (AutonomousAI.__doc__ or "")


def test_chunks_are_read_by_the_openai_reader_less_the_top_level_finish_reason():
    from llmclients._core.state import StreamState

    provider = AutonomousAI()
    state = StreamState()
    chunk = {
        "choices": [{"index": 0, "delta": {"content": "Hi"}}],
        "model": "llama",
        "usage": {"total_tokens": 3},
    }
    assert provider.parse_event(json.dumps(chunk), state) == "Hi"
    last = {
        "id": "c1",
        "object": "chat.completion.chunk",
        "created": 1,
        "model": "llama",
        "choices": [{"index": 0, "delta": {}}],
        "finish_reason": "stop",
        "system_fingerprint": "fp",
    }
    assert provider.parse_event(json.dumps(last), state) is None
    assert (state.finish_reason, state.model, state.usage) == ("stop", "llama", (None, None, 3))
    assert state.extra == {"system_fingerprint": "fp"}  # the finish reason is read, not kept as extra
    assert provider.parse_event("[DONE]", state) is None and state.done
    with pytest.raises(errors.ProviderError, match="AutonomousAI reported an error: boom"):
        provider.parse_event(json.dumps({"error": "boom"}), StreamState())
    with pytest.raises(errors.StreamInterruptedError):
        provider.finish(StreamState())
