"""Authors and editors gain the media library and content blocks (newsletter 0010)."""

from django.db import migrations


def forwards(apps, schema_editor):
    from config.roles import roles_ensure

    roles_ensure(apps)


class Migration(migrations.Migration):
    dependencies = [
        ("project", "0004_roles_api"),
        ("newsletter", "0010_media_library_content_blocks"),
    ]

    operations = [migrations.RunPython(forwards, migrations.RunPython.noop)]
