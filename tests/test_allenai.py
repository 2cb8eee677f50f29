"""AllenAI (Ai2 Playground): the provider against its emulator, over loopback HTTP."""

from __future__ import annotations

import base64
import json
import uuid
from typing import Any, Callable, Dict, Iterator, List

import pytest
import requests
import responses

import llmclients
from llmclients.errors import (
    AuthenticationError,
    HTTPStatusError,
    InvalidRequestError,
    MalformedStreamError,
    ModelNotFoundError,
    NotFoundError,
    ProviderError,
    StreamInterruptedError,
)
from llmclients.providers._prompt import format_prompt, last_user_message
from llmclients.providers.allenai import AllenAI
from llmclients.testing import Emulator, RecordedRequest, Reply
from llmclients.testing.allenai import AllenAIEmulator, FileRules, UploadedFile

STREAM_PATH = "/v4/message/stream"

#: The model table of gpt4free's last AllenAI provider (PROTOCOLS.md §3): alias -> (id, host).
ALIASES = {
    "tulu3-405b": ("tulu3-405b", "inferd"),
    "tulu-3-405b": ("tulu3-405b", "inferd"),
    "llama-3.1-405b": ("tulu3-405b", "inferd"),
    "OLMo-2-1124-13B-Instruct": ("OLMo-2-1124-13B-Instruct", "modal"),
    "olmo-2-13b": ("OLMo-2-1124-13B-Instruct", "modal"),
    "tulu-3-1-8b": ("tulu-3-1-8b", "modal"),
    "llama-3.1-8b": ("tulu-3-1-8b", "modal"),
    "Llama-3-1-Tulu-3-70B": ("Llama-3-1-Tulu-3-70B", "modal"),
    "tulu-3-70b": ("Llama-3-1-Tulu-3-70B", "modal"),
    "llama-3.1-70b": ("Llama-3-1-Tulu-3-70B", "modal"),
    "olmoe-0125": ("olmoe-0125", "modal"),
    "olmo-1-7b": ("olmoe-0125", "modal"),
    "olmo-2-0325-32b-instruct": ("olmo-2-0325-32b-instruct", "modal"),
    "olmo-2-32b": ("olmo-2-0325-32b-instruct", "modal"),
    "mm-olmo-uber-model-v4-synthetic": ("mm-olmo-uber-model-v4-synthetic", "modal"),
    "olmo-4-synthetic": ("mm-olmo-uber-model-v4-synthetic", "modal"),
}


@pytest.fixture
def emulator(allenai_emulator: AllenAIEmulator) -> AllenAIEmulator:
    # Unscripted requests get a short reply at once (the default one is paced for humans).
    allenai_emulator.default_reply = Reply(text="Hello there.")
    return allenai_emulator


@pytest.fixture
def client(emulator: AllenAIEmulator) -> Iterator[AllenAI]:
    client = client_for(emulator)
    try:
        yield client
    finally:
        client.close()


def client_for(emulator: Emulator) -> AllenAI:
    return llmclients.AllenAI(base_url=emulator.base_url, max_retries=0, timeout=5)


def form(emulator: AllenAIEmulator, index: int = -1) -> Dict[str, str]:
    return emulator.form(emulator.requests[index])


def anonymous_id(request: RecordedRequest) -> str:
    value = request.headers["X-Anonymous-User-ID"]
    assert isinstance(value, str)
    return value


def one_line(exc: BaseException) -> str:
    text = str(exc)
    assert "\n" not in text and "\r" not in text
    return text


# --- streaming ------------------------------------------------------------------------------


def test_streams_text_as_deltas_with_the_issue_example(client: AllenAI, emulator: AllenAIEmulator) -> None:
    emulator.enqueue(Reply(text="Bonjour, comment allez-vous ?"))

    stream = client.stream("Translate to French: Hello, how are you?", model="tulu-3-405b", temperature=0.3)
    deltas = list(stream)

    assert deltas == ["Bonjour, ", "comment ", "allez-vous ", "?"]
    assert stream.finish_reason == "stop"
    assert stream.model == "tulu3-405b"
    request = emulator.last_request
    assert request.method == "POST" and request.path == STREAM_PATH
    assert request.headers.get_content_type() == "multipart/form-data"
    assert uuid.UUID(anonymous_id(request)).version == 4
    assert emulator.form(request) == {
        "content": "Translate to French: Hello, how are you?",
        "model": "tulu3-405b",
        "host": "inferd",
        "private": "true",
        "temperature": "0.3",
    }


def test_default_reply_quotes_the_prompt(allenai_emulator: AllenAIEmulator) -> None:
    with client_for(allenai_emulator) as client:
        stream = client.stream("Is anyone there?")
        deltas = list(stream)
    assert len(deltas) > 10 and "emulator" in stream.text and "“Is anyone there?”" in stream.text


