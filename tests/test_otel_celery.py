"""A call in a Celery task sent by llmclients.celery.submit is a child of the
span that submitted it: the trace context travels in the task's headers to a
worker (an embedded one, its own thread and context, on an in-memory broker)."""

from __future__ import annotations

from typing import Any, Iterator

import pytest
from celery import Celery
from celery.contrib.testing.worker import start_worker
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

import llmclients
import llmclients.otel
from llmclients.celery import batch_task, results, submit
from llmclients.testing import OpenAIEmulator, Reply


@pytest.fixture
def exporter() -> Iterator[InMemorySpanExporter]:
    exporter = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    llmclients.otel.instrument(tracer_provider=provider)
    exporter.tracer = provider.get_tracer("test")  # type: ignore[attr-defined]
    yield exporter
    llmclients.otel.uninstrument()
    provider.shutdown()


def test_the_tasks_call_is_a_child_of_the_submitters_span(exporter: Any) -> None:
    app = Celery("otel_test", broker="memory://", backend="cache+memory://")
    app.conf.update(broker_connection_retry_on_startup=True)
    with OpenAIEmulator() as emulator:
        emulator.enqueue(Reply(text="from the worker"))
        task = batch_task(app, lambda: llmclients.OpenAICompatible(base_url=emulator.base_url, model="m"))
        records = [{"id": "traced", "prompt": "Hi"}]
        with start_worker(app, perform_ping_check=False):
            with exporter.tracer.start_as_current_span("submitter") as submitter:
                assert submit(task, records) == (1, 0)
            (result,) = results(task, records, timeout=20)
    assert result["text"] == "from the worker"
    (call,) = [span for span in exporter.get_finished_spans() if span.name == "chat m"]
    assert call.context.trace_id == submitter.get_span_context().trace_id
    assert call.parent.span_id == submitter.get_span_context().span_id

