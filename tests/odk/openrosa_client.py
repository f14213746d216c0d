"""A small OpenRosa client written from the specifications, not from the server's code.

It reads a downloaded XForm the way ODK Collect does (the primary instance is the first
``<instance>`` of the model) and fills that template in to make a submission.
"""

from __future__ import annotations

import copy
import uuid
from xml.etree import ElementTree as ET

XFORMS = "http://www.w3.org/2002/xforms"
XHTML = "http://www.w3.org/1999/xhtml"
JR = "http://openrosa.org/javarosa"


def primary_instance(xform: bytes) -> ET.Element:
    root = ET.fromstring(xform)
    model = root.find(f"{{{XHTML}}}head/{{{XFORMS}}}model")
    assert model is not None, "the XForm has no model"
    instance = model.find(f"{{{XFORMS}}}instance")
    assert instance is not None and len(instance) == 1, "no primary instance"
    return instance[0]


def translations(xform: bytes) -> list[str]:
    root = ET.fromstring(xform)
    return [t.get("lang", "") for t in root.iter(f"{{{XFORMS}}}translation")]


def fill(
    xform: bytes,
    answers: dict[str, object],
    *,
    instance_id: uuid.UUID,
    deprecated_id: uuid.UUID | None = None,
    extra: dict[str, str] | None = None,
) -> bytes:
    """The instance of ``xform`` with ``answers`` (by element name) and meta filled in."""
    template = copy.deepcopy(primary_instance(xform))
    values = {**{k: _text(v) for k, v in answers.items()}, **(extra or {})}
    for element in template.iter():
        local = element.tag.rsplit("}", 1)[-1]
        if local in values:
            element.text = values[local]
    meta = next(e for e in template.iter() if e.tag.rsplit("}", 1)[-1] == "meta")
    ids = [e for e in meta if e.tag.rsplit("}", 1)[-1] == "instanceID"]
    ids[0].text = f"uuid:{instance_id}"
    if deprecated_id is not None:
        dep = ET.SubElement(meta, ids[0].tag.replace("instanceID", "deprecatedID"))
        dep.text = f"uuid:{deprecated_id}"
    return ET.tostring(template, encoding="utf-8", xml_declaration=True)


def _text(value: object) -> str:
    if isinstance(value, list | tuple):
        return " ".join(str(v) for v in value)
    return str(value)
