"""One interview per request: a tablet sending one interview, an OpenRosa submission.

A batch (`collect.sync.sync_interviews`) reads its assignments, versions and stored ids in a
few queries and inserts in one transaction; sent one at a time, those fixed costs were the
whole request (nine queries, most of the time spent compiling them). Here one query finds
the device and its enumerator, the interview's assignment with its wave, region and the
survey's GPS setting, its form version's cache key, and whatever is stored under its
instance id; the interview is checked by the very function a batch uses for each item
(`collect.sync._sync_one`: the same results, messages and refusals); and the interview and
its paradata are written by one statement, which commits on its own:
``INSERT ... ON CONFLICT (instance_id) DO NOTHING`` feeding the paradata's insert. When
another request stored the same instance id in between, nothing is written and the
interview is answered from what is stored, as a batch does when its insert fails.

Interviews that lock rows in a transaction (an assignment with a quota, whose count is
taken under its row lock, and a correction, which locks the interview it replaces) go
through the batch path, as does every interview on databases other than PostgreSQL.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from functools import cache, partial
from typing import Any

from django.contrib.auth import get_user_model
from django.db import connection, transaction

from collect.models import UNLIMITED, Assignment, CollectSettings, Device, TabletInterview
from collect.selectors import form_versions
from collect.sync import (
    _Batch,
    _Known,
    _Languages,
    _stored_interviews,
    _sync_one,
    interviews_stored,
)
from collect.sync import sync_interviews as sync_batch
from config import rows
from surveys.models import FormVersion, Region, Submission, Wave

VersionKey = tuple[int, str, Any]


def available() -> bool:
    """Whether the one-statement path applies (PostgreSQL: data-modifying WITH queries)."""
    return connection.vendor == "postgresql"


def as_id(value: Any) -> int | None:
    """An id the client sent, as a batch reads it: an int, never a bool, else none."""
    return value if isinstance(value, int) and not isinstance(value, bool) else None


def as_instance(value: Any) -> uuid.UUID | None:
    try:
        return uuid.UUID(str(value))
    except ValueError:
        return None


def _instance_param(instance: uuid.UUID | None) -> Any:
    """The instance id as the database takes it (SQLite keeps UUIDs as hex text)."""
    field = Submission._meta.get_field("instance_id")
    return field.get_db_prep_value(instance, connection) if instance is not None else None  # type: ignore[union-attr]


@dataclass
class Found:
    """What the lookup found for one interview."""

    assignment: Assignment | None
    version_key: VersionKey | None
    record_gps: bool
    known: _Known | None


# --------------------------------------------------------------------------- lookups


@cache
def _tablet_sql() -> str:
    user = get_user_model()
    c = rows.column
    return (
        f"SELECT {rows.select_list(Device, 'd')}, {rows.select_list(user, 'u')}, "
        f"{_assignment_columns()}, "
        f"{c(FormVersion, 'id', 'fv')}, {c(FormVersion, 'xlsform_sha256', 'fv')}, "
        f"{c(FormVersion, 'created_at', 'fv')}, {_known_columns()} "
        f"FROM {rows.table(Device)} d "
        f"JOIN {rows.table(user)} u ON {c(user, 'id', 'u')} = {c(Device, 'enumerator', 'd')} "
        f"LEFT JOIN {rows.table(Assignment)} a ON {c(Assignment, 'id', 'a')} = %s "
        f"{_assignment_joins()} "
        f"LEFT JOIN {rows.table(FormVersion)} fv ON {c(FormVersion, 'id', 'fv')} = %s "
        f"{_known_joins()} "
        f"WHERE {c(Device, 'token_prefix', 'd')} = %s"
    )


def _assignment_columns() -> str:
    return (
        f"{rows.select_list(Assignment, 'a')}, {rows.select_list(Wave, 'w')}, "
        f"{rows.select_list(Region, 'r')}, {rows.column(CollectSettings, 'record_gps', 'cs')}"
    )


def _assignment_joins() -> str:
    c = rows.column
    return (
        f"LEFT JOIN {rows.table(Wave)} w ON {c(Wave, 'id', 'w')} = {c(Assignment, 'wave', 'a')} "
        f"LEFT JOIN {rows.table(Region)} r "
        f"ON {c(Region, 'id', 'r')} = {c(Assignment, 'region', 'a')} "
        f"LEFT JOIN {rows.table(CollectSettings)} cs "
        f"ON {c(CollectSettings, 'survey', 'cs')} = {c(Wave, 'survey', 'w')}"
    )


_KNOWN_WIDTH = 5  # the columns of `_known_columns`


def _known_columns() -> str:
    c = rows.column
    return (
        f"{c(Submission, 'id', 'sub')}, {c(Submission, 'enumerator', 'sub')}, "
        f"{c(Submission, 'wave', 'sub')}, {c(Submission, 'answers', 'sub')}, "
        f"{c(TabletInterview, 'over_quota', 'ti')}"
    )


def _known_joins() -> str:
    c = rows.column
    return (
        f"LEFT JOIN {rows.table(Submission)} sub ON {c(Submission, 'instance_id', 'sub')} = %s "
        f"LEFT JOIN {rows.table(TabletInterview)} ti "
        f"ON {c(TabletInterview, 'submission', 'ti')} = {c(Submission, 'id', 'sub')}"
    )


def _read_assignment(values: list[Any]) -> tuple[Assignment | None, bool]:
    """The assignment (wave and region attached) and its survey's GPS setting, from the
    columns of `_assignment_columns`."""
    n_a, n_w, n_r = rows.width(Assignment), rows.width(Wave), rows.width(Region)
    assignment = rows.build(Assignment, values[:n_a])
    if assignment is None:
        return None, False
    wave = rows.build(Wave, values[n_a : n_a + n_w])
    region = rows.build(Region, values[n_a + n_w : n_a + n_w + n_r])
    assignment.wave = wave  # type: ignore[assignment]
    assignment.region = region  # type: ignore[assignment]
    return assignment, bool(values[n_a + n_w + n_r])


def _assignment_width() -> int:
    return rows.width(Assignment) + rows.width(Wave) + rows.width(Region) + 1


def _version_key(version_id: int, sha256: str, created_at: Any) -> VersionKey:
    """The key `collect.selectors.form_versions` caches a version under, from its columns
    (the time as the ORM reads it: SQLite keeps it as text)."""
    return (version_id, sha256, rows.convert(FormVersion, "created_at", created_at))


def _read_known(values: list[Any]) -> _Known | None:
    submission_id, enumerator_id, wave_id, answers, over_quota = values
    if submission_id is None:
        return None
    return _Known(enumerator_id, wave_id, rows.convert(Submission, "answers", answers), over_quota)


def find_for_tablet(*, token_prefix: str, item: dict[str, Any]) -> tuple[Device | None, Found]:
    """The device of the token prefix (its enumerator attached) and what `store` needs for
    ``item``, in one query. The caller checks the token and the device's state."""
    instance = as_instance(item.get("instance_id"))
    params = [
        as_id(item.get("assignment")),
        as_id(item.get("form_version")),
        _instance_param(instance),
    ]
    with rows.cursor() as cursor:
        cursor.execute(_tablet_sql(), [*params, token_prefix])
        row = cursor.fetchone()
    if row is None:
        return None, Found(None, None, False, None)
    values = list(row)
    user = get_user_model()
    n_d, n_u = rows.width(Device), rows.width(user)
    device = rows.build(Device, values[:n_d])
    enumerator = rows.build(user, values[n_d : n_d + n_u])
    assert device is not None and enumerator is not None
    device.enumerator = enumerator
    values = values[n_d + n_u :]
    assignment, record_gps = _read_assignment(values[: _assignment_width()])
    if assignment is not None and assignment.enumerator_id == enumerator.pk:
        assignment.enumerator = enumerator
    version_id, sha256, created_at = values[_assignment_width() : _assignment_width() + 3]
    key = _version_key(version_id, sha256, created_at) if version_id is not None else None
    known = _read_known(values[_assignment_width() + 3 :])
    return device, Found(assignment, key, record_gps, known)


