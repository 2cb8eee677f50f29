"""What :class:`~llmclients.testing.allenai.AllenAIEmulator` refuses with a 400,
worded as olmo-api worded it: its JSON error body (:func:`error_body`), a
form read as ``CreateMessageRequestV4`` read it (:class:`Fields`), pydantic
2.10.5's ``str(ValidationError)`` (:func:`validation_error`), and the whole
request that a thread error echoes (:func:`full_request`).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, Dict, List, Mapping, Optional, Tuple

from ._allenai_form import UploadedFile
from ._server import Rejection


def error_body(code: int, message: str, **extra: Any) -> Dict[str, Any]:
    return {"error": {"code": code, "message": message, **extra}}


@dataclass
class Turn:
    """One valid request."""

    content: str
    model: str
    host: str
    role: str
    parent: Optional[str]
    private: bool
    opts: Dict[str, Any]
    creator: str
    anonymous: bool
    files: List[UploadedFile]


@dataclass
class Problem:
    type: str
    loc: Tuple[str, ...]
    msg: str
    #: What pydantic was given: the field's value, or the whole input for a
    #: missing field or a model-level check.
    input: Any = None
    #: The model sets ``hide_input_in_errors``: the message shows no input.
    hidden: bool = False


def _input_repr(value: Any) -> str:
    """pydantic-core's ``input_value=``: the value's repr, cut to 25 + ``...`` + 24 past 50 characters."""
    text = repr(value)
    return text if len(text) <= 50 else f"{text[:25]}...{text[-24:]}"


def _number(value: float) -> str:
    return f"{value:g}"


class Fields:
    """Reads the form as ``CreateMessageRequestV4`` did, collecting pydantic's errors."""

    def __init__(self, form: Mapping[str, List[str]]) -> None:
        self.form = form
        self.problems: List[Problem] = []

    def _raw(self, name: str) -> Optional[str]:
        values = self.form.get(name)
        return values[0] if values else None

    def fail(self, name: str, type_: str, msg: str) -> None:
        self.problems.append(Problem(type_, (name,), msg, self._raw(name)))

    def text(self, name: str, *, required: bool = False, min_length: int = 0) -> Optional[str]:
        value = self._raw(name)
        if value is None:
            if required:  # pydantic shows the whole input of a missing field
                whole = {key: values[0] for key, values in self.form.items()}
                self.problems.append(Problem("missing", (name,), "Field required", whole))
            return None
        if len(value) < min_length:
            self.fail(name, "string_too_short", f"String should have at least {min_length} character")
        return value

    def boolean(self, name: str, default: bool) -> bool:
        value = self._raw(name)
        if value is None:
            return default
        lowered = value.strip().lower()
        if lowered in ("1", "on", "t", "true", "y", "yes"):
            return True
        if lowered not in ("0", "off", "f", "false", "n", "no"):
            self.fail(name, "bool_parsing", "Input should be a valid boolean, unable to interpret input")
        return False

    def number(
        self, name: str, default: Optional[float], low: float, high: float, step: float, *, integer: bool
    ) -> Optional[float]:
        value = self._raw(name)
        if value is None:
            return default
        try:
            number = float(int(value)) if integer else float(value)
        except ValueError:
            if integer:
                msg = "Input should be a valid integer, unable to parse string as an integer"
                self.fail(name, "int_parsing", msg)
            else:
                msg = "Input should be a valid number, unable to parse string as a number"
                self.fail(name, "float_parsing", msg)
            return default
        if number < low:
            self.fail(name, "greater_than_equal", f"Input should be greater than or equal to {_number(low)}")
        elif number > high:
            self.fail(name, "less_than_equal", f"Input should be less than or equal to {_number(high)}")
        elif not _is_multiple(number, step):
            self.fail(name, "multiple_of", f"Input should be a multiple of {_number(step)}")
        return int(number) if integer else number


def _is_multiple(value: float, step: float) -> bool:
    # pydantic-core's test: a remainder within value/1e9 of 0 or of the step.
    remainder = math.fmod(value, step)
    threshold = abs(value) / 1e9
    return abs(remainder) <= threshold or abs(remainder - step) <= threshold


def validation_error(model: str, problems: List[Problem]) -> Rejection:
    """olmo-api's 400 for a pydantic ``ValidationError``: ``str(e)`` and ``e.errors()``
    without input (``src/error.py`` @ 8742b0b), as pydantic 2.10.5 (its pin) words them."""
    count = len(problems)
    lines = [f"{count} validation error{'s' if count > 1 else ''} for {model}"]
    for problem in problems:
        if problem.loc:
            lines.append(".".join(problem.loc))
        shown = (
            ""
            if problem.hidden
            else (f", input_value={_input_repr(problem.input)}, input_type={type(problem.input).__name__}")
        )
        lines.append(f"  {problem.msg} [type={problem.type}{shown}]")
        lines.append(f"    For further information visit https://errors.pydantic.dev/2.10/v/{problem.type}")
    details = [
        {
            "type": p.type,
            "loc": list(p.loc),
            "msg": p.msg,
            "url": f"https://errors.pydantic.dev/2.10/v/{p.type}",
        }
        for p in problems
    ]
    return Rejection(400, error_body(400, "\n".join(lines), validation_errors=details))


class _Shown:
    """A value that pydantic shows by its repr (a stored ``Message``, ``InferenceOpts``, a ``Role``)."""

    def __init__(self, text: str) -> None:
        self.text = text

    def __repr__(self) -> str:
        return self.text


def full_request(
    turn: Turn, parent: Optional[Dict[str, Any]], root: Optional[Dict[str, Any]], form: Mapping[str, str]
) -> Dict[str, Any]:
    """The keywords ``create_message_v4`` built ``CreateMessageRequestWithFullMessages`` from
    (olmo-api 8742b0b ``create_message_service.py``), in its order: what its errors echo.
    It ends with ``'captchaToken': None`` whenever no token was sent."""
    opts = ", ".join(f"{key}={value!r}" for key, value in turn.opts.items())

    def stored(message: Optional[Dict[str, Any]]) -> Optional[_Shown]:
        if message is None:
            return None
        fields = ", ".join(f"{key}={value!r}" for key, value in message.items() if key != "children")
        return _Shown(f"Message({fields})")

    return {
        "parent_id": turn.parent,
        "parent": stored(parent),
        "opts": _Shown(f"InferenceOpts({opts})"),
        "content": turn.content,
        "role": _Shown(f"<Role.{turn.role.capitalize()}: {turn.role!r}>"),
        "original": form.get("original"),
        "private": turn.private,
        "root": stored(root),
        "template": form.get("template"),
        "model": turn.model,
        "host": turn.host,
        "client": turn.creator,
        "files": None if not turn.files else _Shown(f"[{len(turn.files)} UploadedFile]"),
        "captchaToken": form.get("captchaToken"),
    }
