"""The Arrow XLSX writer, read back by openpyxl, pandas and (where installed) LibreOffice."""

from __future__ import annotations

import csv
import datetime as dt
import math
import shutil
import subprocess
import uuid
import zipfile
from pathlib import Path
from typing import Any
from xml.etree import ElementTree

import numpy as np
import openpyxl
import pandas as pd
import pyarrow as pa
import pytest

from analytics.exports import xlsx
from analytics.exports.xlsx import MAX_ROWS, Workbook, column_letters

UTC = dt.UTC
ALMATY = dt.timezone(dt.timedelta(hours=5))
LABELS = ["Қазақстан", "Ақмола облысы", "Алматы", "Шымкент қаласы", "Не знаю"]


def _write(path: Path, columns: list[pa.Array], header: list[str] | None = None) -> None:
    with Workbook(path) as book:
        book.add_sheet("data", header).write_batch(columns)


def _values(path: Path, *, read_only: bool, sheet: str | None = None) -> list[tuple[Any, ...]]:
    """Every row of a sheet as openpyxl reads it, padded to the widest row and without
    trailing empty rows (read-only mode, lacking a dimension in the sheet, yields rows only
    as long as their last cell, and rows that hold no cell at all)."""
    book = openpyxl.load_workbook(path, read_only=read_only)
    try:
        rows = list((book[sheet] if sheet else book.worksheets[0]).iter_rows(values_only=True))
    finally:
        book.close()
    while rows and all(value is None for value in rows[-1]):
        rows.pop()
    width = max((len(row) for row in rows), default=0)
    return [tuple(row) + (None,) * (width - len(row)) for row in rows]


def _both_modes(path: Path, sheet: str | None = None) -> list[tuple[Any, ...]]:
    normal = _values(path, read_only=False, sheet=sheet)
    assert _values(path, read_only=True, sheet=sheet) == normal
    return normal


def _column(rows: list[tuple[Any, ...]], index: int) -> list[Any]:
    return [row[index] for row in rows]


def _same(got: Any, want: Any) -> bool:
    """Equal in value and in kind: True must not pass for 1, nor "1" for 1."""
    if want is None:
        return got is None
    if isinstance(want, bool):
        return type(got) is bool and got == want
    if isinstance(want, int | float):
        return type(got) in (int, float) and got == want
    return type(got) is type(want) and got == want


# --- values --------------------------------------------------------------------------


def test_integers_round_trip_with_nulls_and_large_values(tmp_path):
    values = [0, 1, -1, -123456, 2**53, -(2**53), 9_007_199_254_740_991, None, 42]
    _write(tmp_path / "a.xlsx", [pa.array(values, pa.int64())])
    got = _column(_both_modes(tmp_path / "a.xlsx"), 0)
    assert len(got) == len(values)
    assert all(_same(g, w) for g, w in zip(got, values, strict=True)), got
    assert all(type(g) is int for g in got if g is not None)


@pytest.mark.parametrize("kind", [pa.int8(), pa.int16(), pa.int32(), pa.uint16(), pa.uint64()])
def test_integer_widths(tmp_path, kind):
    _write(tmp_path / "a.xlsx", [pa.array([0, 7, None, 100], kind)])
    assert _column(_both_modes(tmp_path / "a.xlsx"), 0) == [0, 7, None, 100]


def test_floats_round_trip_exactly_and_nan_inf_leave_empty_cells(tmp_path):
    values = [0.1, 1e-10, 123456789.123, -2.5, 1e300, 5e-324, 1 / 3, 2.0, None, -1e-300]
    special = [math.nan, math.inf, -math.inf, 7.5]
    _write(tmp_path / "a.xlsx", [pa.array(values + special, pa.float64())])
    got = _column(_both_modes(tmp_path / "a.xlsx"), 0)
    assert got == [*values, None, None, None, 7.5]


def test_float32_is_written_as_its_shortest_decimal(tmp_path):
    _write(tmp_path / "a.xlsx", [pa.array([0.1, 2.5, None, 1e-3], pa.float32())])
    assert _column(_both_modes(tmp_path / "a.xlsx"), 0) == [0.1, 2.5, None, 0.001]


