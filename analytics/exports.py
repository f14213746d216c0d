"""Downloads for researchers: the regional comparison table and interview microdata.

Regional table: one row per wave x geography x region x indicator (and a national row per
wave x geography x indicator), with the columns of DOMAIN.md, written as CSV (UTF-8 with
a byte-order mark, so Excel shows Cyrillic), XLSX (with a sheet of column definitions),
JSON and Parquet. A suppressed cell keeps n and its reason; its estimate is blank.

Microdata: one row per interview, the columns of `analytics.codebook`. Interviews are read
in chunks (on PostgreSQL through COPY, driven by a second thread so the database prints
rows while the previous ones are decoded) with the answers JSON fetched as text, parsed a
batch at a time by Arrow's JSON reader into typed columns, and mapped from codes to labels
column by column with Arrow compute kernels, so no Python code runs per cell on the hot
path. CSV is written batch by batch; XLSX through openpyxl's write-only mode; SPSS and
Stata files through pyreadstat from compact per-column arrays (int8/int16 codes).

Export jobs: `create_export_job`, `run_export_job` and `retry_export_job` are the writes;
the Celery task in `analytics.export_tasks` only calls `run_export_job`.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import io
import itertools
import json
import logging
import math
import threading
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pa_csv
import pyarrow.json as pa_json
from django.conf import settings
from django.db import models, transaction
from django.db.models.functions import Cast
from django.utils import timezone, translation
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy

from analytics.codebook import (
    LANGUAGES,
    NOT_APPLICABLE,
    NOT_ASKED,
    SPECIAL_CODES,
    SPSS_LABEL_MAX_BYTES,
    STATA_LABEL_MAX,
    Codebook,
    Variable,
    build_codebook,
    fit_label,
    write_codebook_xlsx,
)
from analytics.models import ExportJob, IndicatorEstimate, ResultSet
from surveys.models import FormVersion, Submission, Wave

logger = logging.getLogger(__name__)

BOM = b"\xef\xbb\xbf"
XLSX_MAX_ROWS = 1_048_575  # one row of the sheet holds the header
# Interviews per batch: large enough that Arrow's kernels dominate, small enough that a
# batch's raw JSON, parsed columns and printed text stay small (about 40 kB of memory per
# interview in flight; Arrow's readers run single-threaded, their thread pools cost more).
BATCH_ROWS = 3_000
REGIONAL_FORMATS = ("csv", "xlsx", "json", "parquet")
MICRODATA_FORMATS = ("csv", "xlsx", "sav", "dta")
CONTENT_TYPES = {
    "csv": "text/csv; charset=utf-8",
    "xlsx": "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
    "json": "application/json",
    "parquet": "application/vnd.apache.parquet",
    "sav": "application/x-spss-sav",
    "dta": "application/x-stata-dta",
}


class ExportError(ValueError):
    """A request that cannot be exported; the message is shown to the user as it is."""


# --------------------------------------------------------------------------------------
# Regional comparison table
# --------------------------------------------------------------------------------------

# Column name and its definition (shown in the XLSX definitions sheet and the API docs).
REGIONAL_COLUMNS: list[tuple[str, Any]] = [
    ("survey", gettext_lazy("Survey code.")),
    ("wave", gettext_lazy("Wave code.")),
    ("geography", gettext_lazy("KZ2013: the 16 units of 2013; KZ2022: the 20 current units.")),
    ("region_code", gettext_lazy("ISO 3166-2:KZ code of the region; KZ for the whole country.")),
    ("region_name_kk", gettext_lazy("Region name in Kazakh.")),
    ("region_name_ru", gettext_lazy("Region name in Russian.")),
    ("region_name_en", gettext_lazy("Region name in English.")),
    ("indicator", gettext_lazy("Indicator code.")),
    ("indicator_label_kk", gettext_lazy("Indicator name in Kazakh.")),
    ("indicator_label_ru", gettext_lazy("Indicator name in Russian.")),
    ("indicator_label_en", gettext_lazy("Indicator name in English.")),
    ("unit", gettext_lazy("share: a proportion from 0 to 1; index: a score from 0 to 100.")),
    ("estimate", gettext_lazy("Weighted estimate; blank when the cell is suppressed.")),
    ("se", gettext_lazy("Standard error (Taylor linearisation with strata and PSUs).")),
    ("ci_low", gettext_lazy("Lower bound of the confidence interval (95%).")),
    ("ci_high", gettext_lazy("Upper bound of the confidence interval (95%).")),
    ("ci_method", gettext_lazy("Method of the confidence interval (logit or Korn-Graubard).")),
    ("n", gettext_lazy("Unweighted number of respondents in the denominator.")),
    ("n_numerator", gettext_lazy("Unweighted number of respondents in the numerator.")),
    ("n_eff", gettext_lazy("Effective sample size: n divided by the design effect.")),
    (
        "deff",
        gettext_lazy(
            "Design effect: variance under the design over that of a simple random sample."
        ),
    ),
    ("df", gettext_lazy("Design degrees of freedom: number of PSUs minus number of strata.")),
    (
        "reliable",
        gettext_lazy("1 when the cell meets the publication rules, 0 when it is suppressed."),
    ),
    ("suppression_reason", gettext_lazy("Why the estimate is not published.")),
    (
        "review_flag",
        gettext_lazy(
            "Published but to be read with care (for example fewer than 8 degrees of freedom)."
        ),
    ),
    ("national_estimate", gettext_lazy("Estimate for the whole country in the same wave.")),
    ("diff_vs_rest", gettext_lazy("Region minus the rest of the country.")),
    (
        "diff_vs_rest_se",
        gettext_lazy("Standard error of the difference with the rest of the country."),
    ),
    ("diff_vs_rest_p", gettext_lazy("p-value of the difference with the rest of the country.")),
    ("diff_vs_rest_p_adjusted", gettext_lazy("p-value adjusted across regions (Holm).")),
    ("previous_wave", gettext_lazy("Wave the change is measured from.")),
    ("previous_estimate", gettext_lazy("Estimate in the previous wave.")),
    ("change", gettext_lazy("Change since the previous wave.")),
    ("change_se", gettext_lazy("Standard error of the change.")),
    ("change_p", gettext_lazy("p-value of the change.")),
    ("change_p_adjusted", gettext_lazy("p-value of the change adjusted across regions (Holm).")),
    (
        "boundary_note",
        gettext_lazy("Note on boundary changes between the 2013 and current geographies."),
    ),
    ("weights_version", gettext_lazy("Version of the weights the estimate was computed with.")),
    ("data_version", gettext_lazy("Fingerprint of the interviews the estimate was computed from.")),
    ("computed_at", gettext_lazy("When the estimate was computed (UTC).")),
]
REGIONAL_FIELD_NAMES = [name for name, _definition in REGIONAL_COLUMNS]
NATIONAL_NAMES = {"kk": "Қазақстан", "ru": "Казахстан", "en": "Kazakhstan"}
FLOAT_COLUMNS = {
    "estimate",
    "se",
    "ci_low",
    "ci_high",
    "n_eff",
    "deff",
    "df",
    "national_estimate",
    "diff_vs_rest",
    "diff_vs_rest_se",
    "diff_vs_rest_p",
    "diff_vs_rest_p_adjusted",
    "previous_estimate",
    "change",
    "change_se",
    "change_p",
    "change_p_adjusted",
}
INT_COLUMNS = {"n", "n_numerator", "reliable"}


def indicator_catalogue() -> dict[str, dict[str, Any]]:
    """Indicator code -> {"labels": {kk, ru, en}, "unit": ...} from the indicator declarations."""
    from analytics.indicators import INDICATORS

    return {
        indicator.code: {"labels": dict(indicator.labels), "unit": indicator.unit}
        for indicator in INDICATORS
    }


def regional_estimates(
    *,
    waves: Iterable[Wave] | None = None,
    geography: str | None = None,
    indicators: Iterable[str] | None = None,
    region_codes: Iterable[str] | None = None,
    include_national: bool = True,
) -> models.QuerySet[IndicatorEstimate]:
    """Current estimates for the table, with everything the rows print joined in."""
    qs = IndicatorEstimate.objects.current().select_related(
        "wave__survey", "region", "previous_wave"
    )
    if waves is not None:
        qs = qs.filter(wave__in=list(waves))
    if geography:
        qs = qs.filter(geography=geography)
    if indicators:
        qs = qs.filter(indicator__in=list(indicators))
    if region_codes:
        codes = list(region_codes)
        national = models.Q(region__isnull=True) if "KZ" in codes else models.Q(pk__in=[])
        qs = qs.filter(models.Q(region__code__in=codes) | national)
    if not include_national:
        qs = qs.filter(region__isnull=False)
    return qs.order_by("wave__survey__code", "wave__code", "geography", "indicator", "region__code")


def regional_row(
    estimate: IndicatorEstimate, catalogue: dict[str, dict[str, Any]]
) -> dict[str, Any]:
    """One row of the regional table (the national row has region_code "KZ")."""
    region = estimate.region
    names = (
        {"kk": region.name_kk, "ru": region.name_ru, "en": region.name_en}
        if region is not None
        else NATIONAL_NAMES
    )
    info = catalogue.get(estimate.indicator, {})
    labels = info.get("labels", {})
    return {
        "survey": estimate.wave.survey.code,
        "wave": estimate.wave.code,
        "geography": estimate.geography,
        "region_code": region.code if region is not None else "KZ",
        **{f"region_name_{lang}": names[lang] for lang in LANGUAGES},
        "indicator": estimate.indicator,
        **{f"indicator_label_{lang}": labels.get(lang, estimate.indicator) for lang in LANGUAGES},
        "unit": info.get("unit", ""),
        "estimate": None if estimate.suppressed else estimate.estimate,
        "se": None if estimate.suppressed else estimate.se,
        "ci_low": None if estimate.suppressed else estimate.ci_low,
        "ci_high": None if estimate.suppressed else estimate.ci_high,
        "ci_method": estimate.ci_method,
        "n": estimate.n,
        "n_numerator": estimate.n_numerator,
        "n_eff": estimate.n_eff,
        "deff": estimate.deff,
        "df": estimate.df,
        "reliable": 0 if estimate.suppressed else 1,
        "suppression_reason": estimate.suppression_reason,
        "review_flag": estimate.review_flag,
        "national_estimate": estimate.national_estimate,
        "diff_vs_rest": None if estimate.suppressed else estimate.diff_vs_rest,
        "diff_vs_rest_se": None if estimate.suppressed else estimate.diff_vs_rest_se,
        "diff_vs_rest_p": None if estimate.suppressed else estimate.diff_vs_rest_p,
        "diff_vs_rest_p_adjusted": None
        if estimate.suppressed
        else estimate.diff_vs_rest_p_adjusted,
        "previous_wave": estimate.previous_wave.code if estimate.previous_wave is not None else "",
        "previous_estimate": estimate.previous_estimate,
        "change": None if estimate.suppressed else estimate.change,
        "change_se": None if estimate.suppressed else estimate.change_se,
        "change_p": None if estimate.suppressed else estimate.change_p,
        "change_p_adjusted": None if estimate.suppressed else estimate.change_p_adjusted,
        "boundary_note": estimate.boundary_note,
        "weights_version": estimate.weights_version,
        "data_version": estimate.data_version,
        "computed_at": estimate.computed_at.astimezone(dt.UTC).replace(tzinfo=None)
        if estimate.computed_at
        else None,
    }


def regional_rows(estimates: Iterable[IndicatorEstimate]) -> list[dict[str, Any]]:
    catalogue = indicator_catalogue()
    return [regional_row(estimate, catalogue) for estimate in estimates]


def _clean_float(value: Any) -> Any:
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value


def write_regional(rows: list[dict[str, Any]], file_format: str, out: IO[bytes]) -> None:
    """Write the regional table in one of REGIONAL_FORMATS to a binary file object."""
    if file_format == "csv":
        out.write(BOM)
        text = io.TextIOWrapper(out, encoding="utf-8", newline="", write_through=True)
        import csv

        writer = csv.DictWriter(text, fieldnames=REGIONAL_FIELD_NAMES, lineterminator="\r\n")
        writer.writeheader()
        for row in rows:
            writer.writerow(
                {
                    key: ""
                    if value is None
                    else (value.isoformat() + "Z" if isinstance(value, dt.datetime) else value)
                    for key, value in row.items()
                }
            )
        text.detach()
    elif file_format == "json":
        payload = {
            "columns": {name: str(definition) for name, definition in REGIONAL_COLUMNS},
            "rows": [
                {
                    key: (
                        value.isoformat() + "Z"
                        if isinstance(value, dt.datetime)
                        else _clean_float(value)
                    )
                    for key, value in row.items()
                }
                for row in rows
            ],
        }
        out.write(json.dumps(payload, ensure_ascii=False, indent=1).encode("utf-8"))
    elif file_format == "parquet":
        import pyarrow.parquet as pq

        table = pa.Table.from_pylist(
            [{k: _clean_float(v) for k, v in row.items()} for row in rows],
            schema=_regional_schema(),
        )
        table = table.replace_schema_metadata(
            {f"definition:{name}": str(definition) for name, definition in REGIONAL_COLUMNS}
        )
        pq.write_table(table, out)
    elif file_format == "xlsx":
        from openpyxl import Workbook
        from openpyxl.styles import Font

        book = Workbook()
        sheet = book.active
        sheet.title = "regional"
        sheet.append(REGIONAL_FIELD_NAMES)
        for cell in sheet[1]:
            cell.font = Font(bold=True)
        sheet.freeze_panes = "A2"
        for row in rows:
            sheet.append([_clean_float(row[name]) for name in REGIONAL_FIELD_NAMES])
        definitions = book.create_sheet("definitions")
        definitions.append([_("Column"), _("Definition")])
        for cell in definitions[1]:
            cell.font = Font(bold=True)
        for name, definition in REGIONAL_COLUMNS:
            definitions.append([name, str(definition)])
        definitions.append([])
        definitions.append(
            [
                _("Publication rules"),
                _(
                    "A cell is suppressed when n or the effective n is below 30, the Korn-Graubard "
                    "interval is 30 points wide or more, or wider than 5 points and more than 1.3 times "
                    "the estimate, or fewer than 10 respondents are in the numerator or denominator."
                ),
            ]
        )
        book.save(out)
    else:
        raise ExportError(_("Unknown format: %(format)s.") % {"format": file_format})


def _regional_schema() -> pa.Schema:
    fields = []
    for name in REGIONAL_FIELD_NAMES:
        if name in FLOAT_COLUMNS:
            fields.append(pa.field(name, pa.float64()))
        elif name in INT_COLUMNS:
            fields.append(pa.field(name, pa.int64()))
        elif name == "computed_at":
            fields.append(pa.field(name, pa.timestamp("us", tz="UTC")))
        else:
            fields.append(pa.field(name, pa.string()))
    return pa.schema(fields)


def regional_filename(file_format: str) -> str:
    return f"tanys-regional-{timezone.now():%Y%m%d-%H%M}.{file_format}"


# --------------------------------------------------------------------------------------
# Microdata
# --------------------------------------------------------------------------------------

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
        return Submission.objects.accepted().filter(wave_id__in=self.wave_ids).order_by("id")

    def sources(self) -> tuple[list[FormVersion], list[int]]:
        """The questionnaire versions and the enumerator accounts behind the selection."""
        pairs = set(
            self.submissions().order_by().values_list("form_version_id", "enumerator_id").distinct()
        )
        ids = {fv for fv, _enumerator in pairs}
        ids |= set(
            Wave.objects.filter(pk__in=self.wave_ids, form_version__isnull=False).values_list(
                "form_version_id", flat=True
            )
        )
        enumerators = sorted({e for _fv, e in pairs if e is not None})
        return list(FormVersion.objects.filter(pk__in=ids)), enumerators

    def codebook(self) -> Codebook:
        return build_codebook(self.sources()[0])


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


def _fetch_queryset(selection: MicrodataSelection) -> models.QuerySet:
    queryset = (
        selection.submissions()
        .annotate(
            answers_text=Cast("answers", models.TextField()),
            started_epoch=EpochSeconds("started_at"),
            ended_epoch=EpochSeconds("ended_at"),
            is_synthetic_int=Cast("is_synthetic", models.IntegerField()),
            instance_text=Cast("instance_id", models.CharField()),
        )
        .values_list(
            *[
                {"is_synthetic": "is_synthetic_int", "instance_id": "instance_text"}.get(f, f)
                for f in QUERY_FIELDS
            ],
            "answers_text",
        )
    )
    return queryset[: selection.limit] if selection.limit else queryset


def _fetch_schema() -> pa.Schema:
    return pa.schema(
        [(name, FETCH_TYPES.get(name, pa.string())) for name in QUERY_FIELDS]
        + [("answers_text", pa.string())]
    )


_COPY_DONE = object()


def _fetch_postgresql(selection: MicrodataSelection, batch_size: int) -> Iterator[pa.RecordBatch]:
    """COPY (the export query) TO STDOUT as CSV, read by Arrow a batch at a time.

    A second thread drives the COPY and hands over chunks of `batch_size` rows through a
    queue of a few chunks, so the database prints rows while this thread turns the
    previous ones into columns (two cores busy, memory bounded). While the COPY is open
    the connection can run nothing else: callers record progress through another
    connection (see `_JobProgress`).
    """
    import queue

    from django.db import connection

    sql, params = _fetch_queryset(selection).query.sql_with_params()
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
                rows: list[bytes] = []
                # libpq delivers one row per COPY message. A consumer that gave up leaves
                # the rest to be read out, so the connection is usable afterwards.
                for message in copy:
                    if stop.is_set():
                        continue
                    rows.append(bytes(message))
                    if len(rows) == batch_size:
                        hand_over(b"".join(rows))
                        rows = []
                if rows:
                    hand_over(b"".join(rows))
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
                pa.BufferReader(item),
                read_options=read_options,
                parse_options=parse_options,
                convert_options=convert_options,
            )
            del item
            yield from table.combine_chunks().to_batches()
    finally:
        stop.set()
        producer.join()


def _fetch_rows(selection: MicrodataSelection, batch_size: int) -> Iterator[pa.RecordBatch]:
    """Any other database: a chunked cursor, columns built a batch at a time."""
    schema = _fetch_schema()
    rows = _fetch_queryset(selection).iterator(chunk_size=batch_size)
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
    selection: MicrodataSelection, batch_size: int = BATCH_ROWS
) -> Iterator[pa.RecordBatch]:
    """The selection's interviews as Arrow record batches of the fetched columns."""
    from django.db import connection

    if connection.vendor == "postgresql":
        yield from _fetch_postgresql(selection, batch_size)
    else:
        yield from _fetch_rows(selection, batch_size)


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


