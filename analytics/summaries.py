"""Weighted question summaries of a wave: every closed question's answers, as the estimates
see them.

For each select_one question, the weighted share of every answer (don't know and refused
among them, as their own rows) with its design-based SE, 95% Korn-Graubard interval and
unweighted counts; for each select_multiple question, the share of its respondents who
ticked each option. Shares come from `analytics.stats.summaries` (checked against R's
``survey``) on the same design and weights as the wave's estimates: the snapshot's strata
and PSUs, and the calibrated weights when population margins apply
(`analytics.computation.choose_weights`). The answers are read from the wave's export
cache, which holds every question; the snapshot holds only what the indicators read.

Each share is a cell under the publication rules of the estimates
(`analytics.stats.publication`): suppressed when n or the effective n is below 30, the
interval too wide, or fewer than 10 respondents gave the answer or are in the base; and
complementary suppression (`analytics.stats.disclosure`) hides more cells where a hidden
count could be recovered by subtraction (the answers of a question add up to its base; a
breakdown's groups add up to the whole). A suppressed cell publishes no share and no count.

The result of a wave (and breakdown) is cached under its data state: the current result
set, the snapshot's fingerprint, the weights and the questionnaire versions, so a new
interview, a review decision or new margins give new summaries once recomputed.
"""

from __future__ import annotations

import datetime as dt
import hashlib
from collections.abc import Callable
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
from django.core.cache import cache
from django.utils import translation
from django.utils.translation import gettext_lazy as _

from analytics import snapshot as snapshots
from analytics.breakdowns import BREAKDOWNS as ESTIMATE_BREAKDOWNS
from analytics.breakdowns import BY_KEY as BREAKDOWN_BY_KEY
from analytics.computation import DomainSet, choose_weights, domain_sets
from analytics.exports.batches import iter_microdata_batches
from analytics.exports.codebook import Codebook, Variable
from analytics.exports.reader import MicrodataSelection
from analytics.models import ResultSet, WaveComputation
from analytics.stats.disclosure import complementary_suppression
from analytics.stats.estimation import Design
from analytics.stats.publication import publication
from analytics.stats.summaries import multiple_choice, single_choice
from analytics.summary_content import (
    ALL,
    BASE,
    DONT_KNOW,
    REFUSED,
    Cell,
    Labels,
    QuestionSummary,
    WaveSummaries,
)
from surveys.definition import INTERFACE_LANGUAGES
from surveys.models import Wave

SUMMARY_FORMAT = "1"  # part of the cache key: bump when the computation changes
CACHE_SECONDS = 30 * 24 * 3600


def closed_questions(codebook: Codebook) -> list[tuple[str, str, Labels, list[Variable]]]:
    """(name, kind, labels, variables) of the closed questions with integer codes, in
    codebook order; a select_multiple question has one variable per option."""
    out: list[tuple[str, str, Labels, list[Variable]]] = []
    multiple: dict[str, list[Variable]] = {}
    for variable in codebook.question_variables:
        if variable.kind == "select_one" and variable.storage == "int":
            out.append((variable.name, "select_one", variable.labels, [variable]))
        elif variable.kind == "select_multiple_option":
            if variable.source not in multiple:
                multiple[variable.source] = []
                labels = {
                    language: text.rsplit(":", 1)[0] for language, text in variable.labels.items()
                }
                out.append((variable.source, "select_multiple", labels, multiple[variable.source]))
            multiple[variable.source].append(variable)
    return out


def _answer_columns(
    selection: MicrodataSelection, codebook: Codebook, names: list[str], ids: np.ndarray
) -> dict[str, np.ndarray]:
    """The variables' codes per snapshot row (-9 where an interview is not in the cache)."""
    out = {name: np.full(len(ids), snapshots.NOT_ASKED, dtype=np.int32) for name in names}
    for batch in iter_microdata_batches(selection, codebook):
        if batch.ids is None or not batch.length:
            continue
        batch_ids = batch.ids.to_numpy(zero_copy_only=False)
        position = np.searchsorted(ids, batch_ids)
        inside = position < len(ids)
        inside[inside] = ids[position[inside]] == batch_ids[inside]
        for name in names:
            column = batch.columns[name]
            if isinstance(column, pa.Scalar):
                continue
            values = pc.fill_null(column, snapshots.NOT_ASKED).to_numpy(zero_copy_only=False)
            out[name][position[inside]] = values[inside]
    return out


def _clean(value: Any) -> float | None:
    value = float(value)
    return value if np.isfinite(value) else None


