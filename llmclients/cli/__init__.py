"""The ``llmclients`` command.

Commands::

    llmclients chat [PROMPT | -]        stream a reply to PROMPT (to stdin's text with - or no PROMPT);
                                        on a terminal with no PROMPT, an interactive chat
    llmclients providers                the providers: models, capabilities, live status
    llmclients models [-p PROVIDER]     the model ids each provider takes, with their aliases;
                                        with --base-url, those the server serves
    llmclients check [-p PROVIDER ...]  probe providers live: ok / blocked / down, time to first delta
    llmclients emulate -p PROVIDER      serve that provider's emulator on 127.0.0.1 until Ctrl-C, logging
                                        each request and reply; --reply JSON, --script FILE script replies
    llmclients batch INPUT -o OUTPUT    answer a file of records (JSONL) or prompts (text) concurrently,
                                        within --rpm/--tpm; a rerun sends only what is missing or failed
    llmclients logs [on|off|path]       the replies chat logged (-n N, -q TEXT, -m MODEL, -c ID, --json),
                                        with totals; turn the log on or off; where it is

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
progress bar on stderr on a terminal (with the ``batch`` extra: tqdm),
a one-line summary at the end; SIGINT or SIGTERM stops sending, lets the
calls in flight finish for ``--grace`` seconds, and exits 130 or 143. ``chat`` on a terminal with no prompt is an interactive
session (:mod:`llmclients.cli._repl`).

Settings come from flags, else from the environment: ``LLMCLIENTS_PROVIDER``,
``LLMCLIENTS_MODEL``, ``LLMCLIENTS_BASE_URL``, ``LLMCLIENTS_TIMEOUT``,
``LLMCLIENTS_PROXY`` and ``LLMCLIENTS_API_KEY`` (which has no flag: a key on a
command line shows in ``ps``; a provider's own variable, ``ANTHROPIC_API_KEY``
for ``-p anthropic``, comes before it). ``HTTP_PROXY``, ``HTTPS_PROXY`` and ``NO_PROXY``
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

The package holds one part of the command in each module:
:mod:`~llmclients.cli._common` (exit codes, errors, settings),
:mod:`~llmclients.cli._parser` (the arguments), :mod:`~llmclients.cli._chat`
with :mod:`~llmclients.cli._conversations` and :mod:`~llmclients.cli._client`,
:mod:`~llmclients.cli._info` (``providers``, ``models``, ``check``,
``emulate``, in :mod:`~llmclients.cli._emulate`), :mod:`~llmclients.cli._batch` and :mod:`~llmclients.cli._logs`
(redaction, ``--debug``), :mod:`~llmclients.cli._replies` (the reply log,
``logs``). This module runs them: :func:`main`.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import signal
import sys
import threading
from typing import Any, Callable, Dict, Iterator, Optional, Sequence

from .. import errors
from .._public import expose
from ._batch import batch_command
from ._chat import chat_command, print_usage_error
from ._client import open_client, options_from_args
from ._common import (
    ENVIRONMENT,
    EXIT_INTERRUPTED,
    EXIT_OK,
    EXIT_SERVICE,
    EXIT_SIGINT,
    EXIT_SIGTERM,
    EXIT_SOME_FAILED,
    EXIT_TIMEOUT,
    EXIT_USAGE,
    Terminated,
    UsageError,
    api_keys,
    apply_environment,
    describe,
    exit_code,
    fail,
    one_line,
    provenance,
)
from ._conversations import check_conversation_file, conversation_for, load_conversation, save_conversation
from ._emulate import emulate_command
from ._info import (
    CHECK_PROMPT,
    EMULATOR_MODEL,
    check_command,
    models_command,
    providers_command,
)
from ._logs import configure_logging, redact
from ._parser import CHECK_TIMEOUT, build_parser
from ._replies import logs_command

# llmclients.cli was one module: these are the names it held, which
# the tests import from here.
__all__ = [
    "CHECK_PROMPT",
    "CHECK_TIMEOUT",
    "COMMANDS",
    "EMULATOR_MODEL",
    "ENVIRONMENT",
    "EXIT_INTERRUPTED",
    "EXIT_OK",
    "EXIT_SERVICE",
    "EXIT_SIGINT",
    "EXIT_SIGTERM",
    "EXIT_SOME_FAILED",
    "EXIT_TIMEOUT",
    "EXIT_USAGE",
    "Terminated",
    "UsageError",
    "check_conversation_file",
    "conversation_for",
    "load_conversation",
    "main",
    "one_line",
    "open_client",
    "options_from_args",
    "redact",
    "save_conversation",
]

expose(globals(), __name__, __all__)

#: Each command's function, by the command's name.
COMMANDS: Dict[str, Callable[[argparse.Namespace], int]] = {
    "chat": chat_command,
    "providers": providers_command,
    "models": models_command,
    "check": check_command,
    "emulate": emulate_command,
    "batch": batch_command,
    "logs": logs_command,
}


def main(argv: Optional[Sequence[str]] = None) -> int:
    argv = sys.argv[1:] if argv is None else list(argv)
    args: Optional[argparse.Namespace] = None
    try:
        with _sigterm_interrupts():
            args = build_parser().parse_args(argv)
            apply_environment(args)
            level = "debug" if args.debug else os.environ.get("LLMCLIENTS_LOG", "")
            configure_logging(level, secrets=api_keys())
            command: Callable[[argparse.Namespace], int] = COMMANDS[args.command]
            return command(args)
    except UsageError as exc:
        message = f"{exc}{provenance(args, str(exc))}"
        if "--json" in argv and (args is None or args.command == "chat"):
            print_usage_error(getattr(args, "provider", None) or "", message)
        return fail(EXIT_USAGE, message)
    except errors.LLMClientError as exc:
        return fail(exit_code(exc), describe(exc, args))
    except Terminated:
        return fail(EXIT_SIGTERM, "Terminated: stopped by SIGTERM")
    except KeyboardInterrupt:
        return fail(EXIT_SIGINT, "Interrupted: stopped by Ctrl-C")


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
