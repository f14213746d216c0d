"""One answer to "may this user do P on this survey, region or object", and the filters,
DRF permission classes and view decorator built on it.

Two gates, both required:

1. the **named global permission** of the capability (``surveys.view_estimates``,
   ``surveys.export_microdata``, ...), held through the role groups of `surveys.roles`;
2. a **grant** (`access.models.RoleGrant`) of a role that carries the capability, for the
   survey (and, for supervisors, the region) in question.

A member of a role group with no grant reaches no survey: the permission alone opens
nothing. Superusers pass both gates everywhere; an administrator's grant without a survey
covers every survey.
"""

from __future__ import annotations

import enum
import functools
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any

from django.contrib.auth.views import redirect_to_login
from django.core.exceptions import PermissionDenied
from django.db.models import Q, QuerySet
from rest_framework import permissions as drf_permissions

from access.models import Level, Role, RoleGrant

# Django's PermissionDenied (a 403 in HTML views and in DRF alike), for modules that
# already import DRF's exception of the same name.
Forbidden = PermissionDenied


class Capability(enum.Enum):
    """What a user may do on a survey: its global permission and the roles that carry it."""

    # name = (global permission, roles whose grant carries it)
    VIEW_ESTIMATES = ("surveys.view_estimates", (Role.ADMIN, Role.RESEARCHER, Role.SUPERVISOR))
    EXPORT_MICRODATA = ("surveys.export_microdata", (Role.ADMIN, Role.RESEARCHER))
    REVIEW_SUBMISSIONS = ("surveys.review_submission", (Role.ADMIN, Role.SUPERVISOR))
    COLLECT_INTERVIEWS = ("surveys.collect_interviews", (Role.ENUMERATOR, Role.SUPERVISOR))
    # Reference data of a survey (its waves and questionnaires): any role in it.
    VIEW_SURVEY = ("", (Role.ADMIN, Role.RESEARCHER, Role.SUPERVISOR, Role.ENUMERATOR))
    # Questionnaires, waves, links, margins, recomputations: administrators of the survey.
    MANAGE_SURVEY = ("", (Role.ADMIN,))

    @property
    def permission(self) -> str:
        return self.value[0]

    @property
    def roles(self) -> tuple[str, ...]:
        return tuple(str(r) for r in self.value[1])


class _All:
    """Every survey or every region."""

    def __contains__(self, item: object) -> bool:
        return True

    def __bool__(self) -> bool:
        return True

    def __repr__(self) -> str:
        return "ALL"


ALL = _All()
Scope = _All | frozenset[int]


@dataclass(frozen=True)
class _Grant:
    role: str
    survey_id: int | None
    level: str
    region_ids: frozenset[int]


def _grants(user: Any) -> list[_Grant]:
    """The user's grants, read once per user object (a request's user)."""
    cached = getattr(user, "_access_grants", None)
    if cached is None:
        cached = []
        if getattr(user, "is_authenticated", False) and user.pk is not None:
            rows = RoleGrant.objects.filter(user_id=user.pk).prefetch_related("grant_regions")
            cached = [
                _Grant(
                    g.role,
                    g.survey_id,
                    g.level,
                    frozenset(r.region_id for r in g.grant_regions.all()),
                )
                for g in rows
            ]
        user._access_grants = cached
    return cached


def forget_grants(user: Any) -> None:
    """Drop the grants cached on a user object (after granting or revoking in a test)."""
    if hasattr(user, "_access_grants"):
        del user._access_grants


def _carries(grant: _Grant, capability: Capability) -> bool:
    if grant.role not in capability.roles:
        return False
    if capability is Capability.EXPORT_MICRODATA and grant.role == Role.RESEARCHER:
        return grant.level == Level.MICRODATA
    return True


def has_global_permission(user: Any, capability: Capability) -> bool:
    if not (getattr(user, "is_authenticated", False) and user.is_active):
        return False
    return not capability.permission or user.has_perm(capability.permission)


def survey_scope(user: Any, capability: Capability) -> Scope:
    """The surveys (ids) in which ``user`` has ``capability``; ALL for superusers."""
    if not has_global_permission(user, capability):
        return frozenset()
    if user.is_superuser:
        return ALL
    ids: set[int] = set()
    for grant in _grants(user):
        if _carries(grant, capability):
            if grant.survey_id is None:
                return ALL
            ids.add(grant.survey_id)
    return frozenset(ids)


def region_scope(user: Any, capability: Capability, survey_id: int) -> Scope:
    """The regions of one survey where ``user`` has ``capability`` (supervisors: theirs)."""
    if not has_global_permission(user, capability):
        return frozenset()
    if user.is_superuser:
        return ALL
    regions: set[int] = set()
    for grant in _grants(user):
        if not _carries(grant, capability) or grant.survey_id not in (None, survey_id):
            continue
        if grant.role != Role.SUPERVISOR:
            return ALL
        regions |= grant.region_ids
    return frozenset(regions)


