"""The tablet API under /api/collect/ (the contract of issue 11: paths and JSON shapes are
relied on by the app and by outside clients, so they are kept exactly)."""

from __future__ import annotations

import json
from typing import Any

from django.conf import settings
from django.contrib.auth import authenticate
from django.http import HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404
from django.urls import reverse
from django.utils import translation
from django.utils.translation import gettext
from drf_spectacular.utils import OpenApiResponse, extend_schema
from rest_framework import permissions, status
from rest_framework.authentication import SessionAuthentication
from rest_framework.parsers import FormParser, MultiPartParser
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from access.permissions import Capability, enumerators_for, requires_capability
from collect import selectors, services, sync, sync_one
from collect.authentication import KEYWORD, DeviceTokenAuthentication
from collect.models import CollectSettings, Device
from collect.serializers import (
    AssignmentErrorsOutputSerializer,
    AssignmentOutputSerializer,
    AssignmentUploadOutputSerializer,
    CollectErrorOutputSerializer,
    EnrolInputSerializer,
    EnrolmentCodeInputSerializer,
    EnrolmentCodeOutputSerializer,
    EnrolOutputSerializer,
    ReturnedOutputSerializer,
    SyncInputSerializer,
    SyncOutputSerializer,
    TabletFormVersionOutputSerializer,
)
from collect.services import touch_device
from collect.tokens import qr_svg, split_token, token_matches
from config import parsers as bounded_json
from config.schema import ErrorOutputSerializer as DetailOutputSerializer
from surveys.definition import interface_language
from surveys.models import Channel
from surveys.webform import LANGUAGE_NAMES, client_logic, interface_messages


class IsDevice(permissions.BasePermission):
    """The request carries a valid, unrevoked device token."""

    def has_permission(self, request, view) -> bool:  # type: ignore[no-untyped-def]
        return isinstance(request.auth, Device)


# A supervisor's or an administrator's grant in some survey; which enumerators and devices
# they reach is narrowed by `access.permissions.enumerators_for`.
IsSupervisor = requires_capability(Capability.REVIEW_SUBMISSIONS)


class DeviceView(APIView):
    authentication_classes = [DeviceTokenAuthentication]
    permission_classes = [IsDevice]


class DevicesView(APIView):
    """Enrol a tablet: an enumerator's password, their session, or a supervisor's code."""

    authentication_classes = [SessionAuthentication]
    permission_classes = [permissions.AllowAny]

    @extend_schema(
        request=EnrolInputSerializer,
        responses={
            201: EnrolOutputSerializer,
            403: CollectErrorOutputSerializer,
        },
        summary="Enrol a device",
    )
    def post(self, request: Request) -> Response:
        data = EnrolInputSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        fields = data.validated_data
        extra = {"label": fields["label"], "app_version": fields["app_version"]}
        try:
            if fields.get("code"):
                device, token = services.enrol_with_code(code=fields["code"], **extra)
            else:
                user = request.user if request.user.is_authenticated else None
                if fields.get("username"):
                    user = authenticate(
                        request, username=fields["username"], password=fields.get("password", "")
                    )
                    if user is None:
                        raise services.EnrolmentRefused(
                            "credentials", gettext("The username or password is not correct.")
                        )
                if user is None:
                    raise services.EnrolmentRefused(
                        "credentials",
                        gettext("Sign in with your username and password, or enter a code."),
                    )
                device, token = services.enrol_device(enumerator=user, via="password", **extra)
        except services.EnrolmentRefused as exc:
            code = status.HTTP_403_FORBIDDEN if exc.code == "not_enumerator" else 400
            return Response({"code": exc.code, "message": exc.message}, status=code)
        body = {
            "device_id": device.pk,
            "token": token,
            "enumerator": device.enumerator.get_username(),
        }
        return Response(EnrolOutputSerializer(body).data, status=status.HTTP_201_CREATED)


class EnrolmentCodesView(APIView):
    """A supervisor or admin makes a single-use code (text and QR) for an enumerator."""

    permission_classes = [IsSupervisor]

    @extend_schema(
        request=EnrolmentCodeInputSerializer,
        responses={
            201: EnrolmentCodeOutputSerializer,
            404: DetailOutputSerializer,
            415: DetailOutputSerializer,
        },
        summary="Make an enrolment code",
    )
    def post(self, request: Request) -> Response:
        data = EnrolmentCodeInputSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        enumerator = get_object_or_404(
            enumerators_for(request.user), username=data.validated_data["enumerator"]
        )
        try:
            entry, code = services.make_enrolment_code(
                enumerator=enumerator, created_by=request.user
            )
        except services.EnrolmentRefused as exc:
            return Response({"code": exc.code, "message": exc.message}, status=400)
        body = {"code": code, "expires_at": entry.expires_at, "qr_svg": qr_svg(code)}
        return Response(EnrolmentCodeOutputSerializer(body).data, status=201)


class AssignmentsView(DeviceView):
    @extend_schema(responses=AssignmentOutputSerializer(many=True), summary="My assignments")
    def get(self, request: Request) -> Response:
        rows = selectors.assignments_for(request.user)
        return Response(AssignmentOutputSerializer(rows, many=True).data)


class AssignmentUploadView(APIView):
    """Supervisors: assignments from a CSV file (field ``file``); all rows or none."""

    permission_classes = [IsSupervisor]
    parser_classes = [MultiPartParser, FormParser]

    @extend_schema(
        request={
            "multipart/form-data": {
                "type": "object",
                "properties": {"file": {"type": "string", "format": "binary"}},
                "required": ["file"],
            }
        },
        responses={201: AssignmentUploadOutputSerializer, 400: AssignmentErrorsOutputSerializer},
        summary="Upload assignments (CSV)",
    )
    def post(self, request: Request) -> Response:
        upload = request.FILES.get("file")
        if upload is None:
            return Response({"errors": [gettext("Choose a CSV file to upload.")]}, status=400)
        try:
            created = services.import_assignments_csv(
                content=upload.read(), created_by=request.user
            )
        except services.AssignmentErrors as exc:
            return Response({"errors": exc.errors}, status=400)
        return Response({"created": len(created)}, status=201)