def _form_select(enumerator: str, *, order: str) -> str:
    """The form version an instance names and the work of the enumerator ``enumerator`` (an
    SQL expression) in its survey, a row per assignment; ``order`` names the sort columns
    (`_form_order`) or leaves them out."""
    c = rows.column
    return (
        f"SELECT {c(FormVersion, 'id', 'fv')}, {c(FormVersion, 'xlsform_sha256', 'fv')}, "
        f"{c(FormVersion, 'created_at', 'fv')}, {_assignment_columns()}, {_known_columns()}"
        f"{order} "
        f"FROM {rows.table(FormVersion)} fv "
        f"JOIN {rows.table(Assignment)} a ON {c(Assignment, 'enumerator', 'a')} = {enumerator} "
        f"{_assignment_joins()} {_known_joins()} "
        f"WHERE {c(FormVersion, 'form_id', 'fv')} = %s AND {c(FormVersion, 'version', 'fv')} = %s "
        f"AND {c(Wave, 'survey', 'w')} = {c(FormVersion, 'survey', 'fv')}"
    )


def _form_order() -> list[tuple[str, str]]:
    """The order of `odk.services`: versions as FormVersion orders them, then open waves
    first, then the oldest assignment (column, direction)."""
    c = rows.column
    return [
        (c(FormVersion, "survey", "fv"), ""),
        (c(FormVersion, "created_at", "fv"), " DESC"),
        (c(Wave, "is_open", "w"), " DESC"),
        (c(Assignment, "id", "a"), ""),
    ]


