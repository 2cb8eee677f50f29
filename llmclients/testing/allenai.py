"""An emulator of olmo-api's ``/v4/message/stream``, as the Ai2 Playground spoke it in 2025.

It accepts ``POST /v4/message/stream`` with a ``multipart/form-data`` (or
URL-encoded) form, keeps every message in memory as olmo-api kept them in its
database, and answers with NDJSON (``application/jsonl``, non-ASCII
``\\u``-escaped):

1. the new user ``Message`` with all its fields and ``children: [<empty
   assistant reply>]`` — or, on a new thread of a model in
   ``system_prompt_models``, the ``system`` message above it;
2. one chunk per delta: ``{"message": <reply id>, "content": ..., "logprobs": []}``;
3. for a :class:`Reply` whose ``finish_reason`` olmo-api reported as an error
   (``"length"``, ``"aborted"``, ``"model overloaded"``, ``"grpc inference
   failed"``, ...), the error line ``{"message", "error", "reason"}`` with
   olmo-api's wording (``"model overloaded"`` comes before any chunk);
4. the same tree finalized (``final: true``; the reply with its whole
   ``content`` and ``finish_reason``) — except after ``"finalization failure"``,
   where the body ends with the error line.

Messages carry olmo-api's values (8742b0b ``create_message_service.py``,
``dao/message.py``): ``harmful: false`` on the messages of a user turn (it
passed the safety check; null for other roles and the reply), the final
reply's ``logprobs: []``, and a ``snippet`` of the first 16 words and "…"
(olmo-api strips HTML from it first; this does not).

It refuses what olmo-api refused, with its JSON error body ``{"error": {"code",
"message"[, "validation_errors"]}}``, a validation error's message worded as
pydantic 2.10.5 words ``str(ValidationError)``: ``[type=..., input_value=...,
input_type=...]`` and the "For further information visit
https://errors.pydantic.dev/..." line, the input echoed as olmo-api passed it
(for a thread error, the whole request, ending ``'captchaToken': None}``): another path (404; every path when
``retired``), a form that fails validation (400: empty ``content``, missing
``model``/``host``, ``temperature`` outside 0..1 or not a multiple of 0.01,
``top_p``, ``max_tokens``, ``n``, ``logprobs`` out of range, no
``captcha_token`` when ``require_captcha``), neither ``X-Anonymous-User-ID``
nor a bearer token (401), an unknown ``parent`` or one with the new message's
role (400), a thread whose visibility differs (400), a thread created by
someone else (403), a model the given ``host`` does not serve (400 "model X is
not available on Y").

Files (multipart parts named ``files`` with a filename, what olmo-api read as
``request.files.getlist("files")``) are checked as olmo-api's
``CreateMessageRequestFilesValidator`` checked them, with its wording, against
the model's entry in ``file_models`` (a :class:`FileRules`; a model without
one has no ``accepts_files``): files for a model that takes none ("This model
doesn't accept files"), none where the first or every message needs one, files
in a follow-up where ``allow_files_in_followups`` is off, too many, too large
in total, or of a type outside ``accepted_file_types`` — the type sniffed from
the bytes as puremagic did, here for the usual image formats and PDF only; bytes
it cannot identify get olmo-api's 500, an empty file "Input was empty". By
default only the vision model takes files, with the settings olmo-api seeded
for it: one ``image/*`` per message, required on a thread's first message, none
in follow-ups. :meth:`AllenAIEmulator.files` gives the files a request carried;
the stored user message lists them in ``file_urls`` (made-up storage URLs).
"""

from __future__ import annotations

import json
import math
import os
import re
import secrets
import string
import threading
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from email.parser import BytesHeaderParser
from typing import Any, Dict, Iterable, Iterator, List, Mapping, Optional, Tuple
from urllib.parse import parse_qsl

from ._server import Emulator, RecordedRequest, Rejection, Reply
from .wire import WireSample

STREAM_PATH = "/v4/message/stream"

