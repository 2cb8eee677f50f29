"""The conversation a ``chat --conversation FILE`` continues: read from its
file, checked before anything is sent, and saved back atomically."""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import stat
import sys
import tempfile
from typing import TYPE_CHECKING, Any, Callable, Dict, Optional, Sequence

from ._client import model_for
from ._common import UsageError

if TYPE_CHECKING:  # the command's start-up loads no call machinery
    from .._core.provider import Provider
    from ..conversation import Conversation

__all__ = ["check_conversation_file", "conversation_for", "load_conversation", "save_conversation"]


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
    client: Provider,
    state: Optional[Dict[str, Any]],
    args: argparse.Namespace,
    functions: Sequence[Callable[..., Any]] = (),
) -> Conversation:
    """A new conversation, or the one ``state`` holds; ``functions`` as its tools (when any)."""
    tools: Dict[str, Any] = {"tools": list(functions)} if functions else {}
    if state is None:
        seed = [{"role": "system", "content": args.system}] if args.system else None
        return client.conversation(seed, model=model_for(client, args), **tools)
    try:
        conversation = client.conversation(state=state, **tools)
    except (KeyError, TypeError) as exc:
        raise UsageError(
            f"{args.conversation} is not a conversation file ({type(exc).__name__}: {exc})"
        ) from None
    if args.model:
        conversation.model = client.resolve_model(args.model)
    # Said, so that a conversation carried on unawares (an old file, a reused name) shows.
    turns = sum(1 for message in conversation.messages if message.get("role") != "system")
    print(f"llmclients: resuming {turns} turns from {args.conversation}", file=sys.stderr, flush=True)
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
