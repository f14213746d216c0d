"""The expression language: one table of cases, run through Python and through the browser."""

import datetime
import json
import math
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from surveys import expressions  # noqa: E402
from surveys.expressions import (  # noqa: E402
    ExpressionError,
    compile_evaluator,
    compile_expression,
    evaluate,
    references,
    to_boolean,
)

REPO = Path(__file__).resolve().parents[2]
TABLE = json.loads(Path(__file__).with_name("expression_cases.json").read_text(encoding="utf-8"))
TODAY = datetime.date.fromisoformat(TABLE["today"])
CASES = TABLE["cases"]
COMPILE_ERRORS = TABLE["compile_errors"]
SCRIPT = REPO / "surveys" / "static" / "surveys" / "expressions.js"


def case_id(case: dict) -> str:
    return f"{case['expr']} | {json.dumps(case['answers'], ensure_ascii=False)}"


def tagged(value):
    """A value as (kind, payload) so that True, 1 and '1' never compare equal."""
    if isinstance(value, bool):
        return ("bool", value)
    if isinstance(value, (int, float)):
        number = float(value)
        if math.isnan(number):
            return ("number", "NaN")
        if math.isinf(number):
            return ("number", "Infinity" if number > 0 else "-Infinity")
        return ("number", number)
    if isinstance(value, str):
        return ("string", value)
    if isinstance(value, list):
        return ("list", value)
    if isinstance(value, datetime.date):
        return ("date", value.isoformat())
    raise TypeError(f"unexpected value {value!r}")


def expected(case: dict):
    value = case["expected"]
    if isinstance(value, dict):
        ((kind, payload),) = value.items()
        return (kind, payload)
    return tagged(value)


def run_python(case: dict):
    ast = compile_expression(case["expr"])
    return evaluate(
        ast, case["answers"], current=case["current"], today=TODAY, choice=case.get("choice")
    )


@pytest.mark.parametrize("case", CASES, ids=case_id)
def test_python_evaluates_case(case):
    assert tagged(run_python(case)) == expected(case)


@pytest.mark.parametrize("case", CASES, ids=case_id)
def test_compiled_evaluator_gives_the_case_result(case):
    run = compile_evaluator(compile_expression(case["expr"]))
    result = run(case["answers"], case["current"], TODAY, case.get("choice"))
    assert tagged(result) == expected(case)


@pytest.mark.parametrize("case", COMPILE_ERRORS, ids=lambda c: c["expr"])
def test_compile_error_names_the_problem(case):
    with pytest.raises(ExpressionError) as caught:
        compile_expression(case["expr"])
    assert case["error"] in str(caught.value)
    assert case["expr"] in str(caught.value)


@pytest.mark.parametrize("text", ["", "   ", "\n\t"])
def test_blank_expression_compiles_to_none(text):
    assert compile_expression(text) is None
    assert evaluate(None, {}) is None


def test_ast_is_plain_json_and_survives_a_round_trip():
    for case in CASES:
        ast = compile_expression(case["expr"])
        again = json.loads(json.dumps(ast))
        assert again == ast
        expect = tagged(run_python(case))
        got = evaluate(
            again, case["answers"], current=case["current"], today=TODAY, choice=case.get("choice")
        )
        assert tagged(got) == expect


def test_ast_node_shapes():
    assert compile_expression("${E1} = 1 and . != 'x'") == [
        "op",
        "and",
        ["op", "=", ["ref", "E1"], ["num", 1.0]],
        ["op", "!=", ["cur"], ["str", "x"]],
    ]
    assert compile_expression("-selected(${m}, 'M1')") == [
        "neg",
        ["fn", "selected", [["ref", "m"], ["str", "M1"]]],
    ]
    assert compile_expression("state=${state}") == ["op", "=", ["col", "state"], ["ref", "state"]]


def test_references_and_columns():
    ast = compile_expression("if(${a} > 1, concat(${b}, -${c}), region = ${a})")
    assert references(ast) == {"a", "b", "c"}
    assert expressions.columns(ast) == {"region"}
    assert references(None) == set()


def test_error_records_position():
    with pytest.raises(ExpressionError) as caught:
        compile_expression("${a} = (1))")
    assert caught.value.position == 11
    assert caught.value.expression == "${a} = (1))"


