"""The ``llmclients`` command.

``llmclients chat [-p PROVIDER] [-m MODEL] [--emulate] PROMPT`` streams a reply
to stdout as it arrives. ``--emulate`` serves the provider's emulator on
127.0.0.1 inside the process and points the client at it: no network needed.

Exit codes: 0 success, 2 bad usage or input, 3 the service refused or failed,
4 a timeout, 5 the stream broke off (the text received is already printed),
130 interrupted with Ctrl-C.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import sys
from typing import Any, Dict, Iterator, List, Optional

from . import errors
from .providers import get_provider_class, provider_names

EXIT_USAGE, EXIT_SERVICE, EXIT_TIMEOUT, EXIT_INTERRUPTED, EXIT_SIGINT = 2, 3, 4, 5, 130


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="llmclients", description="Stream answers from LLM services.")
    commands = parser.add_subparsers(dest="command", required=True)

    chat = commands.add_parser("chat", help="stream a reply to PROMPT")
    chat.add_argument("prompt", help="the prompt, or - to read it from stdin")
    chat.add_argument("-p", "--provider", default=os.environ.get("LLMCLIENTS_PROVIDER", "openai"))
    chat.add_argument("-m", "--model", default=os.environ.get("LLMCLIENTS_MODEL"))
    chat.add_argument("-s", "--system", help="a system prompt")
    chat.add_argument("--base-url", default=os.environ.get("LLMCLIENTS_BASE_URL"))
    chat.add_argument("--temperature", type=float)
    chat.add_argument("--max-tokens", type=int)
    chat.add_argument("--timeout", type=float, default=_env_float("LLMCLIENTS_TIMEOUT"))
    chat.add_argument("--proxy", default=os.environ.get("LLMCLIENTS_PROXY"))
    chat.add_argument(
        "--emulate", action="store_true", help="answer from the provider's local emulator (no network)"
    )

    commands.add_parser("providers", help="list the providers")
    return parser


def _env_float(name: str) -> Optional[float]:
    value = os.environ.get(name)
    return float(value) if value else None


def main(argv: Optional[List[str]] = None) -> int:
    args = _parser().parse_args(argv)
    if args.command == "providers":
        for name in provider_names():
            cls = get_provider_class(name)
            print(f"{name:<12} {cls.label:<28} {cls.status}")
        return 0
    try:
        return _chat(args)
    except KeyboardInterrupt:
        print(file=sys.stderr)
        return EXIT_SIGINT
    except errors.LLMClientError as exc:
        if exc.partial_text:
            print()
        print(f"llmclients: {type(exc).__name__}: {exc}", file=sys.stderr)
        return _exit_code(exc)


def _exit_code(exc: errors.LLMClientError) -> int:
    if isinstance(exc, errors.InvalidRequestError):
        return EXIT_USAGE
    if isinstance(exc, errors.RequestTimeoutError):
        return EXIT_TIMEOUT
    if isinstance(exc, errors.StreamInterruptedError):
        return EXIT_INTERRUPTED
    return EXIT_SERVICE


def _chat(args: argparse.Namespace) -> int:
    prompt = sys.stdin.read() if args.prompt == "-" else args.prompt
    messages = [{"role": "user", "content": prompt}]
    if args.system:
        messages.insert(0, {"role": "system", "content": args.system})
    options: Dict[str, Any] = {}
    if args.temperature is not None:
        options["temperature"] = args.temperature
    if args.max_tokens is not None:
        options["max_tokens"] = args.max_tokens
    with _client(args) as client, client.stream(messages, model=args.model, **options) as stream:
        for text in stream:
            sys.stdout.write(text)
            sys.stdout.flush()
    sys.stdout.write("\n")
    return 0


@contextlib.contextmanager
def _client(args: argparse.Namespace) -> Iterator[Any]:
    cls = get_provider_class(args.provider)
    kwargs: Dict[str, Any] = {"proxy": args.proxy}
    if args.timeout is not None:
        kwargs["timeout"] = args.timeout
    if os.environ.get("LLMCLIENTS_API_KEY"):
        kwargs["api_key"] = os.environ["LLMCLIENTS_API_KEY"]
    with contextlib.ExitStack() as stack:
        if args.emulate:
            from .testing import emulator_for

            emulator = stack.enter_context(emulator_for(args.provider))
            kwargs["base_url"] = emulator.base_url
            if not (args.model or cls.default_model):
                args.model = "emulator-1"
        elif args.base_url:
            kwargs["base_url"] = args.base_url
        client = stack.enter_context(cls(**kwargs))
        yield client


if __name__ == "__main__":
    sys.exit(main())
