"""Complementary suppression: counts a published table must not let anyone recover.

A cell suppressed because it holds few respondents (the small-count rule of the publication
standards) hides its count, but a table also publishes the cells it adds up to: the national
total is the sum of the regions, a 2013 unit the sum of its current successors. If exactly one
part of such a sum is hidden, the total minus the published parts gives it back; if the hidden
parts add up to a small count, the difference tells that small count. So more cells are hidden,
the smallest published part first, until every sum either hides nothing or hides at least
``threshold`` respondents in two or more cells (or its total is hidden too).

Plain functions over counts and keys, no Django: the estimation pipeline calls them for each
indicator with its regional and national cells.
"""

from __future__ import annotations

from collections.abc import Hashable, Iterable, Mapping, Sequence
from typing import TypeVar

K = TypeVar("K", bound=Hashable)

DISCLOSURE_THRESHOLD = 10


def complementary_suppression(
    counts: Mapping[K, int],
    primary: Iterable[K],
    relations: Sequence[tuple[K, Sequence[K]]],
    *,
    threshold: int = DISCLOSURE_THRESHOLD,
) -> set[K]:
    """The cells to hide besides ``primary`` so that no hidden count can be recovered.

    ``counts`` maps every cell to the count it would publish; ``relations`` lists the sums the
    table holds, each as (total, parts) with the total equal to the sum of the parts. The
    choice is deterministic: the smallest published count first, ties broken by the order of
    the parts.
    """
    primary = set(primary)
    hidden = set(primary)
    while (extra := _first_leak(counts, hidden, relations, threshold)) is not None:
        hidden.add(extra)
    return hidden - primary


def _first_leak(
    counts: Mapping[K, int],
    hidden: set[K],
    relations: Sequence[tuple[K, Sequence[K]]],
    threshold: int,
) -> K | None:
    """A cell to hide next to close the first sum that gives a hidden count away, or None."""
    for total, parts in relations:
        hidden_parts = [p for p in parts if p in hidden]
        published = [p for p in parts if p not in hidden]
        if total in hidden:
            if hidden_parts or not published:
                continue  # an unknown total with unknown parts gives nothing away
            # the total is the sum of its published parts: hide one of them
            return _smallest(counts, published)
        if not hidden_parts:
            continue
        revealed = sum(counts[p] for p in hidden_parts)
        if len(hidden_parts) >= 2 and revealed >= threshold:
            continue
        return _smallest(counts, published) if published else total
    return None


def _smallest(counts: Mapping[K, int], keys: Sequence[K]) -> K:
    return min(enumerate(keys), key=lambda item: (counts[item[1]], item[0]))[1]


def recoverable(
    counts: Mapping[K, int],
    hidden: Iterable[K],
    relations: Sequence[tuple[K, Sequence[K]]],
) -> dict[K, int]:
    """Hidden cells whose count one subtraction gives back (used to check a published table).

    Repeats the subtraction until nothing more is learnt, so a chain (a region recovered from
    one sum, then used in another) is found too.
    """
    unknown = set(hidden)
    learnt: dict[K, int] = {}
    progress = True
    while progress:
        progress = False
        for total, parts in relations:
            cells = [total, *parts]
            missing = [c for c in cells if c in unknown]
            if len(missing) != 1:
                continue
            (cell,) = missing
            value = counts[cell]
            learnt[cell] = value
            unknown.discard(cell)
            progress = True
    return learnt
