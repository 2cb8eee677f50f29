"""Timeouts, retries, fallback and fork safety, over loopback."""

import logging
import os
import threading
import time

import pytest
import requests

import llmclients
from llmclients import errors
from llmclients.testing import OpenAIEmulator, Reply


@pytest.fixture
def emulator():
    with OpenAIEmulator() as emulator:
        yield emulator


def make(emulator, **kwargs):
    kwargs.setdefault("model", "m")
    client = llmclients.OpenAICompatible(base_url=emulator.base_url, **kwargs)
    client.transport.sleep = lambda seconds: None  # backoff waits are not what these tests measure
    return client


# --- Timeout ------------------------------------------------------------------------------


def test_timeout_coerces_numbers_and_pairs():
    assert llmclients.Timeout.coerce(5) == llmclients.Timeout(5, 5)
    assert llmclients.Timeout.coerce((2, 30)) == llmclients.Timeout(2, 30)
    assert llmclients.Timeout.coerce(None) == llmclients.Timeout(None, None, total=None)  # no limit at all
    with pytest.raises(errors.InvalidRequestError):
        llmclients.Timeout(read=0)


def test_idle_timeout_fires_while_keepalives_keep_coming(emulator):
    # Pings every 50 ms keep the socket busy, so a read timeout never fires;
    # only the idle timeout, which pings do not reset, can end the wait.
    emulator.enqueue(Reply(deltas=["a", "b"], stall=5, stall_after=3, keepalive=0.05))
    client = make(emulator, timeout=llmclients.Timeout(connect=1, read=1, idle=0.4))
    started = time.monotonic()
    with pytest.raises(errors.IdleTimeout) as caught:
        client.complete("Hi")
    elapsed = time.monotonic() - started
    assert 0.35 < elapsed < 3  # long before the 5 s stall ends, however loaded the machine
    assert caught.value.partial_text == "ab"
    assert emulator.wait_idle()


def test_idle_timeout_is_reset_by_each_delta(emulator):
    # 1.1 s in all, never 0.5 s without text (the finish, usage and [DONE] events are paced too)
    emulator.enqueue(Reply(deltas=["a"] * 8, delay=0.1))
    client = make(emulator, timeout=llmclients.Timeout(idle=0.5))
    assert client.complete("Hi").text == "a" * 8


def test_idle_timeout_fires_on_silence_too(emulator):
    emulator.enqueue(Reply(deltas=["a"], stall=5, stall_after=2))
    client = make(emulator, timeout=llmclients.Timeout(read=10, idle=0.3))
    started = time.monotonic()
    with pytest.raises(errors.IdleTimeout):
        client.complete("Hi")
    assert time.monotonic() - started < 3  # the stall lasts 5 s


def test_total_timeout_bounds_a_slow_but_steady_stream(emulator):
    emulator.enqueue(Reply(deltas=["x"] * 100, delay=0.05))  # 5 s in all
    client = make(emulator, timeout=llmclients.Timeout(read=1, idle=1, total=0.5))
    started = time.monotonic()
    with pytest.raises(errors.TotalTimeout) as caught:
        client.complete("Hi")
    assert time.monotonic() - started < 3  # the stream takes 5 s
    assert caught.value.partial_text.startswith("x")
    assert isinstance(caught.value, TimeoutError)


def test_total_timeout_includes_the_wait_for_headers(emulator):
    emulator.enqueue(Reply(head_delay=5))
    client = make(emulator, timeout=llmclients.Timeout(read=10, total=0.4), max_retries=0)
    started = time.monotonic()
    with pytest.raises(errors.TotalTimeout):
        client.complete("Hi")
    assert time.monotonic() - started < 3  # the headers come after 5 s


def test_no_retry_wait_beyond_the_total_deadline(emulator):
    emulator.enqueue(Reply(status=503, body="busy", headers={"Retry-After": "30"}))
    client = llmclients.OpenAICompatible(
        base_url=emulator.base_url, model="m", timeout=llmclients.Timeout(total=2)
    )
    started = time.monotonic()
    with pytest.raises(errors.ServerError):
        client.complete("Hi")
    assert time.monotonic() - started < 10  # not the 30 s Retry-After asks for
    assert len(emulator.requests) == 1


# --- Retry ----------------------------------------------------------------------------------


def test_retry_is_urllib3_retry_with_a_budget():
    import urllib3

    retry = llmclients.Retry(total=3, backoff_factor=0.5, budget=30)
    assert isinstance(retry, urllib3.util.Retry)
    assert retry.increment("POST", "/x", error=urllib3.exceptions.ConnectTimeoutError()).budget == 30


