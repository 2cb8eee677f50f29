"""OpenTelemetry: one GenAI span per chat call, ended once whatever the caller
does, its attributes on every provider, its parent, its metrics; over loopback
with the emulators, the SDK's in-memory exporter and metric reader."""

from __future__ import annotations

import asyncio
import gc
import json
import subprocess
import sys
import threading
from typing import Any, Iterator, List

import pytest
from opentelemetry import trace
from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics.export import InMemoryMetricReader
from opentelemetry.sdk.trace import ReadableSpan, SpanProcessor, TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import SpanKind, StatusCode

import llmclients
import llmclients.otel
from llmclients import errors
from llmclients.aio import AsyncClient
from llmclients.batch import run
from llmclients.providers import get_provider_class
from llmclients.testing import EMULATORS, OpenAIEmulator, Reply, wire_sample

PROVIDERS = list(EMULATORS)
#: An option of each kind the conventions name, and its attribute.
OPTIONS = {
    "max_tokens": ("gen_ai.request.max_tokens", 2000),
    "temperature": ("gen_ai.request.temperature", 0.5),
    "top_p": ("gen_ai.request.top_p", 0.9),
    "seed": ("gen_ai.request.seed", 7),
    "stop": ("gen_ai.request.stop_sequences", ("END",)),
}
KEY = "sk-test-not-a-real-key-42"
#: The conventions' advisory bucket boundaries.
TOKEN_BUCKETS = (1, 4, 16, 64, 256, 1024, 4096, 16384, 65536, 262144, 1048576, 4194304, 16777216, 67108864)
DURATION_BUCKETS = (0.01, 0.02, 0.04, 0.08, 0.16, 0.32, 0.64, 1.28, 2.56, 5.12, 10.24, 20.48, 40.96, 81.92)


class Ended(SpanProcessor):
    """Counts each span's ends, and lets a test wait for them."""

    def __init__(self) -> None:
        self.ends: List[ReadableSpan] = []
        self._cond = threading.Condition()

    def on_end(self, span: ReadableSpan) -> None:
        with self._cond:
            self.ends.append(span)
            self._cond.notify_all()

    def wait(self, count: int, timeout: float = 5.0) -> List[ReadableSpan]:
        with self._cond:
            self._cond.wait_for(lambda: len(self.ends) >= count, timeout)
            return list(self.ends)


class Telemetry:
    def __init__(self) -> None:
        self.exporter = InMemorySpanExporter()
        self.ended = Ended()
        self.tracer_provider = TracerProvider()
        self.tracer_provider.add_span_processor(SimpleSpanProcessor(self.exporter))
        self.tracer_provider.add_span_processor(self.ended)
        self.reader = InMemoryMetricReader()
        self.meter_provider = MeterProvider(metric_readers=[self.reader])
        self.tracer = self.tracer_provider.get_tracer("test")

    def instrument(self, **kwargs: Any) -> None:
        llmclients.otel.instrument(self.tracer_provider, self.meter_provider, **kwargs)

    def calls(self) -> List[ReadableSpan]:
        """The finished spans of llmclients' calls."""
        return [span for span in self.exporter.get_finished_spans() if span.instrumentation_scope.name == "llmclients"]

    def span(self) -> ReadableSpan:
        spans = self.calls()
        assert len(spans) == 1, [span.name for span in spans]
        return spans[0]

    def points(self, name: str) -> List[Any]:
        data = self.reader.get_metrics_data()
        found = []
        for resource in data.resource_metrics if data else ():
            for scope in resource.scope_metrics:
                for metric in scope.metrics:
                    if metric.name == name:
                        found.extend((metric.unit, point) for point in metric.data.data_points)
        return found


@pytest.fixture
def otel(monkeypatch: pytest.MonkeyPatch) -> Iterator[Telemetry]:
    monkeypatch.delenv("OTEL_INSTRUMENTATION_GENAI_CAPTURE_MESSAGE_CONTENT", raising=False)
    monkeypatch.delenv("OTEL_SEMCONV_STABILITY_OPT_IN", raising=False)
    telemetry = Telemetry()
    telemetry.instrument()
    yield telemetry
    llmclients.otel.uninstrument()
    telemetry.tracer_provider.shutdown()
    telemetry.meter_provider.shutdown()