#: What olmo-api's ``/v3/models`` listed: model id -> the host that serves it.
#: Kept apart from the provider's table on purpose: an emulator that imported
#: it would agree with any mistake in it.
MODELS: Dict[str, str] = {
    "tulu3-405b": "inferd",
    "OLMo-2-1124-13B-Instruct": "modal",
    "tulu-3-1-8b": "modal",
    "Llama-3-1-Tulu-3-70B": "modal",
    "olmoe-0125": "modal",
    "olmo-2-0325-32b-instruct": "modal",
    "mm-olmo-uber-model-v4-synthetic": "modal",
}

# werkzeug's descriptions, which olmo-api's error handler put in its JSON bodies.
NOT_FOUND = (
    "The requested URL was not found on the server. If you entered the URL manually "
    "please check your spelling and try again."
)
METHOD_NOT_ALLOWED = "The method is not allowed for the requested URL."
BAD_REQUEST = "The browser (or proxy) sent a request that this server could not understand."
UNAUTHORIZED = (
    "The server could not verify that you are authorized to access the URL requested. You either "
    "supplied the wrong credentials (e.g. a bad password), or your browser doesn't understand how "
    "to supply the credentials required."
)
FORBIDDEN = (
    "You don't have the permission to access the requested resource. It is either read-protected "
    "or not readable by the server."
)
CAPTCHA_FAILED = "Failed to evaluate captcha. Please reload the page and try again."
INTERNAL_ERROR = "Internal Server Error"

#: Finish reason -> the error line olmo-api sent for it before the final message.
STREAM_ERRORS: Dict[str, str] = {
    "length": "the conversation is too large for the model to process, please shorten the conversation and try again",
    "unclosed stream": "inference failed for an unknown reason: sometimes this happens when the prompt is too long",
    "aborted": "inference aborted for an unknown reason",
    "model overloaded": "model overloaded",
    "grpc inference failed": "inference failed: <_MultiThreadedRendezvous of RPC that terminated with StatusCode.UNAVAILABLE>",
    "value error from inference result": "inference failed: the model returned an invalid result",
    "general exception": "inference failed: an unexpected error occurred",
    "finalization failure": "failed to finalize message {id}",
}
#: Failures that are not the reply's finish reason: it is stored as null.
NOT_A_FINISH = frozenset({"grpc inference failed", "value error from inference result", "general exception"})

ROLES = ("user", "assistant", "system")
ANONYMOUS_LIFETIME = timedelta(days=1)


@dataclass(frozen=True)
class FileRules:
    """A model's file settings in olmo-api's config (``MultiModalModel``, ``accepts_files: true``).

    ``require_file_to_prompt`` is ``"no_requirement"``, ``"first_message"`` or
    ``"all_messages"``; ``accepted_file_types`` are regular expressions matched
    (``re.search``) against the sniffed type, as olmo-api matched them, so
    ``"image/*"`` takes any type with "image" in it; empty takes anything, unsniffed.
    """

    accepted_file_types: Tuple[str, ...] = ()
    max_files_per_message: Optional[int] = None
    require_file_to_prompt: str = "no_requirement"
    max_total_file_size: Optional[int] = None  # bytes
    allow_files_in_followups: bool = False


#: What olmo-api seeded for the vision model on 2025-04-21 (#276, the first public model config).
VISION_FILES = FileRules(
    accepted_file_types=("image/*",), max_files_per_message=1, require_file_to_prompt="first_message"
)
FILE_MODELS: Dict[str, FileRules] = {"mm-olmo-uber-model-v4-synthetic": VISION_FILES}

#: Where stored files are said to be (olmo-api's bucket name is not public).
FILE_URL_BASE = "https://storage.googleapis.com/llmclients-emulator"


@dataclass(frozen=True)
class UploadedFile:
    """One file part of a form: its field name, filename, declared type and bytes."""

    name: str
    filename: str
    content_type: Optional[str]
    data: bytes


def _error(code: int, message: str, **extra: Any) -> Dict[str, Any]:
    return {"error": {"code": code, "message": message, **extra}}


def _new_id() -> str:
    """``msg_`` and ten characters, letters and digits alternating, as olmo-api's ``obj.NewID``."""
    pairs = (secrets.choice(string.ascii_uppercase) + secrets.choice(string.digits) for _ in range(5))
    return "msg_" + "".join(pairs)


