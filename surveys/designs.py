"""Indirect questioning designs declared in an XLSForm: list experiments, randomized response
and the crosswise model.

A design is a few standard XLSForm rows, which every channel (the web form, the tablet app,
ODK Collect through pyxform's XForm) runs as it runs any form, plus one column of our own,
``tanys_design``, that says what each row is for. A cell holds ``design:role`` and, after
spaces, the role's parameters ``key=value`` (or a bare flag):

==================================  ==========  =============================================
cell                                row type    meaning
==================================  ==========  =============================================
``list:assign`` [``balanced``]      calculate   the random arm, ``once()`` of ``random()``:
                                                0 control, 1 treatment
``list:control items=J``            integer     the count of the control group, J items
``list:treatment``                  integer     the count of the treatment group, J + 1 items
``rr:answer p=P q=Q``               select_one  forced response: truthful with probability P,
                                                "yes" regardless with probability Q; codes
                                                1 yes, 2 no
``crosswise:answer r=R``            select_one  crosswise: 1 the same answers, 2 different;
                                                R the known prevalence of the unrelated item
==================================  ==========  =============================================

The control and treatment counts are tied to their ``list:assign`` row by their relevance
(their own or an enclosing group's) referring to it, so a form may hold several list
experiments. ``balanced`` asks for arms of equal size: the web form takes the server's draw
from permuted blocks per wave and row (`surveys.assignment`), the tablet app stratifies in
blocks of two per device (see ``form.js``), ODK Collect draws plainly.

:func:`read_designs` checks the declarations and returns, for the definition, the designs
(``definition["designs"]``) and each row's role (``node["design"]``), or the problems found,
each naming the sheet, row and column.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from django.utils.translation import gettext

from surveys.expression_syntax import functions, references
from surveys.formtree import children

COLUMN = "tanys_design"
ROLES: dict[str, dict[str, str]] = {
    # design: {role: the question type it needs}
    "list": {"assign": "calculate", "control": "integer", "treatment": "integer"},
    "rr": {"answer": "select_one"},
    "crosswise": {"answer": "select_one"},
}
PARAMETERS: dict[tuple[str, str], dict[str, bool]] = {
    # (design, role): {parameter: required}
    ("list", "assign"): {"balanced": False},
    ("list", "control"): {"items": True},
    ("list", "treatment"): {},
    ("rr", "answer"): {"p": True, "q": True},
    ("crosswise", "answer"): {"r": True},
}
YES_NO_CODES = {"1", "2"}


@dataclass(frozen=True)
class DesignProblem:
    row: int | None
    message: str


@dataclass(frozen=True)
class _Declared:
    name: str
    row: int
    design: str
    role: str
    parameters: dict[str, Any]


def read_designs(
    survey_rows: list[Mapping[str, Any]],
    tree: list[dict[str, Any]],
    choices: Mapping[str, Sequence[Mapping[str, Any]]],
) -> tuple[list[dict[str, Any]], list[DesignProblem]]:
    """The designs the ``tanys_design`` column declares, each role written into its node."""
    problems: list[DesignProblem] = []
    declared: list[_Declared] = []
    for index, cells in enumerate(survey_rows):
        text = str(cells.get(COLUMN) or "").strip()
        if not text:
            continue
        row = index + 2
        parsed = _parse(text, row, problems)
        if parsed is not None:
            design, role, parameters = parsed
            declared.append(
                _Declared(str(cells.get("name", "")).strip(), row, design, role, parameters)
            )
    if not declared:
        return [], problems

    nodes = {node["name"]: (node, relevance) for node, relevance in _walk(tree, [])}
    checked: list[tuple[_Declared, dict[str, Any], list]] = []
    for item in declared:
        found = nodes.get(item.name)
        if found is None:
            problems.append(
                DesignProblem(item.row, gettext("a design role needs a question with a name."))
            )
            continue
        node, relevance = found
        wanted = ROLES[item.design][item.role]
        if node["type"] != wanted:
            problems.append(
                DesignProblem(
                    item.row,
                    gettext("'%(cell)s' belongs on a question of type %(wanted)s, not %(found)s.")
                    % {
                        "cell": f"{item.design}:{item.role}",
                        "wanted": wanted,
                        "found": node["type"],
                    },
                )
            )
            continue
        if not _fits(item, node, choices, problems):
            continue
        checked.append((item, node, relevance))

    designs = _link(checked, problems)
    if problems:
        return [], problems
    for item, node, _ in checked:
        node["design"] = {"design": item.design, "role": item.role, **item.parameters}
    return designs, problems


def _parse(
    text: str, row: int, problems: list[DesignProblem]
) -> tuple[str, str, dict[str, Any]] | None:
    head, *rest = text.split()
    design, _, role = head.partition(":")
    design, role = design.strip().lower(), role.strip().lower()
    if design not in ROLES:
        problems.append(
            DesignProblem(
                row,
                gettext("unknown design '%(design)s'; use one of %(known)s.")
                % {"design": design, "known": ", ".join(ROLES)},
            )
        )
        return None
    if role not in ROLES[design]:
        problems.append(
            DesignProblem(
                row,
                gettext("the design '%(design)s' has no role '%(role)s'; use one of %(known)s.")
                % {
                    "design": design,
                    "role": role,
                    "known": ", ".join(f"{design}:{r}" for r in ROLES[design]),
                },
            )
        )
        return None
    allowed = PARAMETERS[(design, role)]
    parameters: dict[str, Any] = {}
    failed = False
    for word in rest:
        key, sep, raw = word.partition("=")
        key = key.strip().lower()
        if key not in allowed:
            problems.append(
                DesignProblem(
                    row,
                    gettext("'%(cell)s' takes no parameter '%(key)s'.")
                    % {"cell": f"{design}:{role}", "key": key},
                )
            )
            failed = True
            continue
        value = _value(design, key, raw.strip() if sep else None)
        if value is None:
            problems.append(DesignProblem(row, _bad_value(key, raw)))
            failed = True
            continue
        parameters[key] = value
    for key, required in allowed.items():
        if required and key not in parameters and not failed:
            problems.append(
                DesignProblem(
                    row,
                    gettext("'%(cell)s' needs the parameter %(key)s=...")
                    % {"cell": f"{design}:{role}", "key": key},
                )
            )
            failed = True
    if design == "rr" and not failed and parameters["p"] + parameters["q"] > 1:
        problems.append(
            DesignProblem(
                row,
                gettext(
                    "p + q is the chance of a truthful or a forced 'yes' answer: it cannot exceed 1."
                ),
            )
        )
        failed = True
    return None if failed else (design, role, parameters)


def _value(design: str, key: str, raw: str | None) -> Any:
    """A parameter's value, or None when it is not a valid one."""
    if key == "balanced":
        return True if raw is None or raw.lower() in {"yes", "true", "1"} else None
    if raw is None:
        return None
    if key == "items":
        return int(raw) if raw.isdigit() and 1 <= int(raw) <= 20 else None
    try:
        number = float(raw)
    except ValueError:
        return None
    if key == "p":
        return number if 0 < number <= 1 else None
    if key == "q":
        return number if 0 <= number < 1 else None
    if key == "r":
        return number if 0 < number < 1 and number != 0.5 else None
    return None


