"""No secret in any message, repr or traceback: the API key, credential
headers, proxy credentials and a base_url's password, wherever a server
echoes them (error bodies, in-stream errors, malformed events)."""

import asyncio
import base64
import json
import socket
import threading
import traceback

import pytest

import llmclients
from llmclients import errors
from llmclients._http.masking import mask, secrets_in
from llmclients._http.transport import Request, Transport
from llmclients.aio import AsyncClient
from llmclients.testing import AllenAIEmulator, AutonomousAIEmulator, OpenAIEmulator, Reply
from llmclients.testing.openai import error_event, text_chunks

KEY = "sk-live-0123456789abcdef"
HEADERS = {
    "api-key": "azure-header-secret",
    "X-Api-Key": "xkey-header-secret",
    "Authorization": "Bearer header-bearer-secret",
    "Cookie": "session=cookie-secret-1; theme=cookie-secret-2",
    "X-Auth-Token": "auth-token-secret",
    "X-Request-Tag": "not-a-secret-at-all",
}
SECRETS = [KEY, "azure-header-secret", "xkey-header-secret", "header-bearer-secret", "cookie-secret-1",
           "cookie-secret-2", "auth-token-secret"]  # fmt: skip
ECHO = " | ".join(SECRETS)


def shown(error):
    """Everything a user or a log may see of ``error``: its str, repr, and
    the traceback's messages, of the errors it was raised from too (not the
    test's own frames, whose source shows the secrets as literals)."""
    return "\n".join([str(error), repr(error), *traceback.format_exception(type(error), error, None)])


def assert_masked(error):
    text = shown(error)
    for secret in SECRETS:
        assert secret not in text
    assert "***" in str(error)


def openai_client(emulator, **kwargs):
    return llmclients.OpenAICompatible(
        base_url=emulator.base_url, api_key=KEY, model="m", headers=HEADERS, max_retries=0, **kwargs
    )


@pytest.fixture
def emulator():
    with OpenAIEmulator() as emulator:
        yield emulator


# --- in the stream -------------------------------------------------------------------------


@pytest.mark.parametrize("form", ["data", "flat", "event", "field"])
def test_an_in_stream_error_that_echoes_the_secrets_is_masked(emulator, form):
    emulator.enqueue(
        Reply(
            events=text_chunks(["Hello "], finish_reason=None)
            + error_event(form, f"bad credentials: {ECHO}"),
            finish_reason=None,
        )
    )
    with pytest.raises(errors.ProviderError) as caught:
        for _ in openai_client(emulator).stream("Hi"):
            pass
    assert_masked(caught.value)
    assert caught.value.partial_text == "Hello "  # the reply's own text is left alone


def test_a_malformed_event_that_echoes_the_secrets_is_masked(emulator):
    emulator.enqueue(Reply(raw=f'data: {{"choices": "{ECHO}"}}\n\n'.encode()))
    with pytest.raises(errors.MalformedStreamError) as caught:
        openai_client(emulator).complete("Hi")
    assert_masked(caught.value)


def test_an_event_that_is_not_json_and_echoes_the_key_is_masked(emulator):
    emulator.enqueue(Reply(raw=f"data: {{oops {KEY}\n\n".encode()))
    with pytest.raises(errors.MalformedStreamError, match=r"\*\*\*") as caught:
        openai_client(emulator).complete("Hi")
    assert KEY not in shown(caught.value)


def test_autonomous_in_stream_error_is_masked():
    with AutonomousAIEmulator() as emulator:
        emulator.enqueue(Reply(raw=json.dumps({"error": ECHO}).join(["data: ", "\n\n"]).encode()))
        client = llmclients.AutonomousAI(
            base_url=emulator.base_url, api_key=KEY, headers=HEADERS, max_retries=0
        )
        with pytest.raises(errors.ProviderError) as caught:
            client.complete("Hi")
    assert_masked(caught.value)


