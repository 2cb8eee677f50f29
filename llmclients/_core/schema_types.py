"""JSON Schema from Python type hints (:class:`SchemaBuilder`), and the
parameter descriptions of a docstring (:func:`parse_docstring`).

The schemas are the ones pydantic's ``model_json_schema()`` writes for the
same hints, less its ``title`` keys: ``Optional[X]`` is ``anyOf`` with
``null``, ``Literal`` an ``enum`` (or ``const``), an ``Enum`` a ``$defs``
entry, a ``tuple[A, B]`` ``prefixItems`` with its length, a dataclass or
``TypedDict`` an object in ``$defs`` referred to by ``$ref``. A pydantic
model gives its own schema (pydantic is never imported here: a class is a
pydantic model only if pydantic is already loaded and the class derives from
its ``BaseModel``). Anything else (``bytes``, ``datetime``, a plain class, a
``set``) raises :class:`~llmclients.errors.SchemaError`: a value the model
could send would not become what the hint asks for.
"""

from __future__ import annotations

import collections.abc as abc
import dataclasses
import enum
import inspect
import json
import re
import sys
import types
import typing
from typing import Any, Dict, List, Optional, Set, Tuple

from ..errors import SchemaError

__all__ = ["UNION_TYPES", "SchemaBuilder", "is_pydantic_model", "is_typeddict", "parse_docstring", "unwrap"]

_PRIMITIVES: Dict[Any, str] = {
    str: "string",
    int: "integer",
    float: "number",
    bool: "boolean",
    type(None): "null",
}
#: ``Union[...]`` and ``X | Y`` (Python 3.10+).
UNION_TYPES: Tuple[Any, ...] = (typing.Union, getattr(types, "UnionType", typing.Union))
#: Wrappers of a TypedDict key's type that say nothing about its value.
_KEY_QUALIFIERS = ("Required", "NotRequired", "ReadOnly")


def _qualifier(origin: Any) -> Optional[str]:
    """"Required", "NotRequired" or "ReadOnly" if ``origin`` is that qualifier
    (typing's, or typing_extensions' where it is loaded); else None."""
    for module in (typing, sys.modules.get("typing_extensions")):
        for name in _KEY_QUALIFIERS:
            if origin is not None and origin is getattr(module, name, None):
                return name
    return None
_LITERAL_TYPES = {str: "string", int: "integer", bool: "boolean", float: "number", type(None): "null"}


def is_pydantic_model(tp: Any) -> bool:
    """True for a pydantic v2 model class, without importing pydantic."""
    pydantic = sys.modules.get("pydantic")
    base = getattr(pydantic, "BaseModel", None)
    return base is not None and isinstance(tp, type) and issubclass(tp, base) and hasattr(tp, "model_json_schema")


def is_typeddict(tp: Any) -> bool:
    """True for a ``TypedDict`` class (typing's or typing_extensions')."""
    return isinstance(tp, type) and issubclass(tp, dict) and hasattr(tp, "__total__") and hasattr(tp, "__required_keys__")


def unwrap(tp: Any) -> Tuple[Any, Optional[str]]:
    """``tp`` without ``Annotated``, ``Required`` and ``NotRequired``, and the
    first string in an ``Annotated``'s metadata (a description)."""
    description = None
    while True:
        origin = typing.get_origin(tp)
        if origin is typing.Annotated:
            texts = [item for item in tp.__metadata__ if isinstance(item, str)]
            description = description or (texts[0] if texts else None)
            tp = typing.get_args(tp)[0]
        elif _qualifier(origin):
            tp = typing.get_args(tp)[0]
        else:
            return tp, description


def _json_default(value: Any) -> Tuple[bool, Any]:
    """(True, the JSON form) of a default value, or (False, None) if it has none."""
    if isinstance(value, enum.Enum):
        value = value.value
    try:
        return True, json.loads(json.dumps(value))  # a tuple as the list JSON makes of it
    except (TypeError, ValueError):
        return False, None


