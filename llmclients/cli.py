"""The ``llmclients`` command.

Commands::

    llmclients chat [PROMPT | -]        stream a reply to PROMPT (to stdin's text with - or no PROMPT);
                                        on a terminal with no PROMPT, an interactive chat
    llmclients providers                the providers: models, capabilities, live status
    llmclients models [-p PROVIDER]     the model ids each provider takes, with their aliases;
                                        with --base-url, those the server serves
    llmclients check [-p PROVIDER ...]  probe providers live: ok / blocked / down, time to first delta
    llmclients emulate -p PROVIDER      serve that provider's emulator on 127.0.0.1 until Ctrl-C
    llmclients batch INPUT -o OUTPUT    answer a file of records (JSONL) or prompts (text) concurrently,
                                        within --rpm/--tpm; a rerun sends only what is missing or failed

``chat`` streams the reply to stdout as it arrives (``--show-reasoning``
streams the model's reasoning to stderr; tool calls are listed on stderr).
``--no-stream`` prints it once whole; ``--json`` prints one JSON object
instead (``text``, ``finish_reason``, ``usage``, ``model``, ``provider``,
``elapsed``, ``time_to_first_delta``, ``reasoning``, ``tool_calls``,
``refusal``, ``response_id``, ``request_id``, ``error``), also when the call
fails, and for usage errors. ``-o KEY VALUE`` passes any provider option,
VALUE read as JSON. ``--conversation FILE`` continues the conversation kept in
FILE (created 0600 if missing; checked to be writable before sending;
rewritten only after a turn succeeds, keeping its mode and symlink).
``--emulate`` answers from the provider's emulator, served inside the process:
no network needed. ``batch`` is :mod:`llmclients.batch` as a command: a
progress bar on stderr on a terminal (with the ``llmclients[batch]`` extra),
a one-line summary at the end; SIGINT or SIGTERM stops sending, lets the
calls in flight finish for ``--grace`` seconds, and exits 130 or 143. ``chat`` on a terminal with no prompt is an interactive
session (:mod:`llmclients.repl`).

Settings come from flags, else from the environment: ``LLMCLIENTS_PROVIDER``,
``LLMCLIENTS_MODEL``, ``LLMCLIENTS_BASE_URL``, ``LLMCLIENTS_TIMEOUT``,
``LLMCLIENTS_PROXY`` and ``LLMCLIENTS_API_KEY`` (which has no flag: a key on a
command line shows in ``ps``). ``HTTP_PROXY``, ``HTTPS_PROXY`` and ``NO_PROXY``
are honoured. ``--debug`` (or ``LLMCLIENTS_LOG=debug``; ``info`` shows only
retries) logs requests and retries to stderr with secrets masked, and
request bodies too. A usage error names the variable a wrong setting came
from.

Errors are one line on stderr. Exit codes:

    0    success; for ``check``, every probed provider is ok; for ``batch``, every record answered
    1    ``batch``: some records failed or were skipped as bad lines (run it again to retry them)
    2    bad usage or input: arguments, an empty prompt, an unknown provider or
         model, a missing base URL, an unreadable conversation file
    3    the service refused or failed (an HTTP error, no connection, a broken
         protocol, an error reported in the stream); for ``check``, a provider
         is blocked or down
    4    a timeout: connecting, or waiting for the next byte
    5    the stream broke off; the text received is already printed
    130  interrupted with Ctrl-C; the text received is already printed
    143  stopped by SIGTERM; the text received is already printed
"""

from __future__ import annotations

import argparse
import contextlib
import json
import logging
import math
import os
import re
import signal
import stat
import sys
import tempfile
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from typing import (
    Any,
    Callable,
    Dict,
    Iterator,
    List,
    NoReturn,
    Optional,
    Sequence,
    Tuple,
    Type,
)
from urllib.parse import urlsplit

from . import __version__, errors
from .conversation import Conversation
from .events import ReasoningDelta, TextDelta
from .masking import mask
from .provider import Provider
from .providers import get_provider_class, provider_names
from .providers.openai import OpenAICompatible
from .stream import Stream
from .transport import redact_url

EXIT_OK, EXIT_USAGE, EXIT_SERVICE, EXIT_TIMEOUT, EXIT_INTERRUPTED, EXIT_SIGINT = 0, 2, 3, 4, 5, 130
EXIT_SIGTERM = 143
#: ``batch``: some records failed, or bad input lines were skipped.
EXIT_SOME_FAILED = 1
#: The model the emulators answer as, for providers that have no default model.
EMULATOR_MODEL = "emulator-1"
CHECK_PROMPT = "Reply with the single word OK."
CHECK_TIMEOUT = 20.0

