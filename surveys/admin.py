from __future__ import annotations

import csv
from collections.abc import Iterable

from django import forms
from django.contrib import admin, messages
from django.core.exceptions import PermissionDenied
from django.http import Http404, HttpRequest, HttpResponse, HttpResponseRedirect
from django.template.loader import render_to_string
from django.template.response import TemplateResponse
from django.urls import path, reverse
from django.utils import timezone
from django.utils.html import format_html, format_html_join
from django.utils.translation import get_language
from django.utils.translation import gettext_lazy as _
from django.views.decorators.csrf import csrf_exempt

from access.adminscope import ReviewScopedAdmin, SurveyScopedAdmin
from access.permissions import (
    Capability,
    filter_by_survey,
    may_create_survey,
    may_import_questionnaire,
)
from surveys import user_admin  # noqa: F401  (the user admin that grants nothing)
from surveys.models import (
    ESTIMATE_STATUS_CHOICES,
    ChannelKind,
    FormVersion,
    InvitationLink,
    LinkKind,
    Region,
    ReviewStatus,
    Submission,
    Survey,
    Wave,
)


class XLSFormUploadForm(forms.Form):
    survey_code = forms.SlugField(
        label=_("Survey code"), help_text=_("Created when it does not exist yet.")
    )
    xlsform = forms.FileField(label=_("XLSForm (.xlsx or .xls)"))

    def clean_xlsform(self):  # type: ignore[no-untyped-def]
        """Refuse a file over the size limit before it is read into memory."""
        from django.conf import settings

        upload = self.cleaned_data["xlsform"]
        limit = settings.XLSFORM_MAX_UPLOAD_BYTES
        if upload.size > limit:
            raise forms.ValidationError(
                _("The file is larger than the limit of %(mb)s MB for an XLSForm."),
                params={"mb": f"{limit / (1024 * 1024):.0f}"},
            )
        return upload


class SurveyForm(forms.ModelForm):
    """The survey, with its rule of which review statuses feed the estimates as one set
    of boxes per kind of interview."""

    estimates_self = forms.MultipleChoiceField(
        label=_("Web interviews counted in the estimates"),
        choices=[(s.value, s.label) for s in ESTIMATE_STATUS_CHOICES],
        widget=forms.CheckboxSelectMultiple,
        required=False,
        help_text=_("Self-completed interviews count with these review statuses."),
    )
    estimates_interviewer = forms.MultipleChoiceField(
        label=_("Tablet and ODK interviews counted in the estimates"),
        choices=[(s.value, s.label) for s in ESTIMATE_STATUS_CHOICES],
        widget=forms.CheckboxSelectMultiple,
        required=False,
        help_text=_("Interviews enumerators collected count with these review statuses."),
    )
    FIELDS = {
        "estimates_self": ChannelKind.SELF_COMPLETED,
        "estimates_interviewer": ChannelKind.INTERVIEWER,
    }

    class Meta:
        model = Survey
        # estimate_statuses is edited as the boxes above and saved by its service.
        fields = ["code", "title", "title_kk", "title_ru", "title_en", "description"]

    def __init__(self, *args, **kwargs) -> None:  # type: ignore[no-untyped-def]
        super().__init__(*args, **kwargs)
        for field, kind in self.FIELDS.items():
            self.fields[field].initial = self.instance.statuses_feeding_estimates(kind)

    def estimate_statuses(self) -> dict[str, list[str]]:
        return {kind.value: list(self.cleaned_data[f]) for f, kind in self.FIELDS.items()}


@admin.register(Survey)
class SurveyAdmin(SurveyScopedAdmin, admin.ModelAdmin):
    survey_path = "pk"
    form = SurveyForm
    list_display = ["code", "title", "title_kk", "title_ru", "created_at"]
    search_fields = ["code", "title", "title_kk", "title_ru", "title_en"]

    def has_add_permission(self, request: HttpRequest) -> bool:
        return super().has_add_permission(request) and may_create_survey(request.user)

    def save_model(self, request: HttpRequest, obj: Survey, form, change: bool) -> None:  # type: ignore[no-untyped-def]
        """The rule of which interviews count goes through its service, which recomputes
        the survey's waves when it changes."""
        from surveys.services import set_estimate_statuses

        super().save_model(request, obj, form, change)
        set_estimate_statuses(survey=obj, statuses=form.estimate_statuses(), actor=request.user)


