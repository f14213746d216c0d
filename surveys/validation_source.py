"""A questionnaire version's validation as one generated Python function.

`surveys.validation.Validator` walks a tree of compiled steps: every question of every
interview costs several calls (the step, the blank test, the converter, the relevance
closure and its evaluation context). Syncing thousands of interviews a second needs less,
so for each form version the walk is written out once as the source of a single function
(as fastjsonschema does for JSON Schema), compiled with `compile()`: each question becomes
a few lines over local variables, with its choice lists and messages bound as constants.

What the function does is the reference walk, step for step and in the same order (the
tests check it against `Validator` on random answers): the first pass converts the level's
answers into the working copy, then the questions are visited in form order. The common
conditions (an answer or ``.`` compared with a number or a text, ``and``, ``or``, ``not``,
``selected()``) are written inline with a fast path for numbers; every other expression,
the calculations' included, is written out node for node as
`surveys.expressions.compile_evaluator` evaluates it, calling the same functions of the
language (conversions, operators, functions), so no rule of the language is written twice.
Calculations and notes are written out as the walk's steps; only a repeat calls the
reference step for that node.
"""

from __future__ import annotations

import datetime
import itertools
import random as _random
import re
from collections import Counter
from collections.abc import Callable, Mapping, Sequence
from typing import Any

from surveys import formtree
from surveys.expressions import (
    _BINARY,
    _CALLS,
    _empty,
    _value,
    functions,
    keeps_its_value,
    to_boolean,
    to_number,
    today_formatter,
)
from surveys.validation import (
    NOT_APPLICABLE,
    AnswerErrors,
    Validator,
    _all_integer_codes,
    _blank,
    _choice_check,
    _compile_node,
    _Invalid,
    _questions_by_name,
    _Run,
    converter,
    instance_draws,
    numbered_choices,
    recorded_value,
    stored_calculation,
)

# Whole numbers up to 2**53 compare with a float exactly as their float does.
_EXACT_INTEGER = 2**53
_COMPARISONS = {"=": "==", "!=": "!=", "<": "<", "<=": "<=", ">": ">", ">=": ">="}
_IDENTIFIER = re.compile(r"[^0-9A-Za-z_]")


class _Blank:
    """The first pass found no answer."""


class _Unconverted:
    """The first pass could not convert the answer: the walk converts it again for its
    message."""


BLANK = _Blank()
UNCONVERTED = _Unconverted()


def _required_message(run: _Run, node: Mapping[str, Any]) -> str:
    from django.utils.translation import gettext

    return run.text(node.get("required_message")) or gettext("This question requires an answer.")


def _constraint_message(run: _Run, node: Mapping[str, Any]) -> str:
    from django.utils.translation import gettext

    return run.text(node.get("constraint_message")) or gettext(
        "This answer is not accepted; please check it."
    )


def _invalid_message(convert: Callable[[Any], Any], value: Any) -> str:
    try:
        convert(value)
    except _Invalid as invalid:
        return invalid.message
    raise AssertionError("the answer converted on its second reading")


def _choices_pass(allowed: Callable[..., bool], clean: Any, working: Any, today: Any) -> bool:
    codes = clean if isinstance(clean, list) else [str(clean)]
    return all(allowed(code, working, today) for code in codes)


def _choice_refused() -> str:
    from django.utils.translation import gettext

    return gettext("Choose one of the options offered.")


def _selected(raw: Any, choice: str) -> bool:
    return bool(_CALLS["selected"](_value(raw), choice))


def _assignment_refused() -> str:
    from django.utils.translation import gettext

    return gettext("The random assignment must be 0 (control) or 1 (treatment).")


def _unknown_function(name: str) -> Callable[..., Any]:
    def unknown(*args: Any) -> Any:
        raise KeyError(name)

    return unknown


def _malformed(node: Any) -> Callable[[], Any]:
    def malformed() -> Any:
        raise ValueError(f"not an expression node: {node!r}")

    return malformed


