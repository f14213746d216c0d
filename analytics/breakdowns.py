"""The breakdown domains besides regions (DOMAIN.md section 6), each declared once.

A breakdown is a partition of the adult respondents into groups read from the snapshot's
columns: sex, age band, urban / rural, education, employment sector and settlement type.
Each group is a domain of the full design, like a region: estimates never subset first.

``Breakdown.codes(columns, year=...)`` gives, per interview, the index of its group in
``Breakdown.groups`` (an int64 array), or -1 when the interview is in no group (refused,
not asked, out of range). The grouping is pure numpy; the titles and labels are
translatable texts (kk / ru / en catalogues).

Decisions where the brief is silent:

* Age is the form's ``AGE`` (computed on the device from the interview date and the birth
  year); when it is missing, the reference year (the wave's fieldwork year) minus
  ``BIRTH_YEAR``. Ages under 18 or above 120 are in no band.
* Education: the questionnaire's six levels are grouped as none or primary (1), general
  secondary (2), vocational or technical (3), higher including incomplete higher and
  postgraduate (4, 5, 6).
* Urban / rural is the design field of the interview (``urban_rural``: 1 urban, 2 rural).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass

import numpy as np
from django.utils.functional import Promise
from django.utils.translation import gettext_lazy as _

Columns = Mapping[str, np.ndarray]


@dataclass(frozen=True)
class Group:
    code: str  # stable, used in the API, the downloads and the stored cells
    label: Promise | str


@dataclass(frozen=True)
class Breakdown:
    key: str  # stable, e.g. "sex"
    title: Promise | str
    groups: tuple[Group, ...]
    columns: tuple[str, ...]  # the snapshot columns read
    _derive: Callable[[Columns, int], np.ndarray]

    def codes(self, columns: Columns, *, year: int) -> np.ndarray:
        """Per interview: index into ``groups``, -1 when in no group."""
        out = np.asarray(self._derive(columns, year), dtype=np.int64)
        return np.where((out >= 0) & (out < len(self.groups)), out, -1)

    @property
    def group_codes(self) -> list[str]:
        return [g.code for g in self.groups]

    def group(self, code: str) -> Group:
        for g in self.groups:
            if g.code == code:
                return g
        raise KeyError(code)


def _recode(values: np.ndarray, mapping: dict[int, int]) -> np.ndarray:
    """Answer codes to group indices (-1 for anything not in ``mapping``)."""
    values = np.asarray(values, dtype=np.int64)
    lookup = np.full(256, -1, dtype=np.int64)
    for answer, group in mapping.items():
        lookup[answer] = group
    inside = (values >= 0) & (values < len(lookup))
    return np.where(inside, lookup[np.where(inside, values, 0)], -1)


AGE_BANDS: tuple[tuple[str, int, int], ...] = (
    ("18-29", 18, 29),
    ("30-44", 30, 44),
    ("45-59", 45, 59),
    ("60+", 60, 120),
)


def respondent_age(columns: Columns, year: int) -> np.ndarray:
    """Age at the interview: the form's AGE, else ``year`` minus BIRTH_YEAR; -1 unknown."""
    age = np.asarray(columns["AGE"], dtype=np.int64)
    born = np.asarray(columns["BIRTH_YEAR"], dtype=np.int64)
    return np.where(age >= 0, age, np.where(born > 1900, year - born, -1))


def _age_band(columns: Columns, year: int) -> np.ndarray:
    age = respondent_age(columns, year)
    out = np.full(age.shape, -1, dtype=np.int64)
    for i, (_code, low, high) in enumerate(AGE_BANDS):
        out[(age >= low) & (age <= high)] = i
    return out


BREAKDOWNS: list[Breakdown] = [
    Breakdown(
        "sex",
        _("Sex"),
        (Group("male", _("Men")), Group("female", _("Women"))),
        ("SEX",),
        lambda c, year: _recode(c["SEX"], {1: 0, 2: 1}),
    ),
    Breakdown(
        "age_band",
        _("Age band"),
        (
            Group("18-29", _("18-29 years")),
            Group("30-44", _("30-44 years")),
            Group("45-59", _("45-59 years")),
            Group("60+", _("60 years and over")),
        ),
        ("AGE", "BIRTH_YEAR"),
        _age_band,
    ),
    Breakdown(
        "urban_rural",
        _("Urban or rural"),
        (Group("urban", _("Urban")), Group("rural", _("Rural"))),
        ("urban_rural",),
        lambda c, year: _recode(c["urban_rural"], {1: 0, 2: 1}),
    ),
    Breakdown(
        "education",
        _("Education"),
        (
            Group("primary", _("None or primary")),
            Group("secondary", _("General secondary")),
            Group("vocational", _("Vocational or technical")),
            Group("higher", _("Higher (including incomplete)")),
        ),
        ("EDU",),
        lambda c, year: _recode(c["EDU"], {1: 0, 2: 1, 3: 2, 4: 3, 5: 3, 6: 3}),
    ),
    Breakdown(
        "employment",
        _("Employment sector"),
        (
            Group("public", _("Public sector")),
            Group("private", _("Private sector")),
            Group("self_employed", _("Self-employed")),
            Group("unemployed", _("Unemployed")),
            Group("student", _("Student")),
            Group("retired", _("Retired")),
            Group("other", _("Other occupation")),
        ),
        ("EMP",),
        lambda c, year: _recode(c["EMP"], {k: k - 1 for k in range(1, 8)}),
    ),
    Breakdown(
        "settlement_type",
        _("Settlement type"),
        (
            Group("capital", _("Capital or city of republican significance")),
            Group("oblast_centre", _("Regional centre")),
            Group("town", _("Other town")),
            Group("village", _("Village")),
        ),
        ("SETTLEMENT",),
        lambda c, year: _recode(c["SETTLEMENT"], {1: 0, 2: 1, 3: 2, 4: 3}),
    ),
]
BY_KEY: dict[str, Breakdown] = {b.key: b for b in BREAKDOWNS}
BREAKDOWN_KEYS: list[str] = [b.key for b in BREAKDOWNS]
# Answer columns the snapshot must hold for the breakdowns (urban_rural is a design field).
ANSWER_COLUMNS: list[str] = sorted({c for b in BREAKDOWNS for c in b.columns} - {"urban_rural"})


def group_codes(columns: Columns, *, year: int) -> dict[str, np.ndarray]:
    """Every breakdown's per-interview group indices (-1: in no group)."""
    return {b.key: b.codes(columns, year=year) for b in BREAKDOWNS}
