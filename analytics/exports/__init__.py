"""Downloads for researchers: the regional comparison table, interview microdata and
codebooks, built in the request or as export jobs. One role per module:

* `formats`: kinds, formats, content types and `ExportError`;
* `regional`: the regional table's columns, rows and files;
* `codebook`: the microdata's variables, codes and labels, and the codebook workbook;
* `reader`: interviews read from the database as typed Arrow columns;
* `batches`: the codebook's columns of a selection, from the cache or read live;
* `writers`: the microdata files (CSV, XLSX, SPSS, Stata);
* `xlsx`: the column-wise XLSX writer;
* `jobs`: export jobs and the one decision "build now or start a job";
* `tasks`: the Celery tasks, which call `jobs` and `cache`.

The names below are the package's public interface, for callers outside it, each
imported when first asked for: importing one module of the package (the store reads
`reader`) does not import them all. Modules of the package import each other directly,
never this one.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from analytics.exports.formats import (
        CONTENT_TYPES,
        KINDS,
        MICRODATA_FORMATS,
        REGIONAL_FORMATS,
        ExportError,
    )
    from analytics.exports.jobs import (
        can_export,
        clean_parameters,
        create_export_job,
        direct_export_limit,
        download_filename,
        export_filename,
        request_export,
        retry_export_job,
        run_export_job,
    )
    from analytics.exports.reader import MicrodataSelection
    from analytics.exports.regional import (
        FLOAT_COLUMNS,
        INT_COLUMNS,
        REGIONAL_COLUMNS,
        REGIONAL_FIELD_NAMES,
        indicator_catalogue,
        regional_row,
        regional_rows,
        write_regional,
    )
    from analytics.exports.writers import write_microdata
    from analytics.selectors import regional_estimates

_MODULE_OF = {
    "CONTENT_TYPES": "analytics.exports.formats",
    "ExportError": "analytics.exports.formats",
    "FLOAT_COLUMNS": "analytics.exports.regional",
    "INT_COLUMNS": "analytics.exports.regional",
    "KINDS": "analytics.exports.formats",
    "MICRODATA_FORMATS": "analytics.exports.formats",
    "MicrodataSelection": "analytics.exports.reader",
    "REGIONAL_COLUMNS": "analytics.exports.regional",
    "REGIONAL_FIELD_NAMES": "analytics.exports.regional",
    "REGIONAL_FORMATS": "analytics.exports.formats",
    "can_export": "analytics.exports.jobs",
    "clean_parameters": "analytics.exports.jobs",
    "create_export_job": "analytics.exports.jobs",
    "direct_export_limit": "analytics.exports.jobs",
    "download_filename": "analytics.exports.jobs",
    "export_filename": "analytics.exports.jobs",
    "indicator_catalogue": "analytics.exports.regional",
    "regional_estimates": "analytics.selectors",
    "regional_row": "analytics.exports.regional",
    "regional_rows": "analytics.exports.regional",
    "request_export": "analytics.exports.jobs",
    "retry_export_job": "analytics.exports.jobs",
    "run_export_job": "analytics.exports.jobs",
    "write_microdata": "analytics.exports.writers",
    "write_regional": "analytics.exports.regional",
}

__all__ = [
    "CONTENT_TYPES",
    "FLOAT_COLUMNS",
    "INT_COLUMNS",
    "KINDS",
    "MICRODATA_FORMATS",
    "REGIONAL_COLUMNS",
    "REGIONAL_FIELD_NAMES",
    "REGIONAL_FORMATS",
    "ExportError",
    "MicrodataSelection",
    "can_export",
    "clean_parameters",
    "create_export_job",
    "direct_export_limit",
    "download_filename",
    "export_filename",
    "indicator_catalogue",
    "regional_estimates",
    "regional_row",
    "regional_rows",
    "request_export",
    "retry_export_job",
    "run_export_job",
    "write_microdata",
    "write_regional",
]


def __getattr__(name: str) -> Any:
    module = _MODULE_OF.get(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value
    return value
