"""The variables of a microdata export and the codebook that documents them.

One variable list serves every export format, so a CSV, an XLSX, an SPSS and a Stata file
of the same selection have the same columns in the same order, and the codebook describes
exactly those columns.

Questions are merged across the survey's questionnaire versions by name: the newest version
that asks a question gives its wording, order and type (a question's type never changes
between versions, `surveys.services.import_xlsform` refuses that), and the choice codes of
all versions are united, so an old interview keeps the meaning of its codes.

Disclosure policy (what a microdata file never holds):
- direct identifiers: device ids, enumerator accounts (an enumerator appears only as a
  number that is meaningless outside the file), names, phone numbers, e-mail addresses;
- free-text answers (`text` questions such as "other, please specify": M_OTHER, R1_OTHER),
  which can name people, places or employers. They are listed in the codebook as withheld.
  The coded answer ("other") stays in the file.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from surveys.definition import (
    INTERFACE_LANGUAGES,
    VALUE_TYPES,
    iter_questions,
    stored_choice_value,
)
from surveys.expression_syntax import expression_text
from surveys.models import FormVersion, Region, Wave
from surveys.regions import region_number

LANGUAGES = INTERFACE_LANGUAGES

# The special codes of the question bank, one scheme for every question and wave.
NOT_APPLICABLE = -3
NOT_ASKED = -9
SPECIAL_CODES: dict[int, dict[str, str]] = {
    -1: {"kk": "Білмеймін", "ru": "Не знаю", "en": "Don't know"},
    -2: {"kk": "Жауап беруден бас тартты", "ru": "Отказ от ответа", "en": "Refused"},
    -3: {
        "kk": "Қолданылмайды (сұрақ өткізіліп жіберілді)",
        "ru": "Неприменимо (пропуск по маршруту)",
        "en": "Not applicable (skipped by design)",
    },
    -9: {
        "kk": "Сұрақ қойылмаған (сауалнаманың бұл нұсқасында жоқ)",
        "ru": "Вопрос не задавался (нет в этой версии анкеты)",
        "en": "Not asked (not in this questionnaire version)",
    },
}
SELECTED = {
    0: {"kk": "Таңдалмаған", "ru": "Не выбрано", "en": "Not selected"},
    1: {"kk": "Таңдалған", "ru": "Выбрано", "en": "Selected"},
}
# Free-text answers are withheld (see the module docstring).
WITHHELD_TYPES = {"text"}
STATA_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]{0,31}$")
STATA_LABEL_MAX = 80  # characters
SPSS_LABEL_MAX_BYTES = 255  # UTF-8 bytes


def fit_label(text: str, *, max_chars: int | None = None, max_bytes: int | None = None) -> str:
    """Shorten a label to a format's limit, ending in an ellipsis so the cut is visible."""

    def fits(candidate: str) -> bool:
        return (max_chars is None or len(candidate) <= max_chars) and (
            max_bytes is None or len(candidate.encode("utf-8")) <= max_bytes
        )

    if fits(text):
        return text
    cut = len(text)
    while cut and not fits(text[:cut].rstrip() + "…"):
        cut -= 1
    return text[:cut].rstrip() + "…"


@dataclass(frozen=True)
class Variable:
    """One column of a microdata export.

    storage: "int" (integer codes, special codes included), "float", "string" or "datetime".
    source: the answers key (questions) or the Submission field (design and paradata).
    option: for a select_multiple indicator column, the choice it indicates.
    recode: text values stored under these numbers (region codes, channels, a select_one
      with text choice names), so every coded variable is a number with value labels in
      every format; the source keeps its text, `batches` applies the recoding.
    measure: SPSS's measurement level, "nominal", "ordinal" or "scale".
    """

    name: str
    source: str
    kind: str
    storage: str
    labels: dict[str, str]
    value_labels: dict[Any, dict[str, str]] = field(default_factory=dict)
    option: str | None = None
    versions: tuple[str, ...] = ()
    note: dict[str, str] = field(default_factory=dict)
    recode: dict[str, int] = field(default_factory=dict)
    measure: str = "nominal"

    @property
    def categorical(self) -> bool:
        """Codes that stand for words: shown as labels in a labelled file. Numbers (counts,
        years, calculations, 0/1 indicators of a select_multiple option, the ordered
        wave numbers) stay numbers."""
        if self.kind in {"design", "paradata"}:
            return bool(self.value_labels) and self.measure == "nominal"
        return self.kind == "select_one"

    def label(self, language: str) -> str:
        return self.labels.get(language) or self.labels.get("en") or self.name

    def value_label(self, code: Any, language: str) -> str | None:
        texts = self.value_labels.get(code)
        if texts is None:
            return None
        return texts.get(language) or texts.get("en") or str(code)


