"""The OpenAI emulator itself, over real loopback HTTP with plain `requests`.

These tests need no llmclients client: they check the bytes the emulator sends
for each scripted stream shape, and the 400s it answers to what OpenAI refuses.
"""

from __future__ import annotations

import gzip
import json
from typing import Any, Dict, Iterator, List, Optional

import pytest
import requests

from llmclients.testing import Reply
from llmclients.testing.openai import (
    BOM,
    OPENROUTER_PROCESSING,
    TOOL_CALL_SHAPES,
    OpenAIEmulator,
    SplitChunk,
    choices_chunks,
    error_event,
    exceed_context_error,
    llamacpp_final_chunks,
    reasoning_chunks,
    text_chunks,
    tool_call_chunks,
    usage_chunk,
    with_system_fingerprint,
)

MODEL = "m-test"
#: Any loop over a stream stops after this many events.
MAX_EVENTS = 500


@pytest.fixture
def emulator() -> Iterator[OpenAIEmulator]:
    with OpenAIEmulator(host="127.0.0.1") as started:
        yield started


def chat(**extra: Any) -> Dict[str, Any]:
    body: Dict[str, Any] = {"model": MODEL, "messages": [{"role": "user", "content": "Hi"}], "stream": True}
    body.update(extra)
    return body


def post(emulator: OpenAIEmulator, body: Any, **kwargs: Any) -> requests.Response:
    assert emulator.base_url.startswith("http://127.0.0.1:")
    return requests.post(emulator.base_url + "/chat/completions", json=body, timeout=10, **kwargs)


def blocks(raw: bytes) -> List[str]:
    """The SSE blocks of a body (each without its blank-line terminator)."""
    text = raw.decode("utf-8")
    assert text.endswith("\n\n"), text[-40:]
    parts = text[:-2].split("\n\n")
    assert len(parts) <= MAX_EVENTS
    return parts


def chunks(raw: bytes) -> List[Dict[str, Any]]:
    """The JSON payloads of the ``data:`` blocks, checking the stream ends with [DONE]."""
    found = blocks(raw)
    assert found[-1] == "data: [DONE]"
    out = []
    for block in found[:-1]:
        assert block.startswith("data: "), block
        out.append(json.loads(block[len("data: ") :]))
    return out


def stream(emulator: OpenAIEmulator, events: List[Any], **reply: Any) -> bytes:
    emulator.enqueue(Reply(events=events, **reply))
    response = post(emulator, chat())
    assert response.status_code == 200
    assert response.headers["Content-Type"].startswith("text/event-stream")
    return response.content


def deltas(received: List[Dict[str, Any]], index: int = 0) -> List[Dict[str, Any]]:
    return [c["delta"] for chunk in received for c in chunk["choices"] if c["index"] == index]


def finish_reasons(received: List[Dict[str, Any]]) -> Dict[int, str]:
    return {
        c["index"]: c["finish_reason"] for chunk in received for c in chunk["choices"] if c["finish_reason"]
    }


# --- scripted events: envelope, bytes, [DONE] ------------------------------------------


def test_dict_events_get_the_missing_envelope_keys_and_keep_their_own(emulator: OpenAIEmulator) -> None:
    script = text_chunks(["Hel", "lo"]) + [{"id": "chatcmpl-own", "choices": []}]
    received = chunks(stream(emulator, script))
    assert len(received) == len(script)
    for sent, got in zip(script[:-1], received[:-1]):
        assert isinstance(sent, dict)
        assert got["id"] == "chatcmpl-emulator"
        assert got["object"] == "chat.completion.chunk"
        assert got["model"] == MODEL
        assert isinstance(got["created"], int) and got["created"] > 1_600_000_000
        assert {k: v for k, v in got.items() if k in sent} == sent
    assert received[-1]["id"] == "chatcmpl-own"


def test_text_chunks_are_a_role_chunk_the_pieces_and_a_finish_chunk(emulator: OpenAIEmulator) -> None:
    received = chunks(stream(emulator, text_chunks(["Hel", "lo", " wörld"])))
    assert deltas(received) == [
        {"role": "assistant", "content": ""},
        {"content": "Hel"},
        {"content": "lo"},
        {"content": " wörld"},
        {},
    ]
    assert [c["choices"][0]["finish_reason"] for c in received] == [None, None, None, None, "stop"]


def test_done_is_sent_only_when_finish_reason_is_set(emulator: OpenAIEmulator) -> None:
    raw = stream(emulator, text_chunks(["a"]), finish_reason=None)
    assert b"[DONE]" not in raw
    assert blocks(raw)[-1].startswith("data: {")
    assert blocks(stream(emulator, text_chunks(["a"])))[-1] == "data: [DONE]"


