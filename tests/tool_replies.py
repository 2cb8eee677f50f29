"""Scripted replies with tool calls, for every provider that carries tools:
each emulator's own events for "this text, these calls, this finish"."""

from __future__ import annotations

import json
from typing import Callable, Dict, List, Sequence, Tuple

from llmclients.providers import entries
from llmclients.testing import Reply, anthropic, ollama, openai, responses

#: (id, name, arguments as the JSON text the model wrote)
Call = Tuple[str, str, str]


def _fragments(arguments: str, size: int = 7) -> List[str]:
    return [arguments[i : i + size] for i in range(0, len(arguments), size)] or [""]


def _openai(text: str, calls: Sequence[Call], finish: str) -> Reply:
    if not calls:
        return Reply(events=openai.text_chunks([text], finish_reason=finish))
    return Reply(events=openai.tool_call_chunks(list(calls), content=[text] if text else (), finish_reason=finish))


_ANTHROPIC_STOPS = {"stop": "end_turn", "tool_calls": "tool_use", "length": "max_tokens"}


def _anthropic(text: str, calls: Sequence[Call], finish: str) -> Reply:
    blocks = [anthropic.text_block(0, [text])] if text else []
    for call_id, name, arguments in calls:
        blocks.append(anthropic.tool_use_block(len(blocks), call_id, name, _fragments(arguments)))
    return Reply(events=anthropic.reply_events(blocks, stop_reason=_ANTHROPIC_STOPS[finish]))


def _ollama(text: str, calls: Sequence[Call], finish: str) -> Reply:
    # Ollama parses the model's calls itself and sends them whole, as objects:
    # a call the token limit cut never arrives as a call.
    lines = ollama.text_lines([text]) if text else []
    if calls:
        lines.append(ollama.tool_call_line([(i, name, json.loads(arguments)) for i, name, arguments in calls]))
    return Reply(events=lines, finish_reason="length" if finish == "length" else "stop")


def _responses(text: str, calls: Sequence[Call], finish: str) -> Reply:
    items = [responses.message([text])] if text else []
    items += [responses.function_call(name, _fragments(arguments), call_id=i) for i, name, arguments in calls]
    return Reply(events=items, finish_reason="length" if finish == "length" else "stop")


SCRIPTS: Dict[str, Callable[[str, Sequence[Call], str], Reply]] = {
    "openai": _openai,
    "anthropic": _anthropic,
    "ollama": _ollama,
    "responses": _responses,
}
#: Providers whose wire can carry a call cut in the middle of its arguments.
CUTTABLE = ("openai", "anthropic", "responses")


def tool_providers() -> List[str]:
    """Every registered provider that carries tools and has an emulator."""
    return [entry.name for entry in entries() if entry.emulator and "tools" in entry.load().capabilities]


def reply(provider: str, text: str = "", calls: Sequence[Call] = (), finish: str = "") -> Reply:
    """A reply of ``text`` and ``calls``; ``finish`` is "stop", "tool_calls"
    or "length" (by default "tool_calls" when there are calls, else "stop")."""
    return SCRIPTS[provider](text, calls, finish or ("tool_calls" if calls else "stop"))
