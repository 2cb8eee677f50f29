"""Images as the providers take them: the type told from the first bytes
(:func:`sniff_image`) and the ``data:`` URL that carries them (:func:`data_url`).

One table of signatures for :func:`llmclients.image_part` and for
:mod:`llmclients.compat.g4f`; a JPEG starts with ``FF D8 FF`` (the start-of-image
marker and the first segment's marker), so two bytes alone do not make one.
"""

from __future__ import annotations

import base64
from typing import Optional

__all__ = ["data_url", "sniff_image"]

#: (first bytes, media type); WebP is ``RIFF`` + a size + ``WEBP``, checked apart.
_SIGNATURES = (
    (b"\x89PNG\r\n\x1a\n", "image/png"),
    (b"\xff\xd8\xff", "image/jpeg"),
    (b"GIF87a", "image/gif"),
    (b"GIF89a", "image/gif"),
)


def sniff_image(data: bytes) -> Optional[str]:
    """The media type of a PNG, JPEG, GIF or WebP image from its first bytes; None for anything else."""
    for signature, media_type in _SIGNATURES:
        if data.startswith(signature):
            return media_type
    if data[:4] == b"RIFF" and data[8:12] == b"WEBP":
        return "image/webp"
    return None


def data_url(data: bytes, media_type: str) -> str:
    """``data:<media_type>;base64,<data>``."""
    return f"data:{media_type};base64,{base64.b64encode(data).decode('ascii')}"