def iter_microdata_batches(
    selection: MicrodataSelection, codebook: Codebook, *, batch_size: int = BATCH_ROWS
) -> Iterator[Batch]:
    """Interviews of the selection as typed column batches, in codebook order."""
    schema = _answers_schema(codebook)
    asked: dict[str, set[str]] = {}
    versions, enumerators = selection.sources()
    for version in versions:
        asked[version.version] = set(version.questions)
    lacking = {
        variable.source: {v for v, names in asked.items() if variable.source not in names}
        for variable in codebook.question_variables
    }
    # Enumerators become 1..k in account order; interviews without one (web) get 0.
    enumerator_keys = pa.array(enumerators, type=pa.int64())
    for record_batch in fetch_batches(selection, batch_size):
        fetched = dict(zip(QUERY_FIELDS, record_batch.columns[:-1], strict=True))
        design: dict[str, pa.Array] = {}
        for source, name in zip(DESIGN_SOURCES, QUERY_FIELDS, strict=True):
            array = fetched[name]
            if source in {"started_at", "ended_at"}:
                array = _as_timestamp(array)
            elif source == "instance_id":
                array = _dashed_uuid(array)
            elif source == "enumerator_id":
                index = pc.index_in(array, value_set=enumerator_keys)
                array = pc.fill_null(pc.add(pc.cast(index, pa.int64()), 1), 0)
            design[source] = array
        texts = record_batch.column(record_batch.num_columns - 1)
        answers = _parse_answers(texts, schema)
        version_column = design["form_version__version"]
        columns: dict[str, pa.Array] = {}
        for variable in codebook.variables:
            if variable.kind in {"design", "paradata"}:
                columns[variable.name] = design[variable.source]
                continue
            raw = answers.column(variable.source).combine_chunks()
            missing = _missing_codes(variable, version_column, lacking)
            if variable.kind == "select_multiple_option":
                flat = pc.list_flatten(raw)
                parents = pc.list_parent_indices(raw).to_numpy()
                hit = np.zeros(len(raw), dtype=np.int64)
                chosen = pc.equal(flat, variable.option).to_numpy(zero_copy_only=False)
                hit[parents[chosen]] = 1
                columns[variable.name] = pc.if_else(pc.is_null(raw), missing, pa.array(hit))
            elif variable.storage == "string":
                columns[variable.name] = pc.coalesce(raw, pc.cast(missing, pa.string()))
            else:
                columns[variable.name] = pc.coalesce(raw, pc.cast(missing, raw.type))
        yield Batch(length=record_batch.num_rows, columns=columns)


