"""Microdata, codebook and regional exports, read back by the libraries researchers use."""

from __future__ import annotations

import io
import json

import openpyxl
import pandas as pd
import pyarrow.parquet as pq
import pyreadstat
import pytest

from analytics import exports
from analytics.exports.codebook import build_codebook, write_codebook_xlsx
from surveys.assignment import BLOCK_SIZE
from surveys.models import FormVersion, Submission, Survey
from surveys.services import import_xlsform, open_wave
from tests.analytics.factories_estimates import instrument_wave, regional_estimates
from tests.factories import SubmissionFactory, build_xlsform

pytestmark = pytest.mark.django_db
KAZAKH_LETTERS = set("әғқңөұүі")


@pytest.fixture
def wave():
    return instrument_wave(n=150)


def _selection(wave, language="ru", values="labels"):
    return exports.MicrodataSelection(wave_ids=(wave.pk,), language=language, values=values)


def _choice_label(form_version: FormVersion, question: str, code: int, language: str) -> str:
    list_name = form_version.questions[question]["list_name"]
    for choice in form_version.definition["choices"][list_name]:
        if choice["name"] == str(code):
            return choice["label"][language]
    raise AssertionError(f"{question}: no choice {code}")


def _answers_by_id(wave) -> dict[str, dict]:
    return {str(s.instance_id): s.answers for s in Submission.objects.filter(wave=wave)}


def test_csv_with_russian_labels_reads_back_in_pandas(wave, tmp_path):
    path = tmp_path / "data.csv"
    rows = exports.write_microdata(_selection(wave), "csv", path)
    assert rows == 150
    assert path.read_bytes()[:3] == b"\xef\xbb\xbf"  # Excel needs the BOM for Cyrillic
    frame = pd.read_csv(path, encoding="utf-8-sig", dtype=str, keep_default_na=False)
    assert len(frame) == 150
    answers = _answers_by_id(wave)
    version = wave.form_version
    for _, row in frame.head(40).iterrows():
        stored = answers[row["interview_id"]]
        assert row["P1"] == (
            _choice_label(version, "P1", stored["P1"], "ru")
            if stored["P1"] > 0
            else {-1: "Не знаю, затрудняюсь ответить", -2: "Предпочитаю не отвечать"}[stored["P1"]]
        )
        for k in range(1, 8):
            # A 0/1 indicator is a number: not applicable is its code, as in a file of codes.
            expected = ("1" if f"M{k}" in stored["M"] else "0") if "M" in stored else "-3"
            assert row[f"M_M{k}"] == expected
        assert row["BIRTH_YEAR"] == str(stored["BIRTH_YEAR"])
    # Design fields are there; direct identifiers and free text are not.
    for column in (
        "region",
        "stratum",
        "psu",
        "weight",
        "wave",
        "channel",
        "language",
        "started_at",
        "duration_seconds",
    ):
        assert column in frame.columns
    for column in ("device_id", "M_OTHER", "R1_OTHER", "enumerator_id", "username"):
        assert column not in frame.columns


def test_csv_codes_keep_special_codes(wave, tmp_path):
    path = tmp_path / "codes.csv"
    exports.write_microdata(_selection(wave, values="codes"), "csv", path)
    frame = pd.read_csv(path)
    answers = _answers_by_id(wave)
    assert {-3, 1, 2} <= set(frame["B_MED"])
    for _, row in frame.iterrows():
        stored = answers[row["interview_id"]]
        assert row["E1"] == stored["E1"]
        assert row["B_KG"] == stored["B_KG"]
        assert row["M_M2"] == ((1 if "M2" in stored["M"] else 0) if "M" in stored else -3)


