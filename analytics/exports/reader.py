"""Interviews read from the database as typed Arrow columns: what a wave's store holds
and what an export reads when it reads live.

On PostgreSQL through COPY, driven by a second thread so the database prints rows while the
previous ones are decoded; the answers JSON is fetched as text and parsed a batch at a time
by Arrow's JSON reader into typed columns, so no Python code runs per cell. The wave's
store (`analytics.store`) keeps the same columns, already parsed; `batches` turns
either into the codebook's columns.
"""

from __future__ import annotations

import contextlib
import itertools
import json
import logging
import os
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from functools import cache, cached_property
from typing import Any, TypeVar

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pa_csv
import pyarrow.json as pa_json
from django.db import connection, models
from django.db.models.functions import Cast

from analytics.exports.codebook import Codebook, Variable, build_codebook
from surveys.models import FormVersion, ReviewStatus, Submission, Wave

logger = logging.getLogger(__name__)
_T = TypeVar("_T")


@cache
def return_freed_memory() -> None:
    """Let freed batch buffers go back to the system, so an export's memory stays flat.

    Arrow's default allocator (mimalloc) keeps the pages a thread frees for that thread,
    and an export hands every batch from its reading thread to its writing thread; the C
    library's allocator reuses them. Process-wide, so done once, by a process's first
    export or store update, not on import. (Not by lowering the C library's threshold
    for serving a request from its own mapping: that holds for the whole process, and a
    worker's recomputations then map and zero every large array anew, measured 1.9x
    slower on a million interviews; `trim_freed_memory` returns the pages afterwards.)
    """
    if "ARROW_DEFAULT_MEMORY_POOL" not in os.environ:
        pa.set_memory_pool(pa.system_memory_pool())


def trim_freed_memory() -> None:
    """Give the pages freed by a finished export or store update back to the system."""
    with contextlib.suppress(OSError, AttributeError):  # not the GNU C library
        import ctypes

        ctypes.CDLL("libc.so.6").malloc_trim(0)


# Interviews per batch: large enough that Arrow's kernels dominate, small enough that a
# batch's raw JSON, parsed columns and printed text stay small (about 40 kB of memory per
# interview in flight; Arrow's readers run single-threaded, their thread pools cost more).
BATCH_ROWS = 3_000

# Fields read from each interview besides the answers, in codebook order of the design
# variables, then the questionnaire version (to tell "not asked" from "skipped").
DESIGN_SOURCES = [
    "instance_id",
    "wave__code",
    "form_version__version",
    "wave__geography",
    "region__code",
    "urban_rural",
    "stratum",
    "psu",
    "weight",
    "channel",
    "language",
    "enumerator_id",
    "started_at",
    "ended_at",
    "duration_seconds",
    "is_synthetic",
]
# What the query reads: timestamps come as epoch seconds, decoded in bulk by Arrow.
QUERY_FIELDS = [
    {"started_at": "started_epoch", "ended_at": "ended_epoch"}.get(name, name)
    for name in DESIGN_SOURCES
]
# Everything fetched besides the id and the answers: the design variables, then what the
# estimation reads that no export prints (the region's key).
FETCHED_FIELDS = [*QUERY_FIELDS, "region_id"]


@dataclass(frozen=True)
class MicrodataSelection:
    """Which interviews to export and how to print their values."""

    wave_ids: tuple[int, ...]
    language: str = "ru"
    values: str = "labels"  # "labels" or "codes"
    limit: int | None = None  # the first interviews only (benchmarks, previews)

    def submissions(self) -> models.QuerySet[Submission]:
        return (
            Submission.objects.feeding_estimates().filter(wave_id__in=self.wave_ids).order_by("id")
        )

    @cached_property
    def sources(self) -> tuple[list[FormVersion], list[int]]:
        """The questionnaire versions and the enumerator accounts behind the selection.

        Read once per selection. The pairs of all the waves' interviews come from an
        index alone; only pairs also seen among rejected interviews (few, through a
        partial index) are checked for an accepted interview.
        """
        rows = Submission.objects.filter(wave_id__in=self.wave_ids).order_by()
        pairs = set(rows.values_list("form_version_id", "enumerator_id").distinct())
        doubtful = pairs & set(
            rows.filter(review_status=ReviewStatus.REJECTED)
            .values_list("form_version_id", "enumerator_id")
            .distinct()
        )
        for version, enumerator in doubtful:
            if not (
                rows.exclude(review_status=ReviewStatus.REJECTED)
                .filter(form_version_id=version, enumerator_id=enumerator)
                .exists()
            ):
                pairs.discard((version, enumerator))
        ids = {fv for fv, _enumerator in pairs}
        ids |= set(
            Wave.objects.filter(pk__in=self.wave_ids, form_version__isnull=False).values_list(
                "form_version_id", flat=True
            )
        )
        enumerators = sorted({e for _fv, e in pairs if e is not None})
        return list(FormVersion.objects.filter(pk__in=ids)), enumerators

    def codebook(self) -> Codebook:
        return build_codebook(self.sources[0], waves=Wave.objects.filter(pk__in=self.wave_ids))


