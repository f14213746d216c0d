"""Reads of stored estimates, of the state of their recomputation, and of export jobs."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any

from django.db import models
from django.db.models import Count, Q, QuerySet
from django.shortcuts import get_object_or_404
from django.utils.translation import gettext_lazy as _

from analytics.computation import BOUNDARY_NOTES, REVIEW_FLAGS, SUPPRESSION_REASONS
from analytics.dashboard import EstimateRecord, RegionRecord
from analytics.dashboard_breakdowns import BreakdownRecord
from analytics.models import ExportJob, IndicatorEstimate, ResultSet, WaveComputation
from surveys.definition import INTERFACE_LANGUAGES
from surveys.models import Region, Survey, Wave


def current_estimates(
    *,
    wave: Wave | int | None = None,
    indicator: str | None = None,
    geography: str | None = None,
    region: Region | int | str | None = None,
) -> QuerySet[IndicatorEstimate]:
    """Published cells of the current result sets, optionally filtered.

    ``region`` is a Region, its pk, its code, or ``"national"`` for the national cells.
    """
    qs = IndicatorEstimate.objects.current().select_related("region", "wave", "previous_wave")
    if wave is not None:
        qs = qs.filter(wave=wave)
    if indicator is not None:
        qs = qs.filter(indicator=indicator)
    if geography is not None:
        qs = qs.filter(geography=geography)
    if region == "national":
        qs = qs.filter(region__isnull=True)
    elif isinstance(region, str):
        qs = qs.filter(region__code=region)
    elif region is not None:
        qs = qs.filter(region=region)
    return qs


# What a recomputation is doing, as its stage is recorded (`services.recompute_wave`,
# `computation.compute_wave`), for the pages that show it.
COMPUTATION_STAGES = {
    "reading": _("reading new interviews"),
    "weights": _("weighting"),
    "estimates": _("estimating the indicators"),
    "comparisons": _("comparing regions and waves"),
    "storing": _("storing the results"),
    "done": _("done"),
    "failed": _("failed"),
}


def computation_status(wave: Wave | int) -> dict[str, Any]:
    """What a page shows about freshness: stage, progress (0..1), as_of (when the current
    estimates were computed), n_interviews in them, and whether a recomputation is
    queued or running."""
    wave_id = wave if isinstance(wave, int) else wave.pk
    computation = WaveComputation.objects.filter(wave_id=wave_id).first()
    current = ResultSet.objects.filter(wave_id=wave_id, is_current=True).first()
    recomputing = bool(
        computation and (computation.dirty or computation.running_since or computation.scheduled_at)
    )
    return {
        "stage": computation.stage if computation else "",
        "stage_label": str(COMPUTATION_STAGES.get(computation.stage, computation.stage))
        if computation
        else "",
        "progress": computation.progress if computation else 0.0,
        "as_of": current.computed_at if current else None,
        "n_interviews": current.n_interviews if current else 0,
        "recomputing": recomputing,
        "running": bool(computation and computation.running_since),
        "weights_version": current.weights_version if current else "",
        "last_error": computation.last_error if computation else "",
    }


def explain_codes(value: str, table: dict[str, Any]) -> list[str]:
    """Translated texts for a comma-separated list of stored codes (``code`` or
    ``code:detail``)."""
    out = []
    for item in filter(None, value.split(",") if ":" not in value else [value]):
        code, _, detail = item.partition(":")
        text = str(table.get(code, code))
        out.append(f"{text} ({detail})" if detail else text)
    return out


def cell_notes(estimate: IndicatorEstimate) -> dict[str, list[str]]:
    """Suppression reasons, review flags and boundary notes of a cell, in the active
    language."""
    return {
        "suppression": explain_codes(estimate.suppression_reason, SUPPRESSION_REASONS),
        "review": explain_codes(estimate.review_flag, REVIEW_FLAGS),
        "boundary": explain_codes(estimate.boundary_note, BOUNDARY_NOTES),
    }


def regional_estimates(
    *,
    waves: Iterable[Wave] | None = None,
    geography: str | None = None,
    indicators: Iterable[str] | None = None,
    region_codes: Iterable[str] | None = None,
    include_national: bool = True,
) -> models.QuerySet[IndicatorEstimate]:
    """Current estimates for the table, with everything the rows print joined in."""
    qs = IndicatorEstimate.objects.current().select_related(
        "wave__survey", "region", "previous_wave"
    )
    if waves is not None:
        qs = qs.filter(wave__in=list(waves))
    if geography:
        qs = qs.filter(geography=geography)
    if indicators:
        qs = qs.filter(indicator__in=list(indicators))
    if region_codes:
        codes = list(region_codes)
        national = models.Q(region__isnull=True) if "KZ" in codes else models.Q(pk__in=[])
        qs = qs.filter(models.Q(region__code__in=codes) | national)
    if not include_national:
        qs = qs.filter(region__isnull=False)
    return qs.order_by("wave__survey__code", "wave__code", "geography", "indicator", "region__code")


def comparison_estimates(params: dict[str, Any], user: Any) -> models.QuerySet[IndicatorEstimate]:
    """The regional table's estimates for a query of the comparison endpoints and pages
    (``wave``: wave ids, ``geography``, ``indicator`` and ``region``: lists of codes), of
    the user's surveys only; naming a wave of another survey is refused (403)."""
    from access import permissions as access

    capability = access.Capability.VIEW_ESTIMATES
    if params.get("wave") and not access.waves_allowed(user, capability, params["wave"]):
        raise access.Forbidden  # Django's, so the HTML download view answers 403 too
    waves = Wave.objects.filter(pk__in=params["wave"]) if params.get("wave") else None
    estimates = regional_estimates(
        waves=waves,
        geography=params.get("geography"),
        indicators=params.get("indicator"),
        region_codes=params.get("region"),
    )
    return access.filter_by_survey(estimates, user, capability, "wave__survey")


