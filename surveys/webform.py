"""The respondent web questionnaire at /s/<token>/: what its pages hold (views: `webform_views`).

The page is rendered on the server in one language, with every question in the HTML
(labels bound to inputs), and works as a plain HTML form without JavaScript. With
JavaScript, `surveys/static/surveys/form.js` turns groups into pages, evaluates the
compiled skip logic, constraints and calculations live (`expressions.js`), keeps the
answers in localStorage and sends them as JSON with a client-made instance id, through
the outbox (`outbox.js`: IndexedDB, kept until the server stored them, resent by itself);
the service worker served at /s/sw.js keeps the page for a reload offline. Changing
language reloads the page in the other language; the answers come back from
localStorage, so nothing is lost.

Repeats (rosters): a field inside a repeat is named with its entry, ``household[2].age``
(entries from 1), the key under which `surveys.validation` reports its errors. The
answers hold a repeat as a list of per-entry dicts. Without JavaScript the page shows the
entries posted plus a blank one (or as many as ``repeat_count`` asks for), and "Add
another" posts the page back with one more; with JavaScript, form.js adds and removes
entries by copying the blank entry of the repeat's ``<template>``.

Duplicate policy for public links: a browser keeps one instance id per link until it has
submitted; a retry with that id stores nothing new, and the browser then remembers that
it took part and says so when the link is opened again (with a button for another person
on a shared device). A public link cannot stop one person answering from two browsers;
use single-use invitations when that matters.

Privacy: nothing here records the respondent's IP address or the full user-agent string,
only a coarse device class (phone, tablet, desktop).
"""

from __future__ import annotations

import contextlib
import re
from dataclasses import dataclass, field
from typing import Any

from django.http import QueryDict
from django.utils.translation import gettext

from surveys import formtree
from surveys.definition import (
    INPUT_TYPES,
    stored_choice_value,
)
from surveys.expression_syntax import references
from surveys.expressions import evaluate, keeps_its_value, to_boolean
from surveys.formtree import GROUP, REPEAT, role
from surveys.models import pick_translation
from surveys.validation import (
    FORM_ERRORS,
    MAX_REPEAT_INSTANCES,
    TEXT_MAX_LENGTH,
    convert,
    instance_draws,
    recorded_value,
    repeat_count,
    stored_calculation,
)

LANGUAGE_NAMES = {"kk": "Қазақша", "ru": "Русский", "en": "English"}
REFUSAL_STATUS = {
    "wave_closed": 410,
    "link_used": 410,
    "link_revoked": 410,
    "instance_conflict": 409,
    "too_large": 413,
}


def user_agent_class(user_agent: str) -> str:
    """'phone', 'tablet' or 'desktop' from a User-Agent header; '' when there is none."""
    ua = user_agent.lower()
    if not ua:
        return ""
    if "ipad" in ua or "tablet" in ua or ("android" in ua and "mobile" not in ua):
        return "tablet"
    if "mobi" in ua or "iphone" in ua or "android" in ua:
        return "phone"
    return "desktop"


# --------------------------------------------------------------------------- pages


@dataclass
class Item:
    """A question or note as the template renders it.

    ``name`` is the answer's key: the question's name, or inside a repeat its path with
    the entry number, ``household[2].age``, as the server reports errors and as the plain
    HTML form names its fields.
    """

    name: str
    type: str
    label: str
    hint: str
    required: bool
    choices: list[tuple[str, str]] = field(default_factory=list)
    appearance: str = ""
    value: Any = None
    errors: list[str] = field(default_factory=list)

    is_repeat = False

    @property
    def input_id(self) -> str:
        return f"f-{self.name}"

    @property
    def selected(self) -> list[str]:
        if self.value is None:
            return []
        return [str(v) for v in self.value] if isinstance(self.value, list) else [str(self.value)]


@dataclass
class Entry:
    """One instance of a repeat: its number (from 1) and its questions and inner repeats."""

    number: int
    items: list[Item | Repeat]


@dataclass
class Repeat:
    """A repeat section: its entries, and whether their number comes from ``repeat_count``.

    ``path`` names the repeat in the form without entry numbers (``trees.stems``); it ties
    a section to the blank entry form.js copies when it adds one.
    """

    name: str
    path: str
    label: str
    hint: str
    counted: bool
    entries: list[Entry]
    errors: list[str] = field(default_factory=list)

    is_repeat = True


@dataclass
class EntryTemplate:
    """A blank entry of a repeat, numbered 0, for form.js to copy and renumber."""

    path: str
    key: str
    counted: bool
    entry: Entry


