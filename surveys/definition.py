"""Reading a compiled questionnaire definition (the JSON stored on FormVersion).

Shape, produced by `surveys.xlsform.compile_xlsform`:
    {"form_id", "title", "version", "languages": ["kk", "ru", "en"], "language_names": {...},
     "default_language": "kk", "children": [node, ...], "choices": {list_name: [choice, ...]}}
    node   = {"kind": "question" | "group" | "repeat", "type", "name", "label": {lang: text},
              "hint", "required", "required_message", "constraint", "constraint_message",
              "relevant", "calculation", "choice_filter", "repeat_count", "default",
              "appearance", "read_only", "list_name", "children"}
    choice = {"name", "label": {lang: text}, "columns": {extra column: value}}
Expressions are stored compiled (see `surveys.expressions`); texts are dicts keyed by
language code. Walks over the tree of nodes go through `surveys.formtree`.
"""

from __future__ import annotations

from surveys.formtree import iter_nodes, iter_questions

__all__ = [
    "INPUT_TYPES",
    "INTERFACE_LANGUAGES",
    "VALUE_TYPES",
    "interface_language",
    "iter_nodes",
    "iter_questions",
    "stored_choice_value",
]

# Question types that hold an answer the respondent gives.
INPUT_TYPES = {"integer", "decimal", "text", "select_one", "select_multiple", "date"}
# Types that hold a value without being asked.
VALUE_TYPES = INPUT_TYPES | {"calculate"}


INTERFACE_LANGUAGES = ("kk", "ru", "en")


def interface_language(language: str) -> str:
    """The interface language around a form shown in `language`.

    Interface strings exist in Kazakh, Russian and English. A form in another language
    (a Swahili field form, say) is shown in its own language with an English interface; an
    untranslated form ("default") with the site's default interface language.
    """
    from django.conf import settings

    if language in INTERFACE_LANGUAGES:
        return language
    return settings.LANGUAGE_CODE if language == "default" else "en"


def stored_choice_value(name: str) -> int | str:
    """Choice names that are integer literals (the question bank's codes) are stored as ints."""
    try:
        return int(name)
    except ValueError:
        return name
