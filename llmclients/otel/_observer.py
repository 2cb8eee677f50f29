"""The observer that turns each chat call into a span and its measurements."""

from __future__ import annotations

from typing import Any, Dict, Optional

from opentelemetry import propagate, trace
from opentelemetry.context import Context
from opentelemetry.metrics import Meter
from opentelemetry.trace import Span, SpanKind, Status, StatusCode, Tracer

from .. import errors
from ..observers import EndEvent, FirstDeltaEvent, Observer, RequestEvent, RetryEvent
from ._attributes import (
    DURATION_BUCKETS,
    ERROR_TYPE,
    TOKEN_BUCKETS,
    TOKEN_TYPE,
    common_attributes,
    end_attributes,
    metric_attributes,
    request_attributes,
    span_name,
)
from ._content import input_attributes, output_attributes

__all__ = ["Instrumentation"]


class _Open:
    """What an open call's span needs until its end (kept in ``CallInfo.notes``)."""

    __slots__ = ("common", "first_chunk", "span", "streaming")

    def __init__(self, span: Span, common: Dict[str, Any], streaming: bool) -> None:
        self.span = span
        self.common = common
        self.streaming = streaming
        self.first_chunk: Optional[float] = None


class Instrumentation(Observer):
    """Spans and metrics of every chat call (a model list has neither).

    The span starts at the call's first request, in the thread and context
    that send it (the caller's, or a copy of it), without ever becoming the
    current span: nothing is attached to a context that a generator's yield
    could leave behind. It ends in :meth:`on_end`, which the call delivers
    exactly once, wherever it ends.
    """

    def __init__(self, tracer: Tracer, meter: Meter, *, capture_content: bool, propagate: bool, latest: bool) -> None:
        self.tracer = tracer
        self.capture_content = capture_content
        self.propagate = propagate
        self.latest = latest
        self.tokens = meter.create_histogram(
            "gen_ai.client.token.usage",
            unit="{token}",
            description="Number of input and output tokens used",
            explicit_bucket_boundaries_advisory=list(TOKEN_BUCKETS),
        )
        self.duration = meter.create_histogram(
            "gen_ai.client.operation.duration",
            unit="s",
            description="GenAI operation duration",
            explicit_bucket_boundaries_advisory=list(DURATION_BUCKETS),
        )
        self.first_chunk = meter.create_histogram(
            "gen_ai.client.operation.time_to_first_chunk",
            unit="s",
            description="Time to receive the first chunk in a streaming operation",
            explicit_bucket_boundaries_advisory=list(DURATION_BUCKETS),
        )

    def on_request(self, event: RequestEvent) -> None:
        call = event.call
        if call.operation != "chat":
            return
        opened: Optional[_Open] = call.notes.get(self)
        if opened is None:
            common = common_attributes(call, self.latest)
            attributes = request_attributes(call, common)
            if self.capture_content:
                attributes.update(input_attributes(call))
            span = self.tracer.start_span(span_name(call), kind=SpanKind.CLIENT, attributes=attributes)
            opened = call.notes[self] = _Open(span, common, attributes["gen_ai.request.stream"])
        if self.propagate:
            # The span alone, in an empty context: the caller's baggage stays home.
            propagate.inject(event.headers, context=trace.set_span_in_context(opened.span, Context()))

    def on_retry(self, event: RetryEvent) -> None:
        opened: Optional[_Open] = event.call.notes.get(self)
        if opened is not None:
            opened.span.add_event(
                "llmclients.retry",
                {
                    "llmclients.retry.attempt": event.attempt,
                    "llmclients.retry.reason": event.reason,
                    "llmclients.retry.delay": event.delay,
                    ERROR_TYPE: type(event.error).__name__,
                },
            )

    def on_first_delta(self, event: FirstDeltaEvent) -> None:
        opened: Optional[_Open] = event.call.notes.get(self)
        if opened is not None:
            opened.first_chunk = event.elapsed

    def on_end(self, event: EndEvent) -> None:
        opened: Optional[_Open] = event.call.notes.pop(self, None)
        if opened is None:  # a model list, or a call that ended before its request
            return
        span = opened.span
        try:
            span.set_attributes(end_attributes(event, opened.first_chunk if opened.streaming else None))
            if self.capture_content:
                span.set_attributes(output_attributes(event))
            if event.error is not None:
                span.set_status(Status(StatusCode.ERROR, _description(event.error)))
            self._measure(event, opened)
        finally:
            span.end()

    def _measure(self, event: EndEvent, opened: _Open) -> None:
        attributes = metric_attributes(opened.common, event)
        self.duration.record(event.duration, attributes)
        if opened.first_chunk is not None and opened.streaming:
            self.first_chunk.record(opened.first_chunk, attributes)
        usage = event.usage
        if usage is None:
            return
        for kind, count in (("input", usage.prompt_tokens), ("output", usage.completion_tokens)):
            if count is not None:  # only what the service reported
                self.tokens.record(count, {**attributes, TOKEN_TYPE: kind})


def _description(error: BaseException) -> str:
    """The status's description: an llmclients error's message (its secrets
    masked by the call); the class alone for anything else."""
    if isinstance(error, errors.LLMClientError):
        return str(error)
    return type(error).__name__
