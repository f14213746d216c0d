"""Downloads for researchers: the regional comparison table and interview microdata.

Regional table: one row per wave x geography x region x indicator (and a national row per
wave x geography x indicator), with the columns of DOMAIN.md, written as CSV (UTF-8 with
a byte-order mark, so Excel shows Cyrillic), XLSX (with a sheet of column definitions),
JSON and Parquet. A suppressed cell keeps n and its reason; its estimate is blank.

Microdata: one row per interview, the columns of `analytics.codebook`, read as typed
Arrow columns by `analytics.microdata` (from each wave's export cache, so an interview's
answers JSON is parsed once, not at every export) and mapped from codes to labels column
by column (a numpy lookup table per variable), so no Python code runs per cell on the hot
path. CSV (Arrow's writer) and XLSX (`analytics.xlsx`, column-wise as well) are written
in a thread of their own, so the file is written on one core while the next batch is
read on the other; SPSS and Stata files through pyreadstat from compact per-column arrays
(int8/int16 codes).

Export jobs: `create_export_job`, `run_export_job` and `retry_export_job` are the writes;
the Celery task in `analytics.export_tasks` only calls `run_export_job`.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import io
import json
import logging
import math
import threading
import zipfile
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import IO, Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pa_csv
from django.conf import settings
from django.db import models, transaction
from django.utils import timezone, translation
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy

from analytics.codebook import (
    LANGUAGES,
    NOT_ASKED,
    SPECIAL_CODES,
    SPSS_LABEL_MAX_BYTES,
    STATA_LABEL_MAX,
    Codebook,
    Variable,
    fit_label,
    write_codebook_xlsx,
)
from analytics.microdata import Batch, MicrodataSelection, Preparing, iter_microdata_batches
from analytics.models import ExportJob, IndicatorEstimate, ResultSet
from surveys.models import Wave

logger = logging.getLogger(__name__)

BOM = b"\xef\xbb\xbf"
XLSX_MAX_ROWS = 1_048_575  # one row of the sheet holds the header
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
# Blank in a suppressed cell's row.
SUPPRESSED_BLANK = (
    "estimate",
    "se",
    "ci_low",
    "ci_high",
    "diff_vs_rest",
    "diff_vs_rest_se",
    "diff_vs_rest_p",
    "diff_vs_rest_p_adjusted",
    "change",
    "change_se",
    "change_p",
    "change_p_adjusted",
)


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
    row = {
        "survey": estimate.wave.survey.code,
        "wave": estimate.wave.code,
        "geography": estimate.geography,
        "region_code": region.code if region is not None else "KZ",
        **{f"region_name_{lang}": names[lang] for lang in LANGUAGES},
        "indicator": estimate.indicator,
        **{f"indicator_label_{lang}": labels.get(lang, estimate.indicator) for lang in LANGUAGES},
        "unit": info.get("unit", ""),
        "estimate": estimate.estimate,
        "se": estimate.se,
        "ci_low": estimate.ci_low,
        "ci_high": estimate.ci_high,
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
        "diff_vs_rest": estimate.diff_vs_rest,
        "diff_vs_rest_se": estimate.diff_vs_rest_se,
        "diff_vs_rest_p": estimate.diff_vs_rest_p,
        "diff_vs_rest_p_adjusted": estimate.diff_vs_rest_p_adjusted,
        "previous_wave": estimate.previous_wave.code if estimate.previous_wave is not None else "",
        "previous_estimate": estimate.previous_estimate,
        "change": estimate.change,
        "change_se": estimate.change_se,
        "change_p": estimate.change_p,
        "change_p_adjusted": estimate.change_p_adjusted,
        "boundary_note": estimate.boundary_note,
        "weights_version": estimate.weights_version,
        "data_version": estimate.data_version,
        "computed_at": estimate.computed_at.astimezone(dt.UTC).replace(tzinfo=None)
        if estimate.computed_at
        else None,
    }
    if estimate.suppressed:  # n and the reason stay; what was estimated does not
        row.update(dict.fromkeys(SUPPRESSED_BLANK))
    return row


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


class LabelMapper:
    """Codes to labels in one language for one variable, vectorised.

    Integer codes within a span of LOOKUP_SPAN go through a numpy lookup table (an index
    per code, then one `take` of the labels); other codes through Arrow's hash lookup. A
    code without a label prints as itself.
    """

    LOOKUP_SPAN = 1 << 16

    def __init__(self, variable: Variable, language: str, *, specials_only: bool = False) -> None:
        # A select_multiple indicator stays 0/1 in a labelled file; only special codes get words.
        keys = [k for k in variable.value_labels if not specials_only or k in SPECIAL_CODES]
        self.keys = pa.array(keys, type=pa.string() if variable.storage == "string" else None)
        self.labels = pa.array([variable.value_label(k, language) for k in keys], type=pa.string())
        self.lookup: np.ndarray | None = None
        self.low = 0
        if keys and all(isinstance(k, int) for k in keys):
            self.low, high = min(keys), max(keys)
            if high - self.low < self.LOOKUP_SPAN:
                self.lookup = np.full(high - self.low + 1, -1, dtype=np.int32)
                for position, key in enumerate(keys):
                    self.lookup[key - self.low] = position

    def __call__(self, array: pa.Array) -> pa.Array:
        if self.lookup is not None and pa.types.is_integer(array.type) and not array.null_count:
            codes = array.to_numpy() - self.low
            inside = (codes >= 0) & (codes < len(self.lookup))
            index = self.lookup[np.where(inside, codes, 0)]
            index[~inside] = -1
            unlabelled = index < 0
            if not unlabelled.any():
                return pc.take(self.labels, pa.array(index))
            mapped = pc.take(self.labels, pa.array(index, mask=unlabelled))
            return pc.coalesce(mapped, pc.cast(array, pa.string()))
        keys = pc.cast(self.keys, array.type) if array.type != self.keys.type else self.keys
        found = pc.take(self.labels, pc.index_in(array, value_set=keys))
        if found.null_count == array.null_count:
            return found
        return pc.coalesce(found, pc.cast(array, pa.string()))


def _iso_utc(array: pa.Array) -> pa.Array:
    """Timestamps as ISO 8601 text in UTC to the second ("2013-05-01T10:00:00Z").

    Arrow's cast to text, then "T" and "Z": about eight times faster than `strftime`.
    """
    seconds = pc.cast(pc.cast(array, pa.timestamp("s", tz="UTC"), safe=False), pa.timestamp("s"))
    text = pc.replace_substring(pc.cast(seconds, pa.string()), " ", "T")
    return pc.binary_join_element_wise(text, "Z", "")


def _printable(
    codebook: Codebook, batch: Batch, mappers: dict[str, LabelMapper] | None
) -> list[pa.Array]:
    """Columns ready for a text file: labels where asked for, timestamps as ISO text."""
    out = []
    for variable in codebook.variables:
        array = batch.columns[variable.name]
        if variable.storage == "datetime":
            array = _iso_utc(array)
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


class _WriterThread:
    """Runs a file writer in a thread of its own, at most `depth` items behind its producer.

    Arrow's CSV writer, zlib and file writes release the GIL, so the file is written on
    one core while the next batch is read and turned into labels on the other. A writer
    that fails stops the producer at its next `put` with the writer's exception.
    """

    def __init__(self, write: Callable[[Any], None], depth: int = 1) -> None:
        import queue

        self._write = write
        self._queue: queue.Queue[Any] = queue.Queue(maxsize=depth)
        self._error: BaseException | None = None
        self._thread = threading.Thread(target=self._run, name="tanys-export-writer", daemon=True)
        self._thread.start()

    _DONE = object()

    def _run(self) -> None:
        while True:
            item = self._queue.get()
            if item is self._DONE:
                return
            if self._error is None:
                try:
                    self._write(item)
                except BaseException as exc:  # raised in the producer's thread
                    self._error = exc

    def put(self, item: Any) -> None:
        if self._error is not None:
            raise self._error
        self._queue.put(item)

    def close(self) -> None:
        """Wait for every item to be written; raise the writer's exception, if any."""
        self._queue.put(self._DONE)
        self._thread.join()
        if self._error is not None:
            raise self._error

    def __enter__(self) -> _WriterThread:
        return self

    def __exit__(self, exc_type: object, *rest: object) -> None:
        if exc_type is None:
            self.close()
        else:  # the producer failed: let the thread finish, keep the producer's error
            self._error = self._error or RuntimeError("export stopped")
            self._queue.put(self._DONE)
            self._thread.join()