def may(user: Any, capability: Capability, obj: Any = None) -> bool:
    """May ``user`` do ``capability`` on ``obj``: a survey, a wave, a submission (its survey
    and region), an export job (each of its waves and its owner), anything else of one
    survey (its ``survey`` or its ``wave``), a region (reference data: on any survey), or
    None (on any survey)."""
    from analytics.models import ExportJob
    from surveys.models import Region, Submission, Survey, Wave

    if obj is None or isinstance(obj, Region):
        return bool(survey_scope(user, capability))
    if isinstance(obj, Survey):
        return obj.pk in survey_scope(user, capability)
    if isinstance(obj, Wave):
        return obj.survey_id in survey_scope(user, capability)
    if isinstance(obj, Submission):
        if capability is Capability.COLLECT_INTERVIEWS and not user.is_superuser:
            return obj.enumerator_id == user.pk and may(user, capability, obj.wave)
        survey_id = obj.wave.survey_id
        return obj.region_id in region_scope(user, capability, survey_id)
    if isinstance(obj, ExportJob):
        if obj.requested_by_id != user.pk:
            return False
        capability = capability_for_export(obj.kind)
        wave_ids = job_wave_ids(obj)
        if not wave_ids:  # a job naming no wave covers every wave
            return isinstance(survey_scope(user, capability), _All)
        return waves_allowed(user, capability, wave_ids)
    if isinstance(getattr(obj, "survey_id", None), int):
        return obj.survey_id in survey_scope(user, capability)
    if isinstance(getattr(obj, "wave_id", None), int):
        return may(user, capability, obj.wave)
    raise TypeError(f"no permission rule for {type(obj).__name__}")


def capability_for_export(kind: str) -> Capability:
    """Microdata and codebooks need the microdata level; regional tables the estimates."""
    return Capability.VIEW_ESTIMATES if kind == "regional" else Capability.EXPORT_MICRODATA


def job_wave_ids(job: Any) -> list[int]:
    return [int(w) for w in (job.parameters or {}).get("waves") or []]


# ----------------------------------------------------------------------- queryset filters


def _in_scope(scope: Scope, field: str) -> Q:
    if isinstance(scope, _All):
        return Q()
    return Q(**{f"{field}__in": sorted(scope)})


def filter_by_survey(
    queryset: QuerySet[Any], user: Any, capability: Capability, field: str = "survey"
) -> QuerySet[Any]:
    """``queryset`` narrowed to the rows whose ``field`` (a path to a survey) is in scope."""
    scope = survey_scope(user, capability)
    if not scope:
        return queryset.none()
    return queryset.filter(_in_scope(scope, field))


def surveys_for(user: Any, capability: Capability) -> QuerySet[Any]:
    from surveys.models import Survey

    return filter_by_survey(Survey.objects.order_by("code"), user, capability, "pk")


def waves_for(user: Any, capability: Capability) -> QuerySet[Any]:
    from surveys.models import Wave

    return filter_by_survey(Wave.objects.order_by("survey__code", "code"), user, capability)


def waves_allowed(user: Any, capability: Capability, wave_ids: Iterable[int]) -> bool:
    """Every one of the waves (by id) is in a survey where the user has the capability.
    An empty list is allowed when the user has the capability in some survey."""
    from surveys.models import Wave

    scope = survey_scope(user, capability)
    if not scope:
        return False
    ids = set(wave_ids)
    surveys = set(Wave.objects.filter(pk__in=ids).values_list("survey_id", flat=True))
    return all(s in scope for s in surveys)


def permitted_wave_ids(
    user: Any, capability: Capability, requested: Iterable[int] | None
) -> list[int]:
    """The waves a read may cover: the requested ones (PermissionDenied when one is out of
    scope), or, when none is named, every wave in scope."""
    requested = list(requested or [])
    if requested:
        if not waves_allowed(user, capability, requested):
            raise PermissionDenied
        return requested
    return list(waves_for(user, capability).values_list("pk", flat=True))


def submissions_filter(user: Any, capability: Capability) -> Q | None:
    """A filter on `Submission` for the interviews ``user`` may handle with ``capability``:
    whole surveys for administrators, their regions for supervisors, their own interviews
    for enumerators. None when no interview is in reach; Q() for every interview."""
    if not has_global_permission(user, capability):
        return None
    if user.is_superuser:
        return Q()
    parts: list[Q] = []
    for grant in _grants(user):
        if not _carries(grant, capability):
            continue
        in_survey = Q() if grant.survey_id is None else Q(wave__survey_id=grant.survey_id)
        if capability is Capability.COLLECT_INTERVIEWS:
            parts.append(in_survey & Q(enumerator_id=user.pk))
        elif grant.role == Role.SUPERVISOR:
            parts.append(in_survey & Q(region_id__in=sorted(grant.region_ids)))
        else:
            parts.append(in_survey)
    if not parts:
        return None
    return functools.reduce(lambda a, b: a | b, parts)


