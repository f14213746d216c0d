"""DRF authentication by API token: `Authorization: Token <secret>`.

Other schemes (a device's `Bearer` token, say) are left to the authenticators that know
them: this class answers None for any header that does not start with `Token`.
"""

from __future__ import annotations

from typing import Any

from django.utils.translation import gettext_lazy as _
from rest_framework import exceptions
from rest_framework.authentication import BaseAuthentication, get_authorization_header
from rest_framework.request import Request

from apitokens.services import user_for_secret


class ApiTokenAuthentication(BaseAuthentication):
    keyword = "Token"

    def authenticate(self, request: Request) -> tuple[Any, Any] | None:
        parts = get_authorization_header(request).split()
        if not parts or parts[0].lower() != self.keyword.lower().encode():
            return None
        if len(parts) != 2:
            raise exceptions.AuthenticationFailed(
                _("Invalid token header: send 'Token' and the token, separated by one space.")
            )
        try:
            secret = parts[1].decode("ascii")
        except UnicodeError:
            raise exceptions.AuthenticationFailed(_("Invalid token.")) from None
        found = user_for_secret(secret)
        if found is None:
            raise exceptions.AuthenticationFailed(
                _("Invalid token: unknown, expired or revoked. Make a new one.")
            )
        return found

    def authenticate_header(self, request: Request) -> str:
        return self.keyword