def test_bytes_go_out_verbatim_and_a_bom_comes_first(emulator: OpenAIEmulator) -> None:
    script = [BOM, OPENROUTER_PROCESSING, b": ping\n\n", *text_chunks(["x"])]
    raw = stream(emulator, script)
    assert raw.startswith(BOM + b": OPENROUTER PROCESSING\n\n: ping\n\ndata: {")
    assert chunks(raw[len(BOM) + len(OPENROUTER_PROCESSING) + len(b": ping\n\n") :])


def test_each_event_is_its_own_http_chunk(emulator: OpenAIEmulator) -> None:
    script = [BOM, *text_chunks(["a", "b"])]
    emulator.enqueue(Reply(events=script))
    response = post(emulator, chat(), stream=True)
    assert response.headers["Transfer-Encoding"] == "chunked"
    pieces = list(response.raw.read_chunked(decode_content=False))
    assert pieces[0] == BOM
    assert len(pieces) == len(script) + 1  # and [DONE]
    assert pieces[-1] == b"data: [DONE]\n\n"


@pytest.mark.parametrize("framing", ["chunked", "close", "length"])
def test_scripted_events_keep_framing_and_gzip(emulator: OpenAIEmulator, framing: str) -> None:
    script = text_chunks(["zip", "ped"])
    emulator.enqueue(Reply(events=script, framing=framing, gzip=True, delay=0.01))
    response = post(emulator, chat(), stream=True)
    assert response.headers["Content-Encoding"] == "gzip"
    wire = response.raw.read(decode_content=False)
    received = chunks(gzip.decompress(wire))
    assert "".join(d.get("content", "") for d in deltas(received)) == "zipped"


def test_drop_after_cuts_a_scripted_stream(emulator: OpenAIEmulator) -> None:
    script = text_chunks(["one", "two", "three"])
    emulator.enqueue(Reply(events=script, framing="close", drop_after=40))
    response = post(emulator, chat(), stream=True)
    body = response.raw.read()
    assert len(body) == 40
    assert emulator.wait_idle()
    assert emulator.last_request.outcome == "dropped"


def test_events_of_a_wrong_type_get_no_answer_at_all(emulator: OpenAIEmulator) -> None:
    emulator.enqueue(Reply(events=["data: a str, not bytes\n\n"]))
    with pytest.raises(requests.exceptions.ConnectionError):
        post(emulator, chat())


# --- builders ---------------------------------------------------------------------------


@pytest.mark.parametrize("key", ["reasoning_content", "reasoning"])
def test_reasoning_chunks_stream_reasoning_then_text(emulator: OpenAIEmulator, key: str) -> None:
    received = chunks(stream(emulator, reasoning_chunks(["Let me ", "think."], key=key, then_text=["42"])))
    assert deltas(received) == [
        {"role": "assistant", "content": ""},
        {key: "Let me "},
        {key: "think."},
        {"content": "42"},
        {},
    ]


def test_reasoning_chunks_with_null_content_as_deepseek(emulator: OpenAIEmulator) -> None:
    received = chunks(stream(emulator, reasoning_chunks(["hmm"], null_content=True, then_text=["ok"])))
    assert deltas(received)[1:3] == [
        {"content": None, "reasoning_content": "hmm"},
        {"content": "ok", "reasoning_content": None},
    ]
    with pytest.raises(ValueError):
        reasoning_chunks(["x"], key="thinking")


CALLS = [
    ("call_a", "get_weather", '{"city": "Zürich", "unit": "celsius"}'),
    ("call_b", "get_time", '{"tz": "Europe/Zürich"}'),
]


def join_calls(received: List[Dict[str, Any]]) -> Dict[str, Dict[str, str]]:
    """Tool calls reassembled as a client must: a fragment goes to the call at its
    index (the last call, without one) unless it brings a new id, which starts a call."""
    found: List[Dict[str, str]] = []
    current: Dict[Optional[int], Dict[str, str]] = {}
    for delta in deltas(received):
        for fragment in delta.get("tool_calls") or []:
            key = fragment.get("index")
            call = current.get(key)
            if call is None or ("id" in fragment and call["id"] not in ("", fragment["id"])):
                assert call is not None or "id" in fragment, "a call's first fragment without an id"
                call = current[key] = {"id": "", "name": "", "arguments": ""}
                found.append(call)
            call["id"] = fragment.get("id", call["id"])
            call["name"] += fragment.get("function", {}).get("name", "")
            call["arguments"] += fragment.get("function", {}).get("arguments", "")
    assert len(found) <= MAX_EVENTS
    return {call["id"]: call for call in found}


