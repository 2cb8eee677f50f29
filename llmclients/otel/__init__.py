"""OpenTelemetry for every client in the process: GenAI spans and metrics.

``pip install 'llmclients[otel]'`` (``opentelemetry-api``; the SDK and its
exporters are the application's choice), then::

    import llmclients.otel
    llmclients.otel.instrument()      # tracer_provider=, meter_provider=: the global ones by default
    llmclients.otel.uninstrument()

:func:`instrument` attaches one observer (:func:`llmclients.observers.attach`)
that follows the GenAI semantic conventions:

* **One span per chat call**, kind CLIENT, named ``chat {model}``: a child of
  the span current where the request is sent, which is the caller's, also
  through :mod:`llmclients.aio` and :mod:`llmclients.batch` (their threads
  run in a copy of the caller's context) and a Celery task sent by
  :func:`llmclients.celery.submit` (the trace context travels in the task's
  headers). It starts at the first request and ends exactly once: at the
  stream's end, on an error (``error.type`` is the llmclients error's class,
  the status ERROR), when the caller stops early (``break``, ``close()``,
  leaving ``with``, a dropped stream, an asyncio task cancelled: the status
  stays unset, ``llmclients.outcome`` is ``"closed"``). Retries are the
  span's ``llmclients.retry`` events (attempt, reason, delay, error.type).
  The span is never made current: a generator's yield cannot leave it behind.
* A :class:`~llmclients.Fallback` gives one span per client tried, siblings
  under the caller's span: those that failed carry their ``error.type``,
  the last is the client that answered.
* A model list has no span: the conventions define no such operation.
* **Metrics**: ``gen_ai.client.operation.duration`` (s),
  ``gen_ai.client.operation.time_to_first_chunk`` (s, streamed calls) and
  ``gen_ai.client.token.usage`` (``{token}``, ``gen_ai.token.type`` input or
  output; only the counts the service reported), with the conventions'
  advisory bucket boundaries.
* **Content** (``gen_ai.input.messages``, ``gen_ai.output.messages``,
  ``gen_ai.system_instructions`` (the system turns), ``gen_ai.tool.definitions``)
  only when asked: ``capture_content=True``, or
  ``OTEL_INSTRUMENTATION_GENAI_CAPTURE_MESSAGE_CONTENT`` set to ``true`` (or
  ``SPAN_ONLY`` / ``SPAN_AND_EVENT``: content goes on the span; no event is
  emitted). The client's keys are masked in it, as in error messages.
* **Conventions version**: the latest names (``gen_ai.provider.name``,
  ``gen_ai.input.messages``...). Until ``OTEL_SEMCONV_STABILITY_OPT_IN``
  names ``gen_ai_latest_experimental``, spans also carry ``gen_ai.system``,
  the provider's attribute up to v1.36.0, for dashboards built on it.
* **Propagation**: ``propagate=True`` adds the span's ``traceparent`` (by the
  global propagator, from the span alone: no baggage) to each HTTP request.
  Off by default: trace ids sent to a third-party API are a choice.

:func:`instrument` again replaces the settings (one observer, never two);
calls already open finish with the settings they began with.
:func:`context_headers` and :func:`remote_context` carry a trace context to
work that another process does (what :mod:`llmclients.celery` uses).
"""

from __future__ import annotations

import os
import threading
from contextlib import contextmanager
from typing import Any, Dict, Iterator, Mapping, Optional

try:
    from opentelemetry import context, metrics, propagate, trace
except ImportError as exc:  # pragma: no cover - the extra is installed in the tests
    raise ImportError(
        "llmclients.otel needs OpenTelemetry's API: pip install 'llmclients[otel]' (opentelemetry-api)"
    ) from exc

from .. import __version__, observers
from ._attributes import latest_conventions
from ._observer import Instrumentation

__all__ = [
    "CAPTURE_CONTENT_VARIABLE",
    "context_headers",
    "instrument",
    "instrumented",
    "remote_context",
    "uninstrument",
]

#: The environment variable that turns content capture on.
CAPTURE_CONTENT_VARIABLE = "OTEL_INSTRUMENTATION_GENAI_CAPTURE_MESSAGE_CONTENT"
_CAPTURE_VALUES = {"true", "1", "yes", "span_only", "span_and_event"}
_SCHEMA_URL = "https://opentelemetry.io/schemas/1.37.0"

_installed: Optional[Instrumentation] = None
_lock = threading.Lock()


def instrument(
    tracer_provider: Optional[Any] = None,
    meter_provider: Optional[Any] = None,
    capture_content: Optional[bool] = None,
    propagate: bool = False,
) -> None:
    """Trace and measure every chat call of every client in this process, from the next call on.

    ``tracer_provider`` and ``meter_provider`` default to the global ones;
    ``capture_content`` (None: the environment variable decides) records the
    messages and the reply; ``propagate`` sends ``traceparent`` with each request.
    """
    global _installed
    if capture_content is None:
        capture_content = os.environ.get(CAPTURE_CONTENT_VARIABLE, "").strip().lower() in _CAPTURE_VALUES
    instrumentation = Instrumentation(
        trace.get_tracer("llmclients", __version__, tracer_provider, schema_url=_SCHEMA_URL),
        metrics.get_meter("llmclients", __version__, meter_provider, schema_url=_SCHEMA_URL),
        capture_content=capture_content,
        propagate=propagate,
        latest=latest_conventions(),
    )
    with _lock:
        if _installed is not None:
            observers.detach(_installed)
        observers.attach(instrumentation)
        _installed = instrumentation


def uninstrument() -> None:
    """Stop tracing and measuring, from the next call on; nothing if not instrumented."""
    global _installed
    with _lock:
        if _installed is not None:
            observers.detach(_installed)
            _installed = None


def instrumented() -> bool:
    """True between :func:`instrument` and :func:`uninstrument`."""
    return _installed is not None


def context_headers() -> Dict[str, str]:
    """The current trace context as message headers (``traceparent``, by the
    global propagator), for work that another process does: what
    :func:`llmclients.celery.submit` adds to each task it sends."""
    headers: Dict[str, str] = {}
    propagate.inject(headers)
    return headers


@contextmanager
def remote_context(headers: Mapping[str, Any]) -> Iterator[None]:
    """Make the trace context in ``headers`` (from :func:`context_headers`)
    current for the block: the calls made in it are children of the span
    that sent the work. Headers without one leave the context as it is."""
    extracted = propagate.extract({key: value for key, value in headers.items() if isinstance(value, str)})
    token = context.attach(extracted)
    try:
        yield
    finally:
        context.detach(token)