def _texts(en: str, ru: str, kk: str) -> dict[str, str]:
    return {"kk": kk, "ru": ru, "en": en}


# Design fields and paradata, in the order they lead every export.
DESIGN_VARIABLES: list[Variable] = [
    Variable(
        "interview_id",
        "instance_id",
        "design",
        "string",
        _texts(
            "Interview identifier (random)",
            "Идентификатор интервью (случайный)",
            "Сұхбат идентификаторы (кездейсоқ)",
        ),
    ),
    Variable("wave", "wave__code", "design", "string", _texts("Wave", "Волна", "Толқын")),
    Variable(
        "form_version",
        "form_version__version",
        "design",
        "string",
        _texts("Questionnaire version", "Версия анкеты", "Сауалнама нұсқасы"),
    ),
    Variable(
        "geography",
        "wave__geography",
        "design",
        "int",
        _texts("Geography of the region codes", "Административное деление", "Әкімшілік бөлініс"),
        {
            2013: _texts(
                "2013 geography (16 units)",
                "Деление 2013 года (16 единиц)",
                "2013 жылғы бөлініс (16 бірлік)",
            ),
            2022: _texts(
                "Current geography (20 units)",
                "Современное деление (20 единиц)",
                "Қазіргі бөлініс (20 бірлік)",
            ),
        },
        recode={"KZ2013": 2013, "KZ2022": 2022},
    ),
    Variable(
        "region",
        "region__code",
        "design",
        "int",
        _texts("Region (KATO number)", "Регион (код КАТО)", "Өңір (ҚАТО коды)"),
    ),
    Variable(
        "urban_rural",
        "urban_rural",
        "design",
        "int",
        _texts("Urban or rural", "Город или село", "Қала немесе ауыл"),
        {
            1: _texts("Urban", "Город", "Қала"),
            2: _texts("Rural", "Село", "Ауыл"),
        },
    ),
    Variable("stratum", "stratum", "design", "string", _texts("Stratum", "Страта", "Страта")),
    Variable(
        "psu",
        "psu",
        "design",
        "string",
        _texts("Primary sampling unit", "Первичная единица отбора", "Іріктеудің бастапқы бірлігі"),
    ),
    Variable(
        "weight",
        "weight",
        "design",
        "float",
        _texts("Design weight", "Вес наблюдения", "Бақылау салмағы"),
        measure="scale",
    ),
    Variable(
        "channel",
        "channel",
        "paradata",
        "int",
        _texts("Data collection channel", "Способ сбора данных", "Деректер жинау тәсілі"),
        {
            1: _texts("Web (self-completion)", "Веб (самозаполнение)", "Веб (өзі толтырады)"),
            2: _texts("Tablet interview", "Интервью с планшетом", "Планшетпен сұхбат"),
            3: _texts("ODK client", "Клиент ODK", "ODK клиенті"),
        },
        recode={"web": 1, "tablet": 2, "odk": 3},
    ),
    Variable(
        "language",
        "language",
        "paradata",
        "int",
        _texts("Interview language", "Язык интервью", "Сұхбат тілі"),
        {
            1: _texts("Kazakh", "Казахский", "Қазақ тілі"),
            2: _texts("Russian", "Русский", "Орыс тілі"),
            3: _texts("English", "Английский", "Ағылшын тілі"),
        },
        recode={"kk": 1, "ru": 2, "en": 3},
    ),
    Variable(
        "enumerator",
        "enumerator_id",
        "paradata",
        "int",
        _texts(
            "Enumerator number (meaningful only within this file; 0 = self-completed)",
            "Номер интервьюера (имеет смысл только внутри файла; 0 = самозаполнение)",
            "Интервьюер нөмірі (тек осы файлда мағынасы бар; 0 = өзі толтырған)",
        ),
    ),
    Variable(
        "started_at",
        "started_at",
        "paradata",
        "datetime",
        _texts("Interview started (UTC)", "Начало интервью (UTC)", "Сұхбат басталды (UTC)"),
        measure="scale",
    ),
    Variable(
        "ended_at",
        "ended_at",
        "paradata",
        "datetime",
        _texts("Interview ended (UTC)", "Окончание интервью (UTC)", "Сұхбат аяқталды (UTC)"),
        measure="scale",
    ),
    Variable(
        "duration_seconds",
        "duration_seconds",
        "paradata",
        "int",
        _texts(
            "Interview duration, seconds",
            "Длительность интервью, секунд",
            "Сұхбат ұзақтығы, секунд",
        ),
        measure="scale",
    ),
    Variable(
        "synthetic",
        "is_synthetic",
        "paradata",
        "int",
        _texts(
            "Synthetic demonstration record (not real data)",
            "Синтетическая демонстрационная запись (не реальные данные)",
            "Синтетикалық демо жазба (нақты дерек емес)",
        ),
        {0: _texts("No", "Нет", "Жоқ"), 1: _texts("Yes", "Да", "Иә")},
    ),
]