class EpochSeconds(models.Func):
    """Seconds since 1970 of a timestamp, computed by the database (no datetime objects)."""

    output_field = models.FloatField()

    def as_postgresql(self, compiler: Any, connection: Any, **extra: Any) -> Any:
        return self.as_sql(
            compiler, connection, template="EXTRACT(EPOCH FROM %(expressions)s)::float8", **extra
        )

    def as_sqlite(self, compiler: Any, connection: Any, **extra: Any) -> Any:
        return self.as_sql(
            compiler,
            connection,
            template="(julianday(%(expressions)s) - 2440587.5) * 86400.0",
            **extra,
        )


def _arrow_type(variable: Variable) -> pa.DataType:
    if variable.kind == "select_multiple_option":
        return pa.list_(pa.string())
    if variable.recode:  # stored as text, exported as numbers
        return pa.string()
    return {"int": pa.int64(), "float": pa.float64(), "string": pa.string()}[variable.storage]


def answers_schema(codebook: Codebook) -> pa.Schema:
    fields: dict[str, pa.DataType] = {}
    for variable in codebook.question_variables:
        fields.setdefault(variable.source, _arrow_type(variable))
    return pa.schema(list(fields.items()))


def _coerce(value: Any, kind: pa.DataType) -> Any:
    """Slow path for a batch Arrow's reader refuses: one value to the column's type or None."""
    if value is None:
        return None
    try:
        if pa.types.is_list(kind):
            return [str(v) for v in value] if isinstance(value, list) else str(value).split()
        if pa.types.is_integer(kind):
            number = float(value)
            return int(number) if number.is_integer() else None
        if pa.types.is_floating(kind):
            return float(value)
        return value if isinstance(value, str) else json.dumps(value, ensure_ascii=False)
    except (TypeError, ValueError):
        return None


def _ndjson(texts: pa.Array) -> pa.Buffer:
    """The answers texts as newline-delimited JSON, built by Arrow without Python strings.

    A JSON text of the database never holds a raw line break (it prints them escaped).
    """
    lines = pc.binary_join_element_wise(pc.fill_null(texts, "{}"), "", "\n")
    if not len(lines):
        return pa.py_buffer(b"")
    offsets = np.frombuffer(lines.buffers()[1], dtype=np.int32)
    start = int(offsets[lines.offset])
    end = int(offsets[lines.offset + len(lines)])
    return lines.buffers()[2].slice(start, end - start)


def _parse_answers(texts: pa.Array, schema: pa.Schema) -> pa.Table:
    data = _ndjson(texts)
    try:
        return pa_json.read_json(
            pa.BufferReader(data),
            read_options=pa_json.ReadOptions(
                use_threads=False, block_size=max(1 << 20, data.size + 1)
            ),
            parse_options=pa_json.ParseOptions(
                explicit_schema=schema, unexpected_field_behavior="ignore"
            ),
        )
    except pa.ArrowInvalid:
        # A stored value of an unexpected type (say "1" in an integer question): decode in
        # Python and coerce value by value; values that cannot be coerced become missing.
        columns: dict[str, list[Any]] = {name: [] for name in schema.names}
        for text in texts.to_pylist():
            answers = json.loads(text) if text else {}
            for field in schema:
                columns[field.name].append(_coerce(answers.get(field.name), field.type))
        return pa.table({f.name: pa.array(columns[f.name], type=f.type) for f in schema})


