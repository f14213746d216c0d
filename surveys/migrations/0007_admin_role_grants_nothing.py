"""Re-apply the roles: the admin group no longer holds the `auth` permissions that grant
rights (groups, permissions, user deletion); only superusers grant roles or permissions."""

from django.contrib.auth.management import create_permissions
from django.db import migrations


def reapply_roles(apps, schema_editor):
    from surveys.roles import ensure_roles

    for app_config in apps.get_app_configs():
        app_config.models_module = True
        create_permissions(app_config, apps=apps, verbosity=0)
        app_config.models_module = None
    ensure_roles(apps.get_model("auth", "Group"), apps.get_model("auth", "Permission"))


class Migration(migrations.Migration):
    dependencies = [
        ("surveys", "0006_estimate_statuses_per_survey"),
        ("auth", "0012_alter_user_first_name_max_length"),
        ("apitokens", "0001_api_tokens"),
        ("axes", "0010_accessattemptexpiration"),
    ]
    operations = [migrations.RunPython(reapply_roles, migrations.RunPython.noop)]
