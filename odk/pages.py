"""The supervisor's page for ODK Collect devices: make one (QR code and address), revoke one."""

from __future__ import annotations

import json

from django import forms
from django.contrib.auth import get_user_model
from django.contrib.auth.decorators import login_required, permission_required
from django.http import HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import reverse
from django.utils.translation import gettext_lazy as _
from django.views.decorators.http import require_POST

from collect.models import Device
from collect.services import revoke_device
from collect.tokens import qr_svg
from odk import services

MANAGE = "surveys.review_submission"


class DeviceForm(forms.Form):
    enumerator = forms.ModelChoiceField(
        label=_("Enumerator"),
        queryset=get_user_model()
        .objects.filter(groups__name="enumerator", is_active=True)
        .order_by("username")
        .distinct(),
    )
    label = forms.CharField(label=_("Label"), max_length=100, required=False)


@login_required
@permission_required(MANAGE, raise_exception=True)
def devices(request: HttpRequest) -> HttpResponse:
    context: dict = {}
    form = DeviceForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        device, token = services.create_odk_device(
            enumerator=form.cleaned_data["enumerator"],
            actor=request.user,
            label=form.cleaned_data["label"],
        )
        server_url = request.build_absolute_uri(f"/odk/{token}")
        project = services.collect_settings(server_url=server_url, project_name="Tanys")
        context |= {
            "created": device,
            "server_url": server_url,
            "settings_json": json.dumps(project, ensure_ascii=False, indent=2),
            "qr_svg": qr_svg(services.settings_qr_payload(project)),
        }
        form = DeviceForm()
    context |= {
        "form": form,
        "devices": Device.objects.filter(app_version=services.ODK_DEVICE)
        .select_related("enumerator")
        .order_by("-created_at")[:200],
    }
    response = render(request, "odk/devices.html", context)
    response["Cache-Control"] = "no-store"  # the page may show a device's key
    return response


@require_POST
@login_required
@permission_required(MANAGE, raise_exception=True)
def revoke(request: HttpRequest, pk: str) -> HttpResponse:
    device = get_object_or_404(Device, pk=pk, app_version=services.ODK_DEVICE)
    revoke_device(device=device, actor=request.user)
    return redirect(reverse("odk:devices"))
