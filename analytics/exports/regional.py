"""The regional comparison table: its columns, its rows, and its files.

One row per wave x geography x region x indicator (and a national row per wave x
geography x indicator), with the columns of DOMAIN.md, written as CSV (UTF-8 with a
byte-order mark, so Excel shows Cyrillic), XLSX (with a sheet of column definitions), JSON
and Parquet. A suppressed cell keeps n and its reason; its estimate is blank. The rows are
read by `analytics.selectors.regional_estimates`.
"""

from __future__ import annotations

import datetime as dt
import io
import json
import math
from collections.abc import Iterable
from typing import IO, Any

import pyarrow as pa
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy

from analytics.exports.codebook import LANGUAGES
from analytics.exports.formats import BOM, ExportError
from analytics.models import IndicatorEstimate

# --------------------------------------------------------------------------------------
# Regional comparison table
# --------------------------------------------------------------------------------------

# Column name and its definition (shown in the XLSX definitions sheet and the API docs).
REGIONAL_COLUMNS: list[tuple[str, Any]] = [
    ("survey", gettext_lazy("Survey code.")),
    ("wave", gettext_lazy("Wave code.")),
    ("geography", gettext_lazy("KZ2013: the 16 units of 2013; KZ2022: the 20 current units.")),
    ("region_code", gettext_lazy("ISO 3166-2:KZ code of the region; KZ for the whole country.")),
    ("region_name_kk", gettext_lazy("Region name in Kazakh.")),
    ("region_name_ru", gettext_lazy("Region name in Russian.")),
    ("region_name_en", gettext_lazy("Region name in English.")),
    ("indicator", gettext_lazy("Indicator code.")),
    ("indicator_label_kk", gettext_lazy("Indicator name in Kazakh.")),
    ("indicator_label_ru", gettext_lazy("Indicator name in Russian.")),
    ("indicator_label_en", gettext_lazy("Indicator name in English.")),
    ("unit", gettext_lazy("share: a proportion from 0 to 1; index: a score from 0 to 100.")),
    ("estimate", gettext_lazy("Weighted estimate; blank when the cell is suppressed.")),
    ("se", gettext_lazy("Standard error (Taylor linearisation with strata and PSUs).")),
    ("ci_low", gettext_lazy("Lower bound of the confidence interval (95%).")),
    ("ci_high", gettext_lazy("Upper bound of the confidence interval (95%).")),
    ("ci_method", gettext_lazy("Method of the confidence interval (logit or Korn-Graubard).")),
    ("n", gettext_lazy("Unweighted number of respondents in the denominator.")),
    ("n_numerator", gettext_lazy("Unweighted number of respondents in the numerator.")),
    ("n_eff", gettext_lazy("Effective sample size: n divided by the design effect.")),
    (
        "deff",
        gettext_lazy(
            "Design effect: variance under the design over that of a simple random sample."
        ),
    ),
    ("df", gettext_lazy("Design degrees of freedom: number of PSUs minus number of strata.")),
    (
        "reliable",
        gettext_lazy("1 when the cell meets the publication rules, 0 when it is suppressed."),
    ),
    ("suppression_reason", gettext_lazy("Why the estimate is not published.")),
    (
        "review_flag",
        gettext_lazy(
            "Published but to be read with care (for example fewer than 8 degrees of freedom)."
        ),
    ),
    ("national_estimate", gettext_lazy("Estimate for the whole country in the same wave.")),
    ("diff_vs_rest", gettext_lazy("Region minus the rest of the country.")),
    (
        "diff_vs_rest_se",
        gettext_lazy("Standard error of the difference with the rest of the country."),
    ),
    ("diff_vs_rest_p", gettext_lazy("p-value of the difference with the rest of the country.")),
    ("diff_vs_rest_p_adjusted", gettext_lazy("p-value adjusted across regions (Holm).")),
    ("previous_wave", gettext_lazy("Wave the change is measured from.")),
    ("previous_estimate", gettext_lazy("Estimate in the previous wave.")),
    ("change", gettext_lazy("Change since the previous wave.")),
    ("change_se", gettext_lazy("Standard error of the change.")),
    ("change_p", gettext_lazy("p-value of the change.")),
    ("change_p_adjusted", gettext_lazy("p-value of the change adjusted across regions (Holm).")),
    (
        "boundary_note",
        gettext_lazy("Note on boundary changes between the 2013 and current geographies."),
    ),
    ("weights_version", gettext_lazy("Version of the weights the estimate was computed with.")),
    ("data_version", gettext_lazy("Fingerprint of the interviews the estimate was computed from.")),
    ("computed_at", gettext_lazy("When the estimate was computed (UTC).")),
]
REGIONAL_FIELD_NAMES = [name for name, _definition in REGIONAL_COLUMNS]
NATIONAL_NAMES = {"kk": "Қазақстан", "ru": "Казахстан", "en": "Kazakhstan"}
FLOAT_COLUMNS = {
    "estimate",
    "se",
    "ci_low",
    "ci_high",
    "n_eff",
    "deff",
    "df",
    "national_estimate",
    "diff_vs_rest",
    "diff_vs_rest_se",
    "diff_vs_rest_p",
    "diff_vs_rest_p_adjusted",
    "previous_estimate",
    "change",
    "change_se",
    "change_p",
    "change_p_adjusted",
}
INT_COLUMNS = {"n", "n_numerator", "reliable"}
# Blank in a suppressed cell's row.
SUPPRESSED_BLANK = (
    "estimate",
    "se",
    "ci_low",
    "ci_high",
    "diff_vs_rest",
    "diff_vs_rest_se",
    "diff_vs_rest_p",
    "diff_vs_rest_p_adjusted",
    "change",
    "change_se",
    "change_p",
    "change_p_adjusted",
)


