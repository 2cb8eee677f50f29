"""Real proxies on loopback: tinyproxy (HTTP, with BasicAuth) and microsocks
(SOCKS5, with a username and password), each started here on a free port
and stopped at the end of its test; skipped when the binary is absent.

A :class:`~raw_server.CountingRelay` in front of each proxy counts the
connections the client made: a refused login is one attempt, never retried,
and raises ``ProxyAuthenticationError`` (a ``ProxyError``) whatever the proxy
kind, whatever the status the proxy chose (407, or tinyproxy's 401)."""

from __future__ import annotations

import shutil
import socket
import subprocess
import time
from pathlib import Path
from typing import Iterator, List

import pytest
import requests
from raw_server import CountingRelay

import llmclients
from llmclients import errors
from llmclients.testing import OpenAIEmulator, Reply

USER, PASSWORD = "llm", "s3cret-proxy-pass"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def run_proxy(command: List[str], port: int) -> Iterator[CountingRelay]:
    """Start ``command`` (listening on ``port``), wait until it accepts, and
    yield a counting relay in front of it; stop both afterwards."""
    process = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 10
        while True:
            try:
                socket.create_connection(("127.0.0.1", port), timeout=1).close()
                break
            except OSError:
                if process.poll() is not None or time.monotonic() > deadline:
                    pytest.fail(f"{command[0]} did not start (exit status {process.poll()})")
                time.sleep(0.05)
        with CountingRelay(port) as relay:
            yield relay
    finally:
        process.terminate()
        try:
            process.wait(5)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(5)


@pytest.fixture
def tinyproxy(tmp_path: Path) -> Iterator[CountingRelay]:
    binary = shutil.which("tinyproxy")
    if binary is None:
        pytest.skip("tinyproxy is not installed (apt-get install tinyproxy)")
    port = free_port()
    config = tmp_path / "tinyproxy.conf"
    config.write_text(
        f"Port {port}\nListen 127.0.0.1\nTimeout 30\nMaxClients 20\n"
        f"Allow 127.0.0.1\nBasicAuth {USER} {PASSWORD}\nLogLevel Critical\n"
    )
    yield from run_proxy([binary, "-d", "-c", str(config)], port)


@pytest.fixture
def microsocks() -> Iterator[CountingRelay]:
    binary = shutil.which("microsocks")
    if binary is None:
        pytest.skip("microsocks is not installed (apt-get install microsocks)")
    pytest.importorskip("socks", reason="PySocks is not installed (pip install 'requests[socks]')")
    port = free_port()
    yield from run_proxy([binary, "-i", "127.0.0.1", "-p", str(port), "-u", USER, "-P", PASSWORD], port)


@pytest.fixture
def emulator() -> Iterator[OpenAIEmulator]:
    with OpenAIEmulator() as emulator:
        yield emulator


def proxy_url(scheme: str, relay: CountingRelay, credentials: str = f"{USER}:{PASSWORD}") -> str:
    userinfo = f"{credentials}@" if credentials else ""
    return f"{scheme}://{userinfo}127.0.0.1:{relay.port}"


PROVIDERS = ["openai", "autonomous", "allenai", "aura"]


def client_for(emulator: OpenAIEmulator, proxy: str, provider: str = "openai", **kwargs: object) -> llmclients.Provider:
    if provider == "openai":
        kwargs["model"] = "m"  # an OpenAI-compatible server has no default model
    return llmclients.get_client(provider, base_url=emulator.base_url, proxy=proxy, **kwargs)


# --- through the proxy ------------------------------------------------------------------


def test_an_http_proxy_carries_plain_http(tinyproxy: CountingRelay, emulator: OpenAIEmulator) -> None:
    emulator.enqueue(Reply(deltas=["via ", "tinyproxy"]))
    client = client_for(emulator, proxy_url("http", tinyproxy))
    assert client.complete("Hi").text == "via tinyproxy"
    assert tinyproxy.connections == 1 and len(emulator.requests) == 1


def test_an_http_proxy_tunnels_https(
    tinyproxy: CountingRelay, https_emulator: OpenAIEmulator, ca_bundle: str
) -> None:
    https_emulator.enqueue(Reply(deltas=["through ", "CONNECT"]))
    client = client_for(https_emulator, proxy_url("http", tinyproxy), verify=ca_bundle)
    assert client.complete("Hi").text == "through CONNECT"
    assert tinyproxy.connections == 1 and len(https_emulator.requests) == 1


@pytest.mark.parametrize("scheme", ["socks5", "socks5h"])
def test_a_socks5_proxy_carries_the_stream(
    microsocks: CountingRelay, emulator: OpenAIEmulator, scheme: str
) -> None:
    emulator.enqueue(Reply(deltas=["via ", scheme]))
    client = client_for(emulator, proxy_url(scheme, microsocks))
    assert client.complete("Hi").text == f"via {scheme}"
    assert microsocks.connections == 1 and len(emulator.requests) == 1


def test_a_socks5_proxy_tunnels_https(
    microsocks: CountingRelay, https_emulator: OpenAIEmulator, ca_bundle: str
) -> None:
    https_emulator.enqueue(Reply(deltas=["tls over socks"]))
    client = client_for(https_emulator, proxy_url("socks5h", microsocks), verify=ca_bundle)
    assert client.complete("Hi").text == "tls over socks"
    assert microsocks.connections == 1