class _Source:
    """The lines of the generated function and the constants they refer to."""

    def __init__(self) -> None:
        self.lines: list[str] = []
        self.constants: dict[str, Any] = {}
        self.counter = itertools.count()

    def constant(self, prefix: str, value: Any) -> str:
        name = f"{prefix}{next(self.counter)}"
        self.constants[name] = value
        return name

    def temp(self) -> str:
        return f"t{next(self.counter)}"

    def emit(self, depth: int, line: str) -> None:
        self.lines.append("    " * depth + line)


def _literal(source: _Source, value: Any) -> str:
    if isinstance(value, float) and value == value and value not in (float("inf"), -float("inf")):
        return repr(value)
    if isinstance(value, str):
        return repr(value)
    return source.constant("K", value)


def _operand(source: _Source, node: Any, current: str) -> str | None:
    """Python that reads a ``${name}`` or ``.`` operand (its raw value), or None."""
    if node[0] == "ref" and isinstance(node[1], str):
        return f"wget({node[1]!r})"
    if node[0] == "cur":
        return current
    return None


def _inline(source: _Source, ast: Any, current: str) -> str | None:
    """A boolean Python expression computing ``to_boolean`` of the condition, or None when
    the condition is not one of the common shapes written inline."""
    if not isinstance(ast, list) or not ast:
        return None
    kind = ast[0]
    if kind == "op" and ast[1] in ("and", "or"):
        left = _inline(source, ast[2], current)
        right = _inline(source, ast[3], current)
        if left is None or right is None:
            return None
        return f"({left} {ast[1]} {right})"
    if kind == "op" and ast[1] in _COMPARISONS:
        operand = _operand(source, ast[2], current)
        constant = ast[3]
        if operand is None or constant[0] not in ("num", "str"):
            return None
        general = source.constant("B", _BINARY[ast[1]])
        value = _literal(source, constant[1])
        if constant[0] == "str" or not isinstance(constant[1], float):
            return f"{general}(_value({operand}), {value})"
        x, k = source.temp(), source.temp()
        op = _COMPARISONS[ast[1]]
        return (
            f"(({x} {op} {value}) if (({k} := type({x} := {operand})) is float or "
            f"({k} is int and -{_EXACT_INTEGER} <= {x} <= {_EXACT_INTEGER})) "
            f"else {general}(_value({x}), {value}))"
        )
    if kind == "fn" and ast[1] == "not" and len(ast[2]) == 1:
        inner = _inline(source, ast[2][0], current)
        return None if inner is None else f"(not {inner})"
    if kind == "fn" and ast[1] == "selected" and len(ast[2]) == 2:
        operand = _operand(source, ast[2][0], current)
        choice = ast[2][1]
        if operand is None or choice[0] != "str":
            return None
        return f"_selected({operand}, {choice[1]!r})"
    return None


def _condition_code(source: _Source, ast: Any, current: str, random: str = "_random.random") -> str:
    """Python for ``to_boolean`` of a condition: the common shapes inline, any other
    expression written out as `surveys.expressions` evaluates it."""
    code = _inline(source, ast, current)
    if code is not None:
        return code
    if isinstance(ast, list) and ast and ast[0] == "op" and ast[1] in ("and", "or"):
        left = _condition_code(source, ast[2], current, random)
        right = _condition_code(source, ast[3], current, random)
        return f"({left} {ast[1]} {right})"
    return f"to_boolean({_expression(source, ast, current, random)})"