def form_version_payload(version: Any) -> dict[str, Any]:
    """Everything the app needs to run a questionnaire version offline."""
    definition = version.definition
    languages = [code for code in version.languages if code != "default"] or ["default"]
    setting = CollectSettings.objects.filter(survey_id=version.survey_id).first()
    logic, messages = {}, {}
    for code in languages:
        logic[code] = client_logic(definition, code)
        with translation.override(interface_language(code)):
            messages[code] = interface_messages()
    page = reverse("collect:form", args=[version.pk])
    return {
        "id": version.pk,
        "survey": version.survey.code,
        "version": version.version,
        "title": version.title,
        "languages": languages,
        "default_language": version.default_language,
        "language_names": {
            code: LANGUAGE_NAMES.get(code) or definition.get("language_names", {}).get(code, code)
            for code in languages
        },
        "definition": definition,
        "choices": definition.get("choices", {}),
        "logic": logic,
        "messages": messages,
        "pages": {code: f"{page}?lang={code}" for code in languages},
        "record_gps": bool(setting and setting.record_gps),
    }


class FormVersionView(DeviceView):
    @extend_schema(
        responses=TabletFormVersionOutputSerializer, summary="A questionnaire, for offline use"
    )
    def get(self, request: Request, pk: int) -> Response:
        version = selectors.form_version_for(request.user, pk)
        if version is None:
            return Response(
                {"code": "unknown_form_version", "message": gettext("Not found.")}, status=404
            )
        return Response(TabletFormVersionOutputSerializer(form_version_payload(version)).data)


def _one_interview(request: HttpRequest) -> HttpResponse | None:
    """The response to a tablet sending one interview, answered without DRF's request
    cycle (`collect.sync_one`); None for anything else, which `SyncView` answers: other
    batch sizes, bodies it must refuse, tokens that do not authenticate."""
    if request.method != "POST" or request.content_type != "application/json":
        return None
    if not sync_one.available():
        return None
    length = request.META.get("CONTENT_LENGTH") or ""
    if not length.isdigit() or int(length) > settings.DATA_UPLOAD_MAX_MEMORY_SIZE:
        return None
    scheme, _, token = request.headers.get("Authorization", "").partition(" ")
    prefix = split_token(token) if scheme.lower() == KEYWORD.lower() else None
    if prefix is None or " " in token:
        return None
    try:
        body = bounded_json.loads(request.body)
    except ValueError:
        return None
    items = body.get("interviews") if isinstance(body, dict) else None
    if not isinstance(items, list) or len(items) != 1 or not isinstance(items[0], dict):
        return None
    if sync.sync_limit() < 1:
        return None
    device, found = sync_one.find_for_tablet(token_prefix=prefix, item=items[0])
    if (
        device is None
        or not token_matches(token, device.token_hash)
        or device.is_revoked
        or not device.enumerator.is_active
    ):
        return None
    touch_device(device=device, app_version=request.headers.get("X-Tanys-App-Version", ""))
    result = sync_one.store(device=device, item=items[0], found=found, channel=Channel.TABLET)
    return HttpResponse(
        json.dumps({"results": [result]}, ensure_ascii=False, separators=(",", ":")),
        content_type="application/json",
    )


class SyncView(DeviceView):
    def dispatch(self, request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponse:
        response = _one_interview(request)
        return response if response is not None else super().dispatch(request, *args, **kwargs)

    @extend_schema(
        request=SyncInputSerializer,
        responses={
            200: SyncOutputSerializer,
            400: OpenApiResponse(description='the envelope is not {"interviews": [...]}'),
            413: CollectErrorOutputSerializer,
        },
        summary="Send interviews",
        description=(
            "One result per interview, in order: stored, duplicate (same id, same content), "
            "conflict (same id, other content), invalid (with errors per question) or refused "
            "(with a code), with over_quota: true when the assignment's quota was reached."
        ),
    )
    def post(self, request: Request) -> Response:
        envelope = SyncInputSerializer(data=request.data)
        if not isinstance(request.data, dict) or not envelope.is_valid():
            return Response(
                {"code": "malformed", "message": gettext('Send {"interviews": [...]}.')},
                status=400,
            )
        items = envelope.validated_data["interviews"]
        limit = sync.sync_limit()
        if len(items) > limit:
            return Response(
                {
                    "code": "too_many",
                    "limit": limit,
                    "message": gettext("Send at most %(limit)d interviews at a time.")
                    % {"limit": limit},
                },
                status=status.HTTP_413_REQUEST_ENTITY_TOO_LARGE,
            )
        results = sync.sync_interviews(device=request.auth, items=items)
        return Response({"results": results})


class ReturnedView(DeviceView):
    @extend_schema(responses=ReturnedOutputSerializer(many=True), summary="Interviews sent back")
    def get(self, request: Request) -> Response:
        rows = selectors.returned_to(request.user)
        return Response(ReturnedOutputSerializer(rows, many=True).data)


class RevokeDeviceView(APIView):
    """Supervisors revoke a device (a lost or stolen tablet)."""

    permission_classes = [IsSupervisor]

    @extend_schema(request=None, responses={204: None}, summary="Revoke a device")
    def post(self, request: Request, pk: str) -> Response:
        device = get_object_or_404(Device, pk=pk, enumerator__in=enumerators_for(request.user))
        services.revoke_device(device=device, actor=request.user)
        return Response(status=204)
