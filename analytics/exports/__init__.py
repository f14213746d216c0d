"""Downloads for researchers: the regional comparison table, interview microdata and
codebooks, built in the request or as export jobs. One role per module:

* `formats`: kinds, formats, content types and `ExportError`;
* `regional`: the regional table's columns, rows and files;
* `codebook`: the microdata's variables, codes and labels, and the codebook workbook;
* `reader`: interviews read from the database as typed Arrow columns;
* `cache`: a wave's export cache (`WaveCache`), interviews parsed once;
* `batches`: the codebook's columns of a selection, from the cache or read live;
* `writers`: the microdata files (CSV, XLSX, SPSS, Stata);
* `xlsx`: the column-wise XLSX writer;
* `jobs`: export jobs and the one decision "build now or start a job";
* `tasks`: the Celery tasks, which call `jobs` and `cache`.

The names below are the package's public interface, for callers outside it; modules of
the package import each other directly, never this one.
"""

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
