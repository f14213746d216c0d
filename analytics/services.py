"""Writes for analytics: recomputation state of waves, stored result sets, margins.

How recomputation is coalesced and made safe against dying workers:

* ``mark_wave_dirty`` sets the wave's dirty flag, bumps its ``generation`` and queues a
  run only when none is scheduled (a conditional update on ``scheduled_at``): a burst of
  1,000 interviews queues one task, ``RECOMPUTE_DELAY`` seconds later. A mark that finds
  the interviews it follows already covered writes nothing (one read): a run is queued
  and has not started (it will read them), or a run is going and a mark already came in
  since it started (its end queues the next run, which will read them). A burst thus
  costs a couple of writes, not one per interview.
* A run claims the wave (conditional update: nobody running, or the runner's heartbeat
  is older than ``STALE_AFTER``), refreshes the snapshot, computes, writes a complete new
  ``ResultSet`` and switches ``is_current`` in one transaction. At the end it clears the
  dirty flag only if no interview arrived meanwhile (same generation); otherwise it
  queues itself again.
* A worker killed mid-run leaves the previous set current and the wave dirty; the next
  run (redelivered message, the sweep at worker start, or the next interview) redoes it.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Iterable
from datetime import timedelta
from functools import cache, partial
from typing import Any

from django.conf import settings
from django.db import DatabaseError, connection, transaction
from django.db.models import F, Q, Value
from django.db.models.functions import Coalesce
from django.utils import timezone

from analytics import dispatch
from analytics import snapshot as snapshots
from analytics.computation import ComputedWave, compute_wave, next_waves
from analytics.indicators import definitions_hash
from analytics.models import (
    BreakdownEstimate,
    IndicatorEstimate,
    PopulationMargins,
    ResultSet,
    WaveComputation,
)
from config import rows
from surveys.models import Wave

log = logging.getLogger(__name__)

KEEP_RESULT_SETS = 3
RECOMPUTE = "analytics.tasks.recompute_wave_estimates"
UPDATE_EXPORT_CACHE = "analytics.exports.tasks.update_export_cache"
WARM_SUMMARIES = "analytics.tasks.warm_question_summaries"
# Set while a warm-up of a wave's question summaries is queued and not started: the
# recomputations that end meanwhile are covered by it (it reads the current result set).
# A lost message holds the next warm-up back for at most WARM_QUEUED_SECONDS.
WARM_QUEUED_KEY = "tanys:summaries-warm:{wave_id}"
WARM_QUEUED_SECONDS = 120


def recompute_delay() -> float:
    """Seconds between the first new interview and the run that includes it: interviews
    arriving meanwhile (and while a run is going) are coalesced into that run or the next
    (setting RECOMPUTE_DELAY)."""
    return float(settings.RECOMPUTE_DELAY)


def stale_after() -> float:
    """Seconds without a heartbeat after which a claimed run is taken over (setting
    COMPUTATION_STALE_SECONDS)."""
    return float(settings.COMPUTATION_STALE_SECONDS)


def _enqueue(wave_id: int, countdown: float) -> None:
    """Run or queue the wave's recomputation (after commit). A broker that cannot be
    reached leaves the wave dirty and unscheduled, so the periodic sweep
    (`resume_pending_computations`) or the next interview queues it again."""
    dispatch.after_commit(
        RECOMPUTE,
        wave_id,
        countdown=countdown,
        on_broker_error=partial(_unschedule, wave_id),
        background=True,
    )


def _unschedule(wave_id: int) -> None:
    WaveComputation.objects.filter(wave_id=wave_id, running_since__isnull=True).update(
        scheduled_at=None, stage="queued"
    )


def mark_wave_dirty(*, wave_id: int) -> bool:
    """Record that a wave's interviews changed, so its estimates must be recomputed.

    Call after commit. Many calls in a burst coalesce into one recomputation: only the
    call that finds nothing scheduled queues a run (after commit). Returns whether
    this call queued it.
    """
    now = timezone.now()
    if _covered(wave_id, now):
        return False
    bump = {
        "dirty": True,
        "generation": F("generation") + 1,
        "dirty_since": Coalesce(F("dirty_since"), Value(now)),
    }
    if not WaveComputation.objects.filter(wave_id=wave_id).update(**bump):
        WaveComputation.objects.get_or_create(wave_id=wave_id)
        WaveComputation.objects.filter(wave_id=wave_id).update(**bump)
    # A schedule whose run never started (lost message) is renewed after the stale limit.
    lost = now - timedelta(seconds=stale_after())
    queued = WaveComputation.objects.filter(
        Q(scheduled_at__isnull=True)
        | Q(scheduled_at__lt=lost, running_since__isnull=True)
        | Q(scheduled_at__lt=lost, heartbeat_at__lt=lost),
        wave_id=wave_id,
    ).update(scheduled_at=now)
    if queued:
        _enqueue(wave_id, recompute_delay())
    return bool(queued)


_COVERED_FIELDS = ("scheduled_at", "running_since", "heartbeat_at", "generation", "run_generation")


@cache
def _covered_sql(vendor: str) -> str:
    columns = ", ".join(rows.column(WaveComputation, name, "c") for name in _COVERED_FIELDS)
    return (
        f"SELECT {columns} FROM {rows.table(WaveComputation)} c "
        f"WHERE {rows.column(WaveComputation, 'wave', 'c')} = %s "
        f"AND {rows.column(WaveComputation, 'dirty', 'c')}"
    )


def _covered(wave_id: int, now: Any) -> bool:
    """Whether a run that will read the interviews committed so far is already sure to
    come, so that marking them needs no write (see the module docstring).

    Sound because the mark follows the commit of its interviews: a state read as "queued,
    not started" means the run's claim, and so its snapshot, comes after that commit; a
    state read as "running, marked since its claim" means that run has not finished, and
    its end (whose generation check fails) queues the next run. A claim or schedule older
    than the stale limit is not trusted."""
    # Asked after every interview a device sends: SQL written once, not a query compiled
    # each time (`config.rows`).
    with rows.cursor() as cursor:
        cursor.execute(_covered_sql(connection.vendor), [wave_id])
        state = cursor.fetchone()
    if state is None:
        return False
    scheduled_at, running_since, heartbeat_at, generation, run_generation = (
        rows.convert(WaveComputation, name, value)
        for name, value in zip(_COVERED_FIELDS, state, strict=True)
    )
    lost = now - timedelta(seconds=stale_after())
    if running_since is None:
        return scheduled_at is not None and scheduled_at >= lost
    return (
        heartbeat_at is not None
        and heartbeat_at >= lost
        and run_generation is not None
        and generation > run_generation
    )


def schedule_export_cache_update(*, wave_id: int) -> bool:
    """Have a worker merge the small segments the period's recomputations appended to
    the wave's store (and add any interview still missing), at most once per
    EXPORT_CACHE_DELAY: the first call of a period queues the update at its end, and the
    calls until then are covered by it. Returns whether an update was queued."""
    from django.core.cache import cache

    delay = settings.EXPORT_CACHE_DELAY
    if delay > 0 and not cache.add(f"tanys:export-cache:{wave_id}", 1, timeout=delay):
        return False
    # Housekeeping only: every recomputation and export brings the store up to date.
    return dispatch.run_or_queue(UPDATE_EXPORT_CACHE, wave_id, countdown=delay)


def schedule_summaries_warmup(*, wave_id: int) -> bool:
    """Have the wave's question summaries computed for its new result set before a
    researcher asks (`analytics.summaries.warm_summaries`); one warm-up queued at a time
    per wave. Returns whether one was run or queued."""
    from django.core.cache import cache

    key = WARM_QUEUED_KEY.format(wave_id=wave_id)
    if not cache.add(key, 1, timeout=WARM_QUEUED_SECONDS):
        return False

    def unqueued() -> None:
        cache.delete(key)

    return dispatch.run_or_queue(WARM_SUMMARIES, wave_id, on_broker_error=unqueued)


def run_recomputation(*, wave_id: int, force: bool = False) -> str:
    """What the worker does for a wave (see `recompute_wave`), and what follows from it:
    the store's small segments merged a while later and the question summaries computed
    ahead of time, not when a researcher waits;
    a wave held by another run is tried again once that run's claim could go stale."""
    outcome = recompute_wave(wave_id=wave_id, force=force)
    if outcome == "computed":
        schedule_export_cache_update(wave_id=wave_id)
        schedule_summaries_warmup(wave_id=wave_id)
    elif outcome == "busy":
        # The other run re-checks for new interviews when it ends; if its worker died,
        # the claim goes stale and this retry takes over.
        dispatch.run_or_queue(RECOMPUTE, wave_id, countdown=stale_after() / 2 + 1, broker_only=True)
    return outcome