def test_kazakh_labels_survive_csv_and_xlsx(wave, tmp_path):
    csv_path, xlsx_path = tmp_path / "kk.csv", tmp_path / "kk.xlsx"
    exports.write_microdata(_selection(wave, language="kk"), "csv", csv_path)
    exports.write_microdata(_selection(wave, language="kk"), "xlsx", xlsx_path)
    text = csv_path.read_text(encoding="utf-8-sig")
    assert set(text.lower()) >= KAZAKH_LETTERS
    frame = pd.read_csv(csv_path, encoding="utf-8-sig", dtype=str, keep_default_na=False)
    book = openpyxl.load_workbook(xlsx_path, read_only=True)
    sheet = list(book["data"].iter_rows(values_only=True))
    assert list(sheet[0]) == list(frame.columns)
    assert len(sheet) == 151
    position = {name: k for k, name in enumerate(sheet[0])}
    by_id = {row[position["interview_id"]]: row for row in sheet[1:]}
    for _, row in frame.iterrows():
        xrow = by_id[row["interview_id"]]
        assert xrow[position["P2"]] == row["P2"]
        assert xrow[position["SEX"]] == row["SEX"]
    assert "Иә" in set(frame["C_MED"])  # yes in Kazakh
    variables = {r[0]: r[1] for r in book["variables"].iter_rows(min_row=2, values_only=True)}
    assert variables["P1"] == wave.form_version.questions["P1"]["label"]["kk"]


@pytest.mark.parametrize("file_format", ["sav", "dta"])
def test_spss_and_stata_files_keep_values_and_labels(wave, tmp_path, file_format):
    path = tmp_path / f"data.{file_format}"
    exports.write_microdata(_selection(wave, language="kk"), file_format, path)
    if file_format == "sav":
        # Special codes are declared user-missing in SPSS; read them as the codes they are.
        frame, meta = pyreadstat.read_sav(str(path), user_missing=True)
    else:
        frame, meta = pyreadstat.read_dta(str(path))
    assert len(frame) == 150
    answers = _answers_by_id(wave)
    for _, row in frame.iterrows():
        stored = answers[row["interview_id"]]
        assert row["P1"] == stored["P1"]
        assert row["HH_SIZE"] == stored["HH_SIZE"]
        assert row["M_M1"] == ((1 if "M1" in stored["M"] else 0) if "M" in stored else -3)
    version = wave.form_version
    label = meta.column_names_to_labels["P1"]
    expected = version.questions["P1"]["label"]["kk"]
    # Long wording is cut to the format's limit (SPSS 255 bytes, Stata 80 characters), visibly.
    assert label.endswith("…") and expected.startswith(label[:-1])
    assert len(label.encode()) <= 255 if file_format == "sav" else len(label) <= 80
    assert KAZAKH_LETTERS & set(label.lower())
    values = meta.variable_value_labels["P1"]
    assert values[1] == _choice_label(version, "P1", 1, "kk")
    assert values[-3] == "Қолданылмайды (сұрақ өткізіліп жіберілді)"
    assert meta.variable_value_labels["M_M1"][1] == "Таңдалған"
    # Region codes are numbers with value labels (2013 codes such as KZ-ALM included).
    assert meta.variable_value_labels["REGION"][19] == "Алматы облысы"
    assert set(frame["REGION"]) <= set(meta.variable_value_labels["REGION"])
    assert "device_id" not in frame.columns and "M_OTHER" not in frame.columns
    if file_format == "sav":
        assert meta.missing_ranges["P1"] == [{"lo": -9.0, "hi": -1.0}]


def test_codebook_lists_every_variable_in_three_languages(wave, tmp_path):
    codebook = build_codebook([wave.form_version])
    path = tmp_path / "codebook.xlsx"
    write_codebook_xlsx(codebook, path)
    book = openpyxl.load_workbook(path, read_only=True)
    variables = list(book["variables"].iter_rows(values_only=True))
    header, rows = variables[0], variables[1:]
    names = [r[0] for r in rows]
    assert names[: len(codebook.variables)] == [v.name for v in codebook.variables]
    by_name = {r[0]: dict(zip(header, r, strict=True)) for r in rows}
    p1 = wave.form_version.questions["P1"]["label"]
    assert by_name["P1"]["question_kk"] == p1["kk"]
    assert by_name["P1"]["question_ru"] == p1["ru"]
    assert by_name["P1"]["question_en"] == p1["en"]
    assert by_name["M_OTHER"]["storage"] == "withheld"
    values = [r for r in book["values"].iter_rows(min_row=2, values_only=True) if r[0] == "E1"]
    assert {r[1] for r in values} >= {1, 2, 3, -1, -2, -3, -9}


