"""Studies, questionnaire versions, waves, regions and interviews.

Invariants that the database can hold are declared as constraints here; writes go
through `surveys.services`, reads that span models through `surveys.selectors`.
"""

from __future__ import annotations

import operator
import uuid
from functools import reduce
from typing import Any

from django.conf import settings
from django.core.exceptions import ValidationError
from django.db import models
from django.db.models import Q
from django.utils.translation import get_language
from django.utils.translation import gettext_lazy as _

from surveys.definition import INTERFACE_LANGUAGES


class Geography(models.TextChoices):
    KZ2013 = "KZ2013", _("2013 geography (16 units)")
    KZ2022 = "KZ2022", _("Current geography (20 units)")


class Channel(models.TextChoices):
    WEB = "web", _("Web (self-completion)")
    TABLET = "tablet", _("Tablet interview")
    ODK = "odk", _("ODK client")


class ReviewStatus(models.TextChoices):
    PENDING = "pending", _("Pending review")
    APPROVED = "approved", _("Approved")
    REJECTED = "rejected", _("Rejected")


class ChannelKind(models.TextChoices):
    """Who fills the questionnaire in: the respondent, or an enumerator for them."""

    SELF_COMPLETED = "self", _("Self-completed (web)")
    INTERVIEWER = "interviewer", _("Interviewer-collected (tablet, ODK)")


CHANNELS_OF_KIND: dict[str, tuple[str, ...]] = {
    ChannelKind.SELF_COMPLETED: (Channel.WEB,),
    ChannelKind.INTERVIEWER: (Channel.TABLET, Channel.ODK),
}
# Review statuses an interview can feed the estimates with: a rejected interview never does.
ESTIMATE_STATUS_CHOICES = [ReviewStatus.PENDING, ReviewStatus.APPROVED]


def default_estimate_statuses() -> dict[str, list[str]]:
    """Web interviews count unless rejected (no one reviews them first); interviews an
    enumerator collected count once a supervisor approved them."""
    return {
        ChannelKind.SELF_COMPLETED.value: [ReviewStatus.PENDING.value, ReviewStatus.APPROVED.value],
        ChannelKind.INTERVIEWER.value: [ReviewStatus.APPROVED.value],
    }


def validate_estimate_statuses(value: Any) -> None:
    allowed = {s.value for s in ESTIMATE_STATUS_CHOICES}
    if (
        not isinstance(value, dict)
        or set(value) != set(ChannelKind.values)
        or not all(isinstance(v, list) and set(v) <= allowed for v in value.values())
    ):
        raise ValidationError(
            _("Give, for each kind of interview, the review statuses that feed the estimates.")
        )


class UrbanRural(models.IntegerChoices):
    URBAN = 1, _("Urban")
    RURAL = 2, _("Rural")


def pick_translation(texts: dict[str, str] | None, language: str | None = None) -> str:
    """The text in the active (or given) language, falling back to kk, ru, en, then any."""
    if not texts:
        return ""
    language = (language or get_language() or "kk").split("-")[0]
    for code in (language, *INTERFACE_LANGUAGES, "default"):
        if texts.get(code):
            return texts[code]
    return next(iter(texts.values()), "")


def _title_field(language: Any) -> models.CharField:
    return models.CharField(language, max_length=255, blank=True)


class TranslatedTitle:
    """For models with `title` and `title_kk`, `title_ru`, `title_en`."""

    def translated_title(self, language: str | None = None) -> str:
        """The title in the active (or given) interface language, else `title`, else the code."""
        language = (language or get_language() or "kk").split("-")[0]
        own = getattr(self, f"title_{language}", "") if language in INTERFACE_LANGUAGES else ""
        return own or getattr(self, "title", "") or getattr(self, "code", "")