def interviews_changed(*, wave_ids: Iterable[int], answers_edited: bool = False) -> None:
    """Interviews of these waves were re-reviewed, rejected, deleted or edited.

    Rejections and deletions are found by the snapshot's reconciliation; answers edited
    in place (``answers_edited``) force a rebuild of the snapshot.
    """
    for wave_id in set(wave_ids):
        if answers_edited:
            WaveComputation.objects.get_or_create(wave_id=wave_id)
            WaveComputation.objects.filter(wave_id=wave_id).update(data_epoch=F("data_epoch") + 1)
        mark_wave_dirty(wave_id=wave_id)


def save_population_margins(
    *, wave: Wave, table: list[dict[str, Any]], source: str = "", user: Any = None
) -> PopulationMargins:
    """Store the next version of a wave's margins and recompute the wave."""
    with transaction.atomic():
        Wave.objects.select_for_update().get(pk=wave.pk)
        latest = PopulationMargins.objects.filter(wave=wave).order_by("-version").first()
        margins = PopulationMargins.objects.create(
            wave=wave,
            version=(latest.version + 1) if latest else 1,
            source=source,
            table=table,
            uploaded_by=user if getattr(user, "pk", None) else None,
        )
        transaction.on_commit(lambda: mark_wave_dirty(wave_id=wave.pk))
    return margins


