"""The one-file multipart body ODK Collect sends for an interview without attachments.

Such a body is ``--<boundary>``, two headers (Content-Disposition naming the part and its
file, Content-Type), a blank line, the instance's XML, and ``--<boundary>--``. Django's
MultiPartParser reads it through a stack of lazy streams and upload handlers, a tenth of
an OpenRosa request's time. `single_file` recognises exactly that shape and returns the
file's bytes, the bytes Django's parser gives for it; anything else (another part, a
transfer encoding, a preamble, bare LF line ends, an unusual file name...) is None and
goes to Django's parser. Written here because no library parses multipart faster than
Django without a compiled extension, and the shape is narrow enough to check whole.
"""

from __future__ import annotations

import re

from django.http.multipartparser import MultiPartParser
from django.utils.http import parse_header_parameters

# A file name Django's parser keeps as it is (no path, entity or unprintable character).
_NAME = r"[A-Za-z0-9_][A-Za-z0-9_.-]{0,254}"
_HEADER = re.compile(rb"([A-Za-z-]{1,64}): ?([ -~]{0,512})")
_MAX_HEADERS = 1024  # Django's parser looks for the end of a part's headers in this many


def single_file(content_type: str, body: bytes, field: str) -> bytes | None:
    """The content of the file part ``field`` when ``body`` holds that part alone, in the
    shape above; None otherwise."""
    kind, options = parse_header_parameters(content_type)
    boundary = options.get("boundary", "")
    if (
        kind != "multipart/form-data"
        or not content_type.isascii()
        or not MultiPartParser.boundary_re.fullmatch(boundary)
    ):
        return None
    delimiter = b"--" + boundary.encode("ascii")
    start = len(delimiter) + 2
    if not body.startswith(delimiter + b"\r\n"):
        return None
    end_of_headers = body.find(b"\r\n\r\n", start, start + _MAX_HEADERS)
    if end_of_headers < 0:
        return None
    seen: dict[bytes, bytes] = {}
    for line in body[start:end_of_headers].split(b"\r\n"):
        header = _HEADER.fullmatch(line)
        if header is None:
            return None
        name = header[1].lower()
        if name not in (b"content-disposition", b"content-type") or name in seen:
            return None
        seen[name] = header[2]
    disposition = re.fullmatch(
        rf'form-data; name="{re.escape(field)}"; filename="{_NAME}"'.encode(),
        seen.get(b"content-disposition", b""),
    )
    if disposition is None:
        return None
    content = end_of_headers + 4
    close = body.find(delimiter, content)
    if close < content + 2 or body[close - 2 : close] != b"\r\n":
        return None
    if body[close + len(delimiter) :] not in (b"--", b"--\r\n"):
        return None
    return body[content : close - 2]
