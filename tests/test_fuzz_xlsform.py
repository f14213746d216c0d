"""Property tests of the XLSForm importer: any workbook gives a compiled form or an
XLSFormError naming the problem, never another exception.

Workbooks are built with openpyxl from random sheets, headers and cells drawn from the
XLSForm vocabulary (types, groups, repeats, choice lists, expressions, settings) and from
noise; damaged files (truncated, not a zip) are drawn too.
"""

from __future__ import annotations

import io

import openpyxl
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st

from surveys.xlsform import XLSFormError, compile_xlsform
from tests.factories import SIMPLE_FORM, build_xlsform

SURVEY_HEADERS = [
    "type", "name", "label", "label::Қазақша (kk)", "label::English (en)", "label::Русский (ru)",
    "hint", "relevant", "constraint", "constraint_message", "required", "required_message",
    "calculation", "choice_filter", "repeat_count", "appearance", "default", "read_only",
    "media::image", "", "Type", " name ", "label::",
]  # fmt: skip
CHOICE_HEADERS = ["list_name", "name", "label", "label::English (en)", "state", "", "list name"]
SETTINGS_HEADERS = ["form_id", "version", "form_title", "default_language", "style", "", "id"]
TYPES = [
    "integer", "decimal", "text", "note", "date", "calculate", "select_one yesno",
    "select_multiple yesno", "select_one missing", "select_one", "begin group", "end group",
    "begin repeat", "end repeat", "begin_group", "start", "end", "today", "deviceid",
    "geopoint", "image", "acknowledge", "range", "rank yesno", "select_one_from_file x.csv",
    "xml-external", "hidden", "barcode", "unknown-type", "", "select one yesno or_other",
]  # fmt: skip
EXPRESSIONS = [
    "${q1} = 1", "${q2} > 3", ". > 0", "${nope} = 1", "selected(${q1}, '1')", "1 +", "(((",
    "${q1", "if(${q1} = 1, 'a', 'b')", "count-selected(.) <= 2", "today()", "position(..)",
    "state = ${q1}", "0", "yes", "no", "true()", "concat(", "'unterminated", "1 div 0",
]  # fmt: skip
NOISE = st.one_of(
    st.none(),
    st.integers(-5, 10**12),
    st.floats(allow_nan=False, allow_infinity=False),
    st.booleans(),
    st.text(alphabet=st.characters(blacklist_categories=["Cs", "Cc"]), max_size=12),
)
NAMES = st.one_of(
    st.sampled_from(["q1", "q2", "q3", "g1", "r1", "yesno", "1bad", "a b", "q1", "", "${q1}"]),
    NOISE,
)
CELLS = st.one_of(st.sampled_from(TYPES), st.sampled_from(EXPRESSIONS), NAMES, NOISE)


def rows(headers: list[str], cells: st.SearchStrategy) -> st.SearchStrategy[list[list]]:
    header = st.lists(st.sampled_from(headers), min_size=0, max_size=8)
    return header.flatmap(
        lambda head: st.lists(
            st.lists(cells, min_size=len(head), max_size=len(head)), max_size=12
        ).map(lambda body: [head, *body])
    )


survey_rows = rows(
    SURVEY_HEADERS,
    st.one_of(st.sampled_from(TYPES), st.sampled_from(EXPRESSIONS), NAMES, NOISE),
)
choice_rows = rows(CHOICE_HEADERS, st.one_of(NAMES, st.sampled_from(["1", "2", "yesno"]), NOISE))
settings_rows = rows(
    SETTINGS_HEADERS, st.one_of(NAMES, st.sampled_from(["kk", "English (en)", "1"]))
)
SHEET_NAMES = ["survey", "choices", "settings", "Survey", " survey ", "external_choices", "notes"]


@st.composite
def workbooks(draw: st.DrawFn) -> bytes:
    book = openpyxl.Workbook()
    book.remove(book.active)
    titles = draw(st.lists(st.sampled_from(SHEET_NAMES), min_size=1, max_size=4, unique=True))
    for title in titles:
        sheet = book.create_sheet(title)
        strategy = {"choices": choice_rows, "settings": settings_rows}.get(title, survey_rows)
        for row in draw(strategy):
            sheet.append(row)
    buffer = io.BytesIO()
    book.save(buffer)
    return buffer.getvalue()


def imports_or_refuses(content: bytes, filename: str = "form.xlsx") -> None:
    try:
        compile_xlsform(content, filename=filename)
    except XLSFormError as error:
        assert error.problems and all(str(problem) for problem in error.problems)


BOUNDED = settings(
    max_examples=200,
    deadline=None,
    derandomize=True,
    database=None,
    phases=[Phase.explicit, Phase.reuse, Phase.generate, Phase.shrink],
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)


@BOUNDED
@given(workbooks())
def test_random_workbooks_import_or_give_an_xlsform_error(content):
    imports_or_refuses(content)


VALID = build_xlsform(**SIMPLE_FORM)


@settings(max_examples=60, deadline=None, derandomize=True, database=None)
@given(
    st.one_of(
        st.integers(0, len(VALID) - 1).map(lambda n: VALID[:n]),
        st.tuples(st.integers(0, len(VALID) - 1), st.integers(0, 255)).map(
            lambda t: VALID[: t[0]] + bytes([t[1]]) + VALID[t[0] + 1 :]
        ),
        st.binary(max_size=2000),
    ),
    st.sampled_from(["form.xlsx", "form.xls", "form.xlsm"]),
)
def test_damaged_files_give_an_xlsform_error(content, filename):
    imports_or_refuses(content, filename)
