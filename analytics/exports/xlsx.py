"""A streaming, column-wise XLSX writer that builds sheet XML with Arrow compute kernels.

Why not XlsxWriter: the microdata export writes up to a million rows of ~83 columns, and
XlsxWriter spends ~9 µs of Python per cell (about 1,350 rows/s). Here no Python runs per
cell: for a batch of rows every column becomes an Arrow string array of ``<c>`` elements
(numbers cast to text, labels looked up once per distinct value and spread with ``take``),
``binary_join_element_wise`` glues them into one ``<row>`` string per row, and the joined
buffer goes straight into a deflated zip entry. Only one sheet is open at a time and its
XML is never held whole, so memory is bounded by the batch plus the shared-strings table.

What the cells look like:

* strings are text cells, never formulas, numbers or links. Columns that repeat their
  values (labels) go through the shared-strings table (``t="s"``); a batch whose column is
  mostly distinct values (ids, free text) is written inline (``t="inlineStr"``) so the
  table does not grow with the row count. Text is escaped, stripped of characters XML 1.0
  forbids, and cut to Excel's 32,767-character cell limit;
* integers are written as they are, floats in the shortest form that reads back as the
  same double; NaN and infinities become empty cells, like nulls;
* booleans are boolean cells (``t="b"``, 0/1), so Excel shows TRUE/FALSE;
* timestamps (any unit, any time zone: the stored UTC instant is written as wall time)
  and dates are Excel serial numbers with a ``yyyy-mm-dd hh:mm:ss`` or ``yyyy-mm-dd``
  number format.

The package is the minimal one Excel, LibreOffice and openpyxl accept: content types,
relationships, core properties, workbook, styles, shared strings and the worksheets.
"""

from __future__ import annotations

import datetime as dt
import decimal
import numbers
import re
import tempfile
import zipfile
from collections.abc import Iterable, Sequence
from itertools import islice
from pathlib import Path
from types import TracebackType
from typing import IO, Any
from xml.sax.saxutils import escape

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

MAX_ROWS = 1_048_576
MAX_COLUMNS = 16_384
MAX_CELL_CHARS = 32_767
# Past this many distinct strings, new values are written inline: the table is held in
# memory as a dict, and a million labels is already far beyond any codebook.
MAX_SHARED_STRINGS = 1_000_000
# A column whose batch has more distinct values than this share of its non-empty cells is
# written inline: sharing only pays when values repeat.
INLINE_DISTINCT_SHARE = 0.5

# Rows are rendered in slices of this many, whatever the caller's batch size: it keeps the
# joined XML of a slice well inside the 2 GiB an Arrow string array can hold, and memory
# flat when a caller hands over a whole table at once.
_SLICE_ROWS = 8_192

_STYLE_BOLD = 1
_STYLE_DATETIME = 2
_STYLE_DATE = 3

# Excel counts days from 1899-12-30 (so that its fictitious 29 February 1900 fits).
_EXCEL_EPOCH_OFFSET = 25_569  # days from 1899-12-30 to 1970-01-01
_FIRST_TRUE_SERIAL = 61  # 1900-03-01; earlier days sit one below their offset
_PER_DAY = {"s": 86_400, "ms": 86_400_000, "us": 86_400_000_000, "ns": 86_400_000_000_000}

_MAIN_NS = "http://schemas.openxmlformats.org/spreadsheetml/2006/main"
_REL_NS = "http://schemas.openxmlformats.org/officeDocument/2006/relationships"
_PKG_REL_NS = "http://schemas.openxmlformats.org/package/2006/relationships"
_XML_DECL = '<?xml version="1.0" encoding="UTF-8" standalone="yes"?>\n'

_SHEET_NAME_FORBIDDEN = re.compile(r"[\[\]:*?/\\\x00-\x1f]")

