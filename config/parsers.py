"""JSON request bodies read with a nesting limit, for the API and the web form alike.

Python's json module recurses once per level: a body of 50,000 nested brackets raises
RecursionError, and a few hundred levels that do decode still overflow whatever walks them
next. Both readers here refuse a body nested deeper than ``settings.JSON_MAX_DEPTH`` (or that
the decoder cannot follow) as malformed input, which callers answer with a 400.
"""

from __future__ import annotations

import codecs
import json
from typing import Any

from django.conf import settings
from django.utils.translation import gettext
from rest_framework.exceptions import ParseError
from rest_framework.parsers import JSONParser


class JSONTooDeep(ValueError):
    """The JSON text nests arrays and objects deeper than the limit."""


def loads(data: bytes | str, *, max_depth: int | None = None) -> Any:
    """``json.loads`` that raises JSONTooDeep (a ValueError) beyond ``max_depth`` levels."""
    limit = settings.JSON_MAX_DEPTH if max_depth is None else max_depth
    try:
        value = json.loads(data)
    except RecursionError:
        raise JSONTooDeep(f"nested deeper than {limit} levels") from None
    check_depth(value, limit)
    return value


def check_depth(value: Any, limit: int) -> None:
    """Raise JSONTooDeep when lists and dicts nest deeper than ``limit`` (walked without recursion)."""
    stack: list[tuple[Any, int]] = [(value, 1)]
    while stack:
        item, depth = stack.pop()
        if isinstance(item, dict):
            children: Any = item.values()
        elif isinstance(item, list):
            children = item
        else:
            continue
        if depth > limit:
            raise JSONTooDeep(f"nested deeper than {limit} levels")
        stack.extend((child, depth + 1) for child in children if isinstance(child, dict | list))


class BoundedJSONParser(JSONParser):
    """DRF's JSON parser with the nesting limit and the request body size limit."""

    def parse(self, stream, media_type=None, parser_context=None):  # type: ignore[no-untyped-def]
        parser_context = parser_context or {}
        encoding = parser_context.get("encoding", settings.DEFAULT_CHARSET)
        limit = settings.DATA_UPLOAD_MAX_MEMORY_SIZE
        size = -1 if limit is None else limit + 1
        raw = b"" if stream is None else stream.read(size)
        if limit is not None and len(raw) > limit:
            raise ParseError(gettext("The request body is too large."))
        try:
            text = codecs.decode(raw, encoding)
            return loads(text)
        except JSONTooDeep:
            raise ParseError(
                gettext("The JSON is nested deeper than %(limit)d levels.")
                % {"limit": settings.JSON_MAX_DEPTH}
            ) from None
        except ValueError as exc:
            raise ParseError(f"JSON parse error - {exc}") from None
