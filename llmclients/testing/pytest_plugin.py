"""pytest fixtures, registered by installing llmclients (entry point ``pytest11``).

``llm_emulator``
    a factory: ``llm_emulator("openai", api_key="k")`` starts an emulator and
    returns it; every emulator it started is stopped when the test ends.
``<provider>_emulator``
    a started emulator of that provider, for every provider in the registry
    that has an emulator (:mod:`llmclients.providers`): ``openai_emulator``,
    ``allenai_emulator``, ``autonomous_emulator``, ``aura_emulator``, and one
    for each provider registered before the tests are collected (in a
    ``conftest.py``, say).
"""

from __future__ import annotations

from types import ModuleType
from typing import Any, Callable, Dict, Iterator, List

import pytest

from . import EMULATORS, Emulator, emulator_for


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


def emulator_fixture(provider: str) -> Any:
    """The fixture ``<provider>_emulator``: a started emulator of ``provider``."""

    def fixture(llm_emulator: Callable[..., Emulator]) -> Emulator:
        return llm_emulator(provider)

    fixture.__name__ = f"{provider}_emulator"
    fixture.__doc__ = f"A started emulator of the {provider} provider."
    return pytest.fixture(name=fixture.__name__)(fixture)


def _fixtures(names: List[str]) -> Dict[str, Any]:
    return {f"{name}_emulator": emulator_fixture(name) for name in names}


_GIVEN = list(EMULATORS)
globals().update(_fixtures(_GIVEN))


def pytest_configure(config: pytest.Config) -> None:
    """Fixtures for the providers registered since this module was imported
    (by a conftest.py, which pytest loads first)."""
    later = [name for name in EMULATORS if name not in _GIVEN]
    if later:
        fixtures = ModuleType(f"{__name__}.registered")  # pytest reads fixtures off a module
        vars(fixtures).update(_fixtures(later))
        config.pluginmanager.register(fixtures, "llmclients-registered-emulators")
