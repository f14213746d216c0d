"""What a researcher finds in each microdata format: region codes with names, numbers kept
as numbers, SPSS measurement levels, formats and labels, Stata value labels. Files are
written and read back with the libraries researchers use."""

from __future__ import annotations

import openpyxl
import pandas as pd
import pyreadstat
import pytest

from analytics import exports
from surveys.models import Region, Submission
from surveys.regions import region_number
from tests.analytics.factories_estimates import instrument_wave

pytestmark = pytest.mark.django_db


@pytest.fixture
def wave_2013():
    return instrument_wave("2013", n=60, geography="KZ2013")


def _selection(wave, language="ru", values="labels"):
    return exports.MicrodataSelection(wave_ids=(wave.pk,), language=language, values=values)


def _names(language: str) -> dict[str, str]:
    """Each region code of both geographies to its name in a language."""
    return {r.code: getattr(r, f"name_{language}") for r in Region.objects.all()}


def test_region_numbers_mean_one_name_in_both_geographies():
    names: dict[int, set[str]] = {}
    for region in Region.objects.all():
        number = region_number(region.code)
        assert number is not None, region.code
        names.setdefault(number, set()).add(region.name_en)
    assert len(names) == 21  # 20 current units and South Kazakhstan (2013 only)
    assert all(len(texts) == 1 for texts in names.values()), names
    assert region_number("KZ-YUZ") == 51 and region_number("KZ-61") == 61


@pytest.mark.parametrize("language", ["ru", "kk"])
def test_2013_regions_are_named_in_labelled_csv_and_xlsx(wave_2013, tmp_path, language):
    answers = {str(s.instance_id): s.answers for s in Submission.objects.filter(wave=wave_2013)}
    assert all(a["REGION"].startswith("KZ-") for a in answers.values())
    assert {a["REGION"] for a in answers.values()} & {"KZ-ALM", "KZ-YUZ", "KZ-VOS"}
    names = _names(language)
    csv_path, xlsx_path = tmp_path / "data.csv", tmp_path / "data.xlsx"
    exports.write_microdata(_selection(wave_2013, language), "csv", csv_path)
    exports.write_microdata(_selection(wave_2013, language), "xlsx", xlsx_path)
    frame = pd.read_csv(csv_path, encoding="utf-8-sig", dtype=str, keep_default_na=False)
    sheet = list(openpyxl.load_workbook(xlsx_path, read_only=True)["data"].values)
    position = {name: k for k, name in enumerate(sheet[0])}
    by_id = {row[position["interview_id"]]: row for row in sheet[1:]}
    for _, row in frame.iterrows():
        code = answers[row["interview_id"]]["REGION"]
        assert row["REGION"] == names[code]
        assert row["region"] == names[code]  # the design field, the same unit here
        assert by_id[row["interview_id"]][position["REGION"]] == names[code]
    assert not any(value.startswith("KZ-") for value in frame["REGION"])


def test_region_codes_are_numbers_in_a_file_of_codes(wave_2013, tmp_path):
    path = tmp_path / "codes.csv"
    exports.write_microdata(_selection(wave_2013, values="codes"), "csv", path)
    frame = pd.read_csv(path)
    answers = {str(s.instance_id): s.answers for s in Submission.objects.filter(wave=wave_2013)}
    for _, row in frame.iterrows():
        assert row["REGION"] == region_number(answers[row["interview_id"]]["REGION"])
    assert frame["region"].dtype.kind == "i" and frame["wave"].tolist() == [2013] * 60
    assert set(frame["geography"]) == {2013} and set(frame["channel"]) <= {1, 2, 3}


def test_labelled_xlsx_keeps_numbers_as_numbers(wave_2013, tmp_path):
    path = tmp_path / "data.xlsx"
    exports.write_microdata(_selection(wave_2013, "ru"), "xlsx", path)
    sheet = list(openpyxl.load_workbook(path, read_only=True)["data"].values)
    position = {name: k for k, name in enumerate(sheet[0])}
    rows = sheet[1:]
    for name in ("BIRTH_YEAR", "AGE", "URBAN", "HH_SIZE", "wave", "M_M1", "duration_seconds"):
        values = [row[position[name]] for row in rows]
        assert all(isinstance(v, int | float) for v in values), (name, values[:5])
    assert {row[position["wave"]] for row in rows} == {2013}
    assert {row[position["M_M1"]] for row in rows} <= {0, 1, -3}
    # Categories are words throughout, special codes included.
    assert all(isinstance(row[position["SEX"]], str) for row in rows)


def test_labelled_csv_columns_are_all_words_or_all_numbers(wave_2013, tmp_path):
    path = tmp_path / "data.csv"
    exports.write_microdata(_selection(wave_2013, "ru"), "csv", path)
    frame = pd.read_csv(path, encoding="utf-8-sig", dtype=str, keep_default_na=False)
    codebook = _selection(wave_2013).codebook()
    for variable in codebook.variables:
        values = set(frame[variable.name])
        numeric = {v for v in values if v.lstrip("-").replace(".", "", 1).isdigit()}
        if variable.categorical:
            assert not numeric, (variable.name, numeric)
        elif variable.storage in {"int", "float"}:
            assert numeric == values, (variable.name, values - numeric)
    m_columns = [v.name for v in codebook.variables if v.name.startswith("M_M")]
    assert m_columns and all(set(frame[name]) <= {"0", "1", "-3"} for name in m_columns)
    assert "-3" in set(frame["M_M1"])