@pytest.fixture
def emulator() -> Iterator[OpenAIEmulator]:
    with OpenAIEmulator() as emulator:
        yield emulator


def openai_client(emulator: OpenAIEmulator, **kwargs: Any) -> llmclients.OpenAICompatible:
    kwargs.setdefault("model", "emulator-1")
    kwargs.setdefault("max_retries", 0)
    return llmclients.OpenAICompatible(base_url=emulator.base_url, **kwargs)


def registry_client(provider: str, base_url: str) -> Any:
    model = wire_sample(provider).model
    return llmclients.get_client(provider, base_url=base_url, max_retries=0, **({"model": model} if model else {}))


# --- every attribute, on every provider --------------------------------------------------------


@pytest.mark.parametrize("how", ["stream", "complete"])
@pytest.mark.parametrize("provider", PROVIDERS)
def test_a_call_on_every_provider_has_the_conventions_attributes(otel, llm_emulator, provider, how):
    emulator = llm_emulator(provider)
    emulator.enqueue(Reply(text="Hello there friend"))
    options = {name: value for name, (_, value) in OPTIONS.items() if name in get_provider_class(provider).options}
    with registry_client(provider, emulator.base_url) as client:
        if how == "stream":
            with client.stream("Hi", **{k: list(v) if k == "stop" else v for k, v in options.items()}) as stream:
                assert "".join(stream) == "Hello there friend"
                reply = stream.completion()
        else:
            reply = client.complete("Hi", **{k: list(v) if k == "stop" else v for k, v in options.items()})
    span = otel.span()
    attributes = dict(span.attributes)
    model = client.resolve_model(None)
    host, port = emulator.base_url.split("//")[1].split("/")[0].split(":")
    assert (span.name, span.kind, span.status.status_code) == (f"chat {model}", SpanKind.CLIENT, StatusCode.UNSET)
    assert attributes["gen_ai.operation.name"] == "chat"
    assert attributes["gen_ai.provider.name"] == {"responses": "openai"}.get(provider, provider)
    assert attributes["gen_ai.request.model"] == model
    assert attributes["gen_ai.request.stream"] is True
    assert (attributes["server.address"], attributes["server.port"]) == (host, int(port))
    for name, (attribute, value) in OPTIONS.items():
        assert attributes.get(attribute) == (value if name in options else None), attribute
    if reply.model:
        assert attributes["gen_ai.response.model"] == reply.model
    assert attributes.get("gen_ai.response.id") == reply.response_id
    assert attributes["gen_ai.response.finish_reasons"] == (reply.finish_reason,)
    assert 0 < attributes["gen_ai.response.time_to_first_chunk"] < span.end_time - span.start_time
    usage = reply.usage
    assert attributes.get("gen_ai.usage.input_tokens") == (usage.prompt_tokens if usage else None)
    assert attributes.get("gen_ai.usage.output_tokens") == (usage.completion_tokens if usage else None)
    assert attributes["llmclients.outcome"] == "done"
    assert "gen_ai.input.messages" not in attributes and "gen_ai.output.messages" not in attributes


def test_cached_and_reasoning_tokens_and_several_choices(otel, emulator):
    usage = {
        "prompt_tokens": 20,
        "completion_tokens": 9,
        "total_tokens": 29,
        "prompt_tokens_details": {"cached_tokens": 16},
        "completion_tokens_details": {"reasoning_tokens": 4},
    }
    emulator.enqueue(Reply(text="two words", usage=usage))
    with openai_client(emulator) as client:
        client.complete("Hi", n=2, stream_options={"include_usage": True})
    attributes = otel.span().attributes
    assert attributes["gen_ai.request.choice.count"] == 2
    assert len(attributes["gen_ai.response.finish_reasons"]) == 2
    assert (attributes["gen_ai.usage.input_tokens"], attributes["gen_ai.usage.output_tokens"]) == (20, 9)
    assert attributes["gen_ai.usage.cache_read.input_tokens"] == 16
    assert attributes["gen_ai.usage.reasoning.output_tokens"] == 4


