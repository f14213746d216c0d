"""Researchers' pages: the dashboard, downloads, export jobs and the API token.

Views are thin: a form checks the query, `analytics.exports` and the selectors read,
`analytics.dashboard` turns the dashboard's records into its sections and tables (a pure
function) and `analytics.charts` draws them, once per distinct chart (cached).
"""

from __future__ import annotations

import datetime as dt
import hashlib
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from django import forms
from django.conf import settings
from django.contrib import messages
from django.contrib.auth import views as auth_views
from django.contrib.auth.decorators import login_required
from django.core.cache import cache
from django.core.exceptions import PermissionDenied
from django.http import Http404, HttpRequest, HttpResponse, JsonResponse
from django.http.response import HttpResponseBase
from django.shortcuts import redirect, render
from django.urls import reverse, reverse_lazy
from django.utils.translation import get_language, gettext_lazy
from django.utils.translation import gettext as _
from django.views.decorators.http import require_POST

from access import permissions as access
from analytics import charts, exports
from analytics.breakdowns import BREAKDOWNS, BY_KEY
from analytics.computation import BOUNDARY_NOTES, REVIEW_FLAGS, SUPPRESSION_REASONS
from analytics.dashboard import Section, WaveRecord, dashboard_content, default_indicator
from analytics.dashboard import Texts as DashboardTexts
from analytics.dashboard_breakdowns import BreakdownSection, breakdown_section
from analytics.downloads import export_file_response
from analytics.indicators import BY_CODE, INDICATORS, Indicator
from analytics.models import ExportJob
from analytics.selectors import (
    computation_status,
    dashboard_breakdown_estimates,
    dashboard_estimates,
    dashboard_regions,
    published_regional_cells,
    waves_with_estimates,
)
from analytics.selectors import export_job_for as job_for
from apitokens.models import ApiToken
from apitokens.services import issue_token, revoke_tokens
from surveys.definition import INTERFACE_LANGUAGES
from surveys.models import Geography, Survey, Wave

LOGIN_URL = reverse_lazy("analytics:login")
# The named permission and a grant in some survey (`access.permissions`); which surveys
# and waves a page may show is checked in the view.
view_estimates = access.capability_required(access.Capability.VIEW_ESTIMATES, login_url=LOGIN_URL)
export_microdata = access.capability_required(
    access.Capability.EXPORT_MICRODATA, login_url=LOGIN_URL
)


class LoginView(auth_views.LoginView):
    template_name = "analytics/login.html"
    redirect_authenticated_user = True

    def get_default_redirect_url(self) -> str:
        return reverse("analytics:dashboard")


class _SurveyChoice(forms.ModelChoiceField):
    def label_from_instance(self, obj: Any) -> str:
        return obj.translated_title()


class _WaveChoice(forms.ModelMultipleChoiceField):
    def label_from_instance(self, obj: Any) -> str:
        """The wave's title in the interface language; without one, its code (and, for
        demo data, the translated word for synthetic) rather than a title in another
        language."""
        own = getattr(obj, f"title_{_language()}", "")
        if own:
            return own
        if obj.is_synthetic:
            return f"{obj.code} ({_('synthetic')})"
        return obj.translated_title()


class DashboardForm(forms.Form):
    survey = _SurveyChoice(
        Survey.objects.order_by("code"), label=gettext_lazy("Survey"), to_field_name="code"
    )
    waves = _WaveChoice(Wave.objects.none(), label=gettext_lazy("Waves"), required=False)
    indicator = forms.ChoiceField(label=gettext_lazy("Indicator"), choices=())
    geography = forms.ChoiceField(
        label=gettext_lazy("Geography"),
        choices=[("", gettext_lazy("As collected")), *Geography.choices],
        required=False,
    )
    breakdown = forms.ChoiceField(
        label=gettext_lazy("Breakdown"),
        choices=[("", gettext_lazy("Regions only")), *((b.key, b.title) for b in BREAKDOWNS)],
        required=False,
    )

    def __init__(
        self, *args: Any, survey: Survey | None = None, user: Any = None, **kwargs: Any
    ) -> None:
        super().__init__(*args, **kwargs)
        if user is not None:
            survey_field = self.fields["survey"]
            assert isinstance(survey_field, forms.ModelChoiceField)
            survey_field.queryset = access.surveys_for(user, access.Capability.VIEW_ESTIMATES)
        language = _language()
        indicator = self.fields["indicator"]
        assert isinstance(indicator, forms.ChoiceField)
        indicator.choices = [(i.code, i.label(language)) for i in INDICATORS]
        waves = self.fields["waves"]
        assert isinstance(waves, forms.ModelMultipleChoiceField)
        if survey is not None:
            waves.queryset = Wave.objects.filter(survey=survey).order_by("code")


