"""The weighted question summaries page and its CSV / XLSX downloads.

Thin: a form checks the query (survey, wave, breakdown), `analytics.summaries` computes
(or reads from its cache) the wave's summaries, `analytics.summary_content` turns them into
the page's tables and charts, `analytics.charts` draws them (cached as the dashboard's are).
Who may see them: as the dashboard, researchers, supervisors and admins of the wave's survey.
"""

from __future__ import annotations

import csv
import datetime as dt
import io
import tempfile
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

from django import forms
from django.contrib.auth.decorators import login_required
from django.core.exceptions import PermissionDenied
from django.http import Http404, HttpRequest, HttpResponse
from django.http.response import HttpResponseBase
from django.shortcuts import render
from django.utils import timezone
from django.utils.text import slugify
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy

from access import permissions as access
from access.downloads import record_download
from analytics import charts
from analytics.computation import REVIEW_FLAGS, SUPPRESSION_REASONS
from analytics.exports.formats import CONTENT_TYPES
from analytics.exports.xlsx import Workbook
from analytics.selectors import computation_status, waves_with_estimates
from analytics.summaries import BREAKDOWNS, wave_summaries
from analytics.summary_content import (
    DOWNLOAD_COLUMNS,
    QuestionBlock,
    Texts,
    download_rows,
    question_blocks,
)
from analytics.views import LOGIN_URL, _drawn, _language, _SurveyChoice, view_estimates
from surveys.models import Survey, Wave

FORMATS = ("csv", "xlsx")
RULE = gettext_lazy(
    "Publication rules, as for the estimates: a share is not published when fewer than 10 "
    "respondents gave that answer or are in its base, when n or the effective n is below 30, "
    "or when its Korn-Graubard interval is 30 points wide or more, or wider than 5 points and "
    "more than 1.3 times the share. Further shares are hidden where a hidden count could "
    "otherwise be recovered by subtraction."
)


class _WaveChoice(forms.ModelChoiceField):
    def label_from_instance(self, obj: Any) -> str:
        return obj.translated_title() or obj.code


