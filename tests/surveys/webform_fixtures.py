"""Shared setup for the web questionnaire tests: the real instrument on an open wave."""

from __future__ import annotations

import json
from pathlib import Path

from surveys.models import FormVersion, InvitationLink, Wave
from surveys.services import create_links, import_xlsform, open_wave
from tests.factories import build_xlsform

INSTRUMENT = (
    Path(__file__).resolve().parents[2] / "surveys" / "instruments" / "informal_networks.xlsx"
)
SPHERES = ["KG", "SCH", "UNI", "MED", "JOB", "POL", "CRT", "DOC", "LND", "INF", "BUS"]
TRUST = ["TR_GOV", "TR_CRT", "TR_POL", "TR_AKM", "TR_PAR", "TR_MED", "TR_NGO"]


def instrument_version() -> FormVersion:
    version, _ = import_xlsform(
        survey_code="informal-networks",
        content=INSTRUMENT.read_bytes(),
        filename="informal_networks.xlsx",
    )
    return version


def instrument_wave(*, code: str = "2026", geography: str = "KZ2022", is_open: bool = True) -> Wave:
    version = instrument_version()
    return open_wave(
        survey=version.survey,
        code=code,
        geography=geography,
        form_version=version,
        is_open=is_open,
    )


def public_link(wave: Wave) -> InvitationLink:
    return create_links(wave=wave, kind="public", count=1)[0]


def complete_answers(**changes: object) -> dict[str, object]:
    """A full, valid interview as the browser sends it (text values)."""
    answers: dict[str, object] = {
        "REGION": "KZ-75",
        "SETTLEMENT": "1",
        "SEX": "2",
        "BIRTH_YEAR": "1985",
        "EDU": "5",
        "EMP": "2",
        "ETH": "1",
        "HH_SIZE": "3",
        "INCOME": "3",
        "P1": "1",
        "P2": "2",
        **{f"C_{s}": "2" for s in SPHERES},
        "E1": "3",
        "E2": "4",
        # the indirect designs: the arm drawn decides which count is asked (the other is dropped)
        "LE_C": "1",
        "LE_T": "1",
        "RR_E1": "2",
        "CW_E1": "1",
        "T1": "2",
        "R1": "2",
        "A1": "1",
        "A2": "3",
        "A3": "2",
        **{item: "2" for item in TRUST},
    }
    answers.update(changes)
    return {k: v for k, v in answers.items() if v is not None}


def stored_state(token: str, *, lang: str = "ru", **answers: str) -> str:
    """A draft on the device, on the last page, as form.js keeps it."""
    state = {
        "id": "5b1c3d0e-1111-4222-8333-944455556666",
        "page": 999,
        "lang": lang,
        "started": None,
        "answers": {**complete_answers(), **answers},
    }
    return f"localStorage.setItem('tanys:{token}', {json.dumps(json.dumps(state))})"


LANGS = ["label::Қазақша (kk)", "label::Русский (ru)", "label::English (en)"]
ROSTER_SURVEY = [
    ["type", "name", *LANGS, "relevant", "required", "constraint", "repeat_count", "calculation"],
    ["text", "REGION", "Аймақ", "Регион", "Region", "", "yes"],
    ["calculate", "URBAN", "", "", "", "", "", "", "", "1"],
    ["integer", "n_children", "Балалар саны", "Число детей", "How many children?", "", "", "", ""],
    ["begin_repeat", "member", "Үй мүшелері", "Члены семьи", "Household members"],
    ["text", "first_name", "Аты", "Имя", "First name", "", "yes"],
    ["integer", "age", "Жасы", "Возраст", "Age", "", "yes", ". >= 0 and . < 120"],
    ["select_one yesno", "works", "Жұмыс істей ме?", "Работает?", "Works?", "${age} >= 18", "yes"],
    ["end_repeat", "member"],
    ["begin_repeat", "child", "Балалар", "Дети", "Children", "", "", "", "${n_children}"],
    ["text", "child_name", "Баланың аты", "Имя ребёнка", "Child's name", "", "yes"],
    ["end_repeat", "child"],
]
ROSTER_CHOICES = [
    ["list_name", "name", *LANGS],
    ["yesno", "1", "Иә", "Да", "Yes"],
    ["yesno", "2", "Жоқ", "Нет", "No"],
]


def roster_wave(*, survey: list[list[object]] | None = None, style: str = "") -> Wave:
    """A household roster: a repeat without a count, and one counted by an earlier answer."""
    settings = [
        ["form_id", "version", "default_language", "style"],
        ["roster", "1", "English (en)", style],
    ]
    version, _ = import_xlsform(
        survey_code="roster",
        content=build_xlsform(survey or ROSTER_SURVEY, ROSTER_CHOICES, settings),
        filename="roster.xlsx",
    )
    return open_wave(survey=version.survey, code="R1", geography="KZ2022", form_version=version)
