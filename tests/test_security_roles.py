"""Only superusers grant roles or permissions: the admin group cannot raise anyone."""

from __future__ import annotations

import pytest
from django.contrib.auth.models import Group, Permission, User
from django.urls import reverse

pytestmark = pytest.mark.django_db


@pytest.fixture
def staff_admin(client):
    user = User.objects.create_user("office", password="pw-office-1", is_staff=True)
    user.groups.add(Group.objects.get(name="admin"))
    client.force_login(user)
    return user


def _change_form_data(user: User, **extra) -> dict:
    data = {
        "username": user.username,
        "first_name": "",
        "last_name": "",
        "email": "",
        "is_active": "on",
        "is_staff": "on",
        "date_joined_0": "2026-01-01",
        "date_joined_1": "00:00:00",
        "initial-date_joined_0": "2026-01-01",
        "initial-date_joined_1": "00:00:00",
    }
    data.update(extra)
    return data


def test_admin_group_holds_no_granting_permission():
    perms = {
        f"{p.content_type.app_label}.{p.codename}"
        for p in Group.objects.get(name="admin").permissions.select_related("content_type")
    }
    for granting in ("auth.change_group", "auth.add_group", "auth.change_permission"):
        assert granting not in perms
    assert "auth.add_user" in perms
    assert "surveys.export_microdata" in perms


def test_admin_cannot_make_themselves_superuser(client, staff_admin):
    url = reverse("admin:auth_user_change", args=[staff_admin.pk])
    response = client.post(url, _change_form_data(staff_admin, is_superuser="on"))
    assert response.status_code in (200, 302)
    staff_admin.refresh_from_db()
    assert not staff_admin.is_superuser


def test_admin_cannot_grant_themselves_a_permission_or_group(client, staff_admin):
    delete_group = Permission.objects.get(codename="delete_group")
    superusers = Group.objects.create(name="everything")
    url = reverse("admin:auth_user_change", args=[staff_admin.pk])
    client.post(
        url,
        _change_form_data(staff_admin, user_permissions=[delete_group.pk], groups=[superusers.pk]),
    )
    staff_admin.refresh_from_db()
    assert not staff_admin.user_permissions.exists()
    assert list(staff_admin.groups.values_list("name", flat=True)) == ["admin"]


def test_admin_cannot_edit_group_permissions(client, staff_admin):
    group = Group.objects.get(name="admin")
    perm = Permission.objects.get(codename="change_group")
    response = client.post(
        reverse("admin:auth_group_change", args=[group.pk]),
        {"name": "admin", "permissions": [perm.pk]},
    )
    assert response.status_code == 403
    assert not group.permissions.filter(pk=perm.pk).exists()


def test_admin_cannot_reset_a_superusers_password(client, staff_admin):
    root = User.objects.create_superuser("root", password="pw-root-1")
    response = client.post(
        reverse("admin:auth_user_password_change", args=[root.pk]),
        {"password1": "taken-over-77", "password2": "taken-over-77", "usable_password": "true"},
    )
    assert response.status_code == 403
    root.refresh_from_db()
    assert root.check_password("pw-root-1")


def test_admin_can_still_create_users_and_reset_their_passwords(client, staff_admin):
    response = client.post(
        reverse("admin:auth_user_add"),
        {"username": "enumerator7", "password1": "Long-pass-771", "password2": "Long-pass-771",
         "usable_password": "true"},
    )  # fmt: skip
    assert response.status_code == 302
    new = User.objects.get(username="enumerator7")
    response = client.post(
        reverse("admin:auth_user_password_change", args=[new.pk]),
        {"password1": "Other-pass-772", "password2": "Other-pass-772", "usable_password": "true"},
    )
    assert response.status_code == 302
    new.refresh_from_db()
    assert new.check_password("Other-pass-772")


def test_superuser_still_grants(admin_client):
    user = User.objects.create_user("someone", password="pw-1")
    group = Group.objects.get(name="researcher")
    admin_client.post(
        reverse("admin:auth_user_change", args=[user.pk]),
        _change_form_data(user, groups=[group.pk], is_superuser="on"),
    )
    user.refresh_from_db()
    assert user.is_superuser and user.groups.filter(name="researcher").exists()


def test_the_data_migration_takes_the_granting_permissions_away():
    import importlib

    from django.db import connection
    from django.db.migrations.loader import MigrationLoader

    group = Group.objects.get(name="admin")
    group.permissions.add(*Permission.objects.filter(content_type__app_label="auth"))
    migration = importlib.import_module("surveys.migrations.0007_admin_role_grants_nothing")
    historical = MigrationLoader(connection).project_state().apps
    migration.reapply_roles(historical, None)  # it reads and writes rows only
    held = set(group.permissions.values_list("codename", flat=True))
    assert not held & {"change_group", "add_group", "delete_user", "change_permission"}
    assert {"add_user", "change_user"} <= held