class SummariesForm(forms.Form):
    survey = _SurveyChoice(
        Survey.objects.order_by("code"), label=gettext_lazy("Survey"), to_field_name="code"
    )
    wave = _WaveChoice(Wave.objects.none(), label=gettext_lazy("Wave"))
    breakdown = forms.ChoiceField(label=gettext_lazy("Breakdown"), required=False, choices=())

    def __init__(self, *args: Any, user: Any, survey: Survey | None, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        survey_field = self.fields["survey"]
        assert isinstance(survey_field, forms.ModelChoiceField)
        survey_field.queryset = access.surveys_for(user, access.Capability.VIEW_ESTIMATES)
        wave_field = self.fields["wave"]
        assert isinstance(wave_field, forms.ModelChoiceField)
        wave_field.queryset = (
            Wave.objects.filter(survey=survey).order_by("code") if survey else Wave.objects.none()
        )
        breakdown = self.fields["breakdown"]
        assert isinstance(breakdown, forms.ChoiceField)
        breakdown.choices = [("", _("None: Kazakhstan as a whole"))] + [
            (key, str(title)) for key, title in BREAKDOWNS.items()
        ]


def current_wave(survey: Survey) -> Wave | None:
    """The survey's latest wave with estimates (by fieldwork start, then code)."""
    waves = waves_with_estimates(survey)
    return max(waves, key=lambda w: (w.fieldwork_start or dt.date.min, w.code), default=None)


def _form(request: HttpRequest) -> SummariesForm:
    """The query's form, with the survey of the wave asked for (or the user's first survey)
    and its current wave by default; a wave of another survey is refused (403)."""
    user = request.user
    data = request.GET.copy()
    wave_id = data.get("wave", "")
    survey: Survey | None = None
    if wave_id.isdigit():
        wave = Wave.objects.select_related("survey").filter(pk=int(wave_id)).first()
        if wave is None:
            raise Http404
        if not access.may(user, access.Capability.VIEW_ESTIMATES, wave):
            raise PermissionDenied
        survey = wave.survey
        data["survey"] = survey.code
    else:
        surveys = list(access.surveys_for(user, access.Capability.VIEW_ESTIMATES))
        code = data.get("survey") or (surveys[0].code if surveys else None)
        survey = next((s for s in surveys if s.code == code), None)
        if survey is None and data.get("survey"):
            raise Http404
        if survey is not None:
            data["survey"] = survey.code
            wave = current_wave(survey)
            if wave is not None:
                data["wave"] = str(wave.pk)
    return SummariesForm(data, user=user, survey=survey)


def _texts() -> Texts:
    return Texts(
        whole=_("Kazakhstan"),
        axis=_("Per cent of those asked"),
        axis_multiple=_("Per cent of respondents (several answers possible)"),
        suppressed=_("suppressed"),
        reasons={k: str(v) for k, v in SUPPRESSION_REASONS.items()},
        review_flags={k: str(v) for k, v in REVIEW_FLAGS.items()},
    )


@login_required(login_url=LOGIN_URL)
@view_estimates
def question_summaries(request: HttpRequest) -> HttpResponseBase:
    form = _form(request)
    context: dict[str, Any] = {"form": form, "rule": RULE, "formats": FORMATS}
    if form.is_valid():
        wave = form.cleaned_data["wave"]
        breakdown = form.cleaned_data["breakdown"] or ""
        summaries = wave_summaries(wave, breakdown)
        blocks: list[QuestionBlock] = []
        if summaries is not None:
            blocks = question_blocks(summaries, language=_language(), texts=_texts())
        drawn = _drawn([(charts.summary_chart, block.chart) for block in blocks])
        context.update(
            wave=wave,
            summaries=summaries,
            status=computation_status(wave),
            breakdown_label=BREAKDOWNS.get(breakdown, ""),
            questions=list(zip(blocks, drawn, strict=True)),
            query=urlencode({"survey": wave.survey.code, "wave": wave.pk, "breakdown": breakdown}),
        )
    return render(request, "analytics/summaries.html", context)


def summaries_filename(survey: Survey, wave: Wave, breakdown: str, file_format: str) -> str:
    parts = ["tanys", slugify(survey.code), slugify(wave.code), "question-summaries"]
    if breakdown:
        parts.append(slugify(breakdown))
    return "_".join([*parts, f"{timezone.localdate():%Y-%m-%d}"]) + f".{file_format}"


@login_required(login_url=LOGIN_URL)
@view_estimates
def question_summaries_download(request: HttpRequest, file_format: str) -> HttpResponseBase:
    if file_format not in FORMATS:
        return HttpResponse(_("Unknown format: %(format)s.") % {"format": file_format}, status=404)
    form = _form(request)
    if not form.is_valid():
        return HttpResponse(
            _("Choose a survey and a wave with estimates: %(errors)s")
            % {
                "errors": "; ".join(
                    f"{k}: {' '.join(str(m) for m in v)}" for k, v in form.errors.items()
                )
            },
            status=400,
        )
    wave = form.cleaned_data["wave"]
    breakdown = form.cleaned_data["breakdown"] or ""
    summaries = wave_summaries(wave, breakdown)
    if summaries is None:
        return HttpResponse(_("This wave has no estimates yet."), status=409)
    rows = download_rows(
        summaries,
        survey=wave.survey.code,
        breakdown_label=str(BREAKDOWNS.get(breakdown, "")),
        language=_language(),
        texts=_texts(),
    )
    content = _csv(rows) if file_format == "csv" else _xlsx(rows)
    record_download(
        user=request.user,
        kind="summaries",
        wave_ids=[wave.pk],
        file_format=file_format,
        rows=len(rows),
    )
    response = HttpResponse(content, content_type=CONTENT_TYPES[file_format])
    name = summaries_filename(wave.survey, wave, breakdown, file_format)
    response["Content-Disposition"] = f'attachment; filename="{name}"'
    return response


def _csv(rows: list[list[Any]]) -> bytes:
    text = io.StringIO()
    writer = csv.writer(text, lineterminator="\r\n")
    writer.writerow(DOWNLOAD_COLUMNS)
    writer.writerows(["" if value is None else value for value in row] for row in rows)
    return "\ufeff".encode() + text.getvalue().encode("utf-8")


def _xlsx(rows: list[list[Any]]) -> bytes:
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "summaries.xlsx"
        with Workbook(path) as book:
            book.add_sheet("summaries", DOWNLOAD_COLUMNS).write_rows(rows)
            notes = book.add_sheet("notes", [_("Note")])
            notes.write_rows(
                [
                    [str(RULE)],
                    [
                        _(
                            "Shares are proportions of the people asked (select_multiple: of "
                            "the people who answered, so they may add up to more than 1), with "
                            "design-based standard errors and 95% Korn-Graubard intervals; n "
                            "counts the respondents who gave the answer, n_base those asked."
                        )
                    ],
                ]
            )
        return path.read_bytes()
