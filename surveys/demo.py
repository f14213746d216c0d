"""Synthetic demonstration interviews for the informal-networks instrument.

SYNTHETIC DATA. The 2013 microdata are not public; these interviews are drawn at random so
that weighted shares land near the published 2013 headline figures (bribery perceived as
widespread > 80%, personal bribery experience about 40%, network use about 60%), with
regional variation and clustering within PSUs so that design effects are realistic. A
current wave uses shifted rates. Everything generated is flagged `is_synthetic`.

Personal bribery in the last 12 months has a known true prevalence (``Rates.bribe_12m``, 30%
in the 2013-like wave, 22% in the current one): E1 = 1 (about 18% and 14%) are those who
admit it, the others who paid answered "never", while the three indirect items (list experiment, forced response,
crosswise) are answered by their own rules from the true status, so the dashboard shows how
much the direct question misses.

Generation is vectorised with numpy and written with bulk inserts (PostgreSQL COPY when
available), so a million interviews take minutes, not hours.
"""

from __future__ import annotations

import datetime as dt
import json
import uuid
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
from django.db import connection, transaction
from django.utils import timezone

from surveys.definition import INTERFACE_LANGUAGES
from surveys.models import FormVersion, Geography, Region, Submission, Wave

SPHERES = ["KG", "SCH", "UNI", "MED", "JOB", "POL", "CRT", "DOC", "LND", "INF", "BUS"]
TRUST_ITEMS = ["TR_GOV", "TR_CRT", "TR_POL", "TR_AKM", "TR_PAR", "TR_MED", "TR_NGO"]
CONTACT = dict(
    zip(SPHERES, [0.15, 0.35, 0.12, 0.55, 0.10, 0.25, 0.06, 0.40, 0.08, 0.10, 0.07], strict=True)
)
BRIBE_IN_SPHERE = dict(
    zip(SPHERES, [0.30, 0.18, 0.30, 0.28, 0.25, 0.35, 0.22, 0.15, 0.25, 0.12, 0.30], strict=True)
)
# Approximate adult population shares of the current units (used for allocation and weights).
POPULATION_2022 = {
    "KZ-10": 0.032,
    "KZ-11": 0.039,
    "KZ-15": 0.048,
    "KZ-19": 0.074,
    "KZ-23": 0.035,
    "KZ-27": 0.033,
    "KZ-31": 0.059,
    "KZ-33": 0.035,
    "KZ-35": 0.058,
    "KZ-39": 0.042,
    "KZ-43": 0.042,
    "KZ-47": 0.037,
    "KZ-55": 0.038,
    "KZ-59": 0.027,
    "KZ-61": 0.105,
    "KZ-62": 0.011,
    "KZ-63": 0.036,
    "KZ-71": 0.067,
    "KZ-75": 0.110,
    "KZ-79": 0.062,
}
URBAN_SHARE = {"KZ-71": 1.0, "KZ-75": 1.0, "KZ-79": 1.0}


@dataclass(frozen=True)
class Rates:
    """Headline rates a wave's synthetic interviews are drawn around."""

    perceived_bribery: float
    perceived_connections: float
    bribe_ever: float
    network_ever: float
    contact_scale: float
    bribe_scale: float
    # The true prevalence of personal bribery in the last 12 months (E1 = 1 is what is admitted).
    bribe_12m: float = 0.30


RATES_2013 = Rates(0.84, 0.82, 0.40, 0.62, 1.0, 1.0, bribe_12m=0.30)
RATES_CURRENT = Rates(0.74, 0.78, 0.31, 0.56, 1.1, 0.75, bribe_12m=0.22)
# The non-sensitive items of the list experiment (the instrument's LE_C), how often each applies.
LIST_ITEMS = (0.55, 0.30, 0.45, 0.15)
# The instrument's randomizers: forced response truthful with 0.7, "yes" with 0.2; crosswise
# paired with an item of prevalence 0.25 (the mother's birthday in the first quarter).
RR_TRUTH, RR_YES, CROSSWISE_R = 0.7, 0.2, 0.25


