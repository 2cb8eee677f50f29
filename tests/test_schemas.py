"""Schemas from functions and types, checking JSON against them, and OpenAI's strict mode.

Generated schemas are compared with pydantic's own ``model_json_schema()``
for the same hints (less pydantic's ``title`` keys), and the strict transform
with the rules openai-python's ``to_strict_json_schema`` applies.
"""

from __future__ import annotations

import copy
import dataclasses
import enum
import itertools
import sys
from typing import Any, Dict, List, Literal, Optional, Tuple, Union

import pydantic
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from openai.lib._pydantic import _ensure_strict_json_schema
from typing_extensions import Annotated, NotRequired, TypedDict

import llmclients
from llmclients._core.schemas import (
    convert_arguments,
    function_tool,
    parse_as,
    response_format_of,
    schema_problems,
    strict_problems,
    strict_schema,
    type_schema,
)


class Color(enum.Enum):
    RED = "red"
    BLUE = "blue"


class Size(enum.IntEnum):
    S = 1
    M = 2


@dataclasses.dataclass
class Point:
    x: int
    y: float = 0.0
    tags: List[str] = dataclasses.field(default_factory=list)


class Address(TypedDict):
    street: str
    number: NotRequired[int]


class Loose(TypedDict, total=False):
    note: str


class City(pydantic.BaseModel):
    name: str
    population: int
    country: Optional[str] = None


@dataclasses.dataclass
class Node:
    value: int
    children: List[Node] = dataclasses.field(default_factory=list)


def untitled(schema: Any) -> Any:
    """``schema`` without pydantic's ``title`` keywords (a property named "title" stays)."""
    if isinstance(schema, list):
        return [untitled(item) for item in schema]
    if not isinstance(schema, dict):
        return schema
    out = {}
    for key, value in schema.items():
        if key == "title" and isinstance(value, str):
            continue
        if key in ("properties", "$defs"):
            out[key] = {name: untitled(sub) for name, sub in value.items()}
        else:
            out[key] = untitled(value)
    return out


def pydantic_parameters(fn: Any, descriptions: Dict[str, str]) -> Dict[str, Any]:
    """What pydantic makes of ``fn``'s parameters, as one model."""
    import inspect
    import typing

    hints = typing.get_type_hints(fn)
    fields = {}
    for name, parameter in inspect.signature(fn).parameters.items():
        default = ... if parameter.default is parameter.empty else parameter.default
        fields[name] = (hints[name], pydantic.Field(default, description=descriptions.get(name)))
    return untitled(pydantic.create_model(fn.__name__, **fields).model_json_schema())


# --- schemas from functions --------------------------------------------------------------


def get_weather(
    city: str,
    unit: Literal["C", "F"] = "C",
    color: Optional[Color] = None,
    size: Size = Size.M,
    days: int = 1,
    ratio: float = 0.5,
    metric: bool = True,
    nothing: None = None,
    either: Union[int, str] = 0,
    points: List[Point] = [],  # noqa: B006
    counts: Dict[str, int] = {},  # noqa: B006
    pair: Tuple[int, str] = (1, "a"),
    many: Tuple[int, ...] = (),
    address: Optional[Address] = None,
    loose: Optional[Loose] = None,
    place: Optional[City] = None,
    kind: Literal["x"] = "x",
    anything: Any = None,
) -> str:
    """The weather now in a city.

    Longer text that is not the summary.

    Args:
        city: The city's name, e.g. "Paris".
        unit (str): Celsius or
            Fahrenheit.
    """
    return city


def test_a_function_becomes_the_same_schema_pydantic_writes():
    tool = function_tool(get_weather)
    assert tool["type"] == "function"
    function = tool["function"]
    assert function["name"] == "get_weather"
    assert function["description"] == "The weather now in a city."
    parameters = untitled(function["parameters"])  # a pydantic model's own schema keeps its titles
    assert parameters.pop("additionalProperties") is False  # what pydantic leaves open, a tool closes
    expected = pydantic_parameters(get_weather, {"city": 'The city\'s name, e.g. "Paris".', "unit": "Celsius or Fahrenheit."})
    assert parameters == expected


