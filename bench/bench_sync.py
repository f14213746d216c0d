"""Tablet batch sync: 10,000 instrument interviews through the sync service with full validation, beside PostgreSQL COPY of the same rows.

The interviews are SYNTHETIC answers to the real instrument (drawn by `surveys.demo`),
sent in batches of the API's size limit to `collect.sync.sync_interviews`, which
reads the batch's assignments, versions and stored ids in a few queries, validates each
interview in full against the questionnaire (one generated function per version,
`surveys.validation_source`) and inserts the stored ones with their paradata in one
statement (`collect.bulk_insert.insert_linked_rows`). The baseline COPYs the
same rows (answers as stored) into a scratch copy of the submissions table in the same
run. Everything written is removed at the end. Goal: >= 5,000 interviews/s.
"""

from __future__ import annotations

import datetime as dt
import json
import os
import time
import uuid

N = int(os.environ.get("BENCH_SYNC_N", "10000"))
WAVE_CODE = "BENCH-TABLET"


def fieldwork():
    """A wave of the instrument with an enumerator, a device and an unlimited assignment."""
    from django.contrib.auth.models import Group, Permission, User

    from access.services import grant_role
    from collect.models import Assignment
    from collect.services import create_assignment, enrol_device
    from surveys.management.commands.setup_demo import INSTRUMENT
    from surveys.models import Region
    from surveys.roles import ensure_roles
    from surveys.services import import_xlsform, open_wave

    ensure_roles(Group, Permission)
    version, _ = import_xlsform(
        survey_code="informal-networks",
        content=INSTRUMENT.read_bytes(),
        filename=INSTRUMENT.name,
        survey_title="Informal networks in Kazakhstan",
    )
    wave = open_wave(
        survey=version.survey, code=WAVE_CODE, geography="KZ2022", form_version=version,
        is_synthetic=True, title="Tablet sync benchmark (synthetic)",
    )  # fmt: skip
    user, created = User.objects.get_or_create(username="bench-enumerator")
    user.groups.add(Group.objects.get(name="enumerator"))
    user = User.objects.get(pk=user.pk)
    supervisor, _ = User.objects.get_or_create(username="bench-supervisor")
    supervisor.groups.add(Group.objects.get(name="supervisor"))
    region = Region.objects.get(geography="KZ2022", code="KZ-75")
    grant_role(user=user, role="enumerator", survey=version.survey)
    grant_role(user=supervisor, role="supervisor", survey=version.survey, regions=[region])
    user = User.objects.get(pk=user.pk)
    assignment = Assignment.objects.filter(enumerator=user, wave=wave).first() or create_assignment(
        enumerator=user, wave=wave, region=Region.objects.get(geography="KZ2022", code="KZ-75"),
        settlement="Алматы", psu="BENCH-PSU", created_by=supervisor,
    )  # fmt: skip
    device, _ = enrol_device(enumerator=user, via="password", label="bench")
    return wave, assignment, device


def interviews(n: int, assignment, seed: int = 11) -> list[dict]:
    from surveys.demo import RATES_CURRENT, answers_json, draw_interviews

    cols = draw_interviews(
        n=n, geography="KZ2022", rates=RATES_CURRENT, fieldwork_year=2026, seed=seed
    )
    start = dt.datetime(2026, 5, 4, 10, 0, tzinfo=dt.UTC)
    items = []
    for i, text in enumerate(answers_json(cols, slice(0, n))):
        began = start + dt.timedelta(minutes=i)
        items.append({
            "instance_id": str(uuid.uuid4()), "form_version": assignment.form_version_id,
            "assignment": assignment.pk, "answers": json.loads(text), "language": "ru",
            "paradata": {"started_at": began.isoformat(),
                         "ended_at": (began + dt.timedelta(minutes=35)).isoformat(),
                         "pages": {str(p): 60.0 for p in range(1, 21)}, "app_version": "1"},
        })  # fmt: skip
    return items


def copy_baseline(ids: list[int]) -> float:
    """COPY the stored rows (as text) into a scratch table shaped like the submissions table."""
    from django.db import connection, transaction

    from surveys.models import Submission

    table = Submission._meta.db_table
    connection.ensure_connection()
    raw = connection.connection
    query = f"COPY (SELECT * FROM {table} WHERE id = ANY(%s)) TO STDOUT"
    with raw.cursor() as cur, cur.copy(query, [ids]) as out:
        payload = b"".join(bytes(chunk) for chunk in out)
    with transaction.atomic(), connection.cursor() as cursor:
        cursor.execute(
            f"CREATE TEMP TABLE bench_copy (LIKE {table} INCLUDING DEFAULTS) ON COMMIT DROP"
        )
        started = time.perf_counter()
        with cursor.cursor.copy("COPY bench_copy FROM STDIN") as copy:
            copy.write(payload)
        return time.perf_counter() - started


def run() -> list[str]:
    from django.db import connection

    from collect.models import TabletInterview
    from collect.sync import sync_interviews, sync_limit
    from config.celery import app
    from surveys.models import Submission

    # Recomputations are queued, as in production, on a queue no worker reads.
    app.conf.update(
        broker_url=os.environ.get("CELERY_BROKER_URL") or "redis://127.0.0.1:6379/13",
        task_always_eager=False,
        task_default_queue=f"tanys-bench-{uuid.uuid4().hex[:8]}",
    )
    wave, assignment, device = fieldwork()
    items = interviews(N, assignment)
    size = sync_limit()
    # Warm up (imports, query plans) on a few interviews that are then removed.
    sync_interviews(device=device, items=interviews(20, assignment, seed=1))
    started, cpu_started = time.perf_counter(), time.process_time()
    statuses: dict[str, int] = {}
    for offset in range(0, N, size):
        for result in sync_interviews(device=device, items=items[offset : offset + size]):
            statuses[result["status"]] = statuses.get(result["status"], 0) + 1
    elapsed = time.perf_counter() - started
    # This process's CPU time (the database server's is not in it): on a shared machine a
    # steadier figure than the wall clock.
    cpu = time.process_time() - cpu_started
    ids = list(Submission.objects.filter(wave=wave).values_list("pk", flat=True))
    copy_seconds = copy_baseline(ids)
    lines = [
        f"{N} instrument interviews in batches of {size}: {elapsed:.1f} s, "
        f"{N / elapsed:,.0f} interviews/s with validation (goal >= 5,000/s); statuses {statuses}",
        f"process CPU {cpu / N * 1e6:,.0f} µs per interview ({cpu:.1f} s)",
        f"PostgreSQL COPY of the same {len(ids)} rows: {copy_seconds:.2f} s, "
        f"{len(ids) / copy_seconds:,.0f} rows/s; sync at {copy_seconds / elapsed:.1%} of COPY's rate",
    ]
    TabletInterview.objects.filter(submission__wave=wave).delete()
    with connection.cursor() as cursor:
        cursor.execute(f"DELETE FROM {Submission._meta.db_table} WHERE wave_id = %s", [wave.pk])
    return lines
