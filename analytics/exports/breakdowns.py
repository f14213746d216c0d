"""The breakdown table: the regional table's columns for breakdown cells (sex, age band...).

One row per wave x breakdown x group x region x indicator (region_code KZ for the national
group cells), in the same formats as the regional table; the comparison columns compare a
national group with everyone outside it and a cell with the previous wave.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import IO, Any

from django.utils.translation import gettext_lazy, override

from analytics.breakdowns import BY_KEY
from analytics.exports.codebook import LANGUAGES
from analytics.exports.regional import (
    REGIONAL_COLUMNS,
    indicator_catalogue,
    regional_row,
    write_regional,
)
from analytics.models import BreakdownEstimate

_BREAKDOWN_DEFINITIONS = {
    "diff_vs_rest": gettext_lazy("Group minus everyone outside the group (national cells)."),
    "diff_vs_rest_se": gettext_lazy("Standard error of the difference with everyone else."),
    "diff_vs_rest_p": gettext_lazy("p-value of the difference with everyone else."),
    "diff_vs_rest_p_adjusted": gettext_lazy(
        "p-value adjusted across the groups of the breakdown (Holm)."
    ),
    "change_p_adjusted": gettext_lazy(
        "p-value of the change adjusted across the cells of the breakdown (Holm)."
    ),
}
_INSERTED = [
    (
        "breakdown",
        gettext_lazy(
            "Breakdown: sex, age_band, urban_rural, education, employment or settlement_type."
        ),
    ),
    ("group", gettext_lazy("Code of the group within the breakdown.")),
    ("group_label_kk", gettext_lazy("Group name in Kazakh.")),
    ("group_label_ru", gettext_lazy("Group name in Russian.")),
    ("group_label_en", gettext_lazy("Group name in English.")),
]
_AFTER = REGIONAL_COLUMNS.index(next(c for c in REGIONAL_COLUMNS if c[0] == "region_name_en")) + 1
BREAKDOWN_COLUMNS: list[tuple[str, Any]] = [
    *REGIONAL_COLUMNS[:_AFTER],
    *_INSERTED,
    *((name, _BREAKDOWN_DEFINITIONS.get(name, d)) for name, d in REGIONAL_COLUMNS[_AFTER:]),
]


def _labels(breakdown: str, group: str) -> dict[str, str]:
    try:
        label = BY_KEY[breakdown].group(group).label
    except KeyError:
        return dict.fromkeys(LANGUAGES, group)
    out = {}
    for lang in LANGUAGES:
        with override(lang):
            out[lang] = str(label)
    return out


def breakdown_rows(estimates: Iterable[BreakdownEstimate]) -> list[dict[str, Any]]:
    catalogue = indicator_catalogue()
    labels: dict[tuple[str, str], dict[str, str]] = {}
    rows = []
    for estimate in estimates:
        key = (estimate.breakdown, estimate.group)
        if key not in labels:
            labels[key] = _labels(*key)
        row = regional_row(estimate, catalogue)  # type: ignore[arg-type]
        row |= {"breakdown": estimate.breakdown, "group": estimate.group}
        row |= {f"group_label_{lang}": labels[key][lang] for lang in LANGUAGES}
        rows.append(row)
    return rows


def write_breakdowns(rows: list[dict[str, Any]], file_format: str, out: IO[bytes]) -> None:
    write_regional(rows, file_format, out, columns=BREAKDOWN_COLUMNS, sheet_title="breakdowns")
