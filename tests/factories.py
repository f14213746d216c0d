"""factory_boy factories for the survey models."""

from __future__ import annotations

import io

import factory
import openpyxl

from surveys.models import Region, Submission, Survey, Wave
from surveys.services import import_xlsform


class SurveyFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Survey
        django_get_or_create = ("code",)

    code = factory.Sequence(lambda n: f"survey-{n}")
    title = factory.LazyAttribute(lambda o: f"Survey {o.code}")


def build_xlsform(
    survey: list[list[object]],
    choices: list[list[object]] | None = None,
    settings: list[list[object]] | None = None,
) -> bytes:
    """An .xlsx XLSForm from rows (the first row of each sheet is its header)."""
    book = openpyxl.Workbook()
    sheet = book.active
    sheet.title = "survey"
    for row in survey:
        sheet.append(row)
    for title, rows in (("choices", choices), ("settings", settings)):
        if rows:
            extra = book.create_sheet(title)
            for row in rows:
                extra.append(row)
    buffer = io.BytesIO()
    book.save(buffer)
    return buffer.getvalue()


SIMPLE_FORM = {
    "survey": [
        [
            "type",
            "name",
            "label::Қазақша (kk)",
            "label::Русский (ru)",
            "label::English (en)",
            "relevant",
            "required",
        ],
        ["select_one yesno", "q1", "Сұрақ", "Вопрос", "Question", "", "yes"],
        ["integer", "q2", "Жасы", "Возраст", "Age", "${q1} = 1", "yes"],
    ],
    "choices": [
        ["list_name", "name", "label::Қазақша (kk)", "label::Русский (ru)", "label::English (en)"],
        ["yesno", "1", "Иә", "Да", "Yes"],
        ["yesno", "2", "Жоқ", "Нет", "No"],
    ],
    "settings": [["form_id", "version", "default_language"], ["simple", "1", "Қазақша (kk)"]],
}


def simple_form_version(survey_code: str = "simple"):
    version, _ = import_xlsform(
        survey_code=survey_code, content=build_xlsform(**SIMPLE_FORM), filename="simple.xlsx"
    )
    return version


class WaveFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Wave

    survey = factory.LazyAttribute(lambda o: o.form_version.survey)
    form_version = factory.LazyFunction(simple_form_version)
    code = factory.Sequence(lambda n: f"W{n}")
    geography = "KZ2022"
    is_open = True


class SubmissionFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Submission

    wave = factory.SubFactory(WaveFactory)
    form_version = factory.LazyAttribute(lambda o: o.wave.form_version)
    region = factory.LazyAttribute(lambda o: Region.objects.of(o.wave.geography).first())
    urban_rural = 1
    stratum = "S1"
    psu = factory.Sequence(lambda n: f"PSU-{n % 10}")
    channel = "web"
    language = "kk"
    answers = factory.LazyFunction(lambda: {"q1": 1, "q2": 30})
