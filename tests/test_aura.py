"""Aura (openchat.team) over real HTTP on loopback, against its emulator."""

import json
import os
import pathlib
import re
import subprocess
import sys
import time

import pytest
import requests
import responses

import llmclients
from llmclients import errors
from llmclients.providers.aura import Aura, estimate_tokens
from llmclients.testing import AuraEmulator, Reply
from llmclients.testing.aura import UPSTREAM_CUT, UPSTREAM_NOT_JSON

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
            "id": "openchat_v3.2_mistral",
            "name": "OpenChat 3.5 (latest)",
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
    assert emulator.upstream[-1]["prompt"].startswith("A chat between a curious user")


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
        (None, "openchat_v3.2_mistral", "OpenChat 3.5 (latest)"),
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
    assert emulator.last_request.outcome == "dropped"


def test_history_is_trimmed_server_side_from_the_oldest(emulator, client):
    history = [
        {"role": "user", "content": "one " * 100},
        {"role": "assistant", "content": "two " * 100},
        {"role": "user", "content": "three " * 100},
    ]
    # 768 reserved + 3 prompt tokens ("Be", "brief", ".") + 200 tokens fit in 1000, not 300.
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
    assert json.loads(responses.calls[0].request.body)["model"]["id"] == "openchat_v3.2_mistral"


def test_status_is_stated():
    assert "not working" in Aura.status
    assert "2024" in (Aura.__doc__ or "")
    assert llmclients.get_provider_class("aura") is Aura


# --- issue 14: what openchat-ui's own code does -------------------------------------------


def test_openchat_36_fails_on_the_published_code_and_the_error_names_the_model_to_try():
    with AuraEmulator(locked_llama3_tokenizer=True) as emulator:
        client = llmclients.Aura(base_url=emulator.base_url, max_retries=0)
        with pytest.raises(errors.ServerError) as caught:
            client.complete("Hi", model="openchat_3.6")
        message = str(caught.value)
        assert "/api/chat: Error" in message and "model='openchat_v3.2_mistral'" in message
        assert caught.value.status_code == 500 and emulator.upstream == []
        # The default model works on the same server.
        assert client.complete("Hi").text.endswith("You said: Hi")


def test_a_500_for_the_working_model_is_not_reworded(emulator, client):
    emulator.enqueue(Reply(status=500, body="Error"))
    with pytest.raises(errors.ServerError) as caught:
        client.complete("Hi")
    assert "try model" not in str(caught.value)


def test_emulator_answers_openchat_36_by_default(emulator, client):
    assert client.complete("Hi", model="openchat_3.6").text.endswith("You said: Hi")


def test_a_budget_too_small_for_the_question_is_refused_before_sending(emulator, client):
    with pytest.raises(errors.InvalidRequestError) as caught:
        client.stream("What is 2+2?", max_tokens=200)
    message = str(caught.value)
    assert "not the reply's length" in message and "tokenLimit" in message
    assert "max_tokens=200" in message and "no message at all" in message
    assert emulator.requests == []


def test_the_budget_counts_the_system_prompt(emulator, client):
    question = "What is 2+2?"  # 6 tokens by the estimate
    # The server's default prompt is 39 tokens: 768 + 39 + 6, and 35% of the 6 estimated (3).
    with pytest.raises(errors.InvalidRequestError, match="at least 816"):
        client.stream(question, max_tokens=815)
    emulator.enqueue(Reply(text="4"))
    assert client.complete(question, max_tokens=816).text == "4"
    # A prompt of its own counts instead: 75 tokens, estimated too (768 + 81 + 29).
    with pytest.raises(errors.InvalidRequestError, match="at least 878"):
        client.stream(
            [{"role": "system", "content": "Answer now. " * 25}, {"role": "user", "content": question}],
            max_tokens=877,
        )
    emulator.enqueue(Reply(text="4"))
    client.complete(question, max_tokens=900)
    assert emulator.upstream[-1]["messages"] == [{"role": "user", "content": question}]
    assert len(emulator.requests) == 2


def _route_keeps_the_question(token_limit: int, prompt_tokens: int, question_tokens: int) -> bool:
    """openchat-ui's rule (PROTOCOLS.md, Aura): walking from the newest message, keep one
    while tokens(prompt) + tokens(kept) + tokens(message) + 768 <= tokenLimit."""
    return prompt_tokens + 0 + question_tokens + 768 <= token_limit


def _suggested_minimum(client: Aura, messages) -> int:
    with pytest.raises(errors.InvalidRequestError) as caught:
        client.stream(messages, max_tokens=1)
    return int(re.search(r"Use at least (\d+)", str(caught.value)).group(1))