WITHHELD_NOTE = _texts(
    "Withheld: free text can identify a respondent.",
    "Не выдаётся: свободный текст может раскрыть личность респондента.",
    "Берілмейді: еркін мәтін респондентті анықтауы мүмкін.",
)


@dataclass
class Codebook:
    variables: list[Variable]
    withheld: list[Variable]
    versions: list[str]

    @property
    def question_variables(self) -> list[Variable]:
        return [v for v in self.variables if v.kind not in {"design", "paradata"}]


def design_note(design: dict[str, Any]) -> dict[str, str]:
    """What an indirect design's variable is (the XLSForm's ``tanys_design``), for the codebook."""
    role = (design.get("design"), design.get("role"))
    if role == ("list", "assign"):
        balanced = design.get("balanced")
        return _texts(
            "List experiment: the random arm, 0 control (sees the non-sensitive items), 1 treatment "
            "(sees them and the sensitive one); drawn once per interview and kept"
            + (
                "; balanced: on the web form by the server, in permuted blocks of four per wave "
                "(over draws, so interviews not completed unbalance the stored arms slightly); "
                "in the tablet app in blocks of two per device; in ODK Collect a plain draw."
                if balanced
                else "."
            ),
            "Списочный эксперимент: случайная группа, 0 контрольная (видит нечувствительные пункты), "
            "1 экспериментальная (видит их и чувствительный); выбирается один раз на интервью и "
            "сохраняется"
            + (
                "; поровну: в веб-анкете сервером, в случайно переставленных блоках по четыре на "
                "волну (по выдачам, поэтому незавершённые интервью немного нарушают равенство "
                "сохранённых групп); в планшетном приложении в блоках по два на устройстве; в ODK "
                "Collect простой случайный выбор."
                if balanced
                else "."
            ),
            "Тізімдік эксперимент: кездейсоқ топ, 0 бақылау (сезімтал емес тармақтарды көреді), "
            "1 эксперимент (оларды және сезімтал тармақты көреді); әр сұхбатта бір рет таңдалып, "
            "сақталады"
            + (
                "; тең бөлінеді: веб-сауалнамада сервер әр толқынға кездейсоқ реттелген төрттен "
                "блоктармен бөледі (берілген таңдаулар бойынша, сондықтан аяқталмаған сұхбаттар "
                "сақталған топтардың теңдігін сәл бұзады); планшет қосымшасында әр құрылғыда "
                "екіден блоктармен; ODK Collect-те қарапайым кездейсоқ таңдау."
                if balanced
                else "."
            ),
        )
    if role == ("list", "control"):
        items = design.get("items")
        return _texts(
            f"List experiment, control arm (asked when the arm is 0): how many of {items} "
            "non-sensitive items apply.",
            f"Списочный эксперимент, контрольная группа (если группа 0): сколько из {items} "
            "нечувствительных пунктов верно.",
            f"Тізімдік эксперимент, бақылау тобы (топ 0 болса): {items} сезімтал емес тармақтың "
            "нешеуі сәйкес келеді.",
        )
    if role == ("list", "treatment"):
        return _texts(
            "List experiment, treatment arm (asked when the arm is 1): how many of the items apply, "
            "the sensitive one included. Prevalence = mean here minus mean of the control count.",
            "Списочный эксперимент, экспериментальная группа (если группа 1): сколько пунктов верно, "
            "включая чувствительный. Распространённость = среднее здесь минус среднее контрольной.",
            "Тізімдік эксперимент, эксперимент тобы (топ 1 болса): сезімтал тармақты қоса алғанда, "
            "нешеуі сәйкес келеді. Таралуы = осындағы орташа минус бақылау тобының орташасы.",
        )
    if role == ("rr", "answer"):
        p, q = design.get("p"), design.get("q")
        return _texts(
            f"Forced randomized response: truthful with probability {p}, 'yes' regardless with "
            f"probability {q}. Prevalence = (share of yes - {q}) / {p}.",
            f"Рандомизированный ответ с принуждением: правдиво с вероятностью {p}, «да» в любом "
            f"случае с вероятностью {q}. Распространённость = (доля «да» - {q}) / {p}.",
            f"Мәжбүрлі кездейсоқ жауап: {p} ықтималдықпен шын, {q} ықтималдықпен кез келген "
            f"жағдайда «иә». Таралуы = («иә» үлесі - {q}) / {p}.",
        )
    if role == ("crosswise", "answer"):
        r = design.get("r")
        return _texts(
            "Crosswise model: 1 the same answer to the sensitive item and to an unrelated one of "
            f"known prevalence {r}, 2 different. Prevalence = (share of 1 + {r} - 1) / (2 x {r} - 1).",
            "Перекрёстная модель: 1 одинаковый ответ на чувствительный вопрос и на несвязанный с "
            f"известной распространённостью {r}, 2 разный. Распространённость = (доля 1 + {r} - 1) "
            f"/ (2 x {r} - 1).",
            "Айқаспалы модель: 1 сезімтал сұраққа және таралуы белгілі ({r}) байланыссыз сұраққа "
            f"жауап бірдей, 2 әртүрлі. Таралуы = (1 үлесі + {r} - 1) / (2 x {r} - 1).",
        )
    return {}


