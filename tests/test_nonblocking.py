"""Stream.set_nonblocking: reading a chunked body without waiting, as the
asyncio wrapper's loop does, over real HTTP and HTTPS on loopback."""

from __future__ import annotations

import select
import ssl
import time
from typing import Any, Callable, Iterator, List, Optional

import pytest

import llmclients
from llmclients._core.stream import Stream
from llmclients.testing import OpenAIEmulator, Reply

MODEL = "m"


@pytest.fixture(params=["http", "https"])
def openai_emulator(request: pytest.FixtureRequest, tls_context: ssl.SSLContext) -> Iterator[OpenAIEmulator]:
    # Under TLS a read may find part of a record, or a record with no data for
    # the application (a session ticket): to the caller, both are "nothing yet".
    with OpenAIEmulator(ssl_context=tls_context if request.param == "https" else None) as emulator:
        yield emulator


@pytest.fixture
def connect(openai_emulator: OpenAIEmulator, ca_bundle: str) -> Callable[..., llmclients.OpenAICompatible]:
    """A client of the emulator, plain or TLS; keyword arguments go to the client."""
    verify = ca_bundle if openai_emulator.ssl_context is not None else True

    def connect(**kwargs: Any) -> llmclients.OpenAICompatible:
        return llmclients.OpenAICompatible(
            base_url=openai_emulator.base_url, model=MODEL, max_retries=0, verify=verify, **kwargs
        )

    return connect


def drive(stream: Stream, limit: float = 5.0) -> List[str]:
    """Read a non-blocking stream to its end as an event loop would: wait for
    the socket or the stream's wake_at, whichever comes first."""
    # The same socket again (None if the whole body has already arrived).
    sock = stream.set_nonblocking()
    deltas: List[str] = []
    stop = time.monotonic() + limit
    while time.monotonic() < stop:
        try:
            deltas.append(next(stream))
            continue
        except StopIteration:
            return deltas
        except BlockingIOError:  # nothing yet: wait for the socket
            pass
        wake_at: Optional[float] = stream.wake_at
        wait = 0.5 if wake_at is None else max(0.0, min(0.5, wake_at - time.monotonic()))
        select.select([sock] if sock is not None else [], [], [], wait)
    raise AssertionError("the stream did not end in time")


def test_not_before_the_first_delta(
    openai_emulator: OpenAIEmulator, connect: Callable[..., llmclients.OpenAICompatible]
) -> None:
    openai_emulator.enqueue(Reply(deltas=["a ", "b "], delay=0.01))
    with connect().stream("Hi") as stream:
        assert stream.set_nonblocking() is None  # a retry could still have to wait
        assert next(stream) == "a "
        assert stream.set_nonblocking() is not None


def test_a_close_delimited_body_stays_blocking(
    openai_emulator: OpenAIEmulator, connect: Callable[..., llmclients.OpenAICompatible]
) -> None:
    openai_emulator.enqueue(Reply(deltas=["a ", "b "], framing="close"))
    with connect().stream("Hi") as stream:
        next(stream)
        assert stream.set_nonblocking() is None
        assert "".join(stream) == "b "


def test_next_raises_blocking_io_error_until_data_arrives(
    openai_emulator: OpenAIEmulator, connect: Callable[..., llmclients.OpenAICompatible]
) -> None:
    # The server pauses 1.5 s after "a " (the role chunk, then "a ").
    openai_emulator.enqueue(Reply(deltas=["a ", "b ", "c "], stall=1.5, stall_after=2))
    with connect().stream("Hi") as stream:
        assert next(stream) == "a "
        assert stream.set_nonblocking() is not None
        start = time.monotonic()
        with pytest.raises(BlockingIOError):  # "b " is 1.5 s away: no waiting for it
            next(stream)
        assert time.monotonic() - start < 0.75
        assert drive(stream) == ["b ", "c "]
        assert stream.text == "a b c " and stream.finish_reason == "stop"


@pytest.mark.usefixtures("patient_reuse")
def test_the_connection_goes_back_to_the_pool_blocking(
    openai_emulator: OpenAIEmulator, connect: Callable[..., llmclients.OpenAICompatible]
) -> None:
    words = [f"w{i} " for i in range(5)]
    openai_emulator.enqueue(Reply(deltas=words), Reply(deltas=words, delay=0.01))
    llm = connect()
    with llm.stream("Hi") as stream:
        assert next(stream) == "w0 "
        stream.set_nonblocking()
        openai_emulator.requests[-1].wait(2)  # every byte is in the socket before the loop reads on
        assert drive(stream) == words[1:]
    # The next request reuses the connection, and its reads block again.
    assert llm.complete("Hi").text == "".join(words)
    assert openai_emulator.connections_accepted == 1


def test_the_idle_timeout_is_due_at_wake_at(
    openai_emulator: OpenAIEmulator, connect: Callable[..., llmclients.OpenAICompatible]
) -> None:
    openai_emulator.enqueue(Reply(deltas=["a ", "b "], stall=2, stall_after=2, keepalive=0.05))
    llm = connect(timeout=llmclients.Timeout(idle=0.3))
    with llm.stream("Hi") as stream:
        assert next(stream) == "a "
        stream.set_nonblocking()
        start = time.monotonic()
        with pytest.raises(llmclients.IdleTimeout) as raised:
            drive(stream)
        # Keep-alives kept the socket busy, and did not postpone the deadline.
        assert 0.2 < time.monotonic() - start < 1.5  # idle=0.3; the stall lasts 2 s
        assert raised.value.partial_text == "a "


def test_a_break_in_the_body_raises_with_the_text_so_far(
    openai_emulator: OpenAIEmulator, connect: Callable[..., llmclients.OpenAICompatible]
) -> None:
    openai_emulator.enqueue(Reply(deltas=[f"w{i} " for i in range(30)], delay=0.005, drop_after=1500))
    with connect().stream("Hi") as stream:
        first = next(stream)
        stream.set_nonblocking()
        received = [first]
        with pytest.raises(llmclients.StreamInterruptedError) as raised:
            received += drive(stream)
        assert raised.value.partial_text == stream.text
        assert stream.text.startswith("w0 w1 ") and len(stream.text.split()) < 30
