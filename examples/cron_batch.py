"""Answer a file of prompts (or JSONL records) as JSON lines with ``llmclients.batch``: a job for cron.

    LLMCLIENTS_BASE_URL=http://localhost:11434/v1 python examples/cron_batch.py prompts.txt -o answers.jsonl

A rerun sends only what is missing or failed. This is the Python API that
``llmclients batch prompts.txt -o answers.jsonl`` is made of, and it behaves
the same: the server's only model when none is set, bad lines reported and
skipped, SIGINT and SIGTERM stop gracefully, and the same exit codes. Each
output line is one JSON object: ``id``, ``text``, ``finish_reason``,
``usage``, ``model``, ``error`` (null, or ``type``, ``message``,
``partial_text``), ``attempts``, ``elapsed``.

Settings come from the environment, as cron passes them: ``LLMCLIENTS_PROVIDER``
(default ``openai``), ``LLMCLIENTS_BASE_URL``, ``LLMCLIENTS_MODEL`` (default: the
provider's, else the one model the server serves), ``LLMCLIENTS_API_KEY``.
Exit codes: 0 every prompt answered; 1 some failed or bad lines were skipped
(run again to retry them); 2 bad usage; 130 and 143 stopped by SIGINT and SIGTERM.
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import sys
from typing import Any, List, Optional

import llmclients
from llmclients.batch import read_records, run

EXIT_OK, EXIT_SOME_FAILED, EXIT_USAGE = 0, 1, 2
EXIT_ON_SIGNAL = {signal.SIGINT: 130, signal.SIGTERM: 143}
GRACE = 30.0  # seconds the calls in flight get to finish after a signal; a second signal ends it


def main(argv: Optional[List[str]] = None) -> int:
    parser = argparse.ArgumentParser(description="Answer a file of prompts as JSON lines.")
    parser.add_argument("prompts", help="a text file (one prompt per line) or JSONL records")
    parser.add_argument("-o", "--output", help="append the answers here; a rerun skips those answered")
    parser.add_argument("--concurrency", type=int, default=4)
    parser.add_argument("--rpm", type=float, help="at most this many requests a minute")
    args = parser.parse_args(argv)
    try:
        client = llmclients.get_client(
            os.environ.get("LLMCLIENTS_PROVIDER") or "openai",
            base_url=os.environ.get("LLMCLIENTS_BASE_URL") or None,
            model=os.environ.get("LLMCLIENTS_MODEL") or None,
            api_key=os.environ.get("LLMCLIENTS_API_KEY") or None,
            retry=llmclients.Retry(total=0),  # the batch retries, and pauses every worker on a 429
            pool_size=args.concurrency,
        )
        open(args.prompts).close()
    except (OSError, ValueError) as exc:  # llmclients.InvalidRequestError is a ValueError
        print(f"cron_batch: {exc}", file=sys.stderr)
        return EXIT_USAGE
    bad_lines = []
    with client:
        model = os.environ.get("LLMCLIENTS_MODEL") or client.default_model or only_model(client)
        if model is None:
            print(f"cron_batch: {client.name} has no default model: set LLMCLIENTS_MODEL", file=sys.stderr)
            return EXIT_USAGE
        records = read_records(args.prompts, report=lambda exc: skipped(exc, bad_lines))
        for_model = (with_model(record, model) for record in records)
        job = run(client, for_model, concurrency=args.concurrency, rpm=args.rpm, output=args.output)
        signals = stop_on_signals(job)
        for result in job:  # in completion order; with -o, each is already in the file
            if args.output is None:
                print(json.dumps(result.to_dict(), ensure_ascii=False), flush=True)
    skipped_note = f", {len(bad_lines)} bad lines skipped" if bad_lines else ""
    print(f"cron_batch: {job.stats.summary()}{skipped_note}", file=sys.stderr)
    if signals:
        return EXIT_ON_SIGNAL[signals[0]]
    return EXIT_SOME_FAILED if job.stats.failed or bad_lines else EXIT_OK


def only_model(client: Any) -> Optional[str]:
    """The model an OpenAI-compatible server serves, if it serves one only (llama.cpp, a vLLM)."""
    try:
        served = client.served_models() if client.lists_models else []
    except llmclients.LLMClientError:
        return None  # many proxies do not list models
    return served[0] if len(served) == 1 else None


def with_model(record: Any, model: str) -> Any:
    record.options.setdefault("model", model)  # a record's own model wins
    return record


def skipped(exc: Exception, bad_lines: List[Exception]) -> None:
    bad_lines.append(exc)
    print(f"cron_batch: skipped {exc}", file=sys.stderr, flush=True)


def stop_on_signals(job: Any) -> List[int]:
    """SIGINT and SIGTERM stop sending; a second one ends the grace at once."""
    seen: List[int] = []

    def stop(signum: int, frame: Any) -> None:
        seen.append(signum)
        job.stop(GRACE if len(seen) == 1 else 0.0)

    for signum in EXIT_ON_SIGNAL:
        signal.signal(signum, stop)
    return seen


if __name__ == "__main__":
    sys.exit(main())
