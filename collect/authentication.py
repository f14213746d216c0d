"""`Authorization: Bearer <token>` for enrolled tablets (a device token, stored hashed)."""

from __future__ import annotations

from typing import Any

from django.utils.translation import gettext
from rest_framework import exceptions
from rest_framework.authentication import BaseAuthentication, get_authorization_header
from rest_framework.request import Request

from collect.models import Device
from collect.selectors import device_with_prefix
from collect.services import touch_device
from collect.tokens import split_token, token_matches

KEYWORD = "Bearer"


class DeviceRevoked(exceptions.AuthenticationFailed):
    """401 with ``{"code": "device_revoked", "message": ...}``: the app keeps its data."""

    def __init__(self) -> None:
        super().__init__(
            detail={
                "code": "device_revoked",
                "message": gettext(
                    "This tablet's access was withdrawn. Your interviews are kept on it: "
                    "export them to a file and ask your supervisor to enrol the tablet again."
                ),
            }
        )


class DeviceTokenAuthentication(BaseAuthentication):
    """A device's token; ``request.auth`` is the `Device`, ``request.user`` its enumerator."""

    def authenticate(self, request: Request) -> tuple[Any, Device] | None:
        parts = get_authorization_header(request).split()
        if not parts or parts[0].lower() != KEYWORD.lower().encode():
            return None
        if len(parts) != 2:
            raise exceptions.AuthenticationFailed(gettext("Invalid device token."))
        try:
            token = parts[1].decode()
        except UnicodeDecodeError:
            raise exceptions.AuthenticationFailed(gettext("Invalid device token.")) from None
        prefix = split_token(token)
        device = device_with_prefix(prefix) if prefix else None
        if device is None or not token_matches(token, device.token_hash):
            raise exceptions.AuthenticationFailed(gettext("Invalid device token."))
        if device.is_revoked:
            raise DeviceRevoked()
        if not device.enumerator.is_active:
            raise exceptions.AuthenticationFailed(gettext("This account is disabled."))
        touch_device(device=device, app_version=request.headers.get("X-Tanys-App-Version", ""))
        return device.enumerator, device

    def authenticate_header(self, request: Request) -> str:
        return KEYWORD
