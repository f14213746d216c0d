"""The supervisor's review pages: the queue with its flags, one interview, approve or send back."""

from __future__ import annotations

from typing import Any

from django import forms
from django.core.paginator import Paginator
from django.db.models import QuerySet
from django.http import FileResponse, HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import reverse
from django.utils.formats import number_format
from django.utils.translation import get_language, gettext
from django.utils.translation import gettext_lazy as _
from django.views.decorators.http import require_POST

from access.permissions import Capability, capability_required, submissions_for, waves_for
from collect import review
from collect.services import send_back
from surveys.labels import labelled_answers
from surveys.models import Region, ReviewStatus, Submission, Wave
from surveys.services import review_interviews

REVIEW = Capability.REVIEW_SUBMISSIONS
PAGE_SIZE = 50


class QueueFilter(forms.Form):
    wave = forms.ModelChoiceField(
        label=_("Wave"), queryset=Wave.objects.select_related("survey"), required=False
    )
    region = forms.ModelChoiceField(
        label=_("Region"), queryset=Region.objects.all(), required=False
    )
    status = forms.ChoiceField(
        label=_("Review status"),
        choices=[("", _("All")), *ReviewStatus.choices],
        required=False,
        initial=ReviewStatus.PENDING,
    )
    flagged = forms.BooleanField(label=_("Flagged only"), required=False)


def flag_text(flag: Any) -> str:
    d = flag.detail
    if flag.code == "too_short":
        return gettext("Short: %(minutes)d min, the median is %(median)d min") % {
            "minutes": round(d["seconds"] / 60),
            "median": round(d["median_seconds"] / 60),
        }
    if flag.code == "outside_fieldwork":
        return gettext("Outside the fieldwork dates (%(date)s)") % d
    if flag.code == "off_hours":
        return gettext("Started at %(time)s") % d
    if flag.code == "many_dont_know":
        return gettext("%(percent)d%% of the answers are don't know or refused") % {
            "percent": round(100 * d["share"])
        }
    if flag.code == "straight_lining":
        return gettext("The same answer to every item of a battery")
    if flag.code == "near_duplicate":
        return gettext("Nearly the same answers as interview %(other)s (%(percent)d%%)") % {
            "other": str(d["other"])[:8],
            "percent": round(100 * d["share"]),
        }
    if flag.code == "far_from_settlement":
        return gettext(
            "Recorded %(km)s km from the assigned settlement %(settlement)s "
            "(the limit is %(limit)s km)"
        ) % {
            "km": number_format(d["km"], 1),
            "settlement": d.get("settlement") or "-",
            "limit": number_format(d["limit_km"], 0 if float(d["limit_km"]).is_integer() else 1),
        }
    return flag.code


@capability_required(REVIEW)
def queue(request: HttpRequest) -> HttpResponse:
    data = request.GET if request.GET else {"status": ReviewStatus.PENDING}
    form = QueueFilter(data)
    form.fields["wave"].queryset = waves_for(request.user, REVIEW).select_related("survey")  # type: ignore[attr-defined]
    filters: dict[str, Any] = (
        form.cleaned_data if form.is_valid() else {"status": ReviewStatus.PENDING}
    )
    wave, region = filters.get("wave"), filters.get("region")
    rows = review.queue(
        within=submissions_for(request.user, REVIEW),
        wave_id=wave.pk if wave is not None else None,
        region_id=region.pk if region is not None else None,
        enumerator_id=_int(request.GET.get("enumerator")),
        assignment_id=_int(request.GET.get("assignment")),
        status=filters.get("status") or None,
    )
    page = Paginator(rows, PAGE_SIZE).get_page(request.GET.get("page"))
    items = review.flagged(page.object_list)
    if filters.get("flagged"):
        items = [item for item in items if item.flags]
    return render(
        request,
        "collect/review_queue.html",
        {
            "form": form,
            "page": page,
            "items": [(item, [flag_text(f) for f in item.flags]) for item in items],
            "query": request.GET.urlencode(),
        },
    )


def _reviewable(request: HttpRequest) -> QuerySet[Submission]:
    """The interviews of the requester's surveys (and, for a supervisor, regions)."""
    return submissions_for(request.user, REVIEW)


def _int(value: str | None) -> int | None:
    return int(value) if value and value.isdigit() else None


@capability_required(REVIEW)
def detail(request: HttpRequest, instance_id: str) -> HttpResponse:
    submission = get_object_or_404(
        _reviewable(request).select_related("wave__survey", "region", "enumerator", "form_version"),
        instance_id=instance_id,
    )
    (item,) = review.flagged([submission])
    tablet = getattr(submission, "tablet", None)
    return render(
        request,
        "collect/review_detail.html",
        {
            "s": submission,
            "flags": [flag_text(f) for f in item.flags],
            "answers": labelled_answers(
                submission.form_version.definition, submission.answers, get_language()
            ),
            "paradata": tablet.paradata if tablet is not None else {},
            "assignment": tablet.assignment if tablet is not None else None,
            "attachments": list(submission.attachments.all()),
            "replaces": submission.replaces,
            "replaced_by": Submission.objects.filter(replaces=submission).first(),
            "can_decide": submission.review_status == ReviewStatus.PENDING,
        },
    )


@require_POST
@capability_required(REVIEW)
def decide(request: HttpRequest, instance_id: str) -> HttpResponse:
    submission = get_object_or_404(_reviewable(request), instance_id=instance_id)
    if request.POST.get("decision") == "approve":
        review_interviews(
            submissions=[submission], status=ReviewStatus.APPROVED, actor=request.user
        )
    elif request.POST.get("decision") == "reject":
        comments = {
            key.removeprefix("q:"): str(value).strip()
            for key, value in request.POST.items()
            if key.startswith("q:") and str(value).strip()
        }
        send_back(
            submission=submission,
            reviewer=request.user,
            comment=request.POST.get("comment", "").strip(),
            question_comments=comments,
        )
    return redirect(reverse("review:detail", kwargs={"instance_id": instance_id}))


@capability_required(REVIEW)
def attachment(request: HttpRequest, instance_id: str, name: str) -> FileResponse:
    from odk.models import Attachment

    submission = get_object_or_404(_reviewable(request), instance_id=instance_id)
    stored = get_object_or_404(Attachment, submission=submission, name=name)
    response = FileResponse(stored.file.open("rb"), as_attachment=True, filename=stored.name)
    response["Cache-Control"] = "private, no-store"
    return response
