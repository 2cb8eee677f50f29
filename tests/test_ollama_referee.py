"""Ollama's official client (``ollama`` on PyPI) as the referee of the emulator.

Each scripted reply's bytes go to ``ollama.Client().chat(stream=True)`` and to
:class:`llmclients.Ollama`, whole and split anywhere (every byte its own
chunk, and cuts inside multi-byte characters): the official client must
accept them, and its result (text, thinking, tool calls, usage, done reason)
must equal llmclients'. The other way round, the requests ollama-python sends
must pass the emulator's checks and say what llmclients' requests say.
"""

from __future__ import annotations

import base64
import json
from typing import Any, Dict, List, NamedTuple, Optional, Sequence, Tuple

import pytest
import requests

import llmclients
from llmclients import errors
from llmclients.testing import OllamaEmulator, Reply
from llmclients.testing.ollama import done_line, error_line, text_lines, thinking_lines, tool_call_line

ollama = pytest.importorskip("ollama")

MODEL = "llama3.2"
PNG = bytes.fromhex(
    "89504e470d0a1a0a0000000d4948445200000001000000010806000000"
    "1f15c4890000000d49444154789c6360000000000200019ef1a8c40000000049454e44ae426082"
)


class Result(NamedTuple):
    text: str
    thinking: str
    calls: List[Tuple[str, Dict[str, Any]]]
    prompt_tokens: Optional[int]
    completion_tokens: Optional[int]
    done_reason: Optional[str]


SCRIPTS: Dict[str, List[Any]] = {
    "text": text_lines(["Hello", ", wörld", " 🎉", "", " ok"]) + [done_line("stop", 26, 5)],
    "thinking": thinking_lines(["Let me ", "think… ", "", "done"])
    + text_lines(["Four", " — ", "4."])
    + [done_line("stop", 31, 9)],
    "tool calls": thinking_lines(["Need the weather."])
    + [
        tool_call_line([(None, "weather", {"city": "Zürich", "days": 3}), ("call_k2", "clock", {})]),
        tool_call_line([(None, "search", {"q": "日本の天気", "nested": {"a": [1, 2.5, None, True]}})]),
        done_line("stop", 120, 40),
    ],
    "cut by the token limit": text_lines(["Once", " upon", " a"]) + [done_line("length", 8, 3)],
    "no counts": text_lines(["Hi"]) + [done_line("stop", None, None)],
}


def body_of(emulator: OllamaEmulator, events: Sequence[Any]) -> bytes:
    """The bytes the emulator streams for ``events``."""
    emulator.enqueue(Reply(events=events))
    response = requests.post(
        f"{emulator.url}/api/chat",
        json={"model": MODEL, "messages": [{"role": "user", "content": "Hi"}]},
        timeout=5,
    )
    assert response.status_code == 200
    return response.content


def splits(body: bytes) -> Dict[str, List[bytes]]:
    """The body whole, a byte a chunk, and cut inside every multi-byte character (with an empty write)."""
    inside = [i for i in range(1, len(body)) if 0x80 <= body[i] < 0xC0]  # continuation bytes
    cuts = [0, *inside, len(body)]
    ragged = [body[a:b] for a, b in zip(cuts, cuts[1:])]
    return {
        "whole": [body],
        "a byte a chunk": [body[i : i + 1] for i in range(len(body))],
        "cut inside characters": ragged[:1] + [b""] + ragged[1:],
    }


def official(emulator: OllamaEmulator, raw: List[bytes]) -> Result:
    emulator.enqueue(Reply(raw=raw))
    client = ollama.Client(host=emulator.url)
    text, thinking, calls = [], [], []
    last = None
    for chunk in client.chat(model=MODEL, messages=[{"role": "user", "content": "Hi"}], stream=True):
        text.append(chunk.message.content or "")
        thinking.append(chunk.message.thinking or "")
        for call in chunk.message.tool_calls or ():
            calls.append((call.function.name, dict(call.function.arguments)))
        last = chunk
    assert last is not None and last.done
    return Result(
        "".join(text), "".join(thinking), calls, last.prompt_eval_count, last.eval_count, last.done_reason
    )


