"""Observers see every call's lifecycle, exactly once per end, whatever the caller does."""

from __future__ import annotations

import asyncio
import contextvars
import gc
import logging
import time
from typing import Any, Iterator, List, Tuple

import pytest

import llmclients
from llmclients import errors, observers
from llmclients.aio import AsyncClient
from llmclients.observers import EndEvent, Observer
from llmclients.testing import OpenAIEmulator, Reply

TRACE = contextvars.ContextVar("TRACE", default="none")


class Recorder(Observer):
    """Every event, as (method, event), and the caller's context at the request."""

    def __init__(self) -> None:
        self.events: List[Tuple[str, Any]] = []
        self.traces: List[str] = []

    def on_request(self, event: Any) -> None:
        self.traces.append(TRACE.get())
        self.events.append(("request", event))

    def on_response(self, event: Any) -> None:
        self.events.append(("response", event))

    def on_retry(self, event: Any) -> None:
        self.events.append(("retry", event))

    def on_first_delta(self, event: Any) -> None:
        self.events.append(("first_delta", event))

    def on_end(self, event: Any) -> None:
        self.events.append(("end", event))

    @property
    def names(self) -> List[str]:
        return [name for name, _ in self.events]

    @property
    def end(self) -> EndEvent:
        ends = [event for name, event in self.events if name == "end"]
        assert len(ends) == 1, self.names
        end: EndEvent = ends[0]
        return end


@pytest.fixture
def emulator() -> Iterator[OpenAIEmulator]:
    with OpenAIEmulator() as emulator:
        yield emulator


def client_of(emulator: OpenAIEmulator, recorder: Recorder, **kwargs: Any) -> llmclients.OpenAICompatible:
    kwargs.setdefault("model", "emulator-1")
    return llmclients.OpenAICompatible(base_url=emulator.base_url, observers=[recorder], **kwargs)


def test_a_streamed_reply_shows_every_step_once_in_order(emulator: OpenAIEmulator) -> None:
    recorder = Recorder()
    emulator.enqueue(Reply(text="Hello there friend", usage={"prompt_tokens": 3, "completion_tokens": 3}))
    with client_of(emulator, recorder) as client, client.stream("Hi", temperature=0.5) as stream:
        text = "".join(stream)
    assert recorder.names == ["request", "response", "first_delta", "end"]
    request = recorder.events[0][1]
    assert (request.method, request.attempt) == ("POST", 1)
    assert request.url == f"{emulator.base_url}/chat/completions"
    call = request.call
    assert (call.operation, call.provider, call.model, call.options) == ("chat", "openai", "emulator-1", {"temperature": 0.5})
    assert all(event.call is call for _, event in recorder.events)
    response = recorder.events[1][1]
    assert response.status == 200 and response.elapsed >= 0
    assert recorder.events[2][1].elapsed >= response.elapsed
    end = recorder.end
    assert (end.outcome, end.error, end.error_type, end.attempts) == ("done", None, None, 1)
    assert end.finish_reason == "stop" and end.text_length == len(text) == len("Hello there friend")
    assert end.usage is not None and end.usage.prompt_tokens == 3
    assert end.response_id == stream.response_id and end.model == stream.model
    assert end.duration >= recorder.events[2][1].elapsed and end.partial_text == ""
    assert call.messages == ({"role": "user", "content": "Hi"},)
    assert end.reply is not None and end.reply.to_dict() == stream.completion().to_dict()


def test_an_error_status_ends_the_call_with_its_error(emulator: OpenAIEmulator) -> None:
    recorder = Recorder()
    emulator.enqueue(Reply(status=400, body={"error": {"message": "bad", "type": "invalid_request_error"}}))
    with client_of(emulator, recorder) as client, pytest.raises(errors.HTTPStatusError) as raised:
        client.stream("Hi")
    assert recorder.names == ["request", "end"]
    assert recorder.end.outcome == "error" and recorder.end.error is raised.value
    assert recorder.end.error_type == type(raised.value).__name__ == "HTTPStatusError"


def test_a_stream_cut_after_text_ends_with_the_error_and_the_partial_text(emulator: OpenAIEmulator) -> None:
    recorder = Recorder()
    emulator.enqueue(Reply(deltas=["one ", "two ", "three ", "four"], delay=0.02, drop_after=900, framing="chunked"))
    with client_of(emulator, recorder) as client, client.stream("Hi") as stream:
        received = []
        with pytest.raises(errors.StreamInterruptedError) as raised:
            for text in stream:
                received.append(text)
    assert received, "the cut came after some text"
    assert recorder.names == ["request", "response", "first_delta", "end"]
    end = recorder.end
    assert end.outcome == "error" and end.error is raised.value
    assert end.partial_text == "".join(received) == raised.value.partial_text
    assert end.reply is not None and end.reply.text == end.partial_text and end.reply.finish_reason is None


