"""User accounts in the admin, without a way for a non-superuser to grant rights.

Django's stock user admin lets anyone holding `auth.change_user` tick `is_superuser`, add
groups or permissions, including to their own account. Here a staff user who is not a
superuser sees those fields read-only (so a forged POST cannot set them either) and may
edit only accounts that hold no more rights than they do: not a superuser's, nor one with
a permission they lack (a password reset would hand them that account's rights).
"""

from __future__ import annotations

from typing import Any

from django.contrib import admin
from django.contrib.auth import get_user_model
from django.contrib.auth.admin import UserAdmin
from django.http import HttpRequest

User = get_user_model()

GRANTING_FIELDS = ("is_superuser", "groups", "user_permissions")


def holds_no_more_than(account: Any, user: Any) -> bool:
    """Whether `account` has no right beyond those of `user`."""
    if user.is_superuser:
        return True
    if account.is_superuser:
        return False
    return account.get_all_permissions() <= user.get_all_permissions()


class AccountAdmin(UserAdmin):
    """The user admin; its password form checks `has_change_permission` too."""

    def get_readonly_fields(self, request: HttpRequest, obj: Any = None) -> Any:
        readonly = tuple(super().get_readonly_fields(request, obj))
        if request.user.is_superuser:
            return readonly
        return (*readonly, *GRANTING_FIELDS)

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        if not super().has_change_permission(request, obj):
            return False
        return obj is None or holds_no_more_than(obj, request.user)

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        if not super().has_delete_permission(request, obj):
            return False
        return obj is None or holds_no_more_than(obj, request.user)


if admin.site.is_registered(User):
    admin.site.unregister(User)
admin.site.register(User, AccountAdmin)
