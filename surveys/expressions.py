"""The XLSForm expression language: compiled once, evaluated on the server and in the browser.

XLSForm columns ``relevant``, ``constraint``, ``calculation``, ``choice_filter``,
``required`` and ``default`` hold expressions in a subset of ODK XPath. At form import
each one is compiled by :func:`compile_expression` into a small AST made of nested
JSON lists. The AST is stored with the form version; :func:`evaluate` runs it here and
``surveys/static/surveys/expressions.js`` runs the very same AST in the web form, so a
question is shown, required or rejected by the same rules on both sides.

Why a hand-written tokenizer and precedence-climbing parser: pyxform checks syntax
when it converts a form but gives us no evaluator and no tree, and the tree has to be
plain JSON that a few kilobytes of JavaScript can walk. The grammar is small enough
that a parser of a couple of hundred lines is easier to read and to keep identical in
behaviour than any generated one, and it gives error messages in plain words.

AST node kinds (every node is a list whose first item names the kind):

    ["num", 1.0]                  number literal (always a float)
    ["str", "M1"]                 string literal
    ["ref", "E1"]                 ${E1}: another question's answer
    ["cur"]                       ``.``: the value of the question being checked
    ["col", "state"]              bare name: a column of the choice row (choice_filter)
    ["neg", a]                    unary minus
    ["op", "+", a, b]             binary operator: or and = != < <= > >= + - * div mod
    ["fn", "selected", [a, b]]    function call

Random assignment: ``random()`` draws from [0, 1) (from the caller's ``random`` source when
one is given, so a device can stratify its draws) and ``once(x)`` is the current value of
the question when it has one, else ``x``, as in ODK. A calculation ``once(...)`` is therefore
drawn once, kept with the interview (the draft, the outbox, the submission) and never
redrawn: both evaluators are given the recorded value as ``current``.

Values during evaluation are ``str``, ``float``, ``bool``, ``list[str]`` (a
select_multiple answer) and ``datetime.date``. Conversions follow XPath 1.0 with the
ODK extensions: a missing answer is ``''``; a date is the number of days since
1970-01-01 when used as a number, and a string of the form ``YYYY-MM-DD`` converts to a
number the same way (so stored date answers compare and subtract as dates).
Numbers print as ECMAScript's ``String(number)`` does, so both evaluators produce the
same text. Regular expressions run with ``re.ASCII`` in Python, the closest match to
JavaScript's ``RegExp`` without flags. ``round(x, n)`` rounds halves away from zero.
"""

from __future__ import annotations

import datetime
import math
import random as _random
import re
from collections.abc import Callable, Mapping
from typing import Any

from surveys.expression_syntax import (
    FUNCTIONS,
    ExpressionError,
    columns,
    compile_expression,
    functions,
    keeps_its_value,
    references,
)

__all__ = [
    "FUNCTIONS",
    "ExpressionError",
    "columns",
    "compile_expression",
    "compile_evaluator",
    "evaluate",
    "functions",
    "keeps_its_value",
    "references",
    "to_boolean",
    "to_number",
    "to_string",
]

NAN = math.nan
INF = math.inf

_NUMERIC_STRING = re.compile(r"[ \t\r\n]*(-?(?:[0-9]+(?:\.[0-9]*)?|\.[0-9]+))[ \t\r\n]*\Z")
_DATE_STRING = re.compile(r"[ \t\r\n]*([0-9]{4})-([0-9]{2})-([0-9]{2})[ \t\r\n]*\Z")
_WHITESPACE = re.compile(r"[ \t\r\n]+")
_FORMAT_CODE = re.compile(r"%([A-Za-z0-9])")

_EPOCH = datetime.date(1970, 1, 1).toordinal()
_MIN_DAYS = datetime.date.min.toordinal() - _EPOCH
_MAX_DAYS = datetime.date.max.toordinal() - _EPOCH
_MONTHS = ["Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"]
_WEEKDAYS = ["Sun", "Mon", "Tue", "Wed", "Thu", "Fri", "Sat"]


def _value(raw: Any) -> Any:
    """Bring an answer, the current value or a choice column into an evaluator value."""
    if raw is None:
        return ""
    if isinstance(raw, (str, bool, float)):
        return raw
    if isinstance(raw, int):
        return _int_to_float(raw)
    if isinstance(raw, datetime.datetime):
        return raw.date()
    if isinstance(raw, datetime.date):
        return raw
    if isinstance(raw, (list, tuple)):
        return [to_string(_value(item)) for item in raw]
    try:
        return float(raw)  # Decimal and other numbers
    except (TypeError, ValueError, OverflowError):
        return str(raw)