def test_booleans_are_boolean_cells(tmp_path):
    _write(tmp_path / "a.xlsx", [pa.array([True, False, None, True])])
    got = _column(_both_modes(tmp_path / "a.xlsx"), 0)
    assert [type(g) for g in got] == [bool, bool, type(None), bool]
    assert got == [True, False, None, True]


def test_text_in_kazakh_russian_emoji_and_markup_round_trips(tmp_path):
    values = [
        "Қазақстан",
        "Ақмола облысы",
        "Затрудняюсь ответить",
        "emoji 😀👍🏽",
        "a & b < c > d \" e ' f",
        "&amp; stays literal",
        "  leading and trailing  ",
        " ",
        None,
        "line\nbreak and\ttab",
    ]
    _write(tmp_path / "a.xlsx", [pa.array(values)])
    assert _column(_both_modes(tmp_path / "a.xlsx"), 0) == values


def test_text_is_never_a_formula_number_or_link(tmp_path):
    values = ["=1+1", "007", "http://x", "1e5", "TRUE", "-3", "+7 701 000 00 00", "2024-01-01"]
    path = tmp_path / "a.xlsx"
    _write(path, [pa.array(values)])
    sheet = openpyxl.load_workbook(path).active
    cells = [sheet.cell(row=r, column=1) for r in range(1, len(values) + 1)]
    assert [c.value for c in cells] == values
    assert {c.data_type for c in cells} == {"s"}
    assert all(c.hyperlink is None for c in cells)


def test_empty_strings_leave_empty_cells(tmp_path):
    _write(tmp_path / "a.xlsx", [pa.array(["", "x", ""]), pa.array([1, 2, 3])])
    assert _both_modes(tmp_path / "a.xlsx") == [(None, 1), ("x", 2), (None, 3)]


@pytest.mark.parametrize("unit", ["s", "ms", "us", "ns"])
def test_timestamps_with_a_time_zone_are_written_as_utc_wall_time(tmp_path, unit):
    moments = [
        dt.datetime(2024, 3, 15, 23, 30, 5, tzinfo=ALMATY),  # 18:30:05 UTC
        dt.datetime(1999, 12, 31, 23, 59, 59, tzinfo=UTC),
        None,
        dt.datetime(2024, 2, 29, 0, 0, 0, tzinfo=UTC),
    ]
    if unit != "s":
        moments[1] = dt.datetime(1999, 12, 31, 23, 59, 59, 250_000, tzinfo=UTC)
    column = pa.array(moments, pa.timestamp(unit, tz="Asia/Almaty"))
    _write(tmp_path / "a.xlsx", [column])
    want = [
        dt.datetime(2024, 3, 15, 18, 30, 5),
        moments[1].replace(tzinfo=None),
        None,
        dt.datetime(2024, 2, 29),
    ]
    assert _column(_both_modes(tmp_path / "a.xlsx"), 0) == want


def test_naive_timestamps_and_dates(tmp_path):
    stamps = pa.array([dt.datetime(2021, 6, 1, 12, 0), None], pa.timestamp("us"))
    days = pa.array([dt.date(2021, 6, 1), dt.date(1900, 1, 15)], pa.date32())
    path = tmp_path / "a.xlsx"
    _write(path, [stamps, days])
    assert _both_modes(path) == [
        (dt.datetime(2021, 6, 1, 12, 0), dt.datetime(2021, 6, 1)),
        (None, dt.datetime(1900, 1, 15)),  # before Excel's phantom 29 February 1900
    ]
    sheet = openpyxl.load_workbook(path).active
    assert sheet["A1"].number_format == "yyyy-mm-dd hh:mm:ss"
    assert sheet["B1"].number_format == "yyyy-mm-dd"


def test_dictionary_and_chunked_columns(tmp_path):
    labels = pa.array(LABELS * 20).dictionary_encode()
    chunked = pa.chunked_array([pa.array(range(50)), pa.array(range(50, 100))])
    _write(tmp_path / "a.xlsx", [labels, chunked])
    rows = _both_modes(tmp_path / "a.xlsx")
    assert rows == list(zip(LABELS * 20, range(100), strict=True))


