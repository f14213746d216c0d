"""File names of downloads and the Content-Disposition header that carries them.

A name may hold letters of any script (a wave coded in Cyrillic, say). The header gives
an ASCII name for old clients and the exact UTF-8 name as ``filename*`` (RFC 6266), and
neither can hold a quote, a line break or a path separator.
"""

from __future__ import annotations

import re
import unicodedata
from urllib.parse import quote

from django.utils.text import slugify

_NOT_ASCII_NAME = re.compile(r"[^A-Za-z0-9._-]+")


def name_part(text: str) -> str:
    """One part of a file name: letters, digits and hyphens of any script, no separators."""
    return slugify(str(text), allow_unicode=True) or "-"


def ascii_filename(filename: str) -> str:
    """The name in ASCII: accents dropped, anything else that is not a letter, a digit, a
    dot, a hyphen or an underscore becomes an underscore."""
    folded = unicodedata.normalize("NFKD", filename).encode("ascii", "ignore").decode("ascii")
    stem, dot, extension = _NOT_ASCII_NAME.sub("_", folded).rpartition(".")
    stem = re.sub(r"_{2,}", "_", stem).strip("_.") if dot else ""
    extension = extension if dot else re.sub(r"_{2,}", "_", extension).strip("_.")
    return f"{stem or 'download'}.{extension}" if dot else extension or "download"


def attachment_disposition(filename: str) -> str:
    """``attachment; filename="<ascii>"; filename*=UTF-8''<percent-encoded name>``."""
    exact = quote(filename.replace("/", "_").replace("\\", "_"), safe="")
    return f"attachment; filename=\"{ascii_filename(filename)}\"; filename*=UTF-8''{exact}"
