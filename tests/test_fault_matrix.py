"""The fault matrix: every fault, against every provider, over loopback.

For each cell: the documented error class, raised within its time bound
(+2.5 s), ``partial_text`` equal to the text the caller was given, and afterwards
no connection left open and no thread left behind. README.rst shows the table.

The providers are the registry's (those with an emulator), and the bytes built
by hand come from each emulator's wire sample: a provider registered with an
emulator is covered without a change here.
"""

import threading
import time
from typing import Iterator, List

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import llmclients
from llmclients import errors
from llmclients._core.framing import DECODERS
from llmclients._core.state import Exchange
from llmclients._core.stream import Stream
from llmclients.providers import get_provider_class
from llmclients.testing import EMULATORS, Reply, emulator_for, wire_sample

PROVIDERS = list(EMULATORS)
READ, IDLE = 0.5, 0.6
BIG = 9 * 1024 * 1024  # over the decoders' 8 MiB limit
JSON_ERROR = {"error": {"message": "the service says no", "code": 1}}
HTML_ERROR = "<!DOCTYPE html><html><body><h1>Error</h1></body></html>"
CHALLENGE = "<!DOCTYPE html><html><head><title>Just a moment...</title></head><body></body></html>"
HTTP_DATE = "Wed, 21 Oct 2015 07:28:00 GMT"


def http(status, body, cls, **headers):
    return (lambda provider: Reply(status=status, body=body, headers=headers), cls, 0.0)


def mid_stream(**fault):
    def reply(provider):
        fields = dict(fault)
        if fields.get("drop_after") == "cut":  # where some text came before (the wire sample says)
            fields["drop_after"] = wire_sample(provider).cut
        return Reply(deltas=["Hello", " there", ", friend"] + ["."] * 200, **fields)

    return reply


def raw(build, framing="chunked"):
    return lambda provider: Reply(raw=build(provider), framing=framing)


# fault -> (reply for a provider, expected error, the time bound it may take)
FAULTS = {
    "reset before headers": (lambda p: Reply(close_before_headers=True, reset=True), errors.ConnectError, 0),
    "reset mid-stream": (mid_stream(drop_after="cut", reset=True), errors.StreamInterruptedError, 0),
    "stall after headers": (lambda p: Reply(stall=5), errors.ReadTimeout, READ),
    "stall mid-stream, keep-alives": (
        mid_stream(stall=5, stall_after=3, keepalive=0.1),
        errors.IdleTimeout,
        IDLE,
    ),
    "400 JSON": http(400, JSON_ERROR, errors.HTTPStatusError),
    "400 HTML": http(400, HTML_ERROR, errors.HTTPStatusError),
    "401 JSON": http(401, JSON_ERROR, errors.AuthenticationError),
    "401 HTML": http(401, HTML_ERROR, errors.AuthenticationError),
    "403 JSON": http(403, JSON_ERROR, errors.AuthenticationError),
    "403 HTML": http(403, HTML_ERROR, errors.AuthenticationError),
    "403 challenge": http(403, "<title>Just a moment...</title>", errors.BlockedError),
    "404 JSON": http(404, JSON_ERROR, errors.NotFoundError),
    "404 HTML": http(404, HTML_ERROR, errors.NotFoundError),
    "500 JSON": http(500, JSON_ERROR, errors.ServerError),
    "500 HTML": http(500, HTML_ERROR, errors.ServerError),
    "429 Retry-After seconds": http(429, JSON_ERROR, errors.RateLimitError, **{"Retry-After": "7"}),
    "429 Retry-After date": http(429, JSON_ERROR, errors.RateLimitError, **{"Retry-After": HTTP_DATE}),
    "307 to another origin": http(307, "", errors.RedirectError, Location="http://127.0.0.1:9/v1"),
    "302 on the same origin": http(302, "", errors.RedirectError, Location="/moved"),
    "200 bot-check page": http(200, CHALLENGE, errors.BlockedError, **{"Content-Type": "text/html"}),
    "200 HTML page": http(200, HTML_ERROR, errors.MalformedStreamError, **{"Content-Type": "text/html"}),
    "200 JSON error": http(200, JSON_ERROR, errors.ProviderError),
    "truncated chunked body": (mid_stream(drop_after="cut"), errors.StreamInterruptedError, 0),
    "invalid UTF-8": (
        raw(lambda p: wire_sample(p).text(b"ok") + wire_sample(p).text(b"\xff\xfe")),
        errors.DecodingError,
        0,
    ),
    "oversized line": (
        raw(lambda p: wire_sample(p).text(b"ok") + wire_sample(p).text(b"x" * BIG)),
        errors.OversizedEventError,
        0,
    ),
    "garbage JSON": (
        raw(lambda p: wire_sample(p).text(b"ok") + wire_sample(p).garbage),
        errors.MalformedStreamError,
        0,
    ),
}