@dataclass
class Page:
    number: int
    title: str
    section: str
    items: list[Item | Repeat]


# The entry number of the blank entries form.js copies; real entries count from 1.
TEMPLATE_ENTRY = 0


def closing_notes(definition: dict[str, Any]) -> list[dict[str, Any]]:
    """The notes after the form's last question: its closing words ("Thank you for taking
    part"), shown on the thank-you page once the server has stored the interview, never
    on the last page before sending, where they would tell a respondent that they are done.

    Calculations (invisible) do not end the run of notes; a repeat does. A closing note
    with a relevance condition stays in the form: the thank-you page has no answers to
    evaluate it with.
    """
    leaves: list[dict[str, Any]] = []

    def visit(nodes: list[dict[str, Any]]) -> None:
        for node in nodes:
            if node["kind"] == "group":
                visit(node.get("children", []))
            elif node["kind"] == "repeat" or node["type"] != "calculate":
                leaves.append(node)

    visit(definition.get("children", []))
    trailing: list[dict[str, Any]] = []
    for node in reversed(leaves):
        if node["kind"] != "question" or node["type"] != "note":
            break
        trailing.append(node)
    return [node for node in reversed(trailing) if node.get("relevant") in (None, True)]


def build_pages(
    definition: dict[str, Any],
    language: str,
    values: dict[str, Any] | None = None,
    errors: dict[str, list[str]] | None = None,
    instance_id: str | None = None,
    halves: dict[str, int] | None = None,
) -> list[Page]:
    """The form as pages: a field-list group is one page, any other question its own page.

    With ``instance_id`` the random assignments (``once()`` calculations) are drawn for that
    interview as the server draws them, and a group or question whose relevance depends on
    the assignments alone is left out when it is not relevant: a respondent of one arm of a
    list experiment never receives the other arm's items, with or without JavaScript.
    ``halves`` are the interview's balanced slots (`surveys.assignment.draw_balanced`).

    Without field-list groups and without ``style=pages`` the whole form is one page.
    Groups that are not field lists give their label to their pages as a section title.
    A repeat outside a field-list group is a page of its own, with all its entries.

    A repeat shows the entries in ``values`` plus one blank entry, or, when it has a
    ``repeat_count`` that the values give, that many entries.
    """
    return _PageBuilder(
        definition, language, values or {}, errors or {}, instance_id=instance_id, halves=halves
    ).pages()


def assigned_values(
    definition: dict[str, Any], instance_id: str, halves: dict[str, int] | None = None
) -> dict[str, Any]:
    """The top-level random assignments (``once()`` calculations) drawn for an interview."""
    children = list(formtree.children(definition))
    working = entry_working(children, {}, {}, definition, instance_id, halves)
    return {name: working[name] for name in _assignments(definition) if name in working}


def _assignments(definition: dict[str, Any]) -> set[str]:
    return {
        node["name"]
        for node in formtree.level_questions(list(formtree.children(definition)))
        if node["type"] == "calculate" and keeps_its_value(node.get("calculation"))
    }


def entry_templates(definition: dict[str, Any], language: str) -> list[EntryTemplate]:
    """A blank entry for every repeat of the form, nested repeats included."""
    builder = _PageBuilder(definition, language, {}, {}, blank_entries=0)
    found: list[EntryTemplate] = []

    def visit(nodes: list[dict[str, Any]], path: str, prefix: str) -> None:
        for node in formtree.level(nodes):
            if role(node) == REPEAT:
                key = prefix + node["name"]
                inner = f"{key}[{TEMPLATE_ENTRY}]."
                node_path = path + node["name"]
                children = list(formtree.children(node))
                entry = Entry(
                    TEMPLATE_ENTRY, builder.visible(children, {}, {}, inner, node_path + ".")
                )
                counted = node.get("repeat_count") is not None
                found.append(EntryTemplate(node_path, key, counted, entry))
                visit(children, node_path + ".", inner)

    visit(list(formtree.children(definition)), "", "")
    return found