# Characters XML 1.0 does not allow at all: C0 controls other than tab, LF and CR, and the
# non-characters U+FFFE and U+FFFF (RE2 syntax, used by Arrow).
_ILLEGAL_XML = r"[\x00-\x08\x0B\x0C\x0E-\x1F\x{FFFE}\x{FFFF}]"
# Excel reads "_xHHHH_" in text as an escaped character; a literal one is protected the
# way Excel itself does it, by escaping its underscore.
_EXCEL_ESCAPE = r"_(x[0-9A-Fa-f]{4}_)"

# Bytes whose presence in a buffer means the text needs more than copying: controls
# (including CR, which XML parsers would turn into LF unless written as a reference), the
# three markup characters, the lead byte of U+FFFE/U+FFFF, and the underscore of "_xHHHH_".
_NEEDS_WORK = np.zeros(256, dtype=bool)
_NEEDS_WORK[[*range(0x00, 0x09), 0x0B, 0x0C, *range(0x0D, 0x20)]] = True
_NEEDS_WORK[[ord("&"), ord("<"), ord(">"), ord("_"), 0xEF]] = True
_CONTROL_BYTES = np.zeros(256, dtype=bool)
_CONTROL_BYTES[[*range(0x00, 0x09), 0x0B, 0x0C, *range(0x0E, 0x20), 0xEF]] = True


def _s(text: str) -> pa.Scalar:
    return pa.scalar(text, pa.string())


_ROW_OPEN = _s('<row r="')
_ROW_MID = _s('">')
_ROW_CLOSE = _s("</row>")
_NUMBER_OPEN = _s('"><v>')
_DATETIME_OPEN = _s(f'" s="{_STYLE_DATETIME}"><v>')
_DATE_OPEN = _s(f'" s="{_STYLE_DATE}"><v>')
_VALUE_CLOSE = _s("</v></c>")
_TRUE = _s('" t="b"><v>1</v></c>')
_FALSE = _s('" t="b"><v>0</v></c>')
_INLINE_OPEN = _s('" t="inlineStr"><is><t xml:space="preserve">')
_INLINE_CLOSE = _s("</t></is></c>")
_NULL_STRING = pa.scalar(None, pa.string())


def column_letters(index: int) -> str:
    """Excel's name for the zero-based column ``index``: 0 -> "A", 26 -> "AA"."""
    if not 0 <= index < MAX_COLUMNS:
        raise ValueError(f"column {index + 1} is outside Excel's {MAX_COLUMNS:,} columns")
    letters = ""
    number = index + 1
    while number:
        number, rest = divmod(number - 1, 26)
        letters = chr(65 + rest) + letters
    return letters


