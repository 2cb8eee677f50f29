"""HTTPS against the emulator with the test CA (certs/README): verification
is on by default, and streams read the same over TLS, blocking or by the
asyncio wrapper's loop."""

from __future__ import annotations

import asyncio
import time
from typing import List

import pytest

import llmclients
from llmclients.aio import AsyncClient
from llmclients.aio import _pool as pool
from llmclients.testing import OpenAIEmulator, Reply

MODEL = "m"
WORDS = [f"w{i} " for i in range(8)]


def test_certificates_are_verified_by_default(https_emulator: OpenAIEmulator) -> None:
    client = llmclients.OpenAICompatible(base_url=https_emulator.base_url, model=MODEL, max_retries=0)
    with pytest.raises(llmclients.ConnectError, match=r"TLS failed for https://127\.0\.0\.1") as raised:
        client.complete("Hi")
    assert "certificate verify failed" in str(raised.value)
    assert https_emulator.requests == []  # nothing was sent to a server we could not trust


@pytest.mark.usefixtures("patient_reuse")
def test_a_tls_connection_is_reused(https_emulator: OpenAIEmulator, ca_bundle: str) -> None:
    https_emulator.enqueue(*[Reply(deltas=WORDS, delay=0.002) for _ in range(3)])
    client = llmclients.OpenAICompatible(base_url=https_emulator.base_url, model=MODEL, verify=ca_bundle)
    assert [client.complete("Hi").text for _ in range(3)] == ["".join(WORDS)] * 3
    assert https_emulator.connections_accepted == 1


def test_the_loop_reads_a_tls_stream(https_emulator: OpenAIEmulator, ca_bundle: str) -> None:
    https_emulator.enqueue(Reply(deltas=WORDS, delay=0.02))
    client = llmclients.OpenAICompatible(base_url=https_emulator.base_url, model=MODEL, verify=ca_bundle)
    midway: List[int] = []

    async def main() -> str:
        async with AsyncClient(client).stream("Hi") as stream:
            async for _ in stream:
                if len(stream.text.split()) == 3:
                    midway.append(pool.THREADS.busy)
            return stream.text

    assert asyncio.run(main()) == "".join(WORDS)
    assert midway == [0]  # no thread read it: the loop did, without blocking


def test_cancelling_a_tls_stream_closes_its_connection(
    https_emulator: OpenAIEmulator, ca_bundle: str
) -> None:
    https_emulator.enqueue(Reply(deltas=WORDS * 10, delay=0.02))
    client = llmclients.OpenAICompatible(base_url=https_emulator.base_url, model=MODEL, verify=ca_bundle)

    async def main() -> None:
        async with AsyncClient(client).stream("Hi") as stream:
            async for _ in stream:
                if len(stream.text.split()) == 2:
                    break

    start = time.monotonic()
    asyncio.run(main())
    assert https_emulator.wait_idle()
    assert time.monotonic() - start < 5
    assert https_emulator.last_request.outcome == "client closed"