@cache
def _form_sql() -> str:
    order = ", ".join(f"{column}{direction}" for column, direction in _form_order())
    return f"{_form_select('%s', order='')} ORDER BY {order}"


@cache
def _submission_sql() -> str:
    """`_form_sql` for the enumerator of the device of a token prefix, with that device and
    enumerator: one row with nulls after them when the form or the work is not found."""
    user = get_user_model()
    c = rows.column
    order = _form_order()
    named = "".join(f", {column} AS o{i}" for i, (column, _) in enumerate(order))
    return (
        f"SELECT {rows.select_list(Device, 'd')}, {rows.select_list(user, 'u')}, f.* "
        f"FROM {rows.table(Device)} d "
        f"JOIN {rows.table(user)} u ON {c(user, 'id', 'u')} = {c(Device, 'enumerator', 'd')} "
        f"LEFT JOIN LATERAL ({_form_select(c(Device, 'enumerator', 'd'), order=named)}) f ON TRUE "
        f"WHERE {c(Device, 'token_prefix', 'd')} = %s "
        f"ORDER BY {', '.join(f'f.o{i}{direction}' for i, (_, direction) in enumerate(order))}"
    )


Work = list[tuple[Assignment, bool]]


def _read_form(found: list[Any], enumerator: Any) -> tuple[VersionKey | None, Work, _Known | None]:
    """The version key, the work and the stored instance from the rows of `_form_select`
    (any columns after them ignored)."""
    if not found or found[0][0] is None:
        return None, [], None
    first = found[0][:3]
    known_at = 3 + _assignment_width()
    known = _read_known(list(found[0][known_at : known_at + _KNOWN_WIDTH]))
    work = []
    for row in found:
        if tuple(row[:3]) != tuple(first):
            break
        assignment, record_gps = _read_assignment(list(row[3:known_at]))
        assert assignment is not None
        if assignment.enumerator_id == enumerator.pk:
            assignment.enumerator = enumerator
        work.append((assignment, record_gps))
    return _version_key(*first), work, known


def find_for_form(
    *, enumerator: Any, form_id: str, version: str, instance: uuid.UUID | None
) -> tuple[VersionKey | None, Work, _Known | None]:
    """The form version an OpenRosa instance names (its cache key) when the enumerator has
    work in its survey, that work (assignments with wave and region, each with its survey's
    GPS setting), and what is stored under the instance id, in one query."""
    with rows.cursor() as cursor:
        cursor.execute(_form_sql(), [enumerator.pk, _instance_param(instance), form_id, version])
        found = cursor.fetchall()
    return _read_form(found, enumerator)


