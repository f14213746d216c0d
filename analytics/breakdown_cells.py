"""Every indicator by the breakdowns of ``analytics.breakdowns``, for one wave.

For each breakdown (sex, age band, ...) and indicator: one cell per group nationally,
compared with everyone outside the group (joint linearisation, Holm across the groups of
the breakdown), and one cell per group within each region of the wave's geography. Each
group is a domain of the full design (never a subset), with the same estimator, intervals,
degrees of freedom and publication rules as the regional cells (``analytics.computation``).

Decisions where the brief is silent:

* Region x group cells are estimated and compared between waves, not against the rest
  (the national groups carry the group-vs-rest tests). They are stored only where the
  publication rules allow them (they take part in disclosure control first); national
  group cells are always stored, suppressed ones with their reasons.
* Disclosure: the sums a breakdown publishes are the nation (the groups), each region
  (its groups) and each national group (its regions); they enter the same complementary
  suppression as the regional table. Interviews outside every group (a refused sex, say)
  are counted in the totals but published nowhere, so the first two sums are treated as
  exact, which hides at least as much as needed.
* Changes between waves: the same cell of the previous wave (same breakdown, group and
  region, or the nation), independent samples, Holm within a breakdown and indicator
  (national groups one family, region x group cells another).

Two engines, as for the regions: from the rows (weights calibrated to margins) or from
per-cell sums (base weights). The cells here are stratum x PSU x region x group, derived
from the regional engine's cells; their sums are made afresh each run (kept between runs
they would need memory per cell, group and indicator). The indirect designs (list
experiment, forced response, crosswise, their gaps) are estimated by the same breakdowns,
with the same rules: from their terms' cell sums (``analytics.stats.cell_contrasts``).
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np

from analytics.breakdowns import BREAKDOWNS, Breakdown
from analytics.indicators import Indicator, Indirect
from analytics.indirect_cells import contrast_stats
from analytics.stats import cell_contrasts
from analytics.stats.cells import CellDesign, CellIndex, Pairs
from analytics.stats.estimation import CIMethod, Design, holm_adjust, independent_difference
from analytics.stats.indirect import contrasts_vs_rest, domain_contrasts

Stats = dict[str, np.ndarray]


@dataclass
class Plan:
    """One breakdown's domains on the rows of a snapshot."""

    breakdown: Breakdown
    regions: list  # the wave's geography's regions (computation.DomainSet.regions)
    geography: str
    groups: np.ndarray  # per row: group index, -1 in no group
    region_codes: np.ndarray  # per row: region index, -1 outside

    @property
    def k(self) -> int:
        return len(self.breakdown.groups)

    @property
    def crossed(self) -> np.ndarray:
        """Per row: region index x groups + group, -1 when either is missing."""
        inside = (self.groups >= 0) & (self.region_codes >= 0)
        return np.where(inside, self.region_codes * self.k + self.groups, -1)


def plans(
    columns: dict[str, np.ndarray],
    regions: list,
    geography: str,
    region_codes: np.ndarray,
    *,
    year: int,
) -> list[Plan]:
    return [
        Plan(b, regions, geography, b.codes(columns, year=year), region_codes) for b in BREAKDOWNS
    ]


def _ci(indicator: Indicator) -> CIMethod:
    return "korn-graubard" if indicator.kind == "proportion" else "wald"


def _frame(table) -> Stats:  # type: ignore[no-untyped-def]
    return {c: table[c].to_numpy(dtype=float) for c in table.columns}