def export_job_for(user: Any, pk: int) -> ExportJob:
    """A user's own export job (404 for anyone else's)."""
    return get_object_or_404(ExportJob, pk=pk, requested_by=user)


# The dashboard's reads: plain records for the pure `analytics.dashboard`, a fixed number
# of queries per page whatever the number of regions.

ESTIMATE_RECORD_FIELDS = (
    "wave_id",
    "geography",
    "region_id",
    "estimate",
    "ci_low",
    "ci_high",
    "n",
    "suppressed",
    "suppression_reason",
    "review_flag",
    "boundary_note",
    "previous_estimate",
    "change",
    "change_se",
    "change_p_adjusted",
)


def waves_with_estimates(survey: Survey) -> list[Wave]:
    """The survey's waves that have current estimates, by code."""
    return list(
        Wave.objects.filter(survey=survey, result_sets__is_current=True)
        .select_related("survey")
        .order_by("code")
    )


def published_regional_cells(wave: Wave) -> dict[str, int]:
    """Indicator code -> number of published regional cells of the wave's current results."""
    rows = (
        IndicatorEstimate.objects.current()
        .filter(wave=wave, region__isnull=False, suppressed=False)
        .values("indicator")
        .annotate(cells=Count("id"))
    )
    return {row["indicator"]: row["cells"] for row in rows}


def dashboard_estimates(
    *, waves: Sequence[Wave], indicator: str, geography: str | None = None
) -> list[EstimateRecord]:
    """Current cells of one indicator in the chosen waves: the regional cells of the
    geography (all when None) and every wave's national cell, which is stored once under
    the wave's own geography."""
    qs = IndicatorEstimate.objects.current().filter(
        wave__in=[w.pk for w in waves], indicator=indicator
    )
    if geography:
        qs = qs.filter(Q(geography=geography) | Q(region__isnull=True))
    out = []
    for row in qs.values(*ESTIMATE_RECORD_FIELDS, "previous_wave__code"):
        previous = row.pop("previous_wave__code") or ""
        out.append(EstimateRecord(**row, previous_wave=previous))
    return out


def dashboard_regions(geographies: Iterable[str], language: str) -> list[RegionRecord]:
    """Regions of the geographies with their names in the language (kk when unknown)."""
    language = language if language in INTERFACE_LANGUAGES else "kk"
    rows = Region.objects.filter(geography__in=list(geographies)).values(
        "id", "geography", "code", f"name_{language}", "tile_row", "tile_col"
    )
    return [
        RegionRecord(
            id=row["id"],
            geography=row["geography"],
            code=row["code"],
            name=row[f"name_{language}"],
            tile_row=row["tile_row"],
            tile_col=row["tile_col"],
        )
        for row in rows
    ]


def dashboard_breakdown_estimates(
    *, waves: Sequence[Wave], indicator: str, breakdown: str
) -> list[BreakdownRecord]:
    """Current national group cells of one indicator and breakdown in the chosen waves."""
    from analytics.models import BreakdownEstimate

    qs = BreakdownEstimate.objects.current().filter(
        wave__in=[w.pk for w in waves], indicator=indicator, breakdown=breakdown, region=None
    )
    fields = [f for f in BreakdownRecord.__dataclass_fields__ if f != "wave_id"]
    return [
        BreakdownRecord(wave_id=row.pop("wave_id"), **row) for row in qs.values("wave_id", *fields)
    ]
