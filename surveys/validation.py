"""Server-side validation of an interview against its compiled questionnaire.

The same compiled expressions the web form evaluates in the browser
(`surveys/static/surveys/form.js` with `expressions.js`) are evaluated here, in the same
order, so the two sides agree; the server is authoritative.

The walk, shared with the browser: questions are visited in form order over a working
copy of the submitted answers. A question is relevant when its own ``relevant`` and
those of all enclosing groups are true. When it is not relevant its answer is removed
from the working copy (later expressions see it as blank); a calculation is recomputed
and written into the working copy. So an expression that refers to an earlier question
sees that question's effective value.

What is stored:
- relevant answers, converted to their stored types (integer codes of select_one lists
  as ints, select_multiple as a list of codes, integers as int, decimals as float, dates
  as ``YYYY-MM-DD``);
- calculations, recomputed here whatever the client sent, except that a ``once()``
  calculation (a random assignment) keeps the value the client recorded: ``once`` sees it
  as the question's current value, so the draw made on the device is the one stored;
- for a non-relevant select_one whose choice names are all integer codes, ``-3`` (not
  applicable, skipped by design; DOMAIN.md); any other non-relevant answer is dropped;
- repeats as a list of per-instance answer dicts, each instance validated on its own
  (inside an instance, ``${name}`` means the sibling in the same instance).
"""

from __future__ import annotations

import contextlib
import datetime as dt
import hashlib
import itertools
import math
import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from django.utils import translation
from django.utils.translation import gettext, gettext_lazy

from surveys import formtree
from surveys.definition import interface_language, stored_choice_value
from surveys.expressions import (
    compile_evaluator,
    evaluate,
    functions,
    keeps_its_value,
    to_boolean,
    to_number,
    to_string,
)
from surveys.formtree import level, level_questions
from surveys.models import pick_translation

NOT_APPLICABLE = -3
TEXT_MAX_LENGTH = 2000
MAX_REPEAT_INSTANCES = 200
INTEGER_LIMIT = 10**15
# The key of problems that belong to the whole interview rather than one question.
FORM_ERRORS = "__all__"
_INTEGER_TEXT = re.compile(r"[+-]?[0-9]+")
_DECIMAL_TEXT = re.compile(r"[+-]?(?:[0-9]+(?:[.,][0-9]*)?|[.,][0-9]+)")
_NUMBER_TEXT = re.compile(r"-?[0-9]+(?:\.[0-9]+)?(?:[eE][+-]?[0-9]+)?")
_DATE_TEXT = re.compile(r"([0-9]{4})-([0-9]{2})-([0-9]{2})")


class AnswerErrors(ValueError):
    """The answers cannot be stored. ``errors`` maps a question name to its messages.

    Inside a repeat the key is ``repeat[index].question`` (index from 1). Problems with
    the interview as a whole are under ``FORM_ERRORS``.
    """

    def __init__(self, errors: dict[str, list[str]]):
        self.errors = errors
        super().__init__("; ".join(f"{k}: {' '.join(v)}" for k, v in errors.items()))


@dataclass
class CleanAnswers:
    """Validated answers ready to store, and the names of the questions that were relevant."""

    answers: dict[str, Any]
    relevant: set[str] = field(default_factory=set)


_NEVER_BLANK = frozenset({int, float, bool})
_PLAIN_INTEGER = re.compile(r"-?(?:0|[1-9][0-9]*)")


class _Invalid(Exception):
    """An answer that cannot be converted. The message is translated only when it is read:
    the first pass over the answers converts what it can and ignores the rest."""

    def __init__(self, message: Any):
        self._message = message

    @property
    def message(self) -> str:
        return str(self._message)


def _blank(value: Any) -> bool:
    if type(value) in _NEVER_BLANK:  # most answers: a number, never blank
        return False
    return (
        value is None
        or value == ""
        or value == []
        or (isinstance(value, str) and not value.strip())
    )