class BreakdownRowEngine:
    """From the interviews (needed with calibrated weights)."""

    def __init__(self, design: Design, columns: dict[str, np.ndarray], plans: list[Plan]):
        self.design, self.columns, self.plans = design, columns, plans

    def indicators(
        self, indicators: list[Indicator]
    ) -> dict[str, list[tuple[Stats, Stats, Stats]]]:
        return {i.code: self.indicator(i) for i in indicators}

    def indicator(self, indicator: Indicator) -> list[tuple[Stats, Stats, Stats]]:
        if isinstance(indicator, Indirect):
            return self._indirect(indicator)
        num, den = indicator.values(self.columns)
        d = den if indicator.kind == "ratio" else None
        in_num = ~np.isnan(num) & (np.nan_to_num(num) > 0)
        out = []
        for plan in self.plans:
            k = plan.k
            national = _frame(
                self.design.ratio(
                    num,
                    d,
                    domain_codes=plan.groups,
                    n_domains=k,
                    ci=_ci(indicator),
                    df_method="domain",
                )
            )
            national["n_num"] = _count(in_num, plan.groups, k)
            versus = _frame(
                self.design.domains_vs_rest(num, domain_codes=plan.groups, n_domains=k, den=d)
            )
            kr = k * len(plan.regions)
            crossed_codes = plan.crossed
            crossed = _frame(
                self.design.ratio(
                    num,
                    d,
                    domain_codes=crossed_codes,
                    n_domains=kr,
                    ci=_ci(indicator),
                    df_method="domain",
                )
            )
            crossed["n_num"] = _count(in_num, crossed_codes, kr)
            out.append((national, versus, crossed))
        return out

    def _indirect(self, indicator: Indirect) -> list[tuple[Stats, Stats, Stats]]:
        terms, constant = indicator.terms(self.columns, None)
        out = []
        for plan in self.plans:
            k, kr = plan.k, plan.k * len(plan.regions)
            national = domain_contrasts(self.design, terms, plan.groups, k, constant=constant)
            versus = contrasts_vs_rest(self.design, terms, plan.groups, k)
            crossed = domain_contrasts(self.design, terms, plan.crossed, kr, constant=constant)
            out.append(
                (
                    contrast_stats(national),
                    {key: versus[key] for key in ("estimate", "se", "p_value")},
                    contrast_stats(crossed),
                )
            )
        return out


def _count(flags: np.ndarray, codes: np.ndarray, k: int) -> np.ndarray:
    bucket = np.where(codes >= 0, codes, k)
    return np.bincount(bucket, weights=flags, minlength=k + 1)[:k]


@dataclass
class _Layout:
    row_cell: np.ndarray  # per row: its cell
    n_cells: int
    design: CellDesign
    group: np.ndarray  # per cell: group index, -1 in no group
    crossed: np.ndarray  # per cell: region index x groups + group, -1 outside
    pairs: tuple[Pairs, Pairs]  # of the national groups, of the region x group cells