def _cells(table: Any, group_of: Callable[[int], int]) -> dict[tuple[int, Any], dict[str, Any]]:
    """Each row of a shares table with its publication reasons and flags, by (group, code);
    and the base of each group, by (group, BASE)."""
    cells: dict[tuple[int, Any], dict[str, Any]] = {}
    for row in table.to_dict("records"):
        group = group_of(int(row["domain"]))
        reasons, flags = publication(
            kind="proportion",
            estimate=float(row["estimate"]),
            se=float(row["se"]),
            ci_low=float(row["ci_low"]),
            ci_high=float(row["ci_high"]),
            n=int(row["n_base"]),
            n_numerator=int(row["n"]),
            n_eff=float(row["n_eff"]),
            df=float(row["df"]),
        )
        cells[(group, row["code"])] = {**row, "reasons": reasons, "flags": flags}
        cells.setdefault((group, BASE), {"n": int(row["n_base"])})
    return cells


def _protect(
    cells: dict[tuple[int, Any], dict[str, Any]],
    codes: list[Any],
    groups: list[int],
    *,
    partition: bool,
) -> set[tuple[int, Any]]:
    """The answer cells hidden besides those the small-count rule suppresses, as the
    estimates do (`analytics.computation.protect_counts`): the answers of a select_one
    question add up to its base, which is published, and each answer's groups add up to
    the whole population's count of that answer."""
    counts = {key: int(cell["n"]) for key, cell in cells.items()}
    primary = {key for key, cell in cells.items() if "disclosure<10" in cell.get("reasons", ())}
    relations: list[tuple[tuple[int, Any], list[tuple[int, Any]]]] = []
    if partition:
        for group in [ALL, *groups]:
            relations.append(((group, BASE), [(group, code) for code in codes]))
    if groups:
        for code in codes:
            relations.append(((ALL, code), [(group, code) for group in groups]))
    relations = [
        (total, [p for p in parts if p in cells]) for total, parts in relations if total in cells
    ]
    return complementary_suppression(counts, primary, relations)


def summarise_question(
    design: Design,
    kind: str,
    variables: list[Variable],
    columns: dict[str, np.ndarray],
    *,
    domain_codes: np.ndarray | None = None,
    n_groups: int = 0,
) -> tuple[list[tuple[Any, Labels]], list[Cell]]:
    """The answers of one question and its cells: the whole population (group ALL), then
    each group 0..n_groups-1 of ``domain_codes`` (-1: in no group)."""
    if kind == "select_one":
        (variable,) = variables
        values = columns[variable.name].astype(float)
        present = {int(v) for v in np.unique(values)} - {-3, -9}
        codes: list[Any] = [c for c in variable.value_labels if isinstance(c, int) and c >= 0]
        codes += sorted(c for c in present if c >= 0 and c not in codes)
        codes += [c for c in (DONT_KNOW, REFUSED) if c in present]
        answers = [(c, dict(variable.value_labels.get(c, {"en": str(c)}))) for c in codes]

        def compute(**domains: Any) -> Any:
            return single_choice(design, values, codes, **domains)

    else:
        answered = np.zeros(design.n_rows, dtype=bool)
        chosen: dict[int | str, np.ndarray] = {}
        for variable in variables:
            values = columns[variable.name]
            answered |= np.isin(values, [0, 1])
            chosen[str(variable.option)] = values == 1
        answers = [
            (str(v.option), {k: t.rsplit(": ", 1)[-1] for k, t in v.labels.items()})
            for v in variables
        ]
        codes = [code for code, _labels in answers]

        def compute(**domains: Any) -> Any:
            return multiple_choice(design, chosen, answered, **domains)

    groups = list(range(n_groups)) if domain_codes is not None else []
    cells = _cells(compute(), lambda _domain: ALL)
    if groups:
        cells.update(_cells(compute(domain_codes=domain_codes, n_domains=n_groups), int))
    extra = _protect(cells, codes, groups, partition=kind == "select_one")
    out = []
    for group in [ALL, *groups]:
        n_base = int(cells.get((group, BASE), {"n": 0})["n"])
        out.append(Cell(group, BASE, None, None, None, None, None, n_base))
        for code in codes:
            cell = cells.get((group, code))
            if cell is None:
                continue
            reasons = [*cell["reasons"], *(["complementary"] if (group, code) in extra else [])]
            shown = not reasons
            out.append(
                Cell(
                    group,
                    code,
                    _clean(cell["estimate"]) if shown else None,
                    _clean(cell["se"]) if shown else None,
                    _clean(cell["ci_low"]) if shown else None,
                    _clean(cell["ci_high"]) if shown else None,
                    int(cell["n"]) if shown else None,  # a suppressed cell keeps no count
                    n_base,
                    suppressed=not shown,
                    reasons=tuple(reasons),
                    review=tuple(cell["flags"]) if shown else (),
                )
            )
    return answers, out


