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
from dataclasses import dataclass, replace
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
from analytics.stats.summaries import (
    SHARE_FIELDS,
    multiple_choice_items,
    shares,
    single_choice_items,
)
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

SUMMARY_FORMAT = "2"  # part of the cache key: bump when the computation changes
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


def _cells(
    table: dict[str, list[list[Any]]],
    items: range,
    codes: list[Any],
    group_of: Callable[[int], int],
) -> dict[tuple[int, Any], dict[str, Any]]:
    """Each share of a question's items (columns ``items`` of a `shares` table, as lists)
    with its publication reasons and flags, by (group, code); and the base of each group,
    by (group, BASE)."""
    cells: dict[tuple[int, Any], dict[str, Any]] = {}
    for domain in range(len(table["estimate"])):
        group = group_of(domain)
        for code, item in zip(codes, items, strict=True):
            row = {name: table[name][domain][item] for name in SHARE_FIELDS}
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
            cells[(group, code)] = {**row, "reasons": reasons, "flags": flags}
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


@dataclass(frozen=True)
class _Question:
    """A closed question as items of `shares`: its answers (code, labels) in order, per
    answer who gave it (``hits``, answers x rows), and who is in the base (``base``)."""

    name: str
    kind: str
    labels: Labels
    answers: list[tuple[Any, Labels]]
    hits: np.ndarray
    base: np.ndarray

    @property
    def codes(self) -> list[Any]:
        return [code for code, _labels in self.answers]


def question_items(
    name: str, kind: str, labels: Labels, variables: list[Variable], columns: dict[str, np.ndarray]
) -> _Question:
    """The answers of one closed question and their items: a select_one question's codes
    in the questionnaire's order, then codes found but not labelled, then don't know and
    refused; a select_multiple question's options."""
    if kind == "select_one":
        (variable,) = variables
        values = columns[variable.name].astype(float)
        present = {int(v) for v in np.unique(values[~np.isnan(values)])} - {-3, -9}
        codes: list[Any] = [c for c in variable.value_labels if isinstance(c, int) and c >= 0]
        codes += sorted(c for c in present if c >= 0 and c not in codes)
        codes += [c for c in (DONT_KNOW, REFUSED) if c in present]
        answers = [(c, dict(variable.value_labels.get(c, {"en": str(c)}))) for c in codes]
        hits, base = single_choice_items(values, codes)
    else:
        answered = np.zeros(len(columns[variables[0].name]), dtype=bool)
        for variable in variables:
            answered |= np.isin(columns[variable.name], [0, 1])
        answers = [
            (str(v.option), {k: t.rsplit(": ", 1)[-1] for k, t in v.labels.items()})
            for v in variables
        ]
        hits, base = multiple_choice_items([columns[v.name] == 1 for v in variables], answered)
    return _Question(name, kind, dict(labels), answers, hits, base)


def summarise_questions(
    design: Design,
    questions: list[_Question],
    *,
    domain_codes: np.ndarray | None = None,
    n_groups: int = 0,
    whole: dict[str, list[list[Any]]] | None = None,
) -> list[QuestionSummary]:
    """Every question's cells: the whole population (group ALL), then each group
    0..n_groups-1 of ``domain_codes`` (-1: in no group). The shares of all the questions'
    answers come from two calls of `shares` (the whole, unless given as ``whole`` by
    `whole_shares`, and the groups)."""
    if not questions:
        return []
    if whole is None:
        whole = whole_shares(design, questions)
    groups = list(range(n_groups)) if domain_codes is not None else []
    by_group: dict[str, list[list[Any]]] = {}
    if groups:
        hits, base, base_of = _stacked(questions)
        computed = shares(
            design, hits, base, base_of=base_of, domain_codes=domain_codes, n_domains=n_groups
        )
        by_group = {name: values.tolist() for name, values in computed.items()}
    out = []
    start = 0
    for question in questions:
        items = range(start, start + len(question.answers))
        start = items.stop
        codes = question.codes
        cells = _cells(whole, items, codes, lambda _domain: ALL)
        if groups:
            cells.update(_cells(by_group, items, codes, int))
        extra = _protect(cells, codes, groups, partition=question.kind == "select_one")
        out.append(
            QuestionSummary(
                question.name,
                question.kind,
                question.labels,
                question.answers,
                _question_cells(cells, codes, groups, extra),
            )
        )
    return out


def whole_shares(design: Design, questions: list[_Question]) -> dict[str, list[list[Any]]]:
    """The whole population's `shares` of every question's answers, as lists."""
    hits, base, base_of = _stacked(questions)
    computed = shares(design, hits, base, base_of=base_of)
    return {name: values.tolist() for name, values in computed.items()}


