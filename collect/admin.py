"""The tablet channel in the admin: devices (revoke), enrolment codes, assignments with
their progress, tablet fieldwork settings. Writes go through collect.services."""

from __future__ import annotations

from django.contrib import admin
from django.http import HttpRequest
from django.utils.translation import gettext_lazy as _

from collect import services
from collect.models import Assignment, CollectSettings, Device, EnrolmentCode, TabletInterview


@admin.register(Device)
class DeviceAdmin(admin.ModelAdmin):
    list_display = ["label", "enumerator", "token_prefix", "app_version", "created_at", "last_seen_at", "revoked_at"]  # fmt: skip
    list_filter = ["revoked_at"]
    search_fields = ["label", "enumerator__username", "token_prefix"]
    readonly_fields = ["id", "enumerator", "token_prefix", "app_version", "created_at", "last_seen_at", "revoked_at"]  # fmt: skip
    exclude = ["token_hash"]
    actions = ["revoke"]

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False  # tablets enrol themselves (password or code)

    @admin.action(description=_("Revoke the selected devices"), permissions=["change"])
    def revoke(self, request: HttpRequest, queryset) -> None:  # type: ignore[no-untyped-def]
        changed = sum(services.revoke_device(device=d, actor=request.user) for d in queryset)
        self.message_user(request, _("%(n)d devices revoked.") % {"n": changed})


@admin.register(EnrolmentCode)
class EnrolmentCodeAdmin(admin.ModelAdmin):
    list_display = ["enumerator", "created_by", "created_at", "expires_at", "used_at"]
    readonly_fields = ["enumerator", "created_by", "created_at", "expires_at", "used_at", "device"]
    exclude = ["code_hash"]

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False  # made by POST /api/collect/enrolment-codes/, shown once


@admin.register(Assignment)
class AssignmentAdmin(admin.ModelAdmin):
    list_display = ["wave", "enumerator", "region", "settlement", "psu", "quota", "done", "accepted"]  # fmt: skip
    list_filter = ["wave", "region", "enumerator"]
    list_select_related = ["wave__survey", "region", "enumerator"]
    search_fields = ["settlement", "psu", "enumerator__username"]
    readonly_fields = ["created_by", "created_at"]

    def get_queryset(self, request: HttpRequest):  # type: ignore[no-untyped-def]
        return Assignment.objects.with_progress()

    @admin.display(description=_("done"), ordering="n_done")
    def done(self, obj: Assignment) -> int:
        return obj.n_done  # type: ignore[attr-defined]

    @admin.display(description=_("accepted"), ordering="n_accepted")
    def accepted(self, obj: Assignment) -> int:
        return obj.n_accepted  # type: ignore[attr-defined]

    def save_model(self, request: HttpRequest, obj: Assignment, form, change: bool) -> None:  # type: ignore[no-untyped-def]
        if change:
            services.save_assignment(assignment=obj, actor=request.user)
            return
        created = services.create_assignment(
            enumerator=obj.enumerator,
            wave=obj.wave,
            region=obj.region,
            form_version=obj.form_version,
            settlement=obj.settlement,
            psu=obj.psu,
            stratum=obj.stratum,
            latitude=obj.latitude,
            longitude=obj.longitude,
            quota=obj.quota,
            prefilled=obj.prefilled,
            created_by=request.user,
        )
        obj.pk = created.pk


@admin.register(CollectSettings)
class CollectSettingsAdmin(admin.ModelAdmin):
    list_display = ["survey", "record_gps", "gps_distance_km"]


@admin.register(TabletInterview)
class TabletInterviewAdmin(admin.ModelAdmin):
    """Tablet interviews with their device, assignment, quota flag and paradata."""

    list_display = ["submission", "assignment", "device", "over_quota"]
    list_filter = ["over_quota", "assignment__wave", "assignment__region"]
    list_select_related = ["submission", "assignment__wave", "assignment__region", "device"]
    readonly_fields = ["submission", "assignment", "device", "over_quota", "paradata"]

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False  # interviews arrive through the sync service

    def has_change_permission(self, request: HttpRequest, obj=None) -> bool:  # type: ignore[no-untyped-def]
        return False