def population_shares(geography: str) -> dict[str, float]:
    if geography == Geography.KZ2022:
        return POPULATION_2022
    shares: dict[str, float] = {}
    for region in Region.objects.of(Geography.KZ2022).select_related("unit_2013"):
        assert region.unit_2013 is not None
        shares[region.unit_2013.code] = (
            shares.get(region.unit_2013.code, 0.0) + POPULATION_2022[region.code]
        )
    return shares


def _logit(p: np.ndarray | float) -> np.ndarray:
    return np.log(np.asarray(p) / (1 - np.asarray(p)))


def _expit(x: np.ndarray) -> np.ndarray:
    return 1 / (1 + np.exp(-x))


def _categorical(
    rng: np.random.Generator, probabilities: list[float], codes: list[int], n: int
) -> np.ndarray:
    p = np.asarray(probabilities, dtype=float)
    return np.asarray(codes)[rng.choice(len(codes), size=n, p=p / p.sum())]


def draw_interviews(
    *, n: int, geography: str, rates: Rates, fieldwork_year: int, seed: int
) -> dict[str, np.ndarray]:
    """Column arrays for n synthetic interviews (design fields and answers)."""
    rng = np.random.default_rng(seed)
    shares = population_shares(geography)
    codes = sorted(shares)
    pop = np.array([shares[c] for c in codes])
    # Allocation: square-root compromise between proportional and equal, so small regions get
    # enough interviews to be reported, as national surveys do.
    alloc = np.sqrt(pop) / np.sqrt(pop).sum()
    region_idx = rng.choice(len(codes), size=n, p=alloc)
    urban_share = np.array([URBAN_SHARE.get(c, 0.58) for c in codes])
    urban = np.where(rng.random(n) < urban_share[region_idx], 1, 2)
    # PSUs: about 10 interviews each, numbered within region x urban/rural strata.
    per_psu = 10
    stratum_key = region_idx * 2 + (urban - 1)
    order = np.argsort(stratum_key, kind="stable")
    psu_number = np.empty(n, dtype=np.int64)
    counts = np.bincount(stratum_key, minlength=len(codes) * 2)
    start = 0
    for count in counts:
        psu_number[order[start : start + count]] = np.arange(count) // per_psu
        start += count
    psu_global = stratum_key * 100_000 + psu_number
    _, psu_index = np.unique(psu_global, return_inverse=True)
    psu_effect = rng.normal(0, 0.35, psu_index.max() + 1)[psu_index]
    region_effect = rng.normal(0, 0.25, len(codes))[region_idx]
    shift = psu_effect + region_effect
    # Base weight: population share over sample share within the stratum, with nonresponse noise.
    pop_stratum = pop[region_idx] * np.where(
        urban == 1, urban_share[region_idx], 1 - urban_share[region_idx]
    )
    sample_stratum = counts[stratum_key] / n
    weight = pop_stratum / np.maximum(sample_stratum, 1e-12) * rng.lognormal(0, 0.25, n)
    weight = weight / weight.mean()

    def binary(p: float, extra: np.ndarray | float = 0.0) -> np.ndarray:
        return rng.random(n) < _expit(_logit(p) + shift + extra)

    cols: dict[str, np.ndarray] = {
        "region": np.asarray(codes)[region_idx],
        "urban_rural": urban,
        "stratum": np.char.add(np.asarray(codes)[region_idx], np.where(urban == 1, "-U", "-R")),
        "psu": np.char.add("PSU-", psu_global.astype(str)),
        "weight": weight,
    }
    cols["SEX"] = _categorical(rng, [0.47, 0.52, 0.01], [1, 2, -2], n)
    cols["BIRTH_YEAR"] = fieldwork_year - rng.integers(18, 81, n)
    cols["AGE"] = fieldwork_year - cols["BIRTH_YEAR"]
    cols["EDU"] = _categorical(
        rng, [0.03, 0.25, 0.30, 0.07, 0.32, 0.02, 0.01], [1, 2, 3, 4, 5, 6, -2], n
    )
    cols["EMP"] = _categorical(
        rng, [0.22, 0.25, 0.15, 0.07, 0.06, 0.20, 0.04, 0.01], [1, 2, 3, 4, 5, 6, 7, -2], n
    )
    cols["ETH"] = _categorical(
        rng, [0.68, 0.19, 0.03, 0.02, 0.02, 0.01, 0.01, 0.03, 0.01], [1, 2, 3, 4, 5, 6, 7, 8, -2], n
    )
    cols["HH_SIZE"] = np.clip(rng.poisson(3.2, n) + 1, 1, 15)
    cols["INCOME"] = _categorical(
        rng, [0.05, 0.20, 0.40, 0.25, 0.05, 0.03, 0.02], [1, 2, 3, 4, 5, -1, -2], n
    )
    cols["SETTLEMENT"] = np.where(
        urban == 2, 4, _categorical(rng, [0.45, 0.35, 0.20], [1, 2, 3], n)
    )
    cols["URBAN"] = urban
    for item, p in (("P1", rates.perceived_bribery), ("P2", rates.perceived_connections)):
        wide = binary(p)
        cols[item] = np.where(
            wide, np.where(rng.random(n) < 0.5, 1, 2), np.where(rng.random(n) < 0.7, 3, 4)
        )
        special = rng.random(n)
        cols[item] = np.where(special < 0.03, -1, np.where(special < 0.04, -2, cols[item]))
    for sphere in SPHERES:
        contact = binary(min(CONTACT[sphere] * rates.contact_scale, 0.9))
        cols[f"C_{sphere}"] = np.where(contact, 1, 2)
        bribe = binary(BRIBE_IN_SPHERE[sphere] * rates.bribe_scale)
        network = binary(0.35)
        cols[f"B_{sphere}"] = np.where(contact, np.where(bribe, 1, 2), -3)
        cols[f"N_{sphere}"] = np.where(
            contact, np.where(network, np.where(rng.random(n) < 0.4, 1, 2), 3), -3
        )
    bribe_ever = binary(rates.bribe_ever)
    cols["E1"] = np.where(bribe_ever, np.where(rng.random(n) < 0.45, 1, 2), 3)
    cols["E1"] = np.where(rng.random(n) < 0.04, -2, cols["E1"])
    network_ever = binary(rates.network_ever)
    mode = _categorical(rng, [0.25, 0.48, 0.27], [1, 2, 3], n)
    cols["E2"] = np.where(network_ever, mode, 4)
    cols["E2"] = np.where(rng.random(n) < 0.03, -2, cols["E2"])
    cols["T1"] = _categorical(
        rng, [0.25, 0.35, 0.15, 0.12, 0.05, 0.07, 0.01], [1, 2, 3, 4, 5, -1, -2], n
    )
    cols["R1"] = _categorical(rng, [0.28, 0.60, 0.02, 0.09, 0.01], [1, 2, 3, -1, -2], n)
    for item, p_always in (("A1", 0.30), ("A2", 0.15), ("A3", 0.20)):
        cols[item] = _categorical(
            rng, [p_always, 0.35, 0.60 - p_always, 0.04, 0.01], [1, 2, 3, -1, -2], n
        )
    for item in TRUST_ITEMS:
        cols[item] = _categorical(
            rng, [0.15, 0.35, 0.28, 0.15, 0.06, 0.01], [1, 2, 3, 4, -1, -2], n
        )
    motive_p = [0.45, 0.40, 0.25, 0.30, 0.12, 0.15, 0.03]
    cols["_motives"] = rng.random((n, len(motive_p))) < np.asarray(motive_p)
    # The indirect items draw from a stream of their own, so every other answer stays as it
    # was for a seed.
    _indirect_answers(cols, rates, np.random.default_rng([seed, 15]))
    return cols


