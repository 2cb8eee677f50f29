"""``Timeout.total`` covers the whole call: a server that drips its status
line and headers, its TLS handshake, its body or an error's body one byte at a
time is cut off at the total, blocking and asyncio, by the one shared
watchdog thread. The bounds below leave a loaded 2-core machine a second of
slack; ``benchmarks/bench_deadline.py`` prints the real figures."""

from __future__ import annotations

import asyncio
import json
import multiprocessing
import os
import subprocess
import sys
import threading
import time
import warnings
from typing import Iterator

import pytest
import requests
from raw_server import RawServer

import llmclients
from llmclients import errors
from llmclients._http.config import DEFAULT_TOTAL
from llmclients._http.watchdog import WATCHDOG, InterruptibleAdapter
from llmclients.aio import AsyncClient
from llmclients.testing import EMULATORS, OpenAIEmulator, Reply, wire_sample

SLACK = 1.5  # on top of the total: the watchdog fires at the total, the rest is a loaded machine
HEAD_DRIP = b"HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\nX-Drip: " + b"a" * 100_000


#: The registry's providers (those with an emulator, whose wire sample names a model where needed).
PROVIDERS = list(EMULATORS)


def make(url: str, provider: str = "openai", **timeout: float) -> llmclients.Provider:
    # A provider without a default model (OpenAI-compatible) is asked for its wire sample's.
    sample_model = wire_sample(provider).model
    model = {"model": sample_model} if sample_model else {}
    return llmclients.get_client(
        provider, base_url=url, timeout=llmclients.Timeout(**timeout), max_retries=2, **model
    )


def raises_total_timeout_in_time(client: llmclients.Provider, total: float) -> float:
    started = time.monotonic()
    with pytest.raises(errors.TotalTimeout, match=f"total timeout of {total}s"):
        client.complete("Hi")
    elapsed = time.monotonic() - started
    assert total - 0.1 <= elapsed < total + SLACK
    return elapsed


@pytest.mark.parametrize(
    ("provider", "interval", "total"),
    [("openai", 0.05, 2.0), ("openai", 0.2, 3.0), *[(p, 0.05, 1.0) for p in PROVIDERS if p != "openai"]],
)
def test_total_bounds_a_status_line_and_headers_dripped(provider: str, interval: float, total: float) -> None:
    with RawServer(drip=HEAD_DRIP, interval=interval) as server:
        raises_total_timeout_in_time(make(server.url, provider, read=1, total=total), total)
        assert server.connections == 1  # a TotalTimeout is not retried
        deadline = time.monotonic() + 5
        while not server.closed_at and time.monotonic() < deadline:
            time.sleep(0.02)
        assert server.closed_at, "the client kept the dripping connection open"


def test_a_session_passed_in_is_interrupted_with_the_adapter_mounted() -> None:
    session = requests.Session()
    session.mount("http://", InterruptibleAdapter())
    with RawServer(drip=HEAD_DRIP, interval=0.05) as server, session:
        client = llmclients.OpenAICompatible(
            base_url=server.url, model="m", session=session, timeout=llmclients.Timeout(read=1, total=1)
        )
        raises_total_timeout_in_time(client, 1)


def test_total_bounds_a_tls_handshake_dripped() -> None:
    # A TLS record header announcing 16 KiB, then its bytes one at a time:
    # the handshake waits for the whole record, each byte restarting the read timeout.
    record = b"\x16\x03\x03\x3f\xff" + b"\x00" * 16_000
    with RawServer(drip=record, interval=0.05, read_request=False) as server:
        url = f"https://127.0.0.1:{server.port}"
        raises_total_timeout_in_time(make(url, connect=10, read=10, total=2), 2)
        assert server.connections == 1


@pytest.mark.parametrize("provider", PROVIDERS)
@pytest.mark.parametrize("framing", ["close", "chunked"])
def test_total_bounds_a_body_dripped(framing: str, provider: str) -> None:
    # One line that never ends: no event for the SSE and NDJSON decoders, a
    # delta per byte for Aura's raw text; either way the total cuts it off.
    total = 2.0 if provider == "openai" else 1.0
    if framing == "chunked":
        head = b"HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\nTransfer-Encoding: chunked\r\n\r\n"
        drip = b"1\r\na\r\n" * 2000
    else:
        head = b"HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\nConnection: close\r\n\r\n"
        drip = b"a" * 5000
    with RawServer(head=head, drip=drip, interval=0.05) as server:
        raises_total_timeout_in_time(make(server.url, provider, read=1, total=total), total)


