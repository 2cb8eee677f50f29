"""Failures that would fail the same way again are raised at once, never
retried: a certificate that fails verification, a response head that is not
valid HTTP (a line over 64 KiB, more than 100 headers, garbage), an invalid
URL. Each test counts the connections the server saw."""

from __future__ import annotations

import time

import pytest
from raw_server import RawServer

import llmclients
from llmclients import errors
from llmclients.testing import OpenAIEmulator

PROVIDERS = ["openai", "autonomous", "allenai", "aura"]


def client_for(provider: str, url: str) -> llmclients.Provider:
    model = {"model": "m"} if provider == "openai" else {}  # an OpenAI-compatible server has no default
    return llmclients.get_client(provider, base_url=url, max_retries=2, **model)


@pytest.mark.parametrize("provider", PROVIDERS)
def test_a_certificate_that_fails_verification_costs_one_handshake(
    https_emulator: OpenAIEmulator, provider: str
) -> None:
    client = client_for(provider, https_emulator.base_url)
    with pytest.raises(errors.CertificateError, match="certificate verify failed") as raised:
        client.complete("Hi")
    assert isinstance(raised.value, errors.ConnectError)
    assert "verify=" in str(raised.value)  # says how to fix it
    deadline = time.monotonic() + 2
    while https_emulator.connections_accepted < 1 and time.monotonic() < deadline:
        time.sleep(0.01)
    time.sleep(0.2)  # a retry would have connected again by now
    assert https_emulator.connections_accepted == 1
    assert https_emulator.requests == []


@pytest.mark.parametrize(
    "head",
    [
        b"HTTP/1.1 200 OK\r\nX-Long: " + b"a" * 70_000 + b"\r\n\r\n",
        b"HTTP/1.1 200 OK\r\n" + b"".join(b"X-H%d: v\r\n" % i for i in range(150)) + b"\r\n",
        b"SSH-2.0-OpenSSH_9.2\r\n\r\n",
    ],
    ids=["line-over-64KiB", "150-headers", "not-http"],
)
@pytest.mark.parametrize("provider", PROVIDERS)
def test_an_invalid_response_head_is_not_retried(head: bytes, provider: str) -> None:
    with RawServer(head=head) as server:
        client = client_for(provider, server.url)
        with pytest.raises(errors.InvalidResponseError, match="not valid HTTP"):
            client.complete("Hi")
        assert server.connections == 1


@pytest.mark.parametrize(
    ("base_url", "problem"),
    [
        ("127.0.0.1:8080/v1", "no scheme"),
        ("localhost/v1", "no scheme"),
        ("ftp://127.0.0.1:8080/v1", "requests cannot send ftp://"),
    ],
)
def test_an_invalid_url_is_refused_before_sending(base_url: str, problem: str) -> None:
    client = llmclients.OpenAICompatible(base_url=base_url, model="m", max_retries=2)
    with pytest.raises(errors.InvalidRequestError, match=problem) as raised:
        client.complete("Hi")
    assert "http:// or https://" in str(raised.value)


def test_a_connection_refused_is_still_retried() -> None:
    """The transient failures keep their retries (a closed port: refused each time)."""
    with RawServer() as server:
        url = server.url
    sleeps = []
    client = llmclients.OpenAICompatible(
        base_url=url, model="m", retry=llmclients.Retry(total=2, backoff_factor=0)
    )
    client.transport.sleep = sleeps.append
    with pytest.raises(errors.ConnectError) as raised:
        client.complete("Hi")
    assert type(raised.value) is errors.ConnectError
    assert len(sleeps) == 2
