"""Many new rows in one go: PostgreSQL COPY, with the ids drawn from the table's sequence
first (COPY returns nothing), or `bulk_create` for a few rows and on other databases; and
new rows with a row each of a table that refers to them (`insert_linked_rows`) in one
statement.

A batch of interviews is a few hundred rows of a few kilobytes of JSON each; COPY sends
them as one stream that the server parses in bulk, where a multi-row INSERT has every
value quoted into the statement's text by the client first. The rows are given as the
fields' values (no model instances: building them costs more than the insert), and each
JSON value is written once, by orjson.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import orjson
import psycopg
from django.db import connection, models
from django.utils import timezone

# Below this many rows one INSERT costs less than drawing the ids and opening a COPY.
COPY_FROM = 20
_MISSING = object()


def json_text(value: Any) -> str | None:
    """A JSON field's value as the text PostgreSQL reads (None: SQL NULL)."""
    if value is None:
        return None
    try:
        return orjson.dumps(value).decode()
    except TypeError:  # integers beyond 64 bits: the standard library writes them
        return json.dumps(value)


def insert_rows(model: type[models.Model], rows: Sequence[Mapping[str, Any]]) -> list[Any]:
    """Insert new rows of ``model`` and return their primary keys, in order.

    A row maps field names to values as `model(**row)` takes them (a related object by
    the field's name, or its key by ``<name>_id``); a field left out takes its default, as a new instance would.
    Constraints hold as for any insert: a unique value already stored raises
    IntegrityError.
    """
    if not rows:
        return []
    if connection.vendor != "postgresql" or len(rows) < COPY_FROM:
        objects = [model(**row) for row in rows]
        model._default_manager.bulk_create(objects)
        return [obj.pk for obj in objects]
    meta = model._meta
    pk = meta.pk
    assert pk is not None
    ids: list[Any] = []
    if isinstance(pk, models.AutoField | models.BigAutoField):
        with connection.cursor() as cursor:
            cursor.execute(
                "SELECT nextval(pg_get_serial_sequence(%s, %s)) FROM generate_series(1, %s)",
                [meta.db_table, pk.column, len(rows)],
            )
            ids = [value for (value,) in cursor.fetchall()]
    columns_of = [_column(field, field is pk and bool(ids)) for field in meta.concrete_fields]
    columns = ", ".join(connection.ops.quote_name(str(f.column)) for f in meta.concrete_fields)
    statement = f"COPY {connection.ops.quote_name(meta.db_table)} ({columns}) FROM STDIN"
    # Errors of the driver become Django's (a unique value stored: IntegrityError).
    with (
        connection.cursor() as cursor,
        connection.wrap_database_errors,
        cursor.cursor.copy(statement) as copy,
    ):
        write = copy.write_row
        for index, row in enumerate(rows):
            write([column(row, index, ids) for column in columns_of])
    return ids or [row.get(pk.name, row.get(pk.attname)) for row in rows]


def _column(field: models.Field, drawn: bool) -> Callable[[Mapping[str, Any], int, list], Any]:
    """How one column's value is read from a row: the drawn id, the value as given (a
    related object's key), JSON as text, or the field's default."""
    name = field.name
    if drawn:
        return lambda row, index, ids: ids[index]
    if isinstance(field, models.DateTimeField) and (field.auto_now or field.auto_now_add):
        return lambda row, index, ids: timezone.now()
    if field.has_default() and callable(field.default):
        default = field.get_default
        missing: Callable[[], Any] = lambda: _db_value(field, default())  # noqa: E731
    else:  # a constant, or what Django gives a field without one ("" or None)
        constant = _db_value(field, field.get_default())
        missing = lambda: constant  # noqa: E731

    if field.is_relation:
        attname = field.attname

        def related(row: Mapping[str, Any], index: int, ids: list) -> Any:
            value = row.get(name, _MISSING)
            if value is not _MISSING:
                return None if value is None else value.pk
            value = row.get(attname, _MISSING)
            return missing() if value is _MISSING else value

        return related
    if isinstance(field, models.JSONField):

        def document(row: Mapping[str, Any], index: int, ids: list) -> Any:
            value = row.get(name, _MISSING)
            return missing() if value is _MISSING else json_text(value)

        return document

    def plain(row: Mapping[str, Any], index: int, ids: list) -> Any:
        value = row.get(name, _MISSING)
        return missing() if value is _MISSING else value

    return plain


def _db_value(field: models.Field, value: Any) -> Any:
    if isinstance(field, models.JSONField):
        return json_text(value)
    return value