# Arrow types of the fetched columns (FETCHED_FIELDS order, then the answers text).
FETCH_TYPES = {
    "instance_id": pa.string(),
    "urban_rural": pa.int64(),
    "weight": pa.float64(),
    "enumerator_id": pa.int64(),
    "started_epoch": pa.float64(),
    "ended_epoch": pa.float64(),
    "duration_seconds": pa.int64(),
    "is_synthetic": pa.int64(),
    "region_id": pa.int64(),
}


def fetch_queryset(
    submissions: models.QuerySet[Submission], limit: int | None = None
) -> models.QuerySet:
    """The fetched columns (`fetch_schema`) of these interviews, in id order."""
    queryset = (
        submissions.order_by("id")
        .annotate(
            answers_text=Cast("answers", models.TextField()),
            started_epoch=EpochSeconds("started_at"),
            ended_epoch=EpochSeconds("ended_at"),
            is_synthetic_int=Cast("is_synthetic", models.IntegerField()),
            instance_text=Cast("instance_id", models.CharField()),
        )
        .values_list(
            "id",
            *[
                {"is_synthetic": "is_synthetic_int", "instance_id": "instance_text"}.get(f, f)
                for f in FETCHED_FIELDS
            ],
            "answers_text",
        )
    )
    return queryset[:limit] if limit else queryset


def fetch_schema() -> pa.Schema:
    return pa.schema(
        [("id", pa.int64())]
        + [(name, FETCH_TYPES.get(name, pa.string())) for name in FETCHED_FIELDS]
        + [("answers_text", pa.string())]
    )


_COPY_DONE = object()


def _fetch_postgresql(
    submissions: models.QuerySet[Submission], batch_size: int, limit: int | None
) -> Iterator[pa.RecordBatch]:
    """COPY (the export query) TO STDOUT as CSV, read by Arrow a batch at a time.

    A second thread drives the COPY and hands over chunks of `batch_size` rows through a
    queue of a few chunks, so the database prints rows while this thread turns the
    previous ones into columns (two cores busy, memory bounded). While the COPY is open
    the connection can run nothing else: callers record progress through another
    connection (see `_JobProgress`).
    """
    import queue

    sql, params = fetch_queryset(submissions, limit).query.sql_with_params()
    with connection.cursor() as cursor:
        statement = cursor.cursor.mogrify(sql, params)
    raw = connection.connection
    schema = fetch_schema()
    read_options = pa_csv.ReadOptions(
        column_names=schema.names, block_size=64 << 20, use_threads=False
    )
    parse_options = pa_csv.ParseOptions(newlines_in_values=True)
    convert_options = pa_csv.ConvertOptions(column_types=schema)
    chunks: queue.Queue[Any] = queue.Queue(maxsize=2)
    stop = threading.Event()

    def hand_over(item: Any) -> None:
        while not stop.is_set():
            try:
                chunks.put(item, timeout=0.1)
                return
            except queue.Full:
                continue

    def produce() -> None:
        try:
            with (
                raw.cursor() as copy_cursor,
                copy_cursor.copy(f"COPY ({statement}) TO STDOUT WITH (FORMAT csv)") as copy,
            ):
                # libpq delivers one row per COPY message, appended to one growing
                # buffer per chunk (no object per row). A consumer that gave up leaves
                # the rest to be read out, so the connection is usable afterwards.
                chunk, rows = bytearray(), 0
                for message in copy:
                    if stop.is_set():
                        continue
                    chunk += message
                    rows += 1
                    if rows == batch_size:
                        hand_over(chunk)
                        chunk, rows = bytearray(), 0
                if rows:
                    hand_over(chunk)
            hand_over(_COPY_DONE)
        except BaseException as exc:  # handed to the consumer, which raises it
            hand_over(exc)

    producer = threading.Thread(target=produce, name="tanys-export-copy", daemon=True)
    producer.start()
    try:
        while True:
            item = chunks.get()
            if item is _COPY_DONE:
                return
            if isinstance(item, BaseException):
                raise item
            table = pa_csv.read_csv(
                pa.BufferReader(pa.py_buffer(item)),
                read_options=read_options,
                parse_options=parse_options,
                convert_options=convert_options,
            )
            del item
            yield from table.combine_chunks().to_batches()
    finally:
        stop.set()
        producer.join()


