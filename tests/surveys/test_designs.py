"""Indirect designs declared in the XLSForm's tanys_design column: what the importer keeps and
what it refuses, naming sheet, row and column."""

from __future__ import annotations

import pytest
from django.utils import translation

from surveys.validation import AnswerErrors, validate_answers
from surveys.xlsform import XLSFormError, compile_xlsform
from tests.factories import build_xlsform

pytestmark = pytest.mark.filterwarnings("ignore::UserWarning")

HEADER = ["type", "name", "label", "relevant", "calculation", "tanys_design"]
CHOICES = [
    ["list_name", "name", "label"],
    ["yesno", "1", "Yes"],
    ["yesno", "2", "No"],
    ["same", "1", "The same"],
    ["same", "2", "Different"],
    ["ab", "a", "A"],
    ["ab", "b", "B"],
]


def rows(**replace: list[object]) -> list[list[object]]:
    """A form with one of each design; ``replace`` swaps a row by its name."""
    form = {
        "E1": [
            "select_one yesno",
            "E1",
            "Have you paid a bribe in the last 12 months?",
            "",
            "",
            "",
        ],
        "LE_ARM": [
            "calculate",
            "LE_ARM",
            "",
            "",
            "once(int(random() * 2))",
            "list:assign balanced",
        ],
        "g_c": ["begin_group", "g_c", "Control", "${LE_ARM} = 0", "", ""],
        "LE_C": ["integer", "LE_C", "How many of these 4?", "", "", "list:control items=4"],
        "g_c_end": ["end_group", "", "", "", "", ""],
        "g_t": ["begin_group", "g_t", "Treatment", "${LE_ARM} = 1", "", ""],
        "LE_T": ["integer", "LE_T", "How many of these 5?", "", "", "list:treatment"],
        "g_t_end": ["end_group", "", "", "", "", ""],
        "RR": [
            "select_one yesno",
            "RR",
            "Answer as the die tells",
            "",
            "",
            "rr:answer p=0.75 q=0.125",
        ],
        "CW": ["select_one same", "CW", "Same or different?", "", "", "crosswise:answer r=0.25"],
    }
    form.update(replace)
    return [HEADER, *form.values()]


def compile_rows(survey: list[list[object]]):
    return compile_xlsform(build_xlsform(survey, CHOICES), filename="designs.xlsx")


def problems(survey: list[list[object]]) -> list[str]:
    with translation.override("en"), pytest.raises(XLSFormError) as caught:
        compile_rows(survey)
    return [str(p) for p in caught.value.problems]


def test_the_three_designs_are_kept_in_the_definition():
    definition = compile_rows(rows()).definition
    assert definition["designs"] == [
        {"design": "rr", "answer": "RR", "p": 0.75, "q": 0.125},
        {"design": "crosswise", "answer": "CW", "r": 0.25},
        {
            "design": "list",
            "assign": "LE_ARM",
            "control": "LE_C",
            "treatment": "LE_T",
            "items": 4,
            "balanced": True,
        },
    ]
    arm = next(n for n in definition["children"] if n["name"] == "LE_ARM")
    assert arm["design"] == {"design": "list", "role": "assign", "balanced": True}


def test_a_form_without_designs_has_no_designs_key():
    survey = rows()
    definition = compile_rows([row[:5] for row in survey]).definition
    assert "designs" not in definition


