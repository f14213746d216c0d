"""The generated validation gives what the walk of compiled steps gives, on random answers:
the same stored answers, the same relevant questions, the same errors in the same order
and the same messages, in every interface language."""

from __future__ import annotations

import datetime as dt
import random

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from surveys import formtree
from surveys.expressions import ExpressionError, compile_expression
from surveys.validation import AnswerErrors, Validator
from surveys.validation_source import GeneratedValidator, validation_source
from tests.surveys.test_validation import DEFINITION, small_form
from tests.surveys.webform_fixtures import complete_answers
from tests.test_fuzz_expressions import _expressions
from tests.test_fuzz_expressions import expressions as fuzz_expressions

TODAY = dt.date(2026, 11, 26)
ODD_VALUES = st.one_of(
    st.none(),
    st.just(""),
    st.just("  "),
    st.booleans(),
    st.integers(min_value=-5, max_value=10),
    st.integers(min_value=2**53 - 2, max_value=2**53 + 2),
    st.just(10**400),
    st.floats(allow_nan=True, allow_infinity=True),
    st.text(max_size=6),
    st.lists(st.one_of(st.text(max_size=3), st.integers(-2, 9)), max_size=3),
    st.dictionaries(st.text(max_size=2), st.integers(), max_size=1),
)


def outcome(validator: Validator, answers, language: str, instance_id: str | None):
    try:
        result = validator.validate(
            answers, language=language, today=TODAY, instance_id=instance_id
        )
    except AnswerErrors as exc:
        return ("errors", list(exc.errors.items()))
    return ("stored", list(result.answers.items()), sorted(result.relevant))


def answer_values(definition) -> dict[str, st.SearchStrategy]:
    """Per question of the top level: its valid codes, typed or as text, or an odd value."""
    strategies = {}
    for node in formtree.level(formtree.children(definition)):
        choices = [c["name"] for c in definition["choices"].get(node.get("list_name"), [])]
        valid: list = [*choices, *[int(c) for c in choices if c.lstrip("-").isdigit()]]
        if node.get("type") == "select_multiple":
            valid = [st.lists(st.sampled_from(choices), max_size=3, unique=True)]
            strategies[node["name"]] = st.one_of(*valid, ODD_VALUES)
            continue
        if node.get("type") in ("integer", "decimal"):
            # Each side of every number its constraint compares with, as number and text.
            edges = [int(n) + step for n in numbers(node.get("constraint")) for step in (-1, 0, 1)]
            valid = [*edges, *map(str, edges), 1950, 2008, 2009, "2,5", "1985"]
        strategies[node["name"]] = st.one_of(
            st.sampled_from(valid or ["x"]), st.sampled_from(valid or ["x"]), ODD_VALUES
        )
    return strategies


def numbers(ast) -> list[float]:
    if not isinstance(ast, list):
        return []
    if ast and ast[0] == "num":
        return [ast[1]]
    return [n for part in ast for n in numbers(part)]


@st.composite
def interviews(draw, definition, base):
    values = answer_values(definition)
    answers = dict(base)
    for name in sorted(values):  # each question kept, dropped or given another value
        change = draw(st.integers(0, 5))
        if change == 0:
            answers.pop(name, None)
        elif change == 1:
            answers[name] = draw(values[name])
    if draw(st.integers(0, 9)) == 0:
        answers[draw(st.sampled_from(["ZZ", "R1_OTHER ", "1"]))] = 1
    return answers


INSTRUMENT_WALK = Validator(DEFINITION)
INSTRUMENT_GENERATED = GeneratedValidator(DEFINITION)


@settings(
    max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow], database=None
)
@given(
    answers=interviews(DEFINITION, complete_answers()),
    language=st.sampled_from(["kk", "ru", "en", "default", "sw"]),
    instance_id=st.sampled_from([None, "9f0c1b8e-6f7a-4c1e-9d8b-2a3c4d5e6f70"]),
)
def test_the_instrument_validates_as_the_walk_does(answers, language, instance_id):
    expected = outcome(INSTRUMENT_WALK, answers, language, instance_id)
    assert outcome(INSTRUMENT_GENERATED, answers, language, instance_id) == expected