@pytest.mark.parametrize(
    "tp",
    [Point, Address, Loose, Node, Color, Size, City, List[Point], Optional[Point], Tuple[int, str], Dict[str, Point]],
    ids=lambda tp: getattr(tp, "__name__", None) or repr(tp),
)
def test_a_type_becomes_the_same_schema_pydantic_writes(tp):
    assert untitled(type_schema(tp)) == untitled(pydantic.TypeAdapter(tp).json_schema())


if sys.version_info >= (3, 10):

    def test_builtin_generics_and_the_bar_union_are_read_alike():
        def f(a: list[int], b: dict[str, float], c: int | None = None, d: tuple[str, ...] = ()) -> None: ...

        def g(a: List[int], b: Dict[str, float], c: Optional[int] = None, d: Tuple[str, ...] = ()) -> None: ...

        assert function_tool(f)["function"]["parameters"] == function_tool(g)["function"]["parameters"]


def test_numpy_style_parameters_and_annotated_descriptions():
    def search(query: str, limit: Annotated[int, "How many at most."] = 10) -> List[str]:
        """Search the orders.

        Parameters
        ----------
        query : str
            What to look for,
            in plain words.

        Returns
        -------
        list
            The ids.
        """
        return []

    function = function_tool(search)["function"]
    assert function["description"] == "Search the orders."
    assert function["parameters"]["properties"] == {
        "query": {"type": "string", "description": "What to look for, in plain words."},
        "limit": {"type": "integer", "description": "How many at most.", "default": 10},
    }
    assert function["parameters"]["required"] == ["query"]


def test_a_function_without_a_docstring_has_no_description():
    def ping() -> str:
        return "pong"

    assert function_tool(ping)["function"] == {
        "name": "ping",
        "parameters": {"type": "object", "properties": {}, "required": [], "additionalProperties": False},
    }


def test_the_schema_is_cached_and_each_caller_gets_its_own_copy():
    first = function_tool(get_weather)
    first["function"]["parameters"]["properties"].clear()
    assert function_tool(get_weather)["function"]["parameters"]["properties"]["city"] == {
        "type": "string",
        "description": 'The city\'s name, e.g. "Paris".',
    }


def test_methods_leave_out_self():
    class Shop:
        def order(self, item: str, count: int = 1) -> str:
            """Order something."""
            return item

    assert function_tool(Shop().order)["function"]["parameters"]["required"] == ["item"]


def _no_hint(city, days: int) -> None: ...  # type: ignore[no-untyped-def]


def _star(*cities: str) -> None: ...


def _bytes(blob: bytes) -> None: ...


def _int_keys(table: Dict[int, str]) -> None: ...


@dataclasses.dataclass
class _Bad:
    when: complex


def _nested(item: Optional[_Bad] = None) -> None: ...


@pytest.mark.parametrize(
    "fn, parameter, words",
    [
        (_no_hint, "city", "has no type hint"),
        (_star, "cities", "passed by name"),
        (_bytes, "blob", "bytes has no JSON Schema"),
        (_int_keys, "table", "keys must be str"),
        (_nested, "item", "field 'when' of _Bad"),
    ],
)
def test_what_json_cannot_carry_is_refused_naming_the_parameter(fn, parameter, words):
    with pytest.raises(llmclients.SchemaError) as caught:
        function_tool(fn)
    assert caught.value.function == fn.__name__
    assert caught.value.parameter == parameter
    assert words in str(caught.value) and repr(parameter) in str(caught.value)
    assert isinstance(caught.value, TypeError) and isinstance(caught.value, llmclients.InvalidRequestError)


# --- checking values --------------------------------------------------------------------


SCHEMA = {
    "type": "object",
    "properties": {
        "name": {"type": "string", "minLength": 1},
        "age": {"type": ["integer", "null"], "minimum": 0},
        "kind": {"enum": ["a", "b"]},
        "fixed": {"const": 3},
        "tags": {"type": "array", "items": {"type": "string"}, "maxItems": 2},
        "pair": {"type": "array", "prefixItems": [{"type": "integer"}, {"type": "string"}]},
        "point": {"$ref": "#/$defs/Point"},
        "either": {"anyOf": [{"type": "integer"}, {"type": "string"}]},
        "one": {"oneOf": [{"type": "integer"}, {"type": "number"}]},
        "maybe": {"type": "string", "nullable": True},
        "extra": {"type": "object", "additionalProperties": {"type": "boolean"}},
    },
    "required": ["name"],
    "additionalProperties": False,
    "$defs": {"Point": {"type": "object", "properties": {"x": {"type": "integer"}}, "required": ["x"]}},
}


