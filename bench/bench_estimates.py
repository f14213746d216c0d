"""Full recomputation of every indicator (SEs, regions, 2013 units, breakdowns, comparisons) for a wave of 1,000,000 synthetic interviews, against samplics' TaylorEstimator.

Reuses the SYNTHETIC wave BENCH1M of the bench database when it exists (generating it
takes several minutes). Reports: building the wave's store from PostgreSQL (each
interview fetched and parsed once, for the estimates and the exports; then appended
incrementally) and projecting the estimation's snapshot from it (what a new worker
process does), the full recomputation from the snapshot with its peak memory, storing the result set, and samplics computing a subset
of the same estimates (national and by region) on the same data, extrapolated per
indicator for the speed ratio. Goals: < 30 s, < 2 GB, >= 50x faster than samplics.
"""

from __future__ import annotations

import datetime as dt
import os
import tempfile
import threading
import time
import warnings
from pathlib import Path

import numpy as np
import psutil

N = int(os.environ.get("BENCH_ESTIMATES_N", "1000000"))
WAVE_CODE = os.environ.get("BENCH_WAVE", "BENCH1M")
SAMPLICS_INDICATORS = ["PERC_BRIBE", "NET_EVER"]


class PeakMemory:
    """Peak resident memory of this process while the block runs (sampled every 10 ms)."""

    def __enter__(self) -> PeakMemory:
        self.process = psutil.Process()
        self.peak = self.process.memory_info().rss
        self.running = True
        self.thread = threading.Thread(target=self._sample, daemon=True)
        self.thread.start()
        return self

    def _sample(self) -> None:
        while self.running:
            self.peak = max(self.peak, self.process.memory_info().rss)
            time.sleep(0.01)

    def __exit__(self, *exc: object) -> None:
        self.running = False
        self.thread.join()
        self.peak = max(self.peak, self.process.memory_info().rss)


def bench_wave(n: int = N, code: str = WAVE_CODE, survey_code: str = "informal-networks"):
    """The synthetic benchmark wave, generated once per bench database. Benchmarks that
    recompute several waves give each its own survey: a wave's recomputation makes the
    next wave of its survey dirty (their comparison changed)."""
    from django.core.management import call_command

    from surveys.demo import RATES_CURRENT, generate_wave
    from surveys.management.commands.setup_demo import INSTRUMENT
    from surveys.models import FormVersion, Survey, Wave
    from surveys.services import open_wave

    wave = Wave.objects.filter(code=code, survey__code=survey_code).first()
    if wave is not None and wave.submissions.exists():
        return wave
    if not FormVersion.objects.filter(survey__code=survey_code).exists():
        call_command("import_xlsform", str(INSTRUMENT), survey=survey_code, verbosity=0)
    survey = Survey.objects.get(code=survey_code)
    form = FormVersion.objects.filter(survey=survey).order_by("-created_at").first()
    wave = open_wave(
        survey=survey,
        code=code,
        geography="KZ2022",
        form_version=form,
        title=f"{code} (synthetic benchmark)",
        fieldwork_start=dt.date(2030, 3, 1),
        is_synthetic=True,
    )
    generate_wave(wave=wave, form_version=form, n=n, seed=1_000_000, rates=RATES_CURRENT)
    return wave


def samplics_seconds(snapshot, sets, codes: list[str]) -> tuple[float, dict[str, float]]:
    """samplics TaylorEstimator on the same rows: national and by region per indicator."""
    warnings.filterwarnings("ignore")
    from samplics import PopParam, TaylorEstimator

    from analytics.indicators import BY_CODE

    cols = snapshot.columns
    region = sets[0].codes
    started = time.perf_counter()
    national = {}
    for code in codes:
        num, _ = BY_CODE[code].values(cols)
        keep = ~np.isnan(num)
        for domain in (None, region[keep]):
            estimator = TaylorEstimator(PopParam.prop)
            estimator.estimate(
                y=num[keep],
                samp_weight=cols["weight"][keep],
                stratum=cols["stratum"][keep],
                psu=cols["psu"][keep],
                domain=domain,
                remove_nan=True,
            )
            if domain is None:
                point = estimator.point_est
                national[code] = float(point[1.0])
    return time.perf_counter() - started, national


def samplics_breakdown_seconds(snapshot, sets, wave, codes: list[str]) -> tuple[float, float]:
    """samplics on the breakdowns' kind of cells: per indicator, the seconds of one set of
    national groups (by sex) and of one set of region x group cells (region x sex)."""
    warnings.filterwarnings("ignore")
    from samplics import PopParam, TaylorEstimator

    from analytics.breakdowns import BY_KEY
    from analytics.indicators import BY_CODE

    cols = snapshot.columns
    sex = BY_KEY["sex"].codes(cols, year=wave.fieldwork_start.year)
    region = sets[0].codes
    crossed = np.where((sex >= 0) & (region >= 0), region * 2 + sex, -1)
    seconds = {"groups": 0.0, "crossed": 0.0}
    for code in codes:
        num, _ = BY_CODE[code].values(cols)
        for name, domain in (("groups", sex), ("crossed", crossed)):
            keep = ~np.isnan(num) & (domain >= 0)  # samplics has no "in no domain" code
            started = time.perf_counter()
            TaylorEstimator(PopParam.prop).estimate(
                y=num[keep],
                samp_weight=cols["weight"][keep],
                stratum=cols["stratum"][keep],
                psu=cols["psu"][keep],
                domain=domain[keep],
                remove_nan=True,
            )
            seconds[name] += time.perf_counter() - started
    return seconds["groups"] / len(codes), seconds["crossed"] / len(codes)


