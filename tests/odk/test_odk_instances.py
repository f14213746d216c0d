"""ODK instances become the same answers the other channels send; the XForm is stable."""

from __future__ import annotations

import uuid
from xml.etree import ElementTree as ET

import pytest

from odk.instances import InstanceError, parse_instance, read_header
from odk.xforms import xform_for
from surveys.validation import validate_answers
from tests.odk.openrosa_client import fill, primary_instance, translations
from tests.surveys.webform_fixtures import complete_answers, instrument_version

pytestmark = pytest.mark.django_db


def test_the_xform_carries_the_version_instance_id_and_three_languages():
    version = instrument_version()
    xml = xform_for(version).xml
    root = primary_instance(bytes(xml))
    assert (root.get("id"), root.get("version")) == ("informal_networks", version.version)
    assert any(e.tag.endswith("instanceID") for e in root.iter())
    assert translations(bytes(xml)) == ["Қазақша (kk)", "Русский (ru)", "English (en)"]


def test_the_xform_is_the_same_bytes_on_every_request():
    version = instrument_version()
    first = xform_for(version)
    again = xform_for(version)
    assert (bytes(first.xml), first.md5) == (bytes(again.xml), again.md5)
    assert first.pk == again.pk


def test_a_filled_instance_reads_back_as_the_web_forms_answers():
    version = instrument_version()
    xml = bytes(xform_for(version).xml)
    answers = complete_answers(M=["1", "3"])
    instance_id = uuid.uuid4()
    parsed = parse_instance(fill(xml, answers, instance_id=instance_id), version.definition)
    assert parsed.instance_id == instance_id and parsed.deprecated_id is None
    assert (parsed.form_id, parsed.version) == ("informal_networks", version.version)
    assert parsed.answers["M"] == ["1", "3"]
    assert parsed.answers["REGION"] == "KZ-75"
    # Validated like any channel's answers, they are the stored interview.
    # The same interview: an arm neither recorded is drawn from its instance id on both.
    same = {"language": "kk", "instance_id": str(instance_id)}
    from_odk = validate_answers(version.definition, parsed.answers, **same).answers
    from_web = validate_answers(version.definition, answers, **same).answers
    assert from_odk == from_web


def test_an_edit_names_the_interview_it_replaces():
    version = instrument_version()
    xml = bytes(xform_for(version).xml)
    old, new = uuid.uuid4(), uuid.uuid4()
    parsed = parse_instance(
        fill(xml, complete_answers(), instance_id=new, deprecated_id=old), version.definition
    )
    assert (parsed.instance_id, parsed.deprecated_id) == (new, old)


def test_metadata_questions_give_start_end_and_device():
    xml = b"""<data id="f" version="1"><start>2026-11-02T10:00:00.000+05:00</start>
    <end>2026-11-02T10:20:30.000+05:00</end><deviceid>collect:abc</deviceid>
    <q1>2</q1><meta><instanceID>uuid:9f1c1c43-8cbb-4f39-b1c1-2c0d1f0f4f10</instanceID></meta>
    </data>"""
    definition = {"children": [{"kind": "question", "type": "integer", "name": "q1"}]}
    parsed = parse_instance(
        xml, definition, {"start": "start", "end": "end", "deviceid": "deviceid"}
    )
    assert parsed.answers == {"q1": "2"}
    assert (parsed.ended_at - parsed.started_at).total_seconds() == 1230
    assert parsed.device_id == "collect:abc"


def test_groups_repeats_and_blank_questions():
    definition = {
        "children": [
            {
                "kind": "group",
                "type": "group",
                "name": "g",
                "children": [{"kind": "question", "type": "text", "name": "a"}],
            },
            {
                "kind": "repeat",
                "type": "repeat",
                "name": "hh",
                "children": [{"kind": "question", "type": "integer", "name": "age"}],
            },
            {"kind": "question", "type": "text", "name": "blank"},
        ]
    }
    xml = (
        b'<data id="f"><g><a>x</a></g><hh><age>30</age></hh><hh><age>4</age></hh>'
        b"<blank/><meta><instanceID>uuid:"
        + str(uuid.uuid4()).encode()
        + b"</instanceID></meta></data>"
    )
    parsed = parse_instance(xml, definition)
    assert parsed.answers == {"a": "x", "hh": [{"age": "30"}, {"age": "4"}]}


@pytest.mark.parametrize(
    ("xml", "code"),
    [
        (b"<data id='f'><meta/></data>", "no_instance_id"),
        (b"<data id='f'><meta><instanceID>uuid:nope</instanceID></meta></data>", "instance_id"),
        (b"<data", "xml_invalid"),
        (
            b'<?xml version="1.0"?><!DOCTYPE d [<!ENTITY a "aaaa">]><data id="f">&a;</data>',
            "xml_forbidden",
        ),
        (b'<!DOCTYPE data SYSTEM "http://127.0.0.1:9/x.dtd"><data id="f"/>', "xml_forbidden"),
        (b"<data id='f'>&undeclared;</data>", "xml_invalid"),
    ],
)
def test_unreadable_instances_are_refused_with_a_reason(xml, code):
    with pytest.raises(InstanceError) as caught:
        parse_instance(xml, {"children": []})
    assert caught.value.code == code


def test_the_header_names_form_and_version():
    assert read_header(b'<data id="informal_networks" version="2026.1"/>') == (
        "informal_networks",
        "2026.1",
    )
    with pytest.raises(InstanceError):
        read_header(b"<data/>")


def test_the_client_template_is_well_formed():
    version = instrument_version()
    ET.fromstring(fill(bytes(xform_for(version).xml), {}, instance_id=uuid.uuid4()))