# ---------------------------------------------------------------------- running


def _claim(wave_id: int) -> WaveComputation | None:
    now = timezone.now()
    stale = now - timedelta(seconds=stale_after())
    WaveComputation.objects.get_or_create(wave_id=wave_id)
    claimed = WaveComputation.objects.filter(
        Q(running_since__isnull=True) | Q(heartbeat_at__lt=stale) | Q(heartbeat_at__isnull=True),
        wave_id=wave_id,
    ).update(
        running_since=now,
        heartbeat_at=now,
        stage="snapshot",
        progress=0.0,
        run_generation=F("generation"),
    )
    if not claimed:
        return None
    return WaveComputation.objects.get(wave_id=wave_id)


def _beat(wave_id: int, stage: str, fraction: float) -> None:
    WaveComputation.objects.filter(wave_id=wave_id).update(
        stage=stage, progress=max(0.0, min(1.0, fraction)), heartbeat_at=timezone.now()
    )


def needs_recompute(computation: WaveComputation) -> bool:
    current = ResultSet.objects.filter(wave_id=computation.wave_id, is_current=True).first()
    return computation.dirty or current is None or current.definitions_hash != definitions_hash()


def store_result_set(computed: ComputedWave) -> ResultSet:
    """Write a complete new result set, then make it current in one transaction."""
    now = timezone.now()
    result_set = ResultSet.objects.create(
        wave=computed.wave,
        n_interviews=computed.n_interviews,
        data_version=computed.data_version,
        weights_version=computed.weights_version,
        definitions_hash=computed.definitions_hash,
    )
    estimates = [
        IndicatorEstimate(
            result_set=result_set,
            wave=computed.wave,
            weights_version=computed.weights_version,
            data_version=computed.data_version,
            computed_at=now,
            **row,
        )
        for row in computed.rows
    ]
    breakdown_estimates = [
        BreakdownEstimate(
            result_set=result_set,
            wave=computed.wave,
            weights_version=computed.weights_version,
            data_version=computed.data_version,
            computed_at=now,
            **row,
        )
        for row in computed.breakdown_rows
    ]
    with transaction.atomic():
        if connection.vendor == "postgresql":
            _copy_estimates(IndicatorEstimate, estimates)
            _copy_estimates(BreakdownEstimate, breakdown_estimates)
        else:
            IndicatorEstimate.objects.bulk_create(estimates, batch_size=1000)
            BreakdownEstimate.objects.bulk_create(breakdown_estimates, batch_size=1000)
    with transaction.atomic():
        # Serialise switches of one wave; readers see either the old or the new set.
        WaveComputation.objects.select_for_update().filter(wave=computed.wave).first()
        ResultSet.objects.filter(wave=computed.wave, is_current=True).update(is_current=False)
        ResultSet.objects.filter(pk=result_set.pk).update(
            status=ResultSet.Status.READY, is_current=True, computed_at=now
        )
    result_set.refresh_from_db()
    prune_result_sets(wave_id=computed.wave.pk)
    return result_set