def ours(emulator: OllamaEmulator, raw: List[bytes]) -> Result:
    emulator.enqueue(Reply(raw=raw))
    client = llmclients.Ollama(base_url=emulator.base_url, model=MODEL)
    with client.stream("Hi") as stream:
        text = "".join(stream)
    usage = stream.usage
    return Result(
        text,
        stream.reasoning,
        [(call.name, json.loads(call.arguments)) for call in stream.tool_calls],
        usage.prompt_tokens if usage else None,
        usage.completion_tokens if usage else None,
        stream.extra.get("done_reason"),
    )


@pytest.mark.parametrize("script", list(SCRIPTS))
def test_the_official_client_reads_what_llmclients_reads(ollama_emulator, script):
    body = body_of(ollama_emulator, SCRIPTS[script])
    for split, raw in splits(body).items():
        theirs = official(ollama_emulator, raw)
        assert ours(ollama_emulator, raw) == theirs, f"{script}, {split}"
    if script == "tool calls":
        assert len(theirs.calls) == 3
        assert theirs.calls[0] == ("weather", {"city": "Zürich", "days": 3})


def test_tool_calls_end_as_tool_calls_where_ollama_says_stop(ollama_emulator):
    body = body_of(ollama_emulator, SCRIPTS["tool calls"])
    ollama_emulator.enqueue(Reply(raw=body))
    reply = llmclients.Ollama(base_url=ollama_emulator.base_url, model=MODEL).complete("Hi")
    assert (reply.finish_reason, reply.extra["done_reason"]) == ("tool_calls", "stop")
    # The server's id where it gave one, a made-up one where it did not.
    assert [call.id for call in reply.tool_calls] == ["call_0", "call_k2", "call_2"]


def test_an_error_line_after_text_is_an_error_to_both(ollama_emulator):
    body = body_of(
        ollama_emulator,
        text_lines(["Half ", "wäy"]) + [error_line("an error was encountered while running the model")],
    )
    ollama_emulator.enqueue(Reply(raw=body))
    seen = []
    with pytest.raises(ollama.ResponseError) as theirs:
        for chunk in ollama.Client(host=ollama_emulator.url).chat(
            model=MODEL, messages=[{"role": "user", "content": "Hi"}], stream=True
        ):
            seen.append(chunk.message.content)
    ollama_emulator.enqueue(Reply(raw=body))
    with pytest.raises(errors.ProviderError) as caught:
        llmclients.Ollama(base_url=ollama_emulator.base_url, model=MODEL).complete("Hi")
    assert caught.value.partial_text == "".join(seen) == "Half wäy"
    assert theirs.value.error in str(caught.value)


def test_a_missing_model_is_a_404_to_both(ollama_emulator):
    ollama_emulator.models = [MODEL]
    with pytest.raises(ollama.ResponseError) as theirs:
        ollama.Client(host=ollama_emulator.url).chat(
            model="qwen3", messages=[{"role": "user", "content": "Hi"}]
        )
    assert theirs.value.status_code == 404
    with pytest.raises(errors.NotFoundError) as caught:
        llmclients.Ollama(base_url=ollama_emulator.base_url, model="qwen3").complete("Hi")
    assert theirs.value.error in str(caught.value)  # 'model "qwen3" not found, try pulling it first'


def test_a_body_without_its_done_line_passes_the_official_client_but_not_llmclients(ollama_emulator):
    # Where the two differ: ollama-python ends the iteration at the end of the
    # body, done line or not, and a cut reply looks whole; llmclients raises.
    body = body_of(ollama_emulator, text_lines(["Half", " a"]))
    cut = body[: body.rindex(b'{"model"')]
    ollama_emulator.enqueue(Reply(raw=cut))
    chunks = list(
        ollama.Client(host=ollama_emulator.url).chat(
            model=MODEL, messages=[{"role": "user", "content": "Hi"}], stream=True
        )
    )
    assert "".join(chunk.message.content for chunk in chunks) == "Half a" and not chunks[-1].done
    ollama_emulator.enqueue(Reply(raw=cut))
    with pytest.raises(errors.StreamInterruptedError) as caught:
        llmclients.Ollama(base_url=ollama_emulator.base_url, model=MODEL).complete("Hi")
    assert caught.value.partial_text == "Half a"


