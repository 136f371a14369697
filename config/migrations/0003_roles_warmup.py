"""The operators' role gains the warm-up plans (sending 0007)."""

from django.db import migrations


def forwards(apps, schema_editor):
    from config.roles import roles_ensure

    roles_ensure(apps)


class Migration(migrations.Migration):
    dependencies = [
        ("project", "0002_roles"),
        ("sending", "0008_canary_run"),
    ]

    operations = [migrations.RunPython(forwards, migrations.RunPython.noop)]