def write_microdata_csv(
    selection: MicrodataSelection,
    codebook: Codebook,
    out: IO[bytes] | pa.NativeFile,
    progress: Progress | None = None,
    preparing: Preparing | None = None,
) -> int:
    mappers = _mappers(codebook, selection)
    names = [v.name for v in codebook.variables]
    out.write(BOM)
    options = pa_csv.WriteOptions(quoting_style="needed")
    state: dict[str, Any] = {}

    def write(table: pa.Table) -> None:
        if "writer" not in state:
            state["schema"] = table.schema
            state["writer"] = pa_csv.CSVWriter(out, table.schema, write_options=options)
        schema = state["schema"]
        state["writer"].write_table(table if table.schema == schema else table.cast(schema))

    done = 0
    with _WriterThread(write) as writer:
        for batch in iter_microdata_batches(selection, codebook, preparing=preparing):
            writer.put(pa.Table.from_arrays(_printable(codebook, batch, mappers), names=names))
            done += batch.length
            if progress:
                progress(done)
    if "writer" not in state:  # no interviews: a header alone
        out.write((",".join(f'"{n}"' for n in names) + "\n").encode("utf-8"))
    else:
        state["writer"].close()
    return done


# Sheet XML per cell, generously: a sheet expected past 4 GB gets a zip64 entry.
XLSX_BYTES_PER_CELL = 64