class LabelMapper:
    """Codes to labels in one language for one variable, vectorised."""

    def __init__(self, variable: Variable, language: str, *, specials_only: bool = False) -> None:
        # A select_multiple indicator stays 0/1 in a labelled file; only special codes get words.
        keys = [k for k in variable.value_labels if not specials_only or k in SPECIAL_CODES]
        self.keys = pa.array(keys, type=pa.string() if variable.storage == "string" else None)
        self.labels = pa.array([variable.value_label(k, language) for k in keys], type=pa.string())

    def __call__(self, array: pa.Array) -> pa.Array:
        keys = pc.cast(self.keys, array.type) if array.type != self.keys.type else self.keys
        index = pc.index_in(array, value_set=keys)
        mapped = pc.take(self.labels, index)
        if mapped.null_count == array.null_count:
            return mapped
        return pc.coalesce(mapped, pc.cast(array, pa.string()))


def _printable(
    codebook: Codebook, batch: Batch, mappers: dict[str, LabelMapper] | None
) -> list[pa.Array]:
    """Columns ready for a text file: labels where asked for, timestamps as ISO text."""
    out = []
    for variable in codebook.variables:
        array = batch.columns[variable.name]
        if variable.storage == "datetime":
            array = pc.strftime(
                pc.cast(array, pa.timestamp("s", tz="UTC"), safe=False), format="%Y-%m-%dT%H:%M:%SZ"
            )
        elif mappers is not None and variable.name in mappers:
            array = mappers[variable.name](array)
        out.append(array)
    return out