def tool_fragments(received: List[Dict[str, Any]]) -> List[Dict[str, Any]]:
    return [f for d in deltas(received) for f in d.get("tool_calls") or []]


@pytest.mark.parametrize("shape", TOOL_CALL_SHAPES)
def test_every_tool_call_shape_reassembles_to_the_calls(emulator: OpenAIEmulator, shape: str) -> None:
    received = chunks(stream(emulator, tool_call_chunks(CALLS, shape=shape)))
    assert join_calls(received) == {
        cid: {"id": cid, "name": name, "arguments": arguments} for cid, name, arguments in CALLS
    }
    for cid, _, _ in CALLS:
        json.loads(join_calls(received)[cid]["arguments"])
    assert finish_reasons(received) == {0: "tool_calls"}
    assert received[-1]["choices"][0]["delta"] == {}
    assert deltas(received)[0]["role"] == "assistant"
    for fragment in tool_fragments(received):
        if "id" in fragment:
            assert fragment["type"] == "function"


def test_openai_shape_names_each_call_once_and_indexes_every_fragment(emulator: OpenAIEmulator) -> None:
    received = chunks(stream(emulator, tool_call_chunks(CALLS, shape="openai", fragment=5)))
    first = deltas(received)[0]
    assert first["role"] == "assistant" and first["content"] is None
    assert first["tool_calls"][0] == {
        "index": 0,
        "id": "call_a",
        "type": "function",
        "function": {"name": "get_weather", "arguments": ""},
    }
    fragments = tool_fragments(received)
    assert all("index" in f for f in fragments)
    assert [f["index"] for f in fragments if "id" in f] == [0, 1]
    assert all("name" not in f["function"] for f in fragments if "id" not in f)
    assert all(len(f["function"]["arguments"]) <= 5 for f in fragments)
    assert len([f for f in fragments if f["index"] == 0]) > 3
    assert [f["index"] for f in fragments] == sorted(f["index"] for f in fragments)


def test_whole_and_together_shapes_send_complete_calls(emulator: OpenAIEmulator) -> None:
    whole = tool_fragments(chunks(stream(emulator, tool_call_chunks(CALLS, shape="whole"))))
    assert [(f["index"], f["id"], f["function"]["arguments"]) for f in whole] == [
        (0, "call_a", CALLS[0][2]),
        (1, "call_b", CALLS[1][2]),
    ]
    received = chunks(stream(emulator, tool_call_chunks(CALLS, shape="together")))
    carrying = [d for d in deltas(received) if d.get("tool_calls")]
    assert len(carrying) == 1 and len(carrying[0]["tool_calls"]) == 2


def test_offset_and_no_index_shapes(emulator: OpenAIEmulator) -> None:
    offset = tool_fragments(chunks(stream(emulator, tool_call_chunks(CALLS, shape="offset"))))
    assert min(f["index"] for f in offset) == 1
    assert {f["index"] for f in offset} == {1, 2}
    no_index = tool_fragments(chunks(stream(emulator, tool_call_chunks(CALLS, shape="no_index"))))
    assert no_index and all("index" not in f for f in no_index)
    assert [f["id"] for f in no_index if "id" in f] == ["call_a", "call_b"]
    assert len(no_index) > 4  # headers, then fragments


def test_whole_calls_without_index_or_with_one_index(emulator: OpenAIEmulator) -> None:
    gemini = tool_fragments(chunks(stream(emulator, tool_call_chunks(CALLS, shape="no_index_whole"))))
    assert [(f.get("index"), f["id"], f["function"]["arguments"]) for f in gemini] == [
        (None, "call_a", CALLS[0][2]),
        (None, "call_b", CALLS[1][2]),
    ]
    ollama = tool_fragments(chunks(stream(emulator, tool_call_chunks(CALLS, shape="same_index"))))
    assert [(f["index"], f["id"]) for f in ollama] == [(0, "call_a"), (0, "call_b")]


def test_parallel_shape_interleaves_the_calls(emulator: OpenAIEmulator) -> None:
    fragments = tool_fragments(
        chunks(stream(emulator, tool_call_chunks(CALLS, shape="parallel", fragment=4)))
    )
    order = [f["index"] for f in fragments if "id" not in f]
    assert order[:4] == [0, 1, 0, 1]
    assert order != sorted(order)