def insert_linked_rows(
    model: type[models.Model],
    rows: Sequence[Mapping[str, Any]],
    *,
    linked: type[models.Model],
    linked_rows: Sequence[Mapping[str, Any]],
    link: str,
    key: str,
) -> None:
    """Insert new rows of ``model`` and, for each, the row of ``linked`` given at the same
    position, whose ``link`` field refers to it: on PostgreSQL in one statement and one
    round trip. Rows are given as for `insert_rows`, ``linked_rows`` without ``link``;
    ``key`` names a unique field of ``model`` that every row gives (it matches each new
    row with its linked one). Rows go in in the order given. Constraints hold as for any
    insert: a unique value already stored raises IntegrityError.

    Each column travels as one array in PostgreSQL's binary format (no quoting of the
    JSON values, no ids drawn first), or as one value when every row has the same, and
    the rows are read back from the arrays with ``unnest``.
    """
    if not rows:
        return
    assert len(rows) == len(linked_rows)
    if connection.vendor != "postgresql":
        ids = insert_rows(model, rows)
        insert_rows(
            linked,
            [{**row, f"{link}_id": pk} for row, pk in zip(linked_rows, ids, strict=True)],
        )
        return
    meta, linked_meta = model._meta, linked._meta
    pk = meta.pk
    assert pk is not None
    link_field = linked_meta.get_field(link)
    key_field = meta.get_field(key)
    assert isinstance(link_field, models.Field) and isinstance(key_field, models.Field)
    now = timezone.now()
    # The model's primary key, when the database draws it, is left to its default.
    fields = [
        f
        for f in meta.concrete_fields
        if not (f is pk and isinstance(f, models.AutoField | models.BigAutoField))
    ]
    others = [f for f in linked_meta.concrete_fields if f is not link_field]
    quote = connection.ops.quote_name
    key_values = _values(key_field, rows, now)
    items, arrays, names, own = _columns(fields, rows, now, "v", keep=key_field)
    linked_items, linked_arrays, linked_names, linked_params = _columns(
        others, linked_rows, now, "c"
    )
    statement = (
        f"WITH new AS (INSERT INTO {quote(meta.db_table)} "
        f"({', '.join(quote(str(f.column)) for f in fields)}) "
        f"SELECT {', '.join(items)} FROM unnest({', '.join(arrays)}) "
        f"WITH ORDINALITY AS r({', '.join(names)}, position) ORDER BY position "
        f"RETURNING {quote(str(pk.column))}, {quote(str(key_field.column))}) "
        f"INSERT INTO {quote(linked_meta.db_table)} ({quote(str(link_field.column))}, "
        f"{', '.join(quote(str(f.column)) for f in others)}) "
        f"SELECT new.{quote(str(pk.column))}, {', '.join(linked_items)} "
        f"FROM unnest({', '.join([f'%b::{_element_type(key_field)}[]', *linked_arrays])}) "
        f"AS l({', '.join(['k', *linked_names])}) "
        f"JOIN new ON new.{quote(str(key_field.column))} = l.k"
    )
    # Parameters in the order the statement names them.
    params = own[0] + own[1] + linked_params[0] + [key_values] + linked_params[1]
    connection.ensure_connection()
    # A cursor binding its parameters on the server: the arrays go as binary values.
    with connection.wrap_database_errors, psycopg.Cursor(connection.connection) as cursor:
        cursor.execute(statement, params)


def _element_type(field: models.Field) -> str:
    """The column's type without its length (``varchar(64)`` is ``varchar``): a cast to
    a length would cut a text too long, where the insert refuses it."""
    return _TYPE_LENGTH.sub("", str(field.db_type(connection)))


_TYPE_LENGTH = re.compile(r"\([0-9, ]*\)")


def _columns(
    fields: Sequence[models.Field],
    rows: Sequence[Mapping[str, Any]],
    now: Any,
    prefix: str,
    keep: models.Field | None = None,
) -> tuple[list[str], list[str], list[str], tuple[list[Any], list[Any]]]:
    """The select list over ``unnest`` for the rows: a column with one value for every row
    (the batch's wave, device, assignment, ...) as one parameter, any other as an array
    (``keep``: always an array). Returns the select items, the arrays, their names and
    the parameters (those of the select items, then the arrays')."""
    items: list[str] = []
    arrays: list[str] = []
    names: list[str] = []
    scalars: list[Any] = []
    columns: list[Any] = []
    for index, field in enumerate(fields):
        values = _values(field, rows, now)
        element = _element_type(field)
        if field is not keep and _one_value(values):
            items.append(f"%b::{element}")
            scalars.append(values[0])
        else:
            name = f"{prefix}{index}"
            items.append(name)
            names.append(name)
            arrays.append(f"%b::{element}[]")
            columns.append(values)
    return items, arrays, names, (scalars, columns)


def _one_value(values: list[Any]) -> bool:
    first = values[0]
    return values.count(first) == len(values) and all(type(v) is type(first) for v in values)


def _values(field: models.Field, rows: Sequence[Mapping[str, Any]], now: Any) -> list[Any]:
    """One column's values for the rows, as `_column` reads them (the JSON of a JSON field
    as text); read column by column when every row gives the field by its name."""
    if isinstance(field, models.DateTimeField) and (field.auto_now or field.auto_now_add):
        return [now] * len(rows)
    name = field.name
    try:
        given = [row[name] for row in rows]
    except KeyError:  # a default, or a related object's key given by ``<name>_id``
        read = _column(field, False)
        return [read(row, 0, []) for row in rows]
    if field.is_relation:
        # Most rows share the related object (the batch's wave, device): its key read once.
        keys = []
        last: Any = _MISSING
        key = None
        for value in given:
            if value is not last:
                last, key = value, None if value is None else value.pk
            keys.append(key)
        return keys
    if isinstance(field, models.JSONField):
        return [json_text(value) for value in given]
    return given