def _bad_value(key: str, raw: str) -> str:
    rules = {
        "items": gettext(
            "items= is the number of non-sensitive items, a whole number from 1 to 20"
        ),
        "p": gettext("p= is the chance of a truthful answer, above 0 and at most 1"),
        "q": gettext("q= is the chance of a forced 'yes', from 0 to below 1"),
        "r": gettext(
            "r= is the known prevalence of the unrelated item, between 0 and 1 and not 0.5"
        ),
        "balanced": gettext("balanced takes no value"),
    }
    return gettext("'%(value)s' is not accepted: %(rule)s.") % {
        "value": f"{key}={raw}",
        "rule": rules[key],
    }


def _fits(
    item: _Declared,
    node: Mapping[str, Any],
    choices: Mapping[str, Sequence[Mapping[str, Any]]],
    problems: list[DesignProblem],
) -> bool:
    if item.role == "assign":
        used = functions(node.get("calculation"))
        if "once" not in used or "random" not in used:
            problems.append(
                DesignProblem(
                    item.row,
                    gettext(
                        "the random assignment must be drawn once and kept: write its calculation "
                        "with once() and random(), e.g. once(int(random() * 2))."
                    ),
                )
            )
            return False
    if item.role == "answer":
        codes = {str(c.get("name", "")).strip() for c in choices.get(node.get("list_name", ""), [])}
        if not codes >= YES_NO_CODES:
            meaning = (
                gettext("1 yes and 2 no")
                if item.design == "rr"
                else gettext("1 the same and 2 different")
            )
            problems.append(
                DesignProblem(
                    item.row,
                    gettext(
                        "the answer of '%(cell)s' needs a choice list with the codes %(codes)s."
                    )
                    % {"cell": f"{item.design}:{item.role}", "codes": meaning},
                )
            )
            return False
    return True


