"""The body layer's interrupt (Stream.interrupt): another thread wakes a
blocked read, and never touches a connection that went back to the pool;
over real HTTP and HTTPS on loopback."""

from __future__ import annotations

import ssl
import threading
import time
from typing import Iterator, List

import pytest

import llmclients
from llmclients import errors
from llmclients.testing import OpenAIEmulator, Reply


@pytest.fixture(params=["http", "https"])
def emulator(request: pytest.FixtureRequest, tls_context: ssl.SSLContext) -> Iterator[OpenAIEmulator]:
    with OpenAIEmulator(ssl_context=tls_context if request.param == "https" else None) as emulator:
        yield emulator


def client_of(emulator: OpenAIEmulator, ca_bundle: str) -> llmclients.OpenAICompatible:
    verify = ca_bundle if emulator.ssl_context is not None else True
    return llmclients.OpenAICompatible(base_url=emulator.base_url, model="m", max_retries=0, verify=verify)


@pytest.mark.parametrize("framing", ["chunked", "close"])
def test_interrupt_wakes_a_read_blocked_in_another_thread(
    emulator: OpenAIEmulator, ca_bundle: str, framing: str
) -> None:
    # The server stalls 30 s after the first delta: only the interrupt can end the read.
    emulator.enqueue(Reply(text="first then more", framing=framing, stall=4.0, stall_after=2))
    with client_of(emulator, ca_bundle).stream("hi") as stream:
        assert next(stream) == "first "
        raised: List[BaseException] = []
        got: List[str] = []

        def read() -> None:
            try:
                got.append(next(stream))
            except BaseException as exc:  # the assertion below names it
                raised.append(exc)

        reader = threading.Thread(target=read)
        reader.start()
        time.sleep(0.2)  # the reader is (most likely) inside recv; either way it must end
        assert stream.interrupt() is True
        reader.join(10)
        assert not reader.is_alive()
    assert got == [] and len(raised) == 1 and isinstance(raised[0], errors.StreamInterruptedError)
    assert raised[0].partial_text == "first "
    assert stream.interrupt() is False  # once is enough


def test_interrupt_refuses_once_the_connection_is_back_in_the_pool(
    emulator: OpenAIEmulator, ca_bundle: str, patient_reuse: None
) -> None:
    emulator.enqueue(Reply(text="one two"))
    emulator.enqueue(Reply(text="three four"))
    client = client_of(emulator, ca_bundle)
    first = client.stream("hi")
    assert first.completion().text == "one two"
    assert first.interrupt() is False  # its connection may now serve another request
    # The pooled connection was not shut down: the next call reuses it and succeeds.
    assert client.stream("again").completion().text == "three four"
    assert emulator.connections_accepted == 1