class Survey(TranslatedTitle, models.Model):
    code = models.SlugField(_("code"), max_length=64, unique=True)
    title = models.CharField(_("title"), max_length=255)
    title_kk = _title_field(_("title (Kazakh)"))
    title_ru = _title_field(_("title (Russian)"))
    title_en = _title_field(_("title (English)"))
    description = models.TextField(_("description"), blank=True)
    # Which review statuses feed the estimates (and the microdata), per kind of interview.
    estimate_statuses = models.JSONField(
        _("review statuses that feed the estimates"),
        default=default_estimate_statuses,
        validators=[validate_estimate_statuses],
    )
    created_at = models.DateTimeField(_("created"), auto_now_add=True)

    class Meta:
        ordering = ["code"]
        verbose_name = _("survey")
        verbose_name_plural = _("surveys")

    def __str__(self) -> str:
        return self.title or self.code

    def statuses_feeding_estimates(self, kind: str) -> list[str]:
        """The review statuses with which interviews of this kind count (in status order)."""
        stored = self.estimate_statuses if isinstance(self.estimate_statuses, dict) else {}
        wanted = stored.get(kind, default_estimate_statuses()[kind])
        return [s.value for s in ESTIMATE_STATUS_CHOICES if s.value in wanted]

    def estimate_condition(self) -> Q:
        """The filter on Submission that selects this survey's interviews feeding its estimates."""
        return reduce(
            operator.or_,
            (
                Q(channel__in=channels, review_status__in=self.statuses_feeding_estimates(kind))
                for kind, channels in CHANNELS_OF_KIND.items()
            ),
        )

    def estimate_condition_sql(self, alias: str) -> str:
        """The same condition as SQL on the submissions table aliased ``alias``, for
        readers that query it directly (the estimation snapshot)."""

        def listed(values: list[str] | tuple[str, ...]) -> str:
            # Only the enums' own values reach the SQL text.
            known = set(Channel.values) | set(ReviewStatus.values)
            return ", ".join(f"'{v}'" for v in values if v in known) or "NULL"

        return (
            "("
            + " OR ".join(
                f"({alias}.channel IN ({listed(channels)}) AND "
                f"{alias}.review_status IN ({listed(self.statuses_feeding_estimates(kind))}))"
                for kind, channels in CHANNELS_OF_KIND.items()
            )
            + ")"
        )


class FormVersion(models.Model):
    """An immutable compiled questionnaire. Never edited: a change is a new version."""

    survey = models.ForeignKey(Survey, on_delete=models.PROTECT, related_name="form_versions")
    version = models.CharField(_("version"), max_length=64)
    form_id = models.CharField(_("form id"), max_length=255)
    title = models.CharField(_("title"), max_length=255)
    languages = models.JSONField(_("languages"), default=list)
    default_language = models.CharField(_("default language"), max_length=32)
    definition = models.JSONField(_("compiled definition"))
    xlsform = models.FileField(_("XLSForm file"), upload_to="xlsforms/")
    xlsform_sha256 = models.CharField(max_length=64)
    import_warnings = models.JSONField(_("import warnings"), default=list, blank=True)
    created_at = models.DateTimeField(_("imported"), auto_now_add=True)

    class Meta:
        ordering = ["survey", "-created_at"]
        verbose_name = _("form version")
        verbose_name_plural = _("form versions")
        constraints = [
            models.UniqueConstraint(fields=["survey", "version"], name="form_version_unique"),
            models.CheckConstraint(condition=~Q(version=""), name="form_version_not_blank"),
        ]

    def __str__(self) -> str:
        return f"{self.survey.code} {self.version}"

    @property
    def questions(self) -> dict[str, dict[str, Any]]:
        """Every question node by name (groups and repeats excluded), in form order."""
        cached = self.__dict__.get("_questions")
        if cached is None:
            from surveys.definition import iter_questions

            cached = {node["name"]: node for node in iter_questions(self.definition)}
            self.__dict__["_questions"] = cached
        return cached


class Wave(TranslatedTitle, models.Model):
    survey = models.ForeignKey(Survey, on_delete=models.PROTECT, related_name="waves")
    code = models.CharField(_("code"), max_length=32)
    title = models.CharField(_("title"), max_length=255, blank=True)
    title_kk = _title_field(_("title (Kazakh)"))
    title_ru = _title_field(_("title (Russian)"))
    title_en = _title_field(_("title (English)"))
    form_version = models.ForeignKey(
        FormVersion,
        on_delete=models.PROTECT,
        related_name="waves",
        null=True,
        blank=True,
        help_text=_("The questionnaire version used to collect new interviews in this wave."),
    )
    geography = models.CharField(_("geography"), max_length=8, choices=Geography.choices)
    fieldwork_start = models.DateField(_("fieldwork start"), null=True, blank=True)
    fieldwork_end = models.DateField(_("fieldwork end"), null=True, blank=True)
    is_open = models.BooleanField(_("open for interviews"), default=True)
    is_synthetic = models.BooleanField(
        _("synthetic demo data"),
        default=False,
        help_text=_("Generated for demonstration; not real survey data."),
    )
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["survey", "code"]
        verbose_name = _("wave")
        verbose_name_plural = _("waves")
        constraints = [
            models.UniqueConstraint(fields=["survey", "code"], name="wave_code_unique"),
            models.CheckConstraint(
                condition=Q(geography__in=Geography.values), name="wave_geography_valid"
            ),
            models.CheckConstraint(
                condition=Q(fieldwork_end__isnull=True)
                | Q(fieldwork_start__isnull=True)
                | Q(fieldwork_end__gte=models.F("fieldwork_start")),
                name="wave_fieldwork_dates_ordered",
            ),
        ]

    def __str__(self) -> str:
        label = f"{self.survey.code} {self.code}"
        return f"{label} ({_('synthetic')})" if self.is_synthetic else label