def test_unsupported_column_type_is_refused(tmp_path):
    with Workbook(tmp_path / "a.xlsx") as book, pytest.raises(TypeError, match="binary"):
        book.add_sheet("data").write_batch([pa.array([b"\x00"], pa.binary())])


# --- header, styles, layout ----------------------------------------------------------


def test_header_is_bold_and_frozen_below(tmp_path):
    path = tmp_path / "a.xlsx"
    _write(path, [pa.array(["x"]), pa.array([1])], header=["name", "Қазақ тілі"])
    sheet = openpyxl.load_workbook(path).active
    assert sheet.freeze_panes == "A2"
    pane = sheet.sheet_view.pane
    assert (pane.ySplit, pane.xSplit, pane.state, pane.activePane) == (
        1,
        None,
        "frozen",
        "bottomLeft",
    )
    assert [c.value for c in sheet[1]] == ["name", "Қазақ тілі"]
    assert all(c.font.b for c in sheet[1])
    assert not any(c.font.b for c in sheet[2])


def test_header_can_be_plain_and_unfrozen(tmp_path):
    path = tmp_path / "a.xlsx"
    with Workbook(path) as book:
        book.add_sheet("data", ["a"], freeze_header=False, bold_header=False)
    sheet = openpyxl.load_workbook(path).active
    assert sheet.freeze_panes is None
    assert sheet["A1"].value == "a"
    assert not sheet["A1"].font.b


def test_rows_continue_across_batches_and_sheets_are_separate(tmp_path):
    path = tmp_path / "a.xlsx"
    with Workbook(path) as book:
        first = book.add_sheet("first", ["n", "label"])
        for start in (0, 3, 5):
            numbers = list(range(start, start + 3))
            first.write_batch([pa.array(numbers), pa.array([LABELS[n % 5] for n in numbers])])
        second = book.add_sheet("Второй лист")
        second.write_rows([["variable", "label"], ["q1", "Возраст"], ["q2", None], [None, "x"]])
        assert first.rows_written == 10
        with pytest.raises(RuntimeError, match="finished"):
            first.write_batch([pa.array([1])])
    frames = pd.read_excel(path, sheet_name=None, engine="openpyxl")
    assert list(frames) == ["first", "Второй лист"]
    numbers = [0, 1, 2, 3, 4, 5, 5, 6, 7]
    expected_first = pd.DataFrame({"n": numbers, "label": [LABELS[n % 5] for n in numbers]})
    pd.testing.assert_frame_equal(frames["first"], expected_first)
    assert _both_modes(path, "Второй лист") == [
        ("variable", "label"),
        ("q1", "Возраст"),
        ("q2", None),
        (None, "x"),
    ]
    sheet = openpyxl.load_workbook(path)["first"]
    assert [sheet.cell(row=r, column=1).coordinate for r in (1, 10)] == ["A1", "A10"]
    assert sheet.max_row == 10


def test_write_rows_accepts_mixed_python_values(tmp_path):
    rows = [
        ["code", 1, 2.5, dt.datetime(2020, 1, 2, 3, 4, 5), True],
        [7, "seven", None, None, False],
        [None, -3, float("nan"), dt.datetime(2020, 1, 2, 9, 4, 5, tzinfo=ALMATY), "yes"],
        ["short row"],
    ]
    path = tmp_path / "a.xlsx"
    with Workbook(path) as book:
        book.add_sheet("s").write_rows(iter(rows))
    assert _both_modes(path) == [
        ("code", 1, 2.5, dt.datetime(2020, 1, 2, 3, 4, 5), True),
        (7, "seven", None, None, False),
        (None, -3, None, dt.datetime(2020, 1, 2, 4, 4, 5), "yes"),
        ("short row", None, None, None, None),
    ]
    assert type(_both_modes(path)[2][4]) is str


def test_write_rows_refuses_unknown_objects(tmp_path):
    with Workbook(tmp_path / "a.xlsx") as book, pytest.raises((TypeError, pa.ArrowException)):
        book.add_sheet("s").write_rows([[1, object()], ["x", 2]])


def test_column_letters():
    assert [column_letters(i) for i in (0, 25, 26, 51, 701, 702, 16383)] == [
        "A",
        "Z",
        "AA",
        "AZ",
        "ZZ",
        "AAA",
        "XFD",
    ]
    with pytest.raises(ValueError):
        column_letters(16384)