logger = logging.getLogger("llmclients.cli")


_PROVIDER_HELP = (
    f"one of {', '.join(provider_names())} (any case); default: $LLMCLIENTS_PROVIDER, else openai"
)

_DEBUG_HELP = "log requests, their bodies, and retries to stderr (secrets masked)"

#: The settings a flag gives, else the environment: attribute -> variable.
ENVIRONMENT = {
    "provider": "LLMCLIENTS_PROVIDER",
    "model": "LLMCLIENTS_MODEL",
    "base_url": "LLMCLIENTS_BASE_URL",
    "timeout": "LLMCLIENTS_TIMEOUT",
    "proxy": "LLMCLIENTS_PROXY",
}


class UsageError(Exception):
    """Bad arguments or input: one line on stderr, exit 2."""


class Terminated(KeyboardInterrupt):
    """SIGTERM arrived: stop as Ctrl-C stops, and exit 143."""


class _Parser(argparse.ArgumentParser):
    """argparse's parser, whose errors the command reports itself (and in JSON with --json)."""

    def error(self, message: str) -> NoReturn:
        self.print_usage(sys.stderr)
        raise UsageError(message)


# --- the parser ------------------------------------------------------------------------


def _parser() -> argparse.ArgumentParser:
    parser = _Parser(
        prog="llmclients",
        description="Stream answers from LLM chat services; check them; emulate them.",
        epilog="exit codes: 0 ok, 1 some batch records failed, 2 usage, 3 service error, 4 timeout, 5 stream broke off, 130 Ctrl-C, "
        "143 SIGTERM",
    )
    parser.add_argument("--version", action="version", version=f"llmclients {__version__}")
    parser.add_argument("--debug", action="store_true", help=_DEBUG_HELP)
    # Every command takes --debug after its name too; SUPPRESS keeps the one given before it.
    common = _Parser(add_help=False)
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
    chat.add_argument("-p", "--provider", type=str.lower, metavar="PROVIDER", help=_PROVIDER_HELP)
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
        help='any provider option; VALUE is JSON when it parses (-o response_format \'{"type":"json_object"}\')',
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

    commands.add_parser("providers", parents=[common], help="list the providers and their status")

    models = commands.add_parser("models", parents=[common], help="list the models of the providers")
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
    emulate.add_argument("-p", "--provider", type=str.lower, metavar="PROVIDER", help=_PROVIDER_HELP)
    emulate.add_argument("--port", type=int, default=0, help="the port on 127.0.0.1 (default: a free one)")
    _add_batch_parser(commands, common)
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
        type=_seconds,
        metavar="S",
        help="seconds to connect, and to wait for each byte; default: $LLMCLIENTS_TIMEOUT",
    )
    parser.add_argument("--proxy", metavar="URL", help="a proxy; default: $LLMCLIENTS_PROXY, $HTTPS_PROXY")


def _env(name: str) -> Optional[str]:
    return os.environ.get(name) or None


def _apply_environment(args: argparse.Namespace) -> None:
    """Fill the settings no flag gave from the environment, noting in
    ``args.from_env`` which variable gave which, so that errors can say so."""
    args.from_env = {}
    for attribute, variable in ENVIRONMENT.items():
        value: Any = _env(variable)
        if getattr(args, attribute, False) is not None or value is None:
            continue
        if attribute == "timeout":
            try:
                value = _seconds(value)
            except argparse.ArgumentTypeError as exc:
                raise UsageError(str(exc)) from None
        elif attribute == "provider":
            value = value.lower()
        setattr(args, attribute, value)
        args.from_env[attribute] = variable
    if getattr(args, "timeout", False) is None:
        args.timeout = getattr(args, "timeout_fallback", None)


def _provenance(args: Optional[argparse.Namespace], message: str = "") -> str:
    """Which settings came from the environment, for an error ``message`` that
    does not already name them ("" if none)."""
    from_env: Dict[str, str] = getattr(args, "from_env", {})
    shown = [
        f"{variable}={redact_url(str(getattr(args, attribute))) if attribute == 'base_url' else getattr(args, attribute)}"
        for attribute, variable in from_env.items()
        if attribute in ("provider", "model", "base_url") and variable not in message
    ]
    if not shown:
        return ""
    return f" (set in the environment: {', '.join(shown)}; a flag overrides it)"