@pytest.mark.parametrize(
    "prompt",
    [
        "Переведи на французский: Привет, как дела?",
        "把这句话翻译成法语：你好，你好吗？",
        "Rate this 🦀🐍 combo 👍🏽 — ok?",
        "Ünïcödé in Latin-1 range: café, naïve, ß",
        "  leading spaces, CR LF and LF at the end\r\n\n",
        "Multipart trap:\r\n--0123456789abcdef0123456789abcdef\r\n"
        'Content-Disposition: form-data; name="model"\r\n\r\nevil-model\r\n'
        "--0123456789abcdef0123456789abcdef--\r\nstill the prompt",
    ],
    ids=["cyrillic", "cjk", "emoji", "latin1", "line-ends", "boundary-lookalike"],
)
def test_prompt_arrives_intact(client: AllenAI, emulator: AllenAIEmulator, prompt: str) -> None:
    emulator.enqueue(Reply(text=f"Echo: {prompt}"))

    text = client.complete(prompt, model="olmo-2-13b").text

    assert form(emulator)["content"] == prompt
    assert form(emulator)["model"] == "OLMo-2-1124-13B-Instruct"
    assert prompt.encode("utf-8") in emulator.last_request.body
    assert text == f"Echo: {prompt}"


class RawUTF8Emulator(AllenAIEmulator):
    """Sends non-ASCII as raw UTF-8 instead of ``\\u`` escapes, and every byte of it
    (and the byte either side) in a write of its own, so that reads split characters."""

    def events(self, reply: Reply, request: RecordedRequest) -> Iterator[bytes]:
        for event in super().events(reply, request):
            body = json.dumps(json.loads(event), ensure_ascii=False).encode() + b"\n"
            yield from split_around_multibyte(body)


def split_around_multibyte(body: bytes) -> Iterator[bytes]:
    start = 0
    for index in range(len(body)):
        if any(byte >= 0x80 for byte in body[max(0, index - 1) : index + 2]):
            if start < index:
                yield body[start:index]
            yield body[index : index + 1]
            start = index + 1
    if start < len(body):
        yield body[start:]


@pytest.mark.parametrize("framing", ["chunked", "close"])
def test_characters_split_across_reads_decode_right(framing: str) -> None:
    text = "Привет, 世界! 🌍🇫🇷 ça va?"
    with RawUTF8Emulator() as emulator, client_for(emulator) as client:
        emulator.enqueue(Reply(text=text, delay=0.0005, framing=framing))
        stream = client.stream("Say hello in many scripts")
        assert "".join(stream) == text
        assert stream.finish_reason == "stop"
        # Every byte of every multi-byte character went out in its own write.
        multibyte_bytes = 2 * len(text.encode()) - 2 * len(text)  # chunks + final message
        assert len(emulator.write_times) > multibyte_bytes


@pytest.mark.parametrize("framing", ["chunked", "close"])
def test_every_split_inside_a_character_decodes_right(
    client: AllenAI, emulator: AllenAIEmulator, framing: str
) -> None:
    # A body in raw UTF-8 (olmo-api escaped, other servers may not), cut in two
    # at every byte boundary around the characters of 2, 3 and 4 bytes.
    text = "Ж世🌍"
    body = first_line() + chunk_line(text, ensure_ascii=False) + final_line(text)
    start = body.index(text.encode())
    for cut in range(start, start + len(text.encode()) + 1):
        emulator.enqueue(Reply(raw=[body[:cut], body[cut:]], delay=0.002, framing=framing))
        assert client.complete("Hi").text == text, f"cut at byte {cut}"


def test_whitespace_only_chunks_are_kept(client: AllenAI, emulator: AllenAIEmulator) -> None:
    deltas = ["# Title", "\n", "\n", "- item", "\n", "  ", "    code", " ", "end"]
    emulator.enqueue(Reply(deltas=deltas))

    assert list(client.stream("Write markdown")) == deltas


# --- conversations -----------------------------------------------------------------------------


def test_two_turn_conversation_survives_json_round_trip(client: AllenAI, emulator: AllenAIEmulator) -> None:
    emulator.enqueue(Reply(text="Nice to meet you, Ada."), Reply(text="Your name is Ada."))
    conv = client.conversation()
    assert conv.send("My name is Ada.").text == "Nice to meet you, Ada."

    state = json.loads(json.dumps(conv.to_dict()))
    resumed = client.conversation(state=state)
    assert "".join(resumed.stream("What is my name?")) == "Your name is Ada."

    first, second = emulator.requests
    reply_id = state["thread"]["parent"]
    assert emulator.messages[reply_id]["role"] == "assistant"
    assert emulator.messages[reply_id]["content"] == "Nice to meet you, Ada."
    assert "parent" not in emulator.form(first)
    assert emulator.form(second)["content"] == "What is my name?"  # only the new turn
    assert emulator.form(second)["parent"] == reply_id
    assert anonymous_id(second) == anonymous_id(first) == state["thread"]["anonymous_user_id"]
    assert [m["role"] for m in resumed.messages] == ["user", "assistant", "user", "assistant"]
    assert resumed.thread["parent"] != reply_id  # now the second reply


def test_first_turn_folds_history_and_system_prompt(client: AllenAI, emulator: AllenAIEmulator) -> None:
    conv = client.conversation(
        [
            {"role": "system", "content": "Answer in French."},
            {"role": "user", "content": "Hi"},
            {"role": "assistant", "content": "Salut"},
        ]
    )
    conv.send("How are you?")
    conv.send("And now?")

    assert (
        form(emulator, 0)["content"]
        == "System: Answer in French.\nUser: Hi\nAssistant: Salut\nUser: How are you?\nAssistant:"
    )
    assert form(emulator, 1)["content"] == "And now?"


