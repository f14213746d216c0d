"""The checks an interview passes before it is stored, from any channel.

`checked_interview` is `surveys.services.prepare_interview` without the model: the fields
of a valid interview, or AnswerErrors / SubmissionRefused with messages in the interview's
language. A batch of tablet interviews is checked with it one by one and inserted together
(`collect.sync`), so it does per interview only what the interview needs: its answers are
written as JSON once (orjson) for the size and NUL checks, and walked value by value only
when that text shows a NUL character.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import json
import uuid
from typing import Any

import orjson
from django.utils import timezone, translation
from django.utils.translation import gettext

from surveys.admission import SubmissionRefused, admission_refusal
from surveys.assignment import balanced_rows, recorded_halves
from surveys.definition import INTERFACE_LANGUAGES
from surveys.models import Channel, FormVersion, Geography, InvitationLink, Region, Wave
from surveys.validation import AnswerErrors
from surveys.validation_source import validator_for

# A real interview of this instrument is about 2 KB of JSON; this leaves room for long forms.
MAX_ANSWERS_BYTES = 200_000
WEB_PSU_PREFIX = "WEB-"
_CHANNELS = frozenset(Channel.values)


def checked_interview(
    *,
    wave: Wave,
    answers: Any,
    channel: str,
    language: str,
    instance_id: uuid.UUID | str,
    form_version: FormVersion | None = None,
    started_at: dt.datetime | None = None,
    ended_at: dt.datetime | None = None,
    device_id: str = "",
    user_agent_class: str = "",
    enumerator: Any = None,
    link: InvitationLink | None = None,
    design: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """Every check `surveys.services.submit_interview` makes before it looks the instance
    id up: the interview's fields, valid and ready to insert (``Submission(**fields)``), or
    AnswerErrors / SubmissionRefused. A batch checks its interviews this way one by one and
    inserts them together."""
    if language not in INTERFACE_LANGUAGES:
        raise SubmissionRefused("language", f"unsupported interview language {language!r}")
    # A batch checks its interviews in the language already active: no switch to make.
    switch = (
        contextlib.nullcontext()
        if translation.get_language() == language
        else translation.override(language)
    )
    with switch:
        dumped = _json_or_none(answers)
        if (
            dumped is None
            or b"\\u0000" in dumped
            or not isinstance(device_id, str)
            or "\x00" in device_id
        ):
            _refuse_nul_characters(answers, device_id)
        _check_times(started_at, ended_at)
        try:
            instance = (
                instance_id if type(instance_id) is uuid.UUID else uuid.UUID(str(instance_id))
            )
        except ValueError:
            raise SubmissionRefused(
                "instance_id", gettext("The interview identifier is not valid.")
            ) from None
        # The size is that of the answers as UTF-8 JSON with the standard library's
        # separators: for JSON values under three times orjson's compact text (a
        # separator is one character more, -Infinity nine characters for "null"'s four),
        # so it is measured exactly only near the limit.
        near_limit = dumped is None or 3 * len(dumped) > MAX_ANSWERS_BYTES
        if near_limit and _answers_size(answers) > MAX_ANSWERS_BYTES:
            raise SubmissionRefused(
                "too_large",
                gettext("The answers are too large to be accepted (more than %(kb)d KB).")
                % {"kb": MAX_ANSWERS_BYTES // 1000},
            )
        version = form_version or wave.form_version
        if version is None or version.survey_id != wave.survey_id:
            raise SubmissionRefused(
                "no_form", gettext("This survey wave has no questionnaire to answer.")
            )
        refusal = admission_refusal(link=link, wave=wave, channel=channel, check_link_state=False)
        if refusal is not None:
            raise refusal
        if channel not in _CHANNELS:
            raise SubmissionRefused("channel", f"unknown channel {channel!r}")
        if language not in version.languages and version.languages != ["default"]:
            raise SubmissionRefused(
                "language", gettext("The questionnaire is not available in this language.")
            )
        # A web interview's balanced assignments were drawn when its page was rendered;
        # read when the answers do not carry them (the form without JavaScript).
        halves = (
            recorded_halves(wave=wave, instance_id=instance)
            if channel == Channel.WEB
            and isinstance(answers, dict)
            and any(answers.get(name) in (None, "") for name in balanced_rows(version.definition))
            else None
        )
        # ``language`` is an interface language, active here (the switch above).
        clean = validator_for(version).validate_in_active_language(
            answers, language=language, instance_id=str(instance), halves=halves
        )
        fields = _design_fields(wave, clean.answers, design or {}, instance)
        duration = None
        if started_at is not None and ended_at is not None:
            if ended_at >= started_at:
                duration = int((ended_at - started_at).total_seconds())
            else:  # a device clock set wrong: keep the start, drop what cannot be true
                ended_at = None
        return {
            "instance_id": instance,
            "form_version": version,
            "wave": wave,
            "channel": channel,
            "language": language,
            "answers": clean.answers,
            "started_at": started_at,
            "ended_at": ended_at,
            "duration_seconds": duration,
            "device_id": device_id[:128],
            "user_agent_class": user_agent_class[:16],
            "enumerator": enumerator,
            **fields,
        }


# Interview times outside this window are refused: no interview of the platform predates it,
# and a clock ahead by more than a day is wrong, not in another time zone.
EARLIEST_INTERVIEW = dt.datetime(2000, 1, 1, tzinfo=dt.UTC)
FUTURE_TOLERANCE = dt.timedelta(days=1)


_SCALARS = frozenset({int, float, bool, type(None)})


def _json_or_none(value: Any) -> bytes | None:
    """``value`` as compact JSON, or None when orjson does not take it (keys that are
    not text, integers beyond 64 bits, lone surrogates)."""
    try:
        return orjson.dumps(value, default=str)
    except TypeError:
        return None


def _answers_size(answers: Any) -> int:
    try:
        return len(json.dumps(answers, ensure_ascii=False, default=str).encode())
    except (TypeError, ValueError):
        return MAX_ANSWERS_BYTES + 1


def _refuse_nul_characters(answers: Any, device_id: Any) -> None:
    """Refuse what PostgreSQL does not store: NUL characters in text (keys, answers, the
    device id). Only called when orjson's text of the answers shows a NUL, or could not be
    made: any text it holds would show as ``\\u0000`` there."""
    texts: list[Any] = [answers, device_id]
    while texts:
        value = texts.pop()
        if type(value) in _SCALARS:  # most answers: numbers, nothing to look into
            continue
        if isinstance(value, str):
            found = "\x00" in value
        elif isinstance(value, dict):
            found = any(isinstance(key, str) and "\x00" in key for key in value)
            texts.extend(value.values())
        elif isinstance(value, list | tuple):
            found = False
            texts.extend(value)
        else:
            found = False
        if found:
            raise SubmissionRefused(
                "nul_character",
                gettext("The answers contain a NUL character, which cannot be stored."),
            )


def _check_times(started_at: Any, ended_at: Any) -> None:
    """Refuse times outside a plausible window (a year-1 start made a duration of 63 billion
    seconds). Messages are in the active language."""
    latest = None
    for moment in (started_at, ended_at):
        if moment is None:
            continue
        if not isinstance(moment, dt.datetime):
            raise SubmissionRefused("timestamp", gettext("The interview times are not valid."))
        if moment.utcoffset() is None:  # naive: UTC, as `timezone.make_aware` would make it
            moment = moment.replace(tzinfo=dt.UTC)
        latest = latest or timezone.now() + FUTURE_TOLERANCE
        if not EARLIEST_INTERVIEW <= moment <= latest:
            raise SubmissionRefused(
                "timestamp",
                gettext(
                    "The interview times are not plausible: they must fall between 2000-01-01 "
                    "and tomorrow. Check the date and time of the device."
                ),
            )


def _design_fields(
    wave: Wave, answers: dict[str, Any], design: dict[str, Any], instance: uuid.UUID
) -> dict[str, Any]:
    unknown = set(design) - {"region", "urban_rural", "stratum", "psu", "weight"}
    if unknown:
        raise SubmissionRefused("design", f"unknown design fields: {', '.join(sorted(unknown))}")
    region = design.get("region")
    if region is None:
        region = _region_from_answer(wave, answers.get("REGION"))
    elif not isinstance(region, Region):
        region = Region.objects.filter(geography=wave.geography, code=str(region)).first()
    if region is None or region.geography != wave.geography:
        raise AnswerErrors({"REGION": [gettext("Choose the region where you live.")]})
    urban_rural = design.get("urban_rural", answers.get("URBAN"))
    if urban_rural not in (1, 2):
        raise AnswerErrors({"SETTLEMENT": [gettext("Choose the type of settlement.")]})
    weight = float(design.get("weight", 1.0))
    if not weight > 0:
        raise SubmissionRefused("design", "the design weight must be positive")
    return {
        "region": region,
        "urban_rural": urban_rural,
        "stratum": str(
            design.get("stratum") or f"{region.code}-{'U' if urban_rural == 1 else 'R'}"
        ),
        "psu": str(design.get("psu") or f"{WEB_PSU_PREFIX}{instance}"),
        "weight": weight,
    }


def _region_from_answer(wave: Wave, code: Any) -> Region | None:
    """The wave-geography region for a REGION answer (a current ISO code, or a 2013 one)."""
    if not isinstance(code, str) or not code:
        return None
    region = Region.objects.filter(geography=wave.geography, code=code).first()
    if region is None and wave.geography == Geography.KZ2013:
        current = Region.objects.filter(geography=Geography.KZ2022, code=code).select_related(
            "unit_2013"
        )
        region = next((r.unit_2013 for r in current), None)
    return region