def _expression(source: _Source, node: Any, current: str, random: str) -> str:  # noqa: C901
    """A Python expression computing what `surveys.expressions.compile_evaluator` computes
    for ``node``, case for case and in the same order, over the working copy ``W``, the
    current value ``current`` (Python reading it), ``today`` and the random source
    ``random`` (a name in the function); the choice row is always absent here."""
    kind = node[0]
    if kind == "ref":
        return f"_value(wget({node[1]!r}))"
    if kind == "num" or kind == "str":
        return _literal(source, node[1])
    if kind == "op":
        if node[1] in ("and", "or") or node[1] in _COMPARISONS:
            # A boolean: the condition's code is its value.
            inline = _inline(source, node, current)
            if inline is not None:
                return inline
        if node[1] in ("and", "or"):
            left = _condition_code(source, node[2], current, random)
            right = _condition_code(source, node[3], current, random)
            return f"({left} {node[1]} {right})"
        left = _expression(source, node[2], current, random)
        right = _expression(source, node[3], current, random)
        return f"{source.constant('B', _BINARY[node[1]])}({left}, {right})"
    if kind == "fn":
        name, args = node[1], node[2]
        if name == "if":
            test = _condition_code(source, args[0], current, random)
            then, otherwise = (_expression(source, a, current, random) for a in args[1:])
            return f"({then} if {test} else {otherwise})"
        if name == "today":
            return "(today or _date_today())"
        if name == "once":
            (drawn,) = (_expression(source, a, current, random) for a in args)
            kept = source.temp()
            return f"({drawn} if _empty({kept} := _value({current})) else {kept})"
        if name == "random":
            return f"float({random}())"
        if (
            name == "format-date"
            and len(args) == 2
            and args[0] == ["fn", "today", []]
            and args[1][0] == "str"
        ):
            return f"{source.constant('D', today_formatter(args[1][1]))}(today)"
        call = _CALLS.get(name)
        if call is None:  # raises before its arguments are evaluated, as compiled
            return f"{source.constant('X', _unknown_function(name))}()"
        values = ", ".join(_expression(source, a, current, random) for a in args)
        return f"{source.constant('X', call)}({values})"
    if kind == "cur":
        return f"_value({current})"
    if kind == "col":
        return "''"
    if kind == "neg":
        return f"(-to_number({_expression(source, node[1], current, random)}))"
    return f"{source.constant('M', _malformed(node))}()"


