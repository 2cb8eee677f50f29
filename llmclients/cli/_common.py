"""What every ``llmclients`` command shares: exit codes, :class:`UsageError`
and :class:`Terminated`, the settings the environment gives (and which gave
which), how an error becomes one line on stderr and an exit code, and what
to say of a reply that answered nothing.

The command modules import this one, never the package's ``__init__``.
"""

from __future__ import annotations

import argparse
import contextlib
import logging
import math
import os
import sys
import warnings
from typing import TYPE_CHECKING, Any, Dict, Iterator, List, Optional, Union
from urllib.parse import urlsplit

from .. import errors
from .._core.values import Completion
from .._http.masking import redact_url
from ._logs import redact

if TYPE_CHECKING:  # the command's start-up loads no call machinery
    from .._core.stream import Stream

__all__ = [
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
    "api_keys",
    "apply_environment",
    "describe",
    "env_setting",
    "exit_code",
    "explanation",
    "fail",
    "logger",
    "no_answer",
    "one_line",
    "positive_number",
    "provenance",
    "quiet_cut_off",
    "seconds",
]

EXIT_OK, EXIT_USAGE, EXIT_SERVICE, EXIT_TIMEOUT, EXIT_INTERRUPTED, EXIT_SIGINT = 0, 2, 3, 4, 5, 130
EXIT_SIGTERM = 143
#: ``batch``: some records failed, or bad input lines were skipped.
EXIT_SOME_FAILED = 1

#: The one logger of the whole command (its records name ``llmclients.cli``).
logger = logging.getLogger("llmclients.cli")


#: The settings a flag gives, else the environment: attribute -> variable.
ENVIRONMENT = {
    "provider": "LLMCLIENTS_PROVIDER",
    "model": "LLMCLIENTS_MODEL",
    "base_url": "LLMCLIENTS_BASE_URL",
    "timeout": "LLMCLIENTS_TIMEOUT",
    "proxy": "LLMCLIENTS_PROXY",
}


class UsageError(Exception):
    """Bad arguments or input: one line on stderr, exit 2."""


class Terminated(KeyboardInterrupt):
    """SIGTERM arrived: stop as Ctrl-C stops, and exit 143."""


def env_setting(name: str) -> Optional[str]:
    return os.environ.get(name) or None


def apply_environment(args: argparse.Namespace) -> None:
    """Fill the settings no flag gave from the environment, noting in
    ``args.from_env`` which variable gave which, so that errors can say so."""
    args.from_env = {}
    for attribute, variable in ENVIRONMENT.items():
        value: Any = env_setting(variable)
        if getattr(args, attribute, False) is not None or value is None:
            continue
        if attribute == "timeout":
            try:
                value = seconds(value)
            except argparse.ArgumentTypeError as exc:
                raise UsageError(str(exc)) from None
        elif attribute == "provider":
            value = value.lower()
        setattr(args, attribute, value)
        args.from_env[attribute] = variable
    if getattr(args, "timeout", False) is None:
        args.timeout = getattr(args, "timeout_fallback", None)


def provenance(args: Optional[argparse.Namespace], message: str = "") -> str:
    """Which settings came from the environment, for an error ``message`` that
    does not already name them ("" if none)."""
    from_env: Dict[str, str] = getattr(args, "from_env", {})
    shown = [
        f"{variable}={redact_url(str(getattr(args, attribute))) if attribute == 'base_url' else getattr(args, attribute)}"
        for attribute, variable in from_env.items()
        if attribute in ("provider", "model", "base_url") and variable not in message
    ]
    if not shown:
        return ""
    return f" (set in the environment: {', '.join(shown)}; a flag overrides it)"


def positive_number(text: str, what: str = "a positive number") -> float:
    """``text`` as a finite number above 0; else argparse's error, saying it is not ``what``."""
    try:
        value = float(text)
    except ValueError:
        value = math.nan
    if not 0 < value < math.inf:
        raise argparse.ArgumentTypeError(f"{text!r} is not {what}")
    return value


def seconds(text: str) -> float:
    return positive_number(text, "a number of seconds (--timeout, LLMCLIENTS_TIMEOUT)")


def fail(code: int, message: str) -> int:
    """Print ``message`` as one line on stderr and return ``code``."""
    print(f"llmclients: {one_line(message)}", file=sys.stderr, flush=True)
    return code


def one_line(message: str) -> str:
    return redact(" ".join(message.split()), api_keys())


def api_keys() -> List[str]:
    """The keys in the environment, to mask wherever text is shown: every
    ``*_API_KEY`` variable's (``LLMCLIENTS_API_KEY``, a provider's own ``ANTHROPIC_API_KEY``)."""
    return [value for name, value in os.environ.items() if name.endswith("_API_KEY") and value]


def describe(exc: errors.LLMClientError, args: Optional[argparse.Namespace] = None) -> str:
    """The error as one line, with what may explain it: where a setting came
    from, a base URL that lacks its ``/v1``."""
    return f"{type(exc).__name__}: {exc}{explanation(exc, args)}"


def explanation(exc: errors.LLMClientError, args: Optional[argparse.Namespace]) -> str:
    """What may explain ``exc``, for the errors a setting can cause ("" for the others)."""
    if isinstance(exc, errors.ToolCallCutOffError):
        return " (here: --max-tokens N)"
    if args is None or not isinstance(
        exc, (errors.InvalidRequestError, errors.ConnectError, errors.NotFoundError)
    ):
        return ""
    return _missing_v1_hint(exc, args) + provenance(args)


def _missing_v1_hint(exc: errors.LLMClientError, args: argparse.Namespace) -> str:
    """The hint "did you mean .../v1?" for a 404 from an OpenAI-compatible server whose
    base URL stops short of the API's root (Ollama, vLLM, llama.cpp serve it under /v1)."""
    base_url: Optional[str] = getattr(args, "base_url", None)
    if not isinstance(exc, errors.NotFoundError) or not base_url or getattr(args, "emulate", False):
        return ""
    if (getattr(args, "provider", None) or "openai") != "openai":
        return ""
    if urlsplit(base_url).path.rstrip("/").endswith("/v1"):
        return ""
    return f"; did you mean --base-url {redact_url(base_url.rstrip('/'))}/v1?"


def exit_code(exc: errors.LLMClientError) -> int:
    if isinstance(exc, errors.InvalidRequestError):
        return EXIT_USAGE
    if isinstance(exc, errors.RequestTimeoutError):
        return EXIT_TIMEOUT
    if isinstance(exc, errors.StreamInterruptedError):
        return EXIT_INTERRUPTED
    return EXIT_SERVICE


@contextlib.contextmanager
def quiet_cut_off() -> Iterator[None]:
    """No :class:`~llmclients.errors.ReasoningCutOffWarning` inside: Python would
    print it with its source line; the command says it in one line (:func:`no_answer`)."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", errors.ReasoningCutOffWarning)
        yield


def no_answer(stream: Union[Stream, Completion]) -> Optional[str]:
    """What to say of a reply that the token limit ended before any answer (no
    text, tool call or refusal in any choice), or None for one that answered."""
    choices = stream.choices
    answered = stream.text or stream.tool_calls or stream.refusal
    if (
        answered
        or any(c.text or c.tool_calls or c.refusal for c in choices)
        or stream.finish_reason != "length"
    ):
        return None
    if stream.reasoning:
        return (
            "the token limit ended the reply while the model was still reasoning "
            f"({len(stream.reasoning)} characters of reasoning, no answer): "
            "raise --max-tokens, or lower -o reasoning_effort"
        )
    return "the token limit ended the reply before any answer: raise --max-tokens"
