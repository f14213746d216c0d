"""Demo fieldwork: a supervisor and an enumerator with assignments in the open wave."""

from __future__ import annotations

import secrets
from typing import Any

from django.contrib.auth import get_user_model
from django.contrib.auth.models import Group

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
    },
    {
        "region": "KZ-11",
        "settlement": "Зеренді ауданы",
        "psu": "DEMO-AKM-07",
        "quota": 8,
        "settlement_type": 4,
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
    # Their grants in the wave's survey: the supervisor for the demo regions.
    regions = Region.objects.filter(
        geography=wave.geography, code__in=[spec["region"] for spec in DEMO_ASSIGNMENTS]
    )
    grant_role(user=supervisor, role="supervisor", survey=wave.survey, regions=regions)
    grant_role(user=enumerator, role="enumerator", survey=wave.survey)
    if not Assignment.objects.filter(enumerator=enumerator, wave=wave).exists():
        for spec in DEMO_ASSIGNMENTS:
            create_assignment(
                enumerator=enumerator,
                wave=wave,
                region=Region.objects.get(geography=wave.geography, code=spec["region"]),
                settlement=spec["settlement"],
                psu=spec["psu"],
                quota=spec["quota"],
                prefilled={"REGION": spec["region"], "SETTLEMENT": spec["settlement_type"]},
                created_by=supervisor,
            )
    return logins