def test_the_last_excel_column_is_xfd(tmp_path):
    path = tmp_path / "a.xlsx"
    _write(path, [pa.array([i]) for i in range(16_384)])
    sheet = openpyxl.load_workbook(path, read_only=True).active
    row = next(sheet.iter_rows())
    assert (row[-1].coordinate, row[-1].value) == ("XFD1", 16_383)
    assert len(row) == 16_384
    with Workbook(tmp_path / "b.xlsx") as book, pytest.raises(ValueError, match="16,384"):
        book.add_sheet("s").write_batch([pa.array([1])] * 16_385)


def test_rows_past_excels_limit_are_refused(tmp_path):
    path = tmp_path / "a.xlsx"
    with Workbook(path) as book:
        sheet = book.add_sheet("s", ["only header"])
        with pytest.raises(ValueError, match="1,048,576"):
            sheet.write_batch([pa.nulls(MAX_ROWS)])
        sheet.write_batch([pa.nulls(MAX_ROWS - 2)])
        sheet.write_batch([pa.array(["last"])])
        assert sheet.rows_written == MAX_ROWS
        with pytest.raises(ValueError, match="past Excel's limit"):
            sheet.write_batch([pa.array(["one too many"])])
    # openpyxl takes seconds to walk a million rows; a streaming XML parse finds the last.
    main = f"{{{xlsx._MAIN_NS}}}"
    with zipfile.ZipFile(path) as package, package.open("xl/worksheets/sheet1.xml") as part:
        for _, element in ElementTree.iterparse(part):
            if element.tag == f"{main}row":
                last = (element.get("r"), [cell.get("r") for cell in element])
                text = element.findtext(f"{main}c/{main}is/{main}t")
                element.clear()
    assert (last, text) == ((str(MAX_ROWS), [f"A{MAX_ROWS}"]), "last")


def test_batch_columns_must_share_a_length(tmp_path):
    with Workbook(tmp_path / "a.xlsx") as book, pytest.raises(ValueError, match="length"):
        book.add_sheet("s").write_batch([pa.array([1, 2]), pa.array([1])])


@pytest.mark.parametrize(
    "name",
    ["", "x" * 32, "a[b", "a]b", "a:b", "a*b", "a?b", "a/b", "a\\b", "'quoted'", "tab\tname"],
)
def test_invalid_sheet_names_are_refused(tmp_path, name):
    with Workbook(tmp_path / "a.xlsx") as book, pytest.raises(ValueError, match="sheet name"):
        book.add_sheet(name)


def test_sheet_names_must_differ_ignoring_case(tmp_path):
    path = tmp_path / "a.xlsx"
    with Workbook(path) as book:
        book.add_sheet("данные")
        with pytest.raises(ValueError, match="already used"):
            book.add_sheet("ДАННЫЕ")
        book.add_sheet("x" * 31)
        book.add_sheet('R&D <"2024">')
    assert openpyxl.load_workbook(path).sheetnames == ["данные", "x" * 31, 'R&D <"2024">']


def test_a_workbook_without_sheets_still_opens(tmp_path):
    path = tmp_path / "a.xlsx"
    Workbook(path).close()
    assert openpyxl.load_workbook(path).sheetnames == ["Sheet1"]


def test_an_error_inside_the_with_block_is_not_masked(tmp_path):
    path = tmp_path / "a.xlsx"
    with pytest.raises(KeyError, match="boom"), Workbook(path) as book:
        book.add_sheet("s").write_batch([pa.array([1, 2])])
        raise KeyError("boom")
    path.unlink()  # the caller deletes the partial file; it must not be held open


# --- strings: cleaning, limits, shared or inline -------------------------------------


@pytest.mark.parametrize("repeats", [1, 50], ids=["inline", "shared"])
def test_control_characters_are_stripped(tmp_path, repeats):
    values = ["a\x00b\x01c\x08d\x0be\x0cf\x1fg", "keep\ttab\nand\rCR", "\x07", "ok\ufffe\uffff"]
    _write(tmp_path / "a.xlsx", [pa.array(values * repeats)])
    got = _column(_both_modes(tmp_path / "a.xlsx"), 0)
    assert got[:4] == ["abcdefg", "keep\ttab\nand\rCR", None, "ok"]