def _class_description(tp: type) -> Optional[str]:
    """A class's own docstring's summary; None for none, or one Python wrote:
    a dataclass's signature, or "An enumeration." (an Enum's before 3.11)."""
    doc = tp.__dict__.get("__doc__")
    if not doc or (dataclasses.is_dataclass(tp) and doc.startswith(f"{tp.__name__}(")):
        return None
    if isinstance(tp, enum.EnumMeta) and doc == "An enumeration.":
        return None
    return parse_docstring(doc)[0] or None


class SchemaBuilder:
    """Builds the schemas of several types that share one ``$defs``."""

    def __init__(self) -> None:
        self.defs: Dict[str, Dict[str, Any]] = {}
        self._names: Dict[Any, str] = {}
        #: How many times each definition is referred to (the root inlines one referred to once).
        self.uses: Dict[str, int] = {}

    def schema(self, tp: Any) -> Dict[str, Any]:
        """The schema of ``tp``; SchemaError (without a function's name) if it has none."""
        tp, description = unwrap(tp)
        schema = self._schema(tp)
        if description:
            schema = dict(schema, description=description)
        return schema

    def root(self, tp: Any) -> Dict[str, Any]:
        """The schema of ``tp`` as a document: a class referred to once inlined, ``$defs`` beside it."""
        schema = self.schema(tp)
        ref = schema.get("$ref")
        if ref is not None and len(schema) == 1:
            name = ref.rsplit("/", 1)[1]
            if self.uses.get(name) == 1:
                schema = self.defs.pop(name)
        if self.defs:
            schema = dict(schema, **{"$defs": self.defs})
        return schema

    def _schema(self, tp: Any) -> Dict[str, Any]:
        if tp in _PRIMITIVES:
            return {"type": _PRIMITIVES[tp]}
        if tp is typing.Any or tp is object:
            return {}
        origin = typing.get_origin(tp)
        args = typing.get_args(tp)
        if origin in UNION_TYPES:
            return self._union(args)
        if origin is typing.Literal:
            return _literal(args)
        if origin in (list, typing.List) or origin is abc.Sequence:
            return {"type": "array", "items": self.schema(args[0]) if args else {}}
        if origin is tuple:
            return self._tuple(args)
        if origin in (dict, typing.Dict) or origin is abc.Mapping:
            return self._mapping(args)
        if tp in (list, tuple):
            return {"type": "array", "items": {}}
        if tp is dict:
            return {"type": "object"}
        if isinstance(tp, type) and (
            issubclass(tp, enum.Enum) or dataclasses.is_dataclass(tp) or is_typeddict(tp) or is_pydantic_model(tp)
        ):
            return self._ref(tp)
        raise SchemaError(
            f"{_name_of(tp)} has no JSON Schema (use str, int, float, bool, None, Optional, Union, "
            "Literal, an Enum, list, dict[str, X], tuple, a dataclass, a TypedDict or a pydantic model)"
        )

    def _union(self, args: Tuple[Any, ...]) -> Dict[str, Any]:
        # None last, wherever it was written, as pydantic writes it.
        members = [arg for arg in args if arg is not type(None)] + [arg for arg in args if arg is type(None)]
        return {"anyOf": [self.schema(arg) for arg in members]}

    def _tuple(self, args: Tuple[Any, ...]) -> Dict[str, Any]:
        if not args:
            return {"type": "array", "items": {}}
        if len(args) == 2 and args[1] is Ellipsis:
            return {"type": "array", "items": self.schema(args[0])}
        if args == ((),):  # Tuple[()]: the empty tuple
            return {"type": "array", "maxItems": 0}
        items = [self.schema(arg) for arg in args]
        return {"type": "array", "prefixItems": items, "minItems": len(items), "maxItems": len(items)}

    def _mapping(self, args: Tuple[Any, ...]) -> Dict[str, Any]:
        if args and unwrap(args[0])[0] is not str:
            raise SchemaError(f"a dict's keys must be str in JSON, not {_name_of(args[0])}")
        return {"type": "object", "additionalProperties": self.schema(args[1]) if args else {}}

    def _ref(self, tp: type) -> Dict[str, Any]:
        """``{"$ref": ...}`` to ``tp``'s definition, made on first use."""
        name = self._names.get(tp)
        if name is None:
            name = self._new_name(tp)
            self._names[tp] = name
            self.defs[name] = {}  # taken before its fields are built: a class may refer to itself
            self.defs[name].update(self._definition(tp))
        self.uses[name] = self.uses.get(name, 0) + 1
        return {"$ref": f"#/$defs/{name}"}

    def _new_name(self, tp: type) -> str:
        name, number = tp.__name__, 1
        while name in self.defs:
            number += 1
            name = f"{tp.__name__}{number}"
        return name

    def _definition(self, tp: type) -> Dict[str, Any]:
        if issubclass(tp, enum.Enum):
            return _enum(tp)
        if is_pydantic_model(tp):
            return self._pydantic(tp)
        if dataclasses.is_dataclass(tp):
            fields = [(f.name, f.type, _field_default(f)) for f in dataclasses.fields(tp) if f.init]
            hints = typing.get_type_hints(tp, include_extras=True)
            fields = [(name, hints.get(name, hint), default) for name, hint, default in fields]
            required = {name for name, _, default in fields if default is dataclasses.MISSING}
        else:  # a TypedDict
            hints = typing.get_type_hints(tp, include_extras=True)
            fields = [(name, hint, dataclasses.MISSING) for name, hint in hints.items()]
            required = _required_keys(tp, hints)
        return self._object(tp, fields, required)

    def _object(self, tp: type, fields: List[Tuple[str, Any, Any]], required: Set[str]) -> Dict[str, Any]:
        described = parse_docstring(tp.__dict__.get("__doc__") or "")[1]
        properties = {}
        for name, hint, default in fields:
            try:
                prop = self.schema(hint)
            except SchemaError as exc:
                raise SchemaError(f"field {name!r} of {tp.__name__}: {exc.message}") from None
            properties[name] = with_extras(prop, described.get(name), default)
        schema: Dict[str, Any] = {"type": "object", "properties": properties}
        if required:
            schema["required"] = [name for name, _, _ in fields if name in required]
        description = _class_description(tp)
        return dict(schema, description=description) if description else schema

    def _pydantic(self, tp: Any) -> Dict[str, Any]:
        schema: Dict[str, Any] = tp.model_json_schema(ref_template="#/$defs/{model}")
        for name, definition in schema.pop("$defs", {}).items():
            self.defs.setdefault(name, definition)
            self.uses[name] = self.uses.get(name, 0) + 1  # pydantic's own refs: never inlined
        return schema