@pytest.mark.parametrize(
    "value, problems",
    [
        ({"name": "a"}, []),
        ({"name": "a", "age": None, "kind": "b", "fixed": 3, "tags": ["x"], "pair": [1, "y", 5]}, []),
        ({"name": "a", "point": {"x": 2.0}, "either": "s", "one": 1.5, "maybe": None, "extra": {"k": True}}, []),
        ({}, ["$: 'name' is required"]),
        ({"name": 5}, ["$.name: expected string, got integer 5"]),
        ({"name": ""}, ["$.name: shorter than 1 characters"]),
        ({"name": "a", "age": True}, ["$.age: expected integer or null, got boolean True"]),
        ({"name": "a", "age": -1}, ["$.age: -1 is less than the minimum 0"]),
        ({"name": "a", "kind": "c"}, ["$.kind: 'c' is not one of ['a', 'b']"]),
        ({"name": "a", "fixed": 4}, ["$.fixed: 4 is not 3"]),
        ({"name": "a", "tags": ["x", 1, "z"]}, ["$.tags: 3 items, more than 2", "$.tags[1]: expected string, got integer 1"]),
        ({"name": "a", "pair": ["1", "y"]}, ["$.pair[0]: expected integer, got string '1'"]),
        ({"name": "a", "point": {}}, ["$.point: 'x' is required"]),
        ({"name": "a", "either": 1.5}, ["$.either: fits none of the 2 anyOf choices; the closest: $.either: expected integer, got number 1.5"]),
        ({"name": "a", "one": 1}, ["$.one: fits 2 of the oneOf choices, where exactly one must"]),
        ({"name": "a", "extra": {"k": 1}}, ["$.extra.k: expected boolean, got integer 1"]),
        ({"name": "a", "color": "red"}, [f"$: unexpected property 'color' (allowed: {', '.join(map(repr, SCHEMA['properties']))})"]),
        ([], ["$: expected object, got array []"]),
    ],
)
def test_schema_problems_say_what_and_where(value, problems):
    assert schema_problems(SCHEMA, value) == problems


def test_a_ref_that_leads_nowhere_is_a_problem_not_a_crash():
    assert schema_problems({"$ref": "#/$defs/Gone"}, 1) == ["$: the schema's $ref '#/$defs/Gone' leads nowhere"]


def test_generated_schemas_check_what_they_describe():
    parameters = function_tool(get_weather)["function"]["parameters"]
    good = {"city": "Paris", "unit": "F", "color": "red", "points": [{"x": 1}], "pair": [2, "b"], "place": {"name": "P", "population": 3}}
    assert schema_problems(parameters, good) == []
    bad = {"city": "Paris", "pair": [2], "size": 3, "place": {"name": "P"}}
    assert schema_problems(parameters, bad) == [
        "$.pair: 1 items, fewer than 2",
        "$.size: 3 is not one of [1, 2]",
        "$.place: fits none of the 2 anyOf choices; the closest: $.place: 'population' is required",
    ]


# --- values in ---------------------------------------------------------------------------


def test_arguments_become_what_the_hints_ask_for():
    converted = convert_arguments(
        get_weather,
        {
            "city": "Paris",
            "color": "blue",
            "size": 1,
            "ratio": 2,
            "points": [{"x": 1, "tags": ["a"]}],
            "pair": [3, "c"],
            "many": [1, 2],
            "address": {"street": "Main"},
            "place": {"name": "P", "population": 3},
            "either": "s",
        },
    )
    assert converted == {
        "city": "Paris",
        "color": Color.BLUE,
        "size": Size.S,
        "ratio": 2.0,
        "points": [Point(1, 0.0, ["a"])],
        "pair": (3, "c"),
        "many": (1, 2),
        "address": {"street": "Main"},
        "place": City(name="P", population=3),
        "either": "s",
    }
    assert type(converted["ratio"]) is float
    assert get_weather(**converted) == "Paris"


@dataclasses.dataclass
class Cat:
    meows: bool


@dataclasses.dataclass
class Dog:
    barks: int


