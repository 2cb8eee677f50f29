"""Tools from Python functions and replies as Python types.

* :func:`function_tool`: a function as an OpenAI-shaped tool, its parameters'
  schema from the type hints and their descriptions from the docstring
  (:mod:`.schema_types`); cached per function.
* :func:`type_schema`: the JSON Schema of a type (a ``response_format``);
  :func:`response_format_of` the ``json_schema`` response format asking for it.
* :func:`schema_problems`, :func:`strict_schema`, :func:`strict_problems`
  (:mod:`.schema_check`): checking JSON against a schema, and OpenAI's strict mode.
* :func:`convert_arguments`: a tool call's checked arguments as the values
  the function's hints ask for (Enum members, dataclass instances, tuples).
* :func:`parse_as`: JSON data as an instance of a type, or
  :class:`~llmclients.errors.StructuredOutputError` saying why not.

The schemas returned are the caller's own copies: changing one changes no
later answer.
"""

from __future__ import annotations

import dataclasses
import enum
import functools
import inspect
import json
import typing
from typing import Any, Callable, Dict, List, Mapping, Optional, Tuple

from ..errors import InvalidRequestError, SchemaError, StructuredOutputError
from .schema_check import drop_strict_nulls, schema_problems, strict_problems, strict_schema
from .schema_types import (
    UNION_TYPES,
    SchemaBuilder,
    is_pydantic_model,
    is_typeddict,
    parse_docstring,
    unwrap,
    with_extras,
)

__all__ = [
    "convert_arguments",
    "copy_json",
    "function_tool",
    "is_output_type",
    "output_format",
    "parse_as",
    "parse_reply",
    "response_format_of",
    "schema_problems",
    "strict_problems",
    "strict_schema",
    "type_schema",
]


def function_tool(fn: Callable[..., Any]) -> Dict[str, Any]:
    """``fn`` as an OpenAI-shaped tool: ``{"type": "function", "function":
    {"name", "description", "parameters"}}`` (no description when the
    docstring has no summary).

    The parameters are an object of ``fn``'s parameters, each one's schema
    from its type hint and its description from the docstring's ``Args:``
    (Google) or ``Parameters`` (NumPy) section or an ``Annotated[X, "..."]``;
    those without a default are required, and no other property is allowed.
    A parameter without a hint, ``*args``/``**kwargs``, or a hint with no JSON
    Schema raises :class:`~llmclients.errors.SchemaError` naming it.

    The schema is made once per function (the last 1,024 functions are kept,
    and kept alive); a method of an object that cannot be hashed is described
    anew each time.
    """
    copied: Dict[str, Any] = copy_json(_cached(_function_tool, fn))
    return copied


def _cached(cached: Any, fn: Callable[..., Any]) -> Any:
    """``cached(fn)``, or, for a method of an object that cannot be hashed (the
    cache's key), the function under the cache, run each time."""
    try:
        return cached(fn)
    except SchemaError:
        raise
    except TypeError:  # unhashable: the cache's key
        if getattr(fn, "__self__", None) is None:
            raise
        return cached.__wrapped__(fn)


@functools.lru_cache(maxsize=1024)
def _function_tool(fn: Callable[..., Any]) -> Dict[str, Any]:
    name = getattr(fn, "__name__", None)
    if not isinstance(name, str) or not callable(fn):
        raise SchemaError(f"a tool must be a function with a __name__, not {fn!r}")
    summary, described = parse_docstring(inspect.getdoc(fn) or "")
    builder = SchemaBuilder()
    properties: Dict[str, Any] = {}
    required: List[str] = []
    for parameter, hint in _parameters(fn, name):
        try:
            schema = builder.schema(hint)
        except SchemaError as exc:
            raise SchemaError(
                f"parameter {parameter.name!r} of {name}(): {exc.message}", function=name, parameter=parameter.name
            ) from None
        properties[parameter.name] = with_extras(schema, described.get(parameter.name), parameter.default)
        if parameter.default is inspect.Parameter.empty:
            required.append(parameter.name)
    parameters: Dict[str, Any] = {"type": "object", "properties": properties, "required": required}
    parameters["additionalProperties"] = False
    if builder.defs:
        parameters["$defs"] = builder.defs
    function: Dict[str, Any] = {"name": name}
    if summary:
        function["description"] = summary
    function["parameters"] = parameters
    return {"type": "function", "function": function}


