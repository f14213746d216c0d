"""Rate limit of the public survey links, /s/<token>/ (GET and POST).

Token buckets in the Django cache (Redis in production), keyed on the link:

- A browser that opened the link carries a short-lived signed cookie (a random id, issued
  with the first page): it has a bucket of its own, `RATE_LIMIT_CLIENT_*`. Respondents
  behind one carrier-grade NAT each have their own, so a crowd on one address does not
  trip it.
- A client without a valid cookie shares the bucket of its link and address,
  `RATE_LIMIT_COOKIELESS_*`: generous for opening the page (a crowd's first visits), while
  a POST costs `RATE_LIMIT_COOKIELESS_POST_COST` tokens, since a real browser posts with
  the cookie its page came with; scripted submissions without cookies are held to a few a
  minute per address.

The address is used only in memory, as an HMAC under SECRET_KEY in the bucket's key (it
cannot be recovered from the key by trying the address space); it is never stored, and a
bucket expires from the cache once full again. When the cache is unreachable the limit
lets requests through: a respondent's interview matters more than the limit.

An over-limit request gets 429 with Retry-After and a message in Kazakh, Russian and
English (a page), or in the form's language (JSON, for form.js, which shows `message`).
"""

from __future__ import annotations

import hashlib
import hmac
import logging
import math
import re
import secrets
import time
from collections.abc import Callable
from dataclasses import dataclass

from django.conf import settings
from django.core import signing
from django.core.cache import cache
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.shortcuts import render
from django.utils import translation
from django.utils.translation import gettext

logger = logging.getLogger(__name__)

LINK_PATH = re.compile(r"^/s/(?P<token>[A-Za-z0-9_-]{1,64})/$")
COOKIE_NAME = "tanys_client"
COOKIE_SALT = "tanys.ratelimit.client"
LANGUAGE_IN_BODY = re.compile(rb'"language"\s*:\s*"(kk|ru|en)"')


@dataclass(frozen=True)
class Rate:
    burst: float  # a full bucket: so many requests at once
    per_minute: float  # refilled at this pace

    @property
    def seconds_to_fill(self) -> float:
        return self.burst * 60.0 / self.per_minute


def refill(tokens: float, stamp: float, now: float, rate: Rate) -> float:
    """The tokens in a bucket that held `tokens` at `stamp`, at time `now`."""
    return min(rate.burst, tokens + max(0.0, now - stamp) * rate.per_minute / 60.0)


def take(key: str, rate: Rate, cost: float = 1.0, now: float | None = None) -> float:
    """Take `cost` tokens from the bucket at `key`: 0.0 when allowed, else the seconds to
    wait. Read and write are not one atomic step: concurrent requests may let a few extra
    through, which a limit of this kind can afford."""
    now = time.time() if now is None else now
    state = cache.get(key)
    tokens = rate.burst if state is None else refill(state[0], state[1], now, rate)
    ttl = math.ceil(rate.seconds_to_fill) + 60
    if tokens >= cost:
        cache.set(key, (tokens - cost, now), timeout=ttl)
        return 0.0
    cache.set(key, (tokens, now), timeout=ttl)
    return (cost - tokens) * 60.0 / rate.per_minute


def client_address(request: HttpRequest) -> str:
    """The client's address: REMOTE_ADDR, or behind a declared proxy the address it saw."""
    if settings.TANYS_BEHIND_PROXY:
        forwarded = request.META.get("HTTP_X_FORWARDED_FOR", "")
        if forwarded.strip():
            return forwarded.split(",")[-1].strip()
    return request.META.get("REMOTE_ADDR", "")


def address_key(address: str) -> str:
    return hmac.new(
        settings.SECRET_KEY.encode(), f"ratelimit:{address}".encode(), hashlib.sha256
    ).hexdigest()[:32]


def link_key(token: str) -> str:
    return hashlib.sha256(token.encode("utf-8", "replace")).hexdigest()[:24]


def client_id(request: HttpRequest) -> str | None:
    """The id in a valid, unexpired client cookie, or None."""
    value = request.COOKIES.get(COOKIE_NAME)
    if not value:
        return None
    try:
        return signing.TimestampSigner(salt=COOKIE_SALT).unsign(
            value, max_age=settings.RATE_LIMIT_COOKIE_SECONDS
        )
    except signing.BadSignature:
        return None


def _rate(name: str) -> Rate:
    return Rate(
        burst=getattr(settings, f"RATE_LIMIT_{name}_BURST"),
        per_minute=getattr(settings, f"RATE_LIMIT_{name}_PER_MINUTE"),
    )


def wait_seconds(request: HttpRequest, token: str, client: str | None) -> float:
    link = link_key(token)
    if client is not None:
        return take(f"tanys:rl:c:{link}:{client}", _rate("CLIENT"))
    cost = settings.RATE_LIMIT_COOKIELESS_POST_COST if request.method == "POST" else 1
    key = f"tanys:rl:a:{link}:{address_key(client_address(request))}"
    return take(key, _rate("COOKIELESS"), cost=cost)


def _wants_json(request: HttpRequest) -> bool:
    return request.method == "POST" and (
        request.content_type == "application/json"
        or "application/json" in request.headers.get("Accept", "")
    )


def _message() -> str:
    return gettext(
        "Too many requests from your connection in a short time. Please wait a moment "
        "and try again."
    )


def too_many_requests(request: HttpRequest, seconds: float) -> HttpResponse:
    retry_after = max(1, math.ceil(seconds))
    response: HttpResponse
    if _wants_json(request):
        found = LANGUAGE_IN_BODY.search(request.body[:4096])
        language = found.group(1).decode() if found else (translation.get_language() or "kk")
        with translation.override(language):
            response = JsonResponse(
                {"code": "rate_limited", "message": _message(), "retry_after": retry_after},
                status=429,
            )
    else:
        blocks = []
        for code in ("kk", "ru", "en"):
            with translation.override(code):
                blocks.append(
                    {"lang": code, "title": gettext("Please wait a moment"), "text": _message()}
                )
        response = render(
            request,
            "surveys/form/unavailable.html",
            {"blocks": blocks, "reason": "rate_limited"},
            status=429,
        )
    response["Retry-After"] = str(retry_after)
    return response


class SurveyLinkRateLimitMiddleware:
    """Applies the limit to /s/<token>/ and issues the client cookie with the page."""

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        match = LINK_PATH.match(request.path_info)
        if match is None or not settings.RATE_LIMIT_ENABLED:
            return self.get_response(request)
        client = client_id(request)
        try:
            seconds = wait_seconds(request, match["token"], client)
        except Exception:  # the cache is down: let the respondent through
            logger.warning("rate limit skipped: the cache is unreachable", exc_info=True)
            seconds = 0.0
        if seconds > 0:
            return too_many_requests(request, seconds)
        response = self.get_response(request)
        if client is None and request.method in ("GET", "POST"):
            signed = signing.TimestampSigner(salt=COOKIE_SALT).sign(secrets.token_urlsafe(12))
            response.set_cookie(
                COOKIE_NAME,
                signed,
                max_age=settings.RATE_LIMIT_COOKIE_SECONDS,
                path=f"/s/{match['token']}/",
                secure=request.is_secure(),
                httponly=True,
                samesite="Lax",
            )
        return response
