"""The one-file bodies `odk.multipart` reads give the bytes Django's parser gives; every
other body is left to Django's parser."""

from __future__ import annotations

import io

import pytest
from django.core.files.uploadhandler import MemoryFileUploadHandler
from django.http.multipartparser import MultiPartParser, MultiPartParserError

from odk.multipart import single_file

B = "tanysboundary"
CT = f"multipart/form-data; boundary={B}"
XML = b'<?xml version="1.0"?>\n<data id="f"><q>1</q><meta><instanceID>uuid:1</instanceID></meta></data>'


def part(content: bytes = XML, *, name="xml_submission_file", filename="submission.xml",
         headers: bytes = b"Content-Type: text/xml\r\n") -> bytes:  # fmt: skip
    disposition = f'Content-Disposition: form-data; name="{name}"; filename="{filename}"\r\n'
    return f"--{B}\r\n".encode() + disposition.encode() + headers + b"\r\n" + content + b"\r\n"


def django(content_type: str, body: bytes) -> bytes | None:
    meta = {"CONTENT_TYPE": content_type, "CONTENT_LENGTH": str(len(body))}
    try:
        post, files = MultiPartParser(meta, io.BytesIO(body), [MemoryFileUploadHandler()]).parse()
    except MultiPartParserError:
        return None
    parts = files.getlist("xml_submission_file")
    if len(parts) != 1 or len(files) != 1 or post:
        return None
    return parts[0].read()


END = f"--{B}--\r\n".encode()

RECOGNISED = {
    "Collect's shape": (CT, part() + END),
    "no final line end": (CT, part() + END.rstrip()),
    "no content type": (CT, part(headers=b"") + END),
    "lower-case headers": (
        CT,
        part(headers=b"content-type: text/xml\r\n").replace(b"Content-Disp", b"content-disp") + END,
    ),
    "quoted boundary": (f'multipart/form-data; boundary="{B}"', part() + END),
    "an empty file": (CT, part(b"") + END),
    "line ends and dashes inside": (CT, part(XML + b"\r\n\r\n--" + b"\r\n-- tanys") + END),
    "Collect's file name": (CT, part(filename="informal_networks_2026-12-02_01-02-03.xml") + END),
}

LEFT_TO_DJANGO = {
    "two parts": (CT, part() + part(b"jpeg", name="photo", filename="p.jpg") + END),
    "a field as well": (
        CT,
        part() + f'--{B}\r\nContent-Disposition: form-data; name="x"\r\n\r\n1\r\n'.encode() + END,
    ),
    "another field name": (CT, part(name="xml_submission") + END),
    "no file name": (
        CT,
        f'--{B}\r\nContent-Disposition: form-data; name="xml_submission_file"\r\n\r\n'.encode()
        + XML
        + b"\r\n"
        + END,
    ),  # fmt: skip
    "a path as file name": (CT, part(filename="../etc/submission.xml") + END),
    "an entity in the file name": (CT, part(filename="a&amp;b.xml") + END),
    "base64": (CT, part(headers=b"Content-Transfer-Encoding: base64\r\n") + END),
    "a preamble": (CT, b"preamble\r\n" + part() + END),
    "an epilogue": (CT, part() + END + b"epilogue"),
    "bare LF": (CT, part().replace(b"\r\n", b"\n") + END),
    "the boundary inside": (CT, part(XML + f"--{B}".encode()) + END),
    "not closed": (CT, part()),
    "another boundary": (f"multipart/form-data; boundary={B}x", part() + END),
    "form-urlencoded": ("application/x-www-form-urlencoded", b"a=1"),
    "a repeated header": (
        CT,
        part(headers=b"Content-Type: text/xml\r\nContent-Type: a/b\r\n") + END,
    ),
}


@pytest.mark.parametrize("case", RECOGNISED)
def test_collects_one_file_body_gives_djangos_bytes(case):
    content_type, body = RECOGNISED[case]
    found = single_file(content_type, body, "xml_submission_file")
    assert found is not None
    assert found == django(content_type, body)


@pytest.mark.parametrize("case", LEFT_TO_DJANGO)
def test_any_other_body_is_left_to_djangos_parser(case):
    content_type, body = LEFT_TO_DJANGO[case]
    assert single_file(content_type, body, "xml_submission_file") is None
