"""The XLSForm importer on real forms from outside, on the instrument, and on broken forms."""

from __future__ import annotations

from pathlib import Path

import pytest

from surveys.models import FormVersion, Survey
from surveys.services import import_xlsform
from surveys.xlsform import XLSFormError, compile_xlsform
from tests.factories import SIMPLE_FORM, build_xlsform
from tests.sources import SHARED, XLSFORMS

REPO = Path(__file__).resolve().parents[2]
INSTRUMENT = REPO / "surveys" / "instruments" / "informal_networks.xlsx"
GOOD_SHARED = [
    "xlsform_spec_test.xlsx",
    "choice_filter_test.xlsx",
    "specify_other.xlsx",
    "UCL_Biomass_Plot_Form.xlsx",
    "cascading_select.xlsx",
]

pytestmark = pytest.mark.filterwarnings("ignore::UserWarning")


def shared_form(name: str) -> bytes:
    return (XLSFORMS / name).read_bytes()


def test_copied_forms_match_the_shared_ones():
    shared = SHARED / "xlsforms"
    if not shared.exists():
        pytest.skip(f"{shared} is not beside this clone: nothing to compare the copies with")
    copied = {path.name: path.read_bytes() for path in XLSFORMS.iterdir()}
    assert copied == {path.name: path.read_bytes() for path in shared.iterdir()}


def problems_of(content: bytes, filename: str = "form.xlsx") -> list[str]:
    with pytest.raises(XLSFormError) as caught:
        compile_xlsform(content, filename=filename)
    return [str(p) for p in caught.value.problems]


# -- real forms from outside ------------------------------------------------------------------


@pytest.mark.parametrize("name", GOOD_SHARED)
def test_real_forms_compile(name):
    compiled = compile_xlsform(shared_form(name), filename=name)
    assert compiled.definition["children"], name


def test_cascading_select_keeps_its_choice_filters():
    compiled = compile_xlsform(
        shared_form("cascading_select.xlsx"), filename="cascading_select.xlsx"
    )
    county = next(n for n in compiled.definition["children"] if n["name"] == "selected_county")
    assert county["choice_filter"] is not None
    columns = {c["name"]: c["columns"] for c in compiled.definition["choices"]["counties"]}
    assert columns["king"] == {"state": "washington"}


def test_swahili_english_form_keeps_both_languages_and_its_repeats():
    compiled = compile_xlsform(shared_form("UCL_Biomass_Plot_Form.xlsx"), filename="ucl.xlsx")
    assert compiled.languages == ["sw", "en"]
    assert compiled.default_language == "sw"
    kinds = {node["kind"] for node in _walk(compiled.definition["children"])}
    assert "repeat" in kinds


def test_specify_other_adds_the_other_question():
    compiled = compile_xlsform(shared_form("specify_other.xlsx"), filename="specify_other.xlsx")
    names = [node["name"] for node in _walk(compiled.definition["children"])]
    assert "sex_other" in names


def test_missing_translations_are_reported():
    compiled = compile_xlsform(shared_form("xlsform_spec_test.xlsx"), filename="spec.xlsx")
    assert any("no chinese translation" in w for w in compiled.warnings)


def test_duplicate_columns_form_is_refused_naming_the_column():
    problems = problems_of(shared_form("duplicate_columns.xlsx"), "duplicate_columns.xlsx")
    assert problems == [
        "sheet 'survey', row 1, column 'label': the column header 'label' appears more than once; keep one."
    ]


def test_bad_calc_form_is_refused_naming_the_cell():
    problems = problems_of(shared_form("bad_calc.xlsx"), "bad_calc.xlsx")
    assert len(problems) == 1
    assert problems[0].startswith("sheet 'survey', row 2, column 'calculation': ")


# -- the instrument ---------------------------------------------------------------------------


def test_instrument_compiles_with_three_languages_and_no_warnings():
    compiled = compile_xlsform(INSTRUMENT.read_bytes(), filename=INSTRUMENT.name)
    assert compiled.languages == ["kk", "ru", "en"]
    assert compiled.default_language == "kk"
    assert compiled.version == "2026.3"
    assert compiled.warnings == []


def test_instrument_skip_logic_is_compiled():
    compiled = compile_xlsform(INSTRUMENT.read_bytes(), filename=INSTRUMENT.name)
    nodes = {n["name"]: n for n in _walk(compiled.definition["children"])}
    assert nodes["B_MED"]["relevant"] is not None
    assert nodes["M"]["type"] == "select_multiple"
    assert nodes["BIRTH_YEAR"]["constraint"] is not None
    assert set(nodes["BIRTH_YEAR"]["constraint_message"]) == {"kk", "ru", "en"}


# -- broken forms: each refused with its own message ---------------------------------------------


def _form(survey_rows, choices=None, settings=None) -> bytes:
    header = ["type", "name", "label", "relevant", "constraint", "calculation"]
    return build_xlsform([header, *survey_rows], choices, settings)


def test_unknown_function_is_named():
    problems = problems_of(_form([["integer", "a", "A", "frobnicate(1)", "", ""]]))
    assert problems == [
        "sheet 'survey', row 2, column 'relevant': " + problems[0].split(": ", 1)[1]
    ]
    assert "frobnicate" in problems[0]


def test_reference_to_missing_question_is_refused():
    problems = problems_of(_form([["integer", "a", "A", "${nope} = 1", "", ""]]))
    assert len(problems) == 1 and "nope" in problems[0]


def test_unknown_question_type_is_refused():
    problems = problems_of(_form([["integr", "a", "A", "", "", ""]]))
    assert len(problems) == 1 and "integr" in problems[0] and "row 2" in problems[0]


