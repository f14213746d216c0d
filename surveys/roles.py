"""Roles as groups. Respondents are anonymous and need no account or group."""

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
    "admin": [],  # every permission, given below
}


def ensure_roles(group_model: Any, permission_model: Any) -> None:
    """Create the role groups with their permissions. Idempotent; callable from migrations."""
    for role, names in ROLE_PERMISSIONS.items():
        group, _ = group_model.objects.get_or_create(name=role)
        if role == "admin":
            perms = list(
                permission_model.objects.filter(
                    content_type__app_label__in=["surveys", "analytics", "auth"]
                )
            )
        else:
            perms = []
            for name in names:
                app_label, codename = name.split(".")
                perms.extend(
                    permission_model.objects.filter(
                        content_type__app_label=app_label, codename=codename
                    )
                )
        group.permissions.set(perms)