def test_one_off_streams_get_fresh_anonymous_ids(client: AllenAI, emulator: AllenAIEmulator) -> None:
    emulator.enqueue(Reply(text="one"), Reply(text="two"))
    client.complete("first")
    client.complete("second")

    ids = [anonymous_id(request) for request in emulator.requests]
    assert ids[0] != ids[1]
    assert all("parent" not in emulator.form(request) for request in emulator.requests)


def test_follow_up_on_system_prompt_model_uses_the_nested_reply(llm_emulator: Callable[..., Any]) -> None:
    emulator = llm_emulator("allenai", system_prompt_models={"OLMo-2-1124-13B-Instruct": "You are OLMo."})
    emulator.default_reply = Reply(text="Hello there.")
    with client_for(emulator) as client:
        conv = client.conversation(model="olmo-2-13b")
        conv.send("My name is Ada.")
        conv.send("What is my name?")

    system = [m for m in emulator.messages.values() if m["role"] == "system"]
    assert len(system) == 1 and system[0]["content"] == "You are OLMo."
    first_user = next(m for m in emulator.messages.values() if m["parent"] == system[0]["id"])
    first_reply = next(m for m in emulator.messages.values() if m["parent"] == first_user["id"])
    assert first_reply["role"] == "assistant"
    assert emulator.form(emulator.requests[1])["parent"] == first_reply["id"]
    second_user = next(m for m in emulator.messages.values() if m["parent"] == first_reply["id"])
    assert second_user["root"] == system[0]["id"]  # the same thread, not a new one


def test_foreign_anonymous_id_is_refused(client: AllenAI, emulator: AllenAIEmulator) -> None:
    conv = client.conversation()
    conv.send("Hi")
    state = conv.to_dict()
    state["thread"]["anonymous_user_id"] = str(uuid.uuid4())
    hijacked = client.conversation(state=state)

    with pytest.raises(AuthenticationError) as caught:
        hijacked.send("Let me in")

    assert caught.value.status_code == 403
    assert "permission" in caught.value.body_excerpt
    assert len(hijacked.messages) == 2  # the failed turn left the conversation as it was


# --- how a stream ends -------------------------------------------------------------------------


@pytest.mark.parametrize("reason", ["stop", "length"])
def test_final_message_gives_the_finish_reason(
    client: AllenAI, emulator: AllenAIEmulator, reason: str
) -> None:
    emulator.enqueue(Reply(text="A reply that may be cut", finish_reason=reason))

    conv = client.conversation()
    stream = conv.stream("Go on")
    text = "".join(stream)

    assert text == "A reply that may be cut"
    assert stream.finish_reason == reason
    assert conv.messages[-1] == {"role": "assistant", "content": text}


def test_null_finish_reason_is_reported_as_none(client: AllenAI, emulator: AllenAIEmulator) -> None:
    emulator.enqueue(Reply(text="done", finish_reason=None))
    completion = client.complete("Hi")
    assert (completion.text, completion.finish_reason) == ("done", None)


@pytest.mark.parametrize(
    ("reason", "partial"),
    [
        ("aborted", "Partial answer"),
        ("grpc inference failed", "Partial answer"),
        ("unclosed stream", "Partial answer"),
        ("model overloaded", ""),  # olmo-api gave up before the first token
        ("finalization failure", "Partial answer"),
    ],
)
def test_error_line_raises_provider_error(
    client: AllenAI, emulator: AllenAIEmulator, reason: str, partial: str
) -> None:
    emulator.enqueue(Reply(deltas=["Partial ", "answer"], finish_reason=reason))
    conv = client.conversation()
    received: List[str] = []

    with pytest.raises(ProviderError) as caught:
        for text in conv.stream("Tell me a story"):
            received.append(text)

    assert caught.value.reason == reason
    assert caught.value.partial_text == partial == "".join(received)
    assert reason in str(caught.value)
    assert conv.messages == [] and conv.thread == {}


REPLY_ID = "msg_B2C3D4E5F6"


def first_line(reply_id: str = REPLY_ID) -> bytes:
    """A minimal first message: the user message with the empty reply below it."""
    user = {"id": "msg_A1B2C3D4E5", "role": "user", "content": "Hi", "final": False}
    user["children"] = [{"id": reply_id, "role": "assistant", "content": "", "final": False}]
    return json.dumps(user).encode() + b"\n"


def chunk_line(text: str, *, ensure_ascii: bool = True) -> bytes:
    chunk = {"message": REPLY_ID, "content": text, "logprobs": []}
    return json.dumps(chunk, ensure_ascii=ensure_ascii).encode() + b"\n"


def final_line(text: str, finish_reason: str = "stop") -> bytes:
    reply = {
        "id": REPLY_ID,
        "role": "assistant",
        "content": text,
        "final": True,
        "finish_reason": finish_reason,
    }
    return (
        json.dumps({"id": "msg_A1B2C3D4E5", "role": "user", "final": True, "children": [reply]}).encode()
        + b"\n"
    )


