"""The supervisor's page for ODK Collect devices: make one (QR code and address), revoke one."""

from __future__ import annotations

import json
from typing import Any

from django import forms
from django.contrib.auth import get_user_model
from django.http import HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import reverse
from django.utils.translation import gettext_lazy as _
from django.views.decorators.http import require_POST

from access.permissions import Capability, capability_required, enumerators_for
from collect.models import Device
from collect.services import revoke_device
from collect.tokens import qr_svg
from odk import services

MANAGE = Capability.REVIEW_SUBMISSIONS


class DeviceForm(forms.Form):
    enumerator: forms.ModelChoiceField[Any] = forms.ModelChoiceField(
        label=_("Enumerator"), queryset=get_user_model().objects.none()
    )
    label = forms.CharField(label=_("Label"), max_length=100, required=False)

    def __init__(self, *args: Any, requester: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        field = self.fields["enumerator"]
        field.queryset = enumerators_for(requester).order_by("username")  # type: ignore[attr-defined]


@capability_required(MANAGE)
def devices(request: HttpRequest) -> HttpResponse:
    context: dict = {}
    form = DeviceForm(request.POST or None, requester=request.user)
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
        form = DeviceForm(requester=request.user)
    context |= {
        "form": form,
        "devices": Device.objects.filter(
            app_version=services.ODK_DEVICE, enumerator__in=enumerators_for(request.user)
        )
        .select_related("enumerator")
        .order_by("-created_at")[:200],
    }
    response = render(request, "odk/devices.html", context)
    response["Cache-Control"] = "no-store"  # the page may show a device's key
    return response


@require_POST
@capability_required(MANAGE)
def revoke(request: HttpRequest, pk: str) -> HttpResponse:
    device = get_object_or_404(
        Device,
        pk=pk,
        app_version=services.ODK_DEVICE,
        enumerator__in=enumerators_for(request.user),
    )
    revoke_device(device=device, actor=request.user)
    return redirect(reverse("odk:devices"))
