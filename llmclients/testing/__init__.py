"""Local emulators of every provider's protocol, for tests that need no network.

Each emulator is a real HTTP server on 127.0.0.1 that answers as the
provider's service does, byte for byte, and refuses what it would refuse::

    from llmclients.testing import OpenAIEmulator, Reply

    with OpenAIEmulator() as emulator:
        emulator.enqueue(Reply(text="Hello there", delay=0.02, framing="close"))
        client = llmclients.OpenAICompatible(base_url=emulator.base_url)
        assert client.complete("Hi").text == "Hello there"
        assert emulator.last_request.json()["messages"][0]["content"] == "Hi"

With pytest, the fixtures ``llm_emulator`` (a factory: ``llm_emulator("openai")``)
and ``<provider>_emulator`` (``openai_emulator``, ...) start one per test and stop it afterwards.
Their emulators are strict (:mod:`llmclients.testing.pytest_plugin` says how):
once a test scripts a reply, a request the script does not answer fails the test.

Each emulator class says what its provider's stream looks like on the wire
(:class:`WireSample`, its ``wire``): the tests of every provider (faults,
content types, deadlines, memory bounds) build their bodies from it, so a
registered provider with an emulator is covered by them.
"""

from __future__ import annotations

import importlib
from typing import Any, Iterator, Mapping, Optional, Type

from .._public import expose
from ..providers import PROVIDERS, entries, get_entry
from ._server import DeltaEvent, Emulator, RecordedRequest, Rejection, Reply
from .wire import WireSample

__all__ = [
    "AllenAIEmulator",
    "AnthropicEmulator",
    "AuraEmulator",
    "AutonomousAIEmulator",
    "DeltaEvent",
    "Emulator",
    "OllamaEmulator",
    "OpenAIEmulator",
    "RecordedRequest",
    "Rejection",
    "Reply",
    "ResponsesEmulator",
    "WireSample",
    "emulator_class",
    "emulator_for",
    "wire_sample",
]

expose(globals(), __name__, __all__)


class _Emulators(Mapping[str, str]):
    """provider name -> "module:Class" of its emulator, for every registered
    provider that has one: a read-only view of the registry (llmclients.providers)."""

    def __getitem__(self, name: str) -> str:
        if name in PROVIDERS:
            target = get_entry(name).emulator
            if target:
                return target
        raise KeyError(name)

    def __iter__(self) -> Iterator[str]:
        return iter([entry.name for entry in entries() if entry.emulator])

    def __len__(self) -> int:
        return sum(1 for _ in self)

    def __repr__(self) -> str:
        return repr(dict(self))


#: provider name -> "module:Class" of its emulator. The built-in providers'
#: emulators are in the module of the same name (tests/test_exported_members.py checks it).
EMULATORS: Mapping[str, str] = _Emulators()


def emulator_class(provider: str) -> Type[Emulator]:
    """The emulator class of the provider registered as ``provider``."""
    try:
        target = EMULATORS[provider]
    except KeyError:
        raise ValueError(f"no emulator for {provider!r}; there are: {', '.join(EMULATORS)}") from None
    module, _, attr = target.partition(":")
    cls: Type[Emulator] = getattr(importlib.import_module(module), attr)
    return cls


def emulator_for(provider: str, **kwargs: Any) -> Emulator:
    """A (not yet started) emulator of the provider registered as ``provider``."""
    return emulator_class(provider)(**kwargs)


def wire_sample(provider: str) -> WireSample:
    """What the stream of the provider registered as ``provider`` looks like on
    the wire (its emulator's :attr:`~Emulator.wire`)."""
    cls = emulator_class(provider)
    sample: Optional[WireSample] = getattr(cls, "wire", None)
    if sample is None:
        raise ValueError(f"{cls.__name__} has no wire sample: give it one (a WireSample as its `wire`)")
    return sample


def __getattr__(name: str) -> Any:
    # Emulator classes by their class name, from the registry: a provider
    # registered later has its emulator reachable here too.
    for entry in entries():
        if entry.emulator and entry.emulator_class_name == name:
            return emulator_class(entry.name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
