"""OpenRosa submission instances (the XML ODK Collect sends) to stored answers.

An instance is the XForm's primary instance filled in: a root element named after the form
(``<data id="informal_networks" version="2026.1">``) holding one element per question, groups
as nested elements, a repeat as one element per entry, and ``<meta>`` with ``instanceID``
(``uuid:...``) and, for an edit made in Collect, ``deprecatedID``. The answers are rebuilt in
the shape every channel sends the submission service (question name to value, groups
flattened, a select_multiple as a list of choice names, a repeat as a list of entries, blank
questions left out), so the same validation applies to web, tablet and ODK interviews.

The XML is parsed with lxml (libxml2, six times faster than defusedxml's pure-Python
parser on an instrument's instance): no DTD loaded or allowed, no entity resolved, no
network, no huge trees; comments and processing instructions are dropped, so the tree holds
elements only.
"""

from __future__ import annotations

import datetime as dt
import uuid
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from lxml import etree
from lxml.etree import _Element as Element

# Elements of a primary instance that are not questions of the form.
META = "meta"
# Question types whose value is not kept from the device (recomputed or display only).
_NOT_ANSWERS = {"note"}
# The metadata question types whose values `parse_instance` reads (`odk.xforms`).
_META_KINDS = ("start", "end", "deviceid", "audit")


class InstanceError(ValueError):
    """The XML is not a readable instance. ``code`` is stable for programs."""

    def __init__(self, code: str, message: str):
        self.code = code
        self.message = message
        super().__init__(message)


@dataclass
class Instance:
    form_id: str
    version: str
    instance_id: uuid.UUID
    deprecated_id: uuid.UUID | None
    answers: dict[str, Any]
    started_at: dt.datetime | None = None
    ended_at: dt.datetime | None = None
    device_id: str = ""
    meta: dict[str, str] = field(default_factory=dict)
    # Attachment file names the instance refers to (the audit log), by question type.
    files: dict[str, str] = field(default_factory=dict)


def parse(xml: bytes) -> Element:
    """The instance's XML, parsed once for `read_header` and `parse_instance`."""
    return _parse(xml)


def read_header(xml: bytes | Element) -> tuple[str, str]:
    """The form id and version the instance says it belongs to."""
    root = _parse(xml) if isinstance(xml, bytes) else xml
    form_id = root.get("id", "").strip()
    if not form_id:
        raise InstanceError("no_form_id", "the instance names no form (no id attribute)")
    return form_id, root.get("version", "").strip()


def instance_id_of(root: Element) -> uuid.UUID | None:
    """The instance's meta/instanceID when it is a readable UUID (`parse_instance` says
    what is wrong with it otherwise)."""
    try:
        return _uuid(_meta(root).get("instanceID"), "instance_id")
    except InstanceError:
        return None


def parse_instance(
    xml: bytes | Element,
    definition: Mapping[str, Any],
    meta_names: Mapping[str, str] | None = None,
) -> Instance:
    """Read an instance of the form ``definition`` (a compiled definition).

    ``meta_names`` maps the form's metadata question types (``start``, ``end``,
    ``deviceid``, ``audit``) to their element names; the compiled definition leaves them
    out, the XForm carries them (see `odk.xforms`).
    """
    meta_names = meta_names or {}
    root = _parse(xml) if isinstance(xml, bytes) else xml
    form_id = root.get("id", "").strip()
    meta = _meta(root)
    instance_id = _uuid(meta.get("instanceID"), "instance_id")
    if instance_id is None:
        raise InstanceError("no_instance_id", "the instance has no meta/instanceID")
    deprecated = _uuid(meta.get("deprecatedID"), "deprecated_id")
    files: dict[str, str] = {}
    answers = _group(root, definition.get("children", []), files)
    texts = _texts_of(root, {meta_names.get(kind) or "" for kind in _META_KINDS} - {""})
    started = _datetime(texts.get(meta_names.get("start") or "", ""))
    ended = _datetime(texts.get(meta_names.get("end") or "", ""))
    audit = texts.get(meta_names.get("audit") or "", "")
    if audit:
        files["audit"] = audit
    return Instance(
        form_id=form_id,
        version=root.get("version", "").strip(),
        instance_id=instance_id,
        deprecated_id=deprecated,
        answers=answers,
        started_at=started,
        ended_at=ended,
        device_id=texts.get(meta_names.get("deviceid") or "", "")[:128],
        meta=meta,
        files=files,
    )


def _parse(xml: bytes) -> Element:
    # A parser per call: lxml's parsers are not to be shared between threads.
    parser = etree.XMLParser(
        resolve_entities=False,
        no_network=True,
        load_dtd=False,
        dtd_validation=False,
        huge_tree=False,
        remove_comments=True,
        remove_pis=True,
    )
    try:
        root = etree.fromstring(xml, parser)
    except etree.XMLSyntaxError as exc:
        raise InstanceError("xml_invalid", f"the instance is not well-formed XML: {exc}") from exc
    info = root.getroottree().docinfo
    if info.doctype or info.internalDTD is not None:
        raise InstanceError(
            "xml_forbidden", "the instance uses a forbidden XML feature: a document type (DTD)"
        )
    return root


def _local(tag: str) -> str:
    return tag.rsplit("}", 1)[-1]


def _meta(root: Element) -> dict[str, str]:
    for child in root:
        if _local(child.tag) == META:
            return {_local(e.tag): (e.text or "").strip() for e in child}
    return {}


def _uuid(value: str | None, what: str) -> uuid.UUID | None:
    if not value:
        return None
    text = value.removeprefix("uuid:").strip()
    try:
        return uuid.UUID(text)
    except ValueError:
        raise InstanceError(what, f"meta {what} {value!r} is not a UUID") from None


def _group(
    element: Element, nodes: list[Mapping[str, Any]], files: dict[str, str]
) -> dict[str, Any]:
    """The answers of the questions in ``nodes`` found under ``element`` (groups flattened)."""
    by_name: dict[str, list[Element]] = {}
    for child in element:
        tag = child.tag  # _local(tag), inline: this loop visits every element
        by_name.setdefault(tag[tag.rfind("}") + 1 :], []).append(child)
    answers: dict[str, Any] = {}
    for node in nodes:
        found = by_name.get(node["name"], [])
        if node["kind"] == "group":
            for holder in found[:1]:
                answers.update(_group(holder, node.get("children", []), files))
        elif node["kind"] == "repeat":
            entries = [_group(e, node.get("children", []), files) for e in found]
            # ODK Collect may send a template entry with nothing in it: not an answer.
            entries = [e for e in entries if e]
            if entries:
                answers[node["name"]] = entries
        elif found and node["type"] not in _NOT_ANSWERS:
            value = _value(node, (found[0].text or "").strip())
            if value is not None:
                answers[node["name"]] = value
    return answers


def _value(node: Mapping[str, Any], text: str) -> Any:
    if text == "":
        return None
    if node["type"] == "select_multiple":
        return text.split()
    return text


def _texts_of(root: Element, names: set[str]) -> dict[str, str]:
    """The text of the first element called each of ``names`` anywhere in the instance
    that has some (one walk for all the names)."""
    texts: dict[str, str] = {}
    if not names:
        return texts
    for element in root.iter():
        tag = element.tag
        name = tag[tag.rfind("}") + 1 :]
        if name in names and name not in texts:
            text = (element.text or "").strip()
            if text:
                texts[name] = text
    return texts


def _datetime(text: str) -> dt.datetime | None:
    if not text:
        return None
    try:
        value = dt.datetime.fromisoformat(text)
    except ValueError:
        return None
    return value if value.tzinfo is not None else None
