"""Checking JSON values against a JSON Schema (:func:`schema_problems`), and
OpenAI's strict mode (:func:`strict_schema`, :func:`strict_problems`).

The checker knows the keywords the schemas of :mod:`.schema_types` use and the
common ones of hand-written tool schemas: ``type`` (a name or a list),
``enum``, ``const``, ``properties``, ``required``, ``additionalProperties``,
``items``, ``prefixItems``, ``minItems``/``maxItems``, ``anyOf``, ``oneOf``,
``allOf``, ``$ref`` into ``$defs`` (or ``definitions``), OpenAPI's
``nullable``, and the bounds ``minimum``/``maximum``/``minLength``/``maxLength``.
Other keywords (``pattern``, ``format``) are not checked: a value they would
refuse passes. Each problem names its place (``$.items[2].name``), so that a
model told about it can correct itself.
"""

from __future__ import annotations

import copy
from typing import Any, Dict, List, Mapping, Optional

__all__ = ["drop_strict_nulls", "schema_problems", "strict_problems", "strict_schema"]

_TYPES = {
    "string": lambda v: v.__class__ is str,
    "integer": lambda v: (v.__class__ is int) or (v.__class__ is float and v.is_integer()),
    "number": lambda v: v.__class__ in (int, float),
    "boolean": lambda v: v.__class__ is bool,
    "null": lambda v: v is None,
    "array": lambda v: v.__class__ in (list, tuple),
    "object": lambda v: isinstance(v, dict),
}
_NULL = {"type": "null"}


def schema_problems(schema: Mapping[str, Any], value: Any) -> List[str]:
    """Why ``value`` (parsed JSON) does not fit ``schema``: one line per
    problem, each with its place; an empty list when it fits."""
    problems: List[str] = []
    _check(schema, value, "$", schema, problems)
    return problems


def _check(schema: Any, value: Any, path: str, root: Mapping[str, Any], problems: List[str]) -> None:
    if schema is True or schema == {}:
        return
    if schema is False:
        problems.append(f"{path}: no value is allowed here")
        return
    if not isinstance(schema, dict):
        return  # not a schema: nothing to hold the value to
    if value is None and schema.get("nullable") is True:
        return
    if "$ref" in schema:
        target = resolve(root, schema["$ref"])
        if target is None:
            problems.append(f"{path}: the schema's $ref {schema['$ref']!r} leads nowhere")
            return
        _check(target, value, path, root, problems)
    if not _check_type(schema, value, path, problems):
        return
    if "const" in schema and not _same(value, schema["const"]):
        problems.append(f"{path}: {_show(value)} is not {_show(schema['const'])}")
    if "enum" in schema and not any(_same(value, option) for option in schema["enum"]):
        problems.append(f"{path}: {_show(value)} is not one of {_show(schema['enum'])}")
    _check_bounds(schema, value, path, problems)
    if isinstance(value, dict):
        _check_object(schema, value, path, root, problems)
    elif value.__class__ in (list, tuple):
        _check_array(schema, value, path, root, problems)
    _check_combinations(schema, value, path, root, problems)


def _check_type(schema: Mapping[str, Any], value: Any, path: str, problems: List[str]) -> bool:
    kind = schema.get("type")
    if kind is None:
        return True
    kinds = kind if isinstance(kind, list) else [kind]
    if any(_TYPES.get(name, _anything)(value) for name in kinds):
        return True
    wanted = " or ".join(map(str, kinds))
    problems.append(f"{path}: expected {wanted}, got {_kind(value)} {_show(value)}")
    return False


def _check_bounds(schema: Mapping[str, Any], value: Any, path: str, problems: List[str]) -> None:
    if value.__class__ in (int, float):
        if "minimum" in schema and value < schema["minimum"]:
            problems.append(f"{path}: {value} is less than the minimum {schema['minimum']}")
        if "maximum" in schema and value > schema["maximum"]:
            problems.append(f"{path}: {value} is more than the maximum {schema['maximum']}")
        if "exclusiveMinimum" in schema and value <= schema["exclusiveMinimum"]:
            problems.append(f"{path}: {value} must be more than {schema['exclusiveMinimum']}")
        if "exclusiveMaximum" in schema and value >= schema["exclusiveMaximum"]:
            problems.append(f"{path}: {value} must be less than {schema['exclusiveMaximum']}")
    elif value.__class__ is str:
        if "minLength" in schema and len(value) < schema["minLength"]:
            problems.append(f"{path}: shorter than {schema['minLength']} characters")
        if "maxLength" in schema and len(value) > schema["maxLength"]:
            problems.append(f"{path}: longer than {schema['maxLength']} characters")