def _seconds(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        value = math.nan
    if not 0 < value < math.inf:
        raise argparse.ArgumentTypeError(
            f"{text!r} is not a number of seconds (--timeout, LLMCLIENTS_TIMEOUT)"
        )
    return value


# --- main ----------------------------------------------------------------------------


def main(argv: Optional[Sequence[str]] = None) -> int:
    argv = sys.argv[1:] if argv is None else list(argv)
    args: Optional[argparse.Namespace] = None
    try:
        with _sigterm_interrupts():
            args = _parser().parse_args(argv)
            _apply_environment(args)
            level = "debug" if args.debug else os.environ.get("LLMCLIENTS_LOG", "")
            _configure_logging(level, secrets=[os.environ.get("LLMCLIENTS_API_KEY", "")])
            command: Callable[[argparse.Namespace], int] = COMMANDS[args.command]
            return command(args)
    except UsageError as exc:
        message = f"{exc}{_provenance(args, str(exc))}"
        if "--json" in argv and (args is None or args.command == "chat"):
            _Reply(getattr(args, "provider", None) or "", as_json=True, echo=False)._print_json(
                {"type": "UsageError", "message": one_line(message), "exit_code": EXIT_USAGE}
            )
        return _fail(EXIT_USAGE, message)
    except errors.LLMClientError as exc:
        return _fail(_exit_code(exc), _describe(exc, args))
    except Terminated:
        return _fail(EXIT_SIGTERM, "Terminated: stopped by SIGTERM")
    except KeyboardInterrupt:
        return _fail(EXIT_SIGINT, "Interrupted: stopped by Ctrl-C")


@contextlib.contextmanager
def _sigterm_interrupts() -> Iterator[None]:
    """SIGTERM stops the command as Ctrl-C does (the text kept, the connection
    closed), raising :class:`Terminated`; the previous handler is restored after."""

    def terminate(signum: int, frame: Any) -> None:
        raise Terminated()

    if threading.current_thread() is not threading.main_thread():
        yield  # signals reach the main thread only; main() called from elsewhere keeps them as they are
        return
    previous = signal.signal(signal.SIGTERM, terminate)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)


def _fail(code: int, message: str) -> int:
    """Print ``message`` as one line on stderr and return ``code``."""
    print(f"llmclients: {one_line(message)}", file=sys.stderr, flush=True)
    return code


def one_line(message: str) -> str:
    return redact(" ".join(message.split()), [os.environ.get("LLMCLIENTS_API_KEY", "")])


def _describe(exc: errors.LLMClientError, args: Optional[argparse.Namespace] = None) -> str:
    """The error as one line, with what may explain it: where a setting came
    from, a base URL that lacks its ``/v1``."""
    return f"{type(exc).__name__}: {exc}{_explanation(exc, args)}"


def _explanation(exc: errors.LLMClientError, args: Optional[argparse.Namespace]) -> str:
    """What may explain ``exc``, for the errors a setting can cause ("" for the others)."""
    if args is None or not isinstance(
        exc, (errors.InvalidRequestError, errors.ConnectError, errors.NotFoundError)
    ):
        return ""
    return _missing_v1_hint(exc, args) + _provenance(args)


def _missing_v1_hint(exc: errors.LLMClientError, args: argparse.Namespace) -> str:
    """The hint "did you mean .../v1?" for a 404 from an OpenAI-compatible server whose
    base URL stops short of the API's root (Ollama, vLLM, llama.cpp serve it under /v1)."""
    base_url: Optional[str] = getattr(args, "base_url", None)
    if not isinstance(exc, errors.NotFoundError) or not base_url or getattr(args, "emulate", False):
        return ""
    if (getattr(args, "provider", None) or "openai") != "openai":
        return ""
    if urlsplit(base_url).path.rstrip("/").endswith("/v1"):
        return ""
    return f"; did you mean --base-url {redact_url(base_url.rstrip('/'))}/v1?"


def _exit_code(exc: errors.LLMClientError) -> int:
    if isinstance(exc, errors.InvalidRequestError):
        return EXIT_USAGE
    if isinstance(exc, errors.RequestTimeoutError):
        return EXIT_TIMEOUT
    if isinstance(exc, errors.StreamInterruptedError):
        return EXIT_INTERRUPTED
    return EXIT_SERVICE


# --- chat ----------------------------------------------------------------------------