def test_body_without_final_message_is_interrupted(client: AllenAI, emulator: AllenAIEmulator) -> None:
    emulator.enqueue(Reply(raw=first_line() + chunk_line("Hel"), framing="close"))

    with pytest.raises(StreamInterruptedError) as caught:
        list(client.stream("Hi"))

    assert caught.value.partial_text == "Hel"
    assert "final" in str(caught.value)


@pytest.mark.parametrize(
    "body",
    [
        b"not json\n",
        b'["a", "list"]\n',
        b'{"id": "msg_A1B2C3D4E5", "role": "user", "children": []}\n',
        first_line() + b'{"message": "msg_B2C3D4E5F6", "logprobs": []}\n',
    ],
    ids=["not-json", "not-object", "no-reply-in-tree", "chunk-without-content"],
)
def test_lines_outside_the_protocol_are_malformed(
    client: AllenAI, emulator: AllenAIEmulator, body: bytes
) -> None:
    emulator.enqueue(Reply(raw=body))
    with pytest.raises(MalformedStreamError):
        list(client.stream("Hi"))


# --- models and options ------------------------------------------------------------------------


@pytest.mark.parametrize("alias", sorted(ALIASES))
def test_every_alias_resolves_and_picks_its_host(
    client: AllenAI, emulator: AllenAIEmulator, alias: str
) -> None:
    model, host = ALIASES[alias]

    if model == VISION:
        # olmo-api checks the host before the files: this 400 is past the host check.
        with pytest.raises(HTTPStatusError, match="requires a file to be sent with the first message"):
            client.complete("Hi", model=alias)
    else:
        emulator.enqueue(Reply(text="ok"))
        assert client.complete("Hi", model=alias).text == "ok"  # the emulator checks the host too

    assert (form(emulator)["model"], form(emulator)["host"]) == (model, host)


def test_model_table_matches_the_protocol() -> None:
    assert AllenAI.default_model == "tulu3-405b"
    assert set(AllenAI.models) == {model for model, _ in ALIASES.values()}
    assert AllenAI.supports_system_message is False
    assert "2025-11-03" in AllenAI.status and "captcha" in AllenAI.status.lower()


def test_unknown_model_fails_before_any_request(client: AllenAI, emulator: AllenAIEmulator) -> None:
    with pytest.raises(ModelNotFoundError) as caught:
        client.stream("Hi", model="gpt-4o")

    assert "tulu3-405b" in caught.value.valid_models and "olmo-2-13b" in caught.value.valid_models
    assert emulator.requests == []


def test_options_are_sent_as_form_fields(client: AllenAI, emulator: AllenAIEmulator) -> None:
    client.complete("Hi", model="olmo-2-32b", temperature=0.25, top_p=0.9, max_tokens=128, private=False)

    sent = form(emulator)
    assert (sent["temperature"], sent["top_p"], sent["max_tokens"], sent["private"]) == (
        "0.25",
        "0.9",
        "128",
        "false",
    )
    assert sent["host"] == "modal"


def test_unknown_option_fails_before_any_request(client: AllenAI, emulator: AllenAIEmulator) -> None:
    with pytest.raises(InvalidRequestError, match="stop"):
        client.stream("Hi", stop=["\n"])
    assert emulator.requests == []


@pytest.mark.parametrize(
    ("options", "expected"),
    [
        ({"temperature": 1.5}, "less than or equal to 1"),
        ({"temperature": 0.333}, "multiple of 0.01"),
        ({"top_p": 0}, "greater than or equal to 0.01"),
        ({"max_tokens": 4096}, "less than or equal to 2048"),
    ],
)
def test_out_of_range_options_get_the_servers_400(
    client: AllenAI, emulator: AllenAIEmulator, options: Dict[str, Any], expected: str
) -> None:
    with pytest.raises(HTTPStatusError) as caught:
        client.stream("Hi", **options)

    assert caught.value.status_code == 400
    assert expected in one_line(caught.value)
    assert "retired" not in str(caught.value) and "captcha" not in str(caught.value).lower()


# --- images: multipart `files` parts, for the vision model only ----------------------------------

VISION = "mm-olmo-uber-model-v4-synthetic"
#: Enough for a sniffer: olmo-api identified files by their first bytes.
PNG = b"\x89PNG\r\n\x1a\n" + bytes(range(256))
JPEG = b"\xff\xd8\xff\xe0\x00\x10JFIF\x00" + bytes(64)


def data_url(data: bytes, kind: str = "image/png") -> str:
    return f"data:{kind};base64,{base64.b64encode(data).decode()}"


def image_turn(text: str, *urls: str) -> Dict[str, Any]:
    parts: List[Dict[str, Any]] = [{"type": "text", "text": text}]
    parts += [{"type": "image_url", "image_url": {"url": url}} for url in urls]
    return {"role": "user", "content": parts}


def test_capabilities_are_images_for_the_vision_model_only(client: AllenAI) -> None:
    assert client.capabilities_for(VISION) == client.capabilities_for("olmo-4-synthetic") == {"images"}
    assert all(client.capabilities_for(model) == frozenset() for model in AllenAI.models if model != VISION)


