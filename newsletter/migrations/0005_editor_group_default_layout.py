"""The "editor" group and the shipped responsive layout."""

from django.db import migrations

# The group as first shipped (frozen here; config.roles and project 0002 define it now).
EDITOR_PERMISSIONS = [
    "add_campaign", "change_campaign", "delete_campaign", "view_campaign", "schedule_campaign",
    "add_layout", "change_layout", "view_layout",
    "view_mailinglist", "view_subscriber", "view_subscription",
]


def _editor_group(apps):
    from django.contrib.auth.management import create_permissions

    config = apps.get_app_config("newsletter")
    config.models_module = True  # historical registry: let create_permissions run
    create_permissions(config, apps=apps, verbosity=0)
    config.models_module = None
    group, _ = apps.get_model("auth", "Group").objects.get_or_create(name="editor")
    group.permissions.add(*apps.get_model("auth", "Permission").objects.filter(
        content_type__app_label="newsletter", codename__in=EDITOR_PERMISSIONS))


def forwards(apps, schema_editor):
    from newsletter.campaign_render import (
        DEFAULT_LAYOUT_CSS,
        DEFAULT_LAYOUT_HTML,
        DEFAULT_LAYOUT_NAME,
    )

    _editor_group(apps)
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