def _chat(args: argparse.Namespace) -> int:
    if args.prompt is None and sys.stdin.isatty():
        if args.json:
            raise UsageError("--json answers one prompt: give it as an argument, or pipe it in with -")
        from . import repl

        return repl.run(args)
    prompt = _read_prompt(args.prompt)
    state = load_conversation(args.conversation) if args.conversation else None
    provider = args.provider or (state or {}).get("provider") or "openai"
    if args.conversation:
        check_conversation_file(args, provider, state)
    reply = _Reply(
        provider,
        as_json=args.json,
        echo=not (args.json or args.no_stream),
        show_reasoning=args.show_reasoning and not args.json,
    )
    options = options_from_args(args)
    try:
        with open_client(provider, args) as client:
            if args.conversation:
                conversation = conversation_for(client, state, args)
                reply.model = conversation.model
                _stream(reply, lambda: conversation.stream(prompt, **options))
                save_conversation(args.conversation, conversation.to_dict())
            else:
                messages = [{"role": "user", "content": prompt}]
                if args.system:
                    messages.insert(0, {"role": "system", "content": args.system})
                reply.model = model = _model(client, args)
                _stream(reply, lambda: client.stream(messages, model=model, **options))
    except Terminated:
        return reply.failed(EXIT_SIGTERM, "Terminated", "stopped by SIGTERM")
    except KeyboardInterrupt:
        return reply.failed(EXIT_SIGINT, "Interrupted", "stopped by Ctrl-C")
    except errors.LLMClientError as exc:
        return reply.failed(_exit_code(exc), type(exc).__name__, f"{exc}{_explanation(exc, args)}")
    return reply.succeeded()


def _read_prompt(argument: Optional[str]) -> str:
    if argument is None or argument == "-":
        if argument is None and sys.stdin.isatty():
            raise UsageError("no prompt: give it as an argument, or pipe it in with - (chat - < prompt.txt)")
        prompt = sys.stdin.read().rstrip("\n")
    else:
        prompt = argument
    if not prompt.strip():
        raise UsageError("the prompt is empty")
    return prompt


def options_from_args(args: argparse.Namespace) -> Dict[str, Any]:
    options: Dict[str, Any] = {}
    if args.temperature is not None:
        options["temperature"] = args.temperature
    if args.max_tokens is not None:
        options["max_tokens"] = args.max_tokens
    if args.seed is not None:
        options["seed"] = args.seed
    if args.stop:
        options["stop"] = args.stop
    for key, value in args.option:
        try:
            options[key] = json.loads(value)
        except ValueError:
            options[key] = value  # a plain word: a string option
    return options


def _model(client: Provider, args: argparse.Namespace) -> Optional[str]:
    """The model to ask for: the one named, else the provider's default, else
    the only one an OpenAI-compatible server serves (llama.cpp, a vLLM with one
    model; the emulator too)."""
    model: Optional[str] = args.model
    if model or client.default_model:
        return model
    served: List[str] = []
    if isinstance(client, OpenAICompatible):
        try:
            served = client.served_models()
        except (errors.HTTPStatusError, errors.MalformedStreamError) as exc:
            logger.debug("the server does not list its models: %s", exc)  # many proxies do not
    if len(served) == 1:
        logger.debug("the server serves one model, %s: using it", served[0])
        return served[0]
    listed = f" (the server serves {len(served)}: llmclients models -p openai lists them)" if served else ""
    raise UsageError(
        f"{client.name} has no default model: name one with -m MODEL or LLMCLIENTS_MODEL{listed}"
    )


def _stream(reply: _Reply, open_stream: Callable[[], Stream]) -> None:
    reply.started = time.monotonic()
    with open_stream() as stream:
        for event in stream.events():
            if isinstance(event, TextDelta):
                if event.choice == 0:
                    reply.add(event.text)
            elif isinstance(event, ReasoningDelta):
                reply.add_reasoning(event.text)
    reply.finish(stream)


