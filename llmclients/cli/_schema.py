"""``chat --schema``: the reply as JSON of a schema, given as a JSON Schema
file or as a shorthand (``'name str, age int: years since birth'``, as
simonw/llm's ``--schema`` takes it): comma-separated fields (or one a line,
for descriptions with commas in them), each a name, an
optional type (``str``, ``int``, ``float``, ``bool``; ``str`` when left out)
and an optional ``: description``; every field is required."""

from __future__ import annotations

import json
import os
import re
from typing import Any, Dict, List, Optional, Tuple

from .. import errors
from .._core.schemas import schema_problems, strict_problems, strict_schema
from ._common import UsageError

__all__ = ["check_reply", "response_format_for"]

_TYPES = {"str": "string", "int": "integer", "float": "number", "bool": "boolean"}
_FIELD = re.compile(r"^\s*([A-Za-z_][\w-]*)\s*(\w+)?\s*(?::\s*(.*?))?\s*$", re.S)


def response_format_for(value: str) -> Dict[str, Any]:
    """The ``json_schema`` response format of ``--schema``'s value: a file, or the shorthand."""
    if os.path.isfile(value):
        name, schema = _from_file(value)
    elif value.lstrip().startswith("{"):
        name, schema = "output", _json(value, "--schema")
    else:
        name, schema = "output", shorthand_schema(value)
    strict = not strict_problems(schema)
    return {
        "type": "json_schema",
        "json_schema": {"name": name, "schema": strict_schema(schema) if strict else schema, "strict": strict},
    }


def _from_file(path: str) -> Tuple[str, Dict[str, Any]]:
    with open(path, encoding="utf-8") as file:
        schema = _json(file.read(), path)
    name = re.sub(r"[^\w-]", "_", os.path.splitext(os.path.basename(path))[0]) or "output"
    return name, schema


def _json(text: str, where: str) -> Dict[str, Any]:
    try:
        schema = json.loads(text)
    except ValueError as exc:
        raise UsageError(f"{where} is not JSON: {exc}") from None
    if not isinstance(schema, dict):
        raise UsageError(f"{where} is not a JSON Schema (a JSON object)")
    return schema


def shorthand_schema(text: str) -> Dict[str, Any]:
    """``'name str, age int: years'`` as an object schema, every field required."""
    properties: Dict[str, Any] = {}
    for part in _split(text):
        match = _FIELD.match(part)
        if not match:
            raise UsageError(f"--schema: {part.strip()!r} is not 'name [type][: description]'")
        name, kind, description = match.groups()
        if (kind or "str") not in _TYPES:
            raise UsageError(f"--schema: {name}'s type {kind!r} is not one of {', '.join(_TYPES)}")
        properties[name] = {"type": _TYPES[kind or "str"]}
        if description:
            properties[name]["description"] = description
    if not properties:
        raise UsageError("--schema is empty: give a JSON Schema file or fields such as 'name str, age int'")
    return {"type": "object", "properties": properties, "required": list(properties)}


def _split(text: str) -> List[str]:
    # As llm does: one field a line when there are several lines (a description
    # may then hold commas), else comma-separated.
    parts = text.splitlines() if "\n" in text.strip() else text.split(",")
    return [part for part in parts if part.strip()]


def check_reply(text: str, finish_reason: Optional[str], response_format: Dict[str, Any]) -> Any:
    """The reply's JSON, checked against the schema asked for;
    StructuredOutputError if it was cut off, is not JSON or does not fit."""
    if finish_reason == "length":
        raise errors.StructuredOutputError(
            "the reply was cut off by the token limit (finish_reason='length') before its JSON was whole; "
            "raise --max-tokens",
            text=text,
        )
    try:
        data = json.loads(text)
    except ValueError as exc:
        raise errors.StructuredOutputError(f"the reply is not JSON: {exc}", text=text) from None
    problems = schema_problems(response_format["json_schema"]["schema"], data)
    if problems:
        raise errors.StructuredOutputError(
            f"the reply does not fit the schema: {'; '.join(problems[:5])}", text=text, problems=problems
        )
    return data