def test_split_utf8_shape_cuts_a_character_between_writes(emulator: OpenAIEmulator) -> None:
    script = tool_call_chunks(CALLS, shape="split_utf8")
    fragments = [
        e["choices"][0]["delta"]["tool_calls"][0]["function"]["arguments"]
        for e in script
        if isinstance(e, dict) and e["choices"] and "tool_calls" in e["choices"][0]["delta"]
    ]
    # A new fragment starts at each "ü": the one before ends mid-string right next to it.
    assert any(f.endswith('"Z') for f in fragments) and any(f.startswith("ürich") for f in fragments)
    assert any(isinstance(e, SplitChunk) for e in script)
    emulator.enqueue(Reply(events=script))
    response = post(emulator, chat(), stream=True)
    pieces = list(response.raw.read_chunked(decode_content=False))
    assert len(pieces) <= MAX_EVENTS
    undecodable = []
    for piece in pieces:
        try:
            piece.decode("utf-8")
        except UnicodeDecodeError:
            undecodable.append(piece)
    cuts = [
        i for i in range(len(pieces) - 1) if pieces[i].endswith(b"\xc3") and pieces[i + 1].startswith(b"\xbc")
    ]
    assert cuts, "no write ended inside a multi-byte character"
    # Only the halves of the cut events fail to decode on their own; each pair joined decodes.
    assert len(undecodable) == 2 * len(cuts)
    for i in cuts:
        (pieces[i] + pieces[i + 1]).decode("utf-8")
    assert join_calls(chunks(b"".join(pieces)))["call_a"]["arguments"] == CALLS[0][2]
    with pytest.raises(ValueError):
        tool_call_chunks([("c", "f", '{"a": 1}')], shape="split_utf8")
    with pytest.raises(ValueError):
        tool_call_chunks(CALLS, shape="sideways")


def test_split_chunk_of_ascii_is_one_write(emulator: OpenAIEmulator) -> None:
    emulator.enqueue(Reply(events=[SplitChunk(text_chunks(["ascii"], role=False, finish_reason=None)[0])]))
    response = post(emulator, chat(), stream=True)
    pieces = list(response.raw.read_chunked(decode_content=False))
    assert len(pieces) == 2 and pieces[1] == b"data: [DONE]\n\n"


def test_text_before_tool_calls(emulator: OpenAIEmulator) -> None:
    received = chunks(stream(emulator, tool_call_chunks(CALLS[:1], content=["Checking."])))
    assert deltas(received)[:2] == [{"role": "assistant", "content": ""}, {"content": "Checking."}]
    assert sum("role" in d for d in deltas(received)) == 1


def test_choices_chunks_interleave_choices_each_with_its_finish(emulator: OpenAIEmulator) -> None:
    received = chunks(stream(emulator, choices_chunks([["a", "b", "c"], ["x"], "p q"])))
    assert all(len(chunk["choices"]) == 1 for chunk in received)
    order = [chunk["choices"][0]["index"] for chunk in received]
    assert order[:3] == [0, 1, 2]  # the role chunks
    with_text = [c["choices"][0]["index"] for c in received if c["choices"][0]["delta"].get("content")]
    assert with_text == [0, 1, 2, 0, 2, 0]
    texts = {i: "".join(d.get("content", "") for d in deltas(received, i)) for i in range(3)}
    assert texts == {0: "abc", 1: "x", 2: "p q"}
    assert finish_reasons(received) == {0: "stop", 1: "stop", 2: "stop"}
    finished_at = {
        c["choices"][0]["index"]: n for n, c in enumerate(received) if c["choices"][0]["finish_reason"]
    }
    assert finished_at[1] < finished_at[2] < finished_at[0]


def test_logprobs_in_text_chunks(emulator: OpenAIEmulator) -> None:
    received = chunks(stream(emulator, text_chunks(["Hé", "!"], logprobs=True, top_logprobs=2)))
    content = [c["choices"][0]["logprobs"] for c in received[1:3]]
    assert [lp["content"][0]["token"] for lp in content] == ["Hé", "!"]
    first = content[0]["content"][0]
    assert first["bytes"] == list("Hé".encode())
    assert first["logprob"] < 0
    assert [t["token"] for t in first["top_logprobs"]] == ["Hé", "alt1"]
    assert all(set(t) == {"token", "logprob", "bytes"} for t in first["top_logprobs"])
    assert received[0]["choices"][0]["logprobs"] is None


