"""Builders shared by the collect tests: a small tablet form, users in roles, devices."""

from __future__ import annotations

import datetime as dt
import uuid
from typing import Any

from django.contrib.auth.models import Group, User

from access.permissions import forget_grants
from access.services import grant_role
from collect.models import Assignment
from collect.services import create_assignment, enrol_device
from surveys.models import Region, Survey, Wave
from surveys.services import import_xlsform, open_wave
from tests.factories import build_xlsform

LANGS = ["label::Қазақша (kk)", "label::Русский (ru)", "label::English (en)"]
# Two questions on two pages, and a constraint, so interviews are quick in a browser.
TABLET_FORM = {
    "survey": [
        ["type", "name", *LANGS, "required", "constraint", "appearance"],
        ["begin_group", "p1", "Бірінші бет", "Первая страница", "First page", "", "", "field-list"],
        ["select_one yesno", "q1", "Сұрақ", "Вопрос", "Question", "yes", "", ""],
        ["end_group", "", "", "", "", "", "", ""],
        ["begin_group", "p2", "Екінші бет", "Вторая страница", "Second page", "", "", "field-list"],
        ["integer", "age", "Жасы", "Возраст", "Age", "yes", ". >= 18 and . < 120", ""],
        ["end_group", "", "", "", "", "", "", ""],
    ],
    "choices": [
        ["list_name", "name", *LANGS],
        ["yesno", "1", "Иә", "Да", "Yes"],
        ["yesno", "2", "Жоқ", "Нет", "No"],
    ],
    "settings": [["form_id", "version", "default_language"], ["tablet", "1", "Қазақша (kk)"]],
}


def tablet_version(version: str = "1", survey_code: str = "tablet"):
    form = dict(TABLET_FORM)
    form["settings"] = [
        ["form_id", "version", "default_language"],
        ["tablet", version, "Қазақша (kk)"],
    ]
    if version != "1":  # a later version asks one more (optional) question
        form["survey"] = [
            *TABLET_FORM["survey"],
            ["text", "note_extra", "Қосымша", "Доп.", "Extra", "", "", ""],
        ]
    created, _ = import_xlsform(
        survey_code=survey_code, content=build_xlsform(**form), filename="tablet.xlsx"
    )
    return created


def tablet_wave(code: str = "T1") -> Wave:
    version = tablet_version()
    return open_wave(survey=version.survey, code=code, geography="KZ2022", form_version=version)


def user_in(
    role: str,
    username: str,
    password: str = "pass-Word-123",
    *,
    survey: Survey | None = None,
    regions: tuple[str, ...] = ("KZ-75",),
) -> User:
    """A user in a role group; with ``survey``, also holding the role's grant there (a
    supervisor's for ``regions``, codes of KZ2022)."""
    user = User.objects.create_user(username=username, password=password)
    user.groups.add(Group.objects.get(name=role))
    if survey is not None:
        grant_role(
            user=user,
            role=role,
            survey=survey,
            regions=Region.objects.filter(geography="KZ2022", code__in=regions)
            if role == "supervisor"
            else (),
        )
    return User.objects.get(pk=user.pk)  # fresh permission cache


def assignment_for(enumerator: User, wave: Wave, *, quota: int = -1, **extra: Any) -> Assignment:
    supervisor = User.objects.filter(groups__name="supervisor").first() or user_in(
        "supervisor", f"sup-{uuid.uuid4().hex[:6]}"
    )
    # An enumerator is given work in a survey where they hold the enumerator's grant.
    grant_role(user=enumerator, role="enumerator", survey=wave.survey)
    forget_grants(enumerator)
    return create_assignment(
        enumerator=enumerator,
        wave=wave,
        region=Region.objects.get(geography="KZ2022", code="KZ-75"),
        settlement="Алматы",
        psu="PSU-7",
        quota=quota,
        prefilled={"URBAN": 1},
        created_by=supervisor,
        **extra,
    )


def bearer(enumerator: User) -> tuple[Any, str]:
    device, token = enrol_device(enumerator=enumerator, via="password", label="tablet 1")
    return device, token


def item(
    assignment: Assignment, *, answers: dict[str, Any] | None = None, **changes: Any
) -> dict[str, Any]:
    start = dt.datetime(2026, 5, 4, 10, 0, tzinfo=dt.UTC)
    body = {
        "instance_id": str(uuid.uuid4()),
        "form_version": assignment.form_version_id,
        "assignment": assignment.pk,
        "answers": answers if answers is not None else {"q1": "1", "age": "34"},
        "language": "kk",
        "paradata": {
            "started_at": start.isoformat(),
            "ended_at": (start + dt.timedelta(minutes=12)).isoformat(),
            "pages": {"1": 30.5, "2": 40.0},
            "changes": 1,
            "ip": "10.0.0.1",
            "user_agent": "Mozilla/5.0",
        },
    }
    body.update(changes)
    return body
