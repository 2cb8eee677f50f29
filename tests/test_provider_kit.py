"""A provider that is not built in: one provider module (tests/toy/provider.py),
one emulator module (tests/toy/emulator.py) and one ``register`` call
(tests/conftest.py). The tests over every provider (faults, content types,
deadlines, memory bounds) cover it through the registry; here, the rest."""

from __future__ import annotations

import inspect
import os
from typing import Optional

import pytest

import llmclients
import llmclients.testing
from llmclients.cli import main
from llmclients.providers import BUILTIN, PROVIDERS, get_client, provider_names, register
from llmclients.providers.kit import ClientOptions, Provider
from llmclients.testing import EMULATORS, Emulator, emulator_for, wire_sample

SHARED = [name for name in inspect.signature(Provider).parameters]


@pytest.fixture
def clean_env(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in list(os.environ):
        if name.startswith("LLMCLIENTS_") or name.lower() in ("http_proxy", "https_proxy", "all_proxy"):
            monkeypatch.delenv(name)
    monkeypatch.setenv("NO_PROXY", "127.0.0.1,localhost,::1")


def test_the_toy_is_registered_after_the_built_in_providers() -> None:
    assert provider_names()[: len(BUILTIN)] == list(BUILTIN)
    assert "toy" in provider_names() and "toy" not in BUILTIN
    assert PROVIDERS["toy"] == "toy.provider:ToyProvider"
    assert EMULATORS["toy"] == "toy.emulator:ToyEmulator"
    assert wire_sample("toy").epilogue == b'{"done": true}\n'


def test_get_client_and_the_lazy_class_names_reach_it() -> None:
    with emulator_for("toy") as emulator, get_client("toy", base_url=emulator.base_url) as client:
        assert client.complete("Hi").text == "Hello from the toy emulator. You said: Hi"
    assert type(client) is llmclients.ToyProvider
    assert type(emulator) is llmclients.testing.ToyEmulator


def test_the_plugin_gives_it_a_fixture(toy_emulator: Emulator) -> None:
    assert toy_emulator.provider == "toy"
    with get_client("toy", base_url=toy_emulator.base_url) as client:
        assert list(client.stream("Hi"))[-1] == "Hi"


def test_llmclients_models_and_providers_list_it(clean_env: None, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["models"]) == 0
    rows = [line.split() for line in capsys.readouterr().out.splitlines()]
    assert ["toy", "toy-1", "(default)"] in rows
    assert main(["providers"]) == 0
    assert any(line.startswith("toy ") for line in capsys.readouterr().out.splitlines())
    assert main(["models", "-p", "toy"]) == 0
    assert capsys.readouterr().out.splitlines()[1].split()[:2] == ["toy", "toy-1"]


def test_chat_with_p_toy_streams_from_its_emulator(
    toy_emulator: Emulator, clean_env: None, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["chat", "-p", "toy", "--base-url", toy_emulator.base_url, "Hello toy"]) == 0
    assert "You said: Hello toy" in capsys.readouterr().out
    assert toy_emulator.last_request.json()["model"] == "toy-1"
    assert main(["chat", "-p", "TOY", "--emulate", "Again"]) == 0
    assert "You said: Again" in capsys.readouterr().out


def test_register_refuses_a_taken_name_and_a_bad_one() -> None:
    with pytest.raises(ValueError, match="registered already"):
        register("toy", "elsewhere:Other")
    register("toy", "toy.provider:ToyProvider", emulator="toy.emulator:ToyEmulator")  # the same again: fine
    for name in ("Toy", "to-y", ""):
        with pytest.raises(ValueError, match="lower-case identifier"):
            register(name, "toy.provider:ToyProvider")
    with pytest.raises(ValueError, match="module:Class"):
        register("toy2", "toy.provider")
    with pytest.raises(TypeError):
        PROVIDERS["toy"] = "x:Y"  # type: ignore[index]


@pytest.mark.parametrize("name", provider_names())
def test_every_provider_signature_shows_the_shared_arguments_and_its_own(name: str) -> None:
    cls = llmclients.get_provider_class(name)
    parameters = inspect.signature(cls).parameters
    assert [p for p in parameters if p in SHARED] == SHARED
    assert set(SHARED) == set(ClientOptions.__annotations__)
    assert not any(p.kind is p.VAR_KEYWORD for p in parameters.values())
    own = {
        p
        for c in cls.__mro__
        if c is not Provider and "__init__" in vars(c)
        for p in inspect.signature(c).parameters
    }
    assert own <= set(parameters)


def test_a_subclass_with_an_argument_of_its_own_lists_every_one() -> None:
    class Acme(Provider):
        name = "acme"
        default_base_url = "http://127.0.0.1:9"

        def __init__(self, *, organization: Optional[str] = None, **options: object) -> None:
            super().__init__(**options)  # type: ignore[arg-type]
            self.organization = organization

    parameters = inspect.signature(Acme).parameters
    assert list(parameters) == [*SHARED, "organization"]
    assert parameters["base_url"].default is None  # it has a default URL
    assert (
        inspect.signature(llmclients.OpenAICompatible).parameters["base_url"].default
        is inspect.Parameter.empty
    )
    client = Acme(organization="org", api_key="k", max_retries=0)
    assert (client.organization, client.api_key, client.base_url) == ("org", "k", "http://127.0.0.1:9")


def test_a_subclass_of_a_subclass_lists_every_argument_of_the_chain() -> None:
    class Hosted(llmclients.OpenAICompatible):  # no __init__ of its own, but a default URL
        default_base_url = "http://127.0.0.1:9/v1"

    class Tagged(Hosted):
        def __init__(self, *, tag: str = "", **options: object) -> None:
            super().__init__(**options)  # type: ignore[arg-type]
            self.tag = tag

    for cls in (Hosted, Tagged):
        parameters = inspect.signature(cls).parameters
        assert [p for p in parameters if p in SHARED] == SHARED
        assert "include_usage" in parameters  # OpenAICompatible's own, through the chain
        assert parameters["base_url"].default is None  # the subclass has a default URL
        assert not any(p.kind is p.VAR_KEYWORD for p in parameters.values())
    assert list(inspect.signature(Tagged).parameters)[-1] == "tag"
    assert Tagged(tag="t", max_retries=0).base_url == "http://127.0.0.1:9/v1"
