"""The registry: provider classes by name, imported only when first asked for."""

from __future__ import annotations

import importlib
from typing import Any, Dict, List, Type

from ..errors import InvalidRequestError
from ..provider import Provider

__all__ = [
    "PROVIDERS",
    "get_client",
    "get_provider_class",
    "provider_names",
]


#: name -> "module:Class", so that ``import llmclients`` imports no provider.
PROVIDERS: Dict[str, str] = {
    "openai": "llmclients.providers.openai:OpenAICompatible",
    "allenai": "llmclients.providers.allenai:AllenAI",
    "autonomous": "llmclients.providers.autonomous:AutonomousAI",
    "aura": "llmclients.providers.aura:Aura",
}


def provider_names() -> List[str]:
    return list(PROVIDERS)


def get_provider_class(name: str) -> Type[Provider]:
    """The provider class registered as ``name``."""
    try:
        target = PROVIDERS[name]
    except KeyError:
        raise InvalidRequestError(
            f"no provider named {name!r}; known providers: {', '.join(PROVIDERS)}"
        ) from None
    module, _, attr = target.partition(":")
    cls: Type[Provider] = getattr(importlib.import_module(module), attr)
    return cls


def get_client(name: str, **kwargs: Any) -> Provider:
    """A client of the provider registered as ``name``: ``get_client("openai", base_url=...)``."""
    return get_provider_class(name)(**kwargs)