def _int_to_float(n: int) -> float:
    try:
        return float(n)
    except OverflowError:
        return INF if n > 0 else -INF


def _format_number(x: float) -> str:
    """Format like ECMAScript's Number.prototype.toString, for identical output in JS."""
    if x != x:
        return "NaN"
    if x in (INF, -INF):
        return "Infinity" if x > 0 else "-Infinity"
    if x == 0:
        return "0"
    sign = "-" if x < 0 else ""
    mantissa, _, exponent = repr(abs(x)).partition("e")
    whole, _, fraction = mantissa.partition(".")
    digits = whole + fraction
    stripped = digits.lstrip("0")
    point = len(whole) + (int(exponent) if exponent else 0) - (len(digits) - len(stripped))
    digits = stripped.rstrip("0")
    k = len(digits)
    if k <= point <= 21:
        return sign + digits + "0" * (point - k)
    if 0 < point <= 21:
        return sign + digits[:point] + "." + digits[point:]
    if -6 < point <= 0:
        return sign + "0." + "0" * (-point) + digits
    e = point - 1
    e_text = f"e{'+' if e >= 0 else '-'}{abs(e)}"
    if k == 1:
        return sign + digits + e_text
    return sign + digits[0] + "." + digits[1:] + e_text


def to_string(value: Any) -> str:
    """XPath string(): how a value prints in concat(), comparisons and stored calculations."""
    if isinstance(value, str):
        return value
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float):
        return _format_number(value)
    if isinstance(value, int):
        return _format_number(_int_to_float(value))
    if isinstance(value, datetime.date):
        return f"{value.year:04d}-{value.month:02d}-{value.day:02d}"
    if isinstance(value, (list, tuple)):
        return " ".join(to_string(item) for item in value)
    if value is None:
        return ""
    return str(value)


def _date_string_days(text: str) -> int | None:
    m = _DATE_STRING.match(text)
    if not m:
        return None
    try:
        return datetime.date(int(m[1]), int(m[2]), int(m[3])).toordinal() - _EPOCH
    except ValueError:
        return None


def to_number(value: Any) -> float:
    """XPath number(), plus ODK's dates as days since 1970-01-01."""
    if isinstance(value, bool):
        return 1.0 if value else 0.0
    if isinstance(value, float):
        return value
    if isinstance(value, int):
        return _int_to_float(value)
    if isinstance(value, datetime.date):
        return float(value.toordinal() - _EPOCH)
    if isinstance(value, (list, tuple)):
        value = to_string(value)
    if isinstance(value, str):
        m = _NUMERIC_STRING.match(value)
        if m:
            return float(m[1])
        days = _date_string_days(value)
        return NAN if days is None else float(days)
    return to_number(_value(value)) if value is not None else NAN


def to_boolean(value: Any) -> bool:
    """XPath boolean(): non-zero numbers, non-empty strings and non-empty lists are true."""
    if isinstance(value, bool):
        return value
    if isinstance(value, (float, int)):
        return value == value and value != 0
    if isinstance(value, (str, list, tuple)):
        return len(value) > 0
    if isinstance(value, datetime.date):
        return True
    return value is not None and to_boolean(_value(value))


def _days(value: Any) -> int | None:
    """A value as a day number for date(), format-date(); None when it is not a date."""
    if isinstance(value, datetime.date):
        return value.toordinal() - _EPOCH
    if isinstance(value, (str, list)):
        days = _date_string_days(to_string(value))
        if days is not None:
            return days
    number = to_number(value)
    if not math.isfinite(number):
        return None
    days = math.floor(number)
    return days if _MIN_DAYS <= days <= _MAX_DAYS else None


def _tokens(value: Any) -> list[str]:
    if isinstance(value, list):
        return [item for item in value if item != ""]
    return [item for item in _WHITESPACE.split(to_string(value)) if item]


# --------------------------------------------------------------------------- evaluating


class _Context:
    __slots__ = ("answers", "current", "today", "choice", "random")

    def __init__(self, answers, current, today, choice, random) -> None:
        self.answers = answers
        self.current = current
        self.today = today
        self.choice = choice
        self.random = random


