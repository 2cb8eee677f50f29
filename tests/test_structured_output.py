"""Typed structured output (``response_format=`` a class) over loopback, on
every provider of the registry: the form each one sends, ``reply.parsed`` /
``stream.parsed``, a reply that does not fit, one cut by the token limit; and
``chat --schema``."""

from __future__ import annotations

import asyncio
import dataclasses
import json
import pickle
import subprocess
import sys
from typing import Dict, Optional

import pydantic
import pytest
from typing_extensions import TypedDict

import llmclients
from llmclients import errors
from llmclients.aio import AsyncClient
from llmclients.providers import get_client, get_provider_class
from llmclients.testing import EMULATORS, Reply, emulator_for, wire_sample

PROVIDERS = list(EMULATORS)
#: The registry's providers that take response_format, and those that refuse it.
STRUCTURED = [name for name in PROVIDERS if "response_format" in get_provider_class(name).options]
PLAIN = [name for name in PROVIDERS if name not in STRUCTURED]


class CityModel(pydantic.BaseModel):
    name: str
    population: int
    country: Optional[str] = None


@dataclasses.dataclass
class CityData:
    name: str
    population: int
    country: Optional[str] = None


class CityDict(TypedDict):
    name: str
    population: int


PARIS = '{"name": "Paris", "population": 2102650, "country": null}'
EXPECTED = {
    CityModel: CityModel(name="Paris", population=2102650),
    CityData: CityData("Paris", 2102650),
    CityDict: {"name": "Paris", "population": 2102650},
}
TYPES = list(EXPECTED)


def test_the_registry_has_providers_of_both_kinds():
    assert {"openai", "responses", "anthropic", "ollama"} <= set(STRUCTURED)
    assert {"allenai", "aura", "autonomous"} <= set(PLAIN)


@pytest.fixture(params=STRUCTURED)
def emulator(request):
    with emulator_for(request.param) as running:
        yield running


def client_for(emulator):
    return get_client(emulator.provider, base_url=emulator.base_url, max_retries=0)


def complete(emulator, **options):
    with client_for(emulator) as client:
        return client.complete("The largest city in France?", model=wire_sample(emulator.provider).model, **options)


def sent_schema(emulator) -> Dict:
    """The schema the last request asked for, wherever its provider puts it."""
    body = emulator.last_request.json()
    provider = emulator.provider
    if provider == "openai" or "response_format" in body:
        return body["response_format"]["json_schema"]["schema"]
    if provider == "responses":
        return body["text"]["format"]["schema"]
    if provider == "anthropic":
        return body["output_config"]["format"]["schema"]
    if provider == "ollama":
        return body["format"]
    raise AssertionError(f"no schema found in {body}")


@pytest.mark.parametrize("tp", TYPES, ids=lambda tp: tp.__name__)
def test_a_reply_becomes_an_instance_of_the_type(emulator, tp):
    emulator.enqueue(Reply(text=PARIS))
    reply = complete(emulator, response_format=tp)
    assert reply.parsed == EXPECTED[tp]
    assert reply.parsed is reply.parsed  # made once
    assert reply.output_type is tp
    schema = sent_schema(emulator)
    assert schema["additionalProperties"] is False
    assert set(schema["required"]) == set(schema["properties"]) == set(EXPECTED[CityDict]) | (
        {"country"} if tp is not CityDict else set()
    )


def test_each_provider_sends_its_own_form(llm_emulator):
    shapes = {}
    for provider in STRUCTURED:
        emulator = llm_emulator(provider)
        emulator.enqueue(Reply(text=PARIS))
        complete(emulator, response_format=CityData)
        shapes[provider] = emulator.last_request.json()
    strict = {
        "type": "object",
        "properties": {
            "name": {"type": "string"},
            "population": {"type": "integer"},
            "country": {"anyOf": [{"type": "string"}, {"type": "null"}]},
        },
        "required": ["name", "population", "country"],
        "additionalProperties": False,
    }
    assert shapes["openai"]["response_format"] == {
        "type": "json_schema",
        "json_schema": {"name": "CityData", "schema": strict, "strict": True},
    }
    assert shapes["responses"]["text"]["format"] == {"type": "json_schema", "name": "CityData", "schema": strict, "strict": True}
    assert shapes["anthropic"]["output_config"] == {"format": {"type": "json_schema", "schema": strict}}
    assert shapes["ollama"]["format"] == strict