def _copy_estimates(
    model: type[IndicatorEstimate] | type[BreakdownEstimate],
    estimates: list[IndicatorEstimate] | list[BreakdownEstimate],
) -> None:
    """PostgreSQL COPY: a result set is written in a fraction of bulk_create's time."""
    if not estimates:
        return
    fields = [f for f in model._meta.concrete_fields if not f.primary_key]
    columns = ", ".join(connection.ops.quote_name(str(f.column)) for f in fields)
    table = connection.ops.quote_name(model._meta.db_table)
    with (
        connection.cursor() as cursor,
        cursor.cursor.copy(f"COPY {table} ({columns}) FROM STDIN") as copy,
    ):
        for estimate in estimates:
            copy.write_row([getattr(estimate, f.attname) for f in fields])


def prune_result_sets(*, wave_id: int, keep: int = KEEP_RESULT_SETS) -> int:
    """Delete old sets beyond the newest ``keep`` ready ones, and abandoned builds."""
    old_ready = ResultSet.objects.filter(
        wave_id=wave_id, is_current=False, status=ResultSet.Status.READY
    ).order_by("-started_at")[keep:]
    abandoned = ResultSet.objects.filter(
        wave_id=wave_id,
        status__in=[ResultSet.Status.BUILDING, ResultSet.Status.FAILED],
        started_at__lt=timezone.now() - timedelta(hours=1),
    )
    ids = [r.pk for r in old_ready] + list(abandoned.values_list("pk", flat=True))
    deleted, _ = ResultSet.objects.filter(pk__in=ids).delete()
    return deleted


def recompute_wave(*, wave_id: int, force: bool = False) -> str:
    """Bring a wave's stored estimates up to date. Idempotent; safe to run twice.

    Returns what happened: ``"computed"``, ``"up to date"``, ``"busy"`` (another run
    holds the wave; it re-checks for new interviews when it ends) or ``"no wave"``.
    """
    wave = Wave.objects.select_related("survey").filter(pk=wave_id).first()
    if wave is None:
        return "no wave"
    computation = _claim(wave_id)
    if computation is None:
        return "busy"
    generation = computation.generation
    try:
        # An interrupted run left the wave dirty (only a finished run clears it).
        if not force and not needs_recompute(computation):
            _finish(wave_id, generation, error="")
            return "up to date"
        started = time.perf_counter()
        with _Reading(wave_id) as reading:
            snapshot, how = snapshots.refresh(
                wave_id, epoch=computation.data_epoch, preparing=reading
            )
        _beat(wave_id, "estimates", 0.1)
        computed = compute_wave(wave, snapshot, progress=_Progress(wave_id))
        _beat(wave_id, "storing", 0.95)
        result_set = store_result_set(computed)
        log.info(
            "wave %s: result set %s, %s interviews (snapshot %s) in %.2f s",
            wave_id,
            result_set.pk,
            snapshot.n,
            how,
            time.perf_counter() - started,
        )
    except Exception as exc:
        WaveComputation.objects.filter(wave_id=wave_id).update(
            running_since=None,
            heartbeat_at=None,
            run_generation=None,
            scheduled_at=None,
            stage="failed",
            last_error=f"{type(exc).__name__}: {exc}"[:2000],
        )
        raise
    _finish(wave_id, generation, error="; ".join(computed.notes))
    for later in next_waves(wave):
        # Their comparisons with this wave are now stale.
        if ResultSet.objects.filter(wave=later, is_current=True).exists():
            mark_wave_dirty(wave_id=later.pk)
    return "computed"


