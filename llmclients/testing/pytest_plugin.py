"""pytest fixtures, registered by installing llmclients (entry point ``pytest11``).

``llm_emulator``
    a factory: ``llm_emulator("openai", api_key="k")`` starts an emulator and
    returns it; every emulator it started is stopped when the test ends.
``openai_emulator``, ``allenai_emulator``, ``autonomous_emulator``, ``aura_emulator``
    a started emulator of that provider.
"""

from __future__ import annotations

from typing import Any, Callable, Iterator, List

import pytest

from . import Emulator, emulator_for


@pytest.fixture
def llm_emulator() -> Iterator[Callable[..., Emulator]]:
    started: List[Emulator] = []

    def start(provider: str, **kwargs: Any) -> Emulator:
        emulator = emulator_for(provider, **kwargs).start()
        started.append(emulator)
        return emulator

    yield start
    for emulator in started:
        emulator.stop()


@pytest.fixture
def openai_emulator(llm_emulator: Callable[..., Emulator]) -> Emulator:
    return llm_emulator("openai")


@pytest.fixture
def allenai_emulator(llm_emulator: Callable[..., Emulator]) -> Emulator:
    return llm_emulator("allenai")


@pytest.fixture
def autonomous_emulator(llm_emulator: Callable[..., Emulator]) -> Emulator:
    return llm_emulator("autonomous")


@pytest.fixture
def aura_emulator(llm_emulator: Callable[..., Emulator]) -> Emulator:
    return llm_emulator("aura")
