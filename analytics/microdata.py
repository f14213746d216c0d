"""Interviews as typed Arrow columns: what every microdata export reads.

Two sources give the same columns:

* **live**: the interviews are read from the database (on PostgreSQL through COPY, driven
  by a second thread so the database prints rows while the previous ones are decoded),
  with the answers JSON fetched as text and parsed a batch at a time by Arrow's JSON
  reader into typed columns, so no Python code runs per cell;
* **the wave's export cache**: the same columns, already parsed, kept per wave under
  ``MEDIA_ROOT/exportcache/`` as Arrow IPC segments. Parsing a million JSON documents is
  most of an export's cost (the database prints about 70,000 rows a second, the parsing
  halves that), and interviews never change once stored (review only accepts or rejects
  them), so each interview is parsed once: the worker appends new interviews after each
  recomputation, and every export first brings the cache up to date (see `WaveCache`).

`iter_microdata_batches` then turns either source into the codebook's columns: special
codes in place of missing answers, select_multiple options as 0/1, enumerators numbered
within the selection.
"""

from __future__ import annotations

import contextlib
import hashlib
import itertools
import json
import logging
import os
import shutil
import threading
from collections import OrderedDict
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from functools import cache, cached_property
from pathlib import Path
from typing import Any, TypeVar

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pa_csv
import pyarrow.json as pa_json
from django.conf import settings
from django.db import connection, models
from django.db.models.functions import Cast

from analytics.codebook import (
    NOT_APPLICABLE,
    NOT_ASKED,
    Codebook,
    Variable,
    build_codebook,
)
from surveys.models import FormVersion, ReviewStatus, Submission, Wave
from surveys.selectors import wave_token

logger = logging.getLogger(__name__)
_T = TypeVar("_T")


@cache
def _return_freed_memory() -> None:
    """Let freed batch buffers go back to the system, so an export's memory stays flat.

    Arrow's default allocator (mimalloc) keeps the pages a thread frees for that thread,
    and an export hands every batch from its reading thread to its writing thread; the C
    library's allocator gives them back, once its threshold for serving a request from
    its own mapping is fixed (by default it rises to 32 MB after the first large buffers
    are freed, and every later batch then stays in the heap). Measured on a million
    interviews: peaks about 120 MB lower, at about the same speed. Process-wide, so done
    once, by a process's first export or cache update, not on import.
    """
    if "ARROW_DEFAULT_MEMORY_POOL" not in os.environ:
        pa.set_memory_pool(pa.system_memory_pool())
    if "MALLOC_MMAP_THRESHOLD_" not in os.environ:
        with contextlib.suppress(OSError, AttributeError):  # not the GNU C library
            import ctypes

            m_mmap_threshold = -3
            ctypes.CDLL("libc.so.6").mallopt(m_mmap_threshold, 256 * 1024)


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
        return build_codebook(self.sources[0])


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
    return {"int": pa.int64(), "float": pa.float64(), "string": pa.string()}[variable.storage]


def _answers_schema(codebook: Codebook) -> pa.Schema:
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


@dataclass
class Batch:
    """Typed columns of a batch of interviews: codes, special codes in place of missing."""

    length: int
    columns: dict[str, pa.Array]


def _missing_codes(
    variable: Variable, versions: pa.Array, lacking: dict[str, set[str]]
) -> pa.Array:
    """-9 where the interview's questionnaire version lacks the question, else -3."""
    missing_versions = lacking.get(variable.source)
    if not missing_versions:
        return pa.scalar(NOT_APPLICABLE)
    mask = pc.is_in(versions, value_set=pa.array(sorted(missing_versions)))
    return pc.if_else(mask, NOT_ASKED, NOT_APPLICABLE)


# Arrow types of the fetched columns (QUERY_FIELDS order, then the answers text).
FETCH_TYPES = {
    "instance_id": pa.string(),
    "urban_rural": pa.int64(),
    "weight": pa.float64(),
    "enumerator_id": pa.int64(),
    "started_epoch": pa.float64(),
    "ended_epoch": pa.float64(),
    "duration_seconds": pa.int64(),
    "is_synthetic": pa.int64(),
}