def test_the_models_listed_are_the_same(ollama_emulator):
    ollama_emulator.models = ["qwen3:8b", "llama3.2:latest"]
    theirs = [model.model for model in ollama.Client(host=ollama_emulator.url).list().models]
    assert llmclients.Ollama(base_url=ollama_emulator.base_url).served_models() == theirs


# --- requests: the official client's pass the emulator, and say what llmclients' say ----------


def test_the_official_clients_request_passes_the_emulator_and_matches_ours(ollama_emulator):
    schema = {"type": "object", "properties": {"answer": {"type": "string"}}}
    tool = {
        "type": "function",
        "function": {
            "name": "weather",
            "description": "The weather",
            "parameters": {
                "type": "object",
                "properties": {"city": {"type": "string"}},
                "required": ["city"],
            },
        },
    }
    their_messages = [
        {"role": "system", "content": "Be brief."},
        {"role": "user", "content": "What is this, and the weather?", "images": [PNG]},
        {
            "role": "assistant",
            "content": "",
            "thinking": "Weather first.",
            "tool_calls": [{"function": {"name": "weather", "arguments": {"city": "Zürich"}}}],
        },
        {"role": "tool", "tool_name": "weather", "content": "sunny"},
    ]
    list(
        ollama.Client(host=ollama_emulator.url).chat(
            model=MODEL,
            messages=their_messages,
            tools=[tool],
            think=True,
            format=schema,
            options={"temperature": 0.2, "num_ctx": 8192, "num_predict": 50, "stop": ["END"]},
            keep_alive="10m",
            stream=True,
        )
    )
    theirs = ollama_emulator.last_request
    assert theirs.wait() == "complete"  # the emulator accepted it
    our_messages = [
        {"role": "developer", "content": "Be brief."},
        {
            "role": "user",
            "content": [
                {"type": "text", "text": "What is this, and the weather?"},
                llmclients.image_part(PNG),
            ],
        },
        {
            "role": "assistant",
            "content": None,
            "thinking": "Weather first.",
            "tool_calls": [
                {
                    "id": "call_0",
                    "type": "function",
                    "function": {"name": "weather", "arguments": '{"city": "Zürich"}'},
                }
            ],
        },
        {"role": "tool", "tool_call_id": "call_0", "content": "sunny"},
    ]
    llmclients.Ollama(base_url=ollama_emulator.base_url, model=MODEL).complete(
        our_messages,
        tools=[tool],
        think=True,
        response_format={"type": "json_schema", "json_schema": {"name": "a", "schema": schema}},
        temperature=0.2,
        num_ctx=8192,
        max_tokens=50,
        stop="END",
        keep_alive="10m",
    )
    mine = ollama_emulator.last_request.json()
    theirs_body = theirs.json()
    for key in ("model", "stream", "think", "format", "options", "keep_alive"):
        assert mine[key] == theirs_body[key], key
    # llmclients also sends the ids Ollama gives out (tool_calls[].id,
    # tool_call_id), which ollama-python's models do not have yet.
    for message in mine["messages"]:
        message.pop("tool_call_id", None)
        for call in message.get("tool_calls") or ():
            call.pop("id")
    for message in theirs_body["messages"]:
        message.setdefault("content", "")  # ollama-python leaves out empty fields
    assert mine["messages"] == theirs_body["messages"]
    assert theirs_body["messages"][1]["images"] == [base64.b64encode(PNG).decode()]
    assert mine["tools"][0]["function"]["name"] == theirs_body["tools"][0]["function"]["name"]