def _mappers(codebook: Codebook, selection: MicrodataSelection) -> dict[str, LabelMapper] | None:
    if selection.values != "labels":
        return None
    return {
        v.name: LabelMapper(v, selection.language, specials_only=v.kind == "select_multiple_option")
        for v in codebook.variables
        if v.value_labels
    }


Progress = Callable[[int], None]


def write_microdata_csv(
    selection: MicrodataSelection,
    codebook: Codebook,
    out: IO[bytes],
    progress: Progress | None = None,
) -> int:
    mappers = _mappers(codebook, selection)
    names = [v.name for v in codebook.variables]
    out.write(BOM)
    writer: pa_csv.CSVWriter | None = None
    schema: pa.Schema | None = None
    done = 0
    options = pa_csv.WriteOptions(quoting_style="needed")
    for batch in iter_microdata_batches(selection, codebook):
        table = pa.Table.from_arrays(_printable(codebook, batch, mappers), names=names)
        if writer is None or schema is None:
            schema = table.schema
            writer = pa_csv.CSVWriter(out, schema, write_options=options)
        writer.write_table(table if table.schema == schema else table.cast(schema))
        done += batch.length
        if progress:
            progress(done)
    if writer is None:  # no interviews: a header alone
        out.write((",".join(f'"{n}"' for n in names) + "\n").encode("utf-8"))
    else:
        writer.close()
    return done


