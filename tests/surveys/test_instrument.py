"""The informal-networks questionnaire (XLSForm) is valid, trilingual and keeps its stable codes.

No database: the workbook is read with openpyxl and converted with pyxform.
"""

import csv
import re
from pathlib import Path

import pytest
from openpyxl import load_workbook
from pyxform import xls2xform
from pyxform.xls2json import parse_file_to_json

from surveys.regions import REGIONS_CSV

REPO_ROOT = Path(__file__).resolve().parents[2]
INSTRUMENT = REPO_ROOT / "surveys" / "instruments" / "informal_networks.xlsx"

KK, RU, EN = "Қазақша (kk)", "Русский (ru)", "English (en)"
LANGUAGES = (KK, RU, EN)
TEXT_KINDS = ("label", "hint", "constraint_message", "required_message")

KAZAKH_LETTERS = set("әғқңөұүһіӘҒҚҢӨҰҮҺІ")
LATIN = re.compile(r"[A-Za-z]")
# Codes allowed to appear in Latin script inside Kazakh and Russian texts.
LATIN_CODE = re.compile(r"\bKZ(-\d+)?\b")

SPHERES = ("KG", "SCH", "UNI", "MED", "JOB", "POL", "CRT", "DOC", "LND", "INF", "BUS")
SPECIAL = {"-1", "-2"}
FORBIDDEN_CODES = {"-3", "-9"}

# name -> (type, enclosing group, relevant)
EXPECTED = {
    "REGION": ("select_one region", "g_design", None),
    "SETTLEMENT": ("select_one settlement", "g_design", None),
    "URBAN": ("calculate", "g_design", None),
    "SEX": ("select_one sex", "g_background", None),
    "BIRTH_YEAR": ("integer", "g_background", None),
    "AGE": ("calculate", "g_background", None),
    "EDU": ("select_one edu", "g_background", None),
    "EMP": ("select_one emp", "g_background", None),
    "ETH": ("select_one eth", "g_background", None),
    "HH_SIZE": ("integer", "g_background", None),
    "INCOME": ("select_one income", "g_background", None),
    "P1": ("select_one widespread", "g_perceptions", None),
    "P2": ("select_one widespread", "g_perceptions", None),
    "E1": ("select_one bribe_exp", "g_experience", None),
    "E2": ("select_one net_exp", "g_experience", None),
    "M": (
        "select_multiple motive",
        "g_experience",
        "${E1} = 1 or ${E1} = 2 or ${E2} = 1 or ${E2} = 2 or ${E2} = 3",
    ),
    "M_OTHER": ("text", "g_experience", "selected(${M}, 'M7')"),
    "T1": ("select_one agree5", "g_experience", None),
    "R1": ("select_one informality_view", "g_experience", None),
    "R1_OTHER": ("text", "g_experience", "${R1} = 3"),
    "LE_ARM": ("calculate", "", None),
    "LE_C": ("integer", "g_list_c", None),
    "LE_T": ("integer", "g_list_t", None),
    "RR_E1": ("select_one yesno", "g_rr", None),
    "CW_E1": ("select_one same_diff", "g_cw", None),
    "A1": ("select_one accept", "g_attitudes", None),
    "A2": ("select_one accept", "g_attitudes", None),
    "A3": ("select_one accept", "g_attitudes", None),
    **{
        f"TR_{code}": ("select_one trust", "g_trust", None)
        for code in ("GOV", "CRT", "POL", "AKM", "PAR", "MED", "NGO")
    },
}
for _s in SPHERES:
    EXPECTED[f"C_{_s}"] = ("select_one yesno", f"g_{_s}", None)
    EXPECTED[f"B_{_s}"] = ("select_one yesno", f"g_{_s}", f"${{C_{_s}}} = 1")
    EXPECTED[f"N_{_s}"] = ("select_one sphere_use", f"g_{_s}", f"${{C_{_s}}} = 1")