def test_an_image_arrives_as_a_files_part(client: AllenAI, emulator: AllenAIEmulator) -> None:
    emulator.enqueue(Reply(text="A cat."))

    assert (
        client.complete([image_turn("What is this?", data_url(PNG))], model="olmo-4-synthetic").text
        == "A cat."
    )

    request = emulator.last_request
    assert emulator.files(request) == [UploadedFile("files", "image-1.png", "image/png", PNG)]
    sent = emulator.form(request)
    assert (sent["content"], sent["model"]) == ("What is this?", VISION) and "parent" not in sent
    user = next(m for m in emulator.messages.values() if m["role"] == "user")
    assert user["file_urls"] == [
        f"https://storage.googleapis.com/llmclients-emulator/{user['id']}/{user['id']}-0.png"
    ]


def test_several_images_keep_their_order_and_types(llm_emulator: Callable[..., Any]) -> None:
    emulator = llm_emulator("allenai", file_models={VISION: FileRules(("image/*",), max_files_per_message=2)})
    emulator.default_reply = Reply(text="Two.")
    with client_for(emulator) as client:
        client.complete([image_turn("Compare", data_url(PNG), data_url(JPEG, "image/jpeg"))], model=VISION)

    assert emulator.files(emulator.last_request) == [
        UploadedFile("files", "image-1.png", "image/png", PNG),
        UploadedFile("files", "image-2.jpg", "image/jpeg", JPEG),
    ]


def test_images_start_a_new_thread(client: AllenAI, emulator: AllenAIEmulator) -> None:
    emulator.enqueue(Reply(text="A cat."), Reply(text="Grey."), Reply(text="A dog."), Reply(text="Brown."))
    conv = client.conversation(model=VISION)
    conv.send([image_turn("What is this?", data_url(PNG))])
    first_reply = conv.thread["parent"]
    conv.send("What colour?")  # text only: a follow-up in the same thread
    conv.send([image_turn("And this?", data_url(JPEG, "image/jpeg"))])  # a new image: a new thread
    conv.send("Its colour?")

    first, colour, second, last = emulator.requests
    assert emulator.form(colour)["parent"] == first_reply and emulator.files(colour) == []
    new = emulator.form(second)
    assert "parent" not in new  # olmo-api refuses files in a follow-up
    assert new["content"] == (
        "User: What is this?\nAssistant: A cat.\nUser: What colour?\nAssistant: Grey.\nUser: And this?\nAssistant:"
    )
    assert emulator.files(second) == [
        UploadedFile("files", "image-1.jpg", "image/jpeg", JPEG)
    ]  # the new one only
    assert anonymous_id(second) == anonymous_id(first)
    roots = [m["root"] for m in emulator.messages.values() if m["role"] == "user"]
    assert roots[0] == roots[1] != roots[2] == roots[3]  # two threads, each continued
    assert emulator.form(last)["content"] == "Its colour?"


def test_images_for_a_text_model_are_refused_before_any_request(
    client: AllenAI, emulator: AllenAIEmulator
) -> None:
    with pytest.raises(llmclients.errors.UnsupportedFeatureError):
        client.stream([image_turn("What is this?", data_url(PNG))], model="tulu3-405b")
    assert emulator.requests == []


@pytest.mark.parametrize(
    ("url", "expected"),
    [
        ("https://example.com/cat.png", "cannot send an image by URL"),
        ("http://example.com/cat.png", "llmclients.image_part"),
        ("data:image/png;base64,@@not base64@@", "not a valid data: URL"),
    ],
)
def test_images_that_are_not_bytes_are_refused_before_any_request(
    client: AllenAI, emulator: AllenAIEmulator, url: str, expected: str
) -> None:
    with pytest.raises(InvalidRequestError, match=expected):
        client.stream([image_turn("What is this?", url)], model=VISION)
    assert emulator.requests == []


@responses.activate
def test_image_part_shape_with_responses() -> None:
    responses.add(
        responses.POST,
        "https://olmo-api.allen.ai/v4/message/stream",
        body=first_line() + chunk_line("A cat.") + final_line("A cat."),
        content_type="application/jsonl",
    )

    with llmclients.AllenAI(max_retries=0) as client:
        client.complete([image_turn("What is this?", data_url(PNG))], model=VISION)

    body = responses.calls[0].request.body
    assert isinstance(body, bytes)
    # requests' own multipart encoder: a file part with its name and type, the bytes untouched.
    part = b'Content-Disposition: form-data; name="files"; filename="image-1.png"\r\nContent-Type: image/png\r\n\r\n'
    assert part + PNG + b"\r\n--" in body
    assert body.count(b'name="files"') == 1


# --- the emulator checks files as olmo-api did ---------------------------------------------------


def post_files(
    emulator: AllenAIEmulator, fields: Dict[str, str], files: List[Any], anonymous: str = "someone"
) -> requests.Response:
    parts = [(name, (None, value)) for name, value in fields.items()] + [("files", f) for f in files]
    headers = {"X-Anonymous-User-ID": anonymous}
    return requests.post(emulator.url + STREAM_PATH, files=parts, headers=headers, timeout=5)


ASK_VISION = {"content": "What is this?", "model": VISION, "host": "modal"}
ASK_TEXT = {"content": "Hi", "model": "tulu3-405b", "host": "inferd"}


