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
from django.utils.translation import gettext

from surveys import formtree
from surveys.definition import interface_language, stored_choice_value
from surveys.expressions import evaluate, keeps_its_value, to_boolean, to_number, to_string
from surveys.formtree import Walker, level, level_questions
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


class _Invalid(Exception):
    def __init__(self, message: str):
        self.message = message


def _blank(value: Any) -> bool:
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
    kind = node["type"]
    if kind == "integer":
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
            raise _Invalid(gettext("Enter a whole number.")) from None
        if abs(number) >= INTEGER_LIMIT:
            raise _Invalid(gettext("Enter a whole number."))
        return number
    if kind == "decimal":
        try:
            text = _as_number_text(value)
            if not _DECIMAL_TEXT.fullmatch(text):
                raise _Invalid("")
            real = float(text.replace(",", "."))
        except (_Invalid, ValueError):
            raise _Invalid(gettext("Enter a number.")) from None
        if not math.isfinite(real):
            raise _Invalid(gettext("Enter a number."))
        return real
    if kind == "date":
        match = _DATE_TEXT.fullmatch(value.strip()) if isinstance(value, str) else None
        try:
            if match is None:
                raise ValueError
            day = dt.date(int(match[1]), int(match[2]), int(match[3]))
        except ValueError:
            raise _Invalid(gettext("Enter a date as YYYY-MM-DD.")) from None
        return day.isoformat()
    if kind == "select_one":
        if isinstance(value, bool) or not isinstance(value, (str, int)):
            raise _Invalid(gettext("Choose one of the options offered."))
        code = str(value).strip()
        if code not in {c["name"] for c in definition["choices"].get(node.get("list_name"), [])}:
            raise _Invalid(gettext("Choose one of the options offered."))
        return stored_choice_value(code)
    if kind == "select_multiple":
        if isinstance(value, str):
            codes = value.split()
        elif isinstance(value, list) and all(
            isinstance(v, (str, int)) and not isinstance(v, bool) for v in value
        ):
            codes = [str(v).strip() for v in value]
        else:
            raise _Invalid(gettext("Choose from the options offered."))
        known = {c["name"] for c in definition["choices"].get(node.get("list_name"), [])}
        if len(set(codes)) != len(codes) or not set(codes) <= known:
            raise _Invalid(gettext("Choose from the options offered."))
        order = [c["name"] for c in definition["choices"][node["list_name"]]]
        return sorted(codes, key=order.index)
    if kind == "text":
        if isinstance(value, bool) or not isinstance(value, (str, int, float)):
            raise _Invalid(gettext("Enter text."))
        text = str(value).strip()
        if len(text) > TEXT_MAX_LENGTH:
            raise _Invalid(
                gettext("Keep the answer under %(limit)d characters.") % {"limit": TEXT_MAX_LENGTH}
            )
        return text
    raise _Invalid(gettext("This item takes no answer."))


def instance_draws(instance_id: str, name: str) -> Callable[[], float]:
    """Draws from [0, 1) fixed by the interview and the question: the same on every resend."""
    counter = itertools.count()

    def draw() -> float:
        digest = hashlib.sha256(f"{instance_id}:{name}:{next(counter)}".encode()).digest()
        return int.from_bytes(digest[:7], "big") / float(1 << 56)

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


def _choice_allowed(
    node: Mapping[str, Any],
    code: str,
    definition: Mapping[str, Any],
    working: Mapping[str, Any],
    today: dt.date | None,
) -> bool:
    if not node.get("choice_filter"):
        return True
    for choice in definition["choices"].get(node.get("list_name"), []):
        if choice["name"] == code:
            row = {"name": choice["name"], **choice.get("columns", {})}
            return to_boolean(evaluate(node["choice_filter"], working, choice=row, today=today))
    return False


