"""The two geographies of Kazakhstan (2013: 16 units; current: 20 units) from kz_regions.csv."""

from __future__ import annotations

import csv
from pathlib import Path
from typing import Any

from surveys.models import Geography

REGIONS_CSV = Path(__file__).resolve().parent / "data" / "kz_regions.csv"

# 2013 units whose names changed later; the CSV gives only the current names.
HISTORICAL_NAMES = {
    "KZ-YUZ": (
        "Оңтүстік Қазақстан облысы",
        "Южно-Казахстанская область",
        "South Kazakhstan Region",
    ),
}
# Tile-grid map positions (row, column), placed roughly where each unit lies.
TILES_2022 = {
    "KZ-39": (0, 2),
    "KZ-59": (0, 3),
    "KZ-55": (0, 4),
    "KZ-27": (1, 0),
    "KZ-15": (1, 1),
    "KZ-11": (1, 3),
    "KZ-71": (1, 4),
    "KZ-10": (1, 5),
    "KZ-63": (1, 6),
    "KZ-23": (2, 0),
    "KZ-62": (2, 2),
    "KZ-35": (2, 3),
    "KZ-33": (2, 5),
    "KZ-47": (3, 0),
    "KZ-43": (3, 1),
    "KZ-61": (3, 2),
    "KZ-31": (3, 3),
    "KZ-19": (3, 4),
    "KZ-79": (4, 2),
    "KZ-75": (4, 4),
}
TILES_2013 = {
    "KZ-KUS": (0, 2),
    "KZ-SEV": (0, 3),
    "KZ-PAV": (0, 4),
    "KZ-ZAP": (1, 0),
    "KZ-AKT": (1, 1),
    "KZ-AKM": (1, 3),
    "KZ-AST": (1, 4),
    "KZ-VOS": (1, 5),
    "KZ-ATY": (2, 0),
    "KZ-KAR": (2, 3),
    "KZ-MAN": (3, 0),
    "KZ-KZY": (3, 1),
    "KZ-YUZ": (3, 2),
    "KZ-ZHA": (3, 3),
    "KZ-ALM": (3, 4),
    "KZ-ALA": (4, 4),
}


# Region numbers for files that need numeric codes (SPSS, Stata and the microdata's region
# columns): the two digits of the KATO classifier, which the current ISO 3166-2:KZ codes
# carry (KZ-19). A 2013 unit keeps the number it had then; South Kazakhstan, 51 until its
# renaming in 2018, is the one that no current unit carries. A number means the same name
# in either geography, so one set of value labels serves a file that mixes waves.
REGION_NUMBERS_2013 = {
    "KZ-AKM": 11,
    "KZ-AKT": 15,
    "KZ-ALM": 19,
    "KZ-ATY": 23,
    "KZ-ZAP": 27,
    "KZ-ZHA": 31,
    "KZ-KAR": 35,
    "KZ-KUS": 39,
    "KZ-KZY": 43,
    "KZ-MAN": 47,
    "KZ-YUZ": 51,
    "KZ-PAV": 55,
    "KZ-SEV": 59,
    "KZ-VOS": 63,
    "KZ-AST": 71,
    "KZ-ALA": 75,
}


def region_number(code: str) -> int | None:
    """The KATO number of a region code of either geography ("KZ-19" and "KZ-ALM": 19)."""
    if code in REGION_NUMBERS_2013:
        return REGION_NUMBERS_2013[code]
    head, _dash, digits = code.partition("-")
    if head == "KZ" and digits.isdigit():
        return int(digits)
    return None


def read_regions_csv(path: Path = REGIONS_CSV) -> list[dict[str, str]]:
    with path.open(encoding="utf-8", newline="") as handle:
        return list(csv.DictReader(handle))


def load_regions(region_model: Any, path: Path = REGIONS_CSV) -> int:
    """Create or update both geographies. Idempotent; takes the model so migrations can call it."""
    rows = read_regions_csv(path)
    by_old_code = {row["iso_before_2022"]: row for row in rows if row["iso_before_2022"]}
    units_2013 = {}
    for code in sorted({row["unit_2013"] for row in rows}):
        source = by_old_code[code]
        names = HISTORICAL_NAMES.get(
            code, (source["name_kk"], source["name_ru"], source["name_en"])
        )
        row_2013 = next(r for r in rows if r["unit_2013"] == code)
        tile = TILES_2013[code]
        units_2013[code], _ = region_model.objects.update_or_create(
            geography=Geography.KZ2013,
            code=code,
            defaults={
                "iso_before_2022": code,
                "kind": source["kind"],
                "name_kk": names[0],
                "name_ru": names[1],
                "name_en": row_2013["unit_2013_name_en"] or names[2],
                "centre_en": source["centre_en"] if code not in HISTORICAL_NAMES else "",
                "unit_2013": None,
                "tile_row": tile[0],
                "tile_col": tile[1],
            },
        )
    for row in rows:
        tile = TILES_2022[row["iso_2022"]]
        region_model.objects.update_or_create(
            geography=Geography.KZ2022,
            code=row["iso_2022"],
            defaults={
                "iso_before_2022": row["iso_before_2022"],
                "kind": row["kind"],
                "name_kk": row["name_kk"],
                "name_ru": row["name_ru"],
                "name_en": row["name_en"],
                "centre_en": row["centre_en"],
                "unit_2013": units_2013[row["unit_2013"]],
                "note": row["note"],
                "tile_row": tile[0],
                "tile_col": tile[1],
            },
        )
    return len(units_2013) + len(rows)