# ---------------------------------------------------------------------- breakdowns

# The breakdowns of the estimates (`analytics.breakdowns`), and the wave's regions.
BREAKDOWNS: dict[str, Any] = {
    "region": _("Region"),
    **{b.key: b.title for b in ESTIMATE_BREAKDOWNS},
}


def _in_every_language(text: Any) -> Labels:
    out = {}
    for language in INTERFACE_LANGUAGES:
        with translation.override(language):
            out[language] = str(text)
    return out


def breakdown_groups(
    key: str, wave: Wave, snapshot: snapshots.Snapshot, sets: list[DomainSet]
) -> tuple[np.ndarray, list[tuple[int, Labels]]]:
    """Per snapshot row its group 0..k-1 of the breakdown (-1: none), and the groups' labels."""
    if key == "region":
        regions = sets[0].regions
        labels = [
            (i, {lang: getattr(r, f"name_{lang}") or r.code for lang in INTERFACE_LANGUAGES})
            for i, r in enumerate(regions)
        ]
        return np.asarray(sets[0].codes, dtype=np.int64), labels
    breakdown = BREAKDOWN_BY_KEY[key]
    year = wave.fieldwork_start.year if wave.fieldwork_start else dt.date.today().year
    codes = breakdown.codes(snapshot.columns, year=year)
    return codes, [(i, _in_every_language(g.label)) for i, g in enumerate(breakdown.groups)]


def _current_result_set(wave: Wave) -> ResultSet | None:
    return ResultSet.objects.filter(wave=wave, is_current=True).first()


def wave_summaries(wave: Wave, breakdown: str = "") -> WaveSummaries | None:
    """The wave's question summaries (whole population and the breakdown's groups), from
    the cache when its data state is unchanged; None while it has no current estimates."""
    result_set = _current_result_set(wave)
    if result_set is None:
        return None
    selection = MicrodataSelection(wave_ids=(wave.pk,))
    codebook = selection.codebook()
    definitions = hashlib.sha256(
        repr([(v.name, v.value_labels, v.labels) for v in codebook.variables]).encode()
    ).hexdigest()[:16]
    key = (
        f"question-summaries:{SUMMARY_FORMAT}:{wave.pk}:{result_set.pk}:"
        f"{result_set.data_version}:{result_set.weights_version}:{breakdown}:{definitions}"
    )
    found = cache.get(key)
    if isinstance(found, WaveSummaries):
        return found
    computed = compute_summaries(wave, codebook, selection, breakdown)
    cache.set(key, computed, CACHE_SECONDS)
    return computed


def compute_summaries(
    wave: Wave, codebook: Codebook, selection: MicrodataSelection, breakdown: str = ""
) -> WaveSummaries:
    snapshot = snapshots.load(wave.pk)
    if snapshot is None:
        computation = WaveComputation.objects.filter(wave_id=wave.pk).first()
        snapshot, _how = snapshots.refresh(
            wave.pk, epoch=computation.data_epoch if computation else 0, save_changes=False
        )
    cols = snapshot.columns
    sets = domain_sets(wave, cols["region_id"])
    region_code_of_row = (
        np.array([r.code for r in sets[0].regions] + [""], dtype=object)[sets[0].codes]
        if snapshot.n
        else np.array([], dtype=object)
    )
    weights = choose_weights(snapshot, region_code_of_row, wave)
    questions = closed_questions(codebook)
    result = WaveSummaries(
        wave_id=wave.pk,
        wave_code=wave.code,
        breakdown=breakdown,
        groups=[],
        questions=[],
        n_interviews=snapshot.n,
        weights_version=weights.version,
        data_version=snapshot.fingerprint(),
        notes=[weights.note] if weights.note else [],
    )
    if not snapshot.n:
        return result
    design = Design(
        weights.weight, strata=cols["stratum"], psu=cols["psu"], calibration=weights.calibration
    )
    names = [v.name for _n, _k, _l, variables in questions for v in variables]
    columns = _answer_columns(selection, codebook, names, cols["id"])
    domain_codes: np.ndarray | None = None
    if breakdown in BREAKDOWNS:
        domain_codes, groups = breakdown_groups(breakdown, wave, snapshot, sets)
        result.groups.extend(groups)
    for name, kind, labels, variables in questions:
        answers, cells = summarise_question(
            design,
            kind,
            variables,
            columns,
            domain_codes=domain_codes,
            n_groups=len(result.groups),
        )
        result.questions.append(QuestionSummary(name, kind, dict(labels), answers, cells))
    return result
