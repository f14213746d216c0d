"""The XForm of a questionnaire version, as pyxform makes it from the stored XLSForm.

pyxform is the reference converter ODK itself uses, so what Collect runs is what the
XLSForm says, with every translation (kk/ru/en as ``<translation lang=...>``) and
``meta/instanceID``. The instance root carries the platform's version string, so an interview
always names the version it was collected with. The bytes are stored on first use
(`odk.models.XForm`) and served unchanged afterwards: their md5 is the form list's hash.
"""

from __future__ import annotations

import hashlib
import io
import re
from typing import Any

from django.db import IntegrityError, transaction
from pyxform.xls2xform import convert

from odk.models import XForm
from surveys.models import FormVersion

METADATA_TYPES = ("start", "end", "deviceid", "audit")
_ROOT = re.compile(rb'(<data id="[^"]*")(?: version="[^"]*")?')


def xform_for(version: FormVersion) -> XForm:
    """The stored XForm of ``version``, made now if this is the first request for it."""
    existing = XForm.objects.filter(form_version=version).first()
    if existing is not None:
        return existing
    xml, meta_names = build_xform(version)
    try:
        with transaction.atomic():
            return XForm.objects.create(
                form_version=version,
                xml=xml,
                md5=hashlib.md5(xml).hexdigest(),  # noqa: S324 - the hash OpenRosa asks for
                meta_names=meta_names,
            )
    except IntegrityError:  # another request made it at the same moment
        return XForm.objects.get(form_version=version)


# The metadata question names of each version's XForm, by version (an XForm never changes
# once stored), so a submission does not read the XForm's bytes to find them.
_META_NAMES: dict[tuple[Any, ...], dict[str, str]] = {}
_META_NAMES_KEPT = 64


def meta_names_for(version: FormVersion) -> dict[str, str]:
    key = (version.pk, version.xlsform_sha256, version.created_at)
    names = _META_NAMES.get(key)
    if names is None:
        stored = XForm.objects.filter(form_version=version).values_list("meta_names", flat=True)
        names = next(iter(stored), None)
        if names is None:
            names = xform_for(version).meta_names
        if len(_META_NAMES) >= _META_NAMES_KEPT:
            _META_NAMES.clear()
        _META_NAMES[key] = names
    return dict(names)


def build_xform(version: FormVersion) -> tuple[bytes, dict[str, str]]:
    """Convert the version's XLSForm: the XForm bytes and its metadata questions' names."""
    with version.xlsform.open("rb") as handle:
        content = handle.read()
    suffix = "." + str(version.xlsform.name).rsplit(".", 1)[-1].lower()
    result = convert(io.BytesIO(content), file_type=suffix, form_name="data")
    xml = result.xform.encode()
    version_attr = f' version="{_xml_attr(version.version)}"'.encode()
    xml = _ROOT.sub(lambda m: m.group(1) + version_attr, xml, count=1)
    return xml, _meta_names((result._pyxform or {}).get("children", []))


def _meta_names(nodes: list[dict[str, Any]]) -> dict[str, str]:
    names: dict[str, str] = {}
    for node in nodes:
        kind = str(node.get("type", ""))
        if kind in METADATA_TYPES and kind not in names:
            names[kind] = str(node.get("name"))
        for name_kind, name in _meta_names(node.get("children", [])).items():
            names.setdefault(name_kind, name)
    return names


def _xml_attr(value: str) -> str:
    return value.replace("&", "&amp;").replace('"', "&quot;").replace("<", "&lt;")
