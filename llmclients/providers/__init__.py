"""The registry: one entry per provider, from which every list derives.

An entry names a provider (``get_client("openai")``), where its class is and
where its emulator is, as ``"module:Class"`` strings: nothing is imported until
it is first asked for, so ``import llmclients`` imports no provider. The lazy
class names of :mod:`llmclients` and :mod:`llmclients.testing`, the pytest
fixtures ``<name>_emulator``, the command line's providers and the tests'
parametrisation all read the registry. A provider of your own is one
:func:`register` call::

    from llmclients.providers import register

    register("acme", "acme_llm.provider:AcmeProvider", emulator="acme_llm.emulator:AcmeEmulator")
"""

# Annotations are evaluated here (no ``from __future__ import annotations``):
# typing.NamedTuple would otherwise compile each field's string at import.
import importlib
from typing import TYPE_CHECKING, Any, Dict, FrozenSet, Iterator, List, Mapping, NamedTuple, Tuple, Type

from ..errors import InvalidRequestError

if TYPE_CHECKING:  # loaded with the first provider class, not with the registry
    from .._core.provider import Provider

__all__ = [
    "BUILTIN",
    "PROVIDERS",
    "ProviderEntry",
    "entries",
    "get_client",
    "get_entry",
    "get_provider_class",
    "message_keys",
    "provider_names",
    "register",
]


class ProviderEntry(NamedTuple):
    """One provider in the registry (made by :func:`register`, which checks it).

    ``name``
        what callers name it by: ``get_client(name)``, ``llmclients chat -p name``;
    ``provider``
        its class, as ``"module:Class"`` (imported when first used);
    ``emulator``
        its emulator's class (an :class:`~llmclients.testing.Emulator`), as
        ``"module:Class"``, or "" if it has none.
    """

    name: str
    provider: str
    emulator: str = ""

    @property
    def class_name(self) -> str:
        """The provider class's name (``llmclients.<class_name>`` reaches it)."""
        return self.provider.rpartition(":")[2]

    @property
    def emulator_class_name(self) -> str:
        """The emulator class's name (``llmclients.testing.<emulator_class_name>``), or ""."""
        return self.emulator.rpartition(":")[2]

    def load(self) -> "Type[Provider]":
        """The provider class, imported now if it was not yet."""
        cls: Type[Provider] = _load(self.provider)
        return cls


_REGISTRY: Dict[str, ProviderEntry] = {}


def register(name: str, provider: str, *, emulator: str = "", replace: bool = False) -> ProviderEntry:
    """Add the provider ``name`` (its class and its emulator's as ``"module:Class"``).

    A name already registered is refused unless ``replace`` is true; the entry
    is returned.
    """
    entry = _checked(ProviderEntry(name, provider, emulator))
    if name in _REGISTRY and not replace and _REGISTRY[name] != entry:
        raise ValueError(f"a provider named {name!r} is registered already ({_REGISTRY[name].provider})")
    _REGISTRY[name] = entry
    return entry


def _checked(entry: ProviderEntry) -> ProviderEntry:
    if not entry.name or entry.name != entry.name.lower() or not entry.name.isidentifier():
        # The name is also a fixture's (<name>_emulator) and a -p value (any case).
        raise ValueError(f"a provider's name is a lower-case identifier, not {entry.name!r}")
    for field, target in (("provider", entry.provider), ("emulator", entry.emulator)):
        module, _, attr = target.partition(":")
        if (target or field == "provider") and not (module and attr):
            raise ValueError(f"{field} must be 'module:Class', not {target!r}")
    return entry


register(
    "openai",
    "llmclients.providers.openai:OpenAICompatible",
    emulator="llmclients.testing.openai:OpenAIEmulator",
)
register(
    "allenai", "llmclients.providers.allenai:AllenAI", emulator="llmclients.testing.allenai:AllenAIEmulator"
)
register(
    "autonomous",
    "llmclients.providers.autonomous:AutonomousAI",
    emulator="llmclients.testing.autonomous:AutonomousAIEmulator",
)
register("aura", "llmclients.providers.aura:Aura", emulator="llmclients.testing.aura:AuraEmulator")
register(
    "anthropic",
    "llmclients.providers.anthropic:Anthropic",
    emulator="llmclients.testing.anthropic:AnthropicEmulator",
)
register("ollama", "llmclients.providers.ollama:Ollama", emulator="llmclients.testing.ollama:OllamaEmulator")
register(
    "responses",
    "llmclients.providers.responses:OpenAIResponses",
    emulator="llmclients.testing.responses:ResponsesEmulator",
)

#: The providers llmclients ships, which every process knows (others come from :func:`register`).
BUILTIN: Tuple[str, ...] = tuple(_REGISTRY)


class _Targets(Mapping[str, str]):
    """name -> "module:Class" of every registered provider: a read-only view of the registry."""

    def __getitem__(self, name: str) -> str:
        return _REGISTRY[name].provider

    def __iter__(self) -> Iterator[str]:
        return iter(list(_REGISTRY))

    def __len__(self) -> int:
        return len(_REGISTRY)

    def __repr__(self) -> str:
        return repr(dict(self))


#: name -> "module:Class", so that ``import llmclients`` imports no provider
#: (a read-only view of the registry: add to it with :func:`register`).
PROVIDERS: Mapping[str, str] = _Targets()


def entries() -> List[ProviderEntry]:
    """Every registered provider's entry, in the order they were registered."""
    return list(_REGISTRY.values())


def message_keys() -> FrozenSet[str]:
    """The keys every registered provider reads in assistant and tool turns
    (:attr:`Provider.message_keys`): what a provider that sends messages as
    they are must leave out of other services' turns."""
    keys: FrozenSet[str] = frozenset()
    for entry in entries():
        keys |= entry.load().message_keys
    return keys


def provider_names() -> List[str]:
    return list(_REGISTRY)


def get_entry(name: str) -> ProviderEntry:
    """The entry registered as ``name``."""
    try:
        return _REGISTRY[name]
    except KeyError:
        raise InvalidRequestError(
            f"no provider named {name!r}; known providers: {', '.join(_REGISTRY)}"
        ) from None


def get_provider_class(name: str) -> "Type[Provider]":
    """The provider class registered as ``name``."""
    return get_entry(name).load()


def get_client(name: str, **kwargs: Any) -> "Provider":
    """A client of the provider registered as ``name``: ``get_client("openai", base_url=...)``."""
    return get_provider_class(name)(**kwargs)


def _load(target: str) -> Any:
    module, _, attr = target.partition(":")
    return getattr(importlib.import_module(module), attr)
