"""Device tokens and enrolment codes: made here, stored only as sha256 digests.

A device token is ``<prefix>.<secret>``: the prefix (8 characters) finds the row, the
secret (256 bits) proves possession. Enrolment codes are short enough to type from a
supervisor's screen (8 characters of an alphabet without look-alike letters, about 40
bits) and safe because they are single use and expire within hours.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets

PREFIX_LENGTH = 8
CODE_ALPHABET = "ABCDEFGHJKLMNPQRSTUVWXYZ23456789"
CODE_LENGTH = 8


def digest(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()


def new_device_token() -> tuple[str, str, str]:
    """(token, prefix, sha256 of the token)."""
    prefix = secrets.token_hex(PREFIX_LENGTH // 2)
    token = f"{prefix}.{secrets.token_urlsafe(32)}"
    return token, prefix, digest(token)


def split_token(token: str) -> str | None:
    """The prefix of a well-formed token, or None."""
    prefix, dot, secret = token.partition(".")
    if not dot or len(prefix) != PREFIX_LENGTH or len(secret) < 20:
        return None
    return prefix


def token_matches(token: str, stored_hash: str) -> bool:
    return hmac.compare_digest(digest(token), stored_hash)


def new_enrolment_code() -> str:
    return "".join(secrets.choice(CODE_ALPHABET) for _ in range(CODE_LENGTH))


def normalise_code(text: str) -> str:
    """What the enumerator typed, as stored: capitals, no spaces or dashes."""
    return "".join(ch for ch in text.upper() if ch.isalnum())


def qr_svg(text: str) -> str:
    """An SVG QR code of ``text`` (drawn on the server: no script, no network)."""
    import qrcode
    import qrcode.image.svg

    image = qrcode.make(text, image_factory=qrcode.image.svg.SvgPathImage, box_size=10)
    return image.to_string(encoding="unicode")