class Workbook:
    """An XLSX file written sheet by sheet, straight into its zip container.

    ``compresslevel`` is zlib's. On survey microdata, 1 writes about three times as many
    rows a second as zlib's default 6, for a file about a third larger.
    """

    def __init__(self, path: str | Path, *, compresslevel: int = 1) -> None:
        if not 0 <= compresslevel <= 9:
            raise ValueError(f"compresslevel must be 0-9, not {compresslevel}")
        self._zip = zipfile.ZipFile(
            path, "w", compression=zipfile.ZIP_DEFLATED, compresslevel=compresslevel
        )
        self._strings = _SharedStrings()
        self._sheets: list[Sheet] = []
        self._closed = False

    def add_sheet(
        self,
        name: str,
        header: list[str] | None = None,
        *,
        freeze_header: bool = True,
        bold_header: bool = True,
        zip64: bool = False,
    ) -> Sheet:
        """Start a sheet, finishing the previous one: after this it takes no more rows.

        ``zip64`` must be set for a sheet whose XML may pass 4 GB: the zip entry is
        streamed, so its format is fixed before its size is known. It is off otherwise,
        since readers are less tolerant of zip64 entries than of plain ones.
        """
        if self._closed:
            raise RuntimeError("the workbook is closed")
        _check_sheet_name(name, [sheet.name for sheet in self._sheets])
        if header is not None and len(header) > MAX_COLUMNS:
            raise ValueError(f"a header of {len(header):,} columns is past Excel's {MAX_COLUMNS:,}")
        if self._sheets:
            self._sheets[-1]._finish()
        number = len(self._sheets) + 1
        stream = self._zip.open(f"xl/worksheets/sheet{number}.xml", "w", force_zip64=zip64)
        sheet = Sheet(
            name,
            stream,
            self._strings,
            header=header,
            freeze_header=freeze_header,
            bold_header=bold_header,
            selected=number == 1,
        )
        self._sheets.append(sheet)
        return sheet

    def close(self) -> None:
        """Finish the last sheet and write the parts that describe the workbook."""
        if self._closed:
            return
        if not self._sheets:  # Excel refuses a workbook without sheets
            self.add_sheet("Sheet1")
        self._sheets[-1]._finish()
        self._closed = True
        names = [sheet.name for sheet in self._sheets]
        try:
            self._strings.write_part(self._zip)
            self._zip.writestr("xl/styles.xml", _STYLES)
            self._zip.writestr("xl/workbook.xml", _workbook_xml(names))
            self._zip.writestr("xl/_rels/workbook.xml.rels", _workbook_rels(len(names)))
            self._zip.writestr("docProps/core.xml", _core_xml())
            self._zip.writestr("_rels/.rels", _ROOT_RELS)
            self._zip.writestr("[Content_Types].xml", _content_types(len(names)))
        finally:
            self._zip.close()
            self._strings.discard()

    def _abandon(self) -> None:
        """Release the file after a failure; what is on disk is not a valid workbook."""
        if self._closed:
            return
        self._closed = True
        try:
            if self._sheets:
                self._sheets[-1]._stream.close()
        finally:
            self._zip.close()
            self._strings.discard()

    def __enter__(self) -> Workbook:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        if exc_type is None:
            self.close()
        else:
            self._abandon()