def test_sav_has_levels_formats_and_labels_for_every_variable(wave_2013, tmp_path):
    path = tmp_path / "data.sav"
    exports.write_microdata(_selection(wave_2013, "kk"), "sav", path)
    frame, meta = pyreadstat.read_sav(str(path), user_missing=True)
    codebook = _selection(wave_2013, "kk").codebook()
    labels = meta.column_names_to_labels
    for variable in codebook.variables:
        assert labels[variable.name] and labels[variable.name] != variable.name, variable.name
    assert labels["AGE"] == "Жасы, толық жыл"
    assert labels["URBAN"].startswith("Қалалық немесе ауылдық")
    measure = meta.variable_measure
    assert set(measure.values()) <= {"nominal", "ordinal", "scale"}
    assert measure["SEX"] == measure["REGION"] == measure["region"] == "nominal"
    assert measure["M_M1"] == measure["channel"] == "nominal"
    assert measure["BIRTH_YEAR"] == measure["AGE"] == measure["HH_SIZE"] == "scale"
    assert measure["weight"] == measure["duration_seconds"] == "scale"
    assert measure["wave"] == "ordinal"
    formats = meta.original_variable_types
    assert formats["BIRTH_YEAR"] == "F4.0" and formats["wave"] == "F4.0"
    assert formats["AGE"] in {"F2.0", "F3.0"} and formats["URBAN"] == "F1.0"
    assert formats["SEX"] == ("F2.0" if (frame["SEX"] < 0).any() else "F1.0")
    assert formats["M_M1"] == "F2.0" and formats["region"] == "F2.0"
    assert formats["weight"].endswith(".4")
    integers = [v.name for v in codebook.variables if v.storage == "int"]
    assert all(formats[name].endswith(".0") for name in integers)
    values = meta.variable_value_labels
    assert values["region"][51] == "Оңтүстік Қазақстан облысы"
    assert values["REGION"][19] == "Алматы облысы"
    assert values["channel"][1].startswith("Веб") and values["language"][2] == "Орыс тілі"
    assert values["geography"][2013].startswith("2013")
    assert set(frame["REGION"]) <= set(values["REGION"])


def test_dta_has_value_labels_on_every_coded_variable(wave_2013, tmp_path):
    path = tmp_path / "data.dta"
    exports.write_microdata(_selection(wave_2013, "en"), "dta", path)
    frame, meta = pyreadstat.read_dta(str(path))
    codebook = _selection(wave_2013, "en").codebook()
    coded = [v.name for v in codebook.variables if v.categorical]
    assert {"REGION", "region", "SEX", "channel", "language", "geography", "urban_rural"} <= set(
        coded
    )
    for name in coded:
        assert name in meta.variable_to_label, name
        assert frame[name].dtype.kind in "if", name
    label_set = meta.value_labels[meta.variable_to_label["REGION"]]
    assert label_set[75] == "Almaty" and label_set[51] == "South Kazakhstan Region"
    assert frame["AGE"].dtype.kind in "if" and frame["wave"].tolist() == [2013] * 60


def test_a_downloaded_file_is_named_after_survey_waves_and_day(client, wave_2013):
    from urllib.parse import unquote

    from django.urls import reverse
    from django.utils import timezone

    from tests.analytics.factories_estimates import grant_everywhere, make_user

    later = instrument_wave("2026 весна", n=5, seed=3, geography="KZ2022")
    researcher = make_user("researcher", "researcher")
    grant_everywhere(researcher)
    client.force_login(researcher)
    response = client.post(
        reverse("analytics:microdata-export"),
        {
            "waves": [wave_2013.pk, later.pk],
            "file_format": "sav",
            "language": "en",
            "values": "labels",
        },
    )
    assert response.status_code == 200
    header = response["Content-Disposition"]
    day = timezone.localdate().isoformat()
    exact = f"tanys_informal-networks_2013-2026-весна_{day}.sav"
    # Old clients read the ASCII name, others the exact one (RFC 6266).
    assert header.startswith(f'attachment; filename="tanys_informal-networks_2013-2026-_{day}.sav"')
    assert header.isascii() and "\n" not in header
    assert unquote(header.split("filename*=UTF-8''")[1]) == exact
    b"".join(response.streaming_content)


def test_a_file_name_never_breaks_the_header():
    from surveys.attachments import attachment_disposition

    header = attachment_disposition('wave "A"\r\nSet-Cookie: x=1/..\\b.csv')
    assert header.isascii() and "\r" not in header and "\n" not in header
    ascii_name = header.split('filename="')[1].split('"')[0]
    assert ascii_name == "wave_A_Set-Cookie_x_1_.._b.csv"
    assert "/" not in header.split("filename*=")[1]