@pytest.mark.parametrize("provider", PROVIDERS)
def test_total_bounds_an_error_body_dripped(provider: str) -> None:
    total = 2.0 if provider == "openai" else 1.0
    head = b"HTTP/1.1 500 Internal Server Error\r\nContent-Type: text/plain\r\nContent-Length: 60000\r\n\r\n"
    with RawServer(head=head, drip=b"e" * 60_000, interval=0.05) as server:
        raises_total_timeout_in_time(make(server.url, provider, read=1, total=total), total)
        assert server.connections == 1


def test_asyncio_total_bounds_dripped_headers() -> None:
    with RawServer(drip=HEAD_DRIP, interval=0.05) as server:
        aclient = AsyncClient(make(server.url, read=1, total=2))

        async def main() -> float:
            started = time.monotonic()
            with pytest.raises(errors.TotalTimeout):
                await aclient.complete("Hi")
            return time.monotonic() - started

        assert 1.9 <= asyncio.run(main()) < 2 + SLACK


def test_asyncio_total_bounds_a_body_the_loop_reads() -> None:
    head = b"HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\nTransfer-Encoding: chunked\r\n\r\n"
    with RawServer(head=head, drip=b"1\r\na\r\n" * 2000, interval=0.05) as server:
        aclient = AsyncClient(make(server.url, read=1, total=2))

        async def main() -> float:
            started = time.monotonic()
            with pytest.raises(errors.TotalTimeout):
                await aclient.complete("Hi")
            return time.monotonic() - started

        assert 1.9 <= asyncio.run(main()) < 2 + SLACK


def _drip_in_child(url: str, results: multiprocessing.Queue[str]) -> None:
    try:
        make(url, read=1, total=1).complete("Hi")
        results.put("no error")
    except errors.LLMClientError as exc:
        results.put(type(exc).__name__)


def test_a_forked_child_has_a_watchdog_of_its_own() -> None:
    if "fork" not in multiprocessing.get_all_start_methods():
        pytest.skip("no fork on this platform")
    with RawServer(drip=HEAD_DRIP, interval=0.05) as server:
        raises_total_timeout_in_time(make(server.url, read=1, total=1), 1)  # the parent's thread runs
        context = multiprocessing.get_context("fork")
        results: multiprocessing.Queue[str] = context.Queue()
        child = context.Process(target=_drip_in_child, args=(server.url, results))
        child.start()
        try:
            assert results.get(timeout=1 + SLACK + 2) == "TotalTimeout"
        finally:
            child.join(5)
            if child.is_alive():
                child.kill()
                child.join(5)


def test_a_call_done_in_time_leaves_its_connection_alone() -> None:
    """The watchdog forgets a call that ended: the pooled connection it used
    serves the next call after the first one's total has passed."""
    with OpenAIEmulator() as emulator:
        emulator.enqueue(Reply(deltas=["one"]), Reply(deltas=["two"]))
        client = make(emulator.base_url, total=2)
        assert client.complete("Hi").text == "one"
        time.sleep(2.2)
        assert client.complete("Hi").text == "two"
        assert emulator.connections_accepted == 1


