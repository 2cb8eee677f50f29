"""Redirects: only same-origin 307/308 are followed; nothing the client adds
reaches another origin. Each case runs over loopback, between emulators on
two ports (two origins) that record every request they receive."""

import asyncio

import pytest

import llmclients
from llmclients import errors
from llmclients._http.redirects import MAX_REDIRECTS
from llmclients.aio import AsyncClient
from llmclients.testing import OpenAIEmulator, Reply

PATH = "/v1/chat/completions"
KEY = "sk-redirect-secret"
HEADERS = {"api-key": "azure-style-secret", "x-api-key": "anthropic-style-secret"}


@pytest.fixture
def origin():
    with OpenAIEmulator(api_key=KEY) as emulator:
        yield emulator


@pytest.fixture
def elsewhere():
    """Another origin: same host, another port."""
    with OpenAIEmulator() as emulator:
        yield emulator


def client_of(emulator, **kwargs):
    return llmclients.OpenAICompatible(
        base_url=emulator.base_url, api_key=KEY, model="m", headers=HEADERS, **kwargs
    )


def redirect(code, location):
    return Reply(status=code, body="", headers={"Location": location})


@pytest.mark.parametrize("code", [301, 302, 303, 307, 308])
def test_no_redirect_to_another_origin_is_followed(origin, elsewhere, code):
    target = elsewhere.url + PATH
    origin.enqueue(redirect(code, target))
    with pytest.raises(errors.RedirectError) as caught:
        client_of(origin).complete("the secret prompt")
    assert elsewhere.requests == []  # no key, no headers=, no prompt: nothing at all
    assert len(origin.requests) == 1  # and not retried
    error = caught.value
    assert error.status_code == code and error.location == target
    message = str(error)
    assert f"from POST {origin.base_url}/chat/completions redirects to {target}" in message
    assert "another origin" in message
    assert f"set base_url to '{elsewhere.base_url}'" in message


@pytest.mark.parametrize("code", [301, 302, 303])
def test_a_same_origin_redirect_that_would_make_the_post_a_get_is_not_followed(origin, code):
    origin.enqueue(redirect(code, PATH + "?moved=1"))
    with pytest.raises(errors.RedirectError) as caught:
        client_of(origin).complete("Hi")
    assert [r.method for r in origin.requests] == ["POST"]  # no GET follows
    assert f"a {code} turns a POST into a GET" in str(caught.value)
    assert caught.value.location == origin.url + PATH + "?moved=1"
    # the same URL: no base_url leads elsewhere, so the message says what requests go to
    assert "point base_url at it (requests go to base_url + '/chat/completions')" in str(caught.value)


@pytest.mark.parametrize("code", [307, 308])
def test_a_same_origin_307_or_308_is_followed_with_method_body_and_headers(origin, code):
    origin.enqueue(redirect(code, PATH + "?moved=1"))
    reply = client_of(origin).complete("the prompt")
    assert reply.text.endswith("You said: the prompt")
    first, second = origin.requests
    assert (second.method, second.path) == ("POST", PATH + "?moved=1")
    assert second.body == first.body
    for name in ("Authorization", *HEADERS):
        assert second.headers[name] == first.headers[name]


def test_an_error_after_a_followed_redirect_names_the_method_and_url_it_came_from(origin):
    origin.enqueue(redirect(308, "/api" + PATH))  # the emulator has no such path: 404
    with pytest.raises(errors.NotFoundError) as caught:
        client_of(origin).complete("Hi")
    assert f"from POST {origin.url}/api{PATH}" in str(caught.value)


def test_redirects_stop_after_the_limit(origin):
    origin.default_reply = redirect(307, PATH + "?again")
    with pytest.raises(errors.RedirectError, match=f"past the limit of {MAX_REDIRECTS}"):
        client_of(origin).complete("Hi")
    assert len(origin.requests) == MAX_REDIRECTS + 1


def test_a_redirect_without_location_raises(origin):
    origin.enqueue(Reply(status=302, body=""))
    with pytest.raises(errors.RedirectError, match="without a Location header") as caught:
        client_of(origin).complete("Hi")
    assert caught.value.location == ""


def test_the_base_url_to_set_keeps_the_new_prefix(origin, elsewhere):
    origin.enqueue(redirect(307, elsewhere.url + "/api/v1/chat/completions"))
    with pytest.raises(errors.RedirectError, match=f"set base_url to '{elsewhere.url}/api/v1'"):
        client_of(origin).complete("Hi")


def test_https_to_http_is_never_followed(https_emulator, elsewhere, ca_bundle):
    https_emulator.enqueue(redirect(307, elsewhere.url + PATH))
    client = llmclients.OpenAICompatible(
        base_url=https_emulator.base_url, api_key=KEY, model="m", headers=HEADERS, verify=ca_bundle
    )
    with pytest.raises(errors.RedirectError) as caught:
        client.complete("the secret prompt")
    assert "from https to plain http" in str(caught.value)
    assert elsewhere.requests == []
    assert len(https_emulator.requests) == 1


def test_a_same_origin_307_over_https_is_followed(https_emulator, ca_bundle):
    https_emulator.enqueue(redirect(307, https_emulator.url + PATH + "?moved=1"))
    client = llmclients.OpenAICompatible(base_url=https_emulator.base_url, model="m", verify=ca_bundle)
    assert client.complete("Hi").text.endswith("You said: Hi")
    assert [r.path for r in https_emulator.requests] == [PATH, PATH + "?moved=1"]


def test_the_redirect_error_masks_secrets_and_hides_query_strings(origin, elsewhere):
    origin.enqueue(redirect(302, elsewhere.url + PATH + "?token=" + KEY))
    with pytest.raises(errors.RedirectError) as caught:
        client_of(origin).complete("Hi")
    assert KEY not in str(caught.value) and KEY not in repr(caught.value)
    assert "?token" not in str(caught.value)


def test_async_clients_refuse_the_same_redirects(origin, elsewhere):
    origin.enqueue(redirect(307, elsewhere.url + PATH))

    async def main():
        async with AsyncClient(client_of(origin)) as client:
            await client.complete("the secret prompt")

    with pytest.raises(errors.RedirectError):
        asyncio.run(asyncio.wait_for(main(), 30))
    assert elsewhere.requests == []
