"""The tablet channel in the admin: lists load; revoking goes through the service."""

from __future__ import annotations

import pytest
from django.contrib.auth.models import User

from audit.models import AuditAction, AuditEvent
from collect.models import Device
from tests.collect.collect_fixtures import assignment_for, bearer, tablet_wave, user_in

pytestmark = pytest.mark.django_db


def test_collect_admin_lists_and_revoke_action(client):
    wave = tablet_wave()
    enumerator = user_in("enumerator", "aigerim")
    assignment_for(enumerator, wave, quota=5)
    device, _ = bearer(enumerator)
    admin = User.objects.create_superuser("root", password="x-Pass-123")
    client.force_login(admin)
    for name in ("device", "assignment", "enrolmentcode", "tabletinterview", "collectsettings"):
        assert client.get(f"/admin/collect/{name}/").status_code == 200, name
    response = client.post(
        "/admin/collect/device/", {"action": "revoke", "_selected_action": [str(device.pk)]}
    )
    assert response.status_code == 302
    assert Device.objects.get(pk=device.pk).is_revoked
    assert AuditEvent.objects.filter(action=AuditAction.DEVICE_REVOKED, actor=admin).exists()
