"""What every export shares: its kinds and formats, their content types, its error."""

from __future__ import annotations

BOM = b"\xef\xbb\xbf"
XLSX_MAX_ROWS = 1_048_575  # one row of the sheet holds the header
REGIONAL_FORMATS = ("csv", "xlsx", "json", "parquet")
MICRODATA_FORMATS = ("csv", "xlsx", "sav", "dta")
CONTENT_TYPES = {
    "csv": "text/csv; charset=utf-8",
    "xlsx": "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
    "json": "application/json",
    "parquet": "application/vnd.apache.parquet",
    "sav": "application/x-spss-sav",
    "dta": "application/x-stata-dta",
}


class ExportError(ValueError):
    """A request that cannot be exported; the message is shown to the user as it is."""


KINDS = {
    "regional": REGIONAL_FORMATS,
    "microdata": MICRODATA_FORMATS,
    "codebook": ("xlsx",),
}
