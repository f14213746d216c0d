"""The OpenRosa documents and headers ODK Collect expects (form list, manifest, responses).

From the OpenRosa form list, form submission and HTTP specifications: every response
carries ``X-OpenRosa-Version: 1.0``, ``Date`` and ``Content-Language``; XML is served as
``text/xml; charset=utf-8``; a form list entry has exactly one formID, name, version, hash
(``md5:`` of the bytes served) and downloadUrl, and a manifestUrl only when the form has
media files; a submission's result is an ``OpenRosaResponse`` whose message Collect shows.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from xml.etree.ElementTree import Element, SubElement, tostring
from xml.sax.saxutils import escape

from django.http import HttpResponse
from django.utils import translation
from django.utils.http import http_date

VERSION = "1.0"
XML_CONTENT_TYPE = "text/xml; charset=utf-8"
FORM_LIST_NS = "http://openrosa.org/xforms/xformsList"
MANIFEST_NS = "http://openrosa.org/xforms/xformsManifest"
RESPONSE_NS = "http://openrosa.org/http/response"


@dataclass(frozen=True)
class FormListEntry:
    form_id: str
    name: str
    version: str
    md5: str
    download_url: str
    manifest_url: str = ""


def with_headers(response: HttpResponse) -> HttpResponse:
    """Add the headers every OpenRosa response carries."""
    response["X-OpenRosa-Version"] = VERSION
    response["Date"] = http_date()
    response["Content-Language"] = translation.get_language() or "kk"
    return response


def xml_response(root: Element, *, status: int = 200) -> HttpResponse:
    body = b'<?xml version="1.0" encoding="UTF-8"?>\n' + tostring(root, encoding="utf-8")
    return with_headers(HttpResponse(body, status=status, content_type=XML_CONTENT_TYPE))


def form_list(entries: Iterable[FormListEntry]) -> HttpResponse:
    root = Element("xforms", xmlns=FORM_LIST_NS)
    for entry in entries:
        form = SubElement(root, "xform")
        for tag, text in (
            ("formID", entry.form_id),
            ("name", entry.name),
            ("version", entry.version),
            ("hash", f"md5:{entry.md5}"),
            ("downloadUrl", entry.download_url),
        ):
            SubElement(form, tag).text = text
        if entry.manifest_url:
            SubElement(form, "manifestUrl").text = entry.manifest_url
    return xml_response(root)


def manifest(files: Iterable[tuple[str, str, str]] = ()) -> HttpResponse:
    """``files``: (file name, md5, download URL) of each media file."""
    root = Element("manifest", xmlns=MANIFEST_NS)
    for filename, md5, url in files:
        media = SubElement(root, "mediaFile")
        SubElement(media, "filename").text = filename
        SubElement(media, "hash").text = f"md5:{md5}"
        SubElement(media, "downloadUrl").text = url
    return xml_response(root)


# The one-message OpenRosaResponse as `xml_response` writes it, with the message's text
# escaped as ElementTree escapes text: every submission is answered with one, and a
# template costs a tenth of building and writing a tree.
_MESSAGE = (
    '<?xml version="1.0" encoding="UTF-8"?>\n'
    f'<OpenRosaResponse xmlns="{RESPONSE_NS}">{{}}</OpenRosaResponse>'
)


def message(text: str, *, status: int) -> HttpResponse:
    """An OpenRosaResponse with one message: Collect shows it to the enumerator."""
    element = f'<message nature="">{escape(text)}</message>' if text else '<message nature="" />'
    body = _MESSAGE.format(element).encode()
    return with_headers(HttpResponse(body, status=status, content_type=XML_CONTENT_TYPE))