EXPECTED_CHOICES = {
    "yesno": ["1", "2", "-1", "-2"],
    "sphere_use": ["1", "2", "3", "-1", "-2"],
    "widespread": ["1", "2", "3", "4", "-1", "-2"],
    "accept": ["1", "2", "3", "-1", "-2"],
    "trust": ["1", "2", "3", "4", "-1", "-2"],
    "agree5": ["1", "2", "3", "4", "5", "-1", "-2"],
    "settlement": ["1", "2", "3", "4"],
    "sex": ["1", "2", "-2"],
    "edu": ["1", "2", "3", "4", "5", "6", "-2"],
    "emp": ["1", "2", "3", "4", "5", "6", "7", "-2"],
    "eth": ["1", "2", "3", "4", "5", "6", "7", "8", "-2"],
    "income": ["1", "2", "3", "4", "5", "-1", "-2"],
    "same_diff": ["1", "2", "-2"],
    "bribe_exp": ["1", "2", "3", "-2"],
    "net_exp": ["1", "2", "3", "4", "-2"],
    "motive": ["M1", "M2", "M3", "M4", "M5", "M6", "M7"],
    "informality_view": ["1", "2", "3", "-1", "-2"],
}


def _rows(sheet_name: str) -> list[dict[str, str]]:
    sheet = load_workbook(INSTRUMENT, read_only=True)[sheet_name]
    values = sheet.iter_rows(values_only=True)
    header = [str(h).strip() if h is not None else "" for h in next(values)]
    rows = []
    for line in values:
        row = {
            col: str(value).strip()
            for col, value in zip(header, line, strict=False)
            if col and value is not None and str(value).strip()
        }
        if row:
            rows.append(row)
    return rows


@pytest.fixture(scope="module")
def survey() -> list[dict[str, str]]:
    return _rows("survey")


@pytest.fixture(scope="module")
def choices() -> list[dict[str, str]]:
    return _rows("choices")


@pytest.fixture(scope="module")
def questions(survey) -> dict[str, dict[str, str]]:
    """Survey rows by name, each with the innermost enclosing group under `_group`."""
    stack: list[str] = []
    by_name: dict[str, dict[str, str]] = {}
    for row in survey:
        if _is_end(row):
            stack.pop()
            continue
        by_name[row["name"]] = {**row, "_group": stack[-1] if stack else ""}
        if _is_begin(row):
            stack.append(row["name"])
    assert not stack, f"unclosed groups: {stack}"
    return by_name


def _is_begin(row: dict[str, str]) -> bool:
    return row["type"].replace(" ", "_") == "begin_group"


def _is_end(row: dict[str, str]) -> bool:
    return row["type"].replace(" ", "_") == "end_group"


def _texts(rows: list[dict[str, str]], kinds=TEXT_KINDS, languages=LANGUAGES):
    for row in rows:
        for kind in kinds:
            for lang in languages:
                text = row.get(f"{kind}::{lang}")
                if text:
                    yield row, kind, lang, text


# -- (a) conversion -----------------------------------------------------------------------


def test_pyxform_converts_without_errors_or_warnings():
    warnings: list[str] = []
    result = xls2xform.convert(xlsform=str(INSTRUMENT), warnings=warnings)
    assert "<h:html" in result.xform
    assert 'lang="Қазақша (kk)" default="true()"' in result.xform
    assert warnings == []


def test_settings():
    (settings,) = _rows("settings")
    assert settings["form_id"] == "informal_networks"
    assert settings["version"] == "2026.3"
    assert settings["default_language"] == KK
    assert settings["style"] == "pages"
    assert settings["form_title"]


def test_pyxform_json_declares_the_three_languages():
    form = parse_file_to_json(str(INSTRUMENT))
    assert form["id_string"] == "informal_networks"
    assert form["default_language"] == KK
    first_select = next(
        child
        for group in form["children"]
        if group.get("name") == "g_design"
        for child in group["children"]
        if child["name"] == "REGION"
    )
    assert set(first_select["label"]) == set(LANGUAGES)


# -- (b) every text in all three languages -----------------------------------------------


def test_only_the_three_declared_languages_are_used():
    for sheet in ("survey", "choices"):
        header = next(load_workbook(INSTRUMENT, read_only=True)[sheet].iter_rows(values_only=True))
        for col in header:
            if col and "::" in col:
                kind, lang = col.split("::", 1)
                assert kind in TEXT_KINDS and lang in LANGUAGES, (
                    f"{sheet}: unexpected column {col!r}"
                )
            else:
                assert col not in TEXT_KINDS, f"{sheet}: untranslated column {col!r}"


