"""The interactive chat: ``llmclients chat`` on a terminal, with no prompt.

Each line typed is a user turn; the reply streams back as it arrives, and the
conversation goes on from there. Lines that start with ``/`` are commands::

    /exit             end the session (so does Ctrl-D)
    /reset            forget the turns so far (the system prompt stays)
    /system TEXT      set the system prompt (/system alone shows it)
    /model NAME       go on with another model (/model alone shows it)
    /save FILE        write the conversation to FILE, for --conversation FILE
    /help             list the commands

``//`` sends a line that starts with ``/``; a line of three double quotes
starts a turn of several lines, which another such line ends (as in ``ollama
run``: pasted text stays one turn). ``--show-reasoning`` prints the model's
reasoning on stderr, apart from the answer. Ctrl-C while a reply streams stops
that reply (the turn is not kept) and the session goes on; Ctrl-C at the
prompt clears the line. With ``--tools FILE.py`` (or ``--functions CODE``)
each reply's tool calls are run, each asked about first unless ``--yes``,
until the model answers; Ctrl-C then stops the loop, and the calls it left
are answered as not run. With ``--conversation FILE`` the session resumes the
conversation kept there and rewrites it after every turn. Line editing and
history come from :mod:`readline` where Python has it.
"""

from __future__ import annotations

import argparse
import contextlib
import sys
from typing import IO, Any, Callable, Dict, Optional, Union

from .. import errors
from .._core.provider import Provider
from .._core.stream import Stream
from ..conversation import Conversation, ToolLoopStream
from ..events import ReasoningDelta, TextDelta, ToolStart
from ._client import open_client, options_from_args, pass_through
from ._common import EXIT_OK, Terminated, UsageError, no_answer, one_line, quiet_cut_off
from ._conversations import check_conversation_file, conversation_for, load_conversation, save_conversation
from ._tools import ToolPrompts, load_functions

PROMPT = "> "
CONTINUATION = "... "
MULTILINE = '"""'
HELP = '''\
/exit             end the session (so does Ctrl-D)
/reset            forget the turns so far (the system prompt stays)
/system TEXT      set the system prompt (/system alone shows it)
/model NAME       go on with another model (/model alone shows it)
/save FILE        write the conversation to FILE, for --conversation FILE
/help             this list
//TEXT            send a line that starts with /
"""               start a turn of several lines; another """ ends it
Ctrl-C stops a reply as it streams; Ctrl-D or /exit ends the session.'''


def run(args: argparse.Namespace) -> int:
    """Run the session that ``args`` (the parsed ``chat`` flags) describe; its exit code."""
    state = load_conversation(args.conversation) if args.conversation else None
    provider = args.provider or (state or {}).get("provider") or "openai"
    if args.conversation:
        check_conversation_file(args, provider, state)
    with contextlib.suppress(ImportError):
        import readline  # noqa: F401  (line editing and history for input(), where Python has it)
    functions = load_functions(args)
    with open_client(provider, args) as client:
        conversation = conversation_for(client, state, args, functions)
        session = Session(
            client,
            conversation,
            options=pass_through(client, options_from_args(args)),
            path=args.conversation,
            show_reasoning=args.show_reasoning,
            tools=ToolPrompts(yes=args.yes, read=input) if functions else None,
        )
        return session.loop()