@admin.register(FormVersion)
class FormVersionAdmin(SurveyScopedAdmin, admin.ModelAdmin):
    list_display = ["survey", "version", "title", "default_language", "created_at"]
    list_filter = ["survey"]
    # The compiled definition is read as an outline (`surveys.outline`), never as JSON.
    readonly_fields = [
        "preview",
        *(f.name for f in FormVersion._meta.fields if f.name != "definition"),
        "outline",
    ]
    exclude = ["definition"]
    change_list_template = "admin/surveys/formversion/change_list.html"

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False  # versions come from an XLSForm upload, never typed in

    def has_change_permission(self, request: HttpRequest, obj: FormVersion | None = None) -> bool:
        return False  # immutable

    @admin.display(description=_("Questions"))
    def outline(self, obj: FormVersion) -> str:
        from surveys.outline import form_outline

        languages = [code for code in obj.languages if code != "default"] or ["default"]
        return render_to_string(
            "admin/surveys/formversion/outline.html",
            {
                "rows": [
                    (
                        row,
                        "· " * row.depth,
                        [(code, row.labels.get(code, "")) for code in languages],
                    )
                    for row in form_outline(obj.definition)
                ],
                "languages": languages,
            },
        )

    @admin.display(description=_("Preview"))
    def preview(self, obj: FormVersion) -> str:
        return format_html(
            '<a class="button" href="{}" target="_blank" rel="noopener">{}</a> {}',
            reverse("admin:surveys_formversion_preview", args=[obj.pk]),
            _("Open the web form in preview"),
            _("Answers given in the preview are never stored or counted."),
        )

    def get_urls(self):  # type: ignore[no-untyped-def]
        return [
            path(
                "upload/",
                self.admin_site.admin_view(self.upload_view),
                name="surveys_formversion_upload",
            ),
            path(
                "<int:pk>/preview/",
                self.admin_site.admin_view(csrf_exempt(self.preview_view)),
                name="surveys_formversion_preview",
            ),
            *super().get_urls(),
        ]

    def preview_view(self, request: HttpRequest, pk: int) -> HttpResponse:
        """The web form of this version in preview, for staff who may see the version.
        Exempt from CSRF checks because it writes nothing: its POST only checks answers."""
        from surveys.preview_views import preview_form

        version = self.get_queryset(request).filter(pk=pk).first()
        if version is None or not self.has_view_permission(request, version):
            raise Http404(_("No such questionnaire version."))
        url = reverse("admin:surveys_formversion_preview", args=[version.pk])
        return preview_form(request, version, url)

    def upload_view(self, request: HttpRequest):  # type: ignore[no-untyped-def]
        # Imported here, not at start-up: every process loads the admin modules, and the
        # XLSForm stack (pyxform, openpyxl) is needed only by this view.
        from surveys.services import import_xlsform
        from surveys.xlsform import XLSFormError

        if not request.user.has_perm("surveys.add_formversion"):
            raise PermissionDenied
        form = XLSFormUploadForm(request.POST or None, request.FILES or None)
        if request.method == "POST" and form.is_valid():
            if not may_import_questionnaire(request.user, form.cleaned_data["survey_code"]):
                raise PermissionDenied
            upload = form.cleaned_data["xlsform"]
            try:
                version, created = import_xlsform(
                    survey_code=form.cleaned_data["survey_code"],
                    content=upload.read(),
                    filename=upload.name,
                    uploaded_by=request.user,
                )
            except XLSFormError as exc:
                for problem in exc.problems:
                    form.add_error("xlsform", str(problem))
            else:
                level = messages.SUCCESS if created else messages.INFO
                text = (
                    _("Imported version %(v)s.")
                    if created
                    else _("Version %(v)s was already imported.")
                )
                self.message_user(request, text % {"v": version.version}, level)
                for warning in version.import_warnings:
                    self.message_user(request, warning, messages.WARNING)
                return HttpResponseRedirect(
                    reverse("admin:surveys_formversion_change", args=[version.pk])
                )
        context = {
            **self.admin_site.each_context(request),
            "form": form,
            "title": _("Upload an XLSForm"),
            "opts": self.model._meta,
        }
        return TemplateResponse(request, "admin/surveys/formversion/upload.html", context)


