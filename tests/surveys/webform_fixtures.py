"""Shared setup for the web questionnaire tests: the real instrument on an open wave."""

from __future__ import annotations

from pathlib import Path

from surveys.models import FormVersion, InvitationLink, Wave
from surveys.services import create_links, import_xlsform, open_wave

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
        "T1": "2",
        "R1": "2",
        "A1": "1",
        "A2": "3",
        "A3": "2",
        **{item: "2" for item in TRUST},
    }
    answers.update(changes)
    return {k: v for k, v in answers.items() if v is not None}