class BreakdownCellEngine:
    """From per-cell sums (base weights). A breakdown's cells are the regional engine's
    cells (stratum x PSU x region, ``computation.CellEngine``) split by group, so PSUs and
    strata are the regional engine's own and no index of the rows is built again: the
    split is arithmetic on the regional cell ids, compacted to the non-empty cells."""

    def __init__(self, index: CellIndex, columns: dict[str, np.ndarray], plans: list[Plan]):
        self.columns = columns
        self.weight = columns["weight"]
        self.plans = plans
        self.layouts = [self._layout(index, plan) for plan in plans]
        self._df_cache: dict[tuple[bytes, int], tuple[Pairs, Pairs]] = {}
        self.positive = bool((self.weight != 0).all())

    @staticmethod
    def _layout(index: CellIndex, plan: Plan) -> _Layout:
        width = plan.k + 1
        dense = index.row_cell * width + (plan.groups + 1)
        present = np.bincount(dense, minlength=index.n_cells * width) > 0
        parent = np.flatnonzero(present)
        row_cell = (np.cumsum(present) - 1)[dense]
        regional_cell = parent // width
        group = parent % width - 1
        design = CellDesign(index.cell_psu[regional_cell], index.psu_stratum)
        region_pk = index.cell_region[regional_cell]
        lookup = np.full(int(region_pk.max(initial=0)) + 1, -1, np.int64)
        for i, region in enumerate(plan.regions):
            if region.pk < len(lookup):
                lookup[region.pk] = i
        region_code = lookup[region_pk]
        crossed = np.where((group >= 0) & (region_code >= 0), region_code * plan.k + group, -1)
        kr = plan.k * len(plan.regions)
        pairs = (design.pairs(group, plan.k), design.pairs(crossed, kr))
        return _Layout(row_cell, len(parent), design, group, crossed, pairs)

    def indicators(
        self, indicators: list[Indicator]
    ) -> dict[str, list[tuple[Stats, Stats, Stats]]]:
        indirect = [i for i in indicators if isinstance(i, Indirect)]
        out = {i.code: self.indicator(i) for i in indicators if not isinstance(i, Indirect)}
        out |= self._indirect(indirect)
        return {i.code: out[i.code] for i in indicators}

    def indicator(self, indicator: Indicator) -> list[tuple[Stats, Stats, Stats]]:
        if isinstance(indicator, Indirect):
            return self._indirect([indicator])[indicator.code]
        num, den = indicator.values(self.columns)
        d = den if indicator.kind == "ratio" else None
        prepared = _prepare(self.weight, num, d)  # shared by every breakdown
        out = []
        for i, (plan, layout) in enumerate(zip(self.plans, self.layouts, strict=True)):
            design, group, crossed, pairs = (
                layout.design,
                layout.group,
                layout.crossed,
                layout.pairs,
            )
            sums = _sums(layout.row_cell, layout.n_cells, prepared, self.positive)
            k, kr = plan.k, plan.k * len(plan.regions)
            own, own_crossed = self._valid_pairs(prepared[3], i, layout, sums["n"], k, kr)
            national = design.estimate(sums, group, k, ci=_ci(indicator), pairs=own)
            versus = design.versus_rest(sums, group, k, pairs=pairs[0])
            by_region = design.estimate(sums, crossed, kr, ci=_ci(indicator), pairs=own_crossed)
            out.append((national, versus, by_region))
        return out

    def _valid_pairs(
        self, pattern: bytes, i: int, layout: _Layout, n: np.ndarray, k: int, kr: int
    ) -> tuple[Pairs, Pairs]:
        """The layout's pairs with the df of the PSUs holding valid answers, once per set
        of valid rows (indicators asked of the same respondents share it)."""
        key = (pattern, i)
        found = self._df_cache.get(key)
        if found is None:
            design, pairs = layout.design, layout.pairs
            found = self._df_cache[key] = (
                design.valid_df(pairs[0], n, k),
                design.valid_df(pairs[1], n, kr),
            )
        return found

    def _indirect(self, indicators: list[Indirect]) -> dict[str, list[tuple[Stats, Stats, Stats]]]:
        """Contrasts of the terms' means, from their sums per cell of each layout; each
        distinct term summed once per layout (`cell_contrasts.TermTable`)."""
        table = cell_contrasts.TermTable(self.weight)
        parsed = []
        for indicator in indicators:
            terms, constant = indicator.terms(self.columns, None)
            refs = [(term.coefficient, table.index(term)) for term in terms]
            parsed.append((indicator, refs, constant))
        out: dict[str, list[tuple[Stats, Stats, Stats]]] = {i.code: [] for i in indicators}
        for plan, layout in zip(self.plans, self.layouts, strict=True):
            cell, size = layout.row_cell, layout.n_cells
            distinct = [table.cell_sums(j, cell, size) for j in range(len(table.rows))]
            design, pairs = layout.design, layout.pairs
            k, kr = plan.k, plan.k * len(plan.regions)
            held_of: dict[frozenset[int], tuple[np.ndarray, np.ndarray, np.ndarray]] = {}
            for indicator, refs, constant in parsed:
                sums = [cell_contrasts.TermSums(c, *distinct[j]) for c, j in refs]
                which = frozenset(j for _, j in refs)
                if which not in held_of:
                    held = np.bincount(cell, weights=table.counted(which), minlength=size)
                    held_of[which] = (
                        held,
                        design.valid_df(pairs[0], held, k).df,
                        design.valid_df(pairs[1], held, kr).df,
                    )
                held, df, df_crossed = held_of[which]
                national = cell_contrasts.contrasts(
                    design, sums, held, pairs[0], k, constant=constant
                )
                versus = cell_contrasts.contrasts_vs_rest(design, sums, pairs[0], k)
                crossed = cell_contrasts.contrasts(
                    design, sums, held, pairs[1], kr, constant=constant
                )
                national["df"] = df
                crossed["df"] = df_crossed
                out[indicator.code].append(
                    (contrast_stats(national), versus, contrast_stats(crossed))
                )
        return out


