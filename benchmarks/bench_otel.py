"""The cost of OpenTelemetry: streaming throughput and per-call time with
``llmclients.otel.instrument()`` against the same client uninstrumented,
alternated and repeated in the same run. The instrumentation exports to the
SDK's providers as an application would configure them (a
``BatchSpanProcessor``, a ``MeterProvider`` with a reader), with an exporter
that drops what it gets: the figure is llmclients' cost and the SDK's, not
a collector's. The server runs in a child process (see ``bench_core.py``).

    python benchmarks/bench_otel.py            # about half a minute
    python benchmarks/bench_otel.py --quick    # fewer events and calls

Target (issue "Observability"): instrumented streaming throughput >= 0.9 x
uninstrumented; the per-call overhead is printed in microseconds.
"""

from __future__ import annotations

import argparse
import statistics
import time
from typing import Callable, List, Sequence, Tuple

from bench_core import _rendered_events, _serve_bulk, _start
from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics.export import InMemoryMetricReader
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor, SpanExporter, SpanExportResult

import llmclients
import llmclients.otel


class Dropping(SpanExporter):
    """Takes every span and keeps none."""

    def export(self, spans: Sequence[ReadableSpan]) -> SpanExportResult:
        return SpanExportResult.SUCCESS


def instrumented(on: bool, providers: Tuple[TracerProvider, MeterProvider]) -> None:
    if on:
        llmclients.otel.instrument(*providers)
    else:
        llmclients.otel.uninstrument()


def stream_once(client: llmclients.OpenAICompatible) -> int:
    with client.stream("x") as stream:
        return sum(1 for _ in stream)


def alternate(
    measure: Callable[[], float], providers: Tuple[TracerProvider, MeterProvider], rounds: int
) -> Tuple[List[float], List[float]]:
    """``measure()`` uninstrumented then instrumented, ``rounds`` times each, interleaved."""
    plain: List[float] = []
    traced: List[float] = []
    for _ in range(rounds):
        for on, figures in ((False, plain), (True, traced)):
            instrumented(on, providers)
            figures.append(measure())
    llmclients.otel.uninstrument()
    return plain, traced


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true")
    args = parser.parse_args()
    events, rounds, calls = (5_000, 3, 100) if args.quick else (50_000, 9, 400)

    tracer_provider = TracerProvider()
    tracer_provider.add_span_processor(BatchSpanProcessor(Dropping()))
    meter_provider = MeterProvider(metric_readers=[InMemoryMetricReader()])
    providers = (tracer_provider, meter_provider)

    bulk, bulk_port = _start(_serve_bulk, _rendered_events(events))
    short, short_port = _start(_serve_bulk, _rendered_events(3))
    try:
        bulk_client = llmclients.OpenAICompatible(base_url=f"http://127.0.0.1:{bulk_port}/chunked", model="bench")
        short_client = llmclients.OpenAICompatible(base_url=f"http://127.0.0.1:{short_port}/chunked", model="bench")

        def throughput() -> float:
            started = time.perf_counter()
            count = stream_once(bulk_client)
            return count / (time.perf_counter() - started)

        def per_call() -> float:
            started = time.perf_counter()
            for _ in range(calls):
                stream_once(short_client)
            return (time.perf_counter() - started) / calls * 1e6

        stream_once(bulk_client)  # warm: imports, the connection pool
        plain, traced = alternate(throughput, providers, rounds)
        print(f"Streaming throughput, {events:,} deltas a call (deltas/s; {rounds} rounds, alternated)")
        print(f"  uninstrumented  best {max(plain):>12,.0f}  median {statistics.median(plain):>12,.0f}")
        print(f"  instrumented    best {max(traced):>12,.0f}  median {statistics.median(traced):>12,.0f}")
        ratios = [after / before for before, after in zip(plain, traced)]
        print(f"  ratio           best {max(traced) / max(plain):.3f}x, median of pairs {statistics.median(ratios):.3f}x   (target >= 0.9)")

        plain, traced = alternate(per_call, providers, rounds)
        overheads = [after - before for before, after in zip(plain, traced)]
        print(f"\nPer call: {calls} calls of 3 deltas each, {rounds} rounds, alternated (microseconds a call)")
        print(f"  uninstrumented  median {statistics.median(plain):>8.0f}")
        print(f"  instrumented    median {statistics.median(traced):>8.0f}")
        print(f"  overhead        median {statistics.median(overheads):>8.0f} us a call (span, 3 histograms)")
        bulk_client.close()
        short_client.close()
    finally:
        bulk.terminate()
        short.terminate()
        tracer_provider.shutdown()
        meter_provider.shutdown()


if __name__ == "__main__":
    main()
