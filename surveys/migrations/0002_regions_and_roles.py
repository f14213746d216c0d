from django.contrib.auth.management import create_permissions
from django.db import migrations


def load(apps, schema_editor):
    from surveys.regions import load_regions
    from surveys.roles import ensure_roles

    load_regions(apps.get_model("surveys", "Region"))
    for app_config in apps.get_app_configs():
        app_config.models_module = True
        create_permissions(app_config, apps=apps, verbosity=0)
        app_config.models_module = None
    ensure_roles(apps.get_model("auth", "Group"), apps.get_model("auth", "Permission"))


class Migration(migrations.Migration):
    dependencies = [("surveys", "0001_initial"), ("auth", "0012_alter_user_first_name_max_length"),
                    ("contenttypes", "0002_remove_content_type_name")]
    operations = [migrations.RunPython(load, migrations.RunPython.noop)]
