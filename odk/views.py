"""OpenRosa endpoints for ODK Collect and KoboCollect, under a per-device base URL.

Collect is given ``https://<host>/odk/<token>`` as its server URL and appends ``/formList``
and ``/submission`` itself; the token is the device's (stored hashed, revocable). The
account-based ``/odk/formList`` and ``/odk/submission`` take HTTP Basic credentials, over
HTTPS only, after a 401 challenge, as Collect sends them.
"""

from __future__ import annotations

import base64
import binascii
import io
from collections.abc import Callable
from functools import wraps
from typing import Any

from django.conf import settings
from django.contrib.auth import authenticate
from django.http import HttpRequest, HttpResponse
from django.http.multipartparser import MultiPartParser, MultiPartParserError
from django.urls import reverse
from django.utils import translation
from django.utils.datastructures import MultiValueDict
from django.utils.translation import gettext
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.http import require_http_methods

from collect import sync_one
from collect.models import Device
from collect.selectors import device_with_prefix
from collect.services import EnrolmentRefused, touch_device
from collect.tokens import split_token, token_matches
from odk import openrosa, services
from odk.instances import InstanceError
from odk.instances import parse as parse_instance_xml
from odk.multipart import single_file
from odk.xforms import xform_for
from surveys.models import FormVersion

View = Callable[..., HttpResponse]
REALM = "Tanys ODK"


def _device_for_token(token: str) -> Device | None:
    prefix = split_token(token)
    if prefix is None:
        return None
    device = device_with_prefix(prefix)
    if device is None or not token_matches(token, device.token_hash):
        return None
    return device


def _account_device(user: Any) -> Device | None:
    """The ODK Collect device record an enumerator's account-based requests are kept under."""
    return (
        Device.objects.filter(
            enumerator=user, app_version=services.ACCOUNT_DEVICE, revoked_at__isnull=True
        ).first()
        or services.create_odk_device(
            enumerator=user, actor=user, app_version=services.ACCOUNT_DEVICE
        )[0]
    )


def _refused(status: int, text: str, *, challenge: bool = False) -> HttpResponse:
    response = openrosa.message(text, status=status)
    if challenge:
        response["WWW-Authenticate"] = f'Basic realm="{REALM}", charset="UTF-8"'
    return response


def openrosa_view(view: View) -> View:
    """The device from the path's token (401 when unknown or revoked), in the request's
    language, with the OpenRosa headers on every response."""

    @csrf_exempt
    @wraps(view)
    def wrapper(request: HttpRequest, token: str | None = None, **kwargs: Any) -> HttpResponse:
        with translation.override(_language(request)):
            device = _device_for_token(token) if token is not None else _basic_device(request)
            if isinstance(device, HttpResponse):
                return device
            if device is None:
                return _refused(401, gettext("This device is not enrolled."))
            if device.revoked_at is not None:
                return _refused(
                    401,
                    gettext(
                        "This device's access was withdrawn. Keep your interviews on it and "
                        "ask your supervisor for a new settings code."
                    ),
                )
            if not device.enumerator.is_active:
                return _refused(403, gettext("This account is disabled."))
            touch_device(device=device)
            return openrosa.with_headers(view(request, device, **kwargs))

    return wrapper


def _language(request: HttpRequest) -> str:
    """The language of the answers to a request: Collect's Accept-Language, else Kazakh."""
    return services.language_from(request.headers.get("Accept-Language", "")) or "kk"


def _basic_device(request: HttpRequest) -> Device | HttpResponse | None:
    if not request.is_secure():
        return _refused(403, gettext("Use HTTPS to sign in with a user name and password."))
    header = request.headers.get("Authorization", "")
    scheme, _, encoded = header.partition(" ")
    if scheme.lower() != "basic" or not encoded:
        return _refused(401, gettext("Sign in to continue."), challenge=True)
    try:
        username, _, password = base64.b64decode(encoded).decode("utf-8").partition(":")
    except (binascii.Error, UnicodeDecodeError):
        return _refused(401, gettext("Sign in to continue."), challenge=True)
    user = authenticate(request, username=username, password=password)
    if user is None:
        return _refused(401, gettext("The user name or password is not correct."), challenge=True)
    try:
        return _account_device(user)
    except EnrolmentRefused as refusal:  # an account that collects no interviews
        return _refused(403, refusal.message)


@require_http_methods(["GET", "HEAD"])
@openrosa_view
def form_list(request: HttpRequest, device: Device) -> HttpResponse:
    token = request.resolver_match.kwargs.get("token") if request.resolver_match else None
    entries = []
    for version in services.device_form_versions(device):
        xform = xform_for(version)
        entries.append(
            openrosa.FormListEntry(
                form_id=version.form_id,
                name=version.title,
                version=version.version,
                md5=xform.md5,
                download_url=request.build_absolute_uri(_form_url(token, version)),
            )
        )
    return openrosa.form_list(entries)


def _form_url(token: str | None, version: FormVersion) -> str:
    if token is None:
        return reverse("odk:account-form", kwargs={"version_id": version.pk})
    return reverse("odk:form", kwargs={"token": token, "version_id": version.pk})


@require_http_methods(["GET", "HEAD"])
@openrosa_view
def form_download(request: HttpRequest, device: Device, version_id: int) -> HttpResponse:
    version = _assigned_version(device, version_id)
    if version is None:
        return openrosa.message(gettext("This form is not assigned to you."), status=404)
    return HttpResponse(bytes(xform_for(version).xml), content_type=openrosa.XML_CONTENT_TYPE)