class _Reply:
    """One turn's reply as the terminal, or a script reading ``--json``, sees it."""

    def __init__(self, provider: str, *, as_json: bool, echo: bool, show_reasoning: bool = False) -> None:
        self.provider = provider
        self.as_json = as_json
        self.echo = echo
        self.show_reasoning = show_reasoning
        self.reasoning_shown = False
        self.details: Dict[str, Any] = {}
        self.parts: List[str] = []
        self.started = time.monotonic()
        self.first_delta: Optional[float] = None
        self.finish_reason: Optional[str] = None
        self.usage: Optional[Dict[str, Any]] = None
        self.model: Optional[str] = None

    def add(self, text: str) -> None:
        if self.first_delta is None:
            self.first_delta = time.monotonic() - self.started
            logger.debug("first delta after %.3fs", self.first_delta)
        self.parts.append(text)
        if self.echo:
            sys.stdout.write(text)
            sys.stdout.flush()

    def add_reasoning(self, text: str) -> None:
        if self.show_reasoning:
            sys.stderr.write(text)
            sys.stderr.flush()
            self.reasoning_shown = True

    def finish(self, stream: Stream) -> None:
        self.finish_reason = stream.finish_reason
        self.usage = stream.usage.to_dict() if stream.usage else None
        self.model = stream.model or self.model
        self.details = {
            "reasoning": stream.reasoning,
            "tool_calls": [{"id": c.id, "name": c.name, "arguments": c.arguments} for c in stream.tool_calls],
            "refusal": stream.refusal or None,
            "response_id": stream.response_id,
            "request_id": stream.request_id,
        }
        if self.reasoning_shown:
            sys.stderr.write("\n")
        if not self.as_json:
            for call in stream.tool_calls:
                print(f"llmclients: the model calls {call.name}({call.arguments})", file=sys.stderr)
        logger.debug(
            "reply ended after %.3fs: finish_reason=%s usage=%s model=%s",
            time.monotonic() - self.started,
            self.finish_reason,
            self.usage,
            self.model,
        )

    def succeeded(self) -> int:
        if self.as_json:
            self._print_json(None)
        elif self.echo:
            sys.stdout.write("\n")
        else:
            print("".join(self.parts))
        sys.stdout.flush()
        return EXIT_OK

    def failed(self, code: int, kind: str, message: str) -> int:
        """End the output cleanly (the text received stays printed) and report the error."""
        if self.as_json:
            self._print_json({"type": kind, "message": one_line(message), "exit_code": code})
        elif self.parts:
            sys.stdout.write("\n" if self.echo else "".join(self.parts) + "\n")
            sys.stdout.flush()
        return _fail(code, f"{kind}: {message}")

    def _print_json(self, error: Optional[Dict[str, Any]]) -> None:
        result = {
            "text": "".join(self.parts),
            "finish_reason": self.finish_reason,
            "usage": self.usage,
            "model": self.model,
            "provider": self.provider,
            "elapsed": round(time.monotonic() - self.started, 3),
            "time_to_first_delta": None if self.first_delta is None else round(self.first_delta, 3),
            **self.details,
            "error": error,
        }
        print(json.dumps(result, ensure_ascii=False), flush=True)


# --- conversations in a file ----------------------------------------------------------


def load_conversation(path: str) -> Optional[Dict[str, Any]]:
    """The state kept in ``path``, or None for a new conversation (no file, or an empty one)."""
    try:
        with open(path, encoding="utf-8") as file:
            text = file.read()
    except FileNotFoundError:
        return None
    except (OSError, UnicodeDecodeError) as exc:
        raise UsageError(f"cannot read the conversation file {path}: {exc}") from None
    if not text.strip():
        return None
    try:
        state = json.loads(text)
    except ValueError as exc:
        raise UsageError(f"{path} is not a conversation file: {exc}") from None
    if not isinstance(state, dict):
        raise UsageError(f"{path} is not a conversation file: not a JSON object")
    return state


def check_conversation_file(args: argparse.Namespace, provider: str, state: Optional[Dict[str, Any]]) -> None:
    """Refuse, before anything is sent, a turn whose conversation could not be
    kept: a file that cannot be written, a system prompt for a conversation that
    has one, a server-side thread that an emulator started afresh cannot know."""
    path: str = args.conversation
    directory = os.path.dirname(os.path.abspath(path))
    try:
        fd, probe = tempfile.mkstemp(dir=directory, prefix=".llmclients-", suffix=".tmp")
    except OSError as exc:
        raise UsageError(f"cannot save the conversation to {path}: {exc}") from None
    os.close(fd)
    os.unlink(probe)
    if state is None:
        return
    if args.system is not None:
        kept = [
            m.get("content")
            for m in state.get("messages") or ()
            if isinstance(m, dict) and m.get("role") == "system"
        ]
        if kept != [args.system]:
            raise UsageError(
                f"{path} already holds a conversation, whose system prompt stays: "
                "-s applies to a new one only (drop -s, or use a new file)"
            )
    if args.emulate and state.get("thread"):
        raise UsageError(
            f"the {provider} emulator keeps its server-side threads in memory, and --emulate starts a new "
            f"one each run: {path} cannot continue there (use llmclients emulate -p {provider} with "
            "--base-url, or chat interactively)"
        )


def conversation_for(
    client: Provider, state: Optional[Dict[str, Any]], args: argparse.Namespace
) -> Conversation:
    if state is None:
        seed = [{"role": "system", "content": args.system}] if args.system else None
        return client.conversation(seed, model=_model(client, args))
    try:
        conversation = client.conversation(state=state)
    except (KeyError, TypeError) as exc:
        raise UsageError(
            f"{args.conversation} is not a conversation file ({type(exc).__name__}: {exc})"
        ) from None
    if args.model:
        conversation.model = client.resolve_model(args.model)
    return conversation