def test_a_type_that_cannot_be_strict_is_sent_without_strict(openai_emulator):
    @dataclasses.dataclass
    class Scores:
        by_name: Dict[str, int]

    openai_emulator.enqueue(Reply(text='{"by_name": {"a": 1}}'))
    reply = complete(openai_emulator, response_format=Scores)
    spec = openai_emulator.last_request.json()["response_format"]["json_schema"]
    assert spec["strict"] is False and "additionalProperties" not in spec["schema"]
    assert reply.parsed == Scores({"a": 1})


def test_stream_parsed_reads_the_rest_of_the_stream(emulator):
    emulator.enqueue(Reply(text=PARIS))
    model = wire_sample(emulator.provider).model
    with client_for(emulator) as client, client.stream("Hi", model=model, response_format=CityModel) as stream:
        next(stream)
        assert stream.parsed == EXPECTED[CityModel]
        assert stream.output_type is CityModel


def test_a_reply_that_does_not_fit_says_why(emulator):
    text = '{"name": "Paris", "population": "about two million"}'
    emulator.enqueue(Reply(text=text))
    reply = complete(emulator, response_format=CityData)
    with pytest.raises(errors.StructuredOutputError) as caught:
        _ = reply.parsed
    assert caught.value.problems == ["$.population: expected integer, got string 'about two million'"]
    assert caught.value.text == text
    assert "does not fit CityData" in str(caught.value)


def test_a_reply_that_is_no_json_says_so(openai_emulator):
    openai_emulator.enqueue(Reply(text="Paris, of course."))
    reply = complete(openai_emulator, response_format=CityModel)
    with pytest.raises(errors.StructuredOutputError, match="not the JSON of a CityModel") as caught:
        _ = reply.parsed
    assert caught.value.text == "Paris, of course."


def test_a_reply_cut_by_the_token_limit_says_that_is_why(emulator):
    emulator.enqueue(Reply(text='{"name": "Paris", "popul', finish_reason="length"))
    reply = complete(emulator, response_format=CityModel)
    assert reply.finish_reason == "length"
    with pytest.raises(errors.StructuredOutputError, match=r"cut off by the token limit.*raise max_tokens") as caught:
        _ = reply.parsed
    assert caught.value.text == '{"name": "Paris", "popul'


def test_a_dict_response_format_keeps_parsed_as_the_json(emulator):
    emulator.enqueue(Reply(text=PARIS))
    reply = complete(emulator, response_format={"type": "json_schema", "json_schema": {"name": "c", "schema": {"type": "object"}}})
    assert reply.output_type is None
    assert reply.parsed == reply.json() == json.loads(PARIS)


@pytest.mark.parametrize("provider", PLAIN)
def test_a_service_without_structured_output_refuses_before_sending(llm_emulator, provider):
    emulator = llm_emulator(provider)
    with pytest.raises(errors.InvalidRequestError, match="no structured output: ask for JSON in the prompt"):
        complete(emulator, response_format=CityData)
    assert emulator.requests == []


def test_what_is_no_format_is_refused_before_sending(openai_emulator, anthropic_emulator):
    class Plain:
        name: str

    with pytest.raises(errors.InvalidRequestError, match="dataclass, TypedDict or pydantic model class"):
        complete(openai_emulator, response_format=Plain)
    with pytest.raises(errors.InvalidRequestError, match="no Anthropic form"):
        complete(anthropic_emulator, response_format={"type": "json_object"})
    assert openai_emulator.requests == [] and anthropic_emulator.requests == []


def test_a_conversation_parses_every_turn_and_saves_the_format_as_json(emulator):
    emulator.enqueue(Reply(text=PARIS), Reply(text='{"name": "Lyon", "population": 522250, "country": "FR"}'))
    with client_for(emulator) as client:
        conversation = client.conversation(model=wire_sample(emulator.provider).model, response_format=CityData)
        assert conversation.send("Largest?").parsed == CityData("Paris", 2102650)
        state = json.loads(json.dumps(conversation.to_dict()))
        assert state["options"]["response_format"]["json_schema"]["name"] == "CityData"
        resumed = client.conversation(state=state)
        assert resumed.send("Second?").parsed == {"name": "Lyon", "population": 522250, "country": "FR"}
    assert sent_schema(emulator)["required"] == ["name", "population", "country"]


