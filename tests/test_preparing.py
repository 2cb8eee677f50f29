"""Requests prepared once per endpoint (llmclients._http.preparing) carry exactly what
``session.request`` would send: each its own body and headers, and whatever
the session holds at the time of sending, over real HTTP to an emulator."""

from __future__ import annotations

import socket
from typing import Iterator

import pytest
import requests

import llmclients
from llmclients._http.preparing import MAX_TEMPLATES, Preparer
from llmclients.testing import OpenAIEmulator, Reply


@pytest.fixture
def emulator() -> Iterator[OpenAIEmulator]:
    with OpenAIEmulator() as emulator:
        yield emulator


def client_of(emulator: OpenAIEmulator, **kwargs: object) -> llmclients.OpenAICompatible:
    return llmclients.OpenAICompatible(base_url=emulator.base_url, model="m", max_retries=0, **kwargs)  # type: ignore[arg-type]


def test_each_request_has_its_own_body_and_length(emulator: OpenAIEmulator) -> None:
    client = client_of(emulator, api_key="sk-one")
    for text in ("short", "a much longer message than the first one"):
        client.complete(text)
    first, second = emulator.requests
    assert first.json()["messages"] == [{"role": "user", "content": "short"}]
    assert second.json()["messages"] == [{"role": "user", "content": "a much longer message than the first one"}]
    for sent in (first, second):
        assert sent.headers["Content-Length"] == str(len(sent.body))
        assert sent.headers["Content-Type"] == "application/json"
        assert sent.headers["Authorization"] == "Bearer sk-one"


def test_one_clients_key_never_reaches_anothers_request(emulator: OpenAIEmulator) -> None:
    session = requests.Session()
    one = client_of(emulator, api_key="sk-one", session=session)
    other = client_of(emulator, session=session, headers={"X-Team": "b"})
    one.complete("hi")
    other.complete("hi")
    one.complete("hi")
    keys = [sent.headers.get("Authorization") for sent in emulator.requests]
    assert keys == ["Bearer sk-one", None, "Bearer sk-one"]
    assert [sent.headers.get("X-Team") for sent in emulator.requests] == [None, "b", None]


def test_a_sessions_later_headers_auth_cookies_and_hooks_are_sent(emulator: OpenAIEmulator) -> None:
    session = requests.Session()
    session.trust_env = False
    client = client_of(emulator, session=session)
    client.complete("hi")  # the template is made here
    session.headers["X-Tenant"] = "blue"
    client.complete("hi")
    session.auth = ("user", "pass")
    client.complete("hi")
    session.auth = None
    session.cookies.set("visit", "42")
    client.complete("hi")
    session.cookies.clear()
    seen = []
    session.hooks["response"].append(lambda response, **_: seen.append(response.status_code))
    client.complete("hi")
    first, tenant, auth, cookie, hooked = emulator.requests
    assert first.headers.get("X-Tenant") is None and tenant.headers["X-Tenant"] == "blue"
    assert auth.headers["Authorization"].startswith("Basic ") and "Authorization" not in cookie.headers
    assert cookie.headers["Cookie"] == "visit=42" and "Cookie" not in hooked.headers
    assert seen == [200]


def test_a_netrc_login_is_sent_as_requests_sends_it(
    emulator: OpenAIEmulator, tmp_path: object, monkeypatch: pytest.MonkeyPatch
) -> None:
    netrc = tmp_path / "netrc"  # type: ignore[operator]
    netrc.write_text("machine 127.0.0.1 login me password netrc-pass\n")
    monkeypatch.setenv("NETRC", str(netrc))
    client = client_of(emulator, session=requests.Session())  # trusts the environment
    client.complete("hi")
    assert emulator.requests[-1].headers["Authorization"].startswith("Basic ")


def test_form_and_multipart_bodies_are_prepared_by_requests(emulator: OpenAIEmulator) -> None:
    session = requests.Session()
    preparer = Preparer()
    url = emulator.base_url + "/chat/completions"
    form = preparer.prepare(session, "POST", url, {"X-A": "1"}, data={"field": "value"})
    assert form.body == "field=value" and form.headers["Content-Type"] == "application/x-www-form-urlencoded"
    upload = preparer.prepare(session, "POST", url, {"X-A": "1"}, files={"file": ("a.txt", b"hello")})
    assert upload.headers["Content-Type"].startswith("multipart/form-data; boundary=")
    bare = preparer.prepare(session, "POST", url, {"X-A": "1"})
    assert bare.body is None and bare.headers["Content-Length"] == "0"
    assert "Content-Type" not in bare.headers  # the form's and the upload's stayed theirs


def test_templates_are_bounded(emulator: OpenAIEmulator) -> None:
    session = requests.Session()
    session.trust_env = False
    preparer = Preparer()
    for n in range(3 * MAX_TEMPLATES):
        prepared = preparer.prepare(session, "POST", f"{emulator.base_url}/{n}", {}, json={"n": n})
        assert prepared.url == f"{emulator.base_url}/{n}" and prepared.body == b'{"n": %d}' % n
    assert len(preparer._templates) <= MAX_TEMPLATES


def test_a_request_after_an_error_status_is_prepared_afresh(emulator: OpenAIEmulator) -> None:
    emulator.enqueue(Reply(status=400, body={"error": {"message": "bad"}}))
    client = client_of(emulator)
    with pytest.raises(llmclients.HTTPStatusError):
        client.complete("first")
    assert client.complete("second").text
    assert emulator.requests[-1].json()["messages"][0]["content"] == "second"


def closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def test_a_sessions_later_proxies_are_used(emulator: OpenAIEmulator) -> None:
    session = requests.Session()
    session.trust_env = False
    client = client_of(emulator, session=session)
    client.complete("hi")
    session.proxies = {"http": f"http://127.0.0.1:{closed_port()}"}
    with pytest.raises(llmclients.ProxyError):
        client.complete("hi")
    assert len(emulator.requests) == 1


def test_a_session_that_trusts_the_environment_sees_it_change(
    emulator: OpenAIEmulator, monkeypatch: pytest.MonkeyPatch
) -> None:
    for name in ("NO_PROXY", "no_proxy", "HTTP_PROXY", "http_proxy", "ALL_PROXY", "all_proxy"):
        monkeypatch.delenv(name, raising=False)
    client = client_of(emulator, session=requests.Session())
    client.complete("hi")
    monkeypatch.setenv("HTTP_PROXY", f"http://127.0.0.1:{closed_port()}")
    with pytest.raises(llmclients.ProxyError):
        client.complete("hi")
    assert len(emulator.requests) == 1


def test_settings_handed_out_are_copies() -> None:
    session = requests.Session()
    session.trust_env = False
    preparer = Preparer()
    first = preparer.settings(session, "http://127.0.0.1:1/v1", {"http": "http://proxy.test:3128"}, True)
    first["proxies"]["https"] = "http://another.test:3128"
    second = preparer.settings(session, "http://127.0.0.1:1/v1", {"http": "http://proxy.test:3128"}, True)
    assert second == {"proxies": {"http": "http://proxy.test:3128"}, "stream": True, "verify": True, "cert": None}
