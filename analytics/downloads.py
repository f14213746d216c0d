"""HTTP responses that send export files, shared by the HTML views and the API."""

from __future__ import annotations

import io
from typing import Any

from django.http import FileResponse, HttpResponse, JsonResponse
from django.http.response import HttpResponseBase
from django.utils.translation import gettext as _

from access import permissions as access
from access.downloads import record_download
from analytics.exports.formats import CONTENT_TYPES
from analytics.exports.jobs import download_filename, download_name
from analytics.exports.regional import regional_rows, write_regional
from analytics.models import ExportJob
from analytics.selectors import comparison_estimates
from surveys.attachments import attachment_disposition
from surveys.models import Wave


def _table_response(
    kind: str, rows: list[dict], write: Any, estimates: Any, file_format: str, user: Any
) -> HttpResponse:
    """A table of estimates as a file, built in the request and audited; named after the
    survey and waves its cells come from (`download_name`)."""
    buffer = io.BytesIO()
    write(rows, file_format, buffer)
    wave_ids = sorted(set(estimates.values_list("wave_id", flat=True)))
    record_download(
        user=user, kind=kind, wave_ids=wave_ids, file_format=file_format, rows=len(rows)
    )
    waves = list(Wave.objects.filter(pk__in=wave_ids).select_related("survey"))
    response = HttpResponse(buffer.getvalue(), content_type=CONTENT_TYPES[file_format])
    response["Content-Disposition"] = attachment_disposition(
        download_name(waves, kind, file_format)
    )
    return response


def regional_download_response(params: dict[str, Any], file_format: str, user: Any) -> HttpResponse:
    """The regional table of a comparison query as a file (audited)."""
    estimates = comparison_estimates(params, user)
    return _table_response(
        "regional", regional_rows(estimates), write_regional, estimates, file_format, user
    )


def export_file_response(job: ExportJob, user: Any) -> HttpResponseBase:
    """A finished job's file, for its owner while their grant still covers its waves
    (audited); 410 once it has expired, 409 before it is ready."""
    access.require(user, access.capability_for_export(job.kind), job)
    if job.status == ExportJob.Status.EXPIRED:
        return JsonResponse(
            {"detail": _("The export file expired and was deleted; ask for the export again.")},
            status=410,
        )
    if job.status != ExportJob.Status.DONE or not job.file:
        return JsonResponse({"detail": _("The export is not ready.")}, status=409)
    record_download(
        user=user,
        kind=job.kind,
        wave_ids=access.job_wave_ids(job),
        file_format=job.file_format,
        rows=job.rows_total if job.rows_total is not None else job.rows_done,
        job=job,
    )
    response = FileResponse(
        job.file.open("rb"),
        as_attachment=True,
        content_type=CONTENT_TYPES.get(job.file_format, "application/octet-stream"),
    )
    response["Content-Disposition"] = attachment_disposition(download_filename(job))
    return response


def breakdown_download_response(estimates: Any, file_format: str, user: Any) -> HttpResponse:
    """The breakdown table of a filtered query of breakdown cells, as a file (audited)."""
    from analytics.exports.breakdowns import breakdown_rows, write_breakdowns

    return _table_response(
        "breakdowns", breakdown_rows(estimates), write_breakdowns, estimates, file_format, user
    )
