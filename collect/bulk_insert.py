"""Many new rows in one go: PostgreSQL COPY, with the ids drawn from the table's sequence
first (COPY returns nothing), or `bulk_create` for a few rows and on other databases.

A batch of interviews is a few hundred rows of a few kilobytes of JSON each; COPY sends
them as one stream that the server parses in bulk, where a multi-row INSERT has every
value quoted into the statement's text by the client first.
"""

from __future__ import annotations

from collections.abc import Sequence

from django.db import connection, models

# Below this many rows one INSERT costs less than drawing the ids and opening a COPY.
COPY_FROM = 20


def insert_new(model: type[models.Model], objects: Sequence[models.Model]) -> None:
    """Insert ``objects`` (not saved yet) and give each its primary key. Constraints hold
    as for any insert: a unique value already stored raises IntegrityError."""
    if not objects:
        return
    if connection.vendor != "postgresql" or len(objects) < COPY_FROM:
        model._default_manager.bulk_create(objects)
        return
    meta = model._meta
    pk = meta.pk
    assert pk is not None
    for obj in objects:  # related objects saved just before: take their ids
        obj._prepare_related_fields_for_save(operation_name="insert_new")  # type: ignore[attr-defined]
    if isinstance(pk, models.AutoField | models.BigAutoField):
        with connection.cursor() as cursor:
            cursor.execute(
                "SELECT nextval(pg_get_serial_sequence(%s, %s)) FROM generate_series(1, %s)",
                [meta.db_table, pk.column, len(objects)],
            )
            for obj, (value,) in zip(objects, cursor.fetchall(), strict=True):
                setattr(obj, pk.attname, value)
    fields = meta.concrete_fields
    columns = ", ".join(connection.ops.quote_name(str(f.column)) for f in fields)
    statement = f"COPY {connection.ops.quote_name(meta.db_table)} ({columns}) FROM STDIN"
    # Errors of the driver become Django's (a unique value stored: IntegrityError).
    with (
        connection.cursor() as cursor,
        connection.wrap_database_errors,
        cursor.cursor.copy(statement) as copy,
    ):
        for obj in objects:
            copy.write_row(
                [f.get_db_prep_save(f.pre_save(obj, add=True), connection) for f in fields]
            )
    for obj in objects:
        obj._state.adding = False
        obj._state.db = connection.alias