def test_a_call_that_is_not_streamed_says_so_and_has_no_time_to_first_chunk(otel, llm_emulator):
    emulator = llm_emulator("autonomous")
    emulator.enqueue(Reply(text="whole"))
    with registry_client("autonomous", emulator.base_url) as client:
        assert client.complete("Hi", stream=False).text == "whole"
    attributes = otel.span().attributes
    assert attributes["gen_ai.request.stream"] is False
    assert "gen_ai.response.time_to_first_chunk" not in attributes
    assert otel.points("gen_ai.client.operation.time_to_first_chunk") == []
    assert len(otel.points("gen_ai.client.operation.duration")) == 1


def test_until_the_opt_in_the_provider_is_also_under_its_v1_36_name(otel, emulator, monkeypatch):
    emulator.enqueue(Reply(text="old"), Reply(text="new"))
    with openai_client(emulator) as client:
        client.complete("Hi")
        monkeypatch.setenv("OTEL_SEMCONV_STABILITY_OPT_IN", "http, gen_ai_latest_experimental")
        otel.instrument()
        client.complete("Hi")
    old, new = otel.calls()
    assert old.attributes["gen_ai.system"] == old.attributes["gen_ai.provider.name"] == "openai"
    assert "gen_ai.system" not in new.attributes and new.attributes["gen_ai.provider.name"] == "openai"


def test_a_model_list_has_no_span(otel, emulator):
    with openai_client(emulator) as client:
        assert client.served_models()
    assert otel.calls() == []


# --- one span, ended once, whatever happens --------------------------------------------------


def test_an_error_status_ends_the_span_with_the_error_class(otel, emulator):
    emulator.enqueue(Reply(status=400, body={"error": {"message": f"bad request for {KEY}"}}))
    with openai_client(emulator, api_key=KEY) as client, pytest.raises(errors.LLMClientError) as caught:
        client.complete("Hi")
    span = otel.span()
    assert span.attributes["error.type"] == type(caught.value).__name__
    assert span.attributes["llmclients.outcome"] == "error"
    assert span.status.status_code is StatusCode.ERROR
    assert KEY not in span.status.description
    assert len(otel.ended.ends) == 1
    (point,) = [point for _, point in otel.points("gen_ai.client.operation.duration")]
    assert point.attributes["error.type"] == type(caught.value).__name__


def test_a_stream_cut_after_text_ends_the_span_with_the_error(otel, emulator):
    emulator.enqueue(Reply(text="one two three four five six", drop_after=120))
    with openai_client(emulator) as client, pytest.raises(errors.StreamInterruptedError):
        for _ in client.stream("Hi"):
            pass
    assert otel.span().attributes["error.type"] == "StreamInterruptedError"


def test_retries_are_events_of_the_one_span(otel, emulator):
    emulator.enqueue(Reply(status=503, body="busy", headers={"Retry-After": "0"}), Reply(text="at last"))
    with openai_client(emulator, max_retries=None, retry=llmclients.Retry(total=2, backoff_factor=0)) as client:
        client.transport.sleep = lambda seconds: None
        assert client.complete("Hi").text == "at last"
    span = otel.span()
    (retry,) = span.events
    assert retry.name == "llmclients.retry"
    assert retry.attributes["llmclients.retry.attempt"] == 1
    assert retry.attributes["llmclients.retry.reason"] == "HTTP 503"
    assert retry.attributes["llmclients.retry.delay"] == 0
    assert span.status.status_code is StatusCode.UNSET and "error.type" not in span.attributes


