"""Reads for the enumerators' channel."""

from __future__ import annotations

from typing import Any

from django.db.models import QuerySet

from collect.models import Assignment, TabletInterview
from surveys.models import Channel, FormVersion, ReviewStatus, Submission


def assignments_for(enumerator: Any) -> QuerySet[Assignment]:
    return (
        Assignment.objects.filter(enumerator=enumerator)
        .select_related("wave", "wave__survey", "region", "form_version")
        .with_progress()
        .order_by("wave__code", "region__code", "settlement", "pk")
    )


def form_version_for(enumerator: Any, pk: int) -> FormVersion | None:
    """A version the enumerator may need: any version of a survey they have work in (an
    old version stays available while a draft on a tablet uses it)."""
    surveys = Assignment.objects.filter(enumerator=enumerator).values("wave__survey_id")
    return FormVersion.objects.filter(pk=pk, survey_id__in=surveys).first()


def returned_to(enumerator: Any) -> QuerySet[Submission]:
    """This enumerator's tablet interviews rejected in review and not yet corrected."""
    return (
        Submission.objects.filter(
            enumerator=enumerator,
            channel=Channel.TABLET,
            review_status=ReviewStatus.REJECTED,
            replaced_by__isnull=True,
        )
        .select_related("tablet", "reviewed_by", "form_version")
        .order_by("reviewed_at", "pk")
    )


def tablet_interviews(enumerator: Any) -> QuerySet[TabletInterview]:
    return TabletInterview.objects.filter(submission__enumerator=enumerator)