@admin.register(Wave)
class WaveAdmin(SurveyScopedAdmin, admin.ModelAdmin):
    list_display = [
        "survey",
        "code",
        "geography",
        "is_open",
        "is_synthetic",
        "fieldwork_start",
        "fieldwork_end",
    ]
    list_filter = ["survey", "geography", "is_open", "is_synthetic"]
    search_fields = ["code", "title", "title_kk", "title_ru", "title_en"]

    def save_model(self, request: HttpRequest, obj: Wave, form, change: bool) -> None:  # type: ignore[no-untyped-def]
        from surveys.services import save_wave

        save_wave(wave=obj)


@admin.register(Region)
class RegionAdmin(admin.ModelAdmin):
    list_display = ["code", "name_kk", "name_ru", "name_en", "geography", "unit_2013"]
    list_filter = ["geography", "kind"]
    search_fields = ["code", "name_kk", "name_ru", "name_en"]


@admin.register(Submission)
class SubmissionAdmin(ReviewScopedAdmin, admin.ModelAdmin):
    # Narrow columns, so the list and its filters fit a 1,366-pixel screen: the start of
    # the interview id (the whole one on hover and on its page), codes for wave and region.
    list_display = [
        "interview",
        "wave_code",
        "region_code",
        "channel",
        "language",
        "review_status",
        "received",
    ]
    list_display_links = ["interview"]
    list_filter = ["wave", "channel", "review_status", "language", "is_synthetic"]
    list_select_related = ["wave__survey", "region"]
    actions = ["approve", "reject"]

    # The admin writes through the services like any other client: a review decision
    # records who decided and recomputes the wave; a deletion is recorded and recomputes
    # the wave too, so the published estimates stop counting the interview.
    def save_model(self, request: HttpRequest, obj: Submission, form, change: bool) -> None:  # type: ignore[no-untyped-def]
        from surveys.services import review_interviews

        review_interviews(
            submissions=[obj.pk],
            status=obj.review_status,
            comment=obj.review_comment,
            question_comments=obj.question_comments,
            actor=request.user,
        )

    def delete_model(self, request: HttpRequest, obj: Submission) -> None:
        from surveys.services import delete_interviews

        delete_interviews(submissions=[obj.pk], actor=request.user)

    def delete_queryset(self, request: HttpRequest, queryset) -> None:  # type: ignore[no-untyped-def]
        from surveys.services import delete_interviews

        delete_interviews(submissions=queryset, actor=request.user)

    @admin.action(description=_("Approve the selected interviews"), permissions=["change"])
    def approve(self, request: HttpRequest, queryset) -> None:  # type: ignore[no-untyped-def]
        from surveys.services import review_interviews

        changed = review_interviews(
            submissions=queryset, status=ReviewStatus.APPROVED, actor=request.user
        )
        self.message_user(request, _("%(n)d interviews approved.") % {"n": changed})

    @admin.action(description=_("Reject the selected interviews"), permissions=["change"])
    def reject(self, request: HttpRequest, queryset) -> None:  # type: ignore[no-untyped-def]
        from surveys.services import review_interviews

        changed = review_interviews(
            submissions=queryset, status=ReviewStatus.REJECTED, actor=request.user
        )
        self.message_user(request, _("%(n)d interviews rejected.") % {"n": changed})

    search_fields = ["instance_id", "psu", "stratum"]
    readonly_fields = ["labelled_answers"] + [
        f.name for f in Submission._meta.fields if f.name not in {"review_status", "review_comment"}
    ]
    exclude = ["answers"]
    show_full_result_count = False

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False  # interviews arrive through the submission service

    @admin.display(description=_("Interview"), ordering="instance_id")
    def interview(self, obj: Submission) -> str:
        text = str(obj.instance_id)
        return format_html('<span title="{}">{}…</span>', text, text[:8])

    @admin.display(description=_("Wave"), ordering="wave__code")
    def wave_code(self, obj: Submission) -> str:
        return format_html('<span title="{}">{}</span>', str(obj.wave), obj.wave.code)

    @admin.display(description=_("Region"), ordering="region__code")
    def region_code(self, obj: Submission) -> str:
        if obj.region is None:
            return "-"
        return format_html('<span title="{}">{}</span>', obj.region.name, obj.region.code)

    @admin.display(description=_("Received"), ordering="received_at")
    def received(self, obj: Submission) -> str:
        return timezone.localtime(obj.received_at).strftime("%Y-%m-%d %H:%M")

    @admin.display(description=_("Answers"))
    def labelled_answers(self, obj: Submission) -> str:
        """Answers with their questions' and choices' labels in the admin's language;
        special codes named ("-3 = Not applicable"), never bare numbers."""
        from surveys.labels import labelled_answers

        rows = labelled_answers(obj.form_version.definition, obj.answers, get_language())
        return format_html(
            "<table>{}</table>",
            format_html_join(
                "",
                '<tr><td><code>{}</code></td><td>{}</td><td class="{}">{}</td></tr>',
                (
                    (row.name, row.label, "tanys-special" if row.special else "", row.shown)
                    for row in rows
                ),
            ),
        )