@pytest.mark.parametrize(
    ("replace", "row", "words"),
    [
        (
            {"RR": ["select_one yesno", "RR", "x", "", "", "rr:answer p=0.75"]},
            10,
            "needs the parameter q=",
        ),
        (
            {"RR": ["select_one yesno", "RR", "x", "", "", "rr:answer p=0.9 q=0.2"]},
            10,
            "cannot exceed 1",
        ),
        (
            {"RR": ["select_one yesno", "RR", "x", "", "", "rr:answer p=0 q=0.2"]},
            10,
            "'p=0' is not accepted",
        ),
        (
            {"RR": ["integer", "RR", "x", "", "", "rr:answer p=0.7 q=0.2"]},
            10,
            "type select_one, not integer",
        ),
        (
            {"CW": ["select_one same", "CW", "x", "", "", "crosswise:answer r=0.5"]},
            11,
            "'r=0.5' is not accepted",
        ),
        (
            {"CW": ["select_one same", "CW", "x", "", "", "crosswise:answer"]},
            11,
            "needs the parameter r=",
        ),
        (
            {"CW": ["select_one same", "CW", "x", "", "", "crosswise:answer r=0.2 p=1"]},
            11,
            "no parameter 'p'",
        ),
        (
            {"CW": ["select_one same", "CW", "x", "", "", "crossways:answer r=0.2"]},
            11,
            "unknown design 'crossways'",
        ),
        (
            {"CW": ["select_one same", "CW", "x", "", "", "crosswise:count r=0.2"]},
            11,
            "no role 'count'",
        ),
        (
            {"E1": ["select_one ab", "E1", "x", "", "", "rr:answer p=0.7 q=0.1"]},
            2,
            "needs a choice list with the codes 1 yes and 2 no",
        ),
        (
            {"LE_ARM": ["calculate", "LE_ARM", "", "", "int(random() * 2)", "list:assign"]},
            3,
            "once() and random()",
        ),
        (
            {"LE_C": ["integer", "LE_C", "x", "", "", "list:control"]},
            5,
            "needs the parameter items=",
        ),
        (
            {"LE_C": ["integer", "LE_C", "x", "", "", "list:control items=0"]},
            5,
            "'items=0' is not accepted",
        ),
        (
            {"g_t": ["begin_group", "g_t", "Treatment", "", "", ""]},
            8,
            "must refer to one list:assign",
        ),
        ({"LE_T": ["integer", "LE_T", "x", "", "", ""]}, 3, "has no treatment count"),
        (
            {"LE_T": ["integer", "LE_T", "x", "", "", "list:control items=4"]},
            8,
            "already has a control count, in row 5",
        ),
    ],
)
def test_a_malformed_declaration_is_refused_with_its_place(replace, row, words):
    found = problems(rows(**replace))
    assert any(
        p.startswith(f"sheet 'survey', row {row}, column 'tanys_design': ") for p in found
    ), found
    assert any(words in p for p in found), found


def test_the_refusal_reads_in_the_users_language():
    with translation.override("ru"), pytest.raises(XLSFormError) as caught:
        compile_rows(rows(CW=["select_one same", "CW", "x", "", "", "crossways:answer r=0.2"]))
    (problem,) = caught.value.problems
    assert problem.column == "tanys_design" and "crossways" in problem.message
    assert "неизвестный" in problem.message.lower()


# -- the assignment on the server ---------------------------------------------------------------


def test_the_server_keeps_the_recorded_assignment():
    definition = compile_rows(rows()).definition
    for arm, count in ((0, "LE_C"), (1, "LE_T"), ("1", "LE_T")):  # "1": an OpenRosa instance's text
        clean = validate_answers(definition, {"E1": "2", "LE_ARM": arm, count: "3"}, language="en")
        assert clean.answers["LE_ARM"] == int(arm)
        assert clean.answers[count] == 3


def test_the_server_draws_an_assignment_that_was_not_recorded():
    definition = compile_rows(rows()).definition
    drawn = {
        validate_answers(definition, {"E1": "2"}, language="en").answers["LE_ARM"]
        for _ in range(60)
    }
    assert drawn == {0, 1}


def test_an_assignment_outside_the_arms_is_refused():
    definition = compile_rows(rows()).definition
    with translation.override("en"), pytest.raises(AnswerErrors) as caught:
        validate_answers(definition, {"E1": "2", "LE_ARM": 7}, language="en")
    assert "LE_ARM" in caught.value.errors


def test_a_draw_the_server_makes_is_the_same_on_every_resend():
    definition = compile_rows(rows()).definition
    arms = {
        instance: {
            validate_answers(definition, {"E1": "2"}, language="en", instance_id=instance).answers[
                "LE_ARM"
            ]
            for _ in range(3)
        }
        for instance in (f"5b1c3d0e-1111-4222-8333-{n:012d}" for n in range(40))
    }
    assert all(len(drawn) == 1 for drawn in arms.values())
    assert {a for (a,) in arms.values()} == {0, 1}
