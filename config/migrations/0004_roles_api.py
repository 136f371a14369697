"""Editors and operators gain their own API tokens, operators the transactional templates."""

from django.db import migrations


def forwards(apps, schema_editor):
    from config.roles import roles_ensure

    roles_ensure(apps)


class Migration(migrations.Migration):
    dependencies = [
        ("project", "0003_roles_warmup"),
        ("api", "0001_initial"),
    ]

    operations = [migrations.RunPython(forwards, migrations.RunPython.noop)]
