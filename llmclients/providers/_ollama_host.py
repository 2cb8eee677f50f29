"""Where an Ollama server is and how it cuts an over-long prompt.

:func:`host_url` reads ``OLLAMA_HOST`` as ollama-python reads it;
:func:`cut_sizes` lists the prompt sizes Ollama's runners cut a prompt longer
than the context window to, and :func:`warn_if_truncated` warns
(:class:`~llmclients.errors.ContextTruncatedWarning`) when a reply's prompt
count is one of them, for the context a call asked for
(:func:`context_asked`) or, with none, for the defaults Ollama has used.
:class:`~llmclients.providers.ollama.Ollama` uses them, and
:mod:`llmclients.providers.ollama` exports the public ones.
"""

from __future__ import annotations

import ipaddress
import warnings
from typing import Any, FrozenSet, Mapping, Optional
from urllib.parse import urlsplit

from .kit import ContextTruncatedWarning, InvalidRequestError, StreamState

__all__ = ["DEFAULT_KEEP", "DEFAULT_PORT", "context_asked", "cut_sizes", "host_url", "warn_if_truncated"]

#: Where ``ollama serve`` listens unless ``OLLAMA_HOST`` says otherwise.
DEFAULT_PORT = 11434
#: Context sizes Ollama has given a model when the request set none: a prompt
#: that counts exactly one of them was cut to fit it.
_DEFAULT_CONTEXTS = (2048, 4096, 8192)
#: Ollama's default ``num_keep``: the tokens a cut keeps at the prompt's start.
DEFAULT_KEEP = 4


def host_url(host: str) -> str:
    """The base URL for an ``OLLAMA_HOST`` value, read as ollama-python reads it.

    ``host[:port]`` with the scheme optional: no scheme means ``http`` and port
    11434; ``http://`` alone means port 80, ``https://`` 443; an empty host
    means 127.0.0.1, and so does ``0.0.0.0`` (``[::]``: ``[::1]``), the
    address a server listens on, not one to connect to. A path is kept.
    """
    scheme, _, rest = host.strip().partition("://")
    port = DEFAULT_PORT
    if not rest:
        scheme, rest = "http", host.strip()
    elif scheme == "http":
        port = 80
    elif scheme == "https":
        port = 443
    parts = urlsplit(f"{scheme}://{rest}")
    name = parts.hostname or "127.0.0.1"
    try:
        address = ipaddress.ip_address(name)
    except ValueError:
        pass
    else:
        if address.is_unspecified:  # what ``ollama serve`` binds to, for "every interface"
            name = "127.0.0.1" if address.version == 4 else "::1"
        if address.version == 6:
            name = f"[{name}]"
    try:
        port = parts.port or port
    except ValueError:
        raise InvalidRequestError(f"OLLAMA_HOST={host!r} has a port that is not a number") from None
    path = parts.path.strip("/")
    return f"{scheme}://{name}:{port}" + (f"/{path}" if path else "")


def context_asked(options: Mapping[str, Any], num_ctx: Optional[int]) -> Optional[int]:
    """The context size a call asks for: its ``num_ctx``, else the client's."""
    asked = options.get("num_ctx")
    if asked is None:
        asked = (options.get("options") or {}).get("num_ctx")
    if asked is None:
        asked = num_ctx
    return asked if isinstance(asked, int) and not isinstance(asked, bool) else None


def warn_if_truncated(state: StreamState, context: Optional[int], keep: int) -> None:
    """Warn when the prompt counts as many tokens as Ollama cuts an over-long one to."""
    prompt = state.usage.prompt_tokens if state.usage is not None else None
    if prompt is None:
        return
    if context is not None:
        cut = prompt >= context - 1 or prompt in cut_sizes(context, keep)
    else:  # the server's default context, one of the sizes Ollama has used
        context = next((size for size in _DEFAULT_CONTEXTS if prompt in cut_sizes(size, keep)), None)
        cut = context is not None
    if cut:
        warnings.warn(
            ContextTruncatedWarning(
                f"Ollama cut the prompt to fit its context window ({context} tokens; the prompt counts "
                f"{prompt} after the cut): the model did not see the start of the conversation. Pass "
                "num_ctx= (per call, or to Ollama(...)) larger than the prompt"
            ),
            stacklevel=5,
        )


def cut_sizes(context: int, keep: int = DEFAULT_KEEP) -> FrozenSet[int]:
    """The sizes Ollama's runners cut a prompt longer than ``context`` tokens
    to, keeping ``keep`` tokens at its start (``num_keep``; one more where the
    tokenizer adds a BOS): the whole context, one less, or what
    llama-server's context shift leaves (about half)."""
    sizes = {context, context - 1}
    for kept in (keep, keep + 1):
        kept = max(0, min(kept, context - 1))
        sizes.add(context - max((context - kept) // 2, 1))
    return frozenset(sizes)
