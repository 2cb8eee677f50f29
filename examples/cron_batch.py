"""Answer a file of prompts, one per line, as JSON lines: a job for cron.

    python examples/cron_batch.py prompts.txt                     # JSON lines on stdout
    python examples/cron_batch.py prompts.txt -o answers.jsonl    # appended; re-runs skip answered prompts

Each output line is one JSON object: ``line`` (in the prompt file), ``prompt``,
``text``, ``finish_reason``, ``usage``, ``model``, ``elapsed`` (seconds) and
``error`` (null, or ``{"type", "message"}``; ``text`` then holds what arrived
before the error). Blank lines and lines starting with ``#`` are skipped.

With ``-o``, prompts that already have an answer without an error in the
output file are skipped, so the next run retries only the ones that failed.

Settings come from the environment, as cron passes them: ``LLMCLIENTS_PROVIDER``
(default ``openai``), ``LLMCLIENTS_BASE_URL``, ``LLMCLIENTS_MODEL``,
``LLMCLIENTS_API_KEY``, ``LLMCLIENTS_TIMEOUT`` (seconds, default 60) and
``LLMCLIENTS_PROXY``; ``HTTPS_PROXY`` is honoured too. A crontab line::

    LLMCLIENTS_BASE_URL=http://localhost:11434/v1
    LLMCLIENTS_MODEL=llama3.2
    15 3 * * *  cd /srv/batch && python cron_batch.py prompts.txt -o answers.jsonl || mail -s "batch failed" ops

Exit codes: 0 every prompt answered; 1 some prompts failed (their lines carry
the error; run again to retry them); 2 bad usage (no prompt file, bad settings).
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import sys
import time
from typing import Any, Dict, Iterator, List, Optional, Set, TextIO, Tuple

import llmclients

EXIT_OK, EXIT_SOME_FAILED, EXIT_USAGE = 0, 1, 2


def read_prompts(path: str) -> List[Tuple[int, str]]:
    """(line number, prompt) for each prompt in the file."""
    with open(path, encoding="utf-8") as file:
        lines = [(number, line.strip()) for number, line in enumerate(file, 1)]
    return [(number, line) for number, line in lines if line and not line.startswith("#")]


def answered(path: Optional[str]) -> Set[str]:
    """The prompts that already have an answer without an error in ``path``."""
    done: Set[str] = set()
    if path and os.path.exists(path):
        with open(path, encoding="utf-8") as file:
            for line in file:
                with contextlib.suppress(ValueError):
                    record = json.loads(line)
                    if record.get("error") is None:
                        done.add(record["prompt"])
    return done


def client_from_environment() -> llmclients.Provider:
    timeout = float(os.environ.get("LLMCLIENTS_TIMEOUT") or 60)
    return llmclients.get_client(
        os.environ.get("LLMCLIENTS_PROVIDER") or "openai",
        base_url=os.environ.get("LLMCLIENTS_BASE_URL") or None,
        model=os.environ.get("LLMCLIENTS_MODEL") or None,
        api_key=os.environ.get("LLMCLIENTS_API_KEY") or None,
        proxy=os.environ.get("LLMCLIENTS_PROXY") or None,
        timeout=(min(timeout, 10.0), timeout),
    )


def answer(client: llmclients.Provider, number: int, prompt: str) -> Dict[str, Any]:
    """One output record; an error is recorded, not raised."""
    record: Dict[str, Any] = {"line": number, "prompt": prompt}
    started = time.monotonic()
    try:
        reply = client.complete(prompt)
    except llmclients.LLMClientError as exc:
        record.update(text=exc.partial_text, finish_reason=None, usage=None, model=None)
        record["error"] = {"type": type(exc).__name__, "message": str(exc)}
    else:
        usage = reply.usage.to_dict() if reply.usage else None
        record.update(text=reply.text, finish_reason=reply.finish_reason, usage=usage, model=reply.model)
        record["error"] = None
    record["elapsed"] = round(time.monotonic() - started, 3)
    return record


@contextlib.contextmanager
def output(path: Optional[str]) -> Iterator[TextIO]:
    if path is None:
        yield sys.stdout
    else:
        with open(path, "a", encoding="utf-8") as file:
            yield file


def main(argv: Optional[List[str]] = None) -> int:
    parser = argparse.ArgumentParser(description="Answer a file of prompts as JSON lines.")
    parser.add_argument("prompts", help="a text file, one prompt per line")
    parser.add_argument("-o", "--output", help="append the answers to this file; skip prompts answered there")
    args = parser.parse_args(argv)
    try:
        prompts = read_prompts(args.prompts)
        client = client_from_environment()
    except (OSError, ValueError) as exc:  # llmclients.InvalidRequestError is a ValueError
        print(f"cron_batch: {exc}", file=sys.stderr)
        return EXIT_USAGE
    skip = answered(args.output)
    failures = 0
    with client, output(args.output) as out:
        for number, prompt in prompts:
            if prompt in skip:
                continue
            record = answer(client, number, prompt)
            failures += record["error"] is not None
            out.write(json.dumps(record, ensure_ascii=False) + "\n")
            out.flush()  # a record per prompt, even if the job is killed half-way
    if failures:
        print(f"cron_batch: {failures} of {len(prompts)} prompts failed", file=sys.stderr)
        return EXIT_SOME_FAILED
    return EXIT_OK


if __name__ == "__main__":
    sys.exit(main())