def _indirect_answers(cols: dict[str, np.ndarray], rates: Rates, rng: np.random.Generator) -> None:
    """The true 12-month status, then the list experiment, forced-response and crosswise
    answers, each by its own rule.

    E1 = 1 are the bribers who admit it; the others who paid in the last 12 months answered
    "never" (3): enough of those are drawn to make the true prevalence ``bribe_12m``. Those
    who refused E1 paid at that rate too.
    """
    e1 = cols["E1"]
    n = e1.shape[0]
    admitted, never = float(np.mean(e1 == 1)), float(np.mean(e1 == 3))
    conceal = min(max((rates.bribe_12m - admitted) / max(never, 1e-9), 0.0), 1.0)
    draw = rng.random(n)
    truth = (e1 == 1) | ((e1 == 3) & (draw < conceal)) | ((e1 == -2) & (draw < rates.bribe_12m))
    cols["_bribe_12m"] = truth
    cols["LE_ARM"] = np.asarray(rng.integers(0, 2, size=n))
    harmless = (rng.random((n, len(LIST_ITEMS))) < np.asarray(LIST_ITEMS)).sum(axis=1)
    cols["_list_count"] = harmless + np.where(cols["LE_ARM"] == 1, truth, 0)
    die = rng.random(n)
    said_yes = np.where(die < RR_TRUTH, truth, die < RR_TRUTH + RR_YES)
    cols["RR_E1"] = np.where(rng.random(n) < 0.02, -2, np.where(said_yes, 1, 2))
    birthday = rng.random(n) < CROSSWISE_R
    cols["CW_E1"] = np.where(rng.random(n) < 0.02, -2, np.where(birthday == truth, 1, 2))


