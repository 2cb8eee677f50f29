"""Flattening a chat history into one prompt, for services that take a single text.

Some services keep the history themselves and take only the new turn's text
(AllenAI), others take one string and no roles at all. These helpers follow
gpt4free's (``g4f/providers/helper.py``, mid-2025) exactly, so that a prompt
built here is the prompt those services were used with:

Content given as a list of parts counts as its text parts, joined by newlines
(gpt4free flattened lists so too).

* :func:`format_prompt` — one message: its content unchanged; several: one
  ``"Role: content"`` line each (blank ones skipped), then ``"\\nAssistant:"``;
* :func:`last_user_message` — the trailing run of user messages, joined by
  newlines: what a follow-up turn sends when the server has the rest.
"""

from __future__ import annotations

from typing import Any, Mapping, Sequence

from .._core.messages import content_text

__all__ = ["format_prompt", "last_user_message"]


def format_prompt(
    messages: Sequence[Mapping[str, Any]],
    *,
    add_special_tokens: bool = False,
    do_continue: bool = False,
    include_system: bool = True,
) -> str:
    """``messages`` as one prompt, formatted as gpt4free's ``format_prompt`` does.

    ``add_special_tokens`` formats even a single message; ``do_continue`` leaves
    out the final ``"Assistant:"`` cue; ``include_system=False`` drops system
    (and developer) messages.
    """
    if not messages:
        return ""
    if not add_special_tokens and len(messages) <= 1:
        # A lone message goes out as it is: no role prefix, no cue.
        return content_text(messages[0]["content"])
    lines = [
        f"{message['role'].capitalize()}: {content_text(message['content'])}"
        for message in messages
        if (include_system or message["role"] not in ("system", "developer"))
        and content_text(message["content"]).strip()
    ]
    formatted = "\n".join(lines)
    if do_continue:
        return formatted
    return f"{formatted}\nAssistant:"


def last_user_message(messages: Sequence[Mapping[str, Any]]) -> str:
    """The user messages at the end of ``messages``, stripped and joined by newlines.

    Walks back from the end and stops at the first message that is not the
    user's; blank messages are skipped. "" if the last message is not the user's.
    ``messages`` is left as it is (early gpt4free versions emptied it).
    """
    trailing = []
    for message in reversed(messages):
        if message["role"] != "user":
            break
        content = content_text(message["content"]).strip()
        if content:
            trailing.append(content)
    return "\n".join(reversed(trailing))