def test_survey_texts_are_complete_in_every_language(survey):
    missing = []
    for row in survey:
        for kind in TEXT_KINDS:
            present = [lang for lang in LANGUAGES if row.get(f"{kind}::{lang}")]
            if present and len(present) != len(LANGUAGES):
                missing.append((row["name"], kind, sorted(set(LANGUAGES) - set(present))))
    assert missing == []


def test_every_displayed_item_has_a_label(survey):
    unlabelled = [
        row["name"]
        for row in survey
        if row["type"] != "calculate"
        and not _is_end(row)
        and not all(row.get(f"label::{lang}") for lang in LANGUAGES)
    ]
    assert unlabelled == []


def test_choice_labels_are_complete_in_every_language(choices):
    missing = [
        (row["list_name"], row["name"], lang)
        for row in choices
        for lang in LANGUAGES
        if not row.get(f"label::{lang}")
    ]
    assert missing == []


def test_texts_are_translated_not_copied(survey, choices):
    copied = [
        (row.get("name"), kind)
        for row, kind, lang, text in _texts(survey + choices, languages=(KK,))
        if len(text.split()) >= 3 and text in (row.get(f"{kind}::{RU}"), row.get(f"{kind}::{EN}"))
    ]
    assert copied == []


# -- (c) scripts ---------------------------------------------------------------------------


def test_long_kazakh_texts_use_kazakh_letters(survey, choices):
    texts = list(_texts(survey + choices, languages=(KK,)))
    assert texts
    without = [
        (row.get("name"), kind, text)
        for row, kind, _, text in texts
        if len(text.split()) >= 4 and not KAZAKH_LETTERS & set(text)
    ]
    assert without == []
    assert sum(bool(KAZAKH_LETTERS & set(t)) for *_, t in texts) / len(texts) > 0.8


def test_russian_texts_do_not_use_kazakh_letters(survey, choices):
    # Region names such as «область Жетісу» keep their official Kazakh spelling.
    offending = [
        (row.get("name"), kind, text)
        for row, kind, _, text in _texts(survey + choices, languages=(RU,))
        if row.get("list_name") != "region" and KAZAKH_LETTERS & set(text)
    ]
    assert offending == []


def test_kazakh_and_russian_texts_have_no_latin_letters(survey, choices):
    latin = [
        (row.get("name"), kind, lang, text)
        for row, kind, lang, text in _texts(survey + choices, languages=(KK, RU))
        if LATIN.search(LATIN_CODE.sub("", text))
    ]
    assert latin == []


# -- (d) stable codes, types and skip logic -----------------------------------------------


def test_stable_codes_exist_with_their_types_and_groups(questions):
    found = {
        name: (questions[name]["type"], questions[name]["_group"], questions[name].get("relevant"))
        for name in EXPECTED
        if name in questions
    }
    assert found == EXPECTED


def test_names_are_unique(survey):
    names = [row["name"] for row in survey if not _is_end(row)]
    assert len(names) == len(set(names))


def test_sphere_groups_are_nested_in_order_after_an_introduction(survey, questions):
    assert questions["g_spheres"]["type"] == "begin_group"
    inside = [
        row["name"]
        for row in survey
        if not _is_end(row) and questions[row["name"]]["_group"] == "g_spheres"
    ]
    assert questions[inside[0]]["type"] == "note"
    assert inside[1:] == [f"g_{s}" for s in SPHERES]
    for s in SPHERES:
        assert questions[f"g_{s}"]["label::" + EN]


def test_top_level_order(survey, questions):
    top = [
        row["name"] for row in survey if not _is_end(row) and questions[row["name"]]["_group"] == ""
    ]
    assert top[0] == "INTRO" and questions["INTRO"]["type"] == "note"
    assert top[-1] == "END" and questions["END"]["type"] == "note"
    assert top[1:-1] == [
        "g_design",
        "g_background",
        "g_perceptions",
        "g_spheres",
        "g_experience",
        "LE_ARM",
        "g_list",
        "g_rr",
        "g_cw",
        "g_attitudes",
        "g_trust",
    ]


def test_calculations_and_constraints(questions):
    assert questions["URBAN"]["calculation"] == "if(${SETTLEMENT} = 4, 2, 1)"
    assert questions["AGE"]["calculation"] == "int(format-date(today(), '%Y')) - ${BIRTH_YEAR}"
    birth = questions["BIRTH_YEAR"]
    assert birth["required"] == "yes"
    assert birth["constraint"] == ". >= 1900 and . <= int(format-date(today(), '%Y')) - 18"
    assert (
        "18" in birth[f"constraint_message::{EN}"] and "adult" in birth[f"constraint_message::{EN}"]
    )
    assert all("18" in birth[f"constraint_message::{lang}"] for lang in LANGUAGES)
    assert questions["HH_SIZE"]["constraint"] == ". >= 1 and . <= 30"


