"""The client a command talks to: :func:`open_client` makes it as the flags
and environment say (or serves an emulator for it), :func:`model_for`
picks the model to ask it for, and :func:`options_from_args` the options
to send with each call (:func:`pass_through` sends the ones the provider
does not know in its ``extra_body``)."""

from __future__ import annotations

import argparse
import contextlib
import json
from typing import TYPE_CHECKING, Any, Dict, Iterator, List, Mapping, Optional
from urllib.parse import urlsplit

from .. import errors
from .._http.masking import redact_url
from ..providers import get_provider_class
from ._common import UsageError, env_setting, logger

if TYPE_CHECKING:  # the command's start-up loads no call machinery
    from .._core.provider import Provider

__all__ = ["model_for", "open_client", "pass_through"]


@contextlib.contextmanager
def open_client(provider: str, args: argparse.Namespace, **kwargs: Any) -> Iterator[Provider]:
    """A client of ``provider`` as the flags and environment say; with
    ``--emulate``, of its emulator, served for as long as the block runs."""
    cls = get_provider_class(provider)
    kwargs["proxy"] = args.proxy
    # The service's own variable (ANTHROPIC_API_KEY), else the command's.
    kwargs["api_key"] = (cls.api_key_env and env_setting(cls.api_key_env)) or env_setting("LLMCLIENTS_API_KEY")
    if args.timeout is not None:
        kwargs["timeout"] = args.timeout
    with contextlib.ExitStack() as stack:
        base_url = args.base_url
        if args.emulate:
            from ..testing import emulator_for

            base_url = stack.enter_context(emulator_for(provider)).base_url
        elif base_url:
            _check_base_url(base_url, args)
        elif not cls.default_base_url:
            raise UsageError(
                f"{provider} needs the server's URL: --base-url URL or LLMCLIENTS_BASE_URL "
                "(or --emulate for a local emulator)"
            )
        client = stack.enter_context(cls(base_url=base_url, **kwargs))
        logger.debug(
            "%r, timeout=%s, proxy=%s",
            client,
            args.timeout or "the client's default",
            redact_url(args.proxy) if args.proxy else None,
        )
        yield client


def _check_base_url(base_url: str, args: argparse.Namespace) -> None:
    """A base URL is http(s)://host...: catch a missing scheme here, with the
    fix, rather than as requests' "No connection adapters were found"."""
    source = "LLMCLIENTS_BASE_URL" if "base_url" in getattr(args, "from_env", {}) else "--base-url"
    parts = urlsplit(base_url)
    if parts.scheme in ("http", "https") and parts.netloc:
        return
    if "://" not in base_url:
        # redact_url needs a scheme to find the credentials it masks.
        shown = redact_url(f"http://{base_url}")[len("http://") :]
        raise UsageError(f"{source} {shown!r} has no scheme: add http:// (http://{shown}) or https://")
    raise UsageError(f"{source} {redact_url(base_url)!r} is not an http:// or https:// URL")


def model_for(client: Provider, args: argparse.Namespace) -> Optional[str]:
    """The model to ask for: the one named, else the provider's default, else
    the only one an OpenAI-compatible server serves (llama.cpp, a vLLM with one
    model; the emulator too)."""
    model: Optional[str] = args.model
    if model or client.default_model:
        return model
    served: List[str] = []
    if client.lists_models:
        try:
            served = client.served_models()
        except (errors.HTTPStatusError, errors.MalformedStreamError) as exc:
            logger.debug("the server does not list its models: %s", exc)  # many proxies do not
    if len(served) == 1:
        logger.debug("the server serves one model, %s: using it", served[0])
        return served[0]
    listed = (
        f" (the server serves {len(served)}: llmclients models -p {client.name} lists them)" if served else ""
    )
    raise UsageError(
        f"{client.name} has no default model: name one with -m MODEL or LLMCLIENTS_MODEL{listed}"
    )


def options_from_args(args: argparse.Namespace) -> Dict[str, Any]:
    options: Dict[str, Any] = {}
    if args.temperature is not None:
        options["temperature"] = args.temperature
    if args.max_tokens is not None:
        options["max_tokens"] = args.max_tokens
    if args.seed is not None:
        options["seed"] = args.seed
    if args.stop:
        options["stop"] = args.stop
    for key, value in args.option:
        try:
            options[key] = json.loads(value)
        except ValueError:
            options[key] = value  # a plain word: a string option
    return options


def pass_through(client: Provider, options: Dict[str, Any]) -> Dict[str, Any]:
    """``options``, those that ``client`` does not know moved into its
    ``extra_body`` when it has one (the OpenAI-compatible provider): what the
    user typed goes to the server as it is (llama.cpp's ``chat_template_kwargs``,
    vLLM's ``top_k``). An ``extra_body`` given with ``-o`` wins over them."""
    if "extra_body" not in client.options:
        return options
    unknown = {key: value for key, value in options.items() if key not in client.options}
    given = options.get("extra_body") or {}
    if not unknown or not isinstance(given, Mapping):
        return options  # nothing to move, or an extra_body the provider will refuse itself
    logger.debug("sending %s in extra_body: %s does not know them", ", ".join(unknown), client.name)
    kept = {key: value for key, value in options.items() if key in client.options}
    kept["extra_body"] = {**unknown, **given}
    return kept