def submissions_for(
    user: Any, capability: Capability, queryset: QuerySet[Any] | None = None
) -> QuerySet[Any]:
    """The interviews a supervisor may review (their regions), an administrator handle
    (their surveys), an enumerator see (their own)."""
    from surveys.models import Submission

    queryset = Submission.objects.all() if queryset is None else queryset
    condition = submissions_filter(user, capability)
    return queryset.none() if condition is None else queryset.filter(condition)


# ------------------------------------------------------------------- views and the API


class HasCapability(drf_permissions.BasePermission):
    """DRF: the capability's global permission and a grant in at least one survey; on an
    object, the grant for the object's survey (and region). Subclass with ``capability``."""

    capability: Capability = Capability.VIEW_ESTIMATES
    message = "You do not have permission for this survey."

    def has_permission(self, request: Any, view: Any) -> bool:
        return may(request.user, self.capability)

    def has_object_permission(self, request: Any, view: Any, obj: Any) -> bool:
        return may(request.user, self.capability, obj)


def requires_capability(capability: Capability) -> type[HasCapability]:
    """A DRF permission class for ``capability``."""
    return type(
        f"Requires{capability.name.title().replace('_', '')}",
        (HasCapability,),
        {"capability": capability},
    )


def capability_required(
    capability: Capability, *, login_url: str | Any | None = None
) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
    """View decorator: anonymous users go to the login page; signed-in users without the
    permission or a grant in any survey get 403. Object checks stay in the view (`may`)."""

    def decorator(view: Callable[..., Any]) -> Callable[..., Any]:
        @functools.wraps(view)
        def wrapped(request: Any, *args: Any, **kwargs: Any) -> Any:
            if not request.user.is_authenticated:
                return redirect_to_login(request.get_full_path(), login_url and str(login_url))
            if not may(request.user, capability):
                raise PermissionDenied
            return view(request, *args, **kwargs)

        return wrapped

    return decorator


def require(user: Any, capability: Capability, obj: Any = None) -> None:
    """Raise PermissionDenied unless `may`."""
    if not may(user, capability, obj):
        raise PermissionDenied


def may_import_questionnaire(user: Any, survey_code: str) -> bool:
    """Uploading a questionnaire: ``surveys.add_formversion`` and the administrator's grant
    for the survey; for a survey that does not exist yet also ``surveys.add_survey`` and a
    grant covering every survey."""
    from surveys.models import Survey

    if not has_global_permission(user, Capability.MANAGE_SURVEY):
        return False
    if not user.has_perm("surveys.add_formversion"):
        return False
    survey = Survey.objects.filter(code=survey_code).first()
    if survey is not None:
        return may(user, Capability.MANAGE_SURVEY, survey)
    return may_create_survey(user)


def may_create_survey(user: Any) -> bool:
    """A new survey: ``surveys.add_survey`` and an administrator's grant on every survey
    (an administrator of one survey would make a survey nobody holds a grant in)."""
    if not has_global_permission(user, Capability.MANAGE_SURVEY):
        return False
    scope = survey_scope(user, Capability.MANAGE_SURVEY)
    return user.has_perm("surveys.add_survey") and isinstance(scope, _All)


# ------------------------------------------------------------------- field staff


def enumerators_for(user: Any) -> QuerySet[Any]:
    """The active enumerators ``user`` may manage (enrolment codes, ODK Collect devices):
    those holding an enumerator's grant in a survey where ``user`` reviews interviews (a
    supervisor's or an administrator's grant); superusers: every enumerator."""
    from django.contrib.auth import get_user_model

    people = get_user_model().objects.filter(is_active=True)
    if user.is_superuser and user.is_active:
        return people.filter(
            Q(groups__name=Role.ENUMERATOR) | Q(role_grants__role=Role.ENUMERATOR)
        ).distinct()
    scope = survey_scope(user, Capability.REVIEW_SUBMISSIONS)
    if not scope:
        return people.none()
    grants = RoleGrant.objects.filter(role=Role.ENUMERATOR).filter(_in_scope(scope, "survey_id"))
    return people.filter(pk__in=grants.values("user_id"))


def may_manage_enumerator(user: Any, enumerator: Any) -> bool:
    return enumerators_for(user).filter(pk=enumerator.pk).exists()


def may_assign(user: Any, wave: Any, region: Any) -> bool:
    """May ``user`` give an enumerator work in ``region`` of ``wave``: a supervisor's grant
    for the region, or an administrator's for the survey."""
    return region.pk in region_scope(user, Capability.REVIEW_SUBMISSIONS, wave.survey_id)