def indirect_seconds(wave, snap) -> tuple[float, int]:
    """The indirect indicators' share of a recomputation, timed on their own engines (the
    nation and the regional domains, and every breakdown)."""
    from analytics import breakdown_cells, computation
    from analytics.computation import choose_weights, domain_sets
    from analytics.indicators import INDICATORS, Indirect
    from analytics.indirect_cells import IndirectEngine

    cols = snap.columns
    sets = domain_sets(wave, cols["region_id"])
    region = np.array([r.code for r in sets[0].regions] + [""], dtype=object)[sets[0].codes]
    weights = choose_weights(snap, region, wave)
    indirect = [i for i in INDICATORS if isinstance(i, Indirect)]
    state = computation._CELL_STATES.get(wave.pk)
    started = time.perf_counter()
    # as the recomputation runs them: from the kept cell sums, where the weights allow
    cells = state.index if state is not None and weights.calibration is None else None
    engine = IndirectEngine(weights.weight, weights.calibration, cols, sets, cells=cells)
    for indicator in indirect:
        engine.indicator(indicator)
    if state is not None and weights.calibration is None:
        year = wave.fieldwork_start.year
        plans = breakdown_cells.plans(
            cols, sets[0].regions, sets[0].geography, sets[0].codes, year=year
        )
        by_breakdown = breakdown_cells.BreakdownCellEngine(state.index, cols, plans)
        for indicator in indirect:
            by_breakdown.indicator(indicator)
    return time.perf_counter() - started, len(indirect)


def run() -> list[str]:
    from django.conf import settings

    from analytics import computation, snapshot
    from analytics.computation import compute_wave, domain_sets
    from analytics.indicators import INDICATORS
    from analytics.services import store_result_set

    lines = []
    started = time.perf_counter()
    wave = bench_wave()
    n = wave.submissions.count()
    lines.append(
        f"wave {wave.code}: {n:,} SYNTHETIC interviews ({time.perf_counter() - started:.1f} s to find or generate)"
    )

    settings.MEDIA_ROOT = Path(tempfile.mkdtemp(prefix="tanys-bench-"))
    from analytics.store import WaveStore

    started = time.perf_counter()
    parsed = WaveStore(wave.pk).update()
    stored = time.perf_counter() - started
    lines.append(
        f"the wave's store from PostgreSQL (once per wave, shared with the exports): "
        f"{parsed:,} interviews in {stored:.1f} s"
    )
    started = time.perf_counter()
    snap, how = snapshot.refresh(wave.pk)
    projected = time.perf_counter() - started
    extract = stored + projected
    lines.append(f"snapshot projected from the store ({how}, once per process): {projected:.1f} s")

    computation._CELL_STATES.clear()  # a cold start: nothing kept from earlier runs
    with PeakMemory() as memory:
        started = time.perf_counter()
        computed = compute_wave(wave, snap)
        full = time.perf_counter() - started
    cells = len(computed.rows)
    lines.append(
        f"full recomputation: {len(INDICATORS)} indicators x (nation + {cells // len(INDICATORS) - 1} "
        f"regions and 2013 units) = {cells} cells with SEs, intervals, region-vs-rest and "
        f"Holm: {full:.2f} s (goal < 30 s); peak RSS {memory.peak / 2**30:.2f} GB (goal < 2 GB)"
    )
    indirect = indirect_seconds(wave, snap)
    lines.append(
        f"of which the {indirect[1]} indirect indicators (list experiment, forced response, "
        f"crosswise and their gaps; nation, every domain, domain vs rest, every breakdown): "
        f"{indirect[0]:.2f} s, "
        f"so {full - indirect[0]:.2f} s without them"
    )
    lines.append(
        f"  of which breakdown cells (sex, age band, urban/rural, education, employment, "
        f"settlement type; national groups and region x group where publishable): "
        f"{len(computed.breakdown_rows)}"
    )
    lines.append(f"from nothing (store, snapshot and full recomputation): {extract + full:.1f} s")
    started = time.perf_counter()
    again = compute_wave(wave, snap)
    warm = time.perf_counter() - started
    lines.append(f"recomputation with the cell sums kept by a worker: {warm:.2f} s")
    started = time.perf_counter()
    store_result_set(again)
    lines.append(
        f"writing the result set and switching it current: {time.perf_counter() - started:.2f} s"
    )

    lines.extend(calibrated_lines(wave, snap))

    sets = domain_sets(wave, snap.columns["region_id"])
    seconds, national = samplics_seconds(snap, sets, SAMPLICS_INDICATORS)
    per_indicator = seconds / len(SAMPLICS_INDICATORS)
    ours = {r["indicator"]: r["estimate"] for r in computed.rows if r["region"] is None}
    agree = max(abs(national[c] - ours[c]) for c in SAMPLICS_INDICATORS)
    lines.append(
        f"samplics TaylorEstimator, {len(SAMPLICS_INDICATORS)} indicators (national + by region, "
        f"no comparisons): {seconds:.1f} s, {per_indicator:.1f} s per indicator; national "
        f"estimates agree to {agree:.1e}"
    )
    projected = per_indicator * len(INDICATORS)
    lines.append(
        f"ratio (national + regions only, as samplics was timed): samplics projected to all "
        f"{len(INDICATORS)} indicators {projected:.0f} s vs {full:.2f} s here = "
        f"{projected / full:.0f}x faster (goal >= 50x)"
    )
    groups, crossed = samplics_breakdown_seconds(snap, sets, wave, SAMPLICS_INDICATORS)
    n_sets = len(computation.breakdown_cells.BREAKDOWNS)
    like = projected + len(INDICATORS) * n_sets * (groups + crossed)
    lines.append(
        f"samplics on the breakdowns' cells: by sex {groups:.1f} s, by region x sex "
        f"{crossed:.1f} s per indicator; with the same kind of cells as here (nation, "
        f"regions, and for each of the {n_sets} breakdowns its groups and region x group "
        f"cells, no comparisons) projected to {len(INDICATORS)} indicators {like:.0f} s vs "
        f"{full:.2f} s here = {like / full:.0f}x faster (goal >= 50x)"
    )
    return lines


