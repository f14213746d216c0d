"""Role grants in the admin: only superusers see, make, change or withdraw them, and every
save and delete goes through `access.services` (so each is audited)."""

from __future__ import annotations

from typing import Any

from django import forms
from django.contrib import admin
from django.db.models import QuerySet
from django.http import HttpRequest
from django.utils.translation import gettext_lazy as _

from access.models import RoleGrant
from access.services import GrantError, check_grant, grant_role, revoke_role
from surveys.models import Region


class RoleGrantForm(forms.ModelForm):
    regions = forms.ModelMultipleChoiceField(
        Region.objects.order_by("geography", "code"),
        label=_("Regions"),
        required=False,
        help_text=_("Supervisors only: the regions whose interviews they review."),
    )

    class Meta:
        model = RoleGrant
        fields = ["user", "role", "survey", "level"]

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        if self.instance.pk:
            self.fields["regions"].initial = list(
                self.instance.grant_regions.values_list("region_id", flat=True)
            )

    def clean(self) -> dict[str, Any]:
        data = super().clean() or {}
        role = data.get("role", self.instance.role if self.instance.pk else None)
        survey = data.get("survey", self.instance.survey if self.instance.pk else None)
        try:
            check_grant(
                role=role or "",
                survey=survey,
                level=data.get("level") or "",
                regions=list(data.get("regions") or []),
            )
        except GrantError as exc:
            raise forms.ValidationError(str(exc)) from exc
        return data


class SuperuserOnly:
    """Grants are for superusers alone, in every view of the admin."""

    def has_module_permission(self, request: HttpRequest) -> bool:
        return request.user.is_active and request.user.is_superuser

    def has_view_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return request.user.is_active and request.user.is_superuser

    def has_add_permission(self, request: HttpRequest) -> bool:
        return request.user.is_active and request.user.is_superuser

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return request.user.is_active and request.user.is_superuser

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return request.user.is_active and request.user.is_superuser


@admin.register(RoleGrant)
class RoleGrantAdmin(SuperuserOnly, admin.ModelAdmin):
    form = RoleGrantForm
    list_display = ["user", "role", "level", "survey", "region_list", "granted_by", "granted_at"]
    list_filter = ["role", "level", "survey"]
    list_select_related = ["user", "survey", "granted_by"]
    search_fields = ["user__username", "survey__code"]

    def get_queryset(self, request: HttpRequest) -> QuerySet[RoleGrant]:
        return super().get_queryset(request).prefetch_related("grant_regions__region")

    def get_readonly_fields(self, request: HttpRequest, obj: Any = None) -> list[str]:
        # A grant's holder, role and survey are what it is: change them by a new grant.
        return ["user", "role", "survey"] if obj is not None else []

    @admin.display(description=_("Regions"))
    def region_list(self, obj: RoleGrant) -> str:
        return ", ".join(g.region.code for g in obj.grant_regions.all())

    def save_model(self, request: HttpRequest, obj: RoleGrant, form: Any, change: bool) -> None:
        saved = grant_role(
            user=obj.user,
            role=obj.role,
            survey=obj.survey,
            level=form.cleaned_data.get("level") or "",
            regions=list(form.cleaned_data.get("regions") or []),
            by=request.user,
        )
        obj.pk, obj.granted_at = saved.pk, saved.granted_at

    def save_related(self, request: HttpRequest, form: Any, formsets: Any, change: bool) -> None:
        pass  # the regions were saved by grant_role

    def delete_model(self, request: HttpRequest, obj: RoleGrant) -> None:
        revoke_role(grant=obj, by=request.user)

    def delete_queryset(self, request: HttpRequest, queryset: QuerySet[RoleGrant]) -> None:
        for grant in queryset:
            revoke_role(grant=grant, by=request.user)
