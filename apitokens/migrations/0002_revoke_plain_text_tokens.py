"""Tokens of `rest_framework.authtoken` were stored in plain text, for ever: each becomes a
revoked API token (its digest, so a client still sending it is told it is revoked), and
the plain-text copies are deleted. Their users make a new token on the token page."""

import datetime
import hashlib

from django.db import migrations
from django.utils import timezone
from django.utils.dateparse import parse_datetime


def _aware(value):
    if isinstance(value, str):
        value = parse_datetime(value)
    if value is None:
        return timezone.now()
    return timezone.make_aware(value, datetime.timezone.utc) if timezone.is_naive(value) else value


def revoke_plain_text_tokens(apps, schema_editor):
    connection = schema_editor.connection
    if "authtoken_token" not in connection.introspection.table_names():
        return
    ApiToken = apps.get_model("apitokens", "ApiToken")
    now = timezone.now()
    with connection.cursor() as cursor:
        cursor.execute("SELECT key, user_id, created FROM authtoken_token")
        rows = cursor.fetchall()
        ApiToken.objects.bulk_create(
            ApiToken(
                user_id=user_id,
                prefix=key[:8],
                digest=hashlib.sha256(key.encode("utf-8")).hexdigest(),
                created_at=_aware(created),
                expires_at=now,
                revoked_at=now,
            )
            for key, user_id, created in rows
        )
        cursor.execute("DELETE FROM authtoken_token")


class Migration(migrations.Migration):
    dependencies = [("apitokens", "0001_api_tokens")]
    operations = [migrations.RunPython(revoke_plain_text_tokens, migrations.RunPython.noop)]