def test_a_reset_before_the_first_delta_is_retried(emulator, caplog):
    emulator.enqueue(Reply(raw=b"data: {", framing="close", drop_after=3, reset=True))
    client = make(emulator, retry=llmclients.Retry(total=2))
    with caplog.at_level(logging.INFO, logger="llmclients"):
        reply = client.complete("Hi")
    assert reply.text.endswith("You said: Hi")
    assert len(emulator.requests) == 2
    assert [r.getMessage() for r in caplog.records if "retrying" in r.getMessage()]


def test_never_retried_after_the_first_delta(emulator):
    body = b'data: {"choices": [{"index": 0, "delta": {"content": "Hel"}}]}\n\n'
    emulator.enqueue(Reply(raw=[body, b"data: {"], framing="close", drop_after=len(body) + 3))
    client = make(emulator, retry=llmclients.Retry(total=5))
    with pytest.raises(errors.StreamInterruptedError) as caught:
        client.complete("Hi")
    assert caught.value.partial_text == "Hel"
    assert len(emulator.requests) == 1


def test_connection_refused_is_retried_then_raised():
    import socket

    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    client = llmclients.OpenAICompatible(base_url=f"http://127.0.0.1:{port}/v1", model="m", max_retries=2)
    waits = []
    client.transport.sleep = waits.append
    with pytest.raises(errors.ConnectError):
        client.complete("Hi")
    assert len(waits) == 2


class Overloaded(llmclients.OpenAICompatible):
    retry_statuses = frozenset({529})  # as Anthropic's API answers when it is overloaded


def test_a_provider_s_own_retry_status_is_retried(emulator):
    emulator.enqueue(Reply(status=529, body={"error": {"message": "overloaded"}}), Reply(text="after all"))
    client = Overloaded(base_url=emulator.base_url, model="m", max_retries=1)
    waits = []
    client.transport.sleep = waits.append
    assert client.complete("Hi").text == "after all"
    assert len(waits) == 1 and len(emulator.requests) == 2


def test_a_status_no_one_retries_is_raised_at_once(emulator):
    emulator.enqueue(Reply(status=529, body={"error": {"message": "overloaded"}}), Reply(text="after all"))
    with pytest.raises(errors.ServerError) as caught:
        make(emulator, max_retries=1).complete("Hi")
    assert caught.value.status_code == 529
    assert len(emulator.requests) == 1


def test_retry_budget_stops_retries(emulator):
    for _ in range(5):
        emulator.enqueue(Reply(status=503, body="busy", headers={"Retry-After": "2"}))
    client = make(emulator, retry=llmclients.Retry(total=5, budget=3))
    with pytest.raises(errors.ServerError):
        client.complete("Hi")
    assert len(emulator.requests) == 2  # one wait of 2 s fits the budget of 3, a second does not


def test_retry_after_is_honoured(emulator):
    emulator.enqueue(
        Reply(status=429, body={"error": {"message": "slow down"}}, headers={"Retry-After": "1.5"})
    )
    client = make(emulator, retry=llmclients.Retry(total=1, backoff_factor=0))
    waits = []
    client.transport.sleep = waits.append
    assert client.complete("Hi").text
    assert waits == [1.5]


# --- Fallback ------------------------------------------------------------------------------


def test_fallback_moves_on_when_a_client_fails_before_its_first_delta():
    with OpenAIEmulator() as broken, OpenAIEmulator() as working:
        broken.enqueue(Reply(status=500, body={"error": {"message": "down"}}))
        working.enqueue(Reply(text="from the second"))
        chain = llmclients.Fallback([make(broken, max_retries=0), make(working)])
        with chain.stream("Hi") as stream:
            assert "".join(stream) == "from the second"
        assert stream.provider == "openai"
        assert stream.finish_reason == "stop"
        assert len(working.requests) == 1


def test_fallback_does_not_switch_after_text():
    with OpenAIEmulator() as first, OpenAIEmulator() as second:
        body = b'data: {"choices": [{"index": 0, "delta": {"content": "Par"}}]}\n\n'
        first.enqueue(Reply(raw=[body, b"data: {"], framing="close", drop_after=len(body) + 3))
        chain = llmclients.Fallback([make(first), make(second)])
        with pytest.raises(errors.StreamInterruptedError) as caught:
            chain.complete("Hi")
        assert caught.value.partial_text == "Par"
        assert not second.requests