def _snippet(content: str) -> str:
    """olmo-api's ``text_snippet`` (``dao/message.py`` @ 8742b0b): the first 16 words of the
    first 512 characters, and "…" if more words follow. (It strips HTML first, with
    BeautifulSoup; this does not.)"""
    words = re.split(r"\s+", content[: 16 * 32])
    return " ".join(words[:16]) + ("…" if len(words) > 16 else "")


def _line(obj: Any) -> bytes:
    # json.dumps' defaults, as olmo-api's format_message: ", " / ": " and \u escapes.
    return (json.dumps(obj) + "\n").encode()


# --- the form ---------------------------------------------------------------------


class _BadForm(ValueError):
    """The body is not a form werkzeug could parse."""


def parse_form(request: RecordedRequest) -> Dict[str, List[str]]:
    """The text fields of ``request``'s form: name -> values, in order.

    Multipart parts with a filename are files (see :func:`parse_files`), left
    out. Raises ``ValueError`` for a body that is not a well-formed form.
    """
    return _parse(request)[0]


def parse_files(request: RecordedRequest) -> List[UploadedFile]:
    """The files of ``request``'s form named ``files``, in order: what olmo-api read."""
    return [file for file in _parse(request)[1] if file.name == "files"]


def _parse(request: RecordedRequest) -> Tuple[Dict[str, List[str]], List[UploadedFile]]:
    kind = request.headers.get_content_type()
    if kind == "multipart/form-data":
        boundary = request.headers.get_param("boundary")
        if not isinstance(boundary, str) or not boundary:
            raise _BadForm("no boundary")
        return _multipart(request.body, boundary)
    fields: Dict[str, List[str]] = {}
    if kind == "application/x-www-form-urlencoded":
        for name, value in parse_qsl(request.body.decode("utf-8", "replace"), keep_blank_values=True):
            fields.setdefault(name, []).append(value)
    return fields, []  # any other body: no form fields, as werkzeug reads it


def _multipart(body: bytes, boundary: str) -> Tuple[Dict[str, List[str]], List[UploadedFile]]:
    """RFC 7578 parts, split at ``CRLF--boundary`` exactly: nothing in a value can fake one."""
    sections = (b"\r\n" + body).split(b"\r\n--" + boundary.encode("latin-1"))
    if len(sections) < 2 or not sections[-1].startswith(b"--"):
        raise _BadForm("the body does not end with the closing boundary")
    fields: Dict[str, List[str]] = {}
    files: List[UploadedFile] = []
    for section in sections[1:-1]:
        _, _, part = section.partition(b"\r\n")  # the rest of the boundary line
        if part.startswith(b"\r\n"):
            head, content = b"", part[2:]
        else:
            head, sep, content = part.partition(b"\r\n\r\n")
            if not sep:
                raise _BadForm("a part has no blank line after its headers")
        headers = BytesHeaderParser().parsebytes(head + b"\r\n\r\n")
        name = headers.get_param("name", header="content-disposition")
        if not isinstance(name, str):
            raise _BadForm("a part has no name")
        filename = headers.get_filename()
        if filename is not None:  # werkzeug: a part with a filename is a file, whatever its name
            files.append(UploadedFile(name, filename, headers.get("Content-Type"), content))
            continue
        # werkzeug decodes text fields as UTF-8, replacing what is not.
        fields.setdefault(name, []).append(content.decode("utf-8", "replace"))
    return fields, files


# --- validation, with pydantic's wording ---------------------------------------------------


@dataclass
class _Problem:
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


class _Fields:
    """Reads the form as ``CreateMessageRequestV4`` did, collecting pydantic's errors."""

    def __init__(self, form: Mapping[str, List[str]]) -> None:
        self.form = form
        self.problems: List[_Problem] = []

    def _raw(self, name: str) -> Optional[str]:
        values = self.form.get(name)
        return values[0] if values else None

    def fail(self, name: str, type_: str, msg: str) -> None:
        self.problems.append(_Problem(type_, (name,), msg, self._raw(name)))

    def text(self, name: str, *, required: bool = False, min_length: int = 0) -> Optional[str]:
        value = self._raw(name)
        if value is None:
            if required:  # pydantic shows the whole input of a missing field
                whole = {key: values[0] for key, values in self.form.items()}
                self.problems.append(_Problem("missing", (name,), "Field required", whole))
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


