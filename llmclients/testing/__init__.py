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
and ``openai_emulator`` start one per test and stop it afterwards.
"""

from __future__ import annotations

import importlib
from typing import Any, Dict

from .server import Emulator, RecordedRequest, Rejection, Reply

__all__ = [
    "AllenAIEmulator",
    "AuraEmulator",
    "AutonomousAIEmulator",
    "Emulator",
    "OpenAIEmulator",
    "RecordedRequest",
    "Rejection",
    "Reply",
    "emulator_for",
]

#: provider name -> "module:Class" of its emulator; every name of the registry
#: (llmclients.providers.PROVIDERS) has one, in the module of the same name
#: (tests/test_exported_members.py checks both).
EMULATORS: Dict[str, str] = {
    "openai": "llmclients.testing.openai:OpenAIEmulator",
    "allenai": "llmclients.testing.allenai:AllenAIEmulator",
    "autonomous": "llmclients.testing.autonomous:AutonomousAIEmulator",
    "aura": "llmclients.testing.aura:AuraEmulator",
}
_CLASSES = {target.rpartition(":")[2]: target for target in EMULATORS.values()}


def _load(target: str) -> Any:
    module, _, attr = target.partition(":")
    return getattr(importlib.import_module(module), attr)


def emulator_for(provider: str, **kwargs: Any) -> Emulator:
    """A (not yet started) emulator of the provider registered as ``provider``."""
    try:
        target = EMULATORS[provider]
    except KeyError:
        raise ValueError(f"no emulator for {provider!r}; there are: {', '.join(EMULATORS)}") from None
    emulator: Emulator = _load(target)(**kwargs)
    return emulator


def __getattr__(name: str) -> Any:
    if name in _CLASSES:
        return _load(_CLASSES[name])
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