def find_for_submission(
    *, token_prefix: str, form_id: str, version: str, instance: uuid.UUID | None
) -> tuple[Device | None, tuple[VersionKey | None, Work, _Known | None]]:
    """The device of the token prefix (its enumerator attached) and what `find_for_form`
    finds for its enumerator, in one query. The caller checks the token and the device's
    state before using the rest."""
    with rows.cursor() as cursor:
        cursor.execute(
            _submission_sql(), [_instance_param(instance), form_id, version, token_prefix]
        )
        found = cursor.fetchall()
    if not found:
        return None, (None, [], None)
    user = get_user_model()
    n_d, n_u = rows.width(Device), rows.width(user)
    device = rows.build(Device, found[0][:n_d])
    enumerator = rows.build(user, found[0][n_d : n_d + n_u])
    assert device is not None and enumerator is not None
    device.enumerator = enumerator
    return device, _read_form([row[n_d + n_u :] for row in found], enumerator)


# --------------------------------------------------------------------------- storing


def store(*, device: Device, item: dict[str, Any], found: Found, channel: str) -> dict[str, Any]:
    """Check and store one interview; its result, as in a batch."""
    assignment = found.assignment
    locks_rows = assignment is not None and (
        assignment.quota != UNLIMITED or item.get("replaces") not in (None, "")
    )
    if locks_rows or not available():
        return sync_batch(device=device, items=[item], channel=channel)[0]
    version_id = as_id(item.get("form_version"))
    versions = (
        form_versions([version_id], known={version_id: found.version_key})
        if version_id is not None and found.version_key is not None
        else {}
    )
    instance = as_instance(item.get("instance_id"))
    known = found.known
    for _attempt in (1, 2):
        batch = _Batch(existing={instance: known} if instance and known else {})
        languages = _Languages()
        try:
            result = _sync_one(
                item,
                instance,
                device=device,
                enumerator=device.enumerator,
                assignments={assignment.pk: assignment} if assignment is not None else {},
                versions=versions,
                gps_surveys=(
                    {assignment.wave.survey_id} if assignment and found.record_gps else set()
                ),
                batch=batch,
                channel=channel,
                languages=languages,
            )
        finally:
            languages.restore()
        if not batch.pending:
            return result
        ((submission_fields, tablet_fields),) = batch.pending
        tablet = TabletInterview(submission=Submission(**submission_fields), **tablet_fields)
        if _insert(tablet):
            transaction.on_commit(partial(interviews_stored, wave_ids={tablet.submission.wave_id}))
            return result
        # Another request stored this instance id since it was looked up: answer from it.
        assert instance is not None
        known = _stored_interviews([instance]).get(instance)
    raise AssertionError("an instance id stored and then gone")


@cache
def _insert_sql() -> str:
    submission_fields = _fields(Submission)
    tablet_fields = _fields(TabletInterview)
    marks = ", ".join(["%s"] * len(submission_fields))
    pk = rows.column_name(Submission, "id")
    link = rows.column_name(TabletInterview, "submission")
    return (
        f"WITH s AS (INSERT INTO {rows.table(Submission)} "
        f"({', '.join(rows.column_name(Submission, f.name) for f in submission_fields)}) "
        f"VALUES ({marks}) "
        f"ON CONFLICT ({rows.column_name(Submission, 'instance_id')}) DO NOTHING "
        f"RETURNING {pk}) "
        f"INSERT INTO {rows.table(TabletInterview)} "
        f"({link}, {', '.join(rows.column_name(TabletInterview, f.name) for f in tablet_fields)}) "
        f"SELECT s.{pk}, {', '.join(['%s'] * len(tablet_fields))} FROM s RETURNING {link}"
    )


@cache
def _fields(model: type[Any]) -> list[Any]:
    """The columns an insert gives values to: all but the primary key."""
    return [f for f in model._meta.concrete_fields if not f.primary_key]


def _insert(tablet: TabletInterview) -> bool:
    """Insert the interview and its paradata in one statement; False (nothing written)
    when its instance id is already stored."""
    submission = tablet.submission
    db = rows.database()
    values = [
        f.get_db_prep_save(f.pre_save(submission, add=True), db) for f in _fields(Submission)
    ] + [f.get_db_prep_save(f.pre_save(tablet, add=True), db) for f in _fields(TabletInterview)]
    with rows.cursor() as cursor:
        cursor.execute(_insert_sql(), values)
        row = cursor.fetchone()
    if row is None:
        return False
    submission.pk = row[0]
    for obj in (submission, tablet):
        obj._state.adding = False
        obj._state.db = connection.alias
    return True