def answers_json(cols: dict[str, np.ndarray], rows: slice) -> list[str]:
    """The answers of a block of interviews as JSON text, -3 where skipped by design.

    Built with one format string per block rather than a dict and json.dumps per interview:
    generating a million interviews is dominated by this step.
    """
    keys = [key for key in cols if key[0].isupper()]
    template = '{"REGION": "%s", ' + ", ".join(f'"{key}": %d' for key in keys) + "%s}"
    values = np.column_stack([cols[key][rows] for key in keys]).tolist()
    regions = cols["region"][rows].tolist()
    e1, e2, r1 = (np.asarray(cols[k][rows]) for k in ("E1", "E2", "R1"))
    asked = np.isin(e1, [1, 2]) | np.isin(e2, [1, 2, 3])
    motives = cols["_motives"][rows]
    # Only the count of the arm drawn is asked (and stored).
    arm, counts = cols["LE_ARM"][rows].tolist(), cols["_list_count"][rows].tolist()
    count_name = ("LE_C", "LE_T")
    out = []
    for i, row in enumerate(values):
        extra = ""
        if asked[i]:
            chosen = [f"M{k + 1}" for k in np.flatnonzero(motives[i])] or ["M2"]
            extra += ', "M": [' + ", ".join(f'"{m}"' for m in chosen) + "]"
            if "M7" in chosen:
                extra += ', "M_OTHER": "(synthetic) other reason"'
        if r1[i] == 3:
            extra += ', "R1_OTHER": "(synthetic) other view"'
        extra += f', "{count_name[arm[i]]}": {counts[i]}'
        out.append(template % (regions[i], *row, extra))
    return out


