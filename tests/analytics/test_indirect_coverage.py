"""Indirect designs on simulated stratified cluster samples: the 95% intervals cover the truth.

A fixed population of 20 strata, each of 60 to 120 villages (PSUs) of 50 people, where the
sensitive trait clusters within villages. Each replication draws 6 villages per stratum and
10 people per village, weighted by the inverse of their selection probability, asks with one
indirect design and estimates the prevalence. The share of intervals holding the population's
true prevalence must lie between 93% and 97% (1,000 replications: the binomial SD of that
share is 0.7 points at 95%).
"""

from __future__ import annotations

import numpy as np
import pytest

from analytics.stats.estimation import Design
from analytics.stats.indirect import (
    contrast,
    crosswise_terms,
    forced_response_terms,
    list_experiment_terms,
)

REPLICATIONS = 1000
STRATA, SAMPLED_PSUS, PSU_SIZE, PER_PSU = 20, 6, 50, 10
P_TRUTH, P_YES = 4 / 6, 1 / 6  # a die: 1-4 answer truthfully, 5 say "yes", 6 say "no"
P_UNRELATED = 0.25  # born in January, February or March
J_ITEMS, ITEM_P = 4, 0.4


def _population(rng: np.random.Generator) -> list[np.ndarray]:
    """Per stratum, a (villages x people) array of the trait."""
    strata = []
    for h in range(STRATA):
        villages = int(rng.integers(60, 121))
        level = -1.6 + 1.8 * h / (STRATA - 1)
        effect = rng.normal(0.0, 0.7, villages)[:, None]
        p = 1 / (1 + np.exp(-(level + effect)))
        strata.append(rng.random((villages, PSU_SIZE)) < p)
    return strata


def _sample(population: list[np.ndarray], rng: np.random.Generator):
    trait, weight, stratum, psu = [], [], [], []
    for h, villages in enumerate(population):
        chosen = rng.choice(villages.shape[0], SAMPLED_PSUS, replace=False)
        w = (villages.shape[0] / SAMPLED_PSUS) * (PSU_SIZE / PER_PSU)
        for v in chosen:
            people = rng.choice(PSU_SIZE, PER_PSU, replace=False)
            trait.append(villages[v, people])
            weight.append(np.full(PER_PSU, w))
            stratum.append(np.full(PER_PSU, h))
            psu.append(np.full(PER_PSU, h * 1000 + v))
    return tuple(np.concatenate(a) for a in (trait, weight, stratum, psu))


def _coverage(design_name: str, seed: int) -> float:
    rng = np.random.default_rng(seed)
    population = _population(rng)
    truth = float(np.concatenate([v.ravel() for v in population]).mean())
    hits = 0
    for _ in range(REPLICATIONS):
        trait, weight, stratum, psu = _sample(population, rng)
        n = trait.shape[0]
        design = Design(weight, strata=stratum, psu=psu)
        if design_name == "list":
            treated = rng.random(n) < 0.5
            count = rng.binomial(J_ITEMS, ITEM_P, n) + (treated & trait)
            terms, constant = list_experiment_terms(count.astype(float), treated)
        elif design_name == "forced":
            die = rng.integers(1, 7, n)
            yes = np.where(die <= 4, trait, die == 5).astype(float)
            terms, constant = forced_response_terms(yes, p_truth=P_TRUTH, p_yes=P_YES)
        else:
            unrelated = rng.random(n) < P_UNRELATED
            same = (trait == unrelated).astype(float)
            terms, constant = crosswise_terms(same, p_unrelated=P_UNRELATED)
        result = contrast(design, terms, constant=constant)
        hits += result["ci_low"] <= truth <= result["ci_high"]
    return hits / REPLICATIONS


@pytest.mark.parametrize(
    ("design_name", "seed"), [("list", 2013), ("forced", 2014), ("crosswise", 2015)]
)
def test_intervals_cover_the_true_prevalence(design_name, seed):
    coverage = _coverage(design_name, seed)
    assert 0.93 <= coverage <= 0.97, f"{design_name}: {coverage:.3f}"