SMALL = small_form(
    [
        {"type": "integer", "name": "age"},
        {"type": "select_one region", "name": "reg", "required": "${age} > 17"},
        {"type": "select_one city", "name": "city", "choice_filter": "region = ${reg}"},
        {
            "type": "select_multiple pets",
            "name": "pets",
            "relevant": "not(${age} < 18) and ${age} != 40",
        },
        {"type": "text", "name": "pet_other", "relevant": "selected(${pets}, 'other')"},
        {"type": "decimal", "name": "d", "constraint": ". >= 0.5 or . = -1", "required": "yes"},
        {"type": "date", "name": "when", "constraint": ". <= today()"},
        {"type": "begin_group", "name": "adult", "relevant": "${age} >= 18 and ${reg} != 'n'"},
        {"type": "text", "name": "job", "required": "yes"},
        {"type": "calculate", "name": "twice", "calculation": "${age} * 2"},
        {"type": "integer", "name": "kids", "constraint": ". < ${twice}"},
        {"type": "end_group", "name": ""},
        {"type": "begin_repeat", "name": "member", "repeat_count": "${kids}"},
        {"type": "integer", "name": "m_age", "required": "yes"},
        {"type": "text", "name": "m_job", "relevant": "${m_age} >= 18"},
        {"type": "end_repeat", "name": ""},
        {"type": "note", "name": "bye"},
    ],
    [
        {"list_name": "region", "name": "n"},
        {"list_name": "region", "name": "s"},
        {"list_name": "city", "name": "a", "region": "n"},
        {"list_name": "city", "name": "b", "region": "s"},
        {"list_name": "pets", "name": "cat"},
        {"list_name": "pets", "name": "other"},
    ],
)
SMALL_WALK = Validator(SMALL)
SMALL_GENERATED = GeneratedValidator(SMALL)
MEMBERS = st.lists(
    st.dictionaries(st.sampled_from(["m_age", "m_job", "zz"]), ODD_VALUES, max_size=3),
    max_size=3,
)


@settings(
    max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow], database=None
)
@given(
    answers=st.fixed_dictionaries(
        {},
        optional={
            "age": st.one_of(st.sampled_from([5, "20", 40]), ODD_VALUES),
            "reg": st.one_of(st.sampled_from(["n", "s"]), ODD_VALUES),
            "city": st.one_of(st.sampled_from(["a", "b"]), ODD_VALUES),
            "pets": st.one_of(st.sampled_from([["cat"], "cat other", ["other"]]), ODD_VALUES),
            "pet_other": ODD_VALUES,
            "d": st.one_of(st.sampled_from(["0.7", -1, 0.2]), ODD_VALUES),
            "when": st.one_of(st.sampled_from(["2026-01-31", "2027-01-01"]), ODD_VALUES),
            "job": ODD_VALUES,
            "twice": ODD_VALUES,
            "kids": st.one_of(st.sampled_from([0, 1, 2]), ODD_VALUES),
            "member": st.one_of(MEMBERS, ODD_VALUES),
            "bye": ODD_VALUES,
        },
    ),
    language=st.sampled_from(["kk", "ru", "en"]),
)
def test_conditions_filters_calculations_and_repeats_validate_as_the_walk_does(answers, language):
    expected = outcome(SMALL_WALK, answers, language, None)
    assert outcome(SMALL_GENERATED, answers, language, None) == expected


def test_common_conditions_are_written_inline():
    source, _ = validation_source(SMALL)
    assert "_selected(wget('pets'), 'other')" in source
    assert "(not " in source
    # A condition calling today() and a calculation are written out too: no compiled
    # expression is called.
    assert "(W, " not in source
    assert "(today or _date_today())" in source
    assert "W['twice'] = stored['twice'] = " in source


@pytest.mark.parametrize("language", ["kk", "ru", "en"])
def test_a_wrong_answer_gets_the_same_message_from_both(language):
    answers = complete_answers(HH_SIZE="three", BIRTH_YEAR="2015", SEX=None, ZZ=1)
    expected = outcome(INSTRUMENT_WALK, answers, language, None)
    assert expected[0] == "errors" and len(expected[1]) == 4
    assert outcome(INSTRUMENT_GENERATED, answers, language, None) == expected