class _PageBuilder:
    def __init__(
        self,
        definition: dict[str, Any],
        language: str,
        values: dict[str, Any],
        errors: dict[str, list[str]],
        *,
        blank_entries: int = 1,
        instance_id: str | None = None,
        halves: dict[str, int] | None = None,
    ):
        self.blank_entries = blank_entries
        self.instance_id = instance_id
        self.halves = halves
        self.hidden: set[int] = set()
        self.definition = definition
        self.language = language
        self.values = values
        self.errors = errors
        self.closing = {id(node) for node in closing_notes(definition)}

    def text(self, texts: dict[str, str] | None) -> str:
        return pick_translation(texts, self.language)

    def item(self, node: dict[str, Any], scope: dict[str, Any], prefix: str) -> Item:
        key = prefix + node["name"]
        choices = [
            (c["name"], self.text(c["label"]) or c["name"])
            for c in self.definition["choices"].get(node.get("list_name") or "", [])
        ]
        return Item(
            name=key,
            type=node["type"],
            label=self.text(node.get("label")),
            hint=self.text(node.get("hint")),
            required=node.get("required") is True,
            choices=choices,
            appearance=node.get("appearance", ""),
            value=scope.get(node["name"]),
            errors=self.errors.get(key, []),
        )

    def repeat(
        self,
        node: dict[str, Any],
        scope: dict[str, Any],
        working: dict[str, Any],
        prefix: str,
        path: str,
    ) -> Repeat:
        key = prefix + node["name"]
        rows = scope.get(node["name"])
        rows = [r for r in rows if isinstance(r, dict)] if isinstance(rows, list) else []
        count = entries_wanted(node, working)
        if count is None:
            count = len(rows)
            if node.get("repeat_count") is None:
                count += self.blank_entries
        children = list(formtree.children(node))
        entries = []
        for number in range(1, min(count, MAX_REPEAT_INSTANCES) + 1):
            row = rows[number - 1] if number <= len(rows) else {}
            entries.append(
                Entry(
                    number,
                    self.visible(
                        children,
                        row,
                        entry_working(children, row, working, self.definition),
                        f"{key}[{number}].",
                        f"{path}{node['name']}.",
                    ),
                )
            )
        return Repeat(
            name=key,
            path=path + node["name"],
            label=self.text(node.get("label")),
            hint=self.text(node.get("hint")),
            counted=node.get("repeat_count") is not None,
            entries=entries,
            errors=self.errors.get(key, []),
        )

    def visible(
        self,
        nodes: list[dict[str, Any]],
        scope: dict[str, Any],
        working: dict[str, Any],
        prefix: str = "",
        path: str = "",
    ) -> list[Item | Repeat]:
        found: list[Item | Repeat] = []
        for node in self._level(nodes):
            if role(node) == REPEAT:
                found.append(self.repeat(node, scope, working, prefix, path))
            elif node["type"] != "calculate" and id(node) not in self.closing:
                found.append(self.item(node, scope, prefix))
        return found

    def _level(self, nodes: list[dict[str, Any]]) -> Any:
        """`formtree.level` without the nodes left out for the drawn assignment."""
        for node in nodes:
            if id(node) in self.hidden:
                continue
            if role(node) == GROUP:
                yield from self._level(list(formtree.children(node)))
            else:
                yield node

    def _hide_other_arms(self, nodes: list[dict[str, Any]], working: dict[str, Any]) -> None:
        """Mark the groups and questions (outside repeats) whose relevance depends only on
        the random assignments and is false for the drawn ones."""
        assigned = _assignments(self.definition)
        for node in nodes:
            ast = node.get("relevant")
            names = references(ast) if isinstance(ast, list) else set()
            if names and names <= assigned and not to_boolean(evaluate(ast, working)):
                self.hidden.add(id(node))
                continue
            if role(node) == GROUP:
                self._hide_other_arms(list(formtree.children(node)), working)

    def pages(self) -> list[Page]:
        children = list(formtree.children(self.definition))
        working = entry_working(
            children, self.values, {}, self.definition, self.instance_id, self.halves
        )
        if self.instance_id:
            self._hide_other_arms(children, working)
        paged = self.definition.get("style") == "pages" or any(
            "field-list" in node.get("appearance", "")
            for node in formtree.iter_sections(self.definition)
        )
        if not paged:
            return [Page(1, "", "", self.visible(children, self.values, working))]
        pages: list[Page] = []

        def collect(nodes: list[dict[str, Any]], section: str) -> None:
            for node in nodes:
                if id(node) in self.hidden:
                    continue
                if role(node) == GROUP and "field-list" in node.get("appearance", ""):
                    items = self.visible([node], self.values, working)
                    if items:  # not a page of closing notes only
                        pages.append(
                            Page(len(pages) + 1, self.text(node.get("label")), section, items)
                        )
                elif role(node) == GROUP:
                    collect(node.get("children", []), self.text(node.get("label")) or section)
                elif role(node) == REPEAT:
                    items = [self.repeat(node, self.values, working, "", "")]
                    pages.append(Page(len(pages) + 1, "", section, items))
                elif node["type"] != "calculate" and id(node) not in self.closing:
                    pages.append(
                        Page(len(pages) + 1, "", section, [self.item(node, self.values, "")])
                    )

        collect(children, "")
        return pages


