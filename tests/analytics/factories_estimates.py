"""Factories for stored estimates: a current result set of a wave with regional cells."""

from __future__ import annotations

import datetime as dt

from django.utils import timezone

from analytics.models import IndicatorEstimate, ResultSet
from surveys.models import Region, Wave
from tests.factories import WaveFactory


def current_result_set(wave: Wave, *, n_interviews: int = 857) -> ResultSet:
    ResultSet.objects.filter(wave=wave, is_current=True).update(is_current=False)
    return ResultSet.objects.create(
        wave=wave,
        status=ResultSet.Status.READY,
        is_current=True,
        n_interviews=n_interviews,
        weights_version="w1",
        data_version="d1",
        computed_at=timezone.now(),
    )


def regional_estimates(
    wave: Wave,
    *,
    indicator: str = "PERC_BRIBE",
    suppressed_codes: tuple[str, ...] = (),
    base: float = 0.6,
    previous_wave: Wave | None = None,
    result_set: ResultSet | None = None,
    geography: str | None = None,
    national: bool = True,
) -> list[IndicatorEstimate]:
    """A national cell and one cell per region of the geography (the wave's own unless
    given: a current wave's 2013 units, say, with national=False, as the computation
    stores the national cell once, under the wave's geography).

    Region k gets estimate base + 0.01 k; regions in suppressed_codes are suppressed (n kept).
    """
    result_set = result_set or current_result_set(wave)
    geography = geography or wave.geography
    computed = timezone.now().replace(microsecond=0) - dt.timedelta(minutes=5)
    cells = [
        IndicatorEstimate(
            result_set=result_set,
            wave=wave,
            geography=wave.geography,
            region=None,
            indicator=indicator,
            estimate=base,
            se=0.01,
            ci_low=base - 0.02,
            ci_high=base + 0.02,
            ci_method="logit",
            df=300,
            n=857,
            n_numerator=500,
            n_eff=600.0,
            deff=1.4,
            national_estimate=base,
            weights_version="w1",
            data_version="d1",
            computed_at=computed,
        )
    ][: 1 if national else 0]
    for k, region in enumerate(Region.objects.of(geography).order_by("code")):
        suppressed = region.code in suppressed_codes
        value = round(base + 0.01 * k, 4)
        cells.append(
            IndicatorEstimate(
                result_set=result_set,
                wave=wave,
                geography=geography,
                region=region,
                indicator=indicator,
                estimate=None if suppressed else value,
                se=None if suppressed else 0.05,
                ci_low=None if suppressed else value - 0.1,
                ci_high=None if suppressed else value + 0.1,
                ci_method="korn-graubard",
                df=20,
                n=12 if suppressed else 54,
                n_numerator=None if suppressed else 30,
                n_eff=None if suppressed else 40.0,
                deff=None if suppressed else 1.35,
                suppressed=suppressed,
                suppression_reason="n_lt_30" if suppressed else "",
                national_estimate=base,
                diff_vs_rest=None if suppressed else value - base,
                diff_vs_rest_se=None if suppressed else 0.05,
                diff_vs_rest_p=None if suppressed else 0.5,
                diff_vs_rest_p_adjusted=None if suppressed else 1.0,
                previous_wave=previous_wave,
                previous_estimate=base if previous_wave else None,
                change=(value - base) if previous_wave and not suppressed else None,
                change_se=0.07 if previous_wave and not suppressed else None,
                weights_version="w1",
                data_version="d1",
                computed_at=computed,
            )
        )
    return IndicatorEstimate.objects.bulk_create(cells)


def make_user(  # type: ignore[no-untyped-def]
    username: str,
    *roles: str,
    password: str = "correct-horse-42",
    surveys: tuple[str, ...] | None = None,
    level: str = "microdata",
):
    """A user holding the given roles (researcher, supervisor, ...) in ``surveys`` (made
    when they do not exist yet; by default every survey that exists and the factories'
    "simple" one); none for a bare account. Researchers get ``level``; supervisors every
    region. Roles granted in surveys made later: `grant_everywhere`."""
    from django.contrib.auth import get_user_model

    from surveys.models import Survey

    user = get_user_model().objects.create_user(username=username, password=password)
    user.test_roles, user.test_level = roles, level
    codes = (
        surveys
        if surveys is not None
        else {"simple", *Survey.objects.values_list("code", flat=True)}
    )
    for code in sorted(codes) if roles else ():
        survey, _created = Survey.objects.get_or_create(code=code, defaults={"title": code})
        _grant(user, roles, survey, level)
    return user