def _check_object(schema: Mapping[str, Any], value: Dict[str, Any], path: str, root: Any, problems: List[str]) -> None:
    properties = schema.get("properties") or {}
    for name in schema.get("required") or ():
        if name not in value:
            problems.append(f"{path}: {name!r} is required")
    extra = schema.get("additionalProperties", True)
    for name, item in value.items():
        where = f"{path}.{name}" if name.isidentifier() else f"{path}[{name!r}]"
        if name in properties:
            _check(properties[name], item, where, root, problems)
        elif extra is False:
            allowed = ", ".join(map(repr, properties)) or "none"
            problems.append(f"{path}: unexpected property {name!r} (allowed: {allowed})")
        elif isinstance(extra, dict):
            _check(extra, item, where, root, problems)


def _check_array(schema: Mapping[str, Any], value: Any, path: str, root: Any, problems: List[str]) -> None:
    if "minItems" in schema and len(value) < schema["minItems"]:
        problems.append(f"{path}: {len(value)} items, fewer than {schema['minItems']}")
    if "maxItems" in schema and len(value) > schema["maxItems"]:
        problems.append(f"{path}: {len(value)} items, more than {schema['maxItems']}")
    prefix = schema.get("prefixItems") or []
    for index, (item_schema, item) in enumerate(zip(prefix, value)):
        _check(item_schema, item, f"{path}[{index}]", root, problems)
    items = schema.get("items")
    if isinstance(items, list):  # draft 4-7 tuples: items as a list
        for index, (item_schema, item) in enumerate(zip(items, value)):
            _check(item_schema, item, f"{path}[{index}]", root, problems)
    elif items is not None:
        for index in range(len(prefix), len(value)):
            _check(items, value[index], f"{path}[{index}]", root, problems)


def _check_combinations(schema: Mapping[str, Any], value: Any, path: str, root: Any, problems: List[str]) -> None:
    for sub in schema.get("allOf") or ():
        _check(sub, value, path, root, problems)
    for keyword in ("anyOf", "oneOf"):
        options = schema.get(keyword)
        if not options:
            continue
        found = [schema_problems_at(option, value, path, root) for option in options]
        fitting = sum(1 for each in found if not each)
        if fitting == 0:
            # The closest: a choice of the value's type (not "expected null") with the fewest problems.
            closest = min(found, key=lambda each: (each[0].startswith(f"{path}: expected "), len(each)))
            problems.append(f"{path}: fits none of the {len(options)} {keyword} choices; the closest: {'; '.join(closest)}")
        elif keyword == "oneOf" and fitting > 1:
            problems.append(f"{path}: fits {fitting} of the oneOf choices, where exactly one must")


def schema_problems_at(schema: Any, value: Any, path: str, root: Mapping[str, Any]) -> List[str]:
    """:func:`schema_problems` of a part of ``root`` (its ``$ref`` resolved in ``root``), at ``path``."""
    problems: List[str] = []
    _check(schema, value, path, root, problems)
    return problems


def resolve(root: Mapping[str, Any], ref: str) -> Optional[Mapping[str, Any]]:
    """The schema a local ``$ref`` (``#/$defs/Name``) points to in ``root``; None if none."""
    if not ref.startswith("#"):
        return None
    target: Any = root
    for part in ref[1:].split("/")[1:]:
        part = part.replace("~1", "/").replace("~0", "~")
        if not isinstance(target, dict) or part not in target:
            return None
        target = target[part]
    return target if isinstance(target, dict) else None


def _same(value: Any, option: Any) -> bool:
    # JSON's true is not 1: compare bools as bools.
    return value == option and (value.__class__ is bool) == (option.__class__ is bool)


def _anything(value: Any) -> bool:
    return True


def _kind(value: Any) -> str:
    for name in ("null", "boolean", "integer", "number", "string", "array", "object"):
        if _TYPES[name](value):
            return name
    return type(value).__name__


def _show(value: Any, limit: int = 60) -> str:
    shown = repr(value)
    return shown if len(shown) <= limit else shown[: limit - 3] + "..."


# --- strict mode -------------------------------------------------------------------------


def strict_problems(schema: Mapping[str, Any]) -> List[str]:
    """Why ``schema`` cannot be sent with OpenAI's ``strict: true`` even after
    :func:`strict_schema`; empty when it can. Strict mode wants an object at
    the root and every object closed: a ``dict[str, X]`` (``additionalProperties``
    a schema), an object without ``properties`` or a schema of any value
    (``{}``) has no strict form."""
    problems: List[str] = []
    if schema.get("type") != "object":
        problems.append("$: the root must be an object")
    _strict_walk(schema, "$", problems)
    return problems


