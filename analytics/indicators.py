"""The informality indicators of the question bank, each declared once.

An indicator turns a columnar frame of answer codes (a mapping of column name to an
integer array, one row per interview; a pandas DataFrame works) into two float arrays:
the per-interview numerator and denominator. A row outside the denominator has NaN in
both, so the estimators drop it from the estimate but keep it in the design.

Code conventions (DOMAIN.md section 2): -1 don't know, -2 refused, -3 not applicable,
-9 not asked (also used here when an answer is absent from the stored interview).
Refusals, not applicable and not asked always leave the denominator. Don't know stays in
the denominator of perception items (P1, P2, R1), whose don't-know share is reported as
an indicator of its own (DK_*), and leaves the denominator of experience items.

Scales: proportions are stored as shares in 0..1 (``unit="share"``); the indices IEI,
ACCEPT and TRUST are on 0..100 (``unit="index"``).

The select-multiple question M is stored in the frame as the bit mask ``M_MASK``
(bit k-1 set when Mk was chosen; -9 when M was not answered). "Those asked M" are the
interviews with an answer to M: the questionnaire asks it exactly when E1 is 1 or 2 or E2
is 1, 2 or 3, and it is required there.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Literal

import numpy as np

from analytics.stats.indirect import (
    Term,
    crosswise_terms,
    forced_response_terms,
    list_experiment_terms,
    with_gap,
)

DK, REFUSED, NOT_APPLICABLE, NOT_ASKED = -1, -2, -3, -9

SPHERES: dict[str, dict[str, str]] = {
    "KG": {"kk": "балабақша", "ru": "детский сад", "en": "kindergarten place"},
    "SCH": {"kk": "мектеп", "ru": "школа", "en": "school"},
    "UNI": {"kk": "жоғары оқу орны", "ru": "вуз", "en": "university"},
    "MED": {"kk": "емдеу", "ru": "медицинская помощь", "en": "medical treatment"},
    "JOB": {"kk": "мемлекеттік жұмыс", "ru": "работа в госсекторе", "en": "public-sector job"},
    "POL": {"kk": "полиция", "ru": "полиция", "en": "police"},
    "CRT": {"kk": "сот", "ru": "суды", "en": "courts"},
    "DOC": {"kk": "құжаттар", "ru": "документы", "en": "documents and registration"},
    "LND": {"kk": "жер және тұрғын үй", "ru": "земля и жильё", "en": "land and housing"},
    "INF": {"kk": "ақпарат алу", "ru": "доступ к информации", "en": "access to information"},
    "BUS": {"kk": "бизнес", "ru": "бизнес", "en": "business permits and deals"},
}
MOTIVES: dict[int, dict[str, str]] = {
    1: {"kk": "амалсыздық", "ru": "не было другого выхода", "en": "forced, no other choice"},
    2: {
        "kk": "уақыт пен күш үнемдеу",
        "ru": "экономия времени и сил",
        "en": "saves time and effort",
    },
    3: {"kk": "жақсырақ қызмет", "ru": "лучшее обслуживание", "en": "better service"},
    4: {
        "kk": "ресми жолмен алынбайтын нәрсе",
        "ru": "недоступное официально",
        "en": "what cannot be obtained formally",
    },
    5: {"kk": "алғыс", "ru": "благодарность", "en": "gratitude"},
    6: {"kk": "талап етілді", "ru": "потребовали", "en": "was asked or demanded"},
    7: {"kk": "басқа себеп", "ru": "другая причина", "en": "other reason"},
}
TRUST_ITEMS = ["TR_GOV", "TR_CRT", "TR_POL", "TR_AKM", "TR_PAR", "TR_MED", "TR_NGO"]
ACCEPT_ITEMS = ["A1", "A2", "A3"]

Kind = Literal["proportion", "mean", "ratio"]
Frame = Mapping[str, np.ndarray]


def _col(frame: Frame, name: str) -> np.ndarray:
    return np.asarray(frame[name], dtype=np.int64)


def _among(x: np.ndarray, codes: Iterable[int]) -> np.ndarray:
    """``np.isin(x, codes)`` for a few answer codes, by comparisons (faster on big columns)."""
    out = np.zeros(x.shape, dtype=bool)
    for code in codes:
        out |= x == code
    return out


@dataclass(frozen=True)
class Indicator:
    """Base declaration: code, labels in kk/ru/en, kind, and the columns it reads."""

    code: str
    labels: dict[str, str]
    kind: Kind
    items: tuple[str, ...]
    group: str
    unit: Literal["share", "index"] = "share"
    numerator: str = ""
    denominator: str = ""

    def label(self, language: str = "kk") -> str:
        return self.labels.get(language) or self.labels["kk"]

    @property
    def publication_kind(self) -> str:
        """Which publication rules apply (`analytics.stats.publication`)."""
        return self.kind

    @property
    def bounded(self) -> bool:
        """True when an estimate outside [0, 1] is flagged (an indirect prevalence)."""
        return False

    def values(self, frame: Frame) -> tuple[np.ndarray, np.ndarray]:
        """Per-row numerator and denominator; NaN in both outside the denominator."""
        raise NotImplementedError

    def definition(self) -> dict[str, object]:
        """Everything that determines the numbers, for the definitions hash."""
        return {
            "code": self.code,
            "class": type(self).__name__,
            "kind": self.kind,
            "unit": self.unit,
            "items": list(self.items),
            **{k: sorted(v) if isinstance(v, frozenset) else v for k, v in self._rule().items()},
        }

    def _rule(self) -> dict[str, object]:
        return {}


@dataclass(frozen=True)
class Proportion(Indicator):
    """Share of interviews whose answer to ``items[0]`` is in ``yes`` among those whose
    answer is in ``valid`` (and, when ``condition`` is set, whose ``condition`` item
    equals 1: the filter question of a sphere)."""

    yes: frozenset[int] = frozenset()
    valid: frozenset[int] = frozenset()
    condition: str | None = None

    def values(self, frame: Frame) -> tuple[np.ndarray, np.ndarray]:
        x = _col(frame, self.items[0])
        inside = _among(x, self.valid)
        if self.condition is not None:
            inside &= _col(frame, self.condition) == 1
        num = np.where(inside, _among(x, self.yes).astype(float), np.nan)
        return num, np.where(inside, 1.0, np.nan)

    def _rule(self) -> dict[str, object]:
        return {"yes": self.yes, "valid": self.valid, "condition": self.condition}


@dataclass(frozen=True)
class AnyBribe12M(Indicator):
    """Household bribery in the last 12 months over all spheres (GCB-comparable).

    Denominator: at least one sphere contacted (C_s = 1). Numerator: B_s = 1 in some
    contacted sphere. A respondent with no B_s = 1 and some contacted sphere whose B_s is
    not a valid yes/no (don't know, refused) leaves the denominator: whether they paid
    is unknown.
    """

    def values(self, frame: Frame) -> tuple[np.ndarray, np.ndarray]:
        n = len(_col(frame, f"C_{next(iter(SPHERES))}"))
        contacted = np.zeros(n, dtype=bool)
        paid = np.zeros(n, dtype=bool)
        unknown = np.zeros(n, dtype=bool)
        for s in SPHERES:
            c = _col(frame, f"C_{s}") == 1
            b = _col(frame, f"B_{s}")
            contacted |= c
            paid |= c & (b == 1)
            unknown |= c & ~np.isin(b, [1, 2])
        inside = contacted & (paid | ~unknown)
        return np.where(inside, paid.astype(float), np.nan), np.where(inside, 1.0, np.nan)


@dataclass(frozen=True)
class Motive(Indicator):
    """Share citing motive k among those who answered M (bit k-1 of ``M_MASK``)."""

    motive: int = 1

    def values(self, frame: Frame) -> tuple[np.ndarray, np.ndarray]:
        mask = _col(frame, "M_MASK")
        inside = mask > 0
        chosen = ((np.where(inside, mask, 0) >> (self.motive - 1)) & 1).astype(float)
        return np.where(inside, chosen, np.nan), np.where(inside, 1.0, np.nan)

    def _rule(self) -> dict[str, object]:
        return {"motive": self.motive}


@dataclass(frozen=True)
class ExperienceIndex(Indicator):
    """IEI: spheres with an informal practice over spheres contacted, x 100 (ratio).

    Per interview: the denominator counts spheres with C_s = 1 and a valid answer to B_s
    (1, 2) or N_s (1, 2, 3); the numerator counts those with B_s = 1 or N_s in 1, 2.
    An interview with no such sphere leaves the estimate. The national IEI is the ratio
    of weighted totals (not a mean of per-person shares).
    """

    def values(self, frame: Frame) -> tuple[np.ndarray, np.ndarray]:
        n = len(_col(frame, f"C_{next(iter(SPHERES))}"))
        num = np.zeros(n)
        den = np.zeros(n)
        for s in SPHERES:
            c = _col(frame, f"C_{s}") == 1
            b = _col(frame, f"B_{s}")
            k = _col(frame, f"N_{s}")
            counted = c & (np.isin(b, [1, 2]) | np.isin(k, [1, 2, 3]))
            den += counted
            num += counted & ((b == 1) | np.isin(k, [1, 2]))
        inside = den > 0
        return np.where(inside, 100.0 * num, np.nan), np.where(inside, den, np.nan)


@dataclass(frozen=True)
class ItemIndex(Indicator):
    """Mean over valid items of recoded answers, per interview, then its weighted mean
    (0..100). Items whose code is not in ``recode`` (don't know, refused) are not valid;
    an interview with no valid item leaves the estimate."""

    recode: tuple[tuple[int, float], ...] = ()

    def values(self, frame: Frame) -> tuple[np.ndarray, np.ndarray]:
        table = dict(self.recode)
        total = None
        count = None
        for item in self.items:
            x = _col(frame, item)
            valid = _among(x, table)
            score = np.zeros(len(x))
            for code, value in table.items():
                score[x == code] = value
            total = score if total is None else total + score
            count = valid.astype(float) if count is None else count + valid
        assert total is not None and count is not None
        inside = count > 0
        with np.errstate(invalid="ignore", divide="ignore"):
            mean = 100.0 * total / count
        return np.where(inside, mean, np.nan), np.where(inside, 1.0, np.nan)

    def _rule(self) -> dict[str, object]:
        return {"recode": [list(p) for p in self.recode]}


@dataclass(frozen=True)
class Indirect(Indicator):
    """Prevalence of the sensitive item from an indirect design, or (``gap``) that prevalence
    minus the direct question's share, each a contrast of domain means on the full design
    (`analytics.stats.indirect`). No per-interview numerator exists: ``values`` leaves every
    row out, and the computation asks for :meth:`terms` instead.

    ``design`` is ``list`` (items: arm, control count, treatment count), ``rr`` (forced
    response, ``p_truth`` and ``p_yes``) or ``crosswise`` (``p_unrelated``); the parameters
    are the instrument's (its ``tanys_design`` column); a wave whose form declares others is
    estimated with its own (`analytics.indirect_cells.as_declared`). The direct question is
    ``direct``, whose ``direct_yes`` codes count among its ``direct_valid`` answers. Answers that are
    not valid (refused, not asked) leave the estimate; an arm other than 0 or 1 leaves too.
    """

    design: str = ""
    gap: bool = False
    parameters: tuple[tuple[str, float], ...] = ()
    direct: str = ""
    direct_yes: frozenset[int] = frozenset()
    direct_valid: frozenset[int] = frozenset()

    @property
    def publication_kind(self) -> str:
        # A gap is a difference: its relative standard error says nothing about its precision.
        return "difference" if self.gap else "mean"

    @property
    def bounded(self) -> bool:
        """A prevalence lies in [0, 1]; an estimate outside is reported as is and flagged."""
        return not self.gap

    def values(self, frame: Frame) -> tuple[np.ndarray, np.ndarray]:
        n = len(_col(frame, self.items[0]))
        empty = np.full(n, np.nan)
        return empty, empty.copy()

    def terms(self, frame: Frame, domain: np.ndarray | None = None) -> tuple[list[Term], float]:
        parameters = dict(self.parameters)
        if self.design == "list":
            arm, control, treated = (_col(frame, c) for c in self.items[:3])
            count = np.where(arm == 1, treated, np.where(arm == 0, control, -9)).astype(float)
            count[count < 0] = np.nan
            terms = list_experiment_terms(count, arm == 1, domain)
        else:
            answer = _col(frame, self.items[0])
            yes = np.where(np.isin(answer, [1, 2]), (answer == 1).astype(float), np.nan)
            if self.design == "rr":
                terms = forced_response_terms(
                    yes, p_truth=parameters["p_truth"], p_yes=parameters["p_yes"], domain=domain
                )
            else:
                terms = crosswise_terms(yes, p_unrelated=parameters["p_unrelated"], domain=domain)
        if not self.gap:
            return terms
        direct = _col(frame, self.direct)
        share = np.where(
            np.isin(direct, list(self.direct_valid)),
            np.isin(direct, list(self.direct_yes)).astype(float),
            np.nan,
        )
        return with_gap(terms, share, domain)

    def _rule(self) -> dict[str, object]:
        return {
            "design": self.design,
            "gap": self.gap,
            "parameters": [list(p) for p in self.parameters],
            "direct": self.direct,
            "direct_yes": self.direct_yes,
            "direct_valid": self.direct_valid,
        }


# The instrument's indirect designs for personal bribery in the last 12 months (E1 = 1).
INDIRECT_DESIGNS: dict[
    str, tuple[tuple[str, ...], tuple[tuple[str, float], ...], dict[str, str]]
] = {
    "list": (
        ("LE_ARM", "LE_C", "LE_T"),
        (),
        {"kk": "тізімдік эксперимент", "ru": "списочный эксперимент", "en": "list experiment"},
    ),
    "rr": (
        ("RR_E1",),
        (("p_truth", 0.7), ("p_yes", 0.2)),
        {
            "kk": "кездейсоқ жауап әдісі",
            "ru": "метод рандомизированного ответа",
            "en": "randomized response",
        },
    ),
    "crosswise": (
        ("CW_E1",),
        (("p_unrelated", 0.25),),
        {"kk": "айқаспалы модель", "ru": "перекрёстная модель", "en": "crosswise model"},
    ),
}


def _indirect() -> list[Indicator]:
    out: list[Indicator] = []
    for design, (items, parameters, name) in INDIRECT_DESIGNS.items():
        code = {"list": "LIST", "rr": "RR", "crosswise": "CW"}[design]
        common = {
            "design": design,
            "parameters": parameters,
            "direct": "E1",
            "direct_yes": frozenset({1}),
            "direct_valid": frozenset({1, 2, 3}),
        }
        out.append(
            Indirect(
                f"INDIRECT_BRIBE_12M_{code}",
                _labels(
                    f"Соңғы 12 айда пара бергендер ({name['kk']})",
                    f"Давали взятку за последние 12 месяцев ({name['ru']})",
                    f"Gave a bribe in the last 12 months ({name['en']})",
                ),
                "mean",
                items,
                "indirect",
                numerator=f"prevalence estimated from {', '.join(items)} ({name['en']})",
                denominator=f"valid answers to {', '.join(items)}",
                **common,  # type: ignore[arg-type]
            )
        )
        out.append(
            Indirect(
                f"GAP_BRIBE_12M_{code}",
                _labels(
                    f"Тікелей сұрақтағы жасырылған үлес: {name['kk']} минус E1",
                    f"Недооценка в прямом вопросе: {name['ru']} минус E1",
                    f"Under-reporting gap: {name['en']} minus direct E1",
                ),
                "mean",
                (*items, "E1"),
                "indirect",
                numerator=f"{name['en']} estimate minus the share with E1 = 1",
                denominator="valid answers to each; the SE from their joint linearisation",
                gap=True,
                **common,  # type: ignore[arg-type]
            )
        )
    return out


def _labels(kk: str, ru: str, en: str) -> dict[str, str]:
    return {"kk": kk, "ru": ru, "en": en}


WIDESPREAD_VALID = frozenset({1, 2, 3, 4, DK})


def _declare() -> list[Indicator]:
    out: list[Indicator] = [
        Proportion(
            "PERC_BRIBE",
            _labels(
                "Пара кең таралған деп санайтындар",
                "Считают взяточничество распространённым",
                "Bribery perceived as widespread",
            ),
            "proportion",
            ("P1",),
            "perception",
            numerator="P1 in 1,2",
            denominator="P1 in 1-4 or don't know",
            yes=frozenset({1, 2}),
            valid=WIDESPREAD_VALID,
        ),
        Proportion(
            "PERC_CONN",
            _labels(
                "Таныс-тамыр кең таралған деп санайтындар",
                "Считают использование связей распространённым",
                "Use of connections perceived as widespread",
            ),
            "proportion",
            ("P2",),
            "perception",
            numerator="P2 in 1,2",
            denominator="P2 in 1-4 or don't know",
            yes=frozenset({1, 2}),
            valid=WIDESPREAD_VALID,
        ),
        Proportion(
            "DK_PERC_BRIBE",
            _labels(
                "Пара туралы сұраққа «білмеймін» деп жауап бергендер",
                "Затруднились ответить о распространённости взяток",
                "Don't know: how widespread bribery is",
            ),
            "proportion",
            ("P1",),
            "perception",
            numerator="P1 = don't know",
            denominator="P1 in 1-4 or don't know",
            yes=frozenset({DK}),
            valid=WIDESPREAD_VALID,
        ),
        Proportion(
            "DK_PERC_CONN",
            _labels(
                "Таныс-тамыр туралы сұраққа «білмеймін» деп жауап бергендер",
                "Затруднились ответить о распространённости связей",
                "Don't know: how widespread connections are",
            ),
            "proportion",
            ("P2",),
            "perception",
            numerator="P2 = don't know",
            denominator="P2 in 1-4 or don't know",
            yes=frozenset({DK}),
            valid=WIDESPREAD_VALID,
        ),
        Proportion(
            "EXP_BRIBE_EVER",
            _labels(
                "Өз басынан пара беру тәжірибесі",
                "Личный опыт дачи взятки",
                "Personal experience of bribery",
            ),
            "proportion",
            ("E1",),
            "experience",
            numerator="E1 in 1,2",
            denominator="E1 in 1-3",
            yes=frozenset({1, 2}),
            valid=frozenset({1, 2, 3}),
        ),
        AnyBribe12M(
            "EXP_BRIBE_12M",
            _labels(
                "Үй шаруашылығының соңғы 12 айдағы пара тәжірибесі",
                "Взятки в домохозяйстве за последние 12 месяцев",
                "Household bribery in the last 12 months",
            ),
            "proportion",
            tuple(f"{p}_{s}" for s in SPHERES for p in ("C", "B")),
            "experience",
            numerator="any B_s = 1",
            denominator="at least one C_s = 1 (B_s known)",
        ),
    ]
    for s, name in SPHERES.items():
        out.append(
            Proportion(
                f"BRIBE_RATE_{s}",
                _labels(
                    f"Пара беру деңгейі: {name['kk']}",
                    f"Уровень взяток: {name['ru']}",
                    f"Bribery rate: {name['en']}",
                ),
                "proportion",
                (f"B_{s}", f"C_{s}"),
                "spheres",
                numerator=f"B_{s} = 1",
                denominator=f"C_{s} = 1 and B_{s} in 1,2",
                yes=frozenset({1}),
                valid=frozenset({1, 2}),
                condition=f"C_{s}",
            )
        )
    out.append(
        Proportion(
            "NET_EVER",
            _labels(
                "Таныс-тамырды қолданғандар",
                "Использовали личные связи",
                "Ever used personal networks",
            ),
            "proportion",
            ("E2",),
            "experience",
            numerator="E2 in 1,2,3",
            denominator="E2 in 1-4",
            yes=frozenset({1, 2, 3}),
            valid=frozenset({1, 2, 3, 4}),
        )
    )
    out.append(
        Proportion(
            "NET_MONETISED",
            _labels(
                "Таныс-тамырдың ақшаға айналуы",
                "Монетизация использования связей",
                "Monetisation of network use",
            ),
            "proportion",
            ("E2",),
            "experience",
            numerator="E2 in 1,3",
            denominator="E2 in 1,2,3",
            yes=frozenset({1, 3}),
            valid=frozenset({1, 2, 3}),
        )
    )
    for s, name in SPHERES.items():
        out.append(
            Proportion(
                f"NET_RATE_{s}",
                _labels(
                    f"Таныс-тамыр қолдану: {name['kk']}",
                    f"Использование связей: {name['ru']}",
                    f"Use of connections: {name['en']}",
                ),
                "proportion",
                (f"N_{s}", f"C_{s}"),
                "spheres",
                numerator=f"N_{s} in 1,2",
                denominator=f"C_{s} = 1 and N_{s} in 1,2,3",
                yes=frozenset({1, 2}),
                valid=frozenset({1, 2, 3}),
                condition=f"C_{s}",
            )
        )
    for k, name in MOTIVES.items():
        out.append(
            Motive(
                f"MOTIVE_{k}",
                _labels(f"Себеп: {name['kk']}", f"Мотив: {name['ru']}", f"Motive: {name['en']}"),
                "proportion",
                ("M_MASK",),
                "motives",
                numerator=f"M{k} selected",
                denominator="M answered",
                motive=k,
            )
        )
    out += [
        Proportion(
            "REPRODUCING",
            _labels(
                "Бейресми тәжірибені тұрақты құбылыс деп санайтындар",
                "Считают неформальные практики самовоспроизводящимися",
                "Informality seen as self-reproducing",
            ),
            "proportion",
            ("R1",),
            "perception",
            numerator="R1 = 2",
            denominator="R1 in 1-3 or don't know",
            yes=frozenset({2}),
            valid=frozenset({1, 2, 3, DK}),
        ),
        Proportion(
            "DK_REPRODUCING",
            _labels(
                "Бейресми тәжірибе туралы «білмеймін» деп жауап бергендер",
                "Затруднились ответить о природе неформальных практик",
                "Don't know: nature of informality",
            ),
            "proportion",
            ("R1",),
            "perception",
            numerator="R1 = don't know",
            denominator="R1 in 1-3 or don't know",
            yes=frozenset({DK}),
            valid=frozenset({1, 2, 3, DK}),
        ),
        ExperienceIndex(
            "IEI",
            _labels(
                "Бейресми тәжірибе индексі (0-100)",
                "Индекс неформального опыта (0-100)",
                "Informality experience index (0-100)",
            ),
            "ratio",
            tuple(f"{p}_{s}" for s in SPHERES for p in ("C", "B", "N")),
            "indices",
            unit="index",
            numerator="spheres with B_s = 1 or N_s in 1,2",
            denominator="spheres contacted (with B_s or N_s known)",
        ),
        ItemIndex(
            "ACCEPT",
            _labels(
                "Бейресми тәжірибені қабылдау индексі (0-100)",
                "Индекс приемлемости неформальных практик (0-100)",
                "Acceptance index (0-100)",
            ),
            "mean",
            tuple(ACCEPT_ITEMS),
            "indices",
            unit="index",
            numerator="mean of A1-A3: always 1, sometimes 0.5, never 0",
            denominator="valid items (don't know and refusals leave)",
            recode=((1, 1.0), (2, 0.5), (3, 0.0)),
        ),
        ItemIndex(
            "TRUST",
            _labels(
                "Ресми институттарға сенім индексі (0-100)",
                "Индекс доверия формальным институтам (0-100)",
                "Trust in formal institutions (0-100)",
            ),
            "mean",
            tuple(TRUST_ITEMS),
            "indices",
            unit="index",
            numerator="mean of TR_i: fully 1, rather 2/3, rather not 1/3, not at all 0",
            denominator="valid items (don't know and refusals leave)",
            recode=((1, 1.0), (2, 2 / 3), (3, 1 / 3), (4, 0.0)),
        ),
        *_indirect(),
    ]
    return out


INDICATORS: list[Indicator] = _declare()
BY_CODE: dict[str, Indicator] = {i.code: i for i in INDICATORS}
assert len(BY_CODE) == len(INDICATORS), "indicator codes must be unique"

# Columns of the snapshot frame the indicators read (M_MASK stands for M).
ITEM_COLUMNS: list[str] = sorted({c for i in INDICATORS for c in i.items})

# Bump when the computation itself changes in a way that alters stored numbers.
COMPUTATION_VERSION = 2  # 2: breakdown cells (analytics.breakdown_cells)


def definitions_hash(indicators: list[Indicator] | None = None) -> str:
    """A fingerprint of every declaration; a change triggers recomputation of all waves."""
    payload = {
        "computation": COMPUTATION_VERSION,
        "indicators": [i.definition() for i in (indicators or INDICATORS)],
    }
    blob = json.dumps(payload, sort_keys=True, default=list).encode()
    return hashlib.sha256(blob).hexdigest()[:16]


@dataclass
class IndicatorValues:
    """Numerator/denominator arrays of one indicator, with unweighted counts helpers."""

    indicator: Indicator
    num: np.ndarray
    den: np.ndarray
    in_numerator: np.ndarray = field(init=False)

    def __post_init__(self) -> None:
        self.in_numerator = np.nan_to_num(self.num) > 0


def evaluate(frame: Frame, indicators: list[Indicator] | None = None) -> list[IndicatorValues]:
    return [IndicatorValues(i, *i.values(frame)) for i in (indicators or INDICATORS)]