def test_usage_chunk_details_and_cost(emulator: OpenAIEmulator) -> None:
    script = text_chunks(["a"]) + [usage_chunk(10, 5, cached=4, reasoning=3, cost=0.00012)]
    last = chunks(stream(emulator, script))[-1]
    assert last["choices"] == []
    assert last["usage"] == {
        "prompt_tokens": 10,
        "completion_tokens": 5,
        "total_tokens": 15,
        "prompt_tokens_details": {"cached_tokens": 4},
        "completion_tokens_details": {"reasoning_tokens": 3},
        "cost": 0.00012,
    }
    assert usage_chunk(1, 2)["usage"] == {"prompt_tokens": 1, "completion_tokens": 2, "total_tokens": 3}


def test_system_fingerprint_on_every_chunk(emulator: OpenAIEmulator) -> None:
    script = with_system_fingerprint([BOM, *text_chunks(["a"])], "fp_123")
    assert script[0] == BOM
    received = chunks(stream(emulator, script)[len(BOM) :])
    assert [c["system_fingerprint"] for c in received] == ["fp_123"] * 3


@pytest.mark.parametrize("include_usage", [False, True])
def test_llamacpp_final_chunks_carry_timings_on_the_last(
    emulator: OpenAIEmulator, include_usage: bool
) -> None:
    script = text_chunks(["a", "b"], finish_reason=None) + llamacpp_final_chunks(
        7, 2, include_usage=include_usage, prompt_ms=14.0, predicted_ms=50.0
    )
    received = chunks(stream(emulator, script))
    assert finish_reasons(received) == {0: "stop"}
    assert [("timings" in c) for c in received] == [False] * (len(received) - 1) + [True]
    timings = received[-1]["timings"]
    assert {"prompt_n", "prompt_ms", "prompt_per_token_ms", "prompt_per_second"} <= set(timings)
    assert {"predicted_n", "predicted_ms", "predicted_per_token_ms", "predicted_per_second"} <= set(timings)
    assert (timings["prompt_n"], timings["predicted_n"]) == (7, 2)
    assert timings["predicted_per_token_ms"] == 25.0 and timings["predicted_per_second"] == 40.0
    if include_usage:
        assert received[-1]["choices"] == [] and received[-1]["usage"]["total_tokens"] == 9


def test_error_events_in_each_servers_form(emulator: OpenAIEmulator) -> None:
    assert error_event("event", "boom") == [b'event: error\ndata: {"message":"boom"}\n\n']
    assert error_event("data", "boom") == [
        b'data: {"error":{"message":"boom","type":"server_error","param":null,"code":null}}\n\n'
    ]
    [flat] = error_event("flat", "bad")
    assert flat.startswith(b"data: ") and flat.endswith(b"\n\n")
    assert json.loads(flat[6:]) == {
        "object": "error",
        "message": "bad",
        "type": "BadRequestError",
        "param": None,
        "code": 400,
    }
    assert error_event("field", "oops") == [
        b'error: {"code":500,"message":"oops","type":"server_error"}\n\n',
        b"data: [DONE]\n\n",
    ]
    with pytest.raises(ValueError):
        error_event("smoke")
    raw = stream(
        emulator, text_chunks(["a"], finish_reason=None) + error_event("field", "oops"), finish_reason=None
    )
    assert raw.endswith(b'\n\nerror: {"code":500,"message":"oops","type":"server_error"}\n\ndata: [DONE]\n\n')
    assert raw.count(b"[DONE]") == 1


def test_exceed_context_error_as_llamacpp_answers(emulator: OpenAIEmulator) -> None:
    emulator.enqueue(Reply(status=400, body=exceed_context_error(4476, 4096)))
    response = post(emulator, chat())
    assert response.status_code == 400
    error = response.json()["error"]
    assert error["type"] == "exceed_context_size_error"
    assert (error["n_prompt_tokens"], error["n_ctx"], error["code"]) == (4476, 4096, 400)
    assert "exceeds the available context size" in error["message"]


# --- non-stream answers ---------------------------------------------------------------


def test_non_stream_answer_adds_up_scripted_chunks(emulator: OpenAIEmulator) -> None:
    script = (
        reasoning_chunks(["thinking"], finish_reason=None)
        + tool_call_chunks(CALLS, shape="openai", content=["Sure."])
        + [usage_chunk(3, 4)]
    )
    emulator.enqueue(Reply(events=with_system_fingerprint(script, "fp_x")))
    response = post(emulator, chat(stream=False))
    assert response.headers["Content-Type"] == "application/json"
    answer = response.json()
    assert answer["object"] == "chat.completion"
    assert answer["model"] == MODEL and answer["system_fingerprint"] == "fp_x"
    [choice] = answer["choices"]
    assert choice["finish_reason"] == "tool_calls"
    message = choice["message"]
    assert message["content"] == "Sure." and message["reasoning_content"] == "thinking"
    assert message["tool_calls"] == [
        {"id": cid, "type": "function", "function": {"name": name, "arguments": arguments}}
        for cid, name, arguments in CALLS
    ]
    assert answer["usage"]["total_tokens"] == 7