def test_the_suggested_budget_keeps_the_question_by_the_route_s_own_arithmetic(emulator, client):
    # Token counts by the tokenizers the route ran (tests/data/aura_tokens.json): the
    # larger of the two models' counts; the default prompt is 37 to mistral's, and the
    # live route counted about 2 more ("Use at least 811" dropped "What is 2+2?").
    texts = json.loads((pathlib.Path(__file__).parent / "data" / "aura_tokens.json").read_text("utf-8"))["texts"]
    tokens = {entry["text"]: max(entry["mistral"], entry["llama3"]) for entry in texts}
    default_prompt = texts[0]["mistral"] + 2
    custom_prompt = texts[1]["text"]  # "You are ChatGPT, ..."
    questions = [entry["text"] for entry in texts[2:]]
    assert "What is 2+2?" in questions and len(questions) >= 30
    for question in questions:
        suggested = _suggested_minimum(client, question)
        assert _route_keeps_the_question(suggested, default_prompt, tokens[question]), question
        with_prompt = [{"role": "system", "content": custom_prompt}, {"role": "user", "content": question}]
        suggested = _suggested_minimum(client, with_prompt)
        assert _route_keeps_the_question(suggested, tokens[custom_prompt], tokens[question]), question
    assert emulator.requests == []  # every one refused before sending
    emulator.enqueue(Reply(text="4"))
    assert client.complete("What is 2+2?", max_tokens=_suggested_minimum(client, "What is 2+2?")).text == "4"


def test_a_budget_that_holds_the_question_but_not_the_history_trims_it(emulator, client):
    history = [
        {"role": "user", "content": "word " * 300},
        {"role": "assistant", "content": "ok"},
        {"role": "user", "content": "What is 2+2?"},
    ]
    emulator.enqueue(Reply(text="4"))
    client.complete(history, max_tokens=900)
    assert emulator.upstream[-1]["messages"] == history[1:]
    assert emulator.upstream[-1]["dropped"] == 1


@pytest.mark.parametrize(
    "text, tokens",
    [
        ("What is 2+2?", 6),
        ("internationalization", 4),  # 20 ASCII letters: one token per 6
        ("Привет, мир", 4),  # 6 and 3 Cyrillic letters: one per 3; the comma
        ("日本語です", 5),  # one per CJK character
        ("12345", 5),  # one per digit, as mistral's tokenizer splits numbers
        ("=" * 40 + " ...", 6),  # a run of one character: one per 8
        ("", 0),
        ("the cat sat on the mat.", 7),
    ],
)
def test_token_estimate(text, tokens):
    assert estimate_tokens(text) == tokens


def test_token_estimate_is_close_to_the_real_tokenizers():
    # Counts made by the npm packages openchat-ui 0a98709 locks (see the file's "source").
    data = json.loads((pathlib.Path(__file__).parent / "data" / "aura_tokens.json").read_text("utf-8"))
    texts = data["texts"]
    assert len(texts) >= 40
    for item in texts:
        assert 0.7 <= estimate_tokens(item["text"]) / item["mistral"] <= 1.35, item["text"][:60]
    estimated = sum(estimate_tokens(item["text"]) for item in texts)
    assert 0.95 <= estimated / sum(item["mistral"] for item in texts) <= 1.05
    assert 1.0 <= estimated / sum(item["llama3"] for item in texts) <= 1.25


def test_emulator_takes_another_tokenizer():
    with AuraEmulator(tokenizer=lambda text: len(text.split())) as emulator:
        client = llmclients.Aura(base_url=emulator.base_url, max_retries=0)
        history = [{"role": "user", "content": "one " * 100}, {"role": "user", "content": "two " * 100}]
        emulator.enqueue(Reply(text="ok"))
        client.complete([{"role": "system", "content": "Be brief."}, *history], max_tokens=970)
        assert emulator.upstream[-1]["messages"] == history  # 768 + 2 + 200 words


def test_an_upstream_cut_hangs_the_body_and_the_default_idle_timeout_ends_the_wait():
    assert llmclients.Aura().transport.timeout.idle == 15.0
    with AuraEmulator(hang=20) as emulator:
        client = llmclients.Aura(
            base_url=emulator.base_url, max_retries=0, timeout=llmclients.Timeout(connect=5, read=60, idle=1)
        )
        emulator.enqueue(Reply(deltas=["Half ", "an ", "answer"], finish_reason=UPSTREAM_CUT))
        started = time.monotonic()
        with client.stream("Hi") as stream, pytest.raises(errors.IdleTimeout) as caught:
            for _ in stream:
                pass
        assert caught.value.partial_text == "Half an answer"
        assert time.monotonic() - started < 15  # not the 20 s hang, nor the 60 s read timeout
        # The emulator lets go of the connection as soon as the client does.
        assert emulator.wait_idle(timeout=5)
        assert emulator.last_request.outcome == "client closed"