def _version(survey_code: str, version: str, rows: list[list[object]], choices: list[list[object]]):
    header = ["type", "name", "label::Қазақша (kk)", "label::Русский (ru)", "label::English (en)"]
    choice_header = [
        "list_name",
        "name",
        "label::Қазақша (kk)",
        "label::Русский (ru)",
        "label::English (en)",
    ]
    content = build_xlsform(
        survey=[header, *rows],
        choices=[choice_header, *choices],
        settings=[["form_id", "version", "default_language"], ["merge", version, "Қазақша (kk)"]],
    )
    form_version, _ = import_xlsform(
        survey_code=survey_code, content=content, filename=f"v{version}.xlsx"
    )
    return form_version


def test_old_form_versions_are_merged_by_question_name(tmp_path):
    yes_no = [["yn", "1", "Иә", "Да", "Yes"], ["yn", "2", "Жоқ", "Нет", "No"]]
    v1 = _version(
        "merge",
        "1",
        [
            ["select_one yn", "Q1", "Сұрақ 1", "Вопрос 1", "Question 1"],
            ["integer", "OLD", "Ескі", "Старый", "Old"],
        ],
        yes_no,
    )
    v2 = _version(
        "merge",
        "2",
        [
            ["select_one yn", "Q1", "Сұрақ бір", "Вопрос один", "Question one"],
            ["integer", "NEW", "Жаңа", "Новый", "New"],
        ],
        [*yes_no, ["yn", "3", "Мүмкін", "Может быть", "Maybe"]],
    )
    wave = open_wave(
        survey=Survey.objects.get(code="merge"), code="W", geography="KZ2022", form_version=v2
    )
    SubmissionFactory(wave=wave, form_version=v1, answers={"Q1": 1, "OLD": 5})
    SubmissionFactory(wave=wave, form_version=v2, answers={"Q1": 3, "NEW": 7})
    selection = exports.MicrodataSelection(wave_ids=(wave.pk,), language="en", values="labels")
    path = tmp_path / "merged.csv"
    exports.write_microdata(selection, "csv", path)
    frame = pd.read_csv(path, dtype=str, keep_default_na=False).sort_values("form_version")
    assert list(frame["Q1"]) == ["Yes", "Maybe"]
    # Numbers stay numbers in a labelled file: "not asked" is its code there.
    assert list(frame["OLD"]) == ["5", "-9"]
    assert list(frame["NEW"]) == ["-9", "7"]
    codebook = selection.codebook()
    q1 = next(v for v in codebook.variables if v.name == "Q1")
    assert q1.labels["en"] == "Question one"  # the newest wording
    assert q1.versions == ("1", "2")


def test_unexpected_stored_types_are_coerced_not_fatal(tmp_path):
    wave = instrument_wave(n=5)
    first = Submission.objects.filter(wave=wave).order_by("id").first()
    first.answers = {**first.answers, "P1": "2", "HH_SIZE": "many"}
    first.save()
    path = tmp_path / "odd.csv"
    exports.write_microdata(_selection(wave, values="codes"), "csv", path)
    frame = pd.read_csv(path, dtype=str, keep_default_na=False)
    row = frame[frame["interview_id"] == str(first.instance_id)].iloc[0]
    assert row["P1"] == "2"
    assert row["HH_SIZE"] == "-3"  # unreadable value: treated as missing


# Regional table -------------------------------------------------------------------------


@pytest.fixture
def regional(db):
    from tests.factories import WaveFactory

    wave = WaveFactory(geography="KZ2022", code="2026")
    regional_estimates(wave, suppressed_codes=("KZ-62",))
    return exports.regional_rows(exports.regional_estimates(waves=[wave]))


def _write(rows, file_format) -> bytes:
    buffer = io.BytesIO()
    exports.write_regional(rows, file_format, buffer)
    return buffer.getvalue()