def write_microdata_xlsx(
    selection: MicrodataSelection, codebook: Codebook, path: Path, progress: Progress | None = None
) -> int:
    """XLSX through XlsxWriter in constant-memory mode: rows go to disk as they are written.

    (XlsxWriter rather than openpyxl here: it writes cells about three times faster, and
    with URL, number and formula detection off a label is written as the text it is.)
    """
    import xlsxwriter

    mappers = _mappers(codebook, selection)
    book = xlsxwriter.Workbook(
        str(path),
        {
            "constant_memory": True,
            "strings_to_numbers": False,
            "strings_to_formulas": False,
            "strings_to_urls": False,
            "default_date_format": "yyyy-mm-dd hh:mm:ss",
        },
    )
    bold = book.add_format({"bold": True})
    sheet = book.add_worksheet("data")
    sheet.write_row(0, 0, [v.name for v in codebook.variables], bold)
    sheet.freeze_panes(1, 0)
    done = 0
    write_row = sheet.write_row
    for batch in iter_microdata_batches(selection, codebook):
        columns = [array.to_pylist() for array in _printable_xlsx(codebook, batch, mappers)]
        for offset, row in enumerate(zip(*columns, strict=True)):
            write_row(done + offset + 1, 0, row)
        done += batch.length
        if progress:
            progress(done)
    labels = book.add_worksheet("variables")
    labels.write_row(0, 0, ["variable", f"label_{selection.language}"], bold)
    for number, variable in enumerate(codebook.variables, start=1):
        labels.write_row(number, 0, [variable.name, variable.label(selection.language)])
    book.close()
    return done


