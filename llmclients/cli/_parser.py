"""The command line: :func:`build_parser` gives the ``llmclients`` command's
argparse parser, every subcommand's arguments and help texts with it."""

from __future__ import annotations

import argparse
import sys
from typing import Any, NoReturn

from .. import __version__
from ..providers import provider_names
from ._common import UsageError, positive_number, seconds

__all__ = ["CHECK_TIMEOUT", "Parser", "build_parser"]

#: ``check``'s --timeout when neither the flag nor LLMCLIENTS_TIMEOUT gives one.
CHECK_TIMEOUT = 20.0


_DEBUG_HELP = "log requests, their bodies, and retries to stderr (secrets masked)"


class Parser(argparse.ArgumentParser):
    """argparse's parser, whose errors the command reports itself (and in JSON with --json)."""

    def error(self, message: str) -> NoReturn:
        self.print_usage(sys.stderr)
        raise UsageError(message)


def _provider_help() -> str:
    """-p's help, from the registry as it is now (a provider may be registered after import)."""
    return f"one of {', '.join(provider_names())} (any case); default: $LLMCLIENTS_PROVIDER, else openai"


def build_parser() -> argparse.ArgumentParser:
    parser = Parser(
        prog="llmclients",
        description="Stream answers from LLM chat services; check them; emulate them.",
        epilog="exit codes: 0 ok, 1 some batch records failed, 2 usage, 3 service error, 4 timeout, 5 stream broke off, 130 Ctrl-C, "
        "143 SIGTERM",
    )
    parser.add_argument("--version", action="version", version=f"llmclients {__version__}")
    parser.add_argument("--debug", action="store_true", help=_DEBUG_HELP)
    # Every command takes --debug after its name too; SUPPRESS keeps the one given before it.
    common = Parser(add_help=False)
    common.add_argument("--debug", action="store_true", default=argparse.SUPPRESS, help=_DEBUG_HELP)
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    chat = commands.add_parser(
        "chat", parents=[common], help="stream a reply to a prompt, or chat on a terminal"
    )
    chat.add_argument(
        "prompt",
        nargs="?",
        help="the prompt; - reads it from stdin (so does no prompt, with stdin piped); "
        "no prompt on a terminal starts an interactive chat",
    )
    chat.add_argument("-p", "--provider", type=str.lower, metavar="PROVIDER", help=_provider_help())
    chat.add_argument("-s", "--system", help="a system prompt (for a new conversation)")
    chat.add_argument(
        "--temperature", type=float, metavar="T", help="sampling temperature (0: the most likely words)"
    )
    chat.add_argument(
        "--max-tokens",
        type=int,
        metavar="N",
        # Aura sends it as tokenLimit, a budget for the history: the server caps replies itself.
        help="the most tokens the reply may have; for aura, the token budget the server trims "
        "the conversation to (not a reply length; default 8192, at least ~800)",
    )
    chat.add_argument(
        "-o",
        "--option",
        nargs=2,
        action="append",
        default=[],
        metavar=("KEY", "VALUE"),
        help="any provider option; VALUE is JSON when it parses (-o response_format "
        '\'{"type":"json_object"}\'; -o n 2 prints every choice); for openai, an option '
        "llmclients does not know goes to the server as typed, in extra_body "
        "(-o chat_template_kwargs '{\"enable_thinking\":false}')",
    )
    chat.add_argument(
        "--schema",
        metavar="SCHEMA",
        help="answer with JSON of this schema, printed once whole: a JSON Schema file, or fields "
        "such as 'name str, age int: years' (types str, int, float, bool; str by default)",
    )
    chat.add_argument("--seed", type=int, metavar="N", help="a sampling seed, for repeatable replies")
    chat.add_argument(
        "--stop",
        action="append",
        metavar="TEXT",
        help="end the reply where the model would write TEXT (repeatable)",
    )
    chat.add_argument(
        "--show-reasoning",
        action="store_true",
        help="print the model's reasoning, apart from the answer, on stderr",
    )
    _add_connection_options(chat)
    chat.add_argument("--no-stream", action="store_true", help="print the reply once it is whole")
    chat.add_argument("--json", action="store_true", help="print one JSON object with the reply")
    chat.add_argument("--conversation", metavar="FILE", help="continue the conversation kept in FILE")
    chat.add_argument("--no-log", action="store_true", help="do not write this exchange to the reply log")
    chat.add_argument(
        "--tools",
        action="append",
        metavar="FILE.py",
        help="offer the functions FILE.py defines as tools, and run the calls the model makes "
        "(asking first on a terminal; each call and its result shown on stderr); repeatable",
    )
    chat.add_argument(
        "--functions",
        action="append",
        metavar="CODE",
        help="offer the functions CODE defines as tools, as --tools does "
        "(--functions 'def add(a: int, b: int) -> int: return a + b'); repeatable",
    )
    chat.add_argument(
        "-y", "--yes", action="store_true", help="run the tools' calls without asking (needed without a terminal)"
    )

    commands.add_parser("providers", parents=[common], help="list the providers and their status")

    models = commands.add_parser(
        "models",
        parents=[common],
        help="list the models of the providers (with --base-url or --emulate: only that server's)",
    )
    models.add_argument(
        "-p", "--provider", type=str.lower, metavar="PROVIDER", help="only this provider's (any case)"
    )
    _add_server_options(models)

    check = commands.add_parser("check", parents=[common], help="probe providers live (a health check)")
    check.add_argument(
        "-p",
        "--provider",
        action="append",
        dest="providers",
        type=str.lower,
        metavar="PROVIDER",
        help="a provider to probe (repeatable); default: $LLMCLIENTS_PROVIDER, else every provider",
    )
    _add_connection_options(check)
    check.set_defaults(timeout_fallback=CHECK_TIMEOUT)

    emulate = commands.add_parser("emulate", parents=[common], help="serve a provider's emulator")
    emulate.add_argument("-p", "--provider", type=str.lower, metavar="PROVIDER", help=_provider_help())
    emulate.add_argument("--port", type=int, default=0, help="the port on 127.0.0.1 (default: a free one)")
    emulate.add_argument(
        "--reply",
        action="append",
        default=[],
        metavar="JSON",
        help='a scripted reply, answered in turn (repeatable): Reply\'s fields as JSON, {"text": "Hi"}, '
        '{"status": 429, "body": {...}}, {"text": "...", "drop_after_deltas": 2}, and (openai, anthropic, '
        'ollama, responses) "reasoning" and "tool_calls": [{"name": "weather", "arguments": {"city": "Paris"}}]',
    )
    emulate.add_argument(
        "--script",
        metavar="FILE",
        help="scripted replies from FILE (a JSON list, or one JSON reply a line), before --reply's",
    )
    emulate.add_argument(
        "--strict", action="store_true", help="once the scripted replies are used, answer 500 instead of the echo"
    )
    _add_batch_parser(commands, common)
    _add_logs_parser(commands, common)
    return parser


