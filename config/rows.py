"""Model instances from the rows of a hand-written SELECT, as the ORM would build them.

A request that stores one interview spends more time having the ORM compile a query with a
few joins than PostgreSQL spends running it (about 1 ms against 0.1 ms). The per-request
paths (`collect.sync_one`, the device token lookup, the recomputation mark) therefore send fixed SQL whose column
lists come from the models here, and turn each row back into model instances with the
same database converters the ORM applies (JSON text to Python, SQLite's UUIDs and times).
"""

from __future__ import annotations

from collections.abc import Sequence
from functools import cache
from typing import Any, TypeVar

from django.db import DEFAULT_DB_ALIAS, connection, connections, models
from django.db.backends.utils import CursorWrapper

M = TypeVar("M", bound=models.Model)


def cursor() -> CursorWrapper:
    """A cursor for such fixed statements. On PostgreSQL its parameters are bound on the
    server, so that psycopg prepares a statement once it has run a few times on a
    connection: PostgreSQL then plans it once, where planning a join of nine tables cost it
    more than running it (0.7 ms against 0.2 ms). Elsewhere, the usual cursor."""
    db = database()
    if db.vendor != "postgresql":
        return db.cursor()  # type: ignore[no-any-return]
    db.close_if_health_check_failed()
    db.ensure_connection()
    with db.wrap_database_errors:
        raw = _preparing_cursor_class()(db.connection)
        return db._prepare_cursor(raw)  # type: ignore[no-any-return]


@cache
def _preparing_cursor_class() -> Any:
    from django.db.backends.postgresql.base import ServerBindingCursor

    class PreparingCursor(ServerBindingCursor):  # type: ignore[misc,valid-type]
        """Django's server-binding cursor that keeps the statement's text for Django's
        query log (debug pages, query-count tests) once psycopg runs it prepared: psycopg
        records the text only of statements it sends unprepared."""

        def _send_query_prepared(self, name: bytes, pgq: Any, **kwargs: Any) -> None:
            super()._send_query_prepared(name, pgq, **kwargs)  # type: ignore[misc]
            self._query = pgq

    return PreparingCursor


def table(model: type[models.Model]) -> str:
    return connection.ops.quote_name(model._meta.db_table)


def column_name(model: type[models.Model], name: str) -> str:
    """The quoted column of the field ``name`` (``enumerator`` is ``enumerator_id``)."""
    return connection.ops.quote_name(str(model._meta.get_field(name).column))  # type: ignore[union-attr]


def column(model: type[models.Model], name: str, alias: str) -> str:
    """``alias.column`` of the field ``name``."""
    return f"{alias}.{column_name(model, name)}"


def select_list(model: type[models.Model], alias: str) -> str:
    """Every concrete column of ``model`` under ``alias``, in the order `build` reads."""
    q = connection.ops.quote_name
    return ", ".join(f"{alias}.{q(str(f.column))}" for f in model._meta.concrete_fields)


def width(model: type[models.Model]) -> int:
    return len(model._meta.concrete_fields)


def database() -> Any:
    """The default connection itself: `django.db.connection` is a proxy that looks the
    connection up again on every attribute read, dozens of times for a row."""
    return connections[DEFAULT_DB_ALIAS]


@cache
def _converters(model: type[models.Model], vendor: str) -> list[tuple[int, Any, list[Any]]]:
    """(position, column, converters) of the fields that have converters."""
    found = []
    for position, field in enumerate(model._meta.concrete_fields):
        col = field.get_col(model._meta.db_table)
        converters = connection.ops.get_db_converters(col) + field.get_db_converters(connection)
        if converters:
            found.append((position, col, converters))
    return found


def convert(model: type[models.Model], name: str, value: Any) -> Any:
    """One column's value as the ORM gives it."""
    field = model._meta.get_field(name)
    col = field.get_col(model._meta.db_table)  # type: ignore[union-attr]
    for converter in connection.ops.get_db_converters(col) + field.get_db_converters(connection):  # type: ignore[union-attr]
        value = converter(value, col, connection)
    return value


@cache
def _pk_index(model: type[models.Model]) -> int:
    return model._meta.concrete_fields.index(model._meta.pk)  # type: ignore[arg-type]


def build(model: type[M], values: Sequence[Any]) -> M | None:
    """The instance of a row's ``select_list`` columns; None for a LEFT JOIN that found none."""
    if values[_pk_index(model)] is None:
        return None
    db = database()
    converted = list(values)
    for position, col, converters in _converters(model, db.vendor):
        value = converted[position]
        for converter in converters:
            value = converter(value, col, db)
        converted[position] = value
    return model.from_db(db.alias, (), converted)