def evaluate(
    ast: list | None,
    answers: Mapping[str, Any],
    *,
    current: Any = None,
    today: datetime.date | None = None,
    choice: Mapping[str, Any] | None = None,
    random: Callable[[], float] | None = None,
) -> Any:
    """Evaluate a compiled expression; never raises for odd answer data.

    Returns a str, float, bool, list of str or datetime.date (``None`` for a blank
    expression, whose meaning — always relevant, never required — is the caller's).
    """
    if ast is None:
        return None
    return _eval(ast, _Context(answers or {}, current, today, choice, random or _random.random))


def _eval(node: list, ctx: _Context) -> Any:
    kind = node[0]
    if kind == "ref":
        return _value(ctx.answers.get(node[1]))
    if kind == "num" or kind == "str":
        return node[1]
    if kind == "op":
        op = node[1]
        if op == "and":
            return to_boolean(_eval(node[2], ctx)) and to_boolean(_eval(node[3], ctx))
        if op == "or":
            return to_boolean(_eval(node[2], ctx)) or to_boolean(_eval(node[3], ctx))
        return _BINARY[op](_eval(node[2], ctx), _eval(node[3], ctx))
    if kind == "fn":
        name, args = node[1], node[2]
        if name == "if":
            chosen = args[1] if to_boolean(_eval(args[0], ctx)) else args[2]
            return _eval(chosen, ctx)
        if name == "today":
            return ctx.today or datetime.date.today()
        if name == "once":
            kept = _value(ctx.current)
            return _eval(args[0], ctx) if _empty(kept) else kept
        if name == "random":
            return float(ctx.random())
        return _CALLS[name](*[_eval(arg, ctx) for arg in args])
    if kind == "cur":
        return _value(ctx.current)
    if kind == "col":
        return _value(ctx.choice.get(node[1])) if ctx.choice is not None else ""
    if kind == "neg":
        return -to_number(_eval(node[1], ctx))
    raise ValueError(f"not an expression node: {node!r}")


Evaluator = Callable[..., Any]


def compile_evaluator(ast: list | None) -> Evaluator:
    """The expression as a Python function ``(answers, current, today, choice, random=None)``,
    for a questionnaire validated many times: it computes what `evaluate` computes, without
    walking the tree again on every call (validation compiles a form's expressions once)."""
    if ast is None:
        return lambda answers, current, today, choice, random=None: None
    run = _compiled(ast)
    return lambda answers, current, today, choice, random=None: run(
        _Context(answers or {}, current, today, choice, random or _random.random)
    )


def _compiled(node: list) -> Callable[[_Context], Any]:  # noqa: C901 - one case per node kind
    kind = node[0]
    if kind == "ref":
        name = node[1]
        return lambda ctx: _value(ctx.answers.get(name))
    if kind == "num" or kind == "str":
        constant = node[1]
        return lambda ctx: constant
    if kind == "op":
        fast = _compiled_comparison(node)
        if fast is not None:
            return fast
        op, left, right = node[1], _compiled(node[2]), _compiled(node[3])
        if op == "and":
            return lambda ctx: to_boolean(left(ctx)) and to_boolean(right(ctx))
        if op == "or":
            return lambda ctx: to_boolean(left(ctx)) or to_boolean(right(ctx))
        binary = _BINARY[op]
        return lambda ctx: binary(left(ctx), right(ctx))
    if kind == "fn":
        name = node[1]
        args = [_compiled(arg) for arg in node[2]]
        if name == "if":
            test, then, otherwise = args
            return lambda ctx: then(ctx) if to_boolean(test(ctx)) else otherwise(ctx)
        if name == "today":
            return lambda ctx: ctx.today or datetime.date.today()
        if name == "once":
            (drawn,) = args

            def once(ctx: _Context) -> Any:
                kept = _value(ctx.current)
                return drawn(ctx) if _empty(kept) else kept

            return once
        if name == "random":
            return lambda ctx: float(ctx.random())
        if (
            name == "format-date"
            and len(node[2]) == 2
            and node[2][0] == ["fn", "today", []]
            and node[2][1][0] == "str"
        ):
            return _today_formatted(node[2][1][1])
        call = _CALLS.get(name)
        if call is None:

            def unknown(ctx: _Context) -> Any:
                raise KeyError(name)

            return unknown
        if len(args) == 1:
            (only,) = args
            return lambda ctx: call(only(ctx))
        if len(args) == 2:
            first, second = args
            return lambda ctx: call(first(ctx), second(ctx))
        return lambda ctx: call(*[arg(ctx) for arg in args])
    if kind == "cur":
        return lambda ctx: _value(ctx.current)
    if kind == "col":
        column = node[1]
        return lambda ctx: _value(ctx.choice.get(column)) if ctx.choice is not None else ""
    if kind == "neg":
        operand = _compiled(node[1])
        return lambda ctx: -to_number(operand(ctx))

    def malformed(ctx: _Context) -> Any:
        raise ValueError(f"not an expression node: {node!r}")

    return malformed


