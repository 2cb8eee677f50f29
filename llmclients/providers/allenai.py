"""AllenAI's Ai2 Playground (olmo-api): Tülu 3 and OLMo 2, anonymously.

**The live service is gone**: olmo-api has demanded a reCAPTCHA token with every
prompt since 2025-04-14 and removed this endpoint on 2025-11-03. The provider
speaks the protocol as it was, which :class:`~llmclients.testing.AllenAIEmulator`
still answers.

Protocol (olmo-api ``/v4/message/stream``, Feb–May 2025):

* ``POST {base_url}/v4/message/stream``, a ``multipart/form-data`` body of
  UTF-8 text fields: ``content`` (the new turn's text), ``model``, ``host``
  (where the model runs: ``inferd`` or ``modal``), ``private`` (``true`` /
  ``false``), and optionally ``parent``, ``temperature``, ``top_p``,
  ``max_tokens``.
* ``X-Anonymous-User-ID: <uuid4>`` stands in for a login. Only a thread's
  creator may continue it, so a conversation keeps one id for all its turns.
* The server keeps the history: a follow-up sends only the new user text, with
  ``parent`` = the id of the previous assistant reply. It has no system role
  either, so the first turn of a conversation that starts from a message list
  folds the history and system messages into ``content`` (:func:`format_prompt`).
* Images go in the same form, one ``files`` part each, with a filename and its
  ``Content-Type``, as a browser uploads a file. Only a model whose olmo-api
  config has ``accepts_files`` takes them — of these, the vision model
  ``mm-olmo-uber-model-v4-synthetic`` — and olmo-api checks them against that
  config: the file type (sniffed from the bytes), how many per message, their
  total size, whether a thread's first message needs one, whether a follow-up
  may carry any. The vision model took one image, required it on a thread's
  first message and refused files in follow-ups (its config as olmo-api seeded
  it on 2025-04-21). So a turn with images starts a new thread, as gpt4free
  did: no ``parent``, and ``content`` is the whole history folded as for a
  first turn. The images sent are those of the new turn (the trailing user
  messages, gpt4free's rule): earlier ones went to the earlier thread, and the
  vision model takes one per message. A text follow-up continues the new
  thread, whose image the server keeps.
* olmo-api never fetches a URL: an image is sent as bytes, so only ``data:``
  URLs can be sent (decoded here); an ``http(s)`` image URL is refused before
  any request.
* The answer is NDJSON (``application/jsonl``). Each line is classified by its
  keys, as olmo-ui does:

  - has ``id``: a message. The first line is the new user message (or, for a
    model with a system prompt, the system message above it) whose
    ``children`` tree holds the assistant reply, still empty; the last line is
    the same tree with ``final: true`` and the reply's ``finish_reason``.
  - has ``error``: the server reports a failure (``reason``: ``"aborted"``,
    ``"model overloaded"``, ...). Raised as :class:`ProviderError`, except
    ``"length"``, olmo-api's way to say the reply was cut short: that is the
    finish reason ``"length"``, and the final message still follows.
  - otherwise a chunk: ``{"message": <reply id>, "content": <text>, "logprobs": [...]}``.
"""

from __future__ import annotations

import base64
import mimetypes
import re
import uuid
from typing import Any, Dict, FrozenSet, Iterator, List, Mapping, Optional, Sequence, Tuple
from urllib.parse import unquote_to_bytes

from .. import errors
from .kit import Message, Provider, Request, StreamState, excerpt, format_prompt, last_user_message, load_json

STREAM_PATH = "/v4/message/stream"

#: Model id -> the host olmo-api serves it from (the ``host`` form field must match).
MODEL_HOSTS: Dict[str, str] = {
    "tulu3-405b": "inferd",
    "OLMo-2-1124-13B-Instruct": "modal",
    "tulu-3-1-8b": "modal",
    "Llama-3-1-Tulu-3-70B": "modal",
    "olmoe-0125": "modal",
    "olmo-2-0325-32b-instruct": "modal",
    "mm-olmo-uber-model-v4-synthetic": "modal",  # the vision model: images go as `files` parts
}

#: The models olmo-api configured with ``accepts_files``: the only ones that take images.
VISION_MODELS: FrozenSet[str] = frozenset({"mm-olmo-uber-model-v4-synthetic"})
IMAGES: FrozenSet[str] = frozenset({"images"})

#: File name extensions for the usual image types (mimetypes lacks webp before Python 3.11).
_EXTENSIONS = {"image/png": ".png", "image/jpeg": ".jpg", "image/gif": ".gif", "image/webp": ".webp"}

