"""What the OpenAI-compatible client sends, and how it reads error statuses (via `responses`)."""

import json
import logging

import pytest
import responses

import llmclients
from llmclients import errors

BASE = "http://llm.test/v1"
URL = BASE + "/chat/completions"
SSE_OK = (
    'data: {"model": "m1", "choices": [{"index": 0, "delta": {"content": "Hi"}, "finish_reason": null}]}\n\n'
    'data: {"choices": [{"index": 0, "delta": {}, "finish_reason": "stop"}]}\n\n'
    'data: {"choices": [], "usage": {"prompt_tokens": 2, "completion_tokens": 1, "total_tokens": 3}}\n\n'
    "data: [DONE]\n\n"
)


@pytest.fixture
def mocked():
    with responses.RequestsMock() as rsps:
        yield rsps


def client(**kwargs):
    kwargs.setdefault("max_retries", 0)
    return llmclients.OpenAICompatible(base_url=BASE, **kwargs)


def test_request_body_and_headers(mocked):
    mocked.post(URL, body=SSE_OK, content_type="text/event-stream")
    reply = client(api_key="sk-secret", model="llama3.2").complete(
        [{"role": "system", "content": "Be brief"}, {"role": "user", "content": "Hi"}],
        temperature=0.2,
        max_tokens=200,
        stop=["\n"],
        top_p=None,
    )
    sent = mocked.calls[0].request
    assert json.loads(sent.body) == {
        "model": "llama3.2",
        "messages": [{"role": "system", "content": "Be brief"}, {"role": "user", "content": "Hi"}],
        "stream": True,
        "stream_options": {"include_usage": True},
        "temperature": 0.2,
        "max_tokens": 200,
        "stop": ["\n"],
    }
    assert sent.headers["Authorization"] == "Bearer sk-secret"
    assert sent.headers["Accept"] == "text/event-stream"
    assert sent.headers["Content-Type"] == "application/json"
    assert (reply.text, reply.finish_reason, reply.model, reply.provider) == ("Hi", "stop", "m1", "openai")
    assert reply.usage == llmclients.Usage(2, 1, 3)


def test_no_key_no_authorization_header_and_extra_body_merged(mocked):
    mocked.post(URL, body=SSE_OK)
    client(include_usage=False).complete("Hi", model="m", extra_body={"repeat_penalty": 1.1})
    sent = mocked.calls[0].request
    assert "Authorization" not in sent.headers
    body = json.loads(sent.body)
    assert body["repeat_penalty"] == 1.1
    assert "stream_options" not in body


def test_user_headers_are_sent_and_win(mocked):
    mocked.post(URL, body=SSE_OK)
    client(headers={"X-Team": "a", "User-Agent": "mine/1"}).complete("Hi", model="m")
    sent = mocked.calls[0].request
    assert sent.headers["X-Team"] == "a"
    assert sent.headers["User-Agent"] == "mine/1"


def test_unknown_option_fails_before_any_request(mocked):
    with pytest.raises(errors.InvalidRequestError, match=r"'temprature'.*temperature"):
        client().stream("Hi", model="m", temprature=0.1)
    assert not mocked.calls


def test_missing_model_fails_before_any_request(mocked):
    with pytest.raises(errors.InvalidRequestError, match="pass model="):
        client().stream("Hi")


def test_bad_messages_fail_before_any_request(mocked):
    with pytest.raises(errors.InvalidMessagesError, match=r"messages\[0\] has no 'content'"):
        client().stream([{"role": "user"}], model="m")
    assert not mocked.calls


def test_repr_and_errors_never_show_the_key(mocked, caplog):
    mocked.post(URL, status=401, json={"error": {"message": "Incorrect API key provided: sk-secret"}})
    c = client(api_key="sk-secret")
    assert "sk-secret" not in repr(c)
    assert "api_key=<hidden>" in repr(c)
    with (
        caplog.at_level(logging.DEBUG, logger="llmclients"),
        pytest.raises(errors.AuthenticationError) as caught,
    ):
        c.complete("Hi", model="m")
    assert "sk-secret" not in str(caught.value)
    assert "***" in str(caught.value)
    assert "sk-secret" not in caplog.text


def test_repr_hides_credentials_in_the_url():
    c = llmclients.OpenAICompatible(base_url="http://user:pw@llm.test/v1?key=abc")
    assert "pw" not in repr(c) and "abc" not in repr(c)


@pytest.mark.parametrize(
    ("status", "cls"),
    [
        (400, errors.HTTPStatusError),
        (401, errors.AuthenticationError),
        (403, errors.AuthenticationError),
        (404, errors.NotFoundError),
        (429, errors.RateLimitError),
        (500, errors.ServerError),
        (503, errors.ServerError),
    ],
)
def test_status_maps_to_its_class_with_the_json_message(mocked, status, cls):
    mocked.post(URL, status=status, json={"error": {"message": "something specific", "type": "x"}})
    with pytest.raises(cls) as caught:
        client().complete("Hi", model="m")
    assert caught.value.status_code == status
    assert caught.value.body_excerpt == "something specific"
    assert f"HTTP {status}" in str(caught.value)
    assert "POST http://llm.test/v1/chat/completions" in str(caught.value)


def test_html_error_page_is_not_echoed(mocked):
    page = "<!DOCTYPE html><html><head><title>Forbidden</title></head>\n" + "x" * 5000
    mocked.post(URL, status=403, body=page, content_type="text/html")
    with pytest.raises(errors.AuthenticationError) as caught:
        client().complete("Hi", model="m")
    assert "<html" not in str(caught.value)
    assert "HTML page" in str(caught.value)
    assert "\n" not in str(caught.value)