def test_a_retry_is_announced_with_its_reason_and_delay(emulator: OpenAIEmulator) -> None:
    recorder = Recorder()
    emulator.enqueue(Reply(status=503, body="busy", headers={"Retry-After": "0"}), Reply(text="at last"))
    with client_of(emulator, recorder, retry=llmclients.Retry(total=2, backoff_factor=0)) as client:
        client.transport.sleep = lambda seconds: None
        assert client.complete("Hi").text == "at last"
    assert recorder.names == ["request", "retry", "request", "response", "first_delta", "end"]
    retry = recorder.events[1][1]
    assert (retry.attempt, retry.reason, retry.delay) == (1, "HTTP 503", 0)
    assert isinstance(retry.error, errors.ServerError)
    assert recorder.events[2][1].attempt == 2
    assert (recorder.end.outcome, recorder.end.attempts) == ("done", 2)


def test_a_body_cut_before_the_first_delta_is_reopened_and_announced(emulator: OpenAIEmulator) -> None:
    recorder = Recorder()
    emulator.enqueue(Reply(text="lost", drop_after=0, framing="chunked"), Reply(text="found"))
    with client_of(emulator, recorder, retry=llmclients.Retry(total=2, backoff_factor=0)) as client:
        client.transport.sleep = lambda seconds: None
        assert client.complete("Hi").text == "found"
    assert recorder.names == ["request", "response", "retry", "request", "response", "first_delta", "end"]
    assert recorder.events[2][1].reason == "StreamInterruptedError"
    assert recorder.end.outcome == "done"


@pytest.mark.parametrize("how", ["break and close", "close before reading", "drop", "leave the with block"])
def test_a_caller_who_stops_early_ends_the_call_closed_exactly_once(emulator: OpenAIEmulator, how: str) -> None:
    recorder = Recorder()
    emulator.enqueue(Reply(text="a long answer " * 50, delay=0.005))
    with client_of(emulator, recorder) as client:
        stream = client.stream("Hi")
        if how == "break and close":
            for _ in stream:
                break
            stream.close()
            stream.close()
        elif how == "close before reading":
            stream.close()
        elif how == "drop":
            next(stream)
            del stream
            gc.collect()
        else:
            with stream:
                next(stream)
    assert recorder.end.outcome == "closed" and recorder.end.error is None
    assert recorder.names[-1] == "end"


def test_an_observer_that_raises_never_breaks_the_stream(
    emulator: OpenAIEmulator, caplog: pytest.LogCaptureFixture
) -> None:
    class Broken(Observer):
        def on_first_delta(self, event: Any) -> None:
            raise RuntimeError("observer bug")

        def on_end(self, event: Any) -> None:
            raise RuntimeError("observer bug")

    recorder = Recorder()
    emulator.enqueue(Reply(text="still here"))
    with caplog.at_level(logging.ERROR, logger="llmclients"), client_of(emulator, recorder) as client:
        client.observers.insert(0, Broken())
        assert client.complete("Hi").text == "still here"
    assert recorder.end.outcome == "done"
    assert sum("observer" in record.getMessage() and "on_end" in record.getMessage() for record in caplog.records) == 1


def test_the_model_list_goes_through_a_call_too(emulator: OpenAIEmulator) -> None:
    recorder = Recorder()
    with client_of(emulator, recorder) as client:
        models = client.served_models()
    assert models
    assert recorder.names == ["request", "response", "end"]
    assert recorder.events[0][1].call.operation == "models"
    assert recorder.end.reply is None and recorder.end.call.messages == ()
    assert recorder.events[0][1].url == f"{emulator.base_url}/models"
    assert recorder.end.outcome == "done"


def test_events_show_no_credentials(emulator: OpenAIEmulator) -> None:
    recorder = Recorder()
    base = emulator.base_url.replace("http://", "http://user:s3cret-pass@")
    with llmclients.OpenAICompatible(base_url=base, model="emulator-1", observers=[recorder]) as client:
        client.complete("Hi")
    shown = repr(recorder.events) + recorder.events[0][1].url
    assert "s3cret-pass" not in shown


def test_asyncio_calls_are_observed_once_in_the_callers_context(emulator: OpenAIEmulator) -> None:
    recorder = Recorder()
    emulator.enqueue(Reply(text="from a thread"), Reply(text="a long answer " * 50, delay=0.005))

    async def main() -> Tuple[str, str]:
        TRACE.set("task-trace")
        async with AsyncClient(client_of(emulator, recorder)) as aclient:
            whole = (await aclient.complete("Hi")).text
            stream = await aclient.stream("Hi")
            async for first in stream:  # noqa: B007  (the first delta is what the test reads)
                break
            await stream.aclose()
        return whole, first

    whole, first = asyncio.run(main())
    assert (whole, first) == ("from a thread", "a ")
    # The reading thread closes the cancelled stream a moment after aclose() returns.
    deadline = time.monotonic() + 5
    while recorder.names.count("end") < 2 and time.monotonic() < deadline:
        time.sleep(0.01)
    ends = [event for name, event in recorder.events if name == "end"]
    assert [end.outcome for end in ends] == ["done", "closed"]
    assert recorder.traces == ["task-trace", "task-trace"]