ARM_LABELS: dict[Any, dict[str, str]] = {
    0: _texts("control", "контрольная", "бақылау"),
    1: _texts("treatment", "экспериментальная", "эксперимент"),
}


def _storage(question: dict[str, Any], codes: Iterable[Any]) -> str:
    kind = question["type"]
    if kind == "select_one":
        return "int" if all(isinstance(c, int) for c in codes) else "string"
    if kind == "integer":
        return "int"
    if kind in {"decimal", "calculate"}:
        return "float"
    return "string"


def _region_codes() -> tuple[dict[str, int], dict[Any, dict[str, str]]]:
    """Every region code of both geographies to its number, and each number's names
    (the current unit's where a number exists in both geographies: the same name)."""
    recode: dict[str, int] = {}
    labels: dict[Any, dict[str, str]] = {}
    for region in Region.objects.order_by("-geography", "code"):  # KZ2022 first
        number = region_number(region.code)
        if number is not None:
            recode[region.code] = number
            labels.setdefault(number, _texts(region.name_en, region.name_ru, region.name_kk))
    return recode, labels


def _wave_variable(waves: Iterable[Wave] | None) -> Variable:
    """Waves whose codes are years or numbers are numbers (ordered, titled by value
    labels); other codes stay text."""
    base = DESIGN_VARIABLES[1]
    waves = sorted(waves or [], key=lambda w: w.pk)
    if not waves or not all(w.code.isdigit() for w in waves):
        return base
    return replace(
        base,
        storage="int",
        recode={w.code: int(w.code) for w in waves},
        value_labels={
            int(w.code): {language: w.translated_title(language) for language in LANGUAGES}
            for w in waves
        },
        measure="ordinal",
    )


CALCULATED = _texts("calculated", "вычисляется", "есептеледі")


def _calculated_labels(question: dict[str, Any]) -> dict[str, str]:
    """A calculation without a label of its own is described by its formula."""
    formula = expression_text(question.get("calculation"))
    return {
        language: f"{question['name']} ({CALCULATED[language]}: {formula})" if formula else ""
        for language in LANGUAGES
    }


def _measure(question: dict[str, Any]) -> str:
    """SPSS's level from the question type: answers to choose are nominal (ordinal when
    the form shows them as a scale, appearance "likert"), numbers are scale."""
    if question["type"] in {"integer", "decimal", "calculate"}:
        return "scale"
    if question["type"] == "select_one" and "likert" in question.get("appearance", ""):
        return "ordinal"
    return "nominal"