def test_an_upstream_cut_past_the_hang_drops_the_connection():
    with AuraEmulator(hang=0.3) as emulator:
        client = llmclients.Aura(base_url=emulator.base_url, max_retries=0)
        emulator.enqueue(Reply(deltas=["Half"], finish_reason=UPSTREAM_CUT))
        with client.stream("Hi") as stream, pytest.raises(errors.StreamInterruptedError) as caught:
            for _ in stream:
                pass
        assert caught.value.partial_text == "Half"
        assert emulator.last_request.outcome == "dropped"


def test_an_upstream_event_that_is_not_json_ends_the_body_cleanly(emulator, client):
    emulator.enqueue(Reply(deltas=["Cut ", "short"], finish_reason=UPSTREAM_NOT_JSON))
    completion = client.complete("Hi")
    # Nothing tells the client: the truncated text looks complete.
    assert (completion.text, completion.finish_reason) == ("Cut short", "stop")


def test_text_in_the_upstream_finish_chunk_is_lost():
    with AuraEmulator(text_in_finish_chunk=True) as emulator:
        client = llmclients.Aura(base_url=emulator.base_url, max_retries=0)
        emulator.enqueue(Reply(deltas=["Hello", " world", "!"]))
        assert client.complete("Hi").text == "Hello world"


def test_a_character_split_across_upstream_reads_becomes_replacement_characters():
    with AuraEmulator(upstream_read_size=7) as emulator:
        client = llmclients.Aura(base_url=emulator.base_url, max_retries=0)
        emulator.enqueue(Reply(deltas=["Привет"]))
        text = client.complete("Hi").text
        assert "\ufffd" in text and text != "Привет"
        emulator.enqueue(Reply(deltas=["Hello"]))
        assert client.complete("Hi").text == "Hello"  # ASCII survives any cut


def test_emulator_defaults_are_the_deployments_and_code_defaults_are_an_option(emulator):
    body = good_body(temperature=None)
    assert requests.post(emulator.url + "/api/chat", json=body, timeout=5).status_code == 200
    assert emulator.upstream[-1]["temperature"] == 0.7
    assert emulator.upstream[-1]["prompt"].startswith("A chat between a curious user")
    with AuraEmulator(code_defaults=True) as plain:
        assert requests.post(plain.url + "/api/chat", json=body, timeout=5).status_code == 200
        assert plain.upstream[-1]["temperature"] == 1.0
        assert plain.upstream[-1]["prompt"].startswith("You are ChatGPT")


def cli(*args, cwd):
    return subprocess.run(
        [sys.executable, "-m", "llmclients", *args],
        capture_output=True,
        text=True,
        timeout=60,
        cwd=cwd,
        env={**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)},
    )


def test_cli_refuses_a_small_budget_and_says_what_it_means(tmp_path):
    result = cli("chat", "-p", "aura", "--emulate", "--max-tokens", "200", "What is 2+2?", cwd=tmp_path)
    assert result.returncode == 2 and result.stdout == ""
    assert "tokenLimit" in result.stderr and "not the reply's length" in result.stderr
    help_text = " ".join(cli("chat", "--help", cwd=tmp_path).stdout.split())
    assert "for aura, the token budget the server trims the conversation to (not a reply length" in help_text


def test_cli_check_and_chat_against_the_published_route(tmp_path):
    with AuraEmulator(locked_llama3_tokenizer=True) as emulator:
        check = cli("check", "-p", "aura", "--base-url", emulator.base_url, cwd=tmp_path)
        assert check.returncode == 0 and check.stdout.startswith("aura") and " ok " in check.stdout
        chat = cli("chat", "-p", "aura", "--base-url", emulator.base_url, "Hi", cwd=tmp_path)
        assert chat.returncode == 0 and chat.stdout.strip().endswith("You said: Hi")
        old = cli(
            "chat", "-p", "aura", "-m", "openchat_3.6", "--base-url", emulator.base_url, "Hi", cwd=tmp_path
        )
        assert old.returncode == 3 and "try model='openchat_v3.2_mistral'" in old.stderr
