"""The stored estimates of a wave, checked against R `survey` (recorded) and against
`survey_mean` computed independently from the stored answers."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from analytics import services
from analytics.margins import parse_margins
from analytics.models import IndicatorEstimate, ResultSet, WaveComputation
from analytics.selectors import computation_status, current_estimates
from analytics.stats.estimation import survey_mean
from analytics.stats.publication import publication
from surveys.demo import RATES_CURRENT, generate_wave
from surveys.models import Region, Submission
from surveys.services import review_interviews
from tests.factories import WaveFactory

REFERENCE = Path(__file__).parent / "reference"
pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def media(settings, tmp_path):
    settings.MEDIA_ROOT = tmp_path


def reference() -> dict[str, float]:
    table = pd.read_csv(REFERENCE / "pipeline_reference.csv")
    return dict(zip(table["key"], table["value"].astype(float), strict=True))


def vector(ref: dict[str, float], key: str) -> np.ndarray:
    return np.array([ref[f"{key}[{i}]"] for i in range(1, 17)])


def load_reference_wave(
    *, weight_scale: float = 1.0, shuffle: int | None = None, code: str = "R2013"
):
    wave = WaveFactory(geography="KZ2013", fieldwork_start=dt.date(2013, 3, 1), code=code)
    data = pd.read_csv(REFERENCE / "pipeline_wave.csv")
    if shuffle is not None:
        data = data.sample(frac=1.0, random_state=shuffle)
    regions = {r.code: r for r in Region.objects.of("KZ2013")}
    Submission.objects.bulk_create(
        [
            Submission(
                wave=wave,
                form_version=wave.form_version,
                region=regions[row.region],
                urban_rural=row.urban_rural,
                stratum=row.stratum,
                psu=row.psu,
                weight=row.weight * weight_scale,
                channel="tablet",
                review_status="approved",
                language="kk",
                answers={"SEX": row.SEX, "AGE": row.AGE, "P1": row.P1, "E1": row.E1},
            )
            for row in data.itertuples()
        ]
    )
    return wave


def cells(wave, indicator: str) -> tuple[IndicatorEstimate, list[IndicatorEstimate]]:
    rows = list(current_estimates(wave=wave, indicator=indicator).order_by("region__code"))
    national = [r for r in rows if r.region_id is None]
    assert len(national) == 1
    return national[0], [r for r in rows if r.region_id is not None]


def test_regional_comparison_with_holm_matches_r_survey():
    ref = reference()
    wave = load_reference_wave()
    assert services.recompute_wave(wave_id=wave.pk) == "computed"
    national, regions = cells(wave, "PERC_BRIBE")
    assert national.estimate == pytest.approx(ref["perc.national"], rel=1e-6)
    assert national.se == pytest.approx(ref["perc.national.se"], rel=1e-6)
    assert len(regions) == 16 and not any(r.suppressed for r in regions)
    keys = ["estimate", "se", "ci_low", "ci_high", "df", "diff_vs_rest", "diff_vs_rest_se",
            "diff_vs_rest_p", "diff_vs_rest_p_adjusted"]  # fmt: skip
    got = {k: np.array([getattr(r, k) for r in regions], dtype=float) for k in keys}
    np.testing.assert_allclose(got["estimate"], vector(ref, "perc.region"), rtol=1e-6)
    np.testing.assert_allclose(got["se"], vector(ref, "perc.region.se"), rtol=1e-6)
    np.testing.assert_allclose(got["ci_low"], vector(ref, "perc.region.kg_low"), rtol=1e-6)
    np.testing.assert_allclose(got["ci_high"], vector(ref, "perc.region.kg_high"), rtol=1e-6)
    np.testing.assert_allclose(got["df"], vector(ref, "perc.region.df"), rtol=1e-12)
    np.testing.assert_allclose(got["diff_vs_rest"], vector(ref, "perc.vs_rest"), rtol=1e-6)
    np.testing.assert_allclose(got["diff_vs_rest_se"], vector(ref, "perc.vs_rest.se"), rtol=1e-6)
    np.testing.assert_allclose(got["diff_vs_rest_p"], vector(ref, "perc.vs_rest.p"), rtol=1e-6)
    np.testing.assert_allclose(
        got["diff_vs_rest_p_adjusted"], vector(ref, "perc.vs_rest.p_holm"), rtol=1e-6
    )
    assert all(r.national_estimate == national.estimate for r in regions)
    assert national.weights_version == "base"


def test_raked_indicator_matches_r_survey():
    ref = reference()
    wave = load_reference_wave()
    content = (REFERENCE / "pipeline_margins.csv").read_bytes()
    table = parse_margins(content, "pipeline_margins.csv", wave=wave)
    services.save_population_margins(wave=wave, table=table, source="test")
    services.recompute_wave(wave_id=wave.pk)
    national, regions = cells(wave, "EXP_BRIBE_EVER")
    assert national.weights_version == "margins-v1"
    assert ResultSet.objects.get(wave=wave, is_current=True).weights_version == "margins-v1"
    assert national.estimate == pytest.approx(ref["ever.raked.national"], rel=1e-6)
    assert national.se == pytest.approx(ref["ever.raked.national.se"], rel=1e-6)
    published = [i for i, r in enumerate(regions) if not r.suppressed]
    assert len(published) >= 10
    est = np.array([regions[i].estimate for i in published])
    se = np.array([regions[i].se for i in published])
    np.testing.assert_allclose(est, vector(ref, "ever.raked.region")[published], rtol=1e-6)
    np.testing.assert_allclose(se, vector(ref, "ever.raked.region.se")[published], rtol=1e-6)


def test_scaling_weights_and_shuffling_rows_leave_stored_estimates_unchanged():
    first = load_reference_wave()
    services.recompute_wave(wave_id=first.pk)
    second = load_reference_wave(weight_scale=37.5, shuffle=7, code="S2013")
    services.recompute_wave(wave_id=second.pk)
    fields = ["estimate", "se", "ci_low", "ci_high", "df", "n", "n_eff", "deff",
              "diff_vs_rest", "diff_vs_rest_se", "diff_vs_rest_p", "diff_vs_rest_p_adjusted",
              "suppressed"]  # fmt: skip

    def stored(wave):
        return {
            (e.indicator, e.geography, e.region_id): [getattr(e, f) for f in fields]
            for e in current_estimates(wave=wave)
        }

    before, after = stored(first), stored(second)
    assert before.keys() == after.keys() and len(before) > 100
    for key, values in before.items():
        np.testing.assert_allclose(
            np.array(after[key], dtype=float), np.array(values, dtype=float), rtol=1e-9
        )


def answers_frame(wave) -> pd.DataFrame:
    """The stored interviews as a plain DataFrame, read through the ORM (not the snapshot)."""
    rows = []
    for s in Submission.objects.accepted().filter(wave=wave).select_related("region__unit_2013"):
        rows.append(
            {
                "weight": s.weight,
                "stratum": s.stratum,
                "psu": s.psu,
                "region": s.region.code,
                "unit": s.region.unit_2013.code if s.region.unit_2013 else s.region.code,
                **{k: v for k, v in s.answers.items() if not isinstance(v, list)},
                "M": s.answers.get("M"),
            }
        )
    return pd.DataFrame(rows)


def test_current_wave_estimates_equal_survey_mean_on_the_stored_answers():
    wave = WaveFactory(geography="KZ2022", fieldwork_start=dt.date(2026, 3, 1), code="C2026")
    generate_wave(wave=wave, form_version=wave.form_version, n=2500, seed=11, rates=RATES_CURRENT)
    services.recompute_wave(wave_id=wave.pk)
    frame = answers_frame(wave)
    # NET_EVER by hand: E2 in 1,2,3 over E2 in 1..4
    frame["net"] = np.where(frame["E2"].isin([1, 2, 3, 4]), frame["E2"].isin([1, 2, 3]), np.nan)
    frame["med"] = np.where(
        (frame["C_MED"] == 1) & frame["B_MED"].isin([1, 2]), frame["B_MED"] == 1, np.nan
    )
    frame["m1"] = [("M1" in m) if isinstance(m, list) and m else np.nan for m in frame["M"]]
    for indicator, column in (("NET_EVER", "net"), ("BRIBE_RATE_MED", "med"), ("MOTIVE_1", "m1")):
        design = {"weight": "weight", "strata": "stratum", "psu": "psu"}
        expected_nat = survey_mean(frame, column, **design).iloc[0]
        national, regions = cells(wave, indicator)
        assert national.n == expected_nat["n"]
        assert national.estimate == pytest.approx(expected_nat["estimate"], rel=1e-9)
        assert national.se == pytest.approx(expected_nat["se"], rel=1e-9)
        for geography, domain in (("KZ2022", "region"), ("KZ2013", "unit")):
            expected = survey_mean(
                frame, column, domain=domain, ci="korn-graubard", df_method="domain", **design
            ).set_index("domain")
            stored = {r.region.code: r for r in regions if r.geography == geography}
            assert set(stored) == set(expected.index)
            for code, cell in stored.items():
                assert cell.n == expected.loc[code, "n"]
                if cell.suppressed:
                    assert cell.estimate is None and cell.suppression_reason
                else:
                    assert cell.estimate == pytest.approx(expected.loc[code, "estimate"], rel=1e-9)
                    assert cell.se == pytest.approx(expected.loc[code, "se"], rel=1e-9)
                    assert cell.ci_low == pytest.approx(expected.loc[code, "ci_low"], rel=1e-9)
    # 2013 units that split are pooled domains, and say so
    pooled = current_estimates(wave=wave, indicator="NET_EVER", geography="KZ2013", region="KZ-VOS")
    assert pooled.get().boundary_note == "pooled:KZ-10,KZ-63"


def test_change_against_the_previous_wave_uses_the_2013_geography():
    old = WaveFactory(geography="KZ2013", fieldwork_start=dt.date(2013, 3, 1), code="P2013")
    generate_wave(wave=old, form_version=old.form_version, n=3000, seed=3, rates=RATES_CURRENT)
    services.recompute_wave(wave_id=old.pk)
    new = WaveFactory(
        survey=old.survey, form_version=old.form_version, geography="KZ2022",
        fieldwork_start=dt.date(2026, 3, 1), code="P2026",
    )  # fmt: skip
    generate_wave(wave=new, form_version=new.form_version, n=3000, seed=4, rates=RATES_CURRENT)
    services.recompute_wave(wave_id=new.pk)
    national, regions = cells(new, "NET_EVER")
    before, _ = cells(old, "NET_EVER")
    assert national.previous_wave_id == old.pk
    assert national.previous_estimate == before.estimate
    assert national.change == pytest.approx(national.estimate - before.estimate)
    assert national.change_se == pytest.approx(np.hypot(national.se, before.se))
    unit = next(r for r in regions if r.geography == "KZ2013" and r.region.code == "KZ-AKM")
    old_unit = current_estimates(wave=old, indicator="NET_EVER", region="KZ-AKM").get()
    if not unit.suppressed and not old_unit.suppressed:
        assert unit.change == pytest.approx(unit.estimate - old_unit.estimate)
    split = next(r for r in regions if r.geography == "KZ2022" and r.region.code == "KZ-10")
    assert split.boundary_note == "boundary_changed" and split.change is None
    same = next(r for r in regions if r.geography == "KZ2022" and r.region.code == "KZ-11")
    assert same.boundary_note == "same_unit:KZ-AKM"
    adjusted = [r.change_p_adjusted for r in regions if r.change_p is not None]
    raw = [r.change_p for r in regions if r.change_p is not None]
    assert all(a >= p for a, p in zip(adjusted, raw, strict=True))


@pytest.mark.parametrize(
    ("cell", "reasons", "flags"),
    [
        # n = 25: too few respondents, and n_eff too
        (dict(estimate=0.5, se=0.1, ci_low=0.3, ci_high=0.7, n=25, n_numerator=12, n_eff=25, df=20),
         ["n<30", "n_eff<30", "ci_width>=30"], []),
        # published: width 0.2, n 400
        (dict(estimate=0.5, se=0.05, ci_low=0.4, ci_high=0.6, n=400, n_numerator=200, n_eff=100, df=30),
         [], []),
        # width 0.08 > 5 points and 0.08 / 0.05 = 160% > 130%
        (dict(estimate=0.05, se=0.02, ci_low=0.02, ci_high=0.10, n=400, n_numerator=20, n_eff=120, df=30),
         ["relative_ci_width>130%"], []),
        # width 0.04 <= 5 points: published even though relative width is 100%
        (dict(estimate=0.04, se=0.01, ci_low=0.02, ci_high=0.06, n=900, n_numerator=36, n_eff=400, df=7),
         [], ["df<8"]),
        # disclosure: 8 respondents in the numerator
        (dict(estimate=0.02, se=0.005, ci_low=0.01, ci_high=0.04, n=400, n_numerator=8, n_eff=300, df=30),
         ["disclosure<10"], []),
    ],
)  # fmt: skip
def test_nchs_rules_for_proportions(cell, reasons, flags):
    assert publication(kind="proportion", **cell) == (reasons, flags)


def test_relative_standard_error_rule_for_indices():
    ok = dict(ci_low=0, ci_high=0, n=200, n_numerator=150, n_eff=100, df=30)
    assert publication(kind="mean", estimate=40.0, se=11.9, **ok) == ([], [])
    assert publication(kind="mean", estimate=40.0, se=12.0, **ok) == (["rse>=30%"], [])


def test_suppressed_cells_keep_n_and_the_reason_and_blank_the_estimate():
    wave = WaveFactory(geography="KZ2022", code="SMALL")
    generate_wave(wave=wave, form_version=wave.form_version, n=300, seed=5, rates=RATES_CURRENT)
    services.recompute_wave(wave_id=wave.pk)
    small = current_estimates(wave=wave, indicator="BRIBE_RATE_CRT", geography="KZ2022")
    small = small.exclude(region=None)
    assert small.count() == 20
    for cell in small:
        assert cell.suppressed and cell.estimate is None and cell.se is None
        users = Submission.objects.filter(
            wave=wave, region=cell.region, answers__C_CRT=1, answers__B_CRT__in=[1, 2]
        )
        assert cell.n == users.count()
        assert cell.suppression_reason
        assert cell.diff_vs_rest is None


def test_a_new_result_set_replaces_the_current_one_and_old_ones_are_pruned():
    wave = load_reference_wave()
    for _ in range(6):
        services.recompute_wave(wave_id=wave.pk, force=True)
    sets = ResultSet.objects.filter(wave=wave)
    assert sets.filter(is_current=True).count() == 1
    assert sets.count() == 1 + services.KEEP_RESULT_SETS
    current = sets.get(is_current=True)
    assert (
        IndicatorEstimate.objects.current().filter(wave=wave).count() == current.estimates.count()
    )
    status = computation_status(wave)
    assert status["n_interviews"] == 2560 and not status["recomputing"]
    assert status["as_of"] == current.computed_at and status["stage"] == "done"


def test_recompute_is_idempotent_and_skips_when_nothing_changed():
    wave = load_reference_wave()
    assert services.recompute_wave(wave_id=wave.pk) == "computed"
    assert services.recompute_wave(wave_id=wave.pk) == "up to date"
    assert ResultSet.objects.filter(wave=wave).count() == 1


def test_rejecting_interviews_recomputes_without_them(
    django_capture_on_commit_callbacks, embedded_tasks
):
    wave = load_reference_wave()
    services.recompute_wave(wave_id=wave.pk)
    ids = list(Submission.objects.filter(wave=wave).values_list("pk", flat=True)[:60])
    with django_capture_on_commit_callbacks(execute=True):
        review_interviews(submissions=ids, status="rejected", actor=None)
    current = ResultSet.objects.get(wave=wave, is_current=True)
    assert current.n_interviews == 2560 - 60
    national, _ = cells(wave, "PERC_BRIBE")
    frame = pd.read_csv(REFERENCE / "pipeline_wave.csv")
    assert national.n == int(frame["P1"].isin([1, 2, 3, 4, -1]).sum()) - int(
        Submission.objects.filter(pk__in=ids, answers__P1__in=[1, 2, 3, 4, -1]).count()
    )


def test_a_burst_of_marks_queues_one_run(django_capture_on_commit_callbacks):
    wave = WaveFactory()
    with django_capture_on_commit_callbacks(execute=False) as callbacks:
        queued = [services.mark_wave_dirty(wave_id=wave.pk) for _ in range(1000)]
    assert sum(queued) == 1 and len(callbacks) == 1
    state = WaveComputation.objects.get(wave=wave)
    # the first mark writes; the others find the queued run that will read them
    assert state.dirty and state.generation == 1 and state.scheduled_at is not None


def test_interviews_arriving_during_a_run_keep_the_wave_dirty(django_capture_on_commit_callbacks):
    wave = load_reference_wave()
    computation = services._claim(wave.pk)
    assert computation is not None
    services.mark_wave_dirty(wave_id=wave.pk)  # arrives while "running"
    with django_capture_on_commit_callbacks(execute=False) as callbacks:
        services._finish(wave.pk, computation.generation, error="")
    state = WaveComputation.objects.get(wave=wave)
    assert state.dirty and state.scheduled_at is not None and state.running_since is None
    assert len(callbacks) == 1  # queued itself again


def test_a_dead_runner_is_taken_over_once_its_heartbeat_is_stale(settings):
    wave = load_reference_wave()
    services.recompute_wave(wave_id=wave.pk)
    first = ResultSet.objects.get(wave=wave, is_current=True)
    services.mark_wave_dirty(wave_id=wave.pk)
    assert services._claim(wave.pk) is not None  # a run starts, then its worker dies
    assert services.recompute_wave(wave_id=wave.pk) == "busy"
    assert ResultSet.objects.get(wave=wave, is_current=True) == first
    settings.COMPUTATION_STALE_SECONDS = 0
    assert services.recompute_wave(wave_id=wave.pk) == "computed"
    assert ResultSet.objects.get(wave=wave, is_current=True) != first
    assert not WaveComputation.objects.get(wave=wave).dirty


def test_embedded_mode_recomputes_in_process_after_commit(
    django_capture_on_commit_callbacks, embedded_tasks
):
    wave = load_reference_wave()
    with django_capture_on_commit_callbacks(execute=True):
        services.mark_wave_dirty(wave_id=wave.pk)
    assert ResultSet.objects.filter(wave=wave, is_current=True).exists()
    assert not WaveComputation.objects.get(wave=wave).dirty


def test_changed_definitions_make_waves_pending(monkeypatch):
    wave = load_reference_wave()
    services.recompute_wave(wave_id=wave.pk)
    assert services.resume_pending_computations_ids() == []
    monkeypatch.setattr(services, "definitions_hash", lambda: "something-else")
    assert services.resume_pending_computations_ids() == [wave.pk]


def test_no_small_count_is_published_or_recoverable_by_subtraction():
    """The numerator counts the small-count rule hides are neither published in their cell nor
    given back by the national total or a 2013 unit minus the published cells."""
    from analytics.stats.disclosure import recoverable

    wave = WaveFactory(geography="KZ2022", fieldwork_start=dt.date(2026, 3, 1), code="D2026")
    generate_wave(wave=wave, form_version=wave.form_version, n=3000, seed=8, rates=RATES_CURRENT)
    # Only five people in Abai region (KZ-10) used connections: one cell under the rule,
    # which the national total minus the other regions would give back.
    users = Submission.objects.filter(wave=wave, region__code="KZ-10", answers__E2__in=[1, 2, 3])
    for submission in users.order_by("pk")[5:]:
        submission.answers["E2"] = 4
        submission.save(update_fields=["answers"])
    services.recompute_wave(wave_id=wave.pk)
    frame = answers_frame(wave)
    # NET_EVER's numerator, counted by hand: E2 in 1, 2, 3
    frame["yes"] = frame["E2"].isin([1, 2, 3])
    truth = {("KZ2022", code): int(n) for code, n in frame.groupby("region")["yes"].sum().items()}
    truth |= {("KZ2013", code): int(n) for code, n in frame.groupby("unit")["yes"].sum().items()}
    truth[("national",)] = int(frame["yes"].sum())
    national, regions = cells(wave, "NET_EVER")
    stored = {("national",): national} | {(r.geography, r.region.code): r for r in regions}
    primary = [k for k, c in stored.items() if "disclosure<10" in c.suppression_reason]
    assert primary, "the test wave must have cells under the small-count rule"
    assert national.n_numerator == truth[("national",)]
    for key, cell in stored.items():
        if cell.suppressed:
            assert cell.n_numerator is None, key
        else:
            assert cell.n_numerator == truth[key], key
    hidden = {k for k, c in stored.items() if c.n_numerator is None}
    units = {r.region.code: r.region for r in regions if r.geography == "KZ2013"}
    current = [r.region for r in regions if r.geography == "KZ2022"]
    relations = [
        (("national",), [("KZ2022", r.code) for r in current]),
        (("national",), [("KZ2013", code) for code in units]),
        *[
            (("KZ2013", code), [("KZ2022", r.code) for r in current if r.unit_2013_id == unit.pk])
            for code, unit in units.items()
        ],
    ]
    assert recoverable(truth, hidden, relations) == {}
    for total, parts in relations:
        hidden_parts = [p for p in parts if p in hidden]
        if total not in hidden and hidden_parts:
            assert sum(truth[p] for p in hidden_parts) >= 10, (total, hidden_parts)
    assert stored[("KZ2022", "KZ-10")].suppressed and truth[("KZ2022", "KZ-10")] == 5
    complementary = [c for c in stored.values() if "complementary" in c.suppression_reason]
    assert complementary, "a second cell hides with the small one"
    assert all(c.estimate is None and c.suppressed for c in complementary)