class RegionQuerySet(models.QuerySet["Region"]):
    def of(self, geography: str) -> RegionQuerySet:
        return self.filter(geography=geography)


class Region(models.Model):
    """A first-level unit in one of the two geographies (2013 and current)."""

    geography = models.CharField(_("geography"), max_length=8, choices=Geography.choices)
    code = models.CharField(_("ISO 3166-2 code"), max_length=8)
    iso_before_2022 = models.CharField(_("ISO code before November 2022"), max_length=8, blank=True)
    kind = models.CharField(
        _("kind"), max_length=8, choices=[("oblast", _("Region")), ("city", _("City"))]
    )
    name_kk = models.CharField(_("name (Kazakh)"), max_length=128)
    name_ru = models.CharField(_("name (Russian)"), max_length=128)
    name_en = models.CharField(_("name (English)"), max_length=128)
    centre_en = models.CharField(_("administrative centre"), max_length=64, blank=True)
    unit_2013 = models.ForeignKey(
        "self",
        on_delete=models.PROTECT,
        null=True,
        blank=True,
        related_name="successors",
        verbose_name=_("2013 unit"),
    )
    note = models.TextField(_("note"), blank=True)
    tile_row = models.PositiveSmallIntegerField(default=0)
    tile_col = models.PositiveSmallIntegerField(default=0)

    objects = RegionQuerySet.as_manager()

    class Meta:
        ordering = ["geography", "code"]
        verbose_name = _("region")
        verbose_name_plural = _("regions")
        constraints = [
            models.UniqueConstraint(fields=["geography", "code"], name="region_code_unique"),
            models.CheckConstraint(
                condition=Q(geography__in=Geography.values), name="region_geography_valid"
            ),
            models.CheckConstraint(
                condition=Q(geography=Geography.KZ2013, unit_2013__isnull=True)
                | Q(geography=Geography.KZ2022, unit_2013__isnull=False),
                name="region_current_maps_to_2013",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.name} ({self.code})"

    @property
    def name(self) -> str:
        return pick_translation({"kk": self.name_kk, "ru": self.name_ru, "en": self.name_en})


class SubmissionQuerySet(models.QuerySet["Submission"]):
    def for_wave(self, wave: Wave) -> SubmissionQuerySet:
        return self.filter(wave=wave)

    def accepted(self) -> SubmissionQuerySet:
        """Interviews not rejected in review (what counts is `feeding_estimates`)."""
        return self.exclude(review_status=ReviewStatus.REJECTED)

    def feeding_estimates(self) -> SubmissionQuerySet:
        """Interviews that count in the estimates and the microdata: those whose review
        status their survey's ``estimate_statuses`` admits for their kind of interview."""
        return self.filter(self._by_survey_rule(lambda survey: survey.estimate_condition()))

    def held_back(self) -> SubmissionQuerySet:
        """The others: rejected, or waiting for the review their survey asks for."""
        return self.filter(self._by_survey_rule(_held_back_condition))

    def _by_survey_rule(self, condition: Any) -> Q:
        # Surveys are few; those with the same rule share one clause.
        groups: dict[str, tuple[Survey, list[int]]] = {}
        for survey in Survey.objects.only("pk", "estimate_statuses"):
            rule = repr([survey.statuses_feeding_estimates(kind) for kind in CHANNELS_OF_KIND])
            groups.setdefault(rule, (survey, []))[1].append(survey.pk)
        return reduce(
            operator.or_,
            (Q(wave__survey_id__in=ids) & condition(survey) for survey, ids in groups.values()),
            Q(pk__in=[]),
        )


def _held_back_condition(survey: Survey) -> Q:
    # Written as the statuses that do not count (rather than a negation), so a partial
    # index on the statuses other than approved serves it.
    return reduce(
        operator.or_,
        (
            Q(
                channel__in=channels,
                review_status__in=[
                    s
                    for s in ReviewStatus.values
                    if s not in survey.statuses_feeding_estimates(kind)
                ],
            )
            for kind, channels in CHANNELS_OF_KIND.items()
        ),
    )


class Submission(models.Model):
    """One interview. Answers are keyed by question name with the codes of the question bank."""

    instance_id = models.UUIDField(_("instance id"), unique=True, default=uuid.uuid4)
    form_version = models.ForeignKey(
        FormVersion, on_delete=models.PROTECT, related_name="submissions"
    )
    # No index of its own: the indexes below that begin with the wave serve every lookup,
    # and each index is one more write per stored interview.
    wave = models.ForeignKey(
        Wave, on_delete=models.PROTECT, related_name="submissions", db_index=False
    )
    region = models.ForeignKey(Region, on_delete=models.PROTECT, related_name="submissions")
    urban_rural = models.PositiveSmallIntegerField(_("urban/rural"), choices=UrbanRural.choices)
    stratum = models.CharField(_("stratum"), max_length=64)
    psu = models.CharField(_("PSU"), max_length=64)
    weight = models.FloatField(_("design weight"), default=1.0)
    channel = models.CharField(_("channel"), max_length=8, choices=Channel.choices)
    language = models.CharField(_("interview language"), max_length=8)
    review_status = models.CharField(
        _("review status"), max_length=8, choices=ReviewStatus.choices, default=ReviewStatus.PENDING
    )
    answers = models.JSONField(_("answers"))
    started_at = models.DateTimeField(_("started"), null=True, blank=True)
    ended_at = models.DateTimeField(_("ended"), null=True, blank=True)
    duration_seconds = models.PositiveIntegerField(_("duration (s)"), null=True, blank=True)
    device_id = models.CharField(_("device id"), max_length=128, blank=True)
    user_agent_class = models.CharField(_("device class"), max_length=16, blank=True)
    enumerator = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.PROTECT,
        null=True,
        blank=True,
        related_name="interviews",
        verbose_name=_("enumerator"),
    )
    is_synthetic = models.BooleanField(_("synthetic"), default=False)
    received_at = models.DateTimeField(_("received"), auto_now_add=True, db_index=True)
    # Review: who decided, when, and what they said (on the whole interview and per question).
    # A rejected tablet or ODK interview goes back to its enumerator, who resends it fixed as
    # a new submission whose ``replaces`` points here; every version is kept.
    reviewed_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.PROTECT,
        null=True,
        blank=True,
        related_name="reviewed_interviews",
        verbose_name=_("reviewed by"),
    )
    reviewed_at = models.DateTimeField(_("reviewed"), null=True, blank=True)
    review_comment = models.TextField(_("review comment"), blank=True)
    question_comments = models.JSONField(_("comments per question"), default=dict, blank=True)
    replaces = models.OneToOneField(
        "self",
        on_delete=models.PROTECT,
        null=True,
        blank=True,
        related_name="replaced_by",
        verbose_name=_("corrects the interview"),
    )

    objects = SubmissionQuerySet.as_manager()

    class Meta:
        ordering = ["-received_at"]
        verbose_name = _("submission")
        verbose_name_plural = _("submissions")
        permissions = [
            ("collect_interviews", "Can collect interviews as an enumerator"),
            ("review_submission", "Can review interviews"),
            ("export_microdata", "Can download microdata"),
            ("view_estimates", "Can view estimates and dashboards"),
        ]
        indexes = [
            models.Index(fields=["wave", "region"], name="submission_wave_region"),
            # A wave's interviews by id (appending to snapshots and export caches, their
            # count-and-sum fingerprints) and the questionnaire versions and enumerators
            # behind a wave, read from the index alone.
            models.Index(fields=["wave", "id"], name="submission_wave_id"),
            models.Index(
                fields=["wave", "form_version", "enumerator"], name="submission_wave_sources"
            ),
            models.Index(
                fields=["wave"],
                condition=Q(review_status="rejected"),
                name="submission_wave_rejected",
            ),
            # The interviews held back from a wave's estimates (`held_back`), read by
            # every export: usually few, and found without reading the wave's rows.
            models.Index(
                fields=["wave", "channel"],
                condition=Q(review_status__in=["pending", "rejected"]),
                name="submission_wave_unapproved",
            ),
        ]
        constraints = [
            models.CheckConstraint(
                condition=Q(urban_rural__in=[1, 2]), name="submission_urban_rural_valid"
            ),
            models.CheckConstraint(
                condition=Q(channel__in=["web", "tablet", "odk"]), name="submission_channel_valid"
            ),
            models.CheckConstraint(
                condition=Q(review_status__in=["pending", "approved", "rejected"]),
                name="submission_review_status_valid",
            ),
            models.CheckConstraint(condition=Q(weight__gt=0), name="submission_weight_positive"),
            models.CheckConstraint(condition=~Q(language=""), name="submission_language_set"),
            models.CheckConstraint(
                condition=Q(ended_at__isnull=True)
                | Q(started_at__isnull=True)
                | Q(ended_at__gte=models.F("started_at")),
                name="submission_times_ordered",
            ),
        ]

    def __str__(self) -> str:
        return str(self.instance_id)


