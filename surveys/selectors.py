"""Reads that span models."""

from __future__ import annotations

from django.db.models import Count, QuerySet

from surveys.models import InvitationLink, Wave


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