def entry_working(
    nodes: list[dict[str, Any]],
    row: dict[str, Any],
    outer: dict[str, Any],
    definition: dict[str, Any],
    instance_id: str | None = None,
    halves: dict[str, int] | None = None,
) -> dict[str, Any]:
    """The values expressions see in one entry (or at the top level), for counting entries
    and for the random assignment the page shows.

    The answers given, converted where they can be, over the outer ones, and the
    calculations in form order. A ``once()`` calculation without a recorded value is drawn
    from ``instance_id`` (and, for a balanced one, its slot in ``halves``) as the server's
    validation draws it (`instance_draws`), so the page shows the arm that will be stored.
    Relevance is otherwise left to the server's validation, which has the last word.
    """
    working = dict(outer)
    questions = list(formtree.level_questions(nodes))
    for node in questions:
        value = row.get(node["name"])
        if node["type"] in INPUT_TYPES and not _blank(value):
            # An answer that does not convert is left out, as validation does.
            with contextlib.suppress(Exception):
                working[node["name"]] = convert(node, value, definition)
    for node in questions:
        if node["type"] == "calculate":
            ast = node.get("calculation")
            once = keeps_its_value(ast)
            current = recorded_value(row.get(node["name"])) if once else None
            draws = (
                instance_draws(instance_id, node["name"], (halves or {}).get(node["name"]))
                if once and instance_id
                else None
            )
            result = stored_calculation(evaluate(ast, working, current=current, random=draws))
            if result is None:
                working.pop(node["name"], None)
            else:
                working[node["name"]] = result
    return working


def _blank(value: Any) -> bool:
    return value is None or value == [] or (isinstance(value, str) and not value.strip())


def entries_wanted(node: dict[str, Any], working: dict[str, Any]) -> int | None:
    """How many entries to draw for a counted repeat (at most the number accepted), or
    None when it has no count or the answers give none yet."""
    count = repeat_count(node, working)
    return None if count is None else min(count, MAX_REPEAT_INSTANCES)


def client_logic(definition: dict[str, Any], language: str) -> dict[str, Any]:
    """What form.js needs to walk the form as `surveys.validation` does, in one language."""

    def text(texts: dict[str, str] | None) -> str:
        return pick_translation(texts, language)

    def node(n: dict[str, Any]) -> dict[str, Any]:
        # The node's role, as form.js walks it: g(roup), r(epeat) or q(uestion).
        out: dict[str, Any] = {"k": role(n)[0], "n": n["name"], "t": n["type"]}
        for key, short in (
            ("relevant", "r"),
            ("required", "q"),
            ("constraint", "c"),
            ("calculation", "x"),
            ("choice_filter", "f"),
            ("repeat_count", "rc"),
        ):
            if n.get(key) not in (None, False):
                out[short] = n[key]
        if n.get("list_name"):
            out["l"] = n["list_name"]
        if n["type"] == "calculate" and keeps_its_value(n.get("calculation")):
            # A once() calculation is drawn on the device and kept in the draft: "o", and
            # "b" when its draws are balanced. The web form starts from the server's draw
            # (permuted blocks per wave, `surveys.assignment`); the tablet app, which has
            # no server draw, stratifies in blocks of two per device.
            out["o"] = 1
            if (n.get("design") or {}).get("balanced"):
                out["b"] = 1
        if text(n.get("constraint_message")):
            out["cm"] = text(n.get("constraint_message"))
        if text(n.get("required_message")):
            out["rm"] = text(n.get("required_message"))
        if formtree.children(n):
            out["ch"] = [node(c) for c in formtree.children(n)]
        return out

    filtered = {
        n.get("list_name") for n in formtree.iter_nodes(definition) if n.get("choice_filter")
    }
    return {
        "nodes": [node(n) for n in formtree.children(definition)],
        "lists": {
            name: [{"name": c["name"], **c.get("columns", {})} for c in choices]
            for name, choices in definition.get("choices", {}).items()
            if name in filtered
        },
        "intCodes": sorted(
            name
            for name, choices in definition.get("choices", {}).items()
            if choices and all(isinstance(stored_choice_value(c["name"]), int) for c in choices)
        ),
    }