# A power of two above any cell's row count: a cell's respondents and its numerator count
# summed as one float (n + COUNT_SHIFT x n_num) and parted exactly.
COUNT_SHIFT = float(2**24)


def _prepare(
    weight: np.ndarray, num: np.ndarray, den: np.ndarray | None
) -> tuple[dict[str, np.ndarray], bool, bool, bytes]:
    """The per-row terms of ``cells.cell_sums``, made once per indicator for every
    breakdown's cells (the same arithmetic, so the sums are identical), and a digest of
    the rows counted (those with a valid answer and a weight)."""
    valid = ~np.isnan(num) if den is None else ~(np.isnan(num) | np.isnan(den))
    x = np.where(valid, num, 0.0)
    wv = np.where(valid, weight, 0.0)
    binary = bool(((x == 0.0) | (x == 1.0)).all())  # x is 0 outside the valid rows
    counted = valid & (weight != 0)
    terms = {"x": wv * x, "w": wv}
    if len(counted) < COUNT_SHIFT:
        # both counts in one sum: each is an integer below the shift, so the sum is exact
        terms["counts"] = counted + COUNT_SHIFT * (valid & (x > 0)).astype(float)
    else:
        terms |= {"n": counted.astype(float), "n_num": (valid & (x > 0)).astype(float)}
    if not binary:
        terms["xx"] = wv * x * x
    if den is not None:
        d = np.where(valid, den, 0.0)
        terms |= {"d": wv * d, "xd": wv * x * d, "dd": wv * d * d}
    pattern = hashlib.blake2b(np.packbits(counted).tobytes(), digest_size=16).digest()
    return terms, binary, den is None, pattern + len(counted).to_bytes(8, "little")


def _sums(
    row_cell: np.ndarray,
    n_cells: int,
    prepared: tuple[dict[str, np.ndarray], bool, bool, bytes],
    zero_when_empty: bool = False,
) -> dict[str, np.ndarray]:
    """The cell sums (``zero_when_empty``: no row has a zero weight, so a cell counting no
    valid answer has only zero sums)."""
    terms, binary, is_mean, _ = prepared
    out = {k: np.bincount(row_cell, weights=v, minlength=n_cells) for k, v in terms.items()}
    if "counts" in out:
        counts = out.pop("counts")
        out["n_num"] = np.floor(counts / COUNT_SHIFT)
        out["n"] = counts - COUNT_SHIFT * out["n_num"]
    if binary:
        out["xx"] = out["x"]
    if is_mean:
        out["d"], out["xd"], out["dd"] = out["w"], out["x"], out["w"]
    out["binary"] = np.array(binary and is_mean)
    out["zero_when_empty"] = np.array(zero_when_empty)
    return out


# ---------------------------------------------------------------------- rows and tests


def breakdown_rows(  # type: ignore[no-untyped-def]
    indicator: Indicator,
    plan: Plan,
    national_stats: Stats,
    versus: Stats,
    crossed_stats: Stats,
    make_cell,
) -> tuple[list[dict], list[dict]]:
    """The national group cells (with group-vs-rest, Holm across the groups) and the
    region x group cells of one breakdown and indicator, before disclosure control."""

    def listed(stats: Stats) -> dict[str, list[float]]:
        return {c: np.asarray(v, dtype=float).tolist() for c, v in stats.items()}

    def at(stats: dict[str, list[float]], i: int) -> dict[str, float]:
        return {c: v[i] for c, v in stats.items()}

    national, crossed = listed(national_stats), listed(crossed_stats)  # read cell by cell

    groups = plan.breakdown.groups
    national_rows = []
    for g, group in enumerate(groups):
        row = make_cell(
            indicator,
            at(national, g),
            int(national["n_num"][g]),
            geography=plan.geography,
            region=None,
        )
        row |= {"breakdown": plan.breakdown.key, "group": group.code}
        national_rows.append(row)
    regional_rows = []
    for r, region in enumerate(plan.regions):
        for g, group in enumerate(groups):
            i = r * plan.k + g
            row = make_cell(
                indicator,
                at(crossed, i),
                int(crossed["n_num"][i]),
                geography=plan.geography,
                region=region,
            )
            row |= {"breakdown": plan.breakdown.key, "group": group.code}
            regional_rows.append(row)
    return national_rows, regional_rows