def _link(
    checked: list[tuple[_Declared, dict[str, Any], list]], problems: list[DesignProblem]
) -> list[dict[str, Any]]:
    """The designs, each list experiment's counts tied to the assignment their relevance reads."""
    assigns = {item.name: item for item, _, _ in checked if item.role == "assign"}
    arms: dict[str, dict[str, _Declared]] = {name: {} for name in assigns}
    designs: list[dict[str, Any]] = []
    for item, _, relevance in checked:
        if item.design != "list":
            designs.append({"design": item.design, "answer": item.name, **item.parameters})
            continue
        if item.role == "assign":
            continue
        read = set().union(*(references(ast) for ast in relevance)) & set(assigns)
        if len(read) != 1:
            problems.append(
                DesignProblem(
                    item.row,
                    _messages(item.role)["unlinked"] % {"example": next(iter(assigns), "LE_ARM")},
                )
            )
            continue
        (assign,) = read
        if item.role in arms[assign]:
            problems.append(
                DesignProblem(
                    item.row,
                    _messages(item.role)["twice"]
                    % {"assign": assign, "other": arms[assign][item.role].row},
                )
            )
            continue
        arms[assign][item.role] = item
    for name, item in assigns.items():
        found = arms[name]
        missing = [role for role in ("control", "treatment") if role not in found]
        if missing:
            problems.append(
                DesignProblem(
                    item.row,
                    _messages(missing[0])["missing"] % {"assign": name},
                )
            )
            continue
        designs.append(
            {
                "design": "list",
                "assign": name,
                "control": found["control"].name,
                "treatment": found["treatment"].name,
                "items": found["control"].parameters["items"],
                "balanced": bool(item.parameters.get("balanced")),
            }
        )
    return designs


def _messages(role: str) -> dict[str, str]:
    """The list experiment's messages about one arm's count (one sentence per arm, so each
    language words it whole)."""
    if role == "control":
        return {
            "unlinked": gettext(
                "the control count must be shown to the control arm only: its relevance, or its "
                "group's, must refer to one list:assign question (e.g. ${%(example)s} = 0)."
            ),
            "twice": gettext(
                "the list experiment of '%(assign)s' already has a control count, in row %(other)d."
            ),
            "missing": gettext(
                "the list experiment of '%(assign)s' has no control count (list:control)."
            ),
        }
    return {
        "unlinked": gettext(
            "the treatment count must be shown to the treatment arm only: its relevance, or its "
            "group's, must refer to one list:assign question (e.g. ${%(example)s} = 1)."
        ),
        "twice": gettext(
            "the list experiment of '%(assign)s' already has a treatment count, in row %(other)d."
        ),
        "missing": gettext(
            "the list experiment of '%(assign)s' has no treatment count (list:treatment)."
        ),
    }


def _walk(nodes: list[Any], relevance: list) -> Iterator[tuple[dict[str, Any], list]]:
    """Every node with the relevance expressions of itself and its enclosing groups."""
    for node in nodes:
        here = [*relevance, node["relevant"]] if node.get("relevant") else relevance
        yield node, here
        if node.get("kind") in {"group", "repeat"}:
            yield from _walk(list(children(node)), here)
