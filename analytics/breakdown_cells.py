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
they would need memory per cell, group and indicator), for a block of indicators at a time
(``analytics.stats.cell_batches``). The indirect designs (list experiment, forced response,
crosswise, their gaps) are estimated by the same breakdowns, with the same rules.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np
from scipy import sparse

from analytics.breakdowns import BREAKDOWNS, Breakdown
from analytics.indicators import Indicator, Indirect
from analytics.indirect_cells import contrast_stats
from analytics.stats import cell_batches
from analytics.stats.cell_batches import DomainOperators, LayoutOperators, grouping
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
    rows: sparse.csr_matrix  # (cells x rows): sums the rows of each cell
    operators: LayoutOperators
    domains: tuple[DomainOperators, DomainOperators]  # national groups, region x group


# Columns of per-row terms summed into cells in one product (bounds the memory per batch).
BATCH_COLUMNS = 32


class BreakdownCellEngine:
    """From per-cell sums (base weights). A breakdown's cells are the regional engine's
    cells (stratum x PSU x region, ``computation.CellEngine``) split by group, so PSUs and
    strata are the regional engine's own and no index of the rows is built again: the
    split is arithmetic on the regional cell ids, compacted to the non-empty cells.

    Indicators are estimated in blocks (``analytics.stats.cell_batches``): the per-row
    terms of a block are summed into each layout's cells by one sparse product, and the
    estimates, intervals and group-vs-rest tests of the block's indicators are made
    together. The indirect designs are contrasts of means of their terms' cell sums."""

    def __init__(self, index: CellIndex, columns: dict[str, np.ndarray], plans: list[Plan]):
        self.columns = columns
        self.weight = columns["weight"]
        self.plans = plans
        self.layouts = [self._layout(index, plan) for plan in plans]
        self.masked = not bool((self.weight > 0).all())  # rows of weight zero

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
        domains = (
            DomainOperators.of(design, group, plan.k, pairs[0]),
            DomainOperators.of(design, crossed, kr, pairs[1]),
        )
        return _Layout(
            row_cell,
            len(parent),
            design,
            group,
            crossed,
            pairs,
            grouping(row_cell, len(parent)),
            LayoutOperators.of(design),
            domains,
        )

    def indicator(self, indicator: Indicator) -> list[tuple[Stats, Stats, Stats]]:
        return self.indicators([indicator])[indicator.code]

    def indicators(
        self, indicators: list[Indicator]
    ) -> dict[str, list[tuple[Stats, Stats, Stats]]]:
        """Every breakdown's (national, versus rest, region x group) stats per indicator."""
        out: dict[str, list[tuple[Stats, Stats, Stats]]] = {}
        direct = [i for i in indicators if not isinstance(i, Indirect)]
        for batch in _batches(self.weight, self.columns, direct):
            out.update(self._block(batch))
        for indicator in indicators:
            if isinstance(indicator, Indirect):
                out[indicator.code] = self._indirect(indicator)
        return out

    def _block(self, batch: _Batch) -> dict[str, list[tuple[Stats, Stats, Stats]]]:
        out: dict[str, list[tuple[Stats, Stats, Stats]]] = {i.code: [] for i in batch.indicators}
        ci = [_ci(i) for i in batch.indicators]
        for layout in self.layouts:
            block = batch.block(layout.rows)
            national_ops, crossed_ops = layout.domains
            design = layout.design
            national = cell_batches.estimate(
                design,
                block,
                national_ops,
                binary=batch.binary,
                ci=ci,
                df=cell_batches.valid_df(national_ops, design, block["n"]),
                masked=self.masked,
            )
            versus = cell_batches.versus_rest(
                design, layout.operators, block, national_ops, masked=self.masked
            )
            by_region = cell_batches.estimate(
                design,
                block,
                crossed_ops,
                binary=batch.binary,
                ci=ci,
                df=cell_batches.valid_df(crossed_ops, design, block["n"]),
                masked=self.masked,
            )
            for j, indicator in enumerate(batch.indicators):
                out[indicator.code].append(
                    (_column(national, j), _column(versus, j), _column(by_region, j))
                )
        return out

    def _indirect(self, indicator: Indirect) -> list[tuple[Stats, Stats, Stats]]:
        terms, constant = indicator.terms(self.columns, None)
        w = self.weight
        values, counted = [], np.zeros(len(w), dtype=bool)
        for term in terms:
            y = np.asarray(term.values, dtype=float)
            rows = np.asarray(term.rows, dtype=bool) & ~np.isnan(y) & (w > 0)
            x = np.where(rows, y, 0.0)
            wr = np.where(rows, w, 0.0)
            values += [wr, wr * x, wr * x * x, rows.astype(float)]
            counted |= rows
        values.append(counted.astype(float))
        matrix = np.column_stack(values)
        out = []
        for layout in self.layouts:
            sums = np.asarray(layout.rows @ matrix)
            term_sums = [
                cell_batches.TermSums(term.coefficient, *(sums[:, 4 * i + j] for j in range(4)))
                for i, term in enumerate(terms)
            ]
            national_ops, crossed_ops = layout.domains
            design = layout.design
            national = contrast_stats(
                cell_batches.contrasts(
                    design, term_sums, sums[:, -1], national_ops, constant=constant
                )
            )
            versus = cell_batches.contrasts_vs_rest(
                design, layout.operators, term_sums, national_ops
            )
            crossed = contrast_stats(
                cell_batches.contrasts(
                    design, term_sums, sums[:, -1], crossed_ops, constant=constant
                )
            )
            out.append((national, versus, crossed))
        return out