def _all_integer_codes(definition: Mapping[str, Any], list_name: str) -> bool:
    choices = definition.get("choices", {}).get(list_name, [])
    return bool(choices) and all(isinstance(stored_choice_value(c["name"]), int) for c in choices)


def _as_number_text(value: Any) -> str:
    if isinstance(value, bool):
        raise _Invalid("")
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        if not math.isfinite(value):
            raise _Invalid("")
        return repr(value)
    if isinstance(value, str):
        return value.strip()
    raise _Invalid("")


def convert(node: Mapping[str, Any], value: Any, definition: Mapping[str, Any]) -> Any:
    """One answer in its stored type. Raises _Invalid with the message to show."""
    return converter(node, definition)(value)


def converter(node: Mapping[str, Any], definition: Mapping[str, Any]) -> Callable[[Any], Any]:
    """`convert` for one question, with its choice lists looked up once."""
    kind = node["type"]
    if kind == "integer":
        return _integer
    if kind == "decimal":
        return _decimal
    if kind == "date":
        return _date
    if kind == "text":
        return _text
    if kind == "select_one":
        return _select_one(definition["choices"].get(node.get("list_name"), []))
    if kind == "select_multiple":
        return _select_multiple(
            definition["choices"].get(node.get("list_name"), []),
            lambda: definition["choices"][node["list_name"]],
        )
    return _takes_no_answer


def _integer(value: Any) -> int:
    try:
        text = _as_number_text(value)
        if isinstance(value, float):
            if not value.is_integer():
                raise _Invalid("")
            number = int(value)
        elif _INTEGER_TEXT.fullmatch(text):
            number = int(text)
        else:
            raise _Invalid("")
    except _Invalid:
        raise _Invalid(gettext_lazy("Enter a whole number.")) from None
    if abs(number) >= INTEGER_LIMIT:
        raise _Invalid(gettext_lazy("Enter a whole number."))
    return number


def _decimal(value: Any) -> float:
    try:
        text = _as_number_text(value)
        if not _DECIMAL_TEXT.fullmatch(text):
            raise _Invalid("")
        real = float(text.replace(",", "."))
    except (_Invalid, ValueError):
        raise _Invalid(gettext_lazy("Enter a number.")) from None
    if not math.isfinite(real):
        raise _Invalid(gettext_lazy("Enter a number."))
    return real


def _date(value: Any) -> str:
    match = _DATE_TEXT.fullmatch(value.strip()) if isinstance(value, str) else None
    try:
        if match is None:
            raise ValueError
        day = dt.date(int(match[1]), int(match[2]), int(match[3]))
    except ValueError:
        raise _Invalid(gettext_lazy("Enter a date as YYYY-MM-DD.")) from None
    return day.isoformat()


def _text(value: Any) -> str:
    if isinstance(value, bool) or not isinstance(value, (str, int, float)):
        raise _Invalid(gettext_lazy("Enter text."))
    text = str(value).strip()
    if len(text) > TEXT_MAX_LENGTH:
        raise _Invalid(
            gettext_lazy("Keep the answer under %(limit)d characters.") % {"limit": TEXT_MAX_LENGTH}
        )
    return text


def _takes_no_answer(value: Any) -> Any:
    raise _Invalid(gettext_lazy("This item takes no answer."))


def _select_one(choices: Sequence[Mapping[str, Any]]) -> Callable[[Any], Any]:
    stored = {c["name"]: stored_choice_value(c["name"]) for c in choices}
    by_number = numbered_choices(choices)

    def select_one(value: Any) -> Any:
        if type(value) is int and value in by_number:
            return by_number[value]
        if isinstance(value, bool) or not isinstance(value, (str, int)):
            raise _Invalid(gettext_lazy("Choose one of the options offered."))
        code = str(value).strip()
        if code not in stored:
            raise _Invalid(gettext_lazy("Choose one of the options offered."))
        return stored[code]

    return select_one


