"""Making and revoking API tokens."""

from __future__ import annotations

import secrets
from datetime import timedelta
from typing import Any

from django.conf import settings
from django.db import transaction
from django.utils import timezone

from apitokens.models import PREFIX_LENGTH, ApiToken, token_digest

# A user's usable tokens beyond this many are revoked, oldest first, when one is made.
MAX_USABLE_PER_USER = 10


@transaction.atomic
def issue_token(*, user: Any, replace: bool = False) -> tuple[ApiToken, str]:
    """A new token for `user` and its secret, which is returned here and never again.

    `replace` revokes every earlier token of the user first (the token page's
    "make a new token"); otherwise the earlier ones stay until they expire, at most
    MAX_USABLE_PER_USER of them.
    """
    now = timezone.now()
    if replace:
        revoke_tokens(user=user)
    secret = secrets.token_urlsafe(32)
    token = ApiToken.objects.create(
        user=user,
        prefix=secret[:PREFIX_LENGTH],
        digest=token_digest(secret),
        created_at=now,
        expires_at=now + timedelta(days=settings.API_TOKEN_DAYS),
    )
    surplus = list(
        ApiToken.objects.usable()
        .filter(user=user)
        .order_by("-created_at", "-pk")
        .values_list("pk", flat=True)[MAX_USABLE_PER_USER:]
    )
    if surplus:
        ApiToken.objects.filter(pk__in=surplus).update(revoked_at=now)
    return token, secret


def revoke_tokens(*, user: Any = None, tokens: Any = None) -> int:
    """Revoke the usable tokens of `user`, or the given queryset of tokens."""
    queryset = tokens if tokens is not None else ApiToken.objects.filter(user=user)
    return queryset.filter(revoked_at__isnull=True).update(revoked_at=timezone.now())


def user_for_secret(secret: str) -> tuple[Any, ApiToken] | None:
    """The active user and token a secret belongs to, if it is usable."""
    token = (
        ApiToken.objects.usable().select_related("user").filter(digest=token_digest(secret)).first()
    )
    if token is None or not token.user.is_active:
        return None
    return token.user, token