def _add_connection_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "-m",
        "--model",
        help="the model; default: $LLMCLIENTS_MODEL, else the provider's (else the one an openai server "
        "serves, when it serves one)",
    )
    _add_server_options(parser)


def _add_server_options(parser: argparse.ArgumentParser) -> None:
    where = parser.add_mutually_exclusive_group()
    where.add_argument(
        "--base-url",
        metavar="URL",
        help="the server, with its scheme (http://localhost:11434/v1); default: $LLMCLIENTS_BASE_URL",
    )
    where.add_argument(
        "--emulate", action="store_true", help="answer from the provider's local emulator (no network)"
    )
    parser.add_argument(
        "--timeout",
        type=seconds,
        metavar="S",
        help="seconds to connect, and to wait for each byte; default: $LLMCLIENTS_TIMEOUT",
    )
    parser.add_argument("--proxy", metavar="URL", help="a proxy; default: $LLMCLIENTS_PROXY, $HTTPS_PROXY")


def _add_batch_parser(commands: Any, common: argparse.ArgumentParser) -> None:
    batch = commands.add_parser(
        "batch", parents=[common], help="answer a file of records or prompts, concurrently and resumably"
    )
    batch.add_argument(
        "input", help="JSONL records (.jsonl: id, messages or prompt, options), or a text file of prompts"
    )
    batch.add_argument(
        "-o",
        "--output",
        metavar="FILE",
        help="append results to FILE, skipping ids answered there (default: stdout)",
    )
    batch.add_argument("-p", "--provider", type=str.lower, metavar="PROVIDER", help=_provider_help())
    _add_connection_options(batch)
    batch.add_argument(
        "--concurrency", type=_positive_int, default=8, metavar="N", help="calls at once (default 8)"
    )
    batch.add_argument("--rpm", type=positive_number, metavar="N", help="at most N requests a minute")
    batch.add_argument("--tpm", type=positive_number, metavar="N", help="at most N tokens a minute")
    batch.add_argument(
        "--max-attempts", type=_positive_int, default=3, metavar="N", help="tries per record (default 3)"
    )
    batch.add_argument(
        "--on-bad-line",
        choices=("skip", "fail"),
        default="skip",
        help="a line that is no record: reported and skipped (exit 1), or fatal before anything is sent",
    )
    batch.add_argument("--compact", action="store_true", help="then rewrite OUTPUT with one line per id")
    batch.add_argument(
        "--grace", type=seconds, default=30.0, metavar="S", help="after Ctrl-C, seconds for calls in flight"
    )
    batch.add_argument("--no-progress", action="store_true", help="no progress bar, even on a terminal")


def _add_logs_parser(commands: Any, common: argparse.ArgumentParser) -> None:
    logs = commands.add_parser(
        "logs", parents=[common], help="the replies chat logged: list, search, totals; turn the log on or off"
    )
    logs.add_argument(
        "action",
        nargs="?",
        choices=("list", "on", "off", "path"),
        default="list",
        help="list (the default) the newest replies, with totals; on/off: whether chat logs; path: where the log is",
    )
    logs.add_argument("-n", "--count", type=int, default=3, metavar="N", help="how many (default 3; 0: all)")
    logs.add_argument("-q", "--query", metavar="TEXT", help="only replies whose prompt or reply has these words")
    logs.add_argument("-m", "--model", help="only this model's replies")
    logs.add_argument("-c", "--conversation", metavar="ID", help="only this conversation's turns")
    logs.add_argument("--json", action="store_true", help="print the rows as a JSON list")


def _positive_int(text: str) -> int:
    if not text.isdigit() or int(text) < 1:
        raise argparse.ArgumentTypeError(f"{text!r} is not a whole number of at least 1")
    return int(text)
