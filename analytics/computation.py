"""From a wave's snapshot to its complete set of published cells.

For every indicator: the nation, every region of the wave's geography and, for a wave on
the current (KZ2022) geography, every 2013 unit as a domain (its current successors'
interviews pooled, never averaged). Each region is compared with the rest of the country
(joint linearisation) and each cell with the same cell of the previous wave of the survey
(independent samples); p-values are Holm-adjusted across the regions of a geography.
Then the NCHS publication rules blank what may not be published. The breakdowns besides
regions (sex, age band, ...) are estimated in the same pass, by the engines of
``analytics.breakdown_cells``, and protected from disclosure together with the regions.

Decisions where the brief is silent (documented for readers of the numbers):

* Intervals: Korn-Graubard for proportions, t-based (Wald) for the indices. Their df,
  and the "df < 8" review flag, use the domain's own degrees of freedom (PSUs minus
  strata among the PSUs holding the domain, ``df_method="domain"``), as the NCHS
  standards define them; this also matches R ``svyciprop(method="beta")`` per region.
  Comparison tests use the design df (R ``svycontrast``).
* Rules for the indices (not proportions, where the CI-width rules do not apply):
  n < 30, effective n < 30, relative standard error >= 30%, and the disclosure rule.
* Comparisons are published only between published cells; Holm families are the
  published regional tests of one indicator and geography.
* National cells are stored once, under the wave's own geography.
* Weights: the latest population margins of the wave when present, raked to region x
  urban/rural and sex x age band; interviews with unknown sex or age form their own cell
  of the sex x age margin, keeping their base-weight share of the population. If the
  margins cannot be applied (a population cell with no interview yet, say) the base
  weights are used and the reason is reported.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd
from django.utils.translation import gettext_lazy as _

from analytics import breakdown_cells
from analytics.breakdown_cells import BreakdownCellEngine, BreakdownRowEngine
from analytics.indicators import INDICATORS, Indicator, Indirect, definitions_hash
from analytics.indirect_cells import IndirectEngine, as_declared
from analytics.models import BreakdownEstimate, IndicatorEstimate, PopulationMargins
from analytics.stats.cells import (
    Calibrated,
    CellCalibration,
    CellDesign,
    CellIndex,
    add_sums,
    cell_sums,
)
from analytics.stats.disclosure import complementary_suppression
from analytics.stats.estimation import (
    CalibrationInfo,
    CIMethod,
    Design,
    holm_adjust,
    independent_difference,
)
from analytics.stats.publication import publication
from analytics.stats.weighting import ConvergenceError, rake, raking_info
from surveys.models import Geography, Region, Wave

AGE_BANDS: list[tuple[str, int, int | None]] = [
    ("18-29", 18, 29),
    ("30-44", 30, 44),
    ("45-59", 45, 59),
    ("60+", 60, None),
]
UNKNOWN_CELL = "unknown"

# Stable reason codes stored on cells, with their labels for pages and exports.
SUPPRESSION_REASONS = {
    "n<30": _("fewer than 30 respondents"),
    "n_eff<30": _("effective sample size below 30"),
    "ci_width>=30": _("confidence interval 30 points wide or more"),
    "relative_ci_width>130%": _("relative confidence interval width above 130%"),
    # xgettext:no-python-format
    "rse>=30%": _("relative standard error of 30% or more"),
    "disclosure<10": _("fewer than 10 respondents in the numerator or denominator"),
    "complementary": _(
        "hidden with a neighbouring cell, so that a small count cannot be recovered by subtraction"
    ),
    "no_data": _("no respondents"),
}
REVIEW_FLAGS = {
    "df<8": _("fewer than 8 degrees of freedom: review before publishing"),
    "outside[0,1]": _("the indirect estimate lies outside 0-100%: reported as it is, not clipped"),
}
BOUNDARY_NOTES = {
    "pooled": _("2013 unit estimated by pooling the interviews of its current successors"),
    "same_unit": _("compared with the 2013 unit of the same territory"),
    "boundary_changed": _("boundaries changed since the previous wave: see the 2013 geography"),
}

Progress = Callable[[str, float], None]
# The row path for every wave (the reference the cell path is checked against).
ROW_PATH_ONLY = False

if TYPE_CHECKING:  # the snapshot reads the store, whose package reads the estimates
    from analytics.snapshot import Snapshot


@dataclass
class Weights:
    weight: np.ndarray
    calibration: CalibrationInfo | None
    version: str
    note: str = ""


@dataclass
class ComputedWave:
    wave: Wave
    rows: list[dict]
    n_interviews: int
    data_version: str
    weights_version: str
    definitions_hash: str
    notes: list[str] = field(default_factory=list)
    breakdown_rows: list[dict] = field(default_factory=list)  # analytics.breakdown_cells


# ---------------------------------------------------------------------- weights


def age_band_labels(age: np.ndarray) -> np.ndarray:
    out = np.full(age.shape, UNKNOWN_CELL, dtype=object)
    for label, low, high in AGE_BANDS:
        inside = (age >= low) & (age <= (high if high is not None else 200))
        out[inside] = label
    return out


def respondent_age(columns: dict[str, np.ndarray], year: int) -> np.ndarray:
    age = columns["AGE"].astype(np.int64)
    born = columns["BIRTH_YEAR"].astype(np.int64)
    return np.where(age >= 0, age, np.where(born > 1900, year - born, -1))


def calibrate(
    columns: dict[str, np.ndarray],
    region_codes: np.ndarray,
    table: list[dict],
    *,
    year: int,
) -> tuple[np.ndarray, CalibrationInfo]:
    """Raked weights and their calibration description, from a margins table
    (``PopulationMargins.table``). Raises ValueError / ConvergenceError when the margins
    do not fit the sample."""
    base = columns["weight"]
    sex = columns["SEX"].astype(np.int64)
    band = age_band_labels(respondent_age(columns, year))
    known = np.isin(sex, [1, 2]) & (band != UNKNOWN_CELL)
    sexage = np.where(
        known, np.char.add(np.char.add(sex.astype(str), ":"), band.astype(str)), UNKNOWN_CELL
    )
    frame = pd.DataFrame(
        {
            "region": region_codes,
            "urban_rural": columns["urban_rural"].astype(np.int64),
            "sexage": sexage,
            "w": base,
        }
    )
    region_urban = pd.DataFrame(
        [
            {
                "region": str(r["cell"]["region"]),
                "urban_rural": int(r["cell"]["urban_rural"]),
                "total": float(r["total"]),
            }
            for r in table
            if r["dimension"] == "region_urban"
        ]
    )
    sex_age = pd.DataFrame(
        [
            {
                "sexage": f"{int(r['cell']['sex'])}:{r['cell']['age_band']}",
                "total": float(r["total"]),
            }
            for r in table
            if r["dimension"] == "sex_age"
        ]
    )
    if region_urban.empty or sex_age.empty:
        raise ValueError("the margins table needs both region x urban/rural and sex x age rows")
    grand = region_urban["total"].sum()
    unknown_share = base[~known].sum() / base.sum()
    sex_age["total"] = sex_age["total"] / sex_age["total"].sum() * grand * (1 - unknown_share)
    if unknown_share > 0:
        sex_age = pd.concat(
            [sex_age, pd.DataFrame([{"sexage": UNKNOWN_CELL, "total": grand * unknown_share}])]
        )
    margins: dict[str | tuple[str, ...], pd.DataFrame] = {
        ("region", "urban_rural"): region_urban,
        "sexage": sex_age,
    }
    weights = rake(frame, weight="w", margins=margins, max_iter=200, tol=1e-7)
    return weights.to_numpy(), raking_info(frame, list(margins))


def _reference_year(wave: Wave) -> int:
    return wave.fieldwork_start.year if wave.fieldwork_start else dt.date.today().year


def choose_weights(snapshot: Snapshot, region_codes: np.ndarray, wave: Wave) -> Weights:
    margins = PopulationMargins.objects.filter(wave=wave).order_by("-version").first()
    base = snapshot.columns["weight"]
    if margins is None or snapshot.n == 0:
        return Weights(base, None, "base")
    year = wave.fieldwork_start.year if wave.fieldwork_start else dt.date.today().year
    try:
        weight, info = calibrate(snapshot.columns, region_codes, margins.table, year=year)
    except (ValueError, ConvergenceError, KeyError) as exc:
        return Weights(base, None, "base", f"margins v{margins.version} not applied: {exc}")
    return Weights(weight, info, f"margins-v{margins.version}")


# ---------------------------------------------------------------------- domains


@dataclass
class DomainSet:
    geography: str
    regions: list[Region]
    codes: np.ndarray  # per row, -1 outside every domain
    notes: dict[int, str] = field(default_factory=dict)  # region pk -> boundary note
    lookup: np.ndarray = field(default_factory=lambda: np.zeros(0, np.int64))  # pk -> code

    def codes_of(self, region_ids: np.ndarray) -> np.ndarray:
        inside = region_ids < len(self.lookup)
        return np.where(inside, self.lookup[np.where(inside, region_ids, 0)], -1)


def domain_sets(wave: Wave, region_ids: np.ndarray) -> list[DomainSet]:
    current = list(Region.objects.of(wave.geography).select_related("unit_2013").order_by("code"))
    index = {r.pk: i for i, r in enumerate(current)}
    size = max([int(region_ids.max(initial=0)), *(r.pk for r in current)]) + 1
    lookup = np.full(size, -1, dtype=np.int64)
    for pk, i in index.items():
        lookup[pk] = i
    sets = [
        DomainSet(
            wave.geography,
            current,
            lookup[region_ids] if len(region_ids) else region_ids,
            lookup=lookup,
        )
    ]
    if wave.geography == Geography.KZ2022:
        units = list(Region.objects.of(Geography.KZ2013).order_by("code"))
        unit_index = {u.pk: i for i, u in enumerate(units)}
        unit_lookup = np.full(len(lookup), -1, dtype=np.int64)
        successors: dict[int, list[str]] = {}
        for r in current:
            if r.pk < len(unit_lookup) and r.unit_2013_id is not None:
                unit_lookup[r.pk] = unit_index[r.unit_2013_id]
            successors.setdefault(r.unit_2013_id or 0, []).append(r.code)
        notes = {
            u.pk: "pooled:" + ",".join(successors[u.pk])
            for u in units
            if len(successors.get(u.pk, [])) > 1
        }
        codes = unit_lookup[region_ids] if len(region_ids) else region_ids
        sets.append(DomainSet(Geography.KZ2013, units, codes, notes, lookup=unit_lookup))
    return sets


def previous_wave(wave: Wave) -> Wave | None:
    """The wave of the same survey that came before (by fieldwork start, then code)."""
    waves = list(Wave.objects.filter(survey_id=wave.survey_id).exclude(pk=wave.pk))

    def key(w: Wave) -> tuple:
        return (w.fieldwork_start or dt.date.min, w.code)

    earlier = [w for w in waves if key(w) < key(wave)]
    return max(earlier, key=key) if earlier else None


def next_waves(wave: Wave) -> list[Wave]:
    waves = Wave.objects.filter(survey_id=wave.survey_id).exclude(pk=wave.pk)
    return [w for w in waves if previous_wave(w) == wave]


# ---------------------------------------------------------------------- the computation


def _columns(frame: pd.DataFrame) -> dict[str, np.ndarray]:
    return {c: frame[c].to_numpy(dtype=float) for c in frame.columns}


def _at(columns: dict[str, np.ndarray], i: int) -> dict[str, float]:
    return {c: float(v[i]) for c, v in columns.items()}


def _cell(
    indicator: Indicator,
    stats: dict[str, float],
    n_numerator: int,
    *,
    geography: str,
    region: Region | None,
) -> dict:
    estimate = float(stats["estimate"])
    se = float(stats["se"])
    reasons, flags = publication(
        kind=indicator.publication_kind,
        bounded=indicator.bounded,
        estimate=estimate,
        se=se,
        ci_low=float(stats["ci_low"]),
        ci_high=float(stats["ci_high"]),
        n=int(stats["n"]),
        n_numerator=n_numerator,
        n_eff=float(stats["n_eff"]),
        df=float(stats["df"]),
    )

    def clean(value: float) -> float | None:
        return None if value is None or not np.isfinite(value) else float(value)

    row = {
        "geography": geography,
        "region": region,
        "indicator": indicator.code,
        "ci_method": "korn-graubard" if indicator.kind == "proportion" else "wald",
        "n": int(stats["n"]),
        "n_numerator": int(n_numerator),
        "df": clean(float(stats["df"])),
        "suppressed": bool(reasons),
        "suppression_reason": ",".join(reasons),
        "review_flag": ",".join(flags),
        "estimate": None,
        "se": None,
        "ci_low": None,
        "ci_high": None,
        "n_eff": None,
        "deff": None,
    }
    if not reasons:
        row.update(
            estimate=clean(estimate),
            se=clean(se),
            ci_low=clean(float(stats["ci_low"])),
            ci_high=clean(float(stats["ci_high"])),
            n_eff=clean(float(stats["n_eff"])),
            deff=clean(float(stats["deff"])),
        )
    return row


Stats = dict[str, np.ndarray]


class RowEngine:
    """Estimates from the interviews themselves (needed with calibrated weights)."""

    def __init__(self, weights: Weights, cols: dict[str, np.ndarray], sets: list[DomainSet]):
        self.design = Design(
            weights.weight, strata=cols["stratum"], psu=cols["psu"], calibration=weights.calibration
        )
        self.cols, self.sets = cols, sets

    def indicator(self, indicator: Indicator) -> tuple[Stats, list[tuple[Stats, Stats]]]:
        num, den = indicator.values(self.cols)
        d = den if indicator.kind == "ratio" else None
        ci: CIMethod = "korn-graubard" if indicator.kind == "proportion" else "wald"
        in_num = ~np.isnan(num) & (np.nan_to_num(num) > 0)
        national = _columns(self.design.ratio(num, d, ci=ci, df_method="domain"))
        national["n_num"] = np.array([float(in_num.sum())])
        out = []
        for domains in self.sets:
            k = len(domains.regions)
            stats = _columns(
                self.design.ratio(
                    num, d, domain_codes=domains.codes, n_domains=k, ci=ci, df_method="domain"
                )
            )
            bucket = np.where(domains.codes >= 0, domains.codes, k)
            stats["n_num"] = np.bincount(bucket, weights=in_num, minlength=k + 1)[:k]
            versus = _columns(
                self.design.domains_vs_rest(num, domain_codes=domains.codes, n_domains=k, den=d)
            )
            out.append((stats, versus))
        return national, out


@dataclass
class _CellState:
    """Per-wave cell sums kept between runs in a worker process."""

    lineage: int
    n_rows: int
    id_sum: int
    last_id: int
    index: CellIndex
    sums: dict[str, dict[str, np.ndarray]]


_CELL_STATES: dict[int, _CellState] = {}
# The indirect designs are contrasts of domain means, estimated by `IndirectEngine`.
CELL_INDICATORS = [i for i in INDICATORS if not isinstance(i, Indirect)]


class CellEngine:
    """Estimates from per-cell sums (base weights), updated incrementally: a run after
    new interviews only adds theirs to the sums kept from the previous run (in the same
    worker process), checked against the snapshot's ids. With weights raked to margins
    (which change with every interview) the cells are kept but their sums are taken anew
    with the raked weights, and the calibration residuals corrected for per stratum."""

    def __init__(
        self,
        state: _CellState,
        sets: list[DomainSet],
        *,
        weights: Weights | None = None,
        cols: dict[str, np.ndarray] | None = None,
    ) -> None:
        self.state, self.sets = state, sets
        index = state.index
        self.design = CellDesign(index.cell_psu, index.psu_stratum)
        self.calibration: CellCalibration | None = None
        if weights is not None and weights.calibration is not None:
            assert cols is not None
            self.cols, self.weight = cols, weights.weight
            self.calibration = CellCalibration(
                self.design,
                index.cell_psu[index.row_cell],
                cols["region_id"].astype(np.int64),
                weights.weight,
                weights.calibration.cells,
            )
            groups = np.arange(self.calibration.n_groups)
            self.group_domains = [domains.codes_of(groups) for domains in sets]
        self.cell_codes = [domains.codes_of(index.cell_region) for domains in sets]
        self.national_codes = np.zeros(index.n_cells, np.int64)
        self.pairs = [
            self.design.pairs(codes, len(domains.regions))
            for codes, domains in zip(self.cell_codes, sets, strict=True)
        ]
        self.national_pairs = self.design.pairs(self.national_codes, 1)

    @classmethod
    def for_snapshot(
        cls, wave: Wave, snapshot: Snapshot, sets: list[DomainSet], weights: Weights | None = None
    ) -> CellEngine:
        cols = snapshot.columns
        ids = cols["id"]
        calibrated = weights is not None and weights.calibration is not None
        state = _CELL_STATES.get(wave.pk)
        reusable = (
            state is not None
            and state.lineage == snapshot.lineage
            and 0 < state.n_rows <= snapshot.n
            and int(ids[state.n_rows - 1]) == state.last_id
            and int(ids[: state.n_rows].sum()) == state.id_sum
            and (calibrated or set(state.sums) == {i.code for i in CELL_INDICATORS})
        )
        if not reusable:
            state = _CellState(snapshot.lineage, 0, 0, 0, CellIndex(), {})
        assert state is not None
        if calibrated:
            state.sums = {}  # base-weight sums are of no use to raked weights
        start = state.n_rows
        if start < snapshot.n:
            new = {k: v[start:] for k, v in cols.items()}
            state.index.add_rows(new["stratum"], new["psu"], new["region_id"])
            row_cell = state.index.row_cell[start:]
            for indicator in [] if calibrated else CELL_INDICATORS:
                num, den = indicator.values(new)
                d = den if indicator.kind == "ratio" else None
                fresh = cell_sums(row_cell, state.index.n_cells, new["weight"], num, d)
                old = state.sums.get(indicator.code)
                state.sums[indicator.code] = (
                    fresh if old is None else add_sums(old, fresh, state.index.n_cells)
                )
            state.n_rows = snapshot.n
            state.last_id = int(ids[-1])
            state.id_sum = int(ids.sum())
        _CELL_STATES[wave.pk] = state
        return cls(state, sets, weights=weights if calibrated else None, cols=cols)

    def indicator(self, indicator: Indicator) -> tuple[Stats, list[tuple[Stats, Stats]]]:
        ci: CIMethod = "korn-graubard" if indicator.kind == "proportion" else "wald"
        national_cal: Calibrated | None = None
        set_cal: list[Calibrated | None] = [None] * len(self.sets)
        if self.calibration is None:
            sums = self.state.sums[indicator.code]
        else:
            num, den = indicator.values(self.cols)
            d = den if indicator.kind == "ratio" else None
            index = self.state.index
            sums = cell_sums(index.row_cell, index.n_cells, self.weight, num, d)
            groups = self.calibration.group_sums(num, d)
            national_cal = (self.calibration, groups, np.zeros(self.calibration.n_groups, np.int64))
            set_cal = [(self.calibration, groups, gd) for gd in self.group_domains]
        national = self.design.estimate(
            sums, self.national_codes, 1, ci=ci, pairs=self.national_pairs, calibrated=national_cal
        )
        out = []
        for domains, codes, pairs, cal in zip(
            self.sets, self.cell_codes, self.pairs, set_cal, strict=True
        ):
            k = len(domains.regions)
            out.append(
                (
                    self.design.estimate(sums, codes, k, ci=ci, pairs=pairs, calibrated=cal),
                    self.design.versus_rest(sums, codes, k, pairs=pairs, calibrated=cal),
                )
            )
        return national, out


def compute_wave(
    wave: Wave,
    snapshot: Snapshot,
    *,
    indicators: list[Indicator] | None = None,
    progress: Progress | None = None,
) -> ComputedWave:
    """Every cell of the wave (not yet stored): estimates, rules, comparisons."""
    indicators = indicators or INDICATORS
    report = progress or (lambda stage, fraction: None)
    cols = snapshot.columns
    sets = domain_sets(wave, cols["region_id"])
    region_code_of_row = (
        np.array([r.code for r in sets[0].regions] + [""], dtype=object)[sets[0].codes]
        if snapshot.n
        else np.array([], dtype=object)
    )
    report("weights", 0.05)
    weights = choose_weights(snapshot, region_code_of_row, wave)
    rows: list[dict] = []
    notes = [weights.note] if weights.note else []
    engine: RowEngine | CellEngine | None = None
    breakdowns: BreakdownRowEngine | BreakdownCellEngine | None = None
    breakdown_rows: list[dict] = []
    plans = breakdown_cells.plans(
        cols, sets[0].regions, sets[0].geography, sets[0].codes, year=_reference_year(wave)
    )
    cells_fit = weights.calibration is None or weights.calibration.kind == "rake"
    if snapshot.n and cells_fit and indicators is INDICATORS and not ROW_PATH_ONLY:
        engine = CellEngine.for_snapshot(wave, snapshot, sets, weights)
        if weights.calibration is None:
            breakdowns = BreakdownCellEngine(engine.state.index, cols, plans)
        else:
            breakdowns = BreakdownRowEngine(RowEngine(weights, cols, sets).design, cols, plans)
    elif snapshot.n:
        engine = RowEngine(weights, cols, sets)
        breakdowns = BreakdownRowEngine(engine.design, cols, plans)
    # The indirect designs with the probabilities the wave's questionnaire declares.
    definition = wave.form_version.definition if wave.form_version is not None else None
    declared = {i.code: as_declared(i, definition) for i in indicators if isinstance(i, Indirect)}
    cell_index = engine.state.index if isinstance(engine, CellEngine) else None
    indirect = (
        IndirectEngine(weights.weight, weights.calibration, cols, sets, cells=cell_index)
        if snapshot.n
        else None
    )
    # every indicator's breakdown cells (breakdown_cells)
    by_breakdown_plan = (
        breakdowns.indicators([declared.get(i.code, i) for i in indicators]) if breakdowns else {}
    )
    for step, indicator in enumerate(indicators):
        report("estimates", 0.1 + 0.8 * step / len(indicators))
        if engine is None:
            rows.append(
                _cell(
                    indicator,
                    dict.fromkeys(
                        ("estimate", "se", "ci_low", "ci_high", "n_eff", "df", "deff"), np.nan
                    )
                    | {"n": 0},
                    0,
                    geography=wave.geography,
                    region=None,
                )
            )
            continue
        if isinstance(indicator, Indirect) and indirect is not None:
            national, by_set = indirect.indicator(declared[indicator.code])
        else:
            national, by_set = engine.indicator(indicator)
        national_row = _cell(
            indicator,
            _at(national, 0),
            int(national["n_num"][0]),
            geography=wave.geography,
            region=None,
        )
        rows.append(national_row)
        per_set = [
            (
                domains,
                versus,
                [
                    _cell(
                        indicator,
                        _at(stats, g),
                        int(stats["n_num"][g]),
                        geography=domains.geography,
                        region=region,
                    )
                    for g, region in enumerate(domains.regions)
                ],
            )
            for domains, (stats, versus) in zip(sets, by_set, strict=True)
        ]
        by_breakdown = []
        extra_cells: dict[tuple, dict] = {}
        extra_relations: list[tuple[tuple, list[tuple]]] = []
        by_plan = by_breakdown_plan[indicator.code]
        for plan, (b_national, b_versus, b_crossed) in zip(plans, by_plan, strict=True):
            group_rows, crossed_rows = breakdown_cells.breakdown_rows(
                indicator, plan, b_national, b_versus, b_crossed, _cell
            )
            cells, relations = breakdown_cells.disclosure_sums(
                ("national",), group_rows, crossed_rows, plan
            )
            extra_cells.update(cells)
            extra_relations.extend(relations)
            by_breakdown.append((group_rows, crossed_rows, b_versus))
        protect_counts(
            national_row,
            [(domains, regional) for domains, _, regional in per_set],
            extra=(extra_cells, extra_relations),
        )
        for group_rows, crossed_rows, b_versus in by_breakdown:
            breakdown_cells.add_versus_rest(group_rows, b_versus)
            for row in [*group_rows, *crossed_rows]:
                row["national_estimate"] = national_row["estimate"]
            # region x group cells are kept where the publication rules allow them
            breakdown_rows.extend([*group_rows, *(r for r in crossed_rows if not r["suppressed"])])
        for domains, versus, regional in per_set:
            for g, row in enumerate(regional):
                row["national_estimate"] = national_row["estimate"]
                row["boundary_note"] = domains.notes.get(row["region"].pk, "")
                if not row["suppressed"] and np.isfinite(versus["se"][g]):
                    row["diff_vs_rest"] = float(versus["estimate"][g])
                    row["diff_vs_rest_se"] = float(versus["se"][g])
                    p = float(versus["p_value"][g])
                    row["diff_vs_rest_p"] = p if np.isfinite(p) else None
            adjusted = holm_adjust(
                [
                    r["diff_vs_rest_p"] if r.get("diff_vs_rest_p") is not None else np.nan
                    for r in regional
                ]
            )
            for row, p_adj in zip(regional, adjusted, strict=True):
                row["diff_vs_rest_p_adjusted"] = float(p_adj) if np.isfinite(p_adj) else None
            rows.extend(regional)
    report("comparisons", 0.92)
    add_changes(wave, rows)
    add_breakdown_changes(wave, breakdown_rows)
    return ComputedWave(
        wave=wave,
        rows=rows,
        n_interviews=snapshot.n,
        data_version=snapshot.fingerprint(),
        weights_version=weights.version,
        definitions_hash=definitions_hash(indicators),
        notes=notes,
        breakdown_rows=breakdown_rows,
    )


def protect_counts(
    national: dict,
    partitions: list[tuple[DomainSet, list[dict]]],
    *,
    extra: tuple[dict[tuple, dict], list[tuple[tuple, list[tuple]]]] | None = None,
) -> None:
    """Complementary suppression of one indicator's cells, then no count of a hidden cell.

    The national cell is the sum of each geography's regions, and a 2013 unit the sum of
    its current successors, so a cell hidden by the small-count rule could come back by
    subtraction; `analytics.stats.disclosure` chooses the cells to hide with it. Every
    suppressed cell then publishes its n but not its numerator count. ``extra`` adds the
    breakdown cells and the sums they form (``analytics.breakdown_cells.disclosure_sums``),
    protected together with the regional table.
    """
    cells: dict[tuple, dict] = {("national",): national}
    relations: list[tuple[tuple, list[tuple]]] = []
    for domains, regional in partitions:
        keys = [(domains.geography, row["region"].pk) for row in regional]
        cells.update(zip(keys, regional, strict=True))
        relations.append((("national",), keys))
    if len(partitions) == 2:  # a current wave: each 2013 unit is the sum of its successors
        (current_set, current), (unit_set, units) = partitions
        successors: dict[int, list[tuple]] = {}
        for row in current:
            successors.setdefault(row["region"].unit_2013_id, []).append(
                (current_set.geography, row["region"].pk)
            )
        for row in units:
            parts = successors.get(row["region"].pk, [])
            if parts:
                relations.append(((unit_set.geography, row["region"].pk), parts))
    if extra is not None:
        cells.update(extra[0])
        relations.extend(extra[1])
    counts = {key: int(row["n_numerator"]) for key, row in cells.items()}
    primary = {
        key for key, row in cells.items() if "disclosure<10" in row["suppression_reason"].split(",")
    }
    for key in complementary_suppression(counts, primary, relations):
        _hide(cells[key], "complementary")
    for row in cells.values():
        if row["suppressed"]:
            row["n_numerator"] = None


def _hide(row: dict, reason: str) -> None:
    reasons = [r for r in row["suppression_reason"].split(",") if r]
    row["suppressed"] = True
    row["suppression_reason"] = ",".join([*reasons, reason])
    row.update(dict.fromkeys(("estimate", "se", "ci_low", "ci_high", "n_eff", "deff")))


def add_changes(wave: Wave, rows: list[dict]) -> None:
    """Change against the previous wave's current published cells, Holm across regions."""
    before = previous_wave(wave)
    if before is None:
        return
    stored = {
        (e.geography, e.region_id, e.indicator): e
        for e in IndicatorEstimate.objects.current().filter(wave=before)
    }
    if not stored:
        return
    single_successor: dict[int, int] = {}
    if wave.geography == Geography.KZ2022 and before.geography == Geography.KZ2013:
        counts: dict[int, list[int]] = {}
        for r in Region.objects.of(Geography.KZ2022):
            counts.setdefault(r.unit_2013_id or 0, []).append(r.pk)
        single_successor = {pks[0]: unit for unit, pks in counts.items() if len(pks) == 1}
    for row in rows:
        row["previous_wave"] = before
        region = row["region"]
        key = (row["geography"], region.pk if region else None, row["indicator"])
        if region is None:
            key = (before.geography, None, row["indicator"])
        elif row["geography"] == Geography.KZ2022 and before.geography == Geography.KZ2013:
            if region.pk in single_successor:
                key = (Geography.KZ2013, single_successor[region.pk], row["indicator"])
                row["boundary_note"] = f"same_unit:{region.unit_2013.code}"
            else:
                row["boundary_note"] = "boundary_changed"
                continue
        previous = stored.get(key)
        if previous is None or previous.suppressed or previous.estimate is None:
            continue
        row["previous_estimate"] = previous.estimate
        if row["suppressed"] or row["estimate"] is None or previous.se is None or row["se"] is None:
            continue
        dfs = [x for x in (row["df"], previous.df) if x is not None and x > 0]
        test = independent_difference(
            row["estimate"], row["se"], previous.estimate, previous.se, df=min(dfs) if dfs else None
        )
        row["change"] = test["estimate"]
        row["change_se"] = test["se"]
        row["change_p"] = test["p_value"] if np.isfinite(test["p_value"]) else None
        if region is None:
            row["change_p_adjusted"] = row["change_p"]  # the nation is a family of one
    families: dict[tuple[str, str], list[dict]] = {}
    for row in rows:
        if row["region"] is not None and row.get("change_p") is not None:
            families.setdefault((row["geography"], row["indicator"]), []).append(row)
    for family in families.values():
        adjusted = holm_adjust([r["change_p"] for r in family])
        for row, p_adj in zip(family, adjusted, strict=True):
            row["change_p_adjusted"] = float(p_adj)


def add_breakdown_changes(wave: Wave, rows: list[dict]) -> None:
    """Breakdown cells against the same cells of the previous wave (see breakdown_cells)."""
    before = previous_wave(wave)
    if before is None or not rows:
        return
    stored = {
        (e.breakdown, e.group, e.region_id, e.indicator): e
        for e in BreakdownEstimate.objects.current().filter(wave=before)
    }
    breakdown_cells.add_breakdown_changes(rows, stored, before)
