"""Granting and withdrawing roles. Each call is one transaction with its audit event.

Only superusers grant or revoke (``by`` None is the system: migrations, `setup_demo`,
management commands). A grant also puts the user in the role's group, whose global
permissions are the coarse gate; withdrawing a user's last grant of a role takes them out.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from django.contrib.auth.models import Group
from django.db import transaction
from django.utils.translation import gettext as _

from access.models import Level, Role, RoleGrant, RoleGrantRegion
from audit.models import AuditAction
from audit.services import record
from surveys.models import Region, Survey


class GrantError(ValueError):
    """A grant that cannot be made as asked; the message says why, for people."""


class GrantForbidden(PermissionError):
    """Someone other than a superuser tried to grant or revoke a role."""


def _check_granter(by: Any) -> None:
    if by is not None and not (getattr(by, "is_active", False) and by.is_superuser):
        raise GrantForbidden(_("Only superusers grant or withdraw roles."))


def _state(grant: RoleGrant, region_codes: list[str]) -> dict[str, Any]:
    return {
        "user": grant.user.get_username(),
        "user_id": grant.user_id,
        "role": grant.role,
        "survey": grant.survey.code if grant.survey_id and grant.survey else None,
        "level": grant.level,
        "regions": region_codes,
    }


def check_grant(*, role: str, survey: Survey | None, level: str, regions: list[Region]) -> None:
    """GrantError unless role, survey, level and regions make a consistent grant."""
    if role not in Role.values:
        raise GrantError(_("Unknown role: %(role)s.") % {"role": role})
    if role != Role.ADMIN and survey is None:
        raise GrantError(_("This role is granted for one survey: choose the survey."))
    if role == Role.RESEARCHER and level not in (Level.AGGREGATES, Level.MICRODATA):
        raise GrantError(_("Choose the researcher's level: aggregated estimates or microdata."))
    if role != Role.RESEARCHER and level:
        raise GrantError(_("Only researchers' grants have a level."))
    if role == Role.SUPERVISOR and not regions:
        raise GrantError(_("A supervisor is granted one or more regions: choose them."))
    if role != Role.SUPERVISOR and regions:
        raise GrantError(_("Only supervisors' grants name regions."))


def grant_role(
    *,
    user: Any,
    role: str,
    survey: Survey | None = None,
    level: str = "",
    regions: Iterable[Region] = (),
    by: Any = None,
) -> RoleGrant:
    """Give ``user`` the role in ``survey`` (and ``regions`` for a supervisor).

    Idempotent by (user, role, survey): granting again changes the level or the regions of
    the existing grant, and the event records the old and the new value.
    """
    _check_granter(by)
    regions = list(regions)
    check_grant(role=role, survey=survey, level=level, regions=regions)
    codes = sorted(f"{r.geography}:{r.code}" for r in regions)
    with transaction.atomic():
        grant = (
            RoleGrant.objects.order_by()
            .select_for_update()
            .filter(user=user, role=role, survey=survey)
            .first()
        )
        old = None
        if grant is None:
            grant = RoleGrant.objects.create(
                user=user, role=role, survey=survey, level=level, granted_by=by
            )
        else:
            old = _state(grant, _region_codes(grant))
            grant.level, grant.granted_by = level, by
            grant.save(update_fields=["level", "granted_by"])
            grant.grant_regions.all().delete()
        RoleGrantRegion.objects.bulk_create(
            [RoleGrantRegion(grant=grant, region=region) for region in regions]
        )
        group = Group.objects.filter(name=role).first()
        if group is not None:
            user.groups.add(group)
        record(
            actor=by,
            action=AuditAction.ROLE_GRANTED,
            obj=grant,
            survey_id=grant.survey_id,
            old=old,
            new=_state(grant, codes),
        )
    return grant


def revoke_role(*, grant: RoleGrant, by: Any = None) -> None:
    """Withdraw a grant. The user leaves the role's group when no other grant of it remains."""
    _check_granter(by)
    with transaction.atomic():
        locked = RoleGrant.objects.order_by().select_for_update().filter(pk=grant.pk).first()
        if locked is None:
            return  # already withdrawn
        old = _state(locked, _region_codes(locked))
        survey_id, user = locked.survey_id, locked.user
        record(
            actor=by,
            action=AuditAction.ROLE_REVOKED,
            obj=locked,
            survey_id=survey_id,
            old=old,
            new=None,
        )
        locked.delete()
        if not RoleGrant.objects.filter(user=user, role=old["role"]).exists():
            group = Group.objects.filter(name=old["role"]).first()
            if group is not None:
                user.groups.remove(group)


def _region_codes(grant: RoleGrant) -> list[str]:
    return sorted(
        f"{g}:{c}" for g, c in grant.grant_regions.values_list("region__geography", "region__code")
    )