@pytest.mark.parametrize(
    ("fields", "files", "status", "expected"),
    [
        (ASK_TEXT, [("a.png", PNG, "image/png")], 400, "This model doesn't accept files"),
        (ASK_VISION, [], 400, "This model requires a file to be sent with the first message"),
        (ASK_VISION, [("a.png", PNG), ("b.png", PNG)], 400, "This model only allows 1 files per message"),
        # sniffed, not declared: a PDF called a PNG is still a PDF
        (ASK_VISION, [("a.png", b"%PDF-1.4\n", "image/png")], 400, "only accepts files of types ['image/*']"),
        (ASK_VISION, [("a.png", b"")], 400, "Value error, Input was empty"),
        (ASK_VISION, [("a.png", b"no known magic")], 500, "Internal Server Error"),
    ],
)
def test_emulator_checks_files(
    emulator: AllenAIEmulator, fields: Dict[str, str], files: List[Any], status: int, expected: str
) -> None:
    response = post_files(emulator, fields, files)

    assert response.status_code == status
    assert expected in response.json()["error"]["message"]
    assert emulator.messages == {}


def test_emulator_file_error_has_pydantics_wording(emulator: AllenAIEmulator) -> None:
    response = post_files(emulator, ASK_TEXT, [("a.png", PNG)])

    assert response.json() == {
        "error": {
            "code": 400,
            "message": "1 validation error for CreateMessageRequestFilesValidator\n"
            "  Value error, This model doesn't accept files [type=value_error]\n"
            "    For further information visit https://errors.pydantic.dev/2.10/v/value_error",
            "validation_errors": [
                {
                    "type": "value_error",
                    "loc": [],
                    "msg": "Value error, This model doesn't accept files",
                    "url": "https://errors.pydantic.dev/2.10/v/value_error",
                }
            ],
        }
    }


def test_emulator_refuses_files_in_a_follow_up(emulator: AllenAIEmulator) -> None:
    first = post_files(emulator, ASK_VISION, [("a.png", PNG)])
    reply = json.loads(first.text.splitlines()[0])["children"][0]["id"]

    follow_up = post_files(emulator, {**ASK_VISION, "parent": reply}, [("b.png", PNG)])
    text_only = post_files(emulator, {**ASK_VISION, "parent": reply}, [])

    assert "doesn't allow files to be sent in follow-up messages" in follow_up.json()["error"]["message"]
    assert text_only.status_code == 200  # the first message's requirement is the first message's


@pytest.mark.parametrize(
    ("rules", "files", "expected"),
    [
        (FileRules(max_total_file_size=2), [("a.txt", b"abc")], "max total file size of 2B"),
        (FileRules(max_total_file_size=1_500_000), [("a", bytes(1_500_001))], "max total file size of 1.5MB"),
        (
            FileRules(require_file_to_prompt="all_messages"),
            [],
            "requires a file to be sent with all messages",
        ),
        (
            FileRules(("application/pdf",)),
            [("a.png", PNG)],
            "only accepts files of types ['application/pdf']",
        ),
    ],
)
def test_emulator_follows_a_models_file_rules(
    llm_emulator: Callable[..., Any], rules: FileRules, files: List[Any], expected: str
) -> None:
    emulator = llm_emulator("allenai", file_models={"tulu3-405b": rules})

    response = post_files(emulator, ASK_TEXT, files)

    assert response.status_code == 400 and expected in response.json()["error"]["message"]


def test_emulator_accepts_what_the_rules_allow(llm_emulator: Callable[..., Any]) -> None:
    emulator = llm_emulator("allenai", file_models={"tulu3-405b": FileRules(allow_files_in_followups=True)})
    emulator.default_reply = Reply(text="ok")

    response = post_files(emulator, ASK_TEXT, [("notes.txt", b"anything", "text/plain")])

    assert response.status_code == 200  # no accepted_file_types: nothing is sniffed
    assert emulator.files(emulator.last_request) == [
        UploadedFile("files", "notes.txt", "text/plain", b"anything")
    ]


# --- the retired live service -------------------------------------------------------------------


def test_retired_endpoint_says_so(llm_emulator: Callable[..., Any]) -> None:
    emulator = llm_emulator("allenai", retired=True)
    with client_for(emulator) as client, pytest.raises(NotFoundError) as caught:
        client.stream("Hi")

    message = one_line(caught.value)
    assert "no longer exists" in message and "2025-11-03" in message
    assert caught.value.status_code == 404


def test_captcha_demand_says_so(llm_emulator: Callable[..., Any]) -> None:
    emulator = llm_emulator("allenai", require_captcha=True)
    with client_for(emulator) as client, pytest.raises(HTTPStatusError) as caught:
        client.stream("Hi")

    message = one_line(caught.value)
    assert "reCAPTCHA" in message and "2025-04-14" in message
    assert "Failed to evaluate captcha" in caught.value.body_excerpt