class _Progress:
    """Writes stage and progress (and the heartbeat) when the stage changes, progress
    has moved by a tenth or a second has passed: a handful of updates per run, not one
    per indicator."""

    def __init__(self, wave_id: int) -> None:
        self.wave_id, self.stage, self.fraction, self.at = wave_id, "", -1.0, 0.0

    def __call__(self, stage: str, fraction: float) -> None:
        now = time.monotonic()
        if stage != self.stage or fraction - self.fraction >= 0.1 or now - self.at >= 1.0:
            self.stage, self.fraction, self.at = stage, fraction, now
            _beat(self.wave_id, stage, fraction)


class _Reading:
    """Progress of the store's update before the estimates (the first tenth of a run),
    told (interviews parsed, interviews to parse) while the run's connection is busy
    reading: written once a second from a thread and connection of its own, which also
    keeps the run's heartbeat while a large wave is read."""

    def __init__(self, wave_id: int) -> None:
        self.wave_id = wave_id
        self.fraction = 0.0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="tanys-reading", daemon=True)

    def __call__(self, done: int, total: int) -> None:
        self.fraction = 0.1 * done / max(total, 1)

    def __enter__(self) -> _Reading:
        _beat(self.wave_id, "reading", 0.0)
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()

    def _run(self) -> None:
        try:
            while not self._stop.wait(1.0):
                _beat(self.wave_id, "reading", self.fraction)
        except DatabaseError:  # progress only: the run itself goes on and beats again
            log.warning("wave %s: reading progress not recorded", self.wave_id, exc_info=True)
        finally:
            connection.close()


def _finish(wave_id: int, generation: int, *, error: str) -> None:
    now = timezone.now()
    with transaction.atomic():
        done = WaveComputation.objects.filter(wave_id=wave_id, generation=generation).update(
            dirty=False,
            dirty_since=None,
            scheduled_at=None,
            running_since=None,
            heartbeat_at=None,
            run_generation=None,
            stage="done",
            progress=1.0,
            last_completed_at=now,
            last_error=error,
        )
        if not done:
            # Interviews arrived while running: keep dirty, run again.
            WaveComputation.objects.filter(wave_id=wave_id).update(
                running_since=None,
                heartbeat_at=None,
                run_generation=None,
                scheduled_at=now,
                stage="queued",
                progress=0.0,
                last_completed_at=now,
                last_error=error,
            )
            _enqueue(wave_id, recompute_delay())


def resume_pending_computations_ids() -> list[int]:
    """Waves that are dirty, were interrupted, have no current result set, or whose
    results predate the indicator definitions."""
    current_hash = definitions_hash()
    wave_ids: set[int] = set(
        WaveComputation.objects.filter(Q(dirty=True) | Q(running_since__isnull=False)).values_list(
            "wave_id", flat=True
        )
    )
    with_current = dict(
        ResultSet.objects.filter(is_current=True).values_list("wave_id", "definitions_hash")
    )
    for wave_id in Wave.objects.values_list("pk", flat=True):
        if with_current.get(wave_id) != current_hash:
            wave_ids.add(wave_id)
    return sorted(wave_ids)


def resume_pending_computations(*, unscheduled_only: bool = False) -> list[int]:
    """Queue a run for every wave that needs one (see ``resume_pending_computations_ids``).
    Called when a worker starts, at the end of ``setup_demo`` and, with
    ``unscheduled_only``, periodically: then only the waves whose run is not queued (the
    broker was unreachable) or whose schedule or run went stale are queued, so a wave
    waiting for its run is not queued twice. A run that failed (an error, recorded on the
    wave) is not retried every sweep: the next interview or worker start retries it."""
    wave_ids = resume_pending_computations_ids()
    if unscheduled_only:
        lost = timezone.now() - timedelta(seconds=stale_after())
        live = set(
            WaveComputation.objects.filter(wave_id__in=wave_ids)
            .filter(
                Q(running_since__isnull=True, scheduled_at__gte=lost)
                | Q(running_since__isnull=False, heartbeat_at__gte=lost)
                | Q(running_since__isnull=True, stage="failed")
            )
            .values_list("wave_id", flat=True)
        )
        wave_ids = [wave_id for wave_id in wave_ids if wave_id not in live]
    for wave_id in wave_ids:
        WaveComputation.objects.get_or_create(wave_id=wave_id)
        WaveComputation.objects.filter(wave_id=wave_id).update(
            dirty=True, generation=F("generation") + 1, scheduled_at=timezone.now()
        )
        _enqueue(wave_id, 0)
    return wave_ids