def numbered_choices(choices: Sequence[Mapping[str, Any]]) -> dict[int, Any]:
    """Integer answers of the choices written as plain integers ("1", "-2"): str(n) is the
    choice's name, so the number finds its stored value without the text."""
    names = (c["name"] for c in choices)
    return {
        int(n): stored_choice_value(n)
        for n in names
        if _PLAIN_INTEGER.fullmatch(n) and str(int(n)) == n
    }


def _select_multiple(
    choices: Sequence[Mapping[str, Any]], ordered: Callable[[], Sequence[Mapping[str, Any]]]
) -> Callable[[Any], Any]:
    known = {c["name"] for c in choices}
    position: dict[str, int] | None = None

    def select_multiple(value: Any) -> list[str]:
        nonlocal position
        if isinstance(value, str):
            codes = value.split()
        elif isinstance(value, list) and all(
            isinstance(v, (str, int)) and not isinstance(v, bool) for v in value
        ):
            codes = [str(v).strip() for v in value]
        else:
            raise _Invalid(gettext_lazy("Choose from the options offered."))
        if len(set(codes)) != len(codes) or not set(codes) <= known:
            raise _Invalid(gettext_lazy("Choose from the options offered."))
        if position is None:
            position = {}
            for index, choice in enumerate(ordered()):
                position.setdefault(choice["name"], index)
        return sorted(codes, key=position.__getitem__)

    return select_multiple


def instance_draws(instance_id: str, name: str, half: int | None = None) -> Callable[[], float]:
    """Draws from [0, 1) fixed by the interview and the question: the same on every resend.

    With ``half`` (a balanced assignment's slot, `surveys.assignment`) the first draw falls
    in [0, 0.5) for 0 and in [0.5, 1) for 1, as the tablet's blocks do in ``form.js``.
    """
    counter = itertools.count()

    def draw() -> float:
        n = next(counter)
        digest = hashlib.sha256(f"{instance_id}:{name}:{n}".encode()).digest()
        u = int.from_bytes(digest[:7], "big") / float(1 << 56)
        return (half + u) / 2 if half is not None and n == 0 else u

    return draw


def recorded_value(value: Any) -> Any:
    """The value a client recorded for a ``once()`` calculation, as the evaluator sees it:
    a number sent as text (an OpenRosa instance holds only text) becomes a number."""
    if isinstance(value, str) and _NUMBER_TEXT.fullmatch(value.strip()):
        return float(value)
    return None if isinstance(value, (dict, list)) else value


def stored_calculation(value: Any) -> Any:
    """A calculation result as stored: whole numbers as int, other numbers as float, else text.

    ``None`` when the result is blank or not a number (NaN), so nothing is stored.
    """
    if isinstance(value, bool):
        return to_string(value)
    if isinstance(value, float):
        if not math.isfinite(value):
            return None
        return int(value) if value.is_integer() and abs(value) < INTEGER_LIMIT else value
    text = to_string(value)
    return text if text != "" else None


class _Run:
    """One validation's state: its language, its day, the problems and relevant questions."""

    __slots__ = ("language", "today", "instance_id", "halves", "errors", "relevant", "converted")

    def __init__(
        self,
        language: str,
        today: dt.date | None,
        instance_id: str | None = None,
        halves: Mapping[str, int] | None = None,
    ):
        self.language = language
        self.today = today
        self.instance_id = instance_id
        self.halves = halves or {}
        self.errors: dict[str, list[str]] = {}
        # The first pass's conversions of the top level's answers, with the question each
        # was converted for: the walk takes them instead of converting the value again.
        self.converted: dict[str, tuple[Mapping[str, Any], Any]] = {}
        self.relevant: set[str] = set()

    def text(self, texts: Mapping[str, str] | None) -> str:
        return pick_translation(dict(texts or {}), self.language)

    def fail(self, key: str, message: str) -> None:
        self.errors.setdefault(key, []).append(message)


# A compiled node: (run, raw answers of its level, working copy, stored, relevant, prefix).
Step = Callable[[_Run, Mapping[str, Any], dict[str, Any], dict[str, Any], bool, str], None]


