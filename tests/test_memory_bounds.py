"""Bounded memory whatever the server sends: compressed bodies are inflated a
bounded step at a time, a reply has a size limit, multi-member gzip decodes
whole, and chunk sizes are strict hex. All over loopback, in every framing.

Peak memory itself is measured by ``benchmarks/bench_bomb.py``, not here.
The providers are the registry's, their bytes their emulators' wire samples.
"""

import asyncio
import gzip
import sys
import zlib

import pytest
import requests

import llmclients
from llmclients import errors
from llmclients._http.body import MAX_INFLATE, Body
from llmclients._http.body.inflate import Inflater
from llmclients._http.config import Timeout
from llmclients._http.deadline import Deadline
from llmclients.aio import AsyncClient
from llmclients.providers import get_provider_class
from llmclients.testing import EMULATORS, Reply, emulator_for, wire_sample

PROVIDERS = list(EMULATORS)
FRAMINGS = ["chunked", "close", "length"]

def text_event(provider, delta):
    """One text delta in the provider's own framing."""
    return wire_sample(provider).text(delta)


def client_for(provider, base_url, **kwargs):
    if wire_sample(provider).model:  # a provider without a default model
        kwargs["model"] = wire_sample(provider).model
    return llmclients.get_client(provider, base_url=base_url, max_retries=0, **kwargs)


def gzipped(body_parts, repeat=1):
    """``b"".join(body_parts) * repeat``, gzipped without building it whole."""
    compress = zlib.compressobj(9, zlib.DEFLATED, 16 + zlib.MAX_WBITS)
    block = b"".join(body_parts)
    out = [compress.compress(block) for _ in range(repeat)]
    return b"".join(out) + compress.flush()


def text_bomb(provider, repeat):
    """Valid text events, about 1 MB of them ``repeat`` times, after a first delta "first"."""
    head = wire_sample(provider).prologue + text_event(provider, b"first")
    return gzipped([head + text_event(provider, b"a" * 1000) * 1000], repeat)


def bomb_reply(body, framing, encoding="gzip"):
    return Reply(raw=body, framing=framing, headers={"Content-Encoding": encoding})


def read(client):
    given = []
    with pytest.raises(errors.LLMClientError) as caught:
        for text in client.stream("Hi"):
            given.append(text)
    return caught.value, "".join(given)


# --- the inflater on its own --------------------------------------------------------------


def test_a_gzip_bomb_inflates_in_bounded_steps():
    body = gzipped([bytes(1024 * 1024)], 48)  # 48 MiB of zeros in about 48 KiB
    assert len(body) < 100_000
    sizes = [len(piece) for piece in Inflater(16 + zlib.MAX_WBITS).inflate([body])]
    assert max(sizes) <= MAX_INFLATE
    assert sum(sizes) == 48 * 1024 * 1024


@pytest.mark.parametrize("wbits", [zlib.MAX_WBITS, -zlib.MAX_WBITS], ids=["zlib", "raw"])
def test_deflate_is_read_wrapped_or_raw_and_in_bounded_steps(wbits):
    compress = zlib.compressobj(9, zlib.DEFLATED, wbits)
    body = compress.compress(bytes(5 * 1024 * 1024)) + compress.compress(b"end") + compress.flush()
    pieces = list(Inflater(zlib.MAX_WBITS).inflate([body[:7], body[7:]]))
    assert max(map(len, pieces)) <= MAX_INFLATE
    assert b"".join(pieces) == bytes(5 * 1024 * 1024) + b"end"


def test_every_gzip_member_is_inflated_and_padding_after_them_ignored():
    body = gzip.compress(b"Hello ") + gzip.compress(b"world, ") + gzip.compress(b"all of it.") + bytes(8)
    for cut in range(len(body)):  # members split anywhere across reads
        pieces = [body[:cut], b"", body[cut:]]
        assert b"".join(Inflater(16 + zlib.MAX_WBITS).inflate(pieces)) == b"Hello world, all of it."


def test_a_corrupt_first_member_is_an_error():
    with pytest.raises(zlib.error):
        list(Inflater(16 + zlib.MAX_WBITS).inflate([b"\x1f\x8b\x08\x00garbage-garbage"]))


# --- over loopback --------------------------------------------------------------------------


