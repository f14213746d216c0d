"""Indicator definitions on hand-made frames; every expected value is worked out by hand
from DOMAIN.md section 3, not from the code."""

from __future__ import annotations

import numpy as np
import pytest

from analytics.indicators import (
    BY_CODE,
    INDICATORS,
    ITEM_COLUMNS,
    SPHERES,
    definitions_hash,
)
from analytics.snapshot import COLUMNS

NA = -9


def frame(n: int, **columns: list[int]) -> dict[str, np.ndarray]:
    """Every column the indicators read, -9 unless given."""
    out = {c: np.full(n, NA, dtype=np.int16) for c in COLUMNS}
    for name, values in columns.items():
        out[name] = np.asarray(values, dtype=np.int16)
    return out


def share(code: str, data: dict[str, np.ndarray]) -> tuple[float, int]:
    """Unweighted estimate and denominator size."""
    num, den = BY_CODE[code].values(data)
    inside = ~np.isnan(num)
    return float(np.nansum(num) / np.nansum(den)), int(inside.sum())


def test_every_indicator_of_the_domain_is_declared_once_with_three_languages():
    codes = [i.code for i in INDICATORS]
    assert len(codes) == len(set(codes))
    expected = {
        "PERC_BRIBE", "PERC_CONN", "EXP_BRIBE_EVER", "EXP_BRIBE_12M", "NET_EVER",
        "NET_MONETISED", "REPRODUCING", "IEI", "ACCEPT", "TRUST",
        "DK_PERC_BRIBE", "DK_PERC_CONN", "DK_REPRODUCING",
    }  # fmt: skip
    expected |= {f"BRIBE_RATE_{s}" for s in SPHERES} | {f"NET_RATE_{s}" for s in SPHERES}
    expected |= {f"MOTIVE_{k}" for k in range(1, 8)}
    expected |= {
        f"{kind}_BRIBE_12M_{d}" for kind in ("INDIRECT", "GAP") for d in ("LIST", "RR", "CW")
    }
    assert set(codes) == expected
    assert len(SPHERES) == 11
    for indicator in INDICATORS:
        assert set(indicator.labels) == {"kk", "ru", "en"} and all(indicator.labels.values())
        assert indicator.kind in ("proportion", "mean", "ratio")
        assert indicator.numerator and indicator.denominator
    assert set(ITEM_COLUMNS) <= set(COLUMNS)


def test_perception_keeps_dont_know_in_the_denominator_and_drops_refusals():
    # P1: 1 very, 2 fairly, 3 not very, 4 not at all, -1 DK, -2 refused, -9 not asked
    data = frame(8, P1=[1, 2, 3, 4, -1, -1, -2, -9])
    # numerator 1,2 -> 2; denominator 1,2,3,4,-1,-1 -> 6
    assert share("PERC_BRIBE", data) == (pytest.approx(2 / 6), 6)
    assert share("DK_PERC_BRIBE", data) == (pytest.approx(2 / 6), 6)


def test_experience_drops_dont_know_and_refusals():
    data = frame(7, E1=[1, 2, 3, 3, -1, -2, -3])
    assert share("EXP_BRIBE_EVER", data) == (pytest.approx(2 / 4), 4)


def test_network_use_and_its_monetisation():
    # E2: 1 paying, 2 without money, 3 both, 4 no
    data = frame(7, E2=[1, 2, 3, 4, 4, -1, -2])
    assert share("NET_EVER", data) == (pytest.approx(3 / 5), 5)
    assert share("NET_MONETISED", data) == (pytest.approx(2 / 3), 3)


def test_sphere_rates_count_only_contacts_with_a_valid_answer():
    data = frame(
        6,
        C_MED=[1, 1, 1, 1, 2, -2],
        B_MED=[1, 2, -1, 2, -3, -3],
        N_MED=[1, 3, 2, -2, -3, -3],
    )
    # bribery: contacts 4, valid B among them 3 (1, 2, 2), yes 1
    assert share("BRIBE_RATE_MED", data) == (pytest.approx(1 / 3), 3)
    # networks: valid N among contacts 3 (1, 3, 2), in 1,2 -> 2
    assert share("NET_RATE_MED", data) == (pytest.approx(2 / 3), 3)


