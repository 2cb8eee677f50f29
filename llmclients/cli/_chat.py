"""The ``chat`` command: one prompt, its reply streamed to stdout (or printed
whole, or as one JSON object with ``--json``; every choice of ``-o n N``,
each under its label); on a terminal with no prompt, the interactive chat of
:mod:`llmclients.cli._repl`."""

from __future__ import annotations

import argparse
import json
import sys
import time
from typing import TYPE_CHECKING, Any, Callable, Dict, List, Optional, Tuple, Union

from .. import errors
from .._core.values import Completion
from ..events import ReasoningDelta, TextDelta, ToolStart
from ._client import model_for, open_client, options_from_args, pass_through
from ._common import (
    EXIT_OK,
    EXIT_SERVICE,
    EXIT_SIGINT,
    EXIT_SIGTERM,
    EXIT_USAGE,
    Terminated,
    UsageError,
    exit_code,
    explanation,
    fail,
    logger,
    no_answer,
    one_line,
    quiet_cut_off,
)
from ._conversations import check_conversation_file, conversation_for, load_conversation, save_conversation
from ._replies import chat_log
from ._tools import ToolPrompts, load_functions, prompts_for

if TYPE_CHECKING:  # the command's start-up loads no call machinery
    from .._core.stream import Stream
    from ..conversation import Conversation

__all__ = ["chat_command", "options_from_args", "print_usage_error"]


def chat_command(args: argparse.Namespace) -> int:
    with chat_log(args):
        return _chat(args)


def _chat(args: argparse.Namespace) -> int:
    if args.prompt is None and sys.stdin.isatty():
        if args.json or args.schema:
            option = "--json" if args.json else "--schema"
            raise UsageError(f"{option} answers one prompt: give it as an argument, or pipe it in with -")
        from ._repl import run as run_session

        return run_session(args)
    prompt = _read_prompt(args.prompt)
    functions = load_functions(args)
    prompts = prompts_for(args) if functions else None
    state = load_conversation(args.conversation) if args.conversation else None
    provider = args.provider or (state or {}).get("provider") or "openai"
    if args.conversation:
        check_conversation_file(args, provider, state)
    options = options_from_args(args)
    if args.schema:
        from ._schema import response_format_for  # it loads the schema code, which only --schema needs

        options["response_format"] = response_format_for(args.schema)
    reply = _Reply(
        provider,
        as_json=args.json,
        echo=not (args.json or args.no_stream or args.schema),
        show_reasoning=args.show_reasoning and not args.json,
        several=_asks_several(options),
        schema=options["response_format"] if args.schema else None,
    )
    try:
        with open_client(provider, args) as client:
            options = pass_through(client, options)
            if args.conversation or prompts:
                conversation = conversation_for(client, state, args, functions)
                reply.model = conversation.model
                if not prompts:
                    _stream(reply, lambda: conversation.stream(prompt, **options))
                    save_conversation(args.conversation, conversation.to_dict())
                else:
                    try:
                        _run_tools(reply, conversation, prompt, options, prompts)
                    finally:  # a tool loop that stopped keeps the turns it finished
                        if args.conversation:
                            save_conversation(args.conversation, conversation.to_dict())
            else:
                messages = [{"role": "user", "content": prompt}]
                if args.system:
                    messages.insert(0, {"role": "system", "content": args.system})
                reply.model = model = model_for(client, args)
                _stream(reply, lambda: client.stream(messages, model=model, **options))
    except Terminated:
        return reply.failed(EXIT_SIGTERM, "Terminated", "stopped by SIGTERM")
    except KeyboardInterrupt:
        return reply.failed(EXIT_SIGINT, "Interrupted", "stopped by Ctrl-C")
    except errors.LLMClientError as exc:
        return reply.failed(exit_code(exc), type(exc).__name__, f"{exc}{explanation(exc, args)}")
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


def _asks_several(options: Dict[str, Any]) -> bool:
    """Whether the call asks for several choices (``-o n 2``)."""
    n = options.get("n")
    return isinstance(n, int) and not isinstance(n, bool) and n > 1


def _stream(reply: _Reply, open_stream: Callable[[], Stream]) -> None:
    reply.started = time.monotonic()
    with quiet_cut_off(), open_stream() as stream:
        for event in stream.events():
            if isinstance(event, TextDelta):
                if event.choice == 0:
                    reply.add(event.text)
            elif isinstance(event, ReasoningDelta):
                reply.add_reasoning(event.text)
    reply.finish(stream)