class _Walker(Walker):
    def __init__(
        self,
        definition: Mapping[str, Any],
        language: str,
        today: dt.date | None,
        instance_id: str | None = None,
    ):
        self.definition = definition
        self.language = language
        self.today = today
        self.instance_id = instance_id
        self.errors: dict[str, list[str]] = {}
        self.relevant: set[str] = set()

    def text(self, texts: Mapping[str, str] | None) -> str:
        return pick_translation(dict(texts or {}), self.language)

    def fail(self, key: str, message: str) -> None:
        self.errors.setdefault(key, []).append(message)

    def visit(  # type: ignore[override]
        self,
        node: Mapping[str, Any],
        raw: Mapping[str, Any],
        working: dict[str, Any],
        stored: dict[str, Any],
        relevant: bool,
        prefix: str,
    ) -> None:
        """A node is relevant when its own ``relevant`` and those of every enclosing group
        are true (a group hands its relevance to the walk of its children)."""
        here = relevant and (
            node.get("relevant") is None
            or to_boolean(evaluate(node["relevant"], working, today=self.today))
        )
        super().visit(node, raw, working, stored, here, prefix)

    def question(  # type: ignore[override]
        self,
        node: Mapping[str, Any],
        raw: Mapping[str, Any],
        working: dict[str, Any],
        stored: dict[str, Any],
        relevant: bool,
        prefix: str,
    ) -> None:
        name, kind = node["name"], node["type"]
        key = prefix + name
        if kind == "note":
            working.pop(name, None)
            return
        if not relevant:
            working.pop(name, None)
            if kind == "select_one" and _all_integer_codes(
                self.definition, node.get("list_name", "")
            ):
                stored[name] = NOT_APPLICABLE
            return
        self.relevant.add(key)
        if kind == "calculate":
            ast = node.get("calculation")
            current = recorded_value(raw.get(name)) if keeps_its_value(ast) else None
            draws = None if self.instance_id is None else instance_draws(self.instance_id, key)
            result = stored_calculation(
                evaluate(ast, working, current=current, today=self.today, random=draws)
            )
            design = node.get("design") or {}
            if design.get("role") == "assign" and result not in (0, 1):
                self.fail(
                    key, gettext("The random assignment must be 0 (control) or 1 (treatment).")
                )
                return
            if result is None:
                working.pop(name, None)
            else:
                working[name] = result
                stored[name] = result
            return
        value = raw.get(name)
        if _blank(value):
            working.pop(name, None)
            required = node.get("required")
            is_required = (
                to_boolean(evaluate(required, working, current="", today=self.today))
                if isinstance(required, list)
                else bool(required)
            )
            if is_required:
                self.fail(
                    key,
                    self.text(node.get("required_message"))
                    or gettext("This question requires an answer."),
                )
            return
        try:
            clean = convert(node, value, self.definition)
        except _Invalid as invalid:
            working.pop(name, None)
            self.fail(key, invalid.message)
            return
        if kind in {"select_one", "select_multiple"}:
            codes = clean if isinstance(clean, list) else [str(clean)]
            if not all(
                _choice_allowed(node, c, self.definition, working, self.today) for c in codes
            ):
                working.pop(name, None)
                self.fail(key, gettext("Choose one of the options offered."))
                return
        working[name] = clean
        if node.get("constraint") is not None and not to_boolean(
            evaluate(node["constraint"], working, current=clean, today=self.today)
        ):
            self.fail(
                key,
                self.text(node.get("constraint_message"))
                or gettext("This answer is not accepted; please check it."),
            )
            return
        stored[name] = clean

    def repeat(  # type: ignore[override]
        self,
        node: Mapping[str, Any],
        raw: Mapping[str, Any],
        working: dict[str, Any],
        stored: dict[str, Any],
        relevant: bool,
        prefix: str,
    ) -> None:
        name = node["name"]
        key = prefix + name
        instances = raw.get(name)
        working.pop(name, None)
        if not relevant:
            return
        if instances is None:
            instances = []
        if not isinstance(instances, list) or not all(isinstance(i, Mapping) for i in instances):
            self.fail(key, gettext("The answers to this section could not be read."))
            return
        if len(instances) > MAX_REPEAT_INSTANCES:
            self.fail(key, gettext("Too many entries in this section."))
            return
        if node.get("repeat_count") is not None:
            wanted_count = repeat_count(node, working, today=self.today) or 0
            if len(instances) != wanted_count:
                self.fail(
                    key,
                    gettext("This section needs %(count)d entries.") % {"count": wanted_count},
                )
                return
        children = formtree.children(node)
        names = _child_names(children)
        rows = []
        for index, instance in enumerate(instances, start=1):
            inner_prefix = f"{key}[{index}]."
            for unknown in sorted(set(instance) - names):
                self.fail(inner_prefix + unknown, gettext("This is not a question of the form."))
            inner_working = {**working, **{k: v for k, v in instance.items() if k in names}}
            row: dict[str, Any] = {}
            self.walk(children, instance, inner_working, row, True, inner_prefix)
            rows.append(row)
        stored[name] = rows


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


def validate_answers(
    definition: Mapping[str, Any],
    answers: Any,
    *,
    language: str,
    today: dt.date | None = None,
    instance_id: str | None = None,
) -> CleanAnswers:
    """Check an interview's answers against the compiled form; return what to store.

    A ``once()`` calculation the client did not record (an API client) is drawn here; with
    ``instance_id`` its ``random()`` comes from a hash of the instance id and the question's
    name, so a resend of the same interview draws the same value.

    Raises AnswerErrors with every problem found, messages in ``language`` (the form's
    ``constraint_message`` / ``required_message`` when it has them).
    """
    with translation.override(interface_language(language)):
        if not isinstance(answers, Mapping):
            raise AnswerErrors({FORM_ERRORS: [gettext("The answers could not be read.")]})
        walker = _Walker(definition, language, today, instance_id)
        children = formtree.children(definition)
        known = _child_names(children)
        for unknown in sorted(set(answers) - known, key=str):
            walker.fail(str(unknown), gettext("This is not a question of the form."))
        # The walk starts from the answers as converted (numbers, not text); calculations
        # and notes start blank, whatever the client sent for them.
        working: dict[str, Any] = {}
        for node_name, node in _questions_by_name(children).items():
            if not _blank(answers.get(node_name)):
                with contextlib.suppress(_Invalid):
                    working[node_name] = convert(node, answers[node_name], definition)
        stored: dict[str, Any] = {}
        walker.walk(children, answers, working, stored, True, "")
        if walker.errors:
            raise AnswerErrors(walker.errors)
        return CleanAnswers(answers=stored, relevant=walker.relevant)


def _questions_by_name(nodes: Sequence[Mapping[str, Any]]) -> dict[str, Mapping[str, Any]]:
    """The questions of this level that take an answer (no notes, no calculations)."""
    return {
        node["name"]: node
        for node in level_questions(nodes)
        if node["type"] not in {"note", "calculate"}
    }