def _condition(ast: Any) -> Callable[[dict[str, Any], Any, dt.date | None], bool] | None:
    """A compiled boolean expression ``(working, current, today)``, None for a blank one."""
    if ast is None:
        return None
    run = compile_evaluator(ast)
    return lambda working, current, today: to_boolean(run(working, current, today, None))


def _compile_level(nodes: Sequence[Any], definition: Mapping[str, Any]) -> list[Step]:
    return [_compile_node(node, definition) for node in nodes]


def _compile_node(node: Mapping[str, Any], definition: Mapping[str, Any]) -> Step:
    """A node is relevant when its own ``relevant`` and those of every enclosing group are
    true (a group hands its relevance to the walk of its children)."""
    own = _condition(node.get("relevant"))
    part = formtree.role(node)
    if part == formtree.GROUP:
        steps = _compile_level(formtree.children(node), definition)
        if own is None:

            def plain_group(run, raw, working, stored, relevant, prefix):  # type: ignore[no-untyped-def]
                for step in steps:
                    step(run, raw, working, stored, relevant, prefix)

            return plain_group

        def group(run, raw, working, stored, relevant, prefix):  # type: ignore[no-untyped-def]
            here = relevant and own(working, None, run.today)
            for step in steps:
                step(run, raw, working, stored, here, prefix)

        return group
    inner = _compile_repeat(node, definition) if part == formtree.REPEAT else None
    inner = inner or _compile_question(node, definition)
    if own is None:  # no condition of its own: the question's step itself
        return inner

    def visit(run, raw, working, stored, relevant, prefix):  # type: ignore[no-untyped-def]
        here = relevant and own(working, None, run.today)
        inner(run, raw, working, stored, here, prefix)

    return visit


def _compile_question(node: Mapping[str, Any], definition: Mapping[str, Any]) -> Step:
    name, kind = node["name"], node["type"]
    if kind == "note":

        def note(run, raw, working, stored, relevant, prefix):  # type: ignore[no-untyped-def]
            working.pop(name, None)

        return note
    skipped_code = kind == "select_one" and _all_integer_codes(
        definition, node.get("list_name", "")
    )
    if kind == "calculate":
        ast = node.get("calculation")
        calculation = compile_evaluator(ast)
        keeps = keeps_its_value(ast)
        draws_random = "random" in functions(ast)
        assigns = (node.get("design") or {}).get("role") == "assign"

        def calculate(run, raw, working, stored, relevant, prefix):  # type: ignore[no-untyped-def]
            if not relevant:
                working.pop(name, None)
                return
            key = prefix + name
            run.relevant.add(key)
            current = recorded_value(raw.get(name)) if keeps else None
            draws = (
                instance_draws(run.instance_id, key, run.halves.get(key))
                if draws_random and run.instance_id is not None
                else None
            )
            result = stored_calculation(calculation(working, current, run.today, None, draws))
            if assigns and result not in (0, 1):
                run.fail(
                    key, gettext("The random assignment must be 0 (control) or 1 (treatment).")
                )
                return
            if result is None:
                working.pop(name, None)
            else:
                working[name] = result
                stored[name] = result

        return calculate
    required = node.get("required")
    required_if = _condition(required) if isinstance(required, list) else None
    always_required = bool(required) and not isinstance(required, list)
    to_stored = converter(node, definition)
    allowed = _choice_check(node, definition)
    constraint = _condition(node.get("constraint"))

    def question(run, raw, working, stored, relevant, prefix):  # type: ignore[no-untyped-def]
        if not relevant:
            working.pop(name, None)
            if skipped_code:
                stored[name] = NOT_APPLICABLE
            return
        key = prefix + name
        run.relevant.add(key)
        value = raw.get(name)
        if _blank(value):
            working.pop(name, None)
            if always_required or (required_if is not None and required_if(working, "", run.today)):
                run.fail(
                    key,
                    run.text(node.get("required_message"))
                    or gettext("This question requires an answer."),
                )
            return
        known = run.converted.get(name) if not prefix else None
        if known is not None and known[0] is node:
            clean = known[1]
        else:
            try:
                clean = to_stored(value)
            except _Invalid as invalid:
                working.pop(name, None)
                run.fail(key, invalid.message)
                return
        if allowed is not None:
            codes = clean if isinstance(clean, list) else [str(clean)]
            if not all(allowed(code, working, run.today) for code in codes):
                working.pop(name, None)
                run.fail(key, gettext("Choose one of the options offered."))
                return
        working[name] = clean
        if constraint is not None and not constraint(working, clean, run.today):
            run.fail(
                key,
                run.text(node.get("constraint_message"))
                or gettext("This answer is not accepted; please check it."),
            )
            return
        stored[name] = clean

    return question


