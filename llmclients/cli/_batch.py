"""The ``batch`` command: :mod:`llmclients.batch` run over an input file, its
results appended to ``-o OUTPUT`` (or printed), stopping gracefully on
SIGINT or SIGTERM."""

from __future__ import annotations

import argparse
import contextlib
import json
import signal
import sys
import threading
from typing import Any, Iterator, List, Optional

from ._client import model_for, open_client
from ._common import EXIT_OK, EXIT_SIGINT, EXIT_SIGTERM, EXIT_SOME_FAILED, UsageError

__all__ = ["batch_command"]


def batch_command(args: argparse.Namespace) -> int:
    # llmclients.batch (not this module), imported only when the command runs.
    from .. import batch
    from .._http.config import Retry

    bad: List[batch.BadRecordError] = []
    records = _batch_records(args, bad)
    # The batch retries, not the client: a 429 then pauses every worker. A
    # connection per worker, kept (requests keeps 10 unless told otherwise).
    options = {"retry": Retry(total=0), "pool_size": args.concurrency}
    with open_client(args.provider or "openai", args, **options) as client:
        model = model_for(client, args)
        try:
            job = batch.run(
                client,
                (_with_model(record, model) for record in records),
                concurrency=args.concurrency,
                rpm=args.rpm,
                tpm=args.tpm,
                max_attempts=args.max_attempts,
                output=args.output,
                total=batch.count_records(args.input) if sys.stderr.isatty() else None,
                progress=False if args.no_progress else None,
            )
        except OSError as exc:
            raise UsageError(f"cannot write {args.output}: {exc.strerror or exc}") from None
        with _stopping_on_signals(job, args.grace) as signals:
            for result in job:
                if args.output is None:
                    print(json.dumps(result.to_dict(), ensure_ascii=False), flush=True)
    if args.output is not None and args.compact:
        batch.compact(args.output)
    bad_lines = f", {len(bad)} bad lines skipped" if bad else ""
    print(f"llmclients batch: {job.stats.summary()}{bad_lines}", file=sys.stderr, flush=True)
    if signals:
        return EXIT_SIGTERM if signals[0] == signal.SIGTERM else EXIT_SIGINT
    return EXIT_SOME_FAILED if job.stats.failed or bad else EXIT_OK


def _batch_records(args: argparse.Namespace, bad: List[Any]) -> Iterator[Any]:
    """The input's records; with ``--on-bad-line fail``, checked whole first,
    so that a bad line stops the batch before anything is sent."""
    from .. import batch

    try:
        with open(args.input, "rb"):
            pass  # unreadable: a usage error now, not once the client is open
        if args.on_bad_line == "fail":
            for _ in batch.read_records(args.input, on_bad="raise"):
                pass
        return batch.read_records(args.input, report=lambda exc: _skipped(exc, bad))
    except OSError as exc:
        raise UsageError(f"cannot read {args.input}: {exc.strerror or exc}") from None
    except batch.BadRecordError as exc:
        raise UsageError(f"{args.input}, {exc}") from None


def _skipped(exc: Any, bad: List[Any]) -> None:
    bad.append(exc)
    print(f"llmclients batch: skipped {exc}", file=sys.stderr, flush=True)


def _with_model(record: Any, model: Optional[str]) -> Any:
    if model:
        record.options.setdefault("model", model)
    return record


@contextlib.contextmanager
def _stopping_on_signals(job: Any, grace: float) -> Iterator[List[int]]:
    """SIGINT and SIGTERM stop ``job`` (no new calls; those in flight get
    ``grace`` seconds; a second signal ends them now); yields the signals seen."""
    seen: List[int] = []

    def stop(signum: int, frame: Any) -> None:
        seen.append(signum)
        job.stop(grace if len(seen) == 1 else 0.0)

    if threading.current_thread() is not threading.main_thread():
        yield seen
        return
    previous = {sig: signal.signal(sig, stop) for sig in (signal.SIGINT, signal.SIGTERM)}
    try:
        yield seen
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