def test_allenai_in_stream_error_is_masked():
    with AllenAIEmulator() as emulator:
        emulator.enqueue(Reply(raw=(json.dumps({"error": ECHO, "reason": KEY}) + "\n").encode()))
        client = llmclients.AllenAI(base_url=emulator.base_url, api_key=KEY, headers=HEADERS, max_retries=0)
        with pytest.raises(errors.ProviderError) as caught:
            client.complete("Hi")
    assert_masked(caught.value)
    assert caught.value.reason == "***"


# --- error statuses ---------------------------------------------------------------------------


def test_an_error_body_that_echoes_credential_headers_is_masked(emulator):
    emulator.enqueue(Reply(status=400, body={"error": {"message": f"bad request: {ECHO}", "param": KEY}}))
    with pytest.raises(errors.HTTPStatusError) as caught:
        openai_client(emulator).complete("Hi")
    assert_masked(caught.value)
    assert caught.value.param == "***"
    # a header that is not a credential is not masked
    assert mask("tag not-a-secret-at-all", secrets_in(headers=HEADERS)) == "tag not-a-secret-at-all"


# --- proxies and base_url credentials ----------------------------------------------------------


class EchoingProxy:
    """A raw HTTP proxy that refuses every request with a 407 whose body echoes
    the Proxy-Authorization it got (as a proxy's debug page might)."""

    def __init__(self):
        self.sock = socket.create_server(("127.0.0.1", 0))
        self.sock.settimeout(10)
        self.port = self.sock.getsockname()[1]
        self.heads = []
        self.thread = threading.Thread(target=self._serve, daemon=True)
        self.thread.start()

    def _serve(self):
        try:
            conn, _ = self.sock.accept()
        except OSError:
            return
        with conn:
            conn.settimeout(10)
            head = b""
            while b"\r\n\r\n" not in head and len(head) < 65536:
                data = conn.recv(4096)
                if not data:
                    return
                head += data
            self.heads.append(head)
            lines = head.split(b"\r\n\r\n")[0].split(b"\r\n")
            body = b"you sent: " + b" ; ".join(line for line in lines if line.lower().startswith(b"proxy-"))
            conn.sendall(
                b"HTTP/1.1 407 Proxy Authentication Required\r\nContent-Type: text/plain\r\n"
                b"Content-Length: %d\r\nConnection: close\r\n\r\n%s" % (len(body), body)
            )

    def close(self):
        self.sock.close()
        self.thread.join(10)


@pytest.mark.parametrize("given", ["argument", "environment"])
def test_proxy_credentials_echoed_by_the_proxy_are_masked(monkeypatch, given):
    proxy = EchoingProxy()
    url = f"http://proxy-user:proxy-p%40ss-word@127.0.0.1:{proxy.port}"
    for name in ("NO_PROXY", "no_proxy", "HTTPS_PROXY", "https_proxy", "ALL_PROXY", "all_proxy"):
        monkeypatch.delenv(name, raising=False)
    if given == "environment":
        monkeypatch.setenv("HTTP_PROXY", url)
    try:
        client = llmclients.OpenAICompatible(
            base_url="http://127.0.0.1:9/v1",
            api_key=KEY,
            model="m",
            max_retries=0,
            proxy=url if given == "argument" else None,
        )
        with pytest.raises(errors.LLMClientError) as caught:
            client.complete("Hi")
    finally:
        proxy.close()
    basic = base64.b64encode(b"proxy-user:proxy-p@ss-word")
    assert b"Proxy-Authorization: Basic " + basic in proxy.heads[0]  # the proxy did get them
    text = shown(caught.value)
    for secret in ("proxy-p@ss-word", "proxy-p%40ss-word", basic.decode(), KEY):
        assert secret not in text
    assert "407" in str(caught.value)


def test_proxy_credentials_never_show_when_the_proxy_is_down():
    with socket.create_server(("127.0.0.1", 0)) as closed:
        port = closed.getsockname()[1]
    client = llmclients.OpenAICompatible(
        base_url="http://127.0.0.1:9/v1",
        model="m",
        max_retries=0,
        proxy=f"http://u:proxy-secret@127.0.0.1:{port}",
    )
    with pytest.raises(errors.ConnectError) as caught:
        client.complete("Hi")
    assert "proxy-secret" not in shown(caught.value)
    assert "proxy-secret" not in repr(client) and "proxy-secret" not in repr(client.transport)