def _choice_check(
    node: Mapping[str, Any], definition: Mapping[str, Any]
) -> Callable[[str, dict[str, Any], dt.date | None], bool] | None:
    """For a select with a ``choice_filter``: whether a chosen code passes it (the filter
    sees the choice's row: its name and its extra columns)."""
    if node["type"] not in {"select_one", "select_multiple"} or not node.get("choice_filter"):
        return None
    run = compile_evaluator(node["choice_filter"])
    rows: dict[str, dict[str, Any]] = {}
    for choice in definition["choices"].get(node.get("list_name"), []):
        rows.setdefault(choice["name"], {"name": choice["name"], **choice.get("columns", {})})

    def allowed(code: str, working: dict[str, Any], today: dt.date | None) -> bool:
        row = rows.get(code)
        return row is not None and to_boolean(run(working, None, today, row))

    return allowed


def _compile_repeat(node: Mapping[str, Any], definition: Mapping[str, Any]) -> Step:
    """Repeats: a list of entries, each validated on its own (``${name}`` inside an entry is
    the sibling in the same entry); the count is checked against ``repeat_count``."""
    name = node["name"]
    count = (
        compile_evaluator(node["repeat_count"]) if node.get("repeat_count") is not None else None
    )
    children = formtree.children(node)
    names = _child_names(children)
    steps = _compile_level(children, definition)

    def repeat(run, raw, working, stored, relevant, prefix):  # type: ignore[no-untyped-def]
        key = prefix + name
        instances = raw.get(name)
        working.pop(name, None)
        if not relevant:
            return
        if instances is None:
            instances = []
        if not isinstance(instances, list) or not all(isinstance(i, Mapping) for i in instances):
            run.fail(key, gettext("The answers to this section could not be read."))
            return
        if len(instances) > MAX_REPEAT_INSTANCES:
            run.fail(key, gettext("Too many entries in this section."))
            return
        if count is not None:
            wanted = to_number(count(working, None, run.today, None))
            wanted_count = (int(wanted) if wanted > 0 else 0) if math.isfinite(wanted) else 0
            if len(instances) != wanted_count:
                run.fail(
                    key,
                    gettext("This section needs %(count)d entries.") % {"count": wanted_count},
                )
                return
        rows = []
        for index, instance in enumerate(instances, start=1):
            inner_prefix = f"{key}[{index}]."
            for unknown in sorted(set(instance) - names):
                run.fail(inner_prefix + unknown, gettext("This is not a question of the form."))
            inner_working = {**working, **{k: v for k, v in instance.items() if k in names}}
            row: dict[str, Any] = {}
            for step in steps:
                step(run, instance, inner_working, row, True, inner_prefix)
            rows.append(row)
        stored[name] = rows

    return repeat


def repeat_count(
    node: Mapping[str, Any], working: Mapping[str, Any], *, today: Any = None
) -> int | None:
    """The number of entries a repeat's ``repeat_count`` asks for (0 for a count of zero
    or less), or None when the repeat has no count or its expression gives no number."""
    if node.get("repeat_count") is None:
        return None
    wanted = to_number(evaluate(node["repeat_count"], working, today=today))
    if not math.isfinite(wanted):
        return None
    return int(wanted) if wanted > 0 else 0