#: gpt4free's names for the models ("tulu-3-1-8b" is already an id).
MODEL_ALIASES: Dict[str, str] = {
    "tulu-3-405b": "tulu3-405b",
    "llama-3.1-405b": "tulu3-405b",
    "olmo-2-13b": "OLMo-2-1124-13B-Instruct",
    "llama-3.1-8b": "tulu-3-1-8b",
    "tulu-3-70b": "Llama-3-1-Tulu-3-70B",
    "llama-3.1-70b": "Llama-3-1-Tulu-3-70B",
    "olmo-1-7b": "olmoe-0125",
    "olmo-2-32b": "olmo-2-0325-32b-instruct",
    "olmo-4-synthetic": "mm-olmo-uber-model-v4-synthetic",
}

#: olmo-api's own words when it refuses a prompt over its reCAPTCHA check (830b568
#: ``create_message_request.py``: a missing token; ``create_message_service.py``:
#: ``invalid_captcha``, ``failed_captcha_assessment``). Only these: a validation
#: error's message echoes the request, ``'captchaToken': None`` included, so the
#: word "captcha" alone proves nothing.
CAPTCHA_FAILURES = re.compile(r"Failed to evaluate captcha|\binvalid_captcha\b|\bfailed_captcha_assessment\b")

#: The stream error that is not a failure but a truncated reply.
TRUNCATED = "length"


class AllenAI(Provider):
    """The Ai2 Playground's anonymous chat (retired; see :attr:`status`)."""

    name = "allenai"
    label = "Ai2 Playground"
    default_base_url = "https://olmo-api.allen.ai"
    status = (
        "retired: olmo-api removed /v4/message/stream on 2025-11-03, and from 2025-04-14 "
        "required a reCAPTCHA token a script cannot get; use llmclients.testing.AllenAIEmulator"
    )
    models = tuple(MODEL_HOSTS)
    default_model = "tulu3-405b"
    model_aliases = MODEL_ALIASES
    supports_system_message = False
    event_format = "ndjson"
    stream_types = frozenset({"application/jsonl"})
    options = frozenset({"temperature", "top_p", "max_tokens", "private"})

    def capabilities_for(self, model: str) -> FrozenSet[str]:
        """Images for the vision model; text only for the others (olmo-api refuses their files)."""
        return IMAGES if self.model_aliases.get(model, model) in VISION_MODELS else frozenset()

    # --- the request -------------------------------------------------------------

    def build_request(
        self, messages: List[Message], model: str, options: Dict[str, Any], thread: Dict[str, Any]
    ) -> Request:
        # One anonymous identity per conversation: only a thread's creator may continue it.
        user_id = thread.setdefault("anonymous_user_id", str(uuid.uuid4()))
        images = self._new_images(messages)
        # olmo-api wants a thread's image on its first message and refuses files in
        # follow-ups: a turn with images starts a new thread (gpt4free did the same).
        parent = None if images else thread.get("parent")
        # A follow-up sends just the new text; the server rebuilds the rest from `parent`.
        content = last_user_message(messages) if parent else format_prompt(messages)
        if not content:
            raise errors.InvalidRequestError(
                f"{self.label} needs some user text to send (olmo-api rejects empty content, "
                "even with an image)"
            )
        fields: List[Tuple[str, str]] = [
            ("content", content),
            ("model", model),
            ("host", MODEL_HOSTS[model]),
            # Anonymous messages are always private; the server forces it anyway.
            ("private", _form_bool(options.get("private", True))),
        ]
        if parent:
            fields.append(("parent", str(parent)))
        fields.extend(
            (key, str(options[key])) for key in ("temperature", "top_p", "max_tokens") if key in options
        )
        return Request(
            "POST",
            self.base_url + STREAM_PATH,
            headers={"X-Anonymous-User-ID": user_id, "Accept": "application/jsonl, application/json"},
            # (None, text) parts: requests' own encoder writes them as UTF-8 form
            # fields (no filename), under a random boundary; images are file parts.
            files=[(key, (None, value)) for key, value in fields] + [("files", image) for image in images],
        )

    def _new_images(self, messages: List[Message]) -> List[Tuple[str, bytes, str]]:
        """The new turn's images as (filename, bytes, content type), in order."""
        return [self._image_file(url, number) for number, url in enumerate(new_turn_images(messages), 1)]

    def _image_file(self, url: str, number: int) -> Tuple[str, bytes, str]:
        """A ``data:`` URL's bytes, as an upload named ``image-<number>.<ext>``."""
        if not url.startswith("data:"):
            shown = excerpt(url, 60, "...")
            raise errors.InvalidRequestError(
                f"{self.label} cannot send an image by URL ({shown}): olmo-api takes images as "
                "uploaded files and fetches nothing. Pass the image's bytes instead, as a data: URL "
                "(llmclients.image_part(path) makes one)"
            )
        header, comma, payload = url[len("data:") :].partition(",")
        media_type = header.split(";")[0].strip() or "application/octet-stream"
        try:
            if not comma:
                raise ValueError("no comma")
            if header.endswith(";base64"):
                data = base64.b64decode(payload, validate=True)
            else:
                data = unquote_to_bytes(payload)  # RFC 2397's other form: percent-encoded bytes
        except ValueError:  # binascii.Error is one too
            raise errors.InvalidRequestError(
                f"{self.label}: image {number} is not a valid data: URL (data:<type>;base64,<data>)"
            ) from None
        # olmo-api keeps only the extension (it stores files under its own names).
        extension = _EXTENSIONS.get(media_type) or mimetypes.guess_extension(media_type) or ""
        return f"image-{number}{extension}", data, media_type

    # --- the response ------------------------------------------------------------

    def parse_event(self, data: str, state: StreamState) -> Optional[str]:
        line = load_json(data)
        if not isinstance(line, dict):
            raise ValueError("a line is not a JSON object")
        if "id" in line:
            self._on_message(line, state)
            return None
        if "error" in line:
            self._on_error(line, state)
            return None
        content = line["content"]
        if not isinstance(content, str):
            raise TypeError("a chunk's content is not a string")
        return content  # whitespace-only chunks are text too: newlines, indentation

    def _on_message(self, message: Dict[str, Any], state: StreamState) -> None:
        reply = _find_reply(message)
        if reply is None:
            raise ValueError("a message line has no assistant reply in its children")
        # The next turn's parent. Kept only if the turn succeeds (the conversation commits it).
        state.thread["parent"] = reply["id"]
        if reply.get("model_id"):
            state.model = reply["model_id"]
        if message.get("final"):
            state.finish_reason = reply.get("finish_reason") or state.finish_reason
            state.done = True

    def _on_error(self, line: Dict[str, Any], state: StreamState) -> None:
        reason = line.get("reason")
        if reason == TRUNCATED:
            state.finish_reason = TRUNCATED  # the final message follows
            return
        raise errors.ProviderError(
            f"{self.label} reported an error in the stream: {line['error']} (reason: {reason})",
            reason=str(reason) if reason is not None else None,
        )

    def parse_completion(self, document: Any, state: StreamState) -> Optional[str]:
        """olmo-api's answer when it does not stream: one final message whose tree holds the reply."""
        if not isinstance(document, dict) or "id" not in document:
            raise ValueError("it is not an olmo-api message")
        self._on_message(document, state)
        if not state.done:
            raise ValueError("the message is not final")
        content = (_find_reply(document) or {}).get("content")
        return content if isinstance(content, str) else None

    def finish(self, state: StreamState) -> None:
        if not state.done:
            raise errors.StreamInterruptedError("the stream ended before its final message (final: true)")

    # --- errors of the retired service ----------------------------------------

    def explain_status_error(self, exc: errors.HTTPStatusError) -> errors.HTTPStatusError:
        """Say so when the refusal is one of the live service's retirement."""
        why = _retirement_hint(exc)
        return exc if why is None else exc.reworded(f"{self.label}: {why} [{exc.message}]")


