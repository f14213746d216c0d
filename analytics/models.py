"""Stored estimates, the state of their recomputation, population margins and export jobs."""

from __future__ import annotations

from django.conf import settings
from django.db import models
from django.db.models import Q
from django.utils.translation import gettext_lazy as _

from surveys.models import Geography, Region, Wave


class PopulationMargins(models.Model):
    """A versioned table of population totals for calibrating one wave's weights.

    `table` is a list of rows {"dimension": "region_urban" | "sex_age", "cell": {...}, "total": N}.
    A new upload is a new version; estimates name the version they used.
    """

    wave = models.ForeignKey(Wave, on_delete=models.CASCADE, related_name="population_margins")
    version = models.PositiveIntegerField(_("version"))
    source = models.CharField(_("source"), max_length=255, blank=True)
    table = models.JSONField(_("margins"))
    uploaded_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, blank=True
    )
    uploaded_at = models.DateTimeField(_("uploaded"), auto_now_add=True)

    class Meta:
        ordering = ["wave", "-version"]
        verbose_name = _("population margins")
        verbose_name_plural = _("population margins")
        constraints = [
            models.UniqueConstraint(fields=["wave", "version"], name="margins_version_unique"),
            models.CheckConstraint(condition=Q(version__gte=1), name="margins_version_positive"),
        ]

    def __str__(self) -> str:
        return f"{self.wave} margins v{self.version}"


class WaveComputation(models.Model):
    """Recomputation state of one wave: a dirty flag that coalesces bursts of new interviews."""

    wave = models.OneToOneField(Wave, on_delete=models.CASCADE, related_name="computation")
    dirty = models.BooleanField(default=True)
    dirty_since = models.DateTimeField(null=True, blank=True)
    scheduled_at = models.DateTimeField(null=True, blank=True)
    running_since = models.DateTimeField(null=True, blank=True)
    stage = models.CharField(max_length=64, blank=True)
    progress = models.FloatField(default=0.0)
    last_completed_at = models.DateTimeField(null=True, blank=True)
    last_error = models.TextField(blank=True)
    # Incremented by every mark_wave_dirty: a run clears `dirty` only if no mark came in
    # while it ran, so a burst during a computation is never lost.
    generation = models.PositiveBigIntegerField(default=0)
    # The generation a run claimed (None when none runs): a mark that finds a run with a
    # newer generation knows that run will be followed by another, and writes nothing.
    run_generation = models.PositiveBigIntegerField(null=True, blank=True)
    # Refreshed at every stage of a run; a claim older than the stale limit is taken over.
    heartbeat_at = models.DateTimeField(null=True, blank=True)
    # Bumped when stored answers change in place (review edits): the snapshot is rebuilt.
    data_epoch = models.PositiveIntegerField(default=0)

    class Meta:
        verbose_name = _("wave computation")
        verbose_name_plural = _("wave computations")
        constraints = [
            models.CheckConstraint(
                condition=Q(progress__gte=0) & Q(progress__lte=1), name="computation_progress_range"
            ),
        ]

    def __str__(self) -> str:
        return f"{self.wave} ({'dirty' if self.dirty else 'current'})"