def generate_wave(
    *,
    wave: Wave,
    form_version: FormVersion,
    n: int,
    seed: int,
    rates: Rates,
    batch_size: int = 20_000,
    progress: Callable[[int], None] | None = None,
) -> int:
    """Insert n synthetic interviews into the wave. Returns the number written."""
    year = wave.fieldwork_start.year if wave.fieldwork_start else timezone.now().year
    cols = draw_interviews(
        n=n, geography=wave.geography, rates=rates, fieldwork_year=year, seed=seed
    )
    regions = {r.code: r.pk for r in Region.objects.of(wave.geography)}
    rng = np.random.default_rng(seed + 1)
    started = np.datetime64(f"{year}-03-01T09:00:00") + rng.integers(0, 60 * 86400, n).astype(
        "timedelta64[s]"
    )
    durations = rng.integers(900, 2700, n)
    ended = started + durations.astype("timedelta64[s]")
    uuid_rng = np.random.default_rng(
        [seed, wave.pk, 2]
    )  # ids unique across waves drawn with one seed
    languages = np.array(INTERFACE_LANGUAGES)[_categorical(rng, [0.45, 0.50, 0.05], [0, 1, 2], n)]
    psu_number = np.char.partition(cols["psu"].astype(str), "-")[:, 2].astype(np.int64)
    block = {
        "instance_id": lambda rows: [
            str(uuid.UUID(bytes=uuid_rng.bytes(16), version=4))
            for _ in range(rows.stop - rows.start)
        ],
        "region_id": lambda rows: [regions[c] for c in cols["region"][rows].tolist()],
        "urban_rural": lambda rows: cols["urban_rural"][rows].tolist(),
        "stratum": lambda rows: cols["stratum"][rows].tolist(),
        "psu": lambda rows: cols["psu"][rows].tolist(),
        "weight": lambda rows: cols["weight"][rows].tolist(),
        "language": lambda rows: languages[rows].tolist(),
        "answers": lambda rows: answers_json(cols, rows),
        "started_at": lambda rows: np.datetime_as_string(
            started[rows], unit="s", timezone="UTC"
        ).tolist(),
        "ended_at": lambda rows: np.datetime_as_string(
            ended[rows], unit="s", timezone="UTC"
        ).tolist(),
        "duration_seconds": lambda rows: durations[rows].tolist(),
        "device_id": lambda rows: [
            f"synthetic-tablet-{p % 97:02d}" for p in psu_number[rows].tolist()
        ],
    }
    fixed = {
        "form_version_id": form_version.pk,
        "wave_id": wave.pk,
        "channel": "tablet",
        "review_status": "approved",
        "review_comment": "",
        "question_comments": "{}",
        "user_agent_class": "tablet",
        "is_synthetic": True,
        "received_at": timezone.now().isoformat(),
    }
    written = 0
    for offset in range(0, n, batch_size):
        rows = slice(offset, min(offset + batch_size, n))
        columns = {name: make(rows) for name, make in block.items()}
        with transaction.atomic():
            if connection.vendor == "postgresql":
                _copy_block(columns, fixed)
            else:
                _bulk_create_block(columns, fixed)
        written += rows.stop - rows.start
        if progress:
            progress(rows.stop - rows.start)
    return written


COLUMNS = [
    "instance_id", "form_version_id", "wave_id", "region_id", "urban_rural", "stratum", "psu",
    "weight", "channel", "language", "review_status", "answers", "started_at", "ended_at",
    "duration_seconds", "device_id", "user_agent_class", "is_synthetic", "received_at",
    "review_comment", "question_comments",
]  # fmt: skip


def _copy_block(columns: dict[str, list], fixed: dict) -> None:
    """PostgreSQL COPY in text format: an order of magnitude faster than INSERT.

    Every value here is generated (codes, ISO timestamps, ASCII text without tabs, newlines
    or backslashes), so the text format needs no escaping.
    """
    n = len(columns["instance_id"])
    series = [columns[c] if c in columns else [fixed[c]] * n for c in COLUMNS]
    payload = "".join("\t".join(map(str, values)) + "\n" for values in zip(*series, strict=True))
    sql = f"COPY {Submission._meta.db_table} ({', '.join(COLUMNS)}) FROM STDIN"
    with connection.cursor() as cursor, cursor.cursor.copy(sql) as copy:
        copy.write(payload)


def _bulk_create_block(columns: dict[str, list], fixed: dict) -> None:
    """The embedded (SQLite) path: typed values through the ORM's bulk insert."""
    parsed = {
        **columns,
        "answers": [json.loads(text) for text in columns["answers"]],
        "started_at": [dt.datetime.fromisoformat(v) for v in columns["started_at"]],
        "ended_at": [dt.datetime.fromisoformat(v) for v in columns["ended_at"]],
    }
    constant = {
        **fixed,
        "received_at": dt.datetime.fromisoformat(fixed["received_at"]),
        "question_comments": json.loads(fixed["question_comments"]),
    }
    names = list(parsed)
    Submission.objects.bulk_create(
        [
            Submission(**dict(zip(names, values, strict=True)), **constant)
            for values in zip(*parsed.values(), strict=True)
        ],
        batch_size=2000,
    )
