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

The form's parsing, the file rules, the validation wording and the stored
messages are in the private modules beside this one (``_allenai_form``,
``_allenai_files``, ``_allenai_validation``, ``_allenai_messages``); their
public names are importable from here.
"""

from __future__ import annotations

import json
import threading
from typing import Any, Dict, Iterable, Iterator, List, Mapping, Optional, Tuple

from .._public import expose
from ._allenai_files import FILE_MODELS as FILE_MODELS
from ._allenai_files import VISION_FILES as VISION_FILES
from ._allenai_files import FileRules as FileRules
from ._allenai_files import Unidentified, file_problem
from ._allenai_form import BadForm, parse
from ._allenai_form import UploadedFile as UploadedFile
from ._allenai_form import parse_files as parse_files
from ._allenai_form import parse_form as parse_form
from ._allenai_messages import ANONYMOUS_LIFETIME as ANONYMOUS_LIFETIME
from ._allenai_messages import FILE_URL_BASE as FILE_URL_BASE
from ._allenai_messages import create_message, name_files, snippet, tree
from ._allenai_validation import Fields, Problem, Turn, error_body, full_request, validation_error
from ._server import DeltaEvent, Emulator, RecordedRequest, Rejection, Reply
from .wire import WireSample

# Defined beside this module and importable from here, as when it held them.
_BESIDE = [
    "ANONYMOUS_LIFETIME",
    "FILE_MODELS",
    "FILE_URL_BASE",
    "VISION_FILES",
    "FileRules",
    "UploadedFile",
    "parse_files",
    "parse_form",
]
expose(globals(), __name__, _BESIDE)

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


def _line(obj: Any) -> bytes:
    # json.dumps' defaults, as olmo-api's format_message: ", " / ": " and \u escapes.
    return (json.dumps(obj) + "\n").encode()


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
            raise Rejection(404, error_body(404, NOT_FOUND))
        if request.method != "POST":
            raise Rejection(405, error_body(405, METHOD_NOT_ALLOWED))
        turn = self._read_turn(request)
        with self._store_lock:
            self._check_thread(turn, self.form(request))
        if self.models.get(turn.model) != turn.host:
            raise Rejection(400, error_body(400, f"model {turn.model} is not available on {turn.host}"))
        try:
            problem = file_problem(self.file_models.get(turn.model), turn.files, turn.parent is not None)
        except Unidentified:
            raise Rejection(500, error_body(500, INTERNAL_ERROR)) from None
        if problem is not None:
            # That validator sets hide_input_in_errors (validate_message_files_from_config.py).
            raise validation_error(
                "CreateMessageRequestFilesValidator",
                [Problem("value_error", (), f"Value error, {problem}", hidden=True)],
            )

    def _read_turn(self, request: RecordedRequest) -> Turn:
        try:
            form, uploads = parse(request)
        except BadForm:
            raise Rejection(400, error_body(400, BAD_REQUEST)) from None
        fields = Fields(form)
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
                Problem("value_error", (), "Value error, Assistant messages must have a parent", whole)
            )
        if fields.problems:
            raise validation_error("CreateMessageRequestV4", fields.problems)
        creator, anonymous = self._identify(request)
        assert content is not None and model is not None and host is not None
        return Turn(
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
            raise Rejection(401, error_body(401, UNAUTHORIZED))
        return anonymous_id, True

    def _check_thread(self, turn: Turn, form: Mapping[str, str]) -> None:
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
            raise Rejection(403, error_body(403, FORBIDDEN))
        else:
            return
        given = full_request(turn, parent, root, form)
        raise validation_error(
            "CreateMessageRequestWithFullMessages",
            [Problem("value_error", (), f"Value error, {problem}", given)],
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
            name_files(turn, message)
            if message["role"] == "assistant":
                answer = None
            else:
                answer = create_message(
                    self.messages, turn, "", "assistant", parent=message["id"], root=message["root"]
                )
                answer["model_type"] = "chat"
        if answer is None:
            yield _line(message)  # an edit is stored, not answered
            return
        first = _line(tree(system, message, answer))
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
            yield DeltaEvent(_line({"message": answer["id"], "content": piece, "logprobs": []}))
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
            answer["snippet"] = snippet(answer["content"])
            answer["logprobs"] = []  # the chunks' logprobs, joined: none asked for
            answer["final"] = True
            answer["finish_reason"] = None if reason in NOT_A_FINISH else reason
        yield _line(tree(system, message, answer))

    def _create_messages(self, turn: Turn) -> Tuple[Optional[Dict[str, Any]], Dict[str, Any]]:
        """The new message, and the system message above it on a model's new thread.

        The caller holds the store's lock, as for :meth:`_create`.
        """
        system = None
        if turn.parent is not None:
            parent = self.messages[turn.parent]
            message = create_message(
                self.messages, turn, turn.content, turn.role, parent=parent["id"], root=parent["root"]
            )
        else:
            if turn.model in self.system_prompt_models:
                system = create_message(
                    self.messages,
                    turn,
                    self.system_prompt_models[turn.model],
                    "system",
                    parent=None,
                    root=None,
                )
            above = system["id"] if system else None
            message = create_message(self.messages, turn, turn.content, turn.role, parent=above, root=above)
            message["final"] = turn.role == "assistant"
        # A user turn passed the safety check (or was refused): the messages it
        # created are marked `harmful: false`; other roles are not checked (null).
        if turn.role == "user":
            for checked in (system, message):
                if checked is not None:
                    checked["harmful"] = False
        return system, message