class Session:
    """One interactive conversation: reads lines, runs commands, streams replies.

    ``read`` is :func:`input` on a terminal; tests pass a script of lines.
    """

    def __init__(
        self,
        client: Provider,
        conversation: Conversation,
        *,
        options: Optional[Dict[str, object]] = None,
        path: Optional[str] = None,
        show_reasoning: bool = False,
        tools: Optional[ToolPrompts] = None,
        read: Callable[[str], str] = input,
        out: Optional[IO[str]] = None,
        err: Optional[IO[str]] = None,
    ) -> None:
        self.client = client
        self.conversation = conversation
        self.options = dict(options or {})
        self.show_reasoning = show_reasoning
        #: With tools, each turn is a tool loop, and these show and ask about its calls.
        self.tools = tools
        self.path = path
        self.read = read
        self.out = out or sys.stdout
        self.err = err or sys.stderr
        self.commands: Dict[str, Callable[[str], bool]] = {
            "exit": self._exit,
            "quit": self._exit,
            "reset": self._reset,
            "system": self._system,
            "model": self._model,
            "save": self._save,
            "help": self._help,
        }

    def loop(self) -> int:
        label = self.client.label or self.client.name
        self._say(
            f"Chatting with {self.conversation.model} ({label}). /help lists the commands; Ctrl-D ends."
        )
        while True:
            try:
                line = self.read(PROMPT)
            except EOFError:
                self.out.write("\n")
                return EXIT_OK
            except Terminated:
                raise
            except KeyboardInterrupt:
                self.out.write("\n")  # Ctrl-C at the prompt clears the line, as a shell does
                continue
            if line.strip() == MULTILINE:
                line = self._read_lines()
            if not self.handle(line):
                return EXIT_OK

    def _read_lines(self) -> str:
        """The lines typed up to the closing :data:`MULTILINE` (or Ctrl-D), as one
        turn's text; Ctrl-C drops them, as it clears a line at the prompt."""
        lines = []
        while True:
            try:
                line = self.read(CONTINUATION)
            except EOFError:
                break
            except Terminated:
                raise
            except KeyboardInterrupt:
                self.out.write("\n")
                return ""
            if line.strip() == MULTILINE:
                break
            lines.append(line)
        # A turn of several lines is sent as typed, even when it starts with "/".
        text = "\n".join(lines).strip()
        return "/" + text if text.startswith("/") else text

    def handle(self, line: str) -> bool:
        """Act on one line typed; False when the session should end."""
        text = line.strip()
        if not text:
            return True
        if text.startswith("/") and not text.startswith("//"):
            name, _, argument = text[1:].partition(" ")
            command = self.commands.get(name.lower())
            if command is None:
                self._warn(f"no command /{name}: /help lists them (// sends a line that starts with /)")
                return True
            return command(argument.strip())
        self.turn(text[1:] if text.startswith("//") else text)
        return True

    def turn(self, prompt: str) -> None:
        """Stream the reply to ``prompt`` (with tools, every reply of the loop);
        an error or Ctrl-C ends the turn, not the session."""
        printed = reasoned = False
        try:
            with quiet_cut_off(), self._open(prompt) as opened:
                events: Any = opened.events() if isinstance(opened, Stream) else opened
                for event in events:
                    if isinstance(event, ReasoningDelta) and self.show_reasoning:
                        self.err.write(event.text)
                        self.err.flush()
                        reasoned = True
                    elif isinstance(event, TextDelta) and event.choice == 0:
                        if reasoned and not printed:
                            self.err.write("\n")
                        self.out.write(event.text)
                        self.out.flush()
                        printed = True
                    elif isinstance(event, ToolStart):
                        self._end_line(printed)
                        printed = False
        except Terminated:
            raise
        except KeyboardInterrupt:
            self._end_line(printed)
            self._stopped()
            return
        except errors.LLMClientError as exc:
            self._end_line(printed)
            self._warn(f"{type(exc).__name__}: {exc}")
            return
        final = opened if isinstance(opened, Stream) else opened.reply
        assert final is not None  # a loop that ended without raising ends on a reply
        unanswered = no_answer(final)
        self._end_line(printed or not unanswered)
        if unanswered:
            self._warn(f"NoAnswer: {unanswered}")
        for call in final.tool_calls:
            self._warn(f"the model calls {call.name}({call.arguments})")
        if self.path:
            self._keep(self.path)

    def _open(self, prompt: str) -> Union[Stream, ToolLoopStream]:
        """The reply's stream; with tools, the tool loop's."""
        options: Dict[str, Any] = self.options
        if self.tools is None:
            return self.conversation.stream(prompt, **options)
        return self.conversation.run_stream(
            prompt, before_call=self.tools.before_call, after_call=self.tools.after_call, **options
        )

    def _stopped(self) -> None:
        """Ctrl-C: a reply cut short is not kept; a tool loop's calls left are answered as not run."""
        pending = self.conversation.pending_tool_calls
        if not pending:
            self._warn("stopped; this turn is not kept")
            return
        self.conversation.add_tool_results({call.id: "not run: the user stopped the tool loop" for call in pending})
        self._warn(f"stopped; {len(pending)} tool call(s) answered as not run")

    # --- commands ---------------------------------------------------------------------

    def _exit(self, argument: str) -> bool:
        return False

    def _reset(self, argument: str) -> bool:
        self.conversation = self._fresh(self._system_prompt())
        self._say("The conversation starts afresh.")
        return True

    def _system(self, argument: str) -> bool:
        if not argument:
            self._say(f"System prompt: {self._system_prompt() or '(none)'}")
            return True
        if self.conversation.thread:
            # The service keeps this conversation; its history cannot be sent again under a new prompt.
            self.conversation = self._fresh(argument)
            self._say(
                "System prompt set; the service kept the earlier turns, so the conversation starts afresh."
            )
            return True
        rest = [message for message in self.conversation.messages if message["role"] != "system"]
        self.conversation.messages = [{"role": "system", "content": argument}, *rest]
        self._say("System prompt set.")
        return True

    def _model(self, argument: str) -> bool:
        if not argument:
            self._say(f"Model: {self.conversation.model}")
            return True
        try:
            self.conversation.model = self.client.resolve_model(argument)
        except errors.InvalidRequestError as exc:
            self._warn(str(exc))
            return True
        self._say(f"Model: {self.conversation.model}")
        return True

    def _save(self, argument: str) -> bool:
        if not argument:
            self._warn("/save needs a file name: /save chat.json")
        elif self._keep(argument):
            self._say(f"Saved to {argument}; llmclients chat --conversation {argument} goes on from there.")
        return True

    def _help(self, argument: str) -> bool:
        self._say(HELP)
        return True

    # --- helpers ---------------------------------------------------------------------------

    def _system_prompt(self) -> Optional[str]:
        for message in self.conversation.messages:
            if message["role"] == "system":
                content = message["content"]
                return content if isinstance(content, str) else None
        return None

    def _fresh(self, system: Optional[str]) -> Conversation:
        old = self.conversation
        return self.client.conversation(
            model=old.model, system=system, tool_functions=old.toolbox.functions, **old.options
        )

    def _keep(self, path: str) -> bool:
        try:
            save_conversation(path, self.conversation.to_dict())
        except UsageError as exc:
            self._warn(str(exc))
            return False
        return True

    def _end_line(self, printed: bool) -> None:
        if printed:
            self.out.write("\n")
            self.out.flush()

    def _say(self, text: str) -> None:
        self.out.write(text + "\n")
        self.out.flush()

    def _warn(self, text: str) -> None:
        self.err.write(f"llmclients: {one_line(text)}\n")
        self.err.flush()