@pytest.mark.parametrize("repeats", [1, 50], ids=["inline", "shared"])
def test_text_is_cut_to_excels_cell_limit(tmp_path, repeats):
    values = ["x" * 40_000, "&" * 40_000, "Қ" * 32_767, "short"]
    _write(tmp_path / "a.xlsx", [pa.array(values * repeats)])
    got = _column(_both_modes(tmp_path / "a.xlsx"), 0)
    assert got[:4] == ["x" * 32_767, "&" * 32_767, "Қ" * 32_767, "short"]


def test_repeated_labels_share_strings_and_distinct_ids_are_inline(tmp_path):
    n = 3_000
    labels = [LABELS[i % 5] for i in range(n)]
    ids = [str(uuid.UUID(int=i)) for i in range(n)]
    path = tmp_path / "a.xlsx"
    with Workbook(path) as book:
        sheet = book.add_sheet("data", ["label", "id"])
        sheet.write_batch([pa.array(labels[:1500]), pa.array(ids[:1500])])
        sheet.write_batch([pa.array(labels[1500:]), pa.array(ids[1500:])])
    with zipfile.ZipFile(path) as package:
        strings = ElementTree.fromstring(package.read("xl/sharedStrings.xml"))
        sheet_xml = package.read("xl/worksheets/sheet1.xml").decode()
    shared = [si.findtext(f"{{{xlsx._MAIN_NS}}}t") for si in strings]
    assert sorted(shared) == sorted(["label", "id", *LABELS])
    assert strings.get("uniqueCount") == "7"
    assert '<c r="A2" t="s">' in sheet_xml
    assert f'<c r="B3001" t="inlineStr"><is><t xml:space="preserve">{ids[2999]}</t>' in sheet_xml
    rows = _both_modes(path)
    assert rows[1:] == list(zip(labels, ids, strict=True))


def test_labels_beyond_the_shared_table_cap_are_written_inline(tmp_path, monkeypatch):
    monkeypatch.setattr(xlsx, "MAX_SHARED_STRINGS", 3)
    values = [LABELS[i % 5] for i in range(100)]
    path = tmp_path / "a.xlsx"
    _write(path, [pa.array(values)])
    with zipfile.ZipFile(path) as package:
        strings = ElementTree.fromstring(package.read("xl/sharedStrings.xml"))
    assert len(strings) == 3
    assert _column(_both_modes(path), 0) == values


def test_literal_excel_escapes_are_protected(tmp_path):
    # Excel reads "_x0041_" in text as "A"; Excel itself writes a literal one with its
    # underscore escaped. openpyxl does not decode these, so the XML is checked here and
    # the round trip through a spreadsheet application in the LibreOffice test.
    path = tmp_path / "a.xlsx"
    _write(path, [pa.array(["_x0041_ and _x00e9_ and _X0041_ and _x12_"])])
    with zipfile.ZipFile(path) as package:
        sheet_xml = package.read("xl/worksheets/sheet1.xml").decode()
    assert "_x005F_x0041_ and _x005F_x00e9_ and _X0041_ and _x12_" in sheet_xml


# --- whole files ---------------------------------------------------------------------