def _today_formatted(text: str) -> Callable[[_Context], Any]:
    """``format-date(today(), 'pattern')`` (a birth year's check, an age): the text changes
    only with the day, so it is formatted once a day."""
    of_day = today_formatter(text)
    return lambda ctx: of_day(ctx.today)


def today_formatter(text: str) -> Callable[[datetime.date | None], str]:
    """``format-date(today(), text)`` for the day given (None: the clock's), formatted once
    a day."""
    by_day: dict[datetime.date, str] = {}

    def formatted(today: datetime.date | None) -> str:
        day = today or datetime.date.today()
        found = by_day.get(day)
        if found is None:
            if len(by_day) > 7:
                by_day.clear()
            found = by_day[day] = _format_date(day, text)
        return found

    return formatted


_NUMBER_TESTS: dict[str, Callable[[float, float], bool]] = {
    "=": lambda a, b: a == b,
    "!=": lambda a, b: a != b,
    "<": lambda a, b: a < b,
    "<=": lambda a, b: a <= b,
    ">": lambda a, b: a > b,
    ">=": lambda a, b: a >= b,
}


def _compiled_comparison(node: list) -> Callable[[_Context], Any] | None:
    """``${question} op number``, the commonest condition of a form, with the answer's
    number compared directly when it is a number (as `_BINARY` would compare it); any
    other answer goes the general way."""
    op, left, right = node[1], node[2], node[3]
    if op not in _NUMBER_TESTS or left[0] != "ref" or right[0] != "num":
        return None
    name, number = left[1], right[1]
    if type(number) is not float:
        return None
    test, general = _NUMBER_TESTS[op], _BINARY[op]

    def comparison(ctx: _Context) -> Any:
        raw = ctx.answers.get(name)
        kind = type(raw)
        if kind is int:
            return test(_int_to_float(raw), number)
        if kind is float:
            return test(raw, number)
        return general(_value(raw), number)

    return comparison


def _equal(a: Any, b: Any) -> bool:
    if isinstance(a, list):
        a = to_string(a)
    if isinstance(b, list):
        b = to_string(b)
    if isinstance(a, bool) or isinstance(b, bool):
        return to_boolean(a) == to_boolean(b)
    if isinstance(a, (float, datetime.date)) or isinstance(b, (float, datetime.date)):
        return to_number(a) == to_number(b)
    return to_string(a) == to_string(b)


def _divide(a: Any, b: Any) -> float:
    x, y = to_number(a), to_number(b)
    if y == 0:
        if x == 0 or x != x:
            return NAN
        return math.copysign(INF, x) * math.copysign(1.0, y)
    return x / y


def _modulo(a: Any, b: Any) -> float:
    try:
        return math.fmod(to_number(a), to_number(b))
    except ValueError:  # x mod 0, infinity mod y
        return NAN


_BINARY: dict[str, Callable[[Any, Any], Any]] = {
    "=": _equal,
    "!=": lambda a, b: not _equal(a, b),
    "<": lambda a, b: to_number(a) < to_number(b),
    "<=": lambda a, b: to_number(a) <= to_number(b),
    ">": lambda a, b: to_number(a) > to_number(b),
    ">=": lambda a, b: to_number(a) >= to_number(b),
    "+": lambda a, b: to_number(a) + to_number(b),
    "-": lambda a, b: to_number(a) - to_number(b),
    "*": lambda a, b: to_number(a) * to_number(b),
    "div": _divide,
    "mod": _modulo,
}


def _whole(x: float, fn) -> float:
    return float(fn(x)) if math.isfinite(x) else x


def _round(value: Any, places: Any = 0.0) -> float:
    x = to_number(value)
    p = to_number(places)
    if p != p:
        return NAN
    if not math.isfinite(x):
        return x
    p = int(max(-15.0, min(15.0, p)))
    scale = 1.0
    for _ in range(abs(p)):  # repeated *10 is exact here and in JavaScript
        scale *= 10
    y = x * scale if p >= 0 else x / scale
    if not math.isfinite(y):
        return x
    r = math.copysign(float(math.floor(abs(y) + 0.5)), y)
    return r / scale if p >= 0 else r * scale


def _extreme(pick, *values: Any) -> float:
    numbers = [to_number(v) for v in values]
    if any(n != n for n in numbers):
        return NAN
    return pick(numbers)


