"""Researchers' pages: the dashboard, downloads, export jobs and the API token.

Views are thin: a form checks the query, `analytics.exports` and the selectors read,
`analytics.charts` draws.
"""

from __future__ import annotations

from typing import Any

from django import forms
from django.conf import settings
from django.contrib import messages
from django.contrib.auth import views as auth_views
from django.contrib.auth.decorators import login_required
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
from analytics.downloads import export_file_response
from analytics.models import ExportJob
from analytics.selectors import cell_notes, computation_status
from analytics.selectors import export_job_for as job_for
from apitokens.models import ApiToken
from apitokens.services import issue_token, revoke_tokens
from surveys.models import Geography, Region, Survey, Wave

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


class DashboardForm(forms.Form):
    survey = forms.ModelChoiceField(
        Survey.objects.order_by("code"), label=gettext_lazy("Survey"), to_field_name="code"
    )
    waves = forms.ModelMultipleChoiceField(
        Wave.objects.none(), label=gettext_lazy("Waves"), required=False
    )
    indicator = forms.ChoiceField(label=gettext_lazy("Indicator"), choices=())
    geography = forms.ChoiceField(
        label=gettext_lazy("Geography"),
        choices=[("", gettext_lazy("As collected")), *Geography.choices],
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
        language = (get_language() or "kk")[:2]
        catalogue = exports.indicator_catalogue()
        indicator = self.fields["indicator"]
        assert isinstance(indicator, forms.ChoiceField)
        indicator.choices = [
            (code, info["labels"].get(language) or code) for code, info in catalogue.items()
        ]
        waves = self.fields["waves"]
        assert isinstance(waves, forms.ModelMultipleChoiceField)
        if survey is not None:
            waves.queryset = Wave.objects.filter(survey=survey).order_by("code")


def _unit(indicator: str) -> tuple[float, str]:
    info = exports.indicator_catalogue().get(indicator, {})
    if info.get("unit") == "index":
        return 1.0, _("Index, 0 to 100")
    return 100.0, _("Per cent")


def _scaled(value: float | None, scale: float) -> float | None:
    return None if value is None else value * scale


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
    all_waves = list(Wave.objects.filter(survey=survey).order_by("code")) if survey else []
    if "waves" not in data and all_waves:
        data.setlist("waves", [str(w.pk) for w in all_waves[-2:]])
    form = DashboardForm(data, survey=survey, user=request.user)
    indicator_choices = list(getattr(form.fields["indicator"], "choices", []))
    if "indicator" not in data and indicator_choices:
        data["indicator"] = indicator_choices[0][0]
        form = DashboardForm(data, survey=survey, user=request.user)
    context: dict[str, Any] = {
        "form": form,
        "survey": survey,
        "can_export": access.may(request.user, access.Capability.EXPORT_MICRODATA, survey),
    }
    if form.is_valid():
        context.update(_dashboard_content(form.cleaned_data, request))
    context["microdata_form"] = MicrodataForm(
        survey=survey, initial={"language": (get_language() or "ru")[:2]}
    )
    context["query"] = request.GET.urlencode() or data.urlencode()
    context["formats"] = exports.REGIONAL_FORMATS
    return render(request, "analytics/dashboard.html", context)


def _dashboard_content(cleaned: dict[str, Any], request: HttpRequest) -> dict[str, Any]:
    language = (get_language() or "kk")[:2]
    waves = sorted(cleaned["waves"], key=lambda w: w.code)
    indicator = cleaned["indicator"]
    geography = cleaned.get("geography") or None
    scale, axis_label = _unit(indicator)
    estimates = list(
        exports.regional_estimates(waves=waves, geography=geography, indicators=[indicator])
    )
    catalogue = exports.indicator_catalogue()
    indicator_label = catalogue.get(indicator, {}).get("labels", {}).get(language, indicator)
    region_name = f"name_{language}"
    sections = []
    for geo in [g for g, _label in Geography.choices if any(e.geography == g for e in estimates)]:
        cells = [e for e in estimates if e.geography == geo]
        regions = sorted(
            {e.region for e in cells if e.region_id}, key=lambda r: getattr(r, region_name)
        )
        labels = [getattr(r, region_name) for r in regions]
        series = []
        table = []
        for wave in waves:
            wave_cells = [e for e in cells if e.wave_id == wave.pk]
            if not wave_cells:
                continue
            national = next((e for e in wave_cells if e.region_id is None), None)
            series.append(
                {
                    "name": wave.code,
                    "national": national.estimate if national and not national.suppressed else None,
                    "cells": {
                        getattr(e.region, region_name): {
                            "estimate": e.estimate,
                            "ci_low": e.ci_low,
                            "ci_high": e.ci_high,
                            "suppressed": e.suppressed,
                        }
                        for e in wave_cells
                        if e.region_id
                    },
                }
            )
            for e in sorted(
                wave_cells,
                key=lambda e: (e.region_id is not None, getattr(e.region, region_name, "")),
            ):
                table.append(
                    {
                        "wave": wave.code,
                        "region": getattr(e.region, region_name)
                        if e.region_id
                        else _("Kazakhstan"),
                        "cell": e,
                        "estimate": _scaled(e.estimate, scale),
                        "ci_low": _scaled(e.ci_low, scale),
                        "ci_high": _scaled(e.ci_high, scale),
                        "notes": cell_notes(e),
                    }
                )
        if not series:
            continue
        geo_label = dict(Geography.choices)[geo]
        comparison_svg = charts.comparison_chart(
            series,
            regions=labels,
            title=_("%(indicator)s by region, %(geography)s")
            % {"indicator": indicator_label, "geography": geo_label},
            axis_label=axis_label,
            national_label=_("Kazakhstan"),
            suppressed_label=_("suppressed"),
            scale=scale,
        )
        latest = waves[-1] if waves else None
        latest_cells = [e for e in cells if latest and e.wave_id == latest.pk and e.region_id]
        latest_cells.sort(key=lambda e: getattr(e.region, region_name))
        change_rows = [
            {
                "region": getattr(e.region, region_name),
                "change": None if e.suppressed else e.change,
                "change_se": e.change_se,
                "change_scaled": _scaled(None if e.suppressed else e.change, scale),
                "change_se_scaled": _scaled(e.change_se, scale),
                "previous_wave": e.previous_wave.code if e.previous_wave is not None else "",
                "cell": e,
            }
            for e in latest_cells
        ]
        change_svg = (
            charts.change_chart(
                change_rows,
                title=_("Change since the previous wave, %(wave)s")
                % {"wave": latest.code if latest else ""},
                axis_label=axis_label,
                unavailable_label=_("not available"),
                scale=scale,
            )
            if latest_cells and any(e.previous_wave_id for e in latest_cells)
            else ""
        )
        tiles_source = {e.region_id: e for e in latest_cells}
        tiles = [
            {
                "row": r.tile_row,
                "col": r.tile_col,
                "short": r.code.replace("KZ-", ""),
                "name": getattr(r, region_name),
                "estimate": tiles_source[r.pk].estimate if r.pk in tiles_source else None,
                "estimate_scaled": _scaled(
                    tiles_source[r.pk].estimate if r.pk in tiles_source else None, scale
                ),
                "suppressed": tiles_source[r.pk].suppressed if r.pk in tiles_source else False,
            }
            for r in Region.objects.of(geo)
        ]
        map_svg = charts.tile_map(
            tiles,
            title=_("%(indicator)s, %(wave)s: map of regions")
            % {"indicator": indicator_label, "wave": latest.code if latest else ""},
            suppressed_label=_("suppressed"),
            no_data_label=_("no data"),
            scale=scale,
        )
        sections.append(
            {
                "geography": geo,
                "label": geo_label,
                "comparison_svg": comparison_svg,
                "change_svg": change_svg,
                "map_svg": map_svg,
                "table": table,
                "changes": change_rows,
                "tiles": tiles,
            }
        )
    freshness = []
    for wave in waves:
        status = computation_status(wave)
        freshness.append(
            {"wave": wave, **status, "percent": round(100 * (status["progress"] or 0))}
        )
    return {
        "sections": sections,
        "indicator_label": indicator_label,
        "freshness": freshness,
        "wave_ids": [w.pk for w in waves],
        "axis_label": axis_label,
    }


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
        waves = Wave.objects.order_by("survey__code", "code")
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


@login_required(login_url=LOGIN_URL)
@export_microdata
def codebook(request: HttpRequest) -> HttpResponseBase:
    """The codebook of the chosen waves as a page: every variable of their microdata with
    its question in Kazakh, Russian and English, its codes and labels."""
    form = CodebookForm(request.GET or None)
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