def _node(kind: str, name: str, **columns) -> dict:
    return {
        "kind": "question", "type": kind, "name": name, "label": {}, "hint": {},
        "constraint_message": {}, "required_message": {}, "relevant": None,
        "constraint": None, "calculation": None, "choice_filter": None,
        "repeat_count": None, "required": False, "read_only": False, "appearance": "",
        "default": None, **columns,
    }  # fmt: skip


def expression_forms(calculation, relevant, constraint, required, assign: bool) -> list:
    """Questions a-d with a calculation of any expression (a random assignment or not),
    and the same with a question whose relevance, constraint and requirement are any
    expressions (apart, so that the calculation's value is seen whatever they refuse)."""
    design = {"design": "list", "role": "assign"} if assign else None
    common = {k: v for k, v in SMALL.items() if k not in ("children", "choices")}
    questions = [_node("integer", "a"), _node("text", "b"), _node("decimal", "c")]
    return [
        {
            **common,
            "choices": {},
            "children": [
                *questions,
                _node("calculate", "calc", calculation=calculation, design=design),
                _node("date", "d"),
            ],
        },
        {
            **common,
            "choices": {},
            "children": [
                *questions,
                _node("calculate", "calc", calculation=calculation),
                _node("date", "d", relevant=relevant, constraint=constraint, required=required),
                _node("note", "n", relevant=relevant),
            ],
        },
    ]


# Expressions of the grammar, compound at the top, with the shapes that decide what is
# evaluated (if, and, or, once, random) drawn more often than their share of the grammar.
_PARTS = fuzz_expressions
EXPRESSIONS = st.one_of(
    _expressions(_PARTS),
    st.tuples(_PARTS, _PARTS, _PARTS).map("if({0[0]}, {0[1]}, {0[2]})".format),
    st.tuples(_PARTS, _PARTS, _PARTS).map("({0[0]} and {0[1]}) or {0[2]}".format),
    _PARTS.map("once({0})".format),
    st.tuples(_PARTS, _PARTS).map("if(random() < {0[0]}, {0[1]}, random())".format),
)


@settings(
    max_examples=500, deadline=None, suppress_health_check=[HealthCheck.too_slow], database=None
)
@given(
    texts=st.lists(EXPRESSIONS, min_size=4, max_size=4),
    assign=st.booleans(),
    answers=st.fixed_dictionaries(
        {},
        optional={
            "a": st.one_of(st.sampled_from([0, 1, 2, "1", 17, 18]), ODD_VALUES),
            "b": st.one_of(st.sampled_from(["a", "b c", "2024-02-29", "0.5"]), ODD_VALUES),
            "c": st.one_of(st.sampled_from([0.5, "2,5", -1]), ODD_VALUES),
            "calc": st.one_of(st.sampled_from(["1", 0, "", "0.25"]), ODD_VALUES),
            "d": st.one_of(st.sampled_from(["2024-03-15", "1969-12-31"]), ODD_VALUES),
        },
    ),
    instance_id=st.sampled_from([None, "9f0c1b8e-6f7a-4c1e-9d8b-2a3c4d5e6f70"]),
)
def test_any_expression_is_written_out_as_the_walk_evaluates_it(
    texts, assign, answers, instance_id
):
    try:
        calculation, relevant, constraint, required = (compile_expression(text) for text in texts)
    except ExpressionError:
        return
    for definition in expression_forms(calculation, relevant, constraint, required, assign):
        # random() draws from the interview's id, or from Python's generator: seeded alike.
        random.seed(7)
        expected = outcome_or_raised(Validator(definition), answers, instance_id)
        random.seed(7)
        assert outcome_or_raised(GeneratedValidator(definition), answers, instance_id) == expected


def outcome_or_raised(validator: Validator, answers, instance_id):
    try:
        return outcome(validator, answers, "en", instance_id)
    except (KeyError, ValueError, TypeError) as exc:  # the same failure on both sides
        return ("raised", type(exc), str(exc))
