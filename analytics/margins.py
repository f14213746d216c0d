"""Reading an uploaded table of population margins (CSV or XLSX) for one wave.

One row per cell, with the columns ``dimension``, ``region``, ``urban_rural``, ``sex``,
``age_band`` and ``total``:

    dimension,region,urban_rural,sex,age_band,total
    region_urban,KZ-75,1,,,1650000
    sex_age,,,2,30-44,1010000

``region_urban`` rows name a region of the wave's geography (ISO code) and 1 urban /
2 rural; ``sex_age`` rows name sex (1 male, 2 female) and an age band (18-29, 30-44,
45-59, 60+). Both dimensions must be present and have the same grand total (within
0.1%). Every problem is reported with its row and column; nothing is stored unless the
whole table is valid.
"""

from __future__ import annotations

import csv
import io
from dataclasses import dataclass
from typing import Any

from django.utils.translation import gettext as _

from analytics.computation import AGE_BANDS
from surveys.models import Region, Wave

COLUMNS = ["dimension", "region", "urban_rural", "sex", "age_band", "total"]
DIMENSIONS = ("region_urban", "sex_age")
BAND_LABELS = [label for label, _low, _high in AGE_BANDS]


@dataclass(frozen=True)
class MarginProblem:
    row: int | None
    column: str | None
    message: str

    def __str__(self) -> str:
        where = []
        if self.row is not None:
            where.append(_("row %(row)s") % {"row": self.row})
        if self.column:
            where.append(_("column “%(column)s”") % {"column": self.column})
        return f"{', '.join(where)}: {self.message}" if where else self.message


class MarginsError(ValueError):
    def __init__(self, problems: list[MarginProblem]) -> None:
        super().__init__("\n".join(str(p) for p in problems))
        self.problems = problems


def _rows(content: bytes, filename: str) -> list[list[Any]]:
    if filename.lower().endswith((".xlsx", ".xlsm")):
        import openpyxl

        try:
            book = openpyxl.load_workbook(io.BytesIO(content), read_only=True, data_only=True)
        except Exception as exc:
            raise MarginsError(
                [
                    MarginProblem(
                        None, None, _("not a readable XLSX file (%(error)s)") % {"error": exc}
                    )
                ]
            ) from exc
        sheet = book.worksheets[0]
        return [list(r) for r in sheet.iter_rows(values_only=True)]
    if filename.lower().endswith((".csv", ".txt")):
        try:
            text = content.decode("utf-8-sig")
        except UnicodeDecodeError as exc:
            raise MarginsError(
                [MarginProblem(None, None, _("the CSV file must be UTF-8 encoded"))]
            ) from exc
        dialect = csv.Sniffer().sniff(text[:2048], delimiters=",;\t") if text.strip() else "excel"
        return [list(r) for r in csv.reader(io.StringIO(text), dialect)]
    raise MarginsError([MarginProblem(None, None, _("upload a .csv or .xlsx file"))])


def _blank(value: Any) -> bool:
    return value is None or str(value).strip() == ""


def _number(value: Any) -> float | None:
    try:
        return float(str(value).strip())
    except ValueError:
        return None


def _integer(value: Any) -> int | None:
    try:
        number = float(str(value).strip())
    except ValueError:
        return None
    return int(number) if number.is_integer() else None


def parse_margins(content: bytes, filename: str, *, wave: Wave) -> list[dict[str, Any]]:
    """The margins table (``PopulationMargins.table`` rows) of an uploaded file."""
    rows = _rows(content, filename)
    while rows and all(_blank(v) for v in rows[-1]):
        rows.pop()
    if not rows:
        raise MarginsError([MarginProblem(None, None, _("the file is empty"))])
    header = [str(h).strip().lower() if not _blank(h) else "" for h in rows[0]]
    missing = [c for c in COLUMNS if c not in header]
    if missing:
        raise MarginsError(
            [
                MarginProblem(
                    1,
                    c,
                    _("required column is missing; expected: %(columns)s")
                    % {"columns": ", ".join(COLUMNS)},
                )
                for c in missing
            ]
        )
    at = {c: header.index(c) for c in COLUMNS}
    regions = set(Region.objects.of(wave.geography).values_list("code", flat=True))
    problems: list[MarginProblem] = []
    table: list[dict[str, Any]] = []
    seen: dict[tuple, int] = {}
    for number, raw in enumerate(rows[1:], start=2):
        if all(_blank(v) for v in raw):
            continue
        values = {c: (raw[i] if i < len(raw) else None) for c, i in at.items()}
        dimension = str(values["dimension"] or "").strip()
        total = _number(values["total"])
        if total is None or not 0 < total < float("inf"):
            problems.append(MarginProblem(number, "total", _("must be a positive number")))
        if dimension == "region_urban":
            region = str(values["region"] or "").strip()
            urban = _integer(values["urban_rural"])
            if region not in regions:
                problems.append(
                    MarginProblem(
                        number,
                        "region",
                        _("“%(code)s” is not a region of the %(geography)s geography")
                        % {"code": region, "geography": wave.geography},
                    )
                )
            if urban not in (1, 2):
                problems.append(
                    MarginProblem(number, "urban_rural", _("must be 1 (urban) or 2 (rural)"))
                )
            cell: dict[str, Any] = {"region": region, "urban_rural": urban}
        elif dimension == "sex_age":
            sex = _integer(values["sex"])
            band = str(values["age_band"] or "").strip()
            if sex not in (1, 2):
                problems.append(MarginProblem(number, "sex", _("must be 1 (male) or 2 (female)")))
            if band not in BAND_LABELS:
                problems.append(
                    MarginProblem(
                        number,
                        "age_band",
                        _("must be one of %(bands)s") % {"bands": ", ".join(BAND_LABELS)},
                    )
                )
            cell = {"sex": sex, "age_band": band}
        else:
            problems.append(
                MarginProblem(number, "dimension", _("must be region_urban or sex_age"))
            )
            continue
        key = (dimension, *cell.values())
        if key in seen:
            problems.append(
                MarginProblem(
                    number, None, _("duplicates the cell of row %(row)s") % {"row": seen[key]}
                )
            )
        seen[key] = number
        table.append({"dimension": dimension, "cell": cell, "total": total})
    if not problems:
        totals = {d: sum(r["total"] for r in table if r["dimension"] == d) for d in DIMENSIONS}
        absent = [d for d, t in totals.items() if t == 0]
        if absent:
            problems.append(
                MarginProblem(
                    None,
                    "dimension",
                    _("no rows for %(dimension)s") % {"dimension": ", ".join(absent)},
                )
            )
        elif abs(totals["region_urban"] - totals["sex_age"]) > 1e-3 * totals["region_urban"]:
            problems.append(
                MarginProblem(
                    None,
                    "total",
                    _("the grand totals differ: region_urban %(a)s, sex_age %(b)s")
                    % {"a": f"{totals['region_urban']:.0f}", "b": f"{totals['sex_age']:.0f}"},
                )
            )
    if problems:
        raise MarginsError(problems)
    return table
