"""Safe defaults: what the embedded mode may expose, and the Content-Security-Policy.

With DEBUG on, an error page shows the settings and the process environment, so a process
with DEBUG on must be reachable from this machine only: `ALLOWED_HOSTS` may name only
loopback hosts, and a server may bind only a loopback address (`manage.py runserver`
checks its address, `config/gunicorn.conf.py` its bind). The checks here are plain
functions of their arguments so that settings, `manage.py` and gunicorn's configuration
can all call them before Django is set up.
"""

from __future__ import annotations

import base64
import hashlib
import ipaddress
import re
import secrets
from collections.abc import Callable, Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

from django.core.exceptions import ImproperlyConfigured
from django.http import HttpRequest, HttpResponse

LOCAL_HOSTS = frozenset({"localhost", "127.0.0.1", "[::1]", "::1", "testserver"})
NONCE = "'nonce'"  # placeholder in CONTENT_SECURITY_POLICY, replaced by the request's nonce


def is_loopback(host: str) -> bool:
    """Whether `host` (a name or an address, IPv6 with or without brackets) is this machine."""
    host = host.strip().lower()
    if host in LOCAL_HOSTS:
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def refuse_public_debug_hosts(*, debug: bool, allowed_hosts: Iterable[str]) -> None:
    """Raise ImproperlyConfigured when DEBUG is on and ALLOWED_HOSTS names a non-local host."""
    if not debug:
        return
    public = [host for host in allowed_hosts if not is_loopback(host)]
    if public:
        raise ImproperlyConfigured(
            f"DEBUG is on, so ALLOWED_HOSTS may name only this machine (127.0.0.1, localhost, "
            f"[::1]); it names {', '.join(public)}. Set DEBUG=0 (with SECRET_KEY and "
            f"ALLOWED_HOSTS) to serve other hosts."
        )


def split_address(address: str) -> tuple[str, str]:
    """(host, port) of `host:port`, `[v6]:port`, `unix:path` or a bare port ('' as host)."""
    address = address.strip()
    if address.startswith("unix:") or address.startswith("fd://"):
        return address, ""
    if address.startswith("["):
        host, _, rest = address[1:].partition("]")
        return host, rest.lstrip(":")
    if address.count(":") > 1:  # a bare IPv6 address
        return address, ""
    if ":" in address:
        host, _, port = address.partition(":")
        return host, port
    if address.isdigit():
        return "", address
    return address, ""


def refuse_public_debug_bind(*, debug: bool, addresses: Sequence[str], default_host: str) -> None:
    """Raise ImproperlyConfigured when DEBUG is on and a server would listen beyond loopback.

    `default_host` is the host a server uses for a bare port (runserver: 127.0.0.1).
    Unix sockets are local.
    """
    if not debug:
        return
    for address in addresses:
        host, _port = split_address(address)
        if host.startswith("unix:") or host.startswith("fd://"):
            continue
        host = host or default_host
        if not is_loopback(host):
            raise ImproperlyConfigured(
                f"DEBUG is on, so the server may listen only on this machine (127.0.0.1 or "
                f"[::1]), not on {address}. Set DEBUG=0 (with SECRET_KEY and ALLOWED_HOSTS) "
                f"to serve other machines."
            )


def runserver_addresses(argv: Sequence[str]) -> list[str]:
    """The address `manage.py runserver` would bind, from its command line."""
    args = list(argv[2:])
    ipv6 = any(a in ("-6", "--ipv6") for a in args)
    positional = [a for a in args if not a.startswith("-")]
    if positional:
        return [positional[0]]
    return ["[::1]:8000" if ipv6 else "127.0.0.1:8000"]


def refuse_public_runserver(argv: Sequence[str], *, debug: bool) -> None:
    if len(argv) > 1 and argv[1] == "runserver":
        refuse_public_debug_bind(
            debug=debug, addresses=runserver_addresses(argv), default_host="127.0.0.1"
        )


# --- Content-Security-Policy -----------------------------------------------------------


def source_hash(text: str) -> str:
    """The CSP source for an inline element whose content is `text` exactly."""
    digest = hashlib.sha256(text.encode("utf-8")).digest()
    return f"'sha256-{base64.b64encode(digest).decode('ascii')}'"


# Matplotlib writes this style element into every SVG chart the dashboard embeds.
MATPLOTLIB_SVG_STYLE = "*{stroke-linejoin: round; stroke-linecap: butt}"


def admin_inline_styles() -> list[str]:
    """The inline <style> contents of Django's admin templates (the change list has one)."""
    import django.contrib.admin

    folder = Path(django.contrib.admin.__file__).parent / "templates" / "admin"
    found = []
    for name in ("change_list.html",):
        text = (folder / name).read_text(encoding="utf-8")
        found += re.findall(r"<style>(.*?)</style>", text, flags=re.S)
    return found


def inline_style_hashes() -> list[str]:
    return [source_hash(text) for text in (MATPLOTLIB_SVG_STYLE, *admin_inline_styles())]


def policy_header(policy: Mapping[str, Sequence[str]], nonce: str) -> str:
    parts = []
    for directive, sources in policy.items():
        values = [f"'nonce-{nonce}'" if s == NONCE else s for s in sources]
        parts.append(" ".join([directive, *values]).strip())
    return "; ".join(parts)


class ContentSecurityPolicyMiddleware:
    """Sends `settings.CONTENT_SECURITY_POLICY` with every response.

    Each request gets a fresh nonce (`request.csp_nonce`) for the few inline elements a
    page of ours cannot avoid; a response that already carries a policy keeps it.
    """

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        from django.conf import settings

        self.get_response = get_response
        self.policy = settings.CONTENT_SECURITY_POLICY
        self.report_only = settings.CONTENT_SECURITY_POLICY_REPORT_ONLY

    def __call__(self, request: HttpRequest) -> HttpResponse:
        nonce = secrets.token_urlsafe(16)
        request.csp_nonce = nonce  # type: ignore[attr-defined]
        response = self.get_response(request)
        header = (
            "Content-Security-Policy-Report-Only" if self.report_only else "Content-Security-Policy"
        )
        if self.policy and header not in response:
            response[header] = policy_header(self.policy, nonce)
        return response


# --- Login lockout (django-axes) ---------------------------------------------------------


def lockout_response(
    request: HttpRequest, original_response: HttpResponse | None = None, credentials: Any = None
) -> HttpResponse:
    """429 with Retry-After and a translated message: JSON for the API, a page otherwise."""
    from axes.helpers import get_cool_off
    from django.http import JsonResponse
    from django.shortcuts import render
    from django.utils.translation import gettext as _

    cool_off = get_cool_off(request)
    seconds = int(cool_off.total_seconds()) if cool_off else 0
    minutes = max(1, (seconds + 59) // 60)
    message = _(
        "Too many failed logins for this account from your address. For your safety, "
        "logging in is blocked for %(minutes)s minutes, even with the right password."
    ) % {"minutes": minutes}
    if request.path.startswith("/api/") or "json" in request.headers.get("Accept", ""):
        response: HttpResponse = JsonResponse({"detail": message}, status=429)
    else:
        response = render(request, "lockout.html", {"message": message}, status=429)
    if seconds:
        response["Retry-After"] = str(seconds)
    return response
