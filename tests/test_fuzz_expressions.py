"""Property tests of the expression language: the server and the browser agree, bad input is
refused with ExpressionError and nothing else.

Expressions are drawn from the grammar (operators, functions with their arities, references,
literals), with answers of every kind a form produces. Python's evaluator and
``expressions.js`` in Chromium (one page, a batch of cases per call) must give the same value.
Transcendental functions (exp, log, sin, ...) are left out of the comparison: V8 and the C
library may differ in the last bit, which is not a disagreement of the two evaluators.
"""

from __future__ import annotations

import datetime
import json
import math
from pathlib import Path

import pytest
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st

from surveys.expressions import ExpressionError, compile_expression, evaluate

SCRIPT = Path(__file__).resolve().parents[1] / "surveys" / "static" / "surveys" / "expressions.js"
TODAY = datetime.date(2024, 3, 15)
NAMES = ["a", "b", "c", "d"]
BATCH = 20

# Functions compared across evaluators, with the arities drawn for them.
COMPARED = {
    "not": (1, 1), "true": (0, 0), "false": (0, 0), "boolean": (1, 1), "if": (3, 3),
    "coalesce": (2, 2), "selected": (2, 2), "selected-at": (2, 2), "count-selected": (1, 1),
    "string": (1, 1), "string-length": (1, 1), "concat": (1, 4), "contains": (2, 2),
    "starts-with": (2, 2), "ends-with": (2, 2), "substr": (2, 3), "number": (1, 1),
    "int": (1, 1), "round": (1, 2), "floor": (1, 1), "ceiling": (1, 1), "abs": (1, 1),
    "min": (1, 3), "max": (1, 3), "today": (0, 0), "date": (1, 1), "format-date": (2, 2),
    "sqrt": (1, 1), "pi": (0, 0), "once": (1, 1), "random": (0, 0),
}  # fmt: skip
# random() draws this sequence, in turn, on both sides, so the two evaluators can be compared
# draw by draw (they must draw in the same order: arguments left to right, and() and or()
# and if() and once() short-circuited alike).
DRAWS = [0.0, 0.25, 0.5, 0.999999, 0.125, 0.75]
OPERATORS = ["or", "and", "=", "!=", "<", "<=", ">", ">=", "+", "-", "*", "div", "mod"]

numbers = st.one_of(
    st.integers(0, 10**6).map(str),
    st.sampled_from(["0.5", "1.25", "3.14159", "0", ".5", "2.", "100000000000000000000"]),
)
words = st.text(alphabet="ab cé1-0.%Ymd:", max_size=8)
string_literals = words.map(lambda s: "'" + s.replace("'", "") + "'")
leaves = st.one_of(
    numbers,
    string_literals,
    st.sampled_from([f"${{{name}}}" for name in NAMES]),
    st.just("."),
    st.sampled_from(["'2024-02-29'", "'2023-02-29'", "'1969-12-31'", "'10'", "' 7 '", "''"]),
)


def _expressions(children: st.SearchStrategy[str]) -> st.SearchStrategy[str]:
    binary = st.tuples(children, st.sampled_from(OPERATORS), children).map(
        lambda t: f"({t[0]} {t[1]} {t[2]})"
    )
    negated = children.map(lambda e: f"-{e}")

    @st.composite
    def call(draw: st.DrawFn) -> str:
        name = draw(st.sampled_from(sorted(COMPARED)))
        low, high = COMPARED[name]
        args = draw(st.lists(children, min_size=low, max_size=high))
        return f"{name}({', '.join(args)})"

    return st.one_of(binary, negated, call())


expressions = st.recursive(leaves, _expressions, max_leaves=12)
answer_values = st.one_of(
    st.none(),
    st.integers(-1000, 10**6),
    st.floats(allow_nan=False, allow_infinity=False, width=32),
    words,
    st.sampled_from(["1", "2 3", "2024-03-01", "1985", "-0", "007", " 12 "]),
    st.lists(st.sampled_from(["1", "2", "3", "x"]), max_size=3, unique=True),
)
cases = st.fixed_dictionaries(
    {
        "expr": expressions,
        "answers": st.fixed_dictionaries({name: answer_values for name in NAMES}),
        "current": answer_values,
    }
)

RUNNER = """
(cases) => cases.map((c) => {
  const X = window.TanysExpr;
  try {
    let drawn = 0;
    const random = () => c.draws[drawn++ % c.draws.length];
    const v = X.evaluate(c.ast, c.answers, {current: c.current, today: c.today, random: random});
    if (typeof v === 'boolean') return ['bool', v];
    if (typeof v === 'number') return ['number', isFinite(v) ? v : String(v)];
    if (typeof v === 'string') return ['string', v];
    if (Array.isArray(v)) return ['list', v];
    if (X.isDate(v)) return ['date', String(v)];
    return ['unknown', String(v)];
  } catch (e) {
    return ['error', String(e)];
  }
})
"""


def tagged(value: object) -> list:
    if isinstance(value, bool):
        return ["bool", value]
    if isinstance(value, float):
        if math.isnan(value):
            return ["number", "NaN"]
        if math.isinf(value):
            return ["number", "Infinity" if value > 0 else "-Infinity"]
        return ["number", value]
    if isinstance(value, str):
        return ["string", value]
    if isinstance(value, list):
        return ["list", value]
    if isinstance(value, datetime.date):
        return ["date", value.isoformat()]
    return ["unknown", repr(value)]


