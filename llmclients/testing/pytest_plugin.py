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

Their emulators are strict: once a test has enqueued a reply, every request
must find one (a request with none left is answered 500, saying so), and
when the test ends the fixture fails it if a request found none or an
enqueued reply was never asked for. A test that enqueues nothing gets the
emulator's echo (a smoke test). ``llm_emulator("openai", strict=False)``, or
``openai_emulator.strict = False`` in the test, answers what the script does
not with the echo; the check of unused replies stays.
"""

from __future__ import annotations

from types import ModuleType
from typing import Any, Callable, Dict, Iterator, List

import pytest

from . import EMULATORS, Emulator, emulator_for


@pytest.fixture
def llm_emulator() -> Iterator[Callable[..., Emulator]]:
    started: List[Emulator] = []

    def start(provider: str, *, strict: bool = True, **kwargs: Any) -> Emulator:
        emulator = emulator_for(provider, **kwargs)
        emulator.strict = strict  # set, not passed: an emulator's own __init__ need not know it
        started.append(emulator.start())
        return emulator

    yield start
    for emulator in started:
        emulator.stop()
    problems = [problem for emulator in started for problem in script_problems(emulator)]
    if problems:
        pytest.fail("\n".join(problems), pytrace=False)


def script_problems(emulator: Emulator) -> List[str]:
    """What went against the script: requests that found no scripted reply, and replies never asked for."""
    problems = [
        f"{emulator.provider} emulator: request {number} ({request.method} {request.path}) "
        f"was {request.outcome}: its answer was a 500 (see its body)"
        for number, request in enumerate(emulator.requests, 1)
        if request.outcome in ("unscripted", "bad script")
    ]
    try:
        emulator.assert_all_replies_used()
    except AssertionError as unused:
        problems.append(str(unused))
    return problems


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