@pytest.mark.parametrize("how", ["break", "close", "with", "gc"])
def test_a_stream_left_early_ends_its_span_once(otel, emulator, how):
    emulator.enqueue(Reply(text="one two three four five six seven", delay=0.01))
    with openai_client(emulator) as client:
        stream = client.stream("Hi")
        if how == "break":
            for _ in stream:
                break
            del stream
        elif how == "close":
            next(stream)
            stream.close()
            stream.close()
        elif how == "with":
            with stream:
                next(stream)
        else:
            next(stream)
            del stream
            gc.collect()
        span = otel.ended.wait(1)[0]
    assert span.attributes["llmclients.outcome"] == "closed"
    assert span.status.status_code is StatusCode.UNSET
    gc.collect()
    assert len(otel.ended.ends) == len(otel.calls()) == 1


def test_an_asyncio_task_cancelled_mid_stream_ends_its_span(otel, emulator):
    emulator.enqueue(Reply(text=" ".join(["word"] * 200), delay=0.02))

    async def read(aclient: AsyncClient, first: asyncio.Event) -> None:
        async for _ in aclient.stream("Hi"):
            first.set()

    async def main() -> None:
        first = asyncio.Event()  # made in the loop: Python 3.9's binds to the loop at hand
        async with AsyncClient(openai_client(emulator)) as aclient:
            task = asyncio.ensure_future(read(aclient, first))
            await first.wait()
            task.cancel()
            with pytest.raises(asyncio.CancelledError):
                await task

    asyncio.run(main())
    (span,) = otel.ended.wait(1)
    assert span.attributes["llmclients.outcome"] == "closed"
    assert len(otel.calls()) == 1


def test_an_asyncio_task_cancelled_while_the_request_is_under_way_ends_its_span(otel, emulator):
    emulator.enqueue(Reply(text="late", head_delay=0.5))
    sent = threading.Event()

    class Sent(llmclients.Observer):
        def on_request(self, event: Any) -> None:
            sent.set()

    async def main() -> None:
        async with AsyncClient(openai_client(emulator, observers=[Sent()])) as aclient:
            task = asyncio.ensure_future(aclient.complete("Hi"))
            assert await asyncio.get_running_loop().run_in_executor(None, sent.wait, 5.0)
            task.cancel()
            with pytest.raises(asyncio.CancelledError):
                await task

    asyncio.run(main())
    (span,) = otel.ended.wait(1)
    assert span.attributes["llmclients.outcome"] == "closed"
    assert len(otel.calls()) == 1


def test_a_fallback_has_a_span_per_client_tried_under_the_callers(otel, emulator):
    emulator.enqueue(Reply(status=500, body="down"), Reply(text="second answers"))
    clients = [openai_client(emulator, model="first"), openai_client(emulator, model="second")]
    chain = llmclients.Fallback(clients)
    with chain, otel.tracer.start_as_current_span("caller") as caller, chain.stream("Hi") as stream:
        assert "".join(stream) == "second answers"
    first, second = otel.calls()
    assert (first.name, second.name) == ("chat first", "chat second")
    assert first.attributes["error.type"] == "ServerError"
    assert first.status.status_code is StatusCode.ERROR
    assert second.attributes["llmclients.outcome"] == "done"
    assert {first.parent.span_id, second.parent.span_id} == {caller.get_span_context().span_id}
    assert len(otel.ended.ends) == 3  # the two calls and the caller's


# --- the caller's span is the parent ---------------------------------------------------------


def test_a_sync_call_is_a_child_of_the_callers_span_which_stays_current(otel, emulator):
    emulator.enqueue(Reply(text="a b c d"))
    with openai_client(emulator) as client, otel.tracer.start_as_current_span("caller") as caller:
        for _ in client.stream("Hi"):
            assert trace.get_current_span() is caller  # the call's span is never made current
    assert trace.get_current_span() is trace.INVALID_SPAN
    span = otel.span()
    assert span.parent.span_id == caller.get_span_context().span_id
    assert span.context.trace_id == caller.get_span_context().trace_id