class LinkBatchForm(forms.Form):
    wave = forms.ModelChoiceField(
        label=_("Wave"), queryset=Wave.objects.filter(is_open=True).select_related("survey")
    )
    kind = forms.ChoiceField(label=_("Kind"), choices=LinkKind.choices, initial=LinkKind.SINGLE_USE)
    count = forms.IntegerField(label=_("Number of links"), min_value=1, max_value=10_000, initial=1)
    label = forms.CharField(label=_("Label"), max_length=128, required=False)


def links_csv(request: HttpRequest, links: Iterable[InvitationLink], filename: str) -> HttpResponse:
    """A CSV of link URLs to hand to a mailing or SMS tool."""
    from surveys.attachments import attachment_disposition

    response = HttpResponse(content_type="text/csv; charset=utf-8")
    response["Content-Disposition"] = attachment_disposition(filename)
    response.write("\ufeff")  # so spreadsheet programs read the file as UTF-8
    writer = csv.writer(response)
    writer.writerow(["url", "token", "kind", "survey", "wave", "label", "created_at"])
    for link in links:
        writer.writerow(
            [
                request.build_absolute_uri(reverse("surveys:questionnaire", args=[link.token])),
                link.token,
                link.kind,
                link.wave.survey.code,
                link.wave.code,
                link.label,
                link.created_at.isoformat(),
            ]
        )
    return response