def test_regional_csv_has_bom_and_suppressed_cells_blank(regional):
    content = _write(regional, "csv")
    assert content.startswith(b"\xef\xbb\xbf")
    frame = pd.read_csv(io.BytesIO(content), encoding="utf-8-sig")
    assert list(frame.columns) == exports.REGIONAL_FIELD_NAMES
    assert len(frame) == 21  # national + 20 regions
    ulytau = frame[frame["region_code"] == "KZ-62"].iloc[0]
    assert pd.isna(ulytau["estimate"]) and pd.isna(ulytau["ci_low"])
    assert (
        ulytau["n"] == 12 and ulytau["suppression_reason"] == "n_lt_30" and ulytau["reliable"] == 0
    )
    assert ulytau["region_name_kk"] == "Ұлытау облысы"
    abai = frame[frame["region_code"] == "KZ-10"].iloc[0]
    assert abai["estimate"] == pytest.approx(0.6) and abai["reliable"] == 1
    assert frame[frame["region_code"] == "KZ"].iloc[0]["region_name_ru"] == "Казахстан"


def test_regional_xlsx_json_and_parquet(regional):
    book = openpyxl.load_workbook(io.BytesIO(_write(regional, "xlsx")))
    data = list(book["regional"].iter_rows(values_only=True))
    assert list(data[0]) == exports.REGIONAL_FIELD_NAMES
    assert len(data) == 22
    definitions = {
        r[0]: r[1] for r in book["definitions"].iter_rows(min_row=2, values_only=True) if r[0]
    }
    assert set(exports.REGIONAL_FIELD_NAMES) <= set(definitions)
    payload = json.loads(_write(regional, "json"))
    assert len(payload["rows"]) == 21 and set(payload["columns"]) == set(
        exports.REGIONAL_FIELD_NAMES
    )
    ulytau = next(r for r in payload["rows"] if r["region_code"] == "KZ-62")
    assert ulytau["estimate"] is None and ulytau["n"] == 12
    table = pq.read_table(io.BytesIO(_write(regional, "parquet")))
    assert table.num_rows == 21
    frame = table.to_pandas()
    assert frame.loc[frame["region_code"] == "KZ-62", "estimate"].isna().all()
    assert "Ұлытау облысы" in set(frame["region_name_kk"])
    assert str(table.schema.field("computed_at").type) == "timestamp[us, tz=UTC]"


def test_the_codebook_documents_the_design_variables_and_the_microdata_carry_the_arm(
    wave, tmp_path
):
    codebook = {v.name: v for v in build_codebook([wave.form_version]).variables}
    arm = codebook["LE_ARM"]
    assert arm.label("en") == "List experiment arm"
    assert arm.value_label(0, "ru") == "контрольная" and arm.value_label(1, "kk") == "эксперимент"
    assert "on the web form by the server, in permuted blocks of four per wave" in arm.note["en"]
    assert "in the tablet app in blocks of two per device" in arm.note["en"]
    assert "блоках по четыре на волну" in arm.note["ru"]
    assert BLOCK_SIZE == 4  # the note's "four": a change of block size changes the note too
    assert "төрттен блоктармен" in arm.note["kk"]
    assert "of 4 non-sensitive items" in codebook["LE_C"].note["en"]
    assert "(share of yes - 0.2) / 0.7" in codebook["RR_E1"].note["en"]
    assert "known prevalence 0.25" in codebook["CW_E1"].note["en"]
    assert all(set(codebook[n].note) == {"kk", "ru", "en"} for n in ("LE_ARM", "LE_T", "CW_E1"))

    path = tmp_path / "micro.csv"
    exports.write_microdata(_selection(wave, values="codes"), "csv", path)
    frame = pd.read_csv(path, encoding="utf-8-sig")
    answers = _answers_by_id(wave)
    assert {"LE_ARM", "LE_C", "LE_T", "RR_E1", "CW_E1"} <= set(frame.columns)
    for _, row in frame.iterrows():
        stored = answers[row["interview_id"]]
        assert row["LE_ARM"] == stored["LE_ARM"]
        asked = "LE_T" if stored["LE_ARM"] == 1 else "LE_C"
        assert row[asked] == stored[asked]