def _printable_xlsx(
    codebook: Codebook, batch: Batch, mappers: dict[str, LabelMapper] | None
) -> list[pa.Array]:
    out = []
    for variable in codebook.variables:
        array = batch.columns[variable.name]
        if variable.storage == "datetime":
            # Excel has no time zones: naive UTC, as the column label says.
            array = pc.cast(array, pa.timestamp("us"))
        elif mappers is not None and variable.name in mappers:
            array = mappers[variable.name](array)
        out.append(array)
    return out


def _int_dtype(low: int, high: int) -> np.dtype:
    for dtype in (np.int8, np.int16, np.int32):
        info = np.iinfo(dtype)
        # Stata reserves the top of each integer range for its missing values.
        if low >= info.min and high <= info.max - 27:
            return np.dtype(dtype)
    return np.dtype(np.float64)


def write_microdata_stats(
    selection: MicrodataSelection,
    codebook: Codebook,
    path: Path,
    file_format: str,
    progress: Progress | None = None,
) -> int:
    """SPSS .sav or Stata .dta with variable and value labels in the selection's language.

    Values are always codes here (the labels travel as value labels). pyreadstat writes a
    whole DataFrame, so columns are gathered in their smallest integer type: a million
    interviews of this questionnaire take about 150 MB.
    """
    import pandas as pd
    import pyreadstat

    parts: dict[str, list[np.ndarray]] = {v.name: [] for v in codebook.variables}
    done = 0
    for batch in iter_microdata_batches(selection, codebook):
        for variable in codebook.variables:
            array = batch.columns[variable.name]
            if variable.storage == "int":
                values = array.to_numpy(zero_copy_only=False)
                if array.null_count:
                    values = np.where(np.isnan(values), np.nan, values)
                else:
                    values = values.astype(np.int32)
                    values = values.astype(
                        _int_dtype(int(values.min()), int(values.max())), copy=False
                    )
            elif variable.storage == "float":
                values = array.to_numpy(zero_copy_only=False).astype(np.float64)
            elif variable.storage == "datetime":
                values = pc.cast(array, pa.timestamp("us")).to_numpy(zero_copy_only=False)
            else:
                dictionary = pc.dictionary_encode(array)
                words = np.asarray(dictionary.dictionary.to_pylist(), dtype=object)
                indices = dictionary.indices.to_numpy(zero_copy_only=False)
                values = (
                    words[indices] if len(words) else np.asarray([""] * len(array), dtype=object)
                )
            parts[variable.name].append(values)
        done += batch.length
        if progress:
            progress(done)
    frame_columns: dict[str, Any] = {}
    for variable in codebook.variables:
        chunks = parts.pop(variable.name)
        if not chunks:
            frame_columns[variable.name] = pd.Series(
                [], dtype=object if variable.storage == "string" else float
            )
            continue
        if variable.storage == "int" and all(c.dtype.kind == "i" for c in chunks):
            low = min(int(c.min()) for c in chunks)
            high = max(int(c.max()) for c in chunks)
            frame_columns[variable.name] = np.concatenate(
                [c.astype(_int_dtype(low, high), copy=False) for c in chunks]
            )
        elif variable.storage == "int":
            frame_columns[variable.name] = np.concatenate([c.astype(np.float64) for c in chunks])
        else:
            frame_columns[variable.name] = np.concatenate(chunks)
    frame = pd.DataFrame(frame_columns, copy=False)
    language = selection.language
    labels = [variable.label(language) for variable in codebook.variables]
    value_labels: dict[str, dict[Any, str]] = {}
    for variable in codebook.variables:
        if variable.storage not in {"int"} or not variable.value_labels:
            continue
        value_labels[variable.name] = {
            int(code): variable.value_label(code, language) or str(code)
            for code in variable.value_labels
            if isinstance(code, int)
        }
    if file_format == "sav":
        missing: dict[str, Any] = {
            v.name: [{"lo": NOT_ASKED, "hi": -1}]
            for v in codebook.question_variables
            if v.storage in {"int", "float"}
        }
        pyreadstat.write_sav(
            frame,
            str(path),
            column_labels=[fit_label(label, max_bytes=SPSS_LABEL_MAX_BYTES) for label in labels],
            variable_value_labels={
                name: {code: fit_label(text, max_bytes=120) for code, text in mapping.items()}
                for name, mapping in value_labels.items()
            },
            missing_ranges=missing,
            file_label=_("Tanys microdata"),
        )
    else:
        pyreadstat.write_dta(
            frame,
            str(path),
            column_labels=[fit_label(label, max_chars=STATA_LABEL_MAX) for label in labels],
            variable_value_labels=value_labels,
            file_label=_("Tanys microdata")[:80],
        )
    return done


