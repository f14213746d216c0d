"""HTTP responses that send export files, shared by the HTML views and the API."""

from __future__ import annotations

import io
from typing import Any

from django.http import FileResponse, HttpResponse
from django.http.response import HttpResponseBase
from django.utils.translation import gettext as _

from analytics.exports.formats import CONTENT_TYPES
from analytics.exports.jobs import export_filename
from analytics.exports.regional import regional_filename, regional_rows, write_regional
from analytics.models import ExportJob
from analytics.selectors import comparison_estimates


def regional_download_response(params: dict[str, Any], file_format: str) -> HttpResponse:
    """The regional table of a comparison query as a file, built in the request."""
    rows = regional_rows(comparison_estimates(params))
    buffer = io.BytesIO()
    write_regional(rows, file_format, buffer)
    response = HttpResponse(buffer.getvalue(), content_type=CONTENT_TYPES[file_format])
    response["Content-Disposition"] = f'attachment; filename="{regional_filename(file_format)}"'
    return response


def export_file_response(job: ExportJob) -> HttpResponseBase:
    """A finished job's file; 410 once it has expired, 409 before it is ready."""
    if job.status == ExportJob.Status.EXPIRED:
        return HttpResponse(
            status=410,
            content=_("The export file expired and was deleted; ask for the export again."),
            content_type="text/plain; charset=utf-8",
        )
    if job.status != ExportJob.Status.DONE or not job.file:
        return HttpResponse(status=409, content=b"The export is not ready.")
    return FileResponse(
        job.file.open("rb"),
        as_attachment=True,
        filename=export_filename(job),
        content_type=CONTENT_TYPES.get(job.file_format, "application/octet-stream"),
    )
