"""The one walk over a form's tree: levels, every node, and groups that mean more."""

from __future__ import annotations

from surveys.formtree import Walker, iter_nodes, iter_questions, iter_sections, level, role


def q(name: str, kind: str = "integer") -> dict:
    return {"kind": "question", "type": kind, "name": name}


FORM = {
    "children": [
        q("a"),
        {
            "kind": "group",
            "type": "group",
            "name": "g",
            "children": [
                q("b"),
                {
                    "kind": "repeat",
                    "type": "repeat",
                    "name": "r",
                    "children": [q("c"), {"kind": "group", "type": "group", "name": "h",
                                          "children": [q("d", "calculate")]}],
                },
                q("e", "note"),
            ],
        },
        q("f"),
    ]
}  # fmt: skip


def names(nodes) -> list[str]:
    return [node["name"] for node in nodes]


def test_a_level_looks_through_groups_and_stops_at_repeats():
    assert names(level(FORM["children"])) == ["a", "b", "r", "e", "f"]
    repeat = FORM["children"][1]["children"][1]
    assert names(level(repeat["children"])) == ["c", "d"]


def test_every_node_in_form_order():
    assert names(iter_nodes(FORM)) == ["a", "g", "b", "r", "c", "h", "d", "e", "f"]
    assert names(iter_questions(FORM)) == ["a", "b", "c", "d", "e", "f"]
    assert names(iter_sections(FORM)) == ["g", "r", "h"]
    assert [role(n)[0] for n in iter_nodes(FORM)] == list("qgqrqgqqq")


def test_a_walker_hands_groups_their_meaning():
    seen: list[tuple[str, str]] = []

    class Sections(Walker):
        def group(self, node, section):
            super().group(node, node["name"])

        def repeat(self, node, section):
            seen.append((node["name"], section))
            self.walk(node["children"], f"{section}/{node['name']}")

        def question(self, node, section):
            seen.append((node["name"], section))

    Sections().walk(FORM["children"], "")
    assert seen == [("a", ""), ("b", "g"), ("r", "g"), ("c", "g/r"), ("d", "h"), ("e", "g"),
                    ("f", "")]  # fmt: skip