class Sheet:
    """One worksheet being streamed; made by :meth:`Workbook.add_sheet`."""

    def __init__(
        self,
        name: str,
        stream: IO[bytes],
        strings: _SharedStrings,
        *,
        header: list[str] | None,
        freeze_header: bool,
        bold_header: bool,
        selected: bool,
    ) -> None:
        self.name = name
        self._stream = stream
        self._strings = strings
        self._cell_open: list[pa.Scalar] = []  # '<c r="A' for each column seen so far
        self._next_row = 1
        self._finished = False
        frozen = header is not None and freeze_header
        pane = (
            '<pane ySplit="1" topLeftCell="A2" activePane="bottomLeft" state="frozen"/>'
            '<selection pane="bottomLeft"/>'
            if frozen
            else ""
        )
        tab = ' tabSelected="1"' if selected else ""
        stream.write(
            (
                f'{_XML_DECL}<worksheet xmlns="{_MAIN_NS}" xmlns:r="{_REL_NS}">'
                f'<sheetViews><sheetView{tab} workbookViewId="0">{pane}</sheetView></sheetViews>'
                "<sheetData>"
            ).encode()
        )
        if header is not None:
            self._write_header(header, bold=bold_header)

    @property
    def rows_written(self) -> int:
        """Rows on the sheet so far, the header included."""
        return self._next_row - 1

    def write_batch(self, columns: Sequence[pa.Array | pa.ChunkedArray]) -> None:
        """Append rows given as one Arrow array per column, all of the same length.

        Integer, floating, boolean, decimal, string, timestamp and date columns are
        accepted; nulls, NaN and infinities leave the cell empty.
        """
        arrays = [
            column.combine_chunks() if isinstance(column, pa.ChunkedArray) else column
            for column in columns
        ]
        if not arrays:
            return
        lengths = {len(array) for array in arrays}
        if len(lengths) > 1:
            raise ValueError(f"columns of a batch differ in length: {sorted(lengths)}")
        self._write_parts([[array] for array in arrays], lengths.pop())

    def write_rows(self, rows: Iterable[Sequence[Any]]) -> None:
        """Append rows of Python values (str, int, float, bool, Decimal, date, datetime, None).

        Meant for small sheets: each value is looked at once to pick its Arrow type, and a
        column may mix types (a value column holding numbers and text, say).
        """
        iterator = iter(rows)
        while chunk := list(islice(iterator, _SLICE_ROWS)):
            width = max(len(row) for row in chunk)
            padded = [(*row, *([None] * (width - len(row)))) for row in chunk]
            parts = [_python_column(list(values)) for values in zip(*padded, strict=True)]
            self._write_parts(parts, len(chunk))

    def _write_parts(self, columns: list[list[pa.Array]], length: int) -> None:
        if self._finished:
            raise RuntimeError(f"sheet {self.name!r} is finished: a later sheet was started")
        if len(columns) > MAX_COLUMNS:
            raise ValueError(
                f"{len(columns):,} columns do not fit on a sheet: Excel stops at {MAX_COLUMNS:,}"
            )
        last_row = self._next_row + length - 1
        if last_row > MAX_ROWS:
            raise ValueError(
                f"sheet {self.name!r}: {length:,} more rows would end at row {last_row:,}, "
                f"past Excel's limit of {MAX_ROWS:,} rows per sheet"
            )
        while len(self._cell_open) < len(columns):
            self._cell_open.append(_s(f'<c r="{column_letters(len(self._cell_open))}'))
        for start in range(0, length, _SLICE_ROWS):
            size = min(_SLICE_ROWS, length - start)
            sliced = [[part.slice(start, size) for part in parts] for parts in columns]
            self._write_slice(sliced, size)

    def _write_slice(self, columns: list[list[pa.Array]], length: int) -> None:
        first = self._next_row
        numbers = pc.cast(pa.array(np.arange(first, first + length, dtype=np.int64)), pa.string())
        pieces: list[Any] = [_ROW_OPEN, numbers, _ROW_MID]
        for index, parts in enumerate(columns):
            opener = self._cell_open[index]
            if len(parts) == 1:
                tail = _cell_tail(parts[0], self._strings)
                if tail is None:
                    continue
                if any(isinstance(p, pa.Array) and p.null_count for p in tail):
                    # Empty cells must lose their '<c r="A7' too, so the cell is joined on
                    # its own (a null anywhere gives a null cell) and nulls dropped below.
                    pieces.append(pc.binary_join_element_wise(opener, numbers, *tail, ""))
                else:
                    pieces.extend((opener, numbers, *tail))
            else:  # a mixed column from write_rows: one part per Python type
                cells = [
                    pc.binary_join_element_wise(opener, numbers, *tail, "")
                    for part in parts
                    if (tail := _cell_tail(part, self._strings)) is not None
                ]
                if cells:
                    pieces.append(pc.coalesce(*cells) if len(cells) > 1 else cells[0])
        pieces.append(_ROW_CLOSE)
        rows = pc.binary_join_element_wise(
            *pieces, "", null_handling="replace", null_replacement=""
        )
        self._stream.write(_string_bytes(rows))
        self._next_row += length

    def _write_header(self, header: list[str], *, bold: bool) -> None:
        style = f' s="{_STYLE_BOLD}"' if bold else ""
        texts = pa.array([None if name is None else str(name) for name in header], pa.string())
        tails = self._strings.tails(texts, style=style).to_pylist()
        cells = "".join(
            f'<c r="{column_letters(index)}1{tail}'
            for index, tail in enumerate(tails)
            if tail is not None
        )
        self._stream.write(f'<row r="1">{cells}</row>'.encode())
        self._next_row = 2

    def _finish(self) -> None:
        if self._finished:
            return
        self._finished = True
        self._stream.write(b"</sheetData></worksheet>")
        self._stream.close()