def indicator_catalogue() -> dict[str, dict[str, Any]]:
    """Indicator code -> {"labels": {kk, ru, en}, "unit": ...} from the indicator declarations."""
    from analytics.indicators import INDICATORS

    return {
        indicator.code: {"labels": dict(indicator.labels), "unit": indicator.unit}
        for indicator in INDICATORS
    }


def regional_row(
    estimate: IndicatorEstimate, catalogue: dict[str, dict[str, Any]]
) -> dict[str, Any]:
    """One row of the regional table (the national row has region_code "KZ")."""
    region = estimate.region
    names = (
        {"kk": region.name_kk, "ru": region.name_ru, "en": region.name_en}
        if region is not None
        else NATIONAL_NAMES
    )
    info = catalogue.get(estimate.indicator, {})
    labels = info.get("labels", {})
    row = {
        "survey": estimate.wave.survey.code,
        "wave": estimate.wave.code,
        "geography": estimate.geography,
        "region_code": region.code if region is not None else "KZ",
        **{f"region_name_{lang}": names[lang] for lang in LANGUAGES},
        "indicator": estimate.indicator,
        **{f"indicator_label_{lang}": labels.get(lang, estimate.indicator) for lang in LANGUAGES},
        "unit": info.get("unit", ""),
        "estimate": estimate.estimate,
        "se": estimate.se,
        "ci_low": estimate.ci_low,
        "ci_high": estimate.ci_high,
        "ci_method": estimate.ci_method,
        "n": estimate.n,
        "n_numerator": estimate.n_numerator,
        "n_eff": estimate.n_eff,
        "deff": estimate.deff,
        "df": estimate.df,
        "reliable": 0 if estimate.suppressed else 1,
        "suppression_reason": estimate.suppression_reason,
        "review_flag": estimate.review_flag,
        "national_estimate": estimate.national_estimate,
        "diff_vs_rest": estimate.diff_vs_rest,
        "diff_vs_rest_se": estimate.diff_vs_rest_se,
        "diff_vs_rest_p": estimate.diff_vs_rest_p,
        "diff_vs_rest_p_adjusted": estimate.diff_vs_rest_p_adjusted,
        "previous_wave": estimate.previous_wave.code if estimate.previous_wave is not None else "",
        "previous_estimate": estimate.previous_estimate,
        "change": estimate.change,
        "change_se": estimate.change_se,
        "change_p": estimate.change_p,
        "change_p_adjusted": estimate.change_p_adjusted,
        "boundary_note": estimate.boundary_note,
        "weights_version": estimate.weights_version,
        "data_version": estimate.data_version,
        "computed_at": estimate.computed_at.astimezone(dt.UTC).replace(tzinfo=None)
        if estimate.computed_at
        else None,
    }
    if estimate.suppressed:  # n and the reason stay; what was estimated does not
        row.update(dict.fromkeys(SUPPRESSED_BLANK))
    return row


