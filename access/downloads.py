"""The audit event of a file sent to someone: who, which waves, which format, how many rows.

Never any of the data. Written before the response is sent: a download whose event cannot
be stored is not sent.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from django.db import transaction

from audit.models import AuditAction, AuditEvent
from audit.services import record


def record_download(
    *,
    user: Any,
    kind: str,
    wave_ids: Iterable[int],
    file_format: str,
    rows: int | None,
    job: Any = None,
) -> AuditEvent:
    """``kind`` is "regional", "breakdowns" or "summaries" (aggregates), "microdata" or
    "codebook"; ``job`` the export job, if any. Aggregates are recorded as such."""
    from surveys.models import Wave

    waves = list(
        Wave.objects.filter(pk__in=list(wave_ids))
        .order_by("survey__code", "code")
        .values_list("pk", "survey_id", "survey__code", "code")
    )
    surveys = sorted({survey_id for _pk, survey_id, _s, _c in waves})
    action = (
        AuditAction.REGIONAL_DOWNLOADED
        if kind in {"regional", "breakdowns", "summaries"}
        else AuditAction.MICRODATA_DOWNLOADED
    )
    detail: dict[str, Any] = {
        "kind": kind,
        "format": file_format,
        "rows": rows,
        "waves": [pk for pk, _s, _sc, _c in waves],
        "wave_codes": [f"{survey_code}/{code}" for _pk, _s, survey_code, code in waves],
        "surveys": surveys,
    }
    if job is not None:
        detail["export_job"] = job.pk
    with transaction.atomic():
        return record(
            actor=user,
            action=action,
            obj=job,
            survey_id=surveys[0] if len(surveys) == 1 else None,
            detail=detail,
        )