def new_turn_images(messages: Sequence[Mapping[str, Any]]) -> List[str]:
    """The image URLs of the new turn (the trailing user messages), in order.

    What a request sends as files, as gpt4free's ``merge_media`` took them:
    earlier images belong to a thread the server has. A request with any
    starts a new thread.
    """
    turn: List[Mapping[str, Any]] = []
    for message in reversed(messages):
        if message["role"] != "user":
            break
        turn.insert(0, message)
    urls: List[str] = []
    for message in turn:
        content = message.get("content")
        if isinstance(content, list):
            urls.extend(part["image_url"]["url"] for part in content if part.get("type") == "image_url")
    return urls


def _form_bool(value: Any) -> str:
    if isinstance(value, str):
        return value.strip().lower()  # "true"/"false" as the caller spelled them
    return "true" if value else "false"


def _find_reply(message: Dict[str, Any]) -> Optional[Dict[str, Any]]:
    """The assistant reply anywhere in ``message``'s tree: the last one, depth first.

    With a system prompt the reply is a grandchild (system -> user -> reply),
    so looking at the top-level children alone is not enough.
    """
    reply = None
    for node in _walk(message):
        if node.get("role") == "assistant" and node.get("id"):
            reply = node
    return reply


def _walk(message: Dict[str, Any]) -> Iterator[Dict[str, Any]]:
    yield message
    for child in message.get("children") or ():
        if isinstance(child, dict):
            yield from _walk(child)


def _retirement_hint(exc: errors.HTTPStatusError) -> Optional[str]:
    """Why the live service refused, when the refusal is one of its retirement's."""
    excerpt = exc.body_excerpt
    if exc.status_code == 404:
        return f"{STREAM_PATH} no longer exists (olmo-api removed it on 2025-11-03)"
    if exc.status_code == 400 and CAPTCHA_FAILURES.search(excerpt):
        return "the service demands a reCAPTCHA token (required since 2025-04-14), which a script cannot get"
    if isinstance(exc, errors.BlockedError) or excerpt.startswith("(an HTML page"):
        return (
            "the answer is a bot check or an HTML error page, not olmo-api's JSON; "
            "the service required a captcha from 2025-04-14 and was retired on 2025-11-03"
        )
    return None