def regional_rows(estimates: Iterable[IndicatorEstimate]) -> list[dict[str, Any]]:
    catalogue = indicator_catalogue()
    return [regional_row(estimate, catalogue) for estimate in estimates]


def _clean_float(value: Any) -> Any:
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value


def write_regional(
    rows: list[dict[str, Any]],
    file_format: str,
    out: IO[bytes],
    *,
    columns: list[tuple[str, Any]] | None = None,
    sheet_title: str = "regional",
) -> None:
    """Write the regional table in one of REGIONAL_FORMATS to a binary file object
    (``columns``: another table of the same kind, such as the breakdown table)."""
    columns = columns or REGIONAL_COLUMNS
    names = [name for name, _definition in columns]
    if file_format == "csv":
        out.write(BOM)
        text = io.TextIOWrapper(out, encoding="utf-8", newline="", write_through=True)
        import csv

        writer = csv.DictWriter(text, fieldnames=names, lineterminator="\r\n")
        writer.writeheader()
        for row in rows:
            writer.writerow(
                {
                    key: ""
                    if value is None
                    else (value.isoformat() + "Z" if isinstance(value, dt.datetime) else value)
                    for key, value in row.items()
                }
            )
        text.detach()
    elif file_format == "json":
        payload = {
            "columns": {name: str(definition) for name, definition in columns},
            "rows": [
                {
                    key: (
                        value.isoformat() + "Z"
                        if isinstance(value, dt.datetime)
                        else _clean_float(value)
                    )
                    for key, value in row.items()
                }
                for row in rows
            ],
        }
        out.write(json.dumps(payload, ensure_ascii=False, indent=1).encode("utf-8"))
    elif file_format == "parquet":
        import pyarrow.parquet as pq

        table = pa.Table.from_pylist(
            [{k: _clean_float(v) for k, v in row.items()} for row in rows],
            schema=_regional_schema(names),
        )
        table = table.replace_schema_metadata(
            {f"definition:{name}": str(definition) for name, definition in columns}
        )
        pq.write_table(table, out)
    elif file_format == "xlsx":
        from openpyxl import Workbook
        from openpyxl.styles import Font

        book = Workbook()
        sheet = book.active
        sheet.title = sheet_title
        sheet.append(names)
        for cell in sheet[1]:
            cell.font = Font(bold=True)
        sheet.freeze_panes = "A2"
        for row in rows:
            sheet.append([_clean_float(row[name]) for name in names])
        definitions = book.create_sheet("definitions")
        definitions.append([_("Column"), _("Definition")])
        for cell in definitions[1]:
            cell.font = Font(bold=True)
        for name, definition in columns:
            definitions.append([name, str(definition)])
        definitions.append([])
        definitions.append(
            [
                _("Publication rules"),
                _(
                    "A cell is suppressed when n or the effective n is below 30, the Korn-Graubard "
                    "interval is 30 points wide or more, or wider than 5 points and more than 1.3 times "
                    "the estimate, or fewer than 10 respondents are in the numerator or denominator."
                ),
            ]
        )
        book.save(out)
    else:
        raise ExportError(_("Unknown format: %(format)s.") % {"format": file_format})


def _regional_schema(names: list[str] | None = None) -> pa.Schema:
    fields = []
    for name in names or REGIONAL_FIELD_NAMES:
        if name in FLOAT_COLUMNS:
            fields.append(pa.field(name, pa.float64()))
        elif name in INT_COLUMNS:
            fields.append(pa.field(name, pa.int64()))
        elif name == "computed_at":
            fields.append(pa.field(name, pa.timestamp("us", tz="UTC")))
        else:
            fields.append(pa.field(name, pa.string()))
    return pa.schema(fields)