def with_extras(schema: Dict[str, Any], description: Optional[str], default: Any) -> Dict[str, Any]:
    """``schema`` with a description and the JSON form of a default, where there are."""
    if description and "description" not in schema:
        schema = dict(schema, description=description)
    if default is not dataclasses.MISSING and default is not inspect.Parameter.empty:
        known, value = _json_default(default)
        if known:
            schema = dict(schema, default=value)
    return schema


def _required_keys(tp: Any, hints: Dict[str, Any]) -> Set[str]:
    """A TypedDict's required keys. ``__required_keys__`` misses ``NotRequired``
    written as a string (``from __future__ import annotations``): the hints say."""
    required = set(tp.__required_keys__)
    for name, hint in hints.items():
        qualifier = _qualifier(typing.get_origin(hint))
        if qualifier == "NotRequired":
            required.discard(name)
        elif qualifier == "Required":
            required.add(name)
    return required


def _field_default(field: Any) -> Any:
    if field.default is not dataclasses.MISSING:
        return field.default
    if field.default_factory is not dataclasses.MISSING:
        return _FACTORY  # a default exists, computed per instance: none to show
    return dataclasses.MISSING


#: A field whose default comes from a factory: optional, with no default shown.
_FACTORY = object()


def _literal(values: Tuple[Any, ...]) -> Dict[str, Any]:
    values = tuple(value.value if isinstance(value, enum.Enum) else value for value in values)
    kinds = {_LITERAL_TYPES.get(type(value)) for value in values}
    if None in kinds:
        raise SchemaError(f"Literal{list(values)!r} holds values JSON cannot carry")
    schema: Dict[str, Any] = {"const": values[0]} if len(values) == 1 else {"enum": list(values)}
    if len(kinds) == 1:
        schema["type"] = kinds.pop()
    return schema