@pytest.mark.parametrize("framing", FRAMINGS)
def test_the_body_yields_bounded_pieces_of_a_bomb_over_http(framing):
    body = gzipped([bytes(1024 * 1024)], 24)
    request = {"model": "m", "messages": [{"role": "user", "content": "Hi"}], "stream": True}
    with emulator_for("openai") as emulator:
        emulator.enqueue(bomb_reply(body, framing))
        response = requests.post(
            emulator.base_url + "/chat/completions", json=request, stream=True, timeout=5
        )
        assert response.status_code == 200
        with response:
            sizes = [len(chunk) for chunk in Body(response, Deadline(Timeout()))]
    assert max(sizes) <= MAX_INFLATE
    assert sum(sizes) == 24 * 1024 * 1024


@pytest.mark.parametrize("framing", FRAMINGS)
@pytest.mark.parametrize("provider", PROVIDERS)
def test_a_bomb_of_text_events_stops_at_max_reply_size(provider, framing):
    limit = 256 * 1024
    body = text_bomb(provider, 20)
    with emulator_for(provider) as emulator:
        emulator.enqueue(bomb_reply(body, framing))
        client = client_for(provider, emulator.base_url, max_reply_size=limit)
        with client:
            error, given = read(client)
        assert emulator.wait_idle(2), "the connection stayed open"
    assert isinstance(error, errors.ReplyTooLargeError), repr(error)
    assert error.partial_text == given
    assert given.startswith("first") and limit * 0.9 < len(given) <= limit
    assert "max_reply_size" in str(error)


@pytest.mark.parametrize("framing", FRAMINGS)
@pytest.mark.parametrize("provider", PROVIDERS)
def test_a_bomb_of_zeros_stops_at_a_limit(provider, framing):
    body = gzipped([bytes(1024 * 1024)], 12)  # 12 MiB of zeros: no line end in it
    with emulator_for(provider) as emulator:
        emulator.enqueue(bomb_reply(body, framing))
        client = client_for(provider, emulator.base_url, max_reply_size=1024 * 1024)
        with client:
            error, given = read(client)
    # Lines and events have their own limit (8 MiB), which a raw text body has not.
    raw_text = get_provider_class(provider).event_format == "text"
    expected = errors.ReplyTooLargeError if raw_text else errors.OversizedEventError
    assert isinstance(error, expected), repr(error)
    assert error.partial_text == given


@pytest.mark.parametrize("framing", FRAMINGS)
@pytest.mark.parametrize("provider", PROVIDERS)
@pytest.mark.parametrize("encoding", ["gzip", "deflate"])
def test_a_compressed_reply_decodes_whole(provider, framing, encoding):
    """Several gzip members (as ``cat a.gz b.gz`` makes), or deflate, in every framing."""
    words = [b"Hello", b" world,", b" all", b" of it."]
    body = wire_sample(provider).body(*words)
    if encoding == "gzip":
        half = len(body) // 2
        wire = gzip.compress(body[:half]) + gzip.compress(body[half:])
    else:
        wire = zlib.compress(body)
    with emulator_for(provider) as emulator:
        emulator.enqueue(bomb_reply(wire, framing, encoding))
        with client_for(provider, emulator.base_url) as client:
            assert client.complete("Hi").text == "Hello world, all of it."


@pytest.mark.parametrize("framing", FRAMINGS)
@pytest.mark.parametrize("encoding", ["gzip", "deflate"])
def test_a_body_that_is_not_what_its_encoding_says_raises_decoding_error(framing, encoding):
    with emulator_for("aura") as emulator:
        emulator.enqueue(bomb_reply(b"this is not compressed at all", framing, encoding))
        with client_for("aura", emulator.base_url) as client:
            error, given = read(client)
    assert isinstance(error, errors.DecodingError), repr(error)
    assert "content-encoding" in str(error) and given == ""


def test_reasoning_and_tool_arguments_count_toward_the_limit():
    events = [
        b'data: {"choices": [{"delta": {"reasoning_content": "%s"}}]}\n\n' % (b"r" * 500),
        b'data: {"choices": [{"delta": {"tool_calls": [{"index": 0, "id": "c", '
        b'"function": {"name": "f", "arguments": "%s"}}]}}]}\n\n' % (b"1" * 500),
    ]
    with emulator_for("openai") as emulator:
        for event in events:
            emulator.enqueue(Reply(raw=text_event("openai", b"Hi") + event * 100, framing="chunked"))
            with client_for("openai", emulator.base_url, max_reply_size=10_000) as client:
                error, given = read(client)
            assert isinstance(error, errors.ReplyTooLargeError)
            assert error.partial_text == given == "Hi"


