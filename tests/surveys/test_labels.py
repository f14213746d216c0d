"""Answers as people read them: labels in a language, special codes named."""

from __future__ import annotations

from django.utils import translation

from surveys.labels import labelled_answers

DEFINITION = {
    "children": [
        {"kind": "question", "type": "note", "name": "INTRO", "label": {"en": "Hello"}},
        {
            "kind": "question",
            "type": "select_one",
            "name": "E1",
            "list_name": "yesno",
            "label": {"kk": "Пара бердіңіз бе?", "en": "Did you pay a bribe?"},
        },
        {
            "kind": "question",
            "type": "select_one",
            "name": "B_KG",
            "list_name": "yesno",
            "label": {"en": "Kindergarten: paid?"},
        },
        {
            "kind": "repeat",
            "type": "repeat",
            "name": "hh",
            "children": [
                {"kind": "question", "type": "integer", "name": "age", "label": {"en": "Age"}}
            ],
        },
    ],
    "choices": {
        "yesno": [
            {"name": "1", "label": {"kk": "Иә", "en": "Yes"}},
            {"name": "2", "label": {"en": "No"}},
        ]
    },
}


def test_codes_show_their_labels_and_skips_their_special_code_name():
    with translation.override("en"):
        rows = labelled_answers(
            DEFINITION, {"E1": 1, "B_KG": -3, "hh": [{"age": 40}, {"age": 7}]}, "en"
        )
        assert [(r.name, r.label, r.shown, r.special) for r in rows] == [
            ("E1", "Did you pay a bribe?", "1 = Yes", False),
            ("B_KG", "Kindergarten: paid?", "-3 = Not applicable", True),
            ("hh[1].age", "Age", "40", False),
            ("hh[2].age", "Age", "7", False),
        ]


def test_labels_follow_the_language():
    with translation.override("kk"):
        (row,) = labelled_answers(DEFINITION, {"E1": 1}, "kk")
    assert (row.label, row.shown) == ("Пара бердіңіз бе?", "1 = Иә")