def _run_tools(
    reply: _Reply, conversation: Conversation, prompt: str, options: Dict[str, Any], prompts: ToolPrompts
) -> None:
    """The tool loop: every turn's text streams to stdout; the calls and their results go to stderr."""
    reply.started = time.monotonic()
    loop = conversation.run_stream(prompt, before_call=prompts.before_call, after_call=prompts.after_call, **options)
    with quiet_cut_off(), loop:
        for event in loop:
            if isinstance(event, TextDelta):
                if event.choice == 0:
                    reply.add(event.text)
            elif isinstance(event, ReasoningDelta):
                reply.add_reasoning(event.text)
            elif isinstance(event, ToolStart):
                reply.next_turn()
    assert loop.reply is not None  # the loop ends on a reply, or raises
    reply.finish(loop.reply)


class _Reply:
    """One turn's reply as the terminal, or a script reading ``--json``, sees it."""

    def __init__(
        self,
        provider: str,
        *,
        as_json: bool,
        echo: bool,
        show_reasoning: bool = False,
        several: bool = False,
        schema: Optional[Dict[str, Any]] = None,
    ) -> None:
        self.provider = provider
        #: ``--schema``'s response format: the reply is checked against it and printed as JSON.
        self.schema = schema
        #: Several choices asked for: each is printed under its label.
        self.several = several
        #: The choices after the first: (index, text), printed after it.
        self.others: List[Tuple[int, str]] = []
        #: What to say of a reply that answered nothing (:func:`no_answer`), else None.
        self.unanswered: Optional[str] = None
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
        if self.echo and self.several and not self.parts:
            sys.stdout.write(_label(0))
        self.parts.append(text)
        if self.echo:
            sys.stdout.write(text)
            sys.stdout.flush()

    def next_turn(self) -> None:
        """A tool call comes after this turn's text: end its line; ``--json``
        keeps the last turn's text only."""
        if self.echo and self.parts and not self.parts[-1].endswith("\n"):
            sys.stdout.write("\n")
            sys.stdout.flush()
            self.parts.append("\n")
        if self.as_json:
            self.parts = []

    def add_reasoning(self, text: str) -> None:
        if self.show_reasoning:
            sys.stderr.write(text)
            sys.stderr.flush()
            self.reasoning_shown = True

    def finish(self, stream: Union[Stream, Completion]) -> None:
        choices = stream.choices
        self.finish_reason = stream.finish_reason
        self.usage = stream.usage.to_dict() if stream.usage else None
        self.model = stream.model or self.model
        self.details = {
            "reasoning": stream.reasoning,
            "tool_calls": [{"id": c.id, "name": c.name, "arguments": c.arguments} for c in stream.tool_calls],
            "refusal": stream.refusal or None,
            "response_id": stream.response_id,
            "request_id": stream.request_id,
            "choices": [choice.to_dict() for choice in choices],
            # With --tools, the timings of the last reply's call.
            "timings": stream.timings.to_dict() if stream.timings is not None else None,
        }
        self.others = [(choice.index, choice.text) for choice in choices[1:]]
        self.unanswered = no_answer(stream)
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
        if self.unanswered:
            return self.failed(EXIT_SERVICE, "NoAnswer", self.unanswered)
        if self.schema is not None:
            return self._print_structured(self.schema)
        if self.as_json:
            self._print_json(None)
        else:
            self._print_text()
        sys.stdout.flush()
        return EXIT_OK

    def _print_structured(self, schema: Dict[str, Any]) -> int:
        """``--schema``: the reply's JSON, checked against the schema (alone, or as ``parsed`` with ``--json``)."""
        from ._schema import check_reply

        try:
            data = check_reply("".join(self.parts), self.finish_reason, schema)
        except errors.StructuredOutputError as exc:
            return self.failed(EXIT_SERVICE, type(exc).__name__, str(exc))
        if self.as_json:
            self.details["parsed"] = data
            self._print_json(None)
        else:
            print(json.dumps(data, ensure_ascii=False, indent=2), flush=True)
        return EXIT_OK

    def _print_text(self) -> None:
        """The end of choice 0 (or all of it, unless it streamed), then the other choices."""
        if (self.several or self.others) and not (self.echo and self.parts):
            sys.stdout.write(_label(0))
        sys.stdout.write("\n" if self.echo else "".join(self.parts) + "\n")
        for index, text in self.others:
            sys.stdout.write(_label(index) + text + "\n")

    def failed(self, code: int, kind: str, message: str) -> int:
        """End the output cleanly (the text received stays printed) and report the error."""
        if self.as_json:
            self._print_json({"type": kind, "message": one_line(message), "exit_code": code})
        elif self.parts:
            sys.stdout.write("\n" if self.echo else "".join(self.parts) + "\n")
            sys.stdout.flush()
        return fail(code, f"{kind}: {message}")

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


def _label(index: int) -> str:
    return f"--- choice {index} ---\n"


def print_usage_error(provider: str, message: str) -> None:
    """``chat --json``'s answer to a usage error: its JSON object, with no reply in it."""
    _Reply(provider, as_json=True, echo=False)._print_json(
        {"type": "UsageError", "message": one_line(message), "exit_code": EXIT_USAGE}
    )