def test_all_proxy_from_the_environment(
    microsocks: CountingRelay, emulator: OpenAIEmulator, monkeypatch: pytest.MonkeyPatch
) -> None:
    for name in ("NO_PROXY", "no_proxy", "HTTP_PROXY", "http_proxy", "HTTPS_PROXY", "https_proxy"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("ALL_PROXY", proxy_url("socks5", microsocks))
    emulator.enqueue(Reply(deltas=["from ALL_PROXY"]))
    client = llmclients.OpenAICompatible(base_url=emulator.base_url, model="m")
    assert client.complete("Hi").text == "from ALL_PROXY"
    assert microsocks.connections == 1


def test_https_proxy_from_the_environment(
    tinyproxy: CountingRelay, https_emulator: OpenAIEmulator, ca_bundle: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    for name in ("NO_PROXY", "no_proxy", "ALL_PROXY", "all_proxy", "https_proxy"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("HTTPS_PROXY", proxy_url("http", tinyproxy))
    https_emulator.enqueue(Reply(deltas=["from HTTPS_PROXY"]))
    client = llmclients.OpenAICompatible(base_url=https_emulator.base_url, model="m", verify=ca_bundle)
    assert client.complete("Hi").text == "from HTTPS_PROXY"
    assert tinyproxy.connections == 1


# --- refused logins: ProxyAuthenticationError, once ----------------------------------------


def assert_refused_once(client: llmclients.Provider, relay: CountingRelay, secret: str) -> None:
    with pytest.raises(errors.ProxyAuthenticationError) as raised:
        client.complete("Hi")
    assert isinstance(raised.value, errors.ProxyError)
    assert relay.connections == 1  # not retried
    assert "credentials" in str(raised.value)
    assert secret not in str(raised.value) and secret not in repr(raised.value)


@pytest.mark.parametrize("provider", PROVIDERS)
@pytest.mark.parametrize("credentials", ["", f"{USER}:wrong-pass"], ids=["none-407", "wrong-401"])
def test_an_http_proxy_refusing_plain_http(
    tinyproxy: CountingRelay, emulator: OpenAIEmulator, credentials: str, provider: str
) -> None:
    client = client_for(emulator, proxy_url("http", tinyproxy, credentials), provider, max_retries=2)
    assert_refused_once(client, tinyproxy, "wrong-pass")
    assert emulator.requests == []


@pytest.mark.parametrize("credentials", ["", f"{USER}:wrong-pass"], ids=["none-407", "wrong-401"])
def test_an_http_proxy_refusing_the_tunnel(
    tinyproxy: CountingRelay, https_emulator: OpenAIEmulator, ca_bundle: str, credentials: str
) -> None:
    client = client_for(https_emulator, proxy_url("http", tinyproxy, credentials), verify=ca_bundle, max_retries=2)
    assert_refused_once(client, tinyproxy, "wrong-pass")
    assert https_emulator.connections_accepted == 0


@pytest.mark.parametrize("provider", PROVIDERS)
@pytest.mark.parametrize("credentials", ["", f"{USER}:wrong-pass"], ids=["none", "wrong"])
def test_a_socks5_proxy_refusing_the_login(
    microsocks: CountingRelay, emulator: OpenAIEmulator, credentials: str, provider: str
) -> None:
    client = client_for(emulator, proxy_url("socks5", microsocks, credentials), provider, max_retries=2)
    assert_refused_once(client, microsocks, "wrong-pass")
    assert emulator.connections_accepted == 0


@pytest.mark.parametrize("scheme", ["http", "socks5"])
def test_an_unreachable_proxy_is_a_proxy_error_and_retried(emulator: OpenAIEmulator, scheme: str) -> None:
    if scheme == "socks5":
        pytest.importorskip("socks", reason="PySocks is not installed (pip install 'requests[socks]')")
    sleeps: List[float] = []
    client = client_for(
        emulator, f"{scheme}://{USER}:{PASSWORD}@127.0.0.1:{free_port()}", retry=llmclients.Retry(2, 0)
    )
    client.transport.sleep = sleeps.append
    with pytest.raises(errors.ProxyError) as raised:
        client.complete("Hi")
    assert type(raised.value) is errors.ProxyError
    assert len(sleeps) == 2
    assert PASSWORD not in str(raised.value)


def test_a_service_401_through_a_proxy_stays_an_authentication_error(
    tinyproxy: CountingRelay, emulator: OpenAIEmulator
) -> None:
    emulator.enqueue(Reply(status=401, body='{"error": {"message": "bad key"}}'))
    client = client_for(emulator, proxy_url("http", tinyproxy))
    with pytest.raises(errors.AuthenticationError, match="bad key"):
        client.complete("Hi")


# --- SOCKS without PySocks --------------------------------------------------------------


def test_socks_without_pysocks_says_what_to_install(
    emulator: OpenAIEmulator, monkeypatch: pytest.MonkeyPatch
) -> None:
    def missing(*args: object, **kwargs: object) -> None:  # what requests defines when PySocks is absent
        raise requests.exceptions.InvalidSchema("Missing dependencies for SOCKS support.")

    monkeypatch.setattr(requests.adapters, "SOCKSProxyManager", missing)
    client = client_for(emulator, "socks5://127.0.0.1:1080", max_retries=2)
    with pytest.raises(errors.InvalidRequestError, match=r"pip install 'requests\[socks\]'"):
        client.complete("Hi")
    assert emulator.connections_accepted == 0
