from __future__ import annotations

from typing import Any

from django import forms
from django.contrib import admin, messages
from django.db.models import QuerySet
from django.http import HttpRequest
from django.utils.translation import gettext_lazy as _

from access.adminscope import SurveyScopedAdmin
from access.permissions import Capability
from analytics.models import PopulationMargins, ResultSet, WaveComputation


class MarginsUploadForm(forms.ModelForm):
    file = forms.FileField(
        label=_("Margins table (.csv or .xlsx)"),
        help_text=_(
            "Columns: dimension, region, urban_rural, sex, age_band, total. "
            "A new upload becomes the next version; the wave is then recomputed."
        ),
    )

    class Meta:
        model = PopulationMargins
        fields = ["wave", "source"]

    def clean(self) -> dict[str, Any]:
        data = super().clean() or {}
        upload = data.get("file")
        wave = data.get("wave")
        if upload is not None and wave is not None:
            # Imported here, not at start-up: every process loads the admin modules, and
            # the estimation stack (pandas, scipy) is needed only when margins are uploaded.
            from analytics.margins import MarginsError, parse_margins

            try:
                data["table"] = parse_margins(upload.read(), upload.name, wave=wave)
            except MarginsError as exc:
                for problem in exc.problems:
                    self.add_error("file", str(problem))
        return data


@admin.register(PopulationMargins)
class PopulationMarginsAdmin(SurveyScopedAdmin, admin.ModelAdmin):
    survey_path = "wave__survey"
    view_capability = Capability.MANAGE_SURVEY
    list_display = ["wave", "version", "source", "cells", "uploaded_by", "uploaded_at"]
    list_filter = ["wave"]
    form = MarginsUploadForm

    @admin.display(description=_("cells"))
    def cells(self, obj: PopulationMargins) -> int:
        return len(obj.table or [])

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False  # a version is never edited: upload the next one

    def save_model(
        self, request: HttpRequest, obj: PopulationMargins, form: Any, change: bool
    ) -> None:
        from analytics.services import save_population_margins

        created = save_population_margins(
            wave=form.cleaned_data["wave"],
            table=form.cleaned_data["table"],
            source=form.cleaned_data.get("source", ""),
            user=request.user,
        )
        obj.pk, obj.version, obj.table = created.pk, created.version, created.table


@admin.register(WaveComputation)
class WaveComputationAdmin(SurveyScopedAdmin, admin.ModelAdmin):
    survey_path = "wave__survey"
    view_capability = Capability.MANAGE_SURVEY
    list_display = [
        "wave",
        "dirty",
        "stage",
        "progress",
        "running_since",
        "last_completed_at",
        "last_error",
    ]
    readonly_fields = [f.name for f in WaveComputation._meta.fields]
    actions = ["recompute"]

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    @admin.action(
        description=_("Recompute the estimates of the selected waves"), permissions=["change"]
    )
    def recompute(self, request: HttpRequest, queryset: QuerySet[WaveComputation]) -> None:
        from analytics.services import mark_wave_dirty

        for computation in queryset:
            mark_wave_dirty(wave_id=computation.wave_id)
        self.message_user(request, _("Recomputation queued."), messages.SUCCESS)


@admin.register(ResultSet)
class ResultSetAdmin(SurveyScopedAdmin, admin.ModelAdmin):
    survey_path = "wave__survey"
    view_capability = Capability.MANAGE_SURVEY
    list_display = [
        "wave",
        "status",
        "is_current",
        "n_interviews",
        "weights_version",
        "data_version",
        "computed_at",
    ]
    list_filter = ["wave", "is_current", "status"]

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False
