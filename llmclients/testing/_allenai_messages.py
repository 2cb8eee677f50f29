"""The messages :class:`~llmclients.testing.allenai.AllenAIEmulator` stores, as
olmo-api kept them in its database: their ids, snippets, fields, file URLs,
and the tree the stream shows.
"""

from __future__ import annotations

import os
import re
import secrets
import string
from datetime import datetime, timedelta, timezone
from typing import Any, Dict, Optional

from ._allenai_validation import Turn

#: Where stored files are said to be (olmo-api's bucket name is not public).
FILE_URL_BASE = "https://storage.googleapis.com/llmclients-emulator"
ANONYMOUS_LIFETIME = timedelta(days=1)


def new_id() -> str:
    """``msg_`` and ten characters, letters and digits alternating, as olmo-api's ``obj.NewID``."""
    pairs = (secrets.choice(string.ascii_uppercase) + secrets.choice(string.digits) for _ in range(5))
    return "msg_" + "".join(pairs)


def snippet(content: str) -> str:
    """olmo-api's ``text_snippet`` (``dao/message.py`` @ 8742b0b): the first 16 words of the
    first 512 characters, and "…" if more words follow. (It strips HTML first, with
    BeautifulSoup; this does not.)"""
    words = re.split(r"\s+", content[: 16 * 32])
    return " ".join(words[:16]) + ("…" if len(words) > 16 else "")


def create_message(
    messages: Dict[str, Dict[str, Any]],
    turn: Turn,
    content: str,
    role: str,
    *,
    parent: Optional[str],
    root: Optional[str],
) -> Dict[str, Any]:
    """A new message in ``messages`` with every field olmo-api's ``Message`` had."""
    message_id = new_id()
    now = datetime.now(timezone.utc)
    message: Dict[str, Any] = {
        "id": message_id,
        "content": content,
        "snippet": snippet(content),
        "creator": turn.creator,
        "role": role,
        "opts": dict(turn.opts),
        "root": root or message_id,
        "created": now.isoformat(),
        "model_id": turn.model,
        "model_host": turn.host,
        "deleted": None,
        "parent": parent,
        "template": None,
        "logprobs": None,
        "children": None,
        "completion": None,
        "final": False,
        "original": None,
        "private": turn.private,
        "model_type": None,
        "finish_reason": None,
        "harmful": None,
        "expiration_time": (now + ANONYMOUS_LIFETIME).isoformat() if turn.anonymous else None,
        "labels": [],
        "file_urls": None,
    }
    messages[message_id] = message
    return message


def name_files(turn: Turn, message: Dict[str, Any]) -> None:
    """Name the turn's files as olmo-api stored them: ``<root>/<message id>-<i><ext>``."""
    if turn.files:  # olmo-api kept only the extension of the sent filename
        message["file_urls"] = [
            f"{FILE_URL_BASE}/{message['root']}/{message['id']}-{i}{os.path.splitext(f.filename)[1]}"
            for i, f in enumerate(turn.files)
        ]


def tree(system: Optional[Dict[str, Any]], message: Dict[str, Any], answer: Dict[str, Any]) -> Dict[str, Any]:
    """The stream's top message: ``message`` with the answer as its child, under ``system`` if any."""
    top = dict(message, children=[dict(answer)])
    if system is not None:
        top = dict(system, children=[top])
    return top