@pytest.mark.parametrize("shape", ["no_index", "same_index", "parallel", "offset"])
def test_non_stream_answer_tells_the_calls_apart(emulator: OpenAIEmulator, shape: str) -> None:
    emulator.enqueue(Reply(events=tool_call_chunks(CALLS, shape=shape)))
    calls = post(emulator, chat(stream=False)).json()["choices"][0]["message"]["tool_calls"]
    assert [(c["id"], c["function"]["name"], c["function"]["arguments"]) for c in calls] == CALLS


# --- default replies ---------------------------------------------------------------------


def test_default_reply_with_n_streams_interleaved_choices(emulator: OpenAIEmulator) -> None:
    response = post(emulator, chat(n=3, stream_options={"include_usage": True}))
    received = chunks(response.content)
    per_chunk = [c["choices"][0]["index"] for c in received if c["choices"]]
    assert per_chunk[:6] == [0, 1, 2, 0, 1, 2]
    texts = {i: "".join(d.get("content", "") for d in deltas(received, i)) for i in range(3)}
    assert len(set(texts.values())) == 1 and texts[0].endswith("You said: Hi")
    assert finish_reasons(received) == {0: "stop", 1: "stop", 2: "stop"}
    usage = received[-1]["usage"]
    assert usage["completion_tokens"] == 3 * len(texts[0].split())


def test_non_stream_default_reply_with_n(emulator: OpenAIEmulator) -> None:
    answer = post(emulator, chat(n=2, stream=False)).json()
    assert [c["index"] for c in answer["choices"]] == [0, 1]
    assert answer["choices"][0]["message"] == answer["choices"][1]["message"]


def test_default_reply_reads_list_contents_and_tool_results(emulator: OpenAIEmulator) -> None:
    parts = [
        {"type": "text", "text": "Describe"},
        {"type": "image_url", "image_url": {"url": "data:image/png;base64,AAAA"}},
        {"type": "text", "text": "this."},
    ]
    answer = post(emulator, chat(stream=False, messages=[{"role": "user", "content": parts}])).json()
    assert answer["choices"][0]["message"]["content"].endswith("You said: Describe this.")
    messages = [
        {"role": "user", "content": "Weather?"},
        {"role": "assistant", "content": None, "tool_calls": [call("call_1")]},
        {"role": "tool", "tool_call_id": "call_1", "content": "12°C, rain"},
    ]
    answer = post(emulator, chat(stream=False, messages=messages)).json()
    assert answer["choices"][0]["message"]["content"].endswith("The tool returned: 12°C, rain")


# --- validation ---------------------------------------------------------------------------


def call(call_id: str, name: str = "get_weather", arguments: Any = "{}") -> Dict[str, Any]:
    return {"id": call_id, "type": "function", "function": {"name": name, "arguments": arguments}}


def user(content: Any = "Hi") -> Dict[str, Any]:
    return {"role": "user", "content": content}


def tool(name: Any = "get_weather", **function: Any) -> Dict[str, Any]:
    return {"type": "function", "function": {"name": name, **function}}


VALID = chat(
    messages=[
        {"role": "developer", "content": [{"type": "text", "text": "Be brief."}]},
        {"role": "system", "content": "Helpful."},
        user(
            [
                {"type": "text", "text": "Look"},
                {"type": "image_url", "image_url": {"url": "https://example.invalid/a.png", "detail": "low"}},
                {"type": "input_audio", "input_audio": {"data": "UklGRg==", "format": "wav"}},
                {
                    "type": "file",
                    "file": {"filename": "a.pdf", "file_data": "data:application/pdf;base64,JVBE"},
                },
            ]
        ),
        {"role": "assistant", "tool_calls": [call("call_1"), call("call_2", "get_time")]},
        {"role": "tool", "tool_call_id": "call_2", "content": "noon"},
        {"role": "tool", "tool_call_id": "call_1", "content": [{"type": "text", "text": "sunny"}]},
        {"role": "assistant", "content": "Sunny at noon."},
        user("Thanks"),
    ],
    tools=[tool(parameters={"type": "object", "properties": {}}), tool("get_time", description="Time.")],
    tool_choice={"type": "function", "function": {"name": "get_time"}},
    n=2,
    response_format={"type": "json_schema", "json_schema": {"name": "answer", "schema": {"type": "object"}}},
)