def _text_codes(
    codes: dict[Any, dict[str, str]],
    regions: tuple[dict[str, int], dict[Any, dict[str, str]]],
) -> tuple[dict[str, int], dict[Any, dict[str, str]]]:
    """Numbers for a select_one whose choice names are text: region codes their region
    numbers (with every region's name, so a 2013 answer such as KZ-ALM is labelled too),
    other names 1, 2, ... in choice order. Special codes keep their own numbers."""
    region_recode, region_labels = regions
    recode: dict[str, int] = {str(code): code for code in SPECIAL_CODES}
    labels: dict[Any, dict[str, str]] = dict(SPECIAL_CODES)
    names = [code for code in codes if not isinstance(code, int)]
    if names and all(name in region_recode for name in names):
        recode.update(region_recode)
        labels.update(region_labels)
    for code, texts in codes.items():
        if isinstance(code, int):
            recode[str(code)] = code
            labels[code] = texts
        elif code not in recode:
            number = max([n for n in recode.values() if n > 0] or [0]) + 1
            recode[code] = number
            labels[number] = texts
    return recode, labels


def build_codebook(
    form_versions: Iterable[FormVersion], waves: Iterable[Wave] | None = None
) -> Codebook:
    """The export variables of these questionnaire versions, merged by question name.

    `waves`, the waves exported, decide whether the wave is a number (see `_wave_variable`).
    """
    versions = sorted(form_versions, key=lambda fv: (fv.created_at, fv.pk))
    merged: dict[str, dict[str, Any]] = {}
    order: dict[str, tuple[int, int]] = {}
    present: dict[str, list[str]] = {}
    choices: dict[str, dict[Any, dict[str, str]]] = {}
    newest = len(versions) - 1
    for rank, version in enumerate(versions):
        for position, question in enumerate(iter_questions(version.definition)):
            if question["type"] not in VALUE_TYPES:
                continue
            name = question["name"]
            merged[name] = question  # newer versions overwrite wording
            # Questions of the newest version come first, in its order; questions that only
            # older versions ask follow, in the order they were last asked.
            order[name] = (0 if rank == newest else 1, position)
            present.setdefault(name, []).append(version.version)
            list_name = question.get("list_name")
            if list_name:
                bucket = choices.setdefault(name, {})
                for choice in version.definition["choices"].get(list_name, []):
                    bucket[stored_choice_value(choice["name"])] = dict(choice.get("label") or {})
    regions = _region_codes()
    variables = [
        _wave_variable(waves)
        if variable.name == "wave"
        else replace(variable, recode=regions[0], value_labels=regions[1])
        if variable.name == "region"
        else variable
        for variable in DESIGN_VARIABLES
    ]
    withheld: list[Variable] = []
    for name in sorted(merged, key=lambda n: order[n]):
        question = merged[name]
        labels = {lang: text for lang, text in (question.get("label") or {}).items() if text}
        assigns = (question.get("design") or {}).get("role") == "assign"
        if not labels and question["type"] == "calculate" and not assigns:
            labels = _calculated_labels(question)
        codes = choices.get(name, {})
        kind = question["type"]
        if kind in WITHHELD_TYPES:
            withheld.append(
                Variable(
                    name,
                    name,
                    kind,
                    "string",
                    labels,
                    versions=tuple(present[name]),
                    note=WITHHELD_NOTE,
                )
            )
            continue
        if kind == "select_multiple":
            for option, option_labels in codes.items():
                column = f"{name}_{option}"
                variables.append(
                    Variable(
                        column,
                        name,
                        "select_multiple_option",
                        "int",
                        {
                            lang: f"{labels.get(lang, name)}: {option_labels.get(lang, option)}"
                            for lang in LANGUAGES
                        },
                        {**SELECTED, **SPECIAL_CODES},
                        option=str(option),
                        versions=tuple(present[name]),
                    )
                )
            continue
        storage = _storage(question, codes)
        value_labels: dict[Any, dict[str, str]] = {}
        recode: dict[str, int] = {}
        if kind == "select_one" and storage == "string":
            storage = "int"
            recode, value_labels = _text_codes(codes, regions)
        elif storage in {"int", "float"}:
            value_labels.update(SPECIAL_CODES)
            value_labels.update(codes)
        else:
            value_labels.update({str(code): texts for code, texts in SPECIAL_CODES.items()})
            value_labels.update(codes)
        design = question.get("design") or {}
        if design.get("role") == "assign":
            value_labels.update(ARM_LABELS)
            labels = labels or _texts(
                "List experiment arm", "Группа списочного эксперимента", "Тізімдік эксперимент тобы"
            )
        variables.append(
            Variable(
                name,
                name,
                kind,
                storage,
                labels,
                value_labels,
                versions=tuple(present[name]),
                recode=recode,
                measure="nominal" if design.get("role") == "assign" else _measure(question),
                note=design_note(design) if design else {},
            )
        )
    variables = [
        _derived_text(v) if not merged.get(v.source, {}).get("label") else v for v in variables
    ]
    for variable in variables:
        if not STATA_NAME.match(variable.name):
            raise ValueError(
                f"variable name '{variable.name}' cannot be written to Stata or SPSS "
                "(letters, digits and _ only, at most 32 characters)"
            )
    return Codebook(variables=variables, withheld=withheld, versions=[v.version for v in versions])