def margins_table(snap, region_codes, year: int) -> list[dict]:
    """Population margins for the bench wave: its own weighted totals, perturbed, so the
    raking has real work to do."""
    from analytics.computation import age_band_labels, respondent_age

    cols = snap.columns
    rng = np.random.default_rng(11)
    w = cols["weight"]
    table = []
    ur = cols["urban_rural"].astype(np.int64)
    for region in sorted(set(region_codes) - {""}):
        for urban in (1, 2):
            inside = (region_codes == region) & (ur == urban)
            if inside.any():
                total = float(w[inside].sum() * rng.uniform(0.8, 1.2))
                cell = {"region": region, "urban_rural": urban}
                table.append({"dimension": "region_urban", "cell": cell, "total": total})
    band = age_band_labels(respondent_age(cols, year))
    sex = cols["SEX"].astype(np.int64)
    for s in (1, 2):
        for label in ("18-29", "30-44", "45-59", "60+"):
            inside = (sex == s) & (band == label)
            total = float(w[inside].sum() * rng.uniform(0.8, 1.2))
            cell = {"sex": s, "age_band": label}
            table.append({"dimension": "sex_age", "cell": cell, "total": total})
    return table


def calibrated_lines(wave, snap) -> list[str]:
    """The same wave raked to population margins: the cell path beside the row path."""
    from analytics import computation

    sets = computation.domain_sets(wave, snap.columns["region_id"])
    codes = np.array([r.code for r in sets[0].regions] + [""], dtype=object)[sets[0].codes]
    year = wave.fieldwork_start.year
    table = margins_table(snap, codes, year)
    started = time.perf_counter()
    weight, info = computation.calibrate(snap.columns, codes, table, year=year)
    raking = time.perf_counter() - started
    weights = computation.Weights(weight, info, "margins-bench")
    real = computation.choose_weights
    computation.choose_weights = lambda snapshot, region_codes, wave: weights
    try:
        computation._CELL_STATES.clear()
        started = time.perf_counter()
        cells = computation.compute_wave(wave, snap)
        cold = time.perf_counter() - started
        started = time.perf_counter()
        computation.compute_wave(wave, snap)
        warm = time.perf_counter() - started
        computation.ROW_PATH_ONLY = True
        started = time.perf_counter()
        rows = computation.compute_wave(wave, snap)
        row_path = time.perf_counter() - started
    finally:
        computation.ROW_PATH_ONLY = False
        computation.choose_weights = real
    worst = 0.0
    for a, b in zip(cells.rows, rows.rows, strict=True):
        for key in ("estimate", "se", "diff_vs_rest_se"):
            x, y = a.get(key), b.get(key)
            if x is not None and y is not None and y != 0:
                worst = max(worst, abs(x - y) / abs(y))
    return [
        f"raked to margins (region x urban/rural, sex x age): raking {raking:.2f} s; full "
        f"recomputation on the cells {cold:.2f} s (cells kept by a worker: {warm:.2f} s) "
        f"vs the row path {row_path:.2f} s = {row_path / cold:.1f}x (goal < 5 s); largest "
        f"relative difference of estimates and SEs {worst:.1e}"
    ]