def _wide_table(n: int, seed: int = 7) -> tuple[list[str], list[pa.Array]]:
    """90 columns of the kinds a microdata export has, with nulls in most of them."""
    rng = np.random.default_rng(seed)
    names: list[str] = []
    columns: list[pa.Array] = []

    def holes(values: list[Any], share: float = 0.1) -> list[Any]:
        return [None if rng.random() < share else v for v in values]

    for j in range(50):
        picks = rng.integers(0, len(LABELS), n)
        columns.append(pa.array(holes([LABELS[k] + f" {j % 3}" for k in picks])))
        names.append(f"label_{j}")
    for j in range(20):
        columns.append(pa.array(holes(rng.integers(-(10**6), 10**6, n).tolist()), pa.int64()))
        names.append(f"int_{j}")
    for j in range(8):
        floats = rng.normal(0, 10 ** (j - 3), n).tolist()
        floats[j] = math.nan
        columns.append(pa.array(holes(floats), pa.float64()))
        names.append(f"float_{j}")
    for j in range(4):
        columns.append(pa.array(holes((rng.random(n) < 0.5).tolist())))
        names.append(f"bool_{j}")
    for j in range(4):
        seconds = rng.integers(1_600_000_000, 1_800_000_000, n)
        moments = [dt.datetime.fromtimestamp(int(s), UTC) for s in seconds]
        columns.append(pa.array(holes(moments), pa.timestamp("us", tz="Asia/Almaty")))
        names.append(f"time_{j}")
    columns.append(pa.array([str(uuid.UUID(int=int(rng.integers(0, 2**62)))) for _ in range(n)]))
    names.append("interview_id")
    columns.append(pa.array(holes([f"текст <{i}> & ' \" {i * 7}" for i in range(n)], 0.5)))
    names.append("other_specify")
    columns.append(pa.array(holes([dt.date(2000, 1, 1) + dt.timedelta(days=i) for i in range(n)])))
    names.append("day")
    columns.append(pa.nulls(n, pa.string()))
    names.append("never_answered")
    assert len(columns) == 90
    return names, columns


def _expected_frame(names: list[str], columns: list[pa.Array]) -> pd.DataFrame:
    """What a spreadsheet should hold: Python values, NaN as empty, times as UTC wall time."""
    data = {}
    for name, column in zip(names, columns, strict=True):
        values = column.to_pylist()
        if pa.types.is_timestamp(column.type):
            values = [v if v is None else v.astimezone(UTC).replace(tzinfo=None) for v in values]
        if pa.types.is_date32(column.type):
            values = [v if v is None else dt.datetime(v.year, v.month, v.day) for v in values]
        if pa.types.is_floating(column.type):
            values = [None if v is None or math.isnan(v) else v for v in values]
        data[name] = pd.Series(values, dtype=object)
    return pd.DataFrame(data)


def _cells(frame: pd.DataFrame, *, bools_as_numbers: bool = False) -> list[list[tuple[str, Any]]]:
    """Each cell as (kind, value), so that booleans, numbers, text and times must match
    in kind as well as in value. (pandas turns a boolean column with gaps into float64,
    so its reading can only be held to 1.0/0.0 there.)"""

    def cell(value: Any) -> tuple[str, Any]:
        if value is None or value is pd.NaT or (isinstance(value, float) and math.isnan(value)):
            return ("empty", None)
        if isinstance(value, pd.Timestamp):
            value = value.to_pydatetime()
        if isinstance(value, np.generic):
            value = value.item()
        if isinstance(value, bool) and not bools_as_numbers:
            return ("bool", value)
        if isinstance(value, int | float):
            return ("number", float(value))
        return (type(value).__name__, value)

    return [[cell(v) for v in row] for row in frame.astype(object).itertuples(index=False)]


def test_a_wide_file_reads_back_identical_to_its_source(tmp_path):
    names, columns = _wide_table(2_000)
    path = tmp_path / "wide.xlsx"
    with Workbook(path) as book:
        sheet = book.add_sheet("data", names)
        for start in range(0, 2_000, 700):
            sheet.write_batch([c.slice(start, 700) for c in columns])
    expected = _expected_frame(names, columns)
    read = pd.read_excel(path, engine="openpyxl")
    assert list(read.columns) == names
    assert len(read) == 2_000
    assert _cells(read, bools_as_numbers=True) == _cells(expected, bools_as_numbers=True)
    normal = _both_modes(path)
    assert normal[0] == tuple(names)
    assert _cells(pd.DataFrame(normal[1:], columns=names, dtype=object)) == _cells(expected)


