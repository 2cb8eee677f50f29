"""Aura (openchat.team) over real HTTP on loopback, against its emulator."""

import json

import pytest
import requests
import responses

import llmclients
from llmclients import errors
from llmclients.providers.aura import Aura
from llmclients.testing import AuraEmulator, Reply

TEXT = "Bonjour, Привет, 日本語 and 🎉 at the end."


@pytest.fixture
def emulator():
    with AuraEmulator() as emulator:
        yield emulator


@pytest.fixture
def client(emulator):
    with llmclients.Aura(base_url=emulator.base_url, max_retries=0) as client:
        yield client


def test_body_is_what_the_ui_sends(emulator, client):
    emulator.enqueue(Reply(text="Bonjour"))
    assert client.complete("Translate to French: Hello").text == "Bonjour"
    request = emulator.last_request
    assert request.path == "/api/chat"
    assert request.json() == {
        "model": {
            "id": "openchat_3.6",
            "name": "OpenChat 3.6 (latest)",
            "maxLength": 24576,
            "tokenLimit": 8192,
        },
        "messages": [{"role": "user", "content": "Translate to French: Hello"}],
        "key": "",
        "prompt": "",
        "temperature": 0.5,
    }
    assert request.headers["Content-Type"] == "application/json"
    # An empty prompt lets the server use its own default system prompt.
    assert emulator.upstream[-1]["prompt"].startswith("You are ChatGPT")


def test_system_messages_go_to_prompt_joined_by_newlines(emulator, client):
    emulator.enqueue(Reply(text="ok"))
    client.complete(
        [
            {"role": "system", "content": "You translate."},
            {"role": "user", "content": "Hello"},
            {"role": "assistant", "content": "Bonjour"},
            {"role": "system", "content": "Answer in French."},
            {"role": "user", "content": "Thank you"},
        ]
    )
    body = emulator.last_request.json()
    assert body["prompt"] == "You translate.\nAnswer in French."
    assert [m["role"] for m in body["messages"]] == ["user", "assistant", "user"]
    assert emulator.upstream[-1]["prompt"] == "You translate.\nAnswer in French."


def test_only_system_messages_is_refused_before_any_request(emulator, client):
    with pytest.raises(errors.InvalidMessagesError):
        client.stream([{"role": "system", "content": "Be brief."}])
    assert emulator.requests == []


def test_temperature_and_max_tokens_become_temperature_and_token_limit(emulator, client):
    emulator.enqueue(Reply(text="ok"))
    client.complete("Hi", temperature=0.3, max_tokens=2048)
    body = emulator.last_request.json()
    assert body["temperature"] == 0.3
    assert body["model"]["tokenLimit"] == 2048


@pytest.mark.parametrize(
    "option", [{"temperature": "hot"}, {"temperature": -1}, {"max_tokens": 0}, {"max_tokens": 1.5}]
)
def test_bad_option_values_fail_before_any_request(emulator, client, option):
    with pytest.raises(errors.InvalidRequestError):
        client.stream("Hi", **option)
    assert emulator.requests == []


@pytest.mark.parametrize(
    "model, model_id, name",
    [
        (None, "openchat_3.6", "OpenChat 3.6 (latest)"),
        ("openchat_3.6", "openchat_3.6", "OpenChat 3.6 (latest)"),
        ("openchat-3.6", "openchat_3.6", "OpenChat 3.6 (latest)"),
        ("openchat_v3.2_mistral", "openchat_v3.2_mistral", "OpenChat 3.5 (latest)"),
        ("openchat-3.5", "openchat_v3.2_mistral", "OpenChat 3.5 (latest)"),
    ],
)
def test_model_ids(emulator, client, model, model_id, name):
    emulator.enqueue(Reply(text="ok"))
    client.complete("Hi", model=model)
    sent = emulator.last_request.json()["model"]
    assert (sent["id"], sent["name"], sent["maxLength"]) == (model_id, name, 24576)


