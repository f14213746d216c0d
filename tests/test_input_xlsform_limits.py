"""XLSForm uploads: decompression bombs and oversized files are refused before parsing.

The bombs are real workbooks: a valid XLSForm made by openpyxl whose sheet XML is padded, in
the zip, with whitespace that unpacks to a gigabyte (or with thousands of extra parts).
"""

from __future__ import annotations

import io
import time
import tracemalloc
import zipfile

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.core.management import CommandError, call_command

from surveys.models import FormVersion
from surveys.xlsform import XLSFormError, compile_xlsform
from tests.factories import SIMPLE_FORM, build_xlsform


@pytest.fixture(autouse=True)
def _english():
    """The messages are checked in English, whatever language an earlier test left active."""
    from django.utils import translation

    with translation.override("en"):
        yield


GIB = 1024**3
SHEET = "xl/worksheets/sheet1.xml"


def rebuilt(content: bytes, *, pad: int = 0, extra_entries: int = 0) -> bytes:
    """The workbook again, with ``pad`` bytes of whitespace inside the first sheet's XML and
    ``extra_entries`` more (tiny) parts."""
    source = zipfile.ZipFile(io.BytesIO(content))
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED, compresslevel=9) as target:
        for info in source.infolist():
            data = source.read(info)
            if info.filename != SHEET or not pad:
                target.writestr(info.filename, data)
                continue
            head, tail = data.split(b"<sheetData>", 1)
            with target.open(SHEET, "w", force_zip64=True) as sheet:
                sheet.write(head + b"<sheetData>")
                chunk = b" " * (1024 * 1024)
                for _ in range(pad // len(chunk)):
                    sheet.write(chunk)
                sheet.write(tail)
        for index in range(extra_entries):
            target.writestr(f"customXml/item{index}.xml", b"<a/>")
    return out.getvalue()


@pytest.fixture(scope="module")
def form() -> bytes:
    return build_xlsform(**SIMPLE_FORM)


@pytest.fixture(scope="module")
def gigabyte_bomb(form) -> bytes:
    bomb = rebuilt(form, pad=GIB + 1024 * 1024)
    assert len(bomb) < 1.2 * 1024 * 1024  # about 1 MB on disk
    return bomb


def refused(content: bytes, filename: str = "form.xlsx") -> str:
    with pytest.raises(XLSFormError) as caught:
        compile_xlsform(content, filename=filename)
    return str(caught.value)


def test_the_form_itself_compiles(form):
    assert compile_xlsform(form, filename="simple.xlsx").version == "1"


def test_a_gigabyte_bomb_is_refused_at_once_and_in_little_memory(gigabyte_bomb):
    tracemalloc.start()
    started = time.perf_counter()
    message = refused(gigabyte_bomb)
    elapsed = time.perf_counter() - started
    _current, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    assert "unpacks to 1025 MB, more than the limit of 50 MB" in message
    assert elapsed < 0.5
    assert peak < 20 * 1024 * 1024  # the bomb itself is held once, by the caller


def test_a_part_compressed_beyond_the_ratio_is_refused(form, settings):
    settings.XLSFORM_MAX_UNCOMPRESSED_BYTES = 100 * 1024 * 1024
    message = refused(rebuilt(form, pad=20 * 1024 * 1024))
    assert "xl/worksheets/sheet1.xml" in message
    assert "more than the limit of 100" in message


def test_too_many_parts_are_refused(form):
    message = refused(rebuilt(form, extra_entries=2500))
    assert "more than the limit of 2000" in message


def test_limits_are_settings(form, settings):
    settings.XLSFORM_MAX_ENTRIES = 5
    assert "more than the limit of 5 " in refused(form)
    settings.XLSFORM_MAX_ENTRIES = 2000
    settings.XLSFORM_MAX_UNCOMPRESSED_BYTES = 1000
    assert "more than the limit of 0.00 MB" in refused(form)


def test_a_file_over_the_upload_limit_is_refused(form, settings):
    settings.XLSFORM_MAX_UPLOAD_BYTES = len(form) - 1
    assert "larger than the limit" in refused(form)
    assert "larger than the limit" in refused(b"\xd0\xcf\x11\xe0" + b"\0" * len(form), "f.xls")


def test_an_xls_is_read_within_the_limit_and_refused_beyond(settings):
    from tests.surveys.test_xlsform import _xls_bytes

    xls = _xls_bytes()
    assert compile_xlsform(xls, filename="legacy.xls").definition["children"]
    settings.XLSFORM_MAX_UPLOAD_BYTES = len(xls) - 1
    assert "larger than the limit" in refused(xls, "legacy.xls")


def test_not_a_zip_is_a_clear_error():
    assert "not a readable Excel workbook (BadZipFile)" in refused(b"PK\x03\x04 not really")


def test_an_entity_bomb_is_refused(form):
    """A billion-laughs DOCTYPE in the sheet XML: refused, not expanded."""
    laughs = (
        b'<?xml version="1.0"?><!DOCTYPE lolz [<!ENTITY lol "lol">'
        + b"".join(
            b'<!ENTITY lol%d "%s">' % (i, (b"&lol%d;" % (i - 1) if i > 1 else b"&lol;") * 10)
            for i in range(1, 10)
        )
        + b"]>"
    )
    source = zipfile.ZipFile(io.BytesIO(form))
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as target:
        for info in source.infolist():
            data = source.read(info)
            if info.filename == SHEET:
                data = laughs + data.replace(b"<t>", b"<t>&lol9;", 1)
            target.writestr(info.filename, data)
    started = time.perf_counter()
    with pytest.raises(XLSFormError):
        compile_xlsform(out.getvalue(), filename="laughs.xlsx")
    assert time.perf_counter() - started < 5


@pytest.mark.django_db
def test_the_management_command_refuses_a_bomb(gigabyte_bomb, tmp_path):
    from django.utils import translation

    path = tmp_path / "bomb.xlsx"
    path.write_bytes(gigabyte_bomb)
    with (
        translation.override("en"),
        pytest.raises(CommandError, match="more than the limit of 50 MB"),
    ):
        call_command("import_xlsform", str(path), survey="bomb")
    assert not FormVersion.objects.exists()


@pytest.mark.django_db
def test_the_admin_upload_refuses_a_bomb_and_a_large_file(admin_client, gigabyte_bomb, settings):
    url = "/admin/surveys/formversion/upload/"
    bomb = SimpleUploadedFile("bomb.xlsx", gigabyte_bomb)
    response = admin_client.post(
        url, {"survey_code": "bomb", "xlsform": bomb}, HTTP_ACCEPT_LANGUAGE="ru"
    )
    assert response.status_code == 200
    assert "больше допустимых для XLSForm 50 МБ" in response.content.decode()
    settings.XLSFORM_MAX_UPLOAD_BYTES = 1024 * 1024
    large = SimpleUploadedFile("large.xlsx", b"PK" + b"\0" * (2 * 1024 * 1024))
    response = admin_client.post(
        url, {"survey_code": "large", "xlsform": large}, HTTP_ACCEPT_LANGUAGE="en"
    )
    assert "The file is larger than the limit of 1 MB for an XLSForm." in response.content.decode()
    assert not FormVersion.objects.exists()
