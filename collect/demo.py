"""Demo fieldwork: a supervisor and an enumerator with assignments in the open wave."""

from __future__ import annotations

import secrets
from typing import Any

from django.contrib.auth import get_user_model
from django.contrib.auth.models import Group

from access.models import Role
from access.services import grant_role
from collect.models import Assignment
from collect.services import create_assignment
from surveys.models import Region, Wave

# Two settlements of two regions: a city and a rural district (SETTLEMENT 1 and 4).
DEMO_ASSIGNMENTS: list[dict[str, Any]] = [
    {
        "region": "KZ-75",
        "settlement": "Алматы",
        "psu": "DEMO-ALA-01",
        "quota": 10,
        "settlement_type": 1,
        "place": (43.2389, 76.8897),
    },
    {
        "region": "KZ-11",
        "settlement": "Зеренді ауданы",
        "psu": "DEMO-AKM-07",
        "quota": 8,
        "settlement_type": 4,
        "place": (52.8667, 69.1333),
    },
]


def _user(username: str, role: str, password: str) -> Any:
    user, _ = get_user_model().objects.get_or_create(username=username)
    user.set_password(password)
    user.save()
    user.groups.add(Group.objects.get(name=role))
    return user


def demo_fieldwork(wave: Wave) -> dict[str, str]:
    """Create (or reset the passwords of) the demo supervisor and enumerator; give the
    enumerator the demo assignments once. Returns the logins."""
    logins = {"supervisor": secrets.token_urlsafe(9), "enumerator": secrets.token_urlsafe(9)}
    supervisor = _user("supervisor", "supervisor", logins["supervisor"])
    enumerator = _user("enumerator", "enumerator", logins["enumerator"])
    regions = [
        Region.objects.get(geography=wave.geography, code=spec["region"])
        for spec in DEMO_ASSIGNMENTS
    ]
    # Roles hold in a survey (and, for a supervisor, its regions): the demo's pair works in
    # the open wave's survey and the two regions of the demo assignments.
    grant_role(user=supervisor, role=Role.SUPERVISOR, survey=wave.survey, regions=regions)
    grant_role(user=enumerator, role=Role.ENUMERATOR, survey=wave.survey)
    if not Assignment.objects.filter(enumerator=enumerator, wave=wave).exists():
        for spec in DEMO_ASSIGNMENTS:
            create_assignment(
                enumerator=enumerator,
                wave=wave,
                region=Region.objects.get(geography=wave.geography, code=spec["region"]),
                settlement=spec["settlement"],
                psu=spec["psu"],
                quota=spec["quota"],
                latitude=spec["place"][0],
                longitude=spec["place"][1],
                prefilled={"REGION": spec["region"], "SETTLEMENT": spec["settlement_type"]},
                created_by=supervisor,
            )
    return logins