def test_one_watchdog_thread_serves_concurrent_calls() -> None:
    with RawServer(drip=HEAD_DRIP, interval=0.05) as server:
        client = make(server.url, read=1, total=1)
        failures = []

        def call() -> None:
            try:
                client.complete("Hi")
            except errors.LLMClientError as exc:
                failures.append(exc)

        threads = [threading.Thread(target=call) for _ in range(4)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(10)
        assert [type(exc) for exc in failures] == [errors.TotalTimeout] * 4
        assert server.connections == 4
        watchdogs = [t for t in threading.enumerate() if t.name == "llmclients-watchdog"]
        assert len(watchdogs) == 1


def test_the_watchdog_forgets_calls_that_ended() -> None:
    """Calls that end long before their deadline do not pile up in its heap."""
    for _ in range(5000):
        with WATCHDOG.guard(time.monotonic() + 600) as guard:
            pass
        assert not guard.fired
    assert len(WATCHDOG._heap) <= 2 * WATCHDOG.COMPACT_AFTER + 10


def test_the_default_total_is_600_seconds_and_none_switches_it_off() -> None:
    assert DEFAULT_TOTAL == 600
    assert llmclients.Timeout().total == 600
    assert llmclients.Timeout.coerce(30).total == 600
    assert llmclients.Timeout.coerce((5, 30)).total == 600
    assert llmclients.Timeout.coerce(None).total is None
    assert llmclients.Timeout(total=None).total is None


@pytest.fixture
def no_total_emulator() -> Iterator[OpenAIEmulator]:
    with OpenAIEmulator() as emulator:
        yield emulator


def test_a_call_without_a_total_streams(no_total_emulator: OpenAIEmulator) -> None:
    no_total_emulator.enqueue(Reply(deltas=["a", "b"]))
    client = llmclients.OpenAICompatible(
        base_url=no_total_emulator.base_url, model="m", timeout=llmclients.Timeout(total=None)
    )
    assert client.complete("Hi").text == "ab"


# Run in a process of its own, which has no thread but llmclients': the
# emulator serving it runs in the test's process. Its own hook before fork is
# registered before llmclients is imported, so it runs after llmclients' (the
# hooks before a fork run last registered first), and sees the threads alive
# at the fork itself: the ones Python 3.12+ warns about.
FORK_SCRIPT = """
import json, os, sys, threading, warnings

at_fork = []
os.register_at_fork(before=lambda: at_fork.append([t.name for t in threading.enumerate()]))

import llmclients

def ask(client):
    return client.complete("Hi").text

def ours():
    return [t.name for t in threading.enumerate() if t.name.startswith("llmclients")]

client = llmclients.OpenAICompatible(base_url=sys.argv[1], model="m", timeout=llmclients.Timeout(total=30))
report = {"before": ask(client), "alive_before": ours()}
with warnings.catch_warnings(record=True) as caught:
    warnings.simplefilter("always")
    pid = os.fork()
if pid == 0:
    os._exit(0 if ask(client) == "an answer" and not ours()[1:] else 3)
report.update(at_fork=at_fork[0], warnings=[str(w.message) for w in caught], after_fork=ours())
report.update(after=ask(client), alive_after=ours())
report["child_exit"] = os.waitstatus_to_exitcode(os.waitpid(pid, 0)[1])
print(json.dumps(report))
"""


@pytest.mark.skipif(not hasattr(os, "fork"), reason="no fork on this platform")
def test_no_thread_of_llmclients_is_alive_at_fork_and_clients_work_on_both_sides() -> None:
    with OpenAIEmulator(default_reply=Reply(deltas=["an ", "answer"])) as emulator:
        result = subprocess.run(
            [sys.executable, "-c", FORK_SCRIPT, emulator.base_url],
            capture_output=True,
            text=True,
            timeout=60,
            env={**os.environ, "NO_PROXY": "127.0.0.1"},
        )
    assert result.returncode == 0, result.stderr
    report = json.loads(result.stdout)
    assert report["before"] == report["after"] == "an answer"
    assert report["alive_before"] == ["llmclients-watchdog"]  # a call with a total started it
    assert report["at_fork"] == ["MainThread"]  # stopped for the fork,
    assert report["after_fork"] == []  # not started again for no call (Python 3.13 counts threads here),
    assert report["alive_after"] == ["llmclients-watchdog"]  # but by the next call
    assert report["warnings"] == []  # Python 3.12+: no "This process is multi-threaded"
    assert report["child_exit"] == 0  # the child's call worked, with a watchdog of its own


@pytest.mark.skipif(not hasattr(os, "fork"), reason="no fork on this platform")
def test_a_call_in_flight_across_a_fork_keeps_its_total() -> None:
    with RawServer(drip=HEAD_DRIP, interval=0.05) as server:
        client = make(server.url, read=1, total=1)
        failures: list = []

        def call() -> None:
            try:
                client.complete("Hi")
            except errors.LLMClientError as exc:
                failures.append(exc)

        caller = threading.Thread(target=call)
        started = time.monotonic()
        caller.start()
        deadline = started + 10
        while not any(not entry[2].done for entry in WATCHDOG._heap):  # the call's guard is armed
            assert time.monotonic() < deadline
            time.sleep(0.01)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", DeprecationWarning)  # this process has threads: the caller's
            pid = os.fork()
        if pid == 0:
            os._exit(0)
        os.waitpid(pid, 0)
        caller.join(10)
        assert [type(exc) for exc in failures] == [errors.TotalTimeout]
        assert time.monotonic() - started < 1 + SLACK
