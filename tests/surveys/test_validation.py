"""Server-side validation against the compiled questionnaire (no database).

Every test runs twice: through the walk of compiled steps (`Validator`, what
`validate_answers` uses) and through the generated function that stores interviews
(`GeneratedValidator`)."""

from __future__ import annotations

import datetime as dt

import pytest

from surveys.validation import FORM_ERRORS, AnswerErrors, Validator
from surveys.validation_source import GeneratedValidator
from surveys.xlsform import compile_xlsform
from tests.factories import build_xlsform
from tests.surveys.webform_fixtures import INSTRUMENT, SPHERES, complete_answers

DEFINITION = compile_xlsform(INSTRUMENT.read_bytes(), filename="informal_networks.xlsx").definition
TODAY = dt.date(2026, 11, 26)
USING: dict[str, type[Validator]] = {}


@pytest.fixture(autouse=True, params=[Validator, GeneratedValidator], ids=["walk", "generated"])
def implementation(request):
    USING["class"] = request.param
    yield
    USING.clear()


def validate(definition, answers, **kwargs):
    return USING["class"](definition).validate(answers, **kwargs)


def errors_of(answers, definition=DEFINITION, language="kk", **kwargs) -> dict[str, list[str]]:
    with pytest.raises(AnswerErrors) as caught:
        validate(definition, answers, language=language, today=TODAY, **kwargs)
    return caught.value.errors


def clean(answers, definition=DEFINITION, language="kk"):
    return validate(definition, answers, language=language, today=TODAY).answers


def test_complete_interview_is_stored_with_codes_and_calculations():
    stored = clean(complete_answers(C_MED="1", B_MED="2", N_MED="1"))
    assert stored["REGION"] == "KZ-75"
    assert stored["SETTLEMENT"] == 1 and stored["URBAN"] == 1
    assert stored["BIRTH_YEAR"] == 1985 and stored["AGE"] == 41  # 2026 - 1985
    assert (stored["C_MED"], stored["B_MED"], stored["N_MED"]) == (1, 2, 1)
    for sphere in set(SPHERES) - {"MED"}:
        assert (stored[f"B_{sphere}"], stored[f"N_{sphere}"]) == (-3, -3)
    # M is select_multiple with text codes: not asked, so not stored at all.
    assert "M" not in stored and "M_OTHER" not in stored


def test_village_makes_the_interview_rural():
    assert clean(complete_answers(SETTLEMENT="4"))["URBAN"] == 2


def test_calculations_are_recomputed_whatever_the_client_sent():
    assert clean(complete_answers(URBAN=1, AGE=99, SETTLEMENT=4))["URBAN"] == 2
    assert clean(complete_answers(AGE="99"))["AGE"] == 41


def test_answers_to_skipped_questions_are_dropped_or_not_applicable():
    stored = clean(complete_answers(C_KG="2", B_KG="1", N_KG="1", M=["M1"], R1_OTHER="x"))
    assert (stored["B_KG"], stored["N_KG"]) == (-3, -3)
    assert "M" not in stored and "R1_OTHER" not in stored


def test_motives_asked_of_those_with_experience():
    stored = clean(complete_answers(E2="2", M=["M7", "M2"], M_OTHER="через знакомых"))
    assert stored["M"] == ["M2", "M7"]  # in the order of the choice list
    assert stored["M_OTHER"] == "через знакомых"
    assert "M_OTHER" not in clean(complete_answers(E1="1", M="M1 M3"))
    assert clean(complete_answers(E1="1", M="M1 M3"))["M"] == ["M1", "M3"]


def test_birth_year_constraint_uses_the_forms_message_in_each_language():
    kk = errors_of(complete_answers(BIRTH_YEAR="2015"))
    assert kk == {"BIRTH_YEAR": [DEFINITION_MESSAGE("BIRTH_YEAR", "kk")]}
    assert "18 жасқа" in kk["BIRTH_YEAR"][0]
    ru = errors_of(complete_answers(BIRTH_YEAR="2015"), language="ru")
    assert "18 лет" in ru["BIRTH_YEAR"][0]
    assert clean(complete_answers(BIRTH_YEAR="2008"))["BIRTH_YEAR"] == 2008
    assert "BIRTH_YEAR" in errors_of(complete_answers(BIRTH_YEAR="2009"))


def DEFINITION_MESSAGE(name: str, language: str) -> str:  # noqa: N802
    node = next(n for n in _questions(DEFINITION["children"]) if n["name"] == name)
    return node["constraint_message"][language]


def _questions(nodes):
    for node in nodes:
        yield node
        yield from _questions(node.get("children", []))


def test_missing_required_answer_only_when_relevant():
    answers = complete_answers(C_MED="1", B_MED="1")
    errors = errors_of(answers, language="ru")
    assert list(errors) == ["N_MED"]
    assert errors["N_MED"][0]  # the form's required message or the default, in Russian
    assert "B_KG" not in errors_of(complete_answers(C_MED="1"))


def test_default_messages_exist_in_every_language():
    answers = complete_answers(HH_SIZE="three")
    assert errors_of(answers, language="kk")["HH_SIZE"] == ["Бүтін сан енгізіңіз."]
    assert errors_of(answers, language="ru")["HH_SIZE"] == ["Введите целое число."]
    assert errors_of(answers, language="en")["HH_SIZE"] == ["Enter a whole number."]