def test_unknown_model_fails_before_any_request(emulator, client):
    with pytest.raises(errors.ModelNotFoundError) as caught:
        client.stream("Hi", model="llama-3.3-70b")
    assert "openchat_3.6" in caught.value.valid_models
    assert emulator.requests == []


def test_unknown_options_fail_before_any_request(emulator, client):
    with pytest.raises(errors.InvalidRequestError, match="top_p"):
        client.stream("Hi", top_p=0.9)
    assert emulator.requests == []


@pytest.mark.parametrize("framing", ["chunked", "close", "length"])
def test_clean_end_is_stop_in_every_framing(emulator, client, framing):
    emulator.enqueue(Reply(deltas=["Bon", "jour", ", ", "Привет", " 🎉"], framing=framing))
    with client.stream("Hi") as stream:
        deltas = list(stream)
    assert "".join(deltas) == "Bonjour, Привет 🎉"
    assert stream.finish_reason == "stop"
    assert stream.done


def test_deltas_arrive_as_written(emulator, client):
    emulator.enqueue(Reply(deltas=["Bon", "jour"], delay=0.05))
    assert list(client.stream("Hi")) == ["Bon", "jour"]


@pytest.mark.parametrize("framing", ["close", "chunked"])
def test_multibyte_text_split_at_every_byte_boundary(emulator, client, framing):
    body = TEXT.encode("utf-8")
    cuts = range(len(body) + 1)
    if framing == "chunked":  # slower per request: only the cuts inside a character
        cuts = [cut for cut in range(len(body)) if 0x80 <= body[cut] < 0xC0]
    for cut in cuts:
        emulator.enqueue(Reply(raw=[body[:cut], body[cut:]], framing=framing))
        with client.stream("Hi") as stream:
            deltas = list(stream)
        assert "".join(deltas) == TEXT
        assert all("\ufffd" not in delta for delta in deltas)


def test_invalid_utf8_is_a_decoding_error(emulator, client):
    emulator.enqueue(Reply(raw=[b"ok ", b"\xff\xfe"]))
    with pytest.raises(errors.DecodingError, match="not valid UTF-8"):
        client.complete("Hi")


def test_truncated_chunked_body_raises_interrupted_with_partial_text(emulator, client):
    first = "Привет, ".encode()
    on_the_wire = len(b"%x\r\n" % len(first)) + len(first) + 2
    # Cut inside the second chunk, in the middle of "и": "м" (2 bytes) and half of "и" arrive.
    emulator.enqueue(Reply(raw=[first, "мир".encode()], drop_after=on_the_wire + len(b"6\r\n") + 3))
    with client.stream("Hi") as stream, pytest.raises(errors.StreamInterruptedError) as caught:
        for _ in stream:
            pass
    assert caught.value.partial_text == "Привет, м"
    assert stream.finish_reason is None
    assert emulator.wait_idle()  # the emulator notes the drop just after it closes the connection
    assert emulator.last_request.outcome == "dropped"


def test_history_is_trimmed_server_side_from_the_oldest(emulator, client):
    history = [
        {"role": "user", "content": "one " * 100},
        {"role": "assistant", "content": "two " * 100},
        {"role": "user", "content": "three " * 100},
    ]
    # 768 reserved + 2 prompt words + 200 words fit in 1000, not 300 words.
    emulator.enqueue(Reply(text="ok"))
    client.complete([{"role": "system", "content": "Be brief."}, *history], max_tokens=1000)
    forwarded = emulator.upstream[-1]
    assert forwarded["dropped"] == 1
    assert forwarded["messages"] == history[1:]
    assert forwarded["max_tokens"] == 1000

    emulator.enqueue(Reply(text="ok"))
    client.complete(history)  # the default tokenLimit keeps everything
    assert emulator.upstream[-1]["dropped"] == 0