class _SharedStrings:
    """The workbook's shared-strings table: a dict from text to index, and the XML of
    each entry spooled to a temporary file as it is added (the zip can only take the part
    after the last sheet is closed)."""

    def __init__(self) -> None:
        self._index: dict[str, int] = {}  # -1 for text that is empty once cleaned
        self._size = 0
        self._spool: IO[bytes] = tempfile.SpooledTemporaryFile(max_size=16 * 2**20)  # noqa: SIM115

    def tails(self, texts: pa.Array, *, style: str = "") -> pa.Array:
        """For each distinct text, the cell XML after its row number: a reference into
        the table, or the text inline once the table is full. Python runs per distinct
        value here, never per cell."""
        values = texts.to_pylist()
        found = [self._index.get(text) for text in values]
        fresh = [i for i, k in enumerate(found) if k is None and values[i] is not None]
        inline: dict[int, str] = {}
        if fresh:
            cleaned = _xml_text(texts.take(pa.array(fresh, pa.int64()))).to_pylist()
            parts = []
            for position, text in zip(fresh, cleaned, strict=True):
                original = values[position]
                if not text:
                    self._index[original] = found[position] = -1
                elif self._size < MAX_SHARED_STRINGS:
                    self._index[original] = found[position] = self._size
                    self._size += 1
                    parts.append(f'<si><t xml:space="preserve">{text}</t></si>')
                else:
                    inline[position] = (
                        f'"{style} t="inlineStr"><is><t xml:space="preserve">{text}</t></is></c>'
                    )
            if parts:
                self._spool.write("".join(parts).encode())
        out = [
            inline.get(i) if k is None else (None if k < 0 else f'"{style} t="s"><v>{k}</v></c>')
            for i, k in enumerate(found)
        ]
        return pa.array(out, pa.string())

    def write_part(self, book: zipfile.ZipFile) -> None:
        size = self._spool.tell()
        head = f'{_XML_DECL}<sst xmlns="{_MAIN_NS}" uniqueCount="{self._size}">'.encode()
        self._spool.seek(0)
        with book.open(
            "xl/sharedStrings.xml", "w", force_zip64=size * 1.05 > zipfile.ZIP64_LIMIT
        ) as part:
            part.write(head)
            while block := self._spool.read(2**20):
                part.write(block)
            part.write(b"</sst>")

    def discard(self) -> None:
        self._spool.close()


def _cell_tail(array: pa.Array, strings: _SharedStrings) -> list[Any] | None:
    """The pieces of each cell after ``<c r="A7``, or None for a column with no values.

    A null in any array piece marks an empty cell.
    """
    if array.null_count == len(array):
        return None
    kind = array.type
    if pa.types.is_dictionary(kind):
        if pa.types.is_string(kind.value_type) and len(array.dictionary) <= len(array):
            return [pc.take(_string_tails(array.dictionary, array, strings), array.indices)]
        return _cell_tail(array.dictionary_decode(), strings)
    if pa.types.is_boolean(kind):
        return [pc.if_else(array, _TRUE, _FALSE)]
    if pa.types.is_integer(kind) or pa.types.is_decimal(kind):
        return [_NUMBER_OPEN, pc.cast(array, pa.string()), _VALUE_CLOSE]
    if pa.types.is_floating(kind):
        if pa.types.is_float16(kind):
            array = pc.cast(array, pa.float32())
        finite = pc.is_finite(array)
        if not pc.all(finite).as_py():
            array = pc.if_else(finite, array, pa.scalar(None, array.type))
        return [_NUMBER_OPEN, pc.cast(array, pa.string()), _VALUE_CLOSE]
    if pa.types.is_timestamp(kind) or pa.types.is_date64(kind):
        per_day = _PER_DAY[kind.unit] if pa.types.is_timestamp(kind) else _PER_DAY["ms"]
        # Stored values are UTC instants whatever the zone: that is the wall time written.
        # float64 keeps ~0.5 µs of a date in this century, finer than Excel shows.
        ticks = pc.cast(array.view(pa.int64()), pa.float64(), safe=False)
        days = pc.divide(ticks, float(per_day))
        return [
            _DATETIME_OPEN,
            _serial_text(pc.add(days, float(_EXCEL_EPOCH_OFFSET))),
            _VALUE_CLOSE,
        ]
    if pa.types.is_date32(kind):
        days = pc.add(pc.cast(array.view(pa.int32()), pa.int64()), _EXCEL_EPOCH_OFFSET)
        return [_DATE_OPEN, _serial_text(days), _VALUE_CLOSE]
    if pa.types.is_string(kind) or pa.types.is_large_string(kind) or pa.types.is_string_view(kind):
        if pa.types.is_string_view(kind):
            array = pc.cast(array, pa.string())
        encoded = pc.dictionary_encode(array)
        tails = _string_tails(encoded.dictionary, array, strings)
        return [pc.take(tails, encoded.indices)]
    raise TypeError(f"cannot write a column of type {kind} to XLSX")