def applies(provider, fault):
    """A raw text body (Aura's) has no lines, no JSON and no way to ping: any
    bytes are text. Its wire sample has no garbage and no keep-alive, and its
    event format no event size limit."""
    sample = wire_sample(provider)
    if fault == "oversized line":
        return get_provider_class(provider).event_format != "text"
    if fault == "garbage JSON":
        return sample.garbage is not None
    if fault == "stall mid-stream, keep-alives":
        return sample.keepalive is not None
    return True


def client_for(provider, base_url, **kwargs):
    model = wire_sample(provider).model  # for a provider without a default model (OpenAI-compatible)
    if model:
        kwargs["model"] = model
    return llmclients.get_client(provider, base_url=base_url, max_retries=0, **kwargs)


def cells():
    for fault in FAULTS:
        for provider in PROVIDERS:
            if applies(provider, fault):
                yield pytest.param(provider, fault, id=f"{fault}-{provider}")


def call_threads() -> int:
    """Threads alive, less the watchdog's one, which lives as long as the process once started."""
    return sum(thread.name != "llmclients-watchdog" for thread in threading.enumerate())


@pytest.mark.parametrize(("provider", "fault"), list(cells()))
def test_fault(provider, fault):
    build, expected, bound = FAULTS[fault]
    threads_before = call_threads()
    with emulator_for(provider) as emulator:
        # What a keep-alive looks like in the provider's framing (the services
        # that have none could still send one: the decoders must skip it).
        emulator.keepalive_bytes = wire_sample(provider).keepalive or b""
        emulator.enqueue(build(provider))
        client = client_for(
            provider, emulator.base_url, timeout=llmclients.Timeout(connect=1, read=READ, idle=IDLE)
        )
        given = []
        started = time.monotonic()
        with pytest.raises(expected) as caught:
            for text in client.stream("Hi"):
                given.append(text)
        elapsed = time.monotonic() - started
        assert elapsed < bound + 2.5, f"{fault} took {elapsed:.2f}s"  # the stalls last 5 s
        assert caught.value.partial_text == "".join(given)
        assert "\n" not in str(caught.value) and "<" not in str(caught.value)
        client.close()
        assert emulator.wait_idle(), "a connection stayed open"
    deadline = time.monotonic() + 3
    while call_threads() > threads_before and time.monotonic() < deadline:
        time.sleep(0.01)
    assert call_threads() <= threads_before, "a thread was left behind"


@pytest.mark.parametrize("provider", PROVIDERS)
def test_connection_refused(provider):
    import socket

    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    client = client_for(provider, f"http://127.0.0.1:{port}")
    started = time.monotonic()
    with pytest.raises(errors.ConnectError):
        client.complete("Hi")
    assert time.monotonic() - started < 3


@pytest.mark.parametrize("provider", PROVIDERS)
def test_mid_stream_faults_keep_the_text_given(provider):
    with emulator_for(provider) as emulator:
        emulator.enqueue(mid_stream(drop_after="cut", reset=True)(provider))
        client = client_for(provider, emulator.base_url)
        given = []
        with pytest.raises(errors.StreamInterruptedError) as caught:
            for text in client.stream("Hi"):
                given.append(text)
        assert given, "the fault should come after some text"
        assert caught.value.partial_text == "".join(given)


# --- fuzzing: mutated streams through every provider's parser --------------------------

def sample_stream(provider):
    """A whole stream of one delta with wide characters, in the provider's framing."""
    return wire_sample(provider).body("Привет 🎉".encode())


class _Closed:
    def close(self) -> None:
        pass


class _Body:
    """The reads of a body already received."""

    def __init__(self, reads: List[bytes]) -> None:
        self._reads = reads

    def reads(self) -> Iterator[bytes]:
        return iter(self._reads)

    def release(self) -> None:
        pass


@settings(max_examples=200, deadline=None)
@given(
    provider=st.sampled_from(PROVIDERS),
    edits=st.lists(st.tuples(st.integers(0, 10_000), st.integers(0, 255)), max_size=5),
    cut=st.integers(0, 10_000),
)
def test_mutated_streams_through_every_parser_raise_only_typed_errors(provider, edits, cut):
    data = bytearray(sample_stream(provider))
    for position, value in edits:
        data[position % len(data)] = value
    cut %= len(data) + 1
    client = client_for(provider, "http://127.0.0.1:9")
    body = _Body([bytes(data[:cut]), bytes(data[cut:])])
    stream = Stream(
        client.new_call("chat", model="m").adopt(
            Exchange(_Closed(), body, DECODERS[get_provider_class(provider).event_format], {})
        )
    )
    received = []
    try:
        for text in stream:
            received.append(text)
    except errors.LLMClientError as exc:
        assert exc.partial_text == "".join(received)