@admin.register(InvitationLink)
class InvitationLinkAdmin(SurveyScopedAdmin, admin.ModelAdmin):
    # Links are keys to a questionnaire and labels may name invitees: administrators only.
    survey_path = "wave__survey"
    view_capability = Capability.MANAGE_SURVEY
    list_display = ["token", "wave", "kind", "label", "created_at", "revoked_at", "used_at"]
    list_filter = ["wave", "kind", ("revoked_at", admin.EmptyFieldListFilter)]
    list_select_related = ["wave__survey"]
    search_fields = ["token", "label"]
    readonly_fields = [
        "wave",
        "kind",
        "token",
        "url",
        "created_by",
        "created_at",
        "revoked_at",
        "used_at",
    ]
    fields = [
        "url",
        "wave",
        "kind",
        "label",
        "token",
        "created_by",
        "created_at",
        "revoked_at",
        "used_at",
    ]
    actions = ["revoke", "rotate", "download_csv"]

    @admin.display(description=_("Address"))
    def url(self, obj: InvitationLink) -> str:
        path = reverse("surveys:questionnaire", args=[obj.token])
        return format_html('<a href="{}" target="_blank" rel="noopener">{}</a>', path, path)

    def has_delete_permission(
        self, request: HttpRequest, obj: InvitationLink | None = None
    ) -> bool:
        return False  # revoke instead: a link that took interviews stays on record

    def get_urls(self):  # type: ignore[no-untyped-def]
        return [
            path(
                "batch/<int:event_id>/",
                self.admin_site.admin_view(self.batch_view),
                name="surveys_invitationlink_batch",
            ),
            path(
                "batch/<int:event_id>/csv/",
                self.admin_site.admin_view(self.batch_csv_view),
                name="surveys_invitationlink_batch_csv",
            ),
            *super().get_urls(),
        ]

    def batch_links(self, request: HttpRequest, event_id: int) -> list[InvitationLink]:
        """The links of one batch, named by the audit event that recorded its creation;
        only those of surveys the user administers."""
        from audit.models import AuditAction, AuditEvent

        if not self.has_view_permission(request):
            raise PermissionDenied
        event = AuditEvent.objects.filter(pk=event_id, action=AuditAction.LINKS_CREATED).first()
        ids = (event.detail or {}).get("ids") if event is not None else None
        links = list(
            self.get_queryset(request)
            .filter(pk__in=ids or [])
            .select_related("wave__survey")
            .order_by("pk")
        )
        if not links:
            raise Http404(_("No such batch of links."))
        return links

    def batch_view(self, request: HttpRequest, event_id: int) -> TemplateResponse:
        """The batch just created (the page the creation redirects to, so reloading it or
        going back creates nothing): every link in full, and its CSV."""
        links = self.batch_links(request, event_id)
        context = {
            **self.admin_site.each_context(request),
            "title": _("Invitation links created"),
            "opts": self.model._meta,
            "links": [
                (
                    link,
                    request.build_absolute_uri(reverse("surveys:questionnaire", args=[link.token])),
                )
                for link in links
            ],
            "wave": links[0].wave,
            "kind": links[0].get_kind_display(),
            "label": links[0].label,
            "csv_url": reverse("admin:surveys_invitationlink_batch_csv", args=[event_id]),
            "add_url": reverse("admin:surveys_invitationlink_add"),
        }
        return TemplateResponse(request, "admin/surveys/invitationlink/batch.html", context)

    def batch_csv_view(self, request: HttpRequest, event_id: int) -> HttpResponse:
        links = self.batch_links(request, event_id)
        wave = links[0].wave
        return links_csv(
            request, links, f"links-{wave.survey.code}-{wave.code}-batch{event_id}.csv"
        )

    def add_view(self, request: HttpRequest, form_url: str = "", extra_context=None):  # type: ignore[no-untyped-def]
        """Create one link or a batch, then show it on a page of its own (POST, redirect,
        GET: pressing reload or back does not create a second batch)."""
        from surveys.services import create_link_batch

        if not self.has_add_permission(request):
            raise PermissionDenied
        form = LinkBatchForm(request.POST or None)
        wave_field = form.fields["wave"]
        assert isinstance(wave_field, forms.ModelChoiceField)
        wave_field.queryset = filter_by_survey(
            Wave.objects.filter(is_open=True).select_related("survey"),
            request.user,
            Capability.MANAGE_SURVEY,
        )
        if request.method == "POST" and form.is_valid():
            event, _links = create_link_batch(
                wave=form.cleaned_data["wave"],
                kind=form.cleaned_data["kind"],
                count=form.cleaned_data["count"],
                created_by=request.user,
                label=form.cleaned_data["label"],
            )
            return HttpResponseRedirect(
                reverse("admin:surveys_invitationlink_batch", args=[event.pk])
            )
        context = {
            **self.admin_site.each_context(request),
            "form": form,
            "title": _("Create invitation links"),
            "opts": self.model._meta,
        }
        return TemplateResponse(request, "admin/surveys/invitationlink/create.html", context)

    @admin.action(description=_("Revoke the selected links"), permissions=["change"])
    def revoke(self, request: HttpRequest, queryset) -> None:  # type: ignore[no-untyped-def]
        from surveys.services import revoke_links

        count = revoke_links(links=queryset, actor=request.user)
        self.message_user(request, _("%(n)d links revoked.") % {"n": count}, messages.SUCCESS)

    @admin.action(
        description=_("Give the selected links new addresses (CSV)"), permissions=["change"]
    )
    def rotate(self, request: HttpRequest, queryset) -> HttpResponse | None:  # type: ignore[no-untyped-def]
        """New tokens for links that reached the wrong hands; the old addresses stop working.
        The response is the CSV of the new addresses."""
        from surveys.services import rotate_link_tokens

        links = rotate_link_tokens(links=queryset, actor=request.user)
        if not links:
            self.message_user(
                request, _("Revoked and used links keep their addresses."), messages.WARNING
            )
            return None
        return links_csv(request, links, "links-new-addresses.csv")

    @admin.action(description=_("Download the selected links as CSV"), permissions=["change"])
    def download_csv(self, request: HttpRequest, queryset) -> HttpResponse:  # type: ignore[no-untyped-def]
        return links_csv(request, queryset.select_related("wave__survey"), "links.csv")