def write_microdata(
    selection: MicrodataSelection,
    file_format: str,
    path: Path,
    progress: Progress | None = None,
    codebook: Codebook | None = None,
) -> int:
    """Write the selection's interviews to `path` in `file_format`. Returns the rows written."""
    codebook = codebook or selection.codebook()
    if file_format == "csv":
        with open(path, "wb") as out:
            return write_microdata_csv(selection, codebook, out, progress)
    if file_format == "xlsx":
        return write_microdata_xlsx(selection, codebook, path, progress)
    if file_format in {"sav", "dta"}:
        return write_microdata_stats(selection, codebook, path, file_format, progress)
    raise ExportError(_("Unknown format: %(format)s.") % {"format": file_format})


# --------------------------------------------------------------------------------------
# Export jobs
# --------------------------------------------------------------------------------------

KINDS = {
    "regional": REGIONAL_FORMATS,
    "microdata": MICRODATA_FORMATS,
    "codebook": ("xlsx",),
}


def can_export(user: Any, kind: str) -> bool:
    if kind in {"microdata", "codebook"}:
        return bool(user.has_perm("surveys.export_microdata"))
    return bool(user.has_perm("surveys.view_estimates"))


def clean_parameters(*, kind: str, file_format: str, parameters: dict[str, Any]) -> dict[str, Any]:
    """Check a request and return its normalised parameters; ExportError says what is wrong."""
    if kind not in KINDS:
        raise ExportError(_("Unknown export kind: %(kind)s.") % {"kind": kind})
    if file_format not in KINDS[kind]:
        raise ExportError(
            _("%(kind)s exports come as %(formats)s, not %(format)s.")
            % {"kind": kind, "formats": ", ".join(KINDS[kind]), "format": file_format}
        )
    raw_waves = parameters.get("waves") or []
    if not isinstance(raw_waves, list) or not all(isinstance(w, int) for w in raw_waves):
        raise ExportError(_("waves: give a list of wave ids."))
    waves = list(Wave.objects.filter(pk__in=raw_waves).values_list("pk", flat=True))
    unknown = sorted(set(raw_waves) - set(waves))
    if unknown:
        raise ExportError(
            _("waves: no wave with id %(ids)s.") % {"ids": ", ".join(str(i) for i in unknown)}
        )
    language = parameters.get("language") or "ru"
    if language not in LANGUAGES:
        raise ExportError(_("language: choose kk, ru or en."))
    values = parameters.get("values") or "labels"
    if values not in {"labels", "codes"}:
        raise ExportError(_("values: choose labels or codes."))
    cleaned: dict[str, Any] = {"waves": sorted(waves), "language": language, "values": values}
    if kind in {"microdata", "codebook"} and not waves:
        raise ExportError(_("waves: choose at least one wave."))
    if kind == "regional":
        cleaned["geography"] = parameters.get("geography") or ""
        cleaned["indicators"] = [str(i) for i in parameters.get("indicators") or []]
    if kind == "microdata" and file_format == "xlsx":
        rows = MicrodataSelection(wave_ids=tuple(waves)).submissions().count()
        if rows > XLSX_MAX_ROWS:
            raise ExportError(
                _(
                    "An Excel sheet holds at most %(max)s rows and this selection has %(rows)s; choose CSV, SPSS or Stata."
                )
                % {"max": f"{XLSX_MAX_ROWS:,}", "rows": f"{rows:,}"}
            )
    return cleaned


def direct_export_limit() -> int:
    """Microdata selections up to this many interviews are built in the request."""
    return int(getattr(settings, "EXPORT_DIRECT_MAX_ROWS", 5000))


def create_export_job(
    *, user: Any, kind: str, file_format: str, parameters: dict[str, Any]
) -> ExportJob:
    """Validate and queue an export; the worker starts after the transaction commits."""
    if not can_export(user, kind):
        raise PermissionError(_("You do not have permission for this export."))
    cleaned = clean_parameters(kind=kind, file_format=file_format, parameters=parameters)
    cleaned["interface_language"] = translation.get_language() or settings.LANGUAGE_CODE
    with transaction.atomic():
        job = ExportJob.objects.create(
            requested_by=user, kind=kind, file_format=file_format, parameters=cleaned
        )
        _enqueue(job)
    return job


def retry_export_job(*, job: ExportJob) -> ExportJob:
    """Queue a failed job again. Only failed jobs can be retried."""
    with transaction.atomic():
        updated = ExportJob.objects.filter(pk=job.pk, status=ExportJob.Status.FAILED).update(
            status=ExportJob.Status.QUEUED,
            error="",
            rows_done=0,
            rows_total=None,
            started_at=None,
            finished_at=None,
        )
        if not updated:
            raise ExportError(_("Only a failed export can be retried."))
        job.refresh_from_db()
        _enqueue(job)
    return job