def grant_everywhere(*users):  # type: ignore[no-untyped-def]
    """Give users made by `make_user` their roles in every survey that exists now."""
    from access.permissions import forget_grants
    from surveys.models import Survey

    for user in users:
        for survey in Survey.objects.all():
            _grant(user, user.test_roles, survey, user.test_level)
        forget_grants(user)


def _grant(user, roles, survey, level):  # type: ignore[no-untyped-def]
    from access.services import grant_role

    for role in roles:
        grant_role(
            user=user,
            role=role,
            survey=survey,
            level=level if role == "researcher" else "",
            regions=Region.objects.all() if role == "supervisor" else (),
        )


def instrument_wave(
    code: str = "2013", *, n: int = 120, seed: int = 7, geography: str = "KZ2013"
) -> Wave:
    """A wave of the real questionnaire with n synthetic interviews."""
    import datetime as dt
    from pathlib import Path

    from surveys.demo import RATES_2013, generate_wave
    from surveys.models import Survey
    from surveys.services import import_xlsform, open_wave

    path = (
        Path(__file__).resolve().parents[2] / "surveys" / "instruments" / "informal_networks.xlsx"
    )
    version, _created = import_xlsform(
        survey_code="informal-networks", content=path.read_bytes(), filename=path.name
    )
    wave = open_wave(
        survey=Survey.objects.get(code="informal-networks"),
        code=code,
        geography=geography,
        form_version=version,
        fieldwork_start=dt.date(2013, 3, 1),
        is_synthetic=True,
    )
    generate_wave(wave=wave, form_version=version, n=n, seed=seed, rates=RATES_2013)
    return wave


def two_waves_with_estimates() -> tuple[Wave, Wave]:
    """A 2013-geography wave and a current one of the same survey, with stored estimates
    (one suppressed region each) and the current wave compared with the earlier one."""
    earlier = WaveFactory(code="2013", geography="KZ2013")
    later = WaveFactory(
        code="2026", geography="KZ2022", survey=earlier.survey, form_version=earlier.form_version
    )
    regional_estimates(earlier, suppressed_codes=("KZ-MAN",))
    regional_estimates(later, suppressed_codes=("KZ-62",), previous_wave=earlier, base=0.5)
    return earlier, later


def breakdown_estimates(
    wave: Wave,
    *,
    breakdown: str = "sex",
    indicator: str = "PERC_BRIBE",
    result_set: ResultSet | None = None,
    regions: int = 2,
    suppressed_groups: tuple[str, ...] = (),
) -> list:
    """Cells of one breakdown: each group nationally, then within the first ``regions``
    regions of the wave's geography. Group k gets estimate 0.5 + 0.05 k."""
    from analytics.breakdowns import BY_KEY
    from analytics.models import BreakdownEstimate

    result_set = result_set or ResultSet.objects.get(wave=wave, is_current=True)
    computed = timezone.now().replace(microsecond=0)
    places = [None, *Region.objects.of(wave.geography).order_by("code")[:regions]]
    cells = []
    for region in places:
        for k, code in enumerate(BY_KEY[breakdown].group_codes):
            hidden = code in suppressed_groups
            value = None if hidden else 0.5 + 0.05 * k
            cells.append(
                BreakdownEstimate(
                    result_set=result_set,
                    wave=wave,
                    geography=wave.geography,
                    region=region,
                    breakdown=breakdown,
                    group=code,
                    indicator=indicator,
                    estimate=value,
                    se=None if hidden else 0.02,
                    ci_low=None if hidden else value - 0.04,  # type: ignore[operator]
                    ci_high=None if hidden else value + 0.04,  # type: ignore[operator]
                    ci_method="korn-graubard",
                    df=100,
                    n=12 if hidden else 400,
                    n_numerator=None if hidden else 200,
                    suppressed=hidden,
                    suppression_reason="n<30" if hidden else "",
                    computed_at=computed,
                )
            )
    return BreakdownEstimate.objects.bulk_create(cells)
