"""OpenRosa submissions of the instrument from 16 concurrent clients under gunicorn, beside a bare Django view inserting the same interview into PostgreSQL.

Each client POSTs one interview a request to /odk/<device key>/submission as ODK Collect
does: multipart/form-data with one xml_submission_file part, the XForm's own instance
filled in. The server reads the XML, finds the assignment, validates the answers and
stores the interview through the same path as a tablet sync. The baseline is the tablet
benchmark's bare view (/bench/bare/: parse the body, insert it), in the same run. ODK
Central publishes about 41 submissions/s for a 250-question form on a small server; the
goal here is at least 10x that.
"""

from __future__ import annotations

import copy
import json
import uuid
from xml.etree import ElementTree as ET

from bench.bench_tablet_http import (
    CLIENTS,
    SECONDS,
    WORKERS,
    _load,
    _p,
    _wait_up,
    start_gunicorn,
    stop_and_clean,
)

BOUNDARY = "tanysbenchboundary"
XFORMS = "{http://www.w3.org/2002/xforms}"
XHTML = "{http://www.w3.org/1999/xhtml}"


def _template(xform: bytes) -> ET.Element:
    model = ET.fromstring(xform).find(f"{XHTML}head/{XFORMS}model")
    assert model is not None
    return model.find(f"{XFORMS}instance")[0]  # type: ignore[index]


# The instance id the prepared bodies carry, replaced by a new one in every request.
PLACEHOLDER = uuid.UUID(int=0)


def _instance(template: ET.Element, answers: dict, instance_id: uuid.UUID | None = None) -> bytes:
    root = copy.deepcopy(template)
    for element in root.iter():
        name = element.tag.rsplit("}", 1)[-1]
        if name in answers:
            value = answers[name]
            element.text = " ".join(map(str, value)) if isinstance(value, list) else str(value)
        elif name == "instanceID":
            element.text = f"uuid:{instance_id or uuid.uuid4()}"
    return ET.tostring(root, encoding="utf-8", xml_declaration=True)


def _multipart(xml: bytes) -> bytes:
    return (
        (
            f'--{BOUNDARY}\r\nContent-Disposition: form-data; name="xml_submission_file"; '
            'filename="submission.xml"\r\nContent-Type: text/xml\r\n\r\n'
        ).encode()
        + xml
        + f"\r\n--{BOUNDARY}--\r\n".encode()
    )


def _created(status: int, data: bytes) -> bool:
    return status == 201 and b"OpenRosaResponse" in data


def run() -> list[str]:
    from django.db import connection

    from bench.bench_sync import fieldwork, interviews
    from odk.services import create_odk_device
    from odk.xforms import xform_for

    wave, assignment, _ = fieldwork()
    _, token = create_odk_device(enumerator=assignment.enumerator, actor=None, label="bench-odk")
    template = _template(bytes(xform_for(assignment.form_version).xml))
    answers = [item["answers"] for item in interviews(200, assignment, seed=31)]
    counter = iter(range(10**9))

    # The 200 bodies are made once: building an instance's XML costs the client about a
    # millisecond, taken from the two cores the server runs on.
    prepared = [_multipart(_instance(template, a, PLACEHOLDER)) for a in answers]
    marker = str(PLACEHOLDER).encode()

    def odk_body() -> bytes:
        body = prepared[next(counter) % len(prepared)]
        return body.replace(marker, str(uuid.uuid4()).encode())

    def bare_body() -> str:
        return json.dumps({"answers": answers[next(counter) % len(answers)]})

    with connection.cursor() as cursor:
        cursor.execute(
            "CREATE TABLE IF NOT EXISTS bench_bare (id bigserial PRIMARY KEY, body jsonb)"
        )
    server, port, queue, broker = start_gunicorn()
    odk_headers = {
        "Content-Type": f"multipart/form-data; boundary={BOUNDARY}",
        "X-OpenRosa-Version": "1.0",
    }
    bare_headers = {"Content-Type": "application/json"}
    path = f"/odk/{token}/submission"
    lines: list[str] = []
    try:
        _wait_up(port)
        _load(port, path, odk_body, odk_headers, 2, ok=_created)  # warm-up
        _load(port, "/bench/bare/", bare_body, bare_headers, 2)
        rate, lat, errors = _load(port, path, odk_body, odk_headers, SECONDS, ok=_created)
        bare_rate, bare_lat, bare_errors = _load(
            port, "/bench/bare/", bare_body, bare_headers, SECONDS
        )
        lines = [
            f"gunicorn, {WORKERS} sync workers, {CLIENTS} concurrent clients, {SECONDS:.0f} s each",
            f"OpenRosa submission, one interview a request: {rate:,.0f} submissions/s, "
            f"p50 {_p(lat, 50) * 1000:.0f} ms, p99 {_p(lat, 99) * 1000:.0f} ms, errors {errors}",
            f"bare Django view inserting an interview's JSON: {bare_rate:,.0f} requests/s, "
            f"p50 {_p(bare_lat, 50) * 1000:.0f} ms, p99 {_p(bare_lat, 99) * 1000:.0f} ms, "
            f"errors {bare_errors}",
            f"ratio {rate / bare_rate:.2f} of the bare view; {rate / 41:.1f}x ODK Central's "
            "published 41 submissions/s (goal >= 10x)",
        ]
    finally:
        stop_and_clean(server, wave, queue, broker)
    return lines