def test_an_async_call_is_a_child_of_the_tasks_span(otel, emulator):
    emulator.enqueue(Reply(text="async reply"))

    async def main() -> str:
        async with AsyncClient(openai_client(emulator)) as aclient:
            with otel.tracer.start_as_current_span("task") as task:
                reply = await aclient.complete("Hi")
                assert trace.get_current_span() is task
            return reply.text

    assert asyncio.run(main()) == "async reply"
    (task,) = [span for span in otel.exporter.get_finished_spans() if span.name == "task"]
    assert otel.span().parent.span_id == task.context.span_id


def test_a_batchs_calls_are_children_of_the_span_around_the_run(otel, emulator):
    emulator.enqueue(*[Reply(text=f"answer {n}") for n in range(4)])
    with openai_client(emulator) as client, otel.tracer.start_as_current_span("batch") as batch:
        results = list(run(client, [f"question {n}" for n in range(4)], concurrency=2, progress=False))
    assert len(results) == 4 and all(result.error is None for result in results)
    spans = otel.calls()
    assert len(spans) == 4
    assert {span.parent.span_id for span in spans} == {batch.get_span_context().span_id}


# --- content, propagation -----------------------------------------------------------------------


def test_content_is_captured_only_when_asked_and_keys_are_masked(otel, emulator):
    tools = [{"type": "function", "function": {"name": "weather", "description": "Now", "parameters": {"type": "object"}}}]
    messages = [
        {"role": "system", "content": "Be brief."},
        {"role": "user", "content": [{"type": "text", "text": f"my key is {KEY}"}, {"type": "image_url", "image_url": {"url": "data:image/png;base64,AAAA"}}]},
        {"role": "assistant", "content": None, "tool_calls": [{"id": "c1", "type": "function", "function": {"name": "weather", "arguments": '{"city": "Paris"}'}}]},
        {"role": "tool", "tool_call_id": "c1", "content": "sunny"},
    ]
    emulator.enqueue(Reply(text="not captured"), Reply(text=f"echo {KEY}"))
    with openai_client(emulator, api_key=KEY) as client:
        client.complete(messages, tools=tools)
        otel.instrument(capture_content=True)
        client.complete(messages, tools=tools)
    off, on = otel.calls()
    assert not [name for name in off.attributes if name.startswith(("gen_ai.input", "gen_ai.output", "gen_ai.system_", "gen_ai.tool"))]
    assert all(KEY not in str(value) for value in on.attributes.values())
    assert json.loads(on.attributes["gen_ai.system_instructions"]) == [{"type": "text", "content": "Be brief."}]
    assert json.loads(on.attributes["gen_ai.input.messages"]) == [
        {"role": "user", "parts": [{"type": "text", "content": "my key is ***"}, {"type": "blob", "modality": "image", "mime_type": "image/png"}]},
        {"role": "assistant", "parts": [{"type": "tool_call", "id": "c1", "name": "weather", "arguments": {"city": "Paris"}}]},
        {"role": "tool", "parts": [{"type": "tool_call_response", "id": "c1", "response": "sunny"}]},
    ]
    assert json.loads(on.attributes["gen_ai.output.messages"]) == [
        {"role": "assistant", "parts": [{"type": "text", "content": "echo ***"}], "finish_reason": "stop"}
    ]
    assert json.loads(on.attributes["gen_ai.tool.definitions"]) == [
        {"type": "function", "name": "weather", "description": "Now", "parameters": {"type": "object"}}
    ]


@pytest.mark.parametrize("value, captured", [("true", True), ("SPAN_ONLY", True), ("NO_CONTENT", False), ("false", False)])
def test_the_environment_variable_turns_capture_on(otel, emulator, monkeypatch, value, captured):
    monkeypatch.setenv("OTEL_INSTRUMENTATION_GENAI_CAPTURE_MESSAGE_CONTENT", value)
    otel.instrument()
    emulator.enqueue(Reply(text="hi"))
    with openai_client(emulator) as client:
        client.complete("Hi")
    assert ("gen_ai.input.messages" in otel.span().attributes) is captured