def test_fallback_lists_every_failure():
    with OpenAIEmulator() as a, OpenAIEmulator() as b:
        a.enqueue(Reply(status=401, body={"error": {"message": "bad key"}}))
        b.enqueue(Reply(status=404, body={"error": {"message": "no such model"}}))
        with pytest.raises(errors.FallbackError) as caught:
            llmclients.Fallback([make(a), make(b)]).complete("Hi")
    message = str(caught.value)
    assert "all 2 clients failed" in message
    assert "AuthenticationError" in message and "bad key" in message
    assert "NotFoundError" in message and "no such model" in message
    assert [type(e) for _, e in caught.value.errors] == [errors.AuthenticationError, errors.NotFoundError]


# --- threads and fork ---------------------------------------------------------------------


def test_one_client_shared_by_threads(emulator):
    client = make(emulator)
    results, failures = [], []

    def ask(n):
        try:
            results.append(client.complete(f"question {n}").text)
        except Exception as exc:  # pragma: no cover - reported below
            failures.append(exc)

    threads = [threading.Thread(target=ask, args=(n,)) for n in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(10)
    assert not failures
    assert sorted(results) == sorted(
        f"This is the llmclients emulator speaking the OpenAI chat completions protocol. You said: question {n}"
        for n in range(8)
    )


@pytest.mark.usefixtures("patient_reuse")
@pytest.mark.parametrize("pool_size, connections", [(None, 30), (5, 30 + 25)])
def test_pool_size_is_how_many_connections_are_kept(emulator, caplog, pool_size, connections):
    # 30 streams at once, twice: by default every connection is kept for the
    # second round; with pool_size=5, five are, and 25 are opened again.
    client = make(emulator, pool_size=pool_size)
    together = threading.Barrier(30, timeout=10)
    failures = []

    def stream():
        try:
            with client.stream("Hi") as reply:
                next(reply)
                together.wait()  # all 30 are open now
                "".join(reply)
        except Exception as exc:  # pragma: no cover - reported below
            failures.append(exc)

    for _ in range(2):
        threads = [threading.Thread(target=stream) for _ in range(30)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(20)
    assert not failures
    assert emulator.connections_accepted == connections
    full = [r for r in caplog.records if "pool is full" in r.getMessage()]
    assert len(full) == (0 if pool_size is None else 2 * 25)


def test_pool_size_applies_to_the_clients_own_session_only(emulator):
    with pytest.raises(errors.InvalidRequestError, match=r"mount a requests\.adapters\.HTTPAdapter"):
        make(emulator, pool_size=20, session=requests.Session())
    with pytest.raises(errors.InvalidRequestError, match="at least 1"):
        make(emulator, pool_size=0)


@pytest.mark.usefixtures("patient_reuse")
@pytest.mark.skipif(not hasattr(os, "fork"), reason="needs os.fork")
def test_after_fork_the_child_opens_its_own_connection(emulator):
    client = make(emulator)
    client.complete("parent")  # leaves a pooled connection
    assert emulator.connections_accepted == 1
    pid = os.fork()
    if pid == 0:  # the child: exit status says whether it worked
        try:
            ok = client.complete("child").text.endswith("child")
        except BaseException:
            ok = False
        os._exit(0 if ok else 1)
    _, status = os.waitpid(pid, 0)
    assert os.waitstatus_to_exitcode(status) == 0
    assert emulator.connections_accepted == 2  # the child did not reuse the parent's socket
    assert client.complete("parent again").text  # and the parent's pooled socket still works
    assert emulator.connections_accepted == 2


# --- proxies from the environment -------------------------------------------------------


def test_http_proxy_from_the_environment_is_used(monkeypatch):
    with OpenAIEmulator() as proxy, OpenAIEmulator() as server:
        monkeypatch.setenv("HTTP_PROXY", proxy.url)
        monkeypatch.delenv("NO_PROXY", raising=False)
        monkeypatch.delenv("no_proxy", raising=False)
        client = make(server, max_retries=0)
        with pytest.raises(errors.NotFoundError):  # the "proxy" is an emulator: it refuses the absolute URL
            client.complete("Hi")
        assert proxy.last_request.path == server.base_url + "/chat/completions"
        assert not server.requests


def test_no_proxy_from_the_environment_is_honoured(monkeypatch):
    with OpenAIEmulator() as proxy, OpenAIEmulator() as server:
        monkeypatch.setenv("HTTP_PROXY", proxy.url)
        monkeypatch.setenv("NO_PROXY", "127.0.0.1")
        assert make(server).complete("Hi").text
        assert not proxy.requests