def test_base_url_credentials_beside_an_api_key_are_refused():
    with pytest.raises(errors.InvalidRequestError, match="user:pass@") as caught:
        llmclients.OpenAICompatible(base_url="http://me:url-secret@127.0.0.1:9/v1", api_key=KEY, model="m")
    assert "url-secret" not in shown(caught.value) and KEY not in shown(caught.value)


def test_base_url_credentials_alone_send_basic_auth_and_are_masked(emulator):
    base_url = emulator.base_url.replace("http://", "http://me:url-secret@")
    emulator.enqueue(Reply(status=401, body={"error": {"message": "who is me:url-secret?"}}))
    client = llmclients.OpenAICompatible(base_url=base_url, model="m", max_retries=0)
    with pytest.raises(errors.AuthenticationError) as caught:
        client.complete("Hi")
    sent = emulator.requests[0].headers["Authorization"]
    assert sent == "Basic " + base64.b64encode(b"me:url-secret").decode()
    assert "url-secret" not in shown(caught.value)
    assert "url-secret" not in repr(client)


def test_a_json_error_in_a_200_is_masked_with_the_transports_secrets(emulator):
    from llmclients._core import content_type as media
    from llmclients._core.state import StreamState

    client = openai_client(emulator, proxy="http://u:proxy-secret@127.0.0.1:9")
    echo = json.dumps({"error": {"message": f"you sent {ECHO} via proxy-secret", "code": "proxy-secret"}})
    read = media.completion_reader(client, "application/json", secrets=client.transport.secrets)
    with pytest.raises(errors.ProviderError) as caught:
        read(echo, StreamState())
    for secret in [*SECRETS, "proxy-secret"]:
        assert secret not in shown(caught.value) and secret not in str(caught.value.reason)
    assert "***" in str(caught.value)
    client.close()


def test_a_json_error_in_a_200_that_echoes_header_secrets_is_masked(emulator):
    emulator.enqueue(Reply(body={"error": {"message": f"bad credentials: {ECHO}"}}))
    with pytest.raises(errors.ProviderError) as caught:
        openai_client(emulator).complete("Hi")
    assert_masked(caught.value)
    assert "where a stream was asked for" in str(caught.value)


# --- reprs -------------------------------------------------------------------------------


def test_no_repr_shows_a_secret(emulator):
    client = openai_client(emulator, proxy="http://u:proxy-secret@127.0.0.1:9")
    conversation = client.conversation("Hi")
    request = Request("POST", "http://u:url-secret@127.0.0.1:9/v1?key=" + KEY, headers=dict(HEADERS), json={})
    everything = " ".join(
        map(repr, [client, client.transport, conversation, request, llmclients.Fallback([client])])
    )
    for secret in [*SECRETS, "proxy-secret", "url-secret"]:
        assert secret not in everything


def test_transport_secrets_cover_key_headers_and_proxy():
    transport = Transport(secrets=(KEY,), headers=HEADERS, proxy="http://u:proxy-secret@127.0.0.1:9")
    for secret in [*SECRETS, "proxy-secret"]:
        assert secret in transport.secrets
    assert "not-a-secret-at-all" not in transport.secrets
    # longest first: a secret that contains another is masked whole
    assert mask("Bearer header-bearer-secret", transport.secrets) == "***"
    transport.close()


def test_strings_too_short_to_be_keys_are_not_masked():
    assert secrets_in(["abc"], {"x-api-key": "1"}) == ()


def test_an_in_stream_error_is_masked_for_asyncio_too(emulator):
    emulator.enqueue(
        Reply(
            events=text_chunks(["Hello "], finish_reason=None) + error_event("data", ECHO), finish_reason=None
        )
    )

    async def main():
        async with AsyncClient(openai_client(emulator)) as client, client.stream("Hi") as stream:
            async for _ in stream:
                pass

    with pytest.raises(errors.ProviderError) as caught:
        asyncio.run(asyncio.wait_for(main(), 30))
    assert_masked(caught.value)
    assert caught.value.partial_text == "Hello "