class _Generator:
    def __init__(self, definition: Mapping[str, Any]) -> None:
        self.definition = definition
        self.source = _Source()
        self.first_pass: dict[str, tuple[Mapping[str, Any], str, str]] = {}
        # Questions relevant whatever the answers (no condition on them or their groups).
        self.always_relevant: set[str] = set()
        self.unique_names: set[str] = set()

    def generate(self, children: Sequence[Any]) -> str:
        s = self.source
        s.emit(0, "def validate(run, answers, W, stored):")
        for line in (
            "get = answers.get",
            "wget = W.get",
            "wpop = W.pop",
            "relevant_add = run.relevant.add",
            "relevant_update = run.relevant.update",
            "fail = run.fail",
            "today = run.today",
        ):
            s.emit(1, line)
        names = Counter(str(node.get("name", "")) for node in formtree.level(children))
        self.unique_names = {name for name, count in names.items() if count == 1}
        for name, node in _questions_by_name(children).items():
            self._first_pass(name, node)
        start = len(s.lines)
        for node in children:
            self._node(node, "True", 1)
        always = s.constant("R", frozenset(self.always_relevant))
        s.lines.insert(start, f"    relevant_update({always})")
        s.emit(1, "return None")
        return "\n".join(s.lines) + "\n"

    def _first_pass(self, name: str, node: Mapping[str, Any]) -> None:
        """The answer converted into the working copy, or BLANK / UNCONVERTED."""
        s = self.source
        index = next(s.counter)
        value, clean = f"v{index}", f"c{index}"
        convert = s.constant("F", converter(node, self.definition))
        self.first_pass[name] = (node, value, clean)
        s.emit(1, f"{value} = get({name!r})")
        if node["type"] == "select_one":
            numbers = s.constant(
                "N", numbered_choices(self.definition["choices"].get(node.get("list_name"), []))
            )
            # A whole number is a choice's code or no choice at all (see `numbered_choices`).
            s.emit(1, f"if type({value}) is int:")
            s.emit(2, f"if {value} in {numbers}:")
            s.emit(3, f"{clean} = W[{name!r}] = {numbers}[{value}]")
            s.emit(2, "else:")
            s.emit(3, f"{clean} = UNCONVERTED")
            s.emit(1, f"elif {value} is None or _blank({value}):")
        else:
            s.emit(1, f"if {value} is None or _blank({value}):")
        s.emit(2, f"{clean} = BLANK")
        s.emit(1, "else:")
        s.emit(2, "try:")
        s.emit(3, f"{clean} = W[{name!r}] = {convert}({value})")
        s.emit(2, "except _Invalid:")
        s.emit(3, f"{clean} = UNCONVERTED")

    def _relevance(self, node: Mapping[str, Any], parent: str, depth: int) -> str:
        own = node.get("relevant")
        if own is None:
            return parent
        flag = self.source.temp()
        code = _condition_code(self.source, own, "None")
        self.source.emit(
            depth, f"{flag} = {code}" if parent == "True" else f"{flag} = {parent} and {code}"
        )
        return flag

    def _node(self, node: Mapping[str, Any], parent: str, depth: int) -> None:
        s = self.source
        part = formtree.role(node)
        if part == formtree.GROUP:
            here = self._relevance(node, parent, depth)
            for child in formtree.children(node):
                self._node(child, here, depth)
            return
        if part != formtree.REPEAT and node.get("type") == "note":
            self._relevance(node, parent, depth)  # evaluated as the walk does
            s.emit(depth, f"wpop({node['name']!r}, None)")
            return
        if part != formtree.REPEAT and node.get("type") == "calculate":
            self._calculation(node, self._relevance(node, parent, depth), depth)
            return
        known = self.first_pass.get(node.get("name", ""))
        if part == formtree.REPEAT or known is None or known[0] is not node:
            # The reference step of the node, with its own relevance.
            step = s.constant("S", _compile_node(node, self.definition))
            s.emit(depth, f"{step}(run, answers, W, stored, {parent}, '')")
            return
        here = self._relevance(node, parent, depth)
        self._question(node, known[1], known[2], here, depth)

    def _calculation(self, node: Mapping[str, Any], here: str, depth: int) -> None:
        """A calculation recomputed into the working copy and stored (`_compile_question`)."""
        s = self.source
        name = node["name"]
        key = repr(name)
        ast = node.get("calculation")
        if here != "True":
            s.emit(depth, f"if not {here}:")
            s.emit(depth + 1, f"wpop({key}, None)")
            s.emit(depth, "else:")
            depth += 1
            s.emit(depth, f"relevant_add({key})")
        else:
            self.always_relevant.add(name)
        current = "None"
        if ast is not None and keeps_its_value(ast):
            current = s.temp()
            s.emit(depth, f"{current} = _recorded_value(get({key}))")
        random = "_random.random"
        if ast is not None and "random" in functions(ast):
            random = s.temp()
            s.emit(
                depth,
                f"{random} = _instance_draws(run.instance_id, {key}, run.halves.get({key})) "
                "if run.instance_id is not None else _random.random",
            )
        result = s.temp()
        code = "None" if ast is None else _expression(s, ast, current, random)
        s.emit(depth, f"{result} = _stored_calculation({code})")
        if (node.get("design") or {}).get("role") == "assign":
            s.emit(depth, f"if {result} not in (0, 1):")
            s.emit(depth + 1, f"fail({key}, _assignment_refused())")
            s.emit(depth, f"elif {result} is None:")
        else:
            s.emit(depth, f"if {result} is None:")
        s.emit(depth + 1, f"wpop({key}, None)")
        s.emit(depth, "else:")
        s.emit(depth + 1, f"W[{key}] = stored[{key}] = {result}")

    def _question(
        self, node: Mapping[str, Any], value: str, clean: str, here: str, depth: int
    ) -> None:
        s = self.source
        name = node["name"]
        key = repr(name)
        node_ref = s.constant("Q", node)
        skipped_code = node["type"] == "select_one" and _all_integer_codes(
            self.definition, node.get("list_name", "")
        )
        required = node.get("required")
        allowed = _choice_check(node, self.definition)
        constraint = node.get("constraint")
        if here != "True":
            s.emit(depth, f"if not {here}:")
            s.emit(depth + 1, f"wpop({key}, None)")
            if skipped_code:
                s.emit(depth + 1, f"stored[{key}] = {NOT_APPLICABLE}")
            s.emit(depth, "else:")
            depth += 1
        if here == "True":
            self.always_relevant.add(name)
        else:
            s.emit(depth, f"relevant_add({key})")
        s.emit(depth, f"if {clean} is BLANK:")
        s.emit(depth + 1, f"wpop({key}, None)")
        if isinstance(required, list):
            test = _condition_code(s, required, "''")
            s.emit(depth + 1, f"if {test}:")
            s.emit(depth + 2, f"fail({key}, _required_message(run, {node_ref}))")
        elif required:
            s.emit(depth + 1, f"fail({key}, _required_message(run, {node_ref}))")
        s.emit(depth, f"elif {clean} is UNCONVERTED:")
        s.emit(depth + 1, f"wpop({key}, None)")
        convert = s.constant("F", converter(node, self.definition))
        s.emit(depth + 1, f"fail({key}, _invalid_message({convert}, {value}))")
        if allowed is not None:
            check = s.constant("A", allowed)
            s.emit(depth, f"elif not _choices_pass({check}, {clean}, W, today):")
            s.emit(depth + 1, f"wpop({key}, None)")
            s.emit(depth + 1, f"fail({key}, _choice_refused())")
        s.emit(depth, "else:")
        if name not in self.unique_names:
            # Another node of this name may have changed the working copy since the first
            # pass: the answer goes back in (with a unique name it is there already).
            s.emit(depth + 1, f"W[{key}] = {clean}")
        if constraint is not None:
            test = _condition_code(s, constraint, clean)
            s.emit(depth + 1, f"if {test}:")
            s.emit(depth + 2, f"stored[{key}] = {clean}")
            s.emit(depth + 1, "else:")
            s.emit(depth + 2, f"fail({key}, _constraint_message(run, {node_ref}))")
        else:
            s.emit(depth + 1, f"stored[{key}] = {clean}")