def new_link_token() -> str:
    """An unguessable URL token: 192 random bits, URL-safe (32 characters)."""
    import secrets

    return secrets.token_urlsafe(24)


class LinkKind(models.TextChoices):
    PUBLIC = "public", _("Public link (many respondents)")
    SINGLE_USE = "single", _("Single-use invitation")


class InvitationLinkQuerySet(models.QuerySet["InvitationLink"]):
    def active(self) -> InvitationLinkQuerySet:
        return self.filter(revoked_at__isnull=True, used_at__isnull=True)


class InvitationLink(models.Model):
    """An anonymous way into a wave's web questionnaire: /s/<token>/.

    A public link takes any number of interviews (one per browser; see
    `surveys.services.submit_interview`); a single-use link takes exactly one and is
    marked used in the transaction that stores it. Links identify no respondent, and a
    used link keeps no trace of the interview it produced.
    """

    wave = models.ForeignKey(Wave, on_delete=models.PROTECT, related_name="links")
    token = models.CharField(_("token"), max_length=64, unique=True, default=new_link_token)
    kind = models.CharField(_("kind"), max_length=8, choices=LinkKind.choices)
    label = models.CharField(
        _("label"),
        max_length=128,
        blank=True,
        help_text=_("For the research team only, e.g. where the link was distributed."),
    )
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="+",
        verbose_name=_("created by"),
    )
    created_at = models.DateTimeField(_("created"), auto_now_add=True)
    revoked_at = models.DateTimeField(_("revoked"), null=True, blank=True)
    # Only that a single-use link was used, and on which day: never which interview it
    # produced. No key to the interview, and no time finer than the day (an exact time
    # would equal the interview's `received_at`), so a link and its label, which may hold
    # the invitee's address, cannot be joined to answers.
    used_at = models.DateField(_("used on"), null=True, blank=True)

    objects = InvitationLinkQuerySet.as_manager()

    class Meta:
        ordering = ["-created_at", "pk"]
        verbose_name = _("invitation link")
        verbose_name_plural = _("invitation links")
        constraints = [
            models.CheckConstraint(
                condition=Q(kind__in=["public", "single"]), name="link_kind_valid"
            ),
            models.CheckConstraint(
                condition=Q(kind="single") | Q(used_at__isnull=True),
                name="link_public_never_used_up",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.wave} {self.get_kind_display()} {self.token[:8]}…"

    @property
    def is_single_use(self) -> bool:
        return self.kind == LinkKind.SINGLE_USE


class BalancedSequence(models.Model):
    """The permuted blocks of one balanced random assignment (a ``list:assign balanced``
    row) in one wave, drawn by the server for the web form (`surveys.assignment`).

    ``pending`` holds what is left of the current block, in the order it will be handed
    out; ``drawn`` counts the slots used. The row is locked while a slot is taken.
    """

    wave = models.ForeignKey(Wave, on_delete=models.CASCADE, related_name="balanced_sequences")
    name = models.CharField(max_length=255)
    drawn = models.PositiveIntegerField(default=0)
    pending = models.JSONField(default=list)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["wave", "name"], name="balanced_sequence_unique"),
        ]

    def __str__(self) -> str:
        return f"{self.wave} {self.name}"


class BalancedDraw(models.Model):
    """One web interview's slot in a balanced sequence: which half of [0, 1) the first
    ``random()`` of the assignment falls in (0: [0, 0.5), 1: [0.5, 1)). A draw that is
    never submitted keeps its slot: balance holds over draws."""

    sequence = models.ForeignKey(BalancedSequence, on_delete=models.CASCADE, related_name="draws")
    instance_id = models.UUIDField()
    slot = models.PositiveIntegerField()
    half = models.PositiveSmallIntegerField()

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["sequence", "instance_id"], name="balanced_draw_one_per_interview"
            ),
            models.UniqueConstraint(fields=["sequence", "slot"], name="balanced_draw_slot_unique"),
            models.CheckConstraint(condition=Q(half__in=[0, 1]), name="balanced_draw_half_valid"),
        ]

    def __str__(self) -> str:
        return f"{self.sequence} #{self.slot}"
