"""``llmclients emulate``: serve a provider's emulator on 127.0.0.1 until
Ctrl-C or SIGTERM, logging each request and reply on stderr, and answering
with the replies scripted by ``--reply JSON`` and ``--script FILE`` first.

A scripted reply is a JSON object of :class:`~llmclients.testing.Reply`'s
fields (``text``, ``deltas``, ``delay``, ``status``, ``body``, ``headers``,
``drop_after_deltas``, ...), plus ``reasoning`` (text) and ``tool_calls``
(``[{"name", "arguments", "id"}]``, ``arguments`` an object or a JSON
string), which the emulators of ``openai``, ``anthropic``, ``ollama`` and
``responses`` stream as their protocol does (``Emulator.reply_with``).
"""

from __future__ import annotations

import argparse
import json
import logging
import signal
import sys
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any, Dict, List, Tuple

from ..providers import get_provider_class
from ._common import EXIT_OK, UsageError, api_keys
from ._info import EMULATOR_MODEL
from ._logs import configure_logging

if TYPE_CHECKING:
    from ..testing import Emulator, Reply

__all__ = ["emulate_command", "replies_from_args"]


def emulate_command(args: argparse.Namespace) -> int:
    from ..testing import emulator_for  # the other commands need no emulator: they start faster

    try:
        args.provider = args.provider or "openai"
        emulator = emulator_for(args.provider, port=args.port, strict=args.strict)
    except ValueError as exc:
        raise UsageError(str(exc)) from None
    emulator.enqueue(*replies_from_args(emulator, args))
    if logging.getLogger("llmclients").getEffectiveLevel() > logging.INFO:
        configure_logging("info", secrets=api_keys())  # one line per request and reply; --debug adds bodies
    try:
        emulator.start()
    except OSError as exc:
        raise UsageError(f"cannot serve on 127.0.0.1:{args.port}: {exc.strerror or exc}") from None
    # The handler only notes the signal: an Event.set() there could wait
    # forever for the lock that the interrupted Event.wait() holds.
    signals: List[int] = []
    previous = {
        sig: signal.signal(sig, lambda signum, _: signals.append(signum)) for sig in (signal.SIGINT, signal.SIGTERM)
    }
    try:
        _greet(emulator, args)  # before the URL, which tells a waiting process the emulator is ready
        print(emulator.base_url, flush=True)
        while not signals:
            time.sleep(0.1)
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
        emulator.stop()
    return EXIT_OK


def _greet(emulator: Emulator, args: argparse.Namespace) -> None:
    model = "" if get_provider_class(args.provider).default_model else f" -m {EMULATOR_MODEL}"
    scripted = len(emulator.unused_replies)
    then = "then a 500 (--strict)" if args.strict else "then its echo"
    script = f" with {scripted} scripted repl{'y' if scripted == 1 else 'ies'} ({then})" if scripted else ""
    print(
        f"llmclients: serving the {args.provider} emulator{script}; try: llmclients chat -p {args.provider}"
        f"{model} --base-url {emulator.base_url} 'Hello'. Ctrl-C stops it.",
        file=sys.stderr,
        flush=True,
    )


def replies_from_args(emulator: Emulator, args: argparse.Namespace) -> List[Reply]:
    """The replies ``--script FILE`` and then each ``--reply JSON`` script, in order."""
    specs: List[Tuple[str, Any]] = []
    if args.script:
        specs += _read_script(args.script)
    specs += [(f"--reply {text}", _parse(text, "--reply")) for text in args.reply]
    return [_reply(emulator, spec, where) for where, spec in specs]


def _parse(text: str, where: str) -> Any:
    try:
        return json.loads(text)
    except ValueError as exc:
        raise UsageError(f"{where}: not JSON ({exc})") from None


def _read_script(path: str) -> List[Tuple[str, Any]]:
    """A JSON list of replies, one JSON reply, or JSON Lines (one reply a line)."""
    try:
        text = Path(path).read_text(encoding="utf-8")
    except OSError as exc:
        raise UsageError(f"cannot read the script {path}: {exc.strerror or exc}") from None
    try:
        whole = json.loads(text)
    except ValueError:
        lines = [(number, line) for number, line in enumerate(text.splitlines(), 1) if line.strip()]
        return [(f"{path}, line {number}", _parse(line, f"{path}, line {number}")) for number, line in lines]
    items = whole if isinstance(whole, list) else [whole]
    return [(f"{path}, reply {number}", item) for number, item in enumerate(items, 1)]


def _reply(emulator: Emulator, spec: Any, where: str) -> Reply:
    if not isinstance(spec, dict):
        raise UsageError(f"{where}: a reply is a JSON object, not {type(spec).__name__}")
    import dataclasses  # here, with the emulator: it imports inspect, which the other commands never need

    from ..testing import Reply

    known = {field.name for field in dataclasses.fields(Reply)} | {"reasoning", "tool_calls"}
    fields: Dict[str, Any] = dict(spec)
    unknown = sorted(set(fields) - known)
    if unknown:
        raise UsageError(
            f"{where}: no reply field {', '.join(unknown)}; the fields: {', '.join(sorted(known))}"
        )
    if isinstance(fields.get("raw"), str):
        fields["raw"] = fields["raw"].encode("utf-8")
    elif isinstance(fields.get("raw"), list):
        fields["raw"] = [str(part).encode("utf-8") for part in fields["raw"]]
    try:
        calls = [
            _tool_call(call, number) for number, call in enumerate(fields.pop("tool_calls", None) or (), 1)
        ]
        return emulator.reply_with(tool_calls=calls, **fields)
    except (TypeError, ValueError) as exc:
        raise UsageError(f"{where}: {exc}") from None


def _tool_call(call: Any, number: int) -> Tuple[str, str, str]:
    if not isinstance(call, dict) or not isinstance(call.get("name"), str):
        raise ValueError('a tool call is {"name": ..., "arguments": {...}}')
    arguments = call.get("arguments", {})
    if not isinstance(arguments, str):
        arguments = json.dumps(arguments)
    return str(call.get("id") or f"call_{number}"), call["name"], arguments
