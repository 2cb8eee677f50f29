"""Keeping secrets out of what the command prints and logs: :func:`redact`, and
the logging that ``--debug`` and ``LLMCLIENTS_LOG`` turn on."""

from __future__ import annotations

import logging
import re
import sys
from typing import Sequence

from .._http.masking import mask

__all__ = ["configure_logging", "redact"]

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


def configure_logging(level_name: str, secrets: Sequence[str]) -> None:
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