def _string_tails(distinct: pa.Array, array: pa.Array, strings: _SharedStrings) -> pa.Array:
    """Cell XML for each distinct text of a column: shared when values repeat in this
    batch, inline when they are mostly distinct (ids, free text)."""
    filled = len(array) - array.null_count
    if len(distinct) > INLINE_DISTINCT_SHARE * filled:
        text = _xml_text(distinct)
        tails = pc.binary_join_element_wise(_INLINE_OPEN, text, _INLINE_CLOSE, "")
        return pc.if_else(pc.equal(pc.binary_length(text), 0), _NULL_STRING, tails)
    return strings.tails(distinct)


def _serial_text(serials: pa.Array) -> pa.Array:
    """Excel serial numbers as text, with Excel's 1900 leap-year bug allowed for."""
    low = pc.min(serials).as_py()
    if low is not None and low < _FIRST_TRUE_SERIAL:
        serials = pc.if_else(pc.less(serials, _FIRST_TRUE_SERIAL), pc.subtract(serials, 1), serials)
    return pc.cast(serials, pa.string())


def _xml_text(texts: pa.Array) -> pa.Array:
    """Text made safe for an XML element: illegal characters removed, cut to Excel's
    cell limit, markup escaped. Each step runs only if the bytes call for it, so plain
    text costs one table lookup over its buffer."""
    if not pa.types.is_string(texts.type):
        texts = pc.cast(texts, pa.string())
    present = _bytes_present(texts)
    if present is None:
        return texts
    if _CONTROL_BYTES[present].any():
        texts = pc.replace_substring_regex(texts, _ILLEGAL_XML, "")
    if pc.max(pc.binary_length(texts)).as_py() > MAX_CELL_CHARS:
        texts = pc.utf8_slice_codeunits(texts, 0, MAX_CELL_CHARS)
    found = set(present.tolist())
    for byte, replacement in ((b"&", "&amp;"), (b"<", "&lt;"), (b">", "&gt;"), (b"\r", "&#13;")):
        if byte[0] in found:
            texts = pc.replace_substring(texts, byte.decode(), replacement)
    if ord("_") in found:
        texts = pc.replace_substring_regex(texts, _EXCEL_ESCAPE, r"_x005F_\1")
    return texts


def _bytes_present(texts: pa.Array) -> np.ndarray | None:
    """The distinct bytes of ``texts`` that need escaping or cleaning, or None if the
    text can be copied as it is (and is short enough)."""
    offsets_buffer, data = texts.buffers()[1:3]
    if data is None or len(texts) == 0:
        return None
    offsets = np.frombuffer(offsets_buffer, dtype=np.int32)
    start, end = int(offsets[texts.offset]), int(offsets[texts.offset + len(texts)])
    view = np.frombuffer(data, dtype=np.uint8)[start:end]
    special = view[_NEEDS_WORK[view]]
    long = end - start > MAX_CELL_CHARS and pc.max(pc.binary_length(texts)).as_py() > MAX_CELL_CHARS
    if not len(special) and not long:
        return None
    return np.unique(special)