def test_each_delta_counts_its_cost_so_a_flood_of_tiny_ones_is_bounded():
    with emulator_for("openai") as emulator:
        emulator.enqueue(Reply(deltas=["x"] * 1000, framing="chunked"))
        limit = 100 * sys.getsizeof("x")
        with client_for("openai", emulator.base_url, max_reply_size=limit) as client:
            error, given = read(client)
    assert isinstance(error, errors.ReplyTooLargeError)
    assert given == "x" * 100


@pytest.mark.parametrize("provider", PROVIDERS)
def test_the_limit_is_memory_so_wide_characters_count_more(provider):
    """An emoji takes 4 bytes in a str: a limit in characters would let it take four times the memory."""
    wide = "🎉" * 250
    body = wire_sample(provider).body(*[wide.encode()] * 100)
    with emulator_for(provider) as emulator:
        emulator.enqueue(Reply(raw=body, framing="chunked"))
        with client_for(provider, emulator.base_url, max_reply_size=40_000) as client:
            error, given = read(client)
    assert isinstance(error, errors.ReplyTooLargeError)
    assert error.partial_text == given and set(given) == {"🎉"}
    assert 9_000 < len(given) * 4 <= 40_000


def test_no_limit_with_none_and_the_default_is_generous():
    body = wire_sample("openai").body(*[b"a" * 1000] * 3000)
    with emulator_for("openai") as emulator:
        for size in (None, llmclients.OpenAICompatible(base_url="http://x").max_reply_size):
            emulator.enqueue(bomb_reply(gzipped([body]), "chunked"))
            with client_for("openai", emulator.base_url, max_reply_size=size) as client:
                assert len(client.complete("Hi").text) == 3_000_000


@pytest.mark.parametrize("size", [0, -1, 1.5, "big", True])
def test_max_reply_size_must_be_a_positive_int(size):
    with pytest.raises(errors.InvalidRequestError, match="max_reply_size"):
        llmclients.OpenAICompatible(base_url="http://x", max_reply_size=size)


@pytest.mark.parametrize("framing", ["chunked", "close"])
@pytest.mark.parametrize("provider", PROVIDERS)
def test_asyncio_stops_a_bomb_too(provider, framing):
    body = text_bomb(provider, 20)

    async def main(base_url):
        client = AsyncClient(client_for(provider, base_url, max_reply_size=256 * 1024))
        given = []
        async with client:
            with pytest.raises(errors.ReplyTooLargeError) as caught:
                async with client.stream("Hi") as stream:
                    async for text in stream:
                        given.append(text)
        return caught.value, "".join(given)

    with emulator_for(provider) as emulator:
        emulator.enqueue(bomb_reply(body, framing))
        error, given = asyncio.run(main(emulator.base_url))
    assert error.partial_text == given
    assert given.startswith("first") and len(given) <= 256 * 1024


# --- strict chunk sizes -----------------------------------------------------------------------


@pytest.mark.parametrize("provider", PROVIDERS)
@pytest.mark.parametrize("size", [b"0x5", b"0X5", b"+5", b"-5", b" 5", b"0_5", b"5\x0b", b"\xd9\xa5"])
def test_a_chunk_size_that_is_not_plain_hex_is_refused(size, provider):
    body = size + b"\r\nhello\r\n0\r\n\r\n"
    with emulator_for(provider) as emulator:
        emulator.enqueue(Reply(raw=body, framing="close", headers={"Transfer-Encoding": "chunked"}))
        client = client_for(provider, emulator.base_url)
        with client, pytest.raises(errors.MalformedStreamError, match="chunk-size"):
            client.complete("Hi")


@pytest.mark.parametrize("size", [b"5", b"05", b"5;name=value", b"5 ; name", b"5;"])
def test_a_chunk_size_in_hex_with_extensions_is_read(size):
    body = size + b"\r\nhello\r\n0\r\n\r\n"
    with emulator_for("aura") as emulator:
        emulator.enqueue(Reply(raw=body, framing="close", headers={"Transfer-Encoding": "chunked"}))
        with client_for("aura", emulator.base_url) as client:
            assert client.complete("Hi").text == "hello"