def test_every_function_has_a_case():
    used = set()

    def walk(node):
        if node[0] == "fn":
            used.add(node[1])
            for arg in node[2]:
                walk(arg)
        elif node[0] == "op":
            walk(node[2])
            walk(node[3])
        elif node[0] == "neg":
            walk(node[1])

    for case in CASES:
        walk(compile_expression(case["expr"]))
    assert set(expressions.FUNCTIONS) - used == set()


@pytest.mark.parametrize(
    ("value", "truth"),
    [(0.0, False), (math.nan, False), (-2.0, True), ("", False), ("false", True), ([], False)]
    + [(["a"], True), (True, True), (False, False), (None, False), (TODAY, True)],
)
def test_to_boolean(value, truth):
    assert to_boolean(value) is truth


@pytest.mark.parametrize(
    "answer",
    [{"nested": 1}, [["a"], {"b": 2}], object(), 10**400, float("nan"), b"bytes", "  ", -0.0],
    ids=lambda value: type(value).__name__,
)
def test_evaluation_never_raises_on_odd_answers(answer):
    texts = [case["expr"] for case in CASES] + ["${x} div 0", "round(${x}, ${x})", "date(${x})"]
    for text in texts:
        ast = compile_expression(text)
        answers = {name: answer for name in references(ast)}
        evaluate(ast, answers, current=answer, today=TODAY, choice={"state": answer})
        compile_evaluator(ast)(answers, answer, TODAY, {"state": answer})


def test_today_defaults_to_the_real_date():
    assert evaluate(compile_expression("today()"), {}) == datetime.date.today()


# --------------------------------------------------------------------------- browser

BROWSER_RUNNER = """
(cases) => cases.map((c) => {
  const X = window.TanysExpr;
  const v = X.evaluate(c.ast, c.answers, {current: c.current, today: c.today, choice: c.choice});
  let tagged;
  if (typeof v === 'boolean') tagged = ['bool', v];
  else if (typeof v === 'number') tagged = ['number', isFinite(v) ? v : String(v)];
  else if (typeof v === 'string') tagged = ['string', v];
  else if (Array.isArray(v)) tagged = ['list', v];
  else if (X.isDate(v)) tagged = ['date', String(v)];
  else tagged = ['unknown', String(v)];
  return {result: tagged, references: X.references(c.ast).sort(), truth: X.toBoolean(v)};
})
"""


@pytest.fixture(scope="module")
def browser_results(browser):
    """Every case evaluated by expressions.js in the shared Chromium (tests/conftest.py)."""
    payload = [
        {
            "ast": compile_expression(case["expr"]),
            "answers": case["answers"],
            "current": case["current"],
            "choice": case.get("choice"),
            "today": TABLE["today"],
        }
        for case in CASES
    ]
    context = browser.new_context()
    try:
        page = context.new_page()
        errors: list[str] = []
        page.on("pageerror", lambda exc: errors.append(str(exc)))
        page.set_content("<!doctype html><html><head></head><body></body></html>")
        page.add_script_tag(content=SCRIPT.read_text(encoding="utf-8"))
        assert errors == []
        results = page.evaluate(BROWSER_RUNNER, payload)
    finally:
        context.close()
    assert len(results) == len(CASES)
    return results


@pytest.mark.browser
@pytest.mark.parametrize(("index", "case"), list(enumerate(CASES)), ids=[case_id(c) for c in CASES])
def test_browser_matches_python(index, case, browser_results):
    js = browser_results[index]
    python_value = run_python(case)
    assert tuple(js["result"]) == tagged(python_value) == expected(case)
    assert js["references"] == sorted(references(compile_expression(case["expr"])))
    assert js["truth"] is to_boolean(python_value)


@pytest.mark.parametrize("op", ["=", "!=", "<", "<=", ">", ">="])
@pytest.mark.parametrize(
    "answer",
    [1, 2, 0, -1, 10**400, -(10**400), 1.0, 1.5, float("nan"), True, False, "1", " 1 ", "",
     "abc", None, [1], ["1", "2"], "2020-01-02"],
)  # fmt: skip
def test_compiled_question_against_number_is_evaluate(op, answer):
    """``${Q} op number``, compiled with its fast path for numbers, gives what the tree
    walk gives, for every kind of answer."""
    from surveys.expressions import compile_evaluator, evaluate

    ast = ["op", op, ["ref", "Q"], ["num", 1.0]]
    answers = {"Q": answer}
    assert compile_evaluator(ast)(answers, None, None, None) == evaluate(ast, answers)