def save_conversation(path: str, state: Dict[str, Any]) -> None:
    """Replace the file ``path`` names atomically: a crash never leaves half a file.

    What the user chose survives: a symlink stays one (its target is
    replaced, from a temporary file beside the target) and the file keeps
    its mode. A new file is 0600: it holds the whole conversation.
    """
    target = os.path.realpath(path)
    try:
        mode = stat.S_IMODE(os.stat(target).st_mode)
    except FileNotFoundError:  # a new file, or a symlink to one not made yet
        mode = 0o600
    except OSError as exc:
        raise UsageError(f"cannot save the conversation to {path}: {exc}") from None
    try:
        fd, temporary = tempfile.mkstemp(dir=os.path.dirname(target), prefix=".llmclients-", suffix=".tmp")
    except OSError as exc:
        raise UsageError(f"cannot save the conversation to {path}: {exc}") from None
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as file:
            json.dump(state, file, ensure_ascii=False, indent=2)
            file.write("\n")
        os.chmod(temporary, mode)  # mkstemp made it 0600
        os.replace(temporary, target)
    except OSError as exc:
        with contextlib.suppress(OSError):
            os.unlink(temporary)
        raise UsageError(f"cannot save the conversation to {path}: {exc}") from None


# --- the client ----------------------------------------------------------------------


@contextlib.contextmanager
def open_client(provider: str, args: argparse.Namespace, **kwargs: Any) -> Iterator[Provider]:
    """A client of ``provider`` as the flags and environment say; with
    ``--emulate``, of its emulator, served for as long as the block runs."""
    cls = get_provider_class(provider)
    kwargs["proxy"] = args.proxy
    kwargs["api_key"] = _env("LLMCLIENTS_API_KEY")
    if args.timeout is not None:
        kwargs["timeout"] = args.timeout
    with contextlib.ExitStack() as stack:
        base_url = args.base_url
        if args.emulate:
            from .testing import emulator_for

            base_url = stack.enter_context(emulator_for(provider)).base_url
        elif base_url:
            _check_base_url(base_url, args)
        elif not cls.default_base_url:
            raise UsageError(
                f"{provider} needs the server's URL: --base-url URL or LLMCLIENTS_BASE_URL "
                "(or --emulate for a local emulator)"
            )
        client = stack.enter_context(cls(base_url=base_url, **kwargs))
        logger.debug(
            "%r, timeout=%s, proxy=%s",
            client,
            args.timeout or "the client's default",
            redact_url(args.proxy) if args.proxy else None,
        )
        yield client


def _check_base_url(base_url: str, args: argparse.Namespace) -> None:
    """A base URL is http(s)://host...: catch a missing scheme here, with the
    fix, rather than as requests' "No connection adapters were found"."""
    source = "LLMCLIENTS_BASE_URL" if "base_url" in getattr(args, "from_env", {}) else "--base-url"
    parts = urlsplit(base_url)
    if parts.scheme in ("http", "https") and parts.netloc:
        return
    if "://" not in base_url:
        # redact_url needs a scheme to find the credentials it masks.
        shown = redact_url(f"http://{base_url}")[len("http://") :]
        raise UsageError(f"{source} {shown!r} has no scheme: add http:// (http://{shown}) or https://")
    raise UsageError(f"{source} {redact_url(base_url)!r} is not an http:// or https:// URL")


# --- providers, models -------------------------------------------------------------------


def _providers(args: argparse.Namespace) -> int:
    rows = [["NAME", "MODELS", "CAPABILITIES", "LIVE STATUS"]]
    for name in provider_names():
        cls = get_provider_class(name)
        if cls.models:
            models = f"{len(cls.models)}, default {cls.default_model}"
        else:
            models = "any the server serves"
        rows.append([name, models, _capabilities(cls), cls.status])
    _print_table(rows)
    print("\nllmclients check -p NAME probes a provider live; llmclients models -p NAME lists its models.")
    return EXIT_OK


_EVENT_FORMATS = {"sse": "SSE stream", "ndjson": "NDJSON stream", "text": "text stream"}


def _capabilities(cls: Type[Provider]) -> str:
    found = [_EVENT_FORMATS.get(cls.event_format, cls.event_format)]
    if cls.supports_system_message:
        found.append("system")
    if cls.supports_message_history:
        found.append("history")
    return ", ".join(found)