def test_household_bribery_any_sphere_among_contacts():
    data = frame(
        5,
        C_KG=[1, 2, 1, 2, 1],
        B_KG=[2, -3, -1, -3, 2],
        C_POL=[1, 1, 2, 2, 1],
        B_POL=[1, 2, -3, -3, -2],
    )
    # row 0: contact, B_POL = 1 -> yes; row 1: contact POL, no -> no;
    # row 2: contact KG, B unknown, no yes -> leaves; row 3: no contact -> leaves;
    # row 4: KG no, POL refused -> unknown -> leaves.
    assert share("EXP_BRIBE_12M", data) == (pytest.approx(1 / 2), 2)


def test_motives_among_those_who_answered():
    # bit k-1 = motive k; -9 = not asked
    data = frame(4, M_MASK=[0b0000011, 0b0000010, 0b1000000, NA])
    assert share("MOTIVE_1", data) == (pytest.approx(1 / 3), 3)
    assert share("MOTIVE_2", data) == (pytest.approx(2 / 3), 3)
    assert share("MOTIVE_7", data) == (pytest.approx(1 / 3), 3)
    assert share("MOTIVE_4", data) == (pytest.approx(0.0), 3)


def test_reproducing_keeps_dont_know():
    data = frame(5, R1=[2, 2, 1, -1, -2])
    assert share("REPRODUCING", data) == (pytest.approx(2 / 4), 4)
    assert share("DK_REPRODUCING", data) == (pytest.approx(1 / 4), 4)


def test_experience_index_is_a_ratio_of_totals():
    data = frame(
        3,
        C_MED=[1, 1, 2],
        B_MED=[1, 2, -3],
        N_MED=[3, 3, -3],
        C_SCH=[1, 2, 2],
        B_SCH=[2, -3, -3],
        N_SCH=[2, -3, -3],
        C_POL=[1, 1, 2],
        B_POL=[-2, -1, -3],
        N_POL=[-2, -2, -3],
    )
    num, den = BY_CODE["IEI"].values(data)
    # row 0: MED (bribe), SCH (network) practised of MED, SCH (POL both unknown) -> 2 of 2
    # row 1: MED contacted without practice; POL unknown -> 0 of 1; row 2: no contact
    assert num[:2].tolist() == [200.0, 0.0] and den[:2].tolist() == [2.0, 1.0]
    assert np.isnan(num[2]) and np.isnan(den[2])
    assert np.nansum(num) / np.nansum(den) == pytest.approx(100 * 2 / 3)


def test_acceptance_and_trust_indices_recode_valid_items():
    data = frame(
        3,
        A1=[1, 3, -1],
        A2=[2, -1, -2],
        A3=[3, -2, -1],
        TR_GOV=[1, 4, -1],
        TR_CRT=[2, -2, -1],
        TR_POL=[3, -1, -2],
        TR_AKM=[4, -1, -1],
        TR_PAR=[-1, -1, -1],
        TR_MED=[-1, -1, -1],
        TR_NGO=[-1, -1, -1],
    )
    num, _ = BY_CODE["ACCEPT"].values(data)
    # row 0: (1 + 0.5 + 0) / 3 = 0.5 -> 50; row 1: only A1 = never -> 0; row 2: none valid
    assert num[0] == pytest.approx(50.0) and num[1] == pytest.approx(0.0) and np.isnan(num[2])
    num, _ = BY_CODE["TRUST"].values(data)
    # row 0: (1 + 2/3 + 1/3 + 0) / 4 = 0.5 -> 50; row 1: not at all -> 0; row 2: none valid
    assert num[0] == pytest.approx(50.0) and num[1] == pytest.approx(0.0) and np.isnan(num[2])


def test_definitions_hash_changes_with_a_definition():
    import dataclasses

    changed = [
        dataclasses.replace(i, yes=frozenset({1})) if i.code == "PERC_BRIBE" else i
        for i in INDICATORS
    ]
    assert definitions_hash(changed) != definitions_hash()
    assert definitions_hash(list(INDICATORS)) == definitions_hash()
