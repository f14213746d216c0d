"""API tokens in the admin: seen by prefix and status, revoked; never made or shown here."""

from __future__ import annotations

from typing import Any

from django.contrib import admin, messages
from django.http import HttpRequest
from django.utils.translation import gettext_lazy as _

from apitokens.models import ApiToken
from apitokens.services import revoke_tokens


@admin.register(ApiToken)
class ApiTokenAdmin(admin.ModelAdmin):
    list_display = ["prefix", "user", "created_at", "expires_at", "revoked_at", "usable"]
    list_filter = ["revoked_at", "expires_at"]
    search_fields = ["user__username", "prefix"]
    fields = ["prefix", "user", "created_at", "expires_at", "revoked_at"]
    readonly_fields = ["prefix", "user", "created_at", "expires_at", "revoked_at"]
    actions = ["revoke"]

    @admin.display(boolean=True, description=_("usable"))
    def usable(self, token: ApiToken) -> bool:
        return token.is_usable

    @admin.action(description=_("Revoke the selected tokens"), permissions=["change"])
    def revoke(self, request: HttpRequest, queryset: Any) -> None:
        count = revoke_tokens(tokens=queryset)
        self.message_user(
            request, _("%(count)d tokens revoked.") % {"count": count}, messages.SUCCESS
        )

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False  # a token is made by its user, who alone sees its secret
