"""Complementary suppression: no hidden count comes back by subtraction."""

from __future__ import annotations

import random

from analytics.stats.disclosure import complementary_suppression, recoverable

NATIONAL = "KZ"


def regions(**counts: int) -> tuple[dict[str, int], list[tuple[str, list[str]]]]:
    table = {NATIONAL: sum(counts.values()), **counts}
    return table, [(NATIONAL, list(counts))]


def test_one_hidden_region_takes_the_smallest_published_one_with_it():
    counts, relations = regions(A=4, B=40, C=25, D=90)
    extra = complementary_suppression(counts, {"A"}, relations)
    assert extra == {"C"}
    assert recoverable(counts, {"A", "C"}, relations) == {}


def test_without_it_the_national_total_minus_the_others_gives_the_count_back():
    counts, relations = regions(A=4, B=40, C=25, D=90)
    assert recoverable(counts, {"A"}, relations) == {"A": 4}


def test_two_hidden_cells_that_add_up_to_a_small_count_take_a_third():
    counts, relations = regions(A=3, B=5, C=25, D=90, E=12)
    extra = complementary_suppression(counts, {"A", "B"}, relations)
    assert extra == {"E"}  # 3 + 5 = 8 would be told by the difference; 3 + 5 + 12 is not small


def test_two_hidden_cells_that_add_up_to_enough_need_nothing_more():
    counts, relations = regions(A=6, B=7, C=25, D=90)
    assert complementary_suppression(counts, {"A", "B"}, relations) == set()


def test_nothing_hidden_nothing_added():
    counts, relations = regions(A=60, B=70)
    assert complementary_suppression(counts, set(), relations) == set()


def test_a_hidden_total_with_every_part_published_hides_a_part():
    counts, relations = regions(A=30, B=40, C=25)
    assert complementary_suppression(counts, {NATIONAL}, relations) == {"C"}


def test_a_pooled_2013_unit_is_a_sum_of_its_successors_too():
    """Zhetysu hidden: the pooled 2013 Almaty oblast minus today's Almaty oblast gives it back."""
    counts = {
        NATIONAL: 200,
        "ZHT": 5,
        "ALM": 45,
        "AST": 150,
        "U-ALM": 50,  # the 2013 unit, pooled from ALM and ZHT
        "U-AST": 150,
    }
    relations = [
        (NATIONAL, ["ZHT", "ALM", "AST"]),
        (NATIONAL, ["U-ALM", "U-AST"]),
        ("U-ALM", ["ZHT", "ALM"]),
    ]
    hidden = {"ZHT"} | complementary_suppression(counts, {"ZHT"}, relations)
    assert recoverable(counts, hidden, relations) == {}
    assert "ALM" in hidden or "U-ALM" in hidden


def test_the_choice_is_the_same_every_time():
    counts, relations = regions(A=4, B=25, C=25, D=25)
    assert {frozenset(complementary_suppression(counts, {"A"}, relations)) for _ in range(5)} == {
        frozenset({"B"})
    }


def test_random_tables_leak_no_hidden_count():
    """Two partitions of one total and a hierarchy, as the regional tables have."""
    rng = random.Random(20131)
    for _ in range(300):
        n_regions = rng.randint(2, 20)
        parts = [f"R{i}" for i in range(n_regions)]
        counts = {p: rng.choice([0, 1, 2, 5, 9, 10, 14, 30, 200]) for p in parts}
        pooled = rng.sample(parts, k=min(len(parts), rng.randint(2, 3)))
        counts["P"] = sum(counts[p] for p in pooled)
        counts[NATIONAL] = sum(counts[p] for p in parts)
        units = ["P", *[p for p in parts if p not in pooled]]
        relations = [(NATIONAL, parts), (NATIONAL, units), ("P", pooled)]
        primary = {k for k, v in counts.items() if v < 10}
        hidden = primary | complementary_suppression(counts, primary, relations)
        assert recoverable(counts, hidden, relations) == {}, (counts, hidden)
        for total, members in relations:
            hidden_members = [m for m in members if m in hidden]
            if total not in hidden and hidden_members:
                assert len(hidden_members) >= 2
                assert sum(counts[m] for m in hidden_members) >= 10, (counts, hidden)