def _fetch_rows(
    submissions: models.QuerySet[Submission], batch_size: int, limit: int | None
) -> Iterator[pa.RecordBatch]:
    """Any other database: a chunked cursor, columns built a batch at a time."""
    schema = fetch_schema()
    rows = fetch_queryset(submissions, limit).iterator(chunk_size=batch_size)
    while True:
        chunk = list(itertools.islice(rows, batch_size))
        if not chunk:
            return
        columns = list(zip(*chunk, strict=True))
        yield pa.RecordBatch.from_arrays(
            [
                pa.array(values, type=field.type)
                for values, field in zip(columns, schema, strict=True)
            ],
            schema=schema,
        )


def fetch_batches(
    submissions: models.QuerySet[Submission],
    batch_size: int = BATCH_ROWS,
    limit: int | None = None,
) -> Iterator[pa.RecordBatch]:
    """These interviews as Arrow record batches of the fetched columns, in id order."""
    if connection.vendor == "postgresql":
        yield from _fetch_postgresql(submissions, batch_size, limit)
    else:
        yield from _fetch_rows(submissions, batch_size, limit)


def dashed_uuid(ids: pa.Array) -> pa.Array:
    """SQLite stores UUIDs as 32 hex digits; print them in the usual 8-4-4-4-12 form."""
    bare = pc.equal(pc.utf8_length(ids), 32)
    if not pc.any(bare).as_py():
        return ids
    parts = [
        pc.utf8_slice_codeunits(ids, a, b)
        for a, b in ((0, 8), (8, 12), (12, 16), (16, 20), (20, 32))
    ]
    return pc.if_else(bare, pc.binary_join_element_wise(*parts, "-"), ids)


def as_timestamp(seconds: pa.Array) -> pa.Array:
    # Millisecond precision: SQLite's julianday() arithmetic is exact to about a millisecond.
    milli = pc.cast(pc.round(pc.multiply(seconds, 1_000)), pa.int64())
    return pc.cast(pc.multiply(milli, 1_000), pa.timestamp("us", tz="UTC"))


@dataclass
class RawBatch:
    """Interviews as fetched and parsed, before the codebook's rules are applied."""

    ids: pa.Array
    fetched: dict[str, pa.Array]  # FETCHED_FIELDS
    answers: pa.Table  # one column per answer source of the answers schema

    @property
    def length(self) -> int:
        return len(self.ids)


def parse_raw(record_batch: pa.RecordBatch, schema: pa.Schema) -> RawBatch:
    """A fetched record batch with its answers parsed into the columns of `schema`."""
    columns = record_batch.columns
    return RawBatch(
        ids=columns[0],
        fetched=dict(zip(FETCHED_FIELDS, columns[1:-1], strict=True)),
        answers=_parse_answers(columns[-1], schema),
    )


# Told (interviews parsed, interviews to parse) while a wave's store is brought up
# to date.
Preparing = Callable[[int, int], None]


def live_raw_batches(
    submissions: models.QuerySet[Submission],
    schema: pa.Schema,
    *,
    batch_size: int = BATCH_ROWS,
    limit: int | None = None,
) -> Iterator[RawBatch]:
    """Read and parse interviews from the database."""
    for record_batch in fetch_batches(submissions, batch_size, limit):
        yield parse_raw(record_batch, schema)


def wave_answers_schema(wave_id: int) -> pa.Schema:
    """Answer columns of the questionnaire versions a wave's interviews were taken with."""
    ids = set(
        Submission.objects.filter(wave_id=wave_id)
        .order_by()
        .values_list("form_version_id", flat=True)
        .distinct()
    )
    ids |= set(
        Wave.objects.filter(pk=wave_id, form_version__isnull=False).values_list(
            "form_version_id", flat=True
        )
    )
    return answers_schema(build_codebook(list(FormVersion.objects.filter(pk__in=ids))))
