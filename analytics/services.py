"""Writes for analytics: recomputation state of waves."""

from __future__ import annotations

from django.utils import timezone

from analytics.models import WaveComputation


def mark_wave_dirty(*, wave_id: int) -> None:
    """Record that a wave's interviews changed, so its estimates must be recomputed.

    Call after commit. Many calls in a burst coalesce into one recomputation.
    """
    now = timezone.now()
    computation, created = WaveComputation.objects.get_or_create(
        wave_id=wave_id, defaults={"dirty": True, "dirty_since": now}
    )
    if not created and not computation.dirty:
        WaveComputation.objects.filter(pk=computation.pk, dirty=False).update(dirty=True, dirty_since=now)