def test_select_with_missing_choice_list_is_refused():
    choices = [["list_name", "name", "label"], ["yesno", "1", "Yes"]]
    problems = problems_of(_form([["select_one colours", "a", "A", "", "", ""]], choices))
    assert len(problems) == 1 and "colours" in problems[0]


def test_duplicate_question_name_is_refused():
    problems = problems_of(
        _form([["integer", "a", "A", "", "", ""], ["text", "a", "A again", "", "", ""]])
    )
    assert len(problems) == 1 and "'a'" in problems[0]


def test_unclosed_group_is_refused():
    problems = problems_of(
        _form([["begin group", "g", "G", "", "", ""], ["integer", "a", "A", "", "", ""]])
    )
    assert len(problems) == 1 and "group" in problems[0].lower()


def test_duplicate_choice_names_are_refused_naming_the_row():
    choices = [["list_name", "name", "label"], ["yesno", "1", "Yes"], ["yesno", "1", "No"]]
    problems = problems_of(_form([["select_one yesno", "a", "A", "", "", ""]], choices))
    assert len(problems) == 1
    assert problems[0].startswith("sheet 'choices', row 3, column 'name': ")
    assert "must be unique" in problems[0]


def test_missing_survey_sheet_is_refused():
    import io

    import openpyxl

    book = openpyxl.Workbook()
    book.active.title = "questions"
    buffer = io.BytesIO()
    book.save(buffer)
    assert problems_of(buffer.getvalue()) == [
        "sheet 'survey': the workbook has no sheet named 'survey'."
    ]


def test_not_an_excel_file_is_refused():
    from django.utils import translation

    with translation.override("en"):
        problem = problems_of(b"this is not a spreadsheet")[0]
    assert "not a readable excel workbook" in problem.lower()
    assert "upload an .xlsx or .xls" in problems_of(b"a,b\n", filename="form.csv")[0]


def test_every_broken_expression_is_reported_at_once():
    problems = problems_of(
        _form([["integer", "a", "A", "1 +", "", ""], ["integer", "b", "B", "", ". >", ""]])
    )
    assert [p.split(":")[0] for p in problems] == [
        "sheet 'survey', row 2, column 'relevant'",
        "sheet 'survey', row 3, column 'constraint'",
    ]


def test_legacy_xls_is_accepted(tmp_path):
    """Legacy .xls (Excel 97-2003) imports as pyxform reads it."""
    xls = _xls_bytes()
    compiled = compile_xlsform(xls, filename="legacy.xls")
    assert [n["name"] for n in compiled.definition["children"]] == ["q1", "q2"]


# -- versions ---------------------------------------------------------------------------------


@pytest.mark.django_db
def test_importing_the_same_version_twice_is_idempotent():
    content = build_xlsform(**SIMPLE_FORM)
    first, created = import_xlsform(survey_code="s", content=content, filename="s.xlsx")
    again, created_again = import_xlsform(survey_code="s", content=content, filename="s.xlsx")
    assert created and not created_again and first.pk == again.pk
    assert FormVersion.objects.count() == 1 and Survey.objects.count() == 1


@pytest.mark.django_db
def test_same_version_string_with_other_content_is_refused():
    import_xlsform(survey_code="s", content=build_xlsform(**SIMPLE_FORM), filename="s.xlsx")
    changed = {
        **SIMPLE_FORM,
        "survey": [*SIMPLE_FORM["survey"], ["text", "q3", "Т", "Т", "T", "", ""]],
    }
    with pytest.raises(XLSFormError, match="already imported with different content"):
        import_xlsform(survey_code="s", content=build_xlsform(**changed), filename="s.xlsx")
    assert FormVersion.objects.count() == 1


@pytest.mark.django_db
def test_new_version_keeps_old_one_and_refuses_type_changes():
    import_xlsform(survey_code="s", content=build_xlsform(**SIMPLE_FORM), filename="s.xlsx")
    v2 = {**SIMPLE_FORM, "settings": [["form_id", "version"], ["simple", "2"]]}
    v2["survey"] = [*SIMPLE_FORM["survey"], ["text", "q3", "Т", "Т", "T", "", ""]]
    version2, created = import_xlsform(
        survey_code="s", content=build_xlsform(**v2), filename="s.xlsx"
    )
    assert created and FormVersion.objects.count() == 2
    v3 = {**SIMPLE_FORM, "settings": [["form_id", "version"], ["simple", "3"]]}
    v3["survey"] = [
        SIMPLE_FORM["survey"][0],
        SIMPLE_FORM["survey"][1],
        ["text", "q2", "Ж", "В", "Age", "", ""],
    ]
    with pytest.raises(XLSFormError, match="question 'q2' is integer in version '1' but text here"):
        import_xlsform(survey_code="s", content=build_xlsform(**v3), filename="s.xlsx")
    assert FormVersion.objects.count() == 2


@pytest.mark.django_db
def test_a_refused_form_creates_no_survey():
    with pytest.raises(XLSFormError):
        import_xlsform(
            survey_code="new", content=shared_form("bad_calc.xlsx"), filename="bad_calc.xlsx"
        )
    assert not Survey.objects.filter(code="new").exists()


def _walk(nodes):
    for node in nodes:
        yield node
        yield from _walk(node.get("children", []))


def _xls_bytes() -> bytes:
    """A minimal BIFF8 .xls workbook."""
    import xlwt

    book = xlwt.Workbook()
    survey = book.add_sheet("survey")
    for r, row in enumerate(
        [["type", "name", "label"], ["integer", "q1", "One"], ["text", "q2", "Two"]]
    ):
        for c, value in enumerate(row):
            survey.write(r, c, value)
    import io

    buffer = io.BytesIO()
    book.save(buffer)
    return buffer.getvalue()