def _language() -> str:
    language = (get_language() or "kk")[:2]
    return language if language in INTERFACE_LANGUAGES else "kk"


@login_required(login_url=LOGIN_URL)
@view_estimates
def dashboard(request: HttpRequest) -> HttpResponseBase:
    surveys = list(access.surveys_for(request.user, access.Capability.VIEW_ESTIMATES))
    survey_code = request.GET.get("survey") or (surveys[0].code if surveys else None)
    survey = next((s for s in surveys if s.code == survey_code), None)
    if survey is None and request.GET.get("survey"):
        raise Http404  # not one of the user's surveys
    data = request.GET.copy()
    if survey is not None:
        data.setdefault("survey", survey.code)
    # A first visit opens on the latest waves with estimates and on the indicator with the
    # most published regional cells in the latest of them.
    first_visit = "waves" not in data or "indicator" not in data
    shown = waves_with_estimates(survey) if survey and first_visit else []
    if "waves" not in data and shown:
        data.setlist("waves", [str(w.pk) for w in shown[-2:]])
    if "indicator" not in data:
        published = published_regional_cells(shown[-1]) if shown else {}
        chosen = default_indicator([i.code for i in INDICATORS], published)
        if chosen:
            data["indicator"] = chosen
    form = DashboardForm(data, survey=survey, user=request.user)
    context: dict[str, Any] = {
        "form": form,
        "survey": survey,
        "can_export": access.may(request.user, access.Capability.EXPORT_MICRODATA, survey),
    }
    if form.is_valid():
        context.update(_dashboard_context(form.cleaned_data))
    context["microdata_form"] = MicrodataForm(
        survey=survey, initial={"language": (get_language() or "ru")[:2]}
    )
    context["query"] = request.GET.urlencode() or data.urlencode()
    context["formats"] = exports.REGIONAL_FORMATS
    return render(request, "analytics/dashboard.html", context)


def dashboard_texts(indicator: Indicator, language: str) -> DashboardTexts:
    """The dashboard's texts in the active language, for `analytics.dashboard`."""
    return DashboardTexts(
        indicator=indicator.label(language),
        unit=indicator.unit,
        axis_share=_("Per cent"),
        axis_index=_("Index, 0 to 100"),
        axis_change_share=_("Percentage points"),
        geographies={code: str(label) for code, label in Geography.choices},
        national=_("Kazakhstan"),
        suppressed=_("suppressed"),
        review=_("review before publishing"),
        no_data=_("no data"),
        not_available=_("not available"),
        increase=_("increase"),
        decrease=_("decrease"),
        comparison_title=_("%(indicator)s by region, %(geography)s"),
        change_title=_("Change since the previous wave, wave %(wave)s, %(geography)s"),
        map_title=_("%(indicator)s, wave %(wave)s, %(geography)s: map of regions"),
        nothing_to_draw=_(
            "Every regional estimate of this choice is suppressed, so there is nothing to draw."
            " The table below gives the reasons."
        ),
        no_change_to_draw=_("No region has a change to draw; the table says why for each."),
        no_earlier_wave=_("no earlier wave"),
        not_published_in=_("not published in wave %(wave)s"),
        suppression_reasons={k: str(v) for k, v in SUPPRESSION_REASONS.items()},
        review_flags={k: str(v) for k, v in REVIEW_FLAGS.items()},
        boundary_notes={k: str(v) for k, v in BOUNDARY_NOTES.items()},
    )


@dataclass(frozen=True)
class DrawnSection:
    """A section of the dashboard with its charts drawn (empty strings: not drawn)."""

    content: Section
    comparison_svg: str
    change_svg: str
    map_svg: str


CHART_CACHE_SECONDS = 7 * 24 * 3600


