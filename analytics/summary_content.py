"""What the question summaries page and its downloads show, as a pure function.

From a wave's computed summaries (`analytics.summaries.WaveSummaries`) and the texts of the
interface language to one block per question: its rows (the whole population first, then
each group of the breakdown; within each, the answers in the questionnaire's order, then
don't know and refused apart) and the data of its chart. Shares become per cent on the
page; the downloads keep proportions (`download_rows`). No Django here: the view fetches
and renders, `analytics.charts.summary_chart` draws.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

DONT_KNOW, REFUSED = -1, -2
ALL = -1  # the group of the whole population (Kazakhstan)
BASE = "base"  # the code of a group's base (the people asked)
Labels = dict[str, str]  # language -> text


@dataclass(frozen=True)
class Cell:
    """One share of one answer (or one option) in one group; None where not published."""

    group: int  # ALL or a breakdown group's code
    code: Any  # the answer's code, or BASE for the row of the question's base
    estimate: float | None
    se: float | None
    ci_low: float | None
    ci_high: float | None
    n: int | None  # respondents who gave this answer
    n_base: int | None  # respondents in the base
    suppressed: bool = False
    reasons: tuple[str, ...] = ()
    review: tuple[str, ...] = ()


@dataclass(frozen=True)
class QuestionSummary:
    name: str
    kind: str  # "select_one" or "select_multiple"
    labels: Labels
    answers: list[tuple[Any, Labels]]  # code and its labels, in the questionnaire's order
    cells: list[Cell]

    def label(self, language: str) -> str:
        return self.labels.get(language) or self.labels.get("en") or self.name

    def cell(self, group: int, code: Any) -> Cell | None:
        return next((c for c in self.cells if c.group == group and c.code == code), None)


@dataclass(frozen=True)
class WaveSummaries:
    wave_id: int
    wave_code: str
    breakdown: str
    groups: list[tuple[int, Labels]]  # the breakdown's groups with their labels
    questions: list[QuestionSummary]
    n_interviews: int
    weights_version: str
    data_version: str
    notes: list[str] = field(default_factory=list)


SPECIAL = (DONT_KNOW, REFUSED)
MAX_CHART_GROUPS = 4  # more groups than this (regions): the chart shows the whole population


@dataclass(frozen=True)
class Texts:
    whole: str  # the whole population ("Kazakhstan")
    axis: str  # "Per cent of those asked"
    axis_multiple: str  # "Per cent of respondents (several answers possible)"
    suppressed: str
    reasons: dict[str, str]
    review_flags: dict[str, str]


@dataclass(frozen=True)
class Bar:
    estimate: float | None  # per cent
    ci_low: float | None
    ci_high: float | None
    suppressed: bool
    review: bool


@dataclass(frozen=True)
class SummaryChart:
    title: str
    answers: tuple[str, ...]
    special: tuple[bool, ...]  # per answer: don't know or refused
    series: tuple[tuple[str, tuple[Bar, ...]], ...]  # a group's label and its bars
    axis_label: str
    suppressed_label: str


@dataclass(frozen=True)
class Row:
    group: str
    code: str
    answer: str
    special: bool
    estimate: float | None  # per cent
    se: float | None
    ci_low: float | None
    ci_high: float | None
    n: int | None
    n_base: int
    suppressed: bool
    reasons: tuple[str, ...]
    review: tuple[str, ...]
    cell: Cell | None = None
    first_of_group: bool = False


@dataclass(frozen=True)
class QuestionBlock:
    name: str
    kind: str
    text: str
    n_base: int  # respondents asked (the whole population's base)
    rows: tuple[Row, ...]
    chart: SummaryChart | None


def _label(texts: dict[str, str], language: str, fallback: str) -> str:
    return texts.get(language) or texts.get("en") or fallback


def _percent(value: float | None) -> float | None:
    return None if value is None else 100 * value


def question_blocks(
    summaries: WaveSummaries, *, language: str, texts: Texts
) -> list[QuestionBlock]:
    groups = [(ALL, texts.whole)] + [
        (code, _label(labels, language, str(code))) for code, labels in summaries.groups
    ]
    blocks = []
    for question in summaries.questions:
        answers = [(code, _label(labels, language, str(code))) for code, labels in question.answers]
        ordered = [a for a in answers if a[0] not in SPECIAL] + [
            a for a in answers if a[0] in SPECIAL
        ]
        cells = {(c.group, c.code): c for c in question.cells}
        rows: list[Row] = []
        for group, group_label in groups:
            base = cells.get((group, BASE))
            first = True
            for code, answer in ordered:
                cell = cells.get((group, code))
                if cell is None:
                    continue
                rows.append(_row(cell, group_label, code, answer, base, texts, first))
                first = False
        title = question.label(language)
        chart_groups = groups if len(groups) - 1 <= MAX_CHART_GROUPS else groups[:1]
        series = []
        for group, group_label in chart_groups:
            bars = []
            for code, _answer in ordered:
                cell = cells.get((group, code))
                bars.append(
                    Bar(
                        _percent(cell.estimate) if cell else None,
                        _percent(cell.ci_low) if cell else None,
                        _percent(cell.ci_high) if cell else None,
                        cell.suppressed if cell else True,
                        bool(cell.review) if cell else False,
                    )
                )
            series.append((group_label, tuple(bars)))
        whole_base = cells.get((ALL, BASE))
        n_base = whole_base.n_base or 0 if whole_base else 0
        chart = (
            SummaryChart(
                title=f"{question.name}. {title}",
                answers=tuple(a for _c, a in ordered),
                special=tuple(c in SPECIAL for c, _a in ordered),
                series=tuple(series),
                axis_label=texts.axis if question.kind == "select_one" else texts.axis_multiple,
                suppressed_label=texts.suppressed,
            )
            if n_base and ordered
            else None
        )
        blocks.append(
            QuestionBlock(question.name, question.kind, title, n_base, tuple(rows), chart)
        )
    return blocks


def _row(
    cell: Cell,
    group: str,
    code: Any,
    answer: str,
    base: Cell | None,
    texts: Texts,
    first: bool,
) -> Row:
    return Row(
        group=group,
        code=str(code),
        answer=answer,
        special=code in SPECIAL,
        estimate=_percent(cell.estimate),
        se=_percent(cell.se),
        ci_low=_percent(cell.ci_low),
        ci_high=_percent(cell.ci_high),
        n=cell.n,
        n_base=(base.n_base if base else cell.n_base) or 0,
        suppressed=cell.suppressed,
        reasons=tuple(texts.reasons.get(r, r) for r in cell.reasons),
        review=tuple(texts.review_flags.get(r, r) for r in cell.review),
        cell=cell,
        first_of_group=first,
    )


DOWNLOAD_COLUMNS = [
    "survey",
    "wave",
    "question",
    "question_text",
    "question_type",
    "breakdown",
    "group",
    "code",
    "answer",
    "share",
    "se",
    "ci_low",
    "ci_high",
    "n",
    "n_base",
    "suppressed",
    "suppression_reason",
    "review_flag",
]


def download_rows(
    summaries: WaveSummaries,
    *,
    survey: str,
    breakdown_label: str,
    language: str,
    texts: Texts,
) -> list[list[Any]]:
    """The page's tables as one table (DOWNLOAD_COLUMNS), shares as proportions."""
    out: list[list[Any]] = []
    for block in question_blocks(summaries, language=language, texts=texts):
        for row in block.rows:
            out.append(
                [
                    survey,
                    summaries.wave_code,
                    block.name,
                    block.text,
                    block.kind,
                    breakdown_label,
                    row.group,
                    int(row.code) if row.code.lstrip("-").isdigit() else row.code,
                    row.answer,
                    *(
                        (row.cell.estimate, row.cell.se, row.cell.ci_low, row.cell.ci_high)
                        if row.cell
                        else (None,) * 4
                    ),
                    row.n,
                    row.n_base,
                    int(row.suppressed),
                    "; ".join(row.reasons),
                    "; ".join(row.review),
                ]
            )
    return out