def copy_json(value: Any) -> Any:
    """A copy of a JSON value's dicts and lists (its strings and numbers are
    shared: they cannot change); a third of ``copy.deepcopy``'s time."""
    if value.__class__ is dict:
        return {key: copy_json(item) for key, item in value.items()}
    if value.__class__ is list:
        return [copy_json(item) for item in value]
    return value


def _parameters(fn: Callable[..., Any], name: str) -> List[Tuple[inspect.Parameter, Any]]:
    """``fn``'s parameters and their hints; SchemaError for one a model cannot fill."""
    try:
        signature = inspect.signature(fn)
        hints = typing.get_type_hints(fn, include_extras=True)
    except (TypeError, ValueError, NameError) as exc:
        raise SchemaError(f"cannot read the signature of {name}(): {exc}", function=name) from None
    found = []
    for parameter in signature.parameters.values():
        if parameter.kind in (parameter.VAR_POSITIONAL, parameter.VAR_KEYWORD, parameter.POSITIONAL_ONLY):
            raise SchemaError(
                f"parameter {parameter.name!r} of {name}() is {parameter.kind.description}: a tool's "
                "arguments are passed by name",
                function=name,
                parameter=parameter.name,
            )
        if parameter.name not in hints:
            raise SchemaError(
                f"parameter {parameter.name!r} of {name}() has no type hint: give it one (str, int, ...)",
                function=name,
                parameter=parameter.name,
            )
        found.append((parameter, hints[parameter.name]))
    return found


def type_schema(tp: Any) -> Dict[str, Any]:
    """The JSON Schema of ``tp`` (a dataclass, TypedDict, pydantic model, or
    any hint :func:`function_tool` takes); SchemaError if it has none."""
    copied: Dict[str, Any] = copy_json(_type_schema(tp))
    return copied


@functools.lru_cache(maxsize=1024)
def _type_schema(tp: Any) -> Dict[str, Any]:
    return SchemaBuilder().root(tp)


def is_output_type(value: Any) -> bool:
    """True for what ``response_format`` takes as a type: a dataclass, a
    ``TypedDict`` or a pydantic model class."""
    return isinstance(value, type) and (dataclasses.is_dataclass(value) or is_typeddict(value) or is_pydantic_model(value))


def output_format(value: Any) -> Tuple[type, Dict[str, Any]]:
    """A ``response_format`` given as a type: the type, and the format that asks for it
    (:func:`response_format_of`); InvalidRequestError for anything else that is no dict."""
    if not is_output_type(value):
        raise InvalidRequestError(
            "response_format must be a dict such as {'type': 'json_object'}, or a dataclass, "
            f"TypedDict or pydantic model class; not {value!r}"
        )
    return value, response_format_of(value)


def response_format_of(tp: type) -> Dict[str, Any]:
    """The ``json_schema`` response format (OpenAI's shape) that asks for ``tp``:
    named after it, strict where its schema can be (:func:`strict_problems`)."""
    copied: Dict[str, Any] = copy_json(_response_format_of(tp))
    return copied


@functools.lru_cache(maxsize=256)
def _response_format_of(tp: type) -> Dict[str, Any]:
    schema = _type_schema(tp)
    strict = not strict_problems(schema)
    spec: Dict[str, Any] = {"name": tp.__name__, "schema": strict_schema(schema) if strict else copy_json(schema)}
    spec["strict"] = strict
    return {"type": "json_schema", "json_schema": spec}


# --- values in -------------------------------------------------------------------------------


def convert_arguments(fn: Callable[..., Any], arguments: Mapping[str, Any]) -> Dict[str, Any]:
    """``arguments`` (JSON that fits ``function_tool(fn)``'s parameters) as the
    values ``fn``'s hints ask for, ready for ``fn(**converted)``: Enum members,
    dataclass, TypedDict and pydantic instances, tuples; the rest as they are."""
    hints = _cached(_hints, fn)
    return {name: convert(hints[name], value) if name in hints else value for name, value in arguments.items()}


@functools.lru_cache(maxsize=1024)
def _hints(owner: Any) -> Dict[str, Any]:
    """The hints of a function or a class, read once (they are read on every call)."""
    return typing.get_type_hints(owner, include_extras=True)