def _stacked(questions: list[_Question]) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The questions' answers as the items of `shares`: hits, bases, each item's base."""
    hits = np.concatenate([q.hits for q in questions])
    base = np.array([q.base for q in questions], dtype=bool)
    base_of = np.repeat(np.arange(len(questions)), [len(q.answers) for q in questions])
    return hits, base, base_of


def _question_cells(
    cells: dict[tuple[int, Any], dict[str, Any]],
    codes: list[Any],
    groups: list[int],
    extra: set[tuple[int, Any]],
) -> list[Cell]:
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
    return out


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


def _cache_key(wave: Wave, result_set: ResultSet, codebook: Codebook, breakdown: str) -> str:
    definitions = hashlib.sha256(
        repr([(v.name, v.value_labels, v.labels) for v in codebook.variables]).encode()
    ).hexdigest()[:16]
    return (
        f"question-summaries:{SUMMARY_FORMAT}:{wave.pk}:{result_set.pk}:"
        f"{result_set.data_version}:{result_set.weights_version}:{breakdown}:{definitions}"
    )


def wave_summaries(wave: Wave, breakdown: str = "") -> WaveSummaries | None:
    """The wave's question summaries (whole population and the breakdown's groups), from
    the cache when its data state is unchanged; None while it has no current estimates."""
    result_set = _current_result_set(wave)
    if result_set is None:
        return None
    selection = MicrodataSelection(wave_ids=(wave.pk,))
    codebook = selection.codebook()
    key = _cache_key(wave, result_set, codebook, breakdown)
    found = cache.get(key)
    if isinstance(found, WaveSummaries):
        return found
    computed = compute_summaries(wave, codebook, selection, breakdown)
    cache.set(key, computed, CACHE_SECONDS)
    return computed


def warm_summaries(wave_id: int) -> list[str]:
    """Compute and cache the summaries of the wave's current result set that are not
    cached yet: the whole population and every breakdown, reading the answers once.
    Run after each recomputation (`analytics.tasks.warm_question_summaries`), so a page
    rarely waits; idempotent; stops early when new interviews made a recomputation due.
    Returns the breakdowns computed ("" for the whole)."""
    wave = Wave.objects.filter(pk=wave_id).first()
    result_set = _current_result_set(wave) if wave is not None else None
    if wave is None or result_set is None:
        return []
    selection = MicrodataSelection(wave_ids=(wave.pk,))
    codebook = selection.codebook()
    keys = {b: _cache_key(wave, result_set, codebook, b) for b in ["", *BREAKDOWNS]}
    cached = cache.get_many(list(keys.values()))
    missing = [b for b, key in keys.items() if not isinstance(cached.get(key), WaveSummaries)]
    done: list[str] = []
    if missing and not _recomputation_due(wave.pk):
        inputs = _inputs(wave, codebook, selection)
        for breakdown in missing:
            # New interviews make these summaries stale and a recomputation due, which
            # warms again when it is done: on a worker that also recomputes, the pages
            # left would only hold that recomputation back (about 15 s each at a million
            # interviews).
            if done and _recomputation_due(wave.pk):
                break
            cache.set(keys[breakdown], _summaries(inputs, breakdown), CACHE_SECONDS)
            done.append(breakdown)
    return done


def _recomputation_due(wave_id: int) -> bool:
    return WaveComputation.objects.filter(wave_id=wave_id, dirty=True).exists()


@dataclass
class _Inputs:
    """What every breakdown's summaries of a wave share: its snapshot, design, questions."""

    wave: Wave
    snapshot: snapshots.Snapshot
    sets: list[DomainSet]
    design: Design | None  # None: no interviews
    questions: list[_Question]
    empty: WaveSummaries  # the result's fields without groups or questions
    whole: dict[str, list[list[Any]]] | None = None  # `whole_shares`, once computed


def compute_summaries(
    wave: Wave, codebook: Codebook, selection: MicrodataSelection, breakdown: str = ""
) -> WaveSummaries:
    return _summaries(_inputs(wave, codebook, selection), breakdown)


def _inputs(wave: Wave, codebook: Codebook, selection: MicrodataSelection) -> _Inputs:
    computation = WaveComputation.objects.filter(wave_id=wave.pk).first()
    snapshot, _how = snapshots.refresh(wave.pk, epoch=computation.data_epoch if computation else 0)
    cols = snapshot.columns
    sets = domain_sets(wave, cols["region_id"])
    region_code_of_row = (
        np.array([r.code for r in sets[0].regions] + [""], dtype=object)[sets[0].codes]
        if snapshot.n
        else np.array([], dtype=object)
    )
    weights = choose_weights(snapshot, region_code_of_row, wave)
    empty = WaveSummaries(
        wave_id=wave.pk,
        wave_code=wave.code,
        breakdown="",
        groups=[],
        questions=[],
        n_interviews=snapshot.n,
        weights_version=weights.version,
        data_version=snapshot.fingerprint(),
        notes=[weights.note] if weights.note else [],
    )
    if not snapshot.n:
        return _Inputs(wave, snapshot, sets, None, [], empty)
    design = Design(
        weights.weight, strata=cols["stratum"], psu=cols["psu"], calibration=weights.calibration
    )
    questions = closed_questions(codebook)
    names = [v.name for _n, _k, _l, variables in questions for v in variables]
    columns = _answer_columns(selection, codebook, names, cols["id"])
    items = [question_items(*question, columns) for question in questions]
    return _Inputs(wave, snapshot, sets, design, items, empty)


def _summaries(inputs: _Inputs, breakdown: str) -> WaveSummaries:
    result = replace(inputs.empty, breakdown=breakdown, groups=[], questions=[])
    if inputs.design is None:
        return result
    domain_codes: np.ndarray | None = None
    if breakdown in BREAKDOWNS:
        domain_codes, groups = breakdown_groups(
            breakdown, inputs.wave, inputs.snapshot, inputs.sets
        )
        result.groups.extend(groups)
    if inputs.whole is None and inputs.questions:
        inputs.whole = whole_shares(inputs.design, inputs.questions)
    result.questions.extend(
        summarise_questions(
            inputs.design,
            inputs.questions,
            domain_codes=domain_codes,
            n_groups=len(result.groups),
            whole=inputs.whole,
        )
    )
    return result
