"""Answer a file of prompts (or JSONL records) as JSON lines with ``llmclients.batch``: a job for cron.

    python examples/cron_batch.py prompts.txt -o answers.jsonl    # a rerun sends only what is missing or failed

The command ``llmclients batch prompts.txt -o answers.jsonl`` does the same,
with a progress bar and more flags; this is the Python API it is made of.
Each output line is one JSON object: ``id``, ``text``, ``finish_reason``,
``usage``, ``model``, ``error`` (null, or ``type``, ``message``,
``partial_text``), ``attempts``, ``elapsed``.

Settings come from the environment, as cron passes them: ``LLMCLIENTS_PROVIDER``
(default ``openai``), ``LLMCLIENTS_BASE_URL``, ``LLMCLIENTS_MODEL``,
``LLMCLIENTS_API_KEY``. Exit codes: 0 every prompt answered; 1 some failed
(run again to retry them); 2 bad usage.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from typing import List, Optional

import llmclients
from llmclients.batch import run

EXIT_OK, EXIT_SOME_FAILED, EXIT_USAGE = 0, 1, 2


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
        )
        open(args.prompts).close()
    except (OSError, ValueError) as exc:  # llmclients.InvalidRequestError is a ValueError
        print(f"cron_batch: {exc}", file=sys.stderr)
        return EXIT_USAGE
    with client:
        job = run(client, args.prompts, concurrency=args.concurrency, rpm=args.rpm, output=args.output)
        for result in job:  # in completion order; with -o, each is already in the file
            if args.output is None:
                print(json.dumps(result.to_dict(), ensure_ascii=False), flush=True)
    print(f"cron_batch: {job.stats.summary()}", file=sys.stderr)
    return EXIT_SOME_FAILED if job.stats.failed else EXIT_OK


if __name__ == "__main__":
    sys.exit(main())
