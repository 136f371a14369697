"""The "editor" group and the shipped responsive layout."""

from django.db import migrations


def forwards(apps, schema_editor):
    from newsletter.campaign_render import (
        DEFAULT_LAYOUT_CSS,
        DEFAULT_LAYOUT_HTML,
        DEFAULT_LAYOUT_NAME,
    )
    from newsletter.campaign_roles import editor_group_ensure

    editor_group_ensure(apps)
    Layout = apps.get_model("newsletter", "Layout")
    if not Layout.objects.filter(is_default=True).exists():
        Layout.objects.get_or_create(
            name=DEFAULT_LAYOUT_NAME,
            defaults={"html": DEFAULT_LAYOUT_HTML, "css": DEFAULT_LAYOUT_CSS,
                      "is_default": True})


def backwards(apps, schema_editor):
    apps.get_model("auth", "Group").objects.filter(name="editor").delete()


class Migration(migrations.Migration):
    dependencies = [
        ("newsletter", "0004_campaigns"),
        ("auth", "0012_alter_user_first_name_max_length"),
        ("contenttypes", "0002_remove_content_type_name"),
    ]

    operations = [migrations.RunPython(forwards, backwards)]