class ResultSet(models.Model):
    """One complete recomputation of a wave's estimates. Readers see only the current one."""

    class Status(models.TextChoices):
        BUILDING = "building", _("Building")
        READY = "ready", _("Ready")
        FAILED = "failed", _("Failed")

    wave = models.ForeignKey(Wave, on_delete=models.CASCADE, related_name="result_sets")
    status = models.CharField(max_length=8, choices=Status.choices, default=Status.BUILDING)
    is_current = models.BooleanField(default=False)
    n_interviews = models.PositiveIntegerField(default=0)
    data_version = models.CharField(
        max_length=64, blank=True, help_text=_("Fingerprint of the interviews used.")
    )
    weights_version = models.CharField(max_length=64, blank=True)
    definitions_hash = models.CharField(
        max_length=32, blank=True, help_text=_("Fingerprint of the indicator definitions used.")
    )
    started_at = models.DateTimeField(auto_now_add=True)
    computed_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["wave", "-started_at"]
        constraints = [
            models.UniqueConstraint(
                fields=["wave"],
                condition=Q(is_current=True),
                name="one_current_result_set_per_wave",
            ),
            models.CheckConstraint(
                condition=Q(is_current=False) | Q(status="ready"),
                name="current_result_set_is_ready",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.wave} results {self.pk} ({self.status})"


class IndicatorEstimateQuerySet(models.QuerySet["IndicatorEstimate"]):
    def current(self) -> IndicatorEstimateQuerySet:
        return self.filter(result_set__is_current=True)


class EstimateCell(models.Model):
    """What every stored cell holds: the estimate, its precision, the publication rules'
    verdict, the comparisons and the versions of the data and weights used."""

    geography = models.CharField(max_length=8, choices=Geography.choices)
    indicator = models.CharField(max_length=32)
    estimate = models.FloatField(null=True, blank=True)
    se = models.FloatField(null=True, blank=True)
    ci_low = models.FloatField(null=True, blank=True)
    ci_high = models.FloatField(null=True, blank=True)
    ci_method = models.CharField(max_length=16, blank=True)
    df = models.FloatField(null=True, blank=True)
    n = models.PositiveIntegerField(default=0)
    n_numerator = models.PositiveIntegerField(null=True, blank=True)
    n_eff = models.FloatField(null=True, blank=True)
    deff = models.FloatField(null=True, blank=True)
    suppressed = models.BooleanField(default=False)
    suppression_reason = models.CharField(max_length=255, blank=True)
    review_flag = models.CharField(max_length=255, blank=True)
    national_estimate = models.FloatField(null=True, blank=True)
    diff_vs_rest = models.FloatField(null=True, blank=True)
    diff_vs_rest_se = models.FloatField(null=True, blank=True)
    diff_vs_rest_p = models.FloatField(null=True, blank=True)
    diff_vs_rest_p_adjusted = models.FloatField(null=True, blank=True)
    previous_wave = models.ForeignKey(
        Wave, on_delete=models.SET_NULL, null=True, blank=True, related_name="+"
    )
    previous_estimate = models.FloatField(null=True, blank=True)
    change = models.FloatField(null=True, blank=True)
    change_se = models.FloatField(null=True, blank=True)
    change_p = models.FloatField(null=True, blank=True)
    change_p_adjusted = models.FloatField(null=True, blank=True)
    boundary_note = models.CharField(max_length=255, blank=True)
    weights_version = models.CharField(max_length=64, blank=True)
    data_version = models.CharField(max_length=64, blank=True)
    computed_at = models.DateTimeField()

    class Meta:
        abstract = True


class IndicatorEstimate(EstimateCell):
    """One published cell: an indicator for a wave, geography and region (or the nation)."""

    result_set = models.ForeignKey(ResultSet, on_delete=models.CASCADE, related_name="estimates")
    wave = models.ForeignKey(Wave, on_delete=models.CASCADE, related_name="estimates")
    region = models.ForeignKey(
        Region, on_delete=models.PROTECT, null=True, blank=True, related_name="estimates"
    )

    objects = IndicatorEstimateQuerySet.as_manager()

    class Meta:
        ordering = ["wave", "geography", "indicator", "region"]
        indexes = [models.Index(fields=["wave", "indicator", "geography"], name="estimate_lookup")]
        constraints = [
            models.UniqueConstraint(
                fields=["result_set", "geography", "region", "indicator"],
                condition=Q(region__isnull=False),
                name="estimate_region_cell_unique",
            ),
            models.UniqueConstraint(
                fields=["result_set", "geography", "indicator"],
                condition=Q(region__isnull=True),
                name="estimate_national_cell_unique",
            ),
            models.CheckConstraint(
                condition=Q(suppressed=False) | Q(estimate__isnull=True),
                name="suppressed_cell_has_no_estimate",
            ),
            models.CheckConstraint(
                condition=Q(suppressed=False) | ~Q(suppression_reason=""),
                name="suppressed_cell_has_reason",
            ),
            models.CheckConstraint(
                condition=Q(se__isnull=True) | Q(se__gte=0), name="estimate_se_non_negative"
            ),
        ]

    def __str__(self) -> str:
        where = self.region.code if self.region is not None else "national"
        return f"{self.indicator} {self.wave} {where}"


class BreakdownEstimateQuerySet(models.QuerySet["BreakdownEstimate"]):
    def current(self) -> BreakdownEstimateQuerySet:
        return self.filter(result_set__is_current=True)


class BreakdownEstimate(EstimateCell):
    """One cell of a breakdown (``analytics.breakdowns``): an indicator for a group (men,
    60+, rural...), nationally (``region`` null) or within a region of the wave's geography.

    ``diff_vs_rest`` compares a national group with everyone outside it; ``change`` compares
    the cell with the same cell of the previous wave."""

    result_set = models.ForeignKey(
        ResultSet, on_delete=models.CASCADE, related_name="breakdown_estimates"
    )
    wave = models.ForeignKey(Wave, on_delete=models.CASCADE, related_name="breakdown_estimates")
    region = models.ForeignKey(
        Region, on_delete=models.PROTECT, null=True, blank=True, related_name="+"
    )
    breakdown = models.CharField(max_length=24)
    group = models.CharField(max_length=24)

    objects = BreakdownEstimateQuerySet.as_manager()

    class Meta:
        ordering = ["wave", "breakdown", "indicator", "region", "group"]
        indexes = [
            models.Index(
                fields=["wave", "breakdown", "indicator"], name="breakdown_estimate_lookup"
            )
        ]
        constraints = [
            models.UniqueConstraint(
                fields=["result_set", "breakdown", "group", "geography", "region", "indicator"],
                condition=Q(region__isnull=False),
                name="breakdown_region_cell_unique",
            ),
            models.UniqueConstraint(
                fields=["result_set", "breakdown", "group", "indicator"],
                condition=Q(region__isnull=True),
                name="breakdown_national_cell_unique",
            ),
            models.CheckConstraint(
                condition=Q(suppressed=False) | Q(estimate__isnull=True),
                name="breakdown_suppressed_has_no_estimate",
            ),
            models.CheckConstraint(
                condition=Q(suppressed=False) | ~Q(suppression_reason=""),
                name="breakdown_suppressed_has_reason",
            ),
            models.CheckConstraint(
                condition=Q(se__isnull=True) | Q(se__gte=0), name="breakdown_se_non_negative"
            ),
        ]

    def __str__(self) -> str:
        where = self.region.code if self.region is not None else "national"
        return f"{self.indicator} {self.breakdown}={self.group} {self.wave} {where}"


class ExportJob(models.Model):
    """A requested download, built by a worker and kept for download when done."""

    class Status(models.TextChoices):
        QUEUED = "queued", _("Queued")
        RUNNING = "running", _("Running")
        DONE = "done", _("Done")
        FAILED = "failed", _("Failed")
        EXPIRED = "expired", _("Expired")

    requested_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="export_jobs"
    )
    kind = models.CharField(max_length=16)  # "microdata", "regional", "codebook"
    file_format = models.CharField(max_length=8)  # csv, xlsx, sav, dta, json, parquet
    parameters = models.JSONField(default=dict)

    class Stage(models.TextChoices):
        PREPARING = "preparing", _("Preparing the interviews")
        WRITING = "writing", _("Writing the file")

    status = models.CharField(max_length=8, choices=Status.choices, default=Status.QUEUED)
    # What a running job is doing; rows_done and rows_total count that stage's rows.
    stage = models.CharField(max_length=16, choices=Stage.choices, blank=True)
    rows_done = models.PositiveIntegerField(default=0)
    rows_total = models.PositiveIntegerField(null=True, blank=True)
    file = models.FileField(upload_to="exports/", blank=True)
    error = models.TextField(blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    started_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)
    # When the file was deleted, EXPORT_RETENTION_DAYS after the job finished.
    expired_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at"]
        constraints = [
            models.CheckConstraint(
                condition=Q(status__in=["queued", "running", "done", "failed", "expired"]),
                name="export_status_valid",
            ),
            models.CheckConstraint(
                condition=~Q(status="done") | ~Q(file=""), name="done_export_has_file"
            ),
        ]

    def __str__(self) -> str:
        return f"{self.kind}.{self.file_format} ({self.status})"
