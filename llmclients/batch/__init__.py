"""Batch jobs: many records answered concurrently, within rate limits, resumable.

::

    from llmclients.batch import run

    with llmclients.OpenAICompatible(base_url=...) as client:
        job = run(client, "questions.jsonl", concurrency=16, rpm=600, output="answers.jsonl")
        for result in job:          # in completion order; each is already in answers.jsonl
            ...
        print(job.stats.summary())

Input (:func:`read_records`) is JSONL, one record per line: ``id`` (optional:
a stable hash of the record stands in), ``messages`` or ``prompt``, and any
call options (``model``, ``temperature``, ``tools``, ...); or plain text, one
prompt per line. Output (:class:`ResultFile`) is JSONL, one line per finished
record, appended and flushed line by line; a rerun with the same ``output``
skips the ids answered there and retries the ones that failed.

Rate limits are two token buckets (:class:`Pacer`): requests and tokens per
minute. Tokens are estimated before a call and corrected from its ``usage``
after. A 429 pauses every worker for ``Retry-After`` (or a backoff), not
just the one that met it. The workers are threads over the one client, so
its connections are reused.

The package holds one part in each module: :mod:`~llmclients.batch._records`
(the input: :class:`Record`, :func:`read_records`, :func:`as_records`),
:mod:`~llmclients.batch._results` (the output: :class:`Result`,
:class:`ResultFile`, resuming and :func:`compact`),
:mod:`~llmclients.batch._pacing` (the rate limits: :class:`Pacer`) and
:mod:`~llmclients.batch._running` (:func:`run`, :class:`BatchRun` and the
retry policy). This module re-exports their names.
"""

from __future__ import annotations

from .._public import expose
from ._pacing import Pacer, TokenBucket, estimate_tokens, parse_duration
from ._records import JSONL_SUFFIXES as JSONL_SUFFIXES
from ._records import (
    BadRecordError,
    Record,
    as_records,
    count_records,
    read_records,
    record_from,
)
from ._records import PathLike as PathLike
from ._results import Result, ResultFile, answered_ids, compact, iter_results
from ._running import BatchRun, Stats, retry_after, retryable, run

# JSONL_SUFFIXES and PathLike (which llmclients.celery imports) stay
# importable from here, as when llmclients.batch was one module, but are
# not part of its __all__.
__all__ = [
    "BadRecordError",
    "BatchRun",
    "Pacer",
    "Record",
    "Result",
    "ResultFile",
    "Stats",
    "TokenBucket",
    "answered_ids",
    "as_records",
    "compact",
    "count_records",
    "estimate_tokens",
    "iter_results",
    "parse_duration",
    "read_records",
    "record_from",
    "retry_after",
    "retryable",
    "run",
]

expose(globals(), __name__, __all__)