def test_conversation_resends_history_after_json_round_trip(emulator, client):
    conversation = client.conversation([{"role": "system", "content": "Be brief."}], model="openchat-3.5")
    emulator.enqueue(Reply(text="Nice to meet you, Ada."), Reply(text="Ada."))
    assert conversation.send("My name is Ada.", temperature=0.2).text == "Nice to meet you, Ada."

    state = json.loads(json.dumps(conversation.to_dict()))
    resumed = client.conversation(state=state)
    stream = resumed.stream("What is my name?")
    assert "".join(stream) == "Ada."
    assert stream.finish_reason == "stop"

    body = emulator.last_request.json()
    assert body["model"]["id"] == "openchat_v3.2_mistral"
    assert body["prompt"] == "Be brief."
    assert body["messages"] == [
        {"role": "user", "content": "My name is Ada."},
        {"role": "assistant", "content": "Nice to meet you, Ada."},
        {"role": "user", "content": "What is my name?"},
    ]
    assert resumed.messages[-1] == {"role": "assistant", "content": "Ada."}
    assert resumed.thread == {}


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
    assert message.startswith("HTTP 403 ") and "/api/chat" in message


def test_wrong_base_url_gets_nextjs_404_page_as_one_line(emulator):
    client = llmclients.Aura(base_url=emulator.url + "/v1")
    with pytest.raises(errors.NotFoundError) as caught:
        client.complete("Hi")
    message = str(caught.value)
    assert message.startswith("HTTP 404 Not Found from POST ")
    assert message.endswith("/v1/api/chat: (an HTML page, not shown)")


def test_route_error_is_a_server_error(emulator, client):
    emulator.enqueue(Reply(status=500, body="Error"))
    with pytest.raises(errors.ServerError) as caught:
        client.complete("Hi")
    assert str(caught.value).endswith("/api/chat: Error")


# --- the emulator refuses what the route refuses -----------------------------------------


def good_body(**changes):
    body = {
        "model": {
            "id": "openchat_3.6",
            "name": "OpenChat 3.6 (latest)",
            "maxLength": 24576,
            "tokenLimit": 8192,
        },
        "messages": [{"role": "user", "content": "Hi"}],
        "key": "",
        "prompt": "",
        "temperature": 0.5,
    }
    body.update(changes)
    return body


@pytest.mark.parametrize(
    "body",
    [
        good_body(model={"id": "gpt-4", "name": "GPT-4", "maxLength": 24576, "tokenLimit": 8192}),
        good_body(
            model={"id": "openchat_v3.2", "name": "OpenChat 3.2", "maxLength": 12000, "tokenLimit": 4096}
        ),
        good_body(messages=[{"role": "system", "content": "x"}, {"role": "user", "content": "Hi"}]),
        {key: value for key, value in good_body().items() if key != "messages"},
        {key: value for key, value in good_body().items() if key != "prompt"},
        "not an object",
    ],
)
def test_emulator_refuses_with_the_routes_500(emulator, body):
    response = requests.post(emulator.url + "/api/chat", json=body, timeout=5)
    assert (response.status_code, response.text) == (500, "Error")
    assert emulator.upstream == []


def test_emulator_answers_raw_text_without_content_type(emulator):
    emulator.enqueue(Reply(text="plain text"))
    response = requests.post(emulator.url + "/api/chat", json=good_body(), timeout=5)
    assert response.text == "plain text"
    assert "Content-Type" not in response.headers


def test_emulator_default_reply_quotes_the_prompt(emulator, client):
    assert client.complete("Привет").text.endswith("You said: Привет")


# --- request shape without a server -----------------------------------------------------


@responses.activate
def test_request_goes_to_the_live_url():
    responses.add(responses.POST, "https://openchat.team/api/chat", body=b"Bonjour")
    completion = llmclients.Aura().complete("Hello")
    assert (completion.text, completion.finish_reason) == ("Bonjour", "stop")
    assert json.loads(responses.calls[0].request.body)["model"]["id"] == "openchat_3.6"


def test_status_is_stated():
    assert "not working" in Aura.status
    assert "2024" in (Aura.__doc__ or "")
    assert llmclients.get_provider_class("aura") is Aura