@pytest.mark.parametrize("propagate", [False, True])
def test_traceparent_goes_with_the_request_only_when_asked(otel, emulator, propagate):
    otel.instrument(propagate=propagate)
    emulator.enqueue(Reply(status=503, body="busy", headers={"Retry-After": "0"}), Reply(text="hi"))
    with openai_client(emulator, max_retries=None, retry=llmclients.Retry(total=1, backoff_factor=0)) as client:
        client.transport.sleep = lambda seconds: None
        client.complete("Hi", extra_body={"user": "u"})
    context = otel.span().context
    sent = [request.headers.get("traceparent") for request in emulator.requests]
    expected = f"00-{context.trace_id:032x}-{context.span_id:016x}-{context.trace_flags:02x}" if propagate else None
    assert sent == [expected, expected]  # every attempt, the one span's
    assert all(request.headers.get("baggage") is None for request in emulator.requests)


# --- metrics ------------------------------------------------------------------------------------


def test_metrics_have_the_conventions_names_units_buckets_and_values(otel, emulator):
    emulator.enqueue(Reply(text="a b c", usage={"prompt_tokens": 11, "completion_tokens": 3, "total_tokens": 14}))
    no_usage = b'data: {"id": "c2", "model": "emulator-1", "choices": [{"index": 0, "delta": {"content": "hi"}, "finish_reason": "stop"}]}\n\ndata: [DONE]\n\n'
    emulator.enqueue(Reply(raw=no_usage))
    with openai_client(emulator) as client:
        client.complete("Hi")
        assert client.complete("Hi").usage is None
    span = otel.calls()[0]
    tokens = {point.attributes["gen_ai.token.type"]: (unit, point) for unit, point in otel.points("gen_ai.client.token.usage")}
    assert set(tokens) == {"input", "output"}  # the second call reported none: nothing recorded
    assert [(unit, point.sum, point.count) for unit, point in tokens.values()] == [("{token}", 11, 1), ("{token}", 3, 1)]
    assert all(tuple(point.explicit_bounds) == TOKEN_BUCKETS for _, point in tokens.values())
    durations = otel.points("gen_ai.client.operation.duration")
    first_chunks = otel.points("gen_ai.client.operation.time_to_first_chunk")
    for points in (durations, first_chunks):
        ((unit, point),) = points  # the two calls share their attributes
        assert (unit, point.count, tuple(point.explicit_bounds)) == ("s", 2, DURATION_BUCKETS)
    assert first_chunks[0][1].sum <= durations[0][1].sum
    expected = {
        key: span.attributes[key]
        for key in ("gen_ai.operation.name", "gen_ai.provider.name", "gen_ai.request.model", "gen_ai.response.model", "server.address", "server.port")
    }
    assert {key: durations[0][1].attributes[key] for key in expected} == expected


# --- installing ---------------------------------------------------------------------------------


def test_instrument_twice_traces_once_and_uninstrument_stops(otel, emulator):
    otel.instrument()
    emulator.enqueue(Reply(text="one"), Reply(text="two"))
    with openai_client(emulator) as client:
        client.complete("Hi")
        llmclients.otel.uninstrument()
        llmclients.otel.uninstrument()
        assert not llmclients.otel.instrumented()
        client.complete("Hi")
    assert len(otel.calls()) == 1


def test_import_llmclients_imports_no_opentelemetry_and_otel_without_it_names_the_extra():
    script = (
        "import sys, llmclients, llmclients.aio, llmclients.batch\n"
        "assert not [m for m in sys.modules if m.startswith('opentelemetry')], 'imported'\n"
        "class Block:\n"
        "    def find_spec(self, name, path=None, target=None):\n"
        "        if name.startswith('opentelemetry'): raise ImportError('no ' + name)\n"
        "sys.meta_path.insert(0, Block())\n"
        "try:\n"
        "    import llmclients.otel\n"
        "except ImportError as exc:\n"
        "    print(exc)\n"
    )
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    assert "pip install opentelemetry-api" in done.stdout