def _validation_error(model: str, problems: List[_Problem]) -> Rejection:
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
    return Rejection(400, _error(400, "\n".join(lines), validation_errors=details))


# --- files, as CreateMessageRequestFilesValidator checked them ------------------------------------


class _Unidentified(Exception):
    """puremagic's PureError: olmo-api let it escape, and answered 500."""


def _sniff(data: bytes) -> List[str]:
    """The types puremagic found in ``data``, for the formats this emulator knows."""
    if not data:
        raise ValueError("Input was empty")  # puremagic's words, caught by pydantic
    if data[:4] == b"RIFF" and data[8:12] == b"WEBP":
        return ["image/webp"]
    for signature, kind in _SIGNATURES:
        if data.startswith(signature):
            return [kind]
    raise _Unidentified


#: Leading bytes -> the type puremagic 1.28 (olmo-api's) names them.
_SIGNATURES = (
    (b"\x89PNG\r\n\x1a\n", "image/png"),
    (b"\xff\xd8\xff", "image/jpeg"),
    (b"GIF87a", "image/gif"),
    (b"GIF89a", "image/gif"),
    (b"BM", "image/x-ms-bmp"),
    (b"%PDF", "application/pdf"),
)


def _human_size(size: int) -> str:
    """pydantic's ``ByteSize.human_readable(decimal=True)``: 2B, 1.5KB, 5.0MB."""
    number = float(size)
    for unit in ("B", "KB", "MB", "GB", "TB", "PB"):
        if abs(number) < 1000:
            return f"{number:0.0f}{unit}" if unit == "B" else f"{number:0.1f}{unit}"
        number /= 1000
    return f"{number:0.1f}EB"


def _file_problem(rules: Optional[FileRules], files: List[UploadedFile], has_parent: bool) -> Optional[str]:
    """The first of olmo-api's file rules that ``files`` break, in its validators' order."""
    if rules is None:  # not a multi-modal model: accepts_files is false
        return "This model doesn't accept files" if files else None
    if not files:
        if rules.require_file_to_prompt == "all_messages":
            return "This model requires a file to be sent with all messages"
        if rules.require_file_to_prompt == "first_message" and not has_parent:
            return "This model requires a file to be sent with the first message"
        return None
    if has_parent and not rules.allow_files_in_followups:
        return "This model doesn't allow files to be sent in follow-up messages"
    if rules.max_files_per_message is not None and len(files) > rules.max_files_per_message:
        return f"This model only allows {rules.max_files_per_message} files per message"
    if rules.max_total_file_size is not None and sum(len(f.data) for f in files) > rules.max_total_file_size:
        return f"This model has a max total file size of {_human_size(rules.max_total_file_size)}"
    if not rules.accepted_file_types:
        return None
    for file in files:
        try:
            kinds = _sniff(file.data)
        except ValueError as exc:
            return str(exc)
        if not any(re.search(allowed, kind) for allowed in rules.accepted_file_types for kind in kinds):
            return f"This model only accepts files of types {list(rules.accepted_file_types)}"
    return None


@dataclass
class _Turn:
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


# --- the emulator ------------------------------------------------------------------------