def _fetch_queryset(
    submissions: models.QuerySet[Submission], limit: int | None = None
) -> models.QuerySet:
    """The fetched columns (`_fetch_schema`) of these interviews, in id order."""
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
                for f in QUERY_FIELDS
            ],
            "answers_text",
        )
    )
    return queryset[:limit] if limit else queryset


def _fetch_schema() -> pa.Schema:
    return pa.schema(
        [("id", pa.int64())]
        + [(name, FETCH_TYPES.get(name, pa.string())) for name in QUERY_FIELDS]
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

    sql, params = _fetch_queryset(submissions, limit).query.sql_with_params()
    with connection.cursor() as cursor:
        statement = cursor.cursor.mogrify(sql, params)
    raw = connection.connection
    schema = _fetch_schema()
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
    schema = _fetch_schema()
    rows = _fetch_queryset(submissions, limit).iterator(chunk_size=batch_size)
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


def _dashed_uuid(ids: pa.Array) -> pa.Array:
    """SQLite stores UUIDs as 32 hex digits; print them in the usual 8-4-4-4-12 form."""
    bare = pc.equal(pc.utf8_length(ids), 32)
    if not pc.any(bare).as_py():
        return ids
    parts = [
        pc.utf8_slice_codeunits(ids, a, b)
        for a, b in ((0, 8), (8, 12), (12, 16), (16, 20), (20, 32))
    ]
    return pc.if_else(bare, pc.binary_join_element_wise(*parts, "-"), ids)


def _as_timestamp(seconds: pa.Array) -> pa.Array:
    # Millisecond precision: SQLite's julianday() arithmetic is exact to about a millisecond.
    milli = pc.cast(pc.round(pc.multiply(seconds, 1_000)), pa.int64())
    return pc.cast(pc.multiply(milli, 1_000), pa.timestamp("us", tz="UTC"))


@dataclass
class RawBatch:
    """Interviews as fetched and parsed, before the codebook's rules are applied."""

    ids: pa.Array
    fetched: dict[str, pa.Array]  # QUERY_FIELDS
    answers: pa.Table  # one column per answer source of the answers schema

    @property
    def length(self) -> int:
        return len(self.ids)


def _raw(record_batch: pa.RecordBatch, schema: pa.Schema) -> RawBatch:
    """A fetched record batch with its answers parsed into the columns of `schema`."""
    columns = record_batch.columns
    return RawBatch(
        ids=columns[0],
        fetched=dict(zip(QUERY_FIELDS, columns[1:-1], strict=True)),
        answers=_parse_answers(columns[-1], schema),
    )


# Told (interviews parsed, interviews to parse) while a wave's export cache is brought up
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
        yield _raw(record_batch, schema)


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
    return _answers_schema(build_codebook(list(FormVersion.objects.filter(pk__in=ids))))


def iter_microdata_batches(
    selection: MicrodataSelection,
    codebook: Codebook,
    *,
    batch_size: int = BATCH_ROWS,
    use_cache: bool = True,
    preparing: Preparing | None = None,
) -> Iterator[Batch]:
    """Interviews of the selection as typed column batches, in codebook order.

    Interviews come wave by wave (in wave id order), each wave in interview id order.
    `preparing` hears how many of a wave's new interviews have been parsed into its
    export cache, out of how many, before that wave's rows come.
    """
    _return_freed_memory()
    schema = _answers_schema(codebook)
    asked: dict[str, set[str]] = {}
    versions, enumerators = selection.sources
    for version in versions:
        asked[version.version] = set(version.questions)
    lacking = {
        variable.source: {v for v, names in asked.items() if variable.source not in names}
        for variable in codebook.question_variables
    }
    # Enumerators become 1..k in account order; interviews without one (web) get 0.
    enumerator_keys = pa.array(enumerators, type=pa.int64())
    remaining = selection.limit
    for wave_id in sorted(selection.wave_ids):
        if remaining is not None and remaining <= 0:
            return
        if use_cache:
            raws = WaveCache(wave_id).raw_batches(
                schema, batch_size=batch_size, limit=remaining, preparing=preparing
            )
        else:
            accepted = Submission.objects.feeding_estimates().filter(wave_id=wave_id)
            raws = live_raw_batches(accepted, schema, batch_size=batch_size, limit=remaining)
        for raw in raws:
            if remaining is not None:
                remaining -= raw.length
            yield _codebook_columns(raw, codebook, lacking, enumerator_keys)


def _codebook_columns(
    raw: RawBatch,
    codebook: Codebook,
    lacking: dict[str, set[str]],
    enumerator_keys: pa.Array,
) -> Batch:
    design: dict[str, pa.Array] = {}
    for source, name in zip(DESIGN_SOURCES, QUERY_FIELDS, strict=True):
        array = raw.fetched[name]
        if source in {"started_at", "ended_at"}:
            array = _as_timestamp(array)
        elif source == "instance_id":
            array = _dashed_uuid(array)
        elif source == "enumerator_id":
            index = pc.index_in(array, value_set=enumerator_keys)
            array = pc.fill_null(pc.add(pc.cast(index, pa.int64()), 1), 0)
        design[source] = array
    answers = raw.answers
    version_column = design["form_version__version"]
    columns: dict[str, pa.Array] = {}
    for variable in codebook.variables:
        if variable.kind in {"design", "paradata"}:
            columns[variable.name] = design[variable.source]
            continue
        raw_answers = answers.column(variable.source).combine_chunks()
        missing = _missing_codes(variable, version_column, lacking)
        if variable.kind == "select_multiple_option":
            flat = pc.list_flatten(raw_answers)
            parents = pc.list_parent_indices(raw_answers).to_numpy()
            hit = np.zeros(len(raw_answers), dtype=np.int64)
            chosen = pc.equal(flat, variable.option).to_numpy(zero_copy_only=False)
            hit[parents[chosen]] = 1
            columns[variable.name] = pc.if_else(pc.is_null(raw_answers), missing, pa.array(hit))
        elif variable.storage == "string":
            columns[variable.name] = pc.coalesce(raw_answers, pc.cast(missing, pa.string()))
        else:
            columns[variable.name] = pc.coalesce(raw_answers, pc.cast(missing, raw_answers.type))
    return Batch(length=raw.length, columns=columns)


# --------------------------------------------------------------------------------------
# The export cache of a wave
# --------------------------------------------------------------------------------------

CACHE_FORMAT = 1
ANSWER_PREFIX = "answer:"  # cached answer columns, apart from the design fields
# Interviews whose ids are looked up in one query while reconciling.
ID_CHUNK = 5_000
# Segments a wave's cache may hold before its smaller ones are merged.
MAX_SEGMENTS = 16


def cache_root() -> Path:
    return Path(settings.MEDIA_ROOT) / "exportcache"


def _data_epoch(wave_id: int) -> int:
    from analytics.models import WaveComputation

    epoch = (
        WaveComputation.objects.filter(wave_id=wave_id).values_list("data_epoch", flat=True).first()
    )
    return int(epoch or 0)


@dataclass
class _Segment:
    path: Path
    ids: np.ndarray  # int64, in the segment's row order
    offsets: np.ndarray  # row where each record batch starts, then the row count


@dataclass
class WaveCache:
    """A wave's interviews, fetched and parsed once, as append-only Arrow IPC segments.

    Every interview of the wave is cached whatever its review status (review can accept
    a rejected interview again); readers leave out those not feeding the estimates. The folder's name
    holds what the cached columns depend on (the cache format, the wave's creation time,
    its data epoch, bumped when stored answers are edited in place, and the answer
    columns of its questionnaire versions): when any of them changes, a new folder is
    filled and the old one removed.

    Segments are written to a temporary name and renamed, with their ids beside them in
    a small ``.npz`` written first, so a reader never sees half a segment. Two processes
    bringing the cache up to date at once may both append the same interviews; readers
    keep the first copy of each id. Interviews deleted from the database are recorded in
    ``deleted-*.npy`` files and left out. Whether the cache holds exactly the database's
    interviews is checked with one aggregate query (count and sum of ids), as the
    estimation snapshot does.
    """

    wave_id: int
    schema: pa.Schema = field(init=False)
    folder: Path = field(init=False)

    def __post_init__(self) -> None:
        self.schema = wave_answers_schema(self.wave_id)
        fetched = _fetch_schema()
        columns = fetched.remove(len(fetched) - 1)
        key = hashlib.sha256(
            f"{CACHE_FORMAT}|{columns.to_string()}|{self.schema.to_string()}".encode()
        ).hexdigest()[:16]
        token = wave_token(self.wave_id)
        self.folder = (
            cache_root() / f"wave-{self.wave_id}-{token}-{_data_epoch(self.wave_id)}-{key}"
        )

    # ---------------------------------------------------------------- writing

    def update(self, progress: Preparing | None = None) -> int:
        """Append the wave's interviews the cache lacks; returns how many were added."""
        _return_freed_memory()
        self.folder.mkdir(parents=True, exist_ok=True)
        self._remove_stale_folders()
        segments = self._segments()
        cached = np.unique(np.concatenate([s.ids for s in segments] or [np.zeros(0, np.int64)]))
        deleted = self._deleted()
        present = np.setdiff1d(cached, deleted, assume_unique=True) if len(deleted) else cached
        upto = int(present[-1]) if len(present) else 0
        wave_rows = Submission.objects.filter(wave_id=self.wave_id)
        added = 0
        missing = np.zeros(0, np.int64)
        if upto:
            totals = wave_rows.filter(id__lte=upto).aggregate(
                count=models.Count("id"), total=models.Sum("id")
            )
            if (totals["count"], totals["total"] or 0) != (len(present), int(present.sum())):
                in_database = np.fromiter(
                    wave_rows.filter(id__lte=upto).order_by().values_list("id", flat=True),
                    dtype=np.int64,
                )
                gone = np.setdiff1d(present, in_database)
                if len(gone):
                    self._write_deleted(gone)
                missing = np.setdiff1d(in_database, cached)
        newer = wave_rows.filter(id__gt=upto)
        total = len(missing) + (newer.count() if progress else 0)

        def parsed(rows: int) -> None:
            if progress:
                progress(added + rows, max(total, added + rows))

        for start in range(0, len(missing), ID_CHUNK):
            chunk = missing[start : start + ID_CHUNK].tolist()
            added += self._append(wave_rows.filter(id__in=chunk), parsed)
        added += self._append(newer, parsed)
        return added

    def _append(
        self,
        submissions: models.QuerySet[Submission],
        progress: Callable[[int], None] | None = None,
    ) -> int:
        """Fetch, parse and store these interviews as one segment."""
        return self._write_segment(
            (
                self._to_cache_table(_raw(record_batch, self.schema))
                for record_batch in fetch_batches(submissions, BATCH_ROWS)
            ),
            progress,
        )

    def _write_segment(
        self, tables: Iterator[pa.Table], progress: Callable[[int], None] | None = None
    ) -> int:
        """Store tables of cached columns as one segment; returns its row count.

        `progress` hears the rows stored so far, after each table."""
        name = f"seg-{os.urandom(8).hex()}"
        tmp = self.folder / f".{name}.arrow.part"
        ids: list[np.ndarray] = []
        offsets = [0]
        try:
            with pa.OSFile(str(tmp), "wb") as sink:
                writer: pa.ipc.RecordBatchFileWriter | None = None
                for table in tables:
                    if writer is None:
                        writer = pa.ipc.new_file(
                            sink,
                            table.schema,
                            options=pa.ipc.IpcWriteOptions(compression="lz4"),
                        )
                    writer.write_batch(table.combine_chunks().to_batches()[0])
                    ids.append(table.column("id").to_numpy())
                    offsets.append(offsets[-1] + table.num_rows)
                    if progress:
                        progress(offsets[-1])
                if writer is None:
                    return 0
                writer.close()
            np.savez(
                self.folder / f"{name}.npz",
                ids=np.concatenate(ids),
                offsets=np.asarray(offsets, dtype=np.int64),
            )
            os.replace(tmp, self.folder / f"{name}.arrow")
        finally:
            with contextlib.suppress(OSError):
                tmp.unlink(missing_ok=True)
        return offsets[-1]

    def compact(self) -> bool:
        """Merge the smaller segments into one once there are more than MAX_SEGMENTS, or
        when two processes appended the same interviews.

        Every recomputation may append a segment of a few interviews; merging keeps the
        number of files small. The merged segment is in place before the others are
        removed, and readers hold their files open, so a reading export is undisturbed.
        """
        segments = self._segments()
        if len(segments) < 2:
            return False
        stored = sum(len(segment.ids) for segment in segments)
        distinct = len(np.unique(np.concatenate([segment.ids for segment in segments])))
        if len(segments) <= MAX_SEGMENTS and distinct == stored:
            return False
        largest = max(segments, key=lambda segment: len(segment.ids))
        smaller = [segment for segment in segments if segment is not largest]
        positions = _Positions(smaller)
        order = positions.first[~np.isin(positions.unique_ids, largest.ids)]
        with _BatchReader(smaller) as reader:
            self._write_segment(
                reader.take(positions.segment_of[chunk], positions.row_of[chunk])
                for chunk in _chunks(order, BATCH_ROWS)
            )
        for segment in smaller:
            segment.path.unlink(missing_ok=True)
            segment.path.with_suffix(".npz").unlink(missing_ok=True)
        return True

    def _to_cache_table(self, raw: RawBatch) -> pa.Table:
        arrays = [raw.ids, *(raw.fetched[name] for name in QUERY_FIELDS), *raw.answers.columns]
        names = [
            "id",
            *QUERY_FIELDS,
            *(ANSWER_PREFIX + name for name in raw.answers.column_names),
        ]
        return pa.Table.from_arrays(
            [a.combine_chunks() if isinstance(a, pa.ChunkedArray) else a for a in arrays],
            names=names,
        )

    def _write_deleted(self, ids: np.ndarray) -> None:
        name = f"deleted-{os.urandom(8).hex()}"
        tmp = self.folder / f".{name}.npy.part"
        with open(tmp, "wb") as out:
            np.save(out, ids.astype(np.int64))
        os.replace(tmp, self.folder / f"{name}.npy")

    def _remove_stale_folders(self) -> None:
        """Folders of this wave under another key are left by an older state: remove them."""
        for other in cache_root().glob(f"wave-{self.wave_id}-*"):
            if other != self.folder:
                shutil.rmtree(other, ignore_errors=True)

    # ---------------------------------------------------------------- reading

    def _segments(self) -> list[_Segment]:
        """The segments, by first id."""
        return self._stable(self._list_segments)

    def _list_segments(self) -> list[_Segment]:
        segments = []
        for path in self.folder.glob("seg-*.arrow"):
            with np.load(path.with_suffix(".npz")) as sidecar:
                segments.append(_Segment(path, sidecar["ids"], sidecar["offsets"]))
        return sorted(segments, key=lambda segment: int(segment.ids[0]))

    def _stable(self, read: Callable[[], _T]) -> _T:
        """`read`, again when a segment vanished under it: merged by a compaction, whose
        merged segment was in place before the others were removed."""
        for _attempt in range(5):
            try:
                return read()
            except FileNotFoundError:
                continue
        raise OSError(f"the export cache of wave {self.wave_id} keeps changing; try again")

    def _deleted(self) -> np.ndarray:
        parts = [np.load(path) for path in sorted(self.folder.glob("deleted-*.npy"))]
        return np.unique(np.concatenate(parts)) if parts else np.zeros(0, np.int64)

    def raw_batches(
        self,
        schema: pa.Schema,
        *,
        batch_size: int = BATCH_ROWS,
        limit: int | None = None,
        preparing: Preparing | None = None,
    ) -> Iterator[RawBatch]:
        """The wave's accepted interviews in id order, in the columns of `schema`.

        Brings the cache up to date first. A selection whose answer columns disagree in
        type with the cache's (which the import of questionnaires prevents) is read live.
        """
        for name in schema.names:
            index = self.schema.get_field_index(name)
            if index >= 0 and self.schema.field(index).type != schema.field(name).type:
                logger.warning("export cache of wave %s: %s differs in type", self.wave_id, name)
                accepted = Submission.objects.feeding_estimates().filter(wave_id=self.wave_id)
                yield from live_raw_batches(accepted, schema, batch_size=batch_size, limit=limit)
                return
        try:
            self.update(preparing)
            reader = self._open()
        except (OSError, ValueError, pa.ArrowException):
            # An unreadable cache (a disk full, a file damaged) is dropped and rebuilt.
            logger.exception("export cache of wave %s unreadable; rebuilding", self.wave_id)
            shutil.rmtree(self.folder, ignore_errors=True)
            self.update(preparing)
            reader = self._open()
        rejected = np.fromiter(  # and those awaiting a review their survey asks for
            Submission.objects.held_back()
            .filter(wave_id=self.wave_id)
            .values_list("id", flat=True),
            dtype=np.int64,
        )
        with reader:
            try:
                yield from self._read(reader, schema, self._deleted(), rejected, batch_size, limit)
            except (ValueError, pa.ArrowException):
                # A batch damaged past its file's footer. Rows may already be written:
                # fail this export, and let the next one rebuild.
                shutil.rmtree(self.folder, ignore_errors=True)
                raise

    def _open(self) -> _BatchReader:
        """The segments, opened (see `_stable`)."""
        return self._stable(lambda: _BatchReader(self._list_segments()))

    def _read(
        self,
        reader: _BatchReader,
        schema: pa.Schema,
        deleted: np.ndarray,
        rejected: np.ndarray,
        batch_size: int,
        limit: int | None,
    ) -> Iterator[RawBatch]:
        segments = reader.segments
        if not segments:
            return
        if _in_id_order(segments):
            excluded = np.union1d(deleted, rejected)
            yield from self._read_in_order(reader, schema, excluded, limit)
            return
        # Segments that overlap (two processes appended the same interviews) or interleave
        # (interviews committed late): gather rows by their place in id order, keeping
        # the first copy of each id and leaving out deleted and rejected interviews.
        positions = _Positions(segments)
        keep = np.ones(len(positions.unique_ids), dtype=bool)
        for excluded in (deleted, rejected):
            if len(excluded):
                keep &= ~np.isin(positions.unique_ids, excluded)
        order = positions.first[keep]
        if limit is not None:
            order = order[:limit]
        for chunk in _chunks(order, batch_size):
            table = reader.take(positions.segment_of[chunk], positions.row_of[chunk])
            yield self._from_cache_table(table, schema)

    def _read_in_order(
        self,
        reader: _BatchReader,
        schema: pa.Schema,
        excluded: np.ndarray,
        limit: int | None,
    ) -> Iterator[RawBatch]:
        """The usual case, segment after segment and batch after batch, as stored."""
        remaining = limit
        for index, segment in enumerate(reader.segments):
            keep = ~np.isin(segment.ids, excluded) if len(excluded) else None
            for number in range(len(segment.offsets) - 1):
                if remaining is not None and remaining <= 0:
                    return
                batch = reader.batch(index, number)
                if keep is not None:
                    mask = keep[segment.offsets[number] : segment.offsets[number + 1]]
                    if not mask.all():
                        batch = batch.filter(pa.array(mask))
                if remaining is not None:
                    batch = batch.slice(0, remaining)
                    remaining -= batch.num_rows
                if batch.num_rows:
                    yield self._from_cache_table(pa.Table.from_batches([batch]), schema)

    def _from_cache_table(self, table: pa.Table, schema: pa.Schema) -> RawBatch:
        present = set(table.column_names)
        answers = pa.table(
            {
                f.name: table.column(ANSWER_PREFIX + f.name).combine_chunks()
                if ANSWER_PREFIX + f.name in present
                else pa.nulls(table.num_rows, type=f.type)
                for f in schema
            },
            schema=schema,
        )
        return RawBatch(
            ids=table.column("id").combine_chunks(),
            fetched={name: table.column(name).combine_chunks() for name in QUERY_FIELDS},
            answers=answers,
        )


def _in_id_order(segments: list[_Segment]) -> bool:
    """Whether the segments, one after another, hold strictly increasing ids."""
    last = -1
    for segment in segments:
        if segment.ids[0] <= last or (len(segment.ids) > 1 and (np.diff(segment.ids) <= 0).any()):
            return False
        last = int(segment.ids[-1])
    return True


@dataclass
class _Positions:
    """Where each distinct id of some segments lies: its first copy's place in the
    concatenated segments, and that place as (segment, row)."""

    unique_ids: np.ndarray
    first: np.ndarray
    segment_of: np.ndarray
    row_of: np.ndarray

    def __init__(self, segments: list[_Segment]) -> None:
        ids = np.concatenate([s.ids for s in segments])
        self.segment_of = np.concatenate(
            [np.full(len(s.ids), i, dtype=np.int32) for i, s in enumerate(segments)]
        )
        self.row_of = np.concatenate([np.arange(len(s.ids), dtype=np.int64) for s in segments])
        self.unique_ids, self.first = np.unique(ids, return_index=True)


def _chunks(order: np.ndarray, size: int) -> Iterator[np.ndarray]:
    for start in range(0, len(order), size):
        yield order[start : start + size]


class _BatchReader:
    """Record batches of cached segments, by (segment, batch) or rows by (segment, row).

    Opens every segment at once, so a compaction that removes them meanwhile does not
    disturb the reading, and keeps the few batches read last, so rows of one batch spread
    over two chunks of the output (or committed late, in a later segment) are read once.
    """

    KEEP = 4

    def __init__(self, segments: list[_Segment]) -> None:
        self.segments = segments
        self._sources: list[pa.NativeFile] = []
        try:
            for segment in segments:
                self._sources.append(pa.OSFile(str(segment.path)))
        except BaseException:
            self.close()
            raise
        self._readers = [pa.ipc.open_file(source) for source in self._sources]
        self._batches: OrderedDict[tuple[int, int], pa.RecordBatch] = OrderedDict()

    def __enter__(self) -> _BatchReader:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def batch(self, segment: int, number: int) -> pa.RecordBatch:
        key = (segment, number)
        if key in self._batches:
            self._batches.move_to_end(key)
            return self._batches[key]
        batch = self._readers[segment].get_batch(number)
        self._batches[key] = batch
        if len(self._batches) > self.KEEP:
            self._batches.popitem(last=False)
        return batch

    def take(self, segments: np.ndarray, rows: np.ndarray) -> pa.Table:
        """The rows, in the order given."""
        batch_numbers = np.empty(len(rows), dtype=np.int64)
        first, last = int(segments[0]), int(segments[-1])
        for segment in (first,) if first == last and (segments == first).all() else set(segments):
            mask = segments == segment
            offsets = self.segments[segment].offsets
            batch_numbers[mask] = np.searchsorted(offsets, rows[mask], side="right") - 1
        pieces = []
        # Runs of consecutive rows from one batch, taken in one call each.
        keys = segments.astype(np.int64) * (1 << 32) + batch_numbers
        boundaries = np.flatnonzero(np.diff(keys)) + 1
        for run in np.split(np.arange(len(rows)), boundaries):
            segment, number = int(segments[run[0]]), int(batch_numbers[run[0]])
            start = self.segments[segment].offsets[number]
            batch = self.batch(segment, number)
            wanted = rows[run] - start
            if (np.diff(wanted) == 1).all():  # consecutive rows: a slice
                pieces.append(batch.slice(int(wanted[0]), len(wanted)))
            else:
                pieces.append(batch.take(pa.array(wanted)))
        return pa.Table.from_batches(pieces)

    def close(self) -> None:
        for source in self._sources:
            source.close()
        self._sources.clear()
        self._batches.clear()


def update_wave_cache(wave_id: int) -> int:
    """Bring a wave's export cache up to date and merge its small segments (the worker
    calls this after recomputing). Returns how many interviews were added."""
    if not Wave.objects.filter(pk=wave_id).exists():
        return 0
    cache = WaveCache(wave_id)
    added = cache.update()
    cache.compact()
    return added