def _enum(tp: type) -> Dict[str, Any]:
    values = [member.value for member in tp]  # type: ignore[attr-defined]
    schema = _literal(tuple(values)) if values else {"enum": []}
    if "const" in schema:
        schema = {"enum": [schema.pop("const")], **schema}
    description = _class_description(tp)
    return dict(schema, description=description) if description else schema


def _name_of(tp: Any) -> str:
    return getattr(tp, "__qualname__", None) or repr(tp)


# --- docstrings ---------------------------------------------------------------------------

_GOOGLE = re.compile(r"^(Args|Arguments|Parameters|Params|Keyword Args|Keyword Arguments|Attributes|Fields):\s*$")
_NUMPY = re.compile(r"^(Parameters|Other Parameters|Attributes)\s*$")
_GOOGLE_ENTRY = re.compile(r"^\*{0,2}(\w+)\s*(?:\([^)]*\))?\s*:\s*(.*)$")
_NUMPY_ENTRY = re.compile(r"^\*{0,2}(\w+)\s*(?::.*)?$")


def parse_docstring(doc: str) -> Tuple[str, Dict[str, str]]:
    """A docstring's summary (its first paragraph, on one line) and the
    descriptions of its parameters, from Google-style ``Args:`` or NumPy-style
    ``Parameters`` sections (``Attributes`` too, for a class)."""
    lines = inspect.cleandoc(doc).splitlines() if doc else []
    summary: List[str] = []
    for line in lines:
        if not line.strip() or _GOOGLE.match(line) or _NUMPY.match(line):
            break
        summary.append(line.strip())
    described: Dict[str, str] = {}
    for index, line in enumerate(lines):
        if _GOOGLE.match(line):
            _google_section(lines[index + 1 :], described)
        elif _NUMPY.match(line) and index + 1 < len(lines) and set(lines[index + 1].strip()) == {"-"}:
            _numpy_section(lines[index + 2 :], described)
    return " ".join(summary), described


def _google_section(lines: List[str], described: Dict[str, str]) -> None:
    indent, name = None, None
    for line in lines:
        if not line.strip():
            continue
        depth = len(line) - len(line.lstrip())
        if depth == 0:
            return  # the next section, or the text after this one
        indent = depth if indent is None else indent
        entry = _GOOGLE_ENTRY.match(line.strip()) if depth == indent else None
        if entry:
            name = entry.group(1)
            described[name] = entry.group(2).strip()
        elif name is not None:
            described[name] = f"{described[name]} {line.strip()}".strip()


def _numpy_section(lines: List[str], described: Dict[str, str]) -> None:
    name = None
    for index, line in enumerate(lines):
        if not line.strip():
            continue
        following = lines[index + 1].strip() if index + 1 < len(lines) else ""
        if not line.startswith((" ", "\t")):
            if following and set(following) == {"-"}:
                return  # the next section's header
            entry = _NUMPY_ENTRY.match(line.strip())
            name = entry.group(1) if entry else None
            if name:
                described.setdefault(name, "")
        elif name is not None:
            described[name] = f"{described[name]} {line.strip()}".strip()