def test_a_request_using_every_feature_is_accepted(emulator: OpenAIEmulator) -> None:
    emulator.enqueue(Reply(text="ok"))
    response = post(emulator, VALID)
    assert response.status_code == 200, response.text
    assert "".join(d.get("content", "") for d in deltas(chunks(response.content), 1)) == "ok"
    variants = [{"tool_choice": choice} for choice in ("none", "auto", "required")]
    variants += [{"response_format": {"type": kind}} for kind in ("text", "json_object")]
    for variant in variants:
        emulator.enqueue(Reply(text="ok"))
        assert post(emulator, {**VALID, **variant}).status_code == 200, variant


def with_messages(*messages: Any) -> Dict[str, Any]:
    return chat(messages=list(messages))


INVALID = {
    "no messages": ({"model": MODEL}, "messages", "missing_required_parameter"),
    "messages not a list": (chat(messages="Hi"), "messages", "invalid_type"),
    "messages empty": (chat(messages=[]), "messages", "empty_array"),
    "message not an object": (with_messages("Hi"), "messages[0]", "invalid_type"),
    "no role": (with_messages({"content": "Hi"}), "messages[0].role", "missing_required_parameter"),
    "unknown role": (
        with_messages(user(), {"role": "bot", "content": "x"}),
        "messages[1].role",
        "invalid_value",
    ),
    "no content": (with_messages({"role": "user"}), "messages[0].content", "missing_required_parameter"),
    "null user content": (with_messages(user(None)), "messages.[0].content", None),
    "int content": (with_messages(user(5)), "messages[0].content", "invalid_type"),
    "empty part list": (with_messages(user([])), "messages[0].content", "empty_array"),
    "unknown part": (
        with_messages(user([{"type": "video"}])),
        "messages[0].content[0].type",
        "invalid_value",
    ),
    "part without text": (
        with_messages(user([{"type": "text"}])),
        "messages[0].content[0].text",
        "missing_required_parameter",
    ),
    "image without url": (
        with_messages(user([{"type": "image_url", "image_url": {}}])),
        "messages[0].content[0].image_url.url",
        "missing_required_parameter",
    ),
    "audio format": (
        with_messages(user([{"type": "input_audio", "input_audio": {"data": "x", "format": "ogg"}}])),
        "messages[0].content[0].input_audio.format",
        "invalid_value",
    ),
    "audio without data": (
        with_messages(user([{"type": "input_audio", "input_audio": {"format": "wav"}}])),
        "messages[0].content[0].input_audio.data",
        "missing_required_parameter",
    ),
    "image part in system": (
        with_messages(
            {"role": "system", "content": [{"type": "image_url", "image_url": {"url": "u"}}]}, user()
        ),
        "messages[0].content[0].type",
        "invalid_value",
    ),
    "assistant null without tool calls": (
        with_messages(user(), {"role": "assistant", "content": None}, user()),
        "messages.[1].content",
        None,
    ),
    "tool call without id": (
        with_messages(user(), {"role": "assistant", "tool_calls": [{"type": "function", "function": {}}]}),
        "messages[1].tool_calls[0].id",
        "missing_required_parameter",
    ),
    "tool call of another type": (
        with_messages(user(), {"role": "assistant", "tool_calls": [{**call("c"), "type": "custom"}]}),
        "messages[1].tool_calls[0].type",
        "invalid_value",
    ),
    "arguments not a string": (
        with_messages(user(), {"role": "assistant", "tool_calls": [call("c", arguments={"a": 1})]}),
        "messages[1].tool_calls[0].function.arguments",
        "invalid_type",
    ),
    "tool without tool_call_id": (
        with_messages(
            user(), {"role": "assistant", "tool_calls": [call("c")]}, {"role": "tool", "content": "x"}
        ),
        "messages[2].tool_call_id",
        "missing_required_parameter",
    ),
    "tool with no call before": (
        with_messages(user(), {"role": "tool", "tool_call_id": "c", "content": "x"}),
        "messages.[1].role",
        None,
    ),
    "tool answering an unknown call": (
        with_messages(
            user(),
            {"role": "assistant", "tool_calls": [call("c")]},
            {"role": "tool", "tool_call_id": "d", "content": "x"},
        ),
        "messages.[2].tool_call_id",
        None,
    ),
    "unanswered tool call": (
        with_messages(
            user(),
            {"role": "assistant", "tool_calls": [call("c"), call("d")]},
            {"role": "tool", "tool_call_id": "c", "content": "x"},
            user(),
        ),
        "messages.[1].role",
        None,
    ),
    "tools not a list": (chat(tools={"type": "function"}), "tools", "invalid_type"),
    "tool of another type": (
        chat(tools=[{"type": "web", "function": {"name": "f"}}]),
        "tools[0].type",
        "invalid_value",
    ),
    "tool without function": (
        chat(tools=[{"type": "function"}]),
        "tools[0].function",
        "missing_required_parameter",
    ),
    "tool without name": (
        chat(tools=[{"type": "function", "function": {}}]),
        "tools[0].function.name",
        "missing_required_parameter",
    ),
    "tool name with a space": (chat(tools=[tool("get weather")]), "tools[0].function.name", "invalid_value"),
    "tool name too long": (chat(tools=[tool("f" * 65)]), "tools[0].function.name", "string_above_max_length"),
    "tool parameters not an object": (
        chat(tools=[tool(parameters="{}")]),
        "tools[0].function.parameters",
        "invalid_type",
    ),
    "tool_choice unknown": (chat(tools=[tool()], tool_choice="always"), "tool_choice", "invalid_value"),
    "tool_choice without tools": (chat(tool_choice="auto"), "tool_choice", None),
    "tool_choice without name": (
        chat(tools=[tool()], tool_choice={"type": "function", "function": {}}),
        "tool_choice.function.name",
        "missing_required_parameter",
    ),
    "n a string": (chat(n="2"), "n", "invalid_type"),
    "n a boolean": (chat(n=True), "n", "invalid_type"),
    "n zero": (chat(n=0), "n", "integer_below_min_value"),
    "n too big": (chat(n=129), "n", "integer_above_max_value"),
    "response_format unknown": (
        chat(response_format={"type": "yaml"}),
        "response_format.type",
        "invalid_value",
    ),
    "json_schema missing": (
        chat(response_format={"type": "json_schema"}),
        "response_format.json_schema",
        "missing_required_parameter",
    ),
    "json_schema without name": (
        chat(response_format={"type": "json_schema", "json_schema": {"schema": {}}}),
        "response_format.json_schema.name",
        "missing_required_parameter",
    ),
}