# Variables the questionnaire calculates without a text of its own: their text and how
# they are derived, so the codebook and the files describe them like any question.
DERIVED_TEXTS: dict[str, tuple[dict[str, str], dict[str, str]]] = {
    "AGE": (
        _texts("Age, completed years", "Возраст, полных лет", "Жасы, толық жыл"),
        _texts(
            "Derived: the year of the interview minus the year of birth (BIRTH_YEAR).",
            "Вычисляется: год интервью минус год рождения (BIRTH_YEAR).",
            "Есептеледі: сұхбат жылынан туған жыл (BIRTH_YEAR) алынады.",
        ),
    ),
    "URBAN": (
        _texts(
            "Urban or rural settlement (1 urban, 2 rural)",
            "Городской или сельский населённый пункт (1 город, 2 село)",
            "Қалалық немесе ауылдық елді мекен (1 қала, 2 ауыл)",
        ),
        _texts(
            "Derived from the settlement type (SETTLEMENT): a village is rural, any other "
            "settlement urban.",
            "Вычисляется по типу населённого пункта (SETTLEMENT): село считается сельским, "
            "остальные городскими.",
            "Елді мекен түрінен (SETTLEMENT) есептеледі: ауыл ауылдық, қалғандары қалалық "
            "болып саналады.",
        ),
    ),
}


def _derived_text(variable: Variable) -> Variable:
    texts = DERIVED_TEXTS.get(variable.name)
    if texts is None:
        return variable
    labels, note = texts
    return replace(variable, labels=dict(labels), note={**note, **variable.note})


def write_codebook_xlsx(codebook: Codebook, path: Path | str) -> None:
    """The codebook as a workbook: a sheet of variables and a sheet of codes and labels."""
    from openpyxl import Workbook
    from openpyxl.styles import Font

    book = Workbook(write_only=True)
    bold = Font(bold=True)

    def header(sheet: Any, names: list[str]) -> None:
        from openpyxl.cell import WriteOnlyCell

        cells = []
        for name in names:
            cell = WriteOnlyCell(sheet, value=name)
            cell.font = bold
            cells.append(cell)
        sheet.append(cells)

    sheet = book.create_sheet("variables")
    header(
        sheet,
        [
            "variable",
            "source",
            "type",
            "storage",
            "question_kk",
            "question_ru",
            "question_en",
            "questionnaire_versions",
            "note_kk",
            "note_ru",
            "note_en",
        ],
    )
    for variable in [*codebook.variables, *codebook.withheld]:
        sheet.append(
            [
                variable.name,
                variable.source,
                variable.kind,
                "withheld" if variable in codebook.withheld else variable.storage,
                variable.labels.get("kk", ""),
                variable.labels.get("ru", ""),
                variable.labels.get("en", ""),
                ", ".join(variable.versions),
                variable.note.get("kk", ""),
                variable.note.get("ru", ""),
                variable.note.get("en", ""),
            ]
        )
    values = book.create_sheet("values")
    header(values, ["variable", "code", "label_kk", "label_ru", "label_en"])
    for variable in codebook.variables:
        for code, texts in variable.value_labels.items():
            values.append(
                [variable.name, code, texts.get("kk", ""), texts.get("ru", ""), texts.get("en", "")]
            )
    book.save(str(path))
