"""The form of a request to :class:`~llmclients.testing.allenai.AllenAIEmulator`,
read as werkzeug read it for olmo-api: ``multipart/form-data`` (its parts with
a filename are files) or URL-encoded; any other body has no fields.
"""

from __future__ import annotations

from dataclasses import dataclass
from email.parser import BytesHeaderParser
from typing import Dict, List, Optional, Tuple
from urllib.parse import parse_qsl

from ._server import RecordedRequest


@dataclass(frozen=True)
class UploadedFile:
    """One file part of a form: its field name, filename, declared type and bytes."""

    name: str
    filename: str
    content_type: Optional[str]
    data: bytes


class BadForm(ValueError):
    """The body is not a form werkzeug could parse."""


def parse_form(request: RecordedRequest) -> Dict[str, List[str]]:
    """The text fields of ``request``'s form: name -> values, in order.

    Multipart parts with a filename are files (see :func:`parse_files`), left
    out. Raises ``ValueError`` for a body that is not a well-formed form.
    """
    return parse(request)[0]


def parse_files(request: RecordedRequest) -> List[UploadedFile]:
    """The files of ``request``'s form named ``files``, in order: what olmo-api read."""
    return [file for file in parse(request)[1] if file.name == "files"]


def parse(request: RecordedRequest) -> Tuple[Dict[str, List[str]], List[UploadedFile]]:
    kind = request.headers.get_content_type()
    if kind == "multipart/form-data":
        boundary = request.headers.get_param("boundary")
        if not isinstance(boundary, str) or not boundary:
            raise BadForm("no boundary")
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
        raise BadForm("the body does not end with the closing boundary")
    fields: Dict[str, List[str]] = {}
    files: List[UploadedFile] = []
    for section in sections[1:-1]:
        _, _, part = section.partition(b"\r\n")  # the rest of the boundary line
        if part.startswith(b"\r\n"):
            head, content = b"", part[2:]
        else:
            head, sep, content = part.partition(b"\r\n\r\n")
            if not sep:
                raise BadForm("a part has no blank line after its headers")
        headers = BytesHeaderParser().parsebytes(head + b"\r\n\r\n")
        name = headers.get_param("name", header="content-disposition")
        if not isinstance(name, str):
            raise BadForm("a part has no name")
        filename = headers.get_filename()
        if filename is not None:  # werkzeug: a part with a filename is a file, whatever its name
            files.append(UploadedFile(name, filename, headers.get("Content-Type"), content))
            continue
        # werkzeug decodes text fields as UTF-8, replacing what is not.
        fields.setdefault(name, []).append(content.decode("utf-8", "replace"))
    return fields, files