def test_a_union_of_classes_converts_to_the_member_the_value_fits():
    def adopt(pet: Union[Cat, Dog], friends: Optional[List[Dog]] = None) -> None: ...

    assert convert_arguments(adopt, {"pet": {"barks": 2}, "friends": [{"barks": 1}]}) == {"pet": Dog(2), "friends": [Dog(1)]}


@pytest.mark.parametrize(
    "tp, data, expected",
    [
        (City, {"name": "Paris", "population": 2102650, "country": None}, City(name="Paris", population=2102650)),
        (Point, {"x": 1, "y": None, "tags": None}, Point(1)),  # strict mode's nulls for optional fields
        (Address, {"street": "Main", "number": 4}, {"street": "Main", "number": 4}),
        (Node, {"value": 1, "children": [{"value": 2, "children": []}]}, Node(1, [Node(2)])),
    ],
)
def test_parse_as_builds_the_instance(tp, data, expected):
    assert parse_as(tp, data) == expected


def test_parse_as_says_why_data_does_not_fit():
    with pytest.raises(llmclients.StructuredOutputError) as caught:
        parse_as(City, {"name": "Paris", "population": "many"}, text="{...}")
    assert caught.value.problems == ["$.population: expected integer, got string 'many'"]
    assert caught.value.text == "{...}"
    assert "does not fit City" in str(caught.value)
    assert isinstance(caught.value, llmclients.InvalidJSONError)


def test_a_pydantic_validator_failure_is_a_structured_output_error():
    class Even(pydantic.BaseModel):
        n: int

        @pydantic.field_validator("n")
        @classmethod
        def even(cls, n: int) -> int:
            if n % 2:
                raise ValueError("n must be even")
            return n

    with pytest.raises(llmclients.StructuredOutputError) as caught:
        parse_as(Even, {"n": 3})
    assert any("n must be even" in line for line in caught.value.problems)


# --- strict mode --------------------------------------------------------------------------


def test_response_format_is_strict_where_the_schema_allows():
    spec = response_format_of(Point)["json_schema"]
    assert spec["name"] == "Point" and spec["strict"] is True
    assert spec["schema"] == {
        "type": "object",
        "properties": {
            "x": {"type": "integer"},
            "y": {"anyOf": [{"type": "number"}, {"type": "null"}]},
            "tags": {"anyOf": [{"type": "array", "items": {"type": "string"}}, {"type": "null"}]},
        },
        "required": ["x", "y", "tags"],
        "additionalProperties": False,
    }


def test_a_dict_field_cannot_be_strict_and_is_sent_as_it_is():
    @dataclasses.dataclass
    class Scores:
        by_name: Dict[str, int]

    assert strict_problems(type_schema(Scores)) == ["$.by_name: a dict of any keys (additionalProperties) cannot be strict"]
    spec = response_format_of(Scores)["json_schema"]
    assert spec["strict"] is False and spec["schema"] == type_schema(Scores)


def test_a_ref_with_a_description_beside_it_is_inlined():
    schema = {
        "type": "object",
        "properties": {"p": {"$ref": "#/$defs/P", "description": "a point"}},
        "required": ["p"],
        "$defs": {"P": {"type": "object", "properties": {"x": {"type": "integer", "default": 0}}}},
    }
    strict = strict_schema(schema)
    assert strict["properties"]["p"] == {
        "type": "object",
        "properties": {"x": {"anyOf": [{"type": "integer"}, {"type": "null"}]}},
        "required": ["x"],
        "additionalProperties": False,
        "description": "a point",
    }
    assert schema["$defs"]["P"]["properties"]["x"]["default"] == 0  # the input is left alone


_names = (f"T{n}" for n in itertools.count())
_leaves = st.sampled_from([str, int, float, bool, Color, Size, Literal["a", "b"], Literal[1], Point, Address, City])


def _containers(inner: st.SearchStrategy[Any]) -> st.SearchStrategy[Any]:
    return st.one_of(
        inner.map(lambda tp: Optional[tp]),
        inner.map(lambda tp: List[tp]),  # type: ignore[valid-type]
        st.tuples(inner, inner).map(lambda pair: Union[pair]),
        st.tuples(inner, inner).map(lambda pair: Tuple[pair]),
        st.lists(st.tuples(inner, st.booleans()), min_size=1, max_size=4).map(_dataclass),
        st.lists(inner, min_size=1, max_size=3).map(_typeddict),
    )