def _drawn(charts_to_draw: list[tuple[Callable[[Any], str], Any]]) -> list[str]:
    """The charts' SVGs, each drawn once per distinct chart data and then read from the
    cache in one round trip. The key is the data itself (values and texts), so a new
    result set, indicator or language draws anew and an unchanged one is served as it
    was; `charts.STYLE` changes the keys when the drawing changes. None draws nothing."""

    def key(draw: Callable[[Any], str], chart: Any) -> str:
        fingerprint = hashlib.sha256(repr(chart).encode()).hexdigest()
        return f"dashboard-chart:{charts.STYLE}:{draw.__name__}:{fingerprint}"

    keys = [key(draw, chart) if chart is not None else "" for draw, chart in charts_to_draw]
    cached = cache.get_many([k for k in keys if k])
    new = {}
    out = []
    for k, (draw, chart) in zip(keys, charts_to_draw, strict=True):
        if not k:
            out.append("")
            continue
        if k not in cached:
            new[k] = cached[k] = draw(chart)
        out.append(cached[k])
    if new:
        cache.set_many(new, CHART_CACHE_SECONDS)
    return out


def _dashboard_context(cleaned: dict[str, Any]) -> dict[str, Any]:
    language = _language()
    waves = sorted(cleaned["waves"], key=lambda w: w.code)
    indicator = BY_CODE[cleaned["indicator"]]
    records = dashboard_estimates(
        waves=waves, indicator=indicator.code, geography=cleaned.get("geography") or None
    )
    geographies = {r.geography for r in records if r.region_id is not None}
    content = dashboard_content(
        estimates=records,
        waves=[WaveRecord(id=w.pk, code=w.code, label=w.code) for w in waves],
        regions=dashboard_regions(geographies, language),
        texts=dashboard_texts(indicator, language),
    )
    drawn = iter(
        _drawn(
            [
                chart
                for section in content.sections
                for chart in (
                    (charts.comparison_chart, section.comparison),
                    (charts.change_chart, section.change),
                    (charts.tile_map, section.map),
                )
            ]
        )
    )
    sections = [
        DrawnSection(
            content=section,
            comparison_svg=next(drawn),
            change_svg=next(drawn),
            map_svg=next(drawn),
        )
        for section in content.sections
    ]
    freshness = []
    for wave in waves:
        status = computation_status(wave)
        freshness.append(
            {"wave": wave, **status, "percent": round(100 * (status["progress"] or 0))}
        )
    by_group = _breakdown_context(cleaned, waves, indicator, language)
    return {
        "sections": sections,
        "breakdown_section": by_group[0] if by_group else None,
        "breakdown_svg": by_group[1] if by_group else "",
        "indicator_label": content.indicator_label,
        "freshness": freshness,
        "wave_ids": [w.pk for w in waves],
        "axis_label": content.axis_label,
    }


def _breakdown_context(
    cleaned: dict[str, Any], waves: list[Wave], indicator: Indicator, language: str
) -> tuple[BreakdownSection, str] | None:
    """The chosen breakdown's section and its chart, or None when none is chosen."""
    breakdown = BY_KEY.get(cleaned.get("breakdown") or "")
    if breakdown is None:
        return None
    section = breakdown_section(
        estimates=dashboard_breakdown_estimates(
            waves=waves, indicator=indicator.code, breakdown=breakdown.key
        ),
        waves=[WaveRecord(id=w.pk, code=w.code, label=w.code) for w in waves],
        groups=[(g.code, str(g.label)) for g in breakdown.groups],
        title=_("%(indicator)s by %(breakdown)s, Kazakhstan")
        % {"indicator": indicator.label(language), "breakdown": str(breakdown.title).lower()},
        nothing_to_draw=_(
            "Every estimate of this breakdown is suppressed, so there is nothing to draw."
            " The table below gives the reasons."
        ),
        texts=dashboard_texts(indicator, language),
    )
    (svg,) = _drawn([(charts.comparison_chart, section.chart)])
    return section, svg


@login_required(login_url=LOGIN_URL)
@view_estimates
def freshness(request: HttpRequest) -> JsonResponse:
    """Recomputation state of the chosen waves, polled by the dashboard."""
    ids = [int(i) for i in request.GET.getlist("wave") if i.isdigit()]
    out = []
    for wave in access.waves_for(request.user, access.Capability.VIEW_ESTIMATES).filter(pk__in=ids):
        status = computation_status(wave)
        out.append(
            {
                "wave": wave.code,
                "as_of": status["as_of"].isoformat() if status["as_of"] else None,
                "n_interviews": status["n_interviews"],
                "recomputing": status["recomputing"],
                "running": status["running"],
                "stage": status["stage"],
                "stage_label": status["stage_label"],
                "progress": status["progress"],
            }
        )
    return JsonResponse({"waves": out})


