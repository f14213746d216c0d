"""Reads that span models."""

from __future__ import annotations

from django.db.models import Count, QuerySet

from surveys.models import Wave


def waves_with_counts() -> QuerySet[Wave]:
    return (
        Wave.objects.select_related("survey", "form_version")
        .annotate(n_submissions=Count("submissions"))
        .order_by("survey__code", "code")
    )