def test_challenge_page_says_so(client: AllenAI, emulator: AllenAIEmulator) -> None:
    page = "<!DOCTYPE html><html><head><title>Just a moment...</title></head><body class='cf-spinner-please-wait'></body></html>"
    emulator.enqueue(Reply(status=403, body=page, headers={"Content-Type": "text/html; charset=UTF-8"}))

    with pytest.raises(llmclients.BlockedError) as caught:
        client.stream("Hi")

    message = one_line(caught.value)
    assert "bot check" in message and "retired on 2025-11-03" in message
    assert "Just a moment" not in message


# --- the emulator refuses what olmo-api refused -----------------------------------------------


def post(emulator: AllenAIEmulator, fields: Dict[str, str], anonymous: str = "someone") -> requests.Response:
    headers = {"X-Anonymous-User-ID": anonymous} if anonymous else {}
    parts = {name: (None, value) for name, value in fields.items()}
    return requests.post(emulator.url + STREAM_PATH, files=parts, headers=headers, timeout=5)


VALID = {"content": "Привет", "model": "tulu3-405b", "host": "inferd"}


def test_emulator_escapes_non_ascii_and_streams_jsonl(emulator: AllenAIEmulator) -> None:
    emulator.enqueue(Reply(text="Да 世界"))
    response = post(emulator, VALID)

    assert response.headers["Content-Type"] == "application/jsonl"
    assert response.content.isascii() and b"\\u0414\\u0430" in response.content
    lines = [json.loads(line) for line in response.text.splitlines()]
    user, final = lines[0], lines[-1]
    assert user["id"].startswith("msg_") and len(user["id"]) == 14
    assert user["content"] == "Привет" and user["final"] is False and user["private"] is True
    assert user["children"][0]["role"] == "assistant" and user["children"][0]["content"] == ""
    assert [line["content"] for line in lines[1:-1]] == ["Да ", "世界"]
    assert final["final"] is True and final["children"][0]["content"] == "Да 世界"
    assert final["children"][0]["finish_reason"] == "stop"


@pytest.mark.parametrize(
    ("fields", "anonymous", "status", "expected"),
    [
        (VALID, "", 401, "could not verify"),
        ({**VALID, "content": ""}, "someone", 400, "at least 1 character"),
        ({"model": "tulu3-405b", "host": "inferd"}, "someone", 400, "Field required"),
        ({**VALID, "host": "modal"}, "someone", 400, "model tulu3-405b is not available on modal"),
        ({**VALID, "model": "gpt-4o"}, "someone", 400, "model gpt-4o is not available on inferd"),
        ({**VALID, "temperature": "2"}, "someone", 400, "less than or equal to 1"),
        ({**VALID, "parent": "msg_Z9Z9Z9Z9Z9"}, "someone", 400, "Parent message msg_Z9Z9Z9Z9Z9 not found"),
    ],
)
def test_emulator_refusals(
    emulator: AllenAIEmulator, fields: Dict[str, str], anonymous: str, status: int, expected: str
) -> None:
    response = post(emulator, fields, anonymous)

    assert response.status_code == status
    error = response.json()["error"]
    assert error["code"] == status and expected in error["message"]


def test_emulator_refuses_a_user_message_as_parent(emulator: AllenAIEmulator) -> None:
    first = post(emulator, VALID)
    user_id = json.loads(first.text.splitlines()[0])["id"]

    response = post(emulator, {**VALID, "parent": user_id})

    assert response.status_code == 400
    assert "Parent and child must have different roles" in response.json()["error"]["message"]


# --- the request as built, without a server ----------------------------------------------------


@responses.activate
def test_request_shape_with_responses() -> None:
    body = first_line() + chunk_line("Hi") + final_line("Hi")
    responses.add(
        responses.POST,
        "https://olmo-api.allen.ai/v4/message/stream",
        body=body,
        content_type="application/jsonl",
    )

    with llmclients.AllenAI(max_retries=0) as client:
        assert client.complete("Привет").text == "Hi"

    sent = responses.calls[0].request
    assert sent.headers["Content-Type"].startswith("multipart/form-data; boundary=")
    assert isinstance(sent.body, bytes)
    assert 'name="content"\r\n\r\nПривет\r\n' in sent.body.decode("utf-8")
    assert b"filename" not in sent.body


# --- prompt helpers ------------------------------------------------------------------------------


def test_format_prompt_follows_gpt4free() -> None:
    assert format_prompt([{"role": "system", "content": "  only  "}]) == "  only  "
    history = [
        {"role": "system", "content": "Be brief."},
        {"role": "user", "content": "Hi"},
        {"role": "assistant", "content": "   "},
        {"role": "user", "content": "Again"},
    ]
    assert format_prompt(history) == "System: Be brief.\nUser: Hi\nUser: Again\nAssistant:"
    assert format_prompt(history, do_continue=True, include_system=False) == "User: Hi\nUser: Again"
    assert format_prompt(history[1:2], add_special_tokens=True) == "User: Hi\nAssistant:"
    assert format_prompt([]) == ""


def test_last_user_message_takes_the_trailing_user_run() -> None:
    history = [
        {"role": "user", "content": "old"},
        {"role": "assistant", "content": "reply"},
        {"role": "user", "content": " first \n"},
        {"role": "user", "content": ""},
        {"role": "user", "content": "second"},
    ]
    copy = [dict(m) for m in history]
    assert last_user_message(history) == "first\nsecond"
    assert history == copy
    assert last_user_message(history[:2]) == ""