def interface_messages() -> dict[str, str]:
    """Interface strings form.js shows, in the active language."""
    return {
        "required": gettext("This question requires an answer."),
        "constraint": gettext("This answer is not accepted; please check it."),
        "integer": gettext("Enter a whole number."),
        "decimal": gettext("Enter a number."),
        "date": gettext("Enter a date as YYYY-MM-DD."),
        "choice": gettext("Choose one of the options offered."),
        "tooLong": gettext("Keep the answer under %(limit)d characters.")
        % {"limit": TEXT_MAX_LENGTH},
        "summary": gettext("Please correct the answers marked below."),
        "page": gettext("Page %(page)s of %(pages)s"),
        "sending": gettext("Sending your answers…"),
        "waitingOnline": gettext(
            "There is no connection now. Sending will start by itself when the device is back online."
        ),
        "retryIn": gettext(
            "Sending did not work this time. The next attempt is in %(seconds)s seconds."
        ),
        "storage": gettext(
            "This browser cannot keep the answers waiting to be sent: please keep this page open until they are sent."
        ),
        "refused": gettext("The answers could not be accepted."),
        "entry": gettext("Entry %(number)s"),
        "removed": gettext(
            "Entries beyond the number given were removed, with the answers they held."
        ),
    }


# --------------------------------------------------------------------------- views


@dataclass
class ErrorLink:
    """One line of the error box: the question (with its entry) and what is wrong."""

    name: str
    label: str
    message: str


def error_links(pages: list[Page], errors: dict[str, list[str]]) -> list[ErrorLink]:
    """Every error of the page in form order, each for a link to its question, as form.js
    lists them; errors of answers the page does not show come last, without a question."""
    found: list[ErrorLink] = []
    seen: set[str] = set()

    def visit(items: list[Item | Repeat], entry: str) -> None:
        for item in items:
            if item.errors:
                seen.add(item.name)
                found.append(ErrorLink(item.name, entry + item.label, " ".join(item.errors)))
            if isinstance(item, Repeat):
                for e in item.entries:
                    label = gettext("Entry %(number)s") % {"number": e.number}
                    visit(e.items, f"{entry}{label}: ")

    for page in pages:
        visit(page.items, "")
    found.extend(
        ErrorLink("", "", " ".join(messages))
        for name, messages in errors.items()
        if name not in seen and name != FORM_ERRORS
    )
    return found


def form_title(definition: dict[str, Any], language: str, fallback: str) -> str:
    """The form's title in the page's language: the settings sheet's ``form_title_<code>``
    column (compiled into ``titles``), else its ``form_title``."""
    return (definition.get("titles") or {}).get(language) or fallback


def posted_answers(post: QueryDict, definition: dict[str, Any]) -> dict[str, Any]:
    """The answers of the plain HTML form, repeats as lists of per-entry dicts.

    Inside a repeat a field is named with its entry, ``household[2].age``. Entries with
    no answer at all are dropped, unless the repeat has a ``repeat_count``: then the
    entries are as many as the count asks for, when the posted answers give it.
    """

    def read(nodes: list[dict[str, Any]], prefix: str, outer: dict[str, Any]) -> dict[str, Any]:
        found: dict[str, Any] = {}
        repeats: list[dict[str, Any]] = []

        def visit(level: list[dict[str, Any]]) -> None:
            for node in formtree.level(level):
                key = prefix + node["name"]
                if role(node) == REPEAT:
                    repeats.append(node)
                elif node["type"] == "select_multiple":
                    chosen = post.getlist(key)
                    if chosen:
                        found[node["name"]] = chosen
                elif node["type"] in INPUT_TYPES and post.get(key, "") != "":
                    found[node["name"]] = post[key]

        visit(nodes)
        # A repeat's count may depend on any answer of its level, so repeats come last.
        working = entry_working(nodes, found, outer, definition)
        for node in repeats:
            key = prefix + node["name"]
            numbers = [
                int(m[1])
                for name in post
                if (m := re.match(re.escape(key) + r"\[([0-9]{1,4})\]\.", name))
            ]
            last = min(max(numbers, default=0), MAX_REPEAT_INSTANCES)
            children = list(formtree.children(node))
            rows = [read(children, f"{key}[{n}].", working) for n in range(1, last + 1)]
            count = entries_wanted(node, working)
            if node.get("repeat_count") is None:
                rows = [row for row in rows if row]
            elif count is not None:
                rows = rows[:count] + [{} for _ in range(count - len(rows))]
            if rows:
                found[node["name"]] = rows
        return found

    return read(list(formtree.children(definition)), "", {})