def validation_source(definition: Mapping[str, Any]) -> tuple[str, dict[str, Any]]:
    """The generated function's source and the names it refers to."""
    generator = _Generator(definition)
    text = generator.generate(formtree.children(definition))
    namespace = {
        "BLANK": BLANK,
        "UNCONVERTED": UNCONVERTED,
        "_blank": _blank,
        "_Invalid": _Invalid,
        "_value": _value,
        "_selected": _selected,
        "_required_message": _required_message,
        "_constraint_message": _constraint_message,
        "_invalid_message": _invalid_message,
        "_choices_pass": _choices_pass,
        "_choice_refused": _choice_refused,
        "_assignment_refused": _assignment_refused,
        "_recorded_value": recorded_value,
        "_instance_draws": instance_draws,
        "_stored_calculation": stored_calculation,
        "_empty": _empty,
        "_random": _random,
        "_date_today": datetime.date.today,
        "to_boolean": to_boolean,
        "to_number": to_number,
        **generator.source.constants,
    }
    return text, namespace


class GeneratedValidator(Validator):
    """`Validator` with the walk of the top level replaced by the generated function."""

    def __init__(self, definition: Mapping[str, Any]):
        super().__init__(definition)
        text, namespace = validation_source(definition)
        code = compile(text, f"<validation of form {definition.get('form_id', '')!s}>", "exec")
        exec(code, namespace)  # noqa: S102 - source generated above from the form's tree
        self.walk = namespace["validate"]
        self.source = text

    def _walk(self, run: _Run, answers: Mapping[str, Any]) -> dict[str, Any]:
        stored: dict[str, Any] = {}
        self.walk(run, answers, {}, stored)
        return stored


# Compiled validators by form version. A version is immutable once imported (a changed
# workbook is a new version), so its key is its id, its workbook's digest and its time.
_VALIDATORS: dict[tuple[Any, ...], GeneratedValidator] = {}
_VALIDATORS_KEPT = 64


def validator_for(version: Any) -> GeneratedValidator:
    """The generated validation of a stored form version, compiled once per process."""
    key = (version.pk, version.xlsform_sha256, version.created_at)
    validator = _VALIDATORS.get(key)
    if validator is None:
        if len(_VALIDATORS) >= _VALIDATORS_KEPT:
            _VALIDATORS.clear()
        validator = _VALIDATORS[key] = GeneratedValidator(version.definition)
    return validator


__all__ = ["AnswerErrors", "GeneratedValidator", "validation_source", "validator_for"]
