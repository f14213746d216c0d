"""Microdata files: CSV, XLSX, SPSS .sav and Stata .dta, written column by column.

One row per interview, the columns of `analytics.exports.codebook`, read as typed Arrow
columns by `analytics.exports.batches` (from each wave's store, so an interview's
answers JSON is parsed once, not at every export) and mapped from codes to labels column by
column (a numpy lookup table per variable), so no Python code runs per cell on the hot
path. CSV (Arrow's writer) and XLSX (`analytics.exports.xlsx`, column-wise as well) are
written in a thread of their own, so the file is written on one core while the next batch
is read on the other; SPSS and Stata files through pyreadstat from compact per-column
arrays (int8/int16 codes).
"""

from __future__ import annotations

import threading
import zipfile
from collections.abc import Callable
from pathlib import Path
from typing import IO, Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pa_csv
from django.utils.translation import gettext as _

from analytics.exports.batches import Batch, iter_microdata_batches
from analytics.exports.codebook import (
    NOT_ASKED,
    SPSS_LABEL_MAX_BYTES,
    STATA_LABEL_MAX,
    Codebook,
    Variable,
    fit_label,
)
from analytics.exports.formats import BOM, ExportError
from analytics.exports.reader import MicrodataSelection, Preparing, trim_freed_memory


class LabelMapper:
    """Codes to labels in one language for one variable, vectorised.

    Integer codes within a span of LOOKUP_SPAN go through a numpy lookup table (an index
    per code, then one `take` of the labels); other codes through Arrow's hash lookup. A
    code without a label prints as itself.
    """

    LOOKUP_SPAN = 1 << 16

    def __init__(self, variable: Variable, language: str) -> None:
        keys = list(variable.value_labels)
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
    """Label lookups for a labelled file: categorical columns only, so that a column is
    either words throughout or numbers throughout. Numbers (years, counts, calculations,
    a select_multiple option's 0/1) keep their special codes as numbers (-1, -2, -3, -9),
    as a file of codes does; the codebook names them."""
    if selection.values != "labels":
        return None
    return {
        v.name: LabelMapper(v, selection.language)
        for v in codebook.variables
        if v.value_labels and v.categorical
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
    from analytics.exports import xlsx

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


def _spss_format(values: np.ndarray) -> str:
    """SPSS print format of a numeric column: F<w>.0 for whole numbers (w the widest
    value's digits and sign), F<w>.4 for fractions (weights), whatever the file's width."""
    finite = values[np.isfinite(values)] if values.dtype.kind == "f" else values
    if not len(finite):
        return "F8.0"
    low, high = float(finite.min()), float(finite.max())
    digits = max(len(str(int(abs(v)))) + (v < 0) for v in (low, high))
    if values.dtype.kind in "iu" or bool(np.all(finite == np.round(finite))):
        return f"F{max(digits, 1)}.0"
    return f"F{digits + 5}.4"


def _whole(values: np.ndarray) -> np.ndarray:
    """A float column of whole numbers without gaps (a calculation such as AGE) in the
    smallest integer type, so SPSS and Stata see integers."""
    if values.dtype.kind != "f" or not len(values) or not np.all(np.isfinite(values)):
        return values
    if not np.all(values == np.round(values)) or np.abs(values).max() >= 2**31 - 27:
        return values
    return values.astype(_int_dtype(int(values.min()), int(values.max())))


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
        elif variable.storage == "float":
            frame_columns[variable.name] = _whole(np.concatenate(chunks))
        else:
            frame_columns[variable.name] = np.concatenate(chunks)
    frame = pd.DataFrame(frame_columns, copy=False)
    language = selection.language
    labels = [variable.label(language) for variable in codebook.variables]
    value_labels: dict[str, dict[Any, str]] = {}
    for variable in codebook.variables:
        if variable.storage not in {"int", "float"} or not variable.value_labels:
            continue
        value_labels[variable.name] = {
            int(code): variable.value_label(code, language) or str(code)
            for code in variable.value_labels
            if isinstance(code, int)
        }
    numeric = [v.name for v in codebook.variables if v.storage in {"int", "float"} and len(frame)]
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
            variable_measure={v.name: v.measure for v in codebook.variables},
            variable_format={name: _spss_format(frame[name].to_numpy()) for name in numeric},
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
    interviews have been parsed into the waves' stores (see `analytics.store`).
    """
    codebook = codebook or selection.codebook()
    try:
        if file_format == "csv":
            # A native file: Arrow's writer then writes without taking the GIL.
            with pa.OSFile(str(path), "wb") as out:
                return write_microdata_csv(selection, codebook, out, progress, preparing)
        if file_format == "xlsx":
            return write_microdata_xlsx(selection, codebook, path, progress, preparing)
        if file_format in {"sav", "dta"}:
            return write_microdata_stats(
                selection, codebook, path, file_format, progress, preparing
            )
    finally:
        trim_freed_memory()
    raise ExportError(_("Unknown format: %(format)s.") % {"format": file_format})