def _string_bytes(rows: pa.Array) -> pa.Buffer:
    """The UTF-8 bytes of a string array end to end, without copying them."""
    offsets = np.frombuffer(rows.buffers()[1], dtype=np.int32)
    start, end = int(offsets[rows.offset]), int(offsets[rows.offset + len(rows)])
    return rows.buffers()[2].slice(start, end - start)


def _python_column(values: list[Any]) -> list[pa.Array]:
    """One Arrow array for a column of Python values, or one per type if they are mixed."""
    try:
        return [pa.array(values, from_pandas=True)]
    except (pa.ArrowInvalid, pa.ArrowTypeError):
        pass
    kinds = [_python_kind(value) for value in values]
    return [
        pa.array(
            [value if k == kind else None for value, k in zip(values, kinds, strict=True)],
            from_pandas=True,
        )
        for kind in dict.fromkeys(k for k in kinds if k is not None)
    ]


def _python_kind(value: Any) -> str | None:
    if value is None:
        return None
    if isinstance(value, bool | np.bool_):
        return "bool"
    if isinstance(value, numbers.Integral):
        return "int"
    if isinstance(value, decimal.Decimal):
        return "decimal"
    if isinstance(value, numbers.Real):
        return "float"
    if isinstance(value, str):
        return "str"
    if isinstance(value, dt.datetime):
        return "datetime-tz" if value.tzinfo is not None else "datetime"
    if isinstance(value, dt.date):
        return "date"
    raise TypeError(f"cannot write a {type(value).__name__} value to XLSX: {value!r}")


def _check_sheet_name(name: str, taken: list[str]) -> None:
    if not isinstance(name, str) or not 1 <= len(name) <= 31:
        raise ValueError(f"sheet name {name!r} must be 1 to 31 characters long")
    if _SHEET_NAME_FORBIDDEN.search(name):
        raise ValueError(
            f"sheet name {name!r} may not contain any of [ ] : * ? / \\ or control characters"
        )
    if name.startswith("'") or name.endswith("'"):
        raise ValueError(f"sheet name {name!r} may not begin or end with an apostrophe")
    if name.casefold() in {other.casefold() for other in taken}:
        raise ValueError(f"sheet name {name!r} is already used (names ignore case)")


_STYLES = (
    f'{_XML_DECL}<styleSheet xmlns="{_MAIN_NS}">'
    '<numFmts count="2"><numFmt numFmtId="164" formatCode="yyyy-mm-dd hh:mm:ss"/>'
    '<numFmt numFmtId="165" formatCode="yyyy-mm-dd"/></numFmts>'
    '<fonts count="2"><font><sz val="11"/><name val="Calibri"/><family val="2"/></font>'
    '<font><b/><sz val="11"/><name val="Calibri"/><family val="2"/></font></fonts>'
    '<fills count="2"><fill><patternFill patternType="none"/></fill>'
    '<fill><patternFill patternType="gray125"/></fill></fills>'
    '<borders count="1"><border><left/><right/><top/><bottom/><diagonal/></border></borders>'
    '<cellStyleXfs count="1"><xf numFmtId="0" fontId="0" fillId="0" borderId="0"/></cellStyleXfs>'
    '<cellXfs count="4"><xf numFmtId="0" fontId="0" fillId="0" borderId="0" xfId="0"/>'
    '<xf numFmtId="0" fontId="1" fillId="0" borderId="0" xfId="0" applyFont="1"/>'
    '<xf numFmtId="164" fontId="0" fillId="0" borderId="0" xfId="0" applyNumberFormat="1"/>'
    '<xf numFmtId="165" fontId="0" fillId="0" borderId="0" xfId="0" applyNumberFormat="1"/>'
    "</cellXfs>"
    '<cellStyles count="1"><cellStyle name="Normal" xfId="0" builtinId="0"/></cellStyles>'
    '<dxfs count="0"/><tableStyles count="0" defaultTableStyle="TableStyleMedium9" '
    'defaultPivotStyle="PivotStyleLight16"/></styleSheet>'
)