def test_a_pickled_reply_keeps_its_fields_and_leaves_the_type_out(openai_emulator):
    @dataclasses.dataclass
    class Local:  # a local class cannot be pickled: the reply still can
        name: str

    openai_emulator.enqueue(Reply(text='{"name": "Paris"}'))
    reply = complete(openai_emulator, response_format=Local)
    assert reply.parsed == Local("Paris")
    copy = pickle.loads(pickle.dumps(reply))
    assert copy == reply and copy.output_type is None
    assert copy.parsed == {"name": "Paris"}
    assert "output_type" not in reply.to_dict()


def test_the_asyncio_client_parses_too(openai_emulator):
    openai_emulator.enqueue(Reply(text=PARIS))

    async def main():
        async with AsyncClient(client_for(openai_emulator)) as aclient:
            return await aclient.complete("Hi", model="emulator-1", response_format=CityModel)

    assert asyncio.run(main()).parsed == EXPECTED[CityModel]


def test_a_type_that_has_no_schema_is_a_schema_error(openai_emulator):
    @dataclasses.dataclass
    class Blob:
        data: bytes

    with pytest.raises(llmclients.SchemaError, match="field 'data' of Blob: bytes has no JSON Schema"):
        complete(openai_emulator, response_format=Blob)
    assert openai_emulator.requests == []


# --- chat --schema ---------------------------------------------------------------------------


def cli(emulator, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "llmclients", "chat", "-p", "openai", "--base-url", emulator.base_url, "-m", "m", *args],
        capture_output=True,
        encoding="utf-8",
        timeout=30,
        input="",
    )


def test_chat_schema_shorthand_prints_the_json(openai_emulator):
    openai_emulator.enqueue(Reply(text='{"name": "Paris", "age": 2000}'))
    result = cli(openai_emulator, "--schema", "name, age int: years since it was founded", "A city?")
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout) == {"name": "Paris", "age": 2000}
    spec = openai_emulator.last_request.json()["response_format"]["json_schema"]
    assert spec == {
        "name": "output",
        "strict": True,
        "schema": {
            "type": "object",
            "properties": {"name": {"type": "string"}, "age": {"type": "integer", "description": "years since it was founded"}},
            "required": ["name", "age"],
            "additionalProperties": False,
        },
    }


def test_chat_schema_file_and_a_reply_that_does_not_fit(openai_emulator, tmp_path):
    path = tmp_path / "person.json"
    path.write_text(json.dumps({"type": "object", "properties": {"tags": {"type": "array", "items": {"type": "string"}}}}))
    openai_emulator.enqueue(Reply(text='{"tags": ["a", 2]}'))
    result = cli(openai_emulator, "--schema", str(path), "--json", "Tags?")
    assert result.returncode == 3
    printed = json.loads(result.stdout)
    assert printed["error"]["type"] == "StructuredOutputError"
    assert "$.tags[1]: expected string, got integer 2" in printed["error"]["message"]
    assert openai_emulator.last_request.json()["response_format"]["json_schema"]["name"] == "person"


def test_chat_schema_bad_shorthand_is_a_usage_error(openai_emulator):
    result = cli(openai_emulator, "--schema", "name str, age integer", "Hi")
    assert result.returncode == 2
    assert "age's type 'integer' is not one of str, int, float, bool" in result.stderr
    assert openai_emulator.requests == []




def test_chat_schema_with_json_prints_parsed_beside_the_text(openai_emulator):
    openai_emulator.enqueue(Reply(text='{"name": "Paris", "motto": "Tossed, but not sunk"}'))
    result = cli(openai_emulator, "--json", "--schema", "name\nmotto: its motto, in English", "A city?")
    assert result.returncode == 0, result.stderr
    printed = json.loads(result.stdout)
    assert printed["parsed"] == {"name": "Paris", "motto": "Tossed, but not sunk"}
    assert printed["error"] is None and json.loads(printed["text"]) == printed["parsed"]
    properties = openai_emulator.last_request.json()["response_format"]["json_schema"]["schema"]["properties"]
    assert properties["motto"] == {"type": "string", "description": "its motto, in English"}
