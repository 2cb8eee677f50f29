"""Files sent to :class:`~llmclients.testing.allenai.AllenAIEmulator`, checked as
olmo-api's ``CreateMessageRequestFilesValidator`` checked them, with its
wording, against a model's :class:`FileRules`; their types sniffed from the
bytes as puremagic did, for the usual image formats and PDF only.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Dict, List, Optional, Tuple

from ._allenai_form import UploadedFile


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


class Unidentified(Exception):
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
    raise Unidentified


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


def file_problem(rules: Optional[FileRules], files: List[UploadedFile], has_parent: bool) -> Optional[str]:
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