_ROOT_RELS = (
    f'{_XML_DECL}<Relationships xmlns="{_PKG_REL_NS}">'
    f'<Relationship Id="rId1" Type="{_REL_NS}/officeDocument" Target="xl/workbook.xml"/>'
    '<Relationship Id="rId2" Type="http://schemas.openxmlformats.org/package/2006/'
    'relationships/metadata/core-properties" Target="docProps/core.xml"/>'
    "</Relationships>"
)


def _workbook_xml(names: list[str]) -> str:
    sheets = "".join(
        f'<sheet name="{escape(name, {chr(34): "&quot;"})}" sheetId="{n}" r:id="rId{n}"/>'
        for n, name in enumerate(names, start=1)
    )
    return (
        f'{_XML_DECL}<workbook xmlns="{_MAIN_NS}" xmlns:r="{_REL_NS}">'
        f"<bookViews><workbookView/></bookViews><sheets>{sheets}</sheets></workbook>"
    )


def _workbook_rels(count: int) -> str:
    sheets = "".join(
        f'<Relationship Id="rId{n}" Type="{_REL_NS}/worksheet" Target="worksheets/sheet{n}.xml"/>'
        for n in range(1, count + 1)
    )
    return (
        f'{_XML_DECL}<Relationships xmlns="{_PKG_REL_NS}">{sheets}'
        f'<Relationship Id="rId{count + 1}" Type="{_REL_NS}/styles" Target="styles.xml"/>'
        f'<Relationship Id="rId{count + 2}" Type="{_REL_NS}/sharedStrings" '
        'Target="sharedStrings.xml"/></Relationships>'
    )


def _content_types(count: int) -> str:
    sml = "application/vnd.openxmlformats-officedocument.spreadsheetml"
    sheets = "".join(
        f'<Override PartName="/xl/worksheets/sheet{n}.xml" ContentType="{sml}.worksheet+xml"/>'
        for n in range(1, count + 1)
    )
    return (
        f'{_XML_DECL}<Types xmlns="http://schemas.openxmlformats.org/package/2006/content-types">'
        '<Default Extension="rels" '
        'ContentType="application/vnd.openxmlformats-package.relationships+xml"/>'
        '<Default Extension="xml" ContentType="application/xml"/>'
        f'<Override PartName="/xl/workbook.xml" ContentType="{sml}.sheet.main+xml"/>'
        f'<Override PartName="/xl/styles.xml" ContentType="{sml}.styles+xml"/>'
        f'<Override PartName="/xl/sharedStrings.xml" ContentType="{sml}.sharedStrings+xml"/>'
        '<Override PartName="/docProps/core.xml" '
        'ContentType="application/vnd.openxmlformats-package.core-properties+xml"/>'
        f"{sheets}</Types>"
    )


def _core_xml() -> str:
    now = dt.datetime.now(dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    return (
        f"{_XML_DECL}<cp:coreProperties "
        'xmlns:cp="http://schemas.openxmlformats.org/package/2006/metadata/core-properties" '
        'xmlns:dc="http://purl.org/dc/elements/1.1/" xmlns:dcterms="http://purl.org/dc/terms/" '
        'xmlns:dcmitype="http://purl.org/dc/dcmitype/" '
        'xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance">'
        f'<dcterms:created xsi:type="dcterms:W3CDTF">{escape(now)}</dcterms:created>'
        f'<dcterms:modified xsi:type="dcterms:W3CDTF">{escape(now)}</dcterms:modified>'
        "</cp:coreProperties>"
    )