def _dataclass(fields: List[Tuple[Any, bool]]) -> Any:
    # Fields with defaults after those without, as dataclasses require.
    ordered = sorted(enumerate(fields), key=lambda item: item[1][1])
    specs = [
        (f"f{index}", tp, dataclasses.field(default=None)) if optional else (f"f{index}", tp)
        for index, (tp, optional) in ordered
    ]
    return dataclasses.make_dataclass(next(_names), specs)


def _typeddict(types: List[Any]) -> Any:
    return TypedDict(next(_names), {f"k{index}": tp for index, tp in enumerate(types)}, total=False)  # type: ignore[operator]


_types = st.recursive(_leaves, _containers, max_leaves=8)
_objects = st.lists(st.tuples(_types, st.booleans()), min_size=1, max_size=4).map(_dataclass)


def _openai_rules_hold(schema: Any, path: str = "$") -> None:
    """OpenAI's strict rules: closed objects with every property required, no defaults, no $ref beside other keys."""
    if isinstance(schema, list):
        for index, item in enumerate(schema):
            _openai_rules_hold(item, f"{path}[{index}]")
        return
    if not isinstance(schema, dict):
        return
    if schema.get("type") == "object":
        assert schema.get("additionalProperties") is False, path
        assert schema.get("required") == list(schema.get("properties", {})), path
    assert "default" not in schema, path
    assert "$ref" not in schema or len(schema) == 1, path
    for key, value in schema.items():
        if key in ("properties", "$defs"):
            for name, sub in value.items():
                _openai_rules_hold(sub, f"{path}.{name}")
        elif key not in ("enum", "const", "required"):
            _openai_rules_hold(value, f"{path}.{key}")


@pytest.mark.filterwarnings("ignore:Generating overly large repr")  # the generated classes' reprs
@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(_objects)
def test_the_strict_form_of_any_generated_schema_is_what_openai_accepts(tp):
    schema = type_schema(tp)
    assert strict_problems(schema) == []
    strict = strict_schema(schema)
    _openai_rules_hold(strict)
    # openai-python's own transform finds nothing left to change.
    again = copy.deepcopy(strict)
    assert _ensure_strict_json_schema(again, path=(), root=again) == strict
    assert strict_schema(strict) == strict  # and ours is idempotent


_required_leaves = st.sampled_from([str, int, float, bool, Color, Literal["a", "b"], Literal[1]])


def _required_containers(inner: st.SearchStrategy[Any]) -> st.SearchStrategy[Any]:
    return st.one_of(
        inner.map(lambda tp: Optional[tp]),
        inner.map(lambda tp: List[tp]),  # type: ignore[valid-type]
        st.tuples(inner, inner).map(lambda pair: Union[pair]),
        st.lists(inner, min_size=1, max_size=4).map(lambda types: _dataclass([(tp, False) for tp in types])),
        st.lists(inner, min_size=1, max_size=3).map(_total_typeddict),
    )


def _total_typeddict(types: List[Any]) -> Any:
    return TypedDict(next(_names), {f"k{index}": tp for index, tp in enumerate(types)})  # type: ignore[operator]


_required_objects = st.lists(st.recursive(_required_leaves, _required_containers, max_leaves=8), min_size=1, max_size=4).map(
    lambda types: _dataclass([(tp, False) for tp in types])
)


@pytest.mark.filterwarnings("ignore:Generating overly large repr")
@settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(_required_objects)
def test_where_every_field_is_required_the_strict_form_is_openai_pythons(tp):
    # openai-python's to_strict_json_schema makes no optional field nullable (it
    # drops none of a model's defaults either): with every field required, the two agree.
    from openai.lib._pydantic import to_strict_json_schema

    assert strict_schema(type_schema(tp)) == untitled(to_strict_json_schema(pydantic.TypeAdapter(tp)))


def test_a_method_of_an_unhashable_object_is_described_too():
    @dataclasses.dataclass
    class Basket:  # eq=True without frozen: instances cannot be hashed
        items: List[str]

        def add(self, item: str) -> None:
            """Add an item."""
            self.items.append(item)

    basket = Basket([])
    assert function_tool(basket.add)["function"]["description"] == "Add an item."
    assert convert_arguments(basket.add, {"item": "pear"}) == {"item": "pear"}