def _models(args: argparse.Namespace) -> int:
    names = [args.provider] if args.provider else provider_names()
    asks_a_server = args.emulate or args.base_url
    if args.provider and args.provider != "openai" and asks_a_server and "base_url" not in args.from_env:
        raise UsageError(
            f"{args.provider}'s models are listed by llmclients; only an openai server lists its own"
        )
    rows = [["PROVIDER", "MODEL", "ALIASES"]]
    for name in names:
        cls = get_provider_class(name)
        if name == "openai" and asks_a_server:
            with open_client(name, args) as client:
                assert isinstance(client, OpenAICompatible)
                rows.extend([name, model, ""] for model in client.served_models())
        elif not cls.models:
            rows.append(
                [name, "(any model the server serves; name it with -m, or list them with --base-url)", ""]
            )
        for model in cls.models:
            aliases = sorted(alias for alias, target in cls.model_aliases.items() if target == model)
            label = f"{model} (default)" if model == cls.default_model else model
            rows.append([name, label, ", ".join(aliases)])
    _print_table(rows)
    return EXIT_OK


def _print_table(rows: List[List[str]]) -> None:
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]) - 1)]
    for row in rows:
        cells = [cell.ljust(width) for cell, width in zip(row, widths)] + [row[-1]]
        print("  ".join(cells).rstrip())


# --- check -------------------------------------------------------------------------------


class _Probe:
    """The outcome of probing one provider."""

    def __init__(self, name: str, verdict: str, seconds: Optional[float], detail: str) -> None:
        self.name = name
        self.verdict = verdict  # "ok", "blocked", "down", or "skipped"
        self.seconds = seconds
        self.detail = detail

    def line(self) -> str:
        seconds = "-" if self.seconds is None else f"{self.seconds:.3f}s"
        return f"{self.name:<12} {self.verdict:<8} {seconds:>8}  {self.detail}"


def _check(args: argparse.Namespace) -> int:
    names, every = _check_targets(args)
    with ThreadPoolExecutor(max_workers=len(names)) as pool:
        probes = pool.map(lambda name: _probe(name, args, skip_unconfigured=every), names)
        failed = False
        for probe in probes:
            print(probe.line(), flush=True)
            if probe.verdict in ("blocked", "down"):
                failed = True
                status = get_provider_class(probe.name).status
                print(f"{'':<12} known status: {status}", flush=True)
    return EXIT_SERVICE if failed else EXIT_OK


def _check_targets(args: argparse.Namespace) -> Tuple[List[str], bool]:
    """The providers to probe, and whether that is every provider (which skips
    those that need a base URL and have none).

    ``-p`` names them; without any, LLMCLIENTS_PROVIDER does (openai when only a
    base URL or model is set); without that, every provider. A base URL or a
    model applies to one provider.
    """
    names: List[str] = list(dict.fromkeys(args.providers or []))
    every = False
    if not names:
        default = _env("LLMCLIENTS_PROVIDER")
        if default or args.base_url or args.model:
            names = [default or "openai"]
        else:
            names, every = provider_names(), True
    for name in names:
        get_provider_class(name)  # an unknown name is a usage error before any probe
    if len(names) > 1 and (args.base_url or args.model):
        raise UsageError("a base URL or model (flag or environment) applies to one provider: name it with -p")
    return names, every


def _probe(name: str, args: argparse.Namespace, *, skip_unconfigured: bool) -> _Probe:
    try:
        with open_client(name, args, max_retries=0) as client:
            model = _model(client, args)
            started = time.monotonic()
            with client.stream(CHECK_PROMPT, model=model) as stream:
                for _ in stream:
                    break
            seconds = time.monotonic() - started
            return _Probe(name, "ok", seconds, f"first delta from {stream.model or model or '?'}")
    except UsageError as exc:
        if not skip_unconfigured:
            raise
        return _Probe(name, "skipped", None, str(exc))
    except errors.LLMClientError as exc:
        return _Probe(name, _verdict(exc), None, " ".join(_describe(exc).split()))


def _verdict(exc: errors.LLMClientError) -> str:
    """The verdict on a failed probe: "blocked" when the service answers but
    refuses us (credentials, a bot check, a captcha, a rate limit), "down" when
    it does not answer as it should (no connection, a timeout, 404, 5xx, a
    broken stream)."""
    if isinstance(exc, (errors.BlockedError, errors.AuthenticationError, errors.RateLimitError)):
        return "blocked"
    if "captcha" in str(exc).lower():
        return "blocked"
    return "down"


# --- emulate -------------------------------------------------------------------------------