@require_http_methods(["GET", "HEAD"])
@openrosa_view
def manifest(request: HttpRequest, device: Device, version_id: int) -> HttpResponse:
    if _assigned_version(device, version_id) is None:
        return openrosa.message(gettext("This form is not assigned to you."), status=404)
    return openrosa.manifest()  # questionnaires carry no media files


def _assigned_version(device: Device, version_id: int) -> FormVersion | None:
    """The questionnaire version, when the device's enumerator has work in its survey."""
    version = FormVersion.objects.filter(pk=version_id).first()
    return version if version is not None and services.may_download(device, version) else None


# A POST this small is read before its token is checked, so that one query finds the
# device with the interview's form and work (`_one_submission`); an interview's XML is a
# few kilobytes, an upload with files goes the usual way.
ONE_QUERY_MAX_BYTES = 256 * 1024


def _one_query_limit() -> int:
    """The largest body `_one_submission` reads: also within the upload limit and what
    Django reads into memory (`request.body`)."""
    limits = [ONE_QUERY_MAX_BYTES, services.max_submission_bytes()]
    if settings.DATA_UPLOAD_MAX_MEMORY_SIZE is not None:
        limits.append(int(settings.DATA_UPLOAD_MAX_MEMORY_SIZE))
    return min(limits)


@csrf_exempt
@require_http_methods(["HEAD", "POST"])
def submission(request: HttpRequest, token: str | None = None) -> HttpResponse:
    response = _one_submission(request, token) if token is not None else None
    return response if response is not None else _submission(request, token=token)


def _one_submission(request: HttpRequest, token: str) -> HttpResponse | None:
    """The response to a small POST of one instance and no files (`odk.multipart`) from a
    device whose token, state and account are in order, its device found with the
    instance's form and work in one query; None for anything else, which `_submission`
    answers (with the same responses this one gives)."""
    prefix = split_token(token)
    declared = request.META.get("CONTENT_LENGTH") or ""
    if (
        request.method != "POST"
        or not sync_one.available()  # its lookup is PostgreSQL's (LATERAL)
        or prefix is None
        or not declared.isdigit()
        or int(declared) > _one_query_limit()
        or request.content_type != "multipart/form-data"
    ):
        return None
    xml = single_file(request.META.get("CONTENT_TYPE", ""), request.body, "xml_submission_file")
    if xml is None:
        return None
    try:
        root = parse_instance_xml(xml)
        device, found = services.find_submission_device(token_prefix=prefix, root=root)
    except InstanceError:
        return None
    if (
        device is None
        or not token_matches(token, device.token_hash)
        or device.revoked_at is not None
        or not device.enumerator.is_active
    ):
        return None
    with translation.override(_language(request)):
        touch_device(device=device)
        receipt = services.receive_found(
            device=device, root=root, found=found, files=[], language=translation.get_language()
        )
        return openrosa.with_headers(_receipt_response(request, receipt))


@openrosa_view
def _submission(request: HttpRequest, device: Device) -> HttpResponse:
    limit = services.max_submission_bytes()
    if request.method == "HEAD":
        response = HttpResponse(status=204)
        response["X-OpenRosa-Accept-Content-Length"] = str(limit)
        return response

    def too_large() -> HttpResponse:
        return openrosa.message(
            gettext("The upload is larger than %(mb)d MB.") % {"mb": limit // 1_000_000},
            status=413,
        )

    declared = request.META.get("CONTENT_LENGTH") or ""
    if declared.isdigit() and int(declared) > limit:
        return too_large()
    try:
        files = _uploaded_files(request, limit)
    except MultiPartParserError:
        return openrosa.message(gettext("The upload could not be read."), status=400)
    if files is None:
        return too_large()
    parts = files.getlist("xml_submission_file")
    if len(parts) != 1:
        return openrosa.message(
            gettext("The upload must hold exactly one xml_submission_file part."), status=400
        )
    xml = parts[0].read()
    attachments = [
        upload
        for field, uploads in files.lists()
        if field != "xml_submission_file"
        for upload in uploads
    ]
    receipt = services.receive_submission(
        device=device,
        xml=xml,
        files=attachments,
        language=translation.get_language() or "",
    )
    return _receipt_response(request, receipt)


def _receipt_response(request: HttpRequest, receipt: services.Receipt) -> HttpResponse:
    response = openrosa.message(receipt.message, status=receipt.status)
    if receipt.status == 201:
        response["Location"] = request.build_absolute_uri()
    return response


def _uploaded_files(request: HttpRequest, limit: int) -> MultiValueDict | None:
    """The parts of the upload; None when it is over ``limit``.

    Collect may send the body with chunked transfer encoding, without Content-Length.
    Django reads no body then, so it is read here from the server's (de-chunked) input,
    at most ``limit`` bytes, and parsed as the multipart upload it is.
    """
    if request.META.get("CONTENT_LENGTH") or not request.META.get("wsgi.input_terminated"):
        return request.FILES
    body = request.META["wsgi.input"].read(limit + 1)
    if len(body) > limit:
        return None
    meta = {**request.META, "CONTENT_LENGTH": str(len(body))}
    _, files = MultiPartParser(meta, io.BytesIO(body), request.upload_handlers).parse()
    return files