@pytest.mark.parametrize(
    ("name", "value"),
    [
        ("HH_SIZE", "2.5"),
        ("HH_SIZE", True),
        ("HH_SIZE", [3]),
        ("SEX", "9"),
        ("SEX", ["1"]),
        ("REGION", "KZ-99"),
        ("E2", {"code": 1}),
        ("HH_SIZE", "0"),
        ("HH_SIZE", "31"),
    ],
)
def test_wrong_types_and_codes_are_refused(name, value):
    assert name in errors_of(complete_answers(**{name: value}))


def test_select_multiple_refuses_unknown_and_repeated_codes():
    assert "M" in errors_of(complete_answers(E1="1", M=["M1", "M9"]))
    assert "M" in errors_of(complete_answers(E1="1", M=["M1", "M1"]))


def test_text_length_is_limited():
    assert "R1_OTHER" in errors_of(complete_answers(R1="3", R1_OTHER="я" * 2001))
    assert clean(complete_answers(R1="3", R1_OTHER="я" * 2000))["R1_OTHER"] == "я" * 2000


def test_unknown_question_names_are_refused():
    errors = errors_of(complete_answers(BRIBE_AMOUNT="5000"))
    assert list(errors) == ["BRIBE_AMOUNT"]
    assert errors["BRIBE_AMOUNT"] == ["Мұндай сұрақ сауалнамада жоқ."]


def test_answers_that_are_not_an_object_are_refused():
    assert FORM_ERRORS in errors_of(["REGION", "KZ-75"])


def test_every_problem_is_reported_at_once():
    errors = errors_of(complete_answers(SEX=None, HH_SIZE="0", C_MED="1"))
    assert set(errors) == {"SEX", "HH_SIZE", "B_MED", "N_MED"}


# -- features the instrument does not use, on small forms --------------------------------

LANG = ["label::Қазақша (kk)", "label::Русский (ru)", "label::English (en)"]


def small_form(survey_rows, choices=None) -> dict:
    header = [
        "type",
        "name",
        *LANG,
        *sorted({k for r in survey_rows for k in r} - {"type", "name", "label"}),
    ]
    rows = [header]
    for r in survey_rows:
        label = r.get("label", r["name"])
        rows.append(
            [r["type"], r["name"], label, label, label, *[r.get(h, "") for h in header[5:]]]
        )
    choice_rows = None
    if choices:
        extra = sorted({k for c in choices for k in c} - {"list_name", "name", "label"})
        choice_rows = [["list_name", "name", *LANG, *extra]]
        for c in choices:
            choice_rows.append(
                [
                    c["list_name"],
                    c["name"],
                    c["name"],
                    c["name"],
                    c["name"],
                    *[c.get(k, "") for k in extra],
                ]
            )
    content = build_xlsform(
        rows, choice_rows, [["form_id", "version", "default_language"], ["t", "1", "Қазақша (kk)"]]
    )
    return compile_xlsform(content, filename="t.xlsx").definition


def test_choice_filter_limits_the_codes():
    definition = small_form(
        [
            {"type": "select_one region", "name": "reg"},
            {"type": "select_one city", "name": "city", "choice_filter": "region = ${reg}"},
        ],
        [
            {"list_name": "region", "name": "n"},
            {"list_name": "region", "name": "s"},
            {"list_name": "city", "name": "a", "region": "n"},
            {"list_name": "city", "name": "b", "region": "s"},
        ],
    )
    assert clean({"reg": "n", "city": "a"}, definition) == {"reg": "n", "city": "a"}
    assert "city" in errors_of({"reg": "n", "city": "b"}, definition)


def test_required_expression_decimal_and_date():
    definition = small_form(
        [
            {"type": "integer", "name": "n"},
            {"type": "decimal", "name": "d", "required": "${n} > 2"},
            {"type": "date", "name": "when", "constraint": ". <= today()"},
        ]
    )
    assert clean({"n": "1"}, definition) == {"n": 1}
    assert "d" in errors_of({"n": "3"}, definition)
    assert clean({"n": "3", "d": "2,5", "when": "2026-01-31"}, definition) == {
        "n": 3,
        "d": 2.5,
        "when": "2026-01-31",
    }
    assert "when" in errors_of({"when": "2026-02-30"}, definition)
    assert "when" in errors_of({"when": "2027-01-01"}, definition)


def test_group_relevance_applies_to_its_questions():
    definition = small_form(
        [
            {"type": "integer", "name": "age"},
            {"type": "begin_group", "name": "adult", "relevant": "${age} >= 18"},
            {"type": "text", "name": "job", "required": "yes"},
            {"type": "end_group", "name": ""},
        ]
    )
    assert clean({"age": "10", "job": "x"}, definition) == {"age": 10}
    assert "job" in errors_of({"age": "30"}, definition)


def test_repeats_are_validated_per_instance():
    definition = small_form(
        [
            {"type": "integer", "name": "n", "required": "yes"},
            {"type": "begin_repeat", "name": "member", "repeat_count": "${n}"},
            {"type": "integer", "name": "m_age", "required": "yes"},
            {"type": "text", "name": "m_job", "relevant": "${m_age} >= 18"},
            {"type": "end_repeat", "name": ""},
        ]
    )
    stored = clean(
        {"n": "2", "member": [{"m_age": "40", "m_job": "x"}, {"m_age": "5", "m_job": "y"}]},
        definition,
    )
    assert stored["member"] == [{"m_age": 40, "m_job": "x"}, {"m_age": 5}]
    errors = errors_of({"n": "2", "member": [{"m_age": "40"}, {}]}, definition)
    assert list(errors) == ["member[2].m_age"]
    assert "member" in errors_of({"n": "3", "member": [{"m_age": "1"}]}, definition)
    assert "member[1].zzz" in errors_of(
        {"n": "1", "member": [{"m_age": "1", "zzz": 1}]}, definition
    )