def _strict_walk(schema: Any, path: str, problems: List[str]) -> None:
    if not isinstance(schema, dict):
        return
    if not schema or (set(schema) <= {"description", "default", "title"}):
        problems.append(f"{path}: any value (no type) cannot be strict")
    if schema.get("type") == "object" or "properties" in schema:
        if isinstance(schema.get("additionalProperties"), dict) and schema["additionalProperties"]:
            problems.append(f"{path}: a dict of any keys (additionalProperties) cannot be strict")
        elif not schema.get("properties") and schema.get("additionalProperties") is not False:
            problems.append(f"{path}: an object without properties cannot be strict")
    for name, sub in (schema.get("properties") or {}).items():
        _strict_walk(sub, f"{path}.{name}", problems)
    for name, sub in (schema.get("$defs") or {}).items():
        _strict_walk(sub, f"$defs.{name}", problems)
    if isinstance(schema.get("items"), dict):
        _strict_walk(schema["items"], f"{path}[]", problems)
    for keyword in ("prefixItems", "anyOf", "oneOf", "allOf"):
        for index, sub in enumerate(schema.get(keyword) or ()):
            _strict_walk(sub, f"{path}.{keyword}[{index}]", problems)


def strict_schema(schema: Mapping[str, Any]) -> Dict[str, Any]:
    """A copy of ``schema`` as OpenAI's strict mode takes it: every object's
    properties all required and ``additionalProperties: false``, a property
    that was optional made nullable (``anyOf`` with null: the model sends null
    where it would leave it out, and :func:`drop_strict_nulls` takes those
    nulls out again), ``default`` dropped, a ``$ref`` with keys beside it
    inlined, ``oneOf`` as ``anyOf``. Check :func:`strict_problems` first: a
    schema with none is accepted as strict."""
    root = copy.deepcopy(dict(schema))
    return _strict(root, root)


def _strict(schema: Dict[str, Any], root: Dict[str, Any]) -> Dict[str, Any]:
    if "$ref" in schema and len(schema) > 1:
        target = resolve(root, schema["$ref"]) or {}
        merged = {**copy.deepcopy(dict(target)), **{k: v for k, v in schema.items() if k != "$ref"}}
        return _strict(merged, root)
    schema.pop("default", None)
    for name, sub in (schema.get("$defs") or {}).items():
        schema["$defs"][name] = _strict(sub, root)
    if "oneOf" in schema:
        schema["anyOf"] = schema.pop("oneOf")
    properties = schema.get("properties")
    if isinstance(properties, dict):
        required = set(schema.get("required") or ())
        schema["properties"] = {
            name: _strict(sub, root) if name in required else _nullable(_strict(sub, root), root)
            for name, sub in properties.items()
        }
        schema["required"] = list(properties)
    is_object = schema.get("type") == "object" or isinstance(properties, dict)
    if is_object and not (isinstance(schema.get("additionalProperties"), dict) and schema["additionalProperties"]):
        schema["additionalProperties"] = False
    if isinstance(schema.get("items"), dict):
        schema["items"] = _strict(schema["items"], root)
    for keyword in ("prefixItems", "anyOf", "allOf"):
        if isinstance(schema.get(keyword), list):
            schema[keyword] = [_strict(sub, root) for sub in schema[keyword]]
    return schema


def _nullable(schema: Dict[str, Any], root: Mapping[str, Any]) -> Dict[str, Any]:
    """``schema`` that also accepts null (as it is, if it does already)."""
    if not schema_problems_at(schema, None, "$", root):
        return schema
    description = schema.pop("description", None)
    wrapped: Dict[str, Any] = {"anyOf": [schema, dict(_NULL)]}
    if description is not None:
        wrapped["description"] = description
    return wrapped


def drop_strict_nulls(schema: Mapping[str, Any], value: Any) -> Any:
    """``value`` without the nulls strict mode made a model send for the
    optional properties of ``schema`` (not strict: the schema the reply was
    asked with before :func:`strict_schema`) whose schema refuses null: the
    property is left out, so that its default applies."""
    return _drop(schema, value, schema)


def _drop(schema: Any, value: Any, root: Mapping[str, Any]) -> Any:
    if not isinstance(schema, dict):
        return value
    if "$ref" in schema:
        schema = resolve(root, schema["$ref"]) or {}
    if isinstance(value, dict):
        properties = schema.get("properties") or {}
        required = set(schema.get("required") or ())
        kept = {}
        for name, item in value.items():
            sub = properties.get(name)
            if item is None and sub is not None and name not in required and schema_problems_at(sub, None, "$", root):
                continue
            kept[name] = _drop(sub, item, root) if sub is not None else item
        return kept
    if isinstance(value, list) and isinstance(schema.get("items"), dict):
        return [_drop(schema["items"], item, root) for item in value]
    for option in schema.get("anyOf") or schema.get("oneOf") or ():
        dropped = _drop(option, value, root)
        if not schema_problems_at(option, dropped, "$", root):
            return dropped
    return value