def _enqueue(job: ExportJob) -> None:
    from analytics.export_tasks import build_export

    transaction.on_commit(lambda: build_export.delay(job.pk))


def export_filename(job: ExportJob) -> str:
    return f"tanys-{job.kind}-{job.pk}.{job.file_format}"


# A job still "running" after this long lost its worker (the task's hard time limit is the
# same): a redelivered message may take it over.
STALE_RUNNING = dt.timedelta(hours=4)


def run_export_job(*, job_id: int) -> None:
    """Build a queued job's file. Idempotent: a job that is not queued is left alone."""
    now = timezone.now()
    claimed = (
        ExportJob.objects.filter(pk=job_id)
        .filter(
            models.Q(status=ExportJob.Status.QUEUED)
            | models.Q(status=ExportJob.Status.RUNNING, started_at__lt=now - STALE_RUNNING)
        )
        .update(status=ExportJob.Status.RUNNING, started_at=now, rows_done=0, error="")
    )
    if not claimed:
        return
    job = ExportJob.objects.get(pk=job_id)
    name = export_filename(job)
    folder = Path(settings.MEDIA_ROOT) / "exports"
    partial = folder / f".{name}.part"
    with translation.override(job.parameters.get("interface_language") or settings.LANGUAGE_CODE):
        try:
            folder.mkdir(parents=True, exist_ok=True)
            rows = _build(job, partial)
            partial.replace(folder / name)
            ExportJob.objects.filter(pk=job.pk).update(
                status=ExportJob.Status.DONE,
                file=f"exports/{name}",
                rows_done=rows,
                rows_total=rows,
                finished_at=timezone.now(),
            )
        except Exception as exc:  # the reason is stored and shown; the job can be retried
            logger.exception("export job %s failed", job_id)
            if isinstance(exc, OSError):
                reason = _("The export file could not be written: %(error)s") % {"error": exc}
            elif isinstance(exc, ExportError):
                reason = str(exc)
            else:
                reason = _("The export failed unexpectedly (%(error)s: %(detail)s).") % {
                    "error": type(exc).__name__,
                    "detail": exc,
                }
            with contextlib.suppress(OSError):
                partial.unlink(missing_ok=True)
            ExportJob.objects.filter(pk=job.pk).update(
                status=ExportJob.Status.FAILED, error=reason, finished_at=timezone.now()
            )


def _build(job: ExportJob, path: Path) -> int:
    params = job.parameters
    if job.kind == "regional":
        waves = (
            Wave.objects.filter(pk__in=params.get("waves") or []) if params.get("waves") else None
        )
        rows = regional_rows(
            regional_estimates(
                waves=waves,
                geography=params.get("geography") or None,
                indicators=params.get("indicators") or None,
            )
        )
        ExportJob.objects.filter(pk=job.pk).update(rows_total=len(rows))
        with open(path, "wb") as out:
            write_regional(rows, job.file_format, out)
        return len(rows)
    selection = MicrodataSelection(
        wave_ids=tuple(params["waves"]), language=params["language"], values=params["values"]
    )
    codebook = selection.codebook()
    if job.kind == "codebook":
        write_codebook_xlsx(codebook, path)
        return len(codebook.variables)
    total = selection.submissions().count()
    ExportJob.objects.filter(pk=job.pk).update(rows_total=total)
    from django.db import connection

    if connection.vendor != "postgresql":

        def progress(done: int) -> None:
            ExportJob.objects.filter(pk=job.pk).update(rows_done=done)

        return write_microdata(selection, job.file_format, path, progress, codebook)
    with _JobProgress(job.pk) as reporter:
        return write_microdata(selection, job.file_format, path, reporter, codebook)


class _JobProgress:
    """Records a job's rows done once a second from its own thread and connection.

    On PostgreSQL the export's connection is busy with a COPY while rows are written, so
    progress never goes through it; the update skips a locked row rather than wait.
    """

    def __init__(self, job_id: int) -> None:
        self.job_id = job_id
        self.done = 0
        self._written = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="tanys-export-progress", daemon=True)

    def __call__(self, done: int) -> None:
        self.done = done

    def __enter__(self) -> _JobProgress:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()

    def _run(self) -> None:
        from django.db import connections

        try:
            while not self._stop.wait(1.0):
                done = self.done
                if done == self._written:
                    continue
                try:
                    with transaction.atomic():
                        unlocked = ExportJob.objects.filter(pk=self.job_id).select_for_update(
                            skip_locked=True
                        )
                        ExportJob.objects.filter(pk__in=unlocked.values("pk")).update(
                            rows_done=done
                        )
                    self._written = done
                except Exception:  # progress is informative; the export goes on
                    logger.warning("progress of export job %s not recorded", self.job_id)
        finally:
            connections.close_all()


def latest_result_sets(waves: Iterable[Wave]) -> dict[int, ResultSet]:
    return {
        rs.wave_id: rs for rs in ResultSet.objects.filter(wave__in=list(waves), is_current=True)
    }
