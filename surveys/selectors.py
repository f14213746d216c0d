"""Reads that span models."""

from __future__ import annotations

from django.db.models import Count, QuerySet

from surveys.models import InvitationLink, Survey, Wave


def waves_with_counts() -> QuerySet[Wave]:
    return (
        Wave.objects.select_related("survey", "form_version")
        .annotate(n_submissions=Count("submissions"))
        .order_by("survey__code", "code")
    )


def link_for_token(token: str) -> InvitationLink | None:
    """The invitation link with its wave, survey and questionnaire, or None."""
    if not token or len(token) > 64:
        return None
    return (
        InvitationLink.objects.select_related("wave__survey", "wave__form_version")
        .filter(token=token)
        .first()
    )


def wave_token(wave_id: int) -> int:
    """The wave's creation time in microseconds (0 when the wave does not exist).

    Files derived from a wave (snapshots, export caches) carry it, so a file left by
    another database whose wave had the same id is never taken for this wave's.
    """
    created = Wave.objects.filter(pk=wave_id).values_list("created_at", flat=True).first()
    return int(created.timestamp() * 1_000_000) if created else 0


def estimates_condition_sql(wave_id: int, alias: str = "s") -> str:
    """SQL selecting the wave's interviews that feed its estimates (`Submission.objects.
    feeding_estimates`), on the submissions table aliased ``alias``: for readers that
    query the table directly."""
    survey = Survey.objects.filter(waves__pk=wave_id).only("estimate_statuses").first()
    return survey.estimate_condition_sql(alias) if survey is not None else "(1 = 0)"