def test_a_fallback_shows_each_clients_call_ending_once(emulator: OpenAIEmulator) -> None:
    broken, working = Recorder(), Recorder()
    emulator.enqueue(Reply(status=401, body={"error": {"message": "no key"}}), Reply(text="second answers"))
    clients = [client_of(emulator, broken, max_retries=0), client_of(emulator, working)]
    with llmclients.Fallback(clients) as chain, chain.stream("Hi") as stream:
        assert "".join(stream) == "second answers"
        assert stream.text == "second answers" and stream.finish_reason == "stop"
    assert (broken.end.outcome, broken.end.error_type) == ("error", "AuthenticationError")
    assert working.end.outcome == "done"


def test_batch_answers_run_in_the_callers_context(emulator: OpenAIEmulator, tmp_path: Any) -> None:
    from llmclients import batch

    recorder = Recorder()
    TRACE.set("batch-trace")
    try:
        with client_of(emulator, recorder) as client:
            results = list(batch.run(client, ["one", "two"], output=tmp_path / "out.jsonl", concurrency=2, progress=False))
    finally:
        TRACE.set("none")
    assert len(results) == 2
    assert recorder.traces == ["batch-trace", "batch-trace"]


def test_an_attached_observer_sees_every_clients_calls_after_their_own(emulator: OpenAIEmulator) -> None:
    own, everywhere = Recorder(), Recorder()
    order: List[str] = []
    own.on_end = lambda event: order.append("own")  # type: ignore[method-assign]
    everywhere.on_end = lambda event: order.append("attached")  # type: ignore[method-assign]
    emulator.enqueue(Reply(text="one"), Reply(text="two"))
    observers.attach(everywhere)
    observers.attach(everywhere)  # a second attach changes nothing
    try:
        assert observers.attached() == (everywhere,)
        with client_of(emulator, own) as first, first.stream("Hi") as stream:
            "".join(stream)
        with llmclients.OpenAICompatible(base_url=emulator.base_url, model="emulator-1") as second:
            assert second.complete("Hi").text == "two"
    finally:
        observers.detach(everywhere)
    assert order == ["own", "attached", "attached"]
    assert everywhere.names == ["request", "response", "first_delta"] * 2
    emulator.enqueue(Reply(text="three"))
    with llmclients.OpenAICompatible(base_url=emulator.base_url, model="emulator-1") as third:
        third.complete("Hi")
    assert observers.attached() == () and order == ["own", "attached", "attached"]
    observers.detach(everywhere)  # detaching what is not attached is ignored


def test_an_observer_adds_request_headers_but_never_replaces_the_requests_own(emulator: OpenAIEmulator) -> None:
    class Headers(Observer):
        def on_request(self, event: Any) -> None:
            assert event.headers == {}  # the request's own headers are never shown
            event.headers.update({"X-Trace": f"attempt {event.attempt}", "authorization": "Bearer stolen"})

    emulator.enqueue(Reply(status=503, body="busy", headers={"Retry-After": "0"}), Reply(text="ok"))
    client = llmclients.OpenAICompatible(
        base_url=emulator.base_url, model="m", api_key="sk-own-key", observers=[Headers()],
        retry=llmclients.Retry(total=1, backoff_factor=0),
    )
    with client:
        client.transport.sleep = lambda seconds: None
        assert client.complete("Hi").text == "ok"
    assert [request.headers.get("X-Trace") for request in emulator.requests] == ["attempt 1", "attempt 2"]
    assert {request.headers.get("Authorization") for request in emulator.requests} == {"Bearer sk-own-key"}


def test_mask_hides_the_clients_keys_in_what_an_observer_records(emulator: OpenAIEmulator) -> None:
    recorder = Recorder()
    emulator.enqueue(Reply(text="fine"))
    with client_of(emulator, recorder, api_key="sk-own-key-1234") as client:
        client.complete("my key is sk-own-key-1234")
    call = recorder.end.call
    assert call.mask(call.messages[0]["content"]) == "my key is ***"
    assert "sk-own-key" not in repr(call)
    shown = [name for name in dir(call) if not name.startswith("_") and name != "messages"]  # the caller wrote it there
    assert not [name for name in shown if "sk-own-key" in repr(getattr(call, name))]