@pytest.mark.parametrize("case", list(INVALID))
def test_what_openai_refuses_is_a_400_naming_the_param(emulator: OpenAIEmulator, case: str) -> None:
    body, param, code = INVALID[case]
    response = post(emulator, body)
    assert response.status_code == 400, response.text
    error = response.json()["error"]
    assert set(error) == {"message", "type", "param", "code"}
    assert error["type"] == "invalid_request_error"
    assert (error["param"], error["code"]) == (param, code)
    assert error["message"]
    assert emulator.last_request.outcome == "rejected"


def test_validation_messages_follow_openais_wording(emulator: OpenAIEmulator) -> None:
    def message(body: Dict[str, Any]) -> str:
        response = post(emulator, body)
        assert response.status_code == 400
        text: str = response.json()["error"]["message"]
        return text

    assert message(INVALID["unknown role"][0]) == (
        "Invalid value: 'bot'. Supported values are: 'system', 'assistant', 'user', 'tool', and 'developer'."
    )
    assert message(INVALID["int content"][0]) == (
        "Invalid type for 'messages[0].content': expected one of a string or array of objects, "
        "but got an integer instead."
    )
    assert message(INVALID["tool with no call before"][0]) == (
        "Invalid parameter: messages with role 'tool' must be a response to a preceeding message with 'tool_calls'."
    )
    assert "did not have response messages: d" in message(INVALID["unanswered tool call"][0])
    assert message(INVALID["tool name with a space"][0]).startswith(
        "Invalid 'tools[0].function.name': string does not match pattern."
    )
    assert message(INVALID["audio format"][0]).endswith("Supported values are: 'wav' and 'mp3'.")


def test_earlier_refusals_still_come_first(emulator: OpenAIEmulator) -> None:
    response = requests.post(emulator.base_url + "/chat/completions", data=b"{not json", timeout=10)
    assert response.status_code == 400
    assert response.json()["error"]["message"] == "We could not parse the JSON body of your request."
    response = post(emulator, {"messages": []})
    assert response.json()["error"]["message"] == "you must provide a model parameter"
    with OpenAIEmulator(models=["only-this"]) as strict:
        assert post(strict, chat()).status_code == 404
        assert post(strict, chat(model="only-this", n=0)).status_code == 400