def _column(stats: Stats, j: int) -> Stats:
    return {name: values[:, j] for name, values in stats.items()}


@dataclass
class _Batch:
    indicators: list[Indicator]
    terms: dict[str, np.ndarray]  # own term name -> (rows x indicators)
    shared: dict[str, tuple[np.ndarray, np.ndarray | None]]  # "n", "w" -> (rows x masks, index)
    binary: np.ndarray  # per indicator: a proportion (0/1 numerator, no denominator)

    def block(self, rows: sparse.csr_matrix) -> dict[str, np.ndarray]:
        """(cells x indicators) sums by name (terms that equal another for these
        indicators, ``xx = x`` for a 0/1 numerator say, are the same array). The weights
        and counts of indicators answered by the same rows are summed once."""
        out = {name: np.asarray(rows @ values) for name, values in self.terms.items()}
        for name, (values, index) in self.shared.items():
            sums = np.asarray(rows @ values)
            out[name] = sums if index is None else np.ascontiguousarray(sums[:, index])
        out.setdefault("xx", out["x"])
        for name, same in (("d", "w"), ("xd", "x"), ("dd", "w")):
            out.setdefault(name, out[same])
        return out


SHARED = ("n", "w")  # terms that depend only on which rows answer


class _Pending:
    def __init__(self, n_rows: int, names: tuple[str, ...], size: int) -> None:
        self.size = size
        self.members: list[Indicator] = []
        self.binary: list[bool] = []
        self.terms = {name: np.empty((n_rows, size)) for name in names if name not in SHARED}
        self.shared = {name: np.empty((n_rows, size)) for name in SHARED}
        self.masks: dict[bytes, int] = {}
        self.index: list[int] = []

    def add(self, indicator: Indicator, prepared: dict[str, np.ndarray], binary: bool) -> None:
        at = len(self.members)
        for name, values in prepared.items():
            if name in self.terms:
                self.terms[name][:, at] = values
        key = np.packbits(prepared["valid"]).tobytes()
        if key not in self.masks:
            self.masks[key] = len(self.masks)
            for name in SHARED:
                self.shared[name][:, self.masks[key]] = prepared[name]
        self.index.append(self.masks[key])
        self.members.append(indicator)
        self.binary.append(binary)

    def batch(self) -> _Batch:
        used, u = len(self.members), len(self.masks)

        def first(values: np.ndarray, count: int) -> np.ndarray:
            return values if count == self.size else np.ascontiguousarray(values[:, :count])

        index = np.array(self.index)
        whole = np.array_equal(index, np.arange(used))
        return _Batch(
            self.members,
            {name: first(v, used) for name, v in self.terms.items()},
            {name: (first(v, u), None if whole else index) for name, v in self.shared.items()},
            np.array(self.binary, dtype=bool),
        )


def _batches(
    weight: np.ndarray, columns: dict[str, np.ndarray], indicators: list[Indicator]
) -> Iterator[_Batch]:
    """The indicators in blocks of at most ``BATCH_COLUMNS`` term columns, each block of
    indicators with the same terms (proportions, other means, ratios)."""
    pending: dict[tuple[str, ...], _Pending] = {}
    for indicator in indicators:
        num, den = indicator.values(columns)
        d = den if indicator.kind == "ratio" else None
        prepared, is_binary, is_mean = _prepare(weight, num, d)
        names = tuple(name for name in prepared if name != "valid")
        if names not in pending:
            size = max(BATCH_COLUMNS // len(names), 1)
            pending[names] = _Pending(len(weight), names, size)
        block = pending[names]
        block.add(indicator, prepared, is_binary and is_mean)
        if len(block.members) == block.size:
            del pending[names]
            yield block.batch()
    for block in pending.values():
        yield block.batch()


def _prepare(
    weight: np.ndarray, num: np.ndarray, den: np.ndarray | None
) -> tuple[dict[str, np.ndarray], bool, bool]:
    """The per-row terms of ``cells.cell_sums``, made once per indicator for every
    breakdown's cells (the same arithmetic, so the sums are identical)."""
    valid = ~np.isnan(num) if den is None else ~(np.isnan(num) | np.isnan(den))
    x = np.where(valid, num, 0.0)
    wv = np.where(valid, weight, 0.0)
    binary = bool(((x == 0.0) | (x == 1.0)).all())  # x is 0 outside the valid rows
    terms = {
        "valid": valid,
        "x": wv * x,
        "n": (valid & (weight != 0)).astype(float),
        "n_num": (valid & (x > 0)).astype(float),
        "w": wv,
    }
    if not binary:
        terms["xx"] = wv * x * x
    if den is not None:
        d = np.where(valid, den, 0.0)
        terms |= {"d": wv * d, "xd": wv * x * d, "dd": wv * d * d}
    return terms, binary, den is None


# ---------------------------------------------------------------------- rows and tests


def breakdown_rows(
    indicator: Indicator,
    plan: Plan,
    national: Stats,
    versus: Stats,
    crossed: Stats,
    make_cell,  # type: ignore[no-untyped-def]
) -> tuple[list[dict], list[dict]]:
    """The national group cells (with group-vs-rest, Holm across the groups) and the
    region x group cells of one breakdown and indicator, before disclosure control."""

    def at(stats: Stats, i: int) -> dict[str, float]:
        return {c: float(v[i]) for c, v in stats.items()}

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