def write_microdata_xlsx(
    selection: MicrodataSelection,
    codebook: Codebook,
    path: Path,
    progress: Progress | None = None,
    preparing: Preparing | None = None,
) -> int:
    """XLSX through `analytics.xlsx`, which builds the sheet XML column-wise with Arrow.

    (Not XlsxWriter: at about 9 µs of Python per cell it writes some 1,400 rows a second
    of this questionnaire's 83 columns; this writer does over 30 times that.) The sheet is
    built and compressed in a thread of its own while the next batch is read.
    """
    from analytics import xlsx

    mappers = _mappers(codebook, selection)
    names = [v.name for v in codebook.variables]
    rows = selection.submissions().count()
    if selection.limit is not None:
        rows = min(rows, selection.limit)
    done = 0
    with xlsx.Workbook(path) as book:
        sheet = book.add_sheet(
            "data",
            header=names,
            zip64=(rows + 1) * len(names) * XLSX_BYTES_PER_CELL > 0.9 * zipfile.ZIP64_LIMIT,
        )
        with _WriterThread(sheet.write_batch) as writer:
            for batch in iter_microdata_batches(selection, codebook, preparing=preparing):
                writer.put(_printable_xlsx(codebook, batch, mappers))
                done += batch.length
                if progress:
                    progress(done)
        labels = book.add_sheet("variables", header=["variable", f"label_{selection.language}"])
        labels.write_rows([[v.name, v.label(selection.language)] for v in codebook.variables])
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
    preparing: Preparing | None = None,
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
    for batch in iter_microdata_batches(selection, codebook, preparing=preparing):
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
    preparing: Preparing | None = None,
) -> int:
    """Write the selection's interviews to `path` in `file_format`. Returns the rows written.

    `progress` hears the rows written so far; `preparing`, before that, how many new
    interviews have been parsed into the waves' export caches (see `analytics.microdata`).
    """
    codebook = codebook or selection.codebook()
    if file_format == "csv":
        # A native file: Arrow's writer then writes without taking the GIL.
        with pa.OSFile(str(path), "wb") as out:
            return write_microdata_csv(selection, codebook, out, progress, preparing)
    if file_format == "xlsx":
        return write_microdata_xlsx(selection, codebook, path, progress, preparing)
    if file_format in {"sav", "dta"}:
        return write_microdata_stats(selection, codebook, path, file_format, progress, preparing)
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
            stage="",
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
        .update(status=ExportJob.Status.RUNNING, started_at=now, stage="", rows_done=0, error="")
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
        ExportJob.objects.filter(pk=job.pk).update(
            stage=ExportJob.Stage.WRITING, rows_total=len(rows)
        )
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
    from django.db import connection

    # On PostgreSQL the export's connection is busy with a COPY while interviews are
    # parsed, so progress goes through a thread and connection of its own.
    with _JobProgress(job.pk, total, threaded=connection.vendor == "postgresql") as reporter:
        return write_microdata(
            selection, job.file_format, path, reporter, codebook, preparing=reporter.preparing
        )


class _JobProgress:
    """Records what a job is doing (its stage, rows done and rows in that stage).

    Threaded, it writes once a second from its own thread and connection, and skips a
    locked row rather than wait; otherwise it writes at each call.
    """

    def __init__(self, job_id: int, total: int, *, threaded: bool) -> None:
        self.job_id = job_id
        self.total = total
        self.threaded = threaded
        self.state: tuple[str, int, int] = (ExportJob.Stage.WRITING, 0, total)
        self._written: tuple[str, int, int] | None = None
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="tanys-export-progress", daemon=True)

    def __call__(self, done: int) -> None:
        """Rows written so far."""
        self._set((ExportJob.Stage.WRITING, done, self.total))

    def preparing(self, done: int, total: int) -> None:
        """New interviews parsed into the export cache so far, out of `total`."""
        self._set((ExportJob.Stage.PREPARING, done, total))

    def _set(self, state: tuple[str, int, int]) -> None:
        self.state = state
        if not self.threaded:
            self._record(lock=False)

    def _record(self, *, lock: bool) -> None:
        state = self.state
        if state == self._written:
            return
        stage, done, total = state
        rows = ExportJob.objects.filter(pk=self.job_id)
        if lock:
            with transaction.atomic():
                unlocked = rows.select_for_update(skip_locked=True)
                ExportJob.objects.filter(pk__in=unlocked.values("pk")).update(
                    stage=stage, rows_done=done, rows_total=total
                )
        else:
            rows.update(stage=stage, rows_done=done, rows_total=total)
        self._written = state

    def __enter__(self) -> _JobProgress:
        self._record(lock=False)  # the connection is still free: the first state now
        if self.threaded:
            self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        if self.threaded:
            self._stop.set()
            self._thread.join()

    def _run(self) -> None:
        from django.db import connections

        try:
            while not self._stop.wait(1.0):
                try:
                    self._record(lock=True)
                except Exception:  # progress is informative; the export goes on
                    logger.warning("progress of export job %s not recorded", self.job_id)
        finally:
            connections.close_all()


def latest_result_sets(waves: Iterable[Wave]) -> dict[int, ResultSet]:
    return {
        rs.wave_id: rs for rs in ResultSet.objects.filter(wave__in=list(waves), is_current=True)
    }