def _regex(value: Any, pattern: Any) -> bool:
    try:
        return re.search(to_string(pattern), to_string(value), re.ASCII) is not None
    except (re.error, RecursionError, OverflowError):
        return False


def _substr(value: Any, start: Any, end: Any = None) -> str:
    text = to_string(value)
    a = to_number(start)
    b = float(len(text)) if end is None else to_number(end)
    if a != a or b != b:
        return ""
    a = int(max(0.0, min(len(text), a)))
    b = int(max(0.0, min(len(text), b)))
    return text[a:b]


def _selected_at(value: Any, index: Any) -> str:
    items = _tokens(value)
    i = to_number(index)
    if i != i or i < 0 or i >= len(items):
        return ""
    return items[int(i)]


def _date(value: Any) -> Any:
    days = _days(value)
    return "" if days is None else datetime.date.fromordinal(days + _EPOCH)


# The codes of format-date(), each computed only when the pattern uses it.
_DATE_PARTS: dict[str, Callable[[datetime.date, int], str]] = {
    "Y": lambda d, days: f"{d.year:04d}",
    "y": lambda d, days: f"{d.year % 100:02d}",
    "m": lambda d, days: f"{d.month:02d}",
    "n": lambda d, days: str(d.month),
    "d": lambda d, days: f"{d.day:02d}",
    "e": lambda d, days: str(d.day),
    "b": lambda d, days: _MONTHS[d.month - 1],
    "a": lambda d, days: _WEEKDAYS[(days + 4) % 7],
}


def _format_date(value: Any, pattern: Any) -> str:
    days = _days(value)
    if days is None:
        return ""
    d = datetime.date.fromordinal(days + _EPOCH)

    def part(m: re.Match[str]) -> str:
        compute = _DATE_PARTS.get(m[1])
        return m[0] if compute is None else compute(d, days)

    return _FORMAT_CODE.sub(part, to_string(pattern))


def _empty(value: Any) -> bool:
    return value == "" or value == []


def _math(function: Callable[..., float], *values: Any) -> float:
    """A math function on number() of its arguments; a domain error gives NaN, as in JavaScript."""
    try:
        return float(function(*(to_number(v) for v in values)))
    except (ValueError, OverflowError):
        if function is math.log or function is math.log10:
            number = to_number(values[0])
            return -INF if number == 0 else NAN
        if function is math.exp or function is math.pow:
            return INF
        return NAN


_CALLS: dict[str, Callable[..., Any]] = {
    "not": lambda v: not to_boolean(v),
    "true": lambda: True,
    "false": lambda: False,
    "boolean": to_boolean,
    "coalesce": lambda a, b: b if _empty(a) else a,
    "selected": lambda v, choice: to_string(choice).strip(" \t\r\n") in _tokens(v),
    "selected-at": _selected_at,
    "count-selected": lambda v: float(len(_tokens(v))),
    "string": to_string,
    "string-length": lambda v: float(len(to_string(v))),
    "concat": lambda *values: "".join(to_string(v) for v in values),
    "contains": lambda a, b: to_string(b) in to_string(a),
    "starts-with": lambda a, b: to_string(a).startswith(to_string(b)),
    "ends-with": lambda a, b: to_string(a).endswith(to_string(b)),
    "substr": _substr,
    "regex": _regex,
    "number": to_number,
    "int": lambda v: _whole(to_number(v), math.trunc),
    "round": _round,
    "floor": lambda v: _whole(to_number(v), math.floor),
    "ceiling": lambda v: _whole(to_number(v), math.ceil),
    "abs": lambda v: abs(to_number(v)),
    "min": lambda *values: _extreme(min, *values),
    "max": lambda *values: _extreme(max, *values),
    "date": _date,
    "format-date": _format_date,
    "pow": lambda a, b: _math(math.pow, a, b),
    "sqrt": lambda v: _math(math.sqrt, v),
    "exp": lambda v: _math(math.exp, v),
    "log": lambda v: _math(math.log, v),
    "log10": lambda v: _math(math.log10, v),
    "sin": lambda v: _math(math.sin, v),
    "cos": lambda v: _math(math.cos, v),
    "tan": lambda v: _math(math.tan, v),
    "asin": lambda v: _math(math.asin, v),
    "acos": lambda v: _math(math.acos, v),
    "atan": lambda v: _math(math.atan, v),
    "atan2": lambda a, b: _math(math.atan2, a, b),
    "pi": lambda: math.pi,
}