def _child_names(nodes: Sequence[Mapping[str, Any]]) -> set[str]:
    """Names answerable at this level: its questions and repeats (groups looked through)."""
    return {node["name"] for node in level(nodes)}


class Validator:
    """A questionnaire's validation, compiled once: its expressions as Python functions and
    its choice lists as sets, so checking one more interview walks no tree and parses
    nothing. `validate` gives what `validate_answers` gives, message for message."""

    def __init__(self, definition: Mapping[str, Any]):
        children = formtree.children(definition)
        self.known = _child_names(children)
        self.prepass = [
            (name, node, converter(node, definition))
            for name, node in _questions_by_name(children).items()
        ]
        self.steps = _compile_level(children, definition)

    def validate(
        self,
        answers: Any,
        *,
        language: str,
        today: dt.date | None = None,
        instance_id: str | None = None,
        halves: Mapping[str, int] | None = None,
    ) -> CleanAnswers:
        interface = interface_language(language)
        # A batch validates in the language already active: no switch to make.
        switch = (
            contextlib.nullcontext()
            if translation.get_language() == interface
            else translation.override(interface)
        )
        with switch:
            return self.validate_in_active_language(
                answers, language=language, today=today, instance_id=instance_id, halves=halves
            )

    def validate_in_active_language(
        self,
        answers: Any,
        *,
        language: str,
        today: dt.date | None = None,
        instance_id: str | None = None,
        halves: Mapping[str, int] | None = None,
    ) -> CleanAnswers:
        """`validate` for a caller that has made ``language``'s interface language the
        active one (a batch checks interview after interview in one language)."""
        if not isinstance(answers, Mapping):
            raise AnswerErrors({FORM_ERRORS: [gettext("The answers could not be read.")]})
        run = _Run(language, today, instance_id, halves)
        if not answers.keys() <= self.known:
            for unknown in sorted(set(answers) - self.known, key=str):
                run.fail(str(unknown), gettext("This is not a question of the form."))
        stored = self._walk(run, answers)
        if run.errors:
            raise AnswerErrors(run.errors)
        return CleanAnswers(answers=stored, relevant=run.relevant)

    def _walk(self, run: _Run, answers: Mapping[str, Any]) -> dict[str, Any]:
        # The walk starts from the answers as converted (numbers, not text);
        # calculations and notes start blank, whatever the client sent for them.
        working: dict[str, Any] = {}
        for node_name, node, to_stored in self.prepass:
            value = answers.get(node_name)
            if not _blank(value):
                with contextlib.suppress(_Invalid):
                    working[node_name] = clean = to_stored(value)
                    run.converted[node_name] = (node, clean)
        stored: dict[str, Any] = {}
        for step in self.steps:
            step(run, answers, working, stored, True, "")
        return stored


def validate_answers(
    definition: Mapping[str, Any],
    answers: Any,
    *,
    language: str,
    today: dt.date | None = None,
    instance_id: str | None = None,
    halves: Mapping[str, int] | None = None,
) -> CleanAnswers:
    """Check an interview's answers against the compiled form; return what to store.

    A ``once()`` calculation the client did not record (an API client) is drawn here; with
    ``instance_id`` its ``random()`` comes from a hash of the instance id and the question's
    name, so a resend of the same interview draws the same value. ``halves`` gives, by
    name, the server's balanced slots of the interview (`surveys.assignment`), which
    place the first draw of those rows.

    Raises AnswerErrors with every problem found, messages in ``language`` (the form's
    ``constraint_message`` / ``required_message`` when it has them). A caller checking many
    interviews of one version keeps its validator
    (`surveys.validation_source.validator_for`).
    """
    return Validator(definition).validate(
        answers, language=language, today=today, instance_id=instance_id, halves=halves
    )


def _questions_by_name(nodes: Sequence[Mapping[str, Any]]) -> dict[str, Mapping[str, Any]]:
    """The questions of this level that take an answer (no notes, no calculations)."""
    return {
        node["name"]: node
        for node in level_questions(nodes)
        if node["type"] not in {"note", "calculate"}
    }