@login_required(login_url=LOGIN_URL)
@view_estimates
def regional_download(request: HttpRequest, file_format: str) -> HttpResponseBase:
    from analytics.downloads import regional_download_response

    if file_format not in exports.REGIONAL_FORMATS:
        return HttpResponse(_("Unknown format: %(format)s.") % {"format": file_format}, status=404)
    waves = [int(w) for w in request.GET.getlist("waves") if w.isdigit()]
    params = {
        "wave": waves,
        "geography": request.GET.get("geography") or None,
        "indicator": [request.GET["indicator"]]
        if request.GET.get("indicator") and request.GET.get("scope") != "all"
        else None,
    }
    return regional_download_response(params, file_format, request.user)


class MicrodataForm(forms.Form):
    waves = forms.ModelMultipleChoiceField(Wave.objects.none(), label=gettext_lazy("Waves"))
    file_format = forms.ChoiceField(
        label=gettext_lazy("Format"),
        choices=[
            ("csv", "CSV"),
            ("xlsx", "Excel (XLSX)"),
            ("sav", "SPSS (.sav)"),
            ("dta", "Stata (.dta)"),
            ("codebook", gettext_lazy("Codebook (XLSX)")),
        ],
    )
    language = forms.ChoiceField(
        label=gettext_lazy("Language of labels"),
        choices=[("kk", "Қазақша"), ("ru", "Русский"), ("en", "English")],
    )
    values = forms.ChoiceField(
        label=gettext_lazy("Values"),
        choices=[("labels", gettext_lazy("Labels")), ("codes", gettext_lazy("Codes"))],
        help_text=gettext_lazy("SPSS and Stata files always hold codes, with the labels attached."),
    )

    def __init__(self, *args: Any, survey: Survey | None = None, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        waves = Wave.objects.select_related("survey").order_by("survey__code", "code")
        field = self.fields["waves"]
        assert isinstance(field, forms.ModelMultipleChoiceField)
        field.queryset = waves.filter(survey=survey) if survey else waves


@login_required(login_url=LOGIN_URL)
@export_microdata
@require_POST
def microdata_export(request: HttpRequest) -> HttpResponseBase:
    """Small selections come back at once; larger ones become an export job."""
    form = MicrodataForm(request.POST)
    if not form.is_valid():
        messages.error(
            request,
            _("The export was not started: %(errors)s")
            % {
                "errors": "; ".join(
                    f"{k}: {' '.join(str(m) for m in v)}" for k, v in form.errors.items()
                )
            },
        )
        return redirect("analytics:dashboard")
    data = form.cleaned_data
    if not access.waves_allowed(
        request.user, access.Capability.EXPORT_MICRODATA, [w.pk for w in data["waves"]]
    ):
        raise PermissionDenied
    kind = "codebook" if data["file_format"] == "codebook" else "microdata"
    file_format = "xlsx" if kind == "codebook" else data["file_format"]
    parameters = {
        "waves": [w.pk for w in data["waves"]],
        "language": data["language"],
        "values": data["values"],
    }
    try:
        asked = exports.request_export(
            user=request.user, kind=kind, file_format=file_format, parameters=parameters
        )
    except (exports.ExportError, PermissionError) as exc:
        messages.error(request, str(exc))
        return redirect("analytics:dashboard")
    if asked.built_now and asked.job.status == ExportJob.Status.DONE:
        return export_file_response(asked.job, request.user)
    return redirect("analytics:export-job", pk=asked.job.pk)


class CodebookForm(forms.Form):
    waves = forms.ModelMultipleChoiceField(
        Wave.objects.order_by("survey__code", "code"), label=gettext_lazy("Waves")
    )


def _current_wave(waves: Any) -> Wave | None:
    """Of the first survey among the waves: the latest wave with estimates (by fieldwork
    start, then code), else its latest wave."""
    first = waves.select_related("survey").first()
    if first is None:
        return None
    own = list(waves.filter(survey_id=first.survey_id))
    with_estimates = set(
        waves.filter(survey_id=first.survey_id, result_sets__is_current=True).values_list(
            "pk", flat=True
        )
    )

    def key(wave: Wave) -> tuple[bool, Any, str]:
        return (wave.pk in with_estimates, wave.fieldwork_start or dt.date.min, wave.code)

    return max(own, key=key)


@login_required(login_url=LOGIN_URL)
@export_microdata
def codebook(request: HttpRequest) -> HttpResponseBase:
    """The codebook of the chosen waves as a page: every variable of their microdata with
    its question in Kazakh, Russian and English, its codes and labels. Without a choice,
    the current wave: the latest with estimates (else the latest) of the user's first
    survey."""
    data = request.GET.copy()
    if "waves" not in data:
        current = _current_wave(access.waves_for(request.user, access.Capability.EXPORT_MICRODATA))
        if current is not None:
            data.setlist("waves", [str(current.pk)])
    form = CodebookForm(data)
    context: dict[str, Any] = {"form": form, "codebook": None}
    if form.is_valid():
        waves = form.cleaned_data["waves"]
        if not access.waves_allowed(
            request.user, access.Capability.EXPORT_MICRODATA, [w.pk for w in waves]
        ):
            raise PermissionDenied
        selection = exports.MicrodataSelection(wave_ids=tuple(w.pk for w in waves))
        language = (get_language() or "kk")[:2]
        book = selection.codebook()
        context.update(codebook=book, rows=[(v, v.note.get(language, "")) for v in book.variables])
    return render(request, "analytics/codebook.html", context)


@login_required(login_url=LOGIN_URL)
@view_estimates
def export_jobs(request: HttpRequest) -> HttpResponseBase:
    jobs = ExportJob.objects.filter(requested_by_id=request.user.pk).order_by("-created_at")[:50]
    return render(request, "analytics/export_jobs.html", {"jobs": jobs})


@login_required(login_url=LOGIN_URL)
@view_estimates
def export_job(request: HttpRequest, pk: int) -> HttpResponseBase:
    return render(request, "analytics/export_job.html", {"job": job_for(request.user, pk)})


@login_required(login_url=LOGIN_URL)
@view_estimates
def export_job_status(request: HttpRequest, pk: int) -> JsonResponse:
    job = job_for(request.user, pk)
    return JsonResponse(
        {
            "status": job.status,
            "status_label": job.get_status_display(),
            "stage": job.stage,
            "stage_label": job.get_stage_display()
            if job.status == ExportJob.Status.RUNNING
            else "",
            "rows_done": job.rows_done,
            "rows_total": job.rows_total,
            "error": job.error,
            "download_url": reverse("analytics:export-job-download", args=[job.pk])
            if job.status == ExportJob.Status.DONE
            else None,
        }
    )


@login_required(login_url=LOGIN_URL)
@view_estimates
def export_job_download(request: HttpRequest, pk: int) -> HttpResponseBase:
    return export_file_response(job_for(request.user, pk), request.user)


@login_required(login_url=LOGIN_URL)
@view_estimates
@require_POST
def export_job_retry(request: HttpRequest, pk: int) -> HttpResponseBase:
    job = job_for(request.user, pk)
    access.require(request.user, access.capability_for_export(job.kind), job)
    try:
        exports.retry_export_job(job=job)
    except exports.ExportError as exc:
        messages.error(request, str(exc))
    return redirect("analytics:export-job", pk=job.pk)


@login_required(login_url=LOGIN_URL)
@view_estimates
def api_token(request: HttpRequest) -> HttpResponseBase:
    """The researcher's API tokens; POST makes a new one (the earlier ones stop working),
    shown on this response only: only its digest is stored."""
    secret = None
    if request.method == "POST":
        if request.POST.get("action") == "revoke":
            revoke_tokens(user=request.user)
            messages.success(request, _("Your tokens were revoked."))
            return redirect("analytics:api-token")
        _token, secret = issue_token(user=request.user, replace=True)
    tokens = ApiToken.objects.of(request.user)[:20]
    context = {"secret": secret, "tokens": tokens, "token_days": settings.API_TOKEN_DAYS}
    response = render(request, "analytics/api_token.html", context)
    response["Cache-Control"] = "no-store"
    return response