def add_versus_rest(national_rows: list[dict], versus: Stats) -> None:
    """Group minus the rest for published groups, Holm-adjusted across the groups."""
    for g, row in enumerate(national_rows):
        if not row["suppressed"] and np.isfinite(versus["se"][g]):
            row["diff_vs_rest"] = float(versus["estimate"][g])
            row["diff_vs_rest_se"] = float(versus["se"][g])
            p = float(versus["p_value"][g])
            row["diff_vs_rest_p"] = p if np.isfinite(p) else None
    adjusted = holm_adjust(
        [
            r["diff_vs_rest_p"] if r.get("diff_vs_rest_p") is not None else np.nan
            for r in national_rows
        ]
    )
    for row, p_adj in zip(national_rows, adjusted, strict=True):
        row["diff_vs_rest_p_adjusted"] = float(p_adj) if np.isfinite(p_adj) else None


def disclosure_sums(
    national_key: tuple, national_rows: list[dict], regional_rows: list[dict], plan: Plan
) -> tuple[dict[tuple, dict], list[tuple[tuple, list[tuple]]]]:
    """Cells and sums of one breakdown for ``computation.protect_counts``."""
    key_of = {
        id(row): (
            "breakdown",
            row["breakdown"],
            row["group"],
            row["region"].pk if row["region"] is not None else None,
        )
        for row in [*national_rows, *regional_rows]
    }
    cells = {key_of[id(row)]: row for row in [*national_rows, *regional_rows]}
    relations: list[tuple[tuple, list[tuple]]] = [
        (national_key, [key_of[id(row)] for row in national_rows])
    ]
    for r, region in enumerate(plan.regions):
        parts = [key_of[id(row)] for row in regional_rows[r * plan.k : (r + 1) * plan.k]]
        relations.append(((plan.geography, region.pk), parts))
    for g, row in enumerate(national_rows):
        parts = [key_of[id(regional_rows[r * plan.k + g])] for r in range(len(plan.regions))]
        relations.append((key_of[id(row)], parts))
    return cells, relations


def add_breakdown_changes(rows: list[dict], previous: Mapping[tuple, Any], before) -> None:  # type: ignore[no-untyped-def]
    """Change against the previous wave's same cell; Holm per breakdown, indicator and level.

    ``previous`` maps (breakdown, group, region pk or None, indicator) to the previous wave's
    current cell (a ``BreakdownEstimate``)."""
    if before is None:
        return
    for row in rows:
        row["previous_wave"] = before
        region = row["region"]
        old = previous.get(
            (row["breakdown"], row["group"], region.pk if region else None, row["indicator"])
        )
        if old is None or old.suppressed or old.estimate is None:
            if region is not None and before.geography != row["geography"]:
                row["boundary_note"] = "boundary_changed"
            continue
        row["previous_estimate"] = old.estimate
        if row["suppressed"] or row["estimate"] is None or old.se is None or row["se"] is None:
            continue
        dfs = [x for x in (row["df"], old.df) if x is not None and x > 0]
        test = independent_difference(
            row["estimate"],
            row["se"],
            old.estimate,
            old.se,
            df=min(dfs) if dfs else None,
        )
        row["change"] = test["estimate"]
        row["change_se"] = test["se"]
        row["change_p"] = test["p_value"] if np.isfinite(test["p_value"]) else None
    families: dict[tuple, list[dict]] = {}
    for row in rows:
        if row.get("change_p") is not None:
            level = "national" if row["region"] is None else "regional"
            families.setdefault((row["breakdown"], row["indicator"], level), []).append(row)
    for family in families.values():
        adjusted = holm_adjust([r["change_p"] for r in family])
        for row, p_adj in zip(family, adjusted, strict=True):
            row["change_p_adjusted"] = float(p_adj)