@pytest.fixture(scope="module")
def expression_page(browser):
    context = browser.new_context()
    page = context.new_page()
    errors: list[str] = []
    page.on("pageerror", lambda exc: errors.append(str(exc)))
    page.set_content("<!doctype html><html><head></head><body></body></html>")
    page.add_script_tag(content=SCRIPT.read_text(encoding="utf-8"))
    assert errors == []
    yield page
    context.close()


@pytest.mark.browser
@settings(
    max_examples=100,
    deadline=None,
    phases=[Phase.explicit, Phase.reuse, Phase.generate],  # a failure names its case
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
    derandomize=True,
    database=None,
)
@given(st.lists(cases, min_size=BATCH, max_size=BATCH))
def test_server_and_browser_agree(expression_page, batch):
    payload, python = [], []
    for case in batch:
        ast = compile_expression(case["expr"])
        # The same answers as the browser sees them: JSON, numbers as floats.
        answers = json.loads(json.dumps(case["answers"]))
        drawn = iter(DRAWS * 100)
        python.append(
            tagged(
                evaluate(
                    ast,
                    answers,
                    current=case["current"],
                    today=TODAY,
                    random=lambda drawn=drawn: next(drawn),
                )
            )
        )
        payload.append(
            {
                "ast": ast,
                "answers": answers,
                "current": case["current"],
                "today": TODAY.isoformat(),
                "draws": DRAWS,
            }
        )
    browser = expression_page.evaluate(RUNNER, json.loads(json.dumps(payload)))
    for client in browser:  # a whole number comes back from the page as an int
        if client[0] == "number" and isinstance(client[1], int):
            client[1] = float(client[1])
    for case, server, client in zip(batch, python, browser, strict=True):
        assert client == server, (
            f"{case['expr']} with {case['answers']}, current {case['current']!r}"
        )


# ----------------------------------------------------------------- bad expressions

TOKENS = [
    "(", ")", ",", "${a}", "${", "}", "$", ".", "..", "'", '"', "'x'", "1", "1.5", "-", "+",
    "*", "div", "mod", "and", "or", "=", "!=", "<", "<=", ">", ">=", "not", "if", "selected",
    "concat", "position", "jr:choice-name", "unknown-fn", "/", "@", "[", "]", "|", "#", " ",
]  # fmt: skip


@settings(max_examples=400, deadline=None, derandomize=True, database=None)
@given(st.one_of(st.text(max_size=40), st.lists(st.sampled_from(TOKENS), max_size=25).map("".join)))
def test_bad_expressions_are_an_expression_error_or_compile(text):
    try:
        ast = compile_expression(text)
    except ExpressionError as error:
        assert error.problem and text in str(error)
        return
    # What compiles evaluates, whatever the answers.
    evaluate(ast, {"a": "x"}, current=None, today=TODAY)


@settings(max_examples=25, deadline=None, derandomize=True, database=None)
@given(st.integers(100, 20_000), st.sampled_from(["(", "-", "not(", "concat("]))
def test_deep_nesting_compiles_or_is_an_expression_error(depth, opener):
    closer = "" if opener == "-" else ")"
    text = opener * depth + "1" + closer * depth
    try:
        ast = compile_expression(text)
    except ExpressionError as error:
        assert "nested" in error.problem
    else:
        evaluate(ast, {}, today=TODAY)


@settings(max_examples=150, deadline=None, derandomize=True, database=None)
@given(
    expressions,
    st.dictionaries(
        st.sampled_from(NAMES),
        st.recursive(
            st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=5),
            lambda inner: (
                st.lists(inner, max_size=3)
                | st.dictionaries(st.text(max_size=2), inner, max_size=2)
            ),
            max_leaves=5,
        ),
    ),
)
def test_odd_answer_data_never_raises(expr, answers):
    evaluate(compile_expression(expr), answers, current=answers.get("a"), today=TODAY)


# ----------------------------------------------------------------- random() and once()

ASSIGNMENT = """
(c) => {
  const X = window.TanysExpr;
  const out = [];
  for (let i = 0; i < c.n; i++) out.push(X.evaluate(c.ast, {}, {current: c.current}));
  return out;
}
"""


@pytest.mark.browser
@pytest.mark.parametrize(
    "text", ["random()", "once(random())", "once(int(random() * 2))", "int(random() * 3)"]
)
def test_random_draws_lie_in_their_range_on_both_sides(expression_page, text):
    ast = compile_expression(text)
    high = 3 if "3" in text else 2 if "2" in text else 1
    python = [evaluate(ast, {}) for _ in range(400)]
    browser = expression_page.evaluate(ASSIGNMENT, {"ast": ast, "n": 400, "current": None})
    for draws in (python, browser):
        assert all(0 <= d < high for d in draws)
        assert len(set(draws)) > 1  # drawn afresh each time while the question is blank
    if "int" in text:  # every arm is drawn
        assert set(python) == set(browser) == {float(k) for k in range(high)}


@pytest.mark.browser
@settings(
    max_examples=30,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture],
    derandomize=True,
    database=None,
)
@given(
    st.one_of(
        st.integers(0, 5),
        st.floats(0, 1, exclude_max=True),
        st.sampled_from(["0", "1", "treatment"]),
    )
)
def test_once_keeps_the_recorded_value_on_both_sides(expression_page, recorded):
    ast = compile_expression("once(int(random() * 2))")
    python = {repr(evaluate(ast, {}, current=recorded)) for _ in range(20)}
    browser = expression_page.evaluate(ASSIGNMENT, {"ast": ast, "n": 20, "current": recorded})
    assert python == {repr(recorded if isinstance(recorded, str) else float(recorded))}
    assert [str(b) for b in browser] == [str(recorded)] * 20
