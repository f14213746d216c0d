"""A questionnaire version as people read it: its sections and questions in form order,
each with its type, label in every language, relevance, constraint and choices, instead
of the compiled definition's JSON. The admin's form-version page shows it."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from surveys.expression_syntax import expression_text
from surveys.formtree import GROUP, REPEAT, Walker, children


@dataclass(frozen=True)
class OutlineRow:
    """One group, repeat or question; `depth` counts the sections around it."""

    name: str
    role: str  # "group", "repeat" or "question"
    type: str
    depth: int
    labels: dict[str, str] = field(default_factory=dict)  # by language code
    relevant: str = ""
    constraint: str = ""
    calculation: str = ""
    required: str = ""  # "yes", an expression, or ""
    choices: int | None = None  # how many choices a select question offers
    list_name: str = ""


def _required(value: Any) -> str:
    if value is True:
        return "yes"
    if isinstance(value, list):
        return expression_text(value)
    return ""


class _Outline(Walker):
    def __init__(self, definition: dict[str, Any]) -> None:
        self.choices = definition.get("choices", {})
        self.rows: list[OutlineRow] = []

    def _row(self, node: dict[str, Any], role: str, depth: int) -> OutlineRow:
        list_name = str(node.get("list_name") or "")
        return OutlineRow(
            name=node["name"],
            role=role,
            type=node.get("type", ""),
            depth=depth,
            labels={code: text for code, text in (node.get("label") or {}).items() if text},
            relevant=expression_text(node.get("relevant")),
            constraint=expression_text(node.get("constraint")),
            calculation=expression_text(node.get("calculation")),
            required=_required(node.get("required")),
            choices=len(self.choices.get(list_name, [])) if list_name else None,
            list_name=list_name,
        )

    def group(self, node: Any, depth: int) -> None:
        self.rows.append(self._row(node, GROUP, depth))
        self.walk(children(node), depth + 1)

    def repeat(self, node: Any, depth: int) -> None:
        self.rows.append(self._row(node, REPEAT, depth))
        self.walk(children(node), depth + 1)

    def question(self, node: Any, depth: int) -> None:
        self.rows.append(self._row(node, "question", depth))


def form_outline(definition: dict[str, Any]) -> list[OutlineRow]:
    """Every node of the form, in form order, as an `OutlineRow`."""
    walk = _Outline(definition)
    walk.walk(children(definition), 0)
    return walk.rows