def convert(tp: Any, value: Any) -> Any:
    """``value`` (JSON that fits ``tp``'s schema) as the value ``tp`` asks for."""
    tp, _ = unwrap(tp)
    origin = typing.get_origin(tp)
    args = typing.get_args(tp)
    if tp is float and value.__class__ is int:
        return float(value)
    if tp is int and value.__class__ is float:
        return int(value)
    if origin is not None and args:
        return _convert_generic(tp, origin, args, value)
    if isinstance(tp, type) and value is not None:
        if issubclass(tp, enum.Enum):
            return tp(value)
        if is_pydantic_model(tp):
            return tp.model_validate(value)  # type: ignore[attr-defined]
        if dataclasses.is_dataclass(tp) or is_typeddict(tp):
            # Keys the class does not declare are left out, as pydantic ignores them by default.
            hints = _hints(typing.cast(Any, tp))  # a class: hashable, which its narrowed type hides
            if dataclasses.is_dataclass(tp):
                hints = {f.name: hints.get(f.name, f.type) for f in dataclasses.fields(tp) if f.init}
            fields = {k: convert(hints[k], v) for k, v in value.items() if k in hints}
            return fields if is_typeddict(tp) else tp(**fields)
        if tp is tuple:
            return tuple(value)
    return value


def _convert_generic(tp: Any, origin: Any, args: Tuple[Any, ...], value: Any) -> Any:
    if origin is typing.Literal:
        return value
    if origin in UNION_TYPES:
        if value is None:
            return None
        # The first member whose schema the value fits.
        for member in args:
            if member is not type(None) and not schema_problems(_type_schema(unwrap(member)[0]), value):
                return convert(member, value)
        return value
    if origin is tuple and isinstance(value, list):
        if len(args) == 2 and args[1] is Ellipsis:
            return tuple(convert(args[0], item) for item in value)
        return tuple(convert(arg, item) for arg, item in zip(args, value))
    if isinstance(value, list):
        return [convert(args[0], item) for item in value]
    if isinstance(value, dict) and len(args) == 2:
        return {key: convert(args[1], item) for key, item in value.items()}
    return value


def parse_as(tp: Any, data: Any, *, text: str = "") -> Any:
    """``data`` (parsed JSON) as an instance of ``tp``: a pydantic model, a
    dataclass, a TypedDict (a dict) or any hint :func:`type_schema` takes.

    Nulls that strict mode made the model send for optional fields are
    dropped first (their defaults apply), and so are keys a dataclass or
    TypedDict does not declare (pydantic's own default for its models). Raises
    :class:`~llmclients.errors.StructuredOutputError` with ``problems`` (and
    ``text``, for the message) when ``data`` does not fit.
    """
    schema = _type_schema(tp)
    data = drop_strict_nulls(schema, data)
    problems = schema_problems(schema, data)
    if not problems:
        try:
            return convert(tp, data)
        except (TypeError, ValueError) as exc:  # pydantic's ValidationError is a ValueError
            problems = [line for line in str(exc).splitlines() if line.strip()][:10]
    name = getattr(tp, "__name__", repr(tp))
    raise StructuredOutputError(
        f"the reply does not fit {name}: {'; '.join(problems[:5])}", text=text, problems=problems
    )


def parse_reply(tp: type, text: str, finish_reason: Optional[str], refusal: str = "") -> Any:
    """A reply's ``text`` as an instance of ``tp``; StructuredOutputError
    (``text`` the reply) for a refusal, a reply the token limit cut
    (``finish_reason`` "length"), text that is not JSON, or JSON that does not fit."""
    name = getattr(tp, "__name__", repr(tp))
    if refusal:
        raise StructuredOutputError(f"the model refused instead of answering with a {name}: {refusal}", text=text)
    if finish_reason == "length":
        raise StructuredOutputError(
            f"the reply was cut off by the token limit (finish_reason='length') after {len(text)} "
            f"characters, before its {name} was whole; raise max_tokens",
            text=text,
        )
    try:
        data = json.loads(text)
    except ValueError as exc:
        raise StructuredOutputError(f"the reply is not the JSON of a {name}: {exc}", text=text) from None
    return parse_as(tp, data, text=text)
