"""Answers as people read them: each question's label and each answer's label, in a language.

Special codes are named in every language ("Don't know", "Refused", "Not applicable",
"Not asked"), never shown as bare numbers; repeats are shown entry by entry.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from django.utils.translation import gettext_lazy as _

from surveys.definition import iter_questions, stored_choice_value
from surveys.models import pick_translation

SPECIAL_CODES = {
    -1: _("Don't know"),
    -2: _("Refused"),
    -3: _("Not applicable"),
    -9: _("Not asked"),
}
NOT_SHOWN = {"note"}


@dataclass(frozen=True)
class AnswerRow:
    name: str
    label: str
    shown: str
    special: bool = False  # the answer is a special code (don't know, refused, ...)


def labelled_answers(
    definition: dict[str, Any], answers: dict[str, Any], language: str | None = None
) -> list[AnswerRow]:
    """One row per stored answer, in form order; a repeat's entries as ``name[i].question``."""
    rows: list[AnswerRow] = []
    questions = {q["name"]: q for q in iter_questions(definition)}
    for name, question in questions.items():
        if name in answers and question["type"] not in NOT_SHOWN:
            rows.append(_row(definition, question, name, answers[name], language))
    for node in _repeats(definition.get("children", [])):
        for index, entry in enumerate(answers.get(node["name"]) or [], start=1):
            for child in iter_questions({"children": node.get("children", [])}):
                if isinstance(entry, dict) and child["name"] in entry:
                    key = f"{node['name']}[{index}].{child['name']}"
                    rows.append(_row(definition, child, key, entry[child["name"]], language))
    return rows


def _repeats(nodes: list[dict[str, Any]]):
    for node in nodes:
        if node["kind"] == "repeat":
            yield node
        elif node["kind"] == "group":
            yield from _repeats(node.get("children", []))


def _row(
    definition: dict[str, Any], question: dict[str, Any], key: str, value: Any, language: str | None
) -> AnswerRow:
    if isinstance(value, list) and value and isinstance(value[0], dict):
        return AnswerRow(key, pick_translation(question.get("label"), language), "…")
    choices = {
        stored_choice_value(c["name"]): pick_translation(c.get("label"), language)
        for c in definition.get("choices", {}).get(question.get("list_name", ""), [])
    }
    values = value if isinstance(value, list) else [value]
    special = all(isinstance(v, int) and v in SPECIAL_CODES for v in values) and bool(values)
    shown = "; ".join(_one(v, choices) for v in values)
    return AnswerRow(key, pick_translation(question.get("label"), language), shown, special)


def _one(value: Any, choices: dict[Any, str]) -> str:
    if isinstance(value, int) and value in SPECIAL_CODES and value not in choices:
        return f"{value} = {SPECIAL_CODES[value]}"
    code = stored_choice_value(str(value))
    if code in choices:
        return f"{value} = {choices[code]}"
    return str(value)