@pytest.mark.parametrize(
    ("status", "page", "headers"),
    [
        (403, "<!DOCTYPE html><html><head><title>Just a moment...</title></head>", {}),
        (503, "<html><title>Attention Required! | Cloudflare</title></html>", {}),
        (403, "<html>?</html>", {"cf-mitigated": "challenge"}),
    ],
)
def test_bot_check_page_raises_blocked_in_one_line(mocked, status, page, headers):
    mocked.post(URL, status=status, body=page, content_type="text/html", headers=headers)
    with pytest.raises(errors.BlockedError) as caught:
        client().complete("Hi", model="m")
    message = str(caught.value)
    assert "blocked by a bot check" in message
    assert "<" not in message and "\n" not in message
    assert caught.value.status_code == status


def test_long_text_error_body_is_cut_to_an_excerpt(mocked):
    mocked.post(URL, status=500, body="boom " * 1000)
    with pytest.raises(errors.ServerError) as caught:
        client().complete("Hi", model="m")
    assert len(caught.value.body_excerpt) <= 300


@pytest.mark.parametrize(("header", "expected"), [("7", 7.0), ("Wed, 21 Oct 2015 07:28:00 GMT", 0.0)])
def test_retry_after_in_seconds_and_as_a_date(mocked, header, expected):
    mocked.post(URL, status=429, json={"error": {"message": "slow down"}}, headers={"Retry-After": header})
    with pytest.raises(errors.RateLimitError) as caught:
        client().complete("Hi", model="m")
    assert caught.value.retry_after == expected


def test_retries_503_then_succeeds_and_logs_one_line_per_retry(mocked, caplog):
    mocked.post(URL, status=503, body="busy")
    mocked.post(URL, status=503, body="busy")
    mocked.post(URL, body=SSE_OK)
    c = llmclients.OpenAICompatible(base_url=BASE, max_retries=2)
    c.transport.sleep = lambda seconds: None
    with caplog.at_level(logging.INFO, logger="llmclients"):
        assert c.complete("Hi", model="m").text == "Hi"
    assert len(mocked.calls) == 3
    retries = [r for r in caplog.records if "retrying" in r.getMessage()]
    assert len(retries) == 2
    assert "HTTP 503" in retries[0].getMessage()


def test_gives_up_after_max_retries(mocked):
    for _ in range(3):
        mocked.post(URL, status=502, body="bad gateway")
    c = llmclients.OpenAICompatible(base_url=BASE, max_retries=2)
    c.transport.sleep = lambda seconds: None
    with pytest.raises(errors.ServerError):
        c.complete("Hi", model="m")
    assert len(mocked.calls) == 3


def test_does_not_retry_400(mocked):
    mocked.post(URL, status=400, json={"error": {"message": "bad"}})
    c = llmclients.OpenAICompatible(base_url=BASE, max_retries=3)
    with pytest.raises(errors.HTTPStatusError):
        c.complete("Hi", model="m")
    assert len(mocked.calls) == 1


def test_in_band_error_event_raises_provider_error_with_partial_text(mocked):
    body = (
        'data: {"choices": [{"index": 0, "delta": {"content": "Par"}}]}\n\n'
        'data: {"error": {"message": "upstream overloaded", "code": "overloaded"}}\n\n'
    )
    mocked.post(URL, body=body)
    with pytest.raises(errors.ProviderError) as caught:
        client().complete("Hi", model="m")
    assert caught.value.reason == "overloaded"
    assert caught.value.partial_text == "Par"


def test_garbage_json_raises_malformed_with_partial_text(mocked):
    body = 'data: {"choices": [{"index": 0, "delta": {"content": "ok"}}]}\n\ndata: {not json\n\n'
    mocked.post(URL, body=body)
    with pytest.raises(errors.MalformedStreamError) as caught:
        client().complete("Hi", model="m")
    assert caught.value.partial_text == "ok"
    assert "{not json" in str(caught.value)


def test_get_client_by_name():
    c = llmclients.get_client("openai", base_url=BASE)
    assert isinstance(c, llmclients.OpenAICompatible)
    with pytest.raises(errors.InvalidRequestError, match="known providers"):
        llmclients.get_client("nope")


def test_one_excerpt_helper_keeps_each_callers_output():
    from llmclients._http.masking import excerpt
    from llmclients._http.status_errors import EXCERPT_LENGTH, body_excerpt

    assert excerpt("  two\n\tlines  ", 300) == "two lines"
    assert excerpt("x" * 300, 300) == "x" * 300
    assert excerpt("x" * 301, 300) == "x" * 299 + "…"
    assert excerpt("y" * 61, 60, "...") == "y" * 57 + "..."
    assert body_excerpt(b"z" * 400) == "z" * (EXCERPT_LENGTH - 1) + "…"


@pytest.mark.parametrize(
    ("body", "expected"),
    [
        ({"error": {"message": "bad model", "detail": "ignored"}}, "bad model"),
        ({"error": {"detail": "no such thing"}}, "no such thing"),
        ({"detail": "Not Found"}, "Not Found"),
        ({"object": "error", "message": "vLLM says no"}, "vLLM says no"),
        ({"error": "quota", "message": "try later"}, "quota: try later"),
        ({"error": {"code": 7}}, '{"error": {"code": 7}}'),
    ],
)
def test_one_digger_reads_an_error_bodys_message(body, expected):
    from llmclients._http.status_errors import body_excerpt, error_message
    from llmclients.providers.openai import stream_error

    assert body_excerpt(json.dumps(body).encode()) == expected
    inner = body.get("error", body)
    if isinstance(inner, dict):
        assert error_message(inner) == (None if "code" in inner else expected)
        assert (
            str(stream_error(body))
            == f"the server reported an error: {expected if 'code' not in inner else inner}"
        )
