"""The commands about the providers rather than a conversation: ``providers``
and ``models`` list them, ``check`` probes them live (``emulate``, which
serves one's emulator, is in ``_emulate``)."""

from __future__ import annotations

import argparse
import time
from concurrent.futures import ThreadPoolExecutor
from typing import TYPE_CHECKING, List, Optional, Tuple, Type

from .. import errors
from ..providers import get_provider_class, provider_names
from ._client import model_for, open_client
from ._common import EXIT_OK, EXIT_SERVICE, UsageError, describe, env_setting

if TYPE_CHECKING:  # the command's start-up loads no call machinery
    from .._core.provider import Provider

__all__ = [
    "CHECK_PROMPT",
    "EMULATOR_MODEL",
    "check_command",
    "models_command",
    "providers_command",
]

#: What ``check`` asks each provider.
CHECK_PROMPT = "Reply with the single word OK."
#: The model the emulators answer as, for providers that have no default model.
EMULATOR_MODEL = "emulator-1"


def providers_command(args: argparse.Namespace) -> int:
    rows = [["NAME", "MODELS", "CAPABILITIES", "LIVE STATUS"]]
    for name in provider_names():
        cls = get_provider_class(name)
        if cls.models:
            models = f"{len(cls.models)}, default {cls.default_model}"
        else:
            models = "any the server serves"
        rows.append([name, models, _capabilities(cls), cls.status])
    _print_table(rows)
    print("\nllmclients check -p NAME probes a provider live; llmclients models -p NAME lists its models.")
    return EXIT_OK


_EVENT_FORMATS = {"sse": "SSE stream", "ndjson": "NDJSON stream", "text": "text stream"}


def _capabilities(cls: Type[Provider]) -> str:
    found = [_EVENT_FORMATS.get(cls.event_format, cls.event_format)]
    if cls.supports_system_message:
        found.append("system")
    if cls.supports_message_history:
        found.append("history")
    return ", ".join(found)


def models_command(args: argparse.Namespace) -> int:
    asks_a_server = args.emulate or args.base_url
    # A server (a base URL, or --emulate) speaks one provider's protocol, openai's
    # unless -p says another: list what it serves, not every provider's list too.
    names = [args.provider or "openai"] if args.provider or asks_a_server else provider_names()
    listing = [name for name in provider_names() if get_provider_class(name).lists_models]
    if args.provider and asks_a_server and "base_url" not in args.from_env and args.provider not in listing:
        servers = ", ".join(listing[:-1]) + (" or " if len(listing) > 1 else "") + listing[-1]
        raise UsageError(
            f"{args.provider}'s models are listed by llmclients; only an {servers} server lists its own"
        )
    rows = [["PROVIDER", "MODEL", "ALIASES"]]
    for name in names:
        cls = get_provider_class(name)
        if cls.lists_models and asks_a_server:
            with open_client(name, args) as client:
                rows.extend([name, model, ""] for model in client.served_models())
        elif not cls.models:
            rows.append(
                [name, "(any model the server serves; name it with -m, or list them with --base-url)", ""]
            )
        for model in cls.models:
            aliases = sorted(alias for alias, target in cls.model_aliases.items() if target == model)
            label = f"{model} (default)" if model == cls.default_model else model
            rows.append([name, label, ", ".join(aliases)])
    _print_table(rows)
    return EXIT_OK


def _print_table(rows: List[List[str]]) -> None:
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]) - 1)]
    for row in rows:
        cells = [cell.ljust(width) for cell, width in zip(row, widths)] + [row[-1]]
        print("  ".join(cells).rstrip())


# --- check -------------------------------------------------------------------------------


class _Probe:
    """The outcome of probing one provider."""

    def __init__(self, name: str, verdict: str, seconds: Optional[float], detail: str) -> None:
        self.name = name
        self.verdict = verdict  # "ok", "blocked", "down", or "skipped"
        self.seconds = seconds
        self.detail = detail

    def line(self) -> str:
        seconds = "-" if self.seconds is None else f"{self.seconds:.3f}s"
        return f"{self.name:<12} {self.verdict:<8} {seconds:>8}  {self.detail}"


def check_command(args: argparse.Namespace) -> int:
    names, every = _check_targets(args)
    with ThreadPoolExecutor(max_workers=len(names)) as pool:
        probes = pool.map(lambda name: _probe(name, args, skip_unconfigured=every), names)
        failed = False
        for probe in probes:
            print(probe.line(), flush=True)
            if probe.verdict in ("blocked", "down"):
                failed = True
                status = get_provider_class(probe.name).status
                print(f"{'':<12} known status: {status}", flush=True)
    return EXIT_SERVICE if failed else EXIT_OK


def _check_targets(args: argparse.Namespace) -> Tuple[List[str], bool]:
    """The providers to probe, and whether that is every provider (which skips
    those that need a base URL and have none).

    ``-p`` names them; without any, LLMCLIENTS_PROVIDER does (openai when only a
    base URL or model is set); without that, every provider. A base URL or a
    model applies to one provider.
    """
    names: List[str] = list(dict.fromkeys(args.providers or []))
    every = False
    if not names:
        default = env_setting("LLMCLIENTS_PROVIDER")
        if default or args.base_url or args.model:
            names = [default or "openai"]
        else:
            names, every = provider_names(), True
    for name in names:
        get_provider_class(name)  # an unknown name is a usage error before any probe
    if len(names) > 1 and (args.base_url or args.model):
        raise UsageError("a base URL or model (flag or environment) applies to one provider: name it with -p")
    return names, every


def _probe(name: str, args: argparse.Namespace, *, skip_unconfigured: bool) -> _Probe:
    try:
        with open_client(name, args, max_retries=0) as client:
            model = model_for(client, args)
            started = time.monotonic()
            with client.stream(CHECK_PROMPT, model=model) as stream:
                for _ in stream:
                    break
            seconds = time.monotonic() - started
            return _Probe(name, "ok", seconds, f"first delta from {stream.model or model or '?'}")
    except UsageError as exc:
        if not skip_unconfigured:
            raise
        return _Probe(name, "skipped", None, str(exc))
    except errors.LLMClientError as exc:
        return _Probe(name, _verdict(exc), None, " ".join(describe(exc).split()))


def _verdict(exc: errors.LLMClientError) -> str:
    """The verdict on a failed probe: "blocked" when the service answers but
    refuses us (credentials, a bot check, a captcha, a rate limit), "down" when
    it does not answer as it should (no connection, a timeout, 404, 5xx, a
    broken stream)."""
    if isinstance(exc, (errors.BlockedError, errors.AuthenticationError, errors.RateLimitError)):
        return "blocked"
    if "captcha" in str(exc).lower():
        return "blocked"
    return "down"