def test_the_package_is_a_well_formed_zip_of_xml_parts(tmp_path):
    path = tmp_path / "a.xlsx"
    with Workbook(path) as book:
        book.add_sheet("one", ["a"]).write_batch([pa.array(LABELS)])
        book.add_sheet("two").write_rows([[1, "x"]])
    with zipfile.ZipFile(path) as package:
        assert package.testzip() is None
        names = set(package.namelist())
        assert {
            "[Content_Types].xml",
            "_rels/.rels",
            "docProps/core.xml",
            "xl/workbook.xml",
            "xl/_rels/workbook.xml.rels",
            "xl/styles.xml",
            "xl/sharedStrings.xml",
            "xl/worksheets/sheet1.xml",
            "xl/worksheets/sheet2.xml",
        } <= names
        for name in names:
            ElementTree.fromstring(package.read(name))  # each part is well-formed XML
        types = ElementTree.fromstring(package.read("[Content_Types].xml"))
        overrides = {o.get("PartName") for o in types if o.tag.endswith("Override")}
        assert {"/xl/worksheets/sheet1.xml", "/xl/worksheets/sheet2.xml"} <= overrides
        assert all(info.compress_type == zipfile.ZIP_DEFLATED for info in package.infolist())


def test_an_empty_shared_strings_table_is_still_written(tmp_path):
    path = tmp_path / "a.xlsx"
    _write(path, [pa.array([1.5])])
    with zipfile.ZipFile(path) as package:
        assert len(ElementTree.fromstring(package.read("xl/sharedStrings.xml"))) == 0
    assert _both_modes(path) == [(1.5,)]


def test_libreoffice_reads_the_same_values(tmp_path):
    office = shutil.which("libreoffice") or shutil.which("soffice")
    if office is None:
        pytest.skip(
            "LibreOffice is not installed: the check by a spreadsheet application is skipped"
        )
    texts = [
        "Қазақстан",
        "=1+1",
        "007",
        " lead",
        "a & <b> \"c\" 'd'",
        "x\x01y",
        "_x0041_",
        "emoji 😀",
        None,
    ]
    n = len(texts)
    columns = [
        pa.array(texts),
        pa.array([LABELS[i % 2] for i in range(n)]),  # repeats: shared strings
        pa.array([1, -2, None, 2**40, 0, 5, 6, 7, 8], pa.int64()),
        pa.array([0.1, -2.5, 1e-10, 123456789.123, math.nan, None, 3.0, 1e20, -0.001]),
        pa.array([True, False, None] * 3),
        pa.array(
            [dt.datetime(2024, 1, 2, 3, 4, 5, tzinfo=ALMATY)] * (n - 1) + [None],
            pa.timestamp("ms", tz="UTC"),
        ),
    ]
    path = tmp_path / "lo.xlsx"
    _write(path, columns, header=["text", "label", "int", "float", "bool", "time"])
    out = tmp_path / "out"
    subprocess.run(
        [
            office,
            "--headless",
            "--norestore",
            f"-env:UserInstallation={(tmp_path / 'profile').as_uri()}",
            "--convert-to",
            "csv:Text - txt - csv (StarCalc):44,34,76,1,,0,false,true,false,false,false",
            "--outdir",
            str(out),
            str(path),
        ],
        check=True,
        capture_output=True,
        timeout=180,
    )
    with (out / "lo.csv").open(encoding="utf-8", newline="") as handle:
        rows = list(csv.reader(handle))
    assert rows[0] == ["text", "label", "int", "float", "bool", "time"]
    body = rows[1:]
    assert len(body) == n
    want_texts = ["Қазақстан", "=1+1", "007", " lead", "a & <b> \"c\" 'd'", "xy", "_x0041_"]
    assert [r[0] for r in body] == [*want_texts, "emoji 😀", ""]
    assert [r[1] for r in body] == [LABELS[i % 2] for i in range(n)]
    ints = [float(r[2]) if r[2] else None for r in body]
    assert ints == [1, -2, None, 2**40, 0, 5, 6, 7, 8]
    floats = [float(r[3]) if r[3] else None for r in body]
    want_floats = [0.1, -2.5, 1e-10, 123456789.123, None, None, 3.0, 1e20, -0.001]
    assert [f is None for f in floats] == [w is None for w in want_floats]
    assert [f for f in floats if f is not None] == pytest.approx(
        [w for w in want_floats if w is not None], rel=1e-12
    )
    assert [r[4] for r in body] == ["TRUE", "FALSE", ""] * 3
    assert [r[5] for r in body] == ["2024-01-01 22:04:05"] * (n - 1) + [""]
