"""The one walk over a compiled form's tree of groups, repeats and questions.

A form (the definition stored on FormVersion, see `surveys.definition`) is a tree whose
inner nodes are groups and repeats and whose leaves are questions. What a walk needs to
know about a node is which of three roles it plays:

* a **group** gathers nodes under a label, a relevance and an appearance; its questions
  are answered at the level where the group sits (the answers hold nothing for a group),
  so walks that collect a level's answers look through it;
* a **repeat** is answered once per entry: the answers hold a list of per-entry dicts
  under its name, each entry a level of its own (inside it ``${name}`` is the sibling
  in the same entry), so walks of one level do not enter it;
* a **question** holds one answer under its name (notes and calculations included).

Validation, the web form's pages, entries and posted answers, the client's logic and the
definition helpers all walk through here, so a new kind of node is taught in one place:
`role` below.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from typing import Any

GROUP = "group"
REPEAT = "repeat"
QUESTION = "question"

Node = Mapping[str, Any]


def role(node: Node) -> str:
    """The part a node plays in every walk: ``GROUP``, ``REPEAT`` or ``QUESTION``."""
    kind = node["kind"]
    if kind == "group":
        return GROUP
    if kind == "repeat":
        return REPEAT
    return QUESTION


def children(node: Node) -> Sequence[Any]:
    """The nodes inside a group or repeat (or at the top of a definition)."""
    return node.get("children", [])


def iter_nodes(root: Node) -> Iterator[dict[str, Any]]:
    """Every node under ``root`` (a definition or a node): groups, repeats and questions,
    depth first, in form order."""
    stack = list(reversed(children(root)))
    while stack:
        node = stack.pop()
        yield node
        stack.extend(reversed(children(node)))


def iter_questions(root: Node) -> Iterator[dict[str, Any]]:
    """Every question under ``root``, at every level (inside repeats too), in form order."""
    return (node for node in iter_nodes(root) if role(node) == QUESTION)


def iter_sections(root: Node) -> Iterator[dict[str, Any]]:
    """Every group and repeat under ``root``, at every level, in form order."""
    return (node for node in iter_nodes(root) if role(node) != QUESTION)


def level(nodes: Sequence[Any]) -> Iterator[dict[str, Any]]:
    """The questions and repeats answered at one level, in form order: groups are looked
    through, repeats are not entered (their entries are levels of their own)."""
    for node in nodes:
        if role(node) == GROUP:
            yield from level(children(node))
        else:
            yield node


def level_questions(nodes: Sequence[Any]) -> Iterator[dict[str, Any]]:
    """The questions answered at one level (see `level`)."""
    return (node for node in level(nodes) if role(node) == QUESTION)


class Walker:
    """A walk of one level that keeps what groups mean: each node in form order goes to
    `group`, `repeat` or `question` by its `role`, with the walk's arguments.

    `group` walks the group's children with the same arguments; a walk for which a group
    means more (a relevance that its questions inherit, a page) overrides it. `repeat`
    and `question` do nothing unless overridden.
    """

    def walk(self, nodes: Sequence[Any], *args: Any) -> None:
        for node in nodes:
            self.visit(node, *args)

    def visit(self, node: Any, *args: Any) -> None:
        part = role(node)
        if part == GROUP:
            self.group(node, *args)
        elif part == REPEAT:
            self.repeat(node, *args)
        else:
            self.question(node, *args)

    def group(self, node: Any, *args: Any) -> None:
        self.walk(children(node), *args)

    def repeat(self, node: Any, *args: Any) -> None:
        pass

    def question(self, node: Any, *args: Any) -> None:
        pass