def _emulate(args: argparse.Namespace) -> int:
    from .testing import emulator_for

    try:
        args.provider = args.provider or "openai"
        emulator = emulator_for(args.provider, port=args.port)
    except ValueError as exc:
        raise UsageError(str(exc)) from None
    try:
        emulator.start()
    except OSError as exc:
        raise UsageError(f"cannot serve on 127.0.0.1:{args.port}: {exc.strerror or exc}") from None
    stop = threading.Event()
    previous = {sig: signal.signal(sig, lambda *_: stop.set()) for sig in (signal.SIGINT, signal.SIGTERM)}
    try:
        print(emulator.base_url, flush=True)
        model = "" if get_provider_class(args.provider).default_model else f" -m {EMULATOR_MODEL}"
        print(
            f"llmclients: serving the {args.provider} emulator; try: llmclients chat -p {args.provider}"
            f"{model} --base-url {emulator.base_url} 'Hello'. Ctrl-C stops it.",
            file=sys.stderr,
            flush=True,
        )
        while not stop.wait(0.2):
            pass
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
        emulator.stop()
    return EXIT_OK


# --- batch ---------------------------------------------------------------------------------


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
    batch.add_argument("-p", "--provider", type=str.lower, metavar="PROVIDER", help=_PROVIDER_HELP)
    _add_connection_options(batch)
    batch.add_argument(
        "--concurrency", type=_positive_int, default=8, metavar="N", help="calls at once (default 8)"
    )
    batch.add_argument("--rpm", type=_positive_float, metavar="N", help="at most N requests a minute")
    batch.add_argument("--tpm", type=_positive_float, metavar="N", help="at most N tokens a minute")
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
        "--grace", type=_seconds, default=30.0, metavar="S", help="after Ctrl-C, seconds for calls in flight"
    )
    batch.add_argument("--no-progress", action="store_true", help="no progress bar, even on a terminal")


def _positive_int(text: str) -> int:
    if not text.isdigit() or int(text) < 1:
        raise argparse.ArgumentTypeError(f"{text!r} is not a whole number of at least 1")
    return int(text)


def _positive_float(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        value = math.nan
    if not 0 < value < math.inf:
        raise argparse.ArgumentTypeError(f"{text!r} is not a positive number")
    return value


def _batch(args: argparse.Namespace) -> int:
    from . import batch
    from .config import Retry

    bad: List[batch.BadRecordError] = []
    records = _batch_records(args, bad)
    # The batch retries, not the client: a 429 then pauses every worker. A
    # connection per worker, kept (requests keeps 10 unless told otherwise).
    options = {"retry": Retry(total=0), "pool_size": args.concurrency}
    with open_client(args.provider or "openai", args, **options) as client:
        model = _model(client, args)
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
    from . import batch

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


# --- logging -------------------------------------------------------------------------------

#: Credentials that may appear in a logged URL or header, whatever the secret.
_SECRET_PATTERNS = [
    (
        re.compile(r"(?i)\b(authorization|x-api-key|api-key|cookie)(\s*[:=]\s*)[^\s,;]+(\s+[^\s,;]+)?"),
        r"\1\2***",
    ),
    (re.compile(r"(?i)([?&](?:api[_-]?key|key|token|access_token|sig)=)[^&\s\"']+"), r"\1***"),
    (re.compile(r"(//[^/\s:@]+:)[^@\s/]+@"), r"\1***@"),
]


def redact(text: str, secrets: Sequence[str] = ()) -> str:
    """``text`` with the given secrets and anything that looks like a credential masked."""
    text = mask(text, [secret for secret in secrets if secret])
    for pattern, replacement in _SECRET_PATTERNS:
        text = pattern.sub(replacement, text)
    return text


class _RedactingFormatter(logging.Formatter):
    def __init__(self, secrets: Sequence[str]) -> None:
        super().__init__("%(asctime)s.%(msecs)03d %(levelname)s %(name)s: %(message)s", "%H:%M:%S")
        self.secrets = [secret for secret in secrets if secret]

    def format(self, record: logging.LogRecord) -> str:
        return redact(super().format(record), self.secrets)


def _configure_logging(level_name: str, secrets: Sequence[str]) -> None:
    """Log llmclients' and urllib3's records at ``level_name`` to stderr, secrets masked."""
    level = {"debug": logging.DEBUG, "info": logging.INFO}.get(level_name.strip().lower())
    if level is None:
        return
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(_RedactingFormatter(secrets))
    for name in ("llmclients", "urllib3"):
        log = logging.getLogger(name)
        log.setLevel(level)
        log.addHandler(handler)


COMMANDS: Dict[str, Callable[[argparse.Namespace], int]] = {
    "chat": _chat,
    "providers": _providers,
    "models": _models,
    "check": _check,
    "emulate": _emulate,
    "batch": _batch,
}

if __name__ == "__main__":
    sys.exit(main())
