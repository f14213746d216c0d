"""Every domain at once (`domain_contrasts`, `contrasts_vs_rest`) equals the one-domain
`contrast` (checked against R in test_indirect.py), on random stratified cluster samples
with sampling, post-stratified and raked weights."""

from __future__ import annotations

import numpy as np
import pytest

from analytics.stats.estimation import CalibrationInfo, Design
from analytics.stats.indirect import (
    Term,
    contrast,
    contrasts_vs_rest,
    crosswise_terms,
    domain_contrasts,
    forced_response_terms,
    list_experiment_terms,
    with_gap,
)

K = 7  # domains; code -1 marks rows in none


def _sample(seed: int, calibration: str | None):
    rng = np.random.default_rng(seed)
    n = 3000
    stratum = rng.integers(0, 12, n)
    psu = stratum * 100 + rng.integers(0, 6, n)
    psu[stratum == 11] = 1100  # a lonely PSU
    codes = rng.integers(-1, K, n)
    codes[codes == 3] = 2  # an empty domain
    weight = rng.gamma(2.0, 50.0, n)
    info = None
    sex, age = rng.integers(0, 2, n), rng.integers(0, 4, n)
    if calibration == "poststratify":
        cells = sex * 4 + age
        target = rng.uniform(500, 1500, 8)
        weight = weight * (target / np.bincount(cells, weights=weight))[cells]
        info = CalibrationInfo(kind="poststratify", cells=(cells,))
    elif calibration == "rake":
        for _ in range(30):
            for margin, target in ((sex, [6e4, 5e4]), (age, [3e4, 3e4, 2e4, 3e4])):
                weight = weight * (np.array(target) / np.bincount(margin, weights=weight))[margin]
        info = CalibrationInfo(kind="rake", cells=(sex, age))
    treated = rng.integers(0, 2, n) == 1
    count = rng.integers(0, 4, n) + (treated & (rng.random(n) < 0.3))
    count = np.where(rng.random(n) < 0.05, np.nan, count.astype(float))
    yes = np.where(rng.random(n) < 0.05, np.nan, (rng.random(n) < 0.4).astype(float))
    direct = np.where(rng.random(n) < 0.1, np.nan, (rng.random(n) < 0.15).astype(float))
    design = Design(weight, strata=stratum, psu=psu, calibration=info)
    return design, codes, count, treated, yes, direct


def _indicators(count, treated, yes, direct):
    """Each design with and without its gap, as functions of a domain mask."""
    designs = {
        "list": lambda d: list_experiment_terms(count, treated, d),
        "rr": lambda d: forced_response_terms(yes, p_truth=0.7, p_yes=0.2, domain=d),
        "cw": lambda d: crosswise_terms(yes, p_unrelated=0.25, domain=d),
    }
    out = dict(designs)
    for name, make in designs.items():
        out[f"{name}-gap"] = lambda d, make=make: with_gap(make(d), direct, d)
    return out


@pytest.mark.parametrize("calibration", [None, "poststratify", "rake"])
@pytest.mark.parametrize("seed", [1, 2])
def test_every_domain_at_once_equals_one_contrast_per_domain(calibration, seed):
    design, codes, *data = _sample(seed, calibration)
    for name, make in _indicators(*data).items():
        terms, constant = make(None)
        many = domain_contrasts(design, terms, codes, K, constant=constant)
        versus = contrasts_vs_rest(design, terms, codes, K)
        for g in range(K):
            inside = codes == g
            terms_g, constant_g = make(inside)
            one = contrast(design, terms_g, constant=constant_g)
            if g == 3:
                assert np.isnan(many["estimate"][g]) and many["n"][g] == 0
                assert np.isnan(versus["estimate"][g])
                continue
            assert many["estimate"][g] == pytest.approx(one["estimate"], rel=1e-9, abs=1e-12)
            assert many["se"][g] == pytest.approx(one["se"], rel=1e-9), (name, g)
            assert many["n"][g] == one["n"]
            mine, _ = make(inside)
            rest, _ = make(~inside)
            diff = contrast(
                design, [*mine, *(Term(-t.coefficient, t.values, t.rows) for t in rest)]
            )
            assert versus["estimate"][g] == pytest.approx(diff["estimate"], rel=1e-9, abs=1e-12)
            assert versus["se"][g] == pytest.approx(diff["se"], rel=1e-9), (name, g)
            assert versus["df"][g] == diff["df"]
        whole = contrast(design, terms, constant=constant)
        nation = domain_contrasts(
            design, terms, np.zeros(len(codes), np.int64), 1, constant=constant
        )
        assert nation["estimate"][0] == pytest.approx(whole["estimate"], rel=1e-9)
        assert nation["se"][0] == pytest.approx(whole["se"], rel=1e-9)


def test_domain_df_and_srs_variance_follow_their_definitions():
    design, codes, count, treated, yes, direct = _sample(5, None)
    terms, constant = list_experiment_terms(count, treated)
    many = domain_contrasts(design, terms, codes, K, constant=constant)
    for g in (0, 4):
        rows = (codes == g) & ~np.isnan(count)
        psus = set(
            zip(design.psu_stratum[design.psu_code[rows]], design.psu_code[rows], strict=True)
        )
        strata = {h for h, _ in psus}
        assert many["df"][g] == len(psus) - len(strata)
        srs = 0.0
        for arm in (True, False):
            keep = rows & (treated == arm)
            y, w = count[keep], design.weight[keep]
            mean = (w * y).sum() / w.sum()
            m = keep.sum()
            srs += (w * (y - mean) ** 2).sum() / w.sum() * m / (m - 1) / m
        assert many["srs_variance"][g] == pytest.approx(srs, rel=1e-9)
