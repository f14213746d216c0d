"""Roles as groups. Respondents are anonymous and need no account or group.

Only superusers grant roles or permissions. The `admin` group manages the survey domain
and may create user accounts and reset passwords, but holds no permission that changes a
group's permissions, and the user admin (`surveys.user_admin`) does not let a
non-superuser set `is_superuser`, `groups` or `user_permissions`, nor edit an account
that holds more than they do: an admin cannot raise anyone, themselves included, above
their own rights.
"""

from __future__ import annotations

from typing import Any

ROLE_PERMISSIONS: dict[str, list[str]] = {
    "enumerator": ["surveys.collect_interviews", "surveys.view_wave", "surveys.view_formversion"],
    "supervisor": [
        "surveys.collect_interviews",
        "surveys.review_submission",
        "surveys.view_submission",
        "surveys.change_submission",
        "surveys.view_wave",
        "surveys.view_formversion",
        "surveys.view_estimates",
    ],
    "researcher": [
        "surveys.view_survey",
        "surveys.view_wave",
        "surveys.view_region",
        "surveys.view_formversion",
        "surveys.view_estimates",
        "surveys.export_microdata",
    ],
    "admin": [],  # every permission of ADMIN_APPS, plus ADMIN_AUTH_PERMISSIONS
}

# Apps whose every permission the admin group holds: the survey domain, API tokens (it may
# revoke them; nobody makes another's) and login lockouts (it may lift them).
ADMIN_APPS = ["surveys", "analytics", "apitokens", "axes"]
# The admin group's share of `auth`: user accounts without the rights to grant anything.
# Adding or changing a group or a permission, or deleting a user, stays with superusers.
ADMIN_AUTH_PERMISSIONS = [
    "auth.view_user",
    "auth.add_user",
    "auth.change_user",
    "auth.view_group",
    "auth.view_permission",
]


def _permissions(permission_model: Any, names: list[str]) -> list[Any]:
    perms: list[Any] = []
    for name in names:
        app_label, codename = name.split(".")
        perms.extend(
            permission_model.objects.filter(content_type__app_label=app_label, codename=codename)
        )
    return perms


def ensure_roles(group_model: Any, permission_model: Any) -> None:
    """Create the role groups with their permissions. Idempotent; callable from migrations."""
    for role, names in ROLE_PERMISSIONS.items():
        group, _ = group_model.objects.get_or_create(name=role)
        if role == "admin":
            perms = list(permission_model.objects.filter(content_type__app_label__in=ADMIN_APPS))
            perms.extend(_permissions(permission_model, ADMIN_AUTH_PERMISSIONS))
        else:
            perms = _permissions(permission_model, names)
        group.permissions.set(perms)