# --- issue 14: olmo-api's own wording and fields ------------------------------------------------

PYDANTIC_URL = "For further information visit https://errors.pydantic.dev/2.10/v/value_error"


def test_unknown_parent_is_a_thread_error_not_a_captcha_demand(
    client: AllenAI, emulator: AllenAIEmulator
) -> None:
    conversation = client.conversation()
    conversation.send("Hi")
    conversation.thread["parent"] = "msg_Z9Z9Z9Z9Z9"

    with pytest.raises(HTTPStatusError) as caught:
        conversation.send("And then?")

    message = one_line(caught.value)
    assert caught.value.status_code == 400
    assert "Parent message msg_Z9Z9Z9Z9Z9 not found" in message
    assert "reCAPTCHA" not in message and "2025-04-14" not in message
    # pydantic echoes the request, captchaToken included: the word alone proves nothing.
    assert "'captchaToken': None}" in caught.value.body_excerpt


def test_thread_errors_have_pydantics_wording(emulator: AllenAIEmulator) -> None:
    response = post(emulator, {**VALID, "parent": "msg_Z9Z9Z9Z9Z9"})

    lines = response.json()["error"]["message"].split("\n")
    assert lines == [
        "1 validation error for CreateMessageRequestWithFullMessages",
        "  Value error, Parent message msg_Z9Z9Z9Z9Z9 not found [type=value_error, "
        "input_value={'parent_id': 'msg_Z9Z9Z9...e, 'captchaToken': None}, input_type=dict]",
        "    " + PYDANTIC_URL,
    ]
    assert response.json()["error"]["validation_errors"] == [
        {
            "type": "value_error",
            "loc": [],
            "msg": "Value error, Parent message msg_Z9Z9Z9Z9Z9 not found",
            "url": "https://errors.pydantic.dev/2.10/v/value_error",
        }
    ]


def test_visibility_error_is_not_a_captcha_demand(llm_emulator: Callable[..., Any]) -> None:
    emulator = llm_emulator("allenai")
    # A signed-in user may choose visibility (an anonymous one is always private).
    with AllenAI(
        base_url=emulator.base_url, headers={"Authorization": "Bearer someone"}, max_retries=0
    ) as client:
        conversation = client.conversation()
        conversation.send("Hi")
        with pytest.raises(HTTPStatusError) as caught:
            conversation.send("Again", private=False)

    assert "Visibility must be identical for all messages in a thread" in str(caught.value)
    assert "reCAPTCHA" not in str(caught.value)


@pytest.mark.parametrize(
    ("fields", "line"),
    [
        (
            {**VALID, "role": "robot"},
            "  Input should be 'user', 'assistant' or 'system' [type=enum, input_value='robot', input_type=str]",
        ),
        (
            {**VALID, "temperature": "1.5"},
            "  Input should be less than or equal to 1 [type=less_than_equal, input_value='1.5', input_type=str]",
        ),
        (
            {"content": "Hi", "host": "inferd"},
            "  Field required [type=missing, input_value={'content': 'Hi', 'host': 'inferd'}, input_type=dict]",
        ),
    ],
)
def test_field_errors_show_the_input(emulator: AllenAIEmulator, fields: Dict[str, str], line: str) -> None:
    message = post(emulator, fields).json()["error"]["message"]
    assert line in message.split("\n")


def test_file_errors_hide_the_input(emulator: AllenAIEmulator) -> None:
    parts = {
        **{k: (None, v) for k, v in VALID.items()},
        "files": ("a.png", b"\x89PNG\r\n\x1a\n", "image/png"),
    }
    response = requests.post(
        emulator.url + STREAM_PATH, files=parts, headers={"X-Anonymous-User-ID": "someone"}, timeout=5
    )
    assert response.json()["error"]["message"].split("\n")[1] == (
        "  Value error, This model doesn't accept files [type=value_error]"
    )


def test_only_the_real_captcha_failures_get_the_captcha_hint(
    client: AllenAI, emulator: AllenAIEmulator
) -> None:
    for body, demands in [
        ("failed_captcha_assessment", True),
        ("invalid_captcha", True),
        ("the captcha_token field was fine", False),
    ]:
        emulator.enqueue(Reply(status=400, body={"error": {"code": 400, "message": body}}))
        with pytest.raises(HTTPStatusError) as caught:
            client.stream("Hi")
        assert ("reCAPTCHA" in str(caught.value)) is demands, body


def test_stored_messages_carry_olmo_apis_fields(emulator: AllenAIEmulator) -> None:
    text = " ".join(f"w{i}" for i in range(20))
    emulator.enqueue(Reply(text=text))
    lines = [json.loads(line) for line in post(emulator, VALID).text.splitlines()]
    first, final = lines[0], lines[-1]

    assert first["harmful"] is False and final["harmful"] is False  # it passed the safety check
    assert first["children"][0]["logprobs"] is None
    reply = final["children"][0]
    assert reply["logprobs"] == [] and reply["harmful"] is None
    assert reply["snippet"] == " ".join(f"w{i}" for i in range(16)) + "…"
    assert final["snippet"] == "Привет"