def test_select_one_questions_are_required_with_a_message(questions):
    problems = [
        name
        for name, row in questions.items()
        if row["type"].startswith("select_one")
        and not (
            row.get("required") == "yes"
            and all(row.get(f"required_message::{lang}") for lang in LANGUAGES)
        )
    ]
    assert problems == []


def test_other_specify_items_are_optional_text(questions):
    for name in ("M_OTHER", "R1_OTHER"):
        assert questions[name]["type"] == "text"
        assert questions[name].get("required") in (None, "no")


def test_hints_on_birth_year_and_motives(questions):
    for name in ("BIRTH_YEAR", "M"):
        assert all(questions[name].get(f"hint::{lang}") for lang in LANGUAGES), name
    assert "all" in questions["M"][f"hint::{EN}"].lower()


def test_settlement_choice_4_is_the_rural_one(choices):
    labels = {
        row["name"]: row[f"label::{EN}"] for row in choices if row["list_name"] == "settlement"
    }
    assert labels["4"] == "Village"


# -- choice lists and special codes ------------------------------------------------------------


def test_choice_lists_have_the_agreed_codes(choices):
    lists: dict[str, list[str]] = {}
    for row in choices:
        lists.setdefault(row["list_name"], []).append(row["name"])
    assert {name: lists.get(name) for name in EXPECTED_CHOICES} == EXPECTED_CHOICES


def test_special_codes_follow_the_domain_scheme(choices):
    names = {row["name"] for row in choices}
    assert not names & FORBIDDEN_CODES
    negative = {name for name in names if name.startswith("-")}
    assert negative <= SPECIAL
    labels = {(row["name"], row[f"label::{EN}"]) for row in choices if row["name"] in SPECIAL}
    assert labels == {("-1", "Don't know"), ("-2", "Prefer not to answer")}


def test_every_referenced_list_exists_and_every_list_is_used(survey, choices):
    declared = {row["list_name"] for row in choices}
    referenced = {row["type"].split()[1] for row in survey if row["type"].startswith("select_")}
    assert referenced == declared


# -- (e) regions ------------------------------------------------------------------------------


def test_region_choices_match_the_reference_table(choices):
    with REGIONS_CSV.open(encoding="utf-8") as fh:
        reference = [
            (r["iso_2022"], r["name_kk"], r["name_ru"], r["name_en"]) for r in csv.DictReader(fh)
        ]
    regions = [
        (row["name"], row[f"label::{KK}"], row[f"label::{RU}"], row[f"label::{EN}"])
        for row in choices
        if row["list_name"] == "region"
    ]
    assert len(reference) == 20
    assert sorted(regions) == sorted(reference)


def test_one_of_each_indirect_design_for_bribery_in_the_last_12_months(questions):
    designs = {
        name: row.get("tanys_design") for name, row in questions.items() if row.get("tanys_design")
    }
    assert designs == {
        "LE_ARM": "list:assign balanced",
        "LE_C": "list:control items=4",
        "LE_T": "list:treatment",
        "RR_E1": "rr:answer p=0.7 q=0.2",
        "CW_E1": "crosswise:answer r=0.25",
    }
    assert questions["LE_ARM"]["calculation"] == "once(int(random() * 2))"
    assert questions["g_list_c"]["relevant"] == "${LE_ARM} = 0"
    assert questions["g_list_t"]["relevant"] == "${LE_ARM} = 1"
    # The treatment list is the control list with the sensitive item among them.
    control, treatment = questions["LE_C"]["label::" + EN], questions["LE_T"]["label::" + EN]
    assert "four things" in control and "five things" in treatment
    for text in (treatment, questions["RR_E1"]["label::" + EN], questions["CW_E1"]["label::" + EN]):
        assert "money or a valuable gift to an official" in text and "12 months" in text
    assert "money or a valuable gift" not in control
    assert questions["LE_C"]["constraint"] == ". >= 0 and . <= 4"
    assert questions["LE_T"]["constraint"] == ". >= 0 and . <= 5"