class AllenAIEmulator(Emulator):
    """Stands in for olmo-api (``https://olmo-api.allen.ai``) before its retirement.

    ``models`` maps the model ids it serves to their hosts (default: the 2025
    list); ``system_prompt_models`` maps model ids to the system prompt olmo-api
    stored above a new thread's first message; ``require_captcha`` refuses
    forms without ``captcha_token`` as olmo-api did from 2025-04-14;
    ``retired`` answers 404 everywhere, as it does since 2025-11-03;
    ``file_models`` maps the model ids that take files to their
    :class:`FileRules` (default :data:`FILE_MODELS`: the vision model only);
    ``ignore_stream`` answers with the final message alone, one
    ``application/json`` document, as olmo-api answers what it does not stream.

    :attr:`messages` holds every message created, by id (``children`` not filled in).
    """

    provider = "allenai"
    content_type = "application/jsonl"
    wire = WireSample(
        text_event=b'{"message": "msg_A1B2C3D4E5", "content": "%s", "logprobs": []}\n',
        # The first line is the new message, the last the same tree marked final.
        prologue=b'{"id": "msg_A1", "role": "user", "children": [{"id": "msg_B2", "role": "assistant"}]}\n',
        epilogue=b'{"id": "msg_A1", "final": true, "children": '
        b'[{"id": "msg_B2", "role": "assistant", "finish_reason": "stop"}]}\n',
        garbage=b"{not json\n",
        keepalive=b"\n",  # the service sends none; the decoder must skip a blank line all the same
        cut=2500,  # past the first line, a whole message object
        content_types=("application/x-ndjson", "text/plain", None),
    )
    base_path = ""

    def __init__(
        self,
        *,
        models: Optional[Mapping[str, str]] = None,
        system_prompt_models: Optional[Mapping[str, str]] = None,
        require_captcha: bool = False,
        retired: bool = False,
        file_models: Optional[Mapping[str, FileRules]] = None,
        ignore_stream: bool = False,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        self.ignore_stream = ignore_stream
        self.models = dict(MODELS if models is None else models)
        self.system_prompt_models = dict(system_prompt_models or {})
        self.require_captcha = require_captcha
        self.retired = retired
        self.file_models = dict(FILE_MODELS if file_models is None else file_models)
        self.messages: Dict[str, Dict[str, Any]] = {}
        self._store_lock = threading.Lock()

    def form(self, request: RecordedRequest) -> Dict[str, str]:
        """The first value of each text field ``request`` sent (what ``request.form.get`` gave)."""
        return {name: values[0] for name, values in parse_form(request).items()}

    def files(self, request: RecordedRequest) -> List[UploadedFile]:
        """The files ``request`` sent (its ``files`` parts): filename, content type, bytes."""
        return parse_files(request)

    # --- refusing ---------------------------------------------------------------

    def check(self, request: RecordedRequest) -> None:
        if self.retired or request.path.split("?")[0] != STREAM_PATH:
            raise Rejection(404, _error(404, NOT_FOUND))
        if request.method != "POST":
            raise Rejection(405, _error(405, METHOD_NOT_ALLOWED))
        turn = self._read_turn(request)
        with self._store_lock:
            self._check_thread(turn, self.form(request))
        if self.models.get(turn.model) != turn.host:
            raise Rejection(400, _error(400, f"model {turn.model} is not available on {turn.host}"))
        try:
            problem = _file_problem(self.file_models.get(turn.model), turn.files, turn.parent is not None)
        except _Unidentified:
            raise Rejection(500, _error(500, INTERNAL_ERROR)) from None
        if problem is not None:
            # That validator sets hide_input_in_errors (validate_message_files_from_config.py).
            raise _validation_error(
                "CreateMessageRequestFilesValidator",
                [_Problem("value_error", (), f"Value error, {problem}", hidden=True)],
            )

    def _read_turn(self, request: RecordedRequest) -> _Turn:
        try:
            form, uploads = _parse(request)
        except _BadForm:
            raise Rejection(400, _error(400, BAD_REQUEST)) from None
        fields = _Fields(form)
        content = fields.text("content", required=True, min_length=1)
        role = fields.text("role") or "user"
        if role not in ROLES:
            fields.fail("role", "enum", "Input should be 'user', 'assistant' or 'system'")
        model, host = fields.text("model", required=True), fields.text("host", required=True)
        private = fields.boolean("private", default=False)
        opts = {
            "max_tokens": fields.number("max_tokens", 2048, 1, 2048, 1, integer=True),
            "temperature": fields.number("temperature", 0.7, 0.0, 1.0, 0.01, integer=False),
            "n": fields.number("n", 1, 1, 1, 1, integer=True),
            "top_p": fields.number("top_p", 1.0, 0.01, 1.0, 0.01, integer=False),
            "logprobs": fields.number("logprobs", None, 0, 10, 1, integer=True),
            "stop": form.get("stop", []),
        }
        # The field is captcha_token, its alias captchaToken (APIInterface's to_camel); either name works.
        if self.require_captcha and not (fields.text("captcha_token") or fields.text("captchaToken")):
            fields.fail("captchaToken", "value_error", f"Value error, {CAPTCHA_FAILED}")
        parent = fields.text("parent") or None
        if role == "assistant" and parent is None:
            whole = {key: values[0] for key, values in form.items()}
            fields.problems.append(
                _Problem("value_error", (), "Value error, Assistant messages must have a parent", whole)
            )
        if fields.problems:
            raise _validation_error("CreateMessageRequestV4", fields.problems)
        creator, anonymous = self._identify(request)
        assert content is not None and model is not None and host is not None
        return _Turn(
            content=content,
            model=model,
            host=host,
            role=role,
            parent=parent,
            # Anonymous users may not share: their messages are always private.
            private=True if anonymous else private,
            opts=opts,
            creator=creator,
            anonymous=anonymous,
            files=[file for file in uploads if file.name == "files"],
        )

    def _identify(self, request: RecordedRequest) -> Tuple[str, bool]:
        """Who is asking: a bearer token's holder, else the anonymous id; 401 if neither."""
        authorization = request.headers.get("Authorization") or ""
        if authorization.startswith("Bearer ") and authorization[7:].strip():
            return authorization[7:].strip(), False
        anonymous_id = (request.headers.get("X-Anonymous-User-ID") or "").strip()
        if not anonymous_id:
            raise Rejection(401, _error(401, UNAUTHORIZED))
        return anonymous_id, True

    def _check_thread(self, turn: _Turn, form: Mapping[str, str]) -> None:
        """The checks of ``CreateMessageRequestWithFullMessages``, in its order."""
        if turn.parent is None:
            return
        parent = self.messages.get(turn.parent)
        root = None if parent is None else self.messages[parent["root"]]
        if parent is None or root is None:
            problem = f"Parent message {turn.parent} not found"
        elif parent["role"] == turn.role:
            problem = "Parent and child must have different roles"
        elif root["private"] != turn.private:
            problem = "Visibility must be identical for all messages in a thread"
        elif root["creator"] != turn.creator:  # only the thread's creator may follow up
            raise Rejection(403, _error(403, FORBIDDEN))
        else:
            return
        given = _full_request(turn, parent, root, form)
        raise _validation_error(
            "CreateMessageRequestWithFullMessages",
            [_Problem("value_error", (), f"Value error, {problem}", given)],
        )

    # --- answering -----------------------------------------------------------------

    def make_default_reply(self, request: RecordedRequest) -> Reply:
        prompt = self.form(request).get("content", "")
        return Reply(
            text=(
                "Hello! This is the llmclients emulator of the Ai2 Playground (olmo-api), "
                f"streaming a reply word by word. You said: “{prompt}”"
            ),
            delay=0.03,
        )

    def reply_headers(self, reply: Reply, request: RecordedRequest) -> Dict[str, str]:
        if self.form(request).get("role") == "assistant" or self.ignore_stream:
            return {"Content-Type": "application/json"}  # an edit: one message, not a stream
        return {"Content-Type": self.content_type}

    def events(self, reply: Reply, request: RecordedRequest) -> Iterable[bytes]:
        turn = self._read_turn(request)
        with self._store_lock:
            system, message = self._create_messages(turn)
            self._store_files(turn, message)
            if message["role"] == "assistant":
                answer = None
            else:
                answer = self._create(turn, "", "assistant", parent=message["id"], root=message["root"])
                answer["model_type"] = "chat"
        if answer is None:
            yield _line(message)  # an edit is stored, not answered
            return
        first = _line(_tree(system, message, answer))
        if self.ignore_stream:
            *_, last = self._generate(reply, system, message, answer)
            yield last
            return
        yield first
        yield from self._generate(reply, system, message, answer)

    def _generate(
        self,
        reply: Reply,
        system: Optional[Dict[str, Any]],
        message: Dict[str, Any],
        answer: Dict[str, Any],
    ) -> Iterator[bytes]:
        reason = reply.finish_reason
        # olmo-api gave up on a model that sent no first token within 5 s.
        pieces = [] if reason == "model overloaded" else reply.pieces()
        for piece in pieces:
            yield _line({"message": answer["id"], "content": piece, "logprobs": []})
        if reason in STREAM_ERRORS:
            error = STREAM_ERRORS[reason].format(id=message["id"])
            yield _line({"message": answer["id"], "error": error, "reason": reason})
            if reason == "finalization failure":
                return  # olmo-api raised after the error line: the body just ends
        with self._store_lock:
            for finished in (system, message):
                if finished is not None:
                    finished["final"] = True
            answer["content"] = "".join(pieces)
            answer["snippet"] = _snippet(answer["content"])
            answer["logprobs"] = []  # the chunks' logprobs, joined: none asked for
            answer["final"] = True
            answer["finish_reason"] = None if reason in NOT_A_FINISH else reason
        yield _line(_tree(system, message, answer))

    def _create_messages(self, turn: _Turn) -> Tuple[Optional[Dict[str, Any]], Dict[str, Any]]:
        """The new message, and the system message above it on a model's new thread.

        The caller holds the store's lock, as for :meth:`_create`.
        """
        system = None
        if turn.parent is not None:
            parent = self.messages[turn.parent]
            message = self._create(turn, turn.content, turn.role, parent=parent["id"], root=parent["root"])
        else:
            if turn.model in self.system_prompt_models:
                system = self._create(
                    turn, self.system_prompt_models[turn.model], "system", parent=None, root=None
                )
            above = system["id"] if system else None
            message = self._create(turn, turn.content, turn.role, parent=above, root=above)
            message["final"] = turn.role == "assistant"
        # A user turn passed the safety check (or was refused): the messages it
        # created are marked `harmful: false`; other roles are not checked (null).
        if turn.role == "user":
            for checked in (system, message):
                if checked is not None:
                    checked["harmful"] = False
        return system, message

    @staticmethod
    def _store_files(turn: _Turn, message: Dict[str, Any]) -> None:
        """Name the turn's files as olmo-api stored them: ``<root>/<message id>-<i><ext>``."""
        if turn.files:  # olmo-api kept only the extension of the sent filename
            message["file_urls"] = [
                f"{FILE_URL_BASE}/{message['root']}/{message['id']}-{i}{os.path.splitext(f.filename)[1]}"
                for i, f in enumerate(turn.files)
            ]

    def _create(
        self, turn: _Turn, content: str, role: str, *, parent: Optional[str], root: Optional[str]
    ) -> Dict[str, Any]:
        """A new stored message with every field olmo-api's ``Message`` had."""
        message_id = _new_id()
        now = datetime.now(timezone.utc)
        message: Dict[str, Any] = {
            "id": message_id,
            "content": content,
            "snippet": _snippet(content),
            "creator": turn.creator,
            "role": role,
            "opts": dict(turn.opts),
            "root": root or message_id,
            "created": now.isoformat(),
            "model_id": turn.model,
            "model_host": turn.host,
            "deleted": None,
            "parent": parent,
            "template": None,
            "logprobs": None,
            "children": None,
            "completion": None,
            "final": False,
            "original": None,
            "private": turn.private,
            "model_type": None,
            "finish_reason": None,
            "harmful": None,
            "expiration_time": (now + ANONYMOUS_LIFETIME).isoformat() if turn.anonymous else None,
            "labels": [],
            "file_urls": None,
        }
        self.messages[message_id] = message
        return message


class _Shown:
    """A value that pydantic shows by its repr (a stored ``Message``, ``InferenceOpts``, a ``Role``)."""

    def __init__(self, text: str) -> None:
        self.text = text

    def __repr__(self) -> str:
        return self.text


def _full_request(
    turn: _Turn, parent: Optional[Dict[str, Any]], root: Optional[Dict[str, Any]], form: Mapping[str, str]
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


def _tree(
    system: Optional[Dict[str, Any]], message: Dict[str, Any], answer: Dict[str, Any]
) -> Dict[str, Any]:
    """The stream's top message: ``message`` with the answer as its child, under ``system`` if any."""
    top = dict(message, children=[dict(answer)])
    if system is not None:
        top = dict(system, children=[top])
    return top
